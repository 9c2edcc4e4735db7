"""The domains of parameters and constants.

A domain names the set a quantity lives in (``positive``, ``unit``...).  It
gives the quantity's SymPy assumptions, a representative interior point for
numerical checks, and the spacing between the points of two quantities of
the same domain.  Whether a number lies in a domain is
:func:`symmle.base._runtime.in_domain`: it is defined in the runtime so that
generated modules share the one definition.
"""

from __future__ import annotations

import math

import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.errors import SpecError
from symmle.model.parse import brief

__all__ = ["DOMAINS", "spacing", "check_value"]

#: Domain name -> (SymPy assumptions, representative interior point).
DOMAINS: dict[str, tuple[dict[str, bool], float]] = {
    "real": ({"real": True}, 0.3),
    "positive": ({"positive": True}, 1.7),
    "nonnegative": ({"nonnegative": True}, 1.7),
    "unit": ({"positive": True}, 0.35),  # (0, 1): the upper bound is checked numerically
    "integer": ({"integer": True}, 3.0),
    "positive_integer": ({"integer": True, "positive": True}, 6.0),
}


def spacing(domain: str) -> float:
    """How far apart the check points of two quantities of ``domain`` are.

    Examples
    --------
    >>> spacing("unit"), spacing("positive"), spacing("integer")
    (0.1, 0.5, 1.0)
    """
    return 0.1 if domain == "unit" else 0.5 if domain in ("positive", "nonnegative") else 1.0


def check_value(name: str, domain: str, value: sp.Expr) -> None:
    """Check that the known ``value`` of the quantity ``name`` is a number in ``domain``.

    Raises
    ------
    SpecError
        If it is not.

    Examples
    --------
    >>> check_value("p", "unit", sp.Rational(1, 2))   # passes: returns None
    >>> check_value("p", "unit", sp.Integer(2))
    Traceback (most recent call last):
        ...
    symmle.SpecError: value 2 of 'p' is not in its domain 'unit'
    """
    if value.is_number and value.is_extended_real and not math.isfinite(float(value)):
        raise SpecError(f"value {brief(value)} of '{name}' is too large for a floating-point number")
    if not value.is_number or not in_domain(float(value), domain):
        raise SpecError(f"value {brief(value)} of '{name}' is not in its domain '{domain}'")
