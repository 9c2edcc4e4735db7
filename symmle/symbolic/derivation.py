"""The :class:`Derivation`: everything derived for one model, immutable.

:func:`derive` runs the pipeline (spec -> likelihood -> stationarity ->
information) and records the ordered steps a lecturer would write.  The
consumers (report, compile, check, fit) only read a Derivation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.base.budget import DEFAULT_TIMEOUT, check_timeout, enforced, watch_timeouts
from symmle.base.errors import SpecError
from symmle.model.build import load_model
from symmle.model.spec import Model
from symmle.symbolic import cache as _cache
from symmle.symbolic.information import Information, fisher_information
from symmle.symbolic.likelihood import Likelihood, build_likelihood
from symmle.symbolic.stationarity import Estimator, Stationarity, solve_stationarity

if TYPE_CHECKING:
    from symmle.report.lecture.core import Step
    from symmle.symbolic.invariance import DerivedQuantity
    from symmle.symbolic.mixture import MixtureDerivation
    from symmle.symbolic.prior import PriorResult
    from symmle.symbolic.regression import Regression

__all__ = ["Derivation", "derive", "with_derived"]


@dataclass(frozen=True, eq=False)
class Derivation:
    """The derivation of the maximum-likelihood estimators of one model.

    Made by :func:`derive`; immutable.  The properties give the results as
    SymPy objects, and the ``to_*`` methods render them (one writer per
    format in :mod:`symmle.report`); in Jupyter a Derivation displays itself
    as rendered maths.

    Attributes
    ----------
    model : Model
        The model derived.
    likelihood : Likelihood
        The log-likelihood of ``N`` observations, reduced to sufficient
        statistics ``T1, T2, ...``.
    stationarity : Stationarity
        Score, Hessian and the estimator of every parameter.
    information : Information
        Fisher information of one observation and the Cramér–Rao bound.
    steps : tuple of Step
        The derivation as a lecturer would write it, in order (built by
        :mod:`symmle.report` on first use).
    warnings : tuple of str
        What the user should know (fallbacks, discarded roots...).
    regression : Regression or None
        For a model with a ``[link]``: the score :math:`X^\top s`, the
        weights and the closed form or Newton fit
        (:mod:`symmle.symbolic.regression`).

    Examples
    --------
    >>> d = derive("exponential")
    >>> d
    <Derivation exponential: lam=N/T1>
    >>> d.sufficient_statistics
    {'T1': x}
    >>> d.log_likelihood
    N*log(lam) - T1*lam
    >>> d.solutions["lam"].kind, d.crlb
    ('closed_form', Matrix([[lam**2/N]]))
    """

    model: Model
    likelihood: Likelihood
    stationarity: Stationarity
    information: Information
    warnings: tuple[str, ...]
    #: a regression (the model has a ``[link]``): the chain rule through the link; ``likelihood``,
    #: ``stationarity`` and ``information`` are then those of one observation in (eta, shared parameters)
    regression: Regression | None = None
    #: a model with priors (MAP): the priors, the MLE derivation beside it and the posterior family
    #: (:class:`~symmle.symbolic.prior.PriorResult`); ``stationarity`` is then that of the log-posterior
    prior: PriorResult | None = None
    #: derived quantities g(theta) (``derive(..., derived=...)``): see :mod:`symmle.symbolic.invariance`
    derived: tuple[DerivedQuantity, ...] = ()
    #: a mixture of K components (``derive(..., mixture=K)``): the EM derived from this family's
    #: derivation (:class:`~symmle.symbolic.mixture.MixtureDerivation`); ``likelihood``,
    #: ``stationarity`` and ``information`` are then those of one component
    mixture: MixtureDerivation | None = None

    @cached_property
    def steps(self) -> tuple[Step, ...]:
        """The derivation as a lecturer would write it, in order.

        Built by :mod:`symmle.report` on first use.
        """
        from symmle.report.lecture.steps import lecture_steps

        if self.prior is not None:  # the MLE's lecture, then the prior, the posterior and the MAP
            from symmle.report.lecture.prior import prior_steps

            steps = prior_steps(self)
        elif self.mixture is not None:  # the component's lecture, then the mixture and its EM
            from symmle.report.lecture.mixture import mixture_steps

            steps = mixture_steps(self)
        else:
            steps = lecture_steps(
                self.model, self.likelihood, self.stationarity, self.information, self.regression
            )
        if self.derived:
            from symmle.report.derived import derived_steps

            steps = (*steps, *derived_steps(self))
        return steps

    @property
    def solutions(self) -> dict[str, Estimator]:
        """Every parameter's :class:`~symmle.symbolic.stationarity.Estimator` record."""
        return dict(self.stationarity.estimators)

    @cached_property
    def estimators(self) -> dict[str, sp.Expr | Estimator]:
        """Closed-form estimators as SymPy expressions; a record where there is none."""
        return {
            k: (e.expr if e.kind == "closed_form" else e) for k, e in self.stationarity.estimators.items()
        }

    @property
    def fisher(self) -> sp.Matrix:
        """Per-observation Fisher information (``nan`` where it does not exist)."""
        return self.information.fisher

    @property
    def crlb(self) -> sp.Matrix | None:
        """Cramér–Rao bound :math:`(N I)^{-1}`, or ``None``."""
        return self.information.crlb

    @property
    def log_likelihood(self) -> sp.Expr:
        """The log-likelihood :math:`\\ell(\\theta)` in ``N`` and the statistics ``T_j``."""
        if self.prior is not None:  # the likelihood alone, without the log-prior
            return self.prior.mle.log_likelihood
        return self.likelihood.log_likelihood

    @property
    def log_posterior(self) -> sp.Expr | None:
        """The log-posterior up to a constant (log-likelihood plus log-prior); ``None`` without a prior."""
        return None if self.prior is None else self.prior.log_posterior

    @property
    def nll(self) -> sp.Expr:
        """The negative log-likelihood :math:`-\\ell(\\theta)`."""
        return -self.log_likelihood

    @property
    def sufficient_statistics(self) -> dict[str, sp.Expr]:
        """``{"T1": g1(x), ...}``: each ``T_j`` is the sum of ``g_j`` over the sample."""
        return {s.symbol.name: s.expr for s in self.likelihood.statistics}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document of ``symmle derive --format json`` (schema 1).

        See :func:`symmle.report.json_doc.to_dict`.

        Returns
        -------
        dict
            ``schema``, ``model``, ``log_likelihood``,
            ``sufficient_statistics``, ``estimators`` (each with its
            ``kind``, ``expr``, ``latex`` and ``verified``),
            ``fisher_information``, ``crlb``, ``steps`` and ``warnings``;
            expressions are SymPy strings, and ``None`` marks what does not
            exist.

        Examples
        --------
        >>> doc = derive("poisson").to_dict()
        >>> doc["schema"], doc["estimators"]["lam"]["expr"], doc["crlb"]
        (1, 'T1/N', [['lam/N']])
        """
        from symmle.report.json_doc import to_dict

        return to_dict(self)

    def to_text(self) -> str:
        """Return a plain-text summary for the terminal (``symmle derive``).

        See :func:`symmle.report.text.to_text`.

        Returns
        -------
        str
            The model, log-density, sufficient statistics, log-likelihood,
            score equations, estimators, Fisher information and
            Cramér–Rao bound, in SymPy's plain notation.

        Examples
        --------
        >>> text = derive("poisson").to_text()
        >>> print(text.splitlines()[0])
        Poisson distribution (poisson)
        >>> print(next(line for line in text.splitlines() if "lam_hat" in line))
          lam_hat = T1/N    [closed form, verified]
        """
        from symmle.report.text import to_text

        return to_text(self)

    def to_latex(self, standalone: bool = False) -> str:
        r"""Return the derivation as LaTeX lecture notes.

        See :func:`symmle.report.latex.to_latex`.

        Parameters
        ----------
        standalone : bool, optional
            Return a complete document for ``pdflatex`` (it needs only
            ``amsmath``) rather than a fragment of sections.

        Returns
        -------
        str
            ``\subsection*`` headings, sentences, and an ``align`` block per step.

        Examples
        --------
        >>> d = derive("poisson")
        >>> print(d.to_latex().splitlines()[0])
        \subsection*{The model}
        >>> print(d.to_latex(standalone=True).splitlines()[0])
        \documentclass[11pt]{article}
        """
        from symmle.report.latex import to_latex

        return to_latex(self, standalone=standalone)

    def to_markdown(self) -> str:
        r"""Return the derivation as Markdown with ``$...$`` maths.

        See :func:`symmle.report.markdown.to_markdown`.

        Returns
        -------
        str
            A ``#`` title, ``##`` sections, ``$...$`` inline maths and
            ``$$\begin{aligned}...\end{aligned}$$`` display maths.

        Examples
        --------
        >>> md = derive("poisson").to_markdown()
        >>> [line for line in md.splitlines() if line.startswith("#")][:3]
        ['# Poisson distribution', '## The model', '## Likelihood']
        """
        from symmle.report.markdown import to_markdown

        return to_markdown(self)

    def compile(self, *, timeout: float | None = None):
        """Compile the estimators into fast NumPy functions.

        See :class:`symmle.numbers.compiled.CompiledModel`, for a vector model
        :class:`symmle.numbers.vector_compiled.CompiledVectorModel` (estimates as arrays), and for
        a regression :class:`symmle.numbers.regression_compiled.CompiledRegression` (called on the
        responses and the design: ``est(y, X, offset=None)``).

        Parameters
        ----------
        timeout : float, optional
            Budget in seconds of each symbolic step of the compilation
            (rewriting estimators in centred sums); ``None`` for none.

        Returns
        -------
        CompiledModel, CompiledVectorModel or CompiledRegression
            Call it on data for the estimates; it also gives standard
            errors and the log-likelihood.

        Examples
        --------
        >>> import numpy as np
        >>> est = derive("poisson").compile()
        >>> x = np.array([1, 3, 2, 2])
        >>> est(x)["lam"], round(est.stderr(x)["lam"], 6)
        (2.0, 0.707107)
        """
        if self.mixture is not None:
            raise SpecError(
                f"compile: '{self.model.name}' is a mixture of {self.mixture.K} components; "
                "compile does not support mixtures yet"
            )
        if self.regression is not None:  # a response and a design: see symmle.numbers.regression_compiled
            from symmle.numbers.regression_compiled import CompiledRegression

            return CompiledRegression(self, timeout=timeout)
        if self.model.is_vector:  # rows of D numbers: see symmle.numbers.vector_compiled
            from symmle.numbers.vector_compiled import CompiledVectorModel

            return CompiledVectorModel(self, timeout=timeout)
        from symmle.numbers.compiled import CompiledModel

        # made once per budget (its state is set in __init__ alone): fit, gof and check share it
        memo = self.__dict__.setdefault("_compiled", {})
        if timeout not in memo:
            memo[timeout] = CompiledModel(self, timeout=timeout)
        return memo[timeout]

    def __repr__(self) -> str:
        if self.mixture is not None:
            mix = self.mixture
            parts = ", ".join(f"{s.symbol}={s.kind if s.expr is None else s.expr}" for s in mix.m_step)
            weights = f"{mix.symbols.weight}={mix.weights}"
            return f"<Derivation {self.model.name} (mixture of {mix.K}, EM): {parts}, {weights}>"
        if self.regression is not None:
            return f"<Derivation {self.model.name}: {self.regression.kind} regression>"
        if self.prior is not None:
            parts = ", ".join(f"{k}={v}" for k, v in self.estimators.items())
            return f"<Derivation {self.model.name} (MAP): {parts}>"
        parts = ", ".join(f"{k}={v}" for k, v in self.estimators.items())
        return f"<Derivation {self.model.name}: {parts}>"

    def _repr_latex_(self) -> str:
        """Jupyter: the derivation as LaTeX (sentences and ``align`` blocks)."""
        return self.to_latex()

    def _repr_markdown_(self) -> str:
        """Jupyter: the derivation as Markdown with ``$...$``/``$$...$$`` maths."""
        return self.to_markdown()


def derive(
    model: str | Path | Model,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    constants: Mapping[str, Any] | None = None,
    cache: bool | None = None,
    prior: Mapping[str, str] | Any = None,
    prior_pdf: Any = None,
    derived: Mapping[str, str] | Any = None,
    mixture: int | str | None = None,
) -> Derivation:
    """Derive the maximum-likelihood estimators of a model.

    Parameters
    ----------
    model : str, Path or Model
        A catalogue name (see ``symmle list``), a spec file, or a Model.
    timeout : float, optional
        Budget in seconds of each symbolic step; ``None`` for none.
    constants : mapping, optional
        Known values of constants (used for numerical verification).
    cache : bool, optional
        Read the derivation from the cache on disk if it holds it (checked
        before it is used), and store it there otherwise (see
        :mod:`symmle.symbolic.cache`).  By default the cache is used unless
        ``SYMMLE_NO_CACHE`` is set or :func:`symmle.symbolic.cache.caching`
        switched it off.  The result is the same either way.
    prior : mapping or list of str, optional
        Priors ``{PARAM: "FAMILY(NAME=VALUE, ...)"}`` (or ``["PARAM ~ FAMILY(...)"]``): the
        estimators are then the maximum a posteriori (MAP) ones (see :meth:`Model.with_prior`).
    prior_pdf : str or list of str, optional
        Inline prior densities in the parameter names.
    derived : mapping or sequence, optional
        Derived quantities ``{NAME: EXPR}`` (or ``["NAME=EXPR", ...]``) in the parameters and
        constants: their MLE by invariance, delta-method variance and, for a one-to-one
        reparametrisation, the Fisher information in them (see :func:`with_derived`).
    mixture : int, optional
        K: the EM of a K-component mixture of the family (see :meth:`Model.with_mixture` and
        :mod:`symmle.symbolic.mixture`): responsibilities, Q, the M-step as the component's
        weighted MLE, the weights by the Lagrangian, each checked numerically.  K = 1 is the family.

    Returns
    -------
    Derivation

    Raises
    ------
    SpecError
        If the model is invalid.
    DerivationTimeout
        If a step that cannot fall back runs out of time.

    Examples
    --------
    >>> d = derive("exponential")
    >>> d.estimators["lam"]
    N/T1
    >>> d.fisher
    Matrix([[lam**(-2)]])
    """
    timeout = None if timeout is None else check_timeout(timeout)
    m = load_model(model)
    if constants:
        m = m.with_constants(constants)
    if prior or prior_pdf:
        m = m.with_prior(prior or (), prior_pdf or ())
    if mixture is not None:
        m = m.with_mixture(mixture, "mixture")
    if m.mixture:  # the family's derivation (cached), then the EM of the mixture from it
        from dataclasses import replace

        from symmle.symbolic.mixture import derive_mixture

        if derived:
            raise SpecError("--derived does not combine with --mixture yet")
        component = derive(replace(m, mixture=0), timeout=timeout, cache=cache)
        return derive_mixture(m, component, timeout)
    if derived:
        from symmle.model.derived import parse_derived

        parse_derived(derived, m)  # bad input is refused before anything is derived
        return with_derived(derive(m, timeout=timeout, cache=cache), derived, timeout=timeout)
    if m.prior:  # MAP: the likelihood's derivation (cached), then the log-posterior by the same solver
        from dataclasses import replace

        from symmle.symbolic.prior import derive_map

        mle = derive(replace(m, prior=()), timeout=timeout, cache=cache)
        return derive_map(m, mle, timeout)
    if m.is_regression:
        from symmle.symbolic.regression import derive_regression

        reg = derive_regression(m, timeout=timeout)
        per = reg.per_observation
        return Derivation(m, per.likelihood, per.stationarity, per.information, reg.warnings, reg)
    # the cache's whitelisted codec stores scalar records; vector models are derived afresh (~1-2 s)
    use_cache = _cache.enabled(cache) and not m.is_vector
    found = _cache.load(m, timeout) if use_cache else None
    if found is not None and found.records is not None:
        return _assemble(m, *found.records, timeout)
    with watch_timeouts() as cut_short:
        started = time.monotonic()
        lik = build_likelihood(m, timeout=timeout)
        stages = [time.monotonic()]
        st = solve_stationarity(lik, timeout=timeout)
        stages.append(time.monotonic())
        info = fisher_information(lik, list(st.parameters), timeout=timeout)
        stages.append(time.monotonic())
    # a stage that used up its budget may have skipped work without a time-out
    # (the Fisher entries share one deadline): only a complete derivation is kept
    spent = [b - a for a, b in zip([started, *stages], stages)]
    complete = not cut_short and (timeout is None or max(spent) < timeout - _MARGIN)
    if use_cache and complete:
        _cache.store(m, timeout, lik, st, info)
    return _assemble(m, lik, st, info, timeout)


def with_derived(d: Derivation, derived: Any, *, timeout: float | None = DEFAULT_TIMEOUT) -> Derivation:
    """``d`` with the derived quantities ``derived`` (``{NAME: EXPR}`` or ``["NAME=EXPR", ...]``).

    See :mod:`symmle.symbolic.invariance`; each symbolic step runs under ``timeout``.

    Examples
    --------
    >>> q = with_derived(derive("exponential"), {"mean": "1/lam"}).derived[0]
    >>> q.estimator, q.variance
    (T1/N, 1/(N*lam**2))
    """
    from dataclasses import replace

    from symmle.model.derived import parse_derived
    from symmle.symbolic.invariance import derive_quantities

    specs = parse_derived(derived, d.model)
    if not specs:
        return d
    return replace(d, derived=d.derived + derive_quantities(d, specs, timeout=timeout))


#: Seconds short of its budget within which a stage counts as having used it up.
_MARGIN = 0.25


def _assemble(
    m: Model, lik: Likelihood, st: Stationarity, info: Information, timeout: float | None
) -> Derivation:
    warnings = list(st.warnings) + list(info.warnings)
    if timeout and not enforced():
        warnings.append("time budgets are not enforced outside the main thread")
    return Derivation(m, lik, st, info, tuple(warnings))
