r"""Likelihood-ratio, Wald and score (Rao) tests of a simple restriction on some parameters.

The null hypothesis fixes some parameters of a model at given values,
:math:`H_0: \theta_R = \theta_0`.  The *null model* is the model with those
parameters turned into constants (same density, same support): it is derived
and fitted by the ordinary machinery, which gives the restricted MLE
:math:`\tilde\theta`.  With :math:`\hat\theta` the unrestricted MLE and
:math:`r` the number of restricted parameters,

* likelihood ratio: :math:`LR = 2\,(\ell(\hat\theta) - \ell(\tilde\theta))`;
* Wald: :math:`W = (\hat\theta_R - \theta_0)^\top [\widehat{\mathrm{Cov}}(\hat\theta)_{RR}]^{-1}
  (\hat\theta_R - \theta_0)`, the covariance being the one ``fit`` reports
  (the inverse expected information :math:`N I(\hat\theta)` where the
  derivation has it, else the inverse observed information);
* score: :math:`S = U(\tilde\theta)^\top \mathcal{I}(\tilde\theta)^{-1} U(\tilde\theta)`
  with the exact symbolic score of the full model and the same kind of
  information, at the restricted MLE;

each referred to :math:`\chi^2_r`.  The exact score is checked against a
finite difference of the compiled log-likelihood before the statistic is
reported; a mismatch is reported and the score statistic withheld.

The chi-square reference needs a regular model: a parameter on which the
support depends (an order-statistic MLE such as the uniform's ``theta``) is
refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sympy as sp

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import DataError, SpecError
from symmle.numbers.fitting import FitResult, fit
from symmle.symbolic.derivation import Derivation, derive

__all__ = ["HypothesisTest", "hypothesis_test", "null_model"]

#: Significance level of the verdict.
LEVEL = 0.05


@dataclass(frozen=True)
class HypothesisTest:
    """The three classical tests of ``H0: theta_R = theta_0``, made by :func:`hypothesis_test`.

    Attributes
    ----------
    model : str
        Name of the model.
    n : int
        Number of observations.
    null : dict of str to float
        The restricted parameters and their values under H0.
    estimates : dict
        ``{"full": {...}, "null": {...}}``: the unrestricted and restricted MLEs
        (the null's include the fixed values).
    log_likelihood : dict
        ``{"full": float, "null": float}``.
    statistics : dict
        ``{"lr"|"wald"|"score": {"statistic": float or None, "df": int, "p": float or None}}``.
    information : str
        ``"expected"`` or ``"observed"``: the information of the Wald and score statistics.
    warnings : list of str
        What the user should know (a score that failed its check...).
    """

    model: str
    n: int
    null: dict[str, float]
    estimates: dict[str, dict[str, float]]
    log_likelihood: dict[str, float]
    statistics: dict[str, dict[str, Any]]
    information: str
    warnings: list[str] = field(default_factory=list)

    @property
    def df(self) -> int:
        """Degrees of freedom: the number of restricted parameters."""
        return len(self.null)

    @property
    def verdict(self) -> str:
        """One line: reject H0 at 5% or not, by the likelihood-ratio p-value."""
        lr = self.statistics["lr"]
        p = lr["p"]
        if p is None:
            return "no verdict: the likelihood-ratio statistic could not be computed"
        pct = f"{LEVEL:.0%}"
        if p < LEVEL:
            return f"reject H0 at {pct} (LR p = {_p(p)})"
        return f"no evidence against H0 at {pct} (LR p = {_p(p)})"

    def to_dict(self) -> dict[str, Any]:
        """The ``symmle test --json`` document (schema 1)."""
        return {
            "schema": 1,
            "model": self.model,
            "n": self.n,
            "null": dict(self.null),
            "estimates": {k: dict(v) for k, v in self.estimates.items()},
            "log_likelihood": dict(self.log_likelihood),
            "statistics": {k: dict(v) for k, v in self.statistics.items()},
            "information": self.information,
            "verdict": self.verdict,
            "warnings": list(self.warnings),
        }

    def to_text(self) -> str:
        """A small table for the terminal (``symmle test``)."""
        h0 = ", ".join(f"{k} = {v:.10g}" for k, v in self.null.items())
        lines = [f"{self.model}: tests of H0: {h0} (n = {self.n})", ""]
        rows = [("test", "statistic", "df", "p-value")]
        names = {"lr": "likelihood ratio", "wald": "Wald", "score": "score (Rao)"}
        for key, label in names.items():
            s = self.statistics[key]
            stat = "n/a" if s["statistic"] is None else f"{s['statistic']:.6g}"
            p = "n/a" if s["p"] is None else _p(s["p"])
            rows.append((label, stat, str(s["df"]), p))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        lines.append("")
        full = ", ".join(f"{k} = {v:.6g}" for k, v in self.estimates["full"].items())
        null = ", ".join(f"{k} = {v:.6g}" for k, v in self.estimates["null"].items())
        lines.append(f"  full model: {full}; log-likelihood = {self.log_likelihood['full']:.10g}")
        lines.append(f"  null model: {null}; log-likelihood = {self.log_likelihood['null']:.10g}")
        if self.information:
            lines.append(f"  Wald and score statistics use the {self.information} information")
        lines.append(f"  p-values from the chi-square distribution with {self.df} df")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        lines.append("")
        lines.append(self.verdict)
        return "\n".join(lines) + "\n"


def _p(p: float) -> str:
    return f"{p:.4g}" if p >= 1e-4 else f"{p:.2e}"


def null_model(model: Any, null: Mapping[str, Any]) -> tuple[Any, dict[str, float]]:
    """``(model, values)``: the model and the checked values of the restricted parameters.

    ``model`` is loaded (a name, spec path, Model or Derivation's model);
    every name of ``null`` must be a parameter of it, and its value a finite
    number in the parameter's domain.

    Raises
    ------
    SpecError
        If the null is empty, names an unknown parameter or a constant, a
        value is not a number or lies outside its domain, the model is a
        vector or regression model, or a restricted parameter is not regular.

    Examples
    --------
    >>> m, values = null_model("normal", {"mu": "0"})
    >>> values
    {'mu': 0.0}
    """
    from symmle.model.build import load_model
    from symmle.model.domains import check_value
    from symmle.model.parse import parse_number

    m = model.model if isinstance(model, Derivation) else load_model(model, validate=False)
    if m.is_vector or m.is_regression:
        kind = "vector" if m.is_vector else "regression"
        raise SpecError(f"hypothesis tests of {kind} models are not yet supported ('{m.name}')")
    if not null:
        raise SpecError("the null hypothesis restricts no parameter: give --null NAME=VALUE[,NAME=VALUE...]")
    params = {q.name: q for q in m.parameters}
    consts = {q.name for q in m.constants}
    values: dict[str, float] = {}
    for name, raw in null.items():
        name = str(name).strip()
        if name not in params:
            if name in consts:
                raise SpecError(
                    f"'{name}' is a constant of {m.name}, not a parameter: only parameters can be tested"
                )
            raise SpecError(
                f"unknown parameter '{name}' in the null hypothesis; parameters of {m.name}: "
                + ", ".join(params)
            )
        q = params[name]
        if isinstance(raw, str):
            value = parse_number(raw, what=f"null value of {name}")
        else:
            try:
                f = float(raw)
            except (TypeError, ValueError):
                raise SpecError(f"null value of {name} is not a number: {raw!r}") from None
            if not math.isfinite(f):
                raise SpecError(f"null value of {name} is not a finite number")
            value = sp.Float(f)
        check_value(name, q.domain, value)
        values[name] = float(value)
    irregular = [q.name for q in m.parameters if m.depends_on_support(q.symbol)]
    if irregular:
        which = ", ".join(irregular)
        raise SpecError(
            f"the chi-square reference does not apply to {m.name}: its support depends on {which} "
            "(the MLE is a sample extreme), so the regularity conditions of the likelihood-ratio, "
            "Wald and score tests fail"
        )
    return m, values


def restricted(m: Any, names: Mapping[str, float]) -> Any:
    """The model with the parameters ``names`` turned into constants (values given at fit time)."""
    kept = tuple(q for q in m.parameters if q.name not in names)
    moved = tuple(q for q in m.parameters if q.name in names)
    return replace(m, parameters=kept, constants=(*m.constants, *moved), sampler=None)


def hypothesis_test(
    model: Any,
    data: Any,
    null: Mapping[str, Any],
    constants: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HypothesisTest:
    """Likelihood-ratio, Wald and score tests of ``H0: theta_R = theta_0``.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        The full model.
    data : array_like
        One-dimensional observations.
    null : mapping
        The restricted parameters and their values (numbers or number text).
    constants : mapping, optional
        Values of the model's constants.
    timeout : float, optional
        Budget in seconds of each symbolic step.

    Returns
    -------
    HypothesisTest

    Raises
    ------
    SpecError
        See :func:`null_model`.
    DataError
        If the data do not fit the model or an MLE does not exist.

    Examples
    --------
    >>> r = hypothesis_test("normal", [0.3, -1.2, 2.1, 1.4, 0.8], {"mu": 0})
    >>> r.df, round(r.statistics["wald"]["statistic"], 6)   # N xbar^2 / sigma2_hat
    (1, 1.856134)
    """
    from scipy.stats import chi2

    m, values = null_model(model, null)
    constants = dict(constants or {})
    x = np.asarray(data, dtype=float).reshape(-1)
    if isinstance(model, Derivation) and not constants:
        d = model
    else:
        d = derive(m, timeout=timeout, constants=constants)
    full: FitResult = fit(d, x, constants, timeout=timeout)
    warnings = list(full.warnings)
    compiled = d.compile(timeout=timeout)
    regular = list(compiled.regular)
    names = [q.name for q in m.parameters]
    if len(values) == len(names):
        null_estimates = dict(values)
        ll_null = compiled.log_likelihood(x, **{**constants, **values})
        if not math.isfinite(ll_null):
            raise DataError("the log-likelihood is not finite at the null values: the data rule them out")
        null_fit_estimates = {}
    else:
        dn = derive(restricted(m, values), timeout=timeout)
        try:
            null_fit = fit(dn, x, {**constants, **values}, timeout=timeout)
        except DataError as exc:
            h0 = ", ".join(f"{k} = {v:g}" for k, v in values.items())
            raise DataError(f"the null model ({h0}): {exc}") from None
        warnings += [f"null model: {w}" for w in null_fit.warnings]
        null_fit_estimates = dict(null_fit.estimates)
        null_estimates = {n: (values[n] if n in values else null_fit_estimates[n]) for n in names}
        ll_null = null_fit.log_likelihood
    ll_full = full.log_likelihood
    df = len(values)

    def reference(stat: float | None) -> dict[str, Any]:
        if stat is None or not math.isfinite(stat):
            return {"statistic": None, "df": df, "p": None}
        return {"statistic": float(stat), "df": df, "p": float(chi2.sf(stat, df))}

    # likelihood ratio
    lr = 2.0 * (ll_full - ll_null)
    slack = 1e-8 * (abs(ll_full) + 1.0)
    if lr < 0:
        if lr < -2 * slack:
            warnings.append(
                "the null model's log-likelihood exceeds the full model's "
                f"({ll_null:.10g} > {ll_full:.10g}): the full fit did not find the global maximum"
            )
        lr = 0.0

    # Wald, with the covariance fit reports
    cov, source = compiled.covariance(x, full.estimates, **constants)
    wald = None
    restricted_names = [n for n in names if n in values]
    if cov is None:
        warnings.append("no Wald statistic: the information at the unrestricted MLE is not available")
    else:
        idx = [regular.index(n) for n in restricted_names]
        diff = np.array([full.estimates[n] - values[n] for n in restricted_names])
        block = np.asarray(cov)[np.ix_(idx, idx)]
        try:
            wald = float(diff @ np.linalg.solve(block, diff))
        except np.linalg.LinAlgError:
            warnings.append("no Wald statistic: the covariance of the restricted estimates is singular")

    # score (Rao), exact, checked against a finite difference
    score = None
    consts_all = compiled.constant_values(**constants)
    stats = compiled.statistics(x, **constants)
    at = {**consts_all, **stats, **null_estimates}
    from symmle.base._runtime import as_data

    xs = as_data(x)
    u = np.array([float(f(at, xs)) for f in compiled.plan["score"]])
    cov0, source0 = compiled.covariance(x, null_estimates, **constants)
    if cov0 is None or not np.all(np.isfinite(u)):
        warnings.append("no score statistic: the score or information at the restricted MLE is not finite")
    else:
        cov0 = np.asarray(cov0)
        bad = _check_score(compiled, x, {**consts_all, **null_estimates}, regular, u, cov0)
        if bad:
            warnings.append("no score statistic: " + bad)
        else:
            score = float(u @ cov0 @ u)
    information = source or source0
    return HypothesisTest(
        model=m.name,
        n=int(x.shape[0]),
        null=values,
        estimates={"full": dict(full.estimates), "null": null_estimates},
        log_likelihood={"full": float(ll_full), "null": float(ll_null)},
        statistics={"lr": reference(lr), "wald": reference(wald), "score": reference(score)},
        information=information,
        warnings=warnings,
    )


def _check_score(
    compiled: Any, x: np.ndarray, at: dict[str, float], regular: list[str], u: np.ndarray, cov: np.ndarray
) -> str:
    """``""`` if the exact score ``u`` matches a finite difference of the log-likelihood, else why not.

    Each component is compared with the five-point central difference of
    the compiled log-likelihood; the tolerance is a small fraction of the
    score's own standard deviation (the square root of the information's
    diagonal) plus the difference's rounding error.
    """
    from symmle.base._runtime import in_domain

    try:
        info = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        return "the information at the restricted MLE is singular"
    domains = dict(compiled.plan["domains"])
    ll0 = compiled.log_likelihood(x, **at)
    for i, name in enumerate(regular):
        theta = at[name]
        h = 1e-4 * abs(theta) if theta != 0 else 1e-4
        if domains.get(name) == "unit":
            h = 1e-4 * min(theta, 1 - theta)
        points = [theta + k * h for k in (-2, -1, 1, 2)]
        if not all(in_domain(p, domains.get(name, "real")) for p in points):
            continue
        ll = [compiled.log_likelihood(x, **{**at, name: p}) for p in points]
        fd = (ll[0] - 8 * ll[1] + 8 * ll[2] - ll[3]) / (12 * h)
        scale = math.sqrt(abs(info[i, i])) if math.isfinite(info[i, i]) else 0.0
        tol = 1e-4 * (abs(u[i]) + scale) + 1e-12 * (abs(ll0) + 1.0) / h
        if not (math.isfinite(fd) and abs(fd - u[i]) <= tol):
            return (
                f"the exact score of {name} ({u[i]:.10g}) disagrees with a finite difference "
                f"of the log-likelihood ({fd:.10g}) at the restricted MLE"
            )
    return ""
