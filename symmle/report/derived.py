"""Derived quantities in the reports: lecture steps, text lines and the JSON entry.

The maths is :mod:`symmle.symbolic.invariance`; this module only shows it.  Each derived quantity
gets the steps "by invariance, g_hat = g(theta_hat) = ...", its gradient, its delta-method variance
and, where ``g`` replaces a parameter one-to-one, the Fisher information of the model written in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.report.lecture.core import Step
from symmle.report.printer import latex

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation
    from symmle.symbolic.invariance import DerivedQuantity

__all__ = ["DERIVED", "derived_dict", "derived_steps", "derived_text"]

#: The section heading of the derived quantities.
DERIVED = "Derived quantities"


def _map(d: Derivation) -> bool:
    """Whether ``d`` is a MAP derivation: its derived quantities are then plug-ins, not MAPs of ``g``."""
    return getattr(d, "prior", None) is not None


def _hat(d: Derivation, q: DerivedQuantity) -> sp.Symbol:
    tail = "_MAP" if _map(d) else ""
    return sp.Symbol(f"hat_{q.name}{tail}", **({"positive": True} if q.positive else {"real": True}))


def _hats(d: Derivation) -> dict[sp.Symbol, sp.Symbol]:
    tail = "_MAP" if _map(d) else ""
    return {p.symbol: sp.Symbol(f"hat_{p.name}{tail}", **p.symbol.assumptions0) for p in d.model.parameters}


def derived_steps(d: Derivation) -> tuple[Step, ...]:
    """The lecture steps of ``d.derived``, under the heading :data:`DERIVED`."""
    from symmle.report.printer import notation

    data = notation(d)

    def tex(e: Any) -> str:
        return latex(e, data)

    out: list[Step] = []
    params = list(d.model.parameter_symbols)
    names = ", ".join(tex(p) for p in params)
    for q in getattr(d, "derived", ()):
        sym, hat = q.symbol, _hat(d, q)
        at_hats = q.expr.xreplace(_hats(d))
        same = tex(sym) == tex(q.expr)  # the notation may print g as its name (sqrt(sigma2): sigma)
        lines: list[tuple[Any, Any]] = [] if same else [(hat, at_hats)]
        if q.estimator is not None:
            lines.append((None if lines else hat, d.likelihood.explicit(q.estimator)))
        defined = f"${tex(sym)}$" if same else f"${tex(sym)} = {tex(q.expr)}$"
        at = "" if tex(hat) == tex(at_hats) else f" = {tex(at_hats)}"
        lead = (
            f"At the MAP estimate, {defined} is ${tex(hat)}{at}$ (a plug-in estimate, not the MAP of "
            f"${tex(sym)}$: a MAP is not invariant under reparametrisation)"
            if _map(d)
            else f"The MLE of {defined} is, by invariance of the maximum-likelihood estimator, the "
            f"quantity at the estimates: ${tex(hat)}{at}$"
        )
        out.append(
            Step(
                f"Estimator of {q.name}",
                lead + (", in closed form:" if q.estimator is not None else "."),
                tuple(lines),
                kind="derived",
                parameter=q.name,
                section=DERIVED,
            )
        )
        if q.gradient:
            grad = sp.Matrix(q.gradient).T
            out.append(
                Step(
                    f"Gradient of {q.name}",
                    f"Its gradient in $({names})$ is",
                    ((rf"\nabla {tex(sym)}", grad),),
                    kind="derived_gradient",
                    parameter=q.name,
                    section=DERIVED,
                )
            )
        if q.variance is not None:
            out.append(
                Step(
                    f"Variance of {q.name}",
                    "By the delta method, its asymptotic variance is the gradient's quadratic form in the "
                    "Cramér–Rao bound (checked numerically against a finite-difference gradient):",
                    ((rf"\operatorname{{Var}}\left({tex(hat)}\right)", q.variance),),
                    kind="derived_variance",
                    parameter=q.name,
                    section=DERIVED,
                    relations=(r"\approx",),
                )
            )
        r = q.reparametrisation
        if r is not None:
            old = d.model.symbols[r.replaced]
            new = ", ".join(tex(p) for p in r.parameters)
            out.append(
                Step(
                    f"Information in {q.name}",
                    f"Written in ${tex(sym)}$ in place of ${tex(old)}$"
                    + ("" if tex(old) == tex(r.inverse) else f" (${tex(old)} = {tex(r.inverse)}$)")
                    + ", the model has the Fisher "
                    f"information $J^\\top I J$ per observation, $J$ the Jacobian of the old parameters in "
                    f"$({new})$ (checked numerically):",
                    ((rf"I({new})", r.fisher),),
                    kind="derived_fisher",
                    parameter=q.name,
                    section=DERIVED,
                )
            )
        for note in q.notes:
            text = note if note.startswith(q.name) else note[0].upper() + note[1:]
            out.append(Step(f"Note on {q.name}", text + ".", (), section=DERIVED))
    return tuple(out)


def derived_text(d: Derivation) -> list[str]:
    """The plain-text lines of ``d.derived`` (empty if there is none)."""
    qs = getattr(d, "derived", ())
    if not qs:
        return []
    s = sp.sstr
    params = ", ".join(p.name for p in d.model.parameters)
    tail, how = ("_hat", "by invariance")
    if _map(d):
        tail, how = "_MAP", "at the MAP estimate (a plug-in, not the MAP of {0})"
    lines = ["", "Derived quantities"]
    for q in qs:
        at = s(q.expr.xreplace({p.symbol: sp.Symbol(f"{p.name}{tail}") for p in d.model.parameters}))
        est = f" = {s(q.estimator)}" if q.estimator is not None else ""
        lines.append(f"  {q.name} = {s(q.expr)}")
        lines.append(f"    {how.format(q.name)}, {q.name}{tail} = {at}{est}")
        if q.gradient:
            lines.append(f"    gradient in ({params}) = ({', '.join(s(e) for e in q.gradient)})")
        if q.variance is not None:
            lines.append(f"    Var({q.name}{tail}) ~ {s(q.variance)}    [delta method, verified]")
        r = q.reparametrisation
        if r is not None:
            new = ", ".join(p.name for p in r.parameters)
            lines.append(f"    Fisher information in ({new}), {r.replaced} = {s(r.inverse)}    [verified]")
            lines += ["      " + s(list(row)) for row in r.fisher.tolist()]
        lines += [f"    note: {n}" for n in q.notes]
    return lines


def derived_dict(d: Derivation) -> dict[str, Any] | None:
    """``{NAME: {"expr", "estimator", "variance", ...}}`` for ``derive --format json`` (``None``: none)."""
    qs = getattr(d, "derived", ())
    if not qs:
        return None
    out = {}
    for q in qs:
        r = q.reparametrisation
        out[q.name] = {
            "expr": sp.sstr(q.expr),
            # "mle": g at the MLE, the MLE of g by invariance; "map_plug_in": g at the MAP (not the MAP of g)
            "estimator_kind": "map_plug_in" if _map(d) else "mle",
            "estimator": None if q.estimator is None else sp.sstr(q.estimator),
            "gradient": [sp.sstr(e) for e in q.gradient],
            "variance": None if q.variance is None else sp.sstr(q.variance),
            "fisher_information": None
            if r is None
            else {
                "parameters": [p.name for p in r.parameters],
                "inverse": sp.sstr(r.inverse),
                "matrix": [[sp.sstr(e) for e in row] for row in r.fisher.tolist()],
            },
            "notes": list(q.notes),
        }
    return out
