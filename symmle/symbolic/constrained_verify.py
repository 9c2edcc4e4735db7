"""The results of :mod:`symmle.symbolic.constrained` checked entrywise, at K = 2 and K = 3.

The machinery of :mod:`symmle.symbolic.matrix_verify` (explicit matrices of symbols, ``sp.diff``
entry by entry, 30-digit values, the complex step for second derivatives), applied to a
parameter on the simplex, with no matrix calculus and no Lagrangian rule of the derivation:

* :func:`verify_lagrange`: on random data sets drawn from the model's support, the candidate
  ``p_hat`` is in the interior of the simplex, the explicit Lagrangian
  ``ell + lambda (1 - sum_k p_k)`` has zero derivatives in every ``p_k`` and in ``lambda`` at
  ``(p_hat, lambda_hat)`` (relative to their size at a perturbed point; the derivative in
  ``lambda`` is the constraint itself), and the Hessian of ``ell`` restricted to the tangent space
  ``{v : sum_k v_k = 0}`` (``Z^T H Z``, ``Z`` an orthonormal basis of that space) is negative
  definite there: a strict local maximum of ``ell`` on the simplex.
* :func:`verify_simplex_information`: the candidate information on the free coordinates
  ``q = (p_1, ..., p_{K-1})`` against ``-E[d^2 ell/dq_i dq_j]`` of the explicit ``ell(q)`` with
  ``p_K = 1 - sum q``.  The expectation is taken exactly and independently of the candidate: the
  explicit score in ``q`` must be affine in the statistics' entries ``t``; ``E[t]`` is the unique
  solution of the ``K - 1`` equations ``E[score] = 0`` together with the design's total
  ``sum_k E[t_k] = M`` (``N`` for one-hot rows; for rows of counts a random total).

Each returns ``(ok, detail)`` as the checks of :mod:`~symmle.symbolic.matrix_verify` do; a result
whose check fails or cannot run is not to be reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.symbolic.constrained import SimplexInformation
from symmle.symbolic.matrix_explicit import (
    DIGITS,
    entrywise_derivative,
    explicit,
    matrix_symbols,
    random_values,
    scalar_symbols,
    symbol_matrix,
    symbolic_mapping,
    values,
)

# the check machinery of matrix_verify, shared so that both modules check the same way
from symmle.symbolic.matrix_verify import (
    TOLERANCE,
    Sampler,
    _as_scalar,
    _complex_step,
    _count,
    _matrix,
    _null_space,
    _number,
    _numeric,
    _relative,
    _run,
    _statistics,
)

__all__ = ["verify_lagrange", "verify_simplex_information"]


def _tangent_basis(k: int) -> np.ndarray:
    """An orthonormal basis (columns) of ``{v in R^k : sum v = 0}``."""
    return _null_space(np.ones((1, k)))


def verify_lagrange(
    ell: sp.Expr,
    p: sp.MatrixSymbol,
    estimate: sp.Basic,
    multiplier_value: sp.Basic,
    *,
    statistics: Mapping[sp.Basic, sp.Basic],
    variable: sp.MatrixSymbol,
    n: sp.Symbol,
    sample: Sampler,
    symmetric: Iterable = (),
    domains: Mapping | None = None,
    dims: Sequence[int] = (2, 3),
    datasets: int = 2,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[bool, str]:
    """Check that ``(estimate, multiplier_value)`` is a stationary point of the Lagrangian and a
    strict local maximum of ``ell`` on the simplex (module docstring), on random data sets.

    Parameters
    ----------
    ell : Expr
        The log-likelihood in the statistics, ``p`` and ``n``.
    p : MatrixSymbol
        The simplex parameter, ``(K, 1)``.
    estimate, multiplier_value : Basic
        The candidates ``p_hat`` and ``lambda_hat`` in the statistics and ``n`` (a
        :class:`~symmle.symbolic.constrained.LagrangeDerivation`'s ``estimate.value`` and
        ``multiplier_hat.value``).
    statistics : mapping
        ``{T: summand}`` with ``T = sum_i summand(x_i)`` (``T1: x``).
    variable : MatrixSymbol
        The observation ``x``.
    n : Symbol
        The sample size.
    sample : callable
        ``sample(rng, rows, K)``: data as a ``(rows, K)`` array from the model's support (one-hot
        rows, rows of counts), ``rows = 4 K + 6``.
    symmetric, domains : as for :func:`~symmle.symbolic.matrix_verify.verify_gradient`.
    dims, datasets, seed, timeout : as for :func:`~symmle.symbolic.matrix_verify.verify_stationary`.

    Returns
    -------
    (bool, str)
        The verdict and a one-line detail.
    """
    sym = frozenset(symmetric)

    def run() -> tuple[bool, str]:
        rng = np.random.default_rng(seed)
        ls = _as_scalar(ell)
        lam = sp.Dummy("lambda", real=True)
        exprs = [ls, estimate, multiplier_value, *statistics.values(), variable, p, *statistics]
        fixed = {p, *statistics, n, variable}
        others = [s for s in [*matrix_symbols(*exprs), *scalar_symbols(*exprs)] if s not in fixed]
        worst_score, worst_eig = 0.0, -1.0
        for d in dims:
            mapping = symbolic_mapping(exprs, d, sym)
            coords = list(mapping[p])
            lx = explicit(ls, mapping)
            lagrangian = lx + lam * (1 - sum(coords))
            grad = [entrywise_derivative(lagrangian, c) for c in [*coords, lam]]
            score = [entrywise_derivative(lx, c) for c in coords]
            basis = _tangent_basis(d)
            rows = 4 * d + 6
            for _ in range(datasets):
                env = random_values(rng, mapping, others, sym, domains)
                data = np.asarray(sample(rng, rows, d), dtype=float)
                env.update(_statistics(statistics, variable, data, mapping))
                env[n] = mpmath.mpf(rows)
                numeric = _numeric(mapping, env)
                p_hat = sp.Matrix(explicit(estimate, numeric))
                if p_hat.shape != (d, 1):
                    return False, f"the estimate of {p} has shape {p_hat.shape}, not {(d, 1)}"
                lam_hat = _number(explicit(multiplier_value, numeric))
                p_values = [_number(v) for v in p_hat]
                if not all(mpmath.im(v) == 0 and mpmath.re(v) > 0 for v in p_values):
                    return False, f"the estimate of {p} is not in the interior of the simplex at K={d}"
                env.update(dict(zip(coords, p_values)))
                env[lam] = lam_hat
                at_solution = max(abs(v) for v in values(grad, env))
                shifted = dict(env)
                for c in [*coords, lam]:
                    shifted[c] = env[c] * (1 + 0.1 * rng.uniform(-1, 1)) + 0.01 * rng.uniform(0, 1)
                scale = max(abs(v) for v in values(grad, shifted))
                if not at_solution <= TOLERANCE * scale:
                    return False, (
                        f"the gradient of the Lagrangian does not vanish at the estimate at K={d}:"
                        f" {mpmath.nstr(at_solution, 3)} (scale {mpmath.nstr(scale, 3)})"
                    )
                worst_score = max(worst_score, float(at_solution / scale))
                h = _matrix(_complex_step(score, coords, env))
                reduced = basis.T @ ((h + h.T) / 2) @ basis
                eig = np.linalg.eigvalsh(reduced)
                if not eig.max() < -1e-9 * np.abs(eig).max():
                    return False, (
                        f"the Hessian on the tangent space of the simplex is not negative definite at K={d}"
                    )
                worst_eig = max(worst_eig, float(eig.max() / np.abs(eig).max()))
        return True, (
            f"stationary point of the Lagrangian in {p}: its entrywise gradient vanishes (relative"
            f" {worst_score:.1e}) and the Hessian on the tangent space is negative definite (largest"
            f" eigenvalue over the largest modulus {worst_eig:.2g}) on {_count(datasets, 'data set')}"
            f" per dimension at K={', '.join(map(str, dims))}"
        )

    return _run(f"constrained maximum in {p}", timeout, run)


def verify_simplex_information(
    ell: sp.Expr,
    info: SimplexInformation,
    *,
    statistics: Sequence[sp.Basic],
    n: sp.Symbol | None = None,
    total: sp.Expr | None = None,
    symmetric: Iterable = (),
    domains: Mapping | None = None,
    dims: Sequence[int] = (2, 3),
    points: int = 2,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[bool, str]:
    """Check ``info.matrix`` against the entrywise expected negative Hessian in the free coordinates.

    Parameters
    ----------
    ell : Expr
        The log-likelihood of the sample, in the statistics.
    info : SimplexInformation
        The candidate (:func:`~symmle.symbolic.constrained.simplex_information`).
    statistics : sequence of MatrixSymbol
        The statistics of ``ell``.
    n : Symbol, optional
        The sample size symbol (it takes a random integer value).
    total : Expr, optional
        ``sum_k E[T_k]`` under the design, in ``n``: ``n`` for one-hot rows.  ``None`` for rows
        whose totals are given (counts): a random total is drawn.
    symmetric, domains, dims, points, seed, timeout : as for
        :func:`~symmle.symbolic.matrix_verify.verify_fisher`.

    Returns
    -------
    (bool, str)
        The verdict and a one-line detail (the module docstring says what is checked).
    """
    sym = frozenset(symmetric)
    stats = list(statistics)
    p, q, last = info.parameter, info.free, info.last

    def run() -> tuple[bool, str]:
        rng = np.random.default_rng(seed)
        ls = _as_scalar(ell)
        exprs = [ls, info.matrix, p, q, *stats]
        fixed = {p, q, last, *stats, n}
        others = [s for s in [*matrix_symbols(*exprs), *scalar_symbols(*exprs)] if s not in fixed]
        worst = 0.0
        for d in dims:
            mapping = symbolic_mapping(exprs, d, sym)
            qs = symbol_matrix(q, d - 1, 1)
            mapping[q] = qs
            mapping[p] = sp.Matrix([*qs, 1 - sum(qs)])
            coords = list(qs)
            lx = explicit(ls, mapping)
            score = [entrywise_derivative(lx, c) for c in coords]
            tcoords: list = []
            for t in stats:
                tcoords += list(mapping[t]) if isinstance(t, sp.MatrixSymbol) else [t]
            for _ in range(points):
                env = random_values(rng, mapping, others, sym, domains)
                shares = rng.uniform(0.5, 1.5, d)
                shares /= shares.sum()
                env.update({c: mpmath.mpf(float(v)) for c, v in zip(coords, shares[:-1])})
                env[last] = 1 - sum(env[c] for c in coords)
                size = int(rng.integers(5, 20))
                if n is not None:
                    env[n] = mpmath.mpf(size)
                m = (
                    _number(explicit(total, _numeric(mapping, env)))
                    if total is not None
                    else mpmath.mpf(size * int(rng.integers(1, 6)))
                )

                def at(t: Sequence[object], env: dict = env, tcoords: list = tcoords) -> dict:
                    return {**env, **dict(zip(tcoords, t))}

                zero = [mpmath.mpf(0)] * len(tcoords)
                s0 = values(score, at(zero))
                jac = []
                for j in range(len(tcoords)):
                    unit = list(zero)
                    unit[j] = mpmath.mpf(1)
                    jac.append([v - a for v, a in zip(values(score, at(unit)), s0)])
                u = [mpmath.mpf(float(v)) for v in rng.normal(size=len(tcoords))]
                pred = [a + sum(jac[j][i] * u[j] for j in range(len(tcoords))) for i, a in enumerate(s0)]
                if max((_relative(a, b) for a, b in zip(values(score, at(u)), pred)), default=0.0) > 1e-12:
                    return False, "the log-likelihood is not linear in the statistics"
                # E[score] = 0 on the free coordinates, and the design's total: solved in 30 digits
                rows_a = [[mpmath.re(jac[j][i]) for j in range(len(tcoords))] for i in range(len(s0))]
                rows_a.append([mpmath.mpf(1)] * len(tcoords))
                if np.linalg.matrix_rank(_matrix(rows_a)) < len(tcoords):
                    return (
                        False,
                        f"E[statistics] is not determined by the score identity and the total at K={d}",
                    )
                b = [-mpmath.re(v) for v in s0] + [mpmath.re(m)]
                with mpmath.workdps(DIGITS):
                    t0 = list(mpmath.qr_solve(mpmath.matrix(rows_a), mpmath.matrix(b))[0])
                scale = 1 + max((abs(v) for v in s0), default=0)
                if max((abs(v) for v in values(score, at(t0))), default=0) > 1e-9 * scale:
                    return False, f"the score identity E[score] = 0 has no solution at K={d}"
                want = [[-v for v in r] for r in _complex_step(score, coords, at(t0))]
                got = explicit(info.matrix, _numeric(mapping, at(t0)))
                got = got if isinstance(got, sp.MatrixBase) else sp.Matrix([[got]])
                if got.shape != (d - 1, d - 1):
                    return False, f"the information has shape {got.shape}, not {(d - 1, d - 1)} at K={d}"
                for i in range(d - 1):
                    for j in range(d - 1):
                        err = _relative(got[i, j], want[i][j])
                        worst = max(worst, err)
                        if not err <= TOLERANCE:
                            return False, (
                                f"the information differs from the expected negative Hessian at K={d}:"
                                f" entry ({i}, {j}) {mpmath.nstr(_number(got[i, j]), 8)}"
                                f" vs {mpmath.nstr(want[i][j], 8)}"
                            )
        return True, (
            f"Fisher information of {p} on its free coordinates agrees with the entrywise expected"
            f" negative Hessian at K={', '.join(map(str, dims))} ({_count(points, 'point')} each;"
            f" largest relative difference {worst:.1e})"
        )

    return _run(f"Fisher information of the simplex {p}", timeout, run)
