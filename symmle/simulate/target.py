"""The target of a generic sampler: a model's density at fixed values.

The generic samplers (:mod:`symmle.simulate.inversion` for continuous
models, :mod:`symmle.simulate.tables` for discrete ones) draw from the
density itself.  They share its evaluation (:class:`Density`: fast for one
float, vectorised for arrays, through the log-density where the direct form
over- or underflows), the numbers made of the values where its mass is
looked for first (:func:`derived`), and the wording of their messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base.numeric import to_function

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = ["Density", "derived", "where", "unuran_message"]


class Density:
    """The density at fixed values, for one float (fast: PINV calls it thousands of times) and arrays.

    Where the direct form over- or underflows (``x**(a-1)*exp(-b*x)`` at
    large ``a``, ``exp(-lam)*lam**k`` at large ``lam``), the value comes from
    the expanded log-density, as in :func:`symmle.model.density.density_function`.
    """

    def __init__(self, model: Model, point: Mapping[sp.Symbol, float]) -> None:
        # a plain real variable: with an integer one SymPy turns loggamma(k + 1) back into
        # log(gamma(k + 1)), which overflows beyond k = 170
        t = sp.Dummy("t", real=True)
        f_expr = model.density.subs(point).subs(model.variable, t)
        self._direct = to_function([t], f_expr)
        # binomial(n, k) and factorial(k) as gamma functions, so that their logs become loggamma
        log_f = sp.expand_log(sp.log(f_expr.rewrite(sp.gamma)), force=True)
        self._logged = to_function([t], log_f)
        #: the size of what cancels in log f: its rounding error is about eps times this
        size = sp.Add(*(sp.Abs(term) for term in sp.Add.make_args(log_f)))
        self._log_size = to_function([t], size)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The density at each ``x``, as computed (possibly negative or NaN: for checks)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        with np.errstate(all="ignore"):
            v = np.real(np.asarray(self._direct(x))).astype(float) * np.ones_like(x)
            bad = ~np.isfinite(v) | (v == 0)  # overflow, or underflow of a factor (exp(-700)*700**k)
            if bad.any():
                logged = np.real(np.asarray(self._logged(x[bad]))).astype(float)
                v[bad] = np.exp(logged * np.ones_like(x[bad]))
        return v

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The density at each ``x``; 0 where it is not a finite non-negative number."""
        v = self.raw(x)
        return np.where(np.isfinite(v) & (v > 0), v, 0.0)

    def rounding(self, x: float) -> float:
        """Relative rounding error to expect in the density at ``x``."""
        with np.errstate(all="ignore"):
            size = float(np.real(self._log_size(x)))
        return np.finfo(float).eps * (size if math.isfinite(size) else 1.0)

    def at(self, x: float) -> float:
        """The density at one float; 0 where it is not finite (a pole: PINV needs a bounded pdf)."""
        try:  # plain floats: several times faster than arrays
            v = float(self._direct(x))
        except (ArithmeticError, ValueError, TypeError):  # 0.0**-1.5 raises on Python floats
            v = math.nan
        if not (math.isfinite(v) and v > 0):
            try:
                v = math.exp(float(self._logged(x)))
            except (ArithmeticError, ValueError, TypeError):
                v = math.nan
        return v if math.isfinite(v) and v > 0 else 0.0


def derived(vals: Mapping[str, float]) -> np.ndarray:
    """Numbers made of the values where a distribution's mass often sits.

    They are ``v``, ``|v|``, ``1/v``, ``sqrt(v)``, ``v*w`` and ``v/w`` for
    the values ``v``, ``w``: a location is often a value, a ratio or a
    product of values (``mu``, ``a/b``, ``n*p``).
    """
    signed = np.array([a for a in vals.values() if math.isfinite(a)], dtype=float)
    v = np.abs(signed[signed != 0])
    products = [np.outer(v, v).ravel(), np.divide.outer(v, v).ravel()]
    return np.concatenate([signed, v, 1 / v, np.sqrt(v), *products])


def where(vals: Mapping[str, float]) -> str:
    """The values as ``name=value, ...``, for messages."""
    return ", ".join(f"{k}={v:g}" for k, v in vals.items())


def unuran_message(exc: Any) -> str:
    """The first line of a UNU.RAN error or warning, without its object prefix."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.split("] ", 1)[-1]  # drop UNU.RAN's "[objid: PINV.003] 51 :" prefix
