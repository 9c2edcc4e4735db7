r"""Simulation check of a derivation: do its estimators behave as the theory says?

:func:`check` draws ``reps`` samples of size ``n`` from a model at known ("true") parameter values,
estimates every replicate with the compiled estimator (:mod:`symmle.simulate.simulation`), and
holds the results against the theory of maximum likelihood (:mod:`symmle.simulate.verdicts`, where
the tolerances are).  This module reads the input and runs the stages.

What is checked, per parameter
------------------------------
*bias*
    :math:`\bar\theta - \theta` against its Monte Carlo error
    :math:`s/\sqrt{R}` (``s`` the standard deviation of the ``R`` estimates).
*efficiency*
    :math:`\mathrm{CRLB}/s^2`, the Cramér–Rao bound :math:`(n I(\theta))^{-1}`
    (diagonal, computed from the derivation's Fisher information at the true
    values) over the empirical variance; ``n/a`` where the information does
    not exist (order-statistic estimators).
*coverage*
    the fraction of replicates whose 95 % Wald interval
    :math:`\hat\theta \pm 1.96\,\mathrm{SE}` contains the truth, with the
    standard error of :func:`symmle.fit` (the expected information at the
    estimate; evaluated for all rows at once, or row by row from the observed
    information where the expected one is missing).
*agreement*
    on the first ``agree`` replicates, the compiled estimate against an
    independent optimiser built straight from the density, not from the
    derivation (:mod:`symmle.simulate.agreement`); a parameter that sets the
    support is checked to sit on the data's edge instead.
*consistency*
    the root-mean-square error at several sample sizes (default
    :math:`n/16, n/4, n`, each with ``reps`` fresh replicates) and the slope
    of :math:`\log \mathrm{RMSE}` against :math:`\log n`: :math:`-1/2` for
    regular estimators, :math:`-1` for order statistics.

Replicates whose MLE does not exist are left out of the statistics and
counted; more than :data:`~symmle.simulate.verdicts.FAILURE_LIMIT` of them at
``n`` fails the check.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from symmle.base._runtime import in_domain
from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import SpecError
from symmle.simulate.agreement import agreement
from symmle.simulate.progress import ProgressBar
from symmle.simulate.results import CheckResult
from symmle.simulate.simulation import Information, coverer, simulate, valid
from symmle.simulate.verdicts import ParameterCheck, existence_verdict, parameter_check

if TYPE_CHECKING:
    from symmle.model.spec import Model, Quantity
    from symmle.symbolic.derivation import Derivation

__all__ = ["AGREE_DEFAULT", "MAX_DRAWS", "MIN_SIZE", "check", "parse_assignments"]

#: Replicates cross-checked by the independent optimiser, by default.
AGREE_DEFAULT = 50
#: Smallest sample size of the consistency check.
MIN_SIZE = 20


# --------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------

_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


def parse_assignments(text: str | Sequence[str], *, option: str = "--true") -> dict[str, str]:
    """``"mu=3,sigma2=4"`` (or several such strings) -> ``{"mu": "3", "sigma2": "4"}``.

    Values stay text; they are read by :func:`symmle.model.parse.parse_number`
    (never ``eval``).  A comma followed by ``NAME=`` separates items, so a
    value may itself hold commas (``Max(1, 2)``).

    Examples
    --------
    >>> parse_assignments("mu=3, sigma2=4")
    {'mu': '3', 'sigma2': '4'}
    """
    items = [text] if isinstance(text, str) else list(text)
    out: dict[str, str] = {}
    for chunk in items:
        for item in _SPLIT.split(chunk):
            name, eq, value = item.partition("=")
            name = name.strip()
            if not eq or not name or not value.strip():
                raise SpecError(f"{option} must be NAME=VALUE[,NAME=VALUE...] (got {item.strip()!r})")
            if name in out:
                raise SpecError(f"{option} gives '{name}' twice")
            out[name] = value.strip()
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, str):
        from symmle.model.parse import parse_number

        value = parse_number(value, what=what)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(out):
        raise SpecError(f"{what} is not a finite number")
    return out


def true_names(model: Model, true: Mapping[str, Any]) -> None:
    """Refuse true values that name an unknown parameter or leave one out (scalar and vector checks)."""
    names = [q.name for q in model.parameters]
    unknown = [k for k in true if k not in names]
    if unknown:
        raise SpecError(
            f"unknown parameter '{unknown[0]}' in the true values; "
            f"this model's parameters: {', '.join(names)}"
        )
    missing = [k for k in names if k not in true]
    if missing:
        raise SpecError(
            f"missing true value of parameter '{missing[0]}' "
            f"(give every parameter: {','.join(f'{k}=VALUE' for k in names)})"
        )


def true_scalar(q: Quantity, raw: Any, what: str) -> float:
    """A scalar true value: a finite number in the parameter's domain."""
    v = _number(raw, what)
    if not in_domain(v, q.domain):
        raise SpecError(f"true value {v:g} of '{q.name}' is not in its domain '{q.domain}'")
    return v


def _true_values(model: Model, true: Mapping[str, Any]) -> dict[str, float]:
    true_names(model, true)
    return {q.name: true_scalar(q, true[q.name], f"true value of {q.name}") for q in model.parameters}


def _constant_values(model: Model) -> dict[str, float]:
    out = {}
    for q in model.constants:
        if q.value is None:
            raise SpecError(f"missing value for constant '{q.name}' (give it as --const {q.name}=VALUE)")
        out[q.name] = float(q.value)
    return out


#: Most values one check may draw (some seconds of work for a closed form).
MAX_DRAWS = 10**9


def _sizes(n: int, sizes: Sequence[int] | None) -> tuple[int, ...]:
    if sizes is None:
        lo = min(MIN_SIZE, n)
        sizes = [max(n // 16, lo), max(n // 4, lo), n]
    out = sorted({int(s) for s in sizes} | {n})
    if out[0] < 2:
        raise SpecError("every sample size must be at least 2")
    return tuple(out)


# --------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------


def check(
    model: Any,
    true: Mapping[str, Any],
    *,
    n: int = 1000,
    reps: int = 1000,
    seed: int | None = None,
    constants: Mapping[str, Any] | None = None,
    sizes: Sequence[int] | None = None,
    agree: int = AGREE_DEFAULT,
    generic_sampler: bool = False,
    progress: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    link: Mapping[str, str] | None = None,
    design: Any = "normal",
    mixture: int | None = None,
) -> CheckResult:
    """Check a model's estimators by simulation at known parameter values.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        A catalogue name, spec file, Model, or a Derivation (whose estimators
        and information are then the ones checked).
    true : mapping
        The true value of every parameter, by name (numbers or number text).
    n : int
        Sample size of each replicate.
    reps : int
        Replicates at each sample size.
    seed : int, optional
        Seed of the random streams (:class:`numpy.random.SeedSequence`, one
        child stream per sample size); ``None`` draws fresh entropy, which the
        result records as its ``seed`` so the run can be repeated.
    constants : mapping, optional
        Values of the model's constants, by name.
    sizes : sequence of int, optional
        Sample sizes of the consistency check (``n`` is always added);
        default ``n/16, n/4, n`` (at least :data:`MIN_SIZE`).
    agree : int
        Replicates cross-checked with the independent optimiser (at most
        ``reps``: a larger value is capped there).
    generic_sampler : bool
        Draw by the generic inverse-CDF (cumulative-mass) sampler even where
        the model declares a ``[sampler]``.
    progress : bool
        Show a progress bar on standard error (:mod:`rich`).
    timeout : float, optional
        Budget in seconds of each symbolic step.
    link : mapping, optional
        ``{PARAM: LINK}``: check the regression of the model
        (:mod:`symmle.simulate.regression_check`); a model with a ``[link]``
        of its own is a regression too.  ``true`` then gives ``beta`` (a
        list, the intercept first) and the shared parameters.
    design : {"normal", "uniform"} or path
        A regression's covariates: random (an intercept and standard normal or
        uniform covariates), or the columns of a file (a fixed design).
    mixture : int, optional
        K >= 2: check the EM fit of a K-component mixture of the model
        (:func:`symmle.simulate.mixture_check.check_mixture`; ``true`` then
        gives ``w`` and every parameter as lists of K values; ``sizes`` and
        ``agree`` do not apply).  K = 1 is the plain check.

    Returns
    -------
    CheckResult
        ``.passed``, per-parameter ``.parameters``, ``.to_dict()``, ``.to_text()``.

    Raises
    ------
    SpecError
        If a true value or constant is missing, unknown or outside its domain.

    Examples
    --------
    >>> r = check("exponential", {"lam": 2}, n=200, reps=200, seed=1, agree=5)
    >>> r.passed, r.parameters["lam"].checks["bias"].label
    (True, 'pass')
    """
    from symmle.model.build import load_model
    from symmle.simulate.sampling import sampler as make_sampler
    from symmle.symbolic.derivation import Derivation, derive

    started = time.perf_counter()
    if isinstance(model, Derivation):
        d: Derivation | None = model
        m = model.model
    else:
        d, m = None, load_model(model)
    if mixture is None and getattr(m, "mixture", 0):  # a spec's [mixture] table
        mixture = m.mixture
    if mixture is not None:
        from symmle.numbers.mixture_em import check_components

        if check_components(mixture, "mixture") > 1:
            from symmle.simulate.mixture_check import check_mixture

            if link or m.is_regression:
                raise SpecError("--mixture: a mixture of regressions is not supported (no link)")
            if sizes is not None or design != "normal":
                raise SpecError("--sizes and --design are not available with --mixture")
            if m.is_vector:
                from symmle.simulate.mixture_vector_check import check_vector_mixture

                check_mixture = check_vector_mixture  # type: ignore[assignment]
            return check_mixture(  # type: ignore[return-value]
                d if d is not None else m,
                true,
                int(mixture),
                n=n,
                reps=reps,
                seed=seed,
                constants=constants,
                generic_sampler=generic_sampler,
                progress=progress,
                timeout=timeout,
            )
    if link:
        m = m.with_link(link)
        d = None
    if getattr(m, "mixture", 0):
        raise SpecError(
            f"check: '{m.name}' is a mixture of {m.mixture} components; check does not support mixtures yet"
        )
    if m.is_regression:
        from symmle.simulate.regression_check import check_regression

        if generic_sampler:
            raise SpecError("a regression is checked with the family's [sampler]: no --generic-sampler")
        return check_regression(
            d if d is not None else derive(m, timeout=timeout),
            true,
            design=design,
            n=n,
            reps=reps,
            seed=seed,
            constants=constants,
            sizes=sizes,
            agree=min(agree, reps),
            progress=progress,
        )
    if design != "normal":
        raise SpecError("--design is for regressions (a model with a link)")
    if m.is_vector:  # rows of D numbers: true values are vectors and matrices
        from symmle.simulate.vector_check import check_vector

        return check_vector(
            m,
            true,
            n=n,
            reps=reps,
            seed=seed,
            constants=constants,
            sizes=sizes,
            agree=agree,
            generic_sampler=generic_sampler,
            progress=progress,
            timeout=timeout,
            derivation=d,
        )
    if constants:
        m = m.with_constants(
            {k: (v if isinstance(v, str) else _number(v, f"constant {k}")) for k, v in constants.items()}
        )
    consts = _constant_values(m)
    theta = _true_values(m, true)
    n, reps, agree = int(n), int(reps), int(agree)
    if n < 2:
        raise SpecError("n must be at least 2")
    if reps < 2:
        raise SpecError("reps must be at least 2")
    if agree < 0:
        raise SpecError("agree must be at least 0")
    agree = min(agree, reps)  # the optimiser checks replicates; there are no more than reps
    all_sizes = _sizes(n, sizes)
    draws = reps * sum(all_sizes)
    if draws > MAX_DRAWS:
        raise SpecError(
            f"the simulation would draw {draws:.3g} values "
            f"(reps x the sample sizes {', '.join(map(str, all_sizes))}); "
            f"the limit is {MAX_DRAWS:.0e}: lower --n or --reps"
        )
    if d is None:
        d = derive(m, timeout=timeout)
    compiled = d.compile(timeout=timeout)
    draw = make_sampler(m, {**theta, **consts}, generic=generic_sampler)
    seq = np.random.SeedSequence(seed)
    streams = dict(zip(all_sizes, seq.spawn(len(all_sizes))))

    kinds = dict(compiled.kinds)
    info = Information(d, consts)
    cover = coverer(info, compiled, m, theta, n, consts)
    rowwise = bool(compiled.plan.get("rowwise"))
    total = reps * len(all_sizes) + agree
    warn: list[str] = []
    with ProgressBar(progress, total, f"check {m.name}") as bar:
        runs: dict[int, dict[str, np.ndarray]] = {}
        kept: np.ndarray | None = None
        covered: dict[str, np.ndarray] = {}
        for size in sorted(all_sizes, reverse=True):
            bar.describe(f"check {m.name}: n = {size}")
            main_size = size == n
            rng = np.random.default_rng(streams[size])
            est, rows, hits = simulate(
                compiled,
                draw,
                rng,
                size,
                reps,
                consts,
                keep=agree if main_size else 0,
                rowwise=rowwise,
                advance=bar.advance,
                cover=cover if main_size else None,
            )
            runs[size] = est
            if main_size:
                kept, covered = rows, hits
        with_mle = {size: valid(est, m) for size, est in runs.items()}
        bar.describe(f"check {m.name}: independent optimiser")
        agreed = agreement(m, d, consts, theta, runs[n], with_mle[n], kept, bar.advance)

    main, ok = runs[n], with_mle[n]
    without = int(reps - ok.sum())
    existence = existence_verdict(without, reps)
    if without:
        warn.append(f"{without} of {reps} replicates at n = {n} have no MLE (left out of the statistics)")
    for size in all_sizes:
        k = int(reps - with_mle[size].sum())
        if size != n and k:
            warn.append(f"{k} of {reps} replicates at n = {size} have no MLE (left out of the RMSE)")
    crlb = info.crlb(theta, n)
    coverage = {k: (float(np.mean(v[ok])) if ok.any() else None) for k, v in covered.items()}
    if info.incomplete and any(kinds[q.name] != "boundary" for q in m.parameters):
        warn.append("the expected information is incomplete: no CRLB; coverage from the observed information")

    params: dict[str, ParameterCheck] = {}
    for q in m.parameters:
        params[q.name] = parameter_check(
            q.name,
            kinds[q.name],
            theta[q.name],
            main[q.name][ok],
            crlb.get(q.name),
            coverage.get(q.name),
            agreed.get(q.name, (None, 0, None, "not run (agree=0)")),
            n,
            {s: runs[s][q.name][with_mle[s]] for s in all_sizes},
        )
    return CheckResult(
        model=m.name,
        n=n,
        reps=reps,
        seed=int(seq.entropy),
        true=theta,
        constants=consts,
        sampler=draw.kind,
        parameters=params,
        without_mle=without,
        existence=existence,
        sizes=all_sizes,
        seconds=time.perf_counter() - started,
        warnings=warn,
        estimates={k: v.copy() for k, v in main.items()},
    )
