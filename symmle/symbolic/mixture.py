r"""EM for a finite mixture, derived from the derivation of one component.

A K-component mixture of a family :math:`f(x; \theta)` (:mod:`symmle.model.mixture`) has the
density :math:`p(x) = \sum_k w_k f(x; \theta_k)`.  With the indicators :math:`z_{ik}` (observation
:math:`i` comes from component :math:`k`) the complete-data log-likelihood is
:math:`\ell_c = \sum_i \sum_k z_{ik} [\log w_k + \log f(x_i; \theta_k)]`.  EM replaces each
:math:`z_{ik}` by its expectation given the data at the current estimate :math:`\theta'`, the
responsibility :math:`r_{ik} = w_k f(x_i; \theta_k) / \sum_l w_l f(x_i; \theta_l)` (E-step), and
maximises

.. math::

    Q(\theta, \theta') = \sum_i \sum_k r_{ik} [\log w_k + \log f(x_i; \theta_k)]
                       = \sum_k \Big[ N_k \log w_k + \ell(\theta_k)\big|_{N \to N_k,\, T_j \to S_{kj}} \Big]

(M-step), where :math:`N_k = \sum_i r_{ik}` and :math:`S_{kj} = \sum_i r_{ik} g_j(x_i)`.  The
second form holds because the component's log-likelihood is *linear* in N and its sufficient
statistics :math:`T_j = \sum_i g_j(x_i)` (the reduction of :mod:`symmle.symbolic.likelihood`):
weighting each observation by :math:`r_{ik}` turns N into :math:`N_k` and :math:`T_j` into
:math:`S_{kj}`.  Hence the component's score, with the same substitution, is the derivative of Q,
and its closed-form estimators, substituted, are the M-step; a parameter without a closed form (the
gamma shape) solves the substituted equation numerically, with its exact derivatives.  The weights
maximise :math:`\sum_k N_k \log w_k` on the simplex: the Lagrangian
:math:`\mathcal{L} = Q + \lambda (1 - \sum_k w_k)` gives :math:`w_k = N_k / \lambda` and, since
:math:`\sum_k N_k = \sum_i \sum_k r_{ik} = N`, :math:`w_k = N_k / N`.

Every result is checked numerically here before it is reported (:class:`MixtureDerivation` says
which passed): Q in weighted sums against the direct double sum on random data and
responsibilities; the derivatives against the weighted score; each M-step update against a SciPy
maximisation of the weighted log-likelihood :math:`\sum_i r_i \log f(x_i; \theta)` on random
weighted data (and the weighted score vanishing there); the weights against a maximisation on the
simplex.  The symbolic steps run under the time budget.

Examples
--------
>>> import symmle
>>> d = symmle.derive("exponential", mixture=2)
>>> d.mixture.update("lam")
N_k/S_k1
>>> d.mixture.weights, d.mixture.verified
(N_k/N, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base.budget import budget
from symmle.base.errors import DerivationError
from symmle.base.numeric import to_function
from symmle.model.mixture import MixtureSymbols, mixture_symbols
from symmle.model.spec import Model
from symmle.symbolic.evaluate import verification_datasets

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["MStep", "MixtureDerivation", "derive_mixture"]

#: relative tolerance of the comparison of an update with SciPy's maximiser
_AGREE = 1e-5


@dataclass(frozen=True)
class MStep:
    """The M-step update of one parameter of component k.

    Attributes
    ----------
    parameter : str
    symbol : Symbol
        The component's parameter (``mu_k``).
    kind : str
        ``closed_form`` (``expr`` in ``N_k``, the ``S_kj`` and constants), ``profile`` (``expr``
        in those and the parameters solved numerically) or ``numeric`` (``equation`` is solved
        numerically, with its exact derivatives).
    expr : Expr or None
    equation : Eq or None
    verified : bool
        Whether it agreed with a SciPy maximisation of the weighted log-likelihood.
    """

    parameter: str
    symbol: sp.Symbol
    kind: str
    expr: sp.Expr | None = None
    equation: sp.Eq | None = None
    verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "expr": None if self.expr is None else str(self.expr),
            "equation": None if self.equation is None else str(self.equation),
            "verified": self.verified,
        }


@dataclass(frozen=True, eq=False)
class MixtureDerivation:
    """What the mixture modifier adds to a derivation: the EM of K components, derived and checked.

    Attributes
    ----------
    K : int
    symbols : MixtureSymbols
        The model's mixture symbols (:func:`~symmle.model.mixture.mixture_symbols`).
    component : Derivation
        The derivation of one component (N IID samples of the family).
    statistics : tuple of (Symbol, Symbol, Expr)
        ``(T_j, S_kj, g_j(x))``: each sufficient statistic, its weighted version and its summand.
    substitution : mapping
        ``{N: N_k, T_j: S_kj, theta: theta_k}``.
    density : Expr
        The mixture density with the K components written out (``w_1 f(x; theta_1) + ...``).
    component_density : Expr
        :math:`f(x; \\theta_k)`.
    responsibilities : tuple of Expr
        :math:`r_1(x), \\dots, r_K(x)`, written out in the ``w_l`` and ``theta_l``.
    q_component : Expr
        :math:`N_k \\log w_k + Q_k(\\theta_k)`: Q is its sum over k.
    score : tuple of (str, Expr)
        :math:`\\partial Q / \\partial \\theta_k`, per parameter.
    m_step : tuple of MStep
    weights : Expr
        ``N_k/N``.
    lagrangian : Expr
        The Lagrangian of the weights at the given K, in ``w_1..w_K``, ``N_1..N_K`` and the multiplier.
    multiplier : Expr
        The multiplier at the stationary point (``N``).
    checks : tuple of (str, bool)
        Each numerical check and whether it passed.
    """

    K: int
    symbols: MixtureSymbols
    component: Derivation
    statistics: tuple[tuple[sp.Symbol, sp.Symbol, sp.Expr], ...]
    substitution: Mapping[sp.Symbol, sp.Symbol]
    density: sp.Expr
    component_density: sp.Expr
    responsibilities: tuple[sp.Expr, ...]
    q_component: sp.Expr
    score: tuple[tuple[str, sp.Expr], ...]
    m_step: tuple[MStep, ...]
    weights: sp.Expr
    lagrangian: sp.Expr
    multiplier: sp.Expr
    checks: tuple[tuple[str, bool], ...]

    @property
    def verified(self) -> bool:
        """Whether every numerical check passed."""
        return all(ok for _, ok in self.checks)

    def check(self, name: str) -> bool:
        """Whether the check called ``name`` ran and passed."""
        return any(n == name and ok for n, ok in self.checks)

    def update(self, parameter: str) -> sp.Expr | sp.Eq | None:
        """The M-step of ``parameter``: its expression, or the equation it solves numerically."""
        for s in self.m_step:
            if s.parameter == parameter:
                return s.expr if s.expr is not None else s.equation
        raise KeyError(parameter)

    @property
    def weighted_statistics(self) -> dict[str, sp.Expr]:
        """``{"N_k": 1, "S_k1": g_1(x), ...}``: each is the sum over i of ``r_ik`` times its summand."""
        out: dict[str, sp.Expr] = {self.symbols.count.name: sp.S.One}
        out.update({s.name: g for _, s, g in self.statistics})
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``mixture`` section of the JSON document (SymPy strings)."""
        sy = self.symbols
        return {
            "K": self.K,
            "index": sy.index.name,
            "parameters": {name: s.name for name, s in sy.component.items()},
            "weight": sy.weight.name,
            "density": str(self.density),
            "responsibilities": {f"r_{k + 1}": str(r) for k, r in enumerate(self.responsibilities)},
            "weighted_statistics": {name: str(g) for name, g in self.weighted_statistics.items()},
            "Q": f"Sum({self.q_component}, ({sy.index}, 1, {self.K}))",
            "score": {name: str(s) for name, s in self.score},
            "m_step": {s.parameter: s.to_dict() for s in self.m_step},
            "weights": {
                "expr": str(self.weights),
                "lagrangian": str(self.lagrangian),
                "multiplier": str(self.multiplier),
                "verified": self.check("weights"),
            },
            "checks": {name: ok for name, ok in self.checks},
        }


# --------------------------------------------------------------------------------------------------
# the derivation
# --------------------------------------------------------------------------------------------------


def _refuse(component: Derivation) -> None:
    """One-line errors for a family whose EM symmle cannot derive (the same cases EM refuses)."""
    m = component.model
    lik = component.likelihood
    for name, e in component.solutions.items():
        if e.kind not in ("closed_form", "numeric"):
            raise DerivationError(
                f"--mixture: the estimator of {name} in '{m.name}' is of kind {e.kind}: "
                "a weighted M-step needs a closed form or a smooth numeric solve"
            )
    if lik.log_likelihood.has(sp.Sum) or component.stationarity.kinks:
        raise DerivationError(
            f"--mixture: the log-likelihood of '{m.name}' does not reduce to N and sufficient statistics, "
            "so symmle has no weighted M-step for it"
        )


def derive_mixture(m: Model, component: Derivation, timeout: float | None) -> Derivation:
    """The derivation of ``m`` (a model with ``mixture`` K) from the derivation of one component."""
    from symmle.symbolic.derivation import Derivation

    _refuse(component)
    sy = mixture_symbols(m)
    lik, st = component.likelihood, component.stationarity
    K = sy.K
    theta = list(m.parameter_symbols)
    theta_k = [sy.component[q.name] for q in m.parameters]
    with budget("mixture: the weighted statistics and Q", timeout):
        statistics = tuple(
            (s.symbol, sy.statistic(j, s.symbol), s.expr) for j, s in enumerate(lik.statistics, start=1)
        )
        sub: dict[sp.Symbol, sp.Symbol] = {lik.N: sy.count}
        sub.update({t: s for t, s, _ in statistics})
        sub.update(dict(zip(theta, theta_k)))
        ell_k = lik.log_likelihood.xreplace(sub)
        q_component = sy.count * sp.log(sy.weight) + ell_k
        f_k = m.density.xreplace(dict(zip(theta, theta_k)))
        density = sp.Add(*[sy.at(sy.weight, j) * _at(f_k, sy, j) for j in range(1, K + 1)])
        responsibilities = tuple(sy.at(sy.weight, j) * _at(f_k, sy, j) / density for j in range(1, K + 1))
    with budget("mixture: the derivatives of Q", timeout):
        score = []
        for p, s in zip(st.parameters, st.score):
            formula = s.xreplace(sub)
            direct = sp.diff(ell_k, sub[p])
            if sp.simplify(formula - direct) != 0:  # substitution and differentiation commute
                raise DerivationError(f"internal error: the derivative of Q in {p} is not the weighted score")
            score.append((p.name, formula))
    with budget("mixture: the M-step", timeout):
        m_step = []
        profiled = {p for p, _ in st.profile}
        for q in m.parameters:
            e = component.solutions[q.name]
            pk = sy.component[q.name]
            if e.kind == "closed_form":
                m_step.append(MStep(q.name, pk, "closed_form", _tidy(e.expr.xreplace(sub))))
            elif q.symbol in profiled:
                expr = dict(st.profile)[q.symbol].xreplace(sub)
                m_step.append(MStep(q.name, pk, "profile", _tidy(expr)))
            else:
                eq = e.equation.xreplace(sub)
                m_step.append(MStep(q.name, pk, "numeric", None, eq))
    lagrangian, solution, multiplier = _lagrange(sy, timeout)
    weights = sy.count / lik.N
    checks = [("responsibilities", _check_responsibilities(m, sy, responsibilities))]
    checks += list(_verify(m, component, sy, statistics, sub, q_component, score, m_step))
    weights_ok = _check_weights(sy, solution)
    checks.append(("weights", weights_ok))
    verified = {name for name, ok in checks if ok}
    m_step = [replace(s, verified=f"m_step:{s.parameter}" in verified) for s in m_step]
    result = MixtureDerivation(
        K=K,
        symbols=sy,
        component=component,
        statistics=statistics,
        substitution=sub,
        density=density,
        component_density=f_k,
        responsibilities=responsibilities,
        q_component=q_component,
        score=tuple(score),
        m_step=tuple(m_step),
        weights=weights,
        lagrangian=lagrangian,
        multiplier=multiplier,
        checks=tuple(checks),
    )
    warnings = list(component.warnings)
    for name, ok in checks:
        if not ok:
            warnings.append(f"mixture: the numerical check '{name}' failed; treat that result with care")
    return Derivation(m, lik, st, component.information, tuple(warnings), mixture=result)


def _at(expr: sp.Expr, sy: MixtureSymbols, j: Any) -> sp.Expr:
    """``expr`` in the component symbols (``mu_k``) written for component ``j`` (``mu_1``)."""
    return expr.xreplace({s: sy.at(s, j) for s in sy.component.values()} | {sy.weight: sy.at(sy.weight, j)})


def _tidy(expr: sp.Expr) -> sp.Expr:
    """The shorter of ``expr`` and its expansion (``S_k2/N_k - S_k1**2/N_k**2``)."""
    forms = [expr, sp.expand(expr), sp.factor(expr)]
    return min(forms, key=lambda e: (sp.count_ops(e), len(str(e))))


def _lagrange(sy: MixtureSymbols, timeout: float | None) -> tuple[sp.Expr, dict, sp.Expr]:
    """The Lagrangian of the weights at the given K, its stationary point and the multiplier there."""
    K = sy.K
    lam = sy.multiplier
    w = [sy.at(sy.weight, j) for j in range(1, K + 1)]
    n = [sy.at(sy.count, j) for j in range(1, K + 1)]
    with budget("mixture: the weights by the Lagrangian", timeout):
        lagrangian = sp.Add(*[nj * sp.log(wj) for nj, wj in zip(n, w)]) + lam * (1 - sp.Add(*w))
        eqs = [sp.diff(lagrangian, wj) for wj in w] + [sp.diff(lagrangian, lam)]
        found = sp.solve(eqs, [*w, lam], dict=True)
        if len(found) != 1:
            raise DerivationError(
                "internal error: the Lagrangian of the weights has no unique stationary point"
            )
        solution = found[0]
        total = sp.Add(*n)
        for nj, wj in zip(n, w):
            if sp.simplify(solution[wj] - nj / total) != 0:
                raise DerivationError("internal error: the Lagrangian does not give w_k = N_k / sum_l N_l")
        if sp.simplify(solution[lam] - total) != 0:
            raise DerivationError("internal error: the multiplier is not sum_l N_l")
    N = sp.Symbol("N", positive=True, integer=True)
    return lagrangian, solution, N


# --------------------------------------------------------------------------------------------------
# numerical checks
# --------------------------------------------------------------------------------------------------


def _to_z(v: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.log(v)
    if domain == "unit":
        return math.log(v / (1 - v))
    return float(v)


def _from_z(z: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.exp(max(min(z, 700.0), -700.0))
    if domain == "unit":
        return 1 / (1 + math.exp(-max(min(z, 700.0), -700.0)))
    return float(z)


def _close(a: float, b: float, tol: float) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and abs(a - b) <= tol * max(1.0, abs(a), abs(b)))


def _random_parameter(domain: str, base: float, rng: np.random.Generator) -> float:
    if domain == "unit":
        return float(rng.uniform(0.15, 0.85))
    if domain in ("positive", "nonnegative"):
        return float(base * rng.uniform(0.5, 2.0))
    return float(base + rng.normal(0.0, 1.0))


def _verify(m, component, sy, statistics, sub, q_component, score, m_step):
    """Yield ``(name, passed)`` for Q, the derivatives and each M-step update."""
    lik = component.likelihood
    constants = m.constant_point()
    point = m.point()
    params = list(m.parameters)
    names = [q.name for q in params]
    domains = [q.domain for q in params]
    theta = [q.symbol for q in params]
    theta_k = [sy.component[n] for n in names]
    stats = [s for _, s, _ in statistics]
    logf = to_function([m.variable, *theta], lik.log_density.subs(constants))
    dlogf = [to_function([m.variable, *theta], sp.diff(lik.log_density, p).subs(constants)) for p in theta]
    gs = [to_function([m.variable], g.subs(constants)) for _, _, g in statistics]
    q_fn = to_function([sy.count, sy.weight, *stats, *theta_k], q_component.subs(constants))
    score_fn = {name: to_function([sy.count, *stats, *theta_k], s.subs(constants)) for name, s in score}
    rng = np.random.default_rng(1414)
    datasets = [
        np.asarray(x, dtype=float)
        for x in verification_datasets(lik, constants, point, count=3, rng=np.random.default_rng(2214))
    ]
    K = max(sy.K, 2)

    def weighted(x, r):
        with np.errstate(all="ignore"):
            g = [np.broadcast_to(np.asarray(fn(x), float), x.shape) for fn in gs]
        return float(np.sum(r)), [float(np.sum(r * gj)) for gj in g]

    def summed(fn, x, r, th):
        with np.errstate(all="ignore"):
            return float(np.sum(r * np.asarray(fn(x, *th), float)))

    # Q in weighted sums = the double sum over i and k of r_ik [log w_k + log f(x_i; theta_k)]
    q_ok, score_ok = True, True
    for x in datasets:
        r = rng.dirichlet(np.ones(K), size=x.size)
        w = rng.dirichlet(np.ones(K))
        th = [[_random_parameter(q.domain, point[q.symbol], rng) for q in params] for _ in range(K)]
        direct, formula = 0.0, 0.0
        for j in range(K):
            n, s = weighted(x, r[:, j])
            direct += float(np.sum(r[:, j])) * math.log(w[j]) + summed(logf, x, r[:, j], th[j])
            with np.errstate(all="ignore"):
                formula += float(q_fn(n, w[j], *s, *th[j]))
            for name, _ in score:
                a = summed(dlogf[names.index(name)], x, r[:, j], th[j])
                with np.errstate(all="ignore"):
                    b = float(score_fn[name](n, *s, *th[j]))
                score_ok &= _close(a, b, 1e-8)
        q_ok &= _close(direct, formula, 1e-9)
    yield "Q", bool(q_ok)
    yield "derivatives", bool(score_ok)

    # each update maximises the weighted log-likelihood sum_i r_i log f(x_i; theta)
    closed = {
        s.parameter: to_function([sy.count, *stats, *theta_k], s.expr.subs(constants))
        for s in m_step
        if s.expr is not None
    }
    order = [p.name for p, _ in component.stationarity.profile if p.name in closed]
    order += [s.parameter for s in m_step if s.expr is not None and s.parameter not in order]
    reduced = [s for s in m_step if s.kind == "numeric"]
    rdom = [domains[names.index(t.parameter)] for t in reduced]
    if reduced:
        ell_k = q_component - sy.count * sp.log(sy.weight)
        prof = component.stationarity.profile
        profile_ell = ell_k.xreplace({sub[p]: v.xreplace(sub) for p, v in reversed(prof)})
        objective = to_function([sy.count, *stats, *[s.symbol for s in reduced]], profile_ell.subs(constants))
        equations = [
            to_function([sy.count, *stats, *theta_k], (s.equation.lhs - s.equation.rhs).subs(constants))
            for s in reduced
        ]
    ok = {s.parameter: True for s in m_step}
    for x in datasets:
        r = rng.uniform(0.1, 1.0, x.size)
        n, s = weighted(x, r)
        est = {q.name: point[q.symbol] for q in params}
        if reduced:
            z0 = [_to_z(est[t.parameter], d) for t, d in zip(reduced, rdom)]
            for t, v in zip(reduced, _maximise(lambda z, n=n, s=s: objective(n, *s, *z), z0, rdom, n)):
                est[t.parameter] = v
        for name in order:  # the profiles in their order after the numeric ones, then the closed forms
            with np.errstate(all="ignore"):
                est[name] = float(closed[name](n, *s, *[est[nm] for nm in names]))
        values = [est[nm] for nm in names]
        z0 = [_to_z(point[q.symbol], q.domain) for q in params]
        found = _maximise(lambda z, x=x, r=r: np.sum(r * np.asarray(logf(x, *z), float)), z0, domains, n)
        for st in m_step:
            idx = names.index(st.parameter)
            grad = summed(dlogf[idx], x, r, values)
            with np.errstate(all="ignore"):
                size = float(np.sum(np.abs(r * np.asarray(dlogf[idx](x, *values), float))))
            agree = _close(est[st.parameter], found[idx], _AGREE)
            flat = abs(grad) <= 1e-6 * max(size, 1.0)
            ok[st.parameter] &= bool(agree and flat)
            if st.kind == "numeric":
                with np.errstate(all="ignore"):
                    resid = float(equations[reduced.index(st)](n, *s, *values))
                ok[st.parameter] &= bool(abs(resid) <= 1e-6)
    for st in m_step:
        yield f"m_step:{st.parameter}", bool(ok[st.parameter])


def _maximise(fn, z0, domains, scale) -> list[float]:
    """SciPy's maximiser of ``fn(theta)`` over unconstrained coordinates ``z`` (Nelder-Mead, then BFGS)."""
    from scipy.optimize import minimize

    def f(z):
        th = [_from_z(t, d) for t, d in zip(z, domains)]
        with np.errstate(all="ignore"):
            v = float(fn(th))
        return -v / scale if np.isfinite(v) else 1e300

    best = None
    z0 = np.asarray(z0, dtype=float)
    for z in (z0, z0 + 0.3):
        res = minimize(f, z, method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 8000})
        res = minimize(f, res.x, method="BFGS", options={"gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    return [_from_z(t, d) for t, d in zip(best.x, domains)]


def _check_responsibilities(m: Model, sy: MixtureSymbols, responsibilities: tuple[sp.Expr, ...]) -> bool:
    """At random weights, parameters and data, each responsibility lies in [0, 1] and they sum to 1."""
    K = sy.K
    params = list(m.parameters)
    constants = m.constant_point()
    point = m.point()
    w = [sy.at(sy.weight, j) for j in range(1, K + 1)]
    th = [sy.at(sy.component[q.name], j) for j in range(1, K + 1) for q in params]
    fns = [to_function([m.variable, *w, *th], r.subs(constants)) for r in responsibilities]
    rng = np.random.default_rng(99)
    lo, hi = m.support_at({**point, **constants})
    for _ in range(5):
        if m.discrete:
            x = float(lo + rng.integers(0, 5)) if np.isfinite(lo) else float(rng.integers(-3, 4))
            x = min(x, hi)
        elif np.isfinite(lo) and np.isfinite(hi):
            x = float(lo + (hi - lo) * rng.uniform(0.1, 0.9))
        elif np.isfinite(lo):
            x = float(lo + rng.gamma(2.0, 0.7))
        elif np.isfinite(hi):
            x = float(hi - rng.gamma(2.0, 0.7))
        else:
            x = float(rng.normal(0.0, 2.0))
        ws = list(rng.dirichlet(np.ones(K)))
        ths = [_random_parameter(q.domain, point[q.symbol], rng) for _ in range(K) for q in params]
        with np.errstate(all="ignore"):
            values = [float(fn(x, *ws, *ths)) for fn in fns]
        if not all(np.isfinite(v) and -1e-12 <= v <= 1 + 1e-12 for v in values):
            return False
        if abs(sum(values) - 1.0) > 1e-10:
            return False
    return True


def _check_weights(sy: MixtureSymbols, solution: Mapping) -> bool:
    """``w_j = N_j / sum N`` against SciPy's maximiser of ``sum_j N_j log w_j`` on the simplex."""
    from scipy.optimize import minimize

    K = sy.K
    rng = np.random.default_rng(77)
    w = [sy.at(sy.weight, j) for j in range(1, K + 1)]
    n = [sy.at(sy.count, j) for j in range(1, K + 1)]
    formula = [to_function(n, solution[wj]) for wj in w]
    for _ in range(3):
        counts = rng.uniform(0.5, 20.0, K)

        def f(z, counts=counts):
            lw = z - np.logaddexp.reduce(np.r_[z, 0.0])
            lw = np.r_[lw, -np.logaddexp.reduce(np.r_[z, 0.0])]
            return -float(np.sum(counts * lw))

        res = minimize(f, np.zeros(K - 1), method="BFGS", options={"gtol": 1e-12})
        e = np.exp(np.r_[res.x, 0.0])
        found = e / e.sum()
        for j in range(K):
            if not _close(float(formula[j](*counts)), float(found[j]), 1e-6):
                return False
        if not all(v > 0 for v in (float(fn(*counts)) for fn in formula)):
            return False
    return True
