r"""Goodness-of-fit statistics at fitted parameters, for many data sets at once, and their report.

Continuous models, with :math:`u_i = F(x_{(i)};\hat\theta)` at the sorted data
(:mod:`symmle.numbers.cdf` gives ``F`` and ``S = 1 - F`` separately, so the tails keep their digits):

* Kolmogorov-Smirnov :math:`D = \max_i \max(i/n - u_i,\; u_i - (i-1)/n)`;
* Cramer-von Mises :math:`W^2 = 1/(12n) + \sum_i (u_i - (2i-1)/(2n))^2`;
* Anderson-Darling :math:`A^2 = -n - \frac1n \sum_i (2i-1)\,[\log u_i + \log S(x_{(n+1-i)})]`.

Discrete models, over the values :math:`k` of the support from its lower end to the largest
observation, with :math:`F_n` the empirical and :math:`F` the fitted distribution function and
:math:`p_k` the fitted mass (the discrete forms of Choulakian, Lockhart and Stephens, 1994):

* Kolmogorov-Smirnov :math:`\max_k |F_n(k) - F(k)|`;
* Cramer-von Mises :math:`n \sum_k (F_n(k) - F(k))^2 p_k`;
* Anderson-Darling :math:`n \sum_k (F_n(k) - F(k))^2 p_k / (F(k)(1 - F(k)))` (terms with
  :math:`F(k) = 1` left out);
* chi-square :math:`\sum_c (O_c - E_c)^2 / E_c` over cells of adjacent values pooled until each
  expects at least :data:`MIN_EXPECTED` observations (the last cell holds the whole upper tail);
  its asymptotic p-value has ``cells - 1 - k`` degrees of freedom.

Every statistic is computed for a block of data sets (one per row), each at its own parameters:
that is what the parametric bootstrap (:mod:`symmle.simulate.bootstrap`) runs on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symmle.base.terminal import printable
from symmle.numbers.cdf import DistributionFunction

__all__ = [
    "MIN_EXPECTED",
    "NAMES",
    "GofResult",
    "GofStatistic",
    "pool_cells",
    "statistics",
]

#: Smallest expected count of a chi-square cell.
MIN_EXPECTED = 5.0
#: The statistics, in the order they are reported, with their names for people.
NAMES = {
    "ks": "Kolmogorov-Smirnov",
    "cvm": "Cramer-von Mises",
    "ad": "Anderson-Darling",
    "chi2": "chi-square",
}
_TINY = np.finfo(float).tiny


def continuous_statistics(
    F: np.ndarray, S: np.ndarray, work: np.ndarray | None = None, *, overwrite: bool = False
) -> dict[str, np.ndarray]:
    """KS, CvM and AD of rows of ``u = F(x_(i))`` (and ``S = 1 - F``), each row sorted.

    ``work`` (the shape of ``F``) is a buffer to compute in; with ``overwrite``, ``F`` and ``S``
    may be overwritten (no other memory is then needed).

    Examples
    --------
    >>> u = np.array([[0.1, 0.4, 0.8]])
    >>> {k: round(float(v[0]), 6) for k, v in continuous_statistics(u, 1 - u).items()}
    {'ks': 0.266667, 'cvm': 0.043333, 'ad': 0.278631}
    """
    F = np.atleast_2d(F)
    S = np.atleast_2d(S)
    n = F.shape[1]
    mids, w_low, w_high = _weights(n)
    # t_i = u_i - (2i - 1)/(2n): KS is max(1/(2n) - min t, max t + 1/(2n)), CvM 1/(12n) + sum t^2
    t = np.subtract(F, mids, out=work)
    half = 0.5 / n
    ks = np.maximum(half - np.min(t, axis=1), np.max(t, axis=1) + half)
    cvm = 1.0 / (12 * n) + np.einsum("ij,ij->i", t, t)
    # AD: sum_i (2i - 1) log u_i + (2n + 1 - 2i) log S_i, the same sum as over log S_(n+1-i); a value
    # of 0 takes log(tiny) (rows where one does are summed again, so the others need no clamp)
    total = np.zeros(F.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        for src, w in ((F, w_low), (S, w_high)):
            a = np.log(src, out=src if overwrite else t)
            part = a @ w
            bad = np.isneginf(part)
            if bad.any():
                part[bad] = np.maximum(a[bad], _LOG_TINY) @ w
            total += part
    ad = -n - total / n
    return {"ks": ks, "cvm": cvm, "ad": ad}


_LOG_TINY = float(np.log(np.finfo(float).tiny))


_WEIGHTS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _weights(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(2i - 1)/(2n)``, ``2i - 1`` and ``2n + 1 - 2i`` for ``i = 1..n`` (made once per ``n``)."""
    w = _WEIGHTS.get(n)
    if w is None:
        i = np.arange(1, n + 1, dtype=float)
        w = ((2 * i - 1) / (2 * n), 2 * i - 1, 2 * n + 1 - 2 * i)
        if len(_WEIGHTS) > 16:
            _WEIGHTS.clear()
        _WEIGHTS[n] = w
    return w


def counts_table(rows: np.ndarray, start: int, k: int) -> np.ndarray:
    """Counts of the values ``start .. start + k - 1`` in each row: shape ``(rows, k)``."""
    rows = np.atleast_2d(rows)
    r = rows.shape[0]
    idx = (rows.astype(np.int64) - start) + (np.arange(r, dtype=np.int64) * k)[:, None]
    return np.bincount(idx.ravel(), minlength=r * k).reshape(r, k).astype(float)


def discrete_statistics(counts: np.ndarray, pmf: np.ndarray) -> dict[str, np.ndarray]:
    """KS, CvM and AD of rows of counts and fitted masses over the same values (see the module).

    Examples
    --------
    >>> c = np.array([[3.0, 5.0, 2.0]])
    >>> p = np.array([[0.25, 0.5, 0.2]])     # the rest of the mass lies above the table
    >>> {k: round(float(v[0]), 6) for k, v in discrete_statistics(c, p).items()}
    {'ks': 0.05, 'cvm': 0.02375, 'ad': 0.205263}
    """
    n = counts.sum(axis=1, keepdims=True)
    Fn = np.cumsum(counts, axis=1) / n
    F = np.cumsum(pmf, axis=1)
    S = np.maximum(1.0 - F, 0.0)
    diff2 = (Fn - F) ** 2
    ks = np.max(np.abs(Fn - F), axis=1)
    cvm = n[:, 0] * np.sum(diff2 * pmf, axis=1)
    h = F * S
    with np.errstate(divide="ignore", invalid="ignore"):
        ad = n[:, 0] * np.sum(np.where(h > 1e-300, diff2 * pmf / np.where(h > 1e-300, h, 1.0), 0.0), axis=1)
    return {"ks": ks, "cvm": cvm, "ad": ad}


def pool_cells(expected: np.ndarray, tail: float) -> list[tuple[int, int]]:
    """Cells of adjacent values, each expecting at least :data:`MIN_EXPECTED` observations.

    ``expected[j]`` is the expected count of the ``j``-th value of the table, ``tail`` that of
    every value above it.  Cells are ``(first, last)`` indices into the table; the last cell
    runs on to the end of the support (it takes ``tail``).  A last cell that expects too few
    is merged into the one before.

    Examples
    --------
    >>> pool_cells(np.array([1.0, 2.0, 4.0, 6.0, 3.0, 1.0]), 0.5)
    [(0, 2), (3, 5)]
    """
    cells: list[tuple[int, int]] = []
    acc, first = 0.0, 0
    for j, e in enumerate(expected):
        acc += e
        if acc >= MIN_EXPECTED:
            cells.append((first, j))
            acc, first = 0.0, j + 1
    last = (first, len(expected) - 1)
    if first <= len(expected) - 1 or tail > 0:
        if cells and acc + tail < MIN_EXPECTED:
            cells[-1] = (cells[-1][0], len(expected) - 1)
        elif first <= len(expected) - 1:
            cells.append(last)
        elif cells:
            cells[-1] = (cells[-1][0], len(expected) - 1)
    return cells


def chi2_statistic(counts: np.ndarray, pmf: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    """Pearson's statistic of rows of counts over ``cells`` (the last one takes the upper tail)."""
    n = counts.sum(axis=1)
    total = np.zeros(counts.shape[0])
    for j, (a, b) in enumerate(cells):
        obs = counts[:, a : b + 1].sum(axis=1)
        if j == len(cells) - 1:
            prob = 1.0 - pmf[:, :a].sum(axis=1)
        else:
            prob = pmf[:, a : b + 1].sum(axis=1)
        exp = n * prob
        with np.errstate(divide="ignore", invalid="ignore"):
            total += np.where(exp > 0, (obs - exp) ** 2 / np.where(exp > 0, exp, 1.0), np.inf)
    return total


def statistics(
    dist: DistributionFunction,
    rows: np.ndarray,
    values: Mapping[str, Any],
    *,
    cells: list[tuple[int, int]] | None = None,
    presorted: bool = False,
) -> tuple[dict[str, np.ndarray], list[tuple[int, int]] | None]:
    """The statistics of each row of data at its own parameter values.

    Parameters
    ----------
    dist : DistributionFunction
        The model's distribution function.
    rows : ndarray (rows, n)
        Data sets (need not be sorted).
    values : mapping of str to array (rows,) or float
        Parameter values of each row.
    cells : list, optional
        Chi-square cells (discrete models); made from the first row by :func:`pool_cells` if
        not given.
    presorted : bool
        The rows of a continuous model are already sorted (no sort is made).

    Returns
    -------
    (stats, cells)
        ``{"ks", "cvm", "ad"[, "chi2"]}: array (rows,)`` and the chi-square cells (``None`` for a
        continuous model).
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    if not dist.model.discrete:
        xs = rows if presorted else np.sort(rows, axis=1)
        F, S = dist(xs, values)
        return continuous_statistics(F, S), None
    top = int(np.max(rows))
    start, pmf = dist.table(top, values, rows.shape[0])
    counts = counts_table(rows, start, pmf.shape[1])
    out = discrete_statistics(counts, pmf)
    if cells is None:
        n = counts[0].sum()
        cells = pool_cells(n * pmf[0], n * max(1.0 - pmf[0].sum(), 0.0))
    out["chi2"] = chi2_statistic(counts, pmf, cells)
    return out, cells


# ---------------------------------------------------------------------- the result


@dataclass(frozen=True)
class GofStatistic:
    """One statistic: its value, bootstrap p-value and that p-value's Monte Carlo error."""

    statistic: float
    p_value: float | None = None
    mc_error: float | None = None
    #: chi-square only: degrees of freedom and the asymptotic p-value
    df: int | None = None
    p_asymptotic: float | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "statistic": _plain(self.statistic),
            "p_value": _plain(self.p_value),
            "mc_error": _plain(self.mc_error),
        }
        if self.df is not None or self.p_asymptotic is not None:
            doc["df"] = self.df
            doc["p_value_asymptotic"] = _plain(self.p_asymptotic)
        return doc


@dataclass(frozen=True)
class GofResult:
    """Goodness of fit of a model at its maximum-likelihood estimates (made by :func:`symmle.gof`).

    Attributes
    ----------
    model : str
        The model's name.
    n : int
        Observations.
    estimates : dict of str to float
        The parameters at which the statistics are computed.
    statistics : dict of str to GofStatistic
        ``ks``, ``cvm``, ``ad`` (and ``chi2`` for a discrete model).
    boot : int
        Bootstrap replicates asked for; ``valid`` of them had an MLE and count in the p-values.
    cdf : str
        How the distribution function was evaluated: ``closed_form``, ``quadrature``, ``summation``.
    """

    model: str
    n: int
    estimates: dict[str, float]
    statistics: dict[str, GofStatistic]
    boot: int
    valid: int
    seed: int | None
    cdf: str
    log_likelihood: float
    aic: float | None = None
    bic: float | None = None
    warnings: list[str] = field(default_factory=list)
    cdf_note: str = ""
    seconds: float = 0.0
    #: the distribution function at work and the data (for plots; not part of the JSON)
    distribution: DistributionFunction | None = field(default=None, repr=False, compare=False)
    data: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: how the replicates were drawn: "order_statistics" (the quantile function), "sampler" or ""
    draw: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle gof --json`` (schema 1)."""
        return {
            "schema": 1,
            "model": self.model,
            "n": self.n,
            "estimates": {k: _plain(v) for k, v in self.estimates.items()},
            "statistics": {k: s.to_dict() for k, s in self.statistics.items()},
            "boot": self.boot,
            "boot_valid": self.valid,
            "seed": self.seed,
            "cdf": self.cdf,
            "cdf_note": self.cdf_note or None,
            "log_likelihood": _plain(self.log_likelihood),
            "aic": _plain(self.aic),
            "bic": _plain(self.bic),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """A table like R's ``gofstat``: statistic, bootstrap p-value and its Monte Carlo error."""
        lines = [f"{self.model}: goodness of fit at the maximum-likelihood estimates (n = {self.n})", ""]
        lines.append("  " + ", ".join(f"{k} = {v:.6g}" for k, v in self.estimates.items()))
        lines.append("")
        rows = [("statistic", "value", "p-value", "MC error")]
        for key, s in self.statistics.items():
            rows.append(
                (
                    NAMES[key],
                    f"{s.statistic:.6g}",
                    "n/a" if s.p_value is None else f"{s.p_value:.4f}",
                    "n/a" if s.mc_error is None else f"{s.mc_error:.4f}",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
            lines.append("  " + "  ".join(cells))
        lines.append("")
        if self.boot:
            lines.append(
                f"  p-values: parametric bootstrap, {self.valid} of {self.boot} replicates refitted"
                + (f" (seed {self.seed})" if self.seed is not None else "")
            )
            lines.append("  MC error: sqrt(p (1 - p) / B), the Monte Carlo standard error of each p-value")
        chi = self.statistics.get("chi2")
        if chi is not None and chi.df is not None:
            p = "n/a" if chi.p_asymptotic is None else f"{chi.p_asymptotic:.4g}"
            lines.append(f"  chi-square: {chi.df} degrees of freedom, asymptotic p-value {p}")
        how = {
            "closed_form": "in closed form",
            "quadrature": "by quadrature of the density",
            "summation": "by summing the mass function",
        }[self.cdf]
        lines.append(f"  distribution function {how}")
        if self.warnings:
            lines += ["", "Warnings"] + [f"  - {w}" for w in self.warnings]
        return printable("\n".join(lines) + "\n")


def p_value(exceed: int, valid: int) -> tuple[float | None, float | None]:
    """``(1 + #{T_b >= T}) / (B + 1)`` and its Monte Carlo error ``sqrt(p (1 - p) / B)``.

    Examples
    --------
    >>> p_value(9, 99)
    (0.1, 0.030151134457776365)
    """
    if valid <= 0:
        return None, None
    p = (1 + exceed) / (valid + 1)
    return p, math.sqrt(p * (1 - p) / valid)


def _plain(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
