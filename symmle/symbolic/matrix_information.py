"""Fisher information of vector and matrix parameters, per block, by matrix calculus.

Given the log-likelihood ``ell`` of ``N`` observations in terms of statistics (``MatrixSymbol``\\ s
such as ``T1 = sum x_i`` (D x 1) and ``T2 = sum x_i x_i^T`` (D x D), or scalar symbols), the
information is ``-E[d^2 ell]``, a bilinear form in the differentials of the parameters:

1. **Second differentials.**  ``d_b d_a ell`` for each pair of parameters, by the rules of
   :mod:`symmle.symbolic.matrix_calculus` applied twice (the first differential's ``d(A)`` is a
   constant for the second; a diagonal block uses a second direction ``d(A)'``).
2. **Expectations of the statistics.**  The log-likelihood of an exponential family is linear in
   its statistics, so ``E[score] = 0`` (the score identity) is a linear system for the ``E[T_j]``:
   each score equation in which one statistic is unknown is solved for it by the rules of
   :mod:`symmle.symbolic.matrix_solve` (a statistic that appears only as ``tr(T_j)`` in a scalar
   equation is solved for that trace).  ``d^2 ell`` is linear in the statistics too, so
   ``E[d^2 ell]`` is ``d^2 ell`` with each ``T_j`` replaced by ``E[T_j]``.  When a statistic of
   ``d^2 ell`` is not determined this way, the information is refused, with the reason.
3. **Coordinates.**  Each term of ``-E[d_b d_a ell]`` is brought to ``tr(A U B V)`` with ``U`` the
   direction of ``a`` (or its transpose) and ``V`` that of ``b``; ``tr(A U B V) = vec(V^T)^T
   (B^T kron A) vec(U)`` and ``vec(U^T) = vec(U)`` for a vector or a symmetric matrix, so the block
   in vec coordinates is ``sum c (B kron A^T)``.  A product of two traces ``tr(M u) tr(K v)``
   gives ``vec(M^T) vec(K^T)^T`` (vector and scalar parameters).  A vector parameter's coordinates
   are its entries; a symmetric matrix's are ``vech`` (the lower triangle, column by column),
   ``vec(S) = D_dup vech(S)``, so its rows and columns are multiplied by the duplication matrix
   (:class:`DuplicationMatrix`); a scalar's is itself.  For the Gaussian: ``I(mu) = Sigma^-1``,
   ``I(vech Sigma) = 1/2 D_dup^T (Sigma^-1 kron Sigma^-1) D_dup``, cross block 0.

Blocks are SymPy matrix expressions (``KroneckerProduct``, :class:`DuplicationMatrix`); at a
concrete dimension :func:`symmle.symbolic.matrix_verify.explicit` turns them into matrices, and
:func:`symmle.symbolic.matrix_verify.verify_fisher` checks them against the entrywise expected
negative Hessian.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.diagonal import DiagonalOf
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.symbolic.matrix_calculus import (
    Direction,
    Outcome,
    as_scalar,
    at_top,
    context,
    depends,
    derivative,
    differential_symbol,
    direction,
    gradient_form,
    isolate,
    linear_terms,
    matrix_atoms,
    run_step,
    use_rule,
)
from symmle.symbolic.matrix_forms import (
    Context,
    Form,
    NoRule,
    product,
    scalar,
    to_form,
    trace_atom,
    transpose,
)
from symmle.symbolic.matrix_solve import solve_linear

__all__ = [
    "DuplicationMatrix",
    "vech_pairs",
    "Expectations",
    "FisherBlock",
    "FisherInformation",
    "coordinates_kind",
    "expected_statistics",
    "second_differential",
    "bilinear_matrix",
    "fisher_information",
]


class DuplicationMatrix(MatrixExpr):
    """The duplication matrix ``D_n``: ``vec(S) = D_n vech(S)`` for a symmetric ``n x n`` ``S``.

    ``vec`` stacks the columns; ``vech`` stacks the lower triangle column by column
    (:func:`vech_pairs`).  Its shape is ``(n^2, n(n+1)/2)``; at a concrete ``n`` it is an explicit
    0/1 matrix (``as_explicit()``).

    Examples
    --------
    >>> DuplicationMatrix(2).as_explicit()
    Matrix([
    [1, 0, 0],
    [0, 1, 0],
    [0, 1, 0],
    [0, 0, 1]])
    """

    def __new__(cls, n: sp.Expr) -> DuplicationMatrix:
        return super().__new__(cls, sp.sympify(n))

    @property
    def n(self) -> sp.Expr:
        return self.args[0]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        n = self.n
        return (n**2, n * (n + 1) / 2)

    def _entry(self, i, j, **kwargs):  # noqa: ANN001, ANN202 - SymPy's signature
        n = int(self.n)
        row, col = int(i) % n, int(i) // n
        r, c = vech_pairs(n)[int(j)]
        return sp.S.One if (row, col) in ((r, c), (c, r)) else sp.S.Zero

    def _eval_transpose(self):  # noqa: ANN202
        return sp.Transpose(self)

    def _latex(self, printer, *args) -> str:  # noqa: ANN001
        return r"\mathbf{D}_{" + printer._print(self.n) + "}"

    def _sympystr(self, printer, *args) -> str:  # noqa: ANN001
        return f"Dup({printer._print(self.n)})"


def vech_pairs(n: int) -> list[tuple[int, int]]:
    """The ``(row, column)`` of each ``vech`` coordinate of an ``n x n`` matrix: the lower triangle,
    column by column."""
    return [(r, c) for c in range(n) for r in range(c, n)]


def coordinates_kind(p: sp.Basic, ctx: Context) -> str:
    """``"scalar"``, ``"vec"`` (a column, or a matrix by its entries) or ``"vech"`` (symmetric)."""
    if isinstance(p, sp.Symbol):
        return "scalar"
    if isinstance(p, sp.MatrixSymbol):
        return "vech" if p in ctx.symmetric else "vec"
    raise NoRule(f"no coordinates for {p}")


# ---------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expectations:
    """``E[T_j]`` from the score identity.

    Attributes
    ----------
    matrices : dict
        ``{T: E[T]}`` for statistics determined as matrices (or scalar symbols).
    parts : dict
        ``{part: E[part]}`` for statistics determined only through a part: a trace
        ``tr(...T...)`` in a scalar score equation (``tr(T2)`` for an isotropic covariance), or the
        diagonal ``dg(T)`` in a vector one (``dg(T2)`` for a diagonal covariance).
    """

    matrices: Mapping[sp.Basic, sp.Basic]
    parts: Mapping[sp.Basic, sp.Basic]

    def apply(self, e: sp.Basic, ctx: Context) -> sp.Basic:
        """``e`` with each statistic replaced by its expectation (``e`` must be linear in them)."""
        e = _normal(sp.sympify(e).xreplace(dict(self.matrices)) if self.matrices else e, ctx)
        if self.parts:
            e = _normal(e.xreplace(dict(self.parts)), ctx)
        return e


def _normal(e: sp.Basic, ctx: Context) -> sp.Basic:
    return to_form(e, ctx).expr() if isinstance(e, MatrixExpr) else scalar(e, ctx)


def _solve_for_diagonal(h: sp.Basic, t: sp.MatrixSymbol, ctx: Context) -> tuple[sp.Basic, sp.Basic] | None:
    """``(dg(t), value)`` from the vector equation ``h = 0`` in which ``t`` appears only as ``dg(t)``."""
    part = DiagonalOf(t)
    stand_in = sp.MatrixSymbol(f"dg({t.name})", t.shape[0], 1)
    replaced = sp.sympify(h).xreplace({part: stand_in})
    if depends(replaced, t):
        return None
    try:
        return part, solve_linear(to_form(replaced, ctx), stand_in, ctx).expr()
    except NoRule:
        return None


def _tidy(c: sp.Expr) -> sp.Expr:
    """A coefficient over one denominator, common factors cancelled (the result is shown)."""
    return sp.cancel(c)


def _solve_for_trace(e: sp.Expr, t: sp.Basic) -> tuple[sp.Basic, sp.Expr] | None:
    """The one trace holding ``t`` in the scalar ``e`` and its value from ``e = 0`` (linear), or None."""
    holders = [a for a in matrix_atoms(e) if depends(a, t)]
    if len(holders) != 1 or not isinstance(holders[0], sp.Trace):
        return None
    z = sp.Dummy("z")
    h = e.xreplace({holders[0]: z})
    if depends(h, t):
        return None
    a, b = sp.diff(h, z), h.xreplace({z: 0})
    if depends(a, z) or a == 0 or sp.simplify(h - (a * z + b)) != 0:
        return None
    return holders[0], -b / a


def _expectations(
    ell: sp.Expr, params: Sequence[sp.Basic], stats: Sequence[sp.Basic], ctx: Context
) -> Expectations:
    present = [t for t in stats if depends(ell, t)]
    scores = {p: gradient_form(ell, p, ctx) for p in params}
    found = Expectations({}, {})
    unknown = set(present)
    for _ in range(len(present) * max(len(params), 1) + 1):
        progress = False
        for g in scores.values():
            h = found.apply(g.expr() if isinstance(g, Form) else g, ctx)
            here = [t for t in unknown if depends(h, t)]
            if len(here) != 1:
                continue
            t = here[0]
            if isinstance(h, MatrixExpr):
                if not isinstance(t, sp.MatrixSymbol):
                    continue
                try:
                    value = solve_linear(to_form(h, ctx), t, ctx).expr()
                    found = Expectations({**found.matrices, t: value}, found.parts)
                except NoRule:
                    solved = _solve_for_diagonal(h, t, ctx)
                    if solved is None:
                        continue
                    found = Expectations(found.matrices, {**found.parts, solved[0]: solved[1]})
            else:
                if isinstance(t, sp.Symbol):
                    a = sp.diff(h, t)
                    if depends(a, t) or a == 0:
                        continue
                    value = scalar(-(h.xreplace({t: 0})) / a, ctx)
                    found = Expectations({**found.matrices, t: value}, found.parts)
                else:
                    solved = _solve_for_trace(h, t)
                    if solved is None:
                        continue
                    value = _tidy(scalar(solved[1], ctx))
                    found = Expectations(found.matrices, {**found.parts, solved[0]: value})
            unknown.discard(t)
            progress = True
        if not unknown or not progress:
            break
    use_rule("score_identity")
    return found


def expected_statistics(
    ell: sp.Expr,
    params: Sequence[sp.Basic],
    statistics: Sequence[sp.Basic],
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[Expectations]:
    """``E[T_j]`` from ``E[score] = 0`` (see the module docstring).

    Returns
    -------
    Outcome
        ``value``: an :class:`Expectations` (statistics it could not determine are absent), or
        ``None`` and the reason.
    """
    ctx = context(symmetric, invertible)
    return run_step(
        "expectations of the statistics",
        timeout,
        lambda: _expectations(as_scalar(ell), list(params), list(statistics), ctx),
    )


# ---------------------------------------------------------------- second differentials


def _first(ell: sp.Expr, w: Direction) -> sp.Expr:
    if w.scalar:
        return derivative(ell, w) * differential_symbol(w.x)
    return sp.Add(*[c * trace_atom(p) for p, c in linear_terms(ell, w).items()])


def _second(
    ell: sp.Expr, a: sp.Basic, b: sp.Basic, ctx: Context
) -> tuple[sp.Expr, sp.Basic, sp.Basic, Context]:
    """``d_b d_a ell`` and the two differentials (``d(A)``, ``d(B)`` or ``d(A)'``)."""
    wa = direction(a, ctx)
    first = _first(ell, wa)
    wb = direction(b, wa.ctx, suffix="'" if a == b else "")
    if wb.scalar:
        db = differential_symbol(b, "'" if a == b else "")
        second = derivative(first, wb) * db
    else:
        db = wb.dx
        second = sp.Add(*[c * trace_atom(p) for p, c in linear_terms(first, wb).items()])
    da = wa.dx if not wa.scalar else differential_symbol(a)
    return second, da, db, wb.ctx


def second_differential(
    ell: sp.Expr,
    a: sp.Basic,
    b: sp.Basic,
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[sp.Expr]:
    """``d_b d_a ell``: a scalar expression bilinear in ``d(a)`` and ``d(b)`` (``d(a)'`` if ``a == b``).

    The differentials are named by :func:`~symmle.symbolic.matrix_calculus.differential_symbol`.
    """
    ctx = context(symmetric, invertible)
    return run_step(
        f"second differential in {a}, {b}", timeout, lambda: _second(as_scalar(ell), a, b, ctx)[0]
    )


# ---------------------------------------------------------------- coordinates


class _Block:
    """A block in vec coordinates: Kronecker terms ``c (B kron C)`` plus a plain form."""

    def __init__(self, shape: tuple) -> None:
        self.kron: dict[tuple, sp.Expr] = {}
        self.plain = Form(shape)

    def add_kron(self, b: Form, c: Form, k: sp.Expr) -> None:
        for p, x in b.terms.items():
            for q, y in c.terms.items():
                coeff = k * x * y
                if b.shape == (1, 1) or c.shape == (1, 1):
                    one, other, op = (p, c, q) if b.shape == (1, 1) else (q, b, p)
                    value = trace_atom(one) if one else sp.S.One
                    self.plain = self.plain + Form(other.shape, {op: coeff * value})
                    continue
                key = (b.shape, p, c.shape, q)
                v = self.kron.get(key, sp.S.Zero) + coeff
                if v == 0:
                    self.kron.pop(key, None)
                else:
                    self.kron[key] = v

    def expr(self) -> sp.Basic:
        parts = []
        for (bs, p, cs, q), v in sorted(
            self.kron.items(), key=lambda kv: sp.default_sort_key(kv[0][1] + kv[0][3])
        ):
            left = Form(bs, {p: sp.S.One}).expr()
            right = Form(cs, {q: sp.S.One}).expr()
            k = KroneckerProduct(left, right)
            v = _tidy(v)
            parts.append(k if v == 1 else sp.MatMul(v, k))
        if not self.plain.is_zero:
            parts.append(Form(self.plain.shape, {p: _tidy(c) for p, c in self.plain.terms.items()}).expr())
        if not parts:
            return sp.ZeroMatrix(*self.plain.shape)
        return parts[0] if len(parts) == 1 else sp.MatAdd(*parts)


def _vec_length(d: sp.Basic) -> sp.Expr:
    if isinstance(d, sp.MatrixSymbol):
        return d.shape[0] * d.shape[1]
    return sp.S.One


def _vec_of_trace(atom: sp.Basic, d: sp.Basic, ctx: Context) -> Form:
    """``v`` with ``atom = vec(d)^T v``: ``tr(M d) = vec(M^T)^T vec(d)``, ``tr(M d^T) = vec(M)^T vec(d)``."""
    if not isinstance(d, sp.MatrixSymbol) or d.shape[1] != 1:
        raise NoRule(f"a product of traces in the matrix differential {d}: no vec rule")
    f = to_form(atom.arg, ctx) if isinstance(atom, sp.Trace) else None
    if f is None:
        raise NoRule(f"{d} inside {type(atom).__name__}: no rule")
    out = Form((d.shape[0], sp.S.One))
    for p, c in f.terms.items():
        for q, k in isolate(p, c, d, ctx):
            i = next(j for j, a in enumerate(q) if at_top(a, d))
            m = q[i + 1 :] + q[:i]
            if q[i] == d:
                out = out + transpose(product(m, ctx, k, shape=(d.shape[1], d.shape[0])), ctx)
            else:
                out = out + product(m, ctx, k, shape=d.shape)
    return out


def _kron_terms(atom: sp.Trace, c: sp.Expr, du: sp.Basic, dv: sp.Basic, ctx: Context, block: _Block) -> None:
    """Add ``c tr(...)``, holding ``du`` and ``dv``, to ``block`` as ``sum c (B kron A^T)``."""
    for d in (du, dv):
        if isinstance(d, sp.MatrixSymbol) and d.shape[1] != 1 and d not in ctx.symmetric:
            raise NoRule(f"a non-symmetric matrix differential {d}: no vec rule for its transpose")
    f = to_form(atom.arg, ctx)
    for p, k in f.terms.items():
        for q, k1 in isolate(p, c * k, du, ctx):
            for r, k2 in isolate(q, k1, dv, ctx):
                iu = [i for i, a in enumerate(r) if at_top(a, du)]
                iv = [i for i, a in enumerate(r) if at_top(a, dv)]
                if len(iu) != 1 or len(iv) != 1:
                    raise NoRule(f"cannot bring both {du} and {dv} to the top of a trace")
                j = iv[0]
                s = r[j + 1 :] + r[: j + 1]  # rotated: V last
                i = next(t for t, a in enumerate(s) if at_top(a, du))
                u, v = s[i], s[-1]
                a_shape = (v.shape[1], u.shape[0])
                b_shape = (u.shape[1], v.shape[0])
                big_a = product(s[:i], ctx, shape=a_shape)
                big_b = product(s[i + 1 : -1], ctx, shape=b_shape)
                use_rule("vec_kron")
                block.add_kron(big_b, transpose(big_a, ctx), k2)


def _block(h: sp.Expr, du: sp.Basic, dv: sp.Basic, ctx: Context) -> _Block:
    """The vec-coordinate matrix ``K`` of the bilinear form ``h = vec(du)^T K vec(dv)``."""
    block = _Block((_vec_length(du), _vec_length(dv)))
    atoms = [a for a in matrix_atoms(h) if depends(a, du) or depends(a, dv)]
    scal = [d for d in (du, dv) if isinstance(d, sp.Symbol)]
    ws = [sp.Dummy(f"w{i}") for i in range(len(atoms))]
    hz = h.xreplace(dict(zip(atoms, ws)))
    if any(isinstance(d, sp.MatrixSymbol) and depends(hz, d) for d in (du, dv)):
        raise NoRule("a differential outside a trace")
    holders = list(zip(ws, atoms)) + [(d, d) for d in scal]
    zero = {w: 0 for w, _ in holders}
    recon = sp.S.Zero
    for i, (wi, ai) in enumerate(holders):
        ci = sp.diff(hz, wi).xreplace(zero)
        if ci != 0:
            if not (depends(ai, du) and depends(ai, dv)) or ai in scal:
                raise NoRule("the second differential is not bilinear")
            _kron_terms(ai, ci, du, dv, ctx, block)
            recon += ci * wi
        for wj, aj in holders[i + 1 :]:
            cij = sp.diff(hz, wi, wj).xreplace(zero)
            if cij == 0:
                continue
            first, second = (ai, aj) if depends(ai, du) else (aj, ai)
            if not (depends(first, du) and depends(second, dv)) or depends(first, dv) or depends(second, du):
                raise NoRule("the second differential is not bilinear")
            vu = Form.identity(1) if first == du else _vec_of_trace(first, du, ctx)
            vv = Form.identity(1) if second == dv else _vec_of_trace(second, dv, ctx)
            block.plain = block.plain + vu.mul(transpose(vv, ctx), ctx).scale(cij)
            use_rule("vec_outer")
            recon += cij * wi * wj
    if sp.expand(hz - recon) != 0:
        raise NoRule("the second differential is not bilinear in the two directions")
    return block


def bilinear_matrix(h: sp.Expr, du: sp.Basic, dv: sp.Basic, ctx: Context) -> sp.Basic:
    """``K`` with ``h = vec(du)^T K vec(dv)`` for a bilinear ``h`` (traces, as second differentials
    are), by the rules of the module docstring (step 3).  ``ctx`` marks ``du``, ``dv`` as
    differentials (:func:`~symmle.symbolic.matrix_calculus.direction` builds it).

    A building block: raises :class:`NoRule` (the public functions return an :class:`Outcome`).
    """
    return _block(h, du, dv, ctx).expr()


# ---------------------------------------------------------------- the information


@dataclass(frozen=True)
class FisherBlock:
    """One block of the Fisher information.

    Attributes
    ----------
    row, col : Symbol or MatrixSymbol
        The parameters of the block's rows and columns.
    row_coordinates, col_coordinates : str
        ``"scalar"``, ``"vec"`` (entries of a column) or ``"vech"`` (distinct entries of a
        symmetric matrix, :func:`vech_pairs` order).
    matrix : Basic
        The block in those coordinates: a matrix expression (``KroneckerProduct``,
        :class:`DuplicationMatrix` where needed), or a scalar ``sp.Expr`` for two scalars.
    vec_form : Basic
        The same block in vec coordinates (before the duplication matrices).
    """

    row: sp.Basic
    col: sp.Basic
    row_coordinates: str
    col_coordinates: str
    matrix: sp.Basic
    vec_form: sp.Basic


@dataclass(frozen=True)
class FisherInformation:
    """The Fisher information of the parameters, block by block.

    Attributes
    ----------
    params : tuple
        The parameters, in order; the full matrix stacks their coordinates in this order.
    blocks : dict
        ``{(a, b): FisherBlock}`` for ``a`` at or before ``b`` in ``params``; the block ``(b, a)`` is
        the transpose (:meth:`block`).
    expectations : Expectations
        The ``E[T_j]`` used.
    forms : dict
        ``{(a, b): -E[d_b d_a ell]}``, the bilinear forms (for display), per observation when
        ``per_observation``.
    per_observation : bool
        Whether the blocks were divided by the sample size (the information of one observation).
    """

    params: tuple
    blocks: Mapping[tuple, FisherBlock]
    expectations: Expectations
    forms: Mapping[tuple, sp.Expr]
    per_observation: bool

    def block(self, a: sp.Basic, b: sp.Basic) -> sp.Basic:
        """The block of rows ``a`` and columns ``b`` (a transpose for ``b`` before ``a``)."""
        if (a, b) in self.blocks:
            return self.blocks[(a, b)].matrix
        m = self.blocks[(b, a)].matrix
        return sp.Transpose(m) if isinstance(m, MatrixExpr) else m


def _fisher(
    ell: sp.Expr, params: Sequence[sp.Basic], stats: Sequence[sp.Basic], n: sp.Symbol | None, ctx: Context
) -> FisherInformation:
    expect = _expectations(ell, params, stats, ctx)
    blocks: dict = {}
    forms: dict = {}
    for i, a in enumerate(params):
        for b in params[i:]:
            second, du, dv, c2 = _second(ell, a, b, ctx)
            h = expect.apply(-second, c2)
            left = [t for t in stats if depends(h, t)]
            if left:
                names = ", ".join(str(t) for t in left)
                raise NoRule(f"E[{names}] is not determined by the score identity")
            if n is not None:
                h = scalar(h / n, c2)
            h = _tidy(h)
            k = _block(h, du, dv, c2)
            vec_form = k.expr()
            rk, ck = coordinates_kind(a, ctx), coordinates_kind(b, ctx)
            m = vec_form
            if rk == "vech" or ck == "vech":
                use_rule("duplication")
                left_m = [sp.Transpose(DuplicationMatrix(a.shape[0]))] if rk == "vech" else []
                right_m = [DuplicationMatrix(b.shape[0])] if ck == "vech" else []
                if isinstance(m, sp.ZeroMatrix):
                    rows = left_m[0].shape[0] if left_m else m.shape[0]
                    cols = right_m[0].shape[1] if right_m else m.shape[1]
                    m = sp.ZeroMatrix(rows, cols)
                elif isinstance(m, sp.MatMul):
                    coeff, mats = m.as_coeff_matrices()
                    m = sp.MatMul(*([coeff] if coeff != 1 else []), *left_m, *mats, *right_m)
                else:
                    m = sp.MatMul(*left_m, m, *right_m)
            if rk == "scalar" and ck == "scalar":
                m = sp.Trace(m) if isinstance(m, MatrixExpr) else m
                m = scalar(m, c2)
            blocks[(a, b)] = FisherBlock(a, b, rk, ck, m, vec_form)
            forms[(a, b)] = h
    return FisherInformation(tuple(params), blocks, expect, forms, n is not None)


def fisher_information(
    ell: sp.Expr,
    params: Sequence[sp.Basic],
    statistics: Sequence[sp.Basic],
    *,
    n: sp.Symbol | None = None,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Outcome[FisherInformation]:
    """The Fisher information ``-E[d^2 ell]`` per block (see the module docstring).

    Parameters
    ----------
    ell : Expr
        The log-likelihood of the sample, in the statistics.
    params : sequence of Symbol or MatrixSymbol
        The parameters, in the order of the full matrix.
    statistics : sequence of Symbol or MatrixSymbol
        The statistics whose expectations are to be found (``T1``, ``T2``...).
    n : Symbol, optional
        The sample size: given, the blocks are divided by it (the information of one observation,
        ``I(mu) = Sigma^-1``); else they are the sample's.
    symmetric, invertible : iterables of MatrixSymbol
        Declared symmetric (``Sigma``, ``T2``) and invertible (``Sigma``) symbols.
    timeout : float or None
        Budget in seconds for the whole computation.

    Returns
    -------
    Outcome
        ``value``: a :class:`FisherInformation`, or ``None`` and the reason.
    """
    ctx = context(symmetric, invertible)
    return run_step(
        "Fisher information",
        timeout,
        lambda: _fisher(as_scalar(ell), list(params), list(statistics), n, ctx),
    )
