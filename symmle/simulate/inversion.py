"""The generic sampler of a continuous model: numerical inversion of its CDF.

UNU.RAN's PINV (:class:`scipy.stats.sampling.NumericalInversePolynomial`)
interpolates the inverse CDF, integrated from the pdf, to a u-error
``|u - CDF(x)|`` below :data:`U_RESOLUTION`.  PINV works in a coordinate
``y`` where the density is smooth and bounded with exponential tails
(``log(x - lo)`` on a half-line, the logit on an interval,
``asinh((x - c)/s)`` on the real line, around a centre ``c`` found first),
so that a pole at an end (beta or gamma with shape below 1) or a power-law
tail (Pareto, Levy) is an easy case.  If that fails, PINV is tried in ``x``
itself, and last a tabulated CDF in ``y`` inverted by monotone
interpolation; otherwise a :class:`~symmle.base.errors.SymmleError` gives
each reason.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
from scipy import interpolate, optimize
from scipy.special import expit, logit
from scipy.stats import sampling as unuran

from symmle.base.errors import SymmleError
from symmle.simulate.target import Density, derived, unuran_message, where

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = ["continuous_sampler", "U_RESOLUTION", "PINV_CALLS", "PINV_SECONDS"]

#: u-resolution asked of PINV (its maximal error ``|u - CDF(x)|``).
U_RESOLUTION = 1e-10
#: Budget of one PINV set-up: density evaluations (about 0.1 s) and seconds.
PINV_CALLS = 100_000
PINV_SECONDS = 0.4


def continuous_sampler(
    model: Model, point: Mapping[sp.Symbol, float], vals: Mapping[str, float], support: tuple[float, float]
):
    """How to draw from a continuous model at ``vals``: ``(method, raw)``.

    ``method`` names the way (``"PINV in log(x - lo)"``...); ``raw(size, rng)``
    draws an array of shape ``size`` (checked against the support by the
    caller, :class:`symmle.simulate.sampling.ModelSampler`).

    Raises
    ------
    SymmleError
        If no way works, with each one's reason.
    """
    lo, hi = support
    f = Density(model, point)
    xc, scale = _center(f, lo, hi, vals)
    coord = _Coordinate(lo, hi, xc, scale)
    log_g = _log_density_in(coord, f)
    yc = coord.y(xc)

    def pdf_y(y: float) -> float:
        return math.exp(log_g(y))

    if math.isinf(lo) and math.isinf(hi):
        # on the real line no point is special: invert around the centre, so that a narrow
        # peak far from 0 keeps its digits (PINV works with absolute tolerances in x)
        natural = (
            "PINV",
            lambda: _pinv(lambda u: f.at(xc + u), (-math.inf, math.inf), 0.0),
            lambda u: xc + u,
        )
    else:
        natural = ("PINV", lambda: _pinv(f.at, (lo, hi), xc), lambda x: x)
    smooth = (f"PINV in {coord.name}", lambda: _pinv(pdf_y, (-math.inf, math.inf), yc), coord.x)
    # y first: there the density is smooth and bounded with exponential tails.  In x, a pole
    # at an end, a heavy tail, or a peak narrow next to its distance from an end is PINV's hard
    # case, which it may spend minutes on (beta with a = 1e6) beyond the reach of any budget
    attempts = [smooth, natural]
    reasons = []
    for name, build, to_x in attempts:
        gen, why = build()
        if gen is not None:
            return name, _pinv_draws(gen, to_x)
        reasons.append(f"{name}: {why}")
    table, why = _tabulated(log_g, yc)
    if table is not None:
        return f"tabulated CDF in {coord.name}", lambda size, rng: coord.x(table(rng.random(size)))
    reasons.append(f"tabulated CDF in {coord.name}: {why}")
    raise SymmleError(f"cannot build a sampler for {model.name} at {where(vals)}: " + "; ".join(reasons))


def _pinv_draws(gen, to_x):
    def raw(size, rng):
        return to_x(np.asarray(gen.rvs(size=size, random_state=rng), dtype=float))

    return raw


class _Coordinate:
    """A smooth increasing map ``x = T(y)`` from the real line onto ``(lo, hi)``.

    In ``y`` a pole at a finite end (``x**(a-1)``, ``a < 1``) and a power-law
    tail (Pareto, Levy) become exponential tails, which PINV handles well:
    ``y = log(x - lo)`` on a half-line, the logit on an interval, and
    ``y = asinh((x - c)/s)`` on the real line (``c`` the centre, ``s`` the width).
    """

    def __init__(self, lo: float, hi: float, center: float, scale: float) -> None:
        self.lo, self.hi, self.center, self.scale = lo, hi, center, scale
        if math.isfinite(lo) and math.isfinite(hi):
            self.name = "logit((x - lo)/(hi - lo))"
        elif math.isfinite(lo):
            self.name = "log(x - lo)"
        elif math.isfinite(hi):
            self.name = "-log(hi - x)"
        else:
            self.name = "asinh((x - c)/s)"

    def x(self, y: np.ndarray) -> np.ndarray:
        """``T(y)`` for an array (the draws)."""
        lo, hi = self.lo, self.hi
        y = np.asarray(y, dtype=float)
        with np.errstate(all="ignore"):
            if math.isfinite(lo) and math.isfinite(hi):
                w = hi - lo
                return np.where(y <= 0, lo + w * expit(y), hi - w * expit(-y))
            if math.isfinite(lo):
                return lo + np.exp(y)
            if math.isfinite(hi):
                return hi - np.exp(-y)
            return self.center + self.scale * np.sinh(y)

    def x1(self, y: float) -> tuple[float, float]:
        """``(T(y), log T'(y))`` for one float, with ``math`` only."""
        lo, hi = self.lo, self.hi
        a = abs(y)
        if math.isfinite(lo) and math.isfinite(hi):
            e = math.exp(-a)  # expit(-|y|) = e/(1 + e), without overflow
            t = e / (1 + e)
            x = lo + (hi - lo) * t if y <= 0 else hi - (hi - lo) * t
            return x, math.log(hi - lo) - a - 2 * math.log1p(e)
        if a > 709:
            inf = math.copysign(math.inf, y)
            if math.isfinite(lo):
                return (lo + math.exp(y) if y < 0 else inf), y
            if math.isfinite(hi):
                return (hi - math.exp(-y) if y > 0 else inf), -y
            return self.center + self.scale * inf, a
        if math.isfinite(lo):
            return lo + math.exp(y), y
        if math.isfinite(hi):
            return hi - math.exp(-y), -y
        log_jac = math.log(self.scale) + a + math.log1p(math.exp(-2 * a)) - math.log(2)
        return self.center + self.scale * math.sinh(y), log_jac

    def y(self, x: float) -> float:
        """``T^-1(x)``."""
        lo, hi = self.lo, self.hi
        if math.isfinite(lo) and math.isfinite(hi):
            return float(logit((x - lo) / (hi - lo)))
        if math.isfinite(lo):
            return math.log(x - lo)
        if math.isfinite(hi):
            return -math.log(hi - x)
        return math.asinh((x - self.center) / self.scale)


def _log_density_in(coord: _Coordinate, f: Density) -> Callable[[float], float]:
    """``log g(y)``, the log density of ``y``, for one float.

    Near a finite end ``x`` runs out of digits (``1 - x`` is 0 below 1e-16),
    while ``y`` does not: a density with a pole there (a beta with ``b = 0.1``
    has 1 % of its mass within 1e-16 of 1) would lose that mass, and the
    rounding of ``x`` makes ``g`` noisy before that.  So where ``|x - end|``
    falls below ``2**-17 |end|`` (or 1e-300 at an end 0), ``log g`` is
    continued as it is for any power law ``|x - end|**(b-1)`` times a smooth
    factor (linearly, with a correction decaying like ``|x - end|``); the
    draws there round onto the floats next to the end, which is where they
    belong.
    """
    lo, hi = coord.lo, coord.hi

    def raw(y: float) -> float:
        x, log_jac = coord.x1(y)
        if not lo < x < hi:
            return -math.inf
        v = f.at(x)
        return math.log(v) + log_jac if v > 0 else -math.inf

    tails = []  # (side, y at the cut, log g there, limiting slope, correction)
    for side, end in ((1, hi), (-1, lo)):
        if not math.isfinite(end):
            continue
        # rounding x to floats near `end` puts noise of ulp(end)/|x - end| into the density: keep
        # that below 1e-11 (PINV integrates to 1e-10); and stay within 1/1024 of the distance from
        # the end to the centre, so that the peak itself is never extrapolated
        near = max(min(abs(end) * 2.0**-17, abs(coord.center - end) * 2.0**-10), 1e-300)
        a, b = coord.y(coord.center), side * 800.0  # the centre is far from the end; 800 is past it
        if abs(coord.x1(b)[0] - end) > near:
            continue
        for _ in range(100):  # bisection for the y where x comes within `near` of the end
            m = (a + b) / 2
            if abs(coord.x1(m)[0] - end) > near:
                a = m
            else:
                b = m
        # the slope of log g tends to a constant s at the end (a power law), with a correction
        # K*exp(-side*(y - cut)) in proportion to the distance to the end (the other, smooth
        # factors of the density): two finite differences give both, and the continuation is
        # log g(cut) + s*(y - cut) + side*K*(1 - exp(-side*(y - cut)))
        l0, l1, l2 = raw(a), raw(a - side), raw(a - 2 * side)
        d1, d2 = (l0 - l1) * side, (l1 - l2) * side
        e1 = math.e - 1
        k = (d2 - d1) / e1**2
        slope = d1 - k * e1
        if all(map(math.isfinite, (l0, l1, l2))) and slope * side < 0:
            tails.append((side, a, l0, slope, k))
        else:
            tails.append((side, a, -math.inf, 0.0, 0.0))

    def log_g(y: float) -> float:
        for side, cut, value, slope, k in tails:
            t = (y - cut) * side
            if t > 0:
                return value + slope * (y - cut) + side * k * -math.expm1(-t)
        return raw(y)

    return log_g


def _grid(lo: float, hi: float, vals: Mapping[str, float]) -> np.ndarray:
    """Points inside ``(lo, hi)`` spread over scales 1e-13 .. 1e13, plus points derived from the values.

    A density's mass may sit anywhere; its location is often a value, a
    ratio or a product of values (``mu``, ``a/b``), so those are tried too,
    which finds peaks narrower than the grid's spacing.
    """
    t = np.linspace(-30.0, 30.0, 601)
    if math.isfinite(lo) and math.isfinite(hi):
        base = lo + (hi - lo) * expit(t)
    elif math.isfinite(lo):
        base = lo + np.exp(t)
    elif math.isfinite(hi):
        base = hi - np.exp(t)
    else:
        base = np.concatenate([-np.exp(t), [0.0], np.exp(t)])
    d = derived(vals)
    extra = [d, -d]
    for end in (lo, hi):
        if math.isfinite(end):
            extra += [end + d, end - d]
    pts = np.concatenate([base, *extra])
    return np.unique(pts[np.isfinite(pts) & (pts > lo) & (pts < hi)])


def _center(f: Density, lo: float, hi: float, vals: Mapping[str, float]) -> tuple[float, float]:
    """``(x, scale)``: a point of high probability and the width of the mass around it.

    The point maximises the density per unit of ``log(x - lo)`` (of the
    logit on an interval), not the density itself, so that a pole at an
    end, where the density is largest but the mass small, is not chosen.
    """

    def score(x: np.ndarray) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        with np.errstate(all="ignore"):
            s = np.log(f(x))
            if math.isfinite(lo):
                s = s + np.log(x - lo)
            if math.isfinite(hi):
                s = s + np.log(hi - x)
        return np.where(np.isfinite(s), s, -np.inf)

    xs = _grid(lo, hi, vals)
    if xs.size == 0:
        raise SymmleError(f"the support [{lo:g}, {hi:g}] has no room for a sample")
    s = score(xs)
    i = int(np.argmax(s))
    if not np.isfinite(s[i]):
        raise SymmleError("the density is zero (or not finite) everywhere it was evaluated in the support")
    best, top = float(xs[i]), float(s[i])
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, xs.size - 1)]
    if a < b:
        res = optimize.minimize_scalar(
            lambda x: -score(x)[0],
            bounds=(a, b),
            method="bounded",
            options={"xatol": 1e-10 * max(abs(best), 1e-300)},
        )
        if np.isfinite(res.fun) and -res.fun > top:
            best, top = float(res.x), float(-res.fun)
    # width: the nearest distance at which the score falls by 2
    span = max(abs(best), 1.0)
    ds = np.geomspace(1e-14 * span, 1e14 * span, 281)
    drop = (score(np.concatenate([best + ds, best - ds])) < top - 2).reshape(2, -1).any(axis=0)
    scale = float(ds[np.argmax(drop)]) if drop.any() else span
    return best, scale


class _Pdf:
    """The distribution object handed to UNU.RAN: the pdf, on a budget.

    PINV may refine its intervals for minutes on a density it cannot
    handle; an exception from the pdf stops it (though UNU.RAN may spin on
    for a while before it notices: the budget is not a hard time limit).
    """

    def __init__(self, pdf: Callable[[float], float]) -> None:
        self._pdf, self._left = pdf, PINV_CALLS
        self._deadline = time.perf_counter() + PINV_SECONDS

    def pdf(self, x: float) -> float:
        self._left -= 1
        if self._left < 0 or time.perf_counter() > self._deadline:
            raise _OutOfBudget
        return self._pdf(x)


class _OutOfBudget(Exception):
    pass


def _pinv(pdf: Callable[[float], float], domain: tuple[float, float], center: float):
    """A PINV generator, or ``None`` and the reason it could not be set up."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            gen = unuran.NumericalInversePolynomial(
                _Pdf(pdf), domain=domain, center=center, u_resolution=U_RESOLUTION
            )
        except _OutOfBudget:
            return None, (
                f"no inverse to u-error {U_RESOLUTION:g} within {PINV_CALLS} evaluations of "
                f"the density or {PINV_SECONDS:g} s"
            )
        except (RuntimeError, ArithmeticError, ValueError, TypeError) as exc:  # UNURANError is a RuntimeError
            return None, unuran_message(exc)
    # a warning that the inverse may miss the requested accuracy counts as a failure
    serious = [str(w.message) for w in caught if "center moved" not in str(w.message)]
    if serious:
        return None, unuran_message(serious[0])
    return gen, ""


def _tabulated(log_g: Callable[[float], float], yc: float):
    """Inverse CDF in ``y`` from the density tabulated and integrated by Gauss-Legendre.

    Returns ``(inverse, "")``, or ``(None, reason)`` if the table misses
    mass (the density in ``y`` does not decay, or has a gap).
    """
    log_gv = np.vectorize(log_g, otypes=[float])
    top = log_g(yc)
    if not math.isfinite(top):
        return None, "the density is zero at its centre"
    ends = []
    for side in (-1.0, 1.0):  # walk out until the density in y is e**-50 of its top
        step, y = 0.25, yc
        while not (log_g(y) < top - 50 and log_g(y + side * step) < top - 50):
            y += side * step
            step *= 1.5
            if abs(y - yc) > 1e4:
                return None, "the density does not decay in y (tail too heavy)"
        ends.append(y)
    edges = np.linspace(ends[0], ends[1], 4097)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    ys = mid[:, None] + half[:, None] * nodes[None, :]
    g = np.exp(log_gv(ys) - top)
    mass = (g * weights).sum(axis=1) * half
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    # the density integrates to 1: a gap that stopped the walk, or a cut tail, shows here
    total = float(cdf[-1]) * math.exp(top)
    if not abs(total - 1) < 1e-6:
        return None, f"the table holds mass {total:.8g}, not 1 (a gap in the support, or a heavy tail)"
    cdf /= cdf[-1]
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    return interpolate.PchipInterpolator(cdf[keep], edges[keep]), ""
