"""The terminal summary of a MAP derivation: the likelihood's summary, then the prior and the MAP.

:func:`symmle.report.text.to_text` hands a derivation with priors to :func:`prior_text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from symmle.base.terminal import printable

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["prior_text", "prior_json"]


def _fmt(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def _estimate(e) -> str:
    if e is None:
        return "(none)"
    if e.kind in ("closed_form", "boundary") and e.expr is not None:
        return _fmt(e.expr)
    if e.equation is not None:
        return f"solves {_fmt(e.equation.lhs)} = {_fmt(e.equation.rhs)}    [numeric]"
    return f"{e.note}    [{e.kind}]"


def prior_text(d: Derivation) -> str:
    """The MLE's summary, then the priors, the log-posterior, its score, MLE and MAP side by side."""
    from symmle.report.text import to_text

    r = d.prior
    lines = [to_text(r.mle).rstrip("\n"), "", "Prior (estimation by maximum a posteriori, MAP)"]
    for pr in r.priors:
        lines.append(f"  {pr.describe()}")
        who = ", ".join(pr.parameters)
        lines.append(f"  pi({who}) = {_fmt(pr.density)}")
    flat = [q.name for q in d.model.parameters if not any(q.name in pr.parameters for pr in r.priors)]
    if flat:
        lines.append(f"  flat prior on {', '.join(flat)}")
    lines += ["", "Log-posterior (up to a constant)", f"  log pi = {_fmt(r.log_posterior)}", ""]
    lines.append("Score equations of the log-posterior")
    for p, s in zip(d.stationarity.parameters, d.stationarity.score):
        lines.append(f"  d log pi/d{p} = {_fmt(s)} = 0")
    lines += ["", "MLE and MAP"]
    for q in d.model.parameters:
        e = d.solutions.get(q.name)
        verified = (
            " [closed form, verified]" if e is not None and e.kind == "closed_form" and e.verified else ""
        )
        lines.append(f"  {q.name}_MLE = {_estimate(r.mle.solutions.get(q.name))}")
        lines.append(f"  {q.name}_MAP = {_estimate(e)}{verified}")
    lines += ["", "Posterior family"]
    if r.posterior is None:
        lines.append("  none recognised in the catalogue")
    else:
        pf = r.posterior
        lines.append(
            f"  {pf.parameter} | x ~ {pf.family}("
            + ", ".join(f"{k}={_fmt(v)}" for k, v in pf.parameters)
            + ")"
        )
    if getattr(d, "derived", ()):  # --derived: g at the MAP (a plug-in), see symmle.report.derived
        from symmle.report.derived import derived_text

        lines += derived_text(d)
    extra = [w for w in d.warnings if w not in r.mle.warnings]
    if extra:
        lines += ["", "Warnings (MAP)"] + [f"  - {w}" for w in extra]
    return printable("\n".join(lines) + "\n")


def prior_json(d: Derivation) -> dict:
    """The fields a MAP derivation adds to its JSON document."""
    r = d.prior
    mle = {}
    for name, e in r.mle.solutions.items():
        mle[name] = {"kind": e.kind, "expr": None if e.expr is None else str(e.expr)}
    return {
        "estimator": "map",
        "prior": [pr.to_dict() for pr in r.priors],
        "log_prior": str(r.log_prior),
        "log_posterior": str(r.log_posterior),
        "mle": mle,
        "posterior": None if r.posterior is None else r.posterior.to_dict(),
    }
