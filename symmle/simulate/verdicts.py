r"""Verdicts of a simulation check, with their tolerances, and the results that hold them.

:func:`symmle.simulate.check.check` estimates replicates drawn at known parameter values; this
module holds what it found against the theory of maximum likelihood (:func:`parameter_check`, one
:class:`ParameterCheck` per parameter, each check a :class:`Verdict`);
:class:`~symmle.simulate.results.CheckResult` gathers them with its JSON document and terminal table.

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
*agreement* (the independent optimiser of :mod:`symmle.simulate.agreement`
finds the true MLE on the same data, to :data:`AGREE_RTOL`); an inconsistent
one fails *bias* and *consistency*; a wrong Fisher information fails
*efficiency* and *coverage*; a sampler that does not match the density fails
*bias* (the estimates converge elsewhere).

Replicates whose MLE does not exist (``nan``, or a value outside the
parameter's domain, e.g. a Poisson sample of zeros) are left out of the
statistics and counted; more than :data:`FAILURE_LIMIT` of them at ``n``
fails the check (:func:`existence_verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AGREE_RTOL",
    "BIAS_ALLOWANCE",
    "BOUNDARY_BIAS_ALLOWANCE",
    "BOUNDARY_STEP",
    "COVERAGE_ALLOWANCE",
    "EFFICIENCY_ALLOWANCE",
    "FAILURE_LIMIT",
    "SHAPE_ALLOWANCE",
    "SLOPE_ALLOWANCE",
    "ParameterCheck",
    "Verdict",
    "Z",
    "existence_verdict",
    "parameter_check",
    "tolerances",
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
#: Largest fraction of replicates at ``n`` allowed without an MLE.
FAILURE_LIMIT = 0.01

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
        return {
            "passed": self.passed,
            "value": _num(self.value),
            "target": _num(self.target),
            "tolerance": _num(self.tolerance),
            "note": self.note or None,
        }


@dataclass(frozen=True)
class ParameterCheck:
    """What the simulation of :func:`~symmle.simulate.check.check` found for one parameter.

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
    >>> from symmle.simulate.check import check
    >>> r = check("poisson", {"lam": 3}, n=40, reps=40, seed=2, agree=2)
    >>> p = r.parameters["lam"]
    >>> p.kind, p.sizes, p.expected_slope, round(p.crlb, 12)
    ('closed_form', (20, 40), -0.5, 0.075)
    >>> p.passed, {name: v.label for name, v in p.checks.items()}  # doctest: +NORMALIZE_WHITESPACE
    (True, {'bias': 'pass', 'efficiency': 'pass', 'coverage': 'pass', 'agreement': 'pass',
            'consistency': 'pass'})
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
            "consistency": {
                "sizes": list(self.sizes),
                "rmse": [_num(v) for v in self.rmse],
                "slope": _num(self.slope),
                "expected_slope": self.expected_slope,
            },
            "checks": {name: v.to_dict() for name, v in self.checks.items()},
            "verdict": "pass" if self.passed else "fail",
        }


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
        "bias": f"|bias| <= z*s/sqrt(reps) + {BIAS_ALLOWANCE:g}*s/sqrt(n) (regular), "
        f"+ {BOUNDARY_BIAS_ALLOWANCE:g}*s (boundary)",
        "efficiency": f"|CRLB/s^2 - 1| <= z*sqrt((kurtosis-1)/reps) + {EFFICIENCY_ALLOWANCE:g}/n",
        "coverage": f"|coverage - 0.95| <= z*sqrt(0.95*0.05/reps) + {COVERAGE_ALLOWANCE:g}/sqrt(n) "
        f"+ {SHAPE_ALLOWANCE:g}*(skewness^2 + |excess kurtosis|)",
        "agreement": f"|a-b|/max(|a|,|b|,s) <= {AGREE_RTOL:g} on every replicate checked; "
        f"boundary: tight to {BOUNDARY_STEP:g} relative",
        "consistency": f"|slope - expected| <= z*se(slope) "
        f"+ 0.5*ln(1 + {SLOPE_ALLOWANCE:g}/n_min)/ln(n_max/n_min)",
        "existence": f"at most {FAILURE_LIMIT:g} of the replicates at n without an MLE",
        "constants": {
            "BIAS_ALLOWANCE": BIAS_ALLOWANCE,
            "BOUNDARY_BIAS_ALLOWANCE": BOUNDARY_BIAS_ALLOWANCE,
            "EFFICIENCY_ALLOWANCE": EFFICIENCY_ALLOWANCE,
            "COVERAGE_ALLOWANCE": COVERAGE_ALLOWANCE,
            "SHAPE_ALLOWANCE": SHAPE_ALLOWANCE,
            "SLOPE_ALLOWANCE": SLOPE_ALLOWANCE,
            "AGREE_RTOL": AGREE_RTOL,
            "BOUNDARY_STEP": BOUNDARY_STEP,
            "FAILURE_LIMIT": FAILURE_LIMIT,
        },
    }


def _num(v: Any) -> float | None:
    """A JSON number, or None for a missing or non-finite value."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------


def parameter_check(
    name: str,
    kind: str,
    true: float,
    est: np.ndarray,
    crlb: float | None,
    coverage: float | None,
    agreement: tuple[float | None, int, bool | None, str],
    n: int,
    by_size: Mapping[int, np.ndarray],
) -> ParameterCheck:
    """Hold one parameter's simulated estimates against the theory: its five verdicts.

    Parameters
    ----------
    name, kind : str
        The parameter and its estimator's kind (``boundary`` for an order statistic).
    true : float
        The value simulated from.
    est : ndarray
        The estimates at ``n`` of the replicates that have an MLE.
    crlb : float or None
        The Cramér–Rao bound at ``true`` and ``n``.
    coverage : float or None
        Fraction of the replicates' 95 % Wald intervals that contain ``true``.
    agreement : tuple
        ``(largest relative difference or None, replicates compared, passed or None, note)`` from
        :func:`symmle.simulate.agreement.agreement`.
    n : int
        The sample size of ``est``.
    by_size : mapping of int to ndarray
        The estimates with an MLE at every size of the consistency check.

    Returns
    -------
    ParameterCheck
        The statistics, and a verdict per check with its tolerance (see the module docstring).
    """
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
        checks["efficiency"] = Verdict(
            None, note="order statistic: no Fisher information" if boundary else "no Cramér–Rao bound"
        )
    if coverage is not None:
        tol = (
            Z * math.sqrt(0.95 * 0.05 / k)
            + COVERAGE_ALLOWANCE / math.sqrt(n)
            + SHAPE_ALLOWANCE * (skew**2 + abs(kurt - 3.0))
        )
        checks["coverage"] = Verdict(abs(coverage - 0.95) <= tol, coverage, 0.95, tol)
    else:
        checks["coverage"] = Verdict(
            None, note="order statistic: no standard error" if boundary else "no standard error"
        )
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
        name=name,
        kind=kind,
        true=true,
        mean=mean,
        bias=bias,
        bias_mc_error=mc,
        variance=var,
        crlb=crlb,
        efficiency=eff,
        coverage=coverage,
        agreement=worst,
        agreement_rows=rows_compared,
        sizes=sizes,
        rmse=tuple(rmse),
        slope=slope,
        expected_slope=expected,
        checks={c: checks[c] for c in _CHECKS},
    )


def existence_verdict(without: int, reps: int) -> Verdict:
    """Whether few enough replicates at ``n`` lack an MLE: ``without`` of ``reps``, at most
    :data:`FAILURE_LIMIT` of them."""
    return Verdict(
        without <= FAILURE_LIMIT * reps,
        without / reps,
        0.0,
        FAILURE_LIMIT,
        f"{without} of {reps} replicates without an MLE",
    )


def _consistency(
    by_size: Mapping[int, np.ndarray], true: float
) -> tuple[list[float | None], float | None, float | None]:
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
