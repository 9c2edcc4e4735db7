"""A derivation as a plain-text summary for the terminal (``symmle derive``).

SymPy's plain notation, no LaTeX: the model, the log-density, the sufficient
statistics, the log-likelihood, the score equations, the estimators (with
their kind), the Fisher information, the Cramér–Rao bound and the warnings.
Every character written is printable (no escape sequence reaches a terminal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symmle.base.terminal import printable
from symmle.report.lecture.vector_info import as_scalar_block, block_stated, bound_blocks
from symmle.report.matrix_str import readable
from symmle.symbolic.constrained import SimplexInformation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["to_text"]


def _fmt(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def to_text(d: Derivation) -> str:
    r"""Return a readable plain-text summary for the terminal (``symmle derive``).

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    str
        The model, log-density, sufficient statistics, log-likelihood,
        score equations, estimators (with their kind), Fisher information,
        Cramér–Rao bound and warnings, in SymPy's plain notation.

    Examples
    --------
    >>> from symmle import derive
    >>> text = to_text(derive("exponential"))
    >>> print("\n".join(text.splitlines()[:5]))
    Exponential distribution (rate) (exponential)
    <BLANKLINE>
      density      f(x) = lam*exp(-lam*x)
      support      x in [0, oo]
      parameters   lam (positive)
    """
    m = d.model
    if getattr(d, "prior", None) is not None:  # MAP: the likelihood's summary, then the prior (prior_text)
        from symmle.report.prior_text import prior_text

        return prior_text(d)
    if getattr(d, "mixture", None) is not None:  # the component's summary, then EM (lecture/mixture)
        from symmle.report.lecture.mixture import mixture_text

        return mixture_text(d)
    if getattr(d, "regression", None) is not None:  # one observation in (eta, phi): see regression_text
        from symmle.report.regression_text import regression_text

        return regression_text(d)
    if getattr(m, "is_vector", False):
        return printable("\n".join(_vector_lines(d)) + "\n")
    lik = d.likelihood
    lines = [f"{m.title} ({m.name})", ""]
    lines.append(f"  density      f({m.variable}) = {_fmt(m.density)}")
    lines.append(
        f"  support      {m.variable} in [{_fmt(m.support[0])}, {_fmt(m.support[1])}]"
        + ("  (integers)" if m.discrete else "")
    )
    lines.append("  parameters   " + ", ".join(f"{q.name} ({q.domain})" for q in m.parameters))
    if m.constants:
        lines.append(
            "  constants    "
            + ", ".join(
                f"{q.name} ({q.domain}{'' if q.value is None else ' = ' + _fmt(q.value)})"
                for q in m.constants
            )
        )
    lines += ["", "Log-density", f"  log f = {_fmt(lik.log_density)}", ""]
    if lik.statistics:
        lines.append("Sufficient statistics (sums over the N samples)")
        x_i = sp.Symbol(m.variable.name + "_i")
        lines += [f"  {s.symbol} = sum_i {_fmt(s.expr.subs(m.variable, x_i))}" for s in lik.statistics]
        lines.append("")
    lines += ["Log-likelihood", f"  l = {_fmt(d.log_likelihood)}", ""]
    lines.append("Score equations")
    kinks = dict(d.stationarity.kinks)
    for p, s in zip(d.stationarity.parameters, d.stationarity.score):
        if p in kinks:  # no root: the maximum is where the subgradient contains 0
            lines.append(f"  dl/d{p} = {_fmt(s)}    (kinked: 0 must lie in the subgradient)")
        else:
            lines.append(f"  dl/d{p} = {_fmt(s)} = 0")
    lines += ["", "Estimators"]
    for name, e in d.solutions.items():
        if e.kind == "closed_form":
            verified = ", verified" if e.verified else ""
            lines.append(f"  {name}_hat = {_fmt(e.expr)}    [closed form{verified}]")
        elif e.kind == "numeric":
            lines.append(f"  {name}_hat solves {_fmt(e.equation.lhs)} = {_fmt(e.equation.rhs)}    [numeric]")
        elif e.kind == "boundary":
            lines.append(f"  {name}_hat = {_fmt(e.expr)}    [boundary: {e.note}]")
        else:
            lines.append(f"  {name}_hat: {e.note}    [{e.kind}]")
    lines += ["", "Fisher information (per observation)"]
    lines += ["  " + row for row in _matrix_rows(d.fisher)]
    lines += ["", "Cramer-Rao bound (N I)^-1"]
    lines += ["  " + row for row in (_matrix_rows(d.crlb) if d.crlb is not None else ["not available"])]
    if getattr(d, "derived", ()):  # --derived: see symmle.report.derived
        from symmle.report.derived import derived_text

        lines += derived_text(d)
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return printable("\n".join(lines) + "\n")


def _matrix_rows(m: sp.Matrix) -> list[str]:
    cells = [
        ["n/a" if m[i, j] == sp.nan else _fmt(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])
    ]
    if not cells:
        return ["(none)"]
    width = max(len(c) for row in cells for c in row)
    return ["[ " + "  ".join(c.ljust(width) for c in row) + " ]" for row in cells]


# ---------------------------------------------------------------- vector models


#: What a block says where it is not stated: a simplex parameter has information only on free coordinates.
_UNSTATED = "n/a (a simplex parameter: only its free coordinates have information)"


def _shape(e: sp.Basic) -> str:
    """``D x 1``, ``D x D`` or ``scalar``."""
    shape = getattr(e, "shape", None)
    if not shape or shape == (1, 1):
        return "scalar"
    return f"{readable(shape[0])} x {readable(shape[1])}"


def _coordinates(kind: str) -> str:
    return {"vec": "entries", "vech": "distinct entries (vech)", "scalar": "scalar"}.get(kind, kind)


def _vector_lines(d: Derivation) -> list[str]:
    """A vector model as text: statistics with their shapes, estimators, information and bound by block."""
    m = d.model
    lik = d.likelihood
    x = m.variable
    lines = [f"{m.title} ({m.name})", ""]
    lines.append(f"  density      f({x}) = {readable(m.density)}")
    lines.append(f"  support      {x}: {m.support_set or 'its support'}, dimension {m.dimension}")
    lines.append(
        "  parameters   " + ", ".join(f"{q.name} ({q.domain}, {_shape(q.symbol)})" for q in m.parameters)
    )
    if m.constants:
        lines.append(
            "  constants    " + ", ".join(f"{q.name} ({q.domain}, {_shape(q.symbol)})" for q in m.constants)
        )
    lines += ["", "Log-density", f"  log f = {readable(lik.log_density)}", ""]
    if lik.statistics:
        lines.append("Sufficient statistics (sums over the N samples)")
        x_i = sp.MatrixSymbol(x.name + "_i", *x.shape)
        rows = []
        for s in lik.statistics:
            what = f"{s.symbol} = sum_i {readable(sp.sympify(s.expr).xreplace({x: x_i}))}"
            note = _shape(s.symbol) + ("" if s.informative else ", free of the parameters")
            rows.append((what, note))
        width = max(len(w) for w, _ in rows)
        lines += [f"  {w.ljust(width)}    ({note})" for w, note in rows]
        lines.append("")
    lines += ["Log-likelihood", f"  l = {readable(d.log_likelihood)}", ""]
    lines.append("Score equations (gradients of l)")
    for p, s in zip(d.stationarity.parameters, d.stationarity.score):
        lines.append(f"  dl/d{p} = {readable(s)} = 0" if s is not sp.nan else f"  dl/d{p}: none")
    lines += ["", "Estimators"]
    for name, e in d.solutions.items():
        if e.kind == "closed_form":
            verified = ", verified" if e.verified else ""
            lines.append(f"  {name}_hat = {readable(e.expr)}    [closed form{verified}]")
        elif e.kind == "numeric" and e.equation is not None:
            lines.append(f"  {name}_hat solves {readable(e.equation.lhs)} = 0    [numeric]")
        else:
            lines.append(f"  {name}_hat: {e.note}    [{e.kind}]")
    info = d.information
    blocks = getattr(info, "blocks", None)
    if isinstance(blocks, SimplexInformation):
        return lines + _simplex_lines(d, blocks)
    lines += ["", "Fisher information (per observation), by block"]
    if blocks is None:
        lines.append("  not available")
    else:
        rows = []
        for (a, b), block in blocks.blocks.items():
            stated = block_stated(m, a, block.row_coordinates) and block_stated(m, b, block.col_coordinates)
            rows.append(
                (
                    f"I({a}, {b})",
                    f"[{_coordinates(block.row_coordinates)} x {_coordinates(block.col_coordinates)}]",
                    readable(as_scalar_block(block.matrix)) if stated else _UNSTATED,
                )
            )
        w1, w2 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
        lines += [f"  {r[0].ljust(w1)}  {r[1].ljust(w2)}  {r[2]}" for r in rows]
    lines += ["", "Cramer-Rao bound (N I)^-1, by block"]
    lines += ["  " + row for row in _bound_rows(d)]
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return lines


def _simplex_lines(d: Derivation, si: SimplexInformation) -> list[str]:
    """The information of a simplex parameter on its free coordinates, and the bound, as text."""
    p, q, last = si.parameter, si.free, si.last
    unit = "observation" if si.identities else "count"
    lines = ["", f"Fisher information (per {unit}), on the free coordinates {q} ({last} = 1 - sum {q})"]
    lines.append(f"  I({p}, {p})  [free]  {readable(d.information.fisher)}")
    lines.append(f"  sample information = {readable(si.total)} * I")
    lines += ["", "Cramer-Rao bound (sample information)^-1, on the free coordinates"]
    crlb = d.information.crlb
    lines.append(f"  {p}  [free]  {readable(crlb) if crlb is not None else 'not available'}")
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return lines


def _bound_rows(d: Derivation) -> list[str]:
    """The Cramer-Rao bound of a vector model block by block (block-diagonal), or why there is none."""
    blocks = getattr(d.information, "blocks", None)
    bounds = bound_blocks(d.information)
    if bounds is None or blocks is None:
        return ["not available (the information is not block-diagonal, or was not derived)"]
    kinds = {a: blocks.blocks[(a, a)].row_coordinates for a in blocks.params if (a, a) in blocks.blocks}
    rows = []
    for p, b in bounds:
        kind = kinds.get(p, "")
        shown = readable(b) if block_stated(d.model, p, kind) else _UNSTATED
        rows.append((str(p), f"[{_coordinates(kind)}]", shown))
    w1, w2 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    return [f"{r[0].ljust(w1)}  {r[1].ljust(w2)}  {r[2]}" for r in rows]
