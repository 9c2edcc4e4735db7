"""Fitting a model to data: estimates, standard errors, intervals, log-likelihood."""

from __future__ import annotations

import json
import math
import warnings as _warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from symmle.base import _runtime
from symmle.base._runtime import EstimateWarning, in_domain
from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import DataError, DerivationError, SpecError
from symmle.base.quadrature import DIRECT_TERMS
from symmle.base.terminal import printable
from symmle.numbers.compiled import CompiledModel
from symmle.numbers.data import fixed_support, validate_data
from symmle.symbolic.derivation import Derivation, derive

__all__ = ["CI_METHODS", "INTERVAL_SCALE", "FitResult", "fit", "interval"]

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054

#: The open interval a parameter of each domain lives in: its 95% interval is made on the scale that
#: maps it onto the real line (``log(theta - lo)`` below a finite ``lo`` only, ``log(hi - theta)``
#: under a finite ``hi`` only, ``logit((theta - lo)/(hi - lo))`` between two), so it stays inside.
INTERVAL_SCALE: dict[str, tuple[float, float]] = {
    "real": (-math.inf, math.inf),
    "integer": (-math.inf, math.inf),
    "positive": (0.0, math.inf),
    "nonnegative": (0.0, math.inf),
    "positive_integer": (0.0, math.inf),
    "unit": (0.0, 1.0),
}

#: The choices of ``fit(..., ci=...)`` and ``symmle fit --ci``.
CI_METHODS = ("transformed", "wald", "profile")

#: How each interval was made, for the line under the table.
_CI_TEXT = {
    "wald": "as estimate +/- 1.96 se",
    "wald-log": "on the log scale, mapped back (delta method)",
    "wald-logit": "on the logit scale, mapped back (delta method)",
}

#: Interval methods that :func:`interval` makes from an estimate and its standard error alone.
_WALD_METHODS = ("transformed", "wald")


def interval(
    value: float, se: float, domain: str, method: str = "transformed"
) -> tuple[tuple[float, float], str]:
    """The 95% interval of a parameter of ``domain`` estimated at ``value`` with standard error ``se``.

    ``method="wald"``: ``value +/- Z95 * se``.  ``"transformed"``: the Wald
    interval of the parameter's coordinate on the real line
    (:data:`INTERVAL_SCALE`), with the standard error carried over by the
    delta method (``se(log theta) = se / theta``), mapped back; it lies in
    the domain and is not symmetric.  A parameter whose domain is the real
    line, or whose estimate sits on the end of its domain, gets the Wald
    interval.

    Returns
    -------
    ((low, high), how)
        ``how`` is ``"wald"``, ``"wald-log"`` or ``"wald-logit"``.

    Examples
    --------
    >>> (lo, hi), how = interval(0.63, 0.40, "positive")
    >>> how, round(lo, 4), round(hi, 4), round(lo * hi, 4) == round(0.63**2, 4)
    ('wald-log', 0.1815, 2.1867, True)
    >>> (lo, hi), how = interval(0.63, 0.40, "positive", "wald")
    >>> how, round(lo, 4), round(hi, 4)
    ('wald', -0.154, 1.414)
    >>> [round(v, 4) for v in interval(0.9, 0.1, "unit")[0]]
    [0.5049, 0.9876]
    """
    if method not in CI_METHODS:
        raise SpecError(f"unknown interval method {method!r}: choose one of {', '.join(CI_METHODS)}")
    if method not in _WALD_METHODS:  # profile intervals need the likelihood: symmle.numbers.profile_ci
        raise SpecError(f"{method} intervals need the likelihood: use fit(..., ci={method!r})")
    lo, hi = INTERVAL_SCALE[domain]
    if method == "wald" or not (lo < value < hi) or (math.isinf(lo) and math.isinf(hi)):
        return (value - Z95 * se, value + Z95 * se), "wald"
    if math.isfinite(lo) and math.isfinite(hi):
        u = (value - lo) / (hi - lo)
        z, w = math.log(u) - math.log1p(-u), Z95 * se / ((hi - lo) * u * (1 - u))
        return (lo + (hi - lo) * _expit(z - w), lo + (hi - lo) * _expit(z + w)), "wald-logit"
    w = Z95 * se / (value - lo if math.isfinite(lo) else hi - value)
    if math.isfinite(lo):
        return (lo + (value - lo) * _exp(-w), lo + (value - lo) * _exp(w)), "wald-log"
    return (hi - (hi - value) * _exp(w), hi - (hi - value) * _exp(-w)), "wald-log"


def _exp(t: float) -> float:
    return math.exp(t) if t < 709.0 else math.inf


def _expit(t: float) -> float:
    return 1 / (1 + math.exp(-t)) if t >= 0 else math.exp(t) / (1 + math.exp(t))


@dataclass(frozen=True)
class FitResult:
    """The maximum-likelihood fit of a model to data, made by :func:`fit`.

    Every mapping is keyed by parameter name, in the model's order; ``None``
    marks a quantity that does not exist.

    Attributes
    ----------
    model : str
        Name of the model.
    n : int
        Number of observations.
    estimates : dict of str to float
        The maximum-likelihood estimates.
    kind : dict of str to str
        How each estimate was obtained: ``closed_form``, ``numeric`` or
        ``boundary`` (an order statistic).
    stderr : dict of str to float or None
        Asymptotic standard errors; for a boundary kind, the standard
        deviation of the order statistic's exact distribution.
    ci95 : dict of str to (float, float) or None
        95% intervals (none for boundary kinds): see :func:`interval`, or
        :mod:`symmle.numbers.profile_ci` for ``ci="profile"``.
    log_likelihood : float
        The log-likelihood at the estimates.
    information : str
        ``"expected"`` or ``"observed"``: the information the standard
        errors come from (empty if there is none).
    warnings : list of str
        What the user should know about the fit.
    ci_method : dict of str to str or None
        How each interval was made: ``"wald"`` (estimate +/- 1.96 se),
        ``"wald-log"`` or ``"wald-logit"`` (Wald on the log or logit
        scale, mapped back), ``"profile"`` (profile likelihood, see
        :mod:`symmle.numbers.profile_ci`); ``None`` where there is no interval.

    Examples
    --------
    >>> r = fit("poisson", [1, 3, 2, 2])
    >>> r.n, r.estimates, r.kind, r.information, r.ci_method
    (4, {'lam': 2.0}, {'lam': 'closed_form'}, 'expected', {'lam': 'wald-log'})
    >>> [round(v, 4) for v in r.ci95["lam"]]
    [1.0002, 3.9992]
    >>> [round(v, 4) for v in fit("poisson", [1, 3, 2, 2], ci="wald").ci95["lam"]]
    [0.6141, 3.3859]
    """

    model: str
    n: int
    estimates: dict[str, float]
    kind: dict[str, str]
    stderr: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    log_likelihood: float
    information: str = ""  #: "expected" or "observed": the source of the standard errors
    warnings: list[str] = field(default_factory=list)
    ci_method: dict[str, str | None] = field(default_factory=dict)
    #: the names of the coordinates of a vector model's observations, in order (else ``None``)
    columns: list[str] | None = None
    #: the categories of a categorical model's labels, in order (else ``None``)
    categories: list[str] | None = None
    #: how many numbers the fit estimated (a simplex of K probabilities counts K - 1, a symmetric
    #: D x D matrix D(D + 1)/2): what AIC and BIC count; ``None`` where unknown
    n_parameters: int | None = None
    #: ``"map"`` for a fit with priors (maximum a posteriori), else ``"mle"``
    estimator: str = "mle"
    #: the priors of a MAP fit (their JSON entries), else ``None``
    prior: list | None = None
    #: the log-posterior (log-likelihood plus log-prior, up to a constant) at a MAP estimate
    log_posterior: float | None = None
    #: derived quantities (``derived=``, ``--derived NAME=EXPR``): ``{NAME: {"expr", "estimate", "stderr",
    #: "ci95", "ci_method"}}`` (:mod:`symmle.numbers.derived_fit`)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: censored data (``--censored``, ``--interval``): ``{"n_events", "n_censored", ...}``, else ``None``
    censored: dict[str, int] | None = None

    @property
    def aic(self) -> float | None:
        """Akaike's information criterion, ``2 k - 2 log L`` (``None`` without ``n_parameters``)."""
        if self.n_parameters is None or not math.isfinite(self.log_likelihood):
            return None
        return 2.0 * self.n_parameters - 2.0 * self.log_likelihood

    @property
    def bic(self) -> float | None:
        """The Bayesian information criterion, ``k log n - 2 log L``."""
        if self.n_parameters is None or not math.isfinite(self.log_likelihood) or self.n < 1:
            return None
        return math.log(self.n) * self.n_parameters - 2.0 * self.log_likelihood

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document of ``symmle fit --json`` (schema 1).

        Returns
        -------
        dict
            ``schema``, ``model``, ``n``, ``estimates``, ``kind``,
            ``stderr``, ``ci95`` (``[low, high]`` lists; an end beyond
            double precision is ``None``), ``ci_method`` (see
            :class:`FitResult`), ``log_likelihood``, ``information`` and
            ``warnings``; ``None`` marks what does not exist.

        Examples
        --------
        >>> doc = fit("poisson", [1, 3, 2, 2]).to_dict()
        >>> doc["schema"], doc["estimates"], round(doc["log_likelihood"], 6)
        (1, {'lam': 2.0}, -5.632876)
        """
        doc = {
            "schema": 1,
            "model": self.model,
            "n": self.n,
            "estimates": {k: _plain(v) for k, v in self.estimates.items()},
            "kind": self.kind,
            "stderr": {k: _plain(v) for k, v in self.stderr.items()},
            "ci95": {k: _interval_doc(v) for k, v in self.ci95.items()},
            "ci_method": {k: self.ci_method.get(k) for k in self.ci95},
            "log_likelihood": self.log_likelihood,
            "aic": self.aic,
            "bic": self.bic,
            "information": self.information or None,
            "warnings": self.warnings,
        }
        if self.estimator == "map":  # the estimates are MAP: say so, with the priors
            doc["estimator"] = "map"
            doc["prior"] = self.prior
            doc["log_posterior"] = self.log_posterior
            doc["information"] = "posterior curvature" if self.information else None
        if self.columns is not None:
            doc["columns"] = list(self.columns)
        if self.categories is not None:
            doc["categories"] = list(self.categories)
        if self.censored is not None:
            doc["censored"] = dict(self.censored)
        if self.derived:
            from symmle.numbers.derived_fit import derived_doc

            doc["derived"] = derived_doc(self.derived)
        return doc

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """Return the fit as a table for the terminal (``symmle fit``).

        Returns
        -------
        str
            A line naming the model and ``n``, a table of estimates,
            standard errors, 95% intervals and kinds, the log-likelihood,
            where the standard errors come from, how the intervals were
            made, and any warnings.

        Examples
        --------
        >>> print(fit("poisson", [1, 3, 2, 2]).to_text(), end="")
        poisson: maximum-likelihood fit to n = 4 observations
        <BLANKLINE>
          parameter  estimate  std. error  95% interval       kind
          lam        2         0.7071      [1.0002, 3.99922]  closed_form
        <BLANKLINE>
          log-likelihood = -5.632876386
          AIC = 13.26575277, BIC = 12.65204713 (k = 1)
          standard errors from the expected information
          95% Wald intervals: lam on the log scale, mapped back (delta method)
        """
        rows = [("parameter", "estimate", "std. error", "95% interval", "kind")]
        for name, value in self.estimates.items():
            se = self.stderr.get(name)
            ci = self.ci95.get(name)
            for label, index in _entries(name, value):
                at = lambda v, index=index: v if index is None else np.asarray(v)[index]  # noqa: E731
                rows.append(
                    (
                        label,
                        f"{at(value):.10g}",
                        "n/a" if se is None else f"{at(se):.4g}",
                        "n/a" if ci is None else f"[{at(ci[0]):.6g}, {at(ci[1]):.6g}]",
                        self.kind[name],
                    )
                )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        how = "maximum a posteriori (MAP)" if self.estimator == "map" else "maximum-likelihood"
        lines = [f"{self.model}: {how} fit to n = {self.n} observations", ""]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        for what, names in (("coordinates", self.columns), ("categories", self.categories)):
            if names is not None:
                lines += ["", f"  {what}: " + ", ".join(f"{k} = {c}" for k, c in enumerate(names, 1))]
        if self.censored is not None:
            c = self.censored
            lines += ["", f"  censored: {c['n_censored']} of {self.n} observations ({c['n_events']} exact)"]
        lines += ["", f"  log-likelihood = {self.log_likelihood:.10g}"]
        if self.aic is not None:
            lines.append(f"  AIC = {self.aic:.10g}, BIC = {self.bic:.10g} (k = {self.n_parameters})")
        if self.estimator == "map":
            lines.append(f"  log-posterior = {self.log_posterior:.10g} (up to a constant)")
            lines += ["  prior: " + p["text"] for p in self.prior or []]
        if self.information and self.estimator == "map":
            lines.append(
                "  standard errors from the curvature of the log-posterior at the MAP "
                "(a normal approximation of the posterior)"
            )
        elif self.information:
            lines.append(f"  standard errors from the {self.information} information")
        methods: dict[str, list[str]] = {}
        for name, how in self.ci_method.items():
            if how is not None and self.ci95.get(name) is not None:
                if isinstance(how, str):
                    methods.setdefault(how, []).append(name)
                    continue
                # one method per entry of a vector or matrix parameter: the entries by name
                per_entry = np.asarray(how, dtype=object)
                for label, index in _entries(name, self.estimates[name]):
                    methods.setdefault(per_entry[index], []).append(label)
        head = "  95% Wald intervals: "
        for how, names in methods.items():
            if how == "profile":
                from symmle.numbers.profile_ci import PROFILE_TEXT

                lines.append(f"  95% CI: profile likelihood for {', '.join(names)} ({PROFILE_TEXT})")
                continue
            lines.append(f"{head}{', '.join(names)} {_CI_TEXT[how]}")
            head = " " * len(head)
        if self.derived:
            from symmle.numbers.derived_fit import derived_lines

            lines += derived_lines(self.derived)
        if self.warnings:
            lines += ["", "Warnings"] + [f"  - {w}" for w in self.warnings]
        return printable("\n".join(lines) + "\n")  # the model's name is untrusted text


def _entries(name: str, value: Any) -> list[tuple[str, tuple | None]]:
    """Table rows of one estimate: the name, or one row per entry (a matrix by its lower triangle)."""
    v = np.asarray(value)
    if v.ndim == 0:
        return [(name, None)]
    if v.ndim == 1:
        return [(f"{name}[{i + 1}]", (i,)) for i in range(v.shape[0])]
    return [(f"{name}[{i + 1},{j + 1}]", (i, j)) for j in range(v.shape[1]) for i in range(j, v.shape[0])]


def _plain(v: Any) -> Any:
    """A number, list or list of rows for JSON (non-finite numbers as ``None``)."""
    if v is None:
        return None
    if np.ndim(v) == 0:
        return float(v) if math.isfinite(float(v)) else None
    return [_plain(e) for e in np.asarray(v, dtype=float)]


def _interval_doc(v: Any) -> Any:
    """``[low, high]`` for a scalar; the same pair per entry for a vector or matrix."""
    if v is None:
        return None
    lo, hi = v
    if np.ndim(lo) == 0:
        return [e if math.isfinite(e) else None for e in v]
    return _plain(np.stack([np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)], axis=-1))


def fit(
    model: Any,
    data: Any,
    constants: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    ci: str = "transformed",
    columns: list[str] | None = None,
    link: Mapping[str, str] | None = None,
    formula: str | None = None,
    y: str | None = None,
    x: list[str] | None = None,
    offset: str | None = None,
    prior: Mapping[str, str] | Any = None,
    prior_pdf: Any = None,
    derived: Any = None,
    mixture: int | None = None,
    seed: int = 0,
    components: Any = None,
) -> FitResult:
    """Fit ``model`` to ``data`` by maximum likelihood.

    The data are checked before anything is solved: each observation must
    be a finite number inside the support (an integer for a discrete
    model), with a log-density that is finite for some value of the
    parameters (else the likelihood is 0 or unbounded whatever they are).
    A :class:`~symmle.base.errors.DataError` names the first row that is not.

    Parameters
    ----------
    model : str, Path, Model or Derivation
    data : array_like
        One-dimensional observations (a memory-mapped array is reduced in chunks); for a
        vector model, an (N, D) array of rows.
    constants : mapping, optional
        Values of the model's constants, by name.
    ci : {"transformed", "wald", "profile"}, optional
        How the 95% intervals are made (:func:`interval`): by default on the
        log scale for a positive parameter and the logit scale for one in
        (0, 1), so they stay inside the domain; ``"wald"`` for
        estimate +/- 1.96 se for every parameter; ``"profile"`` for the
        profile-likelihood interval, ``2 (l_hat - l_p) <= 3.841``
        (:mod:`symmle.numbers.profile_ci`; not for vector, regression or MAP
        fits; derived quantities keep their delta-method interval).
    derived : mapping of NAME to EXPR, or iterable of "NAME=EXPR", optional
        Derived quantities ``g(theta)`` of a scalar-parameter model: ``g`` at the estimates
        (invariance) with its delta-method standard error and 95% interval, in ``.derived``
        (:mod:`symmle.numbers.derived_fit`).
    link : mapping, optional
        ``{PARAM: LINK}``: a regression of the model (:mod:`symmle.model.link`);
        a model with a ``[link]`` of its own is a regression too.  ``data`` is
        then a table (a pandas DataFrame, a mapping of columns, or a file path;
        or a :class:`~symmle.numbers.design.Design` already made)
        and ``formula`` (``"y ~ a + C(b)"``) or ``y`` and ``x`` (column names)
        say which columns are the response and the covariates; ``offset`` names
        a column added to the linear predictor.  The result is a
        :class:`~symmle.numbers.regression_result.RegressionResult`.
    prior, prior_pdf : optional
        Priors (``{PARAM: "FAMILY(NAME=VALUE, ...)"}``) and inline prior densities: the estimates
        are then maximum a posteriori (MAP), with standard errors from the curvature of the
        log-posterior (see :meth:`symmle.Model.with_prior`).
    mixture : int, optional
        K: fit a K-component mixture of the family by EM
        (:mod:`symmle.numbers.mixture_em`, for a vector family
        :mod:`symmle.numbers.mixture_vector`; K = 1 is the plain fit); ``seed``
        makes its random starts reproducible.  The result is a
        :class:`~symmle.numbers.mixture_em.MixtureResult`.
    components : iterable of int or str, optional
        Numbers of components to try (``range(1, 6)``, ``"1..5"``): the mixture of
        least BIC is returned, its ``selection`` listing every K tried
        (:func:`~symmle.numbers.mixture_em.fit_components`).

    Examples
    --------
    >>> import numpy as np
    >>> r = fit("poisson", np.array([1, 3, 2, 2]))
    >>> r.estimates["lam"], round(r.stderr["lam"], 6)
    (2.0, 0.707107)
    """
    if ci not in CI_METHODS:
        raise SpecError(f"unknown interval method {ci!r}: choose one of {', '.join(CI_METHODS)}")
    constants = {k: _number(k, v) for k, v in (constants or {}).items()}
    if link:
        from symmle.model.build import load_model

        base = model.model if isinstance(model, Derivation) else load_model(model, validate=False)
        model = base.with_link(link)
    if prior or prior_pdf:
        from symmle.model.build import load_model

        base = model.model if isinstance(model, Derivation) else load_model(model, validate=False)
        model = base.with_prior(prior or (), prior_pdf or ())
    d = model if isinstance(model, Derivation) else derive(model, timeout=timeout, constants=constants)
    m = d.model
    if mixture is None and getattr(m, "mixture", 0):  # a spec's [mixture] table
        mixture = m.mixture
    if mixture is not None or components is not None:
        from symmle.numbers.mixture_em import check_components

        mixing = components is not None or check_components(mixture, "mixture") > 1
        if mixing and (m.prior or derived or ci == "profile"):
            raise SpecError(
                "a mixture is fitted by maximum likelihood with Wald intervals: "
                "no prior, derived or ci='profile'"
            )
    if ci == "profile":
        from symmle.numbers.profile_ci import check_profile_supported

        check_profile_supported(d)
    if derived:
        from symmle.model.derived import parse_derived

        parse_derived(derived, m)  # refused before the data are read (scalar-parameter models only)
    if (mixture is not None or components is not None) and m.is_regression:
        raise SpecError("a mixture of regressions is not supported: drop --mixture or the link")
    if m.is_regression:
        from symmle.numbers.design import Design, load_design
        from symmle.numbers.regression_fit import fit_regression

        if isinstance(data, Design):
            design = data
        else:
            design = load_design(data, formula=formula, y=y, x=x, offset=offset)
        return fit_regression(d, design, constants, ci=ci, timeout=timeout)
    if formula is not None or y is not None or x is not None or offset is not None:
        raise SpecError(
            f"formula, y, x and offset make a regression: give '{m.name}' a link (--link PARAM=LINK)"
        )
    if components is not None:
        from symmle.numbers.mixture_em import fit_components

        if mixture is not None:
            raise SpecError(
                "give the number of components (mixture) or a range to choose from (components), not both"
            )
        if m.is_vector:
            from symmle.numbers.mixture_vector import fit_vector_components

            return fit_vector_components(
                d, data, components, constants, columns=columns, seed=seed, ci=ci, timeout=timeout
            )
        return fit_components(d, data, components, constants, seed=seed, ci=ci)
    if mixture is not None:
        from symmle.numbers.mixture_em import check_components, fit_mixture

        if check_components(mixture, "mixture") > 1 and m.is_vector:
            from symmle.numbers.mixture_vector import fit_vector_mixture

            return fit_vector_mixture(
                d, data, int(mixture), constants, columns=columns, seed=seed, ci=ci, timeout=timeout
            )
        if check_components(mixture, "mixture") > 1:
            return fit_mixture(d, data, int(mixture), constants, seed=seed, ci=ci)
    if m.is_vector:
        from symmle.numbers.vector_fit import fit_vector

        return fit_vector(d, data, constants, columns=columns, timeout=timeout, ci=ci)
    x = data if isinstance(data, np.memmap) else np.asarray(data, dtype=float).reshape(-1)
    missing = {name: e for name, e in d.solutions.items() if e.kind == "none"}
    if missing:
        name, e = next(iter(missing.items()))
        raise DerivationError(f"symmle derived no estimator of {name}, so it cannot fit this model: {e.note}")
    compiled: CompiledModel = d.compile(timeout=timeout)
    # a missing constant is named before the data are read
    named = compiled.constant_values(**constants)
    consts = {q.symbol: named[q.name] for q in m.constants}
    lo, hi = fixed_support(m.support, set(m.parameter_symbols), consts)
    validate_data(x, lo=lo, hi=hi, discrete=m.discrete, variable=m.variable.name)
    _check_density(compiled, x, named, lo, hi, m.variable.name)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always", EstimateWarning)
        estimates, stderr, source = compiled.estimate_with_stderr(x, **constants)
    warnings = list(w for w in d.warnings if "must be solved numerically" not in w)
    for w in caught:
        if issubclass(w.category, EstimateWarning):
            warnings.append(str(w.message))
        else:  # not ours: passed on as it came
            _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for q in m.parameters:
        v = estimates.get(q.name)
        if v is None or not np.isfinite(v):
            raise DataError(
                f"no {'MAP' if d.prior else 'maximum-likelihood'} estimate of {q.name} for these data"
            )
        if not in_domain(v, q.domain):
            raise DataError(
                f"the {'MAP estimate' if d.prior else 'MLE'} of {q.name} does not exist for these data: "
                f"the likelihood is largest at {q.name} = {v:g}, on the boundary of its domain ({q.domain})"
            )
    at = {**consts, **{q.symbol: estimates[q.name] for q in m.parameters}}
    if any(e.free_symbols & set(m.parameter_symbols) for e in m.support):
        # the data must lie in the support at the estimate (boundary estimators bind it)
        lo_hat, hi_hat = (float(sp.sympify(e).subs(at)) for e in m.support)
        validate_data(
            x,
            lo=lo_hat - 1e-12 * abs(lo_hat),
            hi=hi_hat + 1e-12 * abs(hi_hat),
            discrete=m.discrete,
            variable=m.variable.name,
        )
    for name, kind in compiled.kinds.items():
        if kind != "boundary":
            continue
        extreme = extreme_of(d, name, at)
        se = order_statistic_stderr(d, name, at, int(x.shape[0]))
        if se is None and extreme is not None:
            warnings.append(
                f"no standard error for {name}: the distribution of its MLE, a sample extreme, "
                "could not be summed or integrated to the accuracy needed"
            )
        elif se is None:
            warnings.append(
                f"no standard error for {name}: its MLE is not a linear function of the sample minimum "
                "or maximum, whose distribution symmle can integrate"
            )
        else:
            stderr[name] = se
            which = "maximum" if extreme and extreme[0] else "minimum"
            plain = d.solutions[name].expr in d.likelihood.order_statistics
            warnings.append(
                f"the standard error of {name} is the standard deviation of "
                + (f"the sample {which}" if plain else f"its MLE, a multiple of the sample {which},")
                + " at the estimate (exact, not asymptotic); "
                "it has no 95% Wald interval, since its distribution is not normal"
            )
    domains = {q.name: q.domain for q in m.parameters}
    ci95: dict[str, tuple[float, float] | None] = {}
    ci_method: dict[str, str | None] = {}
    for k, se in stderr.items():
        # an order statistic's distribution is not normal: no interval of this kind
        if se is None or compiled.kinds[k] == "boundary":
            ci95[k], ci_method[k] = None, None
        elif ci != "profile":
            ci95[k], ci_method[k] = interval(estimates[k], se, domains[k], ci)
    if ci == "profile":  # every regular parameter: see symmle.numbers.profile_ci
        from symmle.numbers.profile_ci import profile_intervals

        profiled, cautions = profile_intervals(d, compiled, x, estimates, stderr, constants)
        for k, v in profiled.items():
            ci95[k], ci_method[k] = v, "profile"
        warnings += cautions
    loglik = compiled.log_likelihood(x, **{**constants, **estimates})
    extra: dict[str, Any] = {}
    if d.prior is not None:  # MAP: the priors and the log-posterior at the estimate
        from symmle.numbers.prior_fit import map_fields

        extra = map_fields(d, loglik, {**named, **estimates})
    found: dict[str, dict[str, Any]] = {}
    if derived:  # g(theta_hat) and its delta-method standard error: see symmle.numbers.derived_fit
        from symmle.numbers.derived_fit import fit_derived

        how = "transformed" if ci == "profile" else ci  # a derived quantity's interval: delta method
        found, notes = fit_derived(d, compiled, x, estimates, constants, derived, ci=how, timeout=timeout)
        warnings += notes
    return FitResult(
        model=m.name,
        n=int(x.shape[0]),
        estimates=estimates,
        kind=dict(compiled.kinds),
        stderr=stderr,
        ci95=ci95,
        log_likelihood=loglik,
        information=source,
        warnings=warnings,
        ci_method=ci_method,
        n_parameters=len(m.parameters),
        **extra,
        derived=found,
    )


def _check_density(
    compiled: CompiledModel, x: Any, values: Mapping[str, float], lo: float, hi: float, variable: str
) -> None:
    """Refuse the first row where the log-density is finite for no parameter value (before solving).

    See :func:`symmle.base._runtime.check_density`: without it such a row
    surfaces as a failure of the solver ("not finite anywhere on the search
    grid"), which does not name it.
    """
    plan = {**compiled.plan, "variable": variable, "support": (lambda v, c: lo, lambda v, c: hi)}
    try:
        _runtime.check_density(plan, x, values)
    except _runtime.BadData as exc:
        raise DataError(
            f"row {exc.index + 1} of the data, {variable} = {_runtime.show_number(exc.value)}, {exc.reason}"
        ) from None


def order_statistic_stderr(d: Derivation, name: str, at: Mapping[sp.Symbol, float], n: int) -> float | None:
    """Standard deviation of the sample maximum (or minimum) of ``n`` draws at parameter values ``at``.

    For a parameter whose MLE is the sample maximum ``M`` of a support that
    ends at ``b``, ``P(b - M > s) = (1 - eps(s))**n`` with ``eps(s)`` the mass
    of ``(b - s, b]`` (mirrored for a minimum), so
    ``E[b - M] = int_0^inf P(b - M > s) ds`` and
    ``E[(b - M)**2] = int_0^inf 2 s P(b - M > s) ds`` by quadrature (sums for
    a discrete model).  ``None`` if the MLE is not a plain order statistic or
    the integrals fail.

    Examples
    --------
    >>> import sympy as sp
    >>> d = derive("uniform")
    >>> theta = d.model.parameter_symbols[0]
    >>> round(order_statistic_stderr(d, "theta", {theta: 2.0}, 10), 6)   # 2*sqrt(10/(11**2*12)) = 0.165977
    0.165977
    """
    found = extreme_of(d, name, at)
    if found is None:
        return None
    upper, slope = found
    se = _extreme_stderr(d, upper, at, n)
    return None if se is None else abs(slope) * se


def extreme_of(d: Derivation, name: str, at: Mapping[sp.Symbol, float]) -> tuple[bool, float] | None:
    """``(upper, a)`` if the MLE of ``name`` is ``a*M + b``, ``M`` the sample maximum (``upper``) or minimum.

    ``a`` and ``b`` may involve the constants (valued by ``at``), not the data:
    then the MLE's standard deviation is ``|a|`` times that of ``M``, exactly.
    ``None`` for any other function of the sample.

    Examples
    --------
    >>> d = derive("uniform")
    >>> extreme_of(d, "theta", {})
    (True, 1.0)
    """
    expr = d.solutions[name].expr
    if expr is None:
        return None
    z = sp.Dummy("z")
    for upper, stat in ((True, d.likelihood.order_statistics[1]), (False, d.likelihood.order_statistics[0])):
        if stat is None or not expr.has(stat):
            continue
        line = expr.subs(stat, z)
        slope = sp.diff(line, z)
        if line.has(*d.likelihood.order_statistics) or slope.has(z):
            return None
        try:
            a = float(slope.subs(at))
        except (TypeError, ValueError):
            return None
        return (upper, a) if np.isfinite(a) and a != 0 else None
    return None


def _extreme_stderr(d: Derivation, upper: bool, at: Mapping[sp.Symbol, float], n: int) -> float | None:
    """Standard deviation of the sample maximum (``upper``) or minimum of ``n`` draws at ``at``."""
    from scipy import integrate

    from symmle.base.numeric import to_function

    m = d.model
    try:
        lo, hi = m.support_at(at)
        f = to_function([m.variable], m.density.subs(at))
    except (TypeError, ValueError):
        return None
    end = hi if upper else lo
    if not np.isfinite(end):
        return None
    sign = -1.0 if upper else 1.0  # from the end into the support
    length = (hi - lo) if np.isfinite(hi - lo) else np.inf

    def density(t: float) -> float:
        v = float(f(t))
        return v if np.isfinite(v) and v > 0 else 0.0

    if m.discrete:
        # P(distance >= k) = (1 - mass of the k values nearest the end)**n
        mass, first, second, k = 0.0, 0.0, 0.0, 1
        while k <= min(length, DIRECT_TERMS):
            mass += density(end + sign * (k - 1))
            tail = float(np.exp(n * np.log1p(-min(mass, 1.0)))) if mass < 1 else 0.0
            first += tail
            second += (2 * k - 1) * tail
            if tail < 1e-300 or (tail < 1e-17 * first):
                break
            k += 1
        else:
            if k <= length:  # the distance spreads over more values: never one by one, never an array of them
                from symmle.model.density import density_function

                pmf = density_function(m, at)
                found = _extreme_distance_sums(pmf, end, sign, k, length, n, mass, first, second)
                if found is None:
                    return None
                first, second = found
        var = second - first**2
        return float(np.sqrt(var)) if var >= 0 else None

    def survival(s: float) -> float:
        if s <= 0:
            return 1.0
        a, b = sorted((end, end + sign * s))
        eps = integrate.quad(density, a, b, limit=200, epsabs=0, epsrel=1e-12)[0]
        return float(np.exp(n * np.log1p(-eps))) if eps < 1 else 0.0

    # the distance's scale: where survival falls to 1e-30
    top = min(length, 1.0) if np.isfinite(length) else 1.0
    while survival(top) > 1e-30 and top < length and top < 1e12:
        top = min(top * 4, length)
    low = top
    while survival(low / 4) < 1e-30 and low > 1e-300:
        low /= 4
    with np.errstate(all="ignore"):
        first = integrate.quad(survival, 0, low, limit=200, epsabs=0, epsrel=1e-10)[0]
        second = integrate.quad(lambda s: 2 * s * survival(s), 0, low, limit=200, epsabs=0, epsrel=1e-10)[0]
    var = second - first**2
    return float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else None


def _extreme_distance_sums(
    pmf, end: float, sign: float, k: int, length: float, n: int, mass: float, first: float, second: float
) -> tuple[float, float] | None:
    """Carry ``sum_k P(D >= k)`` and ``sum_k (2k - 1) P(D >= k)`` on from ``k`` to ``length``.

    ``D`` is the distance of the extreme of ``n`` draws from the support's
    ``end``: ``P(D >= k) = (1 - M(k))**n`` with ``M(k)`` the mass of the
    ``k`` values nearest the end (``mass`` is ``M(k - 1)``).  ``P(D >= k)``
    falls with ``k``: it is summed term by term (in blocks) for
    ``DIRECT_BUDGET`` values, then by panels of doubling width
    (:func:`symmle.base.quadrature.panel_rule`), ``M`` at the panel's nodes
    coming from sums of the pmf between them
    (:func:`symmle.base.quadrature.sum_support`), until ``P(D >= k)`` is
    negligible.  ``None`` if a sum did not settle or the panels disagree
    with their nested rule.
    """
    from symmle.base.quadrature import (
        DIRECT_BUDGET,
        PANEL_MIN,
        panel_nodes,
        panel_rule,
        sum_support,
    )

    def g(j):  # the pmf at distance j from the end
        return pmf(end + sign * np.asarray(j, dtype=float))

    def g_log(j):
        return pmf.log(end + sign * np.asarray(j, dtype=float))

    def survival(m: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.where(m < 1, np.exp(n * np.log1p(-np.minimum(m, 1.0))), 0.0)

    err1 = err2 = 0.0
    size, done = 1 << 12, 0
    while k <= length:
        left = int(length - k + 1)
        if done < DIRECT_BUDGET or left < PANEL_MIN:
            ks = np.arange(k, k + min(size, left), dtype=float)
            ms = mass + np.cumsum(g(ks - 1))
            tail = survival(ms)
            part1, part2 = float(tail.sum()), float(((2 * ks - 1) * tail).sum())
            size, done = min(size * 2, 1 << 16), done + ks.size
        else:
            width = min(size, left)
            ks = k + panel_nodes(width)
            ms = np.empty(ks.size)
            acc, j = mass, k - 1  # M(ks[i]) = M(k - 1) + the pmf at distances k - 1 .. ks[i] - 1
            for i, kk in enumerate(ks):
                part, ok = sum_support(g, j, kk - 1, log_weight=g_log, direct=PANEL_MIN)
                if not ok:
                    return None
                acc, j = acc + part, kk
                ms[i] = acc
            tail = survival(ms)
            part1, e1, _, _ = panel_rule(None, k, width, values=tail)
            part2, e2, _, _ = panel_rule(None, k, width, values=(2 * ks - 1) * tail)
            err1, err2 = err1 + e1, err2 + e2
            size *= 2
        first, second = first + part1, second + part2
        k, mass = int(ks[-1]) + 1, float(ms[-1])
        if tail[-1] < 1e-300 or tail[-1] < 1e-17 * first:
            break
    # the variance second - first**2 is what must hold its digits
    var = second - first**2
    return (first, second) if err2 + 2 * first * err1 <= 1e-6 * max(var, 0.0) else None


def _number(name: str, value: Any) -> float:
    if isinstance(value, str):
        from symmle.model.parse import parse_number

        return float(parse_number(value, what=f"constant {name}"))
    return float(value)
