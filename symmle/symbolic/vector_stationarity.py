"""Stationarity of a vector model: the score by matrix calculus, solved by rules, verified entrywise.

The gradient of the log-likelihood in each parameter comes from
:mod:`symmle.symbolic.matrix_calculus` (the rules it states), the stationary
point from :mod:`symmle.symbolic.matrix_solve` (parameters in sequence: the mean,
then the covariance with the mean substituted), and every result is checked by
:mod:`symmle.symbolic.matrix_verify` against the entrywise derivatives of the
model written out at D = 2 and D = 3, on random data sets: the score vanishes at
the estimators and the Hessian there is negative definite.  A closed form that
fails the check is not reported.  A parameter with no closed form is left to
numerics with its score equation (kind ``numeric``), solved with exact derivatives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from symmle.symbolic.estimator import Estimator
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.matrix_calculus import gradient
from symmle.symbolic.matrix_solve import solve_stationary_system
from symmle.symbolic.matrix_verify import verify_stationary
from symmle.symbolic.vector_likelihood import invertible_symbols, symmetric_symbols

__all__ = ["solve_vector_stationarity", "statistic_summands", "verification_kwargs", "matrix_domains"]

#: The check's name of each domain (matrix_verify draws admissible values by it).
_CHECK_DOMAIN = {
    "vector": "real",
    "real": "real",
    "positive_vector": "positive",
    "positive": "positive",
    "spd": "spd",
    "simplex": "simplex",
}


def matrix_domains(lik: Likelihood) -> dict[sp.Basic, str]:
    """``{symbol: domain}`` of the parameters and constants, as the verifier names domains."""
    m = lik.model
    return {q.symbol: _CHECK_DOMAIN.get(q.domain, "real") for q in (*m.parameters, *m.constants)}


def statistic_summands(lik: Likelihood, *, informative: bool = False) -> dict[sp.Basic, sp.Basic]:
    """``{T_j: G_j(x)}``: each statistic (or each informative one) with the function it sums."""
    return {s.symbol: s.expr for s, _ in lik.coefficients if s.informative or not informative}


def _symmetric(lik: Likelihood) -> list:
    x = lik.model.variable
    outer = [s.symbol for s, _ in lik.coefficients if s.expr == sp.MatMul(x, x.T)]
    return [*symmetric_symbols(lik.model), *outer]


def verification_kwargs(lik: Likelihood) -> dict:
    """The declarations every matrix step of ``lik`` shares: symmetric and invertible symbols."""
    return {"symmetric": _symmetric(lik), "invertible": invertible_symbols(lik.model)}


def _sampler(support: str | None) -> Callable[[np.random.Generator, int, int], np.ndarray] | None:
    """Random data on the model's support for the checks (Gaussian on R^D is the verifier's default)."""
    if support == "simplex":
        return lambda rng, rows, d: rng.dirichlet(np.full(d, 2.0), size=rows)
    if support == "onehot":
        return lambda rng, rows, d: rng.multinomial(1, np.full(d, 1.0 / d), size=rows).astype(float)
    if support == "counts":
        return lambda rng, rows, d: rng.multinomial(5, np.full(d, 1.0 / d), size=rows).astype(float)
    return None


def solve_vector_stationarity(lik: Likelihood, *, timeout: float | None = None):
    """The score of each parameter of a vector model, its estimator, verified (see the module docstring)."""
    from symmle.symbolic.stationarity import Stationarity

    model = lik.model
    params = list(model.parameter_symbols)
    kw = verification_kwargs(lik)
    ell = lik.log_likelihood
    warnings: list[str] = []
    scores, failed = {}, {}
    for p in params:
        g = gradient(ell, p, **kw, timeout=timeout)
        if g.ok:
            scores[p] = g.value
        else:
            failed[p] = g.reason
            warnings.append(f"no score for {p}: {g.reason}")
    estimators: dict[str, Estimator] = {}
    solved: dict = {}
    simplex = [q.symbol for q in model.parameters if q.domain == "simplex"]
    free = [p for p in params if p not in simplex]
    constrained = []
    for p in simplex:
        found = _lagrange(lik, p, kw, timeout)
        if isinstance(found, str):
            warnings.append(found)
            continue
        solved[p] = found.estimate.value
        constrained.append((p, found))
    positive = [q.symbol for q in model.parameters if q.domain in ("positive", "positive_vector")]
    if free and not any(p in failed for p in free):
        out = solve_stationary_system({p: scores[p] for p in free}, **kw, positive=positive, timeout=timeout)
        if out.ok:
            solved.update(out.value)
        else:
            warnings.append(f"no closed form of the stationary point: {out.reason}")
    if free and all(p in solved for p in free):
        ok, detail = verify_stationary(
            ell.subs({p: solved[p] for p in simplex if p in solved}) if simplex else ell,
            {p: solved[p] for p in free},
            statistics=statistic_summands(lik, informative=True),
            variable=model.variable,
            n=lik.N,
            symmetric=kw["symmetric"],
            domains=matrix_domains(lik),
            sample=_sampler(model.support_set),
            timeout=timeout,
        )
        if not ok:
            warnings.append(f"the stationary point failed its entrywise check and is not reported: {detail}")
            solved = {p: v for p, v in solved.items() if p in simplex}
    for p in params:
        if p in solved:
            estimators[p.name] = Estimator(p.name, "closed_form", expr=solved[p], verified=True)
        elif p in scores:
            estimators[p.name] = Estimator(
                p.name,
                "numeric",
                equation=sp.Eq(scores[p], sp.ZeroMatrix(*scores[p].shape) if scores[p].is_Matrix else 0),
                verified=False,
                note="no closed form found; the score equation is solved numerically",
            )
        else:
            estimators[p.name] = Estimator(p.name, "none", note=failed[p])
    return Stationarity(
        tuple(params),
        tuple(scores.get(p, sp.nan) for p in params),
        sp.Matrix(),
        estimators,
        (),
        tuple(warnings),
        constrained=tuple(constrained),
    )


def known_identities(lik: Likelihood) -> dict:
    """Identities every sample of the support satisfies: one-hot rows sum to 1, so ``1^T T1 = N``."""
    m = lik.model
    if m.support_set != "onehot":
        return {}
    for s, _ in lik.coefficients:
        if s.expr == m.variable:
            return {sp.MatMul(sp.OneMatrix(1, m.dimension), s.symbol): lik.N}
    return {}


def _lagrange(lik: Likelihood, p, kw: dict, timeout: float | None):
    """The Lagrangian derivation of the simplex parameter ``p``, verified; or why there is none."""
    from symmle.symbolic.constrained import lagrange_simplex
    from symmle.symbolic.constrained_verify import verify_lagrange

    found = lagrange_simplex(lik.log_likelihood, p, known=known_identities(lik), **kw, timeout=timeout)
    if not found.ok:
        return f"no closed form for {p} on the simplex: {found.reason}"
    ok, detail = verify_lagrange(
        lik.log_likelihood,
        p,
        found.estimate.value,
        found.multiplier_hat.value,
        statistics=statistic_summands(lik, informative=True),
        variable=lik.model.variable,
        n=lik.N,
        sample=_sampler(lik.model.support_set) or _sampler("simplex"),
        symmetric=kw["symmetric"],
        domains=matrix_domains(lik),
        timeout=timeout,
    )
    if not ok:
        return (
            f"the Lagrangian's stationary point for {p} failed its entrywise check and is not reported: "
            f"{detail}"
        )
    return found
