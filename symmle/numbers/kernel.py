r"""A closed form evaluated into a buffer, one NumPy ufunc call at a time, with no temporaries.

The parametric bootstrap of ``gof`` evaluates the same few closed forms (the quantile function, the
distribution and survival functions) on blocks of 10^5 values.  ``lambdify``'s code makes a fresh
array for every operation; arrays of a few megabytes come from ``mmap`` and are given back on
release, so each operation pays the page faults of new memory, which costs several times the
arithmetic.  A :class:`Kernel` walks the expression once and evaluates it into a caller's buffer
with ``out=`` (a second buffer per nested operand, taken from a small pool and reused), the
parameters' sub-expressions (a column per row, or a number) by ``lambdify`` as they are cheap.

Any operation it does not know (a function outside :data:`UFUNCS`, a power with a data-dependent
base and exponent of unknown sign) leaves the whole expression to ``lambdify``; and the first
evaluation is compared with ``lambdify``'s answer, a kernel that disagrees (beyond a relative
1e-12) not being used again.  So the kernel changes only the speed, never the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp
from scipy import special
from sympy.codegen.cfunctions import expm1, log1p

from symmle.base.numeric import _stable, to_function

__all__ = ["Kernel", "UFUNCS"]

#: SymPy functions of one argument and the ufuncs that evaluate them in place.
UFUNCS: dict[Any, Any] = {
    sp.exp: np.exp,
    sp.log: np.log,
    expm1: np.expm1,
    log1p: np.log1p,
    sp.Abs: np.abs,
    sp.sin: np.sin,
    sp.cos: np.cos,
    sp.tan: np.tan,
    sp.atan: np.arctan,
    sp.asin: np.arcsin,
    sp.acos: np.arccos,
    sp.sinh: np.sinh,
    sp.cosh: np.cosh,
    sp.tanh: np.tanh,
    sp.asinh: np.arcsinh,
    sp.atanh: np.arctanh,
    sp.erf: special.erf,
    sp.erfc: special.erfc,
    sp.erfinv: special.erfinv,
    sp.erfcinv: special.erfcinv,
}
#: Agreement with lambdify required at the first evaluation.
CHECK_RTOL = 1e-12


class _Unsupported(Exception):
    pass


class Kernel:
    """``expr(x, *params)`` written into ``out``: ``x`` an array, each parameter a number or a column.

    Examples
    --------
    >>> x, lam = sp.symbols("x lam", positive=True)
    >>> k = Kernel([x, lam], 1 - sp.exp(-lam * x))
    >>> out = np.empty((2, 3))
    >>> data = np.array([[0.5, 1.0, 2.0], [0.5, 1.0, 2.0]])
    >>> _ = k(out, data, np.array([[1.0], [2.0]]))
    >>> np.allclose(out, 1 - np.exp(-np.array([[1.0], [2.0]]) * data)), k.in_place
    (True, True)
    """

    def __init__(self, args: Sequence[sp.Symbol], expr: sp.Expr) -> None:
        self.args = list(args)
        self.x = self.args[0]
        self.params = self.args[1:]
        self.expr = _stable(sp.sympify(expr))
        self.fallback = to_function(self.args, expr)
        self._consts: dict[sp.Basic, Any] = {}
        self._pool: list[np.ndarray] = []
        self._varies: dict[sp.Basic, bool] = {}
        self.checked = False
        try:
            self._prepare(self.expr)
            self.in_place = True
        except (_Unsupported, TypeError, ValueError):
            self.in_place = False

    # ------------------------------------------------------------------ compile time
    def _prepare(self, e: sp.Basic) -> None:
        """Compile every parameter-only sub-expression; refuse what cannot run in place."""
        if self.x not in e.free_symbols:
            if e not in self._consts:
                self._consts[e] = to_function(self.params, e) if e.free_symbols else float(e)
            return
        if e == self.x:
            return
        if isinstance(e, (sp.Add, sp.Mul)):
            fixed = [a for a in e.args if self.x not in a.free_symbols]
            if fixed:
                self._prepare(e.func(*fixed))
            for a in e.args:
                if self.x in a.free_symbols:
                    self._prepare(a)
            return
        if isinstance(e, sp.Pow):
            self._prepare(e.base)
            self._prepare(e.exp)
            return
        if e.func in UFUNCS and len(e.args) == 1:
            self._prepare(e.args[0])
            return
        raise _Unsupported(str(e.func))

    # ------------------------------------------------------------------ run time
    def __call__(self, out: np.ndarray, x: np.ndarray, *params: Any) -> np.ndarray:
        """Write the value into ``out`` (shape of ``x``) and return it."""
        if not self.in_place:
            np.copyto(out, self.fallback(x, *params))
            return out
        values = dict(zip(self.params, params))
        with np.errstate(all="ignore"):
            self._eval(self.expr, out, x, values)
            if not self.checked:
                want = np.asarray(self.fallback(x, *params), dtype=float) * np.ones_like(out)
                same = np.isclose(out, want, rtol=CHECK_RTOL, atol=0, equal_nan=True)
                self.checked = True
                if not np.all(same):
                    self.in_place = False
                    np.copyto(out, want)
        return out

    def _const(self, e: sp.Basic, values: dict[sp.Symbol, Any]) -> Any:
        c = self._consts[e]
        if callable(c):
            return c(*[values[p] for p in self.params])
        return c

    def _take(self, like: np.ndarray) -> np.ndarray:
        while self._pool:
            b = self._pool.pop()
            if b.shape == like.shape:
                return b
        return np.empty(like.shape)

    def _has_x(self, e: sp.Basic) -> bool:
        h = self._varies.get(e)
        if h is None:
            h = self._varies[e] = self.x in e.free_symbols
        return h

    def _source(
        self, e: sp.Basic, out: np.ndarray, x: np.ndarray, values: dict[sp.Symbol, Any]
    ) -> np.ndarray:
        """``x`` itself if ``e`` is the variable (no copy), else ``e`` evaluated into ``out``."""
        if e == self.x:
            return x
        self._eval(e, out, x, values)
        return out

    def _eval(self, e: sp.Basic, out: np.ndarray, x: np.ndarray, values: dict[sp.Symbol, Any]) -> None:
        if not self._has_x(e):
            np.copyto(out, self._const(e, values))
            return
        if e == self.x:
            np.copyto(out, x)
            return
        if isinstance(e, (sp.Add, sp.Mul)):
            ufunc = np.add if isinstance(e, sp.Add) else np.multiply
            fixed = [a for a in e.args if not self._has_x(a)]
            varying = [a for a in e.args if self._has_x(a)]
            src = self._source(varying[0], out, x, values)
            for a in varying[1:]:
                if a == self.x:
                    ufunc(src, x, out=out)
                else:
                    tmp = self._take(out)
                    self._eval(a, tmp, x, values)
                    ufunc(src, tmp, out=out)
                    self._pool.append(tmp)
                src = out
            if fixed:
                ufunc(src, self._const(e.func(*fixed), values), out=out)
            elif src is not out:
                np.copyto(out, src)
            return
        if isinstance(e, sp.Pow):
            base, ex = e.base, e.exp
            if not self._has_x(ex):
                src = self._source(base, out, x, values)
                if ex == 2:
                    np.square(src, out=out)
                elif ex == sp.Rational(1, 2):
                    np.sqrt(src, out=out)
                elif ex == -1:
                    np.divide(1.0, src, out=out)
                elif ex == sp.Rational(-1, 2):
                    np.sqrt(src, out=out)
                    np.divide(1.0, out, out=out)
                else:
                    np.power(src, self._const(ex, values), out=out)
                return
            if not self._has_x(base):
                src = self._source(ex, out, x, values)
                np.power(self._const(base, values), src, out=out)
                return
            tmp = self._take(out)
            self._eval(ex, tmp, x, values)
            src = self._source(base, out, x, values)
            np.power(src, tmp, out=out)
            self._pool.append(tmp)
            return
        UFUNCS[e.func](self._source(e.args[0], out, x, values), out=out)
