r"""Maximum a posteriori (MAP) estimation: the log-posterior through the same stationarity solver.

A model with priors (:mod:`symmle.model.prior`) has the log-posterior

.. math::

    \log p(\theta \mid x) = \ell(\theta) + \log \pi(\theta) + \text{const},

where the log-prior adds terms in the parameters only, so the sufficient statistics stay those of
the likelihood.  The log-posterior replaces the log-likelihood in the
:class:`~symmle.symbolic.likelihood.Likelihood` handed to
:func:`~symmle.symbolic.stationarity.solve_stationarity`: the same closed forms, reductions and
numerical checks give the MAP estimator.  Each closed-form MAP is then checked against a numeric
maximisation of the log-posterior (SciPy) on several data sets.

Conjugacy is recognised, never looked up: for each scalar catalogue family, the derivative in the
parameter of the log-posterior minus the family's log-density (its variable replaced by the
parameter, its parameters unknown) must vanish identically.  Its coefficients of the functions of
the parameter give equations for the family's parameters; their solution, in ``N``, the ``T_j``,
the constants and the prior's numbers, is verified numerically (the two log-densities differ by a
constant in the parameter at random data and parameter values) before it is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.budget import attempt
from symmle.model.domains import DOMAINS
from symmle.model.prior import DOMAIN_INTERVALS
from symmle.model.spec import Model
from symmle.symbolic.evaluate import SampleEvaluator, verification_datasets
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.stationarity import Stationarity, solve_stationarity

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["Posterior", "PriorResult", "derive_map", "posterior_likelihood", "conjugate_posterior"]


@dataclass(frozen=True)
class Posterior:
    """A catalogue family the posterior belongs to, with its parameters as expressions.

    Attributes
    ----------
    parameter : str
        The model parameter that is the family's variable.
    family : str
    parameters : tuple of (str, sympy.Expr)
        The family's parameters and constants, in ``N``, the statistics ``T_j``, the model's
        constants and the prior's numbers.
    """

    parameter: str
    family: str
    parameters: tuple[tuple[str, sp.Expr], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "family": self.family,
            "parameters": {k: str(v) for k, v in self.parameters},
        }


@dataclass(frozen=True, eq=False)
class PriorResult:
    """What a MAP derivation adds: the priors, the log-prior, the MLE derivation beside it, the posterior."""

    priors: tuple
    log_prior: sp.Expr
    log_posterior: sp.Expr
    mle: Derivation
    posterior: Posterior | None
    #: closed-form MAP estimators that agreed with a numeric maximisation of the log-posterior
    checked: tuple[str, ...] = ()


def log_prior(model: Model) -> sp.Expr:
    """The sum of the priors' log-densities, expanded."""
    return sp.Add(*[p.log_density for p in model.prior])


def posterior_likelihood(lik: Likelihood, model: Model) -> Likelihood:
    """``lik`` with the log-prior added to its log-likelihood (the objective the solver maximises)."""
    return replace(lik, model=model, log_likelihood=lik.log_likelihood + log_prior(model))


def derive_map(m: Model, mle: Derivation, timeout: float | None) -> Derivation:
    """The MAP derivation of ``m`` (a model with priors), given the MLE derivation of its likelihood."""
    from symmle.symbolic.derivation import Derivation

    lik = posterior_likelihood(mle.likelihood, m)
    st = solve_stationarity(lik, timeout=timeout)
    warnings = [w for w in st.warnings]
    st, checked, notes = _check_against_optimiser(lik, st)
    warnings += notes
    posterior = None
    if len(m.parameters) == 1:
        posterior, late = attempt("recognise the posterior family", timeout, lambda: conjugate_posterior(lik))
        if late:
            warnings.append(
                f"matching the posterior against the catalogue timed out after {timeout:g} s; "
                "no posterior family is reported"
            )
    result = PriorResult(m.prior, log_prior(m), lik.log_likelihood, mle, posterior, checked)
    return Derivation(m, lik, st, mle.information, tuple(warnings), prior=result)


# --------------------------------------------------------------------------------------------------
# the MAP against a numeric maximisation of the log-posterior
# --------------------------------------------------------------------------------------------------


def _to_z(v: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.log(v)
    if domain == "unit":
        return math.log(v / (1 - v))
    return v


def _from_z(z: np.ndarray, domains: list[str]) -> list[float]:
    out = []
    for t, d in zip(z, domains):
        if d in ("positive", "nonnegative"):
            out.append(math.exp(min(t, 700.0)))
        elif d == "unit":
            out.append(1 / (1 + math.exp(-max(min(t, 700.0), -700.0))))
        else:
            out.append(float(t))
    return out


def numeric_map(
    lik: Likelihood, data: np.ndarray, start: dict[sp.Symbol, float] | None = None
) -> dict[sp.Symbol, float] | None:
    """The maximiser of the log-posterior of ``lik`` on ``data`` by SciPy (unconstrained coordinates)."""
    from scipy.optimize import minimize

    m = lik.model
    constants = m.constant_point()
    ev = SampleEvaluator(lik, data, constants)
    params = [q for q in m.parameters if q.domain in ("real", "positive", "nonnegative", "unit")]
    if len(params) != len(m.parameters):
        return None
    point = m.point()
    domains = [q.domain for q in params]
    syms = [q.symbol for q in params]
    objective = lik.log_likelihood

    def f(z: np.ndarray) -> float:
        v = ev(objective, dict(zip(syms, _from_z(z, domains))))
        return -v if np.isfinite(v) else 1e300

    best = None
    starts = [[_to_z(point[s], d) for s, d in zip(syms, domains)]]
    if start:
        starts.append([_to_z(start[s], d) for s, d in zip(syms, domains)])
    for z0 in starts:
        r = minimize(
            f, np.array(z0), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000}
        )
        r = minimize(f, r.x, method="BFGS", options={"gtol": 1e-10})
        if best is None or r.fun < best.fun:
            best = r
    return dict(zip(syms, _from_z(best.x, domains)))


def _check_against_optimiser(
    lik: Likelihood, st: Stationarity
) -> tuple[Stationarity, tuple[str, ...], list[str]]:
    """Each closed-form MAP equals SciPy's maximiser of the log-posterior on several data sets."""
    m = lik.model
    closed = {n: e for n, e in st.estimators.items() if e.kind == "closed_form"}
    if not closed:
        return st, (), []
    constants = m.constant_point()
    point = m.point()
    notes: list[str] = []
    failed: set[str] = set()
    for data in verification_datasets(lik, constants, point, count=3, rng=np.random.default_rng(415)):
        ev = SampleEvaluator(lik, data, constants)
        fixed = {q.symbol: point[q.symbol] for q in m.parameters}
        formula = {}
        for q in m.parameters:
            e = closed.get(q.name)
            if e is not None:
                formula[q.symbol] = ev(e.expr, fixed)
        found = numeric_map(lik, data, {**fixed, **formula})
        if found is None:
            return st, (), []
        for q in m.parameters:
            if q.symbol in formula:
                a, b = formula[q.symbol], found[q.symbol]
                if not (np.isfinite(a) and abs(a - b) <= 1e-5 * max(1.0, abs(b))):
                    failed.add(q.name)
    estimators = dict(st.estimators)
    for name in failed:
        estimators[name] = replace(estimators[name], verified=False)
        notes.append(
            f"the closed-form MAP of {name} disagrees with a numeric maximisation of the log-posterior"
        )
    checked = tuple(n for n in closed if n not in failed)
    return replace(st, estimators=estimators), checked, notes


# --------------------------------------------------------------------------------------------------
# conjugacy: the posterior kernel matched against the catalogue
# --------------------------------------------------------------------------------------------------


def _bases(expr: sp.Expr, theta: sp.Symbol) -> dict[sp.Expr, sp.Expr]:
    """``expr`` as ``sum_k c_k b_k(theta)``: ``{b_k: c_k}`` with the ``c_k`` free of theta."""
    out: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        c, b = term.as_independent(theta, as_Add=False)
        out[b] = out.get(b, sp.S.Zero) + c
    return out


def _candidates(model: Model) -> list[tuple[str, Model]]:
    from symmle.model.build import load_model
    from symmle.model.catalogue import family_names, family_path

    out = []
    for name in family_names():
        try:
            fam = load_model(family_path(name))
        except Exception:  # noqa: BLE001 - a family that does not load is not a candidate
            continue
        if fam.is_vector or fam.is_regression or fam.discrete:
            continue
        out.append((name, fam))
    return out


def conjugate_posterior(lik: Likelihood) -> Posterior | None:
    """The catalogue family of the posterior of the one parameter of ``lik``'s model, or ``None``."""
    m = lik.model
    if len(m.parameters) != 1 or lik.log_likelihood.has(sp.Sum):
        return None
    q = m.parameters[0]
    theta = q.symbol
    kernel_d = sp.diff(lik.log_likelihood, theta)
    own = _bases(kernel_d, theta)
    found = []
    for name, fam in _candidates(m):
        lo, hi = fam.support
        quantities = [*fam.parameters, *fam.constants]
        # the family's symbols as fresh unknowns: a name may be the model's too
        unknowns = {s.symbol: sp.Dummy(s.name, **DOMAINS[s.domain][0]) for s in quantities}
        logf = sp.expand_log(sp.log(fam.density.xreplace(unknowns)), force=True).xreplace(
            {fam.variable: theta}
        )
        if any(e.free_symbols for e in (lo, hi)):
            continue
        dlo, dhi = DOMAIN_INTERVALS[q.domain]
        if not (lo == dlo and hi == dhi):
            continue
        theirs = _bases(sp.diff(logf, theta), theta)
        if not set(own) <= set(theirs):
            continue
        eqs = [sp.together(own.get(b, 0) - theirs.get(b, 0)) for b in set(own) | set(theirs)]
        eqs = [sp.numer(e) for e in eqs if e != 0]
        syms = list(unknowns.values())
        try:
            sols = sp.solve(eqs, syms, dict=True)
        except (NotImplementedError, ValueError, TypeError):
            continue
        for sol in sols:
            if not all(s in sol and not (sol[s].free_symbols & set(syms)) for s in syms):
                continue
            values = tuple((qq.name, sp.simplify(sol[unknowns[qq.symbol]])) for qq in quantities)
            domains = {qq.name: qq.domain for qq in quantities}
            if _verify(
                lik,
                logf.xreplace({unknowns[qq.symbol]: v for qq, (_, v) in zip(quantities, values)}),
                values,
                domains,
            ):
                integer = any(d in ("integer", "positive_integer") for d in domains.values())
                found.append(((integer, len(values), name), Posterior(q.name, name, values)))
                break
    if not found:
        return None
    return min(found, key=lambda t: t[0])[1]


def _verify(lik: Likelihood, logf: sp.Expr, values, domains) -> bool:
    """At data sets, the family's parameters lie in their domains and ``log posterior - log f`` is flat."""
    m = lik.model
    q = m.parameters[0]
    constants = m.constant_point()
    rng = np.random.default_rng(2718)
    base = DOMAINS[q.domain][1]
    for data in verification_datasets(lik, constants, m.point(), count=3, rng=rng):
        ev = SampleEvaluator(lik, data, constants)
        for name, v in values:
            if not in_domain(ev(v, {}), domains[name]):
                return False
        if q.domain == "unit":
            thetas = rng.uniform(0.05, 0.95, 4)
        elif q.domain in ("positive", "nonnegative"):
            thetas = base * rng.uniform(0.2, 3.0, 4)
        else:
            thetas = rng.normal(base, 2.0, 4)
        diffs = []
        for t in thetas:
            a = ev(lik.log_likelihood, {q.symbol: float(t)})
            b = ev(logf, {q.symbol: float(t)})
            diffs.append(a - b)
        diffs = np.array(diffs)
        if not np.all(np.isfinite(diffs)):
            return False
        if np.ptp(diffs) > 1e-8 * max(1.0, float(np.max(np.abs(diffs)))):
            return False
    return True
