"""Derived quantities in a fit: ``g(theta_hat)`` and its delta-method standard error.

The estimate is ``g`` at the estimates (invariance of the MLE); its variance is
``grad g^T C grad g`` with the exact gradient of ``g`` (:mod:`symmle.symbolic.invariance`, checked
there against finite differences) and ``C`` the fit's covariance of the regular parameters (the
inverse expected, or observed, information at the estimates).  The 95% interval is made on the log
scale where ``g`` is known positive (:func:`symmle.numbers.fitting.interval`), else it is Wald's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from symmle.numbers.compiled import CompiledModel
    from symmle.symbolic.derivation import Derivation

__all__ = ["fit_derived", "derived_lines", "derived_doc"]

#: The interval methods a derived quantity's delta-method interval can follow (any other falls back to
#: the first: the Wald interval on the scale where g's range is the real line).
_DELTA_METHODS = ("transformed", "wald")


def fit_derived(
    d: Derivation,
    compiled: CompiledModel,
    x: Any,
    estimates: Mapping[str, float],
    constants: Mapping[str, float],
    derived: Any,
    *,
    ci: str = "transformed",
    timeout: float | None = None,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``({NAME: {"expr", "estimate", "stderr", "ci95", "ci_method", "estimator_kind"}}, warnings)`` of a fit.

    ``None`` marks what does not exist: an estimate where ``g`` is undefined at the estimates, a
    standard error where ``g`` uses a parameter without one (an order statistic) or the covariance
    is not available.
    """
    import sympy as sp

    from symmle.numbers.fitting import interval
    from symmle.symbolic.derivation import with_derived

    dd = with_derived(d, derived, timeout=timeout)
    values = {**compiled.constant_values(**constants), **{k: float(v) for k, v in estimates.items()}}
    cov, _ = compiled.covariance(x, estimates, **constants)
    params = [q.name for q in d.model.parameters]
    regular = compiled.regular
    out: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    method = ci if ci in _DELTA_METHODS else "transformed"
    if method != ci:  # a profile interval of g would need the likelihood maximised under g = c
        warnings.append(
            f"the derived quantities' intervals are delta-method ones on the scale of their range "
            f"(--ci {ci} is for the model's parameters)"
        )
    for q in dd.derived:
        entry: dict[str, Any] = {
            "expr": sp.sstr(q.expr),
            "estimate": None,
            "stderr": None,
            "ci95": None,
            "ci_method": None,
            # "mle": g at the MLE (the MLE of g, by invariance); "map_plug_in": g at the MAP (not g's MAP)
            "estimator_kind": "map_plug_in" if getattr(d, "prior", None) is not None else "mle",
        }
        out[q.name] = entry
        used = [p.name for p in d.model.parameters if p.symbol in q.expr.free_symbols]
        value = q.value_at(d, values)
        if not math.isfinite(value):
            at = ", ".join(f"{p} = {values[p]:.6g}" for p in used)
            warnings.append(
                f"the derived quantity {q.name} = {sp.sstr(q.expr)} is undefined (or not a finite real "
                f"number) at the estimates {at}"
            )
            continue
        entry["estimate"] = value
        irregular = [p for p in used if p not in regular]
        if irregular or cov is None or q.variance is None:
            why = (
                f"it uses {', '.join(irregular)}, whose MLE is not asymptotically normal"
                if irregular
                else "the parameters' covariance is not available"
                if cov is None
                else "its delta-method variance was not derived (see the notes of derive)"
            )
            warnings.append(f"no delta-method standard error for the derived quantity {q.name}: {why}")
            continue
        grad = q.gradient_at(d, values)
        g = np.array([grad[params.index(p)] for p in regular])
        var = float(g @ cov @ g)
        if not (np.all(np.isfinite(g)) and math.isfinite(var) and var >= 0):
            warnings.append(f"no delta-method standard error for the derived quantity {q.name}")
            continue
        se = math.sqrt(var)
        entry["stderr"] = se
        entry["ci95"], entry["ci_method"] = interval(value, se, "positive" if q.positive else "real", method)
    return out, warnings


def derived_doc(derived: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``"derived"`` object of ``fit --json``: ``{NAME: {"estimate", "stderr", "ci95", ...}}``."""

    def plain(v: Any) -> Any:
        return v if v is None or math.isfinite(v) else None

    return {
        name: {
            "expr": e["expr"],
            "estimate": plain(e["estimate"]),
            "stderr": plain(e["stderr"]),
            "ci95": None if e["ci95"] is None else [plain(v) for v in e["ci95"]],
            "ci_method": e["ci_method"],
            "estimator_kind": e.get("estimator_kind", "mle"),
        }
        for name, e in derived.items()
    }


#: How each interval was made, for the line under the table.
_HOW = {
    "wald": "as estimate +/- 1.96 se",
    "wald-log": "on the log scale, mapped back",
    "wald-logit": "on the logit scale, mapped back",
}


def derived_lines(derived: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The text section "derived quantities" of a fit's table (empty if there is none)."""
    if not derived:
        return []
    plug_in = any(e.get("estimator_kind") == "map_plug_in" for e in derived.values())
    rows = [("quantity", "estimate", "std. error", "95% interval", "definition")]
    for name, e in derived.items():
        est, se, ci = e["estimate"], e["stderr"], e["ci95"]
        rows.append(
            (
                name,
                "undefined" if est is None else f"{est:.10g}",
                "n/a" if se is None else f"{se:.4g}",
                "n/a" if ci is None else f"[{ci[0]:.6g}, {ci[1]:.6g}]",
                e["expr"],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    if plug_in:
        lines = [
            "",
            "  derived quantities g at the MAP estimate (standard errors by the delta method)",
            "  g(theta_MAP) is a plug-in, not the MAP of g: a MAP is not invariant under reparametrisation",
            "",
        ]
    else:
        lines = ["", "  derived quantities (by invariance; standard errors by the delta method)", ""]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    methods: dict[str, list[str]] = {}
    for name, e in derived.items():
        if e["ci_method"] is not None:
            methods.setdefault(e["ci_method"], []).append(name)
    if methods:
        lines.append("")
        head = "  95% intervals: "
        for how, names in methods.items():
            lines.append(f"{head}{', '.join(names)} {_HOW.get(how, how)}")
            head = " " * len(head)
    return lines
