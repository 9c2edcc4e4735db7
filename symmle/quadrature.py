"""Numerical integration and summation over a model's support.

These are the independent numerical checks behind symmle's symbolic
results: normalisation of a density, expectations behind the Fisher
information.  Functions here take already-compiled NumPy callables of the
model variable, so they never see SymPy objects.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy import integrate

__all__ = ["integrate_support", "sum_support", "interior_points"]

#: Largest number of terms summed for a discrete model with infinite support.
MAX_TERMS = 2_000_000


def integrate_support(fn: Callable[[float], float], lo: float, hi: float) -> tuple[float, float]:
    """Integrate ``fn`` over ``(lo, hi)``, either end possibly infinite.

    The range is split at a few interior points so that a density with its
    mass far from the origin, or a peak near an end, is not missed.

    Returns
    -------
    (value, abserr) : tuple of float
    """

    def safe(t: float) -> float:
        v = float(fn(t))
        return v if math.isfinite(v) else 0.0

    cuts = [lo, *[p for p in interior_points(lo, hi, 9) if lo < p < hi], hi]
    total, err = 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in zip(cuts[:-1], cuts[1:]):
            v, e = integrate.quad(safe, a, b, limit=200, epsabs=1e-13, epsrel=1e-11)
            total += v
            err += e
    return total, err


def sum_support(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, *, rtol: float = 1e-15) -> tuple[float, bool]:
    """Sum ``fn(k)`` over the integers ``lo..hi`` (``hi`` may be infinite).

    ``fn`` must accept an integer array.  For an infinite range the sum
    stops once a block of terms adds less than ``rtol`` of the total.

    Returns
    -------
    (value, converged) : tuple
    """
    lo_i = int(lo)
    if math.isfinite(hi):
        ks = np.arange(lo_i, int(hi) + 1, dtype=float)
        return float(np.sum(_finite(fn(ks)))), True
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
