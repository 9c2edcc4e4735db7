"""The generic sampler of a discrete model: its pmf tabulated, sampled by a guide table.

The pmf is tabulated on the support's integers, walking out from the mode
until the mass left is negligible (an infinite support is cut where the
remaining mass is below about :data:`TAIL_MASS`; the table must sum to 1
within :data:`MASS_TOLERANCE`, or within its rounding error if that is
larger), then sampled by a guide table
(:class:`scipy.stats.sampling.DiscreteGuideTable`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
from scipy.stats import sampling as unuran

from symmle.base.errors import SymmleError
from symmle.base.quadrature import integer_argmax
from symmle.simulate.target import Density, derived, unuran_message, where

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = ["discrete_sampler", "TAIL_MASS", "MASS_TOLERANCE", "MAX_POINTS"]

#: A discrete support is cut where the mass left beyond a block is below this.
TAIL_MASS = 1e-16
#: A tabulated pmf must sum to 1 within this.
MASS_TOLERANCE = 1e-9
#: Largest number of support points tabulated for a discrete model.
MAX_POINTS = 1 << 23


def discrete_sampler(
    model: Model, point: Mapping[sp.Symbol, float], vals: Mapping[str, float], support: tuple[float, float]
):
    """How to draw from a discrete model at ``vals``: ``(method, raw)``.

    ``method`` names the table (``"guide table over k = 0..57"``);
    ``raw(size, rng)`` draws an array of shape ``size``.

    Raises
    ------
    SymmleError
        If the pmf is negative or not finite, carries mass on more than
        :data:`MAX_POINTS` points, or does not sum to 1.
    """
    lo, hi = support
    f = Density(model, point)
    subject = f"{model.name} at {where(vals)}"

    def pmf(ks: np.ndarray) -> np.ndarray:
        p = f.raw(ks)
        bad = ~np.isfinite(p) | (p < 0)
        if bad.any():
            what = "negative" if np.isfinite(p[bad][0]) else "not finite"
            raise SymmleError(
                f"cannot sample {subject}: the pmf is {what} at {model.variable}={ks[bad][0]:g}"
            )
        return p

    mode = _discrete_mode(f, lo, hi, vals)
    # walk out from the mode in blocks of doubling length: the mass beyond a block whose own
    # mass is below TAIL_MASS is as small, for any tail that decays at least like a power
    left: list[np.ndarray] = []
    right = [pmf(np.array([mode]))]
    count = 1
    for sign, blocks in ((1, right), (-1, left)):
        start, size = mode + sign, 256
        while lo <= start <= hi:
            end = min(start + size - 1, hi) if sign > 0 else max(start - size + 1, lo)
            ks = np.arange(start, end + sign, sign, dtype=float)
            p = pmf(ks)
            blocks.append(p if sign > 0 else p[::-1])
            count += ks.size
            if p.sum() < TAIL_MASS:
                break
            if count > MAX_POINTS:
                raise SymmleError(
                    f"cannot sample {subject}: more than {MAX_POINTS} support points carry mass (the pmf at "
                    f"{model.variable}={end:g} is still {p[-1]:.3g}): the tail is too heavy or the spread "
                    "too wide to tabulate"
                )
            start, size = end + sign, min(size * 2, 1 << 20)
    first = mode - sum(b.size for b in left)
    probs = np.concatenate([*left[::-1], *right])
    total = float(probs.sum())
    tolerance = max(MASS_TOLERANCE, 64 * f.rounding(mode))
    if not abs(total - 1.0) <= tolerance:
        raise SymmleError(
            f"cannot sample {subject}: the pmf sums to {total:.12g} over "
            f"{model.variable}={first:g}..{first + probs.size - 1:g}, "
            f"not 1 within {tolerance:.2g} (is it normalised at these values?)"
        )
    nz = np.flatnonzero(probs > 0)  # drop ends that underflow, so every index the table returns carries mass
    probs = probs[nz[0] : nz[-1] + 1]
    first, last = first + nz[0], first + nz[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            table = unuran.DiscreteGuideTable(probs / probs.sum())
        except (RuntimeError, ValueError) as exc:  # UNURANError is a RuntimeError
            raise SymmleError(f"cannot sample {subject}: guide table: {unuran_message(exc)}") from None

    def raw(size, rng):
        return first + np.asarray(table.rvs(size=size, random_state=rng), dtype=float)

    return f"guide table over {model.variable} = {int(first)}..{int(last)}", raw


def _discrete_mode(f: Density, lo: float, hi: float, vals: Mapping[str, float]) -> float:
    """An integer where the pmf is largest.

    The pmf is tried at ``lo`` plus a geometric grid of offsets and at
    integers near numbers made of the values (``n*p``, ``lam``), then a
    ternary search runs between the best point's neighbours (taking the pmf
    to be unimodal there).
    """
    top = hi if math.isfinite(hi) else lo + 2.0**52
    d = derived(vals)
    d = np.abs(d[np.isfinite(d) & (np.abs(d) < 2.0**52)])
    offsets = np.unique(np.floor(np.geomspace(1.0, 2.0**52, 400))) - 1
    ks = np.concatenate([lo + offsets, np.floor(d), np.ceil(d), lo + np.floor(d)])
    ks = np.unique(ks[(ks >= lo) & (ks <= top)])
    p = f(ks)
    i = int(np.argmax(p))
    if not p[i] > 0:
        raise SymmleError("the pmf is zero everywhere it was evaluated in the support")
    best, p_best = ks[i], p[i]
    k, p_k = integer_argmax(f, ks[max(i - 1, 0)], ks[min(i + 1, ks.size - 1)])
    return k if p_k > p_best else float(best)
