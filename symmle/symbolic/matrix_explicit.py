"""Explicit matrices of symbols: matrix expressions at a concrete dimension, computed out.

The entrywise side of every check of :mod:`symmle.symbolic.matrix_verify`: each ``MatrixSymbol``
becomes an ``sp.Matrix`` of real scalar symbols (:func:`symbol_matrix`; a symmetric one has one
symbol per pair, ``S[j,k] = S[k,j]``), each dimension symbol an integer, and :func:`explicit`
computes the expression out with SymPy's explicit matrix algebra (products, the adjugate over the
Berkowitz determinant for inverses and determinants, ``applyfunc`` for entrywise functions,
Kronecker products, the duplication matrix).  No identity of matrix calculus is used.  The
determinant of a matrix of symbols is held by an intermediate scalar symbol standing for its
(explicit, Berkowitz) polynomial, so that it is not expanded in every entry of an inverse.

Derivatives of an explicit scalar are SymPy's ordinary ``sp.diff`` in one scalar symbol, with the
chain rule of scalar calculus through the intermediate determinants, whose own derivatives are
``sp.diff`` of their polynomials (:func:`entrywise_derivative`, cached: the checks of one model
differentiate the same explicit log-likelihood).  Values are taken by
:mod:`symmle.symbolic.pointwise` in 30 digits or more, with no code generated (:func:`values`);
complex arguments are allowed (the complex step of :mod:`symmle.symbolic.matrix_verify`).
:func:`random_values` draws admissible points: spd matrices with eigenvalues in [0.5, 2], positive
or simplex entries where the domain says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.symbolic.matrix_information import DuplicationMatrix, FisherInformation, vech_pairs

__all__ = [
    "NotExplicit",
    "DIGITS",
    "explicit",
    "symbol_matrix",
    "coordinates",
    "explicit_information",
    "matrix_symbols",
    "dimension_symbols",
    "scalar_symbols",
    "symbolic_mapping",
    "entrywise_derivative",
    "value",
    "values",
    "random_values",
]

#: Digits of the arithmetic of the checks.
DIGITS = 30


class NotExplicit(ValueError):
    """An expression holds a construct or a symbol :func:`explicit` has no value for."""


def _size(n: sp.Expr, mapping: Mapping) -> int:
    v = sp.sympify(sp.sympify(n).xreplace(dict(mapping)))
    if not v.is_Integer:
        raise NotExplicit(f"no concrete size for {n}")
    return int(v)


def _kron(a: sp.Matrix, b: sp.Matrix) -> sp.Matrix:
    return sp.Matrix(
        a.rows * b.rows,
        a.cols * b.cols,
        lambda i, j: a[i // b.rows, j // b.cols] * b[i % b.rows, j % b.cols],
    )


# A determinant of a matrix of symbols is held by an intermediate symbol (the same symbol for the same
# polynomial, in every call): an inverse is the adjugate times its reciprocal.  Expanded in every entry
# of an inverse, the determinant makes expressions (and their derivatives) ten times larger.
_INTERMEDIATE: dict[sp.Expr, sp.Dummy] = {}
_DEFINITION: dict[sp.Dummy, tuple[int, sp.Expr]] = {}
_DERIVATIVES: dict[tuple[sp.Basic, sp.Basic], sp.Expr] = {}
_NEEDS: dict[sp.Basic, frozenset] = {}
_CACHE_SIZE = 20000


def _forget() -> None:
    """Empty the caches together (derivatives hold the intermediate symbols)."""
    _INTERMEDIATE.clear()
    _DEFINITION.clear()
    _DERIVATIVES.clear()
    _NEEDS.clear()


def _determinant(m: sp.Matrix) -> sp.Expr:
    det = m.det(method="berkowitz")
    if det.is_number:
        return det
    q = _INTERMEDIATE.get(det)
    if q is None:
        if len(_DEFINITION) >= _CACHE_SIZE:
            _forget()
        q = sp.Dummy(f"det{len(_DEFINITION)}")
        _INTERMEDIATE[det] = q
        _DEFINITION[q] = (len(_DEFINITION), det)
    return q


def _inverse(m: sp.Matrix) -> sp.Matrix:
    """The adjugate over the determinant (SymPy's ``inv()`` would first try, for seconds, to prove a
    symbolic determinant non-zero, and would pivot on symbolic entries)."""
    if not m.is_square:
        raise NotExplicit(f"inverse of a {m.rows}x{m.cols} matrix")
    if all(v.is_number for v in m):
        return m.inv()
    return m.adjugate() * (1 / _determinant(m))


def explicit(expr: sp.Basic, mapping: Mapping[sp.Basic, object]) -> sp.Basic:
    """``expr`` with every matrix symbol replaced by an explicit matrix, computed out.

    Parameters
    ----------
    expr : Basic
        A scalar or matrix expression (``Trace``, ``Determinant``, ``MatMul``, ``Inverse``,
        entrywise functions, ``KroneckerProduct``, :class:`DuplicationMatrix`...).
    mapping : mapping
        A ``sp.Matrix`` for each ``MatrixSymbol``, a value (number or expression) for scalar
        symbols that are to be replaced, and an integer for each dimension symbol (``D``).

    Returns
    -------
    sp.Matrix or Expr

    Raises
    ------
    NotExplicit
        For a matrix symbol without a value or a construct without a rule.
    """
    memo: dict[sp.Basic, sp.Basic] = {}
    mapping = dict(mapping)

    def walk(e: sp.Basic) -> sp.Basic:
        if e in memo:
            return memo[e]
        out = node(e)
        memo[e] = out
        return out

    def node(e: sp.Basic) -> sp.Basic:
        if e in mapping:
            v = mapping[e]
            return sp.Matrix(v) if isinstance(e, MatrixExpr) else sp.sympify(v)
        if isinstance(e, MatrixExpr):
            return matrix(e)
        if isinstance(e, sp.Trace):
            return walk(e.arg).trace()
        if isinstance(e, sp.Determinant):
            return _determinant(walk(e.arg))
        if not e.args or isinstance(e, sp.Lambda):
            return e
        return e.func(*[walk(a) for a in e.args])

    def matrix(e: MatrixExpr) -> sp.Matrix:
        if isinstance(e, sp.MatrixSymbol):
            raise NotExplicit(f"no value for the matrix {e}")
        if isinstance(e, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix, DuplicationMatrix)):
            rows, cols = (_size(s, mapping) for s in e.shape)
            if isinstance(e, sp.Identity):
                return sp.eye(rows)
            if isinstance(e, sp.ZeroMatrix):
                return sp.zeros(rows, cols)
            if isinstance(e, sp.OneMatrix):
                return sp.ones(rows, cols)
            return DuplicationMatrix(_size(e.n, mapping)).as_explicit().as_mutable()
        if isinstance(e, sp.MatMul):
            out = None
            coeff = sp.S.One
            for a in e.args:
                v = walk(a)
                if isinstance(a, MatrixExpr):
                    out = v if out is None else out * v
                else:
                    coeff *= v
            return coeff * out
        if isinstance(e, sp.MatAdd):
            out = walk(e.args[0])
            for a in e.args[1:]:
                out = out + walk(a)
            return out
        if isinstance(e, sp.Transpose):
            return walk(e.arg).T
        if isinstance(e, sp.Inverse):
            return _inverse(walk(e.arg))
        if isinstance(e, sp.MatPow):
            base, k = e.args
            m = walk(base)
            k = sp.sympify(k).xreplace(mapping)
            if k < 0:
                m = _inverse(m)
            return m ** abs(int(k))
        if isinstance(e, ElementwiseApplyFunction):
            fn = e.function  # its body may hold matrix symbols too (a trace): computed out as well
            return walk(e.expr).applyfunc(lambda z: walk(fn(z)))
        if isinstance(e, sp.HadamardProduct):
            out = walk(e.args[0])
            for a in e.args[1:]:
                out = out.multiply_elementwise(walk(a))
            return out
        if isinstance(e, DiagMatrix):
            v = walk(e.args[0])
            return sp.diag(*list(v))
        if isinstance(e, DiagonalOf):
            m = walk(e.arg)
            return sp.Matrix([m[i, i] for i in range(m.rows)])
        if isinstance(e, KroneckerProduct):
            out = walk(e.args[0])
            for a in e.args[1:]:
                out = _kron(out, walk(a))
            return out
        raise NotExplicit(f"no explicit form of {type(e).__name__}")

    return walk(sp.sympify(expr))


def symbol_matrix(x: sp.MatrixSymbol, rows: int, cols: int, symmetric: bool = False) -> sp.Matrix:
    """An explicit matrix of real symbols named ``x[j,k]`` (``x[j]`` for a column); a symmetric
    one has one symbol per pair, ``x[j,k]`` with ``j >= k``, on both sides of the diagonal."""

    def name(j: int, k: int) -> sp.Symbol:
        if cols == 1:
            return sp.Symbol(f"{x.name}[{j}]", real=True)
        if symmetric:
            j, k = max(j, k), min(j, k)
        return sp.Symbol(f"{x.name}[{j},{k}]", real=True)

    return sp.Matrix(rows, cols, lambda j, k: name(j, k))


def coordinates(x: sp.Basic, m: sp.Basic, symmetric: bool) -> list[sp.Basic]:
    """The coordinates of ``x`` in an explicit ``m``: entries of a column; ``vec`` (columns stacked)
    of a matrix; ``vech`` (:func:`~symmle.symbolic.matrix_information.vech_pairs`) of a symmetric
    one; the scalar itself."""
    if not isinstance(m, sp.MatrixBase):
        return [m]
    if m.cols == 1:
        return list(m)
    if symmetric:
        return [m[r, c] for r, c in vech_pairs(m.rows)]
    return [m[r, c] for c in range(m.cols) for r in range(m.rows)]


def explicit_information(info: FisherInformation, mapping: Mapping) -> sp.Matrix:
    """The full information matrix at explicit values: blocks stacked in ``info.params`` order."""
    rows = []
    for a in info.params:
        row = []
        for b in info.params:
            m = explicit(info.block(a, b), mapping)
            row.append(m if isinstance(m, sp.MatrixBase) else sp.Matrix([[m]]))
        rows.append(row)
    return sp.Matrix(sp.BlockMatrix(rows).as_explicit())


# ---------------------------------------------------------------- symbols of expressions


def matrix_symbols(*exprs: sp.Basic) -> list[sp.MatrixSymbol]:
    """The matrix symbols of the expressions, by name."""
    found: set = set()
    for e in exprs:
        found |= sp.sympify(e).atoms(sp.MatrixSymbol)
    return sorted(found, key=lambda m: m.name)


def dimension_symbols(*exprs: sp.Basic) -> set[sp.Symbol]:
    """The symbols in the shapes of the matrix symbols (``D``, ``K``)."""
    dims: set[sp.Symbol] = set()
    for m in matrix_symbols(*exprs):
        for s in m.shape:
            dims |= sp.sympify(s).free_symbols
    return dims


def scalar_symbols(*exprs: sp.Basic) -> list[sp.Symbol]:
    """The scalar symbols of the expressions other than dimensions, by name."""
    dims = dimension_symbols(*exprs)
    found: set = set()
    for e in exprs:
        found |= {s for s in sp.sympify(e).free_symbols if isinstance(s, sp.Symbol)}
    return sorted(found - dims, key=lambda s: s.name)


def symbolic_mapping(exprs: Iterable[sp.Basic], n: int, symmetric: Iterable = ()) -> dict:
    """``{matrix symbol: symbol_matrix, dimension: n}`` for every matrix symbol of ``exprs``."""
    exprs = list(exprs)
    sym = frozenset(symmetric)
    sizes: dict = {d: sp.Integer(n) for d in dimension_symbols(*exprs)}
    mapping: dict = dict(sizes)
    for m in matrix_symbols(*exprs):
        rows, cols = (_size(s, sizes) for s in m.shape)
        mapping[m] = symbol_matrix(m, rows, cols, m in sym)
    return mapping


# ---------------------------------------------------------------- derivatives and values


def entrywise_derivative(f: sp.Expr, s: sp.Symbol) -> sp.Expr:
    """``df/ds`` by ``sp.diff``, with the chain rule through the intermediate determinants; cached
    (the checks of one model share their derivatives)."""
    key = (f, s)
    out = _DERIVATIVES.get(key)
    if out is None:
        out = sp.diff(f, s)
        for q in sorted(f.free_symbols & _DEFINITION.keys(), key=lambda q: _DEFINITION[q][0]):
            dq = entrywise_derivative(_DEFINITION[q][1], s)
            if dq != 0:
                out += sp.diff(f, q) * dq
        if len(_DERIVATIVES) >= _CACHE_SIZE:
            _forget()
        _DERIVATIVES[key] = out
    return out


def _intermediates_of(e: sp.Basic) -> frozenset:
    """The intermediate determinants ``e`` depends on, directly or through others (cached)."""
    out = _NEEDS.get(e)
    if out is None:
        found: set = set()
        todo = [q for q in e.free_symbols if q in _DEFINITION]
        while todo:
            q = todo.pop()
            if q not in found:
                found.add(q)
                todo.extend(r for r in _DEFINITION[q][1].free_symbols if r in _DEFINITION)
        out = frozenset(found)
        if len(_NEEDS) >= _CACHE_SIZE:
            _NEEDS.clear()
        _NEEDS[e] = out
    return out


def values(exprs: Iterable[sp.Basic], env: Mapping[sp.Basic, Any]) -> list[Any]:
    """Each of ``exprs`` at the numbers of ``env`` (mpmath numbers; complex allowed), 30 digits or
    more; the intermediate determinants they hold are computed first, once.

    Raises
    ------
    NotExplicit
        If a symbol has no value or a function is not known to the evaluator.
    """
    from symmle.symbolic.pointwise import NotEvaluable, evaluate  # lazy: this module imports base only

    exprs = [sp.sympify(e) for e in exprs]
    needed: set = set()
    for e in exprs:
        needed |= _intermediates_of(e)
    env = dict(env)
    try:
        for q in sorted(needed, key=lambda q: _DEFINITION[q][0]):
            env[q] = evaluate(_DEFINITION[q][1], env)
        return [evaluate(e, env) for e in exprs]
    except NotEvaluable as exc:
        raise NotExplicit(str(exc)) from exc


def value(e: sp.Basic, env: Mapping[sp.Basic, Any]) -> Any:
    """One expression at the numbers of ``env`` (see :func:`values`)."""
    return values([e], env)[0]


# ---------------------------------------------------------------- random admissible points


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = q @ np.diag(rng.uniform(0.5, 2.0, n)) @ q.T
    return (s + s.T) / 2


def _random_matrix(rng: np.random.Generator, rows: int, cols: int, domain: str | None) -> np.ndarray:
    if domain == "spd":
        return _spd(rng, rows)
    if domain in ("positive", "positive_vector"):
        return rng.uniform(0.5, 2.0, (rows, cols))
    if domain == "simplex":
        v = rng.uniform(0.5, 1.5, (rows, cols))
        return v / v.sum()
    return rng.normal(0.0, 1.0, (rows, cols))


def _random_scalar(rng: np.random.Generator, s: sp.Symbol, domain: str | None) -> float:
    if domain == "positive" or (domain is None and s.is_positive):
        return float(rng.integers(5, 20)) if s.is_integer else float(rng.uniform(0.5, 2.0))
    return float(rng.normal(0.0, 1.0))


def random_values(
    rng: np.random.Generator,
    mapping: Mapping,
    symbols: Iterable[sp.Basic],
    symmetric: Iterable = (),
    domains: Mapping | None = None,
) -> dict:
    """Random admissible values of ``symbols`` as ``{entry symbol: float}``.

    A matrix symbol's entries are the symbols of its explicit matrix in ``mapping``; its domain is
    ``domains[m]`` (``"spd"``, ``"positive"``, ``"simplex"``, ``"real"``), else ``"spd"`` if it is
    symmetric, else real.  A scalar's is ``domains[s]``, else positive (integers in [5, 20) for a
    positive integer symbol) if SymPy knows it positive, else real.
    """
    sym = frozenset(symmetric)
    doms = dict(domains or {})
    env: dict = {}
    for s in symbols:
        if isinstance(s, sp.MatrixSymbol):
            m = mapping[s]
            dom = doms.get(s, "spd" if s in sym else None)
            a = _random_matrix(rng, m.rows, m.cols, dom)
            for j in range(m.rows):
                for k in range(m.cols):
                    if m[j, k].is_Symbol:
                        env[m[j, k]] = float(a[j, k])
        else:
            env[s] = _random_scalar(rng, s, doms.get(s))
    return env
