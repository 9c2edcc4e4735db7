"""The steps of a derivation: the lecture of the builder that fits the model's kind.

Each kind of model has its lecture builder, a subclass of
:class:`~symmle.report.lecture.core.Lecture` beside the others in this
folder; :data:`BUILDERS` lists them, most specific first, and the first
whose ``fits`` accepts the model writes the lecture.
"""

from __future__ import annotations

from symmle.base.errors import DerivationError
from symmle.model.spec import Model
from symmle.report.lecture.core import Lecture, Step
from symmle.report.lecture.finish import define_at_first_use, resolve_references
from symmle.report.lecture.regression import RegressionLecture
from symmle.report.lecture.scalar import ScalarLecture
from symmle.report.lecture.vector import VectorLecture
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.regression import Regression
from symmle.symbolic.stationarity import Stationarity

__all__ = ["BUILDERS", "builder_for", "lecture_steps"]

#: The lecture builders, most specific first (a structured kind goes before the scalar one).
BUILDERS: tuple[type[Lecture], ...] = (RegressionLecture, VectorLecture, ScalarLecture)


def builder_for(model: Model) -> type[Lecture]:
    """The first builder of :data:`BUILDERS` that fits ``model``.

    Raises
    ------
    DerivationError
        If no builder writes lectures of this kind of model.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> builder_for(load_model("normal")).__name__
    'ScalarLecture'
    """
    for builder in BUILDERS:
        if builder.fits(model):
            return builder
    raise DerivationError(f"no lecture builder writes the steps of model '{model.name}'")


def lecture_steps(
    model: Model,
    lik: Likelihood,
    st: Stationarity,
    info: Information,
    regression: Regression | None = None,
) -> tuple[Step, ...]:
    """The steps of the derivation, in the order and notation of a lecture note.

    The likelihood as a product, the log-likelihood as a sum, the NLL, each
    partial derivative set to zero and solved, the estimators (support
    constraints for boundary kinds, the reduced equation for numeric ones),
    the second-order check, the Fisher information and the Cramér–Rao bound.
    Every expression is a SymPy object equal to what the pipeline derived;
    the forms shown are only rearranged (sums written out, constants pulled
    out of sums, logarithms of constants combined) and each rearrangement
    that is not an identity by construction is checked symbolically first.
    Each block of equations has a label that later sentences refer to, and
    each special function is defined where it is first used.

    For a regression, ``lik``, ``st`` and ``info`` are those of one observation in the linear
    predictor and the shared parameters, and ``regression`` is the derivation's
    :class:`~symmle.symbolic.regression.Regression` (the builder derives it if it is not given).
    """
    builder = builder_for(model)
    if issubclass(builder, RegressionLecture):
        steps = builder(model, lik, st, info, regression).steps()
    else:
        steps = builder(model, lik, st, info).steps()
    return tuple(define_at_first_use(resolve_references(steps)))
