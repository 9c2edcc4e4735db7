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
from typing import Any

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.errors import DataError, SpecError
from symmle.base.numeric import to_function
from symmle.model.link import link_value
from symmle.numbers.data import fixed_support, validate_data
from symmle.numbers.regression_result import RegressionResult

__all__ = ["fit_regression", "MAX_ITERATIONS"]

#: Newton iterations before a fit is declared not to converge.
MAX_ITERATIONS = 200
#: Rows per chunk of a design read in chunks.
CHUNK_ROWS = 1 << 16
#: Largest design (rows x columns) searched for separation by linear programming before Newton starts.
SEPARATION_CELLS = 5_000_000


class _Functions:
    """The per-observation functions of a regression, compiled to NumPy.

    :meth:`derivatives` evaluates :math:`l`, its gradient and its Hessian in
    :math:`(\\eta, \\phi)` in one function, their common subexpressions once.
    """

    def __init__(self, reg, constants: Mapping[sp.Symbol, float]) -> None:
        args = reg.variables
        self.reg = reg
        self.constants = [constants[c] for c in reg.model.constant_symbols]
        k = len(reg.shared)
        self.k = k
        self.l = to_function(args, reg.log_density)
        self.s = to_function(args, reg.score)
        flat = [reg.log_density, reg.score, *reg.shared_score]
        flat += [reg.hessian[i, j] for i in range(1 + k) for j in range(1 + k)]
        self.all = to_function(args, sp.Tuple(*flat), cse=True)

    def _call(self, f, y, eta, phi):
        with np.errstate(all="ignore"):
            return f(y, eta, *phi, *self.constants)

    def _array(self, v, shape) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, dtype=float), shape)

    def value(self, y, eta, phi) -> np.ndarray:
        return self._array(self._call(self.l, y, eta, phi), y.shape)

    def score(self, y, eta, phi) -> np.ndarray:
        return self._array(self._call(self.s, y, eta, phi), y.shape)

    def derivatives(self, y, eta, phi) -> tuple[np.ndarray, list[np.ndarray], list[list[np.ndarray]]]:
        """``(l, gradient, hessian)`` per observation: lists of arrays, eta first."""
        out = [self._array(v, y.shape) for v in self._call(self.all, y, eta, phi)]
        k = self.k
        g = out[1 : 2 + k]
        h = [out[2 + k + i * (1 + k) : 2 + k + (i + 1) * (1 + k)] for i in range(1 + k)]
        return out[0], g, h


def _chunks(design):
    """(y, X, offset) by blocks of rows: views of an in-memory design (cache-sized), reads of a mapped one."""
    if not design.in_memory:
        yield from design.chunks(CHUNK_ROWS)
        return
    y, X, off = design.y, design.X, design.offset
    for a in range(0, design.n, CHUNK_ROWS):
        b = a + CHUNK_ROWS
        yield y[a:b], X[a:b], None if off is None else off[a:b]


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
        Intervals of the shared parameters (those of the coefficients are Wald).

    Raises
    ------
    DataError
        A response outside the support, a rank-deficient design, separation
        (the MLE does not exist), or Newton's method not converging.
    """
    reg = d.regression
    m = reg.model
    constants = dict(constants or {})
    known = {q.name: q for q in m.constants}
    values: dict[sp.Symbol, float] = {}
    for q in m.constants:
        if q.value is not None:
            values[q.symbol] = float(q.value)
        elif q.name in constants:
            values[q.symbol] = float(constants[q.name])
        else:
            raise SpecError(f"give the value of the constant {q.name} (--const {q.name}=VALUE)")
    unknown = set(constants) - set(known)
    if unknown:
        raise SpecError(f"unknown constant '{sorted(unknown)[0]}'")
    lo, hi = fixed_support(m.support, set(m.parameter_symbols), values)
    for y, _, _ in _chunks(design):
        validate_data(y, lo=lo, hi=hi, discrete=m.discrete, variable=design.response)
    n, p = design.n, design.p
    if n <= p:
        raise DataError(f"{n} observations for {p} coefficients: the regression needs more rows than terms")
    fns = _Functions(reg, values)
    if reg.closed_form:
        return _least_squares_fit(d, design, fns, values, ci)
    return _newton_fit(d, design, fns, values, ci)


# ---------------------------------------------------------------------------------------------- closed form


def _least_squares_fit(d, design, fns: _Functions, values, ci: str) -> RegressionResult:
    from symmle.numbers.least_squares import check_rank, covariance_factor, least_squares

    reg = d.regression
    z_of = to_function((reg.response, *reg.model.constant_symbols), reg.working_response)
    consts = fns.constants

    def pairs():
        for y, X, off in _chunks(design):
            with np.errstate(all="ignore"):
                z = np.broadcast_to(np.asarray(z_of(y, *consts), dtype=float), y.shape)
            yield X, (z if off is None else z - off)

    ls = least_squares(pairs, design.terms)
    check_rank(ls.r, design.terms)
    beta = ls.beta
    n, p = design.n, design.p
    N = sp.Symbol("N", integer=True, positive=True)
    stats = {st.symbol: 0.0 for st in reg.residual_statistics}
    g_of = {
        st.symbol: to_function((reg.response, reg.eta, *reg.model.constant_symbols), st.expr)
        for st in reg.residual_statistics
    }
    for y, X, off in _chunks(design):
        eta = X @ beta + (0 if off is None else off)
        for s, g in g_of.items():
            with np.errstate(all="ignore"):
                stats[s] += float(np.sum(np.broadcast_to(g(y, eta, *consts), y.shape)))
    at = {N: n, **stats, **values}
    phi = [float(reg.profile[s.name].subs(at)) for s in reg.shared]
    for s, v in zip(reg.shared, phi):
        q = next(q for q in reg.model.parameters if q.symbol == s)
        if not (math.isfinite(v) and in_domain(v, q.domain)):
            raise DataError(
                f"the MLE of {s.name} does not exist for these data: its closed form gives {v:g}, "
                f"outside its domain ({q.domain})"
                + (" (the fit is exact: the residuals are all zero)" if v == 0 else "")
            )
    loglik, g, h = _sums(design, fns, beta, phi)
    slope = float(reg.slope.subs({**dict(zip(reg.shared, phi)), **values}))
    cov_beta = covariance_factor(ls.r) / (-slope)
    k = len(phi)
    cov_phi = np.linalg.inv(-h[p:, p:]) if k else np.zeros((0, 0))
    df = n - p
    corrected = k > 0
    if corrected:  # the unbiased residual variance: exact t inference under the family's errors
        cov_beta = cov_beta * (n / df)
    return RegressionResult.build(
        d,
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


# ---------------------------------------------------------------------------------------------- Newton


def _sums(design, fns: _Functions, beta, phi, scale=None):
    """Log-likelihood, gradient and Hessian in (beta, phi), summed over the chunks.

    ``beta`` is in the coordinates of the columns divided by ``scale``; the design itself is never
    scaled (no copy of it is made).
    """
    from scipy.linalg.blas import dsyrk

    p, k = design.p, len(phi)
    scale = np.ones(p) if scale is None else scale
    grad = np.zeros(p + k)
    hess = np.zeros((p + k, p + k))
    total = 0.0
    b = beta / scale
    for y, X, off in _chunks(design):
        eta = X @ b
        if off is not None:
            eta = eta + off
        ll, g, h = fns.derivatives(y, eta, phi)
        total += float(np.sum(ll))
        grad[:p] += X.T @ g[0]
        grad[p:] += [float(np.sum(gj)) for gj in g[1:]]
        w = h[0][0]
        if np.all(w <= 0):  # the usual case: -X^T W X by a symmetric rank-k update, half the work
            xw = X * np.sqrt(-w)[:, None]
            a = dsyrk(1.0, xw.T, trans=0)  # xw is C-ordered: its transpose is Fortran-ordered, no copy
            hess[:p, :p] -= np.triu(a) + np.triu(a, 1).T
        else:
            hess[:p, :p] += X.T @ (X * w[:, None])
        for j in range(k):
            hess[:p, p + j] += X.T @ h[0][1 + j]
            for i in range(k):
                hess[p + i, p + j] += float(np.sum(h[1 + i][1 + j]))
    grad[:p] /= scale
    hess[:p, :p] /= np.outer(scale, scale)
    hess[:p, p:] /= scale[:, None]
    hess[p:, :p] = hess[:p, p:].T
    return total, grad, hess


def _start(d, design, values) -> tuple[np.ndarray, list[float]]:
    """The family's own MLE on y: the intercept at g(theta_hat), the shared parameters at theirs."""
    from symmle.numbers.fitting import fit

    reg = d.regression
    base = replace(reg.model, link=())
    y = np.concatenate([y for y, _, _ in _chunks(design)]) if not design.in_memory else design.y
    consts = {q.name: v for q, v in zip(reg.model.constants, values.values())}
    r = fit(base, y, consts)
    theta = r.estimates[reg.parameter.name]
    eta0 = link_value(reg.link.name, theta)
    if not math.isfinite(eta0):
        raise DataError(
            f"the {reg.link.name} link is not defined at the family's MLE {reg.parameter.name} = {theta:g}"
        )
    phi = [float(r.estimates[s.name]) for s in reg.shared]
    y0, X0, off0 = next(iter(_chunks(design)))
    rows = slice(0, min(len(y0), 10_000))  # the starting line needs no more rows
    target = eta0 - (0 if off0 is None else np.broadcast_to(off0, y0.shape)[rows])
    beta, *_ = np.linalg.lstsq(X0[rows], np.broadcast_to(target, y0[rows].shape).astype(float), rcond=None)
    return beta, phi


def _signs(fns: _Functions, y: np.ndarray, phi, eta_domain: str) -> np.ndarray:
    """+1 where l never decreases as eta grows, -1 where it never increases, 0 otherwise (per row)."""
    if eta_domain != "real":
        return np.zeros(y.shape, dtype=int)
    grid = np.concatenate([-np.logspace(-3, 2.5, 60)[::-1], [0.0], np.logspace(-3, 2.5, 60)])
    values, inverse = np.unique(y, return_inverse=True)
    out = np.zeros(values.shape, dtype=int)
    for a in range(0, values.size, 512):
        v = values[a : a + 512]
        s = fns.score(np.repeat(v, grid.size), np.tile(grid, v.size), phi).reshape(v.size, grid.size)
        ok = np.isfinite(s).all(axis=1)
        out[a : a + 512] = np.where(ok & (s >= 0).all(axis=1), 1, np.where(ok & (s <= 0).all(axis=1), -1, 0))
    return out[inverse.reshape(-1)]


def _newton_fit(d, design, fns: _Functions, values, ci: str) -> RegressionResult:
    from symmle.numbers.least_squares import check_rank

    reg = d.regression
    n, p = design.n, design.p
    # column scales: the Hessian of scaled coordinates is far better conditioned (Longley-like designs)
    sq = np.zeros(p)
    for _, X, _ in _chunks(design):
        sq += np.einsum("ij,ij->j", X, X)
    scale = np.sqrt(sq / n)
    scale[scale == 0] = 1.0
    check_rank(_gram_factor(design, scale), design.terms)
    beta, phi = _start(d, design, values)
    if design.in_memory and n * p <= SEPARATION_CELLS:
        from symmle.numbers.separation import find_separation

        sign = _signs(fns, design.y, phi, reg.eta_domain)
        if sign.any():
            found = find_separation(design.X, sign, design.terms)
            if found is not None:
                raise DataError(found.message)
    theta = np.concatenate([beta * scale, phi])
    domains = [q.domain for q in reg.model.parameters if q.symbol in reg.shared]
    loglik, g, h = _sums(design, fns, theta[:p], list(theta[p:]), scale)
    if not math.isfinite(loglik):
        raise DataError("the log-likelihood is not finite at the starting values")
    iterations = 0
    converged = False
    while iterations < MAX_ITERATIONS:
        iterations += 1
        step, decrement = _direction(g, h)
        t = 1.0
        while t >= 1e-12:  # step halving: the log-likelihood never decreases
            trial = theta + t * step
            if all(in_domain(v, dom) for v, dom in zip(trial[p:], domains)):
                new = _sums(design, fns, trial[:p], list(trial[p:]), scale)
                if math.isfinite(new[0]) and new[0] >= loglik - 1e-13 * abs(loglik):
                    break
            t /= 2
        if t < 1e-12:  # no increase along the Newton direction: at the maximum to rounding
            converged = decrement <= 1e-8 * (1 + abs(loglik))
            break
        old = loglik
        theta = trial
        loglik, g, h = new
        small_step = np.max(np.abs(t * step) / (1 + np.abs(theta))) < 1e-10
        # the decrement is about twice the log-likelihood still to gain: the step just taken from one of
        # 1e-10 leaves a gap of the order of its square (quadratic convergence)
        if decrement <= 1e-10 or (abs(loglik - old) <= 1e-14 * (1 + abs(loglik)) and small_step):
            converged = True
            break
    if not converged:
        raise DataError(
            f"Newton's method did not converge in {iterations} iterations (log-likelihood {loglik:.10g}); "
            "the MLE may not exist for these data, or the model does not suit them"
        )
    info = -h
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
    if not np.all(np.linalg.eigvalsh(info) > 0):
        raise DataError(
            "the log-likelihood is not strictly concave at the estimate (the observed information is not "
            "positive definite): the MLE is not unique for these data"
        )
    beta = theta[:p] / scale
    cov_beta = cov[:p, :p] / np.outer(scale, scale)
    return RegressionResult.build(
        d,
        design,
        beta=beta,
        phi=list(theta[p:]),
        cov_beta=cov_beta,
        cov_phi=cov[p:, p:],
        log_likelihood=loglik,
        iterations=iterations,
        method="Newton's method, exact derivatives",
        t_dist=False,
        ci=ci,
    )


def _gram_factor(design, scale: np.ndarray) -> np.ndarray:
    """The triangular factor R of the scaled design (X^T X = R^T R) for the rank check.

    From the Gram matrix by Cholesky where that is sound (a tenth of a QR's time); where the Gram matrix
    is too ill-conditioned for it, from Householder QR of the design, chunk by chunk.
    """
    from scipy.linalg.blas import dsyrk

    p = design.p
    gram = np.zeros((p, p))
    for _, X, _ in _chunks(design):
        a = dsyrk(1.0, (X / scale).T, trans=0)
        gram += np.triu(a) + np.triu(a, 1).T
    try:
        r = np.linalg.cholesky(gram).T
        d = np.abs(np.diag(r))
        if d.min() > 1e-6 * d.max():  # condition well inside what the Gram matrix resolves
            return r
    except np.linalg.LinAlgError:
        pass
    r = np.zeros((0, p))
    for _, X, _ in _chunks(design):
        r = np.linalg.qr(np.vstack([r, X / scale]), mode="r")
    return r


def _direction(g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, float]:
    """The Newton direction (Levenberg-shifted where -H is not positive definite) and the decrement."""
    from scipy.linalg import cho_factor, cho_solve

    a = -h
    shift = 0.0
    base = max(float(np.abs(np.diag(a)).max()), 1e-300)
    for _ in range(60):
        try:
            c = cho_factor(a + shift * np.eye(a.shape[0]))
            step = cho_solve(c, g)
            return step, float(g @ step)
        except np.linalg.LinAlgError:
            shift = base * 1e-10 if shift == 0 else shift * 10
    raise DataError(
        "the Hessian of the log-likelihood could not be factored: the model does not suit the data"
    )
