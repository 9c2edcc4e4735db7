"""The EM driver that ``symmle compile MODEL --mixture K`` copies into its modules.

Everything below the marker is copied verbatim into the generated module
(:mod:`symmle.numbers.mixture_codegen`), after the module's own imports (``math``,
``numpy as np``) and before its generated functions and ``PLAN``.  It mirrors
:mod:`symmle.numbers.mixture_em` step for step (the same starts, M-step order,
monotonicity check, convergence rule, degeneracy rules, canonical order and
observed information), so a compiled module gives the numbers of
``symmle.fit(model, x, mixture=K)``; ``tests/test_mixture_check_compile.py`` holds
the two against each other.  It must import nothing but ``math`` and NumPy at module
level (SciPy's ``optimize`` only inside the numeric M-step, for families without a
closed form).

``plan`` holds the model's names and the generated functions: ``logf(v, x)``, the
statistics ``stats[j](v, x)``, the M-step ``closed``/``profile`` lists of
``(name, fn(v))``, the ``reduced`` parameters' profile ``objective(v)`` and its
``gradient``, the log-likelihood ``ell(v)`` in ``N`` and the statistics, and the
derivatives ``grad[p](v, x)``, ``hess[p][q](v, x)`` of the log-density; ``v`` maps
names to values.
"""

import math

import numpy as np

# ---- copied into generated modules from here ----


class MixtureError(ValueError):
    """The data cannot be fitted: bad values, or the mixture degenerates (its MLE does not exist)."""


class _Collapse(Exception):
    pass


def mix_in_domain(value, domain):
    """Whether the number ``value`` lies in ``domain``."""
    if not math.isfinite(value):
        return False
    return {
        "real": True,
        "positive": value > 0,
        "nonnegative": value >= 0,
        "unit": 0 < value < 1,
        "integer": float(value).is_integer(),
        "positive_integer": float(value).is_integer() and value > 0,
    }[domain]


def _mix_to_z(t, domain):
    if domain in ("positive", "nonnegative"):
        return math.log(t)
    if domain == "unit":
        return math.log(t) - math.log1p(-t)
    return float(t)


def _mix_from_z(z, domain):
    if domain in ("positive", "nonnegative"):
        return math.exp(min(z, 700.0))
    if domain == "unit":
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
    return float(z)


def _mix_dtheta_dz(t, domain):
    if domain in ("positive", "nonnegative"):
        return t
    if domain == "unit":
        return t * (1 - t)
    return 1.0


def mix_logsumexp(a):
    """``log(sum(exp(a), axis=1))`` without overflow."""
    m = np.max(a, axis=1)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m[:, None]), axis=1)) + m


def _mix_args(plan, constants, n, s, theta):
    v = dict(constants)
    v[plan["N"]] = n
    v.update(zip(plan["T"], s))
    v.update(zip(plan["parameters"], theta))
    return v


def mix_statistics(plan, x, constants):
    """The N x J matrix of the statistics' summands g_j(x_i)."""
    return np.column_stack(
        [np.broadcast_to(np.asarray(g(constants, x), dtype=float), x.shape) for g in plan["stats"]]
    )


def mix_log_density(plan, x, theta, constants):
    """N x K component log-densities at ``theta`` (P x K)."""
    v = dict(constants)
    for p, name in enumerate(plan["parameters"]):
        v[name] = theta[p][None, :]
    with np.errstate(all="ignore"):
        out = plan["logf"](v, x[:, None])
    return np.broadcast_to(np.asarray(out, dtype=float), (x.shape[0], theta.shape[1]))


def _mix_q(plan, constants, n, s, theta):
    with np.errstate(all="ignore"):
        return float(plan["ell"](_mix_args(plan, constants, n, s, theta)))


def _mix_solve_reduced(plan, constants, n, s, theta):
    from scipy import optimize

    names = plan["parameters"]
    idx = [names.index(p) for p in plan["reduced"]]
    doms = [plan["domains"][i] for i in idx]

    def values(z):
        t = theta.copy()
        t[idx] = [_mix_from_z(zz, dm) for zz, dm in zip(z, doms)]
        return t

    def f(z):
        with np.errstate(all="ignore"):
            v = float(plan["objective"](_mix_args(plan, constants, n, s, values(z))))
        return -v / max(n, 1e-300) if np.isfinite(v) else 1e300

    def g(z):
        t = values(z)
        args = _mix_args(plan, constants, n, s, t)
        with np.errstate(all="ignore"):
            gr = np.array([float(fn(args)) for fn in plan["gradient"]])
        jac = np.array([_mix_dtheta_dz(t[i], dm) for i, dm in zip(idx, doms)])
        out = -gr * jac / max(n, 1e-300)
        return np.where(np.isfinite(out), out, 0.0)

    starts = []
    if np.all(np.isfinite(theta[idx])):
        starts.append(np.array([_mix_to_z(theta[i], dm) for i, dm in zip(idx, doms)]))
    starts.append(np.zeros(len(idx)))
    best = None
    for z0 in starts:
        res = optimize.minimize(f, z0, jac=g, method="BFGS", options={"gtol": 1e-12, "maxiter": 500})
        if best is None or res.fun < best.fun:
            best = res
    return values(best.x)


def mix_m_step_one(plan, constants, n, s, previous):
    """The weighted MLE of one component from N_k and S_kj (a generalised step where numeric)."""
    names = plan["parameters"]
    theta = np.array(previous if previous is not None else [np.nan] * len(names), dtype=float)
    with np.errstate(all="ignore"):
        if plan["reduced"]:
            theta = _mix_solve_reduced(plan, constants, n, s, theta)
        for name, fn in plan["profile"]:
            theta[names.index(name)] = float(fn(_mix_args(plan, constants, n, s, theta)))
        for name, fn in plan["closed"]:
            theta[names.index(name)] = float(fn(_mix_args(plan, constants, n, s, theta)))
    if previous is not None and plan["reduced"]:
        # a generalised EM step: Q never goes down
        if _mix_q(plan, constants, n, s, theta) < _mix_q(plan, constants, n, s, previous) or not np.all(
            np.isfinite(theta)
        ):
            return previous
    return theta


def mix_e_step(plan, x, w, theta, constants):
    with np.errstate(divide="ignore"):
        lw = np.log(w)[None, :] + mix_log_density(plan, x, theta, constants)
    ll_i = mix_logsumexp(lw)
    return np.exp(lw - ll_i[:, None]), float(np.sum(ll_i))


def mix_m_step(plan, constants, x, G, r, theta_prev, reference):
    nk = r.sum(axis=0)
    n = x.shape[0]
    if np.any(nk / n < plan["min_weight"]) or np.any(nk < plan["min_count"]):
        k = int(np.argmin(nk))
        raise _Collapse(
            f"the weight of component {k + 1} vanishes (it holds {nk[k]:.3g} observations' worth)"
        )
    S = G.T @ r
    K = r.shape[1]
    names = plan["parameters"]
    theta = np.empty((len(names), K))
    for k in range(K):
        prev = None if theta_prev is None else theta_prev[:, k]
        theta[:, k] = mix_m_step_one(plan, constants, float(nk[k]), S[:, k], prev)
    for p, (name, dom) in enumerate(zip(names, plan["domains"])):
        for k in range(K):
            v = theta[p, k]
            if not np.isfinite(v) or not mix_in_domain(v, dom):
                raise _Collapse(f"component {k + 1}'s {name} leaves its domain ({dom}): {v:g}")
            ref = reference[p]
            if (
                dom in ("positive", "nonnegative")
                and np.isfinite(ref)
                and ref > 0
                and v < plan["collapse"] * ref
            ):
                raise _Collapse(f"component {k + 1} collapses onto a point ({name} -> 0)")
    return nk / n, theta


def mix_run(plan, constants, x, G, r0, reference):
    """EM from the responsibilities ``r0``: (log-likelihood, weights, theta, iterations, converged)."""
    w, theta = mix_m_step(plan, constants, x, G, r0, None, reference)
    r, ll = mix_e_step(plan, x, w, theta, constants)
    converged = False
    it = 0
    for it in range(1, plan["max_iter"] + 1):
        w_new, theta_new = mix_m_step(plan, constants, x, G, r, theta, reference)
        r, ll_new = mix_e_step(plan, x, w_new, theta_new, constants)
        if not np.isfinite(ll_new):
            raise _Collapse("the log-likelihood is not finite")
        if ll_new < ll - plan["monotone_slack"] * max(1.0, abs(ll)):
            raise ArithmeticError(
                f"internal error: the EM log-likelihood decreased from {ll!r} to {ll_new!r} at iteration {it}"
            )
        dl = abs(ll_new - ll) / max(1.0, abs(ll_new))
        scale = np.maximum(np.abs(theta), 1e-300)
        dp = max(float(np.max(np.abs(theta_new - theta) / scale)), float(np.max(np.abs(w_new - w) / w)))
        w, theta, ll = w_new, theta_new, ll_new
        if dl <= plan["tol_loglik"] and dp <= plan["tol_params"]:
            converged = True
            break
    return ll, w, theta, it, converged


def _mix_hard(labels, K):
    r = np.zeros((labels.shape[0], K))
    r[np.arange(labels.shape[0]), labels] = 1.0
    return r


def mix_starts(x, K, n_starts, rng):
    """Quantile split first, then k-means++ seeds (nearest-centre assignment)."""
    order = np.argsort(x, kind="stable")
    labels = np.empty(x.shape[0], dtype=int)
    labels[order] = np.minimum((np.arange(x.shape[0]) * K) // x.shape[0], K - 1)
    yield _mix_hard(labels, K)
    for _ in range(n_starts - 1):
        centres = [x[rng.integers(x.shape[0])]]
        for _k in range(1, K):
            d2 = np.min((x[:, None] - np.array(centres)[None, :]) ** 2, axis=1)
            total = d2.sum()
            if total <= 0:
                centres.append(x[rng.integers(x.shape[0])])
            else:
                centres.append(x[rng.choice(x.shape[0], p=d2 / total)])
        c = np.sort(np.array(centres))
        labels = np.argmin(np.abs(x[:, None] - c[None, :]), axis=1)
        yield _mix_hard(labels, K)


def mix_observed_information(plan, x, w, theta, constants):
    """Minus the exact Hessian of the mixture log-likelihood in (w_1..w_{K-1}, theta_1, ..., theta_K)."""
    K, P = theta.shape[1], theta.shape[0]
    D = K - 1 + K * P
    r, _ = mix_e_step(plan, x, w, theta, constants)
    n = x.shape[0]
    v = dict(constants)
    for p, name in enumerate(plan["parameters"]):
        v[name] = theta[p][None, :]
    xc = x[:, None]
    with np.errstate(all="ignore"):
        gl = np.stack([np.broadcast_to(np.asarray(g(v, xc), float), (n, K)) for g in plan["grad"]], -1)
        hl = np.stack(
            [
                np.stack([np.broadcast_to(np.asarray(h(v, xc), float), (n, K)) for h in row], -1)
                for row in plan["hess"]
            ],
            -2,
        )
    g = np.zeros((n, K, D))
    for k in range(K):
        if k < K - 1:
            g[:, k, k] = 1.0 / w[k]
        else:
            g[:, k, : K - 1] = -1.0 / w[K - 1]
        g[:, k, K - 1 + k * P : K - 1 + (k + 1) * P] = gl[:, k, :]
    a = np.einsum("ik,ikd->id", r, g)
    hess = -np.einsum("id,ie->de", a, a) + np.einsum("ik,ikd,ike->de", r, g, g)
    for k in range(K):
        block = slice(K - 1 + k * P, K - 1 + (k + 1) * P)
        hess[block, block] += np.einsum("i,ipq->pq", r[:, k], hl[:, k])
        rk = r[:, k].sum()
        if k < K - 1:
            hess[k, k] += -rk / w[k] ** 2
        else:
            hess[: K - 1, : K - 1] += -rk / w[K - 1] ** 2
    return -hess


def mix_numerical_hessian(plan, x, w, theta, constants):
    """Central-difference Hessian of the mixture log-likelihood (the cross-check of the exact one)."""
    K, P = theta.shape[1], theta.shape[0]
    phi0 = np.r_[w[:-1], theta.T.reshape(-1)]
    D = phi0.size
    h = 1e-4 * np.maximum(np.abs(phi0), 1e-2)

    def ll(phi):
        ww = np.r_[phi[: K - 1], 1 - np.sum(phi[: K - 1])]
        return mix_e_step(plan, x, ww, phi[K - 1 :].reshape(K, P).T, constants)[1]

    out = np.empty((D, D))
    for i in range(D):
        for j in range(i, D):
            e_i, e_j = np.zeros(D), np.zeros(D)
            e_i[i], e_j[j] = h[i], h[j]
            out[i, j] = out[j, i] = (
                ll(phi0 + e_i + e_j) - ll(phi0 + e_i - e_j) - ll(phi0 - e_i + e_j) + ll(phi0 - e_i - e_j)
            ) / (4 * h[i] * h[j])
    return out


def mix_constants(plan, given):
    """Every constant's value: the given ones over the model's known ones; a missing one is an error."""
    unknown = [k for k in given if k not in plan["constants"]]
    if unknown:
        raise TypeError(f"unknown constant {unknown[0]!r}; this model's constants: {plan['constants']}")
    out = {}
    for name in plan["constants"]:
        if name in given:
            value = float(given[name])
        elif name in plan["known"]:
            value = float(plan["known"][name])
        else:
            raise TypeError(f"missing the value of the constant {name!r}")
        if not mix_in_domain(value, plan["constant_domains"][name]):
            raise ValueError(
                f"constant {name} = {value!r} is not in its domain {plan['constant_domains'][name]}"
            )
        out[name] = value
    return out


def mix_check_data(plan, x, constants, K):
    """Finite, in the support, integers for a discrete model, and at least 2K distinct values."""
    var = plan["variable"]
    if x.ndim != 1 or x.shape[0] == 0:
        raise MixtureError("the data must be a non-empty one-dimensional array")
    lo_fn, hi_fn = plan["support"]
    lo = float(lo_fn(constants, 0.0)) if lo_fn is not None else -math.inf
    hi = float(hi_fn(constants, 0.0)) if hi_fn is not None else math.inf
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MixtureError(f"{var}[{i}] = {float(x[i])!r} is not a finite number")
    bad = (x < lo) | (x > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MixtureError(f"{var}[{i}] = {float(x[i])!r} is outside the support [{lo!r}, {hi!r}]")
    if plan["discrete"]:
        bad = x != np.round(x)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise MixtureError(f"{var}[{i}] = {float(x[i])!r} is not an integer (the model is discrete)")
    distinct = np.unique(x).size
    if distinct < 2 * K:
        raise MixtureError(
            f"a mixture of {K} components needs at least {2 * K} distinct values in the data, not {distinct}"
        )


def mix_fit(plan, x, K, seed, starts, given):
    """Fit a K-component mixture by EM: the result dictionary of the module's ``fit``."""
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or not 1 <= K <= plan["max_components"]:
        raise ValueError(f"k must be a whole number in 1..{plan['max_components']}, not {K!r}")
    if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 1:
        raise ValueError(f"starts must be a whole number of at least 1, not {starts!r}")
    K = int(K)
    constants = mix_constants(plan, given)
    x = np.asarray(x, dtype=float).reshape(-1)
    mix_check_data(plan, x, constants, K)
    G = mix_statistics(plan, x, constants)
    n = x.shape[0]
    reference = mix_m_step_one(plan, constants, float(n), G.sum(axis=0), None)
    rng = np.random.default_rng(seed)
    runs, collapses = [], []
    for r0 in mix_starts(x, K, starts, rng):
        try:
            runs.append(mix_run(plan, constants, x, G, r0, reference))
        except _Collapse as exc:
            collapses.append(str(exc))
    fatal = [c for c in collapses if "collapses" in c or "finite" in c]
    if fatal:
        raise MixtureError(
            f"the {K}-component mixture degenerates on these data: {fatal[0]}; the MLE does not exist"
        )
    if not runs:
        raise MixtureError(f"the {K}-component mixture degenerates on these data: {collapses[0]}")
    best = max(runs, key=lambda run: run[0])
    optima = []
    for run in sorted(runs, key=lambda run: -run[0]):
        if not any(abs(run[0] - o) <= 1e-7 * max(1.0, abs(o)) for o in optima):
            optima.append(run[0])
    ll, w, theta, iterations, converged = best
    order = np.lexsort((w, theta[0]))
    w, theta = w[order], theta[:, order]
    names = plan["parameters"]
    P = theta.shape[0]
    warnings = []
    if not converged:
        warnings.append(f"EM did not converge in {plan['max_iter']} iterations")
    if collapses:
        warnings.append(
            f"{len(collapses)} of {starts} starts ended with a vanishing component and were dropped"
        )
    stderr = None
    info = mix_observed_information(plan, x, w, theta, constants)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = None
        warnings.append("the observed information is singular: no standard errors")
    if cov is not None:
        fd = -mix_numerical_hessian(plan, x, w, theta, constants)
        scale = np.sqrt(np.outer(np.abs(np.diag(info)), np.abs(np.diag(info))))
        if not (np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0)):
            warnings.append("the observed information is not positive definite: no standard errors")
        elif np.max(np.abs(fd - info) / np.maximum(scale, 1e-300)) > 1e-4:
            warnings.append(
                "the exact observed information disagrees with a finite-difference Hessian: "
                "no standard errors"
            )
        else:
            se = np.sqrt(np.diag(cov))
            se_last = math.sqrt(max(float(np.sum(cov[: K - 1, : K - 1])), 0.0))
            se_t = se[K - 1 :].reshape(K, P).T
            stderr = {"w": np.r_[se[: K - 1], se_last], **{name: se_t[p] for p, name in enumerate(names)}}
    return {
        "estimates": {"w": w, **{name: theta[p] for p, name in enumerate(names)}},
        "stderr": stderr,
        "log_likelihood": ll,
        "iterations": iterations,
        "converged": converged,
        "starts": starts,
        "distinct_optima": len(optima),
        "warnings": warnings,
    }


def mix_log_likelihood(plan, x, w, params, given):
    """The mixture log-likelihood sum_i log sum_k w_k f(x_i; theta_k)."""
    constants = mix_constants(plan, given)
    w = np.asarray(w, dtype=float).reshape(-1)
    missing = [p for p in plan["parameters"] if p not in params]
    if missing:
        raise TypeError(f"missing the values of {missing[0]!r}")
    theta = np.array([np.asarray(params[p], dtype=float).reshape(-1) for p in plan["parameters"]])
    if theta.shape[1] != w.size:
        raise ValueError("give as many values of every parameter as there are weights")
    x = np.asarray(x, dtype=float).reshape(-1)
    mix_check_data(plan, x, constants, 1)
    return mix_e_step(plan, x, w, theta, constants)[1]
