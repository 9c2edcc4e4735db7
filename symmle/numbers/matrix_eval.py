"""Numbers from matrix expressions: a NumPy evaluator of what the vector derivation writes.

The vector pipeline's results are SymPy matrix expressions at symbolic
dimension (``MatMul``, ``Inverse``, ``Determinant``, ``Trace``, entrywise
functions, Kronecker products, duplication matrices).  SymPy's own printers
do not know all of them (``lambdify`` refuses ``Determinant``), and writing
them out at a concrete D as SymPy matrices is slow (a symbolic 20 x 20
determinant).  This module walks the expression once and computes each node
with NumPy/SciPy at the dimension the data have: ``solve`` and ``slogdet``
for inverses and log-determinants (never an explicit inverse where a
solve will do), vectorised scalar functions for entrywise nodes.

Only the node types in :data:`NODES` are evaluated; anything else raises
``ValueError`` naming it, so an unknown form is never guessed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.kronecker import KroneckerProduct

from symmle.base.numeric import to_function

__all__ = ["evaluate", "duplication"]


def duplication(n: int) -> np.ndarray:
    """The duplication matrix: ``vec(S) = D vech(S)`` for symmetric ``S`` (vech order: column by column)."""
    pairs = [(i, j) for j in range(n) for i in range(j, n)]
    out = np.zeros((n * n, len(pairs)))
    for k, (i, j) in enumerate(pairs):
        out[i + j * n, k] = 1.0
        out[j + i * n, k] = 1.0
    return out


@functools.lru_cache(maxsize=512)
def _scalar_function(fn: sp.Lambda):
    (var,) = fn.variables
    f = to_function([var], fn.expr)
    return lambda a: np.asarray(f(a), dtype=float)


@functools.lru_cache(maxsize=512)
def _compiled(names: tuple, body: sp.Expr):
    """``to_function`` of a scalar body, kept: a batch of rows is evaluated block after block."""
    return to_function(list(names), body)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for matrices or stacks of them, through one BLAS product where a side is one matrix."""
    if a.ndim == 2 and b.ndim == 2:
        return a @ b
    if a.ndim == 3 and b.ndim == 2:  # a stack times one matrix: one (B r) x c product
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[0], a.shape[1], b.shape[1])
    if a.ndim == 2 and b.ndim == 3:  # one matrix times a stack: transpose both
        return _matmul(np.swapaxes(b, -1, -2), a.T).swapaxes(-1, -2)
    return np.einsum("bij,bjk->bik", a, b)


def evaluate(expr: sp.Basic, env: Mapping[Any, Any]) -> Any:
    """The value of ``expr`` with NumPy: matrices as 2-D arrays, scalars as floats.

    ``env`` maps each symbol (``MatrixSymbol``, ``Symbol``, the dimension) to its value; a
    column is a ``(D, 1)`` array.  A batch of B columns, a ``(B, D, 1)`` array (rows of data),
    evaluates the expression once per column: matrices become stacks ``(B, r, c)`` and scalars
    arrays of shape ``(B,)`` (NumPy's stacked ``matmul``, ``slogdet``, ``trace``).

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> S, m = sp.MatrixSymbol("S", D, D), sp.MatrixSymbol("m", D, 1)
    >>> env = {D: 2, S: np.diag([2.0, 4.0]), m: np.array([[1.0], [2.0]])}
    >>> float(evaluate(sp.Trace(m.T * S.I * m) + sp.log(sp.Determinant(S)), env))   # 1/2 + 1 + log 8
    3.5794415416798357
    """
    cache: dict = {}

    def ev(e: sp.Basic) -> Any:
        if e in cache:
            return cache[e]
        v = _node(e, ev, env)
        cache[e] = v
        return v

    return ev(sp.sympify(expr))


def _node(e: sp.Basic, ev, env: Mapping[Any, Any]) -> Any:  # noqa: C901 - one case per node type
    if e in env:
        v = env[e]
        return np.asarray(v, dtype=float) if isinstance(e, sp.MatrixSymbol) else v
    if e.is_Number:
        return float(e)
    if isinstance(e, sp.NumberSymbol):
        return float(e)
    if isinstance(e, sp.MatrixSymbol) or (isinstance(e, sp.Symbol) and e not in env):
        raise ValueError(f"no value for {e}")
    if isinstance(e, sp.Identity):
        return np.eye(int(ev(e.shape[0])))
    if isinstance(e, sp.ZeroMatrix):
        return np.zeros((int(ev(e.shape[0])), int(ev(e.shape[1]))))
    if isinstance(e, sp.OneMatrix):
        return np.ones((int(ev(e.shape[0])), int(ev(e.shape[1]))))
    if type(e).__name__ == "DuplicationMatrix":
        return duplication(int(ev(e.args[0])))
    if isinstance(e, sp.MatAdd):
        return sum((_as_array(ev(a)) for a in e.args[1:]), _as_array(ev(e.args[0])))
    if isinstance(e, sp.MatMul):
        out: Any = 1.0
        for a in e.args:
            v = ev(a)
            if np.ndim(v) <= 1 or np.ndim(out) <= 1:
                out = _times(out, v)
            else:
                out = _matmul(out, v)
        return out
    if isinstance(e, sp.Transpose):
        return np.swapaxes(_as_array(ev(e.arg)), -1, -2)
    if isinstance(e, sp.Inverse):
        return np.linalg.inv(_as_array(ev(e.arg)))
    if isinstance(e, sp.MatPow):
        base = _as_array(ev(e.base))
        k = int(e.exp)
        return np.linalg.matrix_power(base, k) if k >= 0 else np.linalg.matrix_power(np.linalg.inv(base), -k)
    if isinstance(e, sp.Trace):
        return _scalar(np.trace(_as_array(ev(e.arg)), axis1=-2, axis2=-1))
    if isinstance(e, sp.Determinant):
        return _scalar(np.linalg.det(_as_array(ev(e.arg))))
    if isinstance(e, sp.log) and isinstance(e.args[0], sp.Determinant):
        sign, logdet = np.linalg.slogdet(_as_array(ev(e.args[0].arg)))
        return _scalar(np.where(sign > 0, logdet, np.nan))
    if isinstance(e, KroneckerProduct):
        out = _as_array(ev(e.args[0]))
        for a in e.args[1:]:
            out = np.kron(out, _as_array(ev(a)))
        return out
    if isinstance(e, ElementwiseApplyFunction):
        return _scalar_function(e.function)(_as_array(ev(e.expr)))
    if isinstance(e, DiagMatrix):
        return np.diag(_as_array(ev(e.args[0])).reshape(-1))
    if isinstance(e, DiagonalOf):
        return np.diag(_as_array(ev(e.args[0]))).reshape(-1, 1)
    if isinstance(e, sp.MatrixBase):
        return np.array([[float(ev(c)) for c in row] for row in e.tolist()])
    if isinstance(e, (sp.BlockMatrix,)):
        return np.block([[_as_array(ev(b)) for b in row] for row in e.blocks.tolist()])
    if isinstance(e, sp.Expr) and not e.is_Matrix:
        # a scalar expression: its matrix sub-expressions become numbers, the rest is SymPy's
        atoms = [a for a in sp.preorder_traversal(e) if _matrix_leaf(a)]
        outer = sorted(_outermost(atoms), key=sp.default_sort_key)
        stand = {a: sp.Symbol(f"_matrix_value_{k}") for k, a in enumerate(outer)}
        body = e.xreplace(stand)
        names = sorted(body.free_symbols, key=str)
        f = _compiled(tuple(names), body)
        values = {d: ev(a) for a, d in stand.items()}
        return _scalar(f(*[values[s] if s in values else _scalar_env(s, env) for s in names]))
    raise ValueError(f"symmle cannot evaluate {type(e).__name__} numerically")


def _matrix_leaf(a: sp.Basic) -> bool:
    return isinstance(a, (sp.Trace, sp.Determinant)) or (
        isinstance(a, sp.log) and isinstance(a.args[0], sp.Determinant)
    )


def _outermost(atoms: list) -> list:
    out = []
    for a in atoms:
        if not any(a is not b and b.has(a) for b in atoms):
            out.append(a)
    return out


def _scalar_env(s: sp.Symbol, env: Mapping[Any, Any]) -> float:
    if s in env:
        return float(env[s])
    raise ValueError(f"no value for {s}")


def _scalar(v: Any) -> Any:
    """A float, or an array of one value per observation (a batch of columns)."""
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a


def _times(a: Any, b: Any) -> Any:
    """A product with a scalar or a batch of scalars (shape (B,)) broadcast over matrices."""
    if np.ndim(a) == 1 and np.ndim(b) >= 2:
        a = np.asarray(a)[:, None, None]
    if np.ndim(b) == 1 and np.ndim(a) >= 2:
        b = np.asarray(b)[:, None, None]
    return a * b


def _as_array(v: Any) -> np.ndarray:
    """A matrix (or a stack of them); a scalar as 1 x 1, a batch of scalars as a stack of 1 x 1."""
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a[:, None, None]
    return a
