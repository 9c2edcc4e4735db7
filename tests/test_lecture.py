"""The lecture builders: the entry point hands each model to the builder of its kind.

The steps themselves are checked as mathematics in ``test_render.py``; here, the way a builder plugs in:
the first builder of ``BUILDERS`` that fits a model writes its lecture, and a model that none fits is a
clear derivation error, not a traceback.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import symmle
from symmle.base.errors import DerivationError
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.report.lecture import steps as entry
from symmle.report.lecture.core import MAXIMISING, Lecture, Step
from symmle.report.lecture.scalar import ScalarLecture


class _Annotated(ScalarLecture):
    """A builder for one model, written beside the scalar one: its steps and one more."""

    @classmethod
    def fits(cls, model):
        return model.name == "poisson"

    def steps(self):
        hat = self.hats[self.theta[0]]
        return [
            *super().steps(),
            Step("Remark", f"${self.tex(hat)}$ is the sample mean.", (), kind="remark", section=MAXIMISING),
        ]


def test_a_scalar_model_is_written_by_the_scalar_builder():
    assert entry.builder_for(load_model("normal")) is ScalarLecture
    assert issubclass(ScalarLecture, Lecture)


def test_the_first_builder_that_fits_writes_the_lecture(monkeypatch):
    monkeypatch.setattr(entry, "BUILDERS", (_Annotated, ScalarLecture))
    plain = ScalarLecture(
        *(lambda d: (d.model, d.likelihood, d.stationarity, d.information))(symmle.derive("poisson"))
    ).steps()
    steps = symmle.derive("poisson").steps
    assert steps[:-1] == tuple(plain)
    assert steps[-1].kind == "remark" and steps[-1].text == r"$\hat{\lambda}$ is the sample mean."
    # a model the first builder does not fit falls through to the scalar one
    assert symmle.derive("exponential").steps[-1].kind == "crlb"


def test_a_model_no_builder_fits_is_a_derivation_error(monkeypatch):
    monkeypatch.setattr(entry, "BUILDERS", ())
    with pytest.raises(DerivationError, match="poisson"):
        _ = symmle.derive("poisson").steps
    result = CliRunner().invoke(cli, ["derive", "poisson", "--format", "latex"], catch_exceptions=True)
    assert result.exit_code == 4
    assert "lecture builder" in result.output and "Traceback" not in result.output
