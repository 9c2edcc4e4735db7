"""Shared fixtures and independent numerical tools for the test suite.

Everything numeric here is built in the tests, straight from a model's
density with ``sympy.lambdify``, so that it checks symmle rather than
repeating it: normalisation by ``scipy.integrate.quad`` or direct
summation, sampling (the spec's ``[sampler]`` or a numerical inverse CDF),
maximum likelihood by ``scipy.optimize`` on ``-sum(log f(x_i))``, and
expectations for the Fisher information.

The tools are handed to the tests through the ``tools`` fixture (tests do
not import ``conftest``).
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import shutil
import tempfile
import types
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, optimize, special

import symmle

MODULES = ["scipy", "numpy"]

# The suite has a cache of derivations of its own, empty at the start (the user's is never
# touched); the command-line runs in subprocesses share it through the environment.
os.environ["SYMMLE_CACHE_DIR"] = tempfile.mkdtemp(prefix="symmle-test-cache-")
os.environ.pop("SYMMLE_NO_CACHE", None)
atexit.register(shutil.rmtree, os.environ["SYMMLE_CACHE_DIR"], ignore_errors=True)


# --------------------------------------------------------------------------
# derivations, cached per session
# --------------------------------------------------------------------------


@functools.cache
def _derive(name: str):
    return symmle.derive(name)


@pytest.fixture(scope="session")
def derivation() -> Callable[[str], object]:
    """``derivation(name)``: the Derivation of a catalogue family, derived once per session."""
    return _derive


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator for each test."""
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def rng_factory() -> Callable[[int], np.random.Generator]:
    """``rng_factory(seed)``: a seeded generator."""
    return lambda seed: np.random.default_rng(seed)


# --------------------------------------------------------------------------
# log-density and density built in the tests
# --------------------------------------------------------------------------


def _stable_log(expr: sp.Expr) -> sp.Expr:
    """``log f`` expanded, with log(gamma) and log(factorial) as loggamma (no overflow)."""
    e = sp.expand_log(sp.log(expr), force=True)
    e = e.replace(
        lambda a: isinstance(a, sp.log) and isinstance(a.args[0], sp.gamma),
        lambda a: sp.loggamma(a.args[0].args[0]),
    )
    e = e.replace(
        lambda a: isinstance(a, sp.log) and isinstance(a.args[0], sp.factorial),
        lambda a: sp.loggamma(a.args[0].args[0] + 1),
    )
    e = e.replace(
        lambda a: isinstance(a, sp.log) and isinstance(a.args[0], sp.binomial),
        lambda a: (
            sp.loggamma(a.args[0].args[0] + 1)
            - sp.loggamma(a.args[0].args[1] + 1)
            - sp.loggamma(a.args[0].args[0] - a.args[0].args[1] + 1)
        ),
    )
    return e


def log_density_expr(model) -> sp.Expr:
    """``log f(x; theta)`` as a SymPy expression (constants still symbolic)."""
    return _stable_log(model.density)


def constant_values(model) -> dict[sp.Symbol, float]:
    """Values of the constants used by the tests: those of ``model.point()``."""
    point = model.point()
    return {q.symbol: point[q.symbol] for q in model.constants}


def density_function(model, point: Mapping[sp.Symbol, float]) -> Callable[[np.ndarray], np.ndarray]:
    """``f(x)`` at ``point``: direct where finite, ``exp(log f)`` where the direct form overflows."""
    x = model.variable
    direct = sp.lambdify([x], model.density.subs(point), modules=MODULES)
    logged = sp.lambdify([x], log_density_expr(model).subs(point), modules=MODULES)

    def f(t):
        t = np.asarray(t, dtype=float)
        with np.errstate(all="ignore"):
            v = np.asarray(direct(t), dtype=float) * np.ones_like(t)
            bad = ~np.isfinite(v)
            if np.any(bad):
                v[bad] = np.exp(np.asarray(logged(t[bad]), dtype=float) * np.ones_like(t[bad]))
        return v

    return f


def support_at(model, point: Mapping[sp.Symbol, float]) -> tuple[float, float]:
    def num(e):
        e = sp.sympify(e).subs(point)
        if e == sp.oo:
            return math.inf
        if e == -sp.oo:
            return -math.inf
        return float(e)

    return num(model.support[0]), num(model.support[1])


def _cuts(lo: float, hi: float, extra: Sequence[float] = ()) -> list[float]:
    """Break points for quadrature: scales 1e-3 .. 1e4 from each finite end, plus ``extra``."""
    pts: set[float] = set()
    scales = [10.0**k for k in range(-3, 5)]
    if math.isfinite(lo) and math.isfinite(hi):
        pts.update(lo + (hi - lo) * f for f in (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999))
    elif math.isfinite(lo):
        pts.update(lo + s for s in scales)
    elif math.isfinite(hi):
        pts.update(hi - s for s in scales)
    else:
        pts.update([0.0, *scales, *(-s for s in scales)])
    pts.update(float(e) for e in extra)
    return [lo, *sorted(p for p in pts if lo < p < hi), hi]


def integrate_over(fn: Callable[[float], float], lo: float, hi: float, extra: Sequence[float] = ()) -> float:
    """``quad`` of ``fn`` over ``(lo, hi)``, split at several scales."""
    cuts = _cuts(lo, hi, extra)
    total = 0.0

    def safe(t):
        v = float(fn(t))
        return v if math.isfinite(v) else 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in zip(cuts[:-1], cuts[1:]):
            v, _ = integrate.quad(safe, a, b, limit=400, epsabs=1e-14, epsrel=1e-12)
            total += v
    return total


def sum_over(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> float:
    """Direct sum of ``fn(k)`` over the integers ``lo..hi`` (``hi`` may be infinite)."""
    if math.isfinite(hi):
        ks = np.arange(int(lo), int(hi) + 1, dtype=float)
        return float(np.sum(np.nan_to_num(fn(ks), nan=0.0, posinf=0.0, neginf=0.0)))
    total = 0.0
    start, block = int(lo), 4096
    for _ in range(200):
        ks = np.arange(start, start + block, dtype=float)
        part = float(np.sum(np.nan_to_num(fn(ks), nan=0.0, posinf=0.0, neginf=0.0)))
        total += part
        if abs(part) <= 1e-17 * max(abs(total), 1e-300) and start > lo + 64:
            return total
        start += block
    raise AssertionError("series did not converge")


def total_mass(model, point: Mapping[sp.Symbol, float]) -> float:
    """Integral or sum of the density over the support at ``point``."""
    f = density_function(model, point)
    lo, hi = support_at(model, point)
    if model.discrete:
        return sum_over(f, lo, hi)
    return integrate_over(lambda t: f(t), lo, hi, extra=list(point.values()))


def expectation(model, point: Mapping[sp.Symbol, float], expr: sp.Expr) -> float:
    """``E[expr(X)]`` at ``point`` by quadrature or direct summation."""
    f = density_function(model, point)
    h = sp.lambdify([model.variable], sp.sympify(expr).subs(point), modules=MODULES)
    lo, hi = support_at(model, point)

    def integrand(t):
        t = np.asarray(t, dtype=float)
        with np.errstate(all="ignore"):
            fv = f(t)
            hv = np.asarray(h(t), dtype=float) * np.ones_like(t)
            return np.where(fv > 0, hv * fv, 0.0)

    if model.discrete:
        return sum_over(integrand, lo, hi)
    return integrate_over(lambda t: float(integrand(t)), lo, hi, extra=list(point.values()))


def fisher_by_quadrature(model, point: Mapping[sp.Symbol, float], i: int, j: int) -> float:
    """``E[-d2 log f / d theta_i d theta_j]`` at ``point``, derivatives taken here from the density."""
    logf = log_density_expr(model)
    p, q = model.parameters[i].symbol, model.parameters[j].symbol
    return expectation(model, point, -sp.diff(logf, p, q))


# --------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------


def inverse_cdf_sample(
    model, point: Mapping[sp.Symbol, float], n: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws by a numerically inverted CDF (for models without a sampler)."""
    f = density_function(model, point)
    lo, hi = support_at(model, point)
    u = rng.uniform(size=n)
    if model.discrete:
        top = hi if math.isfinite(hi) else lo + 100_000
        ks = np.arange(lo, top + 1, dtype=float)
        cdf = np.cumsum(np.nan_to_num(f(ks)))
        return ks[np.minimum(np.searchsorted(cdf / cdf[-1], u), ks.size - 1)]
    # map t in (0, 1) onto the support, integrate the density in t, invert by interpolation
    t = np.linspace(0.0, 1.0, 200_001)[1:-1]
    if math.isfinite(lo) and math.isfinite(hi):
        xs, dx = lo + (hi - lo) * t, np.full_like(t, hi - lo)
    elif math.isfinite(lo):
        xs, dx = lo + t / (1 - t), 1 / (1 - t) ** 2
    elif math.isfinite(hi):
        xs, dx = hi - (1 - t) / t, 1 / t**2
    else:
        xs, dx = np.tan(np.pi * (t - 0.5)), np.pi / np.cos(np.pi * (t - 0.5)) ** 2
    dens = np.nan_to_num(f(xs) * dx, nan=0.0, posinf=0.0)
    cdf = integrate.cumulative_trapezoid(dens, t, initial=0.0)
    cdf /= cdf[-1]
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    return np.interp(u, cdf[keep], xs[keep])


def sample(model, point: Mapping[sp.Symbol, float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws at ``point`` by :mod:`symmle.simulate.sampling`, the one place that draws.

    That is the spec's ``[sampler]`` (a NumPy call; ``tests/test_sampling.py``
    checks it against the density), or for a model without one the generic
    sampler built from the density (checked there against the declared ones).
    """
    from symmle.simulate.sampling import draw

    return draw(model, {s.name: float(v) for s, v in point.items()}, n, rng)


# --------------------------------------------------------------------------
# maximum likelihood by a numerical optimiser, straight from the density
# --------------------------------------------------------------------------

_TO = {
    "real": (lambda v: v, lambda u: u),
    "positive": (np.log, np.exp),
    "nonnegative": (np.log, np.exp),
    "unit": (special.logit, special.expit),
}


def optimiser_mle(model, data: np.ndarray, start: Mapping[sp.Symbol, float]) -> dict[sp.Symbol, float]:
    """Maximise ``sum(log f(x_i; theta))`` over the parameters with SciPy.

    The NLL and its gradient are built here from ``log f`` (constants at
    their point values); the search runs in unconstrained coordinates (log
    for positive, logit for unit parameters), Nelder-Mead first, then BFGS
    with the analytic gradient to polish.
    """
    data = np.asarray(data, dtype=float)
    consts = constant_values(model)
    params = [q.symbol for q in model.parameters]
    domains = [q.domain for q in model.parameters]
    logf = log_density_expr(model).subs(consts)
    x = model.variable
    lf = sp.lambdify([x, *params], logf, modules=MODULES)
    grads = [sp.lambdify([x, *params], sp.diff(logf, p), modules=MODULES) for p in params]
    n = data.size

    def theta_of(u):
        return [_TO[d][1](v) for d, v in zip(domains, u)]

    def nll(u):
        th = theta_of(u)
        with np.errstate(all="ignore"):
            v = -float(np.sum(np.asarray(lf(data, *th), dtype=float) * np.ones_like(data))) / n
        return v if math.isfinite(v) else 1e300

    def jac(u):
        th = theta_of(u)
        out = []
        for g, d, t in zip(grads, domains, th):
            with np.errstate(all="ignore"):
                dl = -float(np.sum(np.asarray(g(data, *th), dtype=float) * np.ones_like(data))) / n
            # chain rule for the reparametrisation
            dt = {"real": 1.0, "positive": t, "nonnegative": t, "unit": t * (1 - t)}[d]
            out.append(dl * dt)
        return np.array(out)

    u0 = np.array([_TO[d][0](start[p]) for p, d in zip(params, domains)], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = optimize.minimize(
            nll,
            u0,
            method="Nelder-Mead",
            options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 40_000, "maxfev": 40_000},
        )
        res2 = optimize.minimize(nll, res.x, jac=jac, method="BFGS", options={"gtol": 1e-13, "maxiter": 2000})
    best = res2.x if res2.fun <= res.fun else res.x
    return dict(zip(params, theta_of(best)))


def perturbed(
    point: Mapping[sp.Symbol, float], symbols: Sequence[sp.Symbol], factor: float = 1.1
) -> dict[sp.Symbol, float]:
    """The truth perturbed by 10 % (the catalogue's unit points stay inside (0, 1))."""
    return {s: point[s] * factor if point[s] != 0 else 0.1 for s in symbols}


def statistics(derivation, data: np.ndarray, consts: Mapping[sp.Symbol, float]) -> dict[sp.Symbol, float]:
    """``N`` and each ``T_j = sum g_j(x_i)``, computed here from ``d.sufficient_statistics``."""
    lik = derivation.likelihood
    values = {lik.N: float(np.size(data))}
    syms = {s.symbol.name: s.symbol for s in lik.statistics}
    for name, g in derivation.sufficient_statistics.items():
        fn = sp.lambdify([derivation.model.variable], sp.sympify(g).subs(consts), modules=MODULES)
        values[syms[name]] = float(
            np.sum(
                np.asarray(fn(np.asarray(data, dtype=float)), dtype=float) * np.ones_like(data, dtype=float)
            )
        )
    return values


def closed_form_estimates(
    derivation, data: np.ndarray, consts: Mapping[sp.Symbol, float]
) -> dict[sp.Symbol, float]:
    """The closed-form estimators evaluated on ``data`` by substituting ``N`` and the ``T_j``."""
    stats = statistics(derivation, data, consts)
    out = {}
    for q in derivation.model.parameters:
        e = derivation.solutions[q.name]
        assert e.kind == "closed_form", (q.name, e.kind)
        out[q.symbol] = float(sp.N(e.expr.subs(consts).subs(stats), 30))
    return out


def equation_residual(ev, equation: sp.Eq, values: Mapping[sp.Symbol, float]) -> tuple[float, float]:
    """``(|lhs - rhs|, scale)`` of an equation on one data set.

    The scale is the sum of the absolute values of its terms, each sum over
    the data taken of absolute values, so that an equation ``... = 0`` is
    judged relative to the size of what cancels.
    """
    expr = sp.expand(equation.lhs - equation.rhs)
    residual = abs(ev(expr, values))
    scale = 0.0
    for term in sp.Add.make_args(expr):
        term = term.replace(lambda a: isinstance(a, sp.Sum), lambda a: sp.Sum(sp.Abs(a.function), *a.limits))
        scale += abs(ev(term, values))
    return residual, scale


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


@pytest.fixture(scope="session")
def tools() -> types.SimpleNamespace:
    """The independent numerical tools of this module, as one namespace."""
    return types.SimpleNamespace(
        MODULES=MODULES,
        log_density_expr=log_density_expr,
        constant_values=constant_values,
        density_function=density_function,
        support_at=support_at,
        integrate_over=integrate_over,
        sum_over=sum_over,
        total_mass=total_mass,
        expectation=expectation,
        fisher_by_quadrature=fisher_by_quadrature,
        inverse_cdf_sample=inverse_cdf_sample,
        sample=sample,
        optimiser_mle=optimiser_mle,
        perturbed=perturbed,
        statistics=statistics,
        closed_form_estimates=closed_form_estimates,
        rel_err=rel_err,
        equation_residual=equation_residual,
    )


# --------------------------------------------------------------------------
# seeded samples and compiled estimators per family, cached per session
# (used by test_compile.py, test_fit.py, test_data.py)
# --------------------------------------------------------------------------


def family_seed(name: str) -> int:
    """The seed of a family's sample: ``crc32(name)``, as in ``test_catalogue.py``."""
    return zlib.crc32(name.encode())


@functools.cache
def _compiled(name: str):
    return _derive(name).compile()


@functools.lru_cache(maxsize=64)
def _family_sample(name: str, n: int, seed: int) -> np.ndarray:
    model = _derive(name).model
    data = sample(model, model.point(), n, np.random.default_rng(seed))
    data.flags.writeable = False  # shared between tests: nobody may change it
    return data


def constants_by_name(model) -> dict[str, float]:
    """Values of the constants at ``model.point()``, by name.

    As ``fit`` and compiled estimators take them.
    """
    point = model.point()
    return {q.name: point[q.symbol] for q in model.constants}


@pytest.fixture(scope="session")
def families() -> types.SimpleNamespace:
    """Cached per-family helpers.

    ``compiled(name)``: the family's compiled estimator (compiled once);
    ``sample(name, n, seed=None)``: ``n`` read-only draws at ``model.point()`` from
    the family's sampler (seed ``crc32(name)`` unless given);
    ``constants(model)``: the constants' values at ``model.point()`` by name;
    ``seed(name)``: the default seed.
    """
    return types.SimpleNamespace(
        compiled=_compiled,
        sample=lambda name, n, seed=None: _family_sample(
            name, n, family_seed(name) if seed is None else seed
        ),
        constants=constants_by_name,
        seed=family_seed,
    )
