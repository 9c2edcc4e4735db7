r"""Simulation check of a derivation: do its estimators behave as the theory says?

:func:`check` draws ``reps`` samples of size ``n`` from a model at known
("true") parameter values, estimates every replicate with the compiled
estimator, and holds the results against the theory of maximum likelihood.
The replicates of one block are one 2-D array (one replicate per row), which
:meth:`~symmle.numbers.compiled.CompiledModel.estimate_rows` estimates in one
vectorised call for closed forms (row by row for numeric kinds); a block
stays under :data:`BLOCK_BYTES`.

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
    independent optimiser: :func:`scipy.optimize.minimize` (BFGS, analytic
    gradient) of :math:`-\sum_i \log f(x_i)` built here straight from the
    density (not from the derivation), in unconstrained coordinates, started
    at the true values.  A parameter that sets the support (boundary kind) is
    checked directly instead: the data lie in the support at the estimate,
    and moving it by :data:`BOUNDARY_STEP` (relative) either puts data
    outside the support or lowers the likelihood, in both directions, with
    at least one direction infeasible (the estimate sits on the data's edge).
    The other parameters are then optimised with it fixed.
*consistency*
    the root-mean-square error at several sample sizes (default
    :math:`n/16, n/4, n`, each with ``reps`` fresh replicates) and the slope
    of :math:`\log \mathrm{RMSE}` against :math:`\log n`: :math:`-1/2` for
    regular estimators, :math:`-1` for order statistics.

Tolerances
----------
Every verdict is pass/fail.  Its tolerance is :data:`Z` Monte Carlo standard
errors of the simulated statistic (a right estimator fails a check by chance
with probability :math:`P(|Z|>4) = 6\times 10^{-5}`), plus, where first-order
asymptotics is all the theory promises, an allowance for the finite-sample
departure, which vanishes as ``n`` grows (``s`` is the standard deviation of
the ``R`` estimates, :math:`\gamma_1, \gamma_2` their skewness and excess
kurtosis):

=========== ============================================= ================================================
check       compared                                      tolerance
=========== ============================================= ================================================
bias        :math:`|\bar\theta-\theta|` with 0            :math:`Z s/\sqrt{R} + B s/\sqrt{n}`; the MLE's own
                                                          bias is :math:`O(1/n)`, i.e. :math:`O(s/\sqrt n)`.
                                                          Order statistics: :math:`Z s/\sqrt{R} + B_b s`
                                                          (their bias is of the order of their spread)
efficiency  :math:`\mathrm{CRLB}/s^2` with 1              :math:`Z \sqrt{(\gamma_2+2)/R} + E/n` (the Monte
                                                          Carlo error of a variance, any distribution)
coverage    the fraction covered with 0.95                :math:`Z \sqrt{0.95 \cdot 0.05/R} + C/\sqrt n +
                                                          D(\gamma_1^2 + |\gamma_2|)` (Wald intervals assume
                                                          a normal estimator; lattice effects of discrete
                                                          models are :math:`O(1/\sqrt n)`)
agreement   :math:`|a-b|/\max(|a|,|b|,s)` on every row    :data:`AGREE_RTOL`
consistency fitted slope with :math:`-1/2` or :math:`-1`  :math:`Z\,\mathrm{se} + \tfrac12 \log(1 + K/n_1) /
                                                          \log(n_k/n_1)`: weighted least squares, the se of
                                                          each log-RMSE by the delta method; the MSE at the
                                                          smallest size :math:`n_1` may exceed its
                                                          first-order value by a factor :math:`1 + K/n_1`
=========== ============================================= ================================================

:math:`B, B_b, E, C, D, K` are :data:`BIAS_ALLOWANCE`,
:data:`BOUNDARY_BIAS_ALLOWANCE`, :data:`EFFICIENCY_ALLOWANCE`,
:data:`COVERAGE_ALLOWANCE`, :data:`SHAPE_ALLOWANCE` and
:data:`SLOPE_ALLOWANCE`, recorded in the JSON document.  They were set from
runs of 20 000 replicates over the catalogue (and harder points such as a
gamma shape of 0.3, an inverse Gaussian with :math:`\mu/\lambda = 10`, a
Bernoulli :math:`p = 0.05`), where the largest departures were about half
of each allowance: a bias of :math:`3.5\,s/\sqrt n`, an efficiency of
:math:`1 - 14/n`, a slope bent by 0.13 between 20 and 200.

A finite-sample allowance is not a loophole for small errors: an estimator
that is wrong by :math:`O(1/n)`, such as a variance divided by ``n + 1``, is
within the Monte Carlo error of the bias unless :math:`R \gg n`, but fails
*agreement* (the independent optimiser finds the true MLE on the same data,
to :data:`AGREE_RTOL`); an inconsistent one fails *bias* and *consistency*; a
wrong Fisher information fails *efficiency* and *coverage*; a sampler that
does not match the density fails *bias* (the estimates converge elsewhere).

Replicates whose MLE does not exist (``nan``, or a value outside the
parameter's domain, e.g. a Poisson sample of zeros) are left out of the
statistics and counted; more than :data:`FAILURE_LIMIT` of them at ``n``
fails the check.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
import warnings as _warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import SpecError, SymmleError
from symmle.base.files import write_output
from symmle.base._runtime import in_domain
from symmle.base.terminal import printable

if TYPE_CHECKING:
    from symmle.numbers.compiled import CompiledModel
    from symmle.symbolic.derivation import Derivation
    from symmle.model.spec import Model

__all__ = [
    "CheckResult",
    "ParameterCheck",
    "Verdict",
    "Z",
    "check",
    "parse_assignments",
    "plot_check",
    "require_matplotlib",
]

#: Monte Carlo tolerance, in standard errors of the simulated statistic.
Z = 4.0
#: Finite-sample bias allowance of regular estimators, in ``s/sqrt(n)``.
BIAS_ALLOWANCE = 6.0
#: Bias allowance of order-statistic estimators, in ``s``.
BOUNDARY_BIAS_ALLOWANCE = 2.0
#: Finite-sample allowance of the efficiency, ``E/n``.
EFFICIENCY_ALLOWANCE = 30.0
#: Finite-sample allowance of the coverage, ``C/sqrt(n)`` (lattice effects of discrete models
#: and the variability of the standard error).
COVERAGE_ALLOWANCE = 0.5
#: Coverage allowance for a non-normal estimator, times ``skewness**2 + |excess kurtosis|`` of the
#: estimates (the Wald interval assumes normality; its coverage error grows with both).
SHAPE_ALLOWANCE = 0.1
#: Consistency: the mean squared error at the smallest size may exceed its first-order
#: value by a factor up to ``1 + K/n_min`` (higher-order terms), which bends the slope.
SLOPE_ALLOWANCE = 30.0
#: Relative agreement required between the compiled estimate and the independent optimiser.
AGREE_RTOL = 1e-6
#: Relative step of a boundary estimate in the agreement check.
BOUNDARY_STEP = 1e-6
#: Replicates cross-checked by the independent optimiser, by default.
AGREE_DEFAULT = 50
#: Largest fraction of replicates at ``n`` allowed without an MLE.
FAILURE_LIMIT = 0.01
#: Smallest sample size of the consistency check.
MIN_SIZE = 20
#: Memory of one block of replicates (the data; estimating them takes about three times more).
BLOCK_BYTES = 16 << 20
#: Rows per block for numeric kinds (estimated row by row), so the progress bar moves.
NUMERIC_BLOCK = 64
#: Two-sided 95 % normal quantile (as in :mod:`symmle.numbers.fitting`).
Z95 = 1.959963984540054

_CHECKS = ("bias", "efficiency", "coverage", "agreement", "consistency")


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One pass/fail verdict of a simulation check.

    Attributes
    ----------
    passed : bool or None
        Whether the check passed; ``None`` where it does not apply (e.g. no
        efficiency for an order-statistic estimator).
    value : float, optional
        The statistic compared.
    target : float, optional
        What it should be.
    tolerance : float, optional
        The largest ``|value - target|`` that passes.
    note : str
        Why the check does not apply, or what it found.

    Examples
    --------
    >>> v = Verdict(True, value=0.94, target=0.95, tolerance=0.28)
    >>> v.label, Verdict(None, note="boundary kind").label
    ('pass', 'n/a')
    >>> v.to_dict()
    {'passed': True, 'value': 0.94, 'target': 0.95, 'tolerance': 0.28, 'note': None}
    """

    passed: bool | None
    value: float | None = None  #: the statistic compared
    target: float | None = None  #: what it should be
    tolerance: float | None = None  #: largest |value - target| that passes
    note: str = ""

    @property
    def label(self) -> str:
        """``"pass"``, ``"FAIL"``, or ``"n/a"`` where the check does not apply."""
        return "n/a" if self.passed is None else "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        """The verdict as JSON (non-finite numbers become ``None``)."""
        return {"passed": self.passed, "value": _num(self.value), "target": _num(self.target),
                "tolerance": _num(self.tolerance), "note": self.note or None}


@dataclass(frozen=True)
class ParameterCheck:
    """What the simulation of :func:`check` found for one parameter.

    ``None`` marks a quantity that does not exist (no Cramér–Rao bound for
    an order-statistic estimator, say).

    Attributes
    ----------
    name, kind : str
        The parameter and how its estimator is obtained (``closed_form``,
        ``numeric``, ``boundary``).
    true : float
        The true value simulated from.
    mean, bias, bias_mc_error, variance : float or None
        Mean of the estimates at ``n``, its departure from ``true``, the
        Monte Carlo error of that bias, and the estimates' variance.
    crlb : float or None
        The Cramér–Rao bound at ``true`` and ``n``.
    efficiency : float or None
        ``crlb / variance``.
    coverage : float or None
        Fraction of the 95% Wald intervals that contain ``true``.
    agreement : float or None
        Largest relative difference from the independent optimiser, over
        ``agreement_rows`` replicates.
    agreement_rows : int
    sizes : tuple of int
        Sample sizes of the consistency check, increasing.
    rmse : tuple of float or None
        Root-mean-square error at each size.
    slope : float or None
        Fitted slope of log RMSE against log n.
    expected_slope : float
        What theory says: ``-0.5``, or ``-1`` for order statistics.
    checks : dict of str to Verdict
        ``bias``, ``efficiency``, ``coverage``, ``agreement``, ``consistency``.

    Examples
    --------
    >>> r = check("poisson", {"lam": 3}, n=40, reps=40, seed=2, agree=2)
    >>> p = r.parameters["lam"]
    >>> p.kind, p.sizes, p.expected_slope, round(p.crlb, 12)
    ('closed_form', (20, 40), -0.5, 0.075)
    >>> p.passed, {name: v.label for name, v in p.checks.items()}
    (True, {'bias': 'pass', 'efficiency': 'pass', 'coverage': 'pass', 'agreement': 'pass', 'consistency': 'pass'})
    """

    name: str
    kind: str
    true: float
    mean: float | None
    bias: float | None
    bias_mc_error: float | None
    variance: float | None
    crlb: float | None
    efficiency: float | None  #: CRLB / empirical variance
    coverage: float | None
    agreement: float | None  #: largest relative difference from the independent optimiser
    agreement_rows: int
    sizes: tuple[int, ...]
    rmse: tuple[float | None, ...]
    slope: float | None
    expected_slope: float
    checks: dict[str, Verdict]

    @property
    def passed(self) -> bool:
        """Whether no check failed (checks that do not apply count as passed)."""
        return all(v.passed is not False for v in self.checks.values())

    def failures(self) -> list[str]:
        """Names of the failed checks."""
        return [name for name, v in self.checks.items() if v.passed is False]

    def to_dict(self) -> dict[str, Any]:
        """The parameter's entry of the JSON document of ``symmle check --json``."""
        return {
            "kind": self.kind,
            "true": self.true,
            "mean": _num(self.mean),
            "bias": _num(self.bias),
            "bias_mc_error": _num(self.bias_mc_error),
            "variance": _num(self.variance),
            "crlb": _num(self.crlb),
            "efficiency": _num(self.efficiency),
            "coverage": _num(self.coverage),
            "agreement": {"max_rel_diff": _num(self.agreement), "replicates": self.agreement_rows},
            "consistency": {"sizes": list(self.sizes), "rmse": [_num(v) for v in self.rmse],
                            "slope": _num(self.slope), "expected_slope": self.expected_slope},
            "checks": {name: v.to_dict() for name, v in self.checks.items()},
            "verdict": "pass" if self.passed else "fail",
        }


@dataclass(frozen=True)
class CheckResult:
    """The result of a simulation check, made by :func:`check`.

    Attributes
    ----------
    model : str
        Name of the model.
    n, reps : int
        Sample size and number of replicates.
    seed : int
        The seed given, or the fresh entropy drawn:
        ``check(..., seed=result.seed)`` repeats the run.
    true, constants : dict of str to float
        The parameter values simulated from, and the constants' values.
    sampler : str
        How the samples were drawn: ``"declared"`` (the model's
        ``[sampler]``) or ``"generic"`` (inverse CDF, or a table of
        cumulative mass, built from the density).
    parameters : dict of str to ParameterCheck
        What was found for each parameter.
    without_mle : int
        Replicates at ``n`` whose MLE was not found.
    existence : Verdict
        Whether those replicates are few enough (:data:`FAILURE_LIMIT`).
    sizes : tuple of int
        Sample sizes of the consistency check.
    seconds : float
        Time the check took.
    warnings : list of str
    estimates : dict of str to ndarray
        The ``reps`` estimates at ``n`` of every parameter (``nan`` where
        the MLE was not found), for plots and further study.

    Examples
    --------
    >>> r = check("poisson", {"lam": 3}, n=40, reps=40, seed=2, agree=2)
    >>> r.passed, r.failures(), r.sampler, r.estimates["lam"].shape
    (True, [], 'declared', (40,))
    >>> doc = r.to_dict()
    >>> doc["verdict"], doc["replicates_without_mle"]
    ('pass', 0)
    >>> print(r.to_text().splitlines()[0])
    poisson: simulation check, n = 40, 40 replicates, seed 2, declared sampler
    """

    model: str
    n: int
    reps: int
    seed: int  #: the seed given, or the fresh entropy drawn: ``check(..., seed=result.seed)`` repeats the run
    true: dict[str, float]
    constants: dict[str, float]
    sampler: str
    parameters: dict[str, ParameterCheck]
    without_mle: int  #: replicates at ``n`` whose MLE was not found
    existence: Verdict
    sizes: tuple[int, ...]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    estimates: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return self.existence.passed is not False and all(p.passed for p in self.parameters.values())

    def failures(self) -> list[str]:
        """``["sigma2: agreement", ...]``: every failed check."""
        out = [] if self.existence.passed is not False else ["estimates: MLE not found too often"]
        for name, p in self.parameters.items():
            out += [f"{name}: {c}" for c in p.failures()]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle check --json`` (schema 1)."""
        return {
            "schema": 1,
            "model": self.model,
            "n": self.n,
            "reps": self.reps,
            "seed": self.seed,
            "sampler": self.sampler,
            "true": self.true,
            "constants": self.constants,
            "sizes": list(self.sizes),
            "parameters": {name: p.to_dict() for name, p in self.parameters.items()},
            "replicates_without_mle": self.without_mle,
            "existence": self.existence.to_dict(),
            "tolerances": tolerances(),
            "passed": self.passed,
            "verdict": "pass" if self.passed else "fail",
            "failures": self.failures(),
            "seconds": round(self.seconds, 4),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """Return the check as a table for the terminal (``symmle check``).

        A header line, one row per parameter with each statistic and its
        verdict, the sizes and timing, a line per failed check, the
        warnings, and a final ``PASS``/``FAIL`` line.
        """
        seed = f"seed {self.seed}"
        consts = ", ".join(f"{k} = {v:g}" for k, v in self.constants.items())
        head = [f"{self.model}: simulation check, n = {self.n}, {self.reps} replicates, {seed}, {self.sampler} sampler"
                + (f"; {consts}" if consts else "")]
        rows = [("parameter", "true", "mean", "bias ± MC error", "variance", "CRLB", "efficiency", "coverage",
                 "agreement", "slope (expected)", "verdict")]
        for name, p in self.parameters.items():
            c = p.checks
            rows.append((
                name, f"{p.true:.6g}", _fmt(p.mean, ".6g"),
                "n/a" if p.bias is None else f"{p.bias:.3g} ± {p.bias_mc_error:.2g}" + _mark(c["bias"]),
                _fmt(p.variance, ".4g"), _fmt(p.crlb, ".4g"),
                _fmt(p.efficiency, ".4f") + _mark(c["efficiency"]),
                _fmt(p.coverage, ".3f") + _mark(c["coverage"]),
                ("n/a" if c["agreement"].passed is None else
                 f"{p.agreement:.1e}" if p.agreement is not None else c["agreement"].label) + _mark(c["agreement"]),
                ("n/a" if p.slope is None else f"{p.slope:.3f} ({p.expected_slope:g})") + _mark(c["consistency"]),
                "pass" if p.passed else "FAIL",
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = head + [""] + ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        agreed = max((p.agreement_rows for p in self.parameters.values()), default=0)
        lines += ["", (f"  sizes {', '.join(map(str, self.sizes))}; agreement on up to {agreed} replicates; "
                       f"{self.without_mle} replicate(s) at n without an MLE; {self.seconds:.2f} s")]
        failed = [(name, cname, v) for name, p in self.parameters.items() for cname, v in p.checks.items() if v.passed is False]
        if self.existence.passed is False:
            lines.append(f"  FAIL estimates: {self.existence.note}")
        for name, cname, v in failed:
            lines.append(f"  FAIL {name} {cname}: {_explain(v)}")
        if self.warnings:
            lines += ["", "Warnings"] + [f"  - {w}" for w in self.warnings]
        lines += ["", "PASS: every check passed" if self.passed else f"FAIL: {len(self.failures())} check(s) failed"]
        return printable("\n".join(lines) + "\n")  # the model's name is untrusted text


def tolerances() -> dict[str, Any]:
    """Describe the tolerance of every check, as recorded in the JSON document.

    Returns
    -------
    dict
        ``z`` (:data:`Z`), one rule per check (``bias``, ``efficiency``,
        ``coverage``, ``agreement``, ``consistency``, ``existence``) as
        text, and ``constants``: the allowances by name (see the module
        docstring).

    Examples
    --------
    >>> t = tolerances()
    >>> t["z"], t["existence"]
    (4.0, 'at most 0.01 of the replicates at n without an MLE')
    >>> t["constants"]["AGREE_RTOL"]
    1e-06
    """
    return {
        "z": Z,
        "bias": f"|bias| <= z*s/sqrt(reps) + {BIAS_ALLOWANCE:g}*s/sqrt(n) (regular), + {BOUNDARY_BIAS_ALLOWANCE:g}*s (boundary)",
        "efficiency": f"|CRLB/s^2 - 1| <= z*sqrt((kurtosis-1)/reps) + {EFFICIENCY_ALLOWANCE:g}/n",
        "coverage": f"|coverage - 0.95| <= z*sqrt(0.95*0.05/reps) + {COVERAGE_ALLOWANCE:g}/sqrt(n) + {SHAPE_ALLOWANCE:g}*(skewness^2 + |excess kurtosis|)",
        "agreement": f"|a-b|/max(|a|,|b|,s) <= {AGREE_RTOL:g} on every replicate checked; boundary: tight to {BOUNDARY_STEP:g} relative",
        "consistency": f"|slope - expected| <= z*se(slope) + 0.5*ln(1 + {SLOPE_ALLOWANCE:g}/n_min)/ln(n_max/n_min)",
        "existence": f"at most {FAILURE_LIMIT:g} of the replicates at n without an MLE",
        "constants": {"BIAS_ALLOWANCE": BIAS_ALLOWANCE, "BOUNDARY_BIAS_ALLOWANCE": BOUNDARY_BIAS_ALLOWANCE,
                      "EFFICIENCY_ALLOWANCE": EFFICIENCY_ALLOWANCE, "COVERAGE_ALLOWANCE": COVERAGE_ALLOWANCE,
                      "SHAPE_ALLOWANCE": SHAPE_ALLOWANCE,
                      "SLOPE_ALLOWANCE": SLOPE_ALLOWANCE, "AGREE_RTOL": AGREE_RTOL, "BOUNDARY_STEP": BOUNDARY_STEP,
                      "FAILURE_LIMIT": FAILURE_LIMIT},
    }


def _num(v: Any) -> float | None:
    """A JSON number, or None for a missing or non-finite value."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


def _mark(v: Verdict) -> str:
    return " *" if v.passed is False else ""


def _explain(v: Verdict) -> str:
    parts = []
    if v.value is not None and v.target is not None and v.tolerance is not None:
        parts.append(f"{v.value:.4g}, expected {v.target:g} ± {v.tolerance:.3g}")
    if v.note:
        parts.append(v.note)
    return "; ".join(parts) or "failed"


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


def _true_values(model: Model, true: Mapping[str, Any]) -> dict[str, float]:
    names = [q.name for q in model.parameters]
    unknown = [k for k in true if k not in names]
    if unknown:
        raise SpecError(f"unknown parameter '{unknown[0]}' in the true values; this model's parameters: {', '.join(names)}")
    missing = [k for k in names if k not in true]
    if missing:
        raise SpecError(f"missing true value of parameter '{missing[0]}' (give every parameter: {','.join(f'{k}=VALUE' for k in names)})")
    out = {}
    for q in model.parameters:
        v = _number(true[q.name], f"true value of {q.name}")
        if not in_domain(v, q.domain):
            raise SpecError(f"true value {v:g} of '{q.name}' is not in its domain '{q.domain}'")
        out[q.name] = v
    return out


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
    from symmle.symbolic.derivation import Derivation, derive
    from symmle.simulate.sampling import sampler as make_sampler
    from symmle.model.build import load_model

    started = time.perf_counter()
    if isinstance(model, Derivation):
        d: Derivation | None = model
        m = model.model
    else:
        d, m = None, load_model(model)
    if constants:
        m = m.with_constants({k: (v if isinstance(v, str) else _number(v, f"constant {k}")) for k, v in constants.items()})
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
        raise SpecError(f"the simulation would draw {draws:.3g} values (reps x the sample sizes {', '.join(map(str, all_sizes))}); "
                        f"the limit is {MAX_DRAWS:.0e}: lower --n or --reps")
    if d is None:
        d = derive(m, timeout=timeout)
    compiled = d.compile(timeout=timeout)
    draw = make_sampler(m, {**theta, **consts}, generic=generic_sampler)
    seq = np.random.SeedSequence(seed)
    streams = dict(zip(all_sizes, seq.spawn(len(all_sizes))))

    kinds = dict(compiled.kinds)
    info = _Information(d, consts)
    cover = _coverer(info, compiled, m, theta, n, consts)
    rowwise = bool(compiled.plan.get("rowwise"))
    total = reps * len(all_sizes) + agree
    warn: list[str] = []
    with _Progress(progress, total, f"check {m.name}") as bar:
        runs: dict[int, dict[str, np.ndarray]] = {}
        kept: np.ndarray | None = None
        covered: dict[str, np.ndarray] = {}
        for size in sorted(all_sizes, reverse=True):
            bar.describe(f"check {m.name}: n = {size}")
            main_size = size == n
            est, rows, hits = _simulate(compiled, draw, np.random.default_rng(streams[size]), size, reps, consts,
                                        keep=agree if main_size else 0, rowwise=rowwise, advance=bar.advance,
                                        cover=cover if main_size else None)
            runs[size] = est
            if main_size:
                kept, covered = rows, hits
        valid = {size: _valid(est, m) for size, est in runs.items()}
        bar.describe(f"check {m.name}: independent optimiser")
        agreement = _agreement(m, d, consts, theta, runs[n], valid[n], kept, bar.advance)

    main, ok = runs[n], valid[n]
    without = int(reps - ok.sum())
    existence = Verdict(without <= FAILURE_LIMIT * reps, without / reps, 0.0, FAILURE_LIMIT,
                        f"{without} of {reps} replicates without an MLE")
    if without:
        warn.append(f"{without} of {reps} replicates at n = {n} have no MLE (left out of the statistics)")
    for size in all_sizes:
        k = int(reps - valid[size].sum())
        if size != n and k:
            warn.append(f"{k} of {reps} replicates at n = {size} have no MLE (left out of the RMSE)")
    crlb = info.crlb(theta, n)
    coverage = {k: (float(np.mean(v[ok])) if ok.any() else None) for k, v in covered.items()}
    if info.incomplete and any(kinds[q.name] != "boundary" for q in m.parameters):
        warn.append("the expected information is incomplete: no CRLB; coverage from the observed information")

    params: dict[str, ParameterCheck] = {}
    for q in m.parameters:
        params[q.name] = _parameter(q.name, kinds[q.name], theta[q.name], main[q.name][ok], crlb.get(q.name),
                                    coverage.get(q.name), agreement.get(q.name, (None, 0, None, "not run (agree=0)")), n,
                                    {s: runs[s][q.name][valid[s]] for s in all_sizes})
    return CheckResult(
        model=m.name, n=n, reps=reps, seed=int(seq.entropy), true=theta, constants=consts, sampler=draw.kind,
        parameters=params, without_mle=without, existence=existence, sizes=all_sizes,
        seconds=time.perf_counter() - started, warnings=warn, estimates={k: v.copy() for k, v in main.items()},
    )


def _simulate(compiled: CompiledModel, draw: Any, rng: np.random.Generator, n: int, reps: int, consts: dict[str, float],
              *, keep: int, rowwise: bool, advance: Callable[[int], None],
              cover: Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
              ) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, np.ndarray]]:
    """Estimates of ``reps`` replicates of size ``n``, in blocks; the first ``keep`` rows of data;
    and, with ``cover``, its per-row result (whether each interval covers the truth)."""
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
            _warnings.simplefilter("ignore")  # per-replicate warnings of the numeric solver: counted, not shown
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


def _valid(est: Mapping[str, np.ndarray], model: Model) -> np.ndarray:
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


class _Information:
    """The derivation's per-observation Fisher information of the regular parameters, as NumPy."""

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
            self.entries = [[to_function(syms, sp.sympify(block[i, j]).subs(subs)) for j in range(len(idx))] for i in range(len(idx))]

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
        return {name: (float(cov[i, i]) if np.isfinite(cov[i, i]) and cov[i, i] > 0 else None) for i, name in enumerate(self.regular)}


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


def _coverer(info: _Information, compiled: CompiledModel, model: Model, theta: Mapping[str, float], n: int,
             consts: Mapping[str, float]) -> Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]] | None:
    """``cover(rows, estimates) -> {param: array}``: 1 where the row's 95 % Wald interval covers the
    truth, 0 where it does not (or the row has no standard error), ``nan`` where the row has no MLE.

    The standard error is :func:`symmle.fit`'s: the expected information at the estimate, for all rows
    in one call; where it is missing, the observed information, row by row.
    """
    if not info.regular:
        return None
    names = info.regular

    def cover(rows: np.ndarray, est: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = _valid(est, model)
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
                out[k][ok] = np.where(np.isfinite(se[:, i]), np.abs(sub[k] - theta[k]) <= Z95 * se[:, i], False)
        return out

    return cover


# --------------------------------------------------------------------------
# the independent optimiser, built straight from the density
# --------------------------------------------------------------------------


_UNCONSTRAINED: dict[str, tuple[Callable[[float], float], Callable[[float], float], Callable[[float], float]]] = {
    # domain: (to z, from z, d theta / d z)
    "real": (lambda t: t, lambda z: z, lambda t: 1.0),
    "positive": (math.log, lambda z: math.exp(min(z, 700.0)), lambda t: t),
    "nonnegative": (lambda t: math.log(max(t, 1e-300)), lambda z: math.exp(min(z, 700.0)), lambda t: t),
    "unit": (lambda t: math.log(t / (1 - t)), lambda z: 1 / (1 + math.exp(-max(min(z, 700.0), -700.0))), lambda t: t * (1 - t)),
}


class _DensityLikelihood:
    r""":math:`\sum_i \log f(x_i)` and its gradient, from the density alone.

    ``log f`` is the expanded logarithm of the density (no under- or overflow
    of ``gamma(k + r)`` or ``exp``), or the logarithm of the density itself
    where the expanded form is not finite; the gradient is the derivative of
    the expanded logarithm.  Observations outside the support give
    :math:`-\infty`, so a parameter that sets the support is honoured.
    """

    def __init__(self, model: Model, consts: Mapping[str, float], free: Sequence[str]) -> None:
        import sympy as sp

        from symmle.base.numeric import to_function

        subs = {q.symbol: consts[q.name] for q in model.constants}
        x = model.variable
        syms = list(model.parameter_symbols)
        density = model.density.subs(subs)
        logf = sp.expand_log(sp.log(density), force=True)
        self.model = model
        self.names = [q.name for q in model.parameters]
        self.free = list(free)
        self.direct = to_function([x, *syms], density)
        self.logged = to_function([x, *syms], logf)
        self.grad = [to_function([x, *syms], sp.diff(logf, model.symbols[name])) for name in self.free]
        ends = [sp.sympify(e).subs(subs) for e in model.support]
        self.ends = [to_function(syms, e) for e in ends]
        self.moving = any(e.free_symbols & set(syms) for e in ends)
        self._fixed = None if self.moving else tuple(float(f(*[0.0] * len(syms))) for f in self.ends)
        self._range: tuple[int, float, float] | None = None

    def _args(self, theta: Mapping[str, float]) -> list[float]:
        return [float(theta[k]) for k in self.names]

    def inside(self, x: np.ndarray, theta: Mapping[str, float], rtol: float = 1e-12) -> bool:
        """Whether every observation lies in the support at ``theta`` (to ``rtol``)."""
        if self._range is None or self._range[0] != id(x):
            self._range = (id(x), float(x.min()), float(x.max()))
        _, xmin, xmax = self._range
        lo, hi = self._fixed or tuple(float(f(*self._args(theta))) for f in self.ends)
        if not lo < hi:
            return False
        return xmin >= lo - rtol * abs(lo) and xmax <= hi + rtol * abs(hi)

    def loglik(self, x: np.ndarray, theta: Mapping[str, float]) -> float:
        if not self.inside(x, theta):
            return -math.inf
        args = self._args(theta)
        with np.errstate(all="ignore"):
            # the forced expansion may carry i*pi terms (logs of negative factors): the real part is log f
            v = np.real(np.asarray(self.logged(x, *args))).astype(float) * np.ones_like(x)
            bad = ~np.isfinite(v)
            if bad.any():
                v[bad] = np.log(np.asarray(self.direct(x[bad], *args), dtype=float) * np.ones(int(bad.sum())))
        total = float(np.sum(v))
        return total if math.isfinite(total) else -math.inf

    def gradient(self, x: np.ndarray, theta: Mapping[str, float]) -> np.ndarray:
        args = self._args(theta)
        with np.errstate(all="ignore"):
            return np.array([float(np.sum(np.asarray(g(x, *args), dtype=float) * np.ones_like(x))) for g in self.grad])


def _optimise(lik: _DensityLikelihood, x: np.ndarray, start: Mapping[str, float], fixed: Mapping[str, float],
              spread: Mapping[str, float]) -> dict[str, float] | None:
    """Maximise the likelihood over ``lik.free`` from ``start``.

    Coordinates are unconstrained by domain (log, logit), then centred at the
    start and divided by ``spread`` (the spread of the estimates in those
    coordinates), so the Hessian of the negative log-likelihood is near the
    identity: BFGS with the analytic gradient, Nelder-Mead first if BFGS
    stalls, then Newton steps on a finite-difference Hessian of the gradient.
    """
    from scipy import optimize

    names = lik.free
    domains = [next(q.domain for q in lik.model.parameters if q.name == k) for k in names]
    maps = [_UNCONSTRAINED[dom] for dom in domains]
    z0 = np.array([mp[0](float(start[k])) for k, mp in zip(names, maps)])
    s = np.array([spread.get(k) or 1.0 for k in names], dtype=float)
    s = np.where(np.isfinite(s) & (s > 0), s, 1.0)

    def theta_of(u: np.ndarray) -> dict[str, float]:
        z = z0 + s * u
        out = dict(fixed)
        out.update({k: mp[1](float(v)) for k, mp, v in zip(names, maps, z)})
        return out

    def f(u: np.ndarray) -> float:
        v = lik.loglik(x, theta_of(u))
        return -v if math.isfinite(v) else 1e300

    def g(u: np.ndarray) -> np.ndarray:
        th = theta_of(u)
        return -lik.gradient(x, th) * np.array([mp[2](th[k]) for k, mp in zip(names, maps)]) * s

    def small(u: np.ndarray) -> bool:
        gu = g(u)
        return bool(np.all(np.isfinite(gu)) and np.max(np.abs(gu)) <= 1e-6)

    u = np.zeros(len(names))
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore")
        if f(u) >= 1e300:
            return None
        u = optimize.minimize(f, u, jac=g, method="BFGS", options={"gtol": 1e-9, "maxiter": 500}).x
        if not small(u):
            u = optimize.minimize(f, u, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}).x
            u = optimize.minimize(f, u, jac=g, method="BFGS", options={"gtol": 1e-9, "maxiter": 500}).x
        for _ in range(3):  # Newton polish
            gu = g(u)
            if not np.all(np.isfinite(gu)) or np.max(np.abs(gu)) <= 1e-12:
                break
            h = 1e-5
            hess = np.array([(g(u + h * e) - g(u - h * e)) / (2 * h) for e in np.eye(len(u))])
            try:
                step = np.linalg.solve((hess + hess.T) / 2, gu)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or f(u - step) > f(u) + 1e-9 * abs(f(u)):
                break
            u = u - step
    if not np.all(np.isfinite(u)) or f(u) >= 1e300:
        return None
    return {k: v for k, v in theta_of(u).items() if k in names}


def _boundary_tight(lik: _DensityLikelihood, x: np.ndarray, est: Mapping[str, float], name: str, scale: float) -> bool:
    """The estimate sits on the data's edge: feasible, a small move one way leaves data outside the support,
    and no small move raises the likelihood."""
    ll0 = lik.loglik(x, est)
    if not math.isfinite(ll0):
        return False
    step = BOUNDARY_STEP * max(abs(est[name]), scale, 1e-300)
    infeasible = 0
    for sign in (1.0, -1.0):
        moved = dict(est)
        moved[name] = est[name] + sign * step
        ll = lik.loglik(x, moved)
        if not math.isfinite(ll):
            infeasible += 1
        elif ll > ll0 + 1e-12 * abs(ll0):
            return False
    return infeasible >= 1


def _agreement(m: Model, d: Derivation, consts: Mapping[str, float], theta: Mapping[str, float],
               est: Mapping[str, np.ndarray], ok: np.ndarray, rows: np.ndarray | None,
               advance: Callable[[int], None]) -> dict[str, tuple[float | None, int, bool | None, str]]:
    """Per parameter: (largest relative difference or None, replicates compared, passed or None, note)."""
    if rows is None or rows.shape[0] == 0:
        return {}
    kinds = {k: e.kind for k, e in d.solutions.items()}
    boundary = [q.name for q in m.parameters if kinds.get(q.name) == "boundary"]
    integer = [q.name for q in m.parameters if q.domain in ("integer", "positive_integer")]
    free = [q.name for q in m.parameters if q.name not in boundary and q.name not in integer]
    lik = _DensityLikelihood(m, consts, free)
    scale = {k: float(np.nanstd(v[ok])) if ok.any() else 0.0 for k, v in est.items()}
    q_domain = {q.name: q.domain for q in m.parameters}
    spread = {k: _spread(est[k][ok], q_domain[k]) for k in free}
    diffs: dict[str, list[float]] = {k: [] for k in free}
    tight: dict[str, list[bool]] = {k: [] for k in boundary}
    for r in range(rows.shape[0]):
        advance(1)
        if not ok[r]:
            continue
        x = rows[r]
        row_est = {k: float(est[k][r]) for k in est}
        for b in boundary:
            tight[b].append(_boundary_tight(lik, x, row_est, b, scale[b]))
        if not free:
            continue
        fixed = {k: row_est[k] for k in (*boundary, *integer)}
        start = {k: theta[k] for k in free}
        found = _optimise(lik, x, start, fixed, spread)
        rel = _rel(found, row_est, free, scale)
        if rel is not None and max(rel.values()) > AGREE_RTOL and found is not None:
            # a start at the truth may end in another local optimum: if the compiled estimate is
            # the better point, restart from it (perturbed), and keep whichever point is better
            ll_c = lik.loglik(x, row_est)
            ll_o = lik.loglik(x, {**fixed, **found})
            if ll_c > ll_o:
                moved = {k: _move(row_est[k], q_domain[k], spread[k]) for k in free}
                again = _optimise(lik, x, moved, fixed, spread)
                if again is not None and lik.loglik(x, {**fixed, **again}) >= ll_o:
                    found = again
                    rel = _rel(found, row_est, free, scale)
        for k in free:
            diffs[k].append(math.inf if rel is None else rel[k])
    out: dict[str, tuple[float | None, int, bool | None, str]] = {}
    for k, v in diffs.items():
        if not v:
            out[k] = (None, 0, None, "no replicate with an MLE")
            continue
        worst = max(v)
        note = "" if math.isfinite(worst) else "the independent optimiser found no maximum"
        out[k] = (worst if math.isfinite(worst) else None, len(v), worst <= AGREE_RTOL, note)
    for k, t in tight.items():
        bad = t.count(False)
        if not t:
            out[k] = (None, 0, None, "no replicate with an MLE")
        elif bad:
            out[k] = (None, len(t), False, f"the estimate is not on the data's edge in {bad} of {len(t)} replicates")
        else:
            out[k] = (None, len(t), True, "on the data's edge in every replicate")
    for k in integer:
        out.setdefault(k, (None, 0, None, "integer parameter: not cross-checked"))
    return out


def _spread(values: np.ndarray, domain: str) -> float:
    """Standard deviation of estimates in the optimiser's unconstrained coordinate."""
    to_z = _UNCONSTRAINED[domain][0]
    with np.errstate(all="ignore"):
        z = np.array([to_z(float(v)) for v in values[:1000]]) if values.size else np.array([])
    z = z[np.isfinite(z)]
    return float(np.std(z)) if z.size > 1 else 1.0


def _move(value: float, domain: str, spread: float) -> float:
    """``value`` moved by one spread in the unconstrained coordinate (a start away from it)."""
    to_z, from_z, _ = _UNCONSTRAINED[domain]
    return from_z(to_z(value) + (spread or 1.0))


def _rel(found: Mapping[str, float] | None, est: Mapping[str, float], names: Sequence[str], scale: Mapping[str, float]) -> dict[str, float] | None:
    if found is None:
        return None
    out = {}
    for k in names:
        a, b = est[k], found[k]
        out[k] = abs(a - b) / max(abs(a), abs(b), scale.get(k, 0.0), 1e-300)
    return out


# --------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------


def _parameter(name: str, kind: str, true: float, est: np.ndarray, crlb: float | None, coverage: float | None,
               agreement: tuple[float | None, int, bool | None, str], n: int,
               by_size: Mapping[int, np.ndarray]) -> ParameterCheck:
    k = est.size
    boundary = kind == "boundary"
    checks: dict[str, Verdict] = {}
    mean = bias = mc = var = eff = None
    if k >= 2:
        mean = float(np.mean(est))
        bias = mean - true
        sd = float(np.std(est, ddof=1))
        var = sd * sd
        mc = sd / math.sqrt(k)
        allowance = BOUNDARY_BIAS_ALLOWANCE * sd if boundary else BIAS_ALLOWANCE * sd / math.sqrt(n)
        tol = Z * mc + allowance
        checks["bias"] = Verdict(abs(bias) <= tol, bias, 0.0, tol)
    else:
        checks["bias"] = Verdict(False, note="fewer than 2 replicates with an MLE")
    skew, kurt = 0.0, 3.0  # a normal's, where the estimates have no spread
    if var:
        centred = est - est.mean()
        m2 = float(np.mean(centred**2))
        skew = float(np.mean(centred**3)) / m2**1.5
        kurt = float(np.mean(centred**4)) / m2**2
    if crlb is not None and var:
        eff = crlb / var
        tol = Z * math.sqrt(max(kurt - 1.0, 0.0) / k) + EFFICIENCY_ALLOWANCE / n
        checks["efficiency"] = Verdict(abs(eff - 1.0) <= tol, eff, 1.0, tol)
    else:
        checks["efficiency"] = Verdict(None, note="order statistic: no Fisher information" if boundary else "no Cramér–Rao bound")
    if coverage is not None:
        tol = Z * math.sqrt(0.95 * 0.05 / k) + COVERAGE_ALLOWANCE / math.sqrt(n) + SHAPE_ALLOWANCE * (skew**2 + abs(kurt - 3.0))
        checks["coverage"] = Verdict(abs(coverage - 0.95) <= tol, coverage, 0.95, tol)
    else:
        checks["coverage"] = Verdict(None, note="order statistic: no standard error" if boundary else "no standard error")
    worst, rows_compared, agreed, note = agreement
    if boundary or worst is None:
        checks["agreement"] = Verdict(agreed, note=note)
    else:
        checks["agreement"] = Verdict(agreed, worst, 0.0, AGREE_RTOL, note)
    expected = -1.0 if boundary else -0.5
    sizes = tuple(sorted(by_size))
    rmse, slope, se = _consistency(by_size, true)
    if slope is not None and se is not None:
        lo, hi = sizes[0], sizes[-1]
        tol = Z * se + 0.5 * math.log1p(SLOPE_ALLOWANCE / lo) / math.log(hi / lo)
        checks["consistency"] = Verdict(abs(slope - expected) <= tol, slope, expected, tol)
    else:
        checks["consistency"] = Verdict(None, note="needs two sample sizes with estimates")
    return ParameterCheck(
        name=name, kind=kind, true=true, mean=mean, bias=bias, bias_mc_error=mc, variance=var, crlb=crlb,
        efficiency=eff, coverage=coverage, agreement=worst,
        agreement_rows=rows_compared, sizes=sizes, rmse=tuple(rmse), slope=slope, expected_slope=expected,
        checks={c: checks[c] for c in _CHECKS},
    )


def _consistency(by_size: Mapping[int, np.ndarray], true: float) -> tuple[list[float | None], float | None, float | None]:
    """RMSE per size, and the weighted least-squares slope of log RMSE on log n with its standard error."""
    rmse: list[float | None] = []
    xs, ys, ws = [], [], []
    for size in sorted(by_size):
        e2 = (by_size[size] - true) ** 2
        if e2.size < 2 or not np.all(np.isfinite(e2)):
            rmse.append(None)
            continue
        mse = float(np.mean(e2))
        rmse.append(math.sqrt(mse))
        if mse <= 0:
            continue
        # delta method: se(log rmse) = sd(e^2) / (2 sqrt(k) mse)
        se = float(np.std(e2, ddof=1)) / (2 * math.sqrt(e2.size) * mse)
        xs.append(math.log(size))
        ys.append(0.5 * math.log(mse))
        ws.append(1.0 / max(se, 1e-12) ** 2)
    if len(xs) < 2:
        return rmse, None, None
    x, y, w = np.array(xs), np.array(ys), np.array(ws)
    xm = np.sum(w * x) / np.sum(w)
    sxx = float(np.sum(w * (x - xm) ** 2))
    if sxx <= 0:
        return rmse, None, None
    slope = float(np.sum(w * (x - xm) * (y - np.sum(w * y) / np.sum(w))) / sxx)
    return rmse, slope, math.sqrt(1.0 / sxx)


# --------------------------------------------------------------------------
# progress and plots
# --------------------------------------------------------------------------


class _Progress:
    """A rich progress bar on standard error, or nothing."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            # the label holds the model's name: plain text, never rich markup ("[/]" would raise)
            self.bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                                transient=True)
            self.task = self.bar.add_task(printable(label, newlines=False), total=total)

    def __enter__(self) -> Self:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, k: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, k)

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=printable(text, newlines=False))


def require_matplotlib() -> None:
    """Raise a one-line :class:`SymmleError` if matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SymmleError("plots need matplotlib: pip install 'symmle[plot]'") from None


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
    SymmleError
        If matplotlib is not installed.
    SpecError
        If the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
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
        left.hist(est, bins=min(60, max(10, int(math.sqrt(est.size)))), density=True, color="0.75", edgecolor="0.5", label="estimates")
        left.axvline(p.true, color="k", lw=1, label="true value")
        if p.crlb:
            sd = math.sqrt(p.crlb)
            t = np.linspace(min(est.min(), p.true - 4 * sd), max(est.max(), p.true + 4 * sd), 400)
            left.plot(t, np.exp(-0.5 * ((t - p.true) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)), color="C0",
                      label=r"$N(\theta, \mathrm{CRLB})$")
        left.set_title(f"{name}: {p.kind}, n = {result.n}, {est.size} replicates")
        left.set_xlabel(f"estimate of {name}")
        left.legend(fontsize="small")
        pts = [(s, r) for s, r in zip(p.sizes, p.rmse) if r]
        if pts:
            s, r = np.array(pts, dtype=float).T
            right.loglog(s, r, "o-", color="C1", label="RMSE" + (f", slope {p.slope:.3f}" if p.slope is not None else ""))
            ref = r[-1] * (s / s[-1]) ** p.expected_slope
            right.loglog(s, ref, "--", color="0.4", label=f"slope {p.expected_slope:g}")
            if p.crlb:
                right.loglog(s, np.sqrt(p.crlb * result.n / s), ":", color="C0", label=r"$\sqrt{\mathrm{CRLB}}$")
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
