r"""Exact finite-sample bias, variance and MSE of closed-form estimators.

An estimator is an expression in ``N``, the sufficient statistics
:math:`T_j = \sum_i g_j(x_i)`, constants and, for a boundary parameter, the
sample minimum or maximum.  Its mean :math:`E[\hat\theta]` and second moment
:math:`E[\hat\theta^2]` are found by one of three mechanisms, none tied to a
family:

* **polynomial in the** :math:`T_j`: a product :math:`T_{a_1} \cdots T_{a_k}`
  of sums of IID terms has expectation
  :math:`\sum_{\pi} N^{\underline{|\pi|}} \prod_{B \in \pi} E[\prod_{j \in B} g_{a_j}(X)]`
  over the set partitions :math:`\pi` of the factors (distinct observations
  for distinct blocks); the single-observation moments are
  :class:`~symmle.symbolic.expectation.Expectations`, each checked by
  quadrature;
* **a negative power of a shifted statistic** :math:`A\,(T + N c)^{-r}`: with
  :math:`S = \sum_i (g(x_i) + c) \ge 0`,
  :math:`E[S^{-r}] = \Gamma(r)^{-1} \int_0^\infty s^{r-1} L(s)^N\,ds`, where
  :math:`L(s) = E[e^{-s (g(X) + c)}]` is the Laplace transform of one term;
* **a function of the sample maximum or minimum**: the maximum has density
  :math:`N F^{N-1} f` and the minimum :math:`N (1 - F)^{N-1} f`, with
  :math:`F` the CDF, by symbolic integration of the density.

Each result is checked numerically at the model's point and ``N = 7`` (the
Laplace transform and the CDF against quadrature, the final integral against
quadrature of the numeric integrand) before it is reported; what fails the
check, runs out of its time budget or fits none of the forms has no exact
expression, and says why.  The unbiased correction is the estimator divided by
:math:`c(N)` when :math:`E[\hat\theta] = c(N)\,\theta`, or shifted by
:math:`-b(N)` when :math:`E[\hat\theta] = \theta + b(N)` with :math:`b` free
of the parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp
from scipy import integrate as _quad

from symmle.base.budget import DEFAULT_TIMEOUT, attempt, budget, watch_timeouts
from symmle.base.errors import DerivationTimeout
from symmle.base.numeric import to_function
from symmle.base.quadrature import integrate_support
from symmle.model.density import density_function
from symmle.symbolic.expectation import SYMPY_FAILURES, Expectations, as_real, numeric_expectation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["ExactMoments", "exact_bias"]

#: sample size at which every result is checked numerically
CHECK_N = 7


@dataclass(frozen=True)
class ExactMoments:
    """The exact finite-sample moments of one estimator (``None`` where there is no expression).

    Attributes
    ----------
    parameter : str
    estimator : Expr or None
        :math:`\\hat\\theta` in ``N``, the ``T_j`` and ``Min(x)``/``Max(x)``.
    expectation, bias, variance, mse : Expr or None
        :math:`E[\\hat\\theta]`, :math:`E[\\hat\\theta] - \\theta`,
        :math:`\\mathrm{Var}[\\hat\\theta]` and :math:`\\mathrm{bias}^2 + \\mathrm{Var}`,
        in the parameters, constants and ``N``.
    unbiased : Expr or None
        The unbiased estimator (a constant factor or a shift of
        :math:`\\hat\\theta`); ``None`` if there is none of that form.
    unbiased_mse : Expr or None
        Its MSE (its variance).
    condition : tuple of Relational
        Where the moments exist, e.g. ``(N > 2,)``; empty: for every ``N``.
    reason : str or None
        Why there is no exact expression (then ``expectation`` is ``None``).
    """

    parameter: str
    estimator: sp.Expr | None
    expectation: sp.Expr | None = None
    bias: sp.Expr | None = None
    variance: sp.Expr | None = None
    mse: sp.Expr | None = None
    unbiased: sp.Expr | None = None
    unbiased_mse: sp.Expr | None = None
    condition: tuple[sp.Rel, ...] = ()
    reason: str | None = None

    @property
    def condition_text(self) -> str | None:
        """The condition as text (``N > 2``), ``None`` if there is none."""
        return " and ".join(str(c) for c in self.condition) or None

    @property
    def exact(self) -> bool:
        """Whether an exact expectation was found."""
        return self.expectation is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON fields: SymPy strings, ``None`` where there is no expression."""

        def s(e: sp.Expr | None) -> str | None:
            return None if e is None else str(e)

        return {
            "bias": s(self.bias),
            "expectation": s(self.expectation),
            "variance": s(self.variance),
            "mse": s(self.mse),
            "unbiased": s(self.unbiased),
            "unbiased_mse": s(self.unbiased_mse),
            "bias_condition": self.condition_text,
            "bias_reason": self.reason,
        }


class _NoExact(Exception):
    """No exact expression; the message says why."""


def _set_partitions(items: list[int]):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for k in range(len(part)):
            yield [*part[:k], [first, *part[k]], *part[k + 1 :]]
        yield [[first], *part]


class _Engine:
    def __init__(self, d: Derivation, share: float | None) -> None:
        self.d = d
        self.model = d.model
        self.lik = d.likelihood
        self.N = d.likelihood.N
        self.x = d.model.variable
        self.share = share
        self.point = dict(d.model.point())
        self.stats = d.likelihood.statistic_map
        self.expect = Expectations(d.model, share)
        self.lo, self.hi = d.likelihood.order_statistics

    # ---- mechanism 1: polynomials in the T_j -------------------------------
    def _product(self, factors: list[sp.Symbol]) -> sp.Expr:
        """E[T_a1 ... T_ak] by set partitions of the factors."""
        total = sp.Integer(0)
        for part in _set_partitions(list(range(len(factors)))):
            term = sp.ff(self.N, len(part))
            for block in part:
                g = sp.Mul(*[self.stats[factors[k]] for k in block])
                value = self.expect(g)
                if value is None:
                    raise _NoExact(f"no closed form for E[{g}] of one observation")
                term *= value
            total += term
        return total

    def polynomial(self, est: sp.Expr, power: int) -> sp.Expr | None:
        ts = sorted((t for t in est.free_symbols if t in self.stats), key=str)
        if not ts:
            return None
        try:
            poly = sp.Poly(sp.expand(est**power), *ts)
        except sp.PolynomialError:
            return None
        if any(t in c.free_symbols for c in poly.coeffs() for t in ts):
            return None
        total = sp.Integer(0)
        for monom, coeff in poly.terms():
            factors = [t for t, k in zip(ts, monom) for _ in range(k)]
            total += coeff * self._product(factors)
        return total

    # ---- mechanism 2: A (T + N c)^(-r) ------------------------------------
    def inverse_power(self, est: sp.Expr) -> tuple[sp.Expr, sp.Symbol, sp.Expr, int] | None:
        ts = [t for t in est.free_symbols if t in self.stats]
        if len(ts) != 1:
            return None
        t = ts[0]
        num, den = sp.fraction(sp.together(est))
        if t in num.free_symbols or t not in den.free_symbols:
            return None
        try:
            poly = sp.Poly(den, t)
        except sp.PolynomialError:
            return None
        r = poly.degree()
        lead = poly.LC()
        if r < 1 or any(t in c.free_symbols for c in poly.coeffs()):
            return None
        shift = poly.coeff_monomial(t ** (r - 1)) / (r * lead)
        if sp.simplify(sp.expand(den - lead * (t + shift) ** r)) != 0:
            return None
        c = sp.simplify(shift / self.N)
        if self.N in c.free_symbols:
            return None
        return sp.simplify(num / lead), t, c, r

    def laplace(self, g: sp.Expr, s: sp.Symbol) -> sp.Expr:
        h = sp.powsimp(_exp_as_powers(-s * g) * self.model.density, force=True)
        a, b = self.model.support
        if self.model.discrete:
            value = sp.summation(h, (self.x, a, b))
        else:
            value = sp.integrate(h, (self.x, a, b), conds="none")
        value = sp.simplify(value)
        if value.has(sp.Integral, sp.Sum, sp.Piecewise, sp.nan):
            raise _NoExact(f"no closed form for the Laplace transform of {g}")
        for sv in (0.5, 2.0):
            num = numeric_expectation(self.model, sp.exp(-sv * g), self.point)
            if num is None or not _close(as_real(value.subs({s: sv, **self.point})), num[0]):
                raise _NoExact(f"the Laplace transform of {g} failed its numerical check")
        return value

    def negative_moment(self, L: sp.Expr, s: sp.Symbol, r: int) -> sp.Expr:
        """E[S^-r] = 1/Gamma(r) int_0^oo s^(r-1) L(s)^N ds, checked at N = CHECK_N."""
        integrand = sp.powsimp(sp.expand_power_base(L**self.N, force=True), force=True) * s ** (r - 1)
        value = sp.integrate(integrand, (s, 0, sp.oo), conds="none") / sp.gamma(r)
        value = sp.simplify(value)
        if value.has(sp.Integral, sp.Piecewise, sp.nan, sp.zoo, sp.oo):
            raise _NoExact("no closed form for the integral of the Laplace transform")
        f = to_function([s], (L**CHECK_N * s ** (r - 1)).subs(self.point))
        num, _ = _quad.quad(lambda u: float(np.real(f(u))), 0, np.inf, limit=200)
        num /= math.gamma(r)
        if not _close(as_real(value.subs({self.N: CHECK_N, **self.point})), num):
            raise _NoExact("the negative moment failed its numerical check")
        return value

    # ---- mechanism 3: order statistics ---------------------------------------
    def order_statistic(self, est: sp.Expr, which: sp.Expr, powers: tuple[int, ...]) -> list[sp.Expr]:
        m = sp.Symbol("m", **_assumptions(self.x))
        a, b = self.model.support
        f = self.model.density
        u = sp.Dummy("u", **_assumptions(self.x))
        F = sp.simplify(sp.integrate(f.subs(self.x, u), (u, a, m), conds="none"))
        if F.has(sp.Integral, sp.Piecewise):
            raise _NoExact("no closed form for the CDF")
        f_num = density_function(self.model, self.point)
        lo, hi = self.model.support_at(self.point)
        mid = _interior(lo, hi)
        Fn, _ = integrate_support(lambda t: np.asarray(f_num(np.asarray(t, float)), float), lo, mid)
        if not _close(as_real(F.subs({m: mid, **self.point})), Fn):
            raise _NoExact("the CDF failed its numerical check")
        weight = (F if which is self.hi else 1 - F) ** (self.N - 1)
        dens = self.N * weight * f.subs(self.x, m)
        out = []
        for k in powers:
            h = est.subs(which, m) ** k
            integrand = sp.powsimp(sp.expand_power_base(h * dens, force=True), force=True)
            value = sp.simplify(sp.integrate(integrand, (m, a, b), conds="none"))
            if value.has(sp.Integral, sp.Piecewise, sp.nan, sp.zoo):
                raise _NoExact("no closed form for the expectation over the order statistic")
            fn = to_function([m], (integrand.subs({self.N: CHECK_N, **self.point})))
            num, _ = integrate_support(_vectorised(fn), lo, hi)
            if not _close(as_real(value.subs({self.N: CHECK_N, **self.point})), num):
                raise _NoExact("the order-statistic expectation failed its numerical check")
            out.append(value)
        return out

    # ---- one estimator --------------------------------------------------------
    def moments(self, est: sp.Expr) -> tuple[sp.Expr, sp.Expr, str | None]:
        """(E[est], E[est^2], condition)."""
        order = [o for o in (self.lo, self.hi) if est.has(o)]
        ts = [t for t in est.free_symbols if t in self.stats]
        if order:
            if len(order) > 1 or ts:
                raise _NoExact("the estimator mixes the sample extremes with other statistics")
            e1, e2 = self.order_statistic(est, order[0], (1, 2))
            return e1, e2, None
        e1 = self.polynomial(est, 1)
        if e1 is not None:
            e2 = self.polynomial(est, 2)
            return e1, e2, None
        form = self.inverse_power(est)
        if form is None:
            raise _NoExact("the estimator is neither a polynomial in the statistics nor a power of one")
        coeff, t, c, r = form
        term = self.stats[t] + c
        inside = _interior(*self.model.support_at(self.point))
        if as_real(term.subs({self.x: inside, **self.point})) < 0:  # a sum of negative terms: -S is positive
            term, coeff = -term, coeff * (-1) ** r
        s = sp.Symbol("s", positive=True)
        L = self.laplace(term, s)
        e1 = coeff * self.negative_moment(L, s, r)
        e2 = coeff**2 * self.negative_moment(L, s, 2 * r)
        return e1, e2, None


def _vectorised(fn):
    def run(t):
        t = np.asarray(t, float)
        return np.asarray(fn(t), float) * np.ones_like(t)

    return run


def _exp_as_powers(arg: sp.Expr) -> sp.Expr:
    """``exp(arg)`` with each term ``c log(b)`` of ``arg`` as a power ``b**c`` (an integral SymPy knows)."""
    powers, rest = sp.Integer(1), sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(sp.expand_log(arg, force=True))):
        logs = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.log)]
        if len(logs) == 1:
            powers *= logs[0].args[0] ** (term / logs[0])
        else:
            rest += term
    return powers * sp.exp(rest)


def _assumptions(x: sp.Symbol) -> dict[str, bool]:
    return {"positive": True} if x.is_positive else {"real": True}


def _interior(lo: float, hi: float) -> float:
    if math.isfinite(lo) and math.isfinite(hi):
        return lo + 0.37 * (hi - lo)
    if math.isfinite(lo):
        return lo + 0.8
    if math.isfinite(hi):
        return hi - 0.8
    return 0.3


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _condition(expr: sp.Expr, N: sp.Symbol) -> tuple[sp.Rel, ...]:
    """Where the moments exist: each factor ``v - c`` of a denominator in ``N`` must be positive.

    Factors with the same ``v`` keep the strictest bound (``N - 1``, ``N - 2``: ``N > 2``); a
    bound that always holds (``N + 1 > 0``) is left out.
    """
    bounds: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        den = sp.fraction(sp.factor(term))[1]
        for factor in sp.Mul.make_args(den):
            base = factor.base if isinstance(factor, sp.Pow) else factor
            if N not in base.free_symbols:
                continue
            const, v = base.as_coeff_Add()
            bound = -const
            if v.is_positive and bound <= 0:
                continue
            if v not in bounds or bool(bound > bounds[v]):
                bounds[v] = bound
    return tuple(sp.StrictGreaterThan(v, c) for v, c in sorted(bounds.items(), key=str))


def _tidy(e: sp.Expr) -> sp.Expr:
    return sp.factor(sp.simplify(e))


def _one(engine: _Engine, name: str, est: sp.Expr, share: float | None) -> ExactMoments:
    theta = engine.model.symbols[name]
    N = engine.N
    (found, timed_out) = (None, False)
    try:
        with watch_timeouts() as seen:
            found, timed_out = attempt(f"exact moments of {name}", share, lambda: engine.moments(est))
    except _NoExact as exc:
        cut = " (a time budget ran out)" if seen else ""
        return ExactMoments(name, est, reason=f"{exc}{cut}")
    except SYMPY_FAILURES as exc:  # a form SymPy cannot handle
        return ExactMoments(name, est, reason=f"SymPy could not evaluate it ({type(exc).__name__})")
    if timed_out or found is None:
        return ExactMoments(name, est, reason="time budget ran out")
    e1, e2, _ = found
    mean = _tidy(e1)
    var = _tidy(e2 - e1**2)
    bias = _tidy(mean - theta)
    if theta not in bias.free_symbols:  # a shift: theta + 1/(N lam), not (N lam theta + 1)/(N lam)
        mean = theta + bias
    mse = _tidy(bias**2 + var)
    unbiased = unbiased_mse = None
    factor = sp.simplify(mean / theta)
    if not (factor.free_symbols & set(engine.model.parameter_symbols)) and factor != 0:
        if sp.simplify(factor - 1) == 0:
            unbiased, unbiased_mse = est, var
        else:
            unbiased, unbiased_mse = _tidy(est / factor), _tidy(var / factor**2)
    elif not (bias.free_symbols & set(engine.model.parameter_symbols)):
        unbiased, unbiased_mse = _tidy(est - bias), var
    return ExactMoments(
        name,
        est,
        expectation=mean,
        bias=bias,
        variance=var,
        mse=mse,
        unbiased=unbiased,
        unbiased_mse=unbiased_mse,
        condition=_condition(sp.Add(e1, e2), N),
    )


def exact_bias(d: Derivation, *, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, ExactMoments]:
    """Exact finite-sample bias, variance and MSE of each estimator of ``d``.

    Parameters
    ----------
    d : Derivation
        A scalar model's derivation (vector and regression models raise).
    timeout : float, optional
        Budget in seconds for each estimator; one that runs out has no exact
        expression ("time budget ran out"), never a hang.

    Returns
    -------
    dict of str to ExactMoments

    Raises
    ------
    SpecError
        For a vector or regression model.

    Examples
    --------
    >>> from symmle import derive
    >>> r = exact_bias(derive("exponential"))["lam"]
    >>> r.expectation, r.bias, r.unbiased
    (N*lam/(N - 1), lam/(N - 1), (N - 1)/T1)
    """
    from symmle.base.errors import SpecError

    if d.model.is_vector or d.model.is_regression:
        raise SpecError(
            f"exact bias is not available for model '{d.model.name}': only scalar models without a link"
        )
    engine = _Engine(d, None if timeout is None else timeout / 4)
    out: dict[str, ExactMoments] = {}
    for name, e in d.solutions.items():
        if e.kind not in ("closed_form", "boundary") or e.expr is None:
            out[name] = ExactMoments(name, None, reason=f"no closed-form estimator ({e.kind})")
            continue
        try:
            with budget(f"exact moments of {name}", timeout):
                out[name] = _one(engine, name, e.expr, timeout)
        except DerivationTimeout:
            out[name] = ExactMoments(name, e.expr, reason="time budget ran out")
    return out
