"""Linear least squares in bounded memory, to the digits the data allow: TSQR, then one refinement step.

``least_squares(chunks, terms)`` minimises ``sum_i w_i (z_i - x_i^T beta)^2`` over a design given as
chunks of rows, in two passes:

1. **TSQR.**  The augmented matrix ``[X | z]`` is reduced block by block with Householder QR
   (LAPACK ``dgeqrf``): the triangle ``[[R, Q^T z], [0, rho]]`` of the rows so far is stacked on the
   next block and factored again, keeping only the ``(p+1) x (p+1)`` triangle.  Its last column
   carries ``Q^T z`` and the residual norm ``|rho|``, so ``beta = R^-1 Q^T z`` needs no second look at
   the data.  Columns are equilibrated by powers of two (from the first block): Householder QR is
   invariant under such scaling up to the last bit, so this changes no digit and only keeps squares of
   huge or tiny columns in range; the rank decision (:func:`check_rank`) works on ``R`` with its
   columns normalised.
2. **Refinement.**  A second pass computes the residual ``r = z - X beta`` in extended precision
   (``np.longdouble``: a 64-bit significand on x86-64), and the correction ``delta`` of the corrected
   semi-normal equations ``R^T R delta = X^T r`` by two triangular solves; the residual sum of
   squares is ``|r|^2 - |R delta|^2`` (exact for the corrected ``beta``, as ``X^T r = R^T R delta``).

Nothing is ever inverted to solve: ``beta`` and ``delta`` come from triangular solves, and the
covariance factor ``(X^T X)^-1 = R^-1 R^-T`` (:func:`covariance_factor`) from a triangular solve of
``R`` against the identity (LAPACK ``dtrtrs``), only when standard errors are wanted.

Against NIST's StRD certified values, on raw data, the fewest significant digits over the coefficients,
their standard errors and the residual standard deviation: Longley 14.6, Norris 13.9 (both checked in
``tests/test_least_squares.py``), Pontius 13.5, NoInt1 14.7, NoInt2 14.9, Wampler3 14.0, Wampler4
12.7, Wampler5 10.9 (its coefficients; their standard errors 14.0), Wampler1 and 2 (exact fits) 13.2
for the coefficients, standard errors and residual SD within 3e-14 of 0.  Filip (a degree-10
polynomial, condition number 5e9 with unit columns) gets 7.9 digits: storing its powers ``x^k`` in
float64 at all (even correctly rounded) moves the exact solution that far, while the solution of the
float64 design itself is matched to 10.6 digits.  The refinement step takes the coefficients of
Norris from 12.6 digits to 14.1, Pontius from 12.4 to 13.5, Wampler4 from 8.2 to 12.7, Wampler5
from 6.2 to 10.9 (with ``X^T r`` summed in double, not extended, precision it would lose digits
instead: Longley's 14.2 would drop to 11.9).

A design whose condition number (columns of unit length) is at most :data:`REFINE_ABOVE` skips the
second pass: the coefficients' forward error, about ``cond**2 * eps`` at worst, is then at the level
of rounding already (random designs with an intercept have condition numbers of 1 to 3).

Weights ``w_i >= 0`` scale row ``i`` by ``sqrt(w_i)`` (weighted least squares: the step of IRLS); a
zero weight drops the row.  ``R`` is then the factor of ``X^T W X``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from symmle.base.errors import DataError

__all__ = [
    "LeastSquares",
    "least_squares",
    "check_rank",
    "covariance_factor",
    "condition_number",
    "rank_tolerance",
    "BLOCK_ELEMENTS",
]

#: Rows are reduced in blocks of about this many elements (1 MB of float64), whatever the size of
#: the chunks the caller yields: the temporaries stay small and in cache.
BLOCK_ELEMENTS = 1 << 17

_EPS = np.finfo(float).eps


class LeastSquares(NamedTuple):
    """The solution of a (weighted) linear least-squares problem.

    Attributes
    ----------
    beta : ndarray, shape (p,)
        The coefficients, refined once.
    rss : float
        The residual sum of squares ``sum_i w_i (z_i - x_i^T beta)^2`` at ``beta``.
    r : ndarray, shape (p, p)
        Upper triangular with a non-negative diagonal, ``X^T W X = R^T R``; for covariances use
        :func:`covariance_factor` (triangular solves), never an explicit inverse of ``X^T X``.
    n : int
        The number of rows (zero-weight rows included).
    """

    beta: np.ndarray
    rss: float
    r: np.ndarray
    n: int


def rank_tolerance(p: int) -> float:
    """The relative size below which a column-normalised design counts as singular.

    ``|R_kk| <= rank_tolerance(p) * |R_00|`` in the pivoted QR of ``R`` with unit columns means the
    design is within about that relative distance of a rank-deficient one: ``10 * max(p, 10)``
    machine epsilons (2.2e-14 for p <= 10).  Storing the data in float64 already moves each column by
    ``eps/2`` relative, and Householder QR's backward error is a small multiple of ``p * eps`` per
    column, so below this the data cannot tell the design from a singular one; above it the
    coefficients are determined, with about ``16 - log10(condition_number(r))`` correct digits.
    """
    return 10.0 * max(p, 10) * _EPS


def _rows(item, weights, start: int, p: int):
    """One chunk as (X float64 2-D, z float64 1-D, w or None), checked for shape and weights."""
    if len(item) == 3:
        x, z, w = item
    else:
        (x, z), w = item, None
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float).reshape(-1)
    if x.ndim != 2 or x.shape[1] != p or x.shape[0] != z.shape[0]:
        raise ValueError(f"a chunk of shape {x.shape} with {z.shape[0]} responses does not have {p} columns")
    if w is None and weights is not None:
        w = weights[start : start + x.shape[0]]
        if w.shape[0] != x.shape[0]:
            raise ValueError(f"{weights.shape[0]} weights for more rows than that")
    if w is not None:
        w = np.asarray(w, dtype=float).reshape(-1)
        bad = ~(w >= 0) | ~np.isfinite(w)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"row {start + i + 1}: the weight {float(w[i])!r} is not a finite number >= 0")
    return x, z, w


def _blocks(chunks, weights, p: int):
    """(start, X, z) blocks of at most BLOCK_ELEMENTS, rows scaled by sqrt(w)."""
    start = 0
    rows = max(64, BLOCK_ELEMENTS // (p + 1))
    for item in chunks():
        x, z, w = _rows(item, weights, start, p)
        for lo in range(0, x.shape[0], rows):
            xb, zb = x[lo : lo + rows], z[lo : lo + rows]
            if w is not None:
                s = np.sqrt(w[lo : lo + rows])
                xb, zb = xb * s[:, None], zb * s
            yield start + lo, xb, zb
        start += x.shape[0]


def _pow2(values: np.ndarray) -> np.ndarray:
    """The power of two nearest each positive value's magnitude (1 for zeros and non-finite values)."""
    out = np.ones_like(values)
    ok = np.isfinite(values) & (values > 0)
    out[ok] = np.exp2(np.round(np.log2(values[ok])))
    return out


def _tsqr(chunks, weights, p: int):
    """Pass 1: the (p+1) x (p+1) triangle of [X | z] in the data's units (non-negative diagonal), and n."""
    tri = np.zeros((p + 1, p + 1), order="F")
    scale = None
    n = 0
    for _, x, z in _blocks(chunks, weights, p):
        m = x.shape[0]
        n += m
        if scale is None:
            scale = _pow2(np.abs(np.column_stack([x, z])).max(axis=0, initial=0.0))
        block = np.empty((p + 1 + m, p + 1), order="F")
        block[: p + 1] = tri
        np.multiply(x, 1.0 / scale[:p], out=block[p + 1 :, :p])
        np.multiply(z, 1.0 / scale[p], out=block[p + 1 :, p])
        qr, _, _, info = lapack.dgeqrf(block, overwrite_a=True)
        if info != 0:  # pragma: no cover - LAPACK reports only illegal arguments
            raise RuntimeError(f"dgeqrf failed (info {info})")
        tri = np.triu(qr[: p + 1])
    if scale is None:
        scale = np.ones(p + 1)
    tri = tri * scale[None, :]  # exact: powers of two
    sign = np.where(np.diag(tri) < 0, -1.0, 1.0)
    return tri * sign[:, None], n


def _not_finite(chunks, weights, p: int, terms: list[str]) -> DataError:
    """The error for a reduction that is not finite: the first non-finite cell, or an overflow."""
    for start, x, z in _blocks(chunks, weights, p):
        bad = ~np.isfinite(np.column_stack([x, z]))
        if bad.any():
            i, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
            where = terms[j] if j < p else "the response"
            return DataError(f"row {start + i + 1}: the value of {where} is not finite")
    return DataError("the design's values are too large to reduce without overflow: rescale its columns")


#: Condition number (unit columns) above which the refinement pass runs.
REFINE_ABOVE = 10.0


def _refine(chunks, weights, p: int, r: np.ndarray, beta: np.ndarray):
    """Pass 2: one step of the corrected semi-normal equations; the refined beta and its RSS."""
    wide = beta.astype(np.longdouble)
    g = np.zeros(p, dtype=np.longdouble)
    rss = np.longdouble(0.0)
    for _, x, z in _blocks(chunks, weights, p):
        xw = x.astype(np.longdouble)
        res = z - np.einsum("ij,j->i", xw, wide)  # einsum: NumPy's fastest long-double loops here
        rss += np.dot(res, res)
        g += np.einsum("ij,i->j", xw, res)
    g = g.astype(float)
    delta = sla.solve_triangular(
        r, sla.solve_triangular(r, g, trans="T", check_finite=False), check_finite=False
    )
    shift = r @ delta
    rss = float(max(rss - np.longdouble(np.dot(shift, shift)), 0.0))
    return beta + delta, rss


def least_squares(
    chunks: Callable[[], Iterable[tuple[np.ndarray, ...]]],
    terms: list[str],
    weights: np.ndarray | None = None,
) -> LeastSquares:
    """Solve ``min_beta sum_i w_i (z_i - x_i^T beta)^2`` over a design given in chunks of rows.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` yields ``(X_chunk (m, p), z_chunk (m,))`` or ``(X_chunk, z_chunk, w_chunk)``
        (per-chunk weights, for IRLS on a memory-mapped design) in row order; it is called twice (the
        second pass refines).  Chunks of any size: rows are reduced a block of about
        :data:`BLOCK_ELEMENTS` elements at a time.
    terms : list of str
        The names of the ``p`` columns, for the rank-deficiency error.
    weights : array_like, shape (n,), optional
        Weights ``w_i >= 0`` for the rows in order, used where a chunk has none of its own.

    Returns
    -------
    LeastSquares

    Raises
    ------
    DataError
        No rows, fewer rows than coefficients, a negative or non-finite weight, a non-finite value in
        the design or the response (named by its row), or a rank-deficient design (naming the
        collinear terms, :func:`check_rank`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.column_stack([np.ones(5), np.arange(5.0)])
    >>> fit = least_squares(lambda: [(x, 1.0 + 2.0 * x[:, 1])], ["Intercept", "x"])
    >>> np.round(fit.beta, 12).tolist(), fit.rss < 1e-25, fit.n
    ([1.0, 2.0], True, 5)
    """
    terms = list(terms)
    p = len(terms)
    if p == 0:
        raise ValueError("least_squares needs at least one column")
    if weights is not None:
        weights = np.asarray(weights, dtype=float).reshape(-1)
    tri, n = _tsqr(chunks, weights, p)
    if n == 0:
        raise DataError("the design has no rows")
    if not np.isfinite(tri).all():
        raise _not_finite(chunks, weights, p, terms)
    if weights is not None and weights.shape[0] != n:
        raise ValueError(f"{weights.shape[0]} weights for {n} rows")
    if n < p:
        raise DataError(
            f"the design has {n} rows for {p} coefficients: the coefficients are not identifiable"
        )
    r, qty = tri[:p, :p], tri[:p, p]
    check_rank(r, terms)
    beta = sla.solve_triangular(r, qty, check_finite=False)
    if condition_number(r) > REFINE_ABOVE:
        beta, rss = _refine(chunks, weights, p, r, beta)
    else:  # |Q^T z|'s last entry is the residual norm; the forward error is a few eps already
        rss = float(tri[p, p] ** 2) if tri.shape[0] > p else 0.0
    return LeastSquares(beta=beta, rss=rss, r=np.ascontiguousarray(r), n=n)


def covariance_factor(r: np.ndarray) -> np.ndarray:
    """``(R^T R)^-1 = R^-1 R^-T`` by a triangular solve of ``R`` against the identity.

    Multiply by the residual variance (linear regression) or use as is (the inverse Fisher
    information of IRLS) for the covariance of ``beta``.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[2.0, 1.0], [0.0, 4.0]])
    >>> bool(np.allclose(covariance_factor(r) @ (r.T @ r), np.eye(2)))
    True
    """
    r = np.asarray(r, dtype=float)
    inv = sla.solve_triangular(r, np.eye(r.shape[0]), check_finite=False)
    cov = inv @ inv.T
    return (cov + cov.T) / 2.0


def condition_number(r: np.ndarray) -> float:
    """The 2-norm condition number of the design with its columns scaled to unit length.

    About ``16 - log10`` of it is the number of significant digits the coefficients can have; the
    unscaled condition number would only reflect the columns' units.
    """
    r = np.asarray(r, dtype=float)
    norms = np.linalg.norm(r, axis=0)
    if r.size == 0 or not (norms > 0).all():
        return float("inf")
    s = np.linalg.svd(r / norms, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


def check_rank(r: np.ndarray, terms: list[str]) -> None:
    """Refuse a rank-deficient design, naming the collinear terms.

    The numerical rank is read from a pivoted QR of ``R`` with its columns normalised (SciPy's
    ``qr(pivoting=True)``, LAPACK ``dgeqp3``): a diagonal entry at most :func:`rank_tolerance` times
    the first ends the rank.  Each column beyond the rank is written as a combination of the others
    (a triangular solve), in the data's units, and the term with the highest index in it is put on
    the left side.

    Parameters
    ----------
    r : ndarray, shape (p, p)
        An upper-triangular factor of the design (``X^T X = R^T R``), e.g. ``LeastSquares.r``.
    terms : list of str
        The names of the columns.

    Raises
    ------
    DataError
        One line: ``the design is rank-deficient: x3 = 2*x1 - x2 (the coefficients are not
        identifiable); drop one of x1, x2, x3``.

    Examples
    --------
    >>> import numpy as np
    >>> x1, x2 = np.arange(5.0), np.arange(5.0) ** 2
    >>> X = np.column_stack([x1, x2, 2 * x1 - x2])
    >>> check_rank(np.linalg.qr(X, mode="r"), ["x1", "x2", "x3"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    symmle.DataError: the design is rank-deficient: x3 = 2*x1 - x2 (...); drop one of x1, x2, x3
    """
    r = np.asarray(r, dtype=float)
    p = r.shape[1]
    norms = np.linalg.norm(r, axis=0)
    relations = [[j] for j in range(p) if not norms[j] > 0]  # a column of zeros
    live = [j for j in range(p) if norms[j] > 0]
    if live:
        rp, piv = sla.qr(r[:, live] / norms[live], pivoting=True, mode="r", check_finite=False)
        diag = np.abs(np.diag(rp))
        tol = rank_tolerance(p) * diag[0]
        rank = int(np.sum(diag > tol)) if diag[0] > 0 else 0
        for k in range(rank, len(live)):
            # column piv[k] ~= sum_i c_i column piv[i] (normalised units), from R11 c = R12[:, k]
            c = sla.solve_triangular(rp[:rank, :rank], rp[:rank, k], check_finite=False) if rank else []
            v = np.zeros(p)
            v[live[piv[k]]] = 1.0 / norms[live[piv[k]]]
            for i, ci in enumerate(c):
                v[live[piv[i]]] = -ci / norms[live[piv[i]]]
            # drop the parts that are rounding noise: below the tolerance in normalised units
            v[np.abs(v * norms) <= 1e3 * rank_tolerance(p) * np.max(np.abs(v * norms))] = 0.0
            relations.append(v)
    if not relations:
        return
    parts, named = [], []
    for rel in relations:
        if isinstance(rel, list):
            parts.append(f"{terms[rel[0]]} is zero in every row")
            named.append([terms[rel[0]]])
            continue
        idx = np.flatnonzero(rel)
        left = int(idx[-1])
        coefs = -rel / rel[left]
        rhs = " ".join(_term(coefs[j], terms[j], first=(i == 0)) for i, j in enumerate(idx[:-1])) or "0"
        parts.append(f"{terms[left]} = {rhs}")
        named.append([terms[j] for j in idx])
    if len(named) == 1:
        advice = f"drop one of {', '.join(named[0])}" if len(named[0]) > 1 else f"drop {named[0][0]}"
    else:
        advice = "drop one term of each relation"
    raise DataError(
        f"the design is rank-deficient: {'; '.join(parts)} (the coefficients are not identifiable); {advice}"
    )


def _term(c: float, name: str, first: bool) -> str:
    """``c*name`` as it reads in a sum: ``2*x``, ``- x``, ``+ 0.5*y``."""
    mag = f"{abs(c):.6g}"
    body = name if mag == "1" else f"{mag}*{name}"
    if first:
        return f"-{body}" if c < 0 else body
    return f"- {body}" if c < 0 else f"+ {body}"
