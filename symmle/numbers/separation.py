"""Does the MLE of a regression exist?  The linear-programming test for (quasi-)complete separation.

For a linear predictor ``eta = X beta``, the log-likelihood of row ``i`` is monotone in ``eta_i`` for
some responses: a Bernoulli row with ``y = 1`` never decreases as ``eta`` grows (``sign +1``), one with
``y = 0`` never as it falls (``sign -1``), a Poisson row with ``y = 0`` never as it falls, and every
other row has an interior maximum (``sign 0``).  If a direction ``d`` has ``sign_i (X d)_i >= 0`` on
every row, ``(X d)_i = 0`` where ``sign_i = 0``, and ``X d != 0``, the log-likelihood never decreases
along ``beta + t d`` and strictly increases for ever: the MLE does not exist, and an optimiser only
produces huge coefficients.  This is *complete* separation when every row with a sign is strictly
separated (``sign_i (X d)_i > 0``), *quasi-complete* when some lie on the boundary.

The test (Konis 2007; R's ``detectseparation``) is a linear programme, solved by HiGHS
(``scipy.optimize.linprog``): maximise ``sum_i sign_i (X d)_i`` subject to those constraints and the
box ``|d_j| <= 1`` on the equilibrated columns.  The equality rows are eliminated first: ``d`` is
sought in the null space of ``X`` restricted to the ``sign 0`` rows (an SVD of its triangular factor),
so a design whose ``sign 0`` rows already determine every coefficient needs no LP at all.  Identical
rows are merged.  A positive optimum is verified on the rows in double precision (each margin
relative to its largest possible size) before it is believed, then the direction is improved until it
separates strictly every row that some direction separates, which decides complete versus
quasi-complete.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linprog

from symmle.base.errors import SymmleError
from symmle.numbers.least_squares import rank_tolerance

__all__ = ["Separation", "find_separation", "MARGIN"]

#: A row counts as strictly separated when ``sign_i (X d)_i`` exceeds this fraction of its largest
#: possible size ``|x_i|_1 |d|_inf`` (columns equilibrated; and as violated below minus it): ten times
#: the LP's tolerances.
MARGIN = 1e-9
_LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
_DIRECT = 4000  # rows up to which the LP is solved whole
_BATCH = 500  # rows added to the LP per round of constraint generation
_ROUNDS = 50  # rounds that enlarge the separated set (each adds at least one distinct row)


class Separation(NamedTuple):
    """A direction along which the log-likelihood increases for ever.

    Attributes
    ----------
    kind : str
        ``"complete"`` or ``"quasi-complete"``.
    direction : ndarray, shape (p,)
        ``d`` in the units of the columns, scaled so that its leading term has coefficient +-1.
    terms : list of str
        The terms with a non-zero coefficient in ``d`` (their coefficients diverge).
    separated : int
        Rows with a sign that ``d`` separates strictly.
    boundary : int
        Rows with a sign on the boundary, ``(X d)_i = 0`` (0 for complete separation).
    message : str
        One line naming the combination and saying that the MLE does not exist.
    """

    kind: str
    direction: np.ndarray
    terms: list[str]
    separated: int
    boundary: int
    message: str


def _null_space(a: np.ndarray, p: int) -> np.ndarray:
    """An orthonormal basis (p, k) of ``{d : a d = 0}`` at :func:`rank_tolerance`."""
    if a.shape[0] == 0:
        return np.eye(p)
    r = np.linalg.qr(a, mode="r") if a.shape[0] > p else a
    _, s, vt = np.linalg.svd(r, full_matrices=True)
    big = s.size and s[0] > 0
    rank = int(np.sum(s > rank_tolerance(p) * s[0])) if big else 0
    return vt[rank:].T


def _lp(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``argmax c^T w`` subject to ``b w >= 0`` and ``|w_j| <= 1``, by HiGHS."""
    res = linprog(
        -c, A_ub=-b, b_ub=np.zeros(b.shape[0]), bounds=(-1.0, 1.0), method="highs", options=_LP_OPTIONS
    )
    if res.status != 0 or res.x is None:
        raise SymmleError(f"the separation check failed: the linear programme gave no answer ({res.message})")
    return res.x


def _solve(b: np.ndarray, c: np.ndarray) -> np.ndarray | None:
    """``argmax c^T w`` subject to ``b w >= 0`` and ``|w_j| <= 1``, or None where the optimum is 0.

    By constraint generation: the LP over a subset of the rows (those most opposed to ``c``, then
    every row the last answer violates, the worst first) is a relaxation, so its optimum is the whole
    LP's as soon as it violates no row.  With ``p`` unknowns only a few hundred rows ever bind, and
    the LPs stay small however many rows there are.
    """
    n = b.shape[0]
    if n <= _DIRECT:
        w = _lp(b, c)
    else:
        norm = np.linalg.norm(c)
        order = np.argsort(b @ (c / norm)) if norm > 0 else np.arange(n)
        active = np.zeros(n, dtype=bool)
        active[order[:_BATCH]] = True
        while True:
            w = _lp(b[active], c)
            v = b @ w
            bad = np.flatnonzero((v < -_LP_OPTIONS["primal_feasibility_tolerance"]) & ~active)
            if bad.size == 0:
                break
            active[bad[np.argsort(v[bad])[:_BATCH]]] = True
    return w if np.max(np.abs(w)) >= 0.5 and c @ w > 0 else None


def _margins(rows: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``rows @ d`` relative to its largest possible size ``|row|_1 |d|_inf`` (0 for a zero row).

    Rounding errors of ``rows @ d`` are a few ``eps`` of that size, so a margin of :data:`MARGIN` is
    far above them; and parts of ``d`` at the level of rounding (from the null-space basis) cannot
    make a row look separated or violated, as they could relative to ``sum_j |x_ij d_j|``.
    """
    size = np.abs(rows).sum(axis=1) * np.max(np.abs(d))
    out = np.zeros(rows.shape[0])
    np.divide(rows @ d, size, out=out, where=size > 0)
    return out


def find_separation(
    X: np.ndarray,
    sign: np.ndarray,
    terms: list[str],
    labels: tuple[str, ...] = ("row with sign +1", "row with sign -1", "other row"),
) -> Separation | None:
    """The direction of (quasi-)complete separation of a design, or None when the MLE can exist.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        The design (finite values).
    sign : ndarray, shape (n,)
        Per row: +1 where the log-likelihood never decreases as ``eta_i`` grows, -1 where it never
        decreases as ``eta_i`` falls, 0 where neither holds.
    terms : list of str
        The names of the ``p`` columns.
    labels : tuple of str, optional
        How the message names a row of sign +1, of sign -1 and (optionally) of sign 0, e.g.
        ``("y = 1", "y = 0")`` for a binary response, ``("", "y = 0", "y > 0")`` for counts.

    Returns
    -------
    Separation or None

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 3.0])
    >>> X = np.column_stack([np.ones(6), x])
    >>> sep = find_separation(X, np.sign(x), ["Intercept", "x"], ("y = 1", "y = 0"))
    >>> sep.kind, sep.direction.tolist()
    ('complete', [0.0, 1.0])
    >>> print(sep.message)  # doctest: +NORMALIZE_WHITESPACE
    complete separation: x > 0 for every y = 1 and x < 0 for every y = 0; the MLE does not exist:
    the log-likelihood keeps increasing along this direction (x -> +inf)
    """
    X = np.asarray(X, dtype=float)
    sign = np.asarray(sign)
    terms = list(terms)
    n, p = X.shape
    if sign.shape != (n,) or len(terms) != p or not np.isin(sign, (-1, 0, 1)).all():
        raise ValueError("find_separation needs X (n, p), sign (n,) in {-1, 0, 1} and p term names")
    if not np.isfinite(X).all():
        raise ValueError("find_separation needs a finite design")
    scale = np.max(np.abs(X), axis=0, initial=0.0)
    scale[scale == 0] = 1.0
    xs = X / scale
    basis = _null_space(xs[sign == 0], p)
    if basis.shape[1] == 0 or not (sign != 0).any():
        return None
    signed = xs[sign != 0] * sign[sign != 0, None]
    big = np.max(np.abs(signed), axis=1)
    zero_rows = int(np.sum(big == 0))  # x_i = 0: on the boundary of every direction
    signed = signed[big > 0] / big[big > 0, None]
    rows, counts = np.unique(signed, axis=0, return_counts=True)
    b = rows @ basis
    w = _solve(b, counts @ b)
    if w is None:
        return None
    d = basis @ w
    m = _margins(rows, d)
    if m.min() < -MARGIN or m.max() <= MARGIN:
        return None  # the LP's answer does not hold up in the rows' own precision
    for _ in range(_ROUNDS):
        tied = m <= MARGIN
        if not tied.any():
            break
        w = _solve(b, counts[tied] @ b[tied])
        if w is None:
            break
        extra = basis @ w
        m2 = _margins(rows, extra)
        if m2.min() < -MARGIN or not (m2[tied] > MARGIN).any():
            break
        d = d / np.max(np.abs(d)) + extra / np.max(np.abs(extra))
        m = _margins(rows, d)
    tied = m <= MARGIN
    d = _sparsify(rows, xs[sign == 0], d, tied)
    boundary = int(counts[tied].sum()) + zero_rows
    kind = "quasi-complete" if boundary else "complete"
    return _describe(X, sign, terms, labels, d / scale, d, kind, int(counts[~tied].sum()), boundary)


def _sparsify(rows: np.ndarray, level: np.ndarray, d: np.ndarray, tied: np.ndarray) -> np.ndarray:
    """``d`` with its smallest coefficients set to 0 while it still separates the same rows.

    Separating directions form a cone; the LP returns one of its vertices, often with small parts
    along every column.  Dropping each part that is not needed (smallest first) keeps the direction
    valid, verified on every row, and leaves a combination of the few terms that do the separating.
    """
    for j in np.argsort(np.abs(d)):
        if d[j] == 0 or np.count_nonzero(d) == 1:
            continue
        trial = d.copy()
        trial[j] = 0.0
        m = _margins(rows, trial)
        if (
            m.min() >= -MARGIN
            and (m[~tied] > MARGIN).all()
            and np.all(np.abs(_margins(level, trial)) <= MARGIN)
        ):
            d = trial
    return d


def _describe(X, sign, terms, labels, d, d_eq, kind, separated, boundary) -> Separation:
    """The Separation record and its one-line message, in the data's units."""
    live = np.abs(d_eq) > 1e-9 * np.max(np.abs(d_eq))
    constant = np.all(X == X[:1], axis=0) & (X[0] != 0) if X.shape[0] else np.zeros(X.shape[1], bool)
    varying = live & ~constant
    lead = int(np.argmax(np.where(varying, np.abs(d_eq), -1.0))) if varying.any() else int(np.argmax(live))
    d = np.where(live, d / abs(d[lead]), 0.0)
    names = [t for t, on in zip(terms, live) if on]
    going = ", ".join(f"{t} -> {'+' if v > 0 else '-'}inf" for t, v, on in zip(terms, d, live) if on)
    tail = f"; the MLE does not exist: the log-likelihood keeps increasing along this direction ({going})"
    if not varying.any():
        label = labels[0] if (sign[sign != 0] > 0).all() else labels[1]
        message = f"{kind} separation: the rows are all of one kind ({label})" + tail
        return Separation(kind, d, names, separated, boundary, message)
    flip = -1.0 if d[lead] < 0 else 1.0
    parts = []
    for j in np.flatnonzero(varying):
        c = flip * d[j]
        mag = f"{abs(c):.6g}"
        body = terms[j] if mag == "1" else f"{mag}*{terms[j]}"
        parts.append((("-" if c < 0 else "") if not parts else ("- " if c < 0 else "+ ")) + body)
    rhs = f"{-flip * float(np.sum(d[constant & live] * X[0, constant & live])) + 0.0:.6g}"
    strict = kind == "complete"
    up, down = (">", "<") if strict else (">=", "<=")
    if flip < 0:
        up, down = down, up
    combo = " ".join(parts)
    clauses = [
        f"{combo} {op} {rhs} for every {label}"
        for op, label, s in ((up, labels[0], 1), (down, labels[1], -1))
        if (sign == s).any()
    ]
    message = f"{kind} separation: " + " and ".join(clauses)
    if (sign == 0).any():
        message += f", = {rhs} for every {labels[2] if len(labels) > 2 else 'other row'}"
    if boundary:
        message += f" ({boundary} of them on the boundary)"
    return Separation(kind, d, names, separated, boundary, message + tail)
