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
import time
import warnings as _warnings
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import SpecError
from symmle.numbers.cdf import CDF_TIMEOUT, distribution_function
from symmle.numbers.gof import GofResult, GofStatistic, p_value, statistics
from symmle.simulate.progress import ProgressBar
from symmle.simulate.simulation import NUMERIC_BLOCK, valid

__all__ = ["BLOCK_BYTES", "MAX_BOOT_DRAWS", "gof"]

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
    if boot:
        draw = make_sampler(m, {**estimates, **consts}, generic=generic_sampler)
        rng = np.random.default_rng(seq)
        rowwise = bool(compiled.plan.get("rowwise"))
        per_block = max(1, BLOCK_BYTES // (8 * n))
        if not rowwise:
            per_block = min(per_block, NUMERIC_BLOCK)

        def replicate(rows: np.ndarray) -> tuple[int, dict[str, int]]:
            """Refit a block of replicates and count the statistics at least as large as observed."""
            with np.errstate(all="ignore"):
                found = compiled.estimate_rows(rows, **consts)
                est = {k: np.asarray(v, dtype=float) for k, v in found.items()}
                ok = valid(est, m)
                if not ok.any():
                    return 0, {k: 0 for k in observed}
                sub = {q.name: est[q.name][ok] for q in m.parameters}
                stats_b, _ = statistics(dist, rows[ok], sub, cells=cells)
            hits = {k: int(np.sum(stats_b[k] >= t - TIE_RTOL * abs(t))) for k, t in observed.items()}
            return int(ok.sum()), hits

        # Blocks are drawn in order from the one stream (a seed gives one result), then refitted in
        # worker threads where the work is NumPy's alone (vectorised estimators, a closed-form or
        # tabulated distribution function): NumPy releases the GIL, so the blocks run on all cores.
        threads = WORKERS if rowwise and dist.method != "quadrature" else 1
        with (
            ProgressBar(progress, boot, f"gof {m.name}: bootstrap") as bar,
            _warnings.catch_warnings(),  # the solver's per-replicate warnings: counted, not shown
            ThreadPoolExecutor(max_workers=threads) as pool,
        ):
            _warnings.simplefilter("ignore")
            pending: deque = deque()
            done = 0

            def collect() -> None:
                nonlocal ok_total
                size, future = pending.popleft()
                good, hits = future.result()
                ok_total += good
                for k, v in hits.items():
                    exceed[k] += v
                bar.advance(size)

            while done < boot:
                b = min(per_block, boot - done)
                rows = np.asarray(draw((b, n), rng), dtype=float)
                pending.append((b, pool.submit(replicate, rows) if threads > 1 else _Done(replicate(rows))))
                done += b
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
    )
