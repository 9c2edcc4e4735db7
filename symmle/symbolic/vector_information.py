"""Fisher information of a vector model, block by block, verified entrywise.

:mod:`symmle.symbolic.matrix_information` writes each block of the
per-observation information in its coordinates (a vector's entries, the
distinct entries ``vech`` of a symmetric matrix through the duplication
matrix), from the second differential of the log-likelihood and the
expectations of the statistics given by the score identity.
:mod:`symmle.symbolic.matrix_verify` then checks every block against the
entrywise expected negative Hessian at D = 2 and 3; a block that fails is not
reported.  The Cramér–Rao bound is formed block by block where the
information is block-diagonal.
"""

from __future__ import annotations

import sympy as sp

from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.matrix_information import fisher_information as block_information
from symmle.symbolic.matrix_verify import verify_fisher
from symmle.symbolic.vector_stationarity import matrix_domains, statistic_summands, verification_kwargs

__all__ = ["vector_fisher_information"]


def _is_zero(m: sp.Basic) -> bool:
    m = m.doit() if isinstance(m, sp.MatrixExpr) else m
    return isinstance(m, sp.ZeroMatrix) or m == 0 or (isinstance(m, sp.MatrixBase) and m.is_zero_matrix)


def vector_fisher_information(lik: Likelihood, params: list, *, timeout: float | None = None):
    """The per-observation Fisher information of a vector model (an :class:`Information`)."""
    from symmle.symbolic.information import Information

    kw = verification_kwargs(lik)
    stats = list(statistic_summands(lik, informative=True))
    ell = lik.log_likelihood
    n = len(params)
    simplex = [q.symbol for q in lik.model.parameters if q.domain == "simplex"]
    if simplex:
        if n > 1:
            return Information(
                sp.Matrix(),
                None,
                ((False,) * n,) * n,
                warnings=("no Fisher information: a simplex beside other parameters is not derived yet",),
            )
        return _simplex_information(lik, simplex[0], stats, kw, timeout)
    out = block_information(ell, params, stats, n=lik.N, **kw, timeout=timeout)
    if not out.ok:
        return Information(
            sp.Matrix(), None, ((False,) * n,) * n, warnings=(f"no Fisher information: {out.reason}",)
        )
    info = out.value
    ok, detail = verify_fisher(
        ell,
        info,
        statistics=stats,
        n=lik.N,
        symmetric=kw["symmetric"],
        domains=matrix_domains(lik),
        timeout=timeout,
    )
    if not ok:
        return Information(
            sp.Matrix(),
            None,
            ((False,) * n,) * n,
            warnings=(f"the Fisher information failed its entrywise check and is not reported: {detail}",),
        )
    rows = [[_as_matrix(info.block(a, b)) for b in params] for a in params]
    fisher = sp.BlockMatrix(rows) if n > 1 else rows[0][0]
    crlb = None
    if all(_is_zero(rows[i][j]) for i in range(n) for j in range(n) if i != j):
        diag = [_inverse(sp.MatMul(lik.N, rows[i][i])) for i in range(n)]
        if all(b is not None for b in diag):
            crlb = sp.BlockDiagMatrix(*diag) if n > 1 else diag[0]
    expectations = {k: v for k, v in getattr(info.expectations, "matrices", {}).items()}
    return Information(fisher, crlb, ((True,) * n,) * n, expectations, (), (), blocks=info)


def _as_matrix(m: sp.Basic) -> sp.Basic:
    return m if getattr(m, "is_Matrix", False) else sp.Matrix([[m]])


def _inverse(m: sp.Basic) -> sp.Basic:
    if isinstance(m, sp.MatrixBase):
        return m.inv()
    try:
        return sp.Inverse(m).doit()
    except (ValueError, ArithmeticError, sp.matrices.exceptions.NonInvertibleMatrixError):
        return None


def _simplex_information(lik: Likelihood, p, stats: list, kw: dict, timeout: float | None):
    """The information of a simplex on its K - 1 free coordinates, verified; per count (per one-hot row)."""
    from symmle.symbolic.constrained import simplex_information
    from symmle.symbolic.constrained_verify import verify_simplex_information
    from symmle.symbolic.information import Information
    from symmle.symbolic.vector_stationarity import known_identities

    fail = ((False,),)
    out = simplex_information(
        lik.log_likelihood, p, stats, known=known_identities(lik), **kw, timeout=timeout
    )
    if not out.ok:
        return Information(sp.Matrix(), None, fail, warnings=(f"no Fisher information: {out.reason}",))
    info = out.value
    ok, detail = verify_simplex_information(
        lik.log_likelihood,
        info,
        statistics=stats,
        n=lik.N,
        symmetric=kw["symmetric"],
        domains=matrix_domains(lik),
        timeout=timeout,
        total=info.total if info.identities else None,
    )
    if not ok:
        return Information(
            sp.Matrix(),
            None,
            fail,
            warnings=(f"the Fisher information failed its entrywise check and is not reported: {detail}",),
        )
    crlb = sp.Inverse(info.matrix)
    note = (
        ()
        if info.total == lik.N
        else (f"the information of {p} is per count: the sample's is the total count times it",)
    )
    return Information(info.per_count, crlb, ((True,),), dict(info.expectations), note, (), blocks=info)
