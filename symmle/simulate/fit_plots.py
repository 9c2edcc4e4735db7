"""Diagnostic plots of fitted distributions, in the layout of fitdistrplus's ``plot(fitdist)``.

A continuous model gets four panels: the histogram with the fitted density, the empirical and the
fitted distribution functions, the Q-Q plot (theoretical quantiles against the sorted data) and the
P-P plot (fitted ``F`` at the sorted data against the plotting positions).  A discrete model gets
two: the observed frequencies as bars against the fitted mass, and the empirical and fitted
distribution functions as steps.  Several fits (``compare --plot``) are overlaid, one colour each.

The distribution functions are those of the goodness-of-fit statistics
(:mod:`symmle.numbers.cdf`); theoretical quantiles are read off ``F`` on a fine grid.
matplotlib (the ``plot`` extra) is imported only when a plot is drawn, with the Agg canvas: no
global state (``pyplot``, backends) is touched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from symmle.base.files import write_output
from symmle.numbers.cdf import DistributionFunction
from symmle.simulate.plots import require_matplotlib

__all__ = ["Curve", "plot_fits"]

#: Points of the grid the density and the distribution function are drawn on.
GRID = 1200

#: One fitted model: a label, its distribution function and its parameter values.
Curve = tuple[str, DistributionFunction, Mapping[str, float]]


def plot_fits(curves: Sequence[Curve], data: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Draw the diagnostic panels of one or several fits of ``data`` to a PNG file.

    Parameters
    ----------
    curves : sequence of (label, DistributionFunction, estimates)
        The fits; all continuous or all discrete.
    data : array_like
        The observations.
    path : str or Path
        The PNG file to write.
    title : str, optional
        A title over the panels.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from symmle.model.build import load_model
    >>> from symmle.numbers.cdf import distribution_function
    >>> x = np.random.default_rng(0).exponential(2.0, size=200)
    >>> F = distribution_function(load_model("exponential"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = plot_fits([("exponential", F, {"lam": 1 / x.mean()})], x, Path(tmp) / "e.png")
    ...     out.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.sort(np.asarray(data, dtype=float).reshape(-1))
    # names are untrusted text: a "$" would start matplotlib's mathtext
    curves = [(_plain_text(label), dist, values) for label, dist, values in curves]
    title = None if title is None else _plain_text(title)
    discrete = {c[1].model.discrete for c in curves}
    if len(discrete) != 1:
        from symmle.base.errors import SpecError

        raise SpecError("a plot overlays fits that are all continuous or all discrete")
    if discrete.pop():
        fig = Figure(figsize=(10, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
        _discrete_panels(axes, curves, x)
    else:
        fig = Figure(figsize=(10, 8), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 2)
        _continuous_panels(axes, curves, x)
    if title:
        fig.suptitle(title)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    path = Path(path)
    write_output(path, png.getvalue())  # a FIFO nobody reads, /dev/full: one error, never a hang
    return path


def _plain_text(text: str) -> str:
    from symmle.base.terminal import printable

    return printable(str(text), newlines=False).replace("$", r"\$")


def _grid(dist: DistributionFunction, values: Mapping[str, float], x: np.ndarray) -> np.ndarray:
    """Points over the data's range and beyond, inside the support."""
    lo, hi = (float(v[0]) for v in dist.support(values, 1))
    span = max(float(x[-1] - x[0]), 1e-12 * max(abs(float(x[0])), 1.0))
    a = max(float(x[0]) - 0.5 * span, lo)
    b = min(float(x[-1]) + 0.5 * span, hi)
    grid = np.union1d(np.linspace(a, b, GRID), x)
    return grid[(grid > lo) & (grid < hi)] if grid.size > 2 else grid


def _continuous_panels(axes: Any, curves: Sequence[Curve], x: np.ndarray) -> None:
    dens, cdf, qq, pp = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    n = x.size
    bins = min(80, max(10, int(math.sqrt(n))))
    dens.hist(x, bins=bins, density=True, color="0.8", edgecolor="0.55", label="data")
    ecdf = np.arange(1, n + 1) / n
    cdf.step(x, ecdf, where="post", color="0.3", lw=1, label="empirical")
    positions = (np.arange(1, n + 1) - 0.5) / n
    lo_all, hi_all = float(x[0]), float(x[-1])
    for j, (label, dist, values) in enumerate(curves):
        colour = f"C{j}"
        grid = _grid(dist, values, x)
        with np.errstate(all="ignore"):
            f = dist.density(grid[None, :], values)[0]
            F, _ = dist(grid[None, :], values)
            F = np.maximum.accumulate(F[0])
            Fx, _ = dist(x[None, :], values)
        dens.plot(grid, f, color=colour, lw=1.5, label=label)
        cdf.plot(grid, F, color=colour, lw=1.2, label=label)
        keep = np.concatenate([[True], np.diff(F) > 0])
        q = np.interp(positions, F[keep], grid[keep])
        qq.plot(q, x, ".", ms=3, color=colour, label=label)
        lo_all, hi_all = min(lo_all, float(q[0])), max(hi_all, float(q[-1]))
        pp.plot(Fx[0], positions, ".", ms=3, color=colour, label=label)
    qq.plot([lo_all, hi_all], [lo_all, hi_all], color="0.4", lw=0.8)
    pp.plot([0, 1], [0, 1], color="0.4", lw=0.8)
    dens.set_title("Histogram and fitted density")
    dens.set_xlabel("data")
    cdf.set_title("Empirical and fitted CDF")
    cdf.set_xlabel("data")
    cdf.set_ylabel("CDF")
    qq.set_title("Q-Q plot")
    qq.set_xlabel("theoretical quantiles")
    qq.set_ylabel("empirical quantiles")
    pp.set_title("P-P plot")
    pp.set_xlabel("theoretical probabilities")
    pp.set_ylabel("empirical probabilities")
    for ax in (dens, cdf, qq, pp):
        ax.legend(fontsize="small")


def _discrete_panels(axes: Any, curves: Sequence[Curve], x: np.ndarray) -> None:
    mass, cdf = axes
    n = x.size
    values, counts = np.unique(x, return_counts=True)
    top = int(values[-1])
    width = 0.8 / (len(curves) + 1)
    mass.bar(values, counts / n, width=0.8, color="0.8", edgecolor="0.55", label="observed")
    ecdf = np.cumsum(counts) / n
    cdf.step(values, ecdf, where="post", color="0.3", lw=1.2, label="empirical")
    for j, (label, dist, vals) in enumerate(curves):
        colour = f"C{j}"
        start, pmf = dist.table(top, vals, 1)
        ks = np.arange(start, top + 1)
        shown = ks >= values[0] - max(2, int(0.1 * (top - values[0] + 1)))
        offset = (j + 1) * width - 0.4
        mass.plot(ks[shown] + offset, pmf[0][shown], "o", ms=4, color=colour, label=label)
        mass.vlines(ks[shown] + offset, 0, pmf[0][shown], color=colour, lw=1)
        cdf.step(ks[shown], np.cumsum(pmf[0])[shown], where="post", color=colour, lw=1.2, label=label)
    mass.set_title("Observed frequencies and fitted mass")
    mass.set_xlabel("data")
    cdf.set_title("Empirical and fitted CDF")
    cdf.set_xlabel("data")
    cdf.set_ylabel("CDF")
    for ax in (mass, cdf):
        ax.legend(fontsize="small")


def plot_fit(model: Any, estimates: Mapping[str, float], data: Any, path: str | Path) -> Path:
    """The panels of one fit (``symmle fit --plot``): ``model`` at ``estimates``, its constants valued.

    ``model`` is a scalar Model; the title names it.
    """
    from symmle.numbers.cdf import CDF_TIMEOUT, distribution_function

    require_matplotlib()
    at = {q.name: float(estimates[q.name]) for q in model.parameters}
    dist = distribution_function(model, at=at, timeout=CDF_TIMEOUT)
    shown = ", ".join(f"{k} = {v:.4g}" for k, v in at.items())
    return plot_fits([(model.name, dist, at)], data, path, title=f"{model.name}: {shown}")
