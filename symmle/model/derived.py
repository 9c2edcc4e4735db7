"""Derived quantities ``--derived NAME=EXPR``: functions ``g(theta)`` of a model's parameters.

This module reads and validates them; the maths (invariance of the MLE, the delta method, the
information of a reparametrisation) is :mod:`symmle.symbolic.invariance`.

``EXPR`` is untrusted text: it is read only by the safe parser
(:func:`symmle.model.parse.parse_expression`), in the model's parameter and constant names (not the
variable: a derived quantity is a function of the parameters).  ``NAME`` must be a fresh identifier:
valid, not reserved (:func:`symmle.model.build._reserved`) and not one of the model's names.
Every problem is a one-line :class:`~symmle.base.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.build import _check_name
from symmle.model.parse import brief, parse_expression
from symmle.model.spec import Model

__all__ = ["DerivedSpec", "parse_derived", "SCALAR_ONLY"]

#: The refusal for a model whose parameters are not scalars.
SCALAR_ONLY = "--derived is for scalar-parameter models"

#: At most this many derived quantities at once.
MAX_DERIVED = 32


@dataclass(frozen=True)
class DerivedSpec:
    """One derived quantity as declared: its name, its expression ``g`` and the text it was read from.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> (spec,) = parse_derived(["sigma=sqrt(sigma2)"], load_model("normal"))
    >>> spec.name, spec.expr
    ('sigma', sqrt(sigma2))
    """

    name: str
    expr: sp.Expr
    text: str


def _items(derived: Iterable[str] | Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(name, expr text, as given)`` of each item: ``NAME=EXPR`` strings or a mapping."""
    out = []
    if isinstance(derived, Mapping):
        for name, text in derived.items():
            if not isinstance(text, str):
                raise SpecError(f"derived quantity {brief(repr(name))}: its expression must be text")
            out.append((name, text, f"{name}={text}"))
        return out
    if isinstance(derived, str):
        derived = [derived]
    for item in derived:
        if not isinstance(item, str):
            raise SpecError(f"--derived takes NAME=EXPR text (got {brief(repr(item))})")
        name, eq, text = item.partition("=")
        if not eq:
            raise SpecError(f"--derived must be NAME=EXPR, e.g. sigma=sqrt(sigma2) (got {brief(repr(item))})")
        out.append((name.strip(), text, item))
    return out


def parse_derived(derived: Iterable[str] | Mapping[str, str] | None, model: Model) -> tuple[DerivedSpec, ...]:
    """Read and validate derived quantities for ``model``.

    Parameters
    ----------
    derived : iterable of "NAME=EXPR", or mapping of NAME to EXPR
    model : Model
        A scalar-parameter model (not a vector model, not a regression).

    Raises
    ------
    SpecError
        A bad or clashing name, an empty or refused expression, a name the
        expression may not use, an expression free of the parameters, or a
        model that is not a scalar-parameter one.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> parse_derived({"cv": "sqrt(sigma2)/mu"}, load_model("normal"))[0].expr
    sqrt(sigma2)/mu
    >>> parse_derived(["mu=2*mu"], load_model("normal"))
    Traceback (most recent call last):
        ...
    symmle.SpecError: derived quantity name 'mu' is already declared as the parameter
    """
    if not derived:
        return ()
    items = _items(derived)
    if len(items) > MAX_DERIVED:
        raise SpecError(f"at most {MAX_DERIVED} derived quantities are allowed (got {len(items)})")
    if model.is_vector or model.is_regression:
        kind = "a regression (a link)" if model.is_regression else "a vector model"
        raise SpecError(f"{SCALAR_ONLY}: {brief(model.name)} is {kind}")
    taken: dict[str, tuple[str, str]] = {}
    for name, s in model.symbols.items():
        role = (
            "variable"
            if s is model.variable
            else "parameter"
            if s in model.parameter_symbols
            else "constant"
            if s in model.constant_symbols
            else "dimension"
        )
        taken[name] = (role, name)
    allowed = {q.name: q.symbol for q in (*model.parameters, *model.constants)}
    out = []
    for name, text, given in items:
        if not name:
            raise SpecError(f"--derived must be NAME=EXPR with a name before '=' (got {brief(repr(given))})")
        read = _check_name(name, "derived quantity", taken)
        if not text.strip():
            raise SpecError(f"--derived {read}= has no expression: give NAME=EXPR, e.g. sigma=sqrt(sigma2)")
        if model.variable.name in _names_in(text) and model.variable.name not in allowed:
            raise SpecError(
                f"derived quantity {read}: it may use the parameters and constants "
                f"({', '.join(allowed)}), not the variable {model.variable.name}"
            )
        expr = parse_expression(text, allowed, what=f"derived quantity {read}")
        if not isinstance(expr, sp.Expr) or getattr(expr, "is_Matrix", False):
            raise SpecError(f"derived quantity {read}: the expression must be a number-valued formula")
        if expr.has(sp.Piecewise):
            raise SpecError(f"derived quantity {read}: Piecewise is not allowed (g must be smooth)")
        if not (expr.free_symbols & set(model.parameter_symbols)):
            raise SpecError(
                f"derived quantity {read} does not depend on any parameter "
                f"({', '.join(q.name for q in model.parameters)}): it has nothing to estimate"
            )
        out.append(DerivedSpec(read, expr, text.strip()))
    return tuple(out)


def _names_in(text: str) -> set[str]:
    """The identifiers in ``text`` (for a clearer message than 'unknown name')."""
    import re

    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
