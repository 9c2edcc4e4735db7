"""The fit a generated regression module runs: its data checks, starting values, least squares or Newton.

``symmle compile`` of a regression (:mod:`symmle.numbers.regression_codegen`) copies everything
after the imports below verbatim into the generated module, after verbatim copies of the
modules these imports name (:mod:`symmle.numbers._regression_runtime`,
:mod:`symmle.numbers.least_squares`, :mod:`symmle.numbers.separation`) and stand-ins of
symmle's error classes; so it is pure NumPy and SciPy.  In-process,
:class:`symmle.numbers.regression_compiled.CompiledRegression` runs the same generated source.

A *regression plan* is a dict written by the generator:

``parameters``: ``("beta", *shared)``; ``shared``, ``domains``: the family's other parameters and
their domains; ``constants``, ``constant_domains``, ``known``: the constants, their domains and
the values fixed at compile time; ``variable``, ``discrete``, ``support(c)``: the response's name,
whether it is an integer, and the ends of its support (``c`` the constants' values in order);
``linked``, ``eta_domain``: the linked parameter and the domain of the linear predictor;
``derivatives(y, eta, phi, c)``: the flat list of
:func:`~symmle.numbers._regression_runtime.regression_sums`; ``logf(y, eta, phi, c)`` and
``score(y, eta, phi, c)``: the log-density and its derivative in eta; ``link(theta, c)``: the link
g; ``closed``: ``None`` (Newton) or ``{"z": z(y, c), "stats": [g_j(y, eta, c)], "profile":
[phi_k(N, R, c)], "slope": b(phi, c)}`` (least squares of the working response z, then the shared
parameters profiled on ``R_j = sum_i g_j(y_i, eta_i)``); ``rows``, ``max_iterations``,
``separation_cells``: the fit's block size, its Newton iterations, and the largest design searched
for separation (those of :mod:`symmle.numbers.regression_fit`).

Starting values of Newton's method, for any family: the *null model* (every ``eta_i`` one
number ``c`` plus the offset) is searched on a subsample, ``c`` over the link of the response's
mean and quantiles and a grid spanning the domain of eta, each shared parameter over a grid of its
domain, then maximised by the same Newton's method; the coefficients start as the least-squares
line through ``eta = c`` (the intercept at ``c`` when the design has one).
"""

import math

import numpy as np

from symmle.base._runtime import in_domain
from symmle.base.errors import DataError, SpecError
from symmle.numbers._regression_runtime import (
    NotConverged,
    column_scale,
    gram_factor,
    newton,
    regression_sums,
    score_signs,
    shared_sums,
)
from symmle.numbers.least_squares import check_rank, covariance_factor, least_squares
from symmle.numbers.separation import find_separation

#: Rows of the subsample on which the starting values are searched.
START_ROWS = 4096
#: Rows of the design through which the starting line is fitted.
LINE_ROWS = 10_000


def regression_constants(plan, constants):
    """The constants' values in the plan's order (those fixed at compile time, then the given ones)."""
    values = dict(plan["known"])
    for name, v in constants.items():
        if name not in plan["constants"]:
            names = ", ".join(c for c in plan["constants"] if c not in plan["known"]) or "(none)"
            raise SpecError(f"unknown constant '{name}'; this model's constants to give: {names}")
        if name in plan["known"]:
            raise SpecError(
                f"the constant {name} was fixed at compile time ({name} = {plan['known'][name]!r})"
            )
        try:
            values[name] = float(v)
        except (TypeError, ValueError):
            raise SpecError(f"the constant {name} must be a number (got {type(v).__name__})") from None
        if not in_domain(values[name], plan["constant_domains"][name]):
            raise SpecError(f"the constant {name} = {values[name]!r} is outside its domain")
    missing = [name for name in plan["constants"] if name not in values]
    if missing:
        raise SpecError(f"give the value of the constant {missing[0]} ({missing[0]}=VALUE)")
    return [values[name] for name in plan["constants"]]


def _column_names(X, p):
    """The design's column names: a table's own (a pandas DataFrame), else ``X[:, j]``."""
    columns = getattr(X, "columns", None)
    if columns is not None and len(columns) == p:
        return [str(c) for c in columns]
    return [f"X[:, {j}]" for j in range(p)]


def _first_bad(ok, start):
    return start + int(np.argmin(ok)) + 1


def regression_inputs(plan, y, X, offset, c):
    """Checked ``(y, X, offset, terms)``: one row of ``X`` per response, every value finite and in range.

    ``X`` stays as given when it is a memory map (read a block of rows at a time); the errors name
    the first bad row (1-based).
    """
    table = X
    if not isinstance(X, np.memmap):
        X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise DataError(f"the design X must be a 2-D array (rows x columns), not {X.ndim}-D")
    terms = _column_names(table, X.shape[1])
    y = np.asarray(y, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"the response must be a vector, not an array of shape {y.shape}")
    n = y.shape[0]
    if X.shape[0] != n:
        raise DataError(f"the design has {X.shape[0]} rows for {n} responses")
    if n == 0:
        raise DataError("the data are empty")
    var = plan["variable"]
    lo, hi = plan["support"](c)
    ok = np.isfinite(y)
    if not ok.all():
        k = _first_bad(ok, 0)
        raise DataError(f"row {k}: {var} = {float(y[k - 1])!r} is not a finite number")
    ok = (y >= lo) & (y <= hi)
    if not ok.all():
        k = _first_bad(ok, 0)
        raise DataError(
            f"row {k}: {var} = {float(y[k - 1])!r} is outside the support [{float(lo)!r}, {float(hi)!r}]"
        )
    if plan["discrete"]:
        ok = y == np.round(y)
        if not ok.all():
            k = _first_bad(ok, 0)
            raise DataError(f"row {k}: {var} = {float(y[k - 1])!r} is not an integer")
    for a in range(0, n, plan["rows"]):
        block = np.asarray(X[a : a + plan["rows"]], dtype=float)
        ok = np.isfinite(block).all(axis=1)
        if not ok.all():
            k = _first_bad(ok, a)
            j = int(np.argmin(np.isfinite(block[k - 1 - a])))
            raise DataError(f"row {k}: the value of {terms[j]} is not a finite number")
    if offset is not None:
        offset = np.asarray(offset, dtype=float)
        if offset.ndim == 0:
            offset = np.full(n, float(offset))
        if offset.shape != (n,):
            raise DataError(f"the offset must hold one number per row ({n}), not shape {offset.shape}")
        ok = np.isfinite(offset)
        if not ok.all():
            raise DataError(f"row {_first_bad(ok, 0)}: the offset is not a finite number")
    return y, X, offset, terms


def regression_blocks(y, X, offset, rows):
    """A function yielding ``(y, X, offset)`` by blocks of rows (``X`` C-ordered floats), callable again."""

    def run():
        for a in range(0, y.shape[0], rows):
            b = a + rows
            yield y[a:b], np.ascontiguousarray(X[a:b], dtype=float), None if offset is None else offset[a:b]

    return run


def regression_fit(plan, y, X, offset, constants):
    """The maximum-likelihood fit: a dict of ``beta``, ``phi`` (a list), their covariances ``cov_beta``
    and ``cov_phi``, ``log_likelihood`` and ``iterations``."""
    c = regression_constants(plan, constants)
    y, X, offset, terms = regression_inputs(plan, y, X, offset, c)
    run = regression_blocks(y, X, offset, plan["rows"])
    return regression_fit_blocks(plan, run, y, X, offset, terms, c)


def regression_fit_blocks(plan, run, y, X, offset, terms, c):
    """The fit of checked data given by blocks of rows, ``run()`` (see :func:`regression_blocks`).

    ``y`` and ``offset`` are whole (for the starting values and the signs of the score); ``X`` is the
    whole design, searched for separation when it is in memory and small enough, or ``None`` (a
    design read by blocks only); ``c`` the constants' values in the plan's order.
    """
    n, p = y.shape[0], len(terms)
    if n <= p:
        raise DataError(f"{n} observations for {p} coefficients: the regression needs more rows than terms")

    def derivatives(values, eta, phi):
        return plan["derivatives"](values, eta, phi, c)

    if plan["closed"] is not None:
        return _least_squares_fit(plan, run, derivatives, n, p, terms, c)
    return _newton_fit(plan, run, derivatives, y, X, offset, terms, c)


def _values_text(name, y):
    """How a separation message names a set of rows: by their responses (``y = 1``, ``y from 1 to 40``)."""
    values = np.unique(y)
    if values.size == 0:
        return ""
    if values.size == 1:
        return f"{name} = {values[0]:g}"
    if values.size <= 3:
        return f"{name} in {{{', '.join(f'{v:g}' for v in values)}}}"
    return f"{name} from {values[0]:g} to {values[-1]:g}"


def regression_estimates(plan, fit):
    """``{"beta": array, shared parameter: float, ...}`` of a fit."""
    out = {"beta": np.asarray(fit["beta"], dtype=float)}
    out.update({name: float(v) for name, v in zip(plan["shared"], fit["phi"])})
    return out


def regression_stderr(plan, fit):
    """Standard errors of a fit, of the estimates' shapes (``None`` where the variance is not positive)."""
    out = {"beta": np.sqrt(np.clip(np.diag(fit["cov_beta"]), 0, None))}
    for j, name in enumerate(plan["shared"]):
        var = float(fit["cov_phi"][j, j])
        out[name] = math.sqrt(var) if var > 0 else None
    return out


def _least_squares_fit(plan, run, derivatives, n, p, terms, c):
    """Least squares of the working response, then the shared parameters' closed forms."""
    closed = plan["closed"]

    def pairs():
        for values, block, off in run():
            with np.errstate(all="ignore"):
                z = np.broadcast_to(np.asarray(closed["z"](values, c), dtype=float), values.shape)
            yield block, (z if off is None else z - off)

    ls = least_squares(pairs, terms)
    check_rank(ls.r, terms)
    beta = ls.beta
    stats = [0.0] * len(closed["stats"])
    for values, block, off in run():
        eta = block @ beta + (0 if off is None else off)
        for j, g in enumerate(closed["stats"]):
            with np.errstate(all="ignore"):
                stats[j] += float(np.sum(np.broadcast_to(g(values, eta, c), values.shape)))
    phi = [float(fn(n, stats, c)) for fn in closed["profile"]]
    for name, v, domain in zip(plan["shared"], phi, plan["domains"]):
        if not (math.isfinite(v) and in_domain(v, domain)):
            raise DataError(
                f"the MLE of {name} does not exist for these data: its closed form gives {v:g}, "
                f"outside its domain ({domain})"
                + (" (the fit is exact: the residuals are all zero)" if v == 0 else "")
            )
    loglik, h = shared_sums(run, derivatives, beta, phi)
    slope = float(closed["slope"](phi, c))
    cov_beta = covariance_factor(ls.r) / (-slope)
    k = len(phi)
    cov_phi = np.linalg.inv(-h) if k else np.zeros((0, 0))
    if k:  # the unbiased residual variance: the exact t inference of least squares
        cov_beta = cov_beta * (n / (n - p))
    return {
        "beta": beta,
        "phi": phi,
        "cov_beta": cov_beta,
        "cov_phi": cov_phi,
        "log_likelihood": loglik,
        "iterations": 0,
    }


def _newton_fit(plan, run, derivatives, y, X, offset, terms, c):
    """Newton's method with the exact derivatives, on column-scaled coefficients."""
    n, p = y.shape[0], len(terms)
    domains = plan["domains"]
    scale = column_scale(run, p)
    check_rank(gram_factor(run, scale, p) * scale, terms)  # R of X itself: relations in its units
    beta, phi = regression_start(plan, run, y, offset, c, p)
    searched = X is not None and not isinstance(X, np.memmap) and n * p <= plan["separation_cells"]
    if plan["eta_domain"] == "real" and searched:
        sign = score_signs(lambda values, eta: plan["score"](values, eta, phi, c), y)
        if sign.any():
            labels = tuple(_values_text(plan["variable"], y[sign == k]) for k in (1, -1, 0))
            found = find_separation(X, sign, terms, labels=labels)
            if found is not None:
                raise DataError(found.message)

    def evaluate(theta):
        return regression_sums(run, derivatives, theta[:p], list(theta[p:]), scale)

    def shared_ok(theta):
        return all(in_domain(v, dom) for v, dom in zip(theta[p:], domains))

    try:
        theta, (loglik, _, h), iterations = newton(
            evaluate, np.concatenate([beta * scale, phi]), shared_ok, plan["max_iterations"]
        )
    except NotConverged as exc:
        raise DataError(
            f"{exc}; the MLE may not exist for these data, or the model does not suit them"
        ) from None
    info = -h
    if not np.all(np.linalg.eigvalsh(info) > 0):
        raise DataError(
            "the log-likelihood is not strictly concave at the estimate (the observed information is not "
            "positive definite): the MLE is not unique for these data"
        )
    cov = np.linalg.inv(info)
    return {
        "beta": theta[:p] / scale,
        "phi": list(theta[p:]),
        "cov_beta": cov[:p, :p] / np.outer(scale, scale),
        "cov_phi": cov[p:, p:],
        "log_likelihood": loglik,
        "iterations": iterations,
    }


def _grid(domain, centre, spread):
    """Trial values spread over a domain, on the data's scale where it has one."""
    spread = spread if math.isfinite(spread) and spread > 0 else 1.0
    if domain in ("positive", "nonnegative", "integer", "positive_integer"):
        return np.r_[10.0 ** np.linspace(-5, 5, 41), spread * 10.0 ** np.linspace(-3, 3, 25)]
    if domain == "unit":
        return np.linspace(0.01, 0.99, 33)
    steps = np.geomspace(0.01, 100, 15)
    wide = 10.0 ** np.linspace(-3, 3, 13)
    return np.r_[centre + spread * np.r_[-steps, 0.0, steps], -wide, 0.0, wide]


_NEUTRAL = {"unit": 0.5, "real": 0.0}


def regression_start(plan, run, y, offset, c, p):
    """Starting coefficients and shared parameters: the null model's MLE (see the module docstring)."""
    n = y.shape[0]
    step = max(1, -(-n // START_ROWS))
    ys = np.asarray(y[::step], dtype=float)
    offs = None if offset is None else np.asarray(offset[::step], dtype=float)
    domains = plan["domains"]
    centre, spread = float(np.median(ys)), float(np.std(ys))

    def null(level, phi):
        eta = level if offs is None else level + offs
        with np.errstate(all="ignore"):
            v = float(np.sum(np.broadcast_to(plan["logf"](ys, eta, phi, c), ys.shape)))
        return v if math.isfinite(v) else -math.inf

    # the link of the response's mean and quantiles (less the offset's median), and a grid of eta's domain
    with np.errstate(all="ignore"):
        typical = np.r_[np.mean(ys), np.quantile(ys, [0.1, 0.25, 0.5, 0.75, 0.9])]
        linked = np.asarray(plan["link"](typical, c), dtype=float).reshape(-1)
    if offs is not None:
        linked = np.r_[linked, linked - np.median(offs)]
    linked = linked[np.isfinite(linked)]
    middle = float(np.median(linked)) if linked.size else 0.0
    levels = [float(v) for v in np.r_[linked, _grid(plan["eta_domain"], middle, 1.0)]]
    levels = [v for v in levels if in_domain(v, plan["eta_domain"])]
    phi = [_NEUTRAL.get(dom, 1.0) for dom in domains]
    level, best = (levels[0] if levels else 0.0), -math.inf
    for _ in range(2):  # coordinate-wise: the level, then each shared parameter, twice
        for v in levels:
            score = null(v, phi)
            if score > best:
                level, best = v, score
        for j, dom in enumerate(domains):
            for v in _grid(dom, centre, spread):
                if not in_domain(float(v), dom):
                    continue
                trial = [*phi[:j], float(v), *phi[j + 1 :]]
                score = null(level, trial)
                if score > best:
                    phi, best = trial, score
    if best == -math.inf:
        raise DataError(
            "no starting values: the log-likelihood is not finite at any trial value of the linear predictor "
            "and the shared parameters"
        )

    def sample():
        yield ys, np.ones((ys.shape[0], 1)), offs

    def evaluate(theta):
        return regression_sums(
            sample, lambda v, e, f: plan["derivatives"](v, e, f, c), theta[:1], list(theta[1:]), np.ones(1)
        )

    def shared_ok(theta):
        return in_domain(float(theta[0]), plan["eta_domain"]) and all(
            in_domain(v, dom) for v, dom in zip(theta[1:], domains)
        )

    try:
        theta, _, _ = newton(
            evaluate, np.array([level, *phi], dtype=float), shared_ok, plan["max_iterations"]
        )
        level, phi = float(theta[0]), [float(v) for v in theta[1:]]
    except NotConverged:
        pass  # the null model's MLE on the subsample need not exist: the search's best is a start too
    _, block, _ = next(iter(run()))
    rows = block[:LINE_ROWS]
    beta, *_ = np.linalg.lstsq(rows, np.full(rows.shape[0], level), rcond=None)
    return beta, phi


def regression_log_likelihood(plan, y, X, offset, values):
    """``sum_i l(y_i, x_i^T beta + offset_i, phi)`` at the given ``beta``, shared parameters and constants."""
    values = dict(values)
    if "beta" not in values:
        raise SpecError("give the coefficients: beta=[...] in the order of X's columns")
    beta = np.asarray(values.pop("beta"), dtype=float).reshape(-1)
    phi = []
    for name, domain in zip(plan["shared"], plan["domains"]):
        if name not in values:
            raise SpecError(f"give the value of {name} ({name}=VALUE)")
        v = values.pop(name)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise SpecError(f"{name} must be a number (got {type(v).__name__})") from None
        if not in_domain(v, domain):
            raise SpecError(f"{name} = {v!r} is outside its domain ({domain})")
        phi.append(v)
    c = regression_constants(plan, values)
    y, X, offset, _ = regression_inputs(plan, y, X, offset, c)
    if beta.shape != (X.shape[1],) or not np.isfinite(beta).all():
        raise SpecError(
            f"beta must be {X.shape[1]} finite numbers, one per column of X (got {beta.shape[0]})"
        )
    total = 0.0
    for block_y, block, off in regression_blocks(y, X, offset, plan["rows"])():
        eta = block @ beta + (0 if off is None else off)
        with np.errstate(all="ignore"):
            total += float(np.sum(np.broadcast_to(plan["logf"](block_y, eta, phi, c), block_y.shape)))
    return total
