"""The domains of parameters and constants, and the supports of vector variables.

A domain names the set a quantity lives in (``positive``, ``unit``...).  It
gives the quantity's SymPy assumptions, a representative interior point for
numerical checks, and the spacing between the points of two quantities of
the same domain.  Whether a number lies in a domain is
:func:`symmle.base._runtime.in_domain`: it is defined in the runtime so that
generated modules share the one definition.

The matrix domains of vector models (:data:`MATRIX_DOMAINS`: ``vector``,
``positive_vector``, ``simplex``, ``spd``) give a quantity a shape in the
model's dimension ``D``; their values are checked by :func:`check_matrix_value`.
A vector model's variable lives in one of the named sets of
:data:`VECTOR_SUPPORTS` (``real``, ``simplex``, ``onehot``, ``counts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.errors import SpecError
from symmle.model.parse import brief

__all__ = [
    "DOMAINS",
    "MATRIX_DOMAINS",
    "VECTOR_SUPPORTS",
    "MatrixDomain",
    "VectorSupport",
    "all_domains",
    "spacing",
    "check_value",
    "matrix_symbol",
    "check_matrix_value",
]

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


@dataclass(frozen=True)
class MatrixDomain:
    """A domain of vector models: a shape in the dimension ``D`` and what its entries are.

    Attributes
    ----------
    square : bool
        ``D x D`` if true, else a column ``D x 1``.
    entries : dict
        SymPy assumptions of the entries of an explicit matrix
        (:mod:`symmle.model.explicit`); of the off-diagonal entries for ``spd``.
    meaning : str
        What the domain is, for messages and documents.
    """

    square: bool
    entries: dict[str, bool]
    meaning: str


#: Domain name -> the shape and entries of a matrix quantity of a vector model.
MATRIX_DOMAINS: dict[str, MatrixDomain] = {
    "vector": MatrixDomain(False, {"real": True}, "a vector of D real numbers"),
    "positive_vector": MatrixDomain(False, {"positive": True}, "a vector of D positive numbers"),
    "simplex": MatrixDomain(False, {"positive": True}, "D positive probabilities that sum to 1"),
    "spd": MatrixDomain(True, {"real": True}, "a symmetric positive definite D x D matrix"),
}


@dataclass(frozen=True)
class VectorSupport:
    """A named set a vector model's variable lives in.

    Attributes
    ----------
    discrete : bool
        Whether the density is a probability mass function on it.
    bounds : (Expr, Expr)
        The range of each entry (``Model.support`` of a vector model).
    entries : dict
        SymPy assumptions of the entries of an explicit variable.
    meaning : str
        What the set is.
    """

    discrete: bool
    bounds: tuple[sp.Expr, sp.Expr]
    entries: dict[str, bool]
    meaning: str


#: Support name -> the set of a vector model's variable.  ``counts`` is the set of vectors of
#: non-negative integers; the density there is the pmf *given the total* ``n = sum(x)`` (the
#: multinomial's n is each observation's own sum), so it sums to 1 over the vectors of each total.
VECTOR_SUPPORTS: dict[str, VectorSupport] = {
    "real": VectorSupport(False, (-sp.oo, sp.oo), {"real": True}, "R^D"),
    "simplex": VectorSupport(
        False, (sp.S.Zero, sp.S.One), {"positive": True}, "the probability simplex (positive, sum 1)"
    ),
    "onehot": VectorSupport(
        True, (sp.S.Zero, sp.S.One), {"integer": True, "nonnegative": True}, "the D one-hot vectors"
    ),
    "counts": VectorSupport(
        True,
        (sp.S.Zero, sp.oo),
        {"integer": True, "nonnegative": True},
        "vectors of D counts (the pmf is given their total)",
    ),
}


def all_domains() -> list[str]:
    """Every domain name: the scalar ones, then the matrix ones (vector models only).

    Examples
    --------
    >>> all_domains()[-4:]
    ['vector', 'positive_vector', 'simplex', 'spd']
    """
    return [*DOMAINS, *MATRIX_DOMAINS]


def matrix_symbol(name: str, domain: str, dimension: sp.Symbol) -> sp.MatrixSymbol:
    """The MatrixSymbol of a quantity of a matrix domain: ``D x 1``, or ``D x D`` for ``spd``.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> matrix_symbol("Sigma", "spd", D).shape, matrix_symbol("p", "simplex", D).shape
    ((D, D), (D, 1))
    """
    cols = dimension if MATRIX_DOMAINS[domain].square else 1
    return sp.MatrixSymbol(name, dimension, cols)


def check_matrix_value(name: str, domain: str, value: sp.MatrixBase) -> None:
    """Check that the known ``value`` of the matrix quantity ``name`` lies in ``domain``.

    ``value`` is an explicit matrix of numbers: ``n x 1`` for the vector domains,
    ``n x n`` for ``spd`` (symmetric, and its Cholesky factorisation succeeds).

    Raises
    ------
    SpecError
        If it does not, naming the quantity and the problem.

    Examples
    --------
    >>> check_matrix_value("Sigma", "spd", sp.Matrix([[2, 1], [1, 2]]))   # passes: returns None
    >>> check_matrix_value("p", "simplex", sp.Matrix([sp.Rational(1, 2), sp.Rational(3, 5)]))
    Traceback (most recent call last):
        ...
    symmle.SpecError: value of 'p' is not in its domain 'simplex': its entries sum to 1.1, not 1
    """
    info = MATRIX_DOMAINS[domain]
    rows, cols = value.shape
    if info.square and rows != cols:
        raise SpecError(f"value of '{name}' must be a square matrix ({domain}), got {rows} x {cols}")
    if not info.square and cols != 1:
        raise SpecError(f"value of '{name}' must be a vector ({domain}), got a {rows} x {cols} matrix")
    if rows < 1:
        raise SpecError(f"value of '{name}' is empty")
    try:
        a = np.array(value.evalf(), dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"value of '{name}' must hold real numbers") from None
    if not np.all(np.isfinite(a)):
        raise SpecError(f"value of '{name}' holds a number that is not finite")

    def outside(why: str) -> SpecError:
        return SpecError(f"value of '{name}' is not in its domain '{domain}': {why}")

    if domain in ("positive_vector", "simplex") and not np.all(a > 0):
        k = int(np.argmin(a))
        raise outside(f"entry {k + 1} is {brief(value[k])}, not positive")
    if domain == "simplex":
        exact = all(v.is_Rational for v in value)
        total = float(sum(value)) if exact else float(a.sum())
        if (sum(value) != 1) if exact else not abs(total - 1.0) <= 1e-9 * rows:
            raise outside(f"its entries sum to {total:.6g}, not 1")
    if domain == "spd":
        scale = float(np.max(np.abs(a)))
        if not np.allclose(a, a.T, rtol=0, atol=1e-12 * scale):
            raise outside("it is not symmetric")
        try:
            np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise outside("it is not positive definite") from None
