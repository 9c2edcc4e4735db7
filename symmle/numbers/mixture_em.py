r"""Finite mixtures of a scalar family, fitted by EM with the M-step derived.

A K-component mixture of a family :math:`f(x; \theta)` has the density
:math:`p(x) = \sum_k w_k f(x; \theta_k)` with the weights on the simplex.  EM
alternates:

* E-step: the responsibilities :math:`r_{ik} = w_k f(x_i; \theta_k) / p(x_i)`,
  computed in log space (``logsumexp`` over an N x K array of component
  log-densities).
* M-step: each component's *weighted* MLE.  The family's log-likelihood depends on
  the data only through N and its sufficient statistics :math:`T_j = \sum_i
  g_j(x_i)`, linearly, so :math:`Q_k = \sum_i r_{ik} \log f(x_i; \theta_k)` is the
  same expression with :math:`N_k = \sum_i r_{ik}` and :math:`S_{kj} = \sum_i r_{ik}
  g_j(x_i)` in place of N and :math:`T_j`: the derived closed forms apply as they
  are, and a parameter without one (the gamma shape) is solved numerically on the
  derived profile with its exact derivatives.  The weights are :math:`w_k = N_k/N`
  (the Lagrangian of the simplex).

The log-likelihood is checked not to decrease from one iteration to the next (a
decrease beyond rounding is an internal error, :class:`VerificationError`).  Several
starts (the quantile split of the sorted data, then k-means++ seeds drawn with
``seed``) are run and the best kept.  A component collapsing onto a point, or a
weight vanishing, is a :class:`DataError`.  Standard errors come from the observed
information of the mixture log-likelihood with exact derivatives of the component
log-density, cross-checked against a finite-difference Hessian.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from scipy import optimize
from scipy.special import logsumexp

from symmle.base._runtime import in_domain
from symmle.base.errors import DataError, DerivationError, SpecError, VerificationError
from symmle.base.numeric import to_function
from symmle.base.terminal import printable
from symmle.numbers.data import fixed_support, validate_data
from symmle.numbers.fitting import FitResult, interval
from symmle.symbolic.derivation import Derivation

__all__ = ["MixtureResult", "fit_mixture", "check_components", "MAX_COMPONENTS"]

#: the most components a mixture may have
MAX_COMPONENTS = 50
#: relative change of the log-likelihood, and of the parameters, that ends EM
TOL_LOGLIK = 1e-10
TOL_PARAMS = 1e-8
MAX_ITER = 20000
#: a decrease of the log-likelihood beyond this (relative) is not rounding
MONOTONE_SLACK = 1e-11
#: a weight below this (or fewer than this many observations' worth) has vanished
MIN_WEIGHT = 1e-8
MIN_COUNT = 1.0
#: a positive parameter this many times smaller than in the one-component fit has collapsed
COLLAPSE = 1e-8


def check_components(value: Any, origin: str = "--mixture") -> int:
    """The number of components K, checked: an integer in ``1..MAX_COMPONENTS``.

    >>> check_components("3")
    3
    """
    text = str(value).strip()
    try:
        k = int(text)
    except ValueError:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            k = int(value)
        else:
            raise SpecError(
                f"{origin}: the number of components must be a whole number, not {text[:40]!r}"
            ) from None
    if isinstance(value, bool) or (isinstance(value, float) and not float(value).is_integer()):
        raise SpecError(f"{origin}: the number of components must be a whole number, not {value!r}")
    if k < 1:
        raise SpecError(f"{origin}: the number of components must be at least 1, not {k}")
    if k > MAX_COMPONENTS:
        raise SpecError(f"{origin}: at most {MAX_COMPONENTS} components, not {k}")
    return k


@dataclass(frozen=True)
class MixtureResult(FitResult):
    """A mixture fit: :class:`FitResult` with list-valued estimates (``w`` first) and EM's record.

    ``estimates["w"]`` holds the K weights, each component parameter a list of K
    values (components in canonical order: sorted by the first parameter).
    """

    components: int = 0
    iterations: int = 0
    converged: bool = False
    starts: int = 0
    distinct_optima: int = 0
    #: the log-likelihood after each EM iteration of the best start
    trace: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc = super().to_dict()
        doc["mixture"] = self.components
        doc["iterations"] = self.iterations
        doc["converged"] = self.converged
        doc["starts"] = {"n": self.starts, "distinct_optima": self.distinct_optima}
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        text = super().to_text()
        head, _, rest = text.partition("\n")
        head = head.replace(
            ": maximum-likelihood fit", f" mixture of {self.components}: maximum-likelihood fit (EM)"
        )
        extra = (
            f"  EM: {self.iterations} iterations, {'converged' if self.converged else 'NOT converged'}; "
            f"{self.starts} starts, {self.distinct_optima} distinct "
            f"optim{'um' if self.distinct_optima == 1 else 'a'}\n"
        )
        body = head + "\n" + rest
        marker = "\n  log-likelihood = "
        i = body.find(marker)
        j = body.find("\n", i + 1)
        body = body[: j + 1] + extra + body[j + 1 :]
        return printable(body)


class _Component:
    """The family's pieces the EM needs, compiled once."""

    def __init__(self, d: Derivation, constants: Mapping[str, float]) -> None:
        m = d.model
        lik = d.likelihood
        st = d.stationarity
        consts = {q.symbol: float(constants[q.name]) for q in m.constants}
        self.names = [q.name for q in m.parameters]
        self.symbols = [q.symbol for q in m.parameters]
        self.domains = [q.domain for q in m.parameters]
        x = m.variable
        N = lik.N
        stats = [s.symbol for s in lik.statistics]
        if m.is_vector or m.is_regression:
            raise SpecError("--mixture: only scalar families can be mixed for now")
        for name, e in d.solutions.items():
            if e.kind not in ("closed_form", "numeric"):
                raise DerivationError(
                    f"--mixture: the estimator of {name} is of kind {e.kind}: "
                    "a weighted M-step needs a closed form or a smooth numeric solve"
                )
        ell = lik.log_likelihood.subs(consts)
        allowed = {N, *stats, *self.symbols}
        if not ell.free_symbols <= allowed:
            extra = ", ".join(sorted(str(s) for s in ell.free_symbols - allowed))
            raise DerivationError(
                f"--mixture: the log-likelihood of '{m.name}' does not reduce to N and sufficient statistics "
                f"(it also reads {extra}), so symmle has no weighted M-step for it"
            )
        logf = lik.log_density.subs(consts)
        self.logf = to_function([x, *self.symbols], logf)
        self.grad = [to_function([x, *self.symbols], sp.diff(logf, p)) for p in self.symbols]
        self.hess = [
            [to_function([x, *self.symbols], sp.diff(logf, p, q)) for q in self.symbols] for p in self.symbols
        ]
        self.stats = [to_function([x], s.expr.subs(consts)) for s in lik.statistics]
        self.args = [N, *stats]
        self.closed = {
            name: to_function([*self.args, *self.symbols], e.expr.subs(consts))
            for name, e in d.solutions.items()
            if e.kind == "closed_form"
        }
        self.reduced = [p.name for p in st.reduced]
        self.profile = [
            (p.name, to_function([*self.args, *self.symbols], v.subs(consts))) for p, v in st.profile
        ]
        if self.reduced:
            prof = ell.subs({p: v for p, v in reversed(st.profile)})
            red = list(st.reduced)
            self.objective = to_function([*self.args, *red], prof)
            self.objective_grad = [to_function([*self.args, *red], sp.diff(prof, p)) for p in red]
        self.ell = to_function([*self.args, *self.symbols], ell)
        self.first_positive = None

    def statistics(self, x: np.ndarray) -> np.ndarray:
        """The N x J matrix of :math:`g_j(x_i)`."""
        return np.column_stack([np.broadcast_to(np.asarray(g(x), dtype=float), x.shape) for g in self.stats])

    def log_density(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """N x K component log-densities at ``theta`` (P x K)."""
        with np.errstate(all="ignore"):
            out = self.logf(x[:, None], *[theta[p][None, :] for p in range(theta.shape[0])])
        return np.broadcast_to(np.asarray(out, dtype=float), (x.shape[0], theta.shape[1]))

    def q_value(self, n: float, s: np.ndarray, theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return float(self.ell(n, *s, *theta))

    def m_step(self, n: float, s: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """The weighted MLE of one component from ``N_k`` and ``S_kj`` (a generalised step if numeric)."""
        values = dict(zip(self.names, previous if previous is not None else [np.nan] * len(self.names)))
        theta = np.array([values[p] for p in self.names], dtype=float)
        with np.errstate(all="ignore"):
            if self.reduced:
                theta = self._solve_reduced(n, s, theta)
            for name, fn in self.profile:
                theta[self.names.index(name)] = float(fn(n, *s, *theta))
            for name, fn in self.closed.items():
                theta[self.names.index(name)] = float(fn(n, *s, *theta))
        if previous is not None and self.reduced:
            # a generalised EM step: Q never goes down
            if self.q_value(n, s, theta) < self.q_value(n, s, previous) or not np.all(np.isfinite(theta)):
                return previous
        return theta

    def _solve_reduced(self, n: float, s: np.ndarray, theta: np.ndarray) -> np.ndarray:
        idx = [self.names.index(p) for p in self.reduced]
        doms = [self.domains[i] for i in idx]

        def to_theta(z):
            return np.array([_from_z(t, dm) for t, dm in zip(z, doms)])

        def f(z):
            t = to_theta(z)
            with np.errstate(all="ignore"):
                v = float(self.objective(n, *s, *t))
            return -v / max(n, 1e-300) if np.isfinite(v) else 1e300

        def g(z):
            t = to_theta(z)
            with np.errstate(all="ignore"):
                gr = np.array([float(fn(n, *s, *t)) for fn in self.objective_grad])
            jac = np.array([_dtheta_dz(tt, dm) for tt, dm in zip(t, doms)])
            out = -gr * jac / max(n, 1e-300)
            return np.where(np.isfinite(out), out, 0.0)

        starts = []
        if np.all(np.isfinite(theta[idx])):
            starts.append(np.array([_to_z(theta[i], dm) for i, dm in zip(idx, doms)]))
        starts.append(np.zeros(len(idx)))
        best = None
        for z0 in starts:
            res = optimize.minimize(f, z0, jac=g, method="BFGS", options={"gtol": 1e-12, "maxiter": 500})
            if best is None or res.fun < best.fun:
                best = res
        out = theta.copy()
        out[idx] = to_theta(best.x)
        return out


def _to_z(t: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.log(t)
    if domain == "unit":
        return math.log(t) - math.log1p(-t)
    return float(t)


def _from_z(z: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.exp(min(z, 700.0))
    if domain == "unit":
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
    return float(z)


def _dtheta_dz(t: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return t
    if domain == "unit":
        return t * (1 - t)
    return 1.0


@dataclass
class _Run:
    loglik: float
    weights: np.ndarray
    theta: np.ndarray
    iterations: int
    converged: bool
    trace: list[float]


class _Collapse(Exception):
    pass


def _e_step(comp: _Component, x, w, theta):
    with np.errstate(divide="ignore"):
        lw = np.log(w)[None, :] + comp.log_density(x, theta)
    ll_i = logsumexp(lw, axis=1)
    return np.exp(lw - ll_i[:, None]), float(np.sum(ll_i)), lw


def _m_step(comp, x, G, r, theta_prev, reference):
    nk = r.sum(axis=0)
    n = x.shape[0]
    if np.any(nk / n < MIN_WEIGHT) or np.any(nk < MIN_COUNT):
        k = int(np.argmin(nk))
        raise _Collapse(
            f"the weight of component {k + 1} vanishes (it holds {nk[k]:.3g} observations' worth)"
        )
    S = G.T @ r
    K = r.shape[1]
    theta = np.empty((len(comp.names), K))
    for k in range(K):
        prev = None if theta_prev is None else theta_prev[:, k]
        theta[:, k] = comp.m_step(float(nk[k]), S[:, k], prev)
    for p, (name, dom) in enumerate(zip(comp.names, comp.domains)):
        for k in range(K):
            v = theta[p, k]
            if not np.isfinite(v) or not in_domain(v, dom):
                raise _Collapse(f"component {k + 1}'s {name} leaves its domain ({dom}): {v:g}")
            ref = reference[p]
            if dom in ("positive", "nonnegative") and np.isfinite(ref) and ref > 0 and v < COLLAPSE * ref:
                raise _Collapse(f"component {k + 1} collapses onto a point ({name} -> 0)")
    return nk / n, theta


def _run(comp, x, G, r0, reference, trace_all=True):
    w, theta = _m_step(comp, x, G, r0, None, reference)
    r, ll, _ = _e_step(comp, x, w, theta)
    trace = [ll]
    converged = False
    it = 0
    for it in range(1, MAX_ITER + 1):
        w_new, theta_new = _m_step(comp, x, G, r, theta, reference)
        r, ll_new, _ = _e_step(comp, x, w_new, theta_new)
        if not np.isfinite(ll_new):
            raise _Collapse("the log-likelihood is not finite")
        if ll_new < ll - MONOTONE_SLACK * max(1.0, abs(ll)):
            raise VerificationError(
                f"internal error: the EM log-likelihood decreased from {ll!r} to {ll_new!r} at iteration {it}"
            )
        trace.append(ll_new)
        dl = abs(ll_new - ll) / max(1.0, abs(ll_new))
        scale = np.maximum(np.abs(theta), 1e-300)
        dp = max(float(np.max(np.abs(theta_new - theta) / scale)), float(np.max(np.abs(w_new - w) / w)))
        w, theta, ll = w_new, theta_new, ll_new
        if dl <= TOL_LOGLIK and dp <= TOL_PARAMS:
            converged = True
            break
    return _Run(ll, w, theta, it, converged, trace)


def _hard(labels, K):
    r = np.zeros((labels.shape[0], K))
    r[np.arange(labels.shape[0]), labels] = 1.0
    return r


def _starting_responsibilities(x, K, n_starts, rng):
    """Quantile split first, then k-means++ seeds (nearest-centre assignment)."""
    order = np.argsort(x, kind="stable")
    labels = np.empty(x.shape[0], dtype=int)
    labels[order] = np.minimum((np.arange(x.shape[0]) * K) // x.shape[0], K - 1)
    yield _hard(labels, K)
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
        yield _hard(labels, K)


def mixture_loglik(comp: _Component, x: np.ndarray, w: np.ndarray, theta: np.ndarray) -> float:
    """The mixture log-likelihood :math:`\\sum_i \\log \\sum_k w_k f(x_i; \\theta_k)`."""
    return _e_step(comp, x, np.asarray(w, float), np.asarray(theta, float))[1]


def _pack(w, theta):
    return np.r_[w[:-1], theta.T.reshape(-1)]


def _unpack(phi, K, P):
    w = np.r_[phi[: K - 1], 1 - np.sum(phi[: K - 1])]
    return w, phi[K - 1 :].reshape(K, P).T


def observed_information(comp: _Component, x, w, theta) -> np.ndarray:
    """Minus the exact Hessian of the mixture log-likelihood in (w_1..w_{K-1}, theta_1, ..., theta_K)."""
    K, P = theta.shape[1], theta.shape[0]
    D = K - 1 + K * P
    r, _, _ = _e_step(comp, x, w, theta)
    n = x.shape[0]
    with np.errstate(all="ignore"):
        args = [theta[p][None, :] for p in range(P)]
        gl = np.stack(
            [np.broadcast_to(np.asarray(g(x[:, None], *args), float), (n, K)) for g in comp.grad], -1
        )
        hl = np.stack(
            [
                np.stack([np.broadcast_to(np.asarray(h(x[:, None], *args), float), (n, K)) for h in row], -1)
                for row in comp.hess
            ],
            -2,
        )
    # g_ik: the gradient of log(w_k f_k) in the full parameter vector; H_ik its Hessian
    g = np.zeros((n, K, D))
    H = np.zeros((K, n, D, D)) if False else None
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
    del H
    return -hess


def numerical_hessian(comp, x, w, theta) -> np.ndarray:
    """Central-difference Hessian of the mixture log-likelihood (the cross-check)."""
    K, P = theta.shape[1], theta.shape[0]
    phi0 = _pack(w, theta)
    D = phi0.size
    h = 1e-4 * np.maximum(np.abs(phi0), 1e-2)

    def ll(phi):
        ww, tt = _unpack(phi, K, P)
        return mixture_loglik(comp, x, ww, tt)

    out = np.empty((D, D))
    for i in range(D):
        for j in range(i, D):
            e_i, e_j = np.zeros(D), np.zeros(D)
            e_i[i], e_j[j] = h[i], h[j]
            v = (
                ll(phi0 + e_i + e_j) - ll(phi0 + e_i - e_j) - ll(phi0 - e_i + e_j) + ll(phi0 - e_i - e_j)
            ) / (4 * h[i] * h[j])
            out[i, j] = out[j, i] = v
    return out


def fit_mixture(
    d: Derivation,
    data: Any,
    components: int,
    constants: Mapping[str, float] | None = None,
    *,
    seed: int = 0,
    starts: int = 10,
    ci: str = "transformed",
) -> MixtureResult:
    """Fit a K-component mixture of the derivation's family to 1-D ``data`` by EM.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> rng = np.random.default_rng(1)
    >>> x = np.r_[rng.exponential(1.0, 300), rng.exponential(10.0, 300)]
    >>> r = fit_mixture(symmle.derive("exponential"), x, 2, seed=0)
    >>> r.converged, len(r.estimates["w"])
    (True, 2)
    """
    K = check_components(components, "mixture")
    m = d.model
    if m.is_vector or m.is_regression:
        raise SpecError(
            "--mixture: only scalar families can be mixed for now (no vector or regression models)"
        )
    constants = dict(constants or {})
    missing = [q.name for q in m.constants if q.name not in constants and q.value is None]
    if missing:
        raise DataError(f"no value for the constant {missing[0]}: give --const {missing[0]}=VALUE")
    values = {q.name: float(constants.get(q.name, q.value)) for q in m.constants}
    x = np.asarray(data, dtype=float).reshape(-1)
    consts = {q.symbol: values[q.name] for q in m.constants}
    lo, hi = fixed_support(m.support, set(m.parameter_symbols), consts)
    if any(e.free_symbols & set(m.parameter_symbols) for e in m.support):
        raise SpecError(
            f"--mixture: the support of '{m.name}' depends on its parameters; mixtures need a fixed support"
        )
    validate_data(x, lo=lo, hi=hi, discrete=m.discrete, variable=m.variable.name)
    distinct = np.unique(x).size
    if distinct < 2 * K:
        raise DataError(
            f"a mixture of {K} components needs at least {2 * K} distinct values in the data, not {distinct}"
        )
    comp = _Component(d, values)
    G = comp.statistics(x)
    n = x.shape[0]
    # the one-component fit: the scale against which a collapse is measured
    reference = comp.m_step(float(n), G.sum(axis=0), None)
    rng = np.random.default_rng(seed)
    runs: list[_Run] = []
    collapses: list[str] = []
    for r0 in _starting_responsibilities(x, K, max(1, starts), rng):
        try:
            runs.append(_run(comp, x, G, r0, reference))
        except _Collapse as exc:
            collapses.append(str(exc))
    if collapses and any("collapses" in c or "finite" in c for c in collapses):
        c = next(c for c in collapses if "collapses" in c or "finite" in c)
        raise DataError(f"the {K}-component mixture degenerates on these data: {c}; the MLE does not exist")
    if not runs:
        raise DataError(f"the {K}-component mixture degenerates on these data: {collapses[0]}")
    best = max(runs, key=lambda r: r.loglik)
    optima: list[float] = []
    for run in sorted(runs, key=lambda r: -r.loglik):
        if not any(abs(run.loglik - o) <= 1e-7 * max(1.0, abs(o)) for o in optima):
            optima.append(run.loglik)
    order = np.lexsort((best.weights, best.theta[0]))
    w, theta = best.weights[order], best.theta[:, order]
    warnings: list[str] = []
    if not best.converged:
        warnings.append(f"EM did not converge in {MAX_ITER} iterations")
    if collapses:
        warnings.append(
            f"{len(collapses)} of {max(1, starts)} starts ended with a vanishing component and were dropped"
        )
    P = theta.shape[0]
    stderr: dict[str, Any] = {"w": None, **{name: None for name in comp.names}}
    information = ""
    info = observed_information(comp, x, w, theta)
    cov = None
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        warnings.append("the observed information is singular: no standard errors")
    if cov is not None:
        fd = -numerical_hessian(comp, x, w, theta)
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
            # the last weight's variance: Var(1 - sum w_j) = 1^T C 1 over the free weights
            cw = cov[: K - 1, : K - 1]
            se_last = math.sqrt(max(float(np.sum(cw)), 0.0))
            se_w = np.r_[se[: K - 1], se_last]
            se_t = se[K - 1 :].reshape(K, P).T
            inv = np.argsort(order)  # cov is in the canonical order already
            del inv
            stderr = {"w": se_w, **{name: se_t[p] for p, name in enumerate(comp.names)}}
            information = "observed"
    estimates = {"w": w, **{name: theta[p] for p, name in enumerate(comp.names)}}
    domains = {"w": "unit", **dict(zip(comp.names, comp.domains))}
    ci95: dict[str, Any] = {}
    ci_method: dict[str, Any] = {}
    for name, est in estimates.items():
        se = stderr[name]
        if se is None:
            ci95[name], ci_method[name] = None, None
            continue
        pairs = [interval(float(v), float(s), domains[name], ci) for v, s in zip(est, se)]
        ci95[name] = (np.array([p[0][0] for p in pairs]), np.array([p[0][1] for p in pairs]))
        ci_method[name] = [p[1] for p in pairs]
    return MixtureResult(
        model=m.name,
        n=n,
        estimates=estimates,
        kind={name: "em" for name in estimates},
        stderr=stderr,
        ci95=ci95,
        log_likelihood=best.loglik,
        information=information,
        warnings=warnings,
        ci_method=ci_method,
        n_parameters=K - 1 + K * P,
        components=K,
        iterations=best.iterations,
        converged=best.converged,
        starts=max(1, starts),
        distinct_optima=len(optima),
        trace=tuple(best.trace),
    )
