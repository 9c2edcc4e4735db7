"""Matrix calculus by stated rules: differentials and gradients of scalar functions of matrices.

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

Solving ``G = 0`` is :mod:`symmle.symbolic.matrix_solve`; the Fisher information (second
differentials and their expectations) is :mod:`symmle.symbolic.matrix_information`.

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
    "Direction",
    "run_step",
    "use_rule",
    "context",
    "MatrixDifferential",
    "ScalarDifferential",
    "differential_symbol",
    "direction",
    "depends",
    "matrix_atoms",
    "as_scalar",
    "linear_terms",
    "derivative",
    "at_top",
    "isolate",
    "differential",
    "gradient",
    "gradient_form",
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
    "entrywise_solve": r"(\mathbf{a} \circ \mathbf{b})_k = a_k b_k,\ f(\mathbf{v})_k = f(v_k):\ "
    r"\mathbf{G} = \mathbf{0} \Leftrightarrow G_k = 0\ \forall k",
    "score_identity": r"E[\partial \ell/\partial\theta] = 0 \text{ gives } E[T_j]",
    "vec_kron": r"\mathrm{tr}(A U B V) = \mathrm{vec}(V^\top)^\top (B^\top \otimes A)\,\mathrm{vec}(U)",
    "vec_outer": r"\mathrm{tr}(M u) = \mathrm{vec}(M^\top)^\top \mathrm{vec}(u)",
    "duplication": r"\mathrm{vec}(S) = \mathbf{D}\,\mathrm{vech}(S) \text{ for symmetric } S",
    "lagrangian": r"\max_{\mathbf{1}^\top \mathbf{p} = 1} \ell:\ "
    r"L(\mathbf{p}, \lambda) = \ell(\mathbf{p}) + \lambda (1 - \mathbf{1}^\top \mathbf{p}),\ "
    r"\partial L/\partial \mathbf{p} = \mathbf{0},\ \partial L/\partial \lambda = 0",
    "constraint": r"\mathbf{1}^\top \mathbf{p} = 1",
    "known_identity": r"\text{an identity of the statistics on the support, e.g. }"
    r"\ \mathbf{1}^\top \mathbf{T}_1 = N",
    "tangent": r"d\mathbf{p} = \begin{pmatrix} I \\ -\mathbf{1}^\top \end{pmatrix} d\mathbf{q}:\ "
    r"P^\top \mathrm{diag}(\mathbf{w}) P = \mathrm{diag}(\mathbf{w}_{1:K-1})"
    r" + w_K \mathbf{1}\mathbf{1}^\top,\ P^\top \mathbf{1} = \mathbf{0}",
}

T = TypeVar("T")

_rules: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("matrix_rules", default=None)


def use_rule(rule: str) -> None:
    """Record that ``rule`` (a key of :data:`RULES`) was used by the step now running."""
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


def run_step(step: str, timeout: float | None, fn: Callable[[], T]) -> Outcome[T]:
    """``fn()`` under a budget (:func:`~symmle.base.budget.attempt`), its :class:`NoRule` and its
    time-out turned into a refusal; the rules it used (:func:`use_rule`) are recorded."""
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


def _split_name(name: str) -> tuple[str, str]:
    """``"d(X)'"`` -> ``("X", "'")``."""
    body, _, suffix = name.rpartition(")")
    return body[2:], suffix


def _print_differential(d: sp.Basic, printer: object, base: sp.Basic) -> str:
    suffix = _split_name(d.name)[1]
    prime = r"^{\prime}" if suffix else ""
    return r"\mathrm{d}" + printer._print(base) + prime  # type: ignore[attr-defined]


class MatrixDifferential(sp.MatrixSymbol):
    """``d(X)``, the differential of a matrix symbol ``X``: LaTeX ``\\mathrm{d}`` then ``X`` as the
    printer prints ``X`` (bold in a lecture), a prime for a second direction."""

    @property
    def base(self) -> sp.MatrixSymbol:
        return sp.MatrixSymbol(_split_name(self.name)[0], *self.shape)

    def _latex(self, printer: object, *args: object) -> str:
        return _print_differential(self, printer, self.base)


class ScalarDifferential(sp.Symbol):
    """``d(x)``, the differential of a scalar symbol, printed as :class:`MatrixDifferential`."""

    @property
    def base(self) -> sp.Symbol:
        return sp.Symbol(_split_name(self.name)[0])

    def _latex(self, printer: object, *args: object) -> str:
        return _print_differential(self, printer, self.base)


def differential_symbol(x: sp.Basic, suffix: str = "") -> sp.Basic:
    """The differential ``d(X)`` of ``x`` (``suffix`` ``"'"`` for a second direction); its name is one
    the safe parser cannot produce.

    Returns
    -------
    MatrixDifferential or ScalarDifferential
    """
    name = f"d({x.name}){suffix}"
    if isinstance(x, sp.MatrixSymbol):
        return MatrixDifferential(name, *x.shape)
    return ScalarDifferential(name, real=True)


@dataclass(frozen=True)
class Direction:
    """Differentiate with respect to ``x``: in direction ``dx`` (a matrix), or plainly (a scalar).

    Built by :func:`direction`; ``ctx`` marks ``dx`` as a differential (symmetric if ``x`` is).
    """

    x: sp.Basic
    dx: sp.Basic | None = None
    ctx: Context = field(default_factory=Context)

    @property
    def scalar(self) -> bool:
        return self.dx is None


def depends(e: sp.Basic, x: sp.Basic) -> bool:
    """Whether ``x`` (a symbol or matrix symbol) occurs in ``e``."""
    return x in sp.sympify(e).free_symbols


def matrix_atoms(e: sp.Basic) -> list[sp.Basic]:
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


def _d_atom(a: sp.Basic, w: Direction) -> Form:
    ctx = w.ctx
    if not depends(a, w.x):
        return Form(a.shape)
    if not w.scalar and a == w.x:
        return Form.atom(w.dx)
    if isinstance(a, sp.Transpose) and not w.scalar and a.arg == w.x:
        use_rule("transpose")
        return Form.atom(transpose_atom(w.dx, ctx))
    if isinstance(a, sp.Inverse):
        use_rule("inverse")
        inv = Form.atom(a)
        return -inv.mul(_d_form(to_form(a.arg, ctx), w), ctx).mul(inv, ctx)
    if isinstance(a, DiagMatrix):
        use_rule("diag")
        return diag(_d_form(to_form(a.args[0], ctx), w), ctx)
    if isinstance(a, DiagonalOf):
        use_rule("diag")
        return diagonal(_d_form(to_form(a.arg, ctx), w), ctx)
    if isinstance(a, sp.Transpose):
        return transpose(_d_atom(a.arg, w), ctx)
    if isinstance(a, ElementwiseApplyFunction):
        if not a.shape[1] == 1:
            raise NoRule("no differentiation rule for an entrywise function of a matrix")
        var, body = a.function.variables[0], a.function.expr
        if depends(body, w.x):
            raise NoRule(f"an entrywise function whose definition involves {w.x}: no rule")
        use_rule("entrywise")
        slope = sp.diff(body, var)
        dv = _d_form(to_form(a.expr, ctx), w)
        if var not in slope.free_symbols:
            return dv.scale(slope)
        return diag(entrywise(sp.Lambda(var, slope), a.expr, ctx), ctx).mul(dv, ctx)
    raise NoRule(f"no differentiation rule for {type(a).__name__}")


def _d_form(f: Form, w: Direction) -> Form:
    """The differential (or, for a scalar ``x``, the derivative) of a form: the product rule."""
    ctx = w.ctx
    out = Form(f.shape)
    rows, cols = f.shape
    for p, c in f.terms.items():
        if depends(c, w.x):
            if not w.scalar:
                raise NoRule(f"a scalar factor depending on {w.x} inside a matrix function: {c}")
            out = out + product(p, ctx, derivative(c, w), shape=f.shape)
        for i, a in enumerate(p):
            da = _d_atom(a, w)
            if da.is_zero:
                continue
            if len(p) > 1:
                use_rule("product")
            left = product(p[:i], ctx, c, shape=(rows, rows))
            right = product(p[i + 1 :], ctx, shape=(cols, cols))
            out = out + left.mul(da, ctx).mul(right, ctx)
    return out


def _partials(e: sp.Expr, x: sp.Basic) -> tuple[sp.Expr, dict, list[tuple[sp.Basic, sp.Expr]]]:
    """``e`` with its traces and determinants in ``x`` held by stand-in symbols (``g``), the map back
    from the stand-ins (``back``), and ``(atom, de/d(atom))`` for each atom."""
    atoms = [a for a in matrix_atoms(e) if depends(a, x)]
    zs = [sp.Dummy(f"s{i}") for i in range(len(atoms))]
    g = sp.sympify(e).xreplace(dict(zip(atoms, zs)))
    back = dict(zip(zs, atoms))
    parts = []
    for a, z in zip(atoms, zs):
        p = sp.diff(g, z).xreplace(back)
        if p != 0:
            parts.append((a, p))
    if parts and (len(parts) > 1 or g != zs[0]):
        use_rule("chain")
    return g, back, parts


def _atom_differential(atom: sp.Basic, w: Direction) -> Form:
    """``d tr(M)`` or ``d det(M)`` as a square form whose trace is the differential."""
    ctx = w.ctx
    f = to_form(atom.arg, ctx)
    df = _d_form(f, w)
    if isinstance(atom, sp.Trace):
        use_rule("trace")
        return df
    use_rule("determinant")
    return inverse(f, ctx).mul(df, ctx)


def derivative(e: sp.Expr, w: Direction) -> sp.Expr:
    """``de/dx`` for a scalar ``x`` (``w.scalar``): the chain rule through the traces and determinants.

    A building block: raises :class:`NoRule` (the public functions return an :class:`Outcome`).
    """
    ctx = w.ctx
    g, back, parts = _partials(scalar(e, ctx), w.x)
    out = sp.diff(g, w.x).xreplace(back)
    for atom, p in parts:
        terms = trace_terms(_atom_differential(atom, w), ctx)
        factor = atom if isinstance(atom, sp.Determinant) else 1
        out += p * factor * sp.Add(*[c * (trace_atom(q) if q else 1) for q, c in terms.items()])
    return out


def linear_terms(e: sp.Expr, w: Direction) -> dict[tuple, sp.Expr]:
    """The differential of a scalar ``e`` in direction ``w.dx``: ``{product: coefficient}``, the sum
    of ``coefficient * tr(product)``, each product holding ``w.dx`` once.

    A building block: raises :class:`NoRule` (the public functions return an :class:`Outcome`).
    """
    ctx = w.ctx
    g, _, parts = _partials(scalar(e, ctx), w.x)
    if depends(g, w.x):
        raise NoRule(f"{w.x} appears outside a trace or determinant")
    out: dict[tuple, sp.Expr] = {}
    for atom, p in parts:
        factor = p
        if isinstance(atom, sp.Determinant):
            factor = p * atom
            if not factor.has(sp.Determinant):
                use_rule("log_det")
        for q, c in trace_terms(_atom_differential(atom, w), ctx).items():
            v = out.get(q, sp.S.Zero) + factor * c
            if v == 0:
                out.pop(q, None)
            else:
                out[q] = v
    return out


# ---------------------------------------------------------------- reading off gradients


def at_top(a: sp.Basic, target: sp.Basic) -> bool:
    """Whether the atom ``a`` is ``target`` or its transpose."""
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
    if at_top(a, target):
        return [(p, c)]
    rest = p[i + 1 :] + p[:i]
    if isinstance(a, DiagMatrix):
        n = a.shape[0]
        new = transpose(to_form(a.args[0], ctx), ctx).mul(
            diagonal(product(rest, ctx, shape=(n, n)), ctx), ctx
        )
    elif isinstance(a, DiagonalOf):
        r = product(rest, ctx, shape=(a.shape[1], a.shape[0]))
        new = diag(transpose(r, ctx), ctx).mul(to_form(a.arg, ctx), ctx)
    elif isinstance(a, sp.Transpose) and isinstance(a.arg, DiagonalOf):
        r = product(rest, ctx, shape=(a.shape[1], a.shape[0]))
        new = diag(r, ctx).mul(to_form(a.arg.arg, ctx), ctx)
    else:
        raise NoRule(f"cannot bring {target} out of {type(a).__name__}")
    use_rule("diag_trace")
    out: list[tuple[tuple, sp.Expr]] = []
    for q, d in new.terms.items():
        out.extend(isolate(q, c * d, target, ctx))
    return out


def direction(x: sp.Basic, ctx: Context, suffix: str = "") -> Direction:
    """The :class:`Direction` of ``x`` (its differential named by :func:`differential_symbol`)."""
    if isinstance(x, sp.MatrixSymbol):
        dx = differential_symbol(x, suffix)
        return Direction(x, dx, ctx.with_differential(dx, x in ctx.symmetric))
    if isinstance(x, sp.Symbol):
        return Direction(x, None, ctx)
    raise NoRule(f"cannot differentiate with respect to {x} (a symbol or matrix symbol is needed)")


def as_scalar(f: sp.Basic) -> sp.Expr:
    """``f`` as a scalar: a 1x1 matrix expression becomes its trace; a larger one is refused."""
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
        w = direction(x, ctx)
        e = as_scalar(f)
        if w.scalar:
            return derivative(e, w) * differential_symbol(x)
        return sp.Add(*[c * trace_atom(p) for p, c in linear_terms(e, w).items()])

    return run_step(f"differential with respect to {x}", timeout, run)


def symmetric_part(g: sp.Basic, *, symmetric: Iterable = (), invertible: Iterable = ()) -> sp.Basic:
    """``(G + G^T)/2`` in normal form."""
    ctx = context(symmetric, invertible)
    f = to_form(g, ctx)
    return (f + transpose(f, ctx)).scale(sp.Rational(1, 2)).expr()


def _read_off(terms: Mapping[tuple, sp.Expr], x: sp.Basic, dx: sp.Basic, ctx: Context) -> Form:
    """``G`` with ``sum c tr(P) = tr(G^T dX)``."""
    g = Form(x.shape)
    for p, c in terms.items():
        for q, d in isolate(p, c, dx, ctx):
            i = next(k for k, a in enumerate(q) if at_top(a, dx))
            m = q[i + 1 :] + q[:i]
            if q[i] == dx:  # tr(M dX): G = M^T
                g = g + transpose(product(m, ctx, d, shape=(x.shape[1], x.shape[0])), ctx)
            else:  # tr(M dX^T) = tr(M^T dX): G = M
                g = g + product(m, ctx, d, shape=x.shape)
    if terms:
        use_rule("cyclic")
        use_rule("gradient")
    return g


def gradient_form(f: sp.Expr, x: sp.Basic, ctx: Context) -> Form | sp.Expr:
    """The gradient of :func:`gradient` as a :class:`Form` (a scalar ``sp.Expr`` for a scalar ``x``).

    A building block: raises :class:`NoRule` (the public functions return an :class:`Outcome`).
    """
    w = direction(x, ctx)
    e = as_scalar(f)
    if w.scalar:
        return scalar(derivative(e, w), ctx)
    g = _read_off(linear_terms(e, w), x, w.dx, w.ctx)
    if x in ctx.symmetric:
        use_rule("symmetric")
        g = (g + transpose(g, ctx)).scale(sp.Rational(1, 2))
    return g


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
        g = gradient_form(f, x, ctx)
        return g.expr() if isinstance(g, Form) else g

    return run_step(f"gradient with respect to {x}", timeout, run)


def substitute(
    e: sp.Basic, values: Mapping[sp.Basic, sp.Basic], *, symmetric: Iterable = (), invertible: Iterable = ()
) -> sp.Basic:
    """``e`` with symbols replaced by ``values``, then in normal form (raises :class:`NoRule`)."""
    ctx = context(symmetric, invertible)
    e = sp.sympify(e).xreplace(dict(values)) if values else sp.sympify(e)
    if isinstance(e, MatrixExpr):
        return to_form(e, ctx).expr()
    return scalar(e, ctx)
