r"""The prose of a vector lecture: its notation explained at first use, the phrases of domains and supports.

A lecture on vectors and matrices uses notation a reader may not share (the transpose, the determinant,
entrywise functions, :math:`\operatorname{dg}`, the Kronecker product); :func:`explain_notation` closes
the first step that shows each construct with what it means.  :func:`quantity_phrase` and
:func:`support_phrase` say what a parameter and the observations are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.special import OneMatrix

from symmle.model.spec import Quantity
from symmle.report.lecture.core import Lecture, Step

__all__ = ["distinct", "explain_notation", "quantity_phrase", "support_phrase"]


def quantity_phrase(q: Quantity, tex: Callable[[Any], str]) -> str | None:
    """A vector or matrix parameter (or constant) and its domain as a phrase; ``None`` for a scalar domain."""
    s = f"${tex(q.symbol)}$"
    rows = tex(q.symbol.shape[0]) if isinstance(q.symbol, sp.MatrixSymbol) else ""
    return {
        "vector": f"{s}, a vector of ${rows}$ real entries",
        "positive_vector": f"{s}, a vector of ${rows}$ positive entries",
        "simplex": f"{s}, a vector of ${rows}$ probabilities that sum to one",
        "spd": rf"{s}, a symmetric positive definite ${rows} \times {rows}$ matrix",
    }.get(q.domain)


def support_phrase(support: str | None, x: str, dim: str) -> str:
    """Where the observation ``x`` (LaTeX) lives, by the name of its support."""
    return {
        "real": f"for ${x}$ with ${dim}$ real entries",
        "simplex": rf"for ${x}$ on the simplex: ${dim}$ positive entries, $\mathbf{{1}}^{{\top}} {x} = 1$",
        "onehot": f"for ${x}$ one-hot: one of its ${dim}$ entries is $1$ and the others are $0$",
        "counts": f"for ${x}$ a vector of ${dim}$ non-negative integer counts",
    }.get(support or "", f"for ${x}$ in its support, a vector of dimension ${dim}$")


#: (test, explanation): each construct of matrix notation, explained in the first step that shows it.
_NOTATION: tuple[tuple[Any, str], ...] = (
    (lambda e: bool(e.atoms(sp.Transpose)), r"$\mathbf{A}^{\top}$ is the transpose"),
    (lambda e: bool(e.atoms(sp.Inverse)), r"$\mathbf{A}^{-1}$ is the inverse"),
    (lambda e: bool(e.atoms(sp.Determinant)), r"$|\mathbf{A}|$ is the determinant"),
    (
        lambda e: any(t.arg.shape != (1, 1) for t in e.atoms(sp.Trace)),
        r"$\operatorname{tr}$ is the trace (the sum of the diagonal)",
    ),
    (
        lambda e: any(o.shape[1] == 1 or o.shape[0] == 1 for o in e.atoms(OneMatrix)),
        r"$\mathbf{1}$ is the vector of ones",
    ),
    (lambda e: bool(e.atoms(sp.Identity)), r"$\mathbf{I}$ is the identity matrix"),
    (
        lambda e: bool(e.atoms(ElementwiseApplyFunction)),
        r"a scalar function of a vector acts entrywise ($\mathbf{v}^{\circ k}$ is the entrywise power)",
    ),
    (
        lambda e: bool(e.atoms(DiagMatrix)),
        r"$\operatorname{diag}(\mathbf{v})$ is the diagonal matrix with $\mathbf{v}$ on its diagonal",
    ),
    (
        lambda e: bool(e.atoms(DiagonalOf)),
        r"$\operatorname{dg}(\mathbf{A})$ is the column of the diagonal of $\mathbf{A}$",
    ),
    (lambda e: bool(e.atoms(KroneckerProduct)), r"$\otimes$ is the Kronecker product"),
)


def distinct(lines: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The lines without one that repeats the line before it."""
    out: list[tuple[Any, Any]] = []
    for lhs, rhs in lines:
        if out and out[-1][0] == lhs and out[-1][1] == rhs:
            continue
        out.append((lhs, rhs))
    return out


def _objects(step: Step) -> list[sp.Basic]:
    return [side for row in step.lines for side in row if isinstance(side, sp.Basic)]


def explain_notation(steps: list[Step]) -> list[Step]:
    """The steps with each construct of matrix notation explained after the first display that shows it."""
    done: set[int] = set()
    out = []
    for s in steps:
        new = []
        for k, (test, words) in enumerate(_NOTATION):
            if k in done or not words:
                continue
            if any(test(e) for e in _objects(s)):
                done.add(k)
                new.append(words)
        if new:
            gloss = "Here " + Lecture.listing(new) + "."
            s = replace(s, after=(s.after + " " + gloss).strip())
        out.append(s)
    return out
