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

Numerics.  One pass over the data (in chunks of rows, so memory-mapped data of
any size need bounded memory) gives the log-likelihood at the current point and
``N_k``, ``S_kj`` for the next M-step.  When the family's log-density is
``base(theta) + sum_j eta_j(theta) g_j(x)`` (read off the derived log-likelihood,
linear in N and T_j, and checked against log f on the data), the chunk's N x K
log-densities are one small matrix product.  EM is accelerated by SQUAREM
(SqS3 step, adaptive bound): an extrapolated point is kept only when its
log-likelihood is at least that of the plain EM step, which is taken otherwise.
The log-likelihood is checked not to decrease from one iteration to the next (a
decrease beyond rounding is an internal error, :class:`VerificationError`).  EM
stops at a relative log-likelihood change of 1e-10 with the parameters settled
(their distance to the fixed point estimated from EM's rate); Newton steps with
the exact observed information then take the estimates to a relative 1e-8.

Starts: the quantile split of the data, then k-means++ seeds drawn with
``seed``, screened on a seeded subsample (at most :data:`SCREEN_ROWS` rows) to a
loose tolerance; each distinct optimum they approach is converged on all the
data and the best kept.  A component collapsing onto a point, or a weight
vanishing, is a :class:`DataError`.  Standard errors come from the observed
information of the mixture log-likelihood with exact derivatives of the
component log-density, cross-checked against a finite-difference Hessian (on a
subsample: the identity holds at any point).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
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

__all__ = [
    "MixtureResult",
    "fit_mixture",
    "fit_components",
    "check_components",
    "parse_components",
    "MAX_COMPONENTS",
]

#: the most components a mixture may have
MAX_COMPONENTS = 50
#: relative change of the log-likelihood, and of the parameters, that ends EM
TOL_LOGLIK = 1e-10
TOL_PARAMS = 1e-8
#: EM itself stops at this relative distance of the parameters (estimated from its rate of
#: convergence); Newton steps with the exact information then take it to TOL_PARAMS
TOL_EM_PARAMS = 1e-6
MAX_ITER = 20000
#: SQUAREM's bound on the step length grows (and shrinks) by this factor
STEP_GROWTH = 4.0
#: its first bound (large: the SqS3 length itself, cut back after a rejected step)
STEP_MAX = 1e6
#: a decrease of the log-likelihood beyond this (relative) is not rounding
MONOTONE_SLACK = 1e-11
#: a weight below this (or fewer than this many observations' worth) has vanished
MIN_WEIGHT = 1e-8
MIN_COUNT = 1.0
#: a positive parameter this many times smaller than in the one-component fit has collapsed
COLLAPSE = 1e-8
#: rows per chunk of the E-step (bounded memory on memory-mapped data of any size)
CHUNK = 1 << 16
#: the sufficient statistics g_j(x_i) are kept in memory up to this many bytes, else recomputed per chunk
CACHE_BYTES = 1 << 27
#: the starts are seeded (quantile split, k-means++) and screened on a seeded subsample of this many rows
SCREEN_ROWS = 20_000
#: the screening runs stop at these tolerances (then one run per distinct optimum is converged)
SCREEN_TOL_LOGLIK = 1e-8
SCREEN_TOL_PARAMS = 1e-3
#: the score of the one-component fit from the sums may be this many standard errors from 0 (rounding)
PRECISION_Z = 1e-3
#: a run whose iterate comes this close (relative) to an optimum already found is stopped there
MERGE_TOL = 1e-3
#: rows of the subsample the finite-difference cross-check of the information uses
CHECK_ROWS = 2000


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


def parse_components(value: Any, origin: str = "--components") -> list[int]:
    """The numbers of components to try: ``"1..5"``, ``"2,3,5"``, ``"3"`` or an iterable of integers.

    >>> parse_components("1..4"), parse_components("2, 5"), parse_components(range(1, 3))
    ([1, 2, 3, 4], [2, 5], [1, 2])
    """
    if isinstance(value, str):
        text = value.strip()
        if ".." in text:
            lo, _, hi = text.partition("..")
            a, b = check_components(lo, origin), check_components(hi, origin)
            if a > b:
                raise SpecError(f"{origin}: an empty range {text[:40]!r} (write LOW..HIGH)")
            ks = list(range(a, b + 1))
        else:
            ks = [check_components(part, origin) for part in text.split(",")]
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        ks = [check_components(value, origin)]
    else:
        try:
            items = list(value)
        except TypeError:
            raise SpecError(f"{origin}: give LOW..HIGH or a list of whole numbers, not {value!r}") from None
        ks = [check_components(v, origin) for v in items]
    if not ks:
        raise SpecError(f"{origin}: no number of components given")
    return sorted(set(ks))


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
    #: with ``components=``: one row per K tried, ``{"k", "log_likelihood", "aic", "bic", "error"}``
    selection: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc = super().to_dict()
        doc["mixture"] = self.components
        doc["iterations"] = self.iterations
        doc["converged"] = self.converged
        doc["starts"] = {"n": self.starts, "distinct_optima": self.distinct_optima}
        if self.selection:
            doc["components_bic"] = [dict(row) for row in self.selection]
            doc["chosen_by"] = "bic"
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
        if self.selection:
            body = self._selection_text() + body
        return printable(body)

    def _selection_text(self) -> str:
        rows = [("K", "log-likelihood", "AIC", "BIC", "")]
        for row in self.selection:
            if row["error"] is not None:
                rows.append((str(row["k"]), "n/a", "n/a", "n/a", row["error"]))
                continue
            mark = "<- chosen" if row["k"] == self.components else ""
            rows.append(
                (
                    str(row["k"]),
                    f"{row['log_likelihood']:.10g}",
                    f"{row['aic']:.10g}",
                    f"{row['bic']:.10g}",
                    mark,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"{self.model}: the number of components chosen by BIC (smallest)", ""]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines) + "\n\n"


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
        # the log-density as base(theta) + sum_j eta_j(theta) g_j(x): the coefficients of N and T_j in
        # the (linear) log-likelihood; used for the E-step once checked against log f on the data
        coeffs = [sp.diff(ell, N), *[sp.diff(ell, t) for t in stats]]
        self._natural = None
        if all(not (c.free_symbols & {N, *stats}) for c in coeffs):
            fns = [to_function(self.symbols, c) for c in coeffs]
            self._natural = fns
        self.linear = False

    def natural(self, theta: np.ndarray):
        """``(eta, base)``: J x K and K arrays with log f(x; theta_k) = base_k + g(x) . eta[:, k], or None."""
        if not self.linear:
            return None
        K = theta.shape[1]
        with np.errstate(all="ignore"):
            vals = [np.broadcast_to(np.asarray(f(*theta), dtype=float), (K,)) for f in self._natural]
        return np.array(vals[1:]).reshape(len(vals) - 1, K), vals[0]

    def check_linear(self, x: np.ndarray, thetas: list[np.ndarray]) -> bool:
        """Switch the natural-parameter E-step on if it reproduces log f on ``x`` at each of ``thetas``."""
        self.linear = False
        if self._natural is None:
            return False
        self.linear = True
        G = self.statistics(x)
        for theta in thetas:
            eta, base = self.natural(theta)
            with np.errstate(all="ignore"):
                fast = G @ eta + base
            slow = self.log_density(x, theta)
            ok = np.isfinite(slow)
            # as close as rounding allows: the sums of the log-likelihood feed the monotonicity check
            if not np.all(ok) or not np.all(np.abs(fast - slow) <= 1e-12 * (1.0 + np.abs(slow))):
                self.linear = False
                return False
        return True

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

    def m_step_all(self, nk: np.ndarray, S: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """The weighted MLEs of all K components (P x K) from ``N_k`` (K) and ``S_kj`` (J x K).

        Closed forms are evaluated on all components at once; a numeric profile
        is solved component by component (:meth:`m_step`).
        """
        K = nk.shape[0]
        if self.reduced:
            out = np.empty((len(self.names), K))
            for k in range(K):
                prev = None if previous is None else previous[:, k]
                out[:, k] = self.m_step(float(nk[k]), S[:, k], prev)
            return out
        theta = np.full((len(self.names), K), np.nan) if previous is None else np.array(previous, dtype=float)
        with np.errstate(all="ignore"):
            for name, fn in self.profile:
                i = self.names.index(name)
                theta[i] = np.broadcast_to(np.asarray(fn(nk, *S, *theta), dtype=float), (K,))
            for name, fn in self.closed.items():
                i = self.names.index(name)
                theta[i] = np.broadcast_to(np.asarray(fn(nk, *S, *theta), dtype=float), (K,))
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


class _Data:
    """The data and their sufficient statistics, visited in chunks (memory-mapped arrays welcome).

    Arrays are component-major (K x rows, J x rows), so that the reductions over
    the components run along contiguous rows.
    """

    def __init__(self, comp: _Component, x: np.ndarray, chunk: int = CHUNK) -> None:
        self.comp = comp
        self.x = x
        self.n = x.shape[0]
        self.chunk = chunk
        self.J = len(comp.stats)
        self.GT = None
        if self.n * self.J * 8 <= CACHE_BYTES:
            self.GT = np.ascontiguousarray(comp.statistics(np.asarray(x, dtype=float)).T)

    def chunks(self):
        for i in range(0, self.n, self.chunk):
            xc = np.asarray(self.x[i : i + self.chunk], dtype=float)
            if self.GT is not None:
                GTc = self.GT[:, i : i + self.chunk]
            else:
                GTc = np.ascontiguousarray(self.comp.statistics(xc).T)
            yield xc, GTc

    def totals(self) -> np.ndarray:
        """The sufficient statistics of all the data, :math:`T_j = \\sum_i g_j(x_i)`."""
        return sum((GTc.sum(axis=1) for _, GTc in self.chunks()), np.zeros(self.J))

    def log_joint(self, xc, GTc, w, theta, linear):
        """The chunk's ``log w_k + log f(x_i; theta_k)`` (K x rows)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lwk = np.log(w)
            if linear is not None:
                eta, base = linear
                lw = eta.T @ GTc
                lw += (base + lwk)[:, None]
            else:
                out = self.comp.logf(xc[None, :], *[theta[p][:, None] for p in range(theta.shape[0])])
                lw = np.array(np.broadcast_to(np.asarray(out, dtype=float), (theta.shape[1], xc.shape[0])))
                lw += lwk[:, None]
        return lw

    def e_pass(self, w: np.ndarray, theta: np.ndarray):
        """One pass: the log-likelihood at (w, theta), ``N_k`` and ``S_kj`` (J x K) of the E-step."""
        K = theta.shape[1]
        linear = self.comp.natural(theta)
        ll = 0.0
        nk = np.zeros(K)
        S = np.zeros((self.J, K))
        for xc, GTc in self.chunks():
            lw = self.log_joint(xc, GTc, w, theta, linear)
            m = lw.max(axis=0)
            if not np.all(np.isfinite(m)):
                return -math.inf, nk, S
            lw -= m
            np.exp(lw, out=lw)
            s = lw.sum(axis=0)
            ll += float(m.sum() + np.log(s).sum())
            lw /= s
            nk += lw.sum(axis=1)
            S += GTc @ lw.T
        return ll, nk, S

    def responsibilities(self, w, theta):
        """The N x K responsibilities (for small data: the tests and the information)."""
        linear = self.comp.natural(theta)
        out = []
        for xc, GTc in self.chunks():
            lw = self.log_joint(xc, GTc, w, theta, linear)
            out.append(np.exp(lw - logsumexp(lw, axis=0)).T)
        return np.concatenate(out)


@dataclass
class _Run:
    loglik: float
    weights: np.ndarray
    theta: np.ndarray
    iterations: int
    converged: bool
    trace: list[float]
    #: the index of an optimum found before that this run reached the neighbourhood of (then stopped)
    merged: int | None = None


class _Collapse(Exception):
    pass


def _e_step(comp: _Component, x, w, theta):
    """Responsibilities, log-likelihood and ``log w_k f_k`` at once (all in memory: small data)."""
    with np.errstate(divide="ignore"):
        lw = np.log(w)[None, :] + comp.log_density(x, theta)
    ll_i = logsumexp(lw, axis=1)
    return np.exp(lw - ll_i[:, None]), float(np.sum(ll_i)), lw


def _m_step(comp, n, nk, S, theta_prev, reference):
    """The weights and each component's weighted MLE from ``N_k`` and ``S_kj``; a collapse raises."""
    if np.any(nk / n < MIN_WEIGHT) or np.any(nk < MIN_COUNT):
        k = int(np.argmin(nk))
        raise _Collapse(
            f"the weight of component {k + 1} vanishes (it holds {nk[k]:.3g} observations' worth)"
        )
    theta = comp.m_step_all(nk, S, theta_prev)
    K = nk.shape[0]
    for p, (name, dom) in enumerate(zip(comp.names, comp.domains)):
        row, ref = theta[p], reference[p]
        if not _valid(theta[p : p + 1], [dom]):
            k = next(k for k in range(K) if not (np.isfinite(row[k]) and in_domain(row[k], dom)))
            raise _Collapse(f"component {k + 1}'s {name} leaves its domain ({dom}): {row[k]:g}")
        if dom in ("positive", "nonnegative") and np.isfinite(ref) and ref > 0:
            if np.any(row < COLLAPSE * ref):
                k = int(np.argmin(row))
                raise _Collapse(f"component {k + 1} collapses onto a point ({name} -> 0)")
            if np.any(row > ref / COLLAPSE):
                k = int(np.argmax(row))
                raise _Collapse(f"component {k + 1} collapses onto a point ({name} -> infinity)")
    return nk / n, theta


def _valid(theta: np.ndarray, domains) -> bool:
    """Whether every parameter value (P x K) lies in its domain (and is finite)."""
    if not np.all(np.isfinite(theta)):
        return False
    for row, dm in zip(theta, domains):
        if dm in ("positive", "positive_integer") and not np.all(row > 0):
            return False
        if dm == "nonnegative" and not np.all(row >= 0):
            return False
        if dm == "unit" and not np.all((row > 0) & (row < 1)):
            return False
        if dm in ("integer", "positive_integer") and not np.all(row == np.round(row)):
            return False
    return True


def _to_zs(comp, w, theta):
    """SQUAREM's unconstrained coordinates: log-ratios of the weights, log/logit of the parameters."""
    z = [np.log(w[:-1]) - np.log(w[-1])]
    for p, dom in enumerate(comp.domains):
        t = theta[p]
        if dom in ("positive", "nonnegative"):
            z.append(np.log(t))
        elif dom == "unit":
            z.append(np.log(t) - np.log1p(-t))
        else:
            z.append(np.array(t, dtype=float))
    return np.concatenate(z)


def _from_zs(comp, z, K):
    lw = np.r_[z[: K - 1], 0.0]
    e = np.exp(lw - lw.max())
    w = e / e.sum()
    theta = np.empty((len(comp.domains), K))
    for p, dom in enumerate(comp.domains):
        t = z[K - 1 + p * K : K - 1 + (p + 1) * K]
        if dom in ("positive", "nonnegative"):
            theta[p] = np.exp(np.minimum(t, 700.0))
        elif dom == "unit":
            theta[p] = 0.5 * (1 + np.tanh(t / 2))
        else:
            theta[p] = t
    return w, theta


def _change(w0, t0, w1, t1):
    """The largest relative change of a weight or a parameter between two iterates."""
    scale = np.maximum(np.abs(t0), 1e-3 * np.max(np.abs(t0), axis=1, keepdims=True))
    scale = np.maximum(scale, 1e-300)
    return max(float(np.max(np.abs(t1 - t0) / scale)), float(np.max(np.abs(w1 - w0) / w0)))


def _run(
    comp,
    data,
    w,
    theta,
    reference,
    *,
    tol_ll=TOL_LOGLIK,
    tol_p=TOL_EM_PARAMS,
    max_iter=MAX_ITER,
    accelerate=True,
    start_iterations=0,
    trace=None,
    known=(),
):
    """EM from (w, theta), accelerated by SQUAREM with a monotonicity safeguard.

    Every pass over the data evaluates the log-likelihood at its point and the
    E-step statistics of the next M-step.  An extrapolated (SQUAREM) point is
    kept only when its log-likelihood is at least that of the plain EM step it
    replaces; otherwise EM goes on from the plain step.  The log-likelihood of
    the accepted iterates never decreases; a decrease of a plain EM step beyond
    rounding is an internal error.
    """
    n, K = data.n, theta.shape[1]
    ll0, nk, S = data.e_pass(w, theta)
    passes = start_iterations + 1
    if not np.isfinite(ll0):
        raise _Collapse("the log-likelihood is not finite")
    trace = list(trace or []) + [ll0]
    w1, t1 = _m_step(comp, n, nk, S, theta, reference)
    converged = False
    step_max = STEP_MAX
    known_ll = [k[2] for k in known]
    known = [(k[0], k[1]) for k in known]
    while passes < max_iter:
        ll1, nk, S = data.e_pass(w1, t1)
        passes += 1
        if not np.isfinite(ll1):
            raise _Collapse("the log-likelihood is not finite")
        if ll1 < ll0 - MONOTONE_SLACK * max(1.0, abs(ll0)):
            raise VerificationError(
                f"internal error: the EM log-likelihood decreased from {ll0!r} to {ll1!r} "
                f"at iteration {passes}"
            )
        trace.append(ll1)
        dl = abs(ll1 - ll0) / max(1.0, abs(ll1))
        w2, t2 = _m_step(comp, n, nk, S, t1, reference)
        if known:
            order = np.lexsort((w1, t1[0]))
            for i, (wk, tk) in enumerate(known):
                if _change(wk, tk, w1[order], t1[:, order]) <= MERGE_TOL and ll1 <= known_ll[i]:
                    return _Run(ll1, w1, t1, passes, True, trace, merged=i)
        if dl <= tol_ll:
            # EM converges linearly: with rate rho = |step 2| / |step 1|, the distance of the iterate
            # from the fixed point is about |step 2| / (1 - rho)
            d1, d2 = _change(w, theta, w1, t1), _change(w1, t1, w2, t2)
            rho = d2 / d1 if d1 > 0 else 0.0
            if d1 <= tol_p and (rho < 0.999 and d2 / (1.0 - rho) <= tol_p or d1 == 0):
                w, theta, ll0 = w1, t1, ll1
                converged = True
                break
        if accelerate:
            z0, z1, z2 = _to_zs(comp, w, theta), _to_zs(comp, w1, t1), _to_zs(comp, w2, t2)
            r, v = z1 - z0, z2 - 2 * z1 + z0
            nv = float(np.linalg.norm(v))
            if nv > 0 and np.all(np.isfinite(v)):
                # SqS3 step length, bounded by an adaptive maximum (Varadhan and Roland 2008)
                alpha = max(min(-float(np.linalg.norm(r)) / nv, -1.0), -step_max)
                at_bound = alpha <= -step_max
                zp = z0 - 2 * alpha * r + alpha**2 * v
                if alpha < -1.0 and np.all(np.isfinite(zp)):
                    wp, tp = _from_zs(comp, zp, K)
                    if np.all(wp > 0) and _valid(tp, comp.domains):
                        llp, nkp, Sp = data.e_pass(wp, tp)
                        passes += 1
                        if np.isfinite(llp) and llp >= ll1:
                            try:
                                wq, tq = _m_step(comp, n, nkp, Sp, tp, reference)
                            except _Collapse:
                                pass  # the extrapolation went too far: the plain step instead
                            else:
                                if at_bound:
                                    step_max *= STEP_GROWTH
                                trace.append(llp)
                                w, theta, ll0, w1, t1 = wp, tp, llp, wq, tq
                                continue
                        # rejected: the plain EM step, and a shorter bound
                        step_max = max(1.0, step_max / STEP_GROWTH)
                        at_bound = False
                if at_bound:
                    step_max *= STEP_GROWTH
        # the plain EM step
        w, theta, ll0, w1, t1 = w1, t1, ll1, w2, t2
    return _Run(ll0, w, theta, passes, converged, trace)


def _distinct_values(x, at_least: int, chunk: int = CHUNK) -> int:
    """How many distinct values ``x`` holds, counted up to ``at_least`` (in chunks)."""
    seen: set[float] = set()
    for i in range(0, x.shape[0], chunk):
        seen.update(np.unique(np.asarray(x[i : i + chunk], dtype=float)).tolist())
        if len(seen) >= at_least:
            return len(seen)
    return len(seen)


def _hard_statistics(data: _Data, assign):
    """``N_k`` and ``S_kj`` of a hard assignment ``assign(x_chunk) -> labels``."""
    K = assign.K
    nk = np.zeros(K)
    S = np.zeros((data.J, K))
    for xc, GTc in data.chunks():
        labels = assign(xc)
        onehot = np.zeros((xc.shape[0], K))
        onehot[np.arange(xc.shape[0]), labels] = 1.0
        nk += onehot.sum(axis=0)
        S += GTc @ onehot
    return nk, S


class _Nearest:
    """Labels by the nearest of sorted centres (also the quantile split: cuts between centres)."""

    def __init__(self, cuts: np.ndarray) -> None:
        self.cuts = np.asarray(cuts, dtype=float)
        self.K = self.cuts.size + 1

    def __call__(self, xc):
        return np.searchsorted(self.cuts, xc, side="right")

    @classmethod
    def centres(cls, c):
        c = np.sort(np.asarray(c, dtype=float))
        return cls((c[1:] + c[:-1]) / 2)


def _starts(sub, K, n_starts, rng):
    """The quantile split first, then k-means++ seeds (``sub``: the screening rows)."""
    srt = np.sort(sub)
    m = srt.size
    yield _Nearest(srt[np.minimum((np.arange(1, K) * m) // K, m - 1)]) if K > 1 else _Nearest(np.array([]))
    for _ in range(n_starts - 1):
        centres = [sub[rng.integers(m)]]
        d2 = (sub - centres[0]) ** 2
        for _k in range(1, K):
            total = d2.sum()
            c = sub[rng.integers(m)] if total <= 0 else sub[rng.choice(m, p=d2 / total)]
            centres.append(c)
            d2 = np.minimum(d2, (sub - c) ** 2)
        yield _Nearest.centres(centres)


def mixture_loglik(comp: _Component, x: np.ndarray, w: np.ndarray, theta: np.ndarray) -> float:
    """The mixture log-likelihood :math:`\\sum_i \\log \\sum_k w_k f(x_i; \\theta_k)`."""
    return _e_step(comp, x, np.asarray(w, float), np.asarray(theta, float))[1]


def _pack(w, theta):
    return np.r_[w[:-1], theta.T.reshape(-1)]


def _unpack(phi, K, P):
    w = np.r_[phi[: K - 1], 1 - np.sum(phi[: K - 1])]
    return w, phi[K - 1 :].reshape(K, P).T


def _information_chunk(comp: _Component, x, w, theta):
    """The chunk's share of the exact Hessian of the mixture log-likelihood, its ``r_k`` sums and score."""
    K, P = theta.shape[1], theta.shape[0]
    D = K - 1 + K * P
    n = x.shape[0]
    xr = x[None, :]
    args = [theta[p][:, None] for p in range(P)]
    with np.errstate(all="ignore"):
        lw = np.log(w)[:, None] + np.broadcast_to(np.asarray(comp.logf(xr, *args), float), (K, n))
        lw = lw - lw.max(axis=0)
        r = np.exp(lw)
        r /= r.sum(axis=0)
        gl = [np.broadcast_to(np.asarray(g(xr, *args), float), (K, n)) for g in comp.grad]
        hl = [[np.broadcast_to(np.asarray(h(xr, *args), float), (K, n)) for h in row] for row in comp.hess]
    # g[k, i]: the gradient of log(w_k f_k(x_i)) in the full parameter vector
    g = np.zeros((K, n, D))
    for k in range(K):
        if k < K - 1:
            g[k, :, k] = 1.0 / w[k]
        elif K > 1:
            g[k, :, : K - 1] = -1.0 / w[K - 1]
        for p in range(P):
            g[k, :, K - 1 + k * P + p] = gl[p][k]
    a = np.einsum("ki,kid->id", r, g)
    rg = (g * np.sqrt(r)[:, :, None]).reshape(K * n, D)
    hess = rg.T @ rg - a.T @ a
    for k in range(K):
        o = K - 1 + k * P
        for p in range(P):
            for q in range(P):
                hess[o + p, o + q] += float(r[k] @ hl[p][q][k])
    return hess, r.sum(axis=1), a.sum(axis=0)


def _information_score(comp: _Component, x, w, theta, chunk: int = 1 << 14):
    """Minus the exact Hessian and the exact gradient of the mixture log-likelihood (chunked)."""
    K, P = theta.shape[1], theta.shape[0]
    D = K - 1 + K * P
    hess = np.zeros((D, D))
    rk = np.zeros(K)
    score = np.zeros(D)
    for i in range(0, x.shape[0], chunk):
        h, r, s = _information_chunk(comp, np.asarray(x[i : i + chunk], dtype=float), w, theta)
        hess += h
        rk += r
        score += s
    for k in range(K - 1):
        hess[k, k] += -rk[k] / w[k] ** 2
    if K > 1:
        hess[: K - 1, : K - 1] += -rk[K - 1] / w[K - 1] ** 2
    return -hess, score


def observed_information(comp: _Component, x, w, theta, chunk: int = 1 << 14) -> np.ndarray:
    """Minus the exact Hessian of the mixture log-likelihood in (w_1..w_{K-1}, theta_1, ..., theta_K).

    Summed over chunks of the data, so it needs bounded memory.
    """
    return _information_score(comp, x, w, theta, chunk)[0]


def _newton_polish(comp, data, w, theta, ll, tol_p, steps: int = 3):
    """Newton steps on the mixture log-likelihood from EM's answer, with exact derivatives.

    EM converges linearly, so its last step understates its distance from the
    optimum; the Newton displacement ``I^{-1} score`` measures it.  A step is
    taken while that displacement exceeds ``tol_p`` and kept only if the
    log-likelihood does not decrease beyond rounding.  Returns ``(w, theta, ll,
    information, certified, passes, log-likelihoods)``.
    """
    K, P = theta.shape[1], theta.shape[0]
    passes = 0
    lls: list[float] = []
    for _ in range(steps + 1):
        info, score = _information_score(comp, data.x, w, theta)
        passes += 1
        try:
            delta = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            return w, theta, ll, info, False, passes, lls
        w1, t1 = _unpack(_pack(w, theta) + delta, K, P)
        if not np.all(np.isfinite(delta)):
            return w, theta, ll, info, False, passes, lls
        if _change(w, theta, w1, t1) <= tol_p:
            return w, theta, ll, info, True, passes, lls
        valid = np.all(w1 > 0) and all(
            in_domain(float(t), dm) for row, dm in zip(t1, comp.domains) for t in row
        )
        if not valid:
            return w, theta, ll, info, False, passes, lls
        ll1, _, _ = data.e_pass(w1, t1)
        passes += 1
        if not (np.isfinite(ll1) and ll1 >= ll - MONOTONE_SLACK * max(1.0, abs(ll))):
            return w, theta, ll, info, False, passes, lls
        w, theta, ll = w1, t1, ll1
        lls.append(ll1)
    info, _ = _information_score(comp, data.x, w, theta)
    return w, theta, ll, info, False, passes, lls + 1


def numerical_hessian(comp, x, w, theta, h=None) -> np.ndarray:
    """Central-difference Hessian of the mixture log-likelihood (the cross-check).

    ``h``: the steps, one per coordinate (default ``1e-4`` of each value's size).
    """
    K, P = theta.shape[1], theta.shape[0]
    phi0 = _pack(w, theta)
    D = phi0.size
    h = 1e-4 * np.maximum(np.abs(phi0), 1e-2) if h is None else np.asarray(h, dtype=float)

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


def _check_precision(comp: _Component, data: _Data, reference: np.ndarray) -> None:
    """Refuse data on which the derived M-step (weighted sums) cannot keep its digits.

    The one-component fit from the sums must be a stationary point of the
    log-likelihood summed row by row: its score, in units of its standard
    error, is rounding-small.  Far from it (values far from 0 relative to their
    spread, say: a variance from sum x^2 - (sum x)^2 / N), EM's M-steps would be
    noise.
    """
    if not np.all(np.isfinite(reference)):
        return
    theta = reference[:, None]
    args = [theta[p][:, None] for p in range(theta.shape[0])]
    P = len(comp.names)
    score, curv = np.zeros(P), np.zeros(P)
    with np.errstate(all="ignore"):
        for xc, _ in data.chunks():
            xr = xc[None, :]
            score += [float(np.sum(np.broadcast_to(g(xr, *args), xr.shape))) for g in comp.grad]
            curv += [float(np.sum(np.broadcast_to(comp.hess[p][p](xr, *args), xr.shape))) for p in range(P)]
    z = np.abs(score) / np.sqrt(np.abs(curv))
    bad = [name for name, v in zip(comp.names, z) if np.isfinite(v) and v > PRECISION_Z]
    if bad:
        zb = z[comp.names.index(bad[0])]
        raise DataError(
            "the derived M-step loses its precision on these data (the score of "
            f"{bad[0]} at the one-component fit from the sums is {zb:.2g} standard errors from 0): "
            "the values are too far from 0 for their spread; shift or rescale them"
        )


def _same_optimum(a: _Run, b: _Run, tol: float) -> bool:
    """Whether two runs reached the same optimum: log-likelihoods and sorted parameters agree to ``tol``."""
    if abs(a.loglik - b.loglik) > tol * max(1.0, abs(a.loglik)) * 10:
        return False
    oa = np.lexsort((a.weights, a.theta[0]))
    ob = np.lexsort((b.weights, b.theta[0]))
    ta, tb = a.theta[:, oa], b.theta[:, ob]
    scale = np.maximum(np.maximum(np.abs(ta), np.abs(tb)), 1e-3 * np.max(np.abs(ta), axis=1, keepdims=True))
    dp = max(
        float(np.max(np.abs(ta - tb) / np.maximum(scale, 1e-300))),
        float(np.max(np.abs(a.weights[oa] - b.weights[ob]))),
    )
    return dp <= math.sqrt(tol) * 10


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
    distinct = _distinct_values(x, 2 * K)
    if distinct < 2 * K:
        raise DataError(
            f"a mixture of {K} components needs at least {2 * K} distinct values in the data, not {distinct}"
        )
    comp = _Component(d, values)
    data = _Data(comp, x)
    n = data.n
    # the one-component fit: the scale against which a collapse is measured
    reference = comp.m_step(float(n), data.totals(), None)
    _check_precision(comp, data, reference)
    rng = np.random.default_rng(seed)
    sample = np.asarray(x[:: max(1, n // CHECK_ROWS)][:CHECK_ROWS], dtype=float)
    if np.all(np.isfinite(reference)):
        spread = np.array(
            [
                [_from_z(_to_z(v, dm) + dz, dm) for dz in (-0.3, 0.0, 0.3)]
                for v, dm in zip(reference, comp.domains)
            ]
        )
        comp.check_linear(sample, [spread])
    n_starts = max(1, int(starts)) if K > 1 else 1  # one component: EM has one answer
    # the starts are screened on a seeded subsample (all the data when it is small enough): EM to a
    # loose tolerance there; each distinct optimum they approach is then converged on all the data,
    # a run stopping early where it reaches an optimum already found (best screened first)
    if n <= SCREEN_ROWS:
        sdata = data
    else:
        idx = np.sort(rng.choice(n, SCREEN_ROWS, replace=False))
        sdata = _Data(comp, np.asarray(x[idx], dtype=float))
    screened: list[_Run] = []
    collapses: list[str] = []
    for assign in _starts(sdata.x, K, n_starts, rng):
        try:
            nk, S = _hard_statistics(sdata, assign)
            w0, t0 = _m_step(comp, sdata.n, nk, S, None, reference)
            screened.append(
                _run(comp, sdata, w0, t0, reference, tol_ll=SCREEN_TOL_LOGLIK, tol_p=SCREEN_TOL_PARAMS)
            )
        except _Collapse as exc:
            collapses.append(str(exc))
    if collapses and any("collapses" in c or "finite" in c for c in collapses):
        c = next(c for c in collapses if "collapses" in c or "finite" in c)
        raise DataError(f"the {K}-component mixture degenerates on these data: {c}; the MLE does not exist")
    if not screened:
        raise DataError(f"the {K}-component mixture degenerates on these data: {collapses[0]}")
    runs: list[_Run] = []
    groups: list[_Run] = []
    for run in sorted(screened, key=lambda r: -r.loglik):
        if not any(_same_optimum(run, g, 1e-6) for g in groups):
            groups.append(run)
    for g in groups:
        try:
            found = []
            for r in runs:
                if r.merged is None:
                    o = np.lexsort((r.weights, r.theta[0]))
                    found.append((r.weights[o], r.theta[:, o], r.loglik))
            more = _run(comp, data, g.weights, g.theta, reference, known=found)
            if sdata is data:  # the same EM, continued
                more.iterations += g.iterations - 1
                more.trace = g.trace[:-1] + more.trace
            runs.append(more)
        except _Collapse as exc:
            collapses.append(str(exc))
            if "collapses" in str(exc) or "finite" in str(exc):
                raise DataError(
                    f"the {K}-component mixture degenerates on these data: {exc}; the MLE does not exist"
                ) from None
    if not runs:
        raise DataError(f"the {K}-component mixture degenerates on these data: {collapses[0]}")
    runs = [r for r in runs if r.merged is None]
    best = max(runs, key=lambda r: r.loglik)
    optima: list[_Run] = []
    for run in sorted(runs, key=lambda r: -r.loglik):
        if not any(_same_optimum(run, o, 1e-6) for o in optima):
            optima.append(run)
    order = np.lexsort((best.weights, best.theta[0]))
    w, theta = best.weights[order], best.theta[:, order]
    w, theta, loglik, info, certified, extra, lls = _newton_polish(
        comp, data, w, theta, best.loglik, TOL_PARAMS
    )
    warnings: list[str] = []
    if not best.converged:
        warnings.append(f"EM did not converge in {MAX_ITER} iterations")
    elif not certified:
        warnings.append(
            "Newton's method could not confirm the optimum to the tolerance "
            f"({TOL_PARAMS:g}): the estimates are EM's"
        )
    if collapses:
        warnings.append(
            f"{len(collapses)} of {n_starts} starts ended with a vanishing component and were dropped"
        )
    P = theta.shape[0]
    stderr: dict[str, Any] = {"w": None, **{name: None for name in comp.names}}
    information = ""
    cov = None
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        warnings.append("the observed information is singular: no standard errors")
    if cov is not None:
        # the exact derivatives checked against finite differences on a subsample (the identity
        # holds at any point, so a subsample checks the formulas as well as all the data would)
        sub_info = observed_information(comp, sample, w, theta)
        # steps on each coordinate's own scale, a hundredth of its standard error on the subsample
        # (a step sized by the value itself is far too long for, say, a mean of 1e5 with sd 1)
        diag = np.abs(np.diag(sub_info))
        steps = np.where(diag > 0, 1e-2 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1e-6)
        steps = np.minimum(steps, 1e-4 * np.maximum(np.abs(_pack(w, theta)), 1e-2))
        fd = -numerical_hessian(comp, sample, w, theta, h=steps)
        scale = np.sqrt(np.outer(np.abs(np.diag(sub_info)), np.abs(np.diag(sub_info))))
        if not (np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0)):
            warnings.append("the observed information is not positive definite: no standard errors")
        elif np.max(np.abs(fd - sub_info) / np.maximum(scale, 1e-300)) > 1e-4:
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
        log_likelihood=loglik,
        information=information,
        warnings=warnings,
        ci_method=ci_method,
        n_parameters=K - 1 + K * P,
        components=K,
        iterations=best.iterations + extra,
        converged=best.converged,
        starts=n_starts,
        distinct_optima=len(optima),
        trace=tuple(best.trace) + tuple(lls),
    )


def fit_components(
    d: Derivation,
    data: Any,
    components: Any,
    constants: Mapping[str, float] | None = None,
    *,
    seed: int = 0,
    starts: int = 10,
    ci: str = "transformed",
) -> MixtureResult:
    """Fit mixtures of each number of components in ``components`` and keep the one of least BIC.

    A K whose mixture degenerates on the data (a :class:`DataError`) is listed
    with its error and skipped.  The result is the chosen fit, with
    ``selection``: one row per K (``k``, ``log_likelihood``, ``aic``, ``bic``,
    ``error``); ``to_dict()`` gives it as ``components_bic``.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> rng = np.random.default_rng(1)
    >>> x = np.r_[rng.normal(-3, 1, 300), rng.normal(3, 1, 300)]
    >>> r = fit_components(symmle.derive("normal"), x, range(1, 4), seed=0)
    >>> r.components, [row["k"] for row in r.selection]
    (2, [1, 2, 3])
    """
    return choose_by_bic(
        parse_components(components, "components"),
        lambda k: fit_mixture(d, data, k, constants, seed=seed, starts=starts, ci=ci),
    )


def choose_by_bic(ks: list[int], fit_one: Callable[[int], MixtureResult]) -> MixtureResult:
    """The fit ``fit_one(k)`` of least BIC over ``ks`` (ties to the smaller K), with ``selection``.

    A K whose fit raises :class:`DataError` (a degenerate mixture) is listed with its error.
    Shared by the scalar (:func:`fit_components`) and vector
    (:func:`symmle.numbers.mixture_vector.fit_vector_components`) selections.
    """
    rows: list[dict[str, Any]] = []
    fits: dict[int, MixtureResult] = {}
    for k in ks:
        try:
            r = fit_one(k)
        except DataError as exc:
            rows.append({"k": k, "log_likelihood": None, "aic": None, "bic": None, "error": str(exc)})
            continue
        fits[k] = r
        rows.append({"k": k, "log_likelihood": r.log_likelihood, "aic": r.aic, "bic": r.bic, "error": None})
    if not fits:
        raise DataError(f"no number of components in {ks} gives a mixture on these data: {rows[0]['error']}")
    best = min(fits, key=lambda k: (fits[k].bic, k))
    return dataclasses.replace(fits[best], selection=tuple(rows))
