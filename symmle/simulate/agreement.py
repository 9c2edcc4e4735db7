r"""The agreement check: the compiled estimate against an independent optimiser.

On the first ``agree`` replicates of a simulation check, :func:`agreement` holds the compiled
estimate against :func:`scipy.optimize.minimize` (BFGS, analytic gradient) of
:math:`-\sum_i \log f(x_i)` built here straight from the density (not from the derivation), in
unconstrained coordinates, started at the true values.  A wrong formula fails here even when its
bias is too small to see.

A parameter that sets the support (boundary kind) is checked directly instead: the data lie in the
support at the estimate, and moving it by :data:`~symmle.simulate.verdicts.BOUNDARY_STEP`
(relative) either puts data outside the support or lowers the likelihood, in both directions, with
at least one direction infeasible (the estimate sits on the data's edge).  The other parameters are
then optimised with it fixed.  Integer parameters are not cross-checked.

So is a parameter in which the log-likelihood has kinks (``Abs(x - m)``: its estimate is a sample
quantile, :mod:`symmle.symbolic.subgradient`), where a gradient-based optimiser cannot settle: no move of
it by :data:`~symmle.simulate.verdicts.BOUNDARY_STEP` or more, and no observation put in its place,
may raise the likelihood (at an even sample size a whole interval can share the maximum).
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from symmle.simulate.verdicts import AGREE_RTOL, BOUNDARY_STEP

if TYPE_CHECKING:
    from symmle.model.spec import Model
    from symmle.symbolic.derivation import Derivation

__all__ = ["agreement"]


_Map = Callable[[float], float]
_UNCONSTRAINED: dict[str, tuple[_Map, _Map, _Map]] = {
    # domain: (to z, from z, d theta / d z)
    "real": (lambda t: t, lambda z: z, lambda t: 1.0),
    "positive": (math.log, lambda z: math.exp(min(z, 700.0)), lambda t: t),
    "nonnegative": (lambda t: math.log(max(t, 1e-300)), lambda z: math.exp(min(z, 700.0)), lambda t: t),
    "unit": (
        lambda t: math.log(t / (1 - t)),
        lambda z: 1 / (1 + math.exp(-max(min(z, 700.0), -700.0))),
        lambda t: t * (1 - t),
    ),
}


class _DensityLikelihood:
    r""":math:`\sum_i \log f(x_i)` and its gradient, from the density alone.

    ``log f`` is the expanded logarithm of the density (no under- or overflow
    of ``gamma(k + r)`` or ``exp``), or the logarithm of the density itself
    where the expanded form is not finite; the gradient is the derivative of
    the expanded logarithm.  Observations outside the support give
    :math:`-\infty`, so a parameter that sets the support is honoured.
    """

    def __init__(self, model: Model, consts: Mapping[str, float], free: Sequence[str]) -> None:
        import sympy as sp

        from symmle.base.numeric import to_function

        subs = {q.symbol: consts[q.name] for q in model.constants}
        x = model.variable
        syms = list(model.parameter_symbols)
        density = model.density.subs(subs)
        logf = sp.expand_log(sp.log(density), force=True)
        self.model = model
        self.names = [q.name for q in model.parameters]
        self.free = list(free)
        self.direct = to_function([x, *syms], density)
        self.logged = to_function([x, *syms], logf)
        self.grad = [to_function([x, *syms], sp.diff(logf, model.symbols[name])) for name in self.free]
        ends = [sp.sympify(e).subs(subs) for e in model.support]
        self.ends = [to_function(syms, e) for e in ends]
        self.moving = any(e.free_symbols & set(syms) for e in ends)
        self._fixed = None if self.moving else tuple(float(f(*[0.0] * len(syms))) for f in self.ends)
        self._range: tuple[int, float, float] | None = None

    def _args(self, theta: Mapping[str, float]) -> list[float]:
        return [float(theta[k]) for k in self.names]

    def inside(self, x: np.ndarray, theta: Mapping[str, float], rtol: float = 1e-12) -> bool:
        """Whether every observation lies in the support at ``theta`` (to ``rtol``)."""
        if self._range is None or self._range[0] != id(x):
            self._range = (id(x), float(x.min()), float(x.max()))
        _, xmin, xmax = self._range
        lo, hi = self._fixed or tuple(float(f(*self._args(theta))) for f in self.ends)
        if not lo < hi:
            return False
        return xmin >= lo - rtol * abs(lo) and xmax <= hi + rtol * abs(hi)

    def loglik(self, x: np.ndarray, theta: Mapping[str, float]) -> float:
        if not self.inside(x, theta):
            return -math.inf
        args = self._args(theta)
        with np.errstate(all="ignore"):
            # the forced expansion may carry i*pi terms (logs of negative factors): the real part is log f
            v = np.real(np.asarray(self.logged(x, *args))).astype(float) * np.ones_like(x)
            bad = ~np.isfinite(v)
            if bad.any():
                v[bad] = np.log(np.asarray(self.direct(x[bad], *args), dtype=float) * np.ones(int(bad.sum())))
        total = float(np.sum(v))
        return total if math.isfinite(total) else -math.inf

    def gradient(self, x: np.ndarray, theta: Mapping[str, float]) -> np.ndarray:
        args = self._args(theta)
        with np.errstate(all="ignore"):
            return np.array(
                [float(np.sum(np.asarray(g(x, *args), dtype=float) * np.ones_like(x))) for g in self.grad]
            )


def _optimise(
    lik: _DensityLikelihood,
    x: np.ndarray,
    start: Mapping[str, float],
    fixed: Mapping[str, float],
    spread: Mapping[str, float],
) -> dict[str, float] | None:
    """Maximise the likelihood over ``lik.free`` from ``start``.

    Coordinates are unconstrained by domain (log, logit), then centred at the
    start and divided by ``spread`` (the spread of the estimates in those
    coordinates), so the Hessian of the negative log-likelihood is near the
    identity: BFGS with the analytic gradient, Nelder-Mead first if BFGS
    stalls, then Newton steps on a finite-difference Hessian of the gradient.
    """
    from scipy import optimize

    names = lik.free
    domains = [next(q.domain for q in lik.model.parameters if q.name == k) for k in names]
    maps = [_UNCONSTRAINED[dom] for dom in domains]
    z0 = np.array([mp[0](float(start[k])) for k, mp in zip(names, maps)])
    s = np.array([spread.get(k) or 1.0 for k in names], dtype=float)
    s = np.where(np.isfinite(s) & (s > 0), s, 1.0)

    def theta_of(u: np.ndarray) -> dict[str, float]:
        z = z0 + s * u
        out = dict(fixed)
        out.update({k: mp[1](float(v)) for k, mp, v in zip(names, maps, z)})
        return out

    def f(u: np.ndarray) -> float:
        v = lik.loglik(x, theta_of(u))
        return -v if math.isfinite(v) else 1e300

    def g(u: np.ndarray) -> np.ndarray:
        th = theta_of(u)
        return -lik.gradient(x, th) * np.array([mp[2](th[k]) for k, mp in zip(names, maps)]) * s

    def small(u: np.ndarray) -> bool:
        gu = g(u)
        return bool(np.all(np.isfinite(gu)) and np.max(np.abs(gu)) <= 1e-6)

    u = np.zeros(len(names))
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore")
        if f(u) >= 1e300:
            return None
        u = optimize.minimize(f, u, jac=g, method="BFGS", options={"gtol": 1e-9, "maxiter": 500}).x
        if not small(u):
            u = optimize.minimize(
                f, u, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}
            ).x
            u = optimize.minimize(f, u, jac=g, method="BFGS", options={"gtol": 1e-9, "maxiter": 500}).x
        for _ in range(3):  # Newton polish
            gu = g(u)
            if not np.all(np.isfinite(gu)) or np.max(np.abs(gu)) <= 1e-12:
                break
            h = 1e-5
            hess = np.array([(g(u + h * e) - g(u - h * e)) / (2 * h) for e in np.eye(len(u))])
            try:
                step = np.linalg.solve((hess + hess.T) / 2, gu)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or f(u - step) > f(u) + 1e-9 * abs(f(u)):
                break
            u = u - step
    if not np.all(np.isfinite(u)) or f(u) >= 1e300:
        return None
    return {k: v for k, v in theta_of(u).items() if k in names}


def _boundary_tight(
    lik: _DensityLikelihood, x: np.ndarray, est: Mapping[str, float], name: str, scale: float
) -> bool:
    """The estimate sits on the data's edge: feasible, a small move one way leaves data outside the support,
    and no small move raises the likelihood."""
    ll0 = lik.loglik(x, est)
    if not math.isfinite(ll0):
        return False
    step = BOUNDARY_STEP * max(abs(est[name]), scale, 1e-300)
    infeasible = 0
    for sign in (1.0, -1.0):
        moved = dict(est)
        moved[name] = est[name] + sign * step
        ll = lik.loglik(x, moved)
        if not math.isfinite(ll):
            infeasible += 1
        elif ll > ll0 + 1e-12 * abs(ll0):
            return False
    return infeasible >= 1


def _kink_maximal(
    lik: _DensityLikelihood, x: np.ndarray, est: Mapping[str, float], name: str, scale: float
) -> bool:
    """No move of ``name`` (small steps either way, or onto any observation) raises the likelihood."""
    ll0 = lik.loglik(x, est)
    if not math.isfinite(ll0):
        return False
    size = max(abs(est[name]), scale, 1e-300)
    steps = size * np.array([BOUNDARY_STEP, 1e-3, 0.1])
    candidates = [est[name] + sign * h for h in steps for sign in (1.0, -1.0)]
    candidates += list(np.unique(x)[:: max(1, x.size // 256)])
    for value in candidates:
        if lik.loglik(x, {**est, name: float(value)}) > ll0 + 1e-12 * abs(ll0):
            return False
    return True


def agreement(
    m: Model,
    d: Derivation,
    consts: Mapping[str, float],
    theta: Mapping[str, float],
    est: Mapping[str, np.ndarray],
    ok: np.ndarray,
    rows: np.ndarray | None,
    advance: Callable[[int], None],
) -> dict[str, tuple[float | None, int, bool | None, str]]:
    """Cross-check the compiled estimates of the kept replicates with the independent optimiser.

    Parameters
    ----------
    m : Model
        The model; its density builds the likelihood optimised here.
    d : Derivation
        Says which parameters are of the boundary kind.
    consts, theta : mapping of str to float
        The constants' values and the true values (the optimiser's start).
    est : mapping of str to ndarray
        The compiled estimates of every replicate, in the order of ``rows``.
    ok : ndarray of bool
        The replicates that have an MLE (:func:`symmle.simulate.simulation.valid`).
    rows : ndarray or None
        The data of the replicates to cross-check, one per row.
    advance : callable
        Called with 1 after every row.

    Returns
    -------
    dict of str to tuple
        Per parameter: ``(largest relative difference or None, replicates compared, passed or None,
        note)``; empty without ``rows``.
    """
    if rows is None or rows.shape[0] == 0:
        return {}
    kinds = {k: e.kind for k, e in d.solutions.items()}
    boundary = [q.name for q in m.parameters if kinds.get(q.name) == "boundary"]
    kinked = [p.name for p, _ in d.stationarity.kinks]
    integer = [q.name for q in m.parameters if q.domain in ("integer", "positive_integer")]
    free = [q.name for q in m.parameters if q.name not in (*boundary, *kinked, *integer)]
    lik = _DensityLikelihood(m, consts, free)
    scale = {k: float(np.nanstd(v[ok])) if ok.any() else 0.0 for k, v in est.items()}
    q_domain = {q.name: q.domain for q in m.parameters}
    spread = {k: _spread(est[k][ok], q_domain[k]) for k in free}
    diffs: dict[str, list[float]] = {k: [] for k in free}
    tight: dict[str, list[bool]] = {k: [] for k in boundary}
    maximal: dict[str, list[bool]] = {k: [] for k in kinked}
    for r in range(rows.shape[0]):
        advance(1)
        if not ok[r]:
            continue
        x = rows[r]
        row_est = {k: float(est[k][r]) for k in est}
        for b in boundary:
            tight[b].append(_boundary_tight(lik, x, row_est, b, scale[b]))
        for k in kinked:
            maximal[k].append(_kink_maximal(lik, x, row_est, k, scale[k]))
        if not free:
            continue
        fixed = {k: row_est[k] for k in (*boundary, *kinked, *integer)}
        start = {k: theta[k] for k in free}
        found = _optimise(lik, x, start, fixed, spread)
        rel = _rel(found, row_est, free, scale)
        if rel is not None and max(rel.values()) > AGREE_RTOL and found is not None:
            # a start at the truth may end in another local optimum: if the compiled estimate is
            # the better point, restart from it (perturbed), and keep whichever point is better
            ll_c = lik.loglik(x, row_est)
            ll_o = lik.loglik(x, {**fixed, **found})
            if ll_c > ll_o:
                moved = {k: _move(row_est[k], q_domain[k], spread[k]) for k in free}
                again = _optimise(lik, x, moved, fixed, spread)
                if again is not None and lik.loglik(x, {**fixed, **again}) >= ll_o:
                    found = again
                    rel = _rel(found, row_est, free, scale)
        for k in free:
            diffs[k].append(math.inf if rel is None else rel[k])
    out: dict[str, tuple[float | None, int, bool | None, str]] = {}
    for k, v in diffs.items():
        if not v:
            out[k] = (None, 0, None, "no replicate with an MLE")
            continue
        worst = max(v)
        note = "" if math.isfinite(worst) else "the independent optimiser found no maximum"
        out[k] = (worst if math.isfinite(worst) else None, len(v), worst <= AGREE_RTOL, note)
    for k, t in tight.items():
        bad = t.count(False)
        if not t:
            out[k] = (None, 0, None, "no replicate with an MLE")
        elif bad:
            out[k] = (
                None,
                len(t),
                False,
                f"the estimate is not on the data's edge in {bad} of {len(t)} replicates",
            )
        else:
            out[k] = (None, len(t), True, "on the data's edge in every replicate")
    for k, t in maximal.items():
        bad = t.count(False)
        if not t:
            out[k] = (None, 0, None, "no replicate with an MLE")
        else:
            out[k] = (
                None,
                len(t),
                not bad,
                f"a move raises the likelihood in {bad} of {len(t)} replicates"
                if bad
                else "no move raises the likelihood in any replicate",
            )
    for k in integer:
        out.setdefault(k, (None, 0, None, "integer parameter: not cross-checked"))
    return out


def _spread(values: np.ndarray, domain: str) -> float:
    """Standard deviation of estimates in the optimiser's unconstrained coordinate."""
    to_z = _UNCONSTRAINED[domain][0]
    with np.errstate(all="ignore"):
        z = np.array([to_z(float(v)) for v in values[:1000]]) if values.size else np.array([])
    z = z[np.isfinite(z)]
    return float(np.std(z)) if z.size > 1 else 1.0


def _move(value: float, domain: str, spread: float) -> float:
    """``value`` moved by one spread in the unconstrained coordinate (a start away from it)."""
    to_z, from_z, _ = _UNCONSTRAINED[domain]
    return from_z(to_z(value) + (spread or 1.0))


def _rel(
    found: Mapping[str, float] | None,
    est: Mapping[str, float],
    names: Sequence[str],
    scale: Mapping[str, float],
) -> dict[str, float] | None:
    if found is None:
        return None
    out = {}
    for k in names:
        a, b = est[k], found[k]
        out[k] = abs(a - b) / max(abs(a), abs(b), scale.get(k, 0.0), 1e-300)
    return out
