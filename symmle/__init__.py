"""symmle: a symbolic derivation engine for maximum-likelihood estimation.

>>> import symmle
>>> d = symmle.derive("exponential")
>>> d.estimators["lam"]
N/T1

The package imports without SymPy; it is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symmle.errors import (
    DataError,
    DerivationError,
    DerivationTimeout,
    SpecError,
    SymmleError,
    VerificationError,
)

if TYPE_CHECKING:
    from symmle.checking import CheckResult
    from symmle.derivation import Derivation
    from symmle.fitting import FitResult
    from symmle.spec import Model

__all__ = [
    "derive",
    "fit",
    "check",
    "load_model",
    "inline_model",
    "list_families",
    "SymmleError",
    "SpecError",
    "DataError",
    "DerivationError",
    "DerivationTimeout",
    "VerificationError",
]

__version__ = "0.1.0"


def derive(model: Any, **kwargs: Any) -> Derivation:
    """Derive the MLE of a model; see :func:`symmle.derivation.derive`."""
    from symmle.derivation import derive as _derive

    return _derive(model, **kwargs)


def fit(model: Any, data: Any, constants: Any = None, **kwargs: Any) -> FitResult:
    """Fit a model to data by maximum likelihood; see :func:`symmle.fit.fit`."""
    from symmle.fitting import fit as _fit

    return _fit(model, data, constants, **kwargs)


def check(model: Any, true: Any, **kwargs: Any) -> CheckResult:
    """Check a model's estimators by simulation; see :func:`symmle.checking.check`."""
    from symmle.checking import check as _check

    return _check(model, true, **kwargs)


def load_model(ref: Any, **kwargs: Any) -> Model:
    """Load a catalogue family or spec file; see :func:`symmle.spec.load_model`."""
    from symmle.spec import load_model as _load

    return _load(ref, **kwargs)


def inline_model(*args: Any, **kwargs: Any) -> Model:
    """Build a model from inline text; see :func:`symmle.spec.inline_model`."""
    from symmle.spec import inline_model as _inline

    return _inline(*args, **kwargs)


def list_families() -> list[dict[str, Any]]:
    """The catalogue, as in ``symmle list --json``."""
    from symmle.catalogue import list_families as _list

    return _list()
