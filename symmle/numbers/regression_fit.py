r"""Fitting a regression: least squares where the score is affine in :math:`\eta`, else Newton's method.

The per-observation functions :math:`l, s, \partial s/\partial\eta` and the
derivatives in the shared parameters come from the
:class:`~symmle.symbolic.regression.Regression` (exact, symbolic), compiled
to NumPy.  The design is read in chunks (:class:`~symmle.numbers.design.Design`),
so a memory-mapped design never has to fit in memory: each Newton iteration
accumulates :math:`X^\top s` and :math:`X^\top \operatorname{diag}(s') X` chunk
by chunk.

- **Closed form** (:attr:`Regression.working_response`): :math:`\hat\beta`
  is least squares of :math:`z(y)` on :math:`X` by Householder QR
  (:mod:`symmle.numbers.least_squares`), the shared parameters are their
  profiled closed forms in the residual statistics, and the covariance of
  :math:`\hat\beta` comes from the triangular factor :math:`R`, never from
  :math:`X^\top X`.  With an estimated dispersion the coefficients get
  :math:`t` statistics on :math:`N - p` degrees of freedom, and their
  covariance the factor :math:`N/(N - p)` (the unbiased residual variance):
  the exact inference of ordinary least squares.
- **Newton**: on column-scaled coordinates, from the family's own MLE on
  :math:`y` (the intercept at :math:`g(\hat\theta)`), with step halving so
  that the log-likelihood never decreases, a Levenberg shift where the
  Hessian is not negative definite, and convergence on the Newton decrement.
  Before it starts, the data are searched for separation
  (:mod:`symmle.numbers.separation`): a direction along which the
  log-likelihood never decreases means the MLE does not exist.
  Not converging is an error, never a last iterate.

Standard errors come from the observed information (the exact Hessian) at the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.errors import DataError, SpecError
from symmle.base.numeric import to_function
from symmle.model.link import link_value
from symmle.numbers import _regression_runtime as rt
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


@lru_cache(maxsize=16)
def _base_estimator(model):
    """The unlinked family's compiled estimator (for starting values), made once per model."""
    from symmle.symbolic.derivation import derive

    return derive(model).compile()


class RegressionFitter:
    """The fit of one derived regression, its functions compiled once (for many data sets: ``check``).

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
        self.values = values
        self.consts = [values[c] for c in m.constant_symbols]
        self.support = fixed_support(m.support, set(m.parameter_symbols), values)
        args = reg.variables
        k = len(reg.shared)
        flat = [reg.log_density, reg.hessian_score, *reg.shared_score]
        flat += [reg.hessian[i, j] for i in range(1 + k) for j in range(1 + k)]
        self._all = to_function(args, sp.Tuple(*flat), cse=True)
        # the simplified score for the signs: the differentiated form can be 0/0 where the link saturates
        self._score = to_function(args, reg.score)
        self.domains = [q.domain for q in m.parameters if q.symbol in reg.shared]
        if reg.working_response is not None:
            y_args = (reg.response, *m.constant_symbols)
            self._z = to_function(y_args, reg.working_response)
            self._stats = {
                st.symbol: to_function((reg.response, reg.eta, *m.constant_symbols), st.expr)
                for st in reg.residual_statistics
            }

    def derivatives(self, y, eta, phi):
        """The flat per-observation list of :mod:`symmle.numbers._regression_runtime`."""
        return self._all(y, eta, *phi, *self.consts)

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
        n, p = design.n, design.p
        if n <= p:
            raise DataError(
                f"{n} observations for {p} coefficients: the regression needs more rows than terms"
            )
        if self.reg.closed_form:
            return self._least_squares(design, run, ci)
        return self._newton(design, run, ci)

    # ------------------------------------------------------------------------------------ closed form

    def _least_squares(self, design, run, ci: str) -> RegressionResult:
        from symmle.numbers.least_squares import check_rank, covariance_factor, least_squares

        reg, consts = self.reg, self.consts

        def pairs():
            for y, X, off in run():
                with np.errstate(all="ignore"):
                    z = np.broadcast_to(np.asarray(self._z(y, *consts), dtype=float), y.shape)
                yield X, (z if off is None else z - off)

        ls = least_squares(pairs, design.terms)
        check_rank(ls.r, design.terms)
        beta = ls.beta
        n, p = design.n, design.p
        stats = {s: 0.0 for s in self._stats}
        for y, X, off in run():
            eta = X @ beta + (0 if off is None else off)
            for s, g in self._stats.items():
                with np.errstate(all="ignore"):
                    stats[s] += float(np.sum(np.broadcast_to(g(y, eta, *consts), y.shape)))
        at = {sp.Symbol("N", integer=True, positive=True): n, **stats, **self.values}
        phi = [float(reg.profile[s.name].subs(at)) for s in reg.shared]
        for s, v, dom in zip(reg.shared, phi, self.domains):
            if not (math.isfinite(v) and in_domain(v, dom)):
                raise DataError(
                    f"the MLE of {s.name} does not exist for these data: its closed form gives {v:g}, "
                    f"outside its domain ({dom})"
                    + (" (the fit is exact: the residuals are all zero)" if v == 0 else "")
                )
        loglik, h = self._value_and_shared_hessian(run, beta, phi)
        slope = float(reg.slope.subs({**dict(zip(reg.shared, phi)), **self.values}))
        cov_beta = covariance_factor(ls.r) / (-slope)
        k = len(phi)
        cov_phi = np.linalg.inv(-h) if k else np.zeros((0, 0))
        corrected = k > 0
        if corrected:  # the unbiased residual variance: exact t inference under the family's errors
            cov_beta = cov_beta * (n / (n - p))
        return RegressionResult.build(
            self.d,
            design,
            beta=beta,
            phi=phi,
            cov_beta=cov_beta,
            cov_phi=cov_phi,
            log_likelihood=loglik,
            iterations=0,
            method="least squares (Householder QR)",
            t_dist=corrected,
            ci=ci,
        )

    def _value_and_shared_hessian(self, run, beta, phi) -> tuple[float, np.ndarray]:
        """The log-likelihood and its Hessian in the shared parameters (the coefficients' block is R's)."""
        k = len(phi)
        total, h = 0.0, np.zeros((k, k))
        for y, X, off in run():
            eta = X @ beta + (0 if off is None else off)
            with np.errstate(all="ignore"):
                out = [
                    np.broadcast_to(np.asarray(v, dtype=float), y.shape)
                    for v in self.derivatives(y, eta, phi)
                ]
            total += float(np.sum(out[0]))
            for i in range(k):
                for j in range(k):
                    h[i, j] += float(np.sum(out[2 + k + (1 + i) * (1 + k) + 1 + j]))
        return total, h

    # ------------------------------------------------------------------------------------ Newton

    def _start(self, design, run) -> tuple[np.ndarray, list[float]]:
        """The family's own MLE on y: the intercept at g(theta_hat), the shared parameters at theirs."""
        reg = self.reg
        y = np.concatenate([y for y, _, _ in run()])
        consts = {q.name: v for q, v in zip(reg.model.constants, self.consts)}
        est = _base_estimator(replace(reg.model, link=()))(y, **consts)
        theta = float(est[reg.parameter.name])
        eta0 = link_value(reg.link.name, theta)
        if not math.isfinite(eta0):
            raise DataError(
                f"the MLE of {reg.parameter.name} from the response alone is {theta:g}, where the "
                f"{reg.link.name} link is not defined: the regression's MLE does not exist for these data"
            )
        phi = [float(est[s.name]) for s in reg.shared]
        y0, X0, off0 = next(iter(run()))
        rows = slice(0, min(len(y0), 10_000))  # the starting line needs no more rows
        target = eta0 - (0 if off0 is None else np.broadcast_to(off0, y0.shape)[rows])
        beta, *_ = np.linalg.lstsq(
            X0[rows], np.broadcast_to(target, y0[rows].shape).astype(float), rcond=None
        )
        return beta, phi

    def _signs(self, y: np.ndarray, phi) -> np.ndarray:
        """+1 where l never decreases as eta grows, -1 where it never increases, 0 otherwise (per row)."""
        if self.reg.eta_domain != "real":
            return np.zeros(y.shape, dtype=int)
        return rt.score_signs(lambda v, eta: self._score(v, eta, *phi, *self.consts), y)

    def _newton(self, design, run, ci: str) -> RegressionResult:
        from symmle.numbers.least_squares import check_rank

        n, p = design.n, design.p
        # column scales: the Hessian in scaled coordinates is far better conditioned (Longley-like designs)
        scale = rt.column_scale(run, p)
        check_rank(rt.gram_factor(run, scale, p) * scale, design.terms)  # R of X: relations in its units
        beta, phi = self._start(design, run)
        if design.in_memory and n * p <= SEPARATION_CELLS:
            from symmle.numbers.separation import find_separation

            sign = self._signs(design.y, phi)
            if sign.any():
                labels = tuple(_values_text(design.response, design.y[sign == k]) for k in (1, -1, 0))
                found = find_separation(design.X, sign, design.terms, labels=labels)
                if found is not None:
                    raise DataError(found.message)
        domains = self.domains

        def evaluate(theta):
            return rt.regression_sums(run, self.derivatives, theta[:p], list(theta[p:]), scale)

        def shared_ok(theta):
            return all(in_domain(v, dom) for v, dom in zip(theta[p:], domains))

        try:
            theta, (loglik, _, h), iterations = rt.newton(
                evaluate, np.concatenate([beta * scale, phi]), shared_ok, MAX_ITERATIONS
            )
        except rt.NotConverged as exc:
            raise DataError(
                f"{exc}; the MLE may not exist for these data, or the model does not suit them"
            ) from None
        info = -h
        if not np.all(np.linalg.eigvalsh(info) > 0):
            raise DataError(
                "the log-likelihood is not strictly concave at the estimate (the observed information is not "
                "positive definite): the MLE is not unique for these data"
            )
        cov = np.linalg.inv(info)
        return RegressionResult.build(
            self.d,
            design,
            beta=theta[:p] / scale,
            phi=list(theta[p:]),
            cov_beta=cov[:p, :p] / np.outer(scale, scale),
            cov_phi=cov[p:, p:],
            log_likelihood=loglik,
            iterations=iterations,
            method="Newton's method, exact derivatives",
            t_dist=False,
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


def _values_text(name: str, y: np.ndarray) -> str:
    """How a separation message names a set of rows: by their responses (``y = 1``, ``y from 1 to 40``)."""
    values = np.unique(y)
    if values.size == 0:
        return ""
    if values.size == 1:
        return f"{name} = {values[0]:g}"
    if values.size <= 3:
        return f"{name} in {{{', '.join(f'{v:g}' for v in values)}}}"
    return f"{name} from {values[0]:g} to {values[-1]:g}"
