"""Numerical runtime of compiled vector models: the matrix helpers printed code calls, and the runs.

Pure NumPy (SciPy only for a numeric maximisation, imported there) and no SymPy:
``symmle compile`` copies everything below the marker line into the generated
module of a vector model, after the scalar runtime (:mod:`symmle.base._runtime`),
whose chunked moments it uses.  In-process, :class:`symmle.numbers.vector_compiled.CompiledVectorModel`
runs the same generated source, so both give the same numbers.

Arrays are *stacks*: a column vector is ``(..., D, 1)``, a matrix ``(..., D, D)``, a scalar
``(...)``, where ``...`` is empty for one data set and ``(R,)`` for ``R`` replicates of a
simulation, so one printed formula estimates all replicates at once.

A *vector plan* is a dict:

``parameters``, ``domains``, ``kinds``: names, domains, ``closed_form`` / ``numeric``;
``constants``, ``constant_domains``, ``known``: the constants, their domains and values fixed at compile time;
``dimension``, ``support``: the dimension's name and the named set of a row (``real``, ``simplex``, ...);
``names``: ``{"N": ..., "mean": ..., "scatter": ...}``, the keys of those values;
``moments``: ``{"x": T1, "xx": T2}``, the statistics read from the mean and scatter, and ``spd``:
whether the scatter must be nonsingular; ``entrywise``: ``[(name, fn, label)]``, statistics
``sum_i fn(x_i)`` of an entrywise ``fn``; ``free``: ``[(name, fn)]``, parameter-free sums
``fn(values, rows)`` of the log-likelihood, ``rows`` a ``(b, D, 1)`` stack;
``closed``: ``[(name, fn)]`` in order, each ``fn(values)``; ``numeric``, ``objective``, ``score``:
parameters maximised numerically, ``objective(values)`` the informative log-likelihood and
``score[name](values)`` its gradient; ``informative``: the same objective, for the log-likelihood;
``fisher``: ``fn(values)``, the per-observation Fisher information in ``coordinates``
(``[(name, "scalar" | "vec" | "vech")]``), or ``None``.
"""

import math
import warnings

import numpy as np

from symmle.base._runtime import (
    BadData,
    NoMLE,
    _Compensated,
    caution,
    check_scatter,
    in_domain,
    row_chunks,
    show_number,
    vector_moments,
)

__all__ = [
    "mx_scale",
    "run_vector_estimate",
    "run_vector_estimate_rows",
    "run_vector_fisher",
    "run_vector_fit",
    "run_vector_log_likelihood",
    "run_vector_stderr",
    "run_vector_stderr_rows",
]

# ---- copied into generated modules from here ----

#: How far a row on the simplex may add up from 1 (shares written with a few digits).
SIMPLEX_TOLERANCE = 1e-6


# --------------------------------------------------------------------------
# matrix helpers: what the printed formulas call, each on stacks of matrices
# --------------------------------------------------------------------------


def mx_scale(s, m):
    """A scalar (or a stack of scalars) times a stack of matrices."""
    return np.asarray(s, dtype=float)[..., None, None] * m


def mx_t(m):
    return np.swapaxes(m, -1, -2)


def mx_trace(m):
    if m.shape[-2:] == (1, 1):
        return m[..., 0, 0]
    return np.trace(m, axis1=-2, axis2=-1)


def mx_solve(a, b):
    """``a^-1 b`` by a solve (never an explicit inverse where a solve will do).

    One matrix ``a`` against a stack ``b`` is factorised once: the stack becomes columns.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim == 2 and b.ndim > 2:
        cols = np.moveaxis(b, -2, 0)
        out = np.linalg.solve(a, cols.reshape(a.shape[0], -1)).reshape((a.shape[1],) + cols.shape[1:])
        return np.moveaxis(out, 0, -2)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.linalg.solve(np.broadcast_to(a, shape + a.shape[-2:]), np.broadcast_to(b, shape + b.shape[-2:]))


def mx_rsolve(b, a):
    """``b a^-1``, as the transpose of a solve."""
    return mx_t(mx_solve(mx_t(a), mx_t(b)))


def mx_inv(a):
    return np.linalg.inv(a)


def mx_det(a):
    return np.linalg.det(a)


def mx_logdet(a):
    """``log det a`` by ``slogdet``: ``nan`` where the determinant is not positive."""
    sign, logdet = np.linalg.slogdet(a)
    return np.where(sign > 0, logdet, np.nan)


def mx_matpow(a, k):
    return np.linalg.matrix_power(a, int(k))


def mx_kron(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(out.shape[:-4] + (a.shape[-2] * b.shape[-2], a.shape[-1] * b.shape[-1]))


def mx_diag(v):
    """The diagonal matrix of a column (a stack of columns)."""
    v = np.asarray(v, dtype=float)[..., :, 0]
    return v[..., :, None] * np.eye(v.shape[-1])


def mx_diagonal(m):
    """The diagonal of a matrix as a column."""
    return np.diagonal(m, axis1=-2, axis2=-1)[..., None]


def mx_ones(rows, cols):
    return np.ones((int(rows), int(cols)))


def mx_zeros(rows, cols):
    return np.zeros((int(rows), int(cols)))


def mx_eye(n):
    return np.eye(int(n))


def mx_duplication(n):
    """The duplication matrix: ``vec(S) = Dup vech(S)`` for symmetric ``S`` (vech column by column)."""
    n = int(n)
    pairs = [(i, j) for j in range(n) for i in range(j, n)]
    out = np.zeros((n * n, len(pairs)))
    for k, (i, j) in enumerate(pairs):
        out[i + j * n, k] = 1.0
        out[j + i * n, k] = 1.0
    return out


def mx_blocks(rows):
    """A block matrix from rows of blocks (stacks broadcast to one batch shape)."""
    rows = [[np.asarray(b, dtype=float) for b in row] for row in rows]
    shape = np.broadcast_shapes(*(b.shape[:-2] for row in rows for b in row))
    return np.concatenate(
        [np.concatenate([np.broadcast_to(b, shape + b.shape[-2:]) for b in row], axis=-1) for row in rows],
        axis=-2,
    )


def mx_explicit(rows):
    """An explicit matrix of scalars (or stacks of scalars)."""
    cells = [[np.asarray(c, dtype=float) for c in row] for row in rows]
    shape = np.broadcast_shapes(*(c.shape for row in cells for c in row))
    return np.stack([np.stack([np.broadcast_to(c, shape) for c in row], axis=-1) for row in cells], axis=-2)


# --------------------------------------------------------------------------
# coordinates: a parameter's entries in the order of the information matrix
# --------------------------------------------------------------------------


def coordinate_size(kind, dim):
    return {"scalar": 1, "vec": dim, "vech": dim * (dim + 1) // 2}[kind]


def coordinate_names(plan, dim):
    """``["mu[1]", ..., "Sigma[1,1]", "Sigma[2,1]", ...]``: 1-based, vech column by column."""
    out = []
    for name, kind in plan["coordinates"]:
        if kind == "scalar":
            out.append(name)
        elif kind == "vec":
            out += [f"{name}[{i + 1}]" for i in range(dim)]
        else:
            out += [f"{name}[{i + 1},{j + 1}]" for j in range(dim) for i in range(j, dim)]
    return out


def from_coordinates(kind, part, dim):
    """A block of coordinates (``(..., size)``) in the parameter's shape."""
    if kind == "scalar":
        return part[..., 0]
    if kind == "vec":
        return part
    out = np.zeros(part.shape[:-1] + (dim, dim))
    k = 0
    for j in range(dim):
        for i in range(j, dim):
            out[..., i, j] = out[..., j, i] = part[..., k]
            k += 1
    return out


# --------------------------------------------------------------------------
# the data: rows of D numbers, checked against the named set of the model's rows
# --------------------------------------------------------------------------


def vector_rows(x):
    """``x`` as an (N, D) array of rows (a memory map stays one)."""
    if not isinstance(x, np.memmap):
        x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise BadData(f"a vector model needs rows of observations (an (N, D) array); got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise BadData("the data are empty")
    return x


def _first(mask):
    if not mask.any():
        return None
    i, j = np.argwhere(mask)[0]
    return int(i), int(j)


def _bad_rows(block, support):
    """``(row, column, value, reason)`` of the first cell or row of ``block`` that breaks each rule."""
    found = []
    at = _first(~np.isfinite(block))
    if at is not None:
        found.append((*at, block[at], "is not a finite number"))
        block = block[: at[0]]
    if support == "counts":
        for mask, what in ((block < 0, "is negative"), (block != np.round(block), "is not a whole number")):
            at = _first(mask)
            if at is not None:
                found.append((*at, block[at], f"{what}: not a count"))
    elif support == "simplex":
        at = _first(block <= 0)
        if at is not None:
            found.append((*at, block[at], "is not positive: not on the simplex"))
        total = block.sum(axis=1)
        off = np.flatnonzero(~(np.abs(total - 1.0) <= SIMPLEX_TOLERANCE))
        if off.size:
            found.append((int(off[0]), block.shape[1], total[off[0]], "not 1: not on the simplex"))
    elif support == "onehot":
        at = _first((block != 0) & (block != 1))
        if at is not None:
            found.append((*at, block[at], "is not 0 or 1: not one-hot"))
        ones = block.sum(axis=1)
        off = np.flatnonzero(ones != 1)
        if off.size:
            found.append((int(off[0]), block.shape[1], ones[off[0]], "ones, not one: not one-hot"))
    return found


def check_rows(plan, x):
    """Raise :class:`BadData` on the first row (in order) that is not in the model's set of rows.

    A bad cell is named as ``x[i, j] = value``; a row whose sum is wrong by its row and sum.
    """
    support = plan["support"]
    for start, block in row_chunks(x):
        found = _bad_rows(block, support)
        if found:
            i, j, value, reason = min(found, key=lambda f: f[:2])
            if j == block.shape[1]:
                what = "adds up to" if support == "simplex" else "holds"
                raise BadData(f"row {start + i + 1} of the data {what} {show_number(value)} {reason}")
            raise BadData(reason, start + i, value, column=j)


# --------------------------------------------------------------------------
# values: constants and parameters as arrays of their shapes, checked
# --------------------------------------------------------------------------


def as_value(name, domain, raw, dim=None):
    """A parameter's or constant's value: a float, a (D, 1) column or a (D, D) matrix, checked.

    Raises :class:`NoMLE` (a ValueError) naming the quantity and the problem.
    """
    if domain not in ("vector", "positive_vector", "simplex", "spd"):
        try:
            v = float(raw)
        except (TypeError, ValueError):
            raise NoMLE(f"the value of '{name}' must be a number") from None
        if not in_domain(v, domain):
            raise NoMLE(f"the value {v!r} of '{name}' is not in its domain '{domain}'")
        return v
    try:
        a = np.array(raw, dtype=float)
    except (TypeError, ValueError):
        raise NoMLE(f"the value of '{name}' must be a list or an array of numbers") from None
    if domain == "spd":
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.size == 0:
            raise NoMLE(f"the value of '{name}' must be a square matrix (spd), got shape {a.shape}")
    else:
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1 or a.size == 0:
            raise NoMLE(f"the value of '{name}' must be a vector ({domain}), got shape {a.shape}")
    size = a.shape[0]
    if dim is not None and size != dim:
        raise NoMLE(f"the value of '{name}' has dimension {size}; the data have {dim} columns")
    if not np.all(np.isfinite(a)):
        raise NoMLE(f"the value of '{name}' holds a number that is not finite")
    outside = f"the value of '{name}' is not in its domain '{domain}'"
    if domain in ("positive_vector", "simplex") and not np.all(a > 0):
        raise NoMLE(f"{outside}: entry {int(np.argmin(a)) + 1} is not positive")
    if domain == "simplex" and not abs(float(a.sum()) - 1.0) <= 1e-9 * size:
        raise NoMLE(f"{outside}: its entries sum to {float(a.sum())!r}, not 1")
    if domain == "spd":
        if not np.allclose(a, a.T, rtol=0, atol=1e-12 * float(np.max(np.abs(a)))):
            raise NoMLE(f"{outside}: it is not symmetric")
        try:
            np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise NoMLE(f"{outside}: it is not positive definite") from None
        return a
    return a.reshape(-1, 1)


def vector_constants(plan, constants, dim=None):
    """The constants' values by name (known ones and ``constants``), checked; names a missing one."""
    given = dict(plan["known"])
    for name, v in constants.items():
        if name not in plan["constants"]:
            raise NoMLE(
                f"unknown constant '{name}'; "
                f"this model's constants: {', '.join(plan['constants']) or '(none)'}"
            )
        given[name] = v
    out = {}
    for name in plan["constants"]:
        if name not in given:
            raise NoMLE(f"missing value for constant '{name}' (give it as {name}=VALUE)")
        out[name] = as_value(name, plan["constant_domains"][name], given[name], dim)
    return out


def _dimension(plan, values, dim):
    out = dict(values)
    out[plan["dimension"]] = dim
    return out


# --------------------------------------------------------------------------
# statistics: the mean and scatter in one pilot-centred pass, entrywise sums in one pass
# --------------------------------------------------------------------------


def vector_statistics(plan, x, values, free=False):
    """``values`` with ``N``, the dimension, the mean and scatter and every statistic of the plan.

    The rows are checked first (finite, in the model's set); the mean and scatter come from
    :func:`vector_moments` (one BLAS pass over pilot-centred blocks), the entrywise sums (and,
    with ``free``, the parameter-free sums of the log-likelihood) from one compensated pass.
    """
    n, dim = x.shape
    names = plan["names"]
    out = _dimension(plan, values, dim)
    out[names["N"]] = float(n)
    if plan["support"] != "real" or not plan["moments"]:
        check_rows(plan, x)  # vector_moments checks that every cell is finite
    if plan["moments"]:
        n_rows, mean, scatter = vector_moments(x)
        if plan["spd"]:
            check_scatter(n_rows, scatter, mean)
        out[names["mean"]] = mean.reshape(-1, 1)
        out[names["scatter"]] = scatter
        if "x" in plan["moments"]:
            out[plan["moments"]["x"]] = (n * mean).reshape(-1, 1)
        if "xx" in plan["moments"]:
            out[plan["moments"]["xx"]] = scatter + n * np.outer(mean, mean)
    sums = list(plan["entrywise"])
    frees = list(plan["free"]) if free else []
    if sums or frees:
        acc = [_Compensated(dim) for _ in sums]
        facc = [_Compensated(()) for _ in frees]
        for start, block in row_chunks(x):
            with np.errstate(all="ignore"):
                for k, (_, fn, label) in enumerate(sums):
                    v = np.asarray(fn(block), dtype=float) * np.ones_like(block)
                    part = v.sum(axis=0)
                    if not np.all(np.isfinite(part)):
                        i, j = _first(~np.isfinite(v)) or (0, 0)
                        raise BadData(
                            f"gives {label} = {show_number(v[i, j])}", start + i, block[i, j], column=j
                        )
                    acc[k].add(part)
                rows = block[:, :, None]
                for k, (_, fn) in enumerate(frees):
                    v = np.asarray(fn(out, rows), dtype=float) * np.ones(block.shape[0])
                    part = float(np.sum(v))
                    if not math.isfinite(part):
                        i = int(np.flatnonzero(~np.isfinite(v))[0]) if not np.all(np.isfinite(v)) else 0
                        raise NoMLE(f"the log-density is not finite at row {start + i + 1} of the data")
                    facc[k].add(part)
        for (name, _, _), a in zip(sums, acc):
            out[name] = a.total().reshape(-1, 1)
        for (name, _), a in zip(frees, facc):
            out[name] = float(a.total())
    return out


def stack_statistics(plan, samples, values):
    """The statistics of ``R`` data sets at once: ``samples`` of shape ``(R, n, D)``, in memory.

    Each replicate is centred at its own mean before its scatter is formed (two passes over
    memory), so the stacked statistics are as accurate as :func:`vector_statistics`.
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 3 or samples.shape[1] == 0:
        raise BadData(f"expected replicates of shape (R, n, D), got {samples.shape}")
    reps, n, dim = samples.shape
    names = plan["names"]
    out = _dimension(plan, values, dim)
    out[names["N"]] = float(n)
    if plan["moments"]:
        mean = samples.mean(axis=1)
        centred = samples - mean[:, None, :]
        scatter = np.matmul(np.swapaxes(centred, 1, 2), centred)
        out[names["mean"]] = mean[..., None]
        out[names["scatter"]] = scatter
        if "x" in plan["moments"]:
            out[plan["moments"]["x"]] = n * mean[..., None]
        if "xx" in plan["moments"]:
            out[plan["moments"]["xx"]] = scatter + n * mean[:, :, None] * mean[:, None, :]
    for name, fn, _ in plan["entrywise"]:
        with np.errstate(all="ignore"):
            out[name] = (np.asarray(fn(samples), dtype=float) * np.ones_like(samples)).sum(axis=1)[..., None]
    return out


def batched_names(plan):
    """The keys of the statistics that :func:`stack_statistics` stacks."""
    names = [plan["names"]["mean"], plan["names"]["scatter"], *plan["moments"].values()]
    return set(names) | {name for name, _, _ in plan["entrywise"]}


# --------------------------------------------------------------------------
# estimation
# --------------------------------------------------------------------------


def vector_solve(plan, values):
    """``values`` with every parameter: closed forms in order, then the numeric maximisation."""
    out = dict(values)
    with np.errstate(all="ignore"):
        for name, fn in plan["closed"]:
            out[name] = fn(out)
    if plan["numeric"]:
        vector_maximise(plan, out)
    return out


def _unpack(plan, z, dim):
    out, k = {}, 0
    for name in plan["numeric"]:
        domain = plan["domains"][name]
        size = 1 if domain not in ("vector", "positive_vector", "simplex") else dim
        v = z[k : k + size]
        k += size
        if domain in ("positive", "positive_vector"):
            v = np.exp(np.minimum(v, 700.0))
        elif domain == "simplex":
            e = np.exp(v - np.max(v))
            v = e / e.sum()
        elif domain != "real" and domain != "vector":
            raise NoMLE(f"symmle cannot maximise over {name} ({domain}) numerically")
        out[name] = (
            v.reshape(-1, 1)
            if size > 1 or domain in ("vector", "positive_vector", "simplex")
            else float(v[0])
        )
    return out


def _chain(domain, g, v):
    """The gradient in the unconstrained coordinate from the gradient in the parameter."""
    if domain in ("positive", "positive_vector"):
        return g * v
    if domain == "simplex":
        return v * (g - float(np.dot(v, g)))
    return g


def vector_maximise(plan, values):
    """Maximise the log-likelihood over the numeric parameters, with its exact score (BFGS).

    Positive entries are maximised on the log scale and a simplex through the softmax of
    free coordinates, from the unconstrained origin; a gradient above ``1e-6`` per observation
    at the end is :class:`NoMLE`.
    """
    from scipy import optimize

    names = plan["names"]
    dim = int(values[plan["dimension"]])
    n = float(values[names["N"]])
    numeric = plan["numeric"]

    def objective(z):
        values.update(_unpack(plan, z, dim))
        try:
            value = -float(plan["objective"](values)) / n
            grad = []
            for name in numeric:
                g = np.asarray(plan["score"][name](values), dtype=float).reshape(-1)
                v = np.asarray(values[name], dtype=float).reshape(-1)
                grad.append(-_chain(plan["domains"][name], g, v) / n)
        except (ValueError, FloatingPointError, ZeroDivisionError, np.linalg.LinAlgError):
            return np.inf, np.zeros(z.size)
        if not math.isfinite(value):
            return np.inf, np.zeros(z.size)
        return value, np.concatenate(grad)

    size = sum(1 if plan["domains"][k] in ("real", "positive") else dim for k in numeric)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = optimize.minimize(
            objective, np.zeros(size), jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 2000}
        )
        _, grad = objective(res.x)
    if not np.all(np.isfinite(res.x)) or not np.all(np.isfinite(grad)) or np.max(np.abs(grad)) > 1e-6:
        raise NoMLE(f"the numeric maximisation did not converge: {res.message}")
    values.update(_unpack(plan, res.x, dim))


def shaped(plan, name, value):
    """A parameter's value as the user sees it: a float, a (D,) vector or a (D, D) matrix."""
    v = np.asarray(value, dtype=float)
    domain = plan["domains"][name]
    if domain == "spd":
        return v
    if domain in ("vector", "positive_vector", "simplex"):
        return v[..., 0]
    return float(v) if v.ndim == 0 else v


def vector_covariance(plan, values, n):
    """The asymptotic covariance ``(n I)^-1`` in the plan's coordinates (a stack where ``values`` are)."""
    if plan["fisher"] is None:
        return None
    with np.errstate(all="ignore"):
        info = np.asarray(plan["fisher"](values), dtype=float)
    if info.ndim < 2 or info.shape[-1] != info.shape[-2]:
        return None
    stack = info.reshape((-1,) + info.shape[-2:])
    cov = np.full(stack.shape, np.nan)
    for r, f in enumerate(stack):
        if np.all(np.isfinite(f)):
            try:
                cov[r] = np.linalg.inv(n * f)
            except np.linalg.LinAlgError:
                pass
    return cov.reshape(info.shape)


def stderr_of(plan, values, n):
    """Standard errors of every parameter in its shape (``None`` where there is no information)."""
    dim = int(values[plan["dimension"]])
    cov = vector_covariance(plan, values, n)
    out = {name: None for name in plan["parameters"]}
    if cov is None or np.all(np.isnan(cov)):
        return out
    se = np.sqrt(np.clip(np.diagonal(cov, axis1=-2, axis2=-1), 0, None))
    k = 0
    for name, kind in plan["coordinates"]:
        size = coordinate_size(kind, dim)
        part = from_coordinates(kind, se[..., k : k + size], dim)
        k += size
        out[name] = float(part) if np.ndim(part) == 0 else part
    return out


def _fit(plan, x, constants):
    x = vector_rows(x)
    values = vector_constants(plan, constants, x.shape[1])
    solved = vector_solve(plan, vector_statistics(plan, x, values))
    for name in plan["parameters"]:
        v = np.asarray(solved[name], dtype=float)
        if not np.all(np.isfinite(v)):
            raise NoMLE(f"the estimate of {name} is not finite: the MLE was not found")
    return x, solved


def run_vector_estimate(plan, x, constants):
    """The maximum-likelihood estimates from rows ``x``: ``{name: float or array}``."""
    _, solved = _fit(plan, x, constants)
    return {name: shaped(plan, name, solved[name]) for name in plan["parameters"]}


def run_vector_fit(plan, x, constants):
    """``(estimates, standard errors)`` from one reduction of the data."""
    x, solved = _fit(plan, x, constants)
    est = {name: shaped(plan, name, solved[name]) for name in plan["parameters"]}
    se = stderr_of(plan, solved, x.shape[0])
    if plan["parameters"] and all(v is None for v in se.values()):
        caution("no standard errors: the Fisher information is singular or was not derived")
    return est, se


def run_vector_stderr(plan, x, constants):
    """Asymptotic standard errors at the estimates, from the expected information."""
    return run_vector_fit(plan, x, constants)[1]


def run_vector_log_likelihood(plan, x, given):
    """``sum_i log f(x_i)`` at the given parameter and constant values."""
    x = vector_rows(x)
    dim = x.shape[1]
    params = {k: v for k, v in given.items() if k in plan["parameters"]}
    consts = {k: v for k, v in given.items() if k not in plan["parameters"]}
    values = vector_constants(plan, consts, dim)
    missing = [k for k in plan["parameters"] if k not in params]
    if missing:
        raise NoMLE(f"missing value for parameter '{missing[0]}'")
    for name in plan["parameters"]:
        values[name] = as_value(name, plan["domains"][name], params[name], dim)
    values = vector_statistics(plan, x, values, free=True)
    with np.errstate(all="ignore"):
        total = float(plan["informative"](values)) + sum(float(values[name]) for name, _ in plan["free"])
    return total


def run_vector_fisher(plan, given, dim):
    """The per-observation Fisher information at the given values, in the plan's coordinates."""
    values = vector_constants(plan, {k: v for k, v in given.items() if k not in plan["parameters"]}, dim)
    for name in plan["parameters"]:
        values[name] = as_value(name, plan["domains"][name], given[name], dim)
    if plan["fisher"] is None:
        return None
    with np.errstate(all="ignore"):
        return np.asarray(plan["fisher"](_dimension(plan, values, dim)), dtype=float)


def run_vector_estimate_rows(plan, samples, constants):
    """Estimates of ``R`` data sets ``samples`` (shape ``(R, n, D)``): ``{name: (R, ...) array}``.

    Closed forms run on all replicates in one vectorised call; numeric parameters replicate by
    replicate.  ``nan`` marks a replicate whose MLE was not found.
    """
    samples = np.asarray(samples, dtype=float)
    reps, _, dim = samples.shape
    values = vector_constants(plan, constants, dim)
    stats = stack_statistics(plan, samples, values)
    out = {}
    with np.errstate(all="ignore"):
        for name, fn in plan["closed"]:
            stats[name] = fn(stats)
    if plan["numeric"]:
        stacked = batched_names(plan) | {name for name, _ in plan["closed"]}
        found = {name: [] for name in plan["numeric"]}
        for r in range(reps):
            row = {k: (np.asarray(v)[r] if k in stacked and np.ndim(v) else v) for k, v in stats.items()}
            try:
                vector_maximise(plan, row)
                for name in plan["numeric"]:
                    found[name].append(np.asarray(row[name], dtype=float))
            except NoMLE:
                for name in plan["numeric"]:
                    found[name].append(np.full(np.shape(row.get(name, np.zeros((dim, 1)))), np.nan))
        for name in plan["numeric"]:
            stats[name] = np.stack(found[name])
    for name in plan["parameters"]:
        v = np.asarray(shaped(plan, name, stats[name]), dtype=float)
        out[name] = np.broadcast_to(v, (reps,) + v.shape[v.ndim - _rank(plan, name) :]).copy()
    return out


def _rank(plan, name):
    domain = plan["domains"][name]
    return 2 if domain == "spd" else 1 if domain in ("vector", "positive_vector", "simplex") else 0


def run_vector_stderr_rows(plan, estimates, n, constants, dim):
    """Standard errors at ``R`` replicates' estimates (``{name: (R, ...) array}``), samples of size ``n``."""
    values = _dimension(plan, vector_constants(plan, constants, dim), dim)
    for name in plan["parameters"]:
        v = np.asarray(estimates[name], dtype=float)
        values[name] = v[..., None] if _rank(plan, name) == 1 else v
    return stderr_of(plan, values, n)
