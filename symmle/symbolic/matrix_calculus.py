"""Matrix calculus by stated rules: differentials, gradients and linear stationarity equations.

SymPy 1.14 is silently wrong here (``log(Determinant(S)).diff(S)`` is 0, ``exp(...).diff(mu)`` is
0) and ``solve`` refuses ``MatrixSymbol`` equations, so symmle never calls ``.diff`` on a matrix
expression.  A scalar ``f`` (an ``sp.Expr`` holding ``Trace``, ``Determinant`` and scalar functions
of them, over ``MatrixSymbol``\\ s of symbolic shape such as ``(D, 1)`` and ``(D, D)``) is
differentiated by the rules below, in the normal form of :mod:`symmle.symbolic.matrix_forms`.

Rules of the differential (:data:`RULES` names them; each result records the ones it used)
    * ``d tr(M) = tr(dM)``; ``d det(S) = det(S) tr(S^-1 dS)``, hence ``d log|S| = tr(S^-1 dS)``;
    * ``d(S^-1) = -S^-1 dS S^-1``; ``d(X^T) = (dX)^T``; ``d(cA) = c dA`` for a constant ``c``;
    * the product rule over a product of atoms: ``d(A_1 ... A_k) = sum_i A_1 .. dA_i .. A_k``;
    * the chain rule through scalar functions (``exp``, ``log``, ``sqrt``, powers, ``loggamma``...)
      of scalar sub-expressions: ``d g(s_1, ..., s_m) = sum_j dg/ds_j ds_j``, where the ``s_j`` are
      the traces (1x1 products included) and determinants in ``f`` and ``dg/ds_j`` is SymPy's
      ordinary derivative in a stand-in scalar symbol;
    * entrywise functions of a column: ``d f.(v) = f'.(v) o dv = diag(f'.(v)) dv``;
      ``d diag(v) = diag(dv)``, ``d dg(M) = dg(dM)``; ``OneMatrix``, ``Identity`` and the other
      symbols are constants.

Reading off the gradient
    The differential is a sum of traces, each linear in ``dX``.  Each trace is brought to the form
    ``tr(M dX)`` or ``tr(M dX^T)`` by ``tr(AB) = tr(BA)`` (and, for a ``dX`` inside ``diag`` or
    ``dg``, by ``tr(diag(v) M) = v^T dg(M)`` and ``w^T dg(M) = tr(diag(w) M)``); then
    ``df = tr(G^T dX)`` defines the gradient ``G`` (same shape as ``X``):
    ``tr(M dX)`` contributes ``M^T``, ``tr(M dX^T)`` contributes ``M``.  For a scalar ``X`` (an
    ``sp.Symbol``) the gradient is the ordinary derivative, chain rule included.

Symmetric X (convention)
    For ``X`` declared symmetric (an spd covariance), ``dX`` ranges over symmetric matrices, and
    only the symmetric part of ``G`` is determined.  :func:`gradient` returns that part,
    ``sym(G) = (G + G^T)/2``, the unique symmetric ``G`` with ``df = tr(G dX)`` for every symmetric
    ``dX``.  **Stationarity of f over symmetric X is sym(G) = 0.**  In the coordinates of the
    distinct entries (``vech X``), ``df/dX_jj = G_jj`` and ``df/dX_jk = 2 G_jk`` for ``j != k``.

Solving ``G = 0`` (:func:`solve_stationary`)
    * linear in ``X``: every term holds ``X`` once, at the top level of its product, and all of
      them as ``L X R`` with the same invertible factors (declared invertible symbols, ``Y^-1``
      atoms) left and right: the equation is multiplied by ``L^-1`` and ``R^-1`` until it reads
      ``a X + B = 0`` with a scalar ``a`` shown non-zero, so ``X = -B/a``;
    * ``X^-1`` in ``G`` (``X`` invertible): ``G`` is multiplied by ``X`` on the left and right (or
      one side) when that removes every ``X^-1`` and leaves a linear equation, which has the same
      solutions: ``-N/2 S^-1 + 1/2 S^-1 A S^-1 = 0`` gives ``S = A/N``;
    * a scalar ``X``: SymPy's ``solve`` on the scalar equation (traces and determinants free of
      ``X`` held as symbols); exactly one admissible root is required.
    Anything else is refused with the reason (a Sylvester equation, ``X`` and ``X^T`` together,
    ``X`` inside a nonlinear function...).  :func:`solve_stationary_system` solves parameters in
    sequence (``mu`` first, then ``Sigma`` with ``mu`` substituted).

Every public function takes a ``timeout`` (seconds) and runs under
:func:`symmle.base.budget.attempt`; it returns an :class:`Outcome`: the value, or ``None`` and the
reason (a refused rule, a time-out).  Nothing here is verified numerically: that is
:mod:`symmle.symbolic.matrix_verify`, whose verdict decides whether a result is reported.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import sympy as sp
from sympy.matrices.common import NonSquareMatrixError, ShapeError
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.base.budget import DEFAULT_TIMEOUT, attempt
from symmle.symbolic.matrix_forms import (
    Context,
    Form,
    NoRule,
    diag,
    diagonal,
    entrywise,
    inverse,
    inverse_atom,
    is_invertible,
    product,
    scalar,
    to_form,
    trace_atom,
    trace_terms,
    transpose,
    transpose_atom,
)

__all__ = [
    "RULES",
    "Outcome",
    "context",
    "differential_symbol",
    "differential",
    "gradient",
    "solve_stationary",
    "solve_stationary_system",
    "substitute",
    "symmetric_part",
]

#: The rules, by the name an :class:`Outcome` records in ``rules``.
RULES: Mapping[str, str] = {
    "trace": r"d\,\mathrm{tr}(M) = \mathrm{tr}(dM)",
    "determinant": r"d\,|S| = |S|\,\mathrm{tr}(S^{-1} dS)",
    "log_det": r"d \log|S| = \mathrm{tr}(S^{-1} dS)",
    "inverse": r"d(S^{-1}) = -S^{-1}\,dS\,S^{-1}",
    "transpose": r"d(X^\top) = (dX)^\top",
    "product": r"d(AB) = dA\,B + A\,dB",
    "chain": r"d\,g(s) = g'(s)\,ds \text{ for scalar } s",
    "entrywise": r"d f(v) = f'(v) \circ dv = \mathrm{diag}(f'(v))\,dv",
    "diag": r"d\,\mathrm{diag}(v) = \mathrm{diag}(dv)",
    "cyclic": r"\mathrm{tr}(AB) = \mathrm{tr}(BA),\ \mathrm{tr}(A^\top) = \mathrm{tr}(A)",
    "diag_trace": r"\mathrm{tr}(\mathrm{diag}(v) M) = v^\top \mathrm{dg}(M)",
    "gradient": r"df = \mathrm{tr}(G^\top dX) \Rightarrow \partial f/\partial X = G",
    "symmetric": r"X = X^\top:\ \partial f/\partial X = (G + G^\top)/2",
    "linear": r"aX + B = 0,\ a \ne 0 \Rightarrow X = -B/a",
    "invertible_factor": r"LXR = C,\ L, R \text{ invertible} \Rightarrow X = L^{-1} C R^{-1}",
    "inverse_sandwich": r"X\,G(X^{-1})\,X = 0 \Leftrightarrow G = 0 \text{ for invertible } X",
    "scalar_solve": r"\text{a scalar equation solved by SymPy}",
}

T = TypeVar("T")

_rules: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("matrix_rules", default=None)


def _use(rule: str) -> None:
    seen = _rules.get()
    if seen is not None and rule not in seen:
        seen.append(rule)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of a step: ``value``, or ``None`` and the ``reason`` it was refused.

    Attributes
    ----------
    value : object or None
        The result (an ``sp.Expr``, a matrix expression, a dict...) or ``None``.
    reason : str
        Why ``value`` is ``None`` (one line); empty when it is not.
    rules : tuple of str
        Names (keys of :data:`RULES`) of the rules used, in order of first use.
    seconds : float
        Wall time of the step.
    """

    value: T | None
    reason: str = ""
    rules: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.value is not None


def _run(step: str, timeout: float | None, fn: Callable[[], T]) -> Outcome[T]:
    """``fn()`` under a budget, its :class:`NoRule` and time-out turned into a refusal."""
    seen: list[str] = []
    token = _rules.set(seen)
    start = time.perf_counter()
    try:
        try:
            value, timed_out = attempt(step, timeout, fn)
        except (NoRule, ShapeError, NonSquareMatrixError) as exc:
            return Outcome(None, f"{step}: {exc}", tuple(seen), time.perf_counter() - start)
    finally:
        _rules.reset(token)
    elapsed = time.perf_counter() - start
    if timed_out:
        return Outcome(None, f"{step}: time budget of {timeout:g} s exceeded", tuple(seen), elapsed)
    return Outcome(value, "", tuple(seen), elapsed)


def context(symmetric: Iterable = (), invertible: Iterable = ()) -> Context:
    """The assumptions of the rules: symmetric and invertible matrix symbols."""
    return Context.of(symmetric, invertible)


def differential_symbol(x: sp.Basic, suffix: str = "") -> sp.Basic:
    """The differential ``dX`` of ``x`` (a name the safe parser cannot produce: ``d(X)``)."""
    name = f"d({x.name}){suffix}"
    if isinstance(x, sp.MatrixSymbol):
        return sp.MatrixSymbol(name, *x.shape)
    return sp.Symbol(name, real=True)


@dataclass(frozen=True)
class _Wrt:
    """Differentiate with respect to ``x``: in direction ``dx`` (a matrix), or plainly (a scalar)."""

    x: sp.Basic
    dx: sp.Basic | None = None
    ctx: Context = field(default_factory=Context)

    @property
    def scalar(self) -> bool:
        return self.dx is None


def _depends(e: sp.Basic, x: sp.Basic) -> bool:
    return x in sp.sympify(e).free_symbols


def _matrix_atoms(e: sp.Basic) -> list[sp.Basic]:
    """The outermost ``Trace`` and ``Determinant`` nodes of a scalar expression, in a fixed order."""
    found: list[sp.Basic] = []

    def walk(node: sp.Basic) -> None:
        if isinstance(node, (sp.Trace, sp.Determinant)):
            if node not in found:
                found.append(node)
            return
        for a in node.args:
            if isinstance(a, sp.Basic):
                walk(a)

    walk(sp.sympify(e))
    return found


# ---------------------------------------------------------------- differentials of forms


def _d_atom(a: sp.Basic, w: _Wrt) -> Form:
    ctx = w.ctx
    if not _depends(a, w.x):
        return Form(a.shape)
    if not w.scalar and a == w.x:
        return Form.atom(w.dx)
    if isinstance(a, sp.Transpose) and not w.scalar and a.arg == w.x:
        _use("transpose")
        return Form.atom(transpose_atom(w.dx, ctx))
    if isinstance(a, sp.Inverse):
        _use("inverse")
        inv = Form.atom(a)
        return -inv.mul(_d_form(to_form(a.arg, ctx), w), ctx).mul(inv, ctx)
    if isinstance(a, DiagMatrix):
        _use("diag")
        return diag(_d_form(to_form(a.arg, ctx), w), ctx)
    if isinstance(a, DiagonalOf):
        _use("diag")
        return diagonal(_d_form(to_form(a.arg, ctx), w), ctx)
    if isinstance(a, sp.Transpose):
        return transpose(_d_atom(a.arg, w), ctx)
    if isinstance(a, ElementwiseApplyFunction):
        if not a.shape[1] == 1:
            raise NoRule("no differentiation rule for an entrywise function of a matrix")
        _use("entrywise")
        var, body = a.function.variables[0], a.function.expr
        slope = sp.diff(body, var)
        dv = _d_form(to_form(a.expr, ctx), w)
        if var not in slope.free_symbols:
            return dv.scale(slope)
        return diag(entrywise(sp.Lambda(var, slope), a.expr, ctx), ctx).mul(dv, ctx)
    raise NoRule(f"no differentiation rule for {type(a).__name__}")


def _d_form(f: Form, w: _Wrt) -> Form:
    """The differential (or, for a scalar ``x``, the derivative) of a form: the product rule."""
    ctx = w.ctx
    out = Form(f.shape)
    rows, cols = f.shape
    for p, c in f.terms.items():
        if _depends(c, w.x):
            if not w.scalar:
                raise NoRule(f"a scalar factor depending on {w.x} inside a matrix function: {c}")
            out = out + product(p, ctx, _derivative(c, w), shape=f.shape)
        for i, a in enumerate(p):
            da = _d_atom(a, w)
            if da.is_zero:
                continue
            if len(p) > 1:
                _use("product")
            left = product(p[:i], ctx, c, shape=(rows, rows))
            right = product(p[i + 1 :], ctx, shape=(cols, cols))
            out = out + left.mul(da, ctx).mul(right, ctx)
    return out


def _partials(e: sp.Expr, x: sp.Basic) -> tuple[sp.Expr, dict, list[tuple[sp.Basic, sp.Expr]]]:
    """``e`` with its traces and determinants in ``x`` held by stand-in symbols (``g``), the map back
    from the stand-ins (``back``), and ``(atom, de/d(atom))`` for each atom."""
    atoms = [a for a in _matrix_atoms(e) if _depends(a, x)]
    zs = [sp.Dummy(f"s{i}") for i in range(len(atoms))]
    g = sp.sympify(e).xreplace(dict(zip(atoms, zs)))
    back = dict(zip(zs, atoms))
    parts = []
    for a, z in zip(atoms, zs):
        p = sp.diff(g, z).xreplace(back)
        if p != 0:
            parts.append((a, p))
    if parts and (len(parts) > 1 or g != zs[0]):
        _use("chain")
    return g, back, parts


def _atom_differential(atom: sp.Basic, w: _Wrt) -> Form:
    """``d tr(M)`` or ``d det(M)`` as a square form whose trace is the differential."""
    ctx = w.ctx
    f = to_form(atom.arg, ctx)
    df = _d_form(f, w)
    if isinstance(atom, sp.Trace):
        _use("trace")
        return df
    _use("determinant")
    return inverse(f, ctx).mul(df, ctx)


def _derivative(e: sp.Expr, w: _Wrt) -> sp.Expr:
    """``de/dx`` for a scalar ``x`` (``w.scalar``): the chain rule through the traces and determinants."""
    ctx = w.ctx
    g, back, parts = _partials(scalar(e, ctx), w.x)
    out = sp.diff(g, w.x).xreplace(back)
    for atom, p in parts:
        terms = trace_terms(_atom_differential(atom, w), ctx)
        factor = atom if isinstance(atom, sp.Determinant) else 1
        out += p * factor * sp.Add(*[c * (trace_atom(q) if q else 1) for q, c in terms.items()])
    return out


def _linear_terms(e: sp.Expr, w: _Wrt) -> dict[tuple, sp.Expr]:
    """The differential of a scalar ``e`` in direction ``w.dx``: ``{product: coefficient}``, traces."""
    ctx = w.ctx
    g, _, parts = _partials(scalar(e, ctx), w.x)
    if _depends(g, w.x):
        raise NoRule(f"{w.x} appears outside a trace or determinant")
    out: dict[tuple, sp.Expr] = {}
    for atom, p in parts:
        factor = p
        if isinstance(atom, sp.Determinant):
            factor = p * atom
            if not factor.has(sp.Determinant):
                _use("log_det")
        for q, c in trace_terms(_atom_differential(atom, w), ctx).items():
            v = out.get(q, sp.S.Zero) + factor * c
            if v == 0:
                out.pop(q, None)
            else:
                out[q] = v
    return out


# ---------------------------------------------------------------- reading off gradients


def _top(a: sp.Basic, target: sp.Basic) -> bool:
    return a == target or (isinstance(a, sp.Transpose) and a.arg == target)


def isolate(p: tuple, c: sp.Expr, target: sp.Basic, ctx: Context) -> list[tuple[tuple, sp.Expr]]:
    """``c tr(P)``, linear in ``target``, as traces ``(product, coefficient)`` with ``target`` (or its
    transpose) a factor of the product itself, not inside ``diag`` or ``dg``.

    Uses ``tr(diag(L) R) = tr(L^T dg(R))``, ``tr(dg(M) r) = tr(diag(r^T) M)`` (``r`` a row) and
    ``tr(dg(M)^T r) = tr(diag(r) M)`` (``r`` a column); each step moves ``target`` one level up.
    """
    holders = [i for i, a in enumerate(p) if target in a.free_symbols]
    if len(holders) != 1:
        raise NoRule(f"a trace not linear in {target}")
    i = holders[0]
    a = p[i]
    if _top(a, target):
        return [(p, c)]
    rest = p[i + 1 :] + p[:i]
    if isinstance(a, DiagMatrix):
        n = a.shape[0]
        new = transpose(to_form(a.arg, ctx), ctx).mul(diagonal(product(rest, ctx, shape=(n, n)), ctx), ctx)
    elif isinstance(a, DiagonalOf):
        r = product(rest, ctx, shape=(a.shape[1], a.shape[0]))
        new = diag(transpose(r, ctx), ctx).mul(to_form(a.arg, ctx), ctx)
    elif isinstance(a, sp.Transpose) and isinstance(a.arg, DiagonalOf):
        r = product(rest, ctx, shape=(a.shape[1], a.shape[0]))
        new = diag(r, ctx).mul(to_form(a.arg.arg, ctx), ctx)
    else:
        raise NoRule(f"cannot bring {target} out of {type(a).__name__}")
    _use("diag_trace")
    out: list[tuple[tuple, sp.Expr]] = []
    for q, d in new.terms.items():
        out.extend(isolate(q, c * d, target, ctx))
    return out


def _gradient_form(terms: Mapping[tuple, sp.Expr], x: sp.Basic, dx: sp.Basic, ctx: Context) -> Form:
    """``G`` with ``sum c tr(P) = tr(G^T dX)``."""
    g = Form(x.shape)
    for p, c in terms.items():
        for q, d in isolate(p, c, dx, ctx):
            i = next(k for k, a in enumerate(q) if _top(a, dx))
            m = q[i + 1 :] + q[:i]
            if q[i] == dx:  # tr(M dX): G = M^T
                g = g + transpose(product(m, ctx, d, shape=(x.shape[1], x.shape[0])), ctx)
            else:  # tr(M dX^T) = tr(M^T dX): G = M
                g = g + product(m, ctx, d, shape=x.shape)
    if terms:
        _use("cyclic")
        _use("gradient")
    return g


def _wrt(x: sp.Basic, ctx: Context, suffix: str = "") -> _Wrt:
    if isinstance(x, sp.MatrixSymbol):
        dx = differential_symbol(x, suffix)
        return _Wrt(x, dx, ctx.with_differential(dx, x in ctx.symmetric))
    if isinstance(x, sp.Symbol):
        return _Wrt(x, None, ctx)
    raise NoRule(f"cannot differentiate with respect to {x} (a symbol or matrix symbol is needed)")


def linear_terms(f: sp.Expr, x: sp.Basic, ctx: Context, dx: sp.Basic) -> dict[tuple, sp.Expr]:
    """The differential of ``f`` in direction ``dx``, as ``{product: coefficient}`` of traces.

    A building block (for :mod:`symmle.symbolic.matrix_information`); raises :class:`NoRule`.
    ``ctx`` must already mark ``dx`` as a differential (:meth:`Context.with_differential`).
    """
    return _linear_terms(f, _Wrt(x, dx, ctx))


def derivative(f: sp.Expr, x: sp.Symbol, ctx: Context) -> sp.Expr:
    """``df/dx`` for a scalar symbol ``x``, by the same rules (a building block; raises :class:`NoRule`)."""
    return _derivative(f, _Wrt(x, None, ctx))


def _check_scalar(f: sp.Basic) -> sp.Expr:
    f = sp.sympify(f)
    if isinstance(f, MatrixExpr):
        if f.shape == (1, 1):
            return sp.Trace(f)
        raise NoRule(f"a scalar function is needed, not a matrix of shape {f.shape}")
    return f


def differential(
    f: sp.Expr,
    x: sp.Basic,
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[sp.Expr]:
    """The differential ``df`` in direction ``d(X)``: a sum of traces, each linear in ``d(X)``.

    Returns
    -------
    Outcome
        ``value`` is a scalar ``sp.Expr``: ``sum_k c_k Trace(P_k)`` with ``d(X)`` (see
        :func:`differential_symbol`) in each ``P_k``; for a scalar ``x``, ``f'(x) * d(x)``.
    """
    ctx = context(symmetric, invertible)

    def run() -> sp.Expr:
        w = _wrt(x, ctx)
        e = _check_scalar(f)
        if w.scalar:
            return _derivative(e, w) * differential_symbol(x)
        return sp.Add(*[c * trace_atom(p) for p, c in _linear_terms(e, w).items()])

    return _run(f"differential with respect to {x}", timeout, run)


def symmetric_part(g: sp.Basic, *, symmetric: Iterable = (), invertible: Iterable = ()) -> sp.Basic:
    """``(G + G^T)/2`` in normal form."""
    ctx = context(symmetric, invertible)
    f = to_form(g, ctx)
    return (f + transpose(f, ctx)).scale(sp.Rational(1, 2)).expr()


def gradient(
    f: sp.Expr,
    x: sp.Basic,
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[sp.Basic]:
    """The gradient ``G`` of a scalar ``f`` with respect to ``x``: ``df = tr(G^T dX)``.

    Parameters
    ----------
    f : Expr
        A scalar expression (a 1x1 matrix expression is read as its trace).
    x : MatrixSymbol or Symbol
        The variable.  For a scalar symbol the gradient is the ordinary derivative.
    symmetric : iterable of MatrixSymbol
        Symbols declared symmetric (``S^T = S``).  If ``x`` is among them, the gradient returned
        is the symmetric part ``(G + G^T)/2`` (see the module docstring: stationarity over
        symmetric ``X`` is ``sym(G) = 0``).
    invertible : iterable of MatrixSymbol
        Symbols declared invertible (used when solving, kept here for one signature).
    timeout : float or None
        Budget in seconds.

    Returns
    -------
    Outcome
        ``value``: a matrix expression of ``x``'s shape (a scalar ``sp.Expr`` for a scalar ``x``),
        or ``None`` and the reason.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> S = sp.MatrixSymbol("S", D, D)
    >>> gradient(sp.log(sp.Determinant(S)), S, symmetric=[S]).value
    S**(-1)
    """
    ctx = context(symmetric, invertible)

    def run() -> sp.Basic:
        w = _wrt(x, ctx)
        e = _check_scalar(f)
        if w.scalar:
            return scalar(_derivative(e, w), ctx)
        g = _gradient_form(_linear_terms(e, w), x, w.dx, w.ctx)
        if x in ctx.symmetric:
            _use("symmetric")
            g = (g + transpose(g, ctx)).scale(sp.Rational(1, 2))
        return g.expr()

    return _run(f"gradient with respect to {x}", timeout, run)


def substitute(
    e: sp.Basic, values: Mapping[sp.Basic, sp.Basic], *, symmetric: Iterable = (), invertible: Iterable = ()
) -> sp.Basic:
    """``e`` with symbols replaced by ``values``, then in normal form (raises :class:`NoRule`)."""
    ctx = context(symmetric, invertible)
    e = sp.sympify(e).xreplace(dict(values)) if values else sp.sympify(e)
    if isinstance(e, MatrixExpr):
        return to_form(e, ctx).expr()
    return scalar(e, ctx)


# ---------------------------------------------------------------- solving G = 0


def _holds_inverse_of(f: Form, x: sp.Basic) -> bool:
    return any(
        isinstance(a, sp.Inverse) and x in a.free_symbols and (a.arg == x or _top(a.arg, x))
        for p in f.terms
        for a in p
    )


def _linear_split(f: Form, x: sp.Basic) -> tuple[list[tuple[tuple, tuple, sp.Expr]], Form]:
    """``f`` as ``sum c L X R`` (returned as ``(L, R, c)``) plus the terms free of ``X``."""
    xs: list[tuple[tuple, tuple, sp.Expr]] = []
    const = Form(f.shape)
    for p, c in f.terms.items():
        if _depends(c, x):
            raise NoRule(f"a coefficient depends on {x}: the equation is not linear")
        at = [i for i, a in enumerate(p) if x in a.free_symbols]
        if not at:
            const = const + Form(f.shape, {p: c})
            continue
        if len(at) > 1:
            raise NoRule(f"{x} appears more than once in a product: the equation is not linear")
        i = at[0]
        if p[i] != x:
            if _top(p[i], x):
                raise NoRule(f"{x} and its transpose both appear (not symmetric): no rule")
            raise NoRule(f"{x} appears inside {type(p[i]).__name__}: the equation is not linear")
        xs.append((p[:i], p[i + 1 :], c))
    return xs, const


def _nonzero(a: sp.Expr) -> bool:
    if a.is_zero is False:
        return True
    return sp.simplify(a).is_zero is False


def _solve_linear(f: Form, x: sp.Basic, ctx: Context) -> Form:
    """Solve ``f = 0`` for ``x`` (linear): strip common invertible factors, then ``aX + B = 0``."""
    for _ in range(64):
        xs, const = _linear_split(f, x)
        if not xs:
            raise NoRule(f"the equation does not involve {x}")
        if all(not left and not right for left, right, _ in xs):
            a = sp.Add(*[c for _, _, c in xs])
            if not _nonzero(a):
                raise NoRule(f"cannot show the coefficient {a} of {x} is non-zero")
            _use("linear")
            return const.scale(-1 / a)
        lefts = {left[0] if left else None for left, _, _ in xs}
        rights = {right[-1] if right else None for _, right, _ in xs}
        if len(lefts) == 1 and None not in lefts and is_invertible(next(iter(lefts)), ctx):
            _use("invertible_factor")
            f = inverse_atom(next(iter(lefts)), ctx).mul(f, ctx)
        elif len(rights) == 1 and None not in rights and is_invertible(next(iter(rights)), ctx):
            _use("invertible_factor")
            f = f.mul(inverse_atom(next(iter(rights)), ctx), ctx)
        else:
            raise NoRule(
                f"{x} appears with different factors on its left or right"
                " (a Sylvester-type equation): no rule"
            )
    raise NoRule("too many invertible factors to strip")


def _solve_matrix(g: sp.Basic, x: sp.MatrixSymbol, ctx: Context) -> sp.Basic:
    f = to_form(g, ctx)
    if f.shape != x.shape:
        raise NoRule(f"the equation has shape {f.shape}, {x} has shape {x.shape}")
    if _holds_inverse_of(f, x):
        if x not in ctx.invertible:
            raise NoRule(f"{x}^-1 appears but {x} is not declared invertible")
        xf = Form.atom(x)
        tried = []
        for name, h in (
            ("both sides", lambda: xf.mul(f, ctx).mul(xf, ctx)),
            ("the left", lambda: xf.mul(f, ctx)),
            ("the right", lambda: f.mul(xf, ctx)),
        ):
            try:
                cand = h()
            except NoRule:
                continue
            if _holds_inverse_of(cand, x):
                tried.append(name)
                continue
            try:
                sol = _solve_linear(cand, x, ctx)
            except NoRule as exc:
                tried.append(f"{name} ({exc})")
                continue
            _use("inverse_sandwich")
            return sol.expr()
        raise NoRule(f"multiplying by {x} on {', '.join(tried) or 'any side'} leaves no linear equation")
    return _solve_linear(f, x, ctx).expr()


def _solve_scalar(g: sp.Expr, x: sp.Symbol, ctx: Context) -> sp.Expr:
    e = scalar(g, ctx)
    atoms = _matrix_atoms(e)
    if any(_depends(a, x) for a in atoms):
        raise NoRule(f"{x} appears inside a trace or determinant of the scalar equation")
    zs = [sp.Dummy(f"s{i}") for i in range(len(atoms))]
    h = e.xreplace(dict(zip(atoms, zs)))
    back = dict(zip(zs, atoms))
    roots = sp.solve(h, x, dict=False)
    roots = [r for r in roots if not (x.is_positive and r.is_positive is False)]
    roots = [r for r in roots if not (x.is_real and r.is_real is False)]
    if len(roots) != 1:
        raise NoRule(f"the scalar equation for {x} has {len(roots)} admissible roots, not one")
    _use("scalar_solve")
    return scalar(roots[0].xreplace(back), ctx)


def solve_stationary(
    g: sp.Basic,
    x: sp.Basic,
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[sp.Basic]:
    """Solve ``G = 0`` for ``x`` by the rules of the module docstring.

    Parameters
    ----------
    g : matrix expression or Expr
        The gradient (for a symmetric ``x``, its symmetric part, as :func:`gradient` returns).
    x : MatrixSymbol or Symbol
        The unknown.  Other symbols are constants.
    symmetric, invertible : iterables of MatrixSymbol
        Declared symmetric / invertible symbols (``x`` must be invertible if ``x^-1`` appears).

    Returns
    -------
    Outcome
        ``value``: the solution (a matrix expression of ``x``'s shape, or a scalar ``sp.Expr``),
        or ``None`` and the reason.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> N = sp.Symbol("N", positive=True)
    >>> S, A = sp.MatrixSymbol("S", D, D), sp.MatrixSymbol("A", D, D)
    >>> G = -N / 2 * S.I + S.I * A * S.I / 2
    >>> solve_stationary(G, S, symmetric=[S, A], invertible=[S]).value
    A/N
    """
    ctx = context(symmetric, invertible)

    def run() -> sp.Basic:
        if isinstance(x, sp.MatrixSymbol):
            return _solve_matrix(sp.sympify(g), x, ctx)
        if isinstance(x, sp.Symbol):
            return _solve_scalar(_check_scalar(g), x, ctx)
        raise NoRule(f"cannot solve for {x} (a symbol or matrix symbol is needed)")

    return _run(f"stationary point in {x}", timeout, run)


def solve_stationary_system(
    gradients: Mapping[sp.Basic, sp.Basic],
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[dict]:
    """Solve ``G_p = 0`` for every parameter ``p``, in sequence.

    A parameter is solved when its own equation (the parameters solved so far substituted) gives
    a solution free of the parameters not yet solved; the loop repeats until all are solved or none
    can be (then the reason of each refusal is returned).  The budget covers the whole sequence.

    Returns
    -------
    Outcome
        ``value``: ``{parameter: solution}`` in the order solved, or ``None`` and the reason.
    """
    sym, inv = tuple(symmetric), tuple(invertible)

    def run() -> dict:
        solved: dict = {}
        pending = list(gradients)
        while pending:
            reasons = []
            for p in list(pending):
                g = substitute(gradients[p], solved, symmetric=sym, invertible=inv)
                r = solve_stationary(g, p, symmetric=sym, invertible=inv, timeout=None)
                for rule in r.rules:
                    _use(rule)
                if not r.ok:
                    reasons.append(r.reason)
                    continue
                others = set(pending) - {p}
                if sp.sympify(r.value).free_symbols & others:
                    reasons.append(f"the solution for {p} involves unsolved parameters")
                    continue
                solved = {
                    k: substitute(v, {p: r.value}, symmetric=sym, invertible=inv) for k, v in solved.items()
                }
                solved[p] = r.value
                pending.remove(p)
                break
            else:
                raise NoRule("; ".join(reasons))
        return solved

    return _run("stationary point", timeout, run)
