r"""The agreement check of a vector model: compiled estimates against an independent optimiser.

The density is written out at the data's dimension (:func:`symmle.model.explicit.at_dimension`:
explicit matrices of scalar symbols, every matrix operation carried out by SymPy's explicit
algebra, not by the matrix calculus of the derivation), its logarithm expanded, and
:math:`-\sum_i \log f(x_i)` minimised by BFGS with its exact gradient (entrywise derivatives)
and a few Newton steps, in unconstrained coordinates: vectors as they are, positive entries on
the log scale, a simplex through the softmax, a symmetric positive definite matrix through its
Cholesky factor with a log diagonal; started at the true values.  On the first ``agree``
replicates of a check, every entry of the compiled estimate must agree with it to
:data:`~symmle.simulate.verdicts.AGREE_RTOL`, so an estimator that is wrong by a factor
``N/(N-1)`` fails here even where its bias is too small to see.

Writing the density out costs more with the dimension (a symbolic determinant and inverse):
above :data:`AGREE_MAX_DIM` the check is not run, and says so.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base.budget import attempt
from symmle.simulate.verdicts import AGREE_RTOL

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = ["AGREE_MAX_DIM", "entries", "vector_agreement"]

#: Largest dimension at which the density is written out for the independent optimiser.
AGREE_MAX_DIM = 4


def entries(name: str, domain: str, value: Any) -> list[tuple[str, Any]]:
    """``[(entry name, value)]``: a scalar itself, a vector's entries ``mu[1]``..., the lower
    triangle of a symmetric matrix ``Sigma[i,j]`` (i >= j, column by column); ``value`` may carry
    a leading axis of replicates."""
    v = np.asarray(value, dtype=float)
    if domain == "spd":
        dim = v.shape[-1]
        return [(f"{name}[{i + 1},{j + 1}]", v[..., i, j]) for j in range(dim) for i in range(j, dim)]
    if domain in ("vector", "positive_vector", "simplex"):
        return [(f"{name}[{i + 1}]", v[..., i]) for i in range(v.shape[-1])]
    return [(name, v)]


class _Transform:
    """Unconstrained coordinates of one parameter: ``z0``, its entries from ``z`` and their Jacobian."""

    def __init__(self, domain: str, true: np.ndarray) -> None:
        self.domain = domain
        t = np.asarray(true, dtype=float)
        if domain == "spd":
            self.dim = t.shape[0]
            low = np.linalg.cholesky(t)
            self.pairs = [(i, j) for j in range(self.dim) for i in range(j, self.dim)]
            self.z0 = np.array([math.log(low[i, j]) if i == j else low[i, j] for i, j in self.pairs])
        elif domain in ("positive", "positive_vector"):
            self.z0 = np.log(t.reshape(-1))
        elif domain == "simplex":
            self.z0 = np.log(t.reshape(-1))
        elif domain == "unit":
            self.z0 = np.log(t.reshape(-1) / (1 - t.reshape(-1)))
        else:
            self.z0 = t.reshape(-1).copy()
        self.size = self.z0.size

    def entries(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The parameter's free entries (vech for spd) at ``z``, and d entries / d z."""
        d = self.domain
        if d == "spd":
            n = self.dim
            low = np.zeros((n, n))
            for (i, j), v in zip(self.pairs, z):
                low[i, j] = math.exp(min(v, 700.0)) if i == j else v
            sigma = low @ low.T
            jac = np.empty((len(self.pairs), len(self.pairs)))
            for k, (i, j) in enumerate(self.pairs):
                dl = np.zeros((n, n))
                dl[i, j] = low[i, j] if i == j else 1.0
                ds = dl @ low.T + low @ dl.T
                jac[:, k] = [ds[a, b] for a, b in self.pairs]
            return np.array([sigma[a, b] for a, b in self.pairs]), jac
        if d in ("positive", "positive_vector"):
            v = np.exp(np.minimum(z, 700.0))
            return v, np.diag(v)
        if d == "simplex":
            e = np.exp(z - np.max(z))
            p = e / e.sum()
            return p, np.diag(p) - np.outer(p, p)
        if d == "unit":
            v = 1 / (1 + np.exp(-np.clip(z, -700.0, 700.0)))
            return v, np.diag(v * (1 - v))
        return z.copy(), np.eye(z.size)

    def value(self, z: np.ndarray) -> np.ndarray:
        """The parameter in its own shape."""
        v, _ = self.entries(z)
        if self.domain == "spd":
            out = np.zeros((self.dim, self.dim))
            for (i, j), s in zip(self.pairs, v):
                out[i, j] = out[j, i] = s
            return out
        return v if self.domain not in ("real", "positive", "unit") else v.reshape(())


class _Likelihood:
    r""":math:`\sum_i \log f(x_i)` and its gradient in the free entries, from the density at ``dim``."""

    def __init__(self, model: Model, consts: Mapping[str, Any], dim: int) -> None:
        from symmle.base.numeric import to_function
        from symmle.model.explicit import at_dimension, coordinates, explicit_symbols

        table = explicit_symbols(model, dim)
        coords = coordinates(model, dim)
        subs: dict[sp.Basic, Any] = {}
        for q in model.constants:
            value = consts[q.name]
            if q.is_matrix:
                flat = np.asarray(value, dtype=float)
                for sym, v in zip(coords[q.name], entries(q.name, q.domain, flat)):
                    subs[sym] = sp.Float(float(v[1]))
            else:
                subs[q.symbol] = sp.Float(float(value))
        density = at_dimension(model.density, table)
        logf = sp.expand_log(sp.log(density), force=True).subs(subs)
        self.x = list(coords[model.variable.name])
        self.free: list[sp.Symbol] = []
        for q in model.parameters:
            self.free += list(coords[q.name]) if q.is_matrix else [q.symbol]
        args = [*self.x, *self.free]
        self.logf = to_function(args, logf)
        self.grad = [to_function(args, sp.diff(logf, s)) for s in self.free]

    def __call__(self, rows: np.ndarray, theta: np.ndarray) -> tuple[float, np.ndarray]:
        cols = [rows[:, j] for j in range(rows.shape[1])]
        ones = np.ones(rows.shape[0])
        with np.errstate(all="ignore"):
            v = float(np.sum(np.real(np.asarray(self.logf(*cols, *theta))) * ones))
            g = np.array([float(np.sum(np.real(np.asarray(f(*cols, *theta))) * ones)) for f in self.grad])
        return v, g


def _optimise(lik: _Likelihood, rows: np.ndarray, parts: list[_Transform]) -> list[np.ndarray] | None:
    """Maximise the likelihood from the true values; the parameters in their shapes, or None."""
    from scipy import optimize

    sizes = [p.size for p in parts]
    n = rows.shape[0]

    def split(z: np.ndarray) -> list[np.ndarray]:
        return np.split(z, np.cumsum(sizes)[:-1])

    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        theta, jacs = [], []
        for p, zp in zip(parts, split(z)):
            e, j = p.entries(zp)
            theta.append(e)
            jacs.append(j)
        v, g = lik(rows, np.concatenate(theta))
        if not math.isfinite(v) or not np.all(np.isfinite(g)):
            return 1e300, np.zeros(z.size)
        gz = np.concatenate([gp @ j for gp, j in zip(split(g), jacs)])
        return -v / n, -gz / n

    def grad(z: np.ndarray) -> np.ndarray:
        return f(z)[1]

    z = np.concatenate([p.z0 for p in parts])
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore")
        if f(z)[0] >= 1e300:
            return None
        z = optimize.minimize(f, z, jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 2000}).x
        for _ in range(4):  # Newton polish on a central-difference Hessian of the exact gradient
            g = grad(z)
            if not np.all(np.isfinite(g)) or np.max(np.abs(g)) <= 1e-13:
                break
            h = 1e-6
            hess = np.array([(grad(z + h * e) - grad(z - h * e)) / (2 * h) for e in np.eye(z.size)])
            try:
                step = np.linalg.lstsq((hess + hess.T) / 2, g, rcond=1e-12)[0]
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or f(z - step)[0] > f(z)[0] + 1e-12 * abs(f(z)[0]):
                break
            z = z - step
    if not np.all(np.isfinite(z)) or f(z)[0] >= 1e300:
        return None
    return [p.value(zp) for p, zp in zip(parts, split(z))]


def vector_agreement(
    m: Model,
    consts: Mapping[str, Any],
    theta: Mapping[str, Any],
    est: Mapping[str, np.ndarray],
    ok: np.ndarray,
    rows: np.ndarray | None,
    advance: Callable[[int], None],
    timeout: float | None = None,
) -> dict[str, tuple[float | None, int, bool | None, str]]:
    """Cross-check the compiled estimates of the kept replicates entry by entry.

    Parameters
    ----------
    m : Model
        The vector model; its density builds the likelihood optimised here.
    consts, theta : mapping
        The constants' and the parameters' true values (the optimiser's start), by name.
    est : mapping of str to ndarray
        The compiled estimates of every replicate (leading axis), by parameter.
    ok : ndarray of bool
        The replicates that have an MLE.
    rows : ndarray or None
        The data of the replicates to cross-check, shape ``(k, n, D)``.
    advance : callable
        Called with 1 after every replicate.

    Returns
    -------
    dict
        Per entry (``mu[1]``, ``Sigma[2,1]``, ``s2``): ``(largest relative difference or None,
        replicates compared, passed or None, note)``.
    """
    out: dict[str, tuple[float | None, int, bool | None, str]] = {}
    names = {q.name: [k for k, _ in entries(q.name, q.domain, theta[q.name])] for q in m.parameters}
    every = [k for ks in names.values() for k in ks]
    if rows is None or rows.shape[0] == 0:
        return out
    dim = rows.shape[2]
    if dim > AGREE_MAX_DIM:
        advance(rows.shape[0])
        note = f"not run: the density is written out for the optimiser up to dimension {AGREE_MAX_DIM}"
        return {k: (None, 0, None, note) for k in every}
    lik, timed_out = attempt(
        "write the density out for the independent optimiser", timeout, lambda: _Likelihood(m, consts, dim)
    )
    if lik is None or timed_out:
        advance(rows.shape[0])
        return {k: (None, 0, None, "not run: the density could not be written out in time") for k in every}
    parts = [_Transform(q.domain, theta[q.name]) for q in m.parameters]
    spread = {
        k: float(np.nanstd(v[ok])) if ok.any() else 0.0
        for q in m.parameters
        for k, v in entries(q.name, q.domain, est[q.name])
    }
    diffs: dict[str, list[float]] = {k: [] for k in every}
    for r in range(rows.shape[0]):
        advance(1)
        if not ok[r]:
            continue
        found = _optimise(lik, rows[r], parts)
        for q, value in zip(m.parameters, found or [None] * len(parts)):
            mine = entries(q.name, q.domain, np.asarray(est[q.name])[r])
            theirs = (
                entries(q.name, q.domain, value) if value is not None else [(k, math.nan) for k, _ in mine]
            )
            for (k, a), (_, b) in zip(mine, theirs):
                a, b = float(a), float(b)
                rel = abs(a - b) / max(abs(a), abs(b), spread[k], 1e-300)
                diffs[k].append(rel if math.isfinite(rel) else math.inf)
    for k, v in diffs.items():
        if not v:
            out[k] = (None, 0, None, "no replicate with an MLE")
            continue
        worst = max(v)
        note = "" if math.isfinite(worst) else "the independent optimiser found no maximum"
        out[k] = (worst if math.isfinite(worst) else None, len(v), worst <= AGREE_RTOL, note)
    return out
