r"""Fitting a regression: least squares where the score is affine in :math:`\eta`, else Newton's method.

The numbers are those of the compiled regression
(:class:`~symmle.numbers.regression_compiled.CompiledRegression`), which runs the source of a
``symmle compile`` module: the per-observation functions printed from the
:class:`~symmle.symbolic.regression.Regression` (exact, symbolic), and verbatim copies of
:mod:`symmle.numbers._regression_driver`, :mod:`symmle.numbers._regression_runtime`,
:mod:`symmle.numbers.least_squares` and :mod:`symmle.numbers.separation`.  So ``symmle fit`` and
a generated module give the same estimates.  The design is handed over by blocks of rows
(:class:`~symmle.numbers.design.Design`), so a memory-mapped design never has to fit in memory:
each pass accumulates its sums block by block.

- **Closed form** (:attr:`Regression.working_response`): :math:`\hat\beta` is least squares of
  :math:`z(y)` on :math:`X` by Householder QR, the shared parameters are their profiled closed
  forms in the residual statistics, and the covariance of :math:`\hat\beta` comes from the
  triangular factor :math:`R`, never from :math:`X^\top X`.  With an estimated dispersion the
  coefficients get :math:`t` statistics on :math:`N - p` degrees of freedom, and their covariance
  the factor :math:`N/(N - p)` (the unbiased residual variance): the exact inference of least
  squares.
- **Newton**: on column-scaled coordinates, from the null model's MLE (every :math:`\eta_i` one
  number), with step halving so that the log-likelihood never decreases, a Levenberg shift where
  the Hessian is not negative definite, and convergence on the Newton decrement.  Before it
  starts, the data are searched for separation: a direction along which the log-likelihood never
  decreases means the MLE does not exist.  Not converging is an error, never a last iterate.

Standard errors come from the observed information (the exact Hessian) at the estimate.
This module checks the data with symmle's messages and makes the :class:`RegressionResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from symmle.base.errors import DataError, SpecError
from symmle.numbers.data import fixed_support, validate_data
from symmle.numbers.missing import row_error
from symmle.numbers.regression_result import RegressionResult

__all__ = ["fit_regression", "RegressionFitter", "MAX_ITERATIONS"]

#: Newton iterations before a fit is declared not to converge.
MAX_ITERATIONS = 200
#: Rows per block of the sums (a cache-sized view of an in-memory design; a read of a mapped one).
CHUNK_ROWS = 1 << 16
#: Largest design (rows x columns) searched for separation by linear programming before Newton starts.
SEPARATION_CELLS = 5_000_000


def blocks(design):
    """A function yielding ``(y, X, offset)`` by blocks of rows, callable again for another pass."""

    def run():
        if not design.in_memory:
            yield from design.chunks(CHUNK_ROWS)
            return
        y, X, off = design.y, design.X, design.offset
        for a in range(0, design.n, CHUNK_ROWS):
            b = a + CHUNK_ROWS
            yield y[a:b], X[a:b], None if off is None else off[a:b]

    return run


class RegressionFitter:
    """The fit of one derived regression, compiled once (for many data sets: ``check``).

    The numbers come from the compiled regression
    (:class:`~symmle.numbers.regression_compiled.CompiledRegression`): the code a generated module
    runs, so ``symmle fit`` and ``symmle compile`` give the same estimates.  This class checks
    the data with symmle's messages (the row named as in the data), hands the module the design
    by blocks of rows, and makes the :class:`RegressionResult`.

    Parameters
    ----------
    d : Derivation
        A derivation of a linked model (``d.regression`` is set).
    constants : mapping, optional
        Values of the model's constants, by name.
    """

    def __init__(self, d, constants: Mapping[str, Any] | None = None) -> None:
        reg = d.regression
        m = reg.model
        self.d, self.reg = d, reg
        constants = dict(constants or {})
        unknown = set(constants) - {q.name for q in m.constants}
        if unknown:
            raise SpecError(f"unknown constant '{sorted(unknown)[0]}'")
        values: dict[sp.Symbol, float] = {}
        for q in m.constants:
            if q.value is not None:
                values[q.symbol] = float(q.value)
            elif q.name in constants:
                values[q.symbol] = float(constants[q.name])
            else:
                raise SpecError(f"give the value of the constant {q.name} (--const {q.name}=VALUE)")
        # constants fixed in the model are the compiled module's own; the others are passed to it
        self.given = {q.name: values[q.symbol] for q in m.constants if q.value is None}
        self.support = fixed_support(m.support, set(m.parameter_symbols), values)
        self.compiled = d.compile()

    def fit(self, design, *, ci: str = "transformed", check_data: bool = True) -> RegressionResult:
        """Fit the regression to ``design`` (see :func:`fit_regression`)."""
        m = self.reg.model
        run = blocks(design)
        if check_data:
            lo, hi = self.support
            start = 0
            with _source_rows(design):  # a bad row named by its row in the data as read
                for y, _, _ in run():
                    try:
                        validate_data(y, lo=lo, hi=hi, discrete=m.discrete, variable=design.response)
                    except DataError as exc:
                        if getattr(exc, "row", None) is None:
                            raise
                        raise row_error(start + exc.row, exc.detail) from None
                    start += y.shape[0]
        if design.in_memory:
            y, X, offset = design.y, design.X, design.offset
        else:  # a design read by blocks: the response (and offset) whole, the design never
            parts = list(run())
            y = np.concatenate([b[0] for b in parts])
            offs = [b[2] for b in parts]
            offset = None if offs[0] is None else np.concatenate(offs)
            X = None
        out = self.compiled.fit_blocks(run, y, X, offset, design.terms, **self.given)
        closed = self.reg.closed_form
        return RegressionResult.build(
            self.d,
            design,
            beta=np.asarray(out["beta"], dtype=float),
            phi=list(out["phi"]),
            cov_beta=out["cov_beta"],
            cov_phi=out["cov_phi"],
            log_likelihood=out["log_likelihood"],
            iterations=out["iterations"],
            method="least squares (Householder QR)" if closed else "Newton's method, exact derivatives",
            t_dist=closed and bool(self.reg.shared),
            ci=ci,
        )


def _source_rows(design):
    """The design's own mapping of its rows to the data's (rows dropped for missing values), if any."""
    from contextlib import nullcontext

    rows = getattr(design, "source_rows", None)
    return rows() if rows is not None else nullcontext()


def fit_regression(
    d,
    design,
    constants: Mapping[str, Any] | None = None,
    *,
    ci: str = "transformed",
    timeout: float | None = None,
) -> RegressionResult:
    """Fit the regression derived in ``d`` to the response and design in ``design``.

    Parameters
    ----------
    d : Derivation
        A derivation of a linked model (``d.regression`` is set).
    design : Design
        The response, the design matrix, its term names and an optional offset
        (:func:`symmle.numbers.design.load_design`).
    constants : mapping, optional
        Values of the model's constants.
    ci : {"transformed", "wald"}
        Intervals of the shared parameters (those of the coefficients are Wald, or t).

    Raises
    ------
    DataError
        A response outside the support, a rank-deficient design, separation
        (the MLE does not exist), or Newton's method not converging.
    """
    return RegressionFitter(d, constants).fit(design, ci=ci)
