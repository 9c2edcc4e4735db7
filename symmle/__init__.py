"""symmle: a symbolic derivation engine for maximum-likelihood estimation.

>>> import symmle
>>> d = symmle.derive("exponential")
>>> d.estimators["lam"]
N/T1

The package imports without SymPy; it is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symmle.base.errors import (
    DataError,
    DerivationError,
    DerivationTimeout,
    SpecError,
    SymmleError,
    VerificationError,
)

if TYPE_CHECKING:
    from symmle.model.spec import Model
    from symmle.numbers.fitting import FitResult
    from symmle.numbers.gof import GofResult
    from symmle.numbers.hypothesis import HypothesisTest
    from symmle.simulate.compare import Comparison
    from symmle.simulate.results import CheckResult
    from symmle.symbolic.derivation import Derivation

__all__ = [
    "derive",
    "exact_bias",
    "fit",
    "check",
    "gof",
    "compare",
    "hypothesis_test",
    "load_model",
    "inline_model",
    "list_families",
    "clear_cache",
    "SymmleError",
    "SpecError",
    "DataError",
    "DerivationError",
    "DerivationTimeout",
    "VerificationError",
]

__version__ = "0.1.0"


def derive(model: Any, **kwargs: Any) -> Derivation:
    """Derive the maximum-likelihood estimators of a model.

    A lazy wrapper of :func:`symmle.symbolic.derivation.derive` (SymPy is imported on
    the first call); see there for the details.

    Parameters
    ----------
    model : str, Path or Model
        A catalogue name (see :func:`list_families`), a spec file, or a
        :class:`~symmle.model.spec.Model`.
    **kwargs
        ``timeout`` (seconds per symbolic step, ``None`` for none),
        ``constants`` (known values of constants, by name) and ``cache``
        (``False``: derive afresh, neither reading nor writing the cache of
        derivations on disk; the result is the same either way).

    Returns
    -------
    Derivation
        The log-likelihood, sufficient statistics, estimators, Fisher
        information and Cramér–Rao bound, with the steps that lead to them.

    Raises
    ------
    SpecError
        If the model is invalid.
    DerivationTimeout
        If a step that cannot fall back runs out of time.

    Examples
    --------
    >>> import symmle
    >>> d = symmle.derive("poisson")
    >>> d.estimators["lam"]
    T1/N
    >>> d.crlb
    Matrix([[lam/N]])
    """
    from symmle.symbolic.derivation import derive as _derive

    return _derive(model, **kwargs)


def fit(model: Any, data: Any, constants: Any = None, **kwargs: Any) -> FitResult:
    """Fit a model to data by maximum likelihood.

    A lazy wrapper of :func:`symmle.numbers.fitting.fit`; see there for the details.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        The model, or a derivation already made (it is not derived again).
    data : array_like
        One-dimensional observations (a memory-mapped array is reduced in chunks).
    constants : mapping, optional
        Values of the model's constants, by name (numbers or number text).
    **kwargs
        ``timeout``: budget in seconds of each symbolic step; ``cache``:
        ``False`` to derive afresh without the cache of derivations;
        ``mixture=K`` (and ``seed``): a K-component mixture fitted by EM.

    Returns
    -------
    FitResult
        Estimates, standard errors, 95% intervals and the log-likelihood.

    Raises
    ------
    DataError
        If the data do not fit the model (outside the support, not integers
        for a discrete model, not finite), a constant's value is missing, or
        the MLE does not exist for these data.
    SpecError
        If the model is invalid.

    Examples
    --------
    >>> import symmle
    >>> r = symmle.fit("exponential", [0.5, 1.5, 1.0])
    >>> r.estimates["lam"], round(r.stderr["lam"], 6)
    (1.0, 0.57735)
    """
    from symmle.numbers.fitting import fit as _fit

    with _caching(kwargs.pop("cache", None)):
        return _fit(model, data, constants, **kwargs)


def check(model: Any, true: Any, **kwargs: Any) -> CheckResult:
    """Check a model's estimators by simulation at known parameter values.

    A lazy wrapper of :func:`symmle.simulate.check.check`, which also documents
    the keyword arguments (``n``, ``reps``, ``seed``, ``constants``,
    ``sizes``, ``agree``...) and what is checked.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        The model whose estimators are checked.
    true : mapping
        The true value of every parameter, by name.
    **kwargs
        Passed on to :func:`symmle.simulate.check.check`, but for ``cache``:
        ``False`` to derive afresh without the cache of derivations.

    Returns
    -------
    CheckResult
        Per-parameter bias, efficiency, coverage, agreement and consistency
        verdicts; ``.passed`` says whether all of them passed.

    Raises
    ------
    SpecError
        If a true value or constant is missing, unknown or outside its domain.

    Examples
    --------
    >>> import symmle
    >>> c = symmle.check("poisson", {"lam": 3}, n=40, reps=40, seed=2, agree=2)
    >>> c.passed, c.sizes
    (True, (20, 40))
    """
    from symmle.simulate.check import check as _check

    with _caching(kwargs.pop("cache", None)):
        return _check(model, true, **kwargs)


def gof(model: Any, data: Any, constants: Any = None, **kwargs: Any) -> GofResult:
    """Goodness of fit at the maximum-likelihood estimates: KS, CvM, AD (and chi-square, discrete).

    A lazy wrapper of :func:`symmle.simulate.bootstrap.gof`, which documents the keyword
    arguments (``boot``, ``seed``, ``progress``...): p-values by a parametric bootstrap that
    refits every replicate with the compiled estimator.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> x = np.random.default_rng(3).normal(size=100)
    >>> r = symmle.gof("normal", x, boot=49, seed=1)
    >>> r.boot, sorted(r.statistics)
    (49, ['ad', 'cvm', 'ks'])
    """
    from symmle.simulate.bootstrap import gof as _gof

    with _caching(kwargs.pop("cache", None)):
        return _gof(model, data, constants, **kwargs)


def compare(models: Any, data: Any, **kwargs: Any) -> Comparison:
    """Fit several families to the same data: one table ranked by AIC, with the GOF statistics.

    A lazy wrapper of :func:`symmle.simulate.compare.compare`.  Families that cannot fit the
    data are listed in ``.excluded`` with the reason.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> x = np.random.default_rng(3).normal(5, 1, size=200)
    >>> c = symmle.compare(["normal", "exponential"], x, boot=0)
    >>> [f.model for f in c.fits]
    ['normal', 'exponential']
    """
    from symmle.simulate.compare import compare as _compare

    with _caching(kwargs.pop("cache", None)):
        return _compare(models, data, **kwargs)


def hypothesis_test(model: Any, data: Any, null: Any, constants: Any = None, **kwargs: Any) -> HypothesisTest:
    """Likelihood-ratio, Wald and score tests of a null hypothesis fixing some parameters.

    A lazy wrapper of :func:`symmle.numbers.hypothesis.hypothesis_test`; see there for the details.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        The full model.
    data : array_like
        One-dimensional observations.
    null : mapping
        The restricted parameters and their values under H0 (numbers or number text).
    constants : mapping, optional
        Values of the model's constants.
    **kwargs
        ``timeout``: budget in seconds of each symbolic step; ``cache``:
        ``False`` to derive afresh without the cache of derivations.

    Returns
    -------
    HypothesisTest
        The three statistics with their degrees of freedom and chi-square
        p-values, both fits' estimates and log-likelihoods, and a verdict.

    Raises
    ------
    SpecError
        If the null names an unknown parameter, a value lies outside its
        domain, or the model is not regular (its support depends on a parameter).
    DataError
        If the data do not fit the model.

    Examples
    --------
    >>> import symmle
    >>> r = symmle.hypothesis_test("poisson", [1, 3, 2, 2, 4, 0], {"lam": 1})
    >>> r.df, round(r.statistics["score"]["statistic"], 6)   # (T - N lam0)**2 / (N lam0)
    (1, 6.0)
    >>> r.verdict
    'reject H0 at 5% (LR p = 0.03132)'
    """
    from symmle.numbers.hypothesis import hypothesis_test as _test

    with _caching(kwargs.pop("cache", None)):
        return _test(model, data, null, constants, **kwargs)


def load_model(ref: Any, **kwargs: Any) -> Model:
    """Load a catalogue family or a spec file as a validated model.

    A lazy wrapper of :func:`symmle.model.build.load_model`; see there for the details.

    Parameters
    ----------
    ref : str, Path or Model
        A catalogue name, the path of a TOML spec file, or a Model (returned
        as it is).
    **kwargs
        ``validate`` (default ``True``): check numerically that the density
        is a density.

    Returns
    -------
    Model

    Raises
    ------
    SpecError
        If the name is neither a catalogue family nor a file, or the spec is
        invalid.

    Examples
    --------
    >>> import symmle
    >>> m = symmle.load_model("exponential")
    >>> m.density, m.support
    (lam*exp(-lam*x), (0, oo))
    """
    from symmle.model.build import load_model as _load

    return _load(ref, **kwargs)


def inline_model(*args: Any, **kwargs: Any) -> Model:
    """Build a model from the inline form of the command line (``--pdf``...).

    A lazy wrapper of :func:`symmle.model.build.inline_model`; see there for the details.

    Parameters
    ----------
    *args, **kwargs
        ``pdf`` (density text), ``var`` (variable name), ``support``
        (``"LO,HI"``), ``params`` (``NAME:DOMAIN`` items), and optionally
        ``consts`` (``NAME:DOMAIN[=VALUE]`` items) and ``discrete``.

    Returns
    -------
    Model
        Named ``inline``; it has no ``[sampler]``.

    Raises
    ------
    SpecError
        If the text is refused or the density is not a density.

    Examples
    --------
    >>> import symmle
    >>> m = symmle.inline_model("lam*exp(-lam*x)", "x", "0,oo", ["lam:positive"])
    >>> symmle.derive(m).estimators["lam"]
    N/T1
    """
    from symmle.model.build import inline_model as _inline

    return _inline(*args, **kwargs)


def list_families() -> list[dict[str, Any]]:
    """Summarise the catalogue's families, as ``symmle list --json`` does.

    A lazy wrapper of :func:`symmle.model.catalogue.list_families`; it reads the
    TOML files only (no SymPy).

    Returns
    -------
    list of dict
        One dict per family, sorted by name, with keys ``name``, ``title``,
        ``discrete``, ``parameters`` and ``constants`` (name to domain).

    Examples
    --------
    >>> import symmle
    >>> [f for f in symmle.list_families() if f["name"] == "poisson"]  # doctest: +NORMALIZE_WHITESPACE
    [{'name': 'poisson', 'title': 'Poisson distribution', 'discrete': True,
      'parameters': {'lam': 'positive'}, 'constants': {}}]
    """
    from symmle.model.catalogue import list_families as _list

    return _list()


def exact_bias(d: Derivation, **kwargs: Any) -> dict:
    """Exact finite-sample bias, variance, MSE and unbiased correction of each estimator.

    A lazy wrapper of :func:`symmle.symbolic.moments.exact_bias` (``symmle derive --bias``).

    Parameters
    ----------
    d : Derivation
        A scalar model's derivation.
    **kwargs
        ``timeout``: budget in seconds for each estimator.

    Returns
    -------
    dict of str to ExactMoments
        Per parameter: ``expectation``, ``bias``, ``variance``, ``mse``,
        ``unbiased``, ``unbiased_mse`` (SymPy, in the parameters and ``N``),
        or ``None`` with the ``reason``.

    Examples
    --------
    >>> import symmle
    >>> r = symmle.exact_bias(symmle.derive("uniform"))["theta"]
    >>> r.expectation, r.unbiased
    (N*theta/(N + 1), (N + 1)*Max(x)/N)
    """
    from symmle.symbolic.moments import exact_bias as _exact_bias

    return _exact_bias(d, **kwargs)


def clear_cache() -> int:
    """Delete the cache of derivations on disk.

    Derivations are stored in the user's cache directory (or the directory
    named by ``SYMMLE_CACHE_DIR``) and read back, checked, by later calls;
    see :mod:`symmle.symbolic.cache`.

    Returns
    -------
    int
        How many entries were deleted.

    Examples
    --------
    >>> import symmle
    >>> symmle.clear_cache()  # doctest: +SKIP
    12
    """
    from symmle.symbolic.cache import clear

    return clear()


def _caching(option: Any):
    """A context in which derivations use the cache as ``option`` says (``None``: as they would)."""
    import contextlib

    if option is None:
        return contextlib.nullcontext()
    from symmle.symbolic.cache import caching

    return caching(bool(option))
