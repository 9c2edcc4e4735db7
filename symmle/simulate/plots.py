"""Plots of a simulation check: the estimates against their asymptotic normal, and the error against n.

matplotlib (the ``plot`` extra) is imported only when a plot is drawn.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from symmle.base.errors import SpecError
from symmle.base.files import write_output

if TYPE_CHECKING:
    from symmle.simulate.results import CheckResult

__all__ = ["plot_check", "require_matplotlib"]


def require_matplotlib() -> None:
    """Raise a one-line :class:`SpecError` if matplotlib is not installed.

    ``--plot`` asks for what this installation cannot do: an option error (exit code 2), with
    the command that installs it.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SpecError('plots need matplotlib, which is not installed: pip install "symmle[plot]"') from None


def plot_check(result: CheckResult, path: str | Path) -> Path:
    r"""Plot a check's estimates and errors to a PNG file.

    Per parameter, the histogram of the estimates against the asymptotic
    normal :math:`N(\theta, \mathrm{CRLB})`, and the RMSE against the
    sample size (log-log) with the expected slope.  matplotlib is imported
    here (the ``plot`` extra); no global state (``pyplot``, backends) is
    touched.

    Parameters
    ----------
    result : CheckResult
        The check to plot (its ``estimates`` are used).
    path : str or Path
        The file to write.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    SpecError
        If matplotlib is not installed, or the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from symmle.simulate.check import check
    >>> r = check("poisson", {"lam": 3}, n=40, reps=40, seed=2, agree=2)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = plot_check(r, Path(tmp) / "poisson.png")
    ...     out.name, out.stat().st_size > 0
    ('poisson.png', True)
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    names = list(result.parameters)
    fig = Figure(figsize=(10, 3.4 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 2, squeeze=False)
    for (left, right), name in zip(axes, names):
        p = result.parameters[name]
        est = result.estimates[name]
        est = est[np.isfinite(est)]
        left.hist(
            est,
            bins=min(60, max(10, int(math.sqrt(est.size)))),
            density=True,
            color="0.75",
            edgecolor="0.5",
            label="estimates",
        )
        left.axvline(p.true, color="k", lw=1, label="true value")
        if p.crlb:
            sd = math.sqrt(p.crlb)
            t = np.linspace(min(est.min(), p.true - 4 * sd), max(est.max(), p.true + 4 * sd), 400)
            left.plot(
                t,
                np.exp(-0.5 * ((t - p.true) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)),
                color="C0",
                label=r"$N(\theta, \mathrm{CRLB})$",
            )
        left.set_title(f"{name}: {p.kind}, n = {result.n}, {est.size} replicates")
        left.set_xlabel(f"estimate of {name}")
        left.legend(fontsize="small")
        pts = [(s, r) for s, r in zip(p.sizes, p.rmse) if r]
        if pts:
            s, r = np.array(pts, dtype=float).T
            right.loglog(
                s,
                r,
                "o-",
                color="C1",
                label="RMSE" + (f", slope {p.slope:.3f}" if p.slope is not None else ""),
            )
            ref = r[-1] * (s / s[-1]) ** p.expected_slope
            right.loglog(s, ref, "--", color="0.4", label=f"slope {p.expected_slope:g}")
            if p.crlb:
                right.loglog(
                    s, np.sqrt(p.crlb * result.n / s), ":", color="C0", label=r"$\sqrt{\mathrm{CRLB}}$"
                )
            right.set_xticks(s, [str(int(v)) for v in s])
            right.xaxis.set_minor_formatter(NullFormatter())
            right.legend(fontsize="small")
        right.set_xlabel("sample size n")
        right.set_ylabel("RMSE")
        right.set_title(f"{name}: error against n ({p.checks['consistency'].label})")
    path = Path(path)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    write_output(path, png.getvalue())  # a FIFO nobody reads, /dev/full: one error, never a hang
    return path
