r"""Censored data: the survival function and the censored log-likelihood, solved by the same algebra.

Right-censored data are pairs :math:`(t_i, \delta_i)`: :math:`\delta_i = 1` when the event was
observed at :math:`t_i`, :math:`\delta_i = 0` when it is only known to come later.  The
log-likelihood is

.. math::

    \ell(\theta) = \sum_{i:\,\delta_i = 1} \log f(t_i) + \sum_{i:\,\delta_i = 0} \log S(t_i),
    \qquad S(t) = \int_t^{\text{hi}} f(u)\,du .

:func:`distribution_functions` derives :math:`F` and :math:`S` by integrating the density under a
time budget, and checks each against quadrature at the model's check point; where SymPy finds no
integral, they are left to quadrature (with exact derivatives of the integrand, in
:mod:`symmle.numbers.censored_fit`).

:func:`censored_likelihood` splits :math:`\log f` and :math:`\log S` with the split of
:func:`~symmle.symbolic.likelihood.build_likelihood`, and writes
:math:`a(\theta) \sum_{\delta_i=1} g(t_i) + b(\theta) \sum_{\delta_i=0} g(t_i)` as
:math:`b(\theta) \sum_i g(t_i) + (a - b)(\theta) \sum_{\delta_i = 1} g(t_i)` (an identity), so the
log-likelihood is written in the number of events ``d``, sums ``T_j`` over every observation and
sums ``E_j`` over the events only.  For the exponential, :math:`\ell = d \log\lambda - \lambda T_1`.
:func:`derive_censored` solves its score equations with the solver of the uncensored pipeline
(:func:`symmle.symbolic.estimator.solve`, domains and admissibility alike); each root is kept only
if the score vanishes and the Hessian is negative definite on several censored data sets.
Nothing depends on the family's name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.budget import attempt, watch_timeouts
from symmle.base.errors import SpecError
from symmle.base.numeric import to_function
from symmle.model.spec import Model
from symmle.symbolic.estimator import Estimator, admissible, solve
from symmle.symbolic.evaluate import verification_datasets
from symmle.symbolic.likelihood import Likelihood, build_likelihood, statistic_symbol

__all__ = [
    "Distribution",
    "CensoredLikelihood",
    "CensoredDerivation",
    "distribution_functions",
    "censored_likelihood",
    "derive_censored",
    "censored_datasets",
]


# --------------------------------------------------------------------------------------------------
# F and S
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """The distribution function ``cdf`` and survival function ``survival`` of a model's variable.

    Each is a SymPy expression in the variable, the parameters and the constants, verified against
    quadrature of the density, or ``None`` where no integral was found (or it failed its check):
    then it is computed by quadrature.  ``notes`` says what happened.
    """

    cdf: sp.Expr | None
    survival: sp.Expr | None
    notes: tuple[str, ...] = ()

    @property
    def symbolic(self) -> bool:
        return self.cdf is not None and self.survival is not None


def _bad(r: sp.Expr | None) -> bool:
    return r is None or any(r.has(a) for a in (sp.Integral, sp.Piecewise, sp.nan, sp.zoo, sp.Limit))


def _by_antiderivative(f: sp.Expr, u: sp.Symbol, x: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> tuple | None:
    """``(S, F)`` from an antiderivative ``G`` (SymPy's ``manualintegrate``) and its limits at the ends."""
    from sympy.integrals.manualintegrate import manualintegrate

    g = manualintegrate(f, u)
    if _bad(g):
        return None
    at_hi, at_lo = sp.limit(g, u, hi, "-"), sp.limit(g, u, lo, "+")
    if _bad(at_hi) or _bad(at_lo) or not (at_hi.is_finite and at_lo.is_finite):
        return None
    gx = g.subs(u, x)
    return sp.simplify(at_hi - gx), sp.simplify(gx - at_lo)


def _definite(f: sp.Expr, u: sp.Symbol, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
    r = sp.integrate(f, (u, a, b), conds="none")
    return None if _bad(r) else sp.simplify(r)


def _quad(model: Model, point: Mapping[sp.Symbol, float], a: float, b: float) -> float:
    from scipy.integrate import quad

    f = to_function([model.variable], model.density.subs(point))
    value, _ = quad(lambda t: float(np.real(f(t))), a, b, limit=200, epsabs=1e-13, epsrel=1e-11)
    return value


def _check_points(model: Model, point: Mapping[sp.Symbol, float]) -> list[float]:
    lo, hi = model.support_at(point)
    if math.isfinite(lo) and math.isfinite(hi):
        return [lo + (hi - lo) * q for q in (0.15, 0.4, 0.7)]
    if math.isfinite(lo):
        return [lo + s for s in (0.3, 1.1, 2.6)]
    if math.isfinite(hi):
        return [hi - s for s in (0.3, 1.1, 2.6)]
    return [-1.3, 0.2, 1.7]


def _verified(model: Model, expr: sp.Expr, upper: bool) -> bool:
    """``expr`` equals the integral of the density from the lower end (``upper``: to the upper end)."""
    point = model.point()
    lo, hi = model.support_at(point)
    fn = to_function([model.variable], expr.subs(point))
    for t in _check_points(model, point):
        want = _quad(model, point, t, hi) if upper else _quad(model, point, lo, t)
        with np.errstate(all="ignore"):
            got = complex(fn(t))
        if not (abs(got.imag) <= 1e-12 and abs(got.real - want) <= 1e-8 * max(1.0, abs(want))):
            return False
    return True


def distribution_functions(model: Model, timeout: float | None) -> Distribution:
    """:math:`F(x)` and :math:`S(x) = 1 - F(x)`, integrated symbolically and checked by quadrature.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> distribution_functions(load_model("exponential"), 10).survival
    exp(-lam*x)
    """
    if model.discrete or model.is_vector or model.is_regression or getattr(model, "mixture", 0):
        raise SpecError("censoring applies to a scalar continuous model without a link or a mixture")
    x = model.variable
    u = sp.Dummy("u", **x.assumptions0)
    f = model.density.subs(x, u)
    lo, hi = model.support
    notes: list[str] = []
    found: dict[str, sp.Expr | None] = {"survival": None, "cdf": None}
    share = None if timeout is None else timeout / 2
    pair, late = attempt(
        "integrate the density (antiderivative)", share, lambda: _by_antiderivative(f, u, x, lo, hi)
    )
    if pair is not None:
        found["survival"], found["cdf"] = pair
    else:
        for name, (a, b) in (("survival", (x, hi)), ("cdf", (lo, x))):
            r, late = attempt(
                f"integrate the density for {name}", share, lambda a=a, b=b: _definite(f, u, a, b)
            )
            if late:
                notes.append(f"integrating the density for the {name} function timed out after {share:g} s")
            found[name] = r
            if r is not None:
                break
    # one from the other where only one integral was found
    if found["survival"] is None and found["cdf"] is not None:
        found["survival"] = 1 - found["cdf"]
    if found["cdf"] is None and found["survival"] is not None:
        found["cdf"] = 1 - found["survival"]
    for name, upper in (("survival", True), ("cdf", False)):
        e = found[name]
        if e is None:
            continue
        ok, late = attempt(
            f"check the {name} function", timeout, lambda e=e, upper=upper: _verified(model, e, upper)
        )
        if not ok:
            notes.append(
                f"the {name} function found by integration "
                + ("could not be checked in time" if late else "disagrees with quadrature of the density")
                + "; it is computed by quadrature"
            )
            found[name] = None
    if found["survival"] is None or found["cdf"] is None:
        notes.append(
            "no closed-form survival function: S(t) and F(t) are integrals of the density, "
            "computed by quadrature with exact derivatives of the integrand"
        )
        return Distribution(None, None, tuple(notes))
    return Distribution(found["cdf"], found["survival"], tuple(notes))


# --------------------------------------------------------------------------------------------------
# the censored log-likelihood in statistics
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CensoredLikelihood:
    r"""The right-censored log-likelihood in ``N``, ``d`` and sums over all observations or events.

    Attributes
    ----------
    model : Model
    distribution : Distribution
    events, censored : Likelihood
        The split of :math:`\log f` and of :math:`\log S` (by ``build_likelihood``).
    N, d : Symbol
        The number of observations and of events.
    totals : tuple of (Symbol, Expr)
        ``T_j`` and ``g_j``: :math:`T_j = \sum_i g_j(t_i)` over every observation.
    event_sums : tuple of (Symbol, Expr)
        ``E_j`` and ``g_j``: :math:`E_j = \sum_{\delta_i = 1} g_j(t_i)`.
    status : IndexedBase
        :math:`\delta_i` in the sums that do not separate.
    log_likelihood : Expr
    """

    model: Model
    distribution: Distribution
    events: Likelihood
    censored: Likelihood
    N: sp.Symbol
    d: sp.Symbol
    totals: tuple[tuple[sp.Symbol, sp.Expr], ...]
    event_sums: tuple[tuple[sp.Symbol, sp.Expr], ...]
    status: sp.IndexedBase
    log_likelihood: sp.Expr
    #: ``C_j`` and ``g_j``: :math:`C_j = \\sum_{\\delta_i = 0} g_j(t_i)`
    censored_sums: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()

    @property
    def index(self) -> sp.Symbol:
        return self.events.index

    @property
    def sample(self) -> sp.IndexedBase:
        return self.events.sample


def _parts(lik: Likelihood) -> tuple[sp.Expr, dict[sp.Expr, sp.Expr], dict[sp.Expr, sp.Expr]]:
    """``(A, {g: c}, {h: outside})`` of a likelihood: baseline, separable statistics, coupled sums."""
    x = lik.model.variable
    stats = {s.expr: c for s, c in lik.coefficients}
    sums: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(lik.coupled):
        outside, inside = term.as_independent(x, as_Add=False)
        sums[inside] = sums.get(inside, sp.S.Zero) + outside
    return lik.baseline, stats, sums


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    return name


def _zero(e: sp.Expr) -> bool:
    return e == 0 or sp.simplify(e) == 0


def censored_likelihood(model: Model, dist: Distribution, timeout: float | None) -> CensoredLikelihood:
    r"""The log-likelihood of right-censored data (see the module docstring); needs a symbolic ``S``."""
    if dist.survival is None:
        raise SpecError("the censored log-likelihood in statistics needs a closed-form survival function")
    events = build_likelihood(model, timeout=timeout)
    censored = build_likelihood(replace(model, density=dist.survival), timeout=timeout)
    x = model.variable
    taken = set(model.symbols)
    N = events.N
    d = sp.Symbol(_fresh("d", taken), positive=True, integer=True)
    delta = sp.IndexedBase(_fresh("delta", taken), nonnegative=True, integer=True)
    i, sample = events.index, events.sample
    a_e, stats_e, sums_e = _parts(events)
    a_c, stats_c, sums_c = _parts(censored)
    ell = N * a_c + d * (a_e - a_c) if not _zero(a_e - a_c) else N * a_c
    sums: dict[str, list[tuple[sp.Symbol, sp.Expr]]] = {"all": [], "events": [], "censored": []}
    prefix = {"all": "T", "events": "E", "censored": "C"}

    def statistic(kind: str, g: sp.Expr) -> sp.Symbol:
        s = statistic_symbol(len(sums[kind]) + 1, g)
        s = sp.Symbol(prefix[kind] + s.name[1:], **s.assumptions0)
        sums[kind].append((s, g))
        return s

    def split(ce: sp.Expr, cc: sp.Expr) -> list[tuple[str, sp.Expr]]:
        """``ce`` on the events' sum and ``cc`` on the censored: as coefficients of named sums."""
        if _zero(ce - cc):
            return [("all", cc)]
        if _zero(cc):
            return [("events", ce)]
        if _zero(ce):
            return [("censored", cc)]
        return [("all", cc), ("events", sp.factor_terms(ce - cc))]

    ordered = sorted(set(stats_e) | set(stats_c), key=lambda g: (sp.count_ops(g), sp.default_sort_key(g)))
    for g in ordered:
        for kind, c in split(stats_e.get(g, sp.S.Zero), stats_c.get(g, sp.S.Zero)):
            ell += c * statistic(kind, g)
    weight = {"all": sp.S.One, "events": delta[i], "censored": 1 - delta[i]}
    for h in sorted(set(sums_e) | set(sums_c), key=sp.default_sort_key):
        for kind, c in split(sums_e.get(h, sp.S.Zero), sums_c.get(h, sp.S.Zero)):
            ell += c * sp.Sum(weight[kind] * h.subs(x, sample[i]), (i, 1, N))
    totals, event_sums, censored_sums = sums["all"], sums["events"], sums["censored"]
    return CensoredLikelihood(
        model,
        dist,
        events,
        censored,
        N,
        d,
        tuple(totals),
        tuple(event_sums),
        delta,
        ell,
        tuple(censored_sums),
    )


# --------------------------------------------------------------------------------------------------
# numbers on censored data sets
# --------------------------------------------------------------------------------------------------


class CensoredEvaluator:
    """Evaluate expressions of a :class:`CensoredLikelihood` on times ``t`` with status ``delta``."""

    def __init__(self, clik: CensoredLikelihood, t: np.ndarray, delta: np.ndarray, constants) -> None:
        self.clik = clik
        self.t = np.asarray(t, dtype=float)
        self.delta = np.asarray(delta, dtype=float)
        self.constants = dict(constants)
        x = clik.model.variable
        values = {clik.N.name: float(self.t.size), clik.d.name: float(self.delta.sum())}
        for sym, g in clik.totals:
            values[sym.name] = float(np.sum(self._per(g.subs(self.constants), x)))
        for sym, g in clik.event_sums:
            values[sym.name] = float(np.sum(self.delta * self._per(g.subs(self.constants), x)))
        for sym, g in clik.censored_sums:
            values[sym.name] = float(np.sum((1 - self.delta) * self._per(g.subs(self.constants), x)))
        self.values = values

    def _per(self, g: sp.Expr, x: sp.Symbol) -> np.ndarray:
        fn = to_function([x], g)
        with np.errstate(all="ignore"):
            return np.asarray(fn(self.t), dtype=float) * np.ones_like(self.t)

    def __call__(self, expr: sp.Expr, params: Mapping[sp.Symbol, float]) -> float:
        clik = self.clik
        x = clik.model.variable
        dsym = sp.Dummy("delta")
        expr = sp.sympify(expr).subs(self.constants)
        values = dict(self.values)
        values.update({p.name: float(v) for p, v in params.items()})
        repl = {}
        for k, s in enumerate(sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)):
            summand = s.function.subs({clik.sample[clik.index]: x, clik.status[clik.index]: dsym})
            free = sorted(summand.free_symbols - {x, dsym}, key=lambda q: q.name)
            fn = to_function([x, dsym, *free], summand)
            with np.errstate(all="ignore"):
                v = np.asarray(fn(self.t, self.delta, *[values[q.name] for q in free]), dtype=complex)
            name = f"_s{k}"
            values[name] = complex(np.sum(v * np.ones_like(self.t)))
            repl[s] = sp.Symbol(name)
        outer = expr.xreplace(repl)
        names = sorted({q.name for q in outer.free_symbols})
        syms = {q.name: q for q in outer.free_symbols}
        fn = to_function([syms[n] for n in names], outer)
        try:
            with np.errstate(all="ignore"):
                z = complex(fn(*[values[n] for n in names]))
        except (OverflowError, ZeroDivisionError, ValueError):
            return float("nan")
        return z.real if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real)) else float("nan")


def censored_datasets(
    lik: Likelihood, constants: Mapping[sp.Symbol, float], point: Mapping[sp.Symbol, float], count: int = 3
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Small censored data sets: times inside the support, about 30% censored, at least two events."""
    rng = np.random.default_rng(20261204)
    out = []
    for t in verification_datasets(lik, constants, point, count=count, size=20):
        delta = (rng.uniform(size=t.size) > 0.3).astype(float)
        delta[:2] = 1.0
        delta[2] = 0.0
        out.append((t, delta))
    return out


# --------------------------------------------------------------------------------------------------
# the stationary point
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CensoredDerivation:
    """The derivation of the maximum-likelihood estimators from right-censored data.

    ``likelihood`` is ``None`` when the survival function has no closed form: the estimates are then
    numeric (quadrature of the density, exact derivatives of the integrand).
    """

    model: Model
    distribution: Distribution
    likelihood: CensoredLikelihood | None
    score: tuple[sp.Expr, ...]
    hessian: sp.Matrix | None
    estimators: dict[str, Estimator]
    warnings: tuple[str, ...] = field(default=())

    @property
    def closed_form(self) -> bool:
        return bool(self.estimators) and all(e.kind == "closed_form" for e in self.estimators.values())

    def to_dict(self) -> dict:
        from symmle.report.censored import to_dict

        return to_dict(self)

    def to_text(self) -> str:
        from symmle.report.censored import to_text

        return to_text(self)

    def to_latex(self, standalone: bool = False) -> str:
        from symmle.report.censored import to_latex

        return to_latex(self, standalone=standalone)

    def to_markdown(self) -> str:
        from symmle.report.censored import to_markdown

        return to_markdown(self)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{k}={e.expr if e.kind == 'closed_form' else e.kind}" for k, e in self.estimators.items()
        )
        return f"<CensoredDerivation {self.model.name}: {parts}>"


class _Checks:
    def __init__(self, clik: CensoredLikelihood, params: Sequence[sp.Symbol], score, hessian) -> None:
        m = clik.model
        self.params = list(params)
        self.score, self.hessian = list(score), hessian
        self.domains = {q.symbol: q.domain for q in m.parameters}
        constants = m.constant_point()
        self.evaluators = [
            CensoredEvaluator(clik, t, dl, constants)
            for t, dl in censored_datasets(clik.events, constants, m.point())
        ]

    def check(self, sol: Mapping[sp.Symbol, sp.Expr]) -> tuple[bool, str]:
        for ev in self.evaluators:
            values: dict[sp.Symbol, float] = {}
            for p in self.params:
                v = ev(sol[p], values)
                if not (np.isfinite(v) and in_domain(v, self.domains[p])):
                    return False, f"{p} = {v:.4g} is outside its domain on a test data set"
                values[p] = v
            for p, s in zip(self.params, self.score):
                scale = sum(abs(ev(t, values)) for t in sp.Add.make_args(sp.expand(s))) + 1e-300
                if not abs(ev(s, values)) <= 1e-7 * scale:
                    return False, f"the score for {p} does not vanish at the solution"
            h = np.array(
                [
                    [ev(self.hessian[a, b], values) for b in range(len(self.params))]
                    for a in range(len(self.params))
                ]
            )
            if not np.all(np.isfinite(h)) or np.max(np.linalg.eigvalsh((h + h.T) / 2)) >= 0:
                return False, "the Hessian is not negative definite at the solution"
        return True, ""


def derive_censored(model: Model, *, timeout: float | None = 10.0) -> CensoredDerivation:
    """Derive the MLE from right-censored data: closed forms where the score equations yield them.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> d = derive_censored(load_model("exponential"))
    >>> d.likelihood.log_likelihood, d.estimators["lam"].expr
    (-T1*lam + d*log(lam), d/T1)
    """
    key = (model, timeout)
    try:
        found = _REMEMBERED.get(key)
    except TypeError:  # a model that cannot be hashed is derived afresh
        return _derive(model, timeout)
    if found is not None:
        return found
    with watch_timeouts() as timed_out:
        d = _derive(model, timeout)
    if not timed_out and not any("timed out" in w for w in d.warnings):  # a time-out depends on the load
        if len(_REMEMBERED) >= _REMEMBER:
            _REMEMBERED.pop(next(iter(_REMEMBERED)))
        _REMEMBERED[key] = d
    return d


#: derivations remembered in this process (they are immutable), those cut short by a time-out excepted
_REMEMBERED: dict[tuple[Model, float | None], CensoredDerivation] = {}
_REMEMBER = 32


def _derive(model: Model, timeout: float | None) -> CensoredDerivation:
    m = model
    for q in m.parameters:
        if m.depends_on_support(q.symbol):
            raise SpecError(f"censoring needs a support free of the parameters ('{q.name}' sets it)")
    dist = distribution_functions(m, timeout)
    warnings = list(dist.notes)
    params = list(m.parameter_symbols)
    if dist.survival is None:
        ests = {
            q.name: Estimator(
                q.name, "numeric", verified=False, note="maximise the censored log-likelihood numerically"
            )
            for q in m.parameters
        }
        return CensoredDerivation(m, dist, None, (), None, ests, tuple(warnings))
    clik, late = attempt(
        "write the censored log-likelihood in statistics",
        timeout,
        lambda: censored_likelihood(m, dist, timeout),
    )
    if clik is None:
        warnings.append(
            f"writing the censored log-likelihood in statistics timed out after {timeout:g} s; "
            "it is maximised numerically"
        )
        ests = {
            q.name: Estimator(
                q.name, "numeric", verified=False, note="maximise the censored log-likelihood numerically"
            )
            for q in m.parameters
        }
        return CensoredDerivation(m, dist, None, (), None, ests, tuple(warnings))
    ell = clik.log_likelihood
    score = tuple(sp.diff(ell, p) for p in params)
    hessian = sp.Matrix(len(params), len(params), lambda a, b: sp.diff(score[a], params[b]))
    checks = _Checks(clik, params, score, hessian)
    domains = {q.symbol: q.domain for q in m.parameters}
    every = set(params)
    eqs = [sp.together(s) for s in score]
    sols = solve(eqs, params, timeout, "solve the censored score equations")
    if sols is None:
        warnings.append(f"solving the censored score equations timed out after {timeout:g} s")
        sols = []
    candidates = [
        s
        for s in sols
        if all(p in s and admissible(s[p], domains[p]) for p in params)
        and not any(s[p].free_symbols & every for p in params)
    ]
    estimators: dict[str, Estimator] = {}
    for sol in candidates:
        tidy, _ = attempt(
            "simplify the censored estimators",
            timeout,
            lambda sol=sol: {p: sp.simplify(sol[p]) for p in params},
        )
        sol = tidy or sol
        ok, why = checks.check(sol)
        if ok:
            for p in params:
                estimators[p.name] = Estimator(p.name, "closed_form", expr=sol[p], verified=True)
            break
        warnings.append(
            f"discarded a stationary point ({', '.join(f'{p} = {sol[p]}' for p in params)}): {why}"
        )
    if not estimators:
        # profile: a parameter with a unique admissible root of its own score equation
        for p, e in zip(params, eqs):
            roots = solve([e], [p], timeout, f"solve the censored score equation for {p}")
            good = [
                r[p]
                for r in roots or []
                if p in r and admissible(r[p], domains[p]) and p not in r[p].free_symbols
            ]
            if len(good) == 1:
                estimators[p.name] = Estimator(
                    p.name,
                    "numeric",
                    equation=sp.Eq(p, good[0]),
                    verified=False,
                    note="closed form given the other parameters",
                )
        for p, e in zip(params, score):
            if p.name not in estimators:
                estimators[p.name] = Estimator(
                    p.name,
                    "numeric",
                    equation=sp.Eq(e, 0),
                    verified=False,
                    note="no closed form found; solve the equation numerically",
                )
        warnings.append(
            "no closed form for every parameter: the censored log-likelihood is maximised numerically"
        )
    ordered = {q.name: estimators[q.name] for q in m.parameters}
    return CensoredDerivation(m, dist, clik, score, hessian, ordered, tuple(warnings))
