"""Formulas evaluated at given numbers, in 30 digits, without generating code.

:func:`value` walks a SymPy expression and computes it with :mod:`mpmath`
(which SymPy itself uses for numbers), one node at a time.  It is what the
re-verification of a cached derivation (:mod:`symmle.symbolic.recheck`)
evaluates dozens of small formulas with: substituting numbers into a SymPy
expression rebuilds and re-simplifies it (milliseconds per formula), and
compiling it with ``lambdify`` generates and compiles Python source (tens of
milliseconds), while a walk costs microseconds per node.  A class it does
not know is refused (:class:`NotEvaluable`), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mpmath
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

__all__ = ["DIGITS", "NotEvaluable", "evaluate", "value", "number"]

#: Digits of the arithmetic.
DIGITS = 30

mp = mpmath.mp


class NotEvaluable(ValueError):
    """An expression holds a symbol without a value, or a class :func:`value` does not know."""


def _heaviside(z, h0=None):
    z = _real_part(z)
    if z == 0:
        return mpmath.mpf(0.5) if h0 is None else h0
    return mpmath.mpf(1) if z > 0 else mpmath.mpf(0)


def _dirac(z, k=0):
    return mpmath.inf if _real_part(z) == 0 else mpmath.mpf(0)


def _real_part(z):
    if isinstance(z, mpmath.mpc):
        if z.imag != 0:
            raise NotEvaluable("a comparison of complex numbers")
        return z.real
    return z


#: One- and several-argument functions, SymPy class -> mpmath function.
FUNCTIONS: Mapping[type, Callable[..., Any]] = {
    sp.exp: mpmath.exp,
    sp.log: mpmath.log,
    sp.Abs: abs,
    sp.sign: mpmath.sign,
    sp.re: mpmath.re,
    sp.im: mpmath.im,
    sp.arg: mpmath.arg,
    sp.floor: lambda z: mpmath.floor(_real_part(z)),
    sp.ceiling: lambda z: mpmath.ceil(_real_part(z)),
    sp.gamma: mpmath.gamma,
    sp.loggamma: mpmath.loggamma,
    sp.lowergamma: lambda s, z: mpmath.gammainc(s, 0, z),
    sp.uppergamma: lambda s, z: mpmath.gammainc(s, z),
    sp.factorial: mpmath.factorial,
    sp.factorial2: mpmath.fac2,
    sp.binomial: mpmath.binomial,
    sp.beta: mpmath.beta,
    sp.digamma: mpmath.digamma,
    sp.trigamma: lambda z: mpmath.psi(1, z),
    sp.polygamma: lambda n, z: mpmath.psi(n, z),
    sp.zeta: lambda s, a=1: mpmath.zeta(s, a),
    sp.erf: mpmath.erf,
    sp.erfc: mpmath.erfc,
    sp.erfi: mpmath.erfi,
    sp.Ei: mpmath.ei,
    sp.expint: mpmath.expint,
    sp.LambertW: lambda z, k=0: mpmath.lambertw(z, int(k)),
    sp.sin: mpmath.sin,
    sp.cos: mpmath.cos,
    sp.tan: mpmath.tan,
    sp.cot: mpmath.cot,
    sp.sec: mpmath.sec,
    sp.csc: mpmath.csc,
    sp.asin: mpmath.asin,
    sp.acos: mpmath.acos,
    sp.atan: mpmath.atan,
    sp.atan2: lambda y, x: mpmath.atan2(_real_part(y), _real_part(x)),
    sp.sinh: mpmath.sinh,
    sp.cosh: mpmath.cosh,
    sp.tanh: mpmath.tanh,
    sp.asinh: mpmath.asinh,
    sp.acosh: mpmath.acosh,
    sp.atanh: mpmath.atanh,
    sp.besseli: mpmath.besseli,
    sp.besselk: mpmath.besselk,
    sp.besselj: mpmath.besselj,
    sp.bessely: mpmath.bessely,
    sp.Heaviside: _heaviside,
    sp.DiracDelta: _dirac,
    sp.Min: lambda *a: min(_real_part(v) for v in a),
    sp.Max: lambda *a: max(_real_part(v) for v in a),
}

_COMPARE = {
    sp.Equality: lambda a, b: a == b,
    sp.Unequality: lambda a, b: a != b,
    sp.StrictLessThan: lambda a, b: _real_part(a) < _real_part(b),
    sp.LessThan: lambda a, b: _real_part(a) <= _real_part(b),
    sp.StrictGreaterThan: lambda a, b: _real_part(a) > _real_part(b),
    sp.GreaterThan: lambda a, b: _real_part(a) >= _real_part(b),
}


class _Walk:
    """One evaluation: the values of the symbols, the data of sums, and a memo of nodes."""

    def __init__(
        self, env: Mapping[sp.Basic, Any], data: Sequence[Any] = (), term: sp.Basic | None = None
    ) -> None:
        self.env = env
        self.data = data
        self.term = term  # the summand's observation x[i], if sums are to be taken over data
        self.memo: dict[sp.Basic, Any] = {}

    def __call__(self, e: sp.Basic) -> Any:
        try:
            return self.memo[e]
        except KeyError:
            pass
        out = self._node(e)
        self.memo[e] = out
        return out

    def _node(self, e: sp.Basic) -> Any:
        if e in self.env:
            return self.env[e]
        if e.is_Number or e.is_NumberSymbol:
            if e is sp.nan or e is sp.zoo:
                return mpmath.nan
            if e is sp.oo:
                return mpmath.inf
            if e is sp.S.NegativeInfinity:
                return -mpmath.inf
            return e._to_mpmath(mp.prec)
        if e is sp.I:
            return mpmath.mpc(0, 1)
        if e is sp.true or e is sp.false:
            return bool(e)
        if e.is_Add:
            out = mpmath.mpf(0)
            for a in e.args:
                out += self(a)
            return out
        if e.is_Mul:
            out = mpmath.mpf(1)
            for a in e.args:
                out *= self(a)
            return out
        if e.is_Pow:
            base, exp = self(e.args[0]), self(e.args[1])
            if base == 0 and _real_part(exp) < 0:
                return mpmath.inf
            return mpmath.power(base, exp)
        if isinstance(e, sp.Sum):
            return self._sum(e)
        if isinstance(e, sp.Piecewise):
            for pair in e.args:
                if self(pair.cond):
                    return self(pair.expr)
            return mpmath.nan
        if isinstance(e, ExprCondPair):
            raise NotEvaluable("a Piecewise pair outside a Piecewise")
        cls = type(e)
        compare = _COMPARE.get(cls)
        if compare is not None:
            return compare(self(e.args[0]), self(e.args[1]))
        if isinstance(e, sp.And):
            return all(self(a) for a in e.args)
        if isinstance(e, sp.Or):
            return any(self(a) for a in e.args)
        if isinstance(e, sp.Not):
            return not self(e.args[0])
        fn = FUNCTIONS.get(cls)
        if fn is None:
            if e.is_Symbol or e.free_symbols == set() and not e.args:
                raise NotEvaluable(f"no value for {e}")
            raise NotEvaluable(f"cannot evaluate {cls.__name__}")
        return fn(*[self(a) for a in e.args])

    def _sum(self, e: sp.Sum) -> Any:
        if self.term is None or len(e.limits) != 1:
            raise NotEvaluable(f"a sum without data: {e}")
        total = mpmath.mpf(0)
        for v in self.data:
            total += _Walk({**self.env, self.term: v})(e.function)
        return total


def evaluate(
    expr: sp.Basic, env: Mapping[sp.Basic, Any], data: Sequence[Any] = (), term: sp.Basic | None = None
) -> Any:
    """``expr`` at the numbers of ``env`` as an mpmath number, in :data:`DIGITS` digits or more.

    As :func:`value`, but the result stays an mpmath number, for arithmetic
    that needs the digits (differences of nearby values).  The precision is
    the caller's mpmath precision when that is higher (``mpmath.diff``
    raises it).

    Raises
    ------
    NotEvaluable
        If a symbol has no value or a class is unknown.
    """
    with mpmath.workdps(max(DIGITS, mp.dps)):
        env = {k: number(v) for k, v in env.items()}
        data = [number(v) for v in data]
        try:
            out = _Walk(env, data, term)(sp.sympify(expr))
        except (ZeroDivisionError, ValueError, OverflowError) as exc:
            if isinstance(exc, NotEvaluable):
                raise
            return mpmath.nan
    if isinstance(out, bool):
        raise NotEvaluable("a condition where a number was expected")
    return out


def value(
    expr: sp.Basic, env: Mapping[sp.Basic, Any], data: Sequence[Any] = (), term: sp.Basic | None = None
) -> complex:
    """``expr`` at the numbers of ``env``, as a complex number (``nan`` where undefined).

    Parameters
    ----------
    expr : Expr
    env : mapping
        A number (int, float or mpmath number) for every symbol, order
        statistic or other atom without a value of its own.
    data, term : optional
        For sums over the sample: its values, and the summand's
        observation (``x[i]``) that takes them in turn.

    Raises
    ------
    NotEvaluable
        If a symbol has no value or a class is unknown.

    Examples
    --------
    >>> x, y = sp.symbols("x y", positive=True)
    >>> value(sp.log(x) + sp.gamma(y) / 2, {x: 1, y: 3})
    (1+0j)
    >>> value(sp.log(-x), {x: 1})
    3.141592653589793j
    """
    out = evaluate(expr, env, data, term)
    try:
        return complex(out)
    except (TypeError, OverflowError):
        return complex(math.nan, 0.0)


def number(v: Any) -> Any:
    """A value for :func:`value`'s ``env``: mpmath numbers, with integers kept exact."""
    if type(v) is mpmath.mpf or type(v) is mpmath.mpc:
        return v
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 2**53):
        return mpmath.mpf(int(v))
    if isinstance(v, complex):
        return mpmath.mpc(v.real, v.imag)
    return mpmath.mpf(float(v))
