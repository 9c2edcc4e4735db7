"""Numerical runtime of regressions: sums over blocks of rows, and Newton's method.

Pure NumPy (SciPy's BLAS and Cholesky) and no SymPy or symmle imports: ``symmle compile``
copies everything below the marker line into the generated module of a regression, so
in-process fits (:mod:`symmle.numbers.regression_fit`) and generated modules run the same
code and give the same numbers.

``derivatives(y, eta, phi)`` is the per-observation function of a regression: it returns
the flat list ``[l, dl/deta, dl/dphi_1.., d2l/deta2, d2l/deta dphi_1, ..]`` of arrays (the
Hessian of ``l`` in ``(eta, phi)`` row by row).  ``blocks()`` yields ``(y, X, offset)``
blocks of rows (``offset`` may be ``None``); it can be called again for another pass.
``beta`` is in the coordinates of the columns divided by ``scale`` (the design is never
scaled: no copy of it is made).
"""

# ---- runtime: copied verbatim into generated modules from here on ----
import math

import numpy as np


class NotConverged(ArithmeticError):
    """Newton's method stopped without reaching a maximum (the message says why)."""


def _array(v, shape):
    return np.broadcast_to(np.asarray(v, dtype=float), shape)


def regression_sums(blocks, derivatives, beta, phi, scale):
    """Log-likelihood, gradient and Hessian in ``(beta, phi)``, summed over the blocks of rows."""
    from scipy.linalg.blas import dsyrk

    p, k = scale.shape[0], len(phi)
    grad = np.zeros(p + k)
    hess = np.zeros((p + k, p + k))
    total = 0.0
    b = beta / scale
    for y, X, off in blocks():
        eta = X @ b
        if off is not None:
            eta = eta + off
        with np.errstate(all="ignore"):
            out = [_array(v, y.shape) for v in derivatives(y, eta, phi)]
        g = out[1 : 2 + k]
        h = out[2 + k :]
        total += float(np.sum(out[0]))
        grad[:p] += X.T @ g[0]
        for j in range(k):
            grad[p + j] += float(np.sum(g[1 + j]))
        w = h[0]
        if np.all(w <= 0):  # the usual case: -X^T W X by a symmetric rank-k update, half the work
            xw = X * np.sqrt(-w)[:, None]
            a = dsyrk(1.0, xw.T, trans=0)  # xw is C-ordered: its transpose is Fortran-ordered, no copy
            hess[:p, :p] -= np.triu(a) + np.triu(a, 1).T
        else:
            hess[:p, :p] += X.T @ (X * w[:, None])
        for j in range(k):
            hess[:p, p + j] += X.T @ h[1 + j]
            for i in range(k):
                hess[p + i, p + j] += float(np.sum(h[(1 + i) * (1 + k) + 1 + j]))
    grad[:p] /= scale
    hess[:p, :p] /= np.outer(scale, scale)
    hess[:p, p:] /= scale[:, None]
    hess[p:, :p] = hess[:p, p:].T
    return total, grad, hess


def shared_sums(blocks, derivatives, beta, phi):
    """The log-likelihood and its Hessian in the shared parameters alone, summed over the blocks.

    What the closed form needs besides the least squares (whose ``R`` gives the coefficients' block):
    no product with the design beyond ``X beta``.
    """
    k = len(phi)
    total, h = 0.0, np.zeros((k, k))
    for y, X, off in blocks():
        eta = X @ beta
        if off is not None:
            eta = eta + off
        with np.errstate(all="ignore"):
            out = [_array(v, y.shape) for v in derivatives(y, eta, phi)]
        total += float(np.sum(out[0]))
        for i in range(k):
            for j in range(k):
                h[i, j] += float(np.sum(out[2 + k + (1 + i) * (1 + k) + 1 + j]))
    return total, h


def column_scale(blocks, p):
    """The root mean square of each column (1 for a column of zeros): the coordinates Newton works in."""
    sq = np.zeros(p)
    n = 0
    for _, X, _ in blocks():
        sq += np.einsum("ij,ij->j", X, X)
        n += X.shape[0]
    scale = np.sqrt(sq / max(n, 1))
    scale[scale == 0] = 1.0
    return scale


def score_signs(score, y):
    """Per row: +1 where the log-likelihood never decreases as eta grows, -1 where it never increases, else 0.

    ``score(values, eta)`` is dl/deta at the shared parameters; it is evaluated once per distinct
    response on a grid of eta spanning the real line (for a link onto the real line), and a sign
    holds only where the score has that sign at every point where it is a number: the rows the
    search for separation (:mod:`symmle.numbers.separation`) may push to infinity.  Where the score
    overflows (l at its bound in floating point: the probit's ``exp(-eta**2/2)/(erf(...)**2 - 1)``
    beyond ``|eta| = 8`` is 0/0) it says nothing of its sign; it must be a number on half the grid.
    """
    grid = np.concatenate([-np.logspace(-3, 2.5, 60)[::-1], [0.0], np.logspace(-3, 2.5, 60)])
    values, inverse = np.unique(y, return_inverse=True)
    out = np.zeros(values.shape, dtype=int)
    for a in range(0, values.size, 512):
        v = values[a : a + 512]
        with np.errstate(all="ignore"):
            s = score(np.repeat(v, grid.size), np.tile(grid, v.size))
        s = np.broadcast_to(np.asarray(s, dtype=float), (v.size * grid.size,)).reshape(v.size, grid.size)
        finite = np.isfinite(s)
        ok = finite.sum(axis=1) >= grid.size // 2
        up = ok & np.where(finite, s >= 0, True).all(axis=1)
        down = ok & np.where(finite, s <= 0, True).all(axis=1)
        out[a : a + 512] = np.where(up, 1, np.where(down, -1, 0))
    return out[inverse.reshape(-1)]


def gram_factor(run, scale, p):
    """The triangular factor R of the scaled design (X^T X = R^T R) for the rank check.

    From the Gram matrix by Cholesky where that is sound (a tenth of a QR's time); where the Gram matrix
    is too ill-conditioned for it, from Householder QR of the design, block by block.
    """
    from scipy.linalg.blas import dsyrk

    gram = np.zeros((p, p))
    for _, X, _ in run():
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
    for _, X, _ in run():
        r = np.linalg.qr(np.vstack([r, X / scale]), mode="r")
    return r


def newton_direction(g, h):
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
    raise NotConverged("the Hessian of the log-likelihood could not be factored")


def newton(evaluate, theta, shared_ok, max_iterations=200):
    """Maximise by Newton's method with step halving; ``evaluate(theta) -> (l, gradient, Hessian)``.

    ``shared_ok(theta)`` says whether a trial point is in the parameters' domains.  The
    log-likelihood never decreases.  Convergence: the Newton decrement (about twice the
    log-likelihood still to gain) below 1e-10, the step just taken leaving a gap of the order
    of its square; or no increase along the Newton direction with a decrement at rounding
    level.  Returns ``(theta, (l, gradient, Hessian), iterations)``; raises
    :class:`NotConverged` otherwise.
    """
    current = evaluate(theta)
    if not (
        math.isfinite(current[0]) and np.all(np.isfinite(current[1])) and np.all(np.isfinite(current[2]))
    ):
        raise NotConverged("the log-likelihood or its derivatives are not finite at the starting values")
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        loglik, g, h = current
        step, decrement = newton_direction(g, h)
        t = 1.0
        new = None
        while t >= 1e-12:
            trial = theta + t * step
            if shared_ok(trial):
                new = evaluate(trial)
                finite = math.isfinite(new[0]) and np.all(np.isfinite(new[1])) and np.all(np.isfinite(new[2]))
                if finite and new[0] >= loglik - 1e-13 * abs(loglik):
                    break
            t /= 2
        if t < 1e-12:  # no increase along the Newton direction: at the maximum to rounding
            if decrement <= 1e-8 * (1 + abs(loglik)):
                return theta, current, iterations
            raise NotConverged(
                f"Newton's method stalled after {iterations} iterations (log-likelihood {loglik:.10g})"
            )
        small = np.max(np.abs(t * step) / (1 + np.abs(trial))) < 1e-10
        theta, current = trial, new
        if decrement <= 1e-10 or (abs(new[0] - loglik) <= 1e-14 * (1 + abs(new[0])) and small):
            return theta, current, iterations
    raise NotConverged(
        f"Newton's method did not converge in {iterations} iterations (log-likelihood {current[0]:.10g})"
    )
