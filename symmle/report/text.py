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
