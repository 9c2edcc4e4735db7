r"""Sufficient statistics of a vector observation: the matrix form of the likelihood split.

For a scalar variable, :mod:`symmle.symbolic.likelihood` writes
:math:`\log f = A(\theta) + \sum_j c_j(\theta) g_j(x) + h(x)`.  For a vector
:math:`\mathbf x` of dimension :math:`D` the same split reads

.. math::

    \log f(\mathbf x \mid \theta) = A(\theta)
        + \sum_j \operatorname{tr}\!\big(C_j(\theta)^\top G_j(\mathbf x)\big) + h(\mathbf x),

with :math:`G_j(\mathbf x)` one of :math:`\mathbf x`, :math:`\mathbf x \mathbf x^\top` or an entrywise
function :math:`g.(\mathbf x)` (such as :math:`\log.(\mathbf x)`), and :math:`h` free of the
parameters.  Summed over the sample, each :math:`G_j` becomes the statistic
:math:`T_j = \sum_i G_j(\mathbf x_i)`, a vector or a matrix, so that

.. math:: \ell(\theta) = N A(\theta) + \sum_j \operatorname{tr}(C_j^\top T_j) + \sum_i h(\mathbf x_i).

The split is read off term by term, by rules that hold for any shapes:
traces are linear (:math:`\operatorname{tr}(aM + bN) = a\operatorname{tr} M + b\operatorname{tr} N`)
and cyclic (:math:`\operatorname{tr}(L G R) = \operatorname{tr}(R L G)`, so the coefficient of
:math:`G` in :math:`\operatorname{tr}(L G R)` is :math:`(RL)^\top`, and in
:math:`\operatorname{tr}(L G^\top R)` it is :math:`RL`), and a quadratic form is a trace
(:math:`\mathbf x^\top M \mathbf x = \operatorname{tr}(M \mathbf x \mathbf x^\top)`).  A term in which the
variable enters any other way, with parameters, does not separate: the model is refused with
a message that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.base.errors import SpecError

__all__ = ["VectorSplit", "split_log_density", "linear_traces", "symmetric_tidy"]


@dataclass(frozen=True)
class VectorSplit:
    r"""The split :math:`\log f = A + \sum_j \operatorname{tr}(C_j^\top G_j) + h`.

    Attributes
    ----------
    baseline : Expr
        :math:`A(\theta)`, free of the variable.
    terms : tuple of (MatrixExpr, MatrixExpr)
        ``(G_j(x), C_j(theta))`` in order of first appearance; ``G`` and ``C`` have one shape.
    free : Expr
        :math:`h(\mathbf x)`: the terms with the variable and no parameter (0 if none).
    """

    baseline: sp.Expr
    terms: tuple[tuple[sp.Expr, sp.Expr], ...]
    free: sp.Expr


def symmetric_tidy(expr: sp.Basic, symmetric: Iterable[sp.MatrixSymbol]) -> sp.Basic:
    r"""``expr`` with transposes pushed onto symbols, and :math:`S^\top = S` for each symmetric ``S``.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> S, m = sp.MatrixSymbol("S", D, D), sp.MatrixSymbol("m", D, 1)
    >>> symmetric_tidy((m.T * S.I).T, [S])
    S**(-1)*m
    """
    symmetric = set(symmetric)
    if isinstance(expr, MatrixExpr):
        expr = sp.transpose(expr).doit().T.doit() if expr.has(sp.Transpose) else expr
    rules = {}
    for s in symmetric:
        rules[sp.Transpose(s)] = s
        rules[sp.Transpose(sp.Inverse(s))] = sp.Inverse(s)
        rules[sp.Inverse(sp.Transpose(s))] = sp.Inverse(s)
    out = expr.xreplace(rules) if rules else expr
    return out.doit() if isinstance(out, MatrixExpr) else out


def linear_traces(expr: sp.Expr) -> sp.Expr:
    r"""Distribute every trace over sums and scalar factors.

    :math:`\operatorname{tr}(aM + bN) = a \operatorname{tr}M + b \operatorname{tr}N`.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> x, m = sp.MatrixSymbol("x", D, 1), sp.MatrixSymbol("m", D, 1)
    >>> linear_traces(sp.Trace((x - m).T * (x - m)))
    Trace(m.T*m) - Trace(m.T*x) - Trace(x.T*m) + Trace(x.T*x)
    """

    def spread(t: sp.Trace) -> sp.Expr:
        inner = t.arg.expand()
        out = sp.S.Zero
        for term in sp.Add.make_args(inner) if not isinstance(inner, sp.MatAdd) else inner.args:
            coeff, factors = _coeff_and_factors(term)
            body = factors[0] if len(factors) == 1 else sp.MatMul(*factors)
            out += coeff * sp.Trace(body)
        return out

    return sp.expand(expr.replace(lambda e: isinstance(e, sp.Trace), spread))


def _coeff_and_factors(term: sp.Basic) -> tuple[sp.Expr, list[sp.Basic]]:
    """A product of matrices as ``(scalar coefficient, [matrix factors])``."""
    if isinstance(term, sp.MatMul):
        scalars = [a for a in term.args if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in term.args if getattr(a, "is_Matrix", False)]
        return sp.Mul(*scalars), matrices
    return sp.S.One, [term]


def _atom(f: sp.Basic, x: sp.MatrixSymbol) -> tuple[sp.Basic, bool] | None:
    """``(G, transposed)`` if the factor ``f`` is ``G`` or ``G^T`` for an x-statistic ``G``."""
    transposed = isinstance(f, sp.Transpose)
    g = f.arg if transposed else f
    if g == x or (isinstance(g, ElementwiseApplyFunction) and g.expr == x):
        return g, transposed
    return None


def _product(factors: Sequence[sp.Basic], rows: sp.Expr) -> sp.Basic:
    return sp.MatMul(*factors).doit() if factors else sp.Identity(rows)


def split_log_density(
    log_density: sp.Expr, x: sp.MatrixSymbol, parameters: Iterable[sp.Basic], symmetric: Iterable = ()
) -> VectorSplit:
    r"""Split a vector model's log-density into :class:`VectorSplit` by the trace rules.

    Raises
    ------
    SpecError
        When a term with a parameter holds the variable other than linearly in
        :math:`\mathbf x`, :math:`\mathbf x \mathbf x^\top` or an entrywise function of
        :math:`\mathbf x` (the likelihood does not reduce to sums of matrices).

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> x, mu, S = sp.MatrixSymbol("x", D, 1), sp.MatrixSymbol("mu", D, 1), sp.MatrixSymbol("S", D, D)
    >>> logf = -sp.Trace((x - mu).T * S.I * (x - mu)) / 2 - sp.log(sp.Determinant(S)) / 2
    >>> split = split_log_density(logf, x, [mu, S], symmetric=[S])
    >>> split.terms
    ((x, S**(-1)*mu), (x*x.T, -(1/2)*S**(-1)))
    """
    parameters = set(parameters)
    symmetric = list(symmetric)
    rows = x.shape[0]
    baseline, free = sp.S.Zero, sp.S.Zero
    coeffs: dict[sp.Basic, sp.Basic] = {}
    order: list[sp.Basic] = []

    def add(g: sp.Basic, c: sp.Basic) -> None:
        if g not in coeffs:
            order.append(g)
            coeffs[g] = c
        else:
            coeffs[g] = coeffs[g] + c

    for term in sp.Add.make_args(linear_traces(sp.expand(log_density))):
        if not term.has(x):
            baseline += term
            continue
        traces = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Trace) and f.has(x)]
        rest = sp.Mul(*[f for f in sp.Mul.make_args(term) if f not in traces])
        if not (term.free_symbols & parameters or any(term.has(p) for p in parameters)):
            free += term
            continue
        if len(traces) != 1 or rest.has(x):
            raise _not_separable(term)
        coeff, factors = _coeff_and_factors(traces[0].arg)
        coeff = coeff * rest
        where = [(k, _atom(f, x)) for k, f in enumerate(factors)]
        hits = [(k, a) for k, a in where if a is not None]
        if any(f.has(x) for k, f in enumerate(factors) if where[k][1] is None):
            raise _not_separable(term)
        if len(hits) == 1:
            (k, (g, transposed)) = hits[0]
            left, right = factors[:k], factors[k + 1 :]
            rl = _product([*right, *left], g.shape[0])
            c = rl if transposed else sp.Transpose(rl)
            add(g, symmetric_tidy(coeff * c, symmetric))
        elif len(hits) == 2 and hits[0][1][0] == x and hits[1][1][0] == x:
            (i, (_, ti)), (j, (_, tj)) = hits
            left, middle, right = factors[:i], factors[i + 1 : j], factors[j + 1 :]
            outer = sp.MatMul(x, x.T)
            rl = _product([*right, *left], 1) if (left or right) else None
            scale = sp.Trace(rl) if rl is not None else sp.S.One
            if ti and not tj:  # tr(L x^T M x R) = (x^T M x) tr(R L) = tr(M x x^T) tr(R L)
                c = sp.Transpose(_product(middle, rows))
            elif not ti and tj and not middle:  # tr(L x x^T R) = tr(R L x x^T)
                c, scale = sp.Transpose(_product([*right, *left], rows)), sp.S.One
            else:
                raise _not_separable(term)
            add(outer, symmetric_tidy(coeff * scale * c, symmetric))
        else:
            raise _not_separable(term)
    terms = tuple((g, _tidy_sum(coeffs[g], symmetric)) for g in order)
    return VectorSplit(sp.expand(baseline), terms, free)


def _tidy_sum(c: sp.Basic, symmetric: list) -> sp.Basic:
    out = symmetric_tidy(c, symmetric)
    return out.doit() if isinstance(out, MatrixExpr) else out


def _not_separable(term: sp.Expr) -> SpecError:
    return SpecError(
        "the log-density does not reduce to sums of x, x x^T or entrywise functions of x: "
        f"its term {term} mixes the observation and the parameters another way"
    )


def symmetric_symbols(model) -> list[sp.MatrixSymbol]:
    """The model's symmetric matrices: its ``spd`` parameters and constants."""
    return [q.symbol for q in (*model.parameters, *model.constants) if q.domain == "spd"]


def invertible_symbols(model) -> list[sp.MatrixSymbol]:
    """The model's matrices known to be invertible: its ``spd`` parameters and constants."""
    return symmetric_symbols(model)


def _statistic_order(g: sp.Basic, x: sp.MatrixSymbol) -> tuple:
    return (g != x, g != sp.MatMul(x, x.T), sp.default_sort_key(g))


def build_vector_likelihood(model, *, timeout: float | None = None):
    r"""The log-likelihood of N IID vector observations, in matrix statistics.

    Each :math:`G_j` of :func:`split_log_density` becomes the statistic
    :math:`T_j = \sum_i G_j(\mathbf x_i)`, a ``MatrixSymbol`` of its shape
    (``T1`` for :math:`\sum_i \mathbf x_i` and ``T2`` for :math:`\sum_i \mathbf x_i \mathbf x_i^\top`
    when the model has them); the parameter-free part :math:`h` becomes a scalar
    statistic that carries no information.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> lik = build_vector_likelihood(load_model("mvnormal"))  # doctest: +SKIP
    """
    from symmle.base.budget import budget
    from symmle.symbolic.likelihood import Likelihood, Statistic, sample_symbols

    x = model.variable
    params = [q.symbol for q in model.parameters]
    symmetric = symmetric_symbols(model)
    with budget("log-likelihood", timeout):
        logf = sp.expand(sp.expand_log(sp.log(model.density), force=True))
        split = split_log_density(logf, x, params, symmetric)
        N, i, sample = sample_symbols(model)
        terms = sorted(split.terms, key=lambda t: _statistic_order(t[0], x))
        coefficients = []
        loglik = N * split.baseline
        for j, (g, c) in enumerate(terms, start=1):
            t = sp.MatrixSymbol(f"T{j}", *g.shape)
            informative = bool(sp.sympify(c).free_symbols & set(params)) or any(c.has(p) for p in params)
            coefficients.append((Statistic(t, g, informative), c))
            loglik += sp.Trace(symmetric_tidy(sp.MatMul(sp.Transpose(c), t), symmetric))
        if split.free != 0:
            t = sp.Symbol(f"T{len(terms) + 1}", real=True)
            coefficients.append((Statistic(t, split.free, False), sp.S.One))
            loglik += t
    return Likelihood(model, logf, split.baseline, tuple(coefficients), sp.S.Zero, N, i, sample, loglik)
