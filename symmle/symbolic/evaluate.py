"""Numeric evaluation of derived expressions on concrete data.

Derived expressions mix parameters, constants, ``N``, the statistics
``T_j`` and, where the log-density does not separate, explicit sums over
the sample.  :class:`SampleEvaluator` evaluates such expressions on one data
set; it is how every symbolic result is checked against numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base import _runtime
from symmle.base.numeric import to_function
from symmle.symbolic.likelihood import Likelihood, quantile_name, quantile_parts

__all__ = [
    "Formula",
    "SampleEvaluator",
    "by_name",
    "quantiles_in",
    "verification_datasets",
    "stress_datasets",
]


def quantiles_in(expr: sp.Expr) -> list[sp.Expr]:
    """The sample quantiles (``Median(x)``...) in ``expr``, in a fixed order."""
    found = {a for a in sp.sympify(expr).atoms(sp.Function) if quantile_parts(a) is not None}
    return sorted(found, key=sp.default_sort_key)


@dataclass(frozen=True)
class Formula:
    """An expression ready for numeric code: plain names, sums over the data split out.

    ``outer`` is an expression in identifier-named symbols (``N``, ``T1``,
    ``U0_2``, parameters, constants, ``_xmin``/``_xmax`` for the order
    statistics, ``_xmed``... for sample quantiles (see
    :func:`~symmle.symbolic.likelihood.quantile_name`), ``_s0``... for the
    sums); each sum is ``(name, summand)`` with the summand a function of the
    model variable.
    """

    outer: sp.Expr
    sums: tuple[tuple[str, sp.Expr], ...]
    variable: sp.Symbol

    @classmethod
    def of(cls, expr: sp.Expr, lik: Likelihood) -> Formula:
        expr = sp.sympify(expr)
        var = lik.model.variable
        # sample quantiles (Median(x)) are values read by name, inside sums too
        expr = expr.xreplace({q: sp.Symbol(quantile_name(q, var)) for q in quantiles_in(expr)})
        subs: dict[sp.Basic, sp.Symbol] = {}
        sums = []
        for k, s in enumerate(sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)):
            name = f"_s{k}"
            sums.append((name, s.function.subs(lik.sample[lik.index], var)))
            subs[s] = sp.Symbol(name)
        lo, hi = lik.order_statistics
        subs[lo], subs[hi] = sp.Symbol("_xmin"), sp.Symbol("_xmax")
        return cls(expr.subs(subs), tuple(sums), var)

    def args(self) -> list[str]:
        """Names the outer expression reads, sorted."""
        return sorted({s.name for s in self.outer.free_symbols})

    def compile(self) -> Callable[[Mapping[str, float], np.ndarray], float]:
        """``fn(values, data) -> float``: sums reduced over the data, then the outer expression."""
        names = self.args()
        syms = by_name(self.outer)
        outer = to_function([syms[n] for n in names], self.outer)
        sums = []
        for name, summand in self.sums:
            snames = sorted({s.name for s in summand.free_symbols} - {self.variable.name})
            ssyms = by_name(summand)
            sums.append((name, snames, to_function([self.variable, *[ssyms[n] for n in snames]], summand)))

        def fn(values: Mapping[str, float], data: np.ndarray) -> float:
            v = dict(values) if sums else values
            for name, snames, f in sums:
                a = [v[n] for n in snames]
                v[name] = _runtime.sum_over(lambda c, f=f, a=a: f(c, *a), data)
            try:
                with np.errstate(all="ignore"):
                    r = outer(*[v[n] for n in names])
            except (OverflowError, ZeroDivisionError, ValueError):
                return float("nan")  # Python-float arithmetic raises where NumPy gives inf/nan
            if np.ndim(r):
                return np.real(r)  # arrays in, arrays out
            z = complex(r)
            return z.real if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real)) else float("nan")

        return fn


def by_name(expr: sp.Expr) -> dict[str, sp.Symbol]:
    """The free symbols of ``expr`` by name."""
    return {s.name: s for s in expr.free_symbols}


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
        stats = lik.statistic_values(self.data, self.constants)
        lo, hi = lik.order_statistics
        names = {lo: "_xmin", hi: "_xmax"}
        self.values = {names.get(k, str(k)): v for k, v in stats.items()}

    def add_quantiles(self, expr: sp.Expr) -> None:
        """Put the value of each sample quantile of ``expr`` (constants substituted) in ``values``."""
        var = self.lik.model.variable
        for q in quantiles_in(expr):
            name = quantile_name(q, var)
            if name in self.values:
                continue
            u, level = quantile_parts(q)  # type: ignore[misc]
            g = to_function([var], u)
            self.values[name] = _runtime.sample_quantile(
                lambda c, g=g: np.asarray(g(c), dtype=float) * np.ones_like(c), self.data, float(level)
            )[0]

    def __call__(self, expr: sp.Expr, params: Mapping[sp.Symbol, float]) -> float:
        """Value of ``expr`` at parameter values ``params`` (complex values -> nan)."""
        expr = sp.sympify(expr).subs(self.constants)
        self.add_quantiles(expr)
        fn = Formula.of(expr, self.lik).compile()
        values = {**self.values, **{p.name: float(v) for p, v in params.items()}}
        try:
            return float(fn(values, self.data))
        except KeyError as exc:
            raise KeyError(f"no value for {exc.args[0]}") from None


def verification_datasets(
    lik: Likelihood,
    constants: Mapping[sp.Symbol, float],
    point: Mapping[sp.Symbol, float],
    count: int = 3,
    size: int = 15,
    rng: np.random.Generator | None = None,
) -> list[np.ndarray]:
    """Small, varied data sets inside the support at ``point``.

    They need not come from the model: any data inside the support gives
    admissible values of the statistics, which is all the checks need.  The
    draws are the same at every call unless a generator ``rng`` is given.
    """
    model = lik.model
    lo, hi = model.support_at({**point, **constants})
    rng = np.random.default_rng(20261124) if rng is None else rng
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


def stress_datasets(
    lik: Likelihood, constants: Mapping[sp.Symbol, float], point: Mapping[sp.Symbol, float], size: int = 15
) -> list[np.ndarray]:
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
        base = [
            np.r_[np.full(size - 1, lo), lo + 1],
            np.r_[np.full(size - 1, top), top - 1],
            lo + rng.poisson(30.0, size),
        ]
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
