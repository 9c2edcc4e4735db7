r"""Likelihood of N IID samples, reduced to sufficient statistics.

The log-density is split into additive terms and each term into a factor
that depends only on the parameters and one that depends only on the
variable:

.. math::

    \log f(x \mid \theta) = A(\theta) + \sum_j c_j(\theta)\, g_j(x) + h(x, \theta),

where :math:`h` collects what does not separate (e.g. :math:`x^k` with an
unknown shape :math:`k`).  Summed over the sample,

.. math::

    \ell(\theta) = N A(\theta) + \sum_j c_j(\theta)\, T_j + \sum_{i=1}^{N} h(x_i, \theta),
    \qquad T_j = \sum_{i=1}^{N} g_j(x_i).

The split is general: it uses only ``expand_log``, ``expand`` and
``as_independent``, and it is verified numerically (the expanded
log-density must reproduce the density).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from symmle.base.budget import budget
from symmle.base.numeric import to_function
from symmle.base.quadrature import interior_points
from symmle.model.spec import Model

__all__ = [
    "Statistic",
    "Likelihood",
    "build_likelihood",
    "sample_quantile",
    "quantile_parts",
    "quantile_name",
    "sample_symbols",
    "statistic_symbol",
    "order_statistics",
]

#: The names of the order statistics that are sample quantiles (besides ``Min`` and ``Max``).
QUANTILES = ("Median", "Quantile")


def sample_quantile(u: sp.Expr, level: sp.Expr) -> sp.Expr:
    r"""The sample ``level``-quantile of :math:`u(x_i)`: ``Median(u)`` or ``Quantile(u, level)``.

    It is the midpoint of the minimisers of :math:`\sum_i \rho_q(u(x_i) - m)`,
    with :math:`\rho_q(v) = v (q - [v < 0])` the check loss
    (:math:`\sum_i |m - u(x_i)|/2` at :math:`q = 1/2`): with :math:`k = N q`,
    the midpoint of the order statistics :math:`u_{(k)}` and
    :math:`u_{(k+1)}` when :math:`k` is a whole number (every point between
    them is a minimiser), else :math:`u_{(\lceil k \rceil)}`.  ``Median(x)``
    is therefore NumPy's median.  Like ``Min(x)`` and ``Max(x)`` it is an
    undefined function, so SymPy keeps it whole.

    Examples
    --------
    >>> x = sp.Symbol("x", real=True)
    >>> sample_quantile(x, sp.S.Half), sample_quantile(sp.log(x), sp.Rational(1, 4))
    (Median(x), Quantile(log(x), 1/4))
    """
    kw = {"positive": True} if u.is_positive else {"real": True}
    if level == sp.S.Half:
        return sp.Function("Median", **kw)(u)
    return sp.Function("Quantile", **kw)(u, level)


def quantile_parts(e: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(u, level)`` of a sample quantile made by :func:`sample_quantile`, else ``None``."""
    if not isinstance(e, AppliedUndef) or e.func.__name__ not in QUANTILES:
        return None
    return (e.args[0], sp.S.Half) if e.func.__name__ == "Median" else (e.args[0], e.args[1])


def quantile_name(e: sp.Expr, variable: sp.Symbol) -> str:
    """The identifier of a sample quantile in numeric code: ``_xmed`` for ``Median(x)``, else a digest."""
    u, level = quantile_parts(e)  # type: ignore[misc]
    if u == variable and level == sp.S.Half:
        return "_xmed"
    return "_xq" + hashlib.sha1(sp.srepr(e).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Statistic:
    r"""A sufficient statistic :math:`T = \sum_i g(x_i)`.

    Attributes
    ----------
    symbol : sympy.Symbol
        Its name in the log-likelihood, e.g. ``T1``.
    expr : sympy.Expr
        :math:`g(x)`, in the model variable.
    informative : bool
        Whether it multiplies a function of the parameters (a term such as
        :math:`-\log x!` of the Poisson is not informative).

    Examples
    --------
    >>> from symmle import derive
    >>> derive("poisson").likelihood.statistics  # doctest: +NORMALIZE_WHITESPACE
    (Statistic(symbol=T1, expr=x, informative=True),
     Statistic(symbol=T2, expr=log(factorial(x)), informative=False))
    """

    symbol: sp.Symbol  #: e.g. ``T1``
    expr: sp.Expr  #: ``g(x)`` in the model variable
    informative: bool  #: whether it multiplies a function of the parameters


@dataclass(frozen=True)
class Likelihood:
    r"""The log-likelihood of N IID samples, reduced to sufficient statistics.

    Made by :func:`build_likelihood` (see the module docstring for the
    split :math:`\log f = A(\theta) + \sum_j c_j(\theta) g_j(x) + h(x, \theta)`).

    Attributes
    ----------
    model : Model
    log_density : Expr
        :math:`\log f(x \mid \theta)`, expanded.
    baseline : Expr
        :math:`A(\theta)`, the part free of the variable.
    coefficients : tuple of (Statistic, Expr)
        Each statistic with its coefficient :math:`c_j(\theta)`.
    coupled : Expr
        :math:`h(x, \theta)`, the part that does not separate (often 0).
    N : Symbol
        The sample size.
    index, sample : Symbol, IndexedBase
        ``i`` and ``x``, for the sums :math:`\sum_{i=1}^N g(x_i)`.
    log_likelihood : Expr
        :math:`\ell(\theta)` in terms of ``N``, the ``T_j`` and explicit sums.

    Examples
    --------
    >>> from symmle import derive
    >>> lik = derive("exponential").likelihood
    >>> lik.log_density, lik.baseline, lik.coefficients
    (-lam*x + log(lam), log(lam), ((Statistic(symbol=T1, expr=x, informative=True), -lam),))
    >>> lik.log_likelihood
    N*log(lam) - T1*lam
    >>> lik.explicit(lik.N / lik.statistics[0].symbol)
    N/Sum(x[i], (i, 1, N))
    """

    model: Model
    log_density: sp.Expr
    baseline: sp.Expr
    coefficients: tuple[tuple[Statistic, sp.Expr], ...]
    coupled: sp.Expr
    N: sp.Symbol
    index: sp.Symbol
    sample: sp.IndexedBase
    log_likelihood: sp.Expr

    @property
    def statistics(self) -> tuple[Statistic, ...]:
        """The sufficient statistics ``T1, T2, ...``, in order."""
        return tuple(s for s, _ in self.coefficients)

    @property
    def nll(self) -> sp.Expr:
        """Negative log-likelihood :math:`J(\\theta) = -\\ell(\\theta)`."""
        return -self.log_likelihood

    def per_sample(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the variable replaced by the sample element :math:`x_i`."""
        return expr.subs(self.model.variable, self.sample[self.index])

    def sum_over_sample(self, expr: sp.Expr) -> sp.Expr:
        """:math:`\\sum_{i=1}^N` of ``expr`` (a function of the variable)."""
        return sp.Sum(self.per_sample(expr), (self.index, 1, self.N))

    def explicit(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with each ``T_j`` written out as its sum over the sample."""
        return expr.subs({s.symbol: self.sum_over_sample(s.expr) for s in self.statistics})

    @cached_property
    def order_statistics(self) -> tuple[sp.Expr, sp.Expr]:
        """``(Min(x), Max(x))``: the sample minimum and maximum, as symbols.

        They are undefined functions named ``Min`` and ``Max`` applied to the
        variable, so they print as the contract's ``Min(x)``/``Max(x)``
        (SymPy's own ``Max(x)`` would collapse to ``x``).
        """
        return order_statistics(self.model)

    @cached_property
    def statistic_map(self) -> dict[sp.Symbol, sp.Expr]:
        return {s.symbol: s.expr for s in self.statistics}

    def statistic_values(
        self, data: np.ndarray, constants: Mapping[sp.Symbol, float]
    ) -> dict[sp.Symbol, float]:
        """Numeric ``N`` and ``T_j`` of ``data`` (constants substituted)."""
        data = np.asarray(data, dtype=float)
        lo, hi = self.order_statistics
        values: dict[sp.Symbol, float] = {
            self.N: float(data.size),
            lo: float(np.min(data)),
            hi: float(np.max(data)),
        }
        for s in self.statistics:
            g = to_function([self.model.variable], s.expr.subs(constants))
            values[s.symbol] = float(np.sum(np.asarray(g(data), dtype=float) * np.ones_like(data)))
        return values


def _log_density(model: Model) -> sp.Expr:
    """``log f`` expanded, and checked to reproduce ``f`` numerically."""
    f = model.density
    expanded = sp.expand_log(sp.log(f), force=True)
    point = model.point()
    lo, hi = model.support_at(point)
    if model.discrete:
        probe = [lo + k for k in range(5)] if np.isfinite(lo) else [0, 1, 2]
        probe = [p for p in probe if p <= hi]
    else:
        probe = interior_points(lo, hi, 5)
    expanded = _real_branch(expanded, model.variable, point, probe)
    args = [model.variable]
    direct = to_function(args, f.subs(point))
    logged = to_function(args, expanded.subs(point))
    with np.errstate(all="ignore"):
        for p in probe:
            a, b = complex(direct(p)), complex(np.exp(complex(logged(p))))
            if not np.isfinite(a) or a.real <= 0:
                continue
            if abs(a - b) > 1e-9 * abs(a):
                # Forced expansion took the wrong branch somewhere: keep log f whole.
                return sp.log(f)
    return expanded


def _real_branch(
    expanded: sp.Expr, x: sp.Symbol, point: Mapping[sp.Symbol, float], probe: Sequence[float]
) -> sp.Expr:
    """Logarithms of negative factors written as ``log(-u) + i pi``, and the ``i pi`` terms cancelled.

    The forced expansion of ``log(-p**x/(x*log(1 - p)))`` gives
    ``i pi + x log p - log x - log(log(1 - p))`` with ``log(1 - p) < 0``: real
    in sum, but not term by term.  A factor that is negative at the check
    point (and every probe value of the variable) is taken as negative.
    """
    if not expanded.has(sp.I):
        return expanded
    subs = {}
    for a in expanded.atoms(sp.log):
        u = a.args[0]
        try:
            values = [complex(u.subs(point).subs(x, t)) for t in (probe if u.has(x) else [0])]
        except (TypeError, ValueError):
            continue
        if values and all(abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) and v.real < 0 for v in values):
            subs[a] = sp.log(-u) + sp.I * sp.pi
    if not subs:
        return expanded
    new = sp.expand(expanded.xreplace(subs))
    real, imag = new.as_independent(sp.I, as_Add=True)
    turns = sp.simplify(imag / (2 * sp.I * sp.pi))
    return real if turns.is_integer else expanded


def _split(
    term: sp.Expr, x: sp.Symbol, params: Sequence[sp.Symbol], depth: int = 0
) -> list[tuple[sp.Expr, sp.Expr]]:
    """Split an additive term into ``(c(theta), g(x))`` pairs.

    A pair with ``g`` = ``None`` marks a term that does not separate.
    """
    if not term.has(x):
        return [(term, sp.S.One)]
    pset = set(params)
    if not (term.free_symbols & pset):
        return [(sp.S.One, term)]
    indep, dep = term.as_independent(*params, as_Add=False)
    if not dep.has(x):
        return [(dep, indep)]
    if depth < 2:
        expanded = sp.expand(term, force=True)
        if expanded != term:
            out: list[tuple[sp.Expr, sp.Expr]] = []
            for t in sp.Add.make_args(expanded):
                out.extend(_split(t, x, params, depth + 1))
            return out
    return [(term, None)]  # type: ignore[list-item]


def sample_symbols(model: Model) -> tuple[sp.Symbol, sp.Symbol, sp.IndexedBase]:
    """The symbols of the sample: its size ``N``, the index ``i`` and the observations ``x[i]``.

    Every likelihood of ``model`` uses these (equal) objects; the cache of
    derivations reads stored formulas back into them.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> N, i, x = sample_symbols(load_model("poisson"))
    >>> N.is_integer, x[i].is_integer
    (True, True)
    """
    x = model.variable
    N = sp.Symbol("N", positive=True, integer=True)
    i = sp.Symbol("i", positive=True, integer=True)
    base_assumptions = {"positive": True} if x.is_positive else {"real": True} if not model.discrete else {}
    sample = sp.IndexedBase(x.name, **({"integer": True} if model.discrete else base_assumptions))
    return N, i, sample


def order_statistics(model: Model) -> tuple[sp.Expr, sp.Expr]:
    """``(Min(x), Max(x))`` of ``model``'s sample (see :attr:`Likelihood.order_statistics`)."""
    x = model.variable
    kw = (
        {"positive": True} if x.is_positive else {"nonnegative": True} if x.is_nonnegative else {"real": True}
    )
    if model.discrete:
        kw["integer"] = True
    return sp.Function("Min", **kw)(x), sp.Function("Max", **kw)(x)


def statistic_symbol(j: int, g: sp.Expr) -> sp.Symbol:
    """The symbol ``Tj`` of the statistic ``sum g(x_i)``, with the sign ``g`` is known to have."""
    if g.is_positive:
        return sp.Symbol(f"T{j}", positive=True)
    if g.is_nonnegative:
        return sp.Symbol(f"T{j}", nonnegative=True)
    return sp.Symbol(f"T{j}", real=True)


def build_likelihood(model: Model, *, timeout: float | None = None) -> Likelihood:
    """Build the log-likelihood of N IID samples of ``model``.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> lik = build_likelihood(load_model("exponential"))
    >>> lik.log_likelihood
    N*log(lam) - T1*lam
    """
    if model.is_vector:
        from symmle.symbolic.vector_likelihood import build_vector_likelihood

        return build_vector_likelihood(model, timeout=timeout)
    x = model.variable
    params = model.parameter_symbols
    with budget("log-likelihood", timeout):
        logf = _log_density(model)
        baseline = sp.S.Zero
        coupled = sp.S.Zero
        groups: dict[sp.Expr, sp.Expr] = {}
        for term in sp.Add.make_args(sp.expand_mul(logf) if logf.is_Add else logf):
            for coef, g in _split(term, x, params):
                if g is None:
                    coupled += coef
                    continue
                if g == 1:
                    baseline += coef
                    continue
                # Move factors free of x (numbers, known constants) into the coefficient.
                outside, g = g.as_independent(x, as_Add=False)
                coef = coef * outside
                groups[g] = groups.get(g, sp.S.Zero) + coef
        groups = {g: sp.factor_terms(c) for g, c in groups.items() if sp.simplify(c) != 0}
        pset = set(params)
        order = sorted(
            groups,
            key=lambda g: (not (groups[g].free_symbols & pset), sp.count_ops(g), sp.default_sort_key(g)),
        )
        N, i, sample = sample_symbols(model)
        coefficients = []
        for j, g in enumerate(order, start=1):
            stat = Statistic(statistic_symbol(j, g), g, bool(groups[g].free_symbols & pset))
            coefficients.append((stat, groups[g]))
        loglik = N * baseline + sum((c * s.symbol for s, c in coefficients), sp.S.Zero)
        # Sums that do not separate: keep factors free of x outside the sum, so
        # that a parameter outside it (a Weibull scale) can still be solved for.
        sums: dict[sp.Expr, sp.Expr] = {}
        for term in sp.Add.make_args(coupled):
            outside, inside = term.as_independent(x, as_Add=False)
            sums[inside] = sums.get(inside, sp.S.Zero) + outside
        for inside, outside in sums.items():
            loglik += outside * sp.Sum(inside.subs(x, sample[i]), (i, 1, N))
    return Likelihood(model, logf, baseline, tuple(coefficients), coupled, N, i, sample, loglik)
