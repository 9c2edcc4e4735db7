"""Fitting a vector model: its statistics in one stable pass, its estimators, standard errors per entry.

The derivation gives the estimators as matrix expressions in the statistics
(``T1 = sum x_i``, ``T2 = sum x_i x_i^T``, entrywise sums such as
``sum log x_i``).  They are evaluated here with NumPy
(:mod:`symmle.numbers.matrix_eval`), never from the raw sums where that loses
digits: ``T1`` and ``T2`` are written through the sample mean ``m`` and the
scatter ``S`` about it (``T1 = N m``, ``T2 = S + N m m^T``, exact identities)
and the estimator is simplified symbolically, so that ``Sigma_hat`` becomes
``S/N`` computed from pilot-centred blocks (:func:`symmle.base._runtime.vector_moments`).
A parameter without a closed form is found by maximising the log-likelihood with
its exact score (SciPy, on the log scale for positive entries).  Standard errors
come from the per-observation Fisher information evaluated at the estimates,
inverted once for all coordinates (vector entries, the distinct entries of a
symmetric matrix).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from symmle.base import _runtime
from symmle.base.budget import attempt
from symmle.base.errors import DataError, DerivationError
from symmle.numbers.matrix_eval import evaluate
from symmle.numbers.vector_data import validate_rows
from symmle.numbers.vector_plan import canonical_traces

__all__ = ["estimate_vector", "fit_vector", "fit_counts", "coordinate_names"]


def _kind_of(q) -> str:
    return "vech" if q.domain == "spd" else "vec" if q.is_matrix else "scalar"


def coordinate_names(d, columns: list[str] | None = None) -> list[str]:
    """The names of the coordinates of every parameter, in the order of the information matrix."""
    return [name for q in d.model.parameters for name in _coordinates(q, _dim(d, columns))]


def _dim(d, columns):
    return len(columns) if columns else None


def _coordinates(q, n: int | None) -> list[str]:
    if not q.is_matrix:
        return [q.name]
    if n is None:
        return [q.name]
    if q.domain == "spd":
        return [f"{q.name}[{i + 1},{j + 1}]" for j in range(n) for i in range(j, n)]
    return [f"{q.name}[{i + 1}]" for i in range(n)]


def _stable(
    expr: sp.Basic, stats: dict, N: sp.Symbol, mean: sp.MatrixSymbol, scatter: sp.MatrixSymbol, timeout
):
    """``expr`` with ``T1 = N m`` and ``T2 = S + N m m^T`` substituted and simplified (else unchanged)."""
    rules = {}
    if "x" in stats:
        rules[stats["x"]] = N * mean
    if "xx" in stats:
        rules[stats["xx"]] = scatter + N * mean * mean.T
    if not rules:
        return expr

    def run():
        e = expr.xreplace(rules)
        # traces by linearity and in one cyclic order, so that tr(N m m^T) - tr(N m^T m) cancels here
        # rather than in floating point (s2 of mvnormal_isotropic at mean 1e9 was -128)
        return canonical_traces(e.expand().doit() if getattr(e, "is_Matrix", False) else sp.expand(e))

    out, timed_out = attempt("rewrite the estimator in centred sums", timeout, run)
    return expr if out is None or timed_out else out


def estimate_vector(
    d, x: np.ndarray, *, columns: list[str] | None = None, timeout: float | None = None
) -> tuple[np.ndarray, dict, dict[str, Any], dict[str, str]]:
    """The estimates of the vector model of ``d`` from the rows of ``x``.

    Returns ``(x, env, estimates, kinds)``: the validated data, the values of every symbol (the
    statistics, the estimates), the estimates by name (a vector as (D,), a matrix as (D, D)) and
    how each was found.
    """
    m = d.model
    lik = d.likelihood
    x = np.asarray(x) if not isinstance(x, np.memmap) else x
    if x.ndim != 2:
        raise DataError(
            f"a vector model needs rows of observations (an (N, D) table); the data have shape {x.shape}"
        )
    n_rows, dim = x.shape
    if n_rows == 0:
        raise DataError("the data have no rows")
    validate_rows(x, columns, support=m.support_set or "real")
    missing = {k: e for k, e in d.solutions.items() if e.kind == "none"}
    if missing:
        name, e = next(iter(missing.items()))
        raise DerivationError(f"symmle derived no estimator of {name}, so it cannot fit this model: {e.note}")
    D, N = m.dimension, lik.N
    env: dict = {D: dim, N: float(n_rows)}
    for q in m.constants:
        if q.value is None:
            raise DataError(f"the model's constant {q.name} needs a value (--const {q.name}=...)")
        env[q.symbol] = np.asarray(np.array(q.value.tolist(), dtype=float)) if q.is_matrix else float(q.value)
    # the statistics: mean and scatter for x and x x^T, entrywise sums in one pass each
    x_sym, outer = m.variable, sp.MatMul(m.variable, m.variable.T)
    stats: dict[str, sp.Basic] = {}
    mean_s = sp.MatrixSymbol("_mean", D, 1)
    scatter_s = sp.MatrixSymbol("_scatter", D, D)
    need_moments = False
    for s, _ in lik.coefficients:
        if s.expr == x_sym:
            stats["x"] = s.symbol
            need_moments = True
        elif s.expr == outer:
            stats["xx"] = s.symbol
            need_moments = True
    if need_moments:
        try:
            n, mean, scatter = _runtime.vector_moments(x)
        except _runtime.BadData as exc:
            raise DataError(str(exc)) from None
        env[mean_s] = mean.reshape(-1, 1)
        env[scatter_s] = scatter
        if any(q.domain == "spd" for q in m.parameters):
            try:
                _runtime.check_scatter(n, scatter, mean, columns)
            except _runtime.NoMLE as exc:
                raise DataError(str(exc)) from None
        if "x" in stats:
            env[stats["x"]] = (n * mean).reshape(-1, 1)
        if "xx" in stats:
            env[stats["xx"]] = scatter + n * np.outer(mean, mean)
    for s, _ in lik.coefficients:
        if s.symbol in env or not s.informative:
            continue
        fn = _entrywise(s.expr, x_sym)
        env[s.symbol] = _runtime.column_sums(x, fn).reshape(-1, 1)
    estimates: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    numeric = []
    for q in m.parameters:
        e = d.solutions[q.name]
        if e.kind == "closed_form":
            expr = _stable(e.expr, stats, N, mean_s, scatter_s, timeout)
            value = evaluate(expr, env)
            env[q.symbol] = value
            kinds[q.name] = "closed_form"
        else:
            numeric.append(q)
            kinds[q.name] = "numeric"
    if numeric:
        _maximise(d, numeric, env, dim)
    for q in m.parameters:
        v = np.asarray(env[q.symbol], dtype=float)
        if q.domain == "spd":
            estimates[q.name] = v
        else:
            estimates[q.name] = v.reshape(-1) if q.is_matrix else float(v)
    return x, env, estimates, kinds


def fit_vector(
    d,
    x: np.ndarray,
    constants: Mapping[str, Any] | None = None,
    *,
    columns: list[str] | None = None,
    timeout: float | None = None,
    ci: str = "transformed",
):
    """Fit the vector model of derivation ``d`` to the rows of ``x`` (an (N, D) array); a FitResult."""
    from symmle.numbers.fitting import FitResult

    x, env, estimates, kinds = estimate_vector(d, x, columns=columns, timeout=timeout)
    m = d.model
    n_rows, dim = x.shape
    warnings = [w for w in d.warnings if "no closed form of the stationary point" not in w]
    ell = _log_likelihood(d, x, env)
    stderr, info_kind = _stderr(d, env, n_rows, dim, warnings)
    ci95, ci_method = _intervals(m.parameters, estimates, stderr, ci)
    return FitResult(
        m.name,
        int(n_rows),
        estimates,
        kinds,
        stderr,
        ci95,
        ell,
        info_kind,
        warnings,
        ci_method,
        columns,
        n_parameters=sum(free_entries(q.domain, estimates[q.name]) for q in m.parameters),
    )


def free_entries(domain: str, value: Any) -> int:
    """How many free numbers an estimate of ``domain`` holds: ``K - 1`` for a simplex, ``D(D+1)/2`` for
    a symmetric matrix, its size otherwise (what AIC and BIC count)."""
    size = int(np.size(value))
    if domain == "simplex":
        return size - 1
    if domain == "spd":
        d = int(np.shape(value)[0])
        return d * (d + 1) // 2
    return size


def _entrywise(expr: sp.Basic, x: sp.MatrixSymbol):
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

    if isinstance(expr, ElementwiseApplyFunction) and expr.expr == x:
        from symmle.base.numeric import to_function

        (var,) = expr.function.variables
        f = to_function([var], expr.function.expr)
        return lambda block: np.asarray(f(block), dtype=float)
    raise DerivationError(f"symmle cannot compute the statistic sum_i {expr} from data")


def _informative(lik) -> sp.Expr:
    """The log-likelihood without its parameter-free statistic."""
    free = [s.symbol for s, _ in lik.coefficients if not s.informative]
    return lik.log_likelihood.subs({t: 0 for t in free})


def _log_likelihood(d, x: np.ndarray, env: dict) -> float:
    """``sum_i log f(x_i)`` at the values in ``env``, without losing digits far from 0.

    From the statistics where that is safe (:func:`centred_log_likelihood`: the mean cancels, as
    for the Gaussian, the same rule as the scalar pilot's); otherwise, and for the parameter-free
    part, the log-density of each row is summed (``x_i - mu`` formed first), in blocks of rows.
    """
    m, lik = d.model, d.likelihood
    free = [s for s, _ in lik.coefficients if not s.informative]
    informative = _informative(lik)
    x_stats = {s.expr for s, _ in lik.coefficients}
    if m.variable in x_stats or sp.MatMul(m.variable, m.variable.T) in x_stats:
        D = m.dimension
        centred = centred_log_likelihood(
            d, informative, sp.MatrixSymbol("_mean", D, 1), sp.MatrixSymbol("_scatter", D, D)
        )
        if centred is None:
            return _row_sum(x, sp.expand_log(sp.log(m.density), force=True), m.variable, env)
        value = float(evaluate(centred, env))
    else:
        value = float(evaluate(informative, env))
    for s in free:
        value += _row_sum(x, s.expr, m.variable, env)
    return value


def centred_log_likelihood(
    d, informative: sp.Expr, mean: sp.MatrixSymbol, scatter: sp.MatrixSymbol
) -> sp.Expr | None:
    """The log-likelihood in the sample mean and scatter, or ``None`` if the mean does not cancel.

    ``T1 = N m``, ``T2 = S + N m m^T`` and each vector parameter ``v`` of the observation's
    shape written ``m + (v - m)``; simplified by the matrix rules; kept only if ``m`` is left
    nowhere but inside the differences ``v - m`` (which are put back, so that they are formed
    first when evaluated).
    """
    from symmle.symbolic.matrix_calculus import context
    from symmle.symbolic.matrix_forms import NoRule, scalar

    m, lik = d.model, d.likelihood
    x_stats = {s.expr: s.symbol for s, _ in lik.coefficients}
    outer = sp.MatMul(m.variable, m.variable.T)
    N = lik.N
    rules = {}
    if m.variable in x_stats:
        rules[x_stats[m.variable]] = N * mean
    if outer in x_stats:
        rules[x_stats[outer]] = scatter + N * mean * mean.T
    if not rules:
        return None
    shifts = {}
    for q in m.parameters:
        if q.is_matrix and q.domain == "vector":
            shifts[q.symbol] = sp.MatrixSymbol(f"_shift_{q.name}", *q.symbol.shape)
            rules[q.symbol] = mean + shifts[q.symbol]
    spd = [q.symbol for q in (*m.parameters, *m.constants) if q.domain == "spd"]
    ctx = context(symmetric=[*spd, scatter], invertible=spd)

    def run():
        e = informative.xreplace(rules)
        for _ in range(2):
            e = sp.expand(scalar(e, ctx))
        return e

    try:
        expr, timed_out = attempt("the log-likelihood in centred sums", 2.0, run)
    except (NoRule, TypeError, ValueError):
        return None
    if expr is None or timed_out or expr.has(mean):
        return None
    return expr.xreplace({shift: v - mean for v, shift in shifts.items()})


def _row_sum(x: np.ndarray, expr: sp.Basic, variable: sp.MatrixSymbol, env: dict) -> float:
    """``sum_i expr(x_i)``, each row a column, in blocks of rows."""
    total = 0.0
    for _start, block in _runtime.row_chunks(x):
        values = evaluate(expr, {**env, variable: np.asarray(block, dtype=float)[:, :, None]})
        total += float(np.sum(values))
    return total


def _flat(q, value: np.ndarray) -> np.ndarray:
    v = np.asarray(value, dtype=float)
    if q.domain == "spd":
        n = v.shape[0]
        return np.array([v[i, j] for j in range(n) for i in range(j, n)])
    return v.reshape(-1)


def _stderr(d, env: dict, n_rows: int, dim: int, warnings: list[str]) -> tuple[dict, str]:
    m = d.model
    out: dict[str, Any] = {q.name: None for q in m.parameters}
    info = d.information
    if type(info.blocks).__name__ == "SimplexInformation":
        return _simplex_stderr(d, env, warnings)
    if info.blocks is None or not len(info.fisher.shape) or info.fisher.shape == (0, 0):
        warnings.append("no standard errors: the Fisher information was not derived")
        return out, ""
    try:
        f = np.asarray(evaluate(d.fisher, env), dtype=float)
        cov = np.linalg.inv(n_rows * f)
    except (ValueError, np.linalg.LinAlgError) as exc:
        warnings.append(f"no standard errors: the Fisher information at the estimates is singular ({exc})")
        return out, ""
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    k = 0
    for q in m.parameters:
        size = 1 if not q.is_matrix else (dim * (dim + 1) // 2 if q.domain == "spd" else dim)
        part = se[k : k + size]
        k += size
        if q.domain == "spd":
            full = np.zeros((dim, dim))
            idx = [(i, j) for j in range(dim) for i in range(j, dim)]
            for (i, j), v in zip(idx, part):
                full[i, j] = full[j, i] = v
            out[q.name] = full
        elif q.is_matrix:
            out[q.name] = part
        else:
            out[q.name] = float(part[0])
    return out, "expected"


def _simplex_stderr(d, env: dict, warnings: list[str]) -> tuple[dict, str]:
    """Standard errors of a simplex: the information on the K - 1 free coordinates, mapped to all K."""
    info = d.information.blocks
    (q,) = d.model.parameters
    p = np.asarray(env[q.symbol], dtype=float).reshape(-1)
    local = {**env, info.free: p[:-1].reshape(-1, 1), info.last: float(p[-1])}
    try:
        total = float(evaluate(info.total, local))
        cov_free = np.linalg.inv(total * np.asarray(evaluate(info.per_count, local), dtype=float))
    except (ValueError, np.linalg.LinAlgError) as exc:
        warnings.append(f"no standard errors: the Fisher information at the estimates is singular ({exc})")
        return {q.name: None}, ""
    jac = np.vstack([np.eye(len(p) - 1), -np.ones((1, len(p) - 1))])  # p_K = 1 - sum of the others
    cov = jac @ cov_free @ jac.T
    return {q.name: np.sqrt(np.clip(np.diag(cov), 0, None))}, "expected"


def fit_counts(
    d, categories: list[str], counts: np.ndarray, *, timeout: float | None = None, ci: str = "transformed"
):
    """Fit a one-hot (categorical) model from the counts of its categories (a FitResult)."""
    from symmle.numbers.fitting import FitResult

    m, lik = d.model, d.likelihood
    if m.support_set != "onehot":
        raise DataError(f"labels fit a model of one-hot observations; '{m.name}' has {m.support_set} rows")
    counts = np.asarray(counts, dtype=float).reshape(-1)
    if len(counts) < 2:
        raise DataError(f"the data hold {len(counts)} category; a categorical model needs at least 2")
    (p,) = m.parameters
    t1 = next(s.symbol for s, _ in lik.coefficients if s.expr == m.variable)
    env = {m.dimension: len(counts), lik.N: float(counts.sum()), t1: counts.reshape(-1, 1)}
    e = d.solutions[p.name]
    if e.kind != "closed_form":
        raise DerivationError(f"symmle derived no closed form of {p.name}: {e.note}")
    env[p.symbol] = np.asarray(evaluate(e.expr, env), dtype=float)
    warnings = list(d.warnings)
    if np.any(counts == 0):
        warnings.append(
            "some categories never occur: their estimate is 0, on the boundary of the simplex, "
            "where the standard errors and intervals do not hold"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ell = float(np.sum(np.where(counts > 0, counts * np.log(env[p.symbol].reshape(-1)), 0.0)))
    stderr, info_kind = _simplex_stderr(d, env, warnings)
    est = env[p.symbol].reshape(-1)
    ci95, methods = _intervals(m.parameters, {p.name: est}, stderr, ci)
    return FitResult(
        m.name,
        int(counts.sum()),
        {p.name: est},
        {p.name: "closed_form"},
        stderr,
        ci95,
        ell,
        info_kind,
        warnings,
        methods,
        categories=[str(c) for c in categories],
        n_parameters=free_entries(p.domain, est),
    )


def _entry_domain(q, index: tuple) -> str:
    """The domain of one entry: a probability of a simplex is in (0, 1), a variance positive."""
    if q.domain == "simplex":
        return "unit"
    if q.domain == "positive_vector":
        return "positive"
    if q.domain == "spd":
        return "positive" if index[0] == index[1] else "real"
    return q.domain if not q.is_matrix else "real"


def _intervals(parameters, estimates: dict, stderr: dict, ci: str) -> tuple[dict, dict]:
    """95% intervals entry by entry, each on the scale of its entry's domain (see fitting.interval).

    ``ci_method`` of a vector or matrix parameter is one method when all its entries share it, else
    the method of each entry in the parameter's shape.
    """
    from symmle.numbers.fitting import interval

    ci95, methods = {}, {}
    for q in parameters:
        se = stderr.get(q.name)
        if se is None:
            ci95[q.name], methods[q.name] = None, None
            continue
        est = np.asarray(estimates[q.name], dtype=float)
        se = np.asarray(se, dtype=float)
        lo, hi = np.empty_like(est), np.empty_like(est)
        how = np.empty(est.shape, dtype=object)
        for index in np.ndindex(est.shape):
            (a, b), h = interval(float(est[index]), float(se[index]), _entry_domain(q, index or (0, 0)), ci)
            lo[index], hi[index], how[index] = a, b, h
        ci95[q.name] = (float(lo), float(hi)) if est.ndim == 0 else (lo, hi)
        unique = set(how.reshape(-1).tolist())
        methods[q.name] = unique.pop() if len(unique) == 1 else how.tolist()
    return ci95, methods


def _maximise(d, numeric: list, env: dict, dim: int) -> None:
    """Maximise the log-likelihood over the parameters without a closed form, with the exact score."""
    from scipy import optimize

    lik = d.likelihood
    ell = _informative(lik)
    scores = dict(zip(d.stationarity.parameters, d.stationarity.score))
    for q in numeric:
        if q.domain == "spd" or q.domain == "simplex":
            raise DerivationError(
                f"symmle cannot yet fit {q.name} ({q.domain}) numerically: no closed form was derived"
            )
    sizes = [dim if q.is_matrix else 1 for q in numeric]
    positive = [q.domain in ("positive", "positive_vector") for q in numeric]

    def unpack(z):
        out, k = {}, 0
        for q, size, pos in zip(numeric, sizes, positive):
            v = z[k : k + size]
            k += size
            v = np.exp(v) if pos else v
            out[q.symbol] = v.reshape(-1, 1) if q.is_matrix else float(v[0])
        return out

    def objective(z):
        env.update(unpack(z))
        try:
            value = -float(evaluate(ell, env)) / env[lik.N]
            grad = []
            for q, pos in zip(numeric, positive):
                g = np.asarray(evaluate(scores[q.symbol], env), dtype=float).reshape(-1)
                v = np.asarray(env[q.symbol], dtype=float).reshape(-1)
                grad.append(-(g * v if pos else g) / env[lik.N])
        except (ValueError, FloatingPointError, ZeroDivisionError):
            return np.inf, np.zeros(sum(sizes))
        if not np.isfinite(value):
            return np.inf, np.zeros(sum(sizes))
        return value, np.concatenate(grad)

    z0 = np.zeros(sum(sizes))
    with np.errstate(all="ignore"):
        res = optimize.minimize(
            objective, z0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 2000}
        )
    _, grad = objective(res.x)
    if not np.all(np.isfinite(res.x)) or np.max(np.abs(grad)) > 1e-6:
        raise DataError(f"the numeric maximisation did not converge: {res.message}")
    env.update(unpack(res.x))
