"""Numerical integration and summation over a model's support.

These are the independent numerical checks behind symmle's symbolic
results: normalisation of a density, expectations behind the Fisher
information.  Functions here take already-compiled NumPy callables of the
model variable, so they never see SymPy objects.

The module is one concept, somewhat over 600 lines: integrals and sums
over a support share the way they find where the mass lies (probes at
every scale, bulks refined from the log-density), and keeping them side
by side keeps the two searches alike.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import numpy as np
from numpy.polynomial import chebyshev as C
from scipy import integrate, optimize, special

__all__ = [
    "integrate_support",
    "mass_cuts",
    "sum_support",
    "integer_argmax",
    "panel_rule",
    "panel_nodes",
    "probe_points",
    "interior_points",
]

#: Largest number of terms summed for a discrete model with infinite support.
MAX_TERMS = 2_000_000
#: A finite range of at most this many terms is summed term by term.
DIRECT_TERMS = 4096
#: Terms summed one by one on each side of the bulk of a longer range before panels take over.
DIRECT_BUDGET = 1 << 18
#: Longest block of terms evaluated at once (bounded memory).
BLOCK = 1 << 16
#: Narrowest panel summed by the panel rule; its degree.
PANEL_MIN = 1 << 12
PANEL_DEGREE = 32
#: Largest error estimate of the panel sums, relative to the total, for a converged sum.
PANEL_RTOL = 1e-10
#: Most bulks (local maxima of the log-weight among the probes) summed around.
MAX_BULKS = 16


def integrate_support(
    fn: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    *,
    log_weight: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, float]:
    """Integrate ``fn`` over ``(lo, hi)``, either end possibly infinite.

    The integral follows the integrand's own location and scale, whatever
    its units: the range is cut where its mass lies (:func:`mass_cuts`),
    and each piece goes to :func:`scipy.integrate.quad`.  A density with
    standard deviation ``1e6``, one centred at ``1e6``, or one whose mass
    lies in ``[0, 1e-7]`` of a support ``[0, 9.2e18]`` is integrated as
    well as a standard one.

    Parameters
    ----------
    fn : callable
        The integrand; vectorised over an array if it can be (a scalar
        function is evaluated point by point).
    lo, hi : float
        The range.
    log_weight : callable, optional
        A log-density whose bulk is that of ``fn`` (``log f`` for an
        integrand ``h*f``): it locates the mass where ``fn`` underflows to 0.
        Without it, ``log|fn|`` is used.

    Returns
    -------
    (value, abserr) : tuple of float

    Examples
    --------
    >>> s = 1e6   # a normal density in units a million times too small
    >>> f = lambda x: np.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi))
    >>> round(integrate_support(f, -math.inf, math.inf)[0], 10)
    1.0
    """
    vec = _vectorised(fn)

    def logw(t: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            if log_weight is not None:
                w = np.real(np.asarray(log_weight(t))) * np.ones(np.shape(t))
            else:
                w = np.log(np.abs(np.asarray(vec(t), dtype=float)))
        return np.where(np.isnan(w), -np.inf, w)

    def safe(t: float) -> float:
        with np.errstate(all="ignore"):
            try:
                v = float(fn(t))
            except (TypeError, ValueError):  # only vectorised
                v = float(np.asarray(vec(np.array([t])), dtype=float).reshape(-1)[0])
        return v if math.isfinite(v) else 0.0

    cuts, log_mass = mass_cuts(logw, lo, hi)
    # pieces holding a negligible part of the mass are not refined to their own relative precision
    tol = max(1e-14 * math.exp(min(log_mass, 700.0)), 1e-300)
    total, err = 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in zip(cuts[:-1], cuts[1:]):
            v, e = integrate.quad(safe, a, b, limit=200, epsabs=tol, epsrel=1e-11)
            total += v
            err += e
    return total, err


def _vectorised(fn: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """``fn`` over arrays: as it is if it maps an array to an array of its shape, else point by point."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            trial = np.asarray(fn(np.array([0.5, 1.5])), dtype=float)
            if trial.shape == (2,):
                return lambda t: (
                    np.asarray(fn(np.asarray(t, dtype=float)), dtype=float) * np.ones(np.shape(t))
                )
        except Exception:  # a scalar function (float() of an array, math.log of one)
            pass

    def one(t: float) -> float:
        try:
            return float(fn(float(t)))
        except (ArithmeticError, TypeError, ValueError):  # math.log(0), a complex value: no weight there
            return math.nan

    scalar = np.vectorize(one, otypes=[float])
    return lambda t: scalar(np.asarray(t, dtype=float))


def mass_cuts(logw: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> tuple[list[float], float]:
    """Where to cut ``(lo, hi)`` so that quadrature sees the mass of ``exp(logw)``, and the mass's rough log.

    The log-weight is probed at every scale around a few anchors (the
    finite ends, 0): points at half-decade distances from ``1e-300`` to
    the whole range.  Its local maxima among the probes are the bulks;
    each is refined (:func:`_refine`) and becomes an anchor in turn, so
    that a bulk narrow for its location (width 1e-3 at 1e6) is resolved.
    The cuts are then the modes; a ladder of distances around each mode
    (its scale times powers of 4, out to where the weight has dropped by
    ``e**DROP``); the probes where a rough cumulative mass crosses
    :data:`LEVELS`; and, where the mass is not negligible, a probe
    wherever the log-weight has changed by more than :data:`SPREAD` since
    the last cut (a heavy tail ``x**-1.01`` is cut every decade or two,
    never integrated across twelve).  A bulk narrower than the probes'
    spacing far from every anchor can still be missed.

    Returns
    -------
    (cuts, log_mass) : tuple
        The cuts, ascending, ends included, and the log of a rough
        estimate of the total mass (``-inf`` if the weight is zero
        wherever probed).

    Examples
    --------
    >>> cuts, log_mass = mass_cuts(lambda t: -0.5 * ((t - 1e6) / 1e-3) ** 2, -math.inf, math.inf)
    >>> inner = [c for c in cuts if abs(c - 1e6) < 0.01]   # cut where the mass is
    >>> len(inner) > 4, 0.5 < math.exp(log_mass) / (1e-3 * math.sqrt(2 * math.pi)) < 2
    (True, True)
    """

    def weight(t: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            w = np.asarray(logw(np.asarray(t, dtype=float)), dtype=float) * np.ones(np.shape(t))
        return np.where(np.isnan(w), -np.inf, w)

    anchors = [a for a in (lo, hi) if math.isfinite(a)] + ([0.0] if lo < 0 < hi else [])
    modes: list[float] = []
    for _ in range(MAX_ROUNDS):  # each round probes around the last round's modes, and refines them
        probes = _scale_probes([*anchors, *modes], lo, hi)
        modes = _peaks(weight, probes, weight(probes))
    required = {*modes}
    probes = _scale_probes([*anchors, *modes], lo, hi)
    w = weight(probes)
    if not np.any(np.isfinite(w)):
        return [lo, hi], -math.inf
    top = float(np.max(w))
    for m in modes:
        required.update(_ladder(weight, m, float(weight(np.array([m]))[0]), top, lo, hi))
    extra = np.array(sorted(t for t in required if lo < t < hi), dtype=float)
    points = np.union1d(probes, extra)
    w = weight(points)
    logmass = _gap_masses(points, w)
    peak = float(np.max(logmass))
    if not math.isfinite(peak):
        return [lo, *extra.tolist(), hi], -math.inf
    mass = np.exp(logmass - peak)
    cum = np.cumsum(mass)
    total = float(cum[-1])
    for level in LEVELS:  # the gaps where the cumulative mass from either end crosses the level
        required.add(float(points[min(int(np.searchsorted(cum, level * total)), mass.size - 1) + 1]))
        required.add(float(points[min(int(np.searchsorted(cum, (1 - level) * total)), mass.size - 1)]))
    cuts = [lo]
    start = w[0]  # the log-weight where the current piece starts
    for k, (t, wt) in enumerate(zip(points.tolist(), w.tolist())):
        significant = k > 0 and mass[k - 1] > 1e-15 * total
        if t in required or (significant and not abs(wt - start) <= SPREAD):  # (nan: into or out of zero)
            cuts.append(t)
            start = wt
    return sorted({*cuts, hi}), float(peak + math.log(total))


#: Distances of the probes around an anchor (half decades), and of the search for a mode's scale (eighths).
_HALVES = 10.0 ** (np.arange(-600, 617) / 2.0)
_EIGHTHS = 10.0 ** (np.arange(-2400, 2465) / 8.0)
#: Rounds of probing around the modes found (a mode of width 1e-3 at 1e6 needs two).
MAX_ROUNDS = 3
#: Log-levels (base e) below the top of the weight beyond which a mode's ladder of cuts stops.
DROP = 40.0
#: Largest change of the log-weight across a piece that holds mass (between probes).
SPREAD = 4.0
#: Levels of the rough cumulative mass (and of its complement) where the range is cut.
LEVELS = (1e-8, 1e-4, 0.01, 0.1, 0.3, 0.5)


def _scale_probes(anchors: list[float], lo: float, hi: float) -> np.ndarray:
    """Points at half-decade distances (``1e-300`` up) on both sides of each anchor, inside ``(lo, hi)``."""
    parts = [np.asarray(anchors, dtype=float)]
    with np.errstate(over="ignore", invalid="ignore"):
        for a in anchors:
            parts += [a + _HALVES, a - _HALVES]
    ks = np.unique(np.concatenate(parts))
    return ks[np.isfinite(ks) & (ks > lo) & (ks < hi)]


def _peaks(weight, probes: np.ndarray, w: np.ndarray) -> list[float]:
    """The local maxima of the log-weight among the probes, each refined, largest first (at most MAX_BULKS).

    A maximum counts only if the weight dips by a factor ``e`` between it
    and every larger one kept: rounding noise on the flat top of a bulk,
    probed at offsets of 1e-16, makes no bulks of its own.
    """
    if not probes.size or not np.any(np.isfinite(w)):
        return []
    padded = np.concatenate([[-np.inf], w, [-np.inf]])
    candidates = np.flatnonzero((w > padded[:-2]) & (w >= padded[2:]) & np.isfinite(w))
    order: list[int] = []
    for i in [int(np.argmax(w)), *candidates[np.argsort(-w[candidates], kind="stable")].tolist()]:
        if all(np.min(w[min(i, j) : max(i, j) + 1]) < w[i] - 1.0 for j in order):
            order.append(i)
            if len(order) == MAX_BULKS:
                break
    out = []
    for i in order:
        a = probes[i - 1] if i > 0 else probes[i]
        b = probes[i + 1] if i + 1 < probes.size else probes[i]
        out.append(_refine(weight, float(probes[i]), float(w[i]), float(a), float(b)))
    return list(dict.fromkeys(out))


def _refine(weight, p: float, wp: float, a: float, b: float) -> float:
    """The maximum of the log-weight in ``[a, b]`` near the probe ``p`` (Brent on the offset from ``p``).

    Searching the offset ``u = t - p`` rather than ``t`` keeps the search's
    relative tolerance relative to the bracket, not to ``|p|`` (a mode of
    width 1e-3 at 1e6 is found once the bracket is that narrow).
    """

    def neg(u: float) -> float:
        v = float(weight(np.array([p + u]))[0])
        return -v if math.isfinite(v) else 1e308

    if not a < b:
        return p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = optimize.minimize_scalar(
            neg, bounds=(a - p, b - p), method="bounded", options={"xatol": 1e-300}
        )
    t = p + float(res.x)
    return t if -res.fun > wp else p


def _ladder(weight, m: float, wm: float, top: float, lo: float, hi: float) -> list[float]:
    """Cuts at ``m +- s 4**j`` on each side of the mode ``m``, ``s`` where the weight first drops by 1.

    A side stops at the range's end or once the weight is ``e**DROP``
    below ``top`` (and below the mode by as much); at most 30 steps.
    """
    if not math.isfinite(wm):
        return []
    out = []
    for sign in (1.0, -1.0):
        end = hi if sign > 0 else lo
        with np.errstate(over="ignore", invalid="ignore"):
            ts = m + sign * _EIGHTHS
        ts = ts[np.isfinite(ts) & ((ts - end) * sign < 0) & (ts != m)]
        if not ts.size:
            continue
        first = np.flatnonzero(wm - weight(ts) >= 1.0)
        s = abs(float(ts[first[0] if first.size else -1]) - m)
        for j in range(30):
            t = m + sign * s * 4.0**j
            if not (math.isfinite(t) and (t - end) * sign < 0):
                break
            out.append(t)
            wt = float(weight(np.array([t]))[0])
            if wt < top - DROP and wt < wm - DROP:
                break
    return out


def _gap_masses(points: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rough log-mass of each gap between consecutive points: the weight taken as an exponential across it."""
    a, b = w[:-1], w[1:]
    hi_w = np.maximum(a, b)
    with np.errstate(all="ignore"):
        delta = np.abs(a - b)
        # log of width * (e**a - e**b) / (a - b), exact for an exponential between the points
        shape = np.where(delta > 1e-12, np.log(-np.expm1(-delta)) - np.log(delta), 0.0)
        logmass = np.log(np.diff(points)) + hi_w + np.where(np.isfinite(delta), shape, 0.0)
    return np.where(np.isfinite(hi_w) & ~np.isnan(logmass), logmass, -np.inf)


def sum_support(
    fn: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    *,
    rtol: float = 1e-15,
    log_weight: Callable[[np.ndarray], np.ndarray] | None = None,
    direct: int = DIRECT_BUDGET,
) -> tuple[float, bool]:
    """Sum ``fn(k)`` over the integers ``lo..hi`` (``hi`` may be infinite).

    ``fn`` must accept an integer array (of floats).  A finite range of at
    most :data:`DIRECT_TERMS` terms is summed term by term.  A longer one is
    never materialised: the sum is taken where the mass is (see
    :func:`_march`), in bounded memory.  For an infinite range whose terms
    are largest near ``lo``, the sum stops once a block of terms adds less
    than ``rtol`` of the total, with a power-law tail added past
    :data:`MAX_TERMS` terms.

    Parameters
    ----------
    fn : callable
        The terms, vectorised over an array of integers.
    lo, hi : float
        The range; ``lo`` finite.
    rtol : float, optional
        Relative size of the mass that may be neglected in a tail.
    log_weight : callable, optional
        A log-density whose bulk is that of ``fn`` (``log f`` for terms
        ``h*f``): it locates the bulk where ``fn`` underflows to 0.  Without
        it, ``log|fn|`` is used.
    direct : int, optional
        Terms summed one by one on each side of a bulk before panels take over.

    Returns
    -------
    (value, converged) : tuple
        ``converged`` is false if the neglected tails or the panel sums
        could not be bounded: the value is then not to be trusted.

    Examples
    --------
    >>> round(sum_support(lambda k: 0.5**k, 1, math.inf)[0], 12)
    1.0
    >>> n = 10**9   # a flat pmf on 0..n: summed by panels, never as an array of n terms
    >>> total, ok = sum_support(lambda k: np.full(np.shape(k), 1.0 / (n + 1)), 0, n)
    >>> ok and abs(total - 1) < 1e-9
    True
    """
    lo_i = int(lo)
    if math.isfinite(hi) and int(hi) - lo_i < DIRECT_TERMS:
        ks = np.arange(lo_i, int(hi) + 1, dtype=float)
        return float(np.sum(_finite(fn(ks)))), True
    end = int(hi) if math.isfinite(hi) else None
    probes = probe_points(lo_i, end)
    modes = _bulks(fn, log_weight, probes)
    if end is None and modes and all(m - lo_i < 1024 for m in modes):
        total, ok = _from_lo(fn, lo_i, rtol)  # (as it always was) no bulk away from lo: blocks from lo
        if ok:
            return total, ok
        # not settled in MAX_TERMS terms, nor a power law: a slow decay (a geometric ratio 1 - 1e-8)
        # is summed by panels of doubling width from lo
        return _march(fn, lo_i, end, [lo_i], rtol, direct)
    if not modes:  # zero (or not a number) wherever probed: a narrow spike cannot be ruled out
        return 0.0, False
    return _march(fn, lo_i, end, modes, rtol, direct)


def _from_lo(fn: Callable[[np.ndarray], np.ndarray], lo_i: int, rtol: float) -> tuple[float, bool]:
    """An infinite range whose terms are largest near ``lo``: blocks from ``lo`` on, then a power-law tail."""
    total = 0.0
    start, block = lo_i, 1024
    while start - lo_i < MAX_TERMS:
        ks = np.arange(start, start + block, dtype=float)
        part = float(np.sum(_finite(fn(ks))))
        total += part
        if start - lo_i > 64 and abs(part) <= rtol * max(abs(total), 1e-300):
            return total, True
        start += block
        block = min(block * 2, 1 << 18)
    # not converged within MAX_TERMS: a power-law tail t_k ~ C k**-s (s > 1)
    # sums to about int_{K-1/2}^oo C k**-s dk from K on, to O(t_K / K)
    tail = _power_tail(fn, start)
    if tail is not None and tail <= 1e-3 * max(abs(total), 1e-300):
        return total + tail, True
    return total, False


def probe_points(lo: int, hi: int | None) -> np.ndarray:
    """About 1400 integers spread over ``lo..hi`` (``None``: no upper end), ascending.

    Geometric from either end (offsets 0 to the whole span), and an even
    grid of 1025 points for a finite range.

    Examples
    --------
    >>> ks = probe_points(0, 10**9)
    >>> int(ks[0]), int(ks[-1]), ks.size < 1500
    (0, 1000000000, True)
    """
    span = (hi - lo) if hi is not None else 2**52
    offsets = np.unique(np.floor(np.geomspace(1.0, float(span) + 1, 200)) - 1)
    parts = [lo + offsets]
    if hi is not None:
        parts += [hi - offsets, np.floor(np.linspace(lo, hi, 1025))]
    ks = np.unique(np.concatenate(parts))
    return ks[(ks >= lo) & (ks <= lo + span)]


def _bulks(fn, log_weight, probes: np.ndarray) -> list[int]:
    """Where the terms may have their bulks, largest first: local maxima of the log-weight among the probes.

    Each is refined by a ternary search on the log-weight (taken unimodal
    between the probe's neighbours).  At most :data:`MAX_BULKS`; none if
    the weight is zero everywhere probed.
    """

    def weight(ks: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            if log_weight is not None:
                w = np.real(np.asarray(log_weight(ks))) * np.ones(ks.shape)
            else:
                w = np.log(np.abs(np.asarray(fn(ks), dtype=float) * np.ones(ks.shape)))
        return np.where(np.isnan(w), -np.inf, w)

    w = weight(probes)
    padded = np.concatenate([[-np.inf], w, [-np.inf]])
    peaks = np.flatnonzero((w > padded[:-2]) & (w > padded[2:]) & np.isfinite(w))
    top = int(np.argmax(w))
    if not np.isfinite(w[top]):
        return []
    order = [top, *(i for i in peaks[np.argsort(-w[peaks], kind="stable")] if i != top)][:MAX_BULKS]
    found: dict[int, float] = {}
    for i in order:
        k, wj = integer_argmax(weight, probes[max(i - 1, 0)], probes[min(i + 1, probes.size - 1)])
        k, wj = (int(k), wj) if wj > w[i] else (int(probes[i]), float(w[i]))
        found[k] = max(wj, found.get(k, -np.inf))
    return sorted(found, key=lambda k: -found[k])


def integer_argmax(fn: Callable[[np.ndarray], np.ndarray], a: float, b: float) -> tuple[float, float]:
    """``(k, fn(k))`` for the integer ``k`` in ``[a, b]`` where ``fn`` is largest.

    A ternary search, so ``fn`` is taken to be unimodal between ``a`` and ``b``.
    """
    while b - a > 8:
        m1, m2 = a + (b - a) // 3, b - (b - a) // 3
        f1, f2 = fn(np.array([m1, m2]))
        if f1 < f2:
            a = m1
        else:
            b = m2
    ks = np.arange(a, b + 1)
    values = fn(ks)
    j = int(np.argmax(values))
    return float(ks[j]), float(values[j])


def _march(fn, lo: int, hi: int | None, modes: list[int], rtol: float, budget: int) -> tuple[float, bool]:
    """Sum outwards from each bulk's mode, on both sides, where the mass is.

    Each side is summed in blocks of doubling length, term by term for the
    first ``budget`` terms, then by panels of doubling width
    (:func:`panel_rule`).  It stops at the end of the range, at a window
    summed before, at the next bulk's mode (summed from there), or once the
    rest may be neglected: a block adds less than ``rtol`` of the total and
    the terms up to the next stop, taken no larger than at the block's far
    edge, would too.  That the terms do not rise again between probes is
    assumed, not proved: a bump narrower than the probes' spacing is missed.
    An infinite side whose blocks do not settle gets a power-law tail
    (:func:`_power_tail`).

    Returns ``(total, converged)``: not converged if a side neither reached
    its end nor settled, if a side's first panel disagrees with its direct
    sum, or if the panel sums disagree with their nested rule by more than
    :data:`PANEL_RTOL` of the total.
    """
    total, error, settled = 0.0, 0.0, True
    windows: list[tuple[int, int]] = []
    for mode in modes:
        if any(a <= mode <= b for a, b in windows):
            continue
        total += float(_finite(fn(np.array([float(mode)])))[0])
        reached = {}
        for sign in (1, -1):
            # a side stops at the range's end, at a window summed before, or at the next bulk's
            # mode (that bulk is summed from its own mode, not crossed by coarse panels)
            ahead = [m for m in modes if (m - mode) * sign > 0 and not any(a <= m <= b for a, b in windows)]
            if sign > 0:
                wall = min([a - 1 for a, _ in windows if a > mode] + [m - 1 for m in ahead], default=hi)
            else:
                wall = max([b + 1 for _, b in windows if b < mode] + [m + 1 for m in ahead], default=lo)
            start, size, direct, checked = mode + sign, 256, 0, False
            ok = False
            while True:
                if wall is not None and (start - wall) * sign > 0:
                    ok = True  # summed up to the end, a window or the next bulk
                    break
                if wall is None and abs(start - mode) > 2**52:
                    tail = _power_tail(fn, start)
                    ok = tail is not None and tail <= 1e-3 * max(abs(total), 1e-300)
                    total += tail if ok else 0.0
                    break
                left = (wall - start) * sign + 1 if wall is not None else None
                if direct < budget or (left is not None and left < PANEL_MIN):
                    width = size if left is None else min(size, left)
                    t = _finite(fn(start + sign * np.arange(width, dtype=float)))
                    part, edge = float(np.sum(t)), float(np.max(np.abs(t[-8:])))
                    direct += width
                    size = min(size * 2, BLOCK)
                else:
                    size = max(size, PANEL_MIN)
                    width = size if left is None else min(size, left)
                    first = start if sign > 0 else start - width + 1
                    part, err, edge_lo, edge_hi = panel_rule(fn, first, width)
                    edge = edge_hi if sign > 0 else edge_lo
                    if not checked:  # lattice effects (terms alternating, zero on odd k) show here
                        exact = float(np.sum(_finite(fn(first + np.arange(width, dtype=float)))))
                        checked, err = True, max(err, abs(part - exact))
                    error += err
                    size = size * 2
                total += part
                start += sign * width
                rest = (wall - start) * sign + 1 if wall is not None else 1
                small = max(abs(total), 1e-300) * rtol
                if abs(part) <= small and edge * max(rest, 1) <= small:
                    ok = True
                    break
            reached[sign] = start - sign
            settled = settled and ok
        windows.append((reached[-1], reached[1]))
    converged = settled and math.isfinite(total) and error <= PANEL_RTOL * max(abs(total), 1e-300)
    return total, converged


def panel_rule(
    fn, first: int, width: int, values: np.ndarray | None = None
) -> tuple[float, float, float, float]:
    """Sum of ``fn`` over ``first..first+width-1`` (``width >= PANEL_MIN``) from its values at 33 nodes.

    The weights sum exactly every polynomial of degree 32 over the panel's
    integers (:func:`panel_nodes`); the nested 17-node rule (degree 16)
    gives the error estimate.  ``values``, if given, are ``fn`` at
    ``first + panel_nodes(width)`` already.  Returns ``(sum, error,
    |first term|, |last term|)``.

    Examples
    --------
    >>> total, err, _, _ = panel_rule(lambda k: k**2.0, 0, 10**6)   # a polynomial: exact
    >>> abs(total - (10**6 - 1) * 10**6 * (2 * 10**6 - 1) / 6) <= 1e-12 * total, err <= 1e-12 * total
    (True, True)
    """
    nodes, w33, w17 = _panel_weights(width)
    v = _finite(fn(first + nodes) if values is None else values)
    high, low = float(w33 @ v), float(w17 @ v[::2])
    return high, abs(high - low), abs(float(v[0])), abs(float(v[-1]))


def panel_nodes(width: int) -> np.ndarray:
    """The 33 offsets in ``0..width-1`` where :func:`panel_rule` evaluates, ascending (0 to ``width - 1``)."""
    return _panel_weights(width)[0]


@functools.lru_cache(maxsize=64)
def _panel_weights(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer nodes in ``0..width-1`` near Chebyshev points, and the weights of the 33- and 17-node rules.

    The weights match the sums over ``0..width-1`` of the Chebyshev
    polynomials, taken exactly by the Euler-Maclaurin formula (which
    terminates for a polynomial).
    """
    m = PANEL_DEGREE + 1
    nodes = np.round((width - 1) * (1 - np.cos(np.pi * np.arange(m) / PANEL_DEGREE)) / 2)
    s = 2 * nodes / (width - 1) - 1
    c = 2.0 / (width - 1)  # ds/dt
    i = np.arange(m, dtype=float)
    even = (np.arange(m) % 2 == 0).astype(float)
    # Euler-Maclaurin: sum_{t=0}^{w-1} T_i(s(t)) = int_0^{w-1} + (T_i(-1) + T_i(1))/2
    #   + sum_j B_2j/(2j)! c**(2j-1) (T_i^(2j-1)(1) - T_i^(2j-1)(-1)),
    # with int_{-1}^{1} T_i = 2/(1 - i**2) (i even)
    # and T_i^(r)(+-1) = (+-1)**(i+r) prod_{q<r} (i**2 - q**2)/(2q + 1)
    moments = even * (2 / (c * (1 - even * i**2)) + 1)  # (odd i: 0, without dividing by 1 - 1)
    deriv = np.ones(m)  # T_i^(r)(1) for r = 0, 1, ...
    bern = special.bernoulli(PANEL_DEGREE + 2)
    for r in range(PANEL_DEGREE):
        deriv = deriv * (i**2 - r**2) / (2 * r + 1)  # now r + 1
        if r % 2 == 0:  # odd order 2j - 1 = r + 1
            j = (r + 2) // 2
            moments += even * 2 * bern[2 * j] / math.factorial(2 * j) * c ** (2 * j - 1) * deriv
    w33 = np.linalg.solve(C.chebvander(s, PANEL_DEGREE).T, moments)
    half = PANEL_DEGREE // 2
    w17 = np.linalg.solve(C.chebvander(s[::2], half).T, moments[: half + 1])
    return nodes, w33, w17


def _power_tail(fn: Callable[[np.ndarray], np.ndarray], k: int) -> float | None:
    """The sum of ``fn`` beyond ``k`` for a power-law tail, or ``None`` if it does not look like one."""
    ks = np.array([k / 4, k / 2, float(k)])
    with np.errstate(all="ignore"):
        t = np.asarray(fn(ks), dtype=float) * np.ones(3)
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        return None
    s1, s2 = math.log(t[0] / t[1]) / math.log(2), math.log(t[1] / t[2]) / math.log(2)
    if not (s1 > 1.05 and s2 > 1.05 and abs(s1 - s2) <= 0.05 * s2):
        return None  # not a settled power law, or too heavy to sum
    return float(t[2] * k**s2 * (k - 0.5) ** (1 - s2) / (s2 - 1))


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, 0.0)


def interior_points(lo: float, hi: float, n: int) -> list[float]:
    """``n`` points strictly inside ``(lo, hi)``, spread on a natural scale.

    Finite intervals get evenly spaced points; half-lines get points at
    geometrically growing distance from the finite end; the real line gets
    points symmetric about 0.
    """
    fractions = [(j + 1) / (n + 1) for j in range(n)]
    if math.isfinite(lo) and math.isfinite(hi):
        return [lo + (hi - lo) * f for f in fractions]
    # map (0, 1) to (0, oo) with a spread of scales: 0.01 ... 100
    dist = [10 ** (4 * f - 2) for f in fractions]
    if math.isfinite(lo):
        return [lo + d for d in dist]
    if math.isfinite(hi):
        return [hi - d for d in reversed(dist)]
    return [math.tan(math.pi * (f - 0.5)) * 3 for f in fractions]
