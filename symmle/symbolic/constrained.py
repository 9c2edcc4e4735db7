r"""Maximum likelihood over the simplex by the Lagrangian, derived stage by stage.

A ``simplex`` parameter ``p`` is a column ``MatrixSymbol`` ``(K, 1)`` with positive entries and
``1^T p = 1``.  Its estimate is not looked up: :func:`lagrange_simplex` derives it from the
log-likelihood ``ell`` (in the statistics, e.g. ``ell = tr(T1^T log.(p)) + ...``) by the rules of
:mod:`symmle.symbolic.matrix_calculus` and :mod:`symmle.symbolic.matrix_solve`, keeping every stage
for the lecture notes:

1. **The Lagrangian** ``L(p, lambda) = ell(p) + lambda (1 - 1^T p)`` (rule ``lagrangian``).
2. **Its gradient in p**, ``dL/dp = d ell/dp - lambda 1``, by :func:`~.matrix_calculus.gradient`
   (for ``ell = tr(T1^T log.(p))``: ``diag(1/p) T1 - lambda 1``, the entrywise quotient
   ``T1 ./ p`` minus ``lambda 1``).
3. **p in terms of lambda**: ``dL/dp = 0`` solved for ``p`` by
   :func:`~.matrix_solve.solve_stationary` (entry by entry here: ``p = T1/lambda``).
4. **lambda**: ``dL/dlambda = 1 - 1^T p(lambda) = 0`` solved for ``lambda`` by the scalar rule
   (``lambda = 1^T T1``).  Known identities of the statistics (``{1^T T1: N}`` for one-hot rows,
   where each ``1^T x_i = 1``) then simplify it, and the ones used are recorded.
5. **The estimate** ``p_hat = p(lambda_hat)`` (``T1/(1^T T1)``, ``T1/N`` for one-hot rows).

Each stage is an :class:`~.matrix_calculus.Outcome` (the value or the reason it could not be
done, with the rules used and its time); a stage that depends on a refused one is refused with that
reason.  The numerical checks (the Lagrangian's entrywise gradient vanishes at ``p_hat``, the
Hessian on the tangent space ``{v : 1^T v = 0}`` is negative definite, at ``K = 2, 3``) are
:mod:`symmle.symbolic.constrained_verify`.

**Fisher information** (:func:`simplex_information`) on the ``K - 1`` free coordinates
``q = (p_1, ..., p_{K-1})``, ``p_K = 1 - 1^T q``, derived from the second differential along the
tangent directions:

* ``d^2 ell`` in directions ``dp``, ``dp'`` by :func:`~.matrix_information.second_differential`;
* ``E[T]`` from the score identity of the Lagrangian: along every tangent direction ``v`` the
  score has expectation 0, so ``E[d ell/dp] = lambda 1`` for some ``lambda``; solved for ``T``
  (``E[T1] = lambda p``); then ``1^T E[T] = lambda 1^T p = lambda`` (rule ``constraint``), and the
  total ``1^T T`` is fixed by the design (each row's total is given: 1 for one-hot rows, the
  row's count ``n_i`` for counts), so ``lambda = 1^T T`` (``N`` by the identity ``1^T T1 = N``);
* ``-E[d^2 ell]`` as a matrix ``W`` in ``p``'s entries (``tr(A U B V)`` rules of
  :mod:`~.matrix_information`): ``W = (1^T T1) diag(1/p)``;
* restricted to the tangent space (rule ``tangent``): ``dp = P dq`` with ``P = [I; -1^T]``, so
  ``P^T diag(w) P = diag(w_{1:K-1}) + w_K 1 1^T`` and ``P^T 1 = 0`` (a term ``1 ...`` or
  ``... 1^T`` of ``W`` vanishes).

The result is the information of the sample, ``(1^T T1) (diag(1/q) + 1/p_K 1 1^T)``: for one-hot
rows (categorical) ``N`` times the information of one observation; for rows of counts (multinomial)
a row of count ``n_i`` carries ``n_i`` times the information of one count, and the counts vary by
row, so the record gives the information of one count (``per_count``) and of the sample
(``matrix``), not a per-row figure.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.symbolic.matrix_calculus import (
    Outcome,
    as_scalar,
    context,
    depends,
    differential_symbol,
    direction,
    gradient,
    run_step,
    substitute,
    use_rule,
)
from symmle.symbolic.matrix_forms import Context, Form, NoRule, diag, entrywise, scalar, to_form
from symmle.symbolic.matrix_information import bilinear_matrix, second_differential
from symmle.symbolic.matrix_solve import solve_stationary

__all__ = [
    "Multiplier",
    "FreeCoordinates",
    "LastCoordinate",
    "LagrangeDerivation",
    "SimplexInformation",
    "constraint_of",
    "multiplier_of",
    "free_coordinates",
    "lagrange_simplex",
    "simplex_information",
]


class Multiplier(sp.Symbol):
    """The Lagrange multiplier of a constraint on ``p``: named ``lambda(p)`` (a name the safe parser
    cannot produce, so it never meets a model's own ``lambda``), printed ``\\lambda``."""

    def _latex(self, printer: object, *args: object) -> str:
        return r"\lambda"


class FreeCoordinates(sp.MatrixSymbol):
    """``p_{1:K-1}``, the free coordinates of a simplex ``p`` (named ``p[1:K-1]``, a name the safe
    parser cannot produce); printed as ``p`` is, with the subscript ``1:K-1``."""

    def _latex(self, printer: object, *args: object) -> str:
        base = sp.MatrixSymbol(self.name.split("[", 1)[0], self.shape[0] + 1, 1)
        last = printer._print(self.shape[0])  # type: ignore[attr-defined]
        return "{" + printer._print(base) + "}_{1:" + last + "}"  # type: ignore[attr-defined]


class LastCoordinate(sp.Symbol):
    """``p_K = 1 - 1^T p_{1:K-1}``, the last entry of a simplex ``p`` (named ``p[K]``)."""

    def _latex(self, printer: object, *args: object) -> str:
        base, _, k = self.name.partition("[")
        return printer._print(sp.Symbol(base)) + "_{" + k.rstrip("]") + "}"  # type: ignore[attr-defined]


def multiplier_of(p: sp.MatrixSymbol) -> Multiplier:
    """The multiplier of the constraint ``1^T p = 1`` (real)."""
    return Multiplier(f"lambda({p.name})", real=True)


def constraint_of(p: sp.MatrixSymbol) -> sp.Expr:
    """``1 - 1^T p`` (as ``1 - tr(1^T p)``), zero on the simplex."""
    return 1 - sp.Trace(sp.OneMatrix(1, p.shape[0]) * p)


def free_coordinates(p: sp.MatrixSymbol) -> tuple[FreeCoordinates, LastCoordinate]:
    """``(q, p_K)``: ``q`` the ``(K - 1, 1)`` column of the first entries, ``p_K = 1 - 1^T q``."""
    k = p.shape[0]
    return FreeCoordinates(f"{p.name}[1:{k - 1}]", k - 1, 1), LastCoordinate(f"{p.name}[{k}]", positive=True)


def _canonical(e: sp.Basic, ctx: Context) -> sp.Expr:
    """A scalar (or a 1x1 matrix, read as its trace) in the normal form of traces."""
    return scalar(as_scalar(e), ctx)


def _apply_known(
    e: sp.Expr, known: Mapping[sp.Basic, sp.Basic], ctx: Context
) -> tuple[sp.Expr, tuple[tuple[sp.Basic, sp.Basic], ...]]:
    """``e`` with each known identity ``lhs = rhs`` applied, and the identities that changed it."""
    used = []
    for lhs, rhs in known.items():
        key, value = _canonical(lhs, ctx), _canonical(rhs, ctx)
        new = e.xreplace({key: value})
        if new != e:
            used.append((lhs, rhs))
            e = scalar(new, ctx)
    if used:
        use_rule("known_identity")
    return e, tuple(used)


# ---------------------------------------------------------------- the Lagrangian


@dataclass(frozen=True)
class LagrangeDerivation:
    """Every stage of the Lagrangian maximisation of ``ell`` over the simplex ``p``.

    Attributes
    ----------
    parameter : MatrixSymbol
        ``p``, ``(K, 1)``.
    multiplier : Symbol
        ``lambda`` (:func:`multiplier_of` unless given).
    constraint : Expr
        ``1 - tr(1^T p)``; the Lagrangian is ``ell + lambda * constraint``.
    lagrangian : Outcome
        ``L(p, lambda)``, a scalar expression.
    gradient : Outcome
        ``dL/dp`` (a ``(K, 1)`` matrix expression), by matrix calculus.
    parameter_in_multiplier : Outcome
        ``p(lambda)``, the solution of ``dL/dp = 0`` for ``p``.
    multiplier_equation : Outcome
        ``dL/dlambda`` at ``p(lambda)``: ``1 - tr(1^T p(lambda))``, to be zero.
    multiplier_solution : Outcome
        ``lambda`` solved from it, in the statistics (``tr(1^T T1)``).
    multiplier_hat : Outcome
        ``lambda_hat``: the solution with the known identities applied (``N``).
    estimate : Outcome
        ``p_hat = p(lambda_hat)``.
    identities : tuple of (Basic, Basic)
        The known identities ``(lhs, rhs)`` that were used (an empty tuple if none was).
    """

    parameter: sp.MatrixSymbol
    multiplier: sp.Symbol
    constraint: sp.Expr
    lagrangian: Outcome
    gradient: Outcome
    parameter_in_multiplier: Outcome
    multiplier_equation: Outcome
    multiplier_solution: Outcome
    multiplier_hat: Outcome
    estimate: Outcome
    identities: tuple = ()

    @property
    def stages(self) -> tuple[tuple[str, Outcome], ...]:
        """``(name, outcome)`` of each stage, in order."""
        return (
            ("lagrangian", self.lagrangian),
            ("gradient", self.gradient),
            ("parameter_in_multiplier", self.parameter_in_multiplier),
            ("multiplier_equation", self.multiplier_equation),
            ("multiplier_solution", self.multiplier_solution),
            ("multiplier_hat", self.multiplier_hat),
            ("estimate", self.estimate),
        )

    @property
    def ok(self) -> bool:
        """Whether every stage was done (the estimate exists)."""
        return self.estimate.ok

    @property
    def reason(self) -> str:
        """The reason of the first refused stage (empty if none was)."""
        return next((o.reason for _, o in self.stages if not o.ok), "")

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules used by the stages, in order of first use."""
        out: list[str] = []
        for _, o in self.stages:
            out += [r for r in o.rules if r not in out]
        return tuple(out)

    @property
    def seconds(self) -> float:
        """The wall time of the stages together."""
        return sum(o.seconds for _, o in self.stages)


class _Clock:
    """One budget shared by the stages: each stage gets what is left."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None or timeout <= 0 else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def step(self, name: str, fn: object, *needs: Outcome) -> Outcome:
        missing = next((o for o in needs if not o.ok), None)
        if missing is not None:
            return Outcome(None, f"{name}: needs a stage that was refused ({missing.reason})")
        left = self.left()
        if left is not None and left <= 0:
            return Outcome(None, f"{name}: time budget exceeded before the stage began")
        return run_step(name, left, fn)  # type: ignore[arg-type]


def lagrange_simplex(
    ell: sp.Expr,
    p: sp.MatrixSymbol,
    *,
    known: Mapping[sp.Basic, sp.Basic] | None = None,
    multiplier: sp.Symbol | None = None,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> LagrangeDerivation:
    """Maximise ``ell`` over the simplex ``p`` by the Lagrangian (see the module docstring).

    Parameters
    ----------
    ell : Expr
        The log-likelihood, a scalar (a 1x1 matrix expression is read as its trace), in the
        statistics and ``p`` (other parameters are constants here).
    p : MatrixSymbol
        The simplex parameter, a ``(K, 1)`` column.
    known : mapping, optional
        Identities of the statistics that hold for every sample of the model's support, such as
        ``{OneMatrix(1, K) @ T1: N}`` for one-hot rows; applied to ``lambda``, and reported in
        :attr:`LagrangeDerivation.identities` when used.
    multiplier : Symbol, optional
        The multiplier's symbol (default :func:`multiplier_of`).
    symmetric, invertible : iterables of MatrixSymbol
        Declared symmetric / invertible symbols, as for :func:`~.matrix_calculus.gradient`.
    timeout : float or None
        Budget in seconds for all the stages together.

    Returns
    -------
    LagrangeDerivation
        Every stage, each an :class:`~.matrix_calculus.Outcome`.

    Raises
    ------
    NoRule
        If ``p`` is not a column ``MatrixSymbol`` (a caller's error, not a stage's refusal).

    Examples
    --------
    >>> K = sp.Symbol("K", integer=True, positive=True)
    >>> N = sp.Symbol("N", positive=True)
    >>> p, T1 = sp.MatrixSymbol("p", K, 1), sp.MatrixSymbol("T1", K, 1)
    >>> ell = sp.Trace(T1.T * p.applyfunc(sp.log))
    >>> out = lagrange_simplex(ell, p, known={sp.OneMatrix(1, K) * T1: N})
    >>> out.parameter_in_multiplier.value, out.multiplier_solution.value, out.estimate.value
    (1/lambda(p)*T1, Trace(1*T1), 1/N*T1)
    """
    if not (isinstance(p, sp.MatrixSymbol) and p.shape[1] == 1):
        raise NoRule(f"a simplex parameter is a column MatrixSymbol, not {p}")
    lam = multiplier if multiplier is not None else multiplier_of(p)
    sym, inv = tuple(symmetric), tuple(invertible)
    ctx = context(sym, inv)
    known = dict(known or {})
    clock = _Clock(timeout)
    g = constraint_of(p)

    def build() -> sp.Expr:
        use_rule("lagrangian")
        return as_scalar(ell) + lam * g

    lagrangian = clock.step("Lagrangian", build)
    grad = clock.step(
        f"gradient of the Lagrangian in {p}",
        lambda: _value(gradient(lagrangian.value, p, symmetric=sym, invertible=inv, timeout=None)),
        lagrangian,
    )
    p_lam = clock.step(
        f"{p} in terms of the multiplier",
        lambda: _solved(
            solve_stationary(grad.value, p, symmetric=sym, invertible=inv, positive=[p], timeout=None),
            lam,
            p,
        ),
        grad,
    )

    def equation() -> sp.Expr:
        use_rule("constraint")
        return substitute(g, {p: p_lam.value}, symmetric=sym, invertible=inv)

    lam_eq = clock.step("the constraint at p(lambda)", equation, p_lam)
    lam_sol = clock.step(
        "the multiplier",
        lambda: _value(solve_stationary(lam_eq.value, lam, symmetric=sym, invertible=inv, timeout=None)),
        lam_eq,
    )
    used: list = []

    def simplify_lambda() -> sp.Expr:
        value, found = _apply_known(lam_sol.value, known, ctx)
        used.extend(found)
        return value

    lam_hat = clock.step("the multiplier, known identities applied", simplify_lambda, lam_sol)
    estimate = clock.step(
        f"the estimate of {p}",
        lambda: substitute(p_lam.value, {lam: lam_hat.value}, symmetric=sym, invertible=inv),
        p_lam,
        lam_hat,
    )
    return LagrangeDerivation(
        p, lam, g, lagrangian, grad, p_lam, lam_eq, lam_sol, lam_hat, estimate, tuple(used)
    )


def _value(out: Outcome) -> sp.Basic:
    """The value of an inner step (its rules recorded in the enclosing one), or its reason raised."""
    for r in out.rules:
        use_rule(r)
    if not out.ok:
        raise NoRule(out.reason)
    return out.value


def _solved(out: Outcome, lam: sp.Symbol, p: sp.MatrixSymbol) -> sp.Basic:
    value = _value(out)
    if not depends(value, lam):
        raise NoRule(f"the solution for {p} does not involve the multiplier: the constraint cannot fix it")
    return value


# ---------------------------------------------------------------- Fisher information


@dataclass(frozen=True)
class SimplexInformation:
    """The Fisher information of a simplex parameter on its ``K - 1`` free coordinates.

    Attributes
    ----------
    parameter : MatrixSymbol
        ``p``, ``(K, 1)``.
    free : FreeCoordinates
        ``q = p_{1:K-1}``, ``(K - 1, 1)``: the coordinates of the information.
    last : LastCoordinate
        ``p_K``, standing for ``1 - 1^T q``.
    second_differential : Expr
        ``d^2 ell`` in the directions ``d(p)`` and ``d(p)'``.
    expectations : dict
        ``{T: E[T]}`` from the score identity of the Lagrangian (``E[T1] = (1^T T1) p``).
    total : Expr
        ``1^T E[T]``: ``tr(1^T T1)`` (the sample's total count, fixed by the design), or what the
        known identities make it (``N`` for one-hot rows).
    form : Expr
        ``-E[d^2 ell]``, bilinear in ``d(p)`` and ``d(p)'``.
    coordinate_matrix : MatrixExpr
        ``W`` with ``-E[d^2 ell] = d(p)^T W d(p)'`` (``K x K``): ``(1^T T1) diag(1/p)``.
    matrix : MatrixExpr
        The information of the sample in ``q``: ``total (diag(1/q) + 1/p_K 1 1^T)``.
    per_count : MatrixExpr
        ``matrix / total``: the information of one count (of one observation for one-hot rows).
    identities : tuple of (Basic, Basic)
        The known identities used.
    """

    parameter: sp.MatrixSymbol
    free: FreeCoordinates
    last: LastCoordinate
    second_differential: sp.Expr
    expectations: Mapping[sp.Basic, sp.Basic]
    total: sp.Expr
    form: sp.Expr
    coordinate_matrix: sp.Basic
    matrix: sp.Basic
    per_count: sp.Basic
    identities: tuple = ()


def _restrict_column(
    w: Form, p: sp.MatrixSymbol, q: sp.MatrixSymbol, last: sp.Symbol
) -> tuple[Form, sp.Expr]:
    """``(w_{1:K-1}, w_K)`` of a column ``w`` whose terms are ``p``, ``1`` or ``f.(p)``."""
    head = Form(q.shape)
    tail = sp.S.Zero
    for prod, c in w.terms.items():
        a = prod[0] if len(prod) == 1 else None
        if a == p:
            head, tail = head + Form.atom(q, c), tail + c * last
        elif isinstance(a, sp.OneMatrix):
            head, tail = head + Form.atom(sp.OneMatrix(*q.shape), c), tail + c
        elif isinstance(a, ElementwiseApplyFunction) and a.expr == p and not depends(a.function.expr, p):
            var, body = a.function.variables[0], a.function.expr
            k, rest = body.as_independent(var, as_Add=False)  # a constant factor out: -N (1/t).(q)
            head = head + Form.atom(ElementwiseApplyFunction(sp.Lambda(var, rest), q), c * k)
            tail = tail + c * body.xreplace({var: last})
        else:
            shown = a if a is not None else sp.MatMul(*prod)
            raise NoRule(f"no rule restricts the entries of {shown} to the free coordinates of {p}")
    return head, tail


def _on_simplex(e: sp.Basic, on_simplex: Mapping, ctx: Context) -> sp.Basic:
    """``e`` with ``tr(1^T p)`` replaced by 1, in normal form."""
    return substitute(e.xreplace(dict(on_simplex)), {}, symmetric=ctx.symmetric, invertible=ctx.invertible)


def _tidy_diagonals(w: Form, ctx: Context) -> Form:
    """``diag((c g).(u))`` as ``c diag(g.(u))`` for a constant ``c`` (``N diag(1/p)``, not
    ``-N diag((-1/t).(p))``)."""
    out = Form(w.shape)
    for prod, c in w.terms.items():
        a = prod[0] if len(prod) == 1 else None
        if isinstance(a, DiagMatrix) and isinstance(a.args[0], ElementwiseApplyFunction):
            f = a.args[0]
            var, body = f.function.variables[0], f.function.expr
            k, rest = body.as_independent(var, as_Add=False)
            if k != 1:
                inner = entrywise(sp.Lambda(var, rest), f.expr, ctx)
                out = out + diag(inner, ctx).scale(c * k)
                continue
        out = out + Form(w.shape, {prod: c})
    return out


def _tangent(w: Form, p: sp.MatrixSymbol, q: sp.MatrixSymbol, last: sp.Symbol, ctx: Context) -> Form:
    """``P^T W P`` with ``P = [I; -1^T]``: ``W`` as a bilinear form on the tangent space in ``q``."""
    m = q.shape[0]
    one_col, one_row = sp.OneMatrix(m, 1), sp.OneMatrix(1, m)
    ones = Form((m, m), {(one_col, one_row): sp.S.One})
    out = Form((m, m))
    for prod, c in w.terms.items():
        if prod and (isinstance(prod[0], sp.OneMatrix) or isinstance(prod[-1], sp.OneMatrix)):
            continue  # P^T 1 = 0: a term 1 ... or ... 1^T vanishes on the tangent space
        if not prod:  # the identity is diag(1)
            head, tail = Form.atom(one_col), sp.S.One
        elif len(prod) == 1 and isinstance(prod[0], DiagMatrix):
            head, tail = _restrict_column(to_form(prod[0].args[0], ctx), p, q, last)
        else:
            raise NoRule(f"no rule restricts {sp.MatMul(*prod)} to the tangent space of the simplex {p}")
        out = out + (diag(head, ctx) + ones.scale(tail)).scale(c)
    use_rule("tangent")
    return out


def _expected_statistics(grad: sp.Basic, stats: Sequence[sp.Basic], ctx: Context) -> dict:
    """``{T: E[T] in lambda}`` from ``E[dL/dp] = 0``: one statistic, solved linearly."""
    present = [t for t in stats if depends(grad, t)]
    if len(present) != 1:
        names = ", ".join(str(t) for t in present) or "none"
        raise NoRule(f"the score of the Lagrangian holds the statistics {names}: E[T] needs exactly one")
    t = present[0]
    out = solve_stationary(grad, t, symmetric=ctx.symmetric, invertible=ctx.invertible, timeout=None)
    value = _value(out)
    use_rule("score_identity")
    return {t: value}


def _information(
    ell: sp.Expr,
    p: sp.MatrixSymbol,
    stats: Sequence[sp.Basic],
    lam: sp.Symbol,
    known: Mapping[sp.Basic, sp.Basic],
    ctx: Context,
) -> SimplexInformation:
    k = p.shape[0]
    ell = as_scalar(ell)
    # E[T] in lambda, then lambda from the total: 1^T E[T] = 1^T T (fixed by the design)
    grad = _value(
        gradient(ell + lam * constraint_of(p), p, symmetric=ctx.symmetric, invertible=ctx.invertible)
    )
    expect = _expected_statistics(grad, stats, ctx)
    ((t, et),) = expect.items()
    if t.shape != (k, 1):
        raise NoRule(f"the statistic {t} is not a column of {p}'s length")
    ones = sp.OneMatrix(1, k)
    total, used = _apply_known(_canonical(ones * t, ctx), known, ctx)
    # the total is not random (fixed by the design): held by a symbol while T is replaced by E[T]
    m = sp.Dummy("total", positive=True)
    on_simplex = {_canonical(ones * p, ctx): sp.S.One}  # 1^T p = 1 wherever the information is taken
    summed = _canonical(sp.Trace(ones * et), ctx).xreplace(on_simplex)
    use_rule("constraint")
    lam_value = _value(solve_stationary(summed - m, lam, timeout=None))
    et = substitute(et, {lam: lam_value}, symmetric=ctx.symmetric, invertible=ctx.invertible)
    held = {t: _on_simplex(et, on_simplex, ctx)}
    # the second differential, its expectation, its matrix in p's entries, restricted to the tangent
    second = _value(second_differential(ell, p, p, symmetric=ctx.symmetric, invertible=ctx.invertible))
    wa = direction(p, ctx)
    wb = direction(p, wa.ctx, suffix="'")
    h = scalar(-second.xreplace(held), wb.ctx)
    if depends(h, t):
        raise NoRule(f"E[{t}] does not remove {t} from the second differential")
    w = to_form(bilinear_matrix(h, differential_symbol(p), differential_symbol(p, "'"), wb.ctx), ctx)
    w = _tidy_diagonals(w, ctx)
    q, last = free_coordinates(p)
    sample = _tangent(w, p, q, last, ctx)
    per_count = sample.scale(1 / m)
    if any(depends(c, m) for c in per_count.terms.values()):
        raise NoRule("the information is not proportional to the total count")

    def back(e: sp.Basic) -> sp.Basic:
        return e.xreplace({m: total})

    return SimplexInformation(
        parameter=p,
        free=q,
        last=last,
        second_differential=second,
        expectations={k: back(v) for k, v in held.items()},
        total=total,
        form=back(h),
        coordinate_matrix=back(w.expr()),
        matrix=back(sample.expr()),
        per_count=per_count.expr(),
        identities=used,
    )


def simplex_information(
    ell: sp.Expr,
    p: sp.MatrixSymbol,
    statistics: Sequence[sp.Basic],
    *,
    known: Mapping[sp.Basic, sp.Basic] | None = None,
    multiplier: sp.Symbol | None = None,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[SimplexInformation]:
    """The Fisher information of the simplex ``p`` on its free coordinates (module docstring).

    Parameters
    ----------
    ell : Expr
        The log-likelihood of the sample, in the statistics.
    p : MatrixSymbol
        The simplex parameter, ``(K, 1)``.
    statistics : sequence of MatrixSymbol
        The statistics; exactly one of them may appear in the score of ``p`` (``T1``).
    known : mapping, optional
        Identities of the statistics (``{OneMatrix(1, K) @ T1: N}`` for one-hot rows).
    multiplier : Symbol, optional
        The multiplier's symbol (default :func:`multiplier_of`).
    symmetric, invertible : iterables of MatrixSymbol
        As for :func:`~.matrix_calculus.gradient`.
    timeout : float or None
        Budget in seconds.

    Returns
    -------
    Outcome
        ``value``: a :class:`SimplexInformation`, or ``None`` and the reason.
    """
    ctx = context(symmetric, invertible)
    lam = multiplier if multiplier is not None else multiplier_of(p)
    return run_step(
        f"Fisher information of the simplex {p}",
        timeout,
        lambda: _information(ell, p, list(statistics), lam, dict(known or {}), ctx),
    )
