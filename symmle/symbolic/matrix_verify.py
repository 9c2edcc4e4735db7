"""Matrix results checked entrywise, at D = 2 and D = 3, before they are reported.

Every result of :mod:`symmle.symbolic.matrix_calculus`, :mod:`~symmle.symbolic.matrix_solve` and
:mod:`~symmle.symbolic.matrix_information` is computed a second way, with no matrix calculus: each
``MatrixSymbol`` becomes an explicit matrix of scalar symbols (:mod:`symmle.symbolic.matrix_explicit`;
a symmetric one with ``S_jk = S_kj``), the scalar function an ordinary SymPy expression in them,
and SymPy's ordinary ``sp.diff`` differentiates it entry by entry.  Both sides are evaluated at
random admissible points in 30-digit arithmetic: well-conditioned spd matrices, random vectors,
statistics from random data.  Second derivatives are those of the entrywise score, taken by the
complex step ``d s/d theta_k = Im s(theta + i h e_k) / h`` (``h = 1e-30``), which for an analytic
score is exact to the working precision: no difference of nearby numbers is formed.

* :func:`verify_gradient`: ``G`` against ``df/dX_jk``.  For a symmetric ``X`` the coordinates are
  the distinct entries, so ``df/dX_jj = G_jj`` and ``df/dX_jk = G_jk + G_kj`` (``j != k``).
* :func:`verify_root`: an equation ``G = 0`` holds entrywise at a candidate ``X = S(...)`` (a solution
  in terms of other symbols: ``p = T1/lambda``, ``v = dg(T2)/N - T1 o T1/N^2``), relative to the size
  of ``G`` at a random ``X``.
* :func:`verify_stationary`: on several random data sets, the entrywise score vanishes at the
  solution (relative to its size at a perturbed point), the entrywise Hessian in the parameters'
  coordinates (``vech`` for a symmetric matrix) is negative definite there, and a solution for a
  symmetric (spd) parameter is symmetric positive definite.
* :func:`verify_fisher`: the information against ``-E[d^2 ell/d theta_i d theta_j] / N`` entrywise,
  the expectation taken exactly and independently of the candidate: the entrywise score must be
  affine in the statistics' entries ``t``; a ``t0`` solving the score identity ``E[score] = 0``
  (``score(theta, t0) = 0``) is found by least squares and must solve it; and the Hessian must not
  change along the directions of ``t`` the identity leaves free, so that its value at ``t0`` is
  its expectation under any distribution with ``E[score] = 0``.  Where the candidate's own
  ``E[T]`` determine every statistic, the score must vanish there too.

Each returns ``(ok, detail)``: ``ok`` is the verdict, ``detail`` one line saying what was compared
(and the largest relative difference) or why the check failed or could not run.  A result whose
check fails or cannot run is not to be reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from symmle.base.budget import DEFAULT_TIMEOUT, attempt
from symmle.symbolic.matrix_explicit import (
    DIGITS,
    NotExplicit,
    coordinates,
    entrywise_derivative,
    explicit,
    explicit_information,
    matrix_symbols,
    random_values,
    scalar_symbols,
    symbolic_mapping,
    value,
    values,
)
from symmle.symbolic.matrix_forms import NoRule
from symmle.symbolic.matrix_information import FisherInformation, vech_pairs

__all__ = ["TOLERANCE", "Sampler", "verify_gradient", "verify_root", "verify_stationary", "verify_fisher"]

#: Largest relative difference accepted (the arithmetic keeps 30 digits; any error is far larger).
TOLERANCE = 1e-10
#: The complex step.
_STEP = mpmath.mpf("1e-30")

#: ``sample(rng, rows, D)`` -> data as an ``(rows, D)`` array.
Sampler = Callable[[np.random.Generator, int, int], np.ndarray]


def _run(step: str, timeout: float | None, fn: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    try:
        result, timed_out = attempt(step, timeout, fn)
    except (NotExplicit, NoRule, ZeroDivisionError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
        return False, f"{step}: could not be checked ({exc})"
    if timed_out:
        return False, f"{step}: the check ran out of its {timeout:g} s budget"
    return result


def _count(k: int, what: str) -> str:
    return f"{k} {what}" + ("" if k == 1 else "s")


def _relative(a: object, b: object) -> float:
    """``|a - b| / (1 + max(|a|, |b|))`` (``inf`` when either is not a finite number)."""
    x, y = _number(a), _number(b)
    if not (mpmath.isfinite(x) and mpmath.isfinite(y)):
        return float("inf")
    return float(abs(x - y) / (1 + max(abs(x), abs(y))))


def _number(v: object) -> object:
    if isinstance(v, sp.Basic):
        return value(v, {})
    return v


def _numeric(mapping: Mapping, env: Mapping) -> dict:
    """The explicit mapping with its entry symbols replaced by the values of ``env``."""
    subs = {s: sp.Float(mpmath.mpf(v), DIGITS) for s, v in env.items()}
    out: dict = {}
    for k, m in mapping.items():
        out[k] = m.xreplace(subs) if isinstance(m, sp.MatrixBase) else m
    out.update({s: v for s, v in subs.items() if s not in out})
    return out


def _as_scalar(f: sp.Basic) -> sp.Basic:
    f = sp.sympify(f)
    if isinstance(f, sp.MatrixExpr) and f.shape == (1, 1):
        return sp.Trace(f)
    return f


def _coords(params: Sequence[sp.Basic], mapping: Mapping, sym: frozenset) -> list:
    out: list = []
    for p in params:
        out += coordinates(p, mapping[p], p in sym) if isinstance(p, sp.MatrixSymbol) else [p]
    return out


def _complex_step(score: Sequence[sp.Expr], coords: Sequence[sp.Basic], env: Mapping) -> list[list]:
    """``H[i][k] = d score_i / d coords_k`` at ``env``, by the complex step."""
    columns = []
    for c in coords:
        shifted = dict(env)
        shifted[c] = mpmath.mpc(mpmath.mpf(env[c]), _STEP)
        columns.append([mpmath.im(v) / _STEP for v in values(score, shifted)])
    return [[columns[k][i] for k in range(len(coords))] for i in range(len(score))]


def _matrix(rows: Sequence[Sequence[object]]) -> np.ndarray:
    return np.array([[float(mpmath.re(v)) for v in r] for r in rows], dtype=float)


# ---------------------------------------------------------------- gradients


def verify_gradient(
    f: sp.Expr,
    x: sp.Basic,
    g: sp.Basic,
    *,
    symmetric: Iterable = (),
    domains: Mapping | None = None,
    dims: Sequence[int] = (2, 3),
    points: int = 1,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[bool, str]:
    """Check a gradient ``G`` of ``f`` in ``x`` against entrywise ``sp.diff`` at random points.

    Parameters
    ----------
    f : Expr
        The scalar function (a 1x1 matrix expression is read as its trace).
    x : MatrixSymbol or Symbol
        The variable.
    g : Basic
        The candidate gradient (``df = tr(G^T dX)``; for a symmetric ``x``, a ``G`` whose symmetric
        part is the gradient: the derivatives in the distinct entries are compared).
    symmetric : iterable of MatrixSymbol
        Symmetric symbols (spd at the random points unless ``domains`` says otherwise).
    domains : mapping, optional
        ``{symbol: domain}`` for values other than the default: ``"spd"``, ``"positive"``,
        ``"simplex"``, ``"real"`` (scalars default to positive when SymPy knows them positive).
    dims : sequence of int
        Dimensions at which to check; every dimension symbol takes each value.
    points : int
        Random points per dimension (two rational functions that differ, differ at a random point
        with probability 1).
    seed : int
        Seed of the random points.
    timeout : float or None
        Budget in seconds.

    Returns
    -------
    (bool, str)
        The verdict and a one-line detail.
    """
    sym = frozenset(symmetric)

    def run() -> tuple[bool, str]:
        rng = np.random.default_rng(seed)
        fs = _as_scalar(f)
        worst = 0.0
        for n in dims:
            mapping = symbolic_mapping([fs, g, x], n, sym)
            fx = explicit(fs, mapping)
            coords = _coords([x], mapping, sym)
            derivs = [entrywise_derivative(fx, c) for c in coords]
            others = [*matrix_symbols(fs, g, x), *scalar_symbols(fs, g, x)]
            for _ in range(points):
                env = random_values(rng, mapping, others, sym, domains)
                gv = explicit(g, _numeric(mapping, env))
                if isinstance(x, sp.MatrixSymbol):
                    m = mapping[x]
                    gv = sp.Matrix(gv)
                    if gv.shape != m.shape:
                        return False, f"gradient in {x}: shape {gv.shape}, expected {m.shape} at D={n}"
                    if x in sym:
                        want = [gv[r, c] if r == c else gv[r, c] + gv[c, r] for r, c in vech_pairs(m.rows)]
                    else:
                        want = coordinates(x, gv, False)
                else:
                    want = [gv]
                for got, w in zip(values(derivs, env), want):
                    err = _relative(got, w)
                    worst = max(worst, err)
                    if not err <= TOLERANCE:
                        return False, (
                            f"gradient in {x} differs from the entrywise derivative at D={n}:"
                            f" {mpmath.nstr(got, 8)} vs {mpmath.nstr(_number(w), 8)}"
                        )
        return True, (
            f"gradient in {x} agrees with the entrywise derivatives at D={', '.join(map(str, dims))}"
            f" ({_count(points, 'point')} each; largest relative difference {worst:.1e})"
        )

    return _run(f"gradient in {x}", timeout, run)


def verify_root(
    g: sp.Basic,
    x: sp.Basic,
    solution: sp.Basic,
    *,
    symmetric: Iterable = (),
    domains: Mapping | None = None,
    dims: Sequence[int] = (2, 3),
    points: int = 2,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[bool, str]:
    """Check that ``x = solution`` solves ``g = 0``, entry by entry, at random points.

    ``g`` and ``solution`` may hold other symbols (statistics, a multiplier, ``N``): they take
    random admissible values (``domains``, as for :func:`verify_gradient`).  At each point every
    entry of ``g`` at the solution must vanish relative to the largest entry of ``g`` at a random
    ``x``.

    Returns
    -------
    (bool, str)
        The verdict and a one-line detail.
    """
    sym = frozenset(symmetric)

    def run() -> tuple[bool, str]:
        rng = np.random.default_rng(seed)
        worst = 0.0
        for d in dims:
            mapping = symbolic_mapping([g, solution, x], d, sym)
            gx = explicit(g, mapping)
            gx = list(gx) if isinstance(gx, sp.MatrixBase) else [gx]
            coords = _coords([x], mapping, sym)
            others = [s for s in [*matrix_symbols(g, solution), *scalar_symbols(g, solution)] if s != x]
            for _ in range(points):
                env = random_values(rng, mapping, others, sym, domains)
                at_random = values(gx, {**env, **random_values(rng, mapping, [x], sym, domains)})
                scale = max(abs(v) for v in at_random)
                sol = explicit(solution, _numeric(mapping, env))
                sol = coordinates(x, sp.Matrix(sol), x in sym) if isinstance(x, sp.MatrixSymbol) else [sol]
                if len(sol) != len(coords):
                    return False, f"the solution for {x} has {len(sol)} entries, not {len(coords)} at D={d}"
                env.update({c: _number(v) for c, v in zip(coords, sol)})
                at_solution = max(abs(v) for v in values(gx, env))
                if not at_solution <= TOLERANCE * scale:
                    return False, (
                        f"the equation in {x} does not vanish at the solution at D={d}:"
                        f" {mpmath.nstr(at_solution, 3)} (scale {mpmath.nstr(scale, 3)})"
                    )
                worst = max(worst, float(at_solution / scale))
        return True, (
            f"the solution for {x} solves its equation entrywise at D={', '.join(map(str, dims))}"
            f" ({_count(points, 'point')} each; largest relative residual {worst:.1e})"
        )

    return _run(f"solution for {x}", timeout, run)


# ---------------------------------------------------------------- stationary points


def _default_sample(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """Gaussian data with a random mean and a random well-conditioned covariance."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    chol = np.linalg.cholesky(q @ np.diag(rng.uniform(0.5, 2.0, n)) @ q.T)
    return rng.normal(0.0, 2.0, n) + rng.normal(size=(rows, n)) @ chol.T


def _statistics(
    summands: Mapping[sp.Basic, sp.Basic], variable: sp.MatrixSymbol, data: np.ndarray, mapping: Mapping
) -> dict:
    """``{entry symbol of T: sum_i g(x_i) entry}`` from each statistic's explicit summand."""
    xs = mapping[variable]
    env: dict = {}
    for t, summand in summands.items():
        m = mapping[t] if isinstance(t, sp.MatrixSymbol) else sp.Matrix([[t]])
        e = explicit(summand, mapping)
        e = e if isinstance(e, sp.MatrixBase) else sp.Matrix([[e]])
        if e.shape != m.shape:
            raise NotExplicit(f"the summand of {t} has shape {e.shape}, {t} has {m.shape}")
        totals = [[mpmath.mpf(0)] * m.cols for _ in range(m.rows)]
        for row in data:
            point = {xs[j]: mpmath.mpf(float(row[j])) for j in range(xs.rows)}
            for j in range(m.rows):
                for k in range(m.cols):
                    totals[j][k] += value(e[j, k], point)
        for j in range(m.rows):
            for k in range(m.cols):
                env[m[j, k]] = totals[j][k]
    return env


def verify_stationary(
    ell: sp.Expr,
    solution: Mapping[sp.Basic, sp.Basic],
    *,
    statistics: Mapping[sp.Basic, sp.Basic],
    variable: sp.MatrixSymbol,
    n: sp.Symbol,
    symmetric: Iterable = (),
    domains: Mapping | None = None,
    sample: Sampler | None = None,
    dims: Sequence[int] = (2, 3),
    datasets: int = 2,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[bool, str]:
    """Check that ``solution`` is a strict local maximum of ``ell`` on random data sets.

    Parameters
    ----------
    ell : Expr
        The log-likelihood in the statistics, the parameters and ``n``.
    solution : mapping
        ``{parameter: estimator}``, the estimators in the statistics and ``n`` (and constants).
    statistics : mapping
        ``{T: summand}`` with ``T = sum_i summand(x_i)``, the summand in ``variable``
        (``T1: x``, ``T2: x @ x.T``, ``T3: x.applyfunc(log)``).
    variable : MatrixSymbol
        The observation ``x`` (a column).
    n : Symbol
        The sample size.
    symmetric, domains : as for :func:`verify_gradient`.
    sample : callable, optional
        ``sample(rng, rows, D)`` returning data as a ``(rows, D)`` array with ``rows = 4 D + 6``
        (default: Gaussian with a random mean and covariance).
    dims : sequence of int
        Dimensions of the check.
    datasets : int
        Random data sets per dimension.

    Returns
    -------
    (bool, str)
        The verdict and a one-line detail.
    """
    sym = frozenset(symmetric)
    draw = sample or _default_sample
    params = list(solution)

    def run() -> tuple[bool, str]:
        rng = np.random.default_rng(seed)
        ls = _as_scalar(ell)
        exprs = [ls, *solution.values(), *statistics.values(), variable, *params, *statistics]
        fixed = {*params, *statistics, n, variable}
        others = [s for s in [*matrix_symbols(*exprs), *scalar_symbols(*exprs)] if s not in fixed]
        worst_score, worst_eig = 0.0, -1.0
        for d in dims:
            mapping = symbolic_mapping(exprs, d, sym)
            lx = explicit(ls, mapping)
            coords = _coords(params, mapping, sym)
            score = [entrywise_derivative(lx, c) for c in coords]
            rows = 4 * d + 6
            for _ in range(datasets):
                env = random_values(rng, mapping, others, sym, domains)
                data = np.asarray(draw(rng, rows, d), dtype=float)
                env.update(_statistics(statistics, variable, data, mapping))
                env[n] = mpmath.mpf(rows)
                numeric = _numeric(mapping, env)
                for p in params:
                    est = explicit(solution[p], numeric)
                    if isinstance(p, sp.MatrixSymbol):
                        est = sp.Matrix(est)
                        m = mapping[p]
                        if est.shape != m.shape:
                            return False, f"the solution for {p} has shape {est.shape}, not {m.shape}"
                        if p in sym:
                            a = _matrix(est.tolist())
                            if not np.allclose(a, a.T, rtol=1e-12, atol=1e-12 * np.abs(a).max()):
                                return False, f"the solution for {p} is not symmetric at D={d}"
                            if np.linalg.eigvalsh((a + a.T) / 2).min() <= 0:
                                return False, f"the solution for {p} is not positive definite at D={d}"
                        for c, v in zip(coordinates(p, m, p in sym), coordinates(p, est, p in sym)):
                            env[c] = _number(v)
                    else:
                        env[p] = _number(est)
                at_solution = max(abs(v) for v in values(score, env))
                shifted = dict(env)
                for c in coords:
                    shifted[c] = env[c] * (1 + 0.1 * rng.uniform(-1, 1)) + 0.1 * rng.normal()
                scale = max(abs(v) for v in values(score, shifted))
                if not at_solution <= TOLERANCE * scale:
                    return False, (
                        f"the entrywise score does not vanish at the solution at D={d}:"
                        f" {mpmath.nstr(at_solution, 3)} (scale {mpmath.nstr(scale, 3)})"
                    )
                worst_score = max(worst_score, float(at_solution / scale))
                h = _matrix(_complex_step(score, coords, env))
                eig = np.linalg.eigvalsh((h + h.T) / 2)
                if not eig.max() < -1e-9 * np.abs(eig).max():
                    return False, f"the entrywise Hessian at the solution is not negative definite at D={d}"
                worst_eig = max(worst_eig, float(eig.max() / np.abs(eig).max()))
        return True, (
            f"stationary point in {', '.join(map(str, params))}: the entrywise score vanishes (relative"
            f" {worst_score:.1e}) and the Hessian is negative definite (largest eigenvalue over the"
            f" largest modulus {worst_eig:.2g}) on {_count(datasets, 'data set')} per dimension"
            f" at D={', '.join(map(str, dims))}"
        )

    return _run("stationary point", timeout, run)


# ---------------------------------------------------------------- Fisher information


def _null_space(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis (columns) of the null space of ``a``."""
    if a.size == 0:
        return np.eye(a.shape[1])
    _, s, vt = np.linalg.svd(a)
    tol = 1e-9 * max(1.0, s.max(initial=0.0))
    rank = int((s > tol).sum())
    return vt[rank:].T


def verify_fisher(
    ell: sp.Expr,
    info: FisherInformation,
    *,
    statistics: Sequence[sp.Basic],
    n: sp.Symbol | None = None,
    symmetric: Iterable = (),
    domains: Mapping | None = None,
    dims: Sequence[int] = (2, 3),
    points: int = 1,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[bool, str]:
    """Check every block of ``info`` against the entrywise expected negative Hessian of ``ell``.

    Parameters
    ----------
    ell : Expr
        The log-likelihood of the sample, in the statistics.
    info : FisherInformation
        The candidate (:func:`~symmle.symbolic.matrix_information.fisher_information`).
    statistics : sequence of MatrixSymbol or Symbol
        The statistics of ``ell``.
    n : Symbol, optional
        The sample size (required when ``info.per_observation``).
    symmetric, domains, dims, points, seed, timeout : as for :func:`verify_gradient`.

    Returns
    -------
    (bool, str)
        The verdict and a one-line detail (the module docstring says what is checked).
    """
    sym = frozenset(symmetric)
    params = list(info.params)
    stats = list(statistics)

    def run() -> tuple[bool, str]:
        if info.per_observation and n is None:
            return False, "Fisher information per observation: the sample size symbol is needed"
        rng = np.random.default_rng(seed)
        ls = _as_scalar(ell)
        blocks = [b.matrix for b in info.blocks.values()]
        exprs = [ls, *blocks, *params, *stats]
        fixed = {*stats, n}
        others = [s for s in [*matrix_symbols(*exprs), *scalar_symbols(*exprs)] if s not in fixed]
        worst = 0.0
        for d in dims:
            mapping = symbolic_mapping(exprs, d, sym)
            lx = explicit(ls, mapping)
            coords = _coords(params, mapping, sym)
            tcoords = _coords(stats, mapping, sym)
            score = [entrywise_derivative(lx, c) for c in coords]
            for _ in range(points):
                env = random_values(rng, mapping, others, sym, domains)
                size = int(rng.integers(5, 20))
                if n is not None:
                    env[n] = mpmath.mpf(size)

                def at(t: Sequence[object], env: dict = env, tcoords: list = tcoords) -> dict:
                    return {**env, **dict(zip(tcoords, t))}

                zero = [mpmath.mpf(0)] * len(tcoords)
                s0 = values(score, at(zero))
                jac = []
                for j in range(len(tcoords)):
                    unit = list(zero)
                    unit[j] = mpmath.mpf(1)
                    jac.append([v - a for v, a in zip(values(score, at(unit)), s0)])
                jm = _matrix(jac).T if jac else np.zeros((len(coords), 0))
                # the score is affine in t: checked at a random t
                u = [mpmath.mpf(float(v)) for v in rng.normal(size=len(tcoords))]
                su = values(score, at(u))
                pred = [a + sum(jac[j][i] * u[j] for j in range(len(tcoords))) for i, a in enumerate(s0)]
                if max((_relative(a, b) for a, b in zip(su, pred)), default=0.0) > 1e-12:
                    return False, "the log-likelihood is not linear in the statistics"
                rhs = -_matrix([s0]).ravel()
                t0 = np.linalg.lstsq(jm, rhs, rcond=None)[0] if tcoords else np.zeros(0)
                t0m = [mpmath.mpf(float(v)) for v in t0]
                st = values(score, at(t0m))
                scale = 1 + max((abs(v) for v in s0), default=0)
                if max((abs(v) for v in st), default=0) > 1e-9 * scale:
                    return False, f"the score identity E[score] = 0 has no solution at D={d}"
                h0 = _complex_step(score, coords, at(t0m))
                for delta in _null_space(jm).T:
                    moved = [a + mpmath.mpf(float(b)) for a, b in zip(t0m, delta)]
                    h1 = _complex_step(score, coords, at(moved))
                    if max(_relative(a, b) for r0, r1 in zip(h0, h1) for a, b in zip(r0, r1)) > 1e-9:
                        return False, "the Hessian depends on statistics the score identity leaves free"
                if info.expectations.matrices and set(info.expectations.matrices) >= set(stats):
                    numeric = _numeric(mapping, env)
                    given = dict(env)
                    for t, e in info.expectations.matrices.items():
                        ev = explicit(e, numeric)
                        ev = sp.Matrix(ev) if isinstance(t, sp.MatrixSymbol) else ev
                        pairs = (
                            zip(coordinates(t, mapping[t], t in sym), coordinates(t, ev, t in sym))
                            if (isinstance(t, sp.MatrixSymbol))
                            else [(t, ev)]
                        )
                        given.update({c: _number(v) for c, v in pairs})
                    if max((abs(v) for v in values(score, given)), default=0) > 1e-9 * scale:
                        return (
                            False,
                            f"the expectations of the statistics do not satisfy E[score] = 0 at D={d}",
                        )
                want = [[-v / (size if info.per_observation else 1) for v in r] for r in h0]
                got = explicit_information(info, _numeric(mapping, env))
                if got.shape != (len(coords), len(coords)):
                    return False, f"the information has shape {got.shape}, not {(len(coords),) * 2} at D={d}"
                for i in range(len(coords)):
                    for j in range(len(coords)):
                        err = _relative(got[i, j], want[i][j])
                        worst = max(worst, err)
                        if not err <= TOLERANCE:
                            return False, (
                                f"the information differs from the expected negative Hessian at D={d}:"
                                f" entry ({i}, {j}) {mpmath.nstr(_number(got[i, j]), 8)}"
                                f" vs {mpmath.nstr(want[i][j], 8)}"
                            )
        return True, (
            f"Fisher information of {', '.join(map(str, params))} agrees with the entrywise expected"
            f" negative Hessian at D={', '.join(map(str, dims))} ({_count(points, 'point')} each;"
            f" largest relative difference {worst:.1e})"
        )

    return _run("Fisher information", timeout, run)
