r"""Profile-likelihood confidence intervals (``fit(..., ci="profile")``, ``symmle fit --ci profile``).

For a regular parameter :math:`\theta_j` the 95% profile-likelihood interval is

.. math::

    \{\theta_j : 2\,(\hat\ell - \ell_p(\theta_j)) \le \chi^2_{1,0.95}\},
    \qquad \ell_p(\theta_j) = \max_{\theta_{-j}} \ell(\theta_j, \theta_{-j}),

the set of values a likelihood-ratio test at 5% would not reject.  Unlike a
Wald interval it needs no normal approximation of the estimate: it is not
symmetric where the likelihood is not, and it is the same on any scale of the
parameter (invariance).

How it is computed
------------------
* The log-likelihood :math:`\ell` is the derivation's, written in the
  sufficient statistics (``N``, ``T_j``; sums over the data where it does not
  separate), so each evaluation reads the statistics computed once from the
  data.  Its gradient and Hessian in the regular parameters are its exact
  derivatives (SymPy), compiled; parameters whose MLE is an order statistic
  (the support depends on them) are held at it, which is their profile
  maximum whatever the others.  Before use, :math:`\ell` is checked against
  the compiled log-density summed over the data at the estimate, and the
  exact gradient against a central difference of :math:`\ell`.  Where the
  statistics lose digits on the data (a normal sample around :math:`10^6`:
  :math:`T_2 - 2\mu T_1 + N\mu^2` cancels), the log-density and its exact
  derivatives are summed over the data instead, one pass per evaluation.
* Inner maximisation: with :math:`\theta_j` fixed, the other parameters
  maximise :math:`\ell` by SciPy's ``trust-exact`` Newton method with the
  exact gradient and Hessian, on coordinates that map each domain onto the
  real line (log for a positive parameter, logit for one in (0, 1)), warm
  started from the previous point of the profile.  A one-parameter model's
  profile is the log-likelihood itself.
* Outer search: from the MLE, the profile is evaluated outward on the same
  coordinate in steps of the parameter's Wald standard error (carried to that
  coordinate), growing after a few steps, until
  :math:`2(\hat\ell - \ell_p)` exceeds the cut-off :data:`CHI2_1_95`; the end
  of the interval is then the root of :math:`2(\hat\ell - \ell_p) - \chi^2`
  in that bracket, found by :func:`scipy.optimize.brentq`.  Where the
  profile never rises above the cut-off before the edge of the domain, the
  end is that edge (``0``, ``1``, or an infinity, ``null`` in JSON) with a
  warning; where the other parameters have no maximum, the end is unknown
  (``nan``, ``null`` in JSON), with a warning.  Never a made-up number.

Vector and regression models, models with priors (MAP) and log-likelihoods
with a kink (``Abs(x - m)``) are refused with a one-line
:class:`~symmle.base.errors.SpecError`.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp

from symmle.base import _runtime
from symmle.base.errors import DerivationError, SpecError
from symmle.symbolic.evaluate import Formula

__all__ = ["CHI2_1_95", "PROFILE_TEXT", "check_profile_supported", "profile_intervals"]

#: The 95% quantile of the chi-square distribution with one degree of freedom (1.959964**2).
CHI2_1_95 = 3.841458820694124

#: What the line under the table says about the intervals.
PROFILE_TEXT = "2 (log-likelihood at the MLE - profile log-likelihood) <= 3.841"

#: Steps of the outward search, in Wald standard errors on the parameter's coordinate: one by one
#: up to four, then doubling; past the last the profile is taken as never reaching the cut-off.
_STEPS = [1.0, 2.0, 3.0, 4.0] + [4.0 * 2.0**k for k in range(1, 48)]

#: The open interval each domain's parameter lives in (see symmle.numbers.fitting.INTERVAL_SCALE).
_RANGE: dict[str, tuple[float, float]] = {
    "real": (-math.inf, math.inf),
    "integer": (-math.inf, math.inf),
    "positive": (0.0, math.inf),
    "nonnegative": (0.0, math.inf),
    "positive_integer": (0.0, math.inf),
    "unit": (0.0, 1.0),
}


def check_profile_supported(model: Any) -> None:
    """Raise a one-line :class:`SpecError` if ``model`` (a Model or Derivation) has no profile intervals.

    Examples
    --------
    >>> import symmle
    >>> check_profile_supported(symmle.derive("gamma"))
    >>> check_profile_supported(symmle.load_model("mvnormal"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    symmle.SpecError: profile-likelihood intervals (--ci profile) are not supported for vector models ...
    """
    m = getattr(model, "model", model)
    kind = None
    if m.is_regression:
        kind = "regression"
    elif m.is_vector:
        kind = "vector"
    elif m.prior or (model is not m and getattr(model, "prior", None) is not None):
        kind = "MAP (prior)"
    if kind is not None:
        raise SpecError(
            f"profile-likelihood intervals (--ci profile) are not supported for {kind} models "
            f"('{m.name}'): use --ci transformed or --ci wald"
        )
    st = getattr(model, "stationarity", None)
    if st is not None and st.kinks:
        names = ", ".join(p.name for p, _ in st.kinks)
        raise SpecError(
            f"profile-likelihood intervals (--ci profile) need a smooth log-likelihood; that of '{m.name}' "
            f"has a kink in {names} (Abs(x - {st.kinks[0][0].name})): use --ci transformed or --ci wald"
        )


class _Coordinate:
    """A parameter's coordinate on the real line: log, logit or itself, by its domain's open range."""

    def __init__(self, domain: str) -> None:
        self.lo, self.hi = _RANGE.get(domain, (-math.inf, math.inf))

    def z(self, theta: float) -> float:
        lo, hi = self.lo, self.hi
        if math.isfinite(lo) and math.isfinite(hi):
            u = (theta - lo) / (hi - lo)
            return math.log(u) - math.log1p(-u)
        if math.isfinite(lo):
            return math.log(theta - lo)
        if math.isfinite(hi):
            return math.log(hi - theta)
        return theta

    def theta(self, z: float) -> float:
        """The parameter at ``z`` (saturating at the edges of the domain, never overflowing)."""
        lo, hi = self.lo, self.hi
        if math.isfinite(lo) and math.isfinite(hi):
            s = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
            return lo + (hi - lo) * s
        e = math.exp(z) if z < 709.0 else math.inf
        if math.isfinite(lo):
            return lo + e
        if math.isfinite(hi):
            return hi - e
        return z

    def derivatives(self, theta: float) -> tuple[float, float]:
        """``(dtheta/dz, d2theta/dz2)`` at ``theta``."""
        lo, hi = self.lo, self.hi
        if math.isfinite(lo) and math.isfinite(hi):
            s = (theta - lo) / (hi - lo)
            d1 = (hi - lo) * s * (1 - s)
            return d1, d1 * (1 - 2 * s)
        if math.isfinite(lo):
            return theta - lo, theta - lo
        if math.isfinite(hi):
            return -(hi - theta), -(hi - theta)
        return 1.0, 0.0

    def inside(self, theta: float) -> bool:
        return self.lo < theta < self.hi


class _NoProfile(Exception):
    """The other parameters have no maximum at this value of the profiled one."""


class _LogLikelihood:
    """The log-likelihood of a derivation in its regular parameters, with its exact derivatives, on data.

    By default in the sufficient statistics (computed once); ``pointwise``: as sums over the data of
    the log-density and its derivatives (one pass per evaluation), for data on which the statistics
    lose digits (a normal sample far from 0: ``T2 - 2 mu T1 + N mu**2`` cancels).
    """

    def __init__(
        self, d: Any, compiled: Any, x: np.ndarray, constants: Mapping[str, float], pointwise: bool = False
    ) -> None:
        lik, st = d.likelihood, d.stationarity
        self.names = [p.name for p in st.parameters]
        self.pointwise = pointwise
        symbols = list(st.parameters)
        if pointwise:  # the parameters set by order statistics are read by name, at their estimates
            var = lik.model.variable

            def formula(e: sp.Expr) -> Any:
                return Formula(sp.Symbol("_s0"), (("_s0", e),), var).compile()

            ell = lik.log_density
        else:

            def formula(e: sp.Expr) -> Any:
                return Formula.of(e, lik).compile()

            ell = lik.log_likelihood.subs(dict(st.boundary))
            if ell.free_symbols & {p for p, _ in st.boundary}:
                raise DerivationError("the log-likelihood still depends on an order-statistic parameter")
        self.value_f = formula(ell)
        self.grad_f = [formula(sp.diff(ell, p)) for p in symbols]
        self.hess_f = [[formula(sp.diff(ell, p, q)) for q in symbols] for p in symbols]
        self.values = {**compiled.constant_values(**constants), **compiled.statistics(x, **constants)}
        data = _runtime.as_data(x)
        self.data = _runtime.tabulate(data) if compiled.plan.get("discrete") else data

    def at(self, theta: Mapping[str, float]) -> dict[str, float]:
        v = dict(self.values)
        v.update(theta)
        return v

    def value(self, theta: Mapping[str, float]) -> float:
        with np.errstate(all="ignore"):
            return float(_runtime.real_value(self.value_f(self.at(theta), self.data)))

    def grad(self, theta: Mapping[str, float], idx: list[int]) -> np.ndarray:
        v = self.at(theta)
        with np.errstate(all="ignore"):
            return np.array([float(_runtime.real_value(self.grad_f[i](v, self.data))) for i in idx])

    def hess(self, theta: Mapping[str, float], idx: list[int]) -> np.ndarray:
        v = self.at(theta)
        with np.errstate(all="ignore"):
            return np.array(
                [[float(_runtime.real_value(self.hess_f[i][j](v, self.data))) for j in idx] for i in idx]
            )


def _check(ell: _LogLikelihood, compiled: Any, x: np.ndarray, estimates: dict, constants: dict) -> str:
    """``""`` if ``ell`` and its gradient agree with the log-density and a difference, else why not."""
    theta = {k: float(v) for k, v in estimates.items()}
    direct = compiled.log_likelihood(x, **{**constants, **theta})
    mine = ell.value(theta)
    if not (math.isfinite(mine) and abs(mine - direct) <= 1e-8 * (abs(direct) + 1.0)):
        return (
            f"the log-likelihood in the sufficient statistics ({mine:.12g}) disagrees with the log-density "
            f"summed over the data ({direct:.12g}) at the estimate"
        )
    # the exact gradient against a central difference, at a point near (not at) the estimate
    domains = dict(compiled.plan["domains"])
    point = dict(theta)
    for name in ell.names:
        c = _Coordinate(domains[name])
        point[name] = c.theta(c.z(theta[name]) + 0.05) if c.inside(theta[name]) else theta[name]
    g = ell.grad(point, list(range(len(ell.names))))
    for i, name in enumerate(ell.names):
        t = point[name]
        h = 1e-5 * max(abs(t), 1e-3)
        c = _Coordinate(domains[name])
        if not (c.inside(t - h) and c.inside(t + h)):
            continue
        up, down = ell.value({**point, name: t + h}), ell.value({**point, name: t - h})
        fd = (up - down) / (2 * h)
        tol = 1e-5 * (abs(g[i]) + abs(fd)) + 1e-9 * (abs(up) + 1.0) / h
        if not (math.isfinite(fd) and math.isfinite(g[i]) and abs(fd - g[i]) <= tol):
            return (
                f"the exact derivative of the log-likelihood in {name} ({g[i]:.10g}) disagrees with a "
                f"finite difference ({fd:.10g})"
            )
    return ""


class _Profiler:
    """``l_p(theta_j)`` for one parameter: the other regular parameters maximised, warm started."""

    def __init__(
        self, ell: _LogLikelihood, j: int, estimates: Mapping[str, float], domains: Mapping[str, str]
    ) -> None:
        self.ell = ell
        self.name = ell.names[j]
        self.others = [i for i in range(len(ell.names)) if i != j]
        self.coords = [_Coordinate(domains[ell.names[i]]) for i in self.others]
        self.fixed = {k: float(v) for k, v in estimates.items()}  # boundary kinds and the MLE
        self.mle_z = np.array([c.z(self.fixed[ell.names[i]]) for i, c in zip(self.others, self.coords)])
        self.start = self.mle_z.copy()
        self.last: dict[str, float] = {}  # every parameter at the last point of the profile

    def _theta(self, t: float, z: np.ndarray) -> dict[str, float]:
        theta = dict(self.fixed)
        theta[self.name] = t
        for i, c, zi in zip(self.others, self.coords, z):
            theta[self.ell.names[i]] = c.theta(float(zi))
        return theta

    def __call__(self, t: float) -> float:
        if not self.others:
            self.last = self._theta(t, self.start)
            v = self.ell.value(self.last)
            if not math.isfinite(v):
                raise _NoProfile(f"the log-likelihood is not finite at {self.name} = {t:.6g}")
            return v
        best = None
        for start in (self.start, self.mle_z):
            found = self._maximise(t, start)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
            if best is not None:
                break
        if best is None:
            raise _NoProfile(
                f"the other parameters have no maximum of the likelihood at {self.name} = {t:.6g}"
            )
        value, z = best
        self.start = z
        self.last = self._theta(t, z)
        return value

    def _maximise(self, t: float, start: np.ndarray) -> tuple[float, np.ndarray] | None:
        from scipy.optimize import minimize

        idx = self.others
        big = 1e300

        def neg(z):
            v = self.ell.value(self._theta(t, z))
            return -v if math.isfinite(v) else big

        def neg_grad(z):
            theta = self._theta(t, z)
            g = self.ell.grad(theta, idx)
            d1 = np.array([c.derivatives(theta[self.ell.names[i]])[0] for i, c in zip(idx, self.coords)])
            out = -(g * d1)
            return out if np.all(np.isfinite(out)) else np.zeros_like(out)

        def neg_hess(z):
            theta = self._theta(t, z)
            g = self.ell.grad(theta, idx)
            h = self.ell.hess(theta, idx)
            d = [c.derivatives(theta[self.ell.names[i]]) for i, c in zip(idx, self.coords)]
            d1 = np.array([a for a, _ in d])
            d2 = np.array([b for _, b in d])
            out = -(h * np.outer(d1, d1) + np.diag(g * d2))
            return out if np.all(np.isfinite(out)) else np.eye(len(idx))

        if not math.isfinite(-neg(start)):
            return None
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            options = {"gtol": 1e-9, "maxiter": 500}
            res = minimize(neg, start, jac=neg_grad, hess=neg_hess, method="trust-exact", options=options)
        z = np.asarray(res.x, dtype=float)
        value = -float(res.fun)
        if not (np.all(np.isfinite(z)) and math.isfinite(value) and value > -big):
            return None
        theta = self._theta(t, z)
        if not all(c.inside(theta[self.ell.names[i]]) for i, c in zip(idx, self.coords)):
            return None  # a nuisance parameter ran to the edge of its domain: no maximum inside it
        # where the log-likelihood's rounding stops the trust region early, Newton steps from the
        # exact gradient and Hessian finish; the point is a maximum when the Newton step's predicted
        # gain, g' (-H)^-1 g / 2, is negligible beside the cut-off and the Hessian is negative definite
        for _ in range(8):
            g = self.ell.grad(theta, idx)
            h = self.ell.hess(theta, idx)
            if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
                return None
            if not np.all(np.linalg.eigvalsh((h + h.T) / 2) < 0):
                return None
            step = np.linalg.solve(h, g)
            gain = -0.5 * float(g @ step)
            if gain <= 1e-10:
                break
            moved = dict(theta)
            for i, si in zip(idx, step):
                moved[self.ell.names[i]] = theta[self.ell.names[i]] - float(si)
            if not all(c.inside(moved[self.ell.names[i]]) for i, c in zip(idx, self.coords)):
                break
            theta = moved
        if not gain <= 1e-7:
            return None
        z = np.array([c.z(theta[self.ell.names[i]]) for i, c in zip(idx, self.coords)])
        value = self.ell.value(theta)
        if not math.isfinite(value):
            return None
        return value, z


def profile_intervals(
    d: Any,
    compiled: Any,
    x: Any,
    estimates: Mapping[str, float],
    stderr: Mapping[str, float | None],
    constants: Mapping[str, float] | None = None,
    *,
    cutoff: float = CHI2_1_95,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """The 95% profile-likelihood interval of each regular parameter: ``({name: (lo, hi)}, warnings)``.

    Parameters
    ----------
    d : Derivation
        The model's derivation (scalar observations, no link, no prior).
    compiled : CompiledModel
        ``d.compile()``.
    x : array_like
        The data the model was fitted to.
    estimates, stderr : mapping
        The MLE of every parameter and the Wald standard errors (which set
        the step of the outward search; a missing one is replaced by a step
        of 0.5 on the parameter's coordinate).
    constants : mapping, optional
        Values of the model's constants.
    cutoff : float
        The cut-off of ``2 (l_hat - l_p)``, by default :data:`CHI2_1_95`.

    Returns
    -------
    (dict, list of str)
        An end is the edge of the domain (``0``, ``1``, ``inf``) where the
        profile never reaches the cut-off before it, ``nan`` where it could
        not be computed; the warnings say which.

    Raises
    ------
    SpecError
        See :func:`check_profile_supported`.

    Notes
    -----
    The log-likelihood in the statistics is checked against the log-density
    summed over the data, and its exact gradient against a difference; where
    the statistics lose digits, sums over the data are used instead; where
    the check still fails, every end is ``nan``, with a warning.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> d = symmle.derive("exponential")
    >>> x = np.array([0.5, 1.5, 1.0, 2.0])
    >>> est = {"lam": 4 / 5.0}
    >>> found, notes = profile_intervals(d, d.compile(), x, est, {"lam": 0.4})
    >>> [round(v, 4) for v in found["lam"]], notes   # 2 (l(0.8) - l(lam)) = 3.841, l = 4 log lam - 5 lam
    ([0.2484, 1.8585], [])
    """
    check_profile_supported(d)
    constants = {k: float(v) for k, v in (constants or {}).items()}
    x = np.asarray(x, dtype=float).reshape(-1) if not isinstance(x, np.memmap) else x
    ell = _LogLikelihood(d, compiled, x, constants)
    bad = _check(ell, compiled, x, dict(estimates), constants)
    if bad:  # the statistics lose digits on these data (or the formula is wrong): sums over the data
        ell = _LogLikelihood(d, compiled, x, constants, pointwise=True)
        bad = _check(ell, compiled, x, dict(estimates), constants)
    if bad:
        nan = (math.nan, math.nan)
        return {name: nan for name in ell.names}, [f"no profile-likelihood intervals: {bad}"]
    domains = dict(compiled.plan["domains"])
    theta_hat = {k: float(v) for k, v in estimates.items()}
    l_hat = ell.value(theta_hat)
    tol = 1e-7 * (abs(l_hat) + 1.0)  # what the log-likelihood's rounding may move; the cut-off is 1.92
    out: dict[str, tuple[float, float]] = {}
    notes: list[str] = []
    for j, name in enumerate(ell.names):
        coord = _Coordinate(domains[name])
        profile = _Profiler(ell, j, theta_hat, domains)
        t_hat = theta_hat[name]
        z_hat = coord.z(t_hat)
        d1 = abs(coord.derivatives(t_hat)[0])
        se = stderr.get(name)
        step = se / d1 if se is not None and math.isfinite(se) and se > 0 and d1 > 0 else 0.5
        if not (math.isfinite(step) and step > 0):
            step = 0.5

        def excess(z: float, profile=profile, coord=coord, name=name) -> float:
            lp = profile(coord.theta(z))
            if lp > l_hat + tol:
                raise _NoProfile(
                    f"the profile log-likelihood at {name} = {coord.theta(z):.6g} exceeds its value at the "
                    f"estimate ({lp:.10g} > {l_hat:.10g}): either the fit is not the global maximum or the "
                    "log-likelihood cannot be evaluated accurately there"
                )
            return 2.0 * (l_hat - lp) - cutoff

        def verify(profile=profile) -> str:
            """An empty string if the log-likelihood at the last point agrees with the direct sum."""
            direct = compiled.log_likelihood(x, **{**constants, **profile.last})
            mine = ell.value(profile.last)
            if math.isfinite(direct) and abs(direct - mine) <= tol:
                return ""
            where = ", ".join(f"{k} = {v:.10g}" for k, v in profile.last.items() if k in ell.names)
            return (
                f"at {where} the log-likelihood in the statistics ({mine:.10g}) and the log-density summed "
                f"over the data ({direct:.10g}) disagree: it cannot be evaluated accurately there"
            )

        ends = []
        for sign, side in ((-1.0, "lower"), (1.0, "upper")):
            profile.start = profile.mle_z.copy()
            end, note = _end(excess, verify, coord, z_hat, sign, step, name, side, cutoff)
            ends.append(end)
            if note:
                notes.append(note)
        out[name] = (ends[0], ends[1])
    return out, notes


def _end(
    excess: Callable[[float], float],
    verify: Callable[[], str],
    coord: _Coordinate,
    z_hat: float,
    sign: float,
    step: float,
    name: str,
    side: str,
    cutoff: float,
) -> tuple[float, str]:
    """One end of the interval: ``(theta, note)``, the note empty unless the end is an edge or unknown."""
    from scipy.optimize import brentq

    edge = coord.lo if sign < 0 else coord.hi
    prev = z_hat

    def unknown(reason: str) -> tuple[float, str]:
        note = f"no {side} end of the profile-likelihood interval of {name}: {reason}"
        if prev != z_hat:
            reached = coord.theta(prev)
            note += f"; the profile is within the cut-off at least to {name} = {reached:.6g}"
        return math.nan, note

    for k in _STEPS:
        z = z_hat + sign * k * step
        t = coord.theta(z)
        if not coord.inside(t):
            break  # the coordinate saturates: the edge of the domain is reached in double precision
        try:
            f = excess(z)
        except _NoProfile as exc:
            return unknown(str(exc))
        bad = verify()
        if bad:
            return unknown(bad)
        if f > 0:
            lo, hi = sorted((prev, z))
            try:
                root = brentq(excess, lo, hi, xtol=1e-12 * (1.0 + abs(z_hat)), rtol=1e-12, maxiter=200)
            except (_NoProfile, ValueError, RuntimeError) as exc:
                return unknown(str(exc))
            try:
                excess(root)  # the nuisance parameters at the end, to check the log-likelihood there
            except _NoProfile as exc:
                return unknown(str(exc))
            bad = verify()
            if bad:
                return math.nan, f"no {side} end of the profile-likelihood interval of {name}: {bad}"
            return coord.theta(root), ""
        prev = z
    half = cutoff / 2
    return edge, (
        f"the {side} end of the profile-likelihood interval of {name} is the edge of its domain "
        f"({name} = {edge:g}): the profile log-likelihood stays within {half:.4g} of its maximum all the way"
    )
