r"""The replicates of a simulation check: drawn, estimated, and held against their intervals.

:func:`simulate` draws ``reps`` samples of size ``n`` from a model at known ("true") parameter
values and estimates every replicate with the compiled estimator.  The replicates of one block are
one 2-D array (one replicate per row), which
:meth:`~symmle.numbers.compiled.CompiledModel.estimate_rows` estimates in one vectorised call for
closed forms (row by row for numeric kinds); a block stays under :data:`BLOCK_BYTES`.
:func:`valid` marks the replicates that have an MLE.

:class:`Information` evaluates the derivation's Fisher information as NumPy: the Cramér–Rao bound
at the true values, and, through :func:`coverer`, whether each replicate's 95 % Wald interval
:math:`\hat\theta \pm 1.96\,\mathrm{SE}` contains the truth, with the standard error of
:func:`symmle.fit` (the expected information at the estimate, evaluated for all rows at once, or
row by row from the observed information where the expected one is missing).
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from symmle.base.errors import SymmleError
from symmle.numbers.fitting import Z95  # the coverage checked is that of fit's Wald intervals (ci="wald")

if TYPE_CHECKING:
    from symmle.model.spec import Model
    from symmle.numbers.compiled import CompiledModel
    from symmle.symbolic.derivation import Derivation

__all__ = ["BLOCK_BYTES", "NUMERIC_BLOCK", "Cover", "Information", "coverer", "simulate", "valid"]

#: Memory of one block of replicates (the data; estimating them takes about three times more).
BLOCK_BYTES = 16 << 20
#: Rows per block for numeric kinds (estimated row by row), so the progress bar moves.
NUMERIC_BLOCK = 64
#: ``cover(rows, estimates) -> {parameter: array}``, made by :func:`coverer`.
Cover = Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]]


def simulate(
    compiled: CompiledModel,
    draw: Any,
    rng: np.random.Generator,
    n: int,
    reps: int,
    consts: dict[str, float],
    *,
    keep: int,
    rowwise: bool,
    advance: Callable[[int], None],
    cover: Cover | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, np.ndarray]]:
    """Draw and estimate ``reps`` replicates of size ``n``, a block at a time.

    Parameters
    ----------
    compiled : CompiledModel
        The estimator; ``compiled.estimate_rows`` estimates a block.
    draw : ModelSampler
        ``draw((rows, n), rng)``, from :func:`symmle.simulate.sampling.sampler`.
    rng : numpy.random.Generator
        The stream of this sample size.
    n, reps : int
        Sample size and number of replicates.
    consts : dict of str to float
        The constants' values.
    keep : int
        Rows of data to return (for the independent optimiser).
    rowwise : bool
        Whether the estimator is vectorised over rows; otherwise blocks hold at most
        :data:`NUMERIC_BLOCK` rows, so the progress bar moves.
    advance : callable
        Called with the rows done after every block.
    cover : callable, optional
        From :func:`coverer`: its per-row result is returned too.

    Returns
    -------
    estimates : dict of str to ndarray
        ``reps`` estimates of every parameter (``nan`` where the solver failed).
    kept : ndarray or None
        The first ``keep`` rows of data.
    covered : dict of str to ndarray
        With ``cover``, whether each row's interval covers the truth; empty otherwise.
    """
    per_block = max(1, BLOCK_BYTES // (8 * n))
    if not rowwise:
        per_block = min(per_block, NUMERIC_BLOCK)
    parts: dict[str, list[np.ndarray]] = {}
    hits: dict[str, list[np.ndarray]] = {}
    kept = []
    done = 0
    while done < reps:
        b = min(per_block, reps - done)
        x = np.asarray(draw((b, n), rng), dtype=float)
        if done < keep:
            kept.append(x[: keep - done].copy())
        with np.errstate(all="ignore"), _warnings.catch_warnings():
            # per-replicate warnings of the numeric solver: counted, not shown
            _warnings.simplefilter("ignore")
            est = compiled.estimate_rows(x, **consts)
        est = {k: np.asarray(v, dtype=float) for k, v in est.items()}
        for k, v in est.items():
            parts.setdefault(k, []).append(v)
        if cover is not None:
            for k, v in cover(x, est).items():
                hits.setdefault(k, []).append(v)
        done += b
        advance(b)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    return out, (np.concatenate(kept) if kept else None), {k: np.concatenate(v) for k, v in hits.items()}


def valid(est: Mapping[str, np.ndarray], model: Model) -> np.ndarray:
    """Rows whose every estimate is finite and inside its domain."""
    ok = np.ones(len(next(iter(est.values()))), dtype=bool)
    for q in model.parameters:
        v = est[q.name]
        with np.errstate(invalid="ignore"):
            good = np.isfinite(v)
            if q.domain in ("positive", "positive_integer"):
                good &= v > 0
            elif q.domain == "nonnegative":
                good &= v >= 0
            elif q.domain == "unit":
                good &= (v > 0) & (v < 1)
            if q.domain in ("integer", "positive_integer"):
                good &= v == np.round(v)
        ok &= good
    return ok


class Information:
    """The derivation's per-observation Fisher information of the regular parameters, as NumPy.

    Parameters
    ----------
    d : Derivation
        Its ``fisher`` matrix is evaluated, for the parameters of ``d.stationarity``.
    consts : mapping of str to float
        The constants' values.

    Attributes
    ----------
    regular : list of str
        The parameters the information covers (not the boundary ones).
    incomplete : bool
        Whether the expected information is missing (``nan``) for some entry: then
        :meth:`matrix` returns ``None`` and :func:`coverer` uses the observed information.
    """

    def __init__(self, d: Derivation, consts: Mapping[str, float]) -> None:
        import sympy as sp

        from symmle.base.numeric import to_function

        m = d.model
        self.model = m
        syms = list(m.parameter_symbols)
        self.regular = [p.name for p in d.stationarity.parameters]
        idx = [syms.index(p) for p in d.stationarity.parameters]
        block = d.fisher.extract(idx, idx) if idx else sp.Matrix()
        subs = {q.symbol: consts[q.name] for q in m.constants}
        self.incomplete = bool(idx) and any(e.has(sp.nan) for e in block)
        self.entries: list[list[Callable[..., Any]]] | None = None
        if idx and not self.incomplete:
            self.entries = [
                [to_function(syms, sp.sympify(block[i, j]).subs(subs)) for j in range(len(idx))]
                for i in range(len(idx))
            ]

    def matrix(self, values: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
        """``I(theta)`` at ``values`` (scalars or arrays of ``shape``): an array ``shape + (k, k)``."""
        if self.entries is None:
            return None
        args = [values[q.name] for q in self.model.parameters]
        k = len(self.entries)
        out = np.empty(shape + (k, k))
        with np.errstate(all="ignore"):
            for i, row in enumerate(self.entries):
                for j, fn in enumerate(row):
                    out[..., i, j] = np.broadcast_to(np.asarray(fn(*args), dtype=float), shape)
        return out

    def crlb(self, theta: Mapping[str, float], n: int) -> dict[str, float | None]:
        """Diagonal of :math:`(n I(\\theta))^{-1}` at the true values."""
        info = self.matrix(theta, ())
        if info is None:
            return {}
        cov = _inverse(n * info[None])[0]
        return {
            name: (float(cov[i, i]) if np.isfinite(cov[i, i]) and cov[i, i] > 0 else None)
            for i, name in enumerate(self.regular)
        }


def _inverse(a: np.ndarray) -> np.ndarray:
    """Batched inverse of symmetric matrices; ``nan`` where singular, not finite or not positive definite."""
    out = np.full_like(a, np.nan)
    finite = np.all(np.isfinite(a), axis=(-2, -1))
    if not finite.any():
        return out
    sub = a[finite]
    with np.errstate(all="ignore"):
        eig = np.linalg.eigvalsh((sub + np.swapaxes(sub, -1, -2)) / 2)
    pd = eig[:, 0] > 0
    good = np.flatnonzero(finite)[pd]
    if good.size:
        out[good] = np.linalg.inv(a[good])
    return out


def coverer(
    info: Information,
    compiled: CompiledModel,
    model: Model,
    theta: Mapping[str, float],
    n: int,
    consts: Mapping[str, float],
) -> Cover | None:
    """``cover(rows, estimates) -> {param: array}``: 1 where the row's 95 % Wald interval covers the
    truth, 0 where it does not (or the row has no standard error), ``nan`` where the row has no MLE.

    The standard error is :func:`symmle.fit`'s: the expected information at the estimate, for all rows
    in one call; where it is missing, the observed information, row by row.
    """
    if not info.regular:
        return None
    names = info.regular

    def cover(rows: np.ndarray, est: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = valid(est, model)
        out = {k: np.full(rows.shape[0], np.nan) for k in names}
        if not ok.any():
            return out
        sub = {k: v[ok] for k, v in est.items()}
        mat = info.matrix(sub, (int(ok.sum()),))
        if mat is not None:
            var = np.diagonal(_inverse(n * mat), axis1=-2, axis2=-1)
        else:
            var = np.full((int(ok.sum()), len(names)), np.nan)
            for j, r in enumerate(np.flatnonzero(ok)):
                try:
                    cov, _ = compiled.covariance(rows[r], {k: float(v[r]) for k, v in est.items()}, **consts)
                except SymmleError:
                    continue
                if cov is not None:
                    var[j] = np.diag(cov)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.where(var > 0, var, np.nan))
            for i, k in enumerate(names):
                out[k][ok] = np.where(
                    np.isfinite(se[:, i]), np.abs(sub[k] - theta[k]) <= Z95 * se[:, i], False
                )
        return out

    return cover
