"""The formulas of a compiled vector model: what is computed from the data, and how, as SymPy.

:func:`vector_formulas` reads a vector Derivation and returns a :class:`VectorFormulas`:

- the statistics: ``T1 = sum x_i`` and ``T2 = sum x_i x_i^T`` are read from the mean ``m``
  and scatter ``S`` of the rows (one pilot-centred pass,
  :func:`symmle.base._runtime.vector_moments`); an entrywise sum ``sum_i g(x_i)`` is one
  compensated pass; a parameter-free sum of the log-likelihood is kept for
  ``log_likelihood`` only;
- each closed-form estimator rewritten in ``m`` and ``S`` (``T1 = N m``, ``T2 = S + N m
  m^T``, exact identities), traces expanded by linearity and written in one cyclic order,
  so that ``sum x x^T - N m m^T`` cancels symbolically and ``Sigma_hat`` is ``S/N``: the
  rewrite is kept only where it agrees with the derived estimator on random statistics at
  D = 3 (else the estimator is used as derived, with a warning);
- what is left to numerics: the informative log-likelihood and its exact score;
- the per-observation Fisher information in the coordinates of the parameters (vech for a
  symmetric matrix), as derived.

:mod:`symmle.numbers.vector_codegen` prints them as code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symmle.base.budget import attempt
from symmle.base.errors import DerivationError
from symmle.numbers.matrix_eval import evaluate

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["VectorFormulas", "canonical_traces", "vector_formulas"]

#: Domains of vector-shaped quantities (``D x 1``); ``spd`` is ``D x D``.
VECTOR_DOMAINS = ("vector", "positive_vector", "simplex")


@dataclass(frozen=True)
class VectorFormulas:
    """The SymPy side of a compiled vector model (see the module docstring)."""

    derivation: Derivation
    #: every symbol the formulas read, by name (model, N, statistics, mean, scatter)
    symbols: dict[str, sp.Basic]
    N: sp.Symbol
    mean: sp.MatrixSymbol
    scatter: sp.MatrixSymbol
    #: ``{"x": T1, "xx": T2}``: statistics read from the mean and scatter
    moments: dict[str, sp.MatrixSymbol]
    #: ``[(T, ElementwiseApplyFunction of the variable)]``: informative entrywise sums
    entrywise: list[tuple[sp.Basic, sp.Basic]]
    #: ``[(T, per-observation scalar expression in the variable)]``: parameter-free sums
    free: list[tuple[sp.Basic, sp.Basic]]
    #: ``[(parameter, expression)]``, in the model's order
    closed: list[tuple[str, sp.Basic]]
    numeric: list[str]
    #: the informative log-likelihood (the parameter-free statistics set to 0)
    informative: sp.Basic
    score: dict[str, sp.Basic]
    fisher: sp.Basic | None
    coordinates: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)


def _coordinate_kind(q) -> str:
    return "vech" if q.domain == "spd" else "vec" if q.is_matrix else "scalar"


def _unique(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    return name


def canonical_traces(expr: sp.Basic) -> sp.Basic:
    """Traces expanded by linearity, each product in its least cyclic rotation (``tr(m m^T) = tr(m^T m)``).

    Both are identities, so terms that differ only in how a trace is written cancel.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> m, S = sp.MatrixSymbol("m", D, 1), sp.MatrixSymbol("S", D, D)
    >>> canonical_traces(sp.Trace(m * m.T + S) - sp.Trace(m.T * m))
    Trace(S)
    """
    e = expr.doit() if getattr(expr, "is_Matrix", False) else sp.sympify(expr).doit()

    def rotate(t: sp.Trace) -> sp.Basic:
        arg = t.arg
        if not isinstance(arg, sp.MatMul):
            return t
        coeff, factors = arg.as_coeff_matrices()
        if len(factors) < 2:
            return t
        turns = [factors[k:] + factors[:k] for k in range(len(factors))]
        best = min(turns, key=lambda fs: sp.default_sort_key(sp.MatMul(*fs)))
        return coeff * sp.Trace(sp.MatMul(*best))

    e = e.replace(lambda a: isinstance(a, sp.Trace), rotate)
    return sp.expand(e) if not getattr(e, "is_Matrix", False) else e


def _centred(
    expr: sp.Basic, moments: dict[str, sp.MatrixSymbol], N: sp.Symbol, mean, scatter, timeout
) -> sp.Basic | None:
    """``expr`` in the mean and scatter: substituted, expanded, traces canonical; None on a time-out."""
    rules = {}
    if "x" in moments:
        rules[moments["x"]] = N * mean
    if "xx" in moments:
        rules[moments["xx"]] = scatter + N * mean * mean.T
    if not rules or not (expr.free_symbols & set(rules)):
        return expr

    def run():
        e = expr.xreplace(rules)
        if getattr(e, "is_Matrix", False):
            return canonical_traces(e.expand().doit())
        return canonical_traces(sp.expand(e))

    out, timed_out = attempt("rewrite the estimator in the mean and scatter", timeout, run)
    return None if out is None or timed_out else out


def _agrees(old: sp.Basic, new: sp.Basic, f: VectorFormulas | dict, dim: int = 3) -> bool:
    """``old`` (in T1, T2) and ``new`` (in the mean and scatter) agree on random statistics."""
    rng = np.random.default_rng(12)
    sym = f["symbols"]
    moments, N, mean, scatter = f["moments"], f["N"], f["mean"], f["scatter"]
    for _ in range(3):
        n = float(rng.integers(5, 50))
        m = rng.normal(size=(dim, 1)) * 3
        a = rng.normal(size=(dim, dim))
        s = a @ a.T + dim * np.eye(dim)
        env = {f["dimension"]: dim, N: n, mean: m, scatter: s}
        if "x" in moments:
            env[moments["x"]] = n * m
        if "xx" in moments:
            env[moments["xx"]] = s + n * m @ m.T
        for other in sym.values():
            if other not in env and isinstance(other, sp.MatrixSymbol) and other.shape[1] != 1:
                b = rng.normal(size=(dim, dim))
                env[other] = b @ b.T + dim * np.eye(dim)  # a square matrix of the model is spd
            elif other not in env and isinstance(other, sp.MatrixSymbol):
                env[other] = rng.uniform(0.5, 2.0, size=(dim, 1))
            elif other not in env and isinstance(other, sp.Symbol):
                env[other] = float(rng.uniform(0.5, 2.0))
        try:
            a_val = np.asarray(evaluate(old, env), dtype=float)
            b_val = np.asarray(evaluate(new, env), dtype=float)
        except (ValueError, TypeError, ZeroDivisionError, np.linalg.LinAlgError):
            return False
        if a_val.shape != b_val.shape or not np.allclose(a_val, b_val, rtol=1e-10, atol=1e-12):
            return False
    return True


def vector_formulas(d: Derivation, *, timeout: float | None = None) -> VectorFormulas:
    """The formulas of ``d``'s compiled vector model.

    Raises
    ------
    DerivationError
        If a parameter has no estimator, a numeric one is a symmetric matrix, or a
        statistic is not a moment, an entrywise sum or a parameter-free sum.
    """
    m = d.model
    lik = d.likelihood
    if not m.is_vector:
        raise DerivationError(f"model '{m.name}' is not a vector model")
    missing = {k: e for k, e in d.solutions.items() if e.kind == "none"}
    if missing:
        name, e = next(iter(missing.items()))
        raise DerivationError(
            f"symmle derived no estimator of {name}, so it cannot compile this model: {e.note}"
        )
    kinds = {q.name: d.solutions[q.name].kind for q in m.parameters}
    for q in m.parameters:
        if kinds[q.name] not in ("closed_form", "numeric"):
            raise DerivationError(f"a vector model's estimator of {q.name} is of kind {kinds[q.name]!r}")
        if kinds[q.name] == "numeric" and q.domain == "spd":
            raise DerivationError(
                f"symmle cannot yet estimate {q.name} ({q.domain}) numerically: no closed form was derived"
            )
    x = m.variable
    symbols: dict[str, sp.Basic] = dict(m.symbols)
    symbols[lik.N.name] = lik.N
    moments: dict[str, sp.MatrixSymbol] = {}
    entrywise, free = [], []
    outer = sp.MatMul(x, x.T)
    for s, _ in lik.coefficients:
        symbols[s.symbol.name] = s.symbol
        if s.expr == x:
            moments["x"] = s.symbol
        elif s.expr == outer:
            moments["xx"] = s.symbol
        elif not s.informative:
            free.append((s.symbol, s.expr))
        elif isinstance(s.expr, ElementwiseApplyFunction) and s.expr.expr == x:
            body = s.expr.function
            others = (body.expr.free_symbols if isinstance(body, sp.Lambda) else set()) - set(body.variables)
            if others:
                raise DerivationError(f"symmle cannot compute the statistic sum_i {s.expr} from data")
            entrywise.append((s.symbol, s.expr))
        else:
            raise DerivationError(f"symmle cannot compute the statistic sum_i {s.expr} from data")
    taken = set(symbols)
    D = m.dimension
    mean = sp.MatrixSymbol(_unique("xbar", taken), D, 1)
    scatter = sp.MatrixSymbol(_unique("scatter", taken | {mean.name}), D, D)
    symbols[mean.name], symbols[scatter.name] = mean, scatter
    warnings: list[str] = []
    info = {
        "symbols": symbols,
        "moments": moments,
        "N": lik.N,
        "mean": mean,
        "scatter": scatter,
        "dimension": D,
    }
    closed = []
    for q in m.parameters:
        if kinds[q.name] != "closed_form":
            continue
        e = d.solutions[q.name].expr
        new = _centred(e, moments, lik.N, mean, scatter, timeout)
        if new is not None and new != e and not _agrees(e, new, info):
            new = None
        if new is None:
            warnings.append(
                f"the estimator of {q.name} is evaluated from the raw sums T1, T2 "
                "(its rewrite in the mean and scatter was not confirmed)"
            )
            new = e
        closed.append((q.name, new))
    numeric = [q.name for q in m.parameters if kinds[q.name] == "numeric"]
    free_symbols = [t for t, _ in free]
    informative = lik.log_likelihood.subs({t: 0 for t in free_symbols})
    # in the mean and scatter where the mean cancels (x_i - mu kept whole): digits kept far from 0
    from symmle.numbers.vector_fit import centred_log_likelihood

    centred = centred_log_likelihood(d, informative, mean, scatter)
    if centred is not None:
        informative = centred
    score = dict(zip((p.name for p in d.stationarity.parameters), d.stationarity.score))
    for name in numeric:
        if name not in score:
            raise DerivationError(f"no score of {name} was derived, so it cannot be maximised numerically")
    coordinates = [(q.name, _coordinate_kind(q)) for q in m.parameters]
    fisher = d.fisher if getattr(d.fisher, "is_Matrix", False) else None
    if fisher is not None:
        size = sum({"scalar": 1, "vec": D, "vech": D * (D + 1) / 2}[kind] for _, kind in coordinates)
        if sp.simplify(fisher.shape[0] - size) != 0 or sp.simplify(fisher.shape[1] - size) != 0:
            fisher = None
    if fisher is None:
        warnings.append("no standard errors: the Fisher information was not derived in matrix form")
    return VectorFormulas(
        derivation=d,
        symbols=symbols,
        N=lik.N,
        mean=mean,
        scatter=scatter,
        moments=moments,
        entrywise=entrywise,
        free=free,
        closed=closed,
        numeric=numeric,
        informative=informative,
        score={name: score[name] for name in numeric},
        fisher=fisher,
        coordinates=coordinates,
        warnings=warnings,
    )
