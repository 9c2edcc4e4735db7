r"""Fits to censored data: right-censored times with a status column, or intervals ``[lo, hi]``.

Each observation contributes :math:`\log f(t)` when it is exact, :math:`\log S(t)` when it is
right-censored, :math:`\log F(t)` when it is left-censored and :math:`\log(F(hi) - F(lo))` when it
lies in an interval (:mod:`symmle.symbolic.censored`).  :math:`F` and :math:`S` are the derived
closed forms where they exist (their derivatives in the parameters by SymPy), else integrals of the
density by quadrature, with the exact derivatives of the density as integrands.  The log-likelihood,
its gradient and its Hessian are exact, so the maximisation (SciPy's ``trust-exact`` on the log or
logit scale of a positive or (0, 1) parameter) and the standard errors, from the observed
information, need no finite differences.  Where :func:`~symmle.symbolic.censored.derive_censored`
found a closed form (right-censored data), it gives the estimate; its gradient is checked to vanish.

Status convention (``--censored COL``): ``1`` = the event was observed at the time, ``0`` = the time
is right-censored (the event comes later).  Any other value is an error naming its row.
Intervals (``--interval LO,HI``): ``lo`` empty = left-censored (the value is below ``hi``), ``hi``
empty = right-censored (above ``lo``), ``lo == hi`` = exact, else somewhere in ``[lo, hi]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import DataError, SpecError, SymmleError
from symmle.base.numeric import to_function
from symmle.model.build import load_model
from symmle.numbers.missing import row_error
from symmle.symbolic.censored import CensoredDerivation, CensoredEvaluator, derive_censored

__all__ = [
    "CensoredData",
    "censored_data",
    "interval_data",
    "load_censored",
    "load_interval",
    "CensoredLogLikelihood",
    "CensoredEstimator",
    "fit_censored",
]


@dataclass(frozen=True)
class CensoredData:
    """Observations as intervals: ``lo == hi`` exact, ``hi = +inf`` right-, ``lo = -inf`` left-censored."""

    lo: np.ndarray
    hi: np.ndarray
    #: ``"right"`` (a status column) or ``"interval"``
    kind: str

    @property
    def exact(self) -> np.ndarray:
        return self.lo == self.hi

    @property
    def n(self) -> int:
        return int(self.lo.size)

    def summary(self) -> dict[str, int]:
        """``{"n_events", "n_censored"}``; for intervals also the left, right and interval counts."""
        events = int(np.sum(self.exact))
        out = {"n_events": events, "n_censored": self.n - events}
        if self.kind == "interval":
            right = int(np.sum(np.isposinf(self.hi)))
            left = int(np.sum(np.isneginf(self.lo)))
            out.update(n_right=right, n_left=left, n_interval=self.n - events - right - left)
        return out

    def status(self) -> np.ndarray:
        """``delta``: 1 for an exact time, 0 for a right-censored one (right-censored data only)."""
        return self.exact.astype(float)


def censored_data(times: Any, status: Any) -> CensoredData:
    """Times and a status column (1 = event, 0 = right-censored), checked row by row.

    Examples
    --------
    >>> censored_data([1.0, 2.5], [1, 0]).summary()
    {'n_events': 1, 'n_censored': 1}
    >>> censored_data([1.0, 2.5], [1, 2])
    Traceback (most recent call last):
    ...
    symmle.DataError: row 2 of the data: the status must be 1 (event) or 0 (censored), got 2
    """
    t = np.asarray(times, dtype=float).reshape(-1)
    s = np.asarray(status, dtype=float).reshape(-1)
    if t.size != s.size:
        raise DataError(f"{t.size} times but {s.size} status values")
    if t.size == 0:
        raise DataError("no observations")
    bad = np.flatnonzero(~((s == 0) | (s == 1)))
    if bad.size:
        k = int(bad[0])
        shown = "a missing value" if np.isnan(s[k]) else f"{s[k]:g}"
        raise row_error(k + 1, f": the status must be 1 (event) or 0 (censored), got {shown}")
    missing = np.flatnonzero(~np.isfinite(t))
    if missing.size:
        k = int(missing[0])
        raise row_error(k + 1, f": the time must be a finite number, got {t[k]:g}")
    if not np.any(s == 1):
        raise DataError("no event is observed (every status is 0): the likelihood has no maximum")
    hi = np.where(s == 1, t, np.inf)
    return CensoredData(t.copy(), hi, "right")


def interval_data(lo: Any, hi: Any) -> CensoredData:
    """Interval observations: a missing ``lo`` is left-, a missing ``hi`` right-censored.

    Examples
    --------
    >>> interval_data([1.0, np.nan, 2.0], [1.0, 3.0, np.nan]).summary()
    {'n_events': 1, 'n_censored': 2, 'n_right': 1, 'n_left': 1, 'n_interval': 0}
    """
    a = np.asarray(lo, dtype=float).reshape(-1).copy()
    b = np.asarray(hi, dtype=float).reshape(-1).copy()
    if a.size != b.size:
        raise DataError(f"{a.size} lower but {b.size} upper ends")
    if a.size == 0:
        raise DataError("no observations")
    for k in range(a.size):
        if np.isnan(a[k]) and np.isnan(b[k]):
            raise row_error(k + 1, ": both ends of the interval are missing")
        if np.isinf(a[k]) or np.isinf(b[k]):
            raise row_error(k + 1, ": an end of the interval is infinite (leave the cell empty instead)")
        if a[k] > b[k]:
            raise row_error(k + 1, f": the lower end {a[k]:g} exceeds the upper end {b[k]:g}")
    a[np.isnan(a)] = -np.inf
    b[np.isnan(b)] = np.inf
    return CensoredData(a, b, "interval")


def load_censored(path: str, column: str | None, status: str) -> CensoredData:
    """Times (``column``) and status (``status``) from a data file (``load_columns``)."""
    from symmle.numbers.data import load_columns

    if column is None:
        raise SpecError("--censored needs the column of the times: give --column NAME")
    values, _ = load_columns(path, [column, status])
    return censored_data(values[:, 0], values[:, 1])


def load_interval(path: str, columns: str) -> CensoredData:
    """``LO,HI`` columns of a data file as intervals (empty cells: left- or right-censored)."""
    from symmle.numbers.data import load_columns

    names = [c.strip() for c in columns.split(",")]
    if len(names) != 2 or not all(names):
        raise SpecError(f"--interval takes two columns LO,HI (got {columns!r})")
    values, _ = load_columns(path, names)
    return interval_data(values[:, 0], values[:, 1])


# --------------------------------------------------------------------------------------------------
# the log-likelihood, its gradient and Hessian
# --------------------------------------------------------------------------------------------------


def _numeric(f, args) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.real(np.asarray(f(*args), dtype=complex))


class CensoredLogLikelihood:
    """The censored log-likelihood of a model at known constants: value, gradient and Hessian.

    ``d`` is the :class:`~symmle.symbolic.censored.CensoredDerivation` (its ``F`` and ``S``; ``None``
    in them means quadrature).
    """

    def __init__(self, d: CensoredDerivation, constants: Mapping[sp.Symbol, float]) -> None:
        m = d.model
        self.model = m
        x = m.variable
        self.params = list(m.parameter_symbols)
        k = len(self.params)
        self.k = k
        consts = dict(constants)
        logf = sp.expand_log(sp.log(m.density), force=True).subs(consts)
        args = [x, *self.params]
        grad = [sp.diff(logf, p) for p in self.params]
        self.logf = to_function(args, logf)
        self.logf_grad = [to_function(args, g) for g in grad]
        self.logf_hess = [
            [to_function(args, sp.diff(grad[a], self.params[b])) for b in range(k)] for a in range(k)
        ]
        self.lo_end, self.hi_end = (float(v) for v in m.support_at({**m.point(), **consts}))
        self.symbolic = False
        if d.distribution.symbolic:
            self.symbolic = self._symbolic(
                d.distribution.cdf.subs(consts), d.distribution.survival.subs(consts)
            )
        if not self.symbolic:
            dens = m.density.subs(consts)
            dg = [sp.diff(dens, p) for p in self.params]
            parts = [dens, *dg, *[sp.diff(dg[a], self.params[b]) for a in range(k) for b in range(k)]]
            self.integrand = [to_function(args, e) for e in parts]

    def _symbolic(self, cdf: sp.Expr, survival: sp.Expr) -> bool:
        """Compile F and S with their derivatives; False if they cannot be evaluated (quadrature then)."""
        x = self.model.variable
        args = [x, *self.params]
        try:
            made = {}
            for name, e in (("F", cdf), ("S", survival)):
                g = [sp.diff(e, p) for p in self.params]
                h = [[sp.diff(g[a], self.params[b]) for b in range(self.k)] for a in range(self.k)]
                if any(
                    t.has(sp.meijerg, sp.hyper, sp.Integral, sp.Derivative, sp.Subs)
                    for t in [*g, *sum(h, [])]
                ):
                    return False
                made[name] = (
                    to_function(args, e),
                    [to_function(args, t) for t in g],
                    [[to_function(args, t) for t in row] for row in h],
                )
            point = self.model.point()
            theta = [point[p] for p in self.params]
            probe = np.array([self._probe()])
            for f, g, h in made.values():
                for fn in [f, *g, *sum(h, [])]:
                    if not np.all(np.isfinite(_numeric(fn, [probe, *theta]))):
                        return False
        except Exception:  # noqa: BLE001 - anything SymPy cannot print for NumPy: quadrature
            return False
        self.cdf, self.survival = made["F"], made["S"]
        return True

    def _probe(self) -> float:
        lo, hi = self.lo_end, self.hi_end
        if math.isfinite(lo) and math.isfinite(hi):
            return (lo + hi) / 2
        if math.isfinite(lo):
            return lo + 1.0
        if math.isfinite(hi):
            return hi - 1.0
        return 0.3

    def _exact(self, t: np.ndarray, theta: list[float]):
        k = self.k
        v = _numeric(self.logf, [t, *theta]) * np.ones_like(t)
        g = np.array([_numeric(f, [t, *theta]) * np.ones_like(t) for f in self.logf_grad])
        h = np.array(
            [
                [_numeric(self.logf_hess[a][b], [t, *theta]) * np.ones_like(t) for b in range(k)]
                for a in range(k)
            ]
        )
        return v.sum(), g.sum(axis=1), h.sum(axis=2)

    def _closed(self, which, t: np.ndarray, theta: list[float]):
        f, g, h = which
        k = self.k
        p = _numeric(f, [t, *theta]) * np.ones_like(t)
        dp = np.array([_numeric(e, [t, *theta]) * np.ones_like(t) for e in g])
        d2p = np.array(
            [[_numeric(h[a][b], [t, *theta]) * np.ones_like(t) for b in range(k)] for a in range(k)]
        )
        return p, dp, d2p

    def _probabilities(self, a: np.ndarray, b: np.ndarray, theta: list[float]):
        """``P = int_a^b f``, ``dP`` (k, n) and ``d2P`` (k, k, n)."""
        k, n = self.k, a.size
        P, dP, d2P = np.zeros(n), np.zeros((k, n)), np.zeros((k, k, n))
        if not self.symbolic:
            r = self._quadrature(np.maximum(a, self.lo_end), np.minimum(b, self.hi_end), theta)
            return r[0], r[1 : 1 + k], r[1 + k :].reshape(k, k, n)
        right = b >= self.hi_end
        left = (a <= self.lo_end) & ~right
        both = ~right & ~left
        if np.any(right):
            P[right], dP[:, right], d2P[:, :, right] = self._closed(self.survival, a[right], theta)
        if np.any(left):
            P[left], dP[:, left], d2P[:, :, left] = self._closed(self.cdf, b[left], theta)
        if np.any(both):
            u = self._closed(self.cdf, b[both], theta)
            w = self._closed(self.cdf, a[both], theta)
            P[both], dP[:, both], d2P[:, :, both] = u[0] - w[0], u[1] - w[1], u[2] - w[2]
        return P, dP, d2P

    def _integrand(self, u: np.ndarray, theta: list[float]) -> np.ndarray:
        """``[f, df/dtheta, d2f/dtheta2]`` at the points ``u``: shape ``(1 + k + k*k,) + u.shape``."""
        return np.array([_numeric(f, [u, *theta]) + np.zeros(np.shape(u)) for f in self.integrand])

    def _integral(self, lo: float, hi: float, theta: list[float]) -> np.ndarray:
        from scipy.integrate import quad_vec

        if not lo < hi:
            return np.zeros(1 + self.k + self.k**2)
        r, _ = quad_vec(
            lambda u: self._integrand(np.array(u), theta), lo, hi, epsabs=1e-300, epsrel=1e-11, limit=400
        )
        return np.asarray(r)

    def _quadrature(self, a: np.ndarray, b: np.ndarray, theta: list[float]) -> np.ndarray:
        """The integrals over ``[a_j, b_j]`` of :meth:`_integrand`, shape ``(1 + k + k*k, n)``.

        The finite ends, sorted, cut the support into gaps: Gauss-Legendre rules of 10 and 20 points on
        every gap at once (a gap where they disagree by quadrature with error control), and adaptive
        quadrature from the support's lower end to the first point and from the last to the upper end.
        Each integral is then a sum of whole pieces: from the lower end (left-censored), to the upper end
        (right-censored, summed from the top so that a small tail keeps its digits), or between.
        """
        ends = np.concatenate([a, b])
        pts = np.unique(ends[np.isfinite(ends) & (ends > self.lo_end) & (ends < self.hi_end)])
        parts = 1 + self.k + self.k**2
        if pts.size == 0:
            whole = self._integral(self.lo_end, self.hi_end, theta)
            return np.repeat(whole[:, None], a.size, axis=1)
        head = self._integral(self.lo_end, pts[0], theta)
        tail = self._integral(pts[-1], self.hi_end, theta)
        left, right = pts[:-1], pts[1:]
        gaps = np.zeros((parts, left.size))
        if left.size:
            rules = []
            for order in (10, 20):
                nodes, weights = np.polynomial.legendre.leggauss(order)
                half, mid = (right - left) / 2, (right + left) / 2
                u = mid[:, None] + half[:, None] * nodes[None, :]
                rules.append(np.sum(self._integrand(u, theta) * weights, axis=-1) * half)
            gaps = rules[1]
            scale = np.abs(rules[1]).sum(axis=1, keepdims=True) + 1e-300
            bad = np.flatnonzero(
                np.any(np.abs(rules[1] - rules[0]) > 1e-12 * scale + 1e-10 * np.abs(rules[1]), axis=0)
            )
            for j in bad:
                gaps[:, j] = self._integral(left[j], right[j], theta)
        below = np.concatenate([np.zeros((parts, 1)), np.cumsum(gaps, axis=1)], axis=1)  # pts[0] to pts[j]
        above = np.concatenate([np.cumsum(gaps[:, ::-1], axis=1)[:, ::-1], np.zeros((parts, 1))], axis=1)
        out = np.zeros((parts, a.size))
        for j in range(a.size):
            at_lo, at_hi = a[j] <= self.lo_end, b[j] >= self.hi_end
            if at_lo and at_hi:
                out[:, j] = head + below[:, -1] + tail
            elif at_hi:
                out[:, j] = above[:, np.searchsorted(pts, a[j])] + tail
            elif at_lo:
                out[:, j] = head + below[:, np.searchsorted(pts, b[j])]
            else:
                out[:, j] = below[:, np.searchsorted(pts, b[j])] - below[:, np.searchsorted(pts, a[j])]
        return out

    def __call__(self, data: CensoredData, theta: list[float]) -> tuple[float, np.ndarray, np.ndarray]:
        """``(loglik, gradient, Hessian)`` at ``theta`` (the parameters in model order)."""
        exact = data.exact
        v, g, h = (
            self._exact(data.lo[exact], theta)
            if np.any(exact)
            else (0.0, np.zeros(self.k), np.zeros((self.k, self.k)))
        )
        cens = ~exact
        if np.any(cens):
            P, dP, d2P = self._probabilities(data.lo[cens], data.hi[cens], theta)
            with np.errstate(all="ignore"):
                v = v + np.sum(np.log(P))
                g = g + np.sum(dP / P, axis=1)
                h = h + np.sum(d2P / P - dP[:, None, :] * dP[None, :, :] / P**2, axis=2)
        return float(v), g, h


# --------------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------------


def _to_z(v: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.log(v)
    if domain == "unit":
        return math.log(v / (1 - v))
    return v


def _from_z(z: np.ndarray, domains: list[str]) -> tuple[list[float], np.ndarray, np.ndarray]:
    """``theta``, ``dtheta/dz`` and ``d2theta/dz2`` (each per coordinate)."""
    theta, d1, d2 = [], [], []
    for t, dom in zip(z, domains):
        if dom in ("positive", "nonnegative"):
            v = math.exp(min(t, 700.0))
            theta.append(v)
            d1.append(v)
            d2.append(v)
        elif dom == "unit":
            v = 1 / (1 + math.exp(-max(min(t, 700.0), -700.0)))
            theta.append(v)
            d1.append(v * (1 - v))
            d2.append(v * (1 - v) * (1 - 2 * v))
        else:
            theta.append(float(t))
            d1.append(1.0)
            d2.append(0.0)
    return theta, np.array(d1), np.array(d2)


def _start(d: CensoredDerivation, data: CensoredData, values: Mapping[str, float], timeout) -> list[float]:
    """The uncensored MLE of the observed or imputed values (midpoints, finite ends), else the check point."""
    from symmle.numbers.fitting import fit

    m = d.model
    a, b = data.lo, data.hi
    x = np.where(np.isfinite(a) & np.isfinite(b), (a + b) / 2, np.where(np.isfinite(a), a, b))
    lo, hi = m.support_at({**m.point(), **m.constant_point()})
    x = x[(x > lo) & (x < hi)] if not np.all((x > lo) & (x < hi)) else x
    point = m.point()
    try:
        r = fit(m, x, dict(values), timeout=timeout)
        return [float(r.estimates[q.name]) for q in m.parameters]
    except (SymmleError, ValueError, ArithmeticError):
        return [point[q.symbol] for q in m.parameters]


class CensoredEstimator:
    """The estimates and standard errors of a censored derivation ``d`` at known ``constants``.

    Built once (the log-likelihood, its gradient and Hessian compiled), then called on data sets:
    ``fit`` calls it once, the simulation check of ``check --censor-rate`` once per replicate.
    """

    def __init__(self, d: CensoredDerivation, constants: Mapping[sp.Symbol, float]) -> None:
        self.d = d
        self.model = d.model
        self.constants = dict(constants)
        self.ll = CensoredLogLikelihood(d, self.constants)
        self.domains = [q.domain for q in d.model.parameters]

    def estimate(
        self, data: CensoredData, start: list[float] | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> tuple[list[float], dict[str, str], list[str]]:
        """``(theta, kinds, warnings)``: the closed form where there is one, else the numeric maximum.

        ``start`` is where the numeric maximisation starts (default: the uncensored MLE of the
        observed or imputed values).
        """
        d, m, ll = self.d, self.model, self.ll
        warnings = [w for w in d.warnings if "maximised numerically" not in w]
        if not ll.symbolic:
            warnings.append(
                "S(t) and F(t) and their derivatives by quadrature of the density (no closed form that "
                "NumPy evaluates with its derivatives)"
            )
        if data.kind == "right" and d.closed_form and d.likelihood is not None:
            ev = CensoredEvaluator(d.likelihood, data.lo, data.status(), self.constants)
            theta = [ev(d.estimators[q.name].expr, {}) for q in m.parameters]
            v, g, _ = ll(data, theta) if all(np.isfinite(theta)) else (np.nan, None, None)
            scale = np.abs(np.array(theta)) + 1e-12
            if np.isfinite(v) and np.all(np.abs(g * scale) <= 1e-6 * max(1.0, abs(v))):
                return theta, {q.name: "closed_form" for q in m.parameters}, warnings
            warnings.append("the closed form does not zero the score on these data; maximised numerically")
        if start is None:
            start = _start(d, data, {q.name: float(q.value) for q in m.constants}, timeout)
        theta = _maximise(ll, data, self.domains, start)
        for q, t in zip(m.parameters, theta):
            if not np.isfinite(t):
                raise DataError(f"no maximum-likelihood estimate of {q.name} for these censored data")
        return theta, {q.name: "numeric" for q in m.parameters}, warnings

    def stderr(
        self, data: CensoredData, theta: list[float]
    ) -> tuple[float, dict[str, float | None], list[str]]:
        """``(log-likelihood, standard errors from the observed information, warnings)`` at ``theta``."""
        m = self.model
        v, _, h = self.ll(data, theta)
        stderr: dict[str, float | None] = {q.name: None for q in m.parameters}
        info = -np.asarray(h, dtype=float)
        notes = []
        try:
            cov = np.linalg.inv(info)
            if (
                np.all(np.isfinite(cov))
                and np.all(np.diag(cov) > 0)
                and np.min(np.linalg.eigvalsh((info + info.T) / 2)) > 0
            ):
                stderr = {q.name: float(math.sqrt(cov[a, a])) for a, q in enumerate(m.parameters)}
            else:
                notes.append(
                    "the observed information is not positive definite at the estimate: no standard errors"
                )
        except np.linalg.LinAlgError:
            notes.append("the observed information is singular at the estimate: no standard errors")
        return float(v), stderr, notes


def fit_censored(
    model: Any,
    data: CensoredData,
    constants: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    ci: str = "transformed",
):
    """Fit ``model`` to censored ``data`` (:func:`censored_data`, :func:`interval_data`).

    Returns a :class:`~symmle.numbers.fitting.FitResult` whose ``censored`` holds the counts.

    Examples
    --------
    >>> r = fit_censored("exponential", censored_data([1.0, 2.0, 3.0, 4.0], [1, 1, 0, 1]))
    >>> r.estimates["lam"], r.kind["lam"], r.censored
    (0.3, 'closed_form', {'n_events': 3, 'n_censored': 1})
    """
    from symmle.numbers.fitting import CI_METHODS, FitResult, interval

    if ci not in CI_METHODS:
        raise SpecError(f"unknown interval method {ci!r}: choose one of {', '.join(CI_METHODS)}")
    if ci not in ("transformed", "wald"):
        raise SpecError(f"censored fits make Wald intervals: --ci transformed or wald (not {ci})")
    m = model.model if isinstance(model, CensoredDerivation) else load_model(model)
    given = {k: v for k, v in (constants or {}).items()}
    if given:
        m = m.with_constants(given)
    unknown = [q.name for q in m.constants if q.value is None]
    if unknown:
        raise SpecError(f"give the value of the constant {unknown[0]} (--const {unknown[0]}=VALUE)")
    for q in m.parameters:
        if q.domain not in ("real", "positive", "nonnegative", "unit"):
            raise SpecError(
                f"censored fits estimate real, positive or (0, 1) parameters; '{q.name}' is {q.domain}"
            )
    d = model if isinstance(model, CensoredDerivation) and not given else derive_censored(m, timeout=timeout)
    consts = {q.symbol: float(q.value) for q in m.constants}
    lo, hi = m.support_at({**m.point(), **consts})
    finite = np.concatenate([data.lo[np.isfinite(data.lo)], data.hi[np.isfinite(data.hi)]])
    outside = np.flatnonzero((finite < lo) | (finite > hi))
    if outside.size:
        v = finite[outside[0]]
        raise DataError(f"the value {v:g} lies outside the support [{lo:g}, {hi:g}] of {m.name}")
    est = CensoredEstimator(d, consts)
    theta, kinds, warnings = est.estimate(data, timeout=timeout)
    v, stderr, notes = est.stderr(data, theta)
    warnings += notes
    estimates = {q.name: float(t) for q, t in zip(m.parameters, theta)}
    ci95, ci_method = {}, {}
    for q in m.parameters:
        se = stderr[q.name]
        if se is None:
            ci95[q.name], ci_method[q.name] = None, None
        else:
            ci95[q.name], ci_method[q.name] = interval(estimates[q.name], se, q.domain, ci)
    return FitResult(
        model=m.name,
        n=data.n,
        estimates=estimates,
        kind=kinds,
        stderr=stderr,
        ci95=ci95,
        log_likelihood=float(v),
        information="observed",
        warnings=warnings,
        ci_method=ci_method,
        n_parameters=len(m.parameters),
        censored=data.summary(),
    )


def _maximise(
    ll: CensoredLogLikelihood, data: CensoredData, domains: list[str], start: list[float]
) -> list[float]:
    from scipy.optimize import minimize

    def parts(z: np.ndarray):
        theta, d1, d2 = _from_z(z, domains)
        v, g, h = ll(data, theta)
        if not np.isfinite(v):
            return 1e300, np.zeros_like(z), np.eye(z.size)
        gz = g * d1
        hz = h * np.outer(d1, d1) + np.diag(g * d2)
        return -v, -gz, -hz

    cache: dict[bytes, tuple] = {}

    def get(z: np.ndarray):
        key = np.asarray(z, dtype=float).tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = parts(np.asarray(z, dtype=float))
        return cache[key]

    z0 = np.array([_to_z(v, dom) for v, dom in zip(start, domains)])
    r = minimize(
        lambda z: get(z)[0],
        z0,
        jac=lambda z: get(z)[1],
        hess=lambda z: get(z)[2],
        method="trust-exact",
        options={"gtol": 1e-9, "maxiter": 500},
    )
    theta, _, _ = _from_z(r.x, domains)
    _, g, _ = ll(data, theta)
    if not (r.success or np.all(np.abs(g) * (np.abs(theta) + 1e-12) < 1e-5 * max(1.0, abs(r.fun)))):
        raise DataError(f"the maximisation of the censored log-likelihood did not converge ({r.message})")
    return theta
