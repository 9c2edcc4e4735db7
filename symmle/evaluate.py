"""Numeric evaluation of derived expressions on concrete data.

Derived expressions mix parameters, constants, ``N``, the statistics
``T_j`` and, where the log-density does not separate, explicit sums over
the sample.  :class:`SampleEvaluator` evaluates such expressions on one data
set; it is how every symbolic result is checked against numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy as sp

from symmle.likelihood import Likelihood
from symmle.numeric import to_function

__all__ = ["SampleEvaluator", "verification_datasets", "stress_datasets"]


class SampleEvaluator:
    """Evaluate expressions of a likelihood on one data set.

    Parameters
    ----------
    lik : Likelihood
    data : ndarray
        Observations inside the support.
    constants : mapping
        Values of the model's constants.
    """

    def __init__(self, lik: Likelihood, data: np.ndarray, constants: Mapping[sp.Symbol, float]) -> None:
        self.lik = lik
        self.data = np.asarray(data, dtype=float)
        self.constants = dict(constants)
        self.stats = lik.statistic_values(self.data, self.constants)

    def __call__(self, expr: sp.Expr, params: Mapping[sp.Symbol, float]) -> float:
        """Value of ``expr`` at parameter values ``params`` (complex parts -> nan)."""
        lik = self.lik
        expr = sp.sympify(expr).subs(self.constants)
        values = {**self.stats, **{k: float(v) for k, v in params.items()}}
        sums = list(expr.atoms(sp.Sum))
        dummies = []
        for s in sums:
            d = sp.Dummy("S")
            summand = s.function.subs(lik.sample[lik.index], lik.model.variable).subs(self.constants)
            f = to_function([lik.model.variable, *params], summand)
            with np.errstate(all="ignore"):
                values[d] = float(np.sum(np.asarray(f(self.data, *[values[p] for p in params]), dtype=float) * np.ones_like(self.data)))
            dummies.append(d)
        expr = expr.subs(dict(zip(sums, dummies)))
        # order statistics are functions of the variable: give them dummies too
        order = {o: sp.Dummy(str(o.func)) for o in lik.order_statistics if expr.has(o)}
        for o, d in order.items():
            values[d] = values[o]
        expr = expr.subs(order)
        syms = sorted(expr.free_symbols, key=lambda s: s.name)
        missing = [s for s in syms if s not in values]
        if missing:
            raise KeyError(f"no value for {missing}")
        fn = to_function(syms, expr)
        with np.errstate(all="ignore"):
            out = complex(fn(*[values[s] for s in syms]))
        return out.real if abs(out.imag) <= 1e-12 * max(1.0, abs(out.real)) else float("nan")


def verification_datasets(lik: Likelihood, constants: Mapping[sp.Symbol, float], point: Mapping[sp.Symbol, float], count: int = 3, size: int = 15) -> list[np.ndarray]:
    """Small, varied data sets inside the support at ``point``.

    They need not come from the model: any data inside the support gives
    admissible values of the statistics, which is all the checks need.
    """
    model = lik.model
    lo, hi = model.support_at({**point, **constants})
    rng = np.random.default_rng(20261124)
    out = []
    while len(out) < count:
        if model.discrete:
            span = hi - lo if np.isfinite(hi) else 6
            draws = lo + np.minimum(rng.poisson(max(span, 1) / 2.5, size), span)
            # an interior MLE needs some spread and not every value at an end
            if len(set(draws)) < 2 or (np.isfinite(hi) and (np.all(draws >= hi - 0) or np.all(draws <= lo))):
                continue
        elif np.isfinite(lo) and np.isfinite(hi):
            draws = lo + (hi - lo) * rng.beta(2.0, 2.0, size)
        elif np.isfinite(lo):
            draws = lo + rng.gamma(2.0, 0.7, size)
        elif np.isfinite(hi):
            draws = hi - rng.gamma(2.0, 0.7, size)
        else:
            draws = rng.normal(0.5, 1.3, size)
        out.append(np.asarray(draws, dtype=float))
    return out


def stress_datasets(lik: Likelihood, constants: Mapping[sp.Symbol, float], point: Mapping[sp.Symbol, float], size: int = 15) -> list[np.ndarray]:
    """Data sets crowded near an end of the support, or far from the origin.

    A closed-form root must stay in its parameter's domain for every
    admissible data set, not only for benign ones: a normal mean declared
    non-negative, estimated by the sample mean, leaves its domain on data
    with a negative mean.  These data sets probe such cases; each still has
    some spread and is not piled on one end, so a regular MLE exists.
    """
    model = lik.model
    lo, hi = model.support_at({**point, **constants})
    rng = np.random.default_rng(1124)
    if model.discrete:
        top = hi if np.isfinite(hi) else lo + 60
        base = [np.r_[np.full(size - 1, lo), lo + 1], np.r_[np.full(size - 1, top), top - 1], lo + rng.poisson(30.0, size)]
        out = [np.clip(b, lo, top) for b in base]
    elif np.isfinite(lo) and np.isfinite(hi):
        out = [lo + (hi - lo) * rng.beta(0.3, 6.0, size), lo + (hi - lo) * rng.beta(6.0, 0.3, size)]
    elif np.isfinite(lo):
        out = [lo + rng.gamma(0.5, 0.01, size), lo + rng.gamma(4.0, 50.0, size)]
    elif np.isfinite(hi):
        out = [hi - rng.gamma(0.5, 0.01, size), hi - rng.gamma(4.0, 50.0, size)]
    else:
        out = [rng.normal(-40.0, 1.0, size), rng.normal(40.0, 1.0, size), rng.normal(0.0, 0.01, size)]
    return [np.asarray(d, dtype=float) for d in out if len(set(np.asarray(d).tolist())) > 1]
