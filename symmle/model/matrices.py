"""The shape rules of the expression language: vectors and matrices.

:mod:`symmle.model.parse` builds every expression; when an operand is a
matrix expression (a ``MatrixSymbol`` of a vector model, or an expression
in one) it asks this module what the operation means and checks the shapes
first.  SymPy does not: with a symbolic dimension it silently builds
``x*x`` of two ``D x 1`` vectors, ``exp`` of a vector or the inverse of a
vector.  The rules (docs/vector-models.md):

- ``A @ B`` is the matrix product (``MatMul``); the inner dimensions must agree.
- ``transpose(A)``, ``inverse(A)`` (square), ``det(A)`` and ``logdet(A) = log(det(A))``
  (square, scalar), ``trace(A)`` (square, scalar), ``sum(v)`` (the sum of the entries
  of a vector, a 1 x 1), ``diag(v)`` (the diagonal matrix of a vector).
- A 1 x 1 matrix in scalar context (added to a scalar, as a function's argument, a
  power, a condition) is the scalar ``Trace(M)``: the trace of a 1 x 1 is its entry.
- ``*`` scales a matrix by scalars; a product of two matrices with ``*`` is refused
  (``@`` is the matrix product).  ``+`` needs equal shapes; a scalar added to a vector
  broadcasts (``v + c*OneMatrix(D, 1)``).
- A scalar function, a power with a scalar exponent and a division of a scalar by a
  vector act entrywise on a vector (``ElementwiseApplyFunction``); on a square
  matrix they are refused (``exp`` of a matrix would be ambiguous).

Each refusal calls ``fail`` with one line naming the operation and the shapes.
The entrywise functions share one dummy variable, so that ``log(p)`` built twice
is the same expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

__all__ = [
    "MATRIX_FUNCTIONS",
    "ENTRY",
    "is_matrix",
    "shape_of",
    "shape_text",
    "scalar",
    "add",
    "multiply",
    "matmul",
    "reciprocal",
    "power",
    "entrywise",
    "function_of_matrices",
    "matrix_function",
]

Fail = Callable[[str], NoReturn]


def _logdet(a: sp.MatrixExpr) -> sp.Expr:
    return sp.log(sp.Determinant(a))


def _sum(v: sp.MatrixExpr) -> sp.MatrixExpr:
    rows, cols = v.shape
    if cols == 1:
        return sp.MatMul(sp.OneMatrix(1, rows), v)
    return sp.MatMul(v, sp.OneMatrix(cols, 1))


#: The functions of matrices, by the name the expression language gives them.
MATRIX_FUNCTIONS: dict[str, Callable] = {
    "transpose": sp.transpose,
    "inverse": sp.Inverse,
    "det": sp.Determinant,
    "logdet": _logdet,
    "trace": sp.Trace,
    "sum": _sum,
    "diag": sp.DiagMatrix,
}
# what each needs of its argument
_NEEDS = {
    "transpose": "matrix",
    "inverse": "square",
    "det": "square",
    "logdet": "square",
    "trace": "square",
    "sum": "vector",
    "diag": "vector",
}
_HINTS = {"inverse": " (write 1/a for a scalar)", "transpose": " (a scalar is its own transpose)"}

#: The variable of every entrywise function: one shared dummy, so equal functions are equal expressions.
ENTRY = sp.Dummy("d")


def is_matrix(e: sp.Basic) -> bool:
    """Whether ``e`` is a matrix expression (of any shape, 1 x 1 included)."""
    return bool(getattr(e, "is_Matrix", False))


def shape_of(e: sp.Basic) -> tuple:
    """The shape of ``e``: ``()`` for a scalar, ``(rows, cols)`` for a matrix.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> shape_of(sp.MatrixSymbol("x", D, 1)), shape_of(sp.Symbol("a"))
    ((D, 1), ())
    """
    return tuple(e.shape) if is_matrix(e) else ()


def shape_text(e: sp.Basic) -> str:
    """The shape of ``e`` for a message: ``D x 1``, ``D x D``, or ``a scalar``."""
    if not is_matrix(e):
        return "a scalar"
    rows, cols = e.shape
    return f"{rows} x {cols}"


def _unit(e: sp.Basic) -> bool:
    return is_matrix(e) and e.shape == (1, 1)


def _vector(e: sp.Basic) -> bool:
    return is_matrix(e) and (e.shape[0] == 1 or e.shape[1] == 1)


def _square(e: sp.Basic) -> bool:
    return is_matrix(e) and e.shape[0] == e.shape[1]


def scalar(e: sp.Basic, fail: Fail, where: str) -> sp.Expr:
    """``e`` in scalar context: a scalar as it is, a 1 x 1 matrix as its trace; else ``fail``.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> x = sp.MatrixSymbol("x", D, 1)
    >>> scalar(x.T * x, print, "exp()")
    Trace(x.T*x)
    """
    if not is_matrix(e):
        return e
    if _unit(e):
        return sp.Trace(e)
    fail(f"{where} needs a scalar, got a {shape_text(e)} matrix")


def add(terms: Sequence[sp.Basic], fail: Fail, add_scalars: Callable[[list], sp.Expr]) -> sp.Basic:
    """The sum of ``terms``; ``add_scalars`` adds scalars (with the parser's size guards)."""
    big = [t for t in terms if is_matrix(t) and not _unit(t)]
    units = [t for t in terms if _unit(t)]
    plain = [t for t in terms if not is_matrix(t)]
    if not big:
        if not plain:
            return sp.MatAdd(*units, evaluate=True)
        return add_scalars([*plain, *(sp.Trace(u) for u in units)])
    for other in big[1:]:
        if other.shape != big[0].shape:
            fail(f"shape mismatch in '+' or '-': {shape_text(big[0])} and {shape_text(other)}")
    if plain or units:
        if not _vector(big[0]):
            fail(
                f"cannot add a scalar to a {shape_text(big[0])} matrix "
                "(a scalar broadcasts over the entries of a vector only)"
            )
        offset = add_scalars([*plain, *(sp.Trace(u) for u in units)])
        big.append(sp.MatMul(offset, sp.OneMatrix(*big[0].shape), evaluate=True))
    return sp.MatAdd(*big, evaluate=True)


def multiply(factors: Sequence[sp.Basic], fail: Fail, mul_scalars: Callable[[list], sp.Expr]) -> sp.Basic:
    """The product of ``factors`` with ``*``: scalars times at most one matrix."""
    big = [f for f in factors if is_matrix(f) and not _unit(f)]
    if len(big) > 1:
        fail(
            f"product of two matrices with '*' or '/' ({shape_text(big[0])} and {shape_text(big[1])}): "
            "write A @ B for the matrix product (entrywise products of matrices are not supported)"
        )
    if not big:
        if not any(_unit(f) for f in factors):
            return mul_scalars(list(factors))
        plain = [f for f in factors if not is_matrix(f)]
        units = [f for f in factors if _unit(f)]
        return sp.MatMul(mul_scalars(plain) if plain else sp.S.One, *units, evaluate=True)
    plain = [f if not is_matrix(f) else sp.Trace(f) for f in factors if f is not big[0]]
    return sp.MatMul(mul_scalars(plain) if plain else sp.S.One, big[0], evaluate=True)


def matmul(operands: Sequence[sp.Basic], fail: Fail) -> sp.MatrixExpr:
    """The matrix product ``A @ B @ ...``; the inner dimensions must agree."""
    for k, e in enumerate(operands):
        if not is_matrix(e):
            side = "left" if k == 0 else "right"
            fail(f"'@' needs matrices; its {side} operand is a scalar (write '*' to scale a matrix)")
    for a, b in zip(operands, operands[1:]):
        if a.shape[1] != b.shape[0]:
            fail(f"shape mismatch in '@': {shape_text(a)} @ {shape_text(b)}")
    return sp.MatMul(*operands, evaluate=True)


def reciprocal(e: sp.Basic, fail: Fail, scalar_power: Callable[[sp.Expr, sp.Expr], sp.Expr]) -> sp.Basic:
    """``1/e``: of a scalar or 1 x 1 as a scalar, of a vector entrywise; a matrix is refused."""
    if is_matrix(e) and not _unit(e) and not _vector(e):
        fail(f"division by a {shape_text(e)} matrix is not defined (write A @ inverse(B))")
    return power(e, sp.S.NegativeOne, fail, scalar_power)


def power(
    base: sp.Basic, exponent: sp.Basic, fail: Fail, scalar_power: Callable[[sp.Expr, sp.Expr], sp.Expr]
) -> sp.Basic:
    """``base**exponent``: scalar, or entrywise over one vector operand."""
    base = sp.Trace(base) if _unit(base) else base
    exponent = sp.Trace(exponent) if _unit(exponent) else exponent
    if is_matrix(base) and is_matrix(exponent):
        fail(f"'**' of two matrices ({shape_text(base)} and {shape_text(exponent)}) is not supported")
    for e in (base, exponent):
        if is_matrix(e) and not _vector(e):
            fail(
                f"'**' of a {shape_text(e)} matrix is not supported "
                "(write inverse(A) or A @ A; entrywise powers apply to vectors only)"
            )
    if is_matrix(base):
        return entrywise(base, scalar_power(ENTRY, exponent))
    if is_matrix(exponent):
        return entrywise(exponent, scalar_power(base, ENTRY))
    return scalar_power(base, exponent)


def entrywise(v: sp.MatrixExpr, body: sp.Expr) -> sp.MatrixExpr:
    """The vector of ``body`` at each entry of ``v`` (``body`` is an expression in :data:`ENTRY`).

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> p = sp.MatrixSymbol("p", D, 1)
    >>> entrywise(p, sp.log(ENTRY)) == entrywise(p, sp.log(ENTRY))
    True
    """
    return ElementwiseApplyFunction(sp.Lambda(ENTRY, body), v)


def function_of_matrices(name: str, args: Sequence[sp.Basic], fail: Fail, apply: Callable[[list], sp.Expr]):
    """A scalar function ``name`` applied to ``args`` some of which are matrices.

    1 x 1 arguments become scalars; one vector argument makes the function act
    entrywise (``apply`` builds the scalar function, with the parser's guards).
    """
    args = [sp.Trace(a) if _unit(a) else a for a in args]
    big = [a for a in args if is_matrix(a)]
    if not big:
        return apply(args)
    if len(big) > 1:
        fail(f"{name}() of two matrices ({shape_text(big[0])} and {shape_text(big[1])}) is not supported")
    if not _vector(big[0]):
        fail(
            f"{name}() of a {shape_text(big[0])} matrix is not defined "
            "(scalar functions act entrywise on vectors only)"
        )
    return entrywise(big[0], apply([ENTRY if a is big[0] else a for a in args]))


def matrix_function(name: str, arg: sp.Basic, fail: Fail) -> sp.Basic:
    """One of :data:`MATRIX_FUNCTIONS` applied to ``arg``, its shape checked first."""
    need = _NEEDS[name]
    if not is_matrix(arg):
        what = "square matrix" if need == "square" else need
        fail(f"{name}() needs a {what}, got a scalar{_HINTS.get(name, '')}")
    if need == "square" and not _square(arg):
        fail(f"{name}() needs a square matrix, got {shape_text(arg)}")
    if need == "vector" and not _vector(arg):
        fail(f"{name}() needs a vector (D x 1), got {shape_text(arg)}")
    return MATRIX_FUNCTIONS[name](arg)
