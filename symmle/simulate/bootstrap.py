r"""Goodness of fit with estimated parameters: statistics and parametric-bootstrap p-values.

:func:`gof` fits the model (:func:`symmle.fit`), computes the statistics of
:mod:`symmle.numbers.gof` at the estimates, then draws ``boot`` data sets of the same size from the
fitted model (:mod:`symmle.simulate.sampling`, the samplers of ``check``), refits every one with
the compiled estimator (a block of replicates in one vectorised call, as ``check`` does) and
recomputes the statistics at each replicate's own estimates.  The p-value of a statistic ``T`` is

.. math:: p = \frac{1 + \#\{b : T_b \ge T\}}{B + 1},

with Monte Carlo standard error :math:`\sqrt{p(1-p)/B}`.  Replicates whose MLE does not exist are
left out (``B`` counts those that have one) and counted in a warning.  Refitting each replicate is
what accounts for the estimated parameters: the statistics' null distributions with estimated
parameters are not those of the known-parameter tables.
"""

from __future__ import annotations

import os
import threading
import time
import warnings as _warnings
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import SpecError
from symmle.numbers.cdf import CDF_TIMEOUT, QuantileFunction, distribution_function, quantile_function
from symmle.numbers.gof import GofResult, GofStatistic, continuous_statistics, p_value, statistics
from symmle.simulate.progress import ProgressBar
from symmle.simulate.simulation import NUMERIC_BLOCK, valid

__all__ = ["BLOCK_BYTES", "MAX_BOOT_DRAWS", "gof", "order_statistics"]

#: Memory of one block of replicates: small, so that the passes over it stay in the cache.
BLOCK_BYTES = 1 << 21
#: Most values one bootstrap may draw.
MAX_BOOT_DRAWS = 10**9
#: Worker threads of the bootstrap (its blocks' NumPy work runs outside the GIL).
WORKERS = max(1, min(os.cpu_count() or 1, 8))
#: Relative tolerance under which a replicate's statistic counts as equal to the observed one.
TIE_RTOL = 1e-12


def _number(name: str, value: Any) -> float:
    """A constant's value: a number, or number text read by the safe parser (never ``eval``)."""
    if isinstance(value, str):
        from symmle.model.parse import parse_number

        return float(parse_number(value, what=f"constant {name}"))
    return float(value)


def order_statistics(
    rng: np.random.Generator,
    rows: int,
    n: int,
    quantile: QuantileFunction,
    values: Mapping[str, float],
    parameters: list[str],
    *,
    out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> np.ndarray:
    r"""``rows`` sorted samples of size ``n`` from the model at ``values``, drawn without a sort.

    The order statistics of ``n`` uniforms are :math:`U_{(i)} = G_i / G_{n+1}` with
    :math:`G_i = E_1 + \dots + E_i` the partial sums of ``n + 1`` standard exponentials (the
    spacings of uniform order statistics are exchangeable Dirichlet(1, ..., 1)); the model's
    increasing quantile function maps them to :math:`x_{(i)} = Q(U_{(i)})`, a sorted sample of
    ``F``.  O(n) per row where drawing and sorting is O(n log n).  The exponentials are
    :math:`-\log(1 - V)` of uniforms ``V`` (the sign cancels in the ratio, so it is not applied).
    ``out`` (rows, n) and ``work`` (rows, n + 1) are buffers to use.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> from symmle.numbers.cdf import distribution_function, quantile_function
    >>> q, _ = quantile_function(distribution_function(load_model("exponential")))
    >>> x = order_statistics(np.random.default_rng(0), 2, 5, q, {"lam": 1.0}, ["lam"])
    >>> x.shape, bool(np.all(np.diff(x, axis=1) >= 0))
    ((2, 5), True)
    """
    g = work if work is not None else np.empty((rows, n + 1))
    rng.random(out=g)
    np.negative(g, out=g)
    np.log1p(g, out=g)  # log(1 - V) = -E, in (-37, 0]
    np.cumsum(g, axis=1, out=g)
    u = g[:, :n]
    np.multiply(u, 1.0 / g[:, n:], out=u)  # a product is cheaper than a quotient
    # G_n / G_{n+1} rounds to 1 (and E_1 is 0) with probability about 1e-13: keep u inside (0, 1).  The
    # rows increase, so only their ends can reach 0 or 1 (two values doing so has probability ~1e-26:
    # Q is then infinite, the row has no MLE and is counted as such)
    np.maximum(u[:, 0], _TINY, out=u[:, 0])
    np.minimum(u[:, -1], _BELOW_ONE, out=u[:, -1])
    return quantile(u, values, parameters, out=out if out is not None else np.empty((rows, n)))


_TINY = float(np.finfo(float).tiny)
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


class _Done:
    """A result already computed, with the interface of a future (one thread: no pool needed)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


def gof(
    model: Any,
    data: Any,
    constants: Mapping[str, Any] | None = None,
    *,
    boot: int = 1000,
    seed: int | None = None,
    progress: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    generic_sampler: bool = False,
    fitted: Any = None,
    cdf_timeout: float | None = CDF_TIMEOUT,
    order_stats: bool = True,
) -> GofResult:
    """Goodness of fit of ``model`` to ``data`` at the maximum-likelihood estimates.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        A scalar model (one variable; no link, mixture or prior).
    data : array_like
        The observations.
    constants : mapping, optional
        Values of the model's constants.
    boot : int
        Bootstrap replicates (0: the statistics only, no p-values).
    seed : int or numpy.random.SeedSequence, optional
        Seed of the bootstrap's random stream; ``None`` draws fresh entropy (recorded in the result).
    progress : bool
        A progress bar on standard error.
    timeout : float, optional
        Budget in seconds of each symbolic step.
    generic_sampler : bool
        Draw from the density by numerical inversion even where the model declares a ``[sampler]``.
    fitted : FitResult, optional
        The fit of ``model`` to ``data`` if already made.
    cdf_timeout : float, optional
        Budget in seconds of each symbolic integral of the distribution function (at most
        ``timeout``); without a closed form in time, ``F`` comes from quadrature of the density.
    order_stats : bool
        Draw each replicate's order statistics directly through the model's quantile function
        (:func:`order_statistics`) where ``F`` has a closed-form inverse that passes its check at
        the estimates (:func:`symmle.numbers.cdf.quantile_function`); ``False``, or no such
        inverse: the model's sampler, then a sort.

    Returns
    -------
    GofResult

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).exponential(2.0, size=200)
    >>> r = gof("exponential", x, boot=99, seed=1)
    >>> sorted(r.statistics), r.boot, r.cdf
    (['ad', 'cvm', 'ks'], 99, 'closed_form')
    >>> 0 < r.statistics["ks"].p_value <= 1
    True
    """
    from symmle.model.build import load_model
    from symmle.numbers.fitting import fit
    from symmle.simulate.sampling import sampler as make_sampler
    from symmle.symbolic.derivation import Derivation, derive

    started = time.perf_counter()
    boot = int(boot)
    if boot < 0:
        raise SpecError("--boot must be at least 0")
    if isinstance(model, Derivation):
        d = model
    else:
        m0 = load_model(model)
        if constants:
            m0 = m0.with_constants({k: str(v) if not isinstance(v, str) else v for k, v in constants.items()})
        d = derive(m0, timeout=timeout)
    m = d.model
    if m.is_vector or m.is_regression or m.prior or getattr(m, "mixture", None):
        raise SpecError("goodness of fit is for models of one scalar variable (no link, mixture or prior)")
    x = np.asarray(data, dtype=float).reshape(-1)
    result = fitted if fitted is not None else fit(d, x, constants, timeout=timeout)
    compiled = d.compile(timeout=timeout)
    consts = compiled.constant_values(**{k: _number(k, v) for k, v in (constants or {}).items()})
    estimates = {q.name: float(result.estimates[q.name]) for q in m.parameters}
    n = x.shape[0]
    if boot * n > MAX_BOOT_DRAWS:
        raise SpecError(f"the bootstrap would draw {boot * n:.3g} values; the limit is {MAX_BOOT_DRAWS:.0e}")
    cdf_budget = min(t for t in (timeout, cdf_timeout, CDF_TIMEOUT * 100) if t is not None)
    dist = distribution_function(m, consts, at=estimates, timeout=cdf_budget)
    observed, cells = statistics(dist, x[None, :], estimates)
    observed = {k: float(v[0]) for k, v in observed.items()}
    warn: list[str] = []
    if not m.discrete:
        F, S = dist(np.sort(x)[None, :], estimates)
        if F[0, 0] <= 0 or S[0, -1] <= 0:
            warn.append(
                "an observation lies on the edge of the fitted support (F = 0 or 1 there, as where a "
                "parameter is a sample extreme): the Anderson-Darling statistic takes log(F) or log(1 - F) "
                "as about -708 there, so only its bootstrap p-value is meaningful"
            )
    exceed = {k: 0 for k in observed}
    ok_total = 0
    given = isinstance(seed, np.random.SeedSequence)  # a child stream (compare): no seed of its own
    seq = seed if given else np.random.SeedSequence(seed)
    draw_method = ""
    if boot:
        quantile = None
        if order_stats and not generic_sampler and not m.discrete and dist.method == "closed_form":
            quantile, _why = quantile_function(dist, at=[estimates], timeout=cdf_budget)
        draw = (
            None
            if quantile is not None
            else make_sampler(m, {**estimates, **consts}, generic=generic_sampler)
        )
        draw_method = "order_statistics" if quantile is not None else "sampler"
        rng = np.random.default_rng(seq)
        rowwise = bool(compiled.plan.get("rowwise"))
        per_block = max(1, BLOCK_BYTES // (8 * n))
        if not rowwise:
            per_block = min(per_block, NUMERIC_BLOCK)
        names = [q.name for q in m.parameters]

        def replicate(rows: np.ndarray, bufs: list[np.ndarray] | None = None) -> tuple[int, dict[str, int]]:
            """Refit a block of replicates and count the statistics at least as large as observed.

            With ``bufs`` (order statistics: the rows are sorted), ``F``, ``S`` and the statistics
            are computed in those buffers, without temporaries.
            """
            with np.errstate(all="ignore"):
                found = compiled.estimate_rows(rows, **consts)
                est = {k: np.asarray(v, dtype=float) for k, v in found.items()}
                ok = valid(est, m)
                if not ok.any():
                    return 0, {k: 0 for k in observed}
                if not ok.all():
                    rows = rows[ok]
                sub = {q: est[q][ok] for q in names}
                if bufs is None:
                    stats_b, _ = statistics(dist, rows, sub, cells=cells)
                else:
                    k = rows.shape[0]
                    F, S = dist(rows, sub, out=(bufs[0][:k], bufs[1][:k]), sorted_rows=True)
                    stats_b = continuous_statistics(F, S, bufs[2][:k], overwrite=True)
            hits = {k: int(np.sum(stats_b[k] >= t - TIE_RTOL * abs(t))) for k, t in observed.items()}
            return int(ok.sum()), hits

        local = threading.local()

        def ordered(child: np.random.SeedSequence, b: int) -> tuple[int, dict[str, int]]:
            """A block drawn as order statistics from its own stream, then refitted (in a worker)."""
            bufs = getattr(local, "bufs", None)
            if bufs is None:  # one set of buffers per thread, reused by all its blocks
                bufs = local.bufs = [np.empty((per_block, n)) for _ in range(4)] + [
                    np.empty((per_block, n + 1))
                ]
            x_b = order_statistics(
                np.random.default_rng(child),
                b,
                n,
                quantile,
                estimates,
                names,
                out=bufs[3][:b],
                work=bufs[4][:b],
            )
            return replicate(x_b, bufs)

        # Blocks are refitted in worker threads where the work is NumPy's alone (vectorised
        # estimators, a closed-form or tabulated distribution function): NumPy releases the GIL, so
        # the blocks run on all cores.  The sampler's blocks are drawn in order from the one stream;
        # the order statistics' blocks each from a child of the seed (drawn in the workers): either
        # way a seed gives one result whatever the threads.
        threads = WORKERS if rowwise and dist.method != "quadrature" else 1
        sizes = [min(per_block, boot - s0) for s0 in range(0, boot, per_block)]
        children = seq.spawn(len(sizes)) if quantile is not None else [None] * len(sizes)
        with (
            ProgressBar(progress, boot, f"gof {m.name}: bootstrap") as bar,
            _warnings.catch_warnings(),  # the solver's per-replicate warnings: counted, not shown
            ThreadPoolExecutor(max_workers=threads) as pool,
        ):
            _warnings.simplefilter("ignore")
            pending: deque = deque()

            def collect() -> None:
                nonlocal ok_total
                size, future = pending.popleft()
                good, hits = future.result()
                ok_total += good
                for k, v in hits.items():
                    exceed[k] += v
                bar.advance(size)

            for b, child in zip(sizes, children):
                if quantile is not None:
                    job = (ordered, child, b)
                else:
                    job = (replicate, np.asarray(draw((b, n), rng), dtype=float))
                pending.append((b, pool.submit(*job) if threads > 1 else _Done(job[0](*job[1:]))))
                while len(pending) > 2 * threads:
                    collect()
            while pending:
                collect()
        if ok_total < boot:
            warn.append(
                f"{boot - ok_total} of {boot} bootstrap replicates have no MLE (left out of the p-values)"
            )
    out: dict[str, GofStatistic] = {}
    for k, t in observed.items():
        p, err = p_value(exceed[k], ok_total) if boot else (None, None)
        if k == "chi2":
            df = len(cells or ()) - 1 - len(m.parameters)
            pa = None
            if df > 0:
                from scipy import stats as _stats

                pa = float(_stats.chi2.sf(t, df))
            out[k] = GofStatistic(t, p, err, df=df if df > 0 else None, p_asymptotic=pa)
            if df <= 0:
                warn.append(
                    f"the chi-square statistic has {len(cells or ())} cells for {len(m.parameters)} "
                    "parameters: no degrees of freedom for its asymptotic p-value"
                )
        else:
            out[k] = GofStatistic(t, p, err)
    return GofResult(
        model=m.name,
        n=int(n),
        estimates=estimates,
        statistics=out,
        boot=boot,
        valid=ok_total,
        seed=int(seq.entropy) if boot and not given else None,
        cdf=dist.method,
        log_likelihood=float(result.log_likelihood),
        aic=result.aic,
        bic=result.bic,
        warnings=warn,
        cdf_note=dist.note,
        seconds=time.perf_counter() - started,
        distribution=dist,
        data=x,
        draw=draw_method,
    )
