"""A vector model at a concrete dimension: explicit matrices of scalar symbols, and admissible numbers.

SymPy's matrix calculus cannot be trusted (``log(Determinant(S)).diff(S)`` is
0 in SymPy 1.14), so every matrix result is checked against the entrywise
computation at a concrete dimension ``n`` (2 and 3).  This module gives
that computation its objects:

- :func:`explicit_symbols`: each MatrixSymbol of the model (the variable,
  the matrix parameters and constants) as an explicit matrix of scalar
  Symbols, and the dimension ``D`` as ``n``.  A vector ``mu`` is
  ``[mu_1, ..., mu_n]``; an ``spd`` ``Sigma`` is symmetric, its entries
  ``Sigma_12`` shared by (1, 2) and (2, 1) (``Sigma_1_12`` style once
  ``n >= 10``, so that names stay unambiguous).  A simplex is n free
  positive symbols: its constraint (sum 1) is the caller's (a Lagrangian).
- :func:`coordinates`: the free scalar symbols of each quantity, in order
  (vech order for ``spd``: the lower triangle column by column).
- :func:`at_dimension`: an expression of the model at dimension ``n``, with
  every matrix operation carried out (a scalar, or an explicit matrix).
- :func:`model_point` and :func:`entry_values`: admissible numbers for every
  parameter and constant (an SPD matrix well conditioned, a simplex positive
  and summing to 1, a positive vector positive), as arrays and per entry symbol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symmle.base.errors import SpecError
from symmle.model.domains import MATRIX_DOMAINS, VECTOR_SUPPORTS
from symmle.model.matrices import is_matrix

if TYPE_CHECKING:
    from symmle.model.spec import Model, Quantity

__all__ = ["explicit_symbols", "coordinates", "at_dimension", "model_point", "entry_values"]

#: Ranges of the random admissible values of the scalar domains.
_SCALAR_RANGES = {
    "real": (-1.0, 1.0),
    "positive": (0.5, 2.0),
    "nonnegative": (0.5, 2.0),
    "unit": (0.2, 0.8),
}
_INTEGER_RANGES = {"integer": (1, 5), "positive_integer": (2, 7)}


def _check_dimension(model: Model, n: int) -> int:
    if model.dimension is None:
        raise ValueError(f"model '{model.name}' is not a vector model (it has no dimension)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"a dimension must be a positive integer, got {n!r}")
    return int(n)


def _entry_name(name: str, i: int, j: int | None, n: int) -> str:
    sep = "" if n < 10 else "_"  # Sigma_111 would be (1, 11) or (11, 1)
    return f"{name}_{i}" if j is None else f"{name}_{i}{sep}{j}"


def explicit_symbols(model: Model, n: int) -> dict[sp.Basic, sp.Basic]:
    """Each MatrixSymbol of ``model`` as an explicit matrix of scalar Symbols at dimension ``n``.

    Parameters
    ----------
    model : Model
        A vector model.
    n : int
        The concrete dimension.

    Returns
    -------
    dict
        ``{D: n, x: Matrix(n, 1), mu: Matrix(n, 1), Sigma: Matrix(n, n), ...}``: the
        dimension and every MatrixSymbol (variable, parameters, constants).  The
        entries carry the assumptions of their domain (a positive vector's are
        positive, an ``spd``'s diagonal positive) or, for the variable, of its
        support (a count is a non-negative integer).  Scalar quantities are not
        in it: they stay themselves.  The same ``n`` gives equal symbols.

    Examples
    --------
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"variable": "x", "dimension": "D", "density":
    ...     "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))",
    ...     "parameters": {"mu": "vector", "Sigma": "spd"}})
    >>> table = explicit_symbols(m, 2)
    >>> table[m.dimension], table[m.parameters[0].symbol].T
    (2, Matrix([[mu_1, mu_2]]))
    >>> table[m.parameters[1].symbol]
    Matrix([
    [Sigma_11, Sigma_12],
    [Sigma_12, Sigma_22]])
    """
    n = _check_dimension(model, n)
    taken = set(model.symbols)
    taken.discard(model.variable.name)
    for q in (*model.parameters, *model.constants):
        if q.is_matrix:
            taken.discard(q.name)

    def symbol(name: str, assumptions: Mapping[str, bool]) -> sp.Symbol:
        # an entry named like a declared scalar (a vector mu and a scalar mu_1) gets a prime
        while name in taken:
            name += "'"
        taken.add(name)
        return sp.Symbol(name, **assumptions)

    def column(name: str, assumptions: Mapping[str, bool]) -> sp.ImmutableMatrix:
        return sp.ImmutableMatrix(
            n, 1, [symbol(_entry_name(name, i + 1, None, n), assumptions) for i in range(n)]
        )

    support = VECTOR_SUPPORTS[model.support_set]
    table: dict[sp.Basic, sp.Basic] = {model.dimension: sp.Integer(n)}
    table[model.variable] = column(model.variable.name, support.entries)
    for q in (*model.parameters, *model.constants):
        if not q.is_matrix:
            continue
        info = MATRIX_DOMAINS[q.domain]
        if not info.square:
            table[q.symbol] = column(q.name, info.entries)
            continue
        entries = {}
        for j in range(n):
            for i in range(j, n):
                assumptions = {"positive": True} if i == j else info.entries
                entries[i, j] = entries[j, i] = symbol(_entry_name(q.name, j + 1, i + 1, n), assumptions)
        table[q.symbol] = sp.ImmutableMatrix([[entries[i, j] for j in range(n)] for i in range(n)])
    return table


def coordinates(model: Model, n: int) -> dict[str, tuple[sp.Symbol, ...]]:
    """The free scalar symbols of each matrix quantity (and the variable) at dimension ``n``.

    A vector's n entries in order; an ``spd`` matrix's n(n + 1)/2 distinct entries
    in vech order (the lower triangle, column by column), the coordinates in
    which its Hessian and Fisher information are taken.

    Examples
    --------
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"variable": "x", "dimension": "D", "density":
    ...     "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))",
    ...     "parameters": {"mu": "vector", "Sigma": "spd"}})
    >>> coordinates(m, 3)["Sigma"]
    (Sigma_11, Sigma_12, Sigma_13, Sigma_22, Sigma_23, Sigma_33)
    """
    table = explicit_symbols(model, n)
    out: dict[str, tuple[sp.Symbol, ...]] = {model.variable.name: tuple(table[model.variable])}
    for q in (*model.parameters, *model.constants):
        if not q.is_matrix:
            continue
        m = table[q.symbol]
        if MATRIX_DOMAINS[q.domain].square:
            out[q.name] = tuple(m[i, j] for j in range(n) for i in range(j, n))
        else:
            out[q.name] = tuple(m)
    return out


def at_dimension(expr: sp.Basic, table: Mapping[sp.Basic, sp.Basic]) -> sp.Basic:
    """``expr`` at a concrete dimension: every matrix operation carried out.

    Parameters
    ----------
    expr : sympy expression
        An expression of the model (scalar or matrix), e.g. its density.
    table : mapping
        :func:`explicit_symbols` (possibly with numbers in place of the symbols).

    Returns
    -------
    sympy.Expr or sympy.ImmutableMatrix
        A scalar expression in the entries (a 1 x 1 trace becomes its entry),
        or an explicit matrix.

    Raises
    ------
    ValueError
        If a matrix operation is left that SymPy cannot carry out.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> p = sp.MatrixSymbol("p", D, 1)
    >>> a, b = sp.symbols("a b", positive=True)
    >>> at_dimension(sp.log(sp.Trace(sp.OneMatrix(1, D) * p)), {D: 2, p: sp.ImmutableMatrix([a, b])})
    log(a + b)
    """
    out = _carry_out(_substitute(sp.sympify(expr), table))
    if isinstance(out, sp.MatrixBase):
        return sp.ImmutableMatrix(out)
    return out


def _substitute(e: sp.Basic, table: Mapping[sp.Basic, sp.Basic]) -> sp.Basic:
    # top-down, as xreplace: a MatrixSymbol is replaced whole, before the D of its shape would be.
    # An entrywise function is applied to the explicit matrix here: SymPy's constructor would
    # apply it to a whole 1 x 1 matrix (loggamma of a Matrix raises NotImplementedError).
    if e in table:
        return table[e]
    if not e.args:
        return e
    if isinstance(e, ElementwiseApplyFunction):
        return _carry_out(_substitute(e.expr, table)).applyfunc(e.function)
    return e.func(*[_substitute(a, table) for a in e.args])


def _carry_out(e: sp.Basic) -> sp.Basic:
    # OneMatrix, Identity and ZeroMatrix of a concrete size as explicit matrices, then every operation done
    e = e.replace(
        lambda m: isinstance(m, (sp.OneMatrix, sp.ZeroMatrix, sp.Identity)) and m.shape[0].is_Integer,
        lambda m: m.as_explicit(),
    )
    e = e.doit()
    if is_matrix(e) and not isinstance(e, sp.MatrixBase):
        e = e.as_explicit()
    if isinstance(e, sp.MatrixBase):
        e = e.applyfunc(lambda entry: entry.doit())
    left = [m for m in sp.preorder_traversal(e) if is_matrix(m) and not isinstance(m, sp.MatrixBase)]
    if left:
        raise ValueError(f"cannot carry out {type(left[0]).__name__} at a concrete dimension: {left[0]}")
    return e


def model_point(model: Model, n: int, rng: np.random.Generator) -> dict[sp.Basic, Any]:
    """Admissible random values of every parameter and constant at dimension ``n``.

    Parameters
    ----------
    model : Model
        A vector model.
    n : int
        The concrete dimension.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``{D: n, symbol: value}`` for every parameter and constant: a float for a
        scalar, an ``(n, 1)`` array for a vector domain, an ``(n, n)`` array for
        ``spd``.  A constant's given value is used as it is.  An ``spd`` value has
        eigenvalues in [0.5, 2] (condition number at most 4) and random
        eigenvectors; a simplex has entries in [1, 2] / their sum (each at least
        1/(2n)); a positive vector entries in [0.5, 2.5]; a vector standard
        normal entries.

    Raises
    ------
    SpecError
        If a matrix constant's given value is not of dimension ``n``.

    Examples
    --------
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"variable": "x", "dimension": "K", "support": "onehot",
    ...     "density": "exp(transpose(x) @ log(p))", "parameters": {"p": "simplex"}})
    >>> point = model_point(m, 3, np.random.default_rng(0))
    >>> p = point[m.parameters[0].symbol]
    >>> p.shape, bool(abs(p.sum() - 1) < 1e-12), bool((p > 0).all())
    ((3, 1), True, True)
    """
    n = _check_dimension(model, n)
    out: dict[sp.Basic, Any] = {model.dimension: n}
    for q in (*model.parameters, *model.constants):
        out[q.symbol] = _value(q, n, rng)
    return out


def _value(q: Quantity, n: int, rng: np.random.Generator) -> Any:
    if q.value is not None:
        if not q.is_matrix:
            return float(q.value)
        value = np.array(q.value.evalf(), dtype=float)
        if value.shape[0] != n:
            raise SpecError(f"constant '{q.name}' has dimension {value.shape[0]}, not {n}")
        return value
    if q.domain in _SCALAR_RANGES:
        return float(rng.uniform(*_SCALAR_RANGES[q.domain]))
    if q.domain in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[q.domain]
        return float(rng.integers(low, high + 1))
    if q.domain == "vector":
        return rng.normal(size=(n, 1))
    if q.domain == "positive_vector":
        return rng.uniform(0.5, 2.5, size=(n, 1))
    if q.domain == "simplex":
        w = rng.uniform(1.0, 2.0, size=(n, 1))
        return w / w.sum()
    if q.domain == "spd":
        basis, _ = np.linalg.qr(rng.normal(size=(n, n)))
        a = basis @ np.diag(rng.uniform(0.5, 2.0, size=n)) @ basis.T
        return (a + a.T) / 2
    raise ValueError(f"no point for the domain '{q.domain}'")


def entry_values(table: Mapping[sp.Basic, sp.Basic], point: Mapping[sp.Basic, Any]) -> dict[sp.Basic, float]:
    """The values of :func:`model_point` per scalar symbol of :func:`explicit_symbols`.

    Parameters
    ----------
    table : mapping
        :func:`explicit_symbols` at the dimension of ``point``.
    point : mapping
        :func:`model_point` (or any values of the model's symbols: a float per
        scalar, an array per MatrixSymbol; the variable may be included).

    Returns
    -------
    dict
        ``{Symbol: float}``: every entry symbol of the matrices in ``point`` and
        every scalar symbol in it, ready for ``xreplace`` or ``lambdify``.

    Examples
    --------
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"variable": "x", "dimension": "K", "support": "onehot",
    ...     "density": "exp(transpose(x) @ log(p))", "parameters": {"p": "simplex"}})
    >>> table = explicit_symbols(m, 2)
    >>> entry_values(table, {m.parameters[0].symbol: np.array([[0.25], [0.75]])})
    {p_1: 0.25, p_2: 0.75}
    """
    out: dict[sp.Basic, float] = {}
    for symbol, value in point.items():
        if isinstance(symbol, sp.MatrixSymbol):
            explicit = table[symbol]
            values = np.asarray(value, dtype=float).reshape(explicit.shape)
            for (i, j), entry in np.ndenumerate(np.array(explicit, dtype=object)):
                out[entry] = float(values[i, j])
        elif symbol in table:  # the dimension
            continue
        else:
            out[symbol] = float(value)
    return out
