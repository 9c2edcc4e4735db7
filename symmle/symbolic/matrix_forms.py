"""Matrix expressions in a normal form: sums of scalar multiples of products of atoms.

SymPy's matrix expressions hold the structure symmle needs (``MatMul``, ``MatAdd``, ``Transpose``,
``Inverse``, ``Trace``, ``Determinant``, entrywise functions), but its own simplification and
calculus of them are incomplete or silently wrong (``log(Determinant(S)).diff(S)`` is 0 in SymPy
1.14).  This module rewrites a matrix expression as a :class:`Form`: a sum ``sum_k c_k P_k`` with
scalar coefficients ``c_k`` and products ``P_k`` of *atoms*, collected so that equal products add.
Everything the matrix calculus of :mod:`symmle.symbolic.matrix_calculus` does is a rewrite of forms
by the identities below, each exact for the shapes it is applied to.

Atoms
    a ``MatrixSymbol`` ``X``; ``X^T`` (``X`` not declared symmetric); ``Y^-1`` (``Y`` an atom or an
    unsplittable sum); ``OneMatrix`` (not 1x1); ``diag(v)`` (``DiagMatrix``, ``v`` a column);
    ``dg(M)`` (``DiagonalOf``, the column of ``M``'s diagonal) and its transpose; ``f.(v)`` (an
    entrywise function, ``ElementwiseApplyFunction``, its ``Lambda`` rebuilt on one fixed dummy so
    that equal functions compare equal) and its transpose.

Identities used in the normal form (:data:`IDENTITIES` names them for reports)
    * products distribute over sums, scalars commute with matrices: ``(cA)(B + C) = cAB + cAC``;
    * ``(AB)^T = B^T A^T``, ``(A + B)^T = A^T + B^T``, ``(X^T)^T = X``; ``S^T = S`` for a declared
      symmetric ``S``; ``(Y^-1)^T = (Y^T)^-1``; ``diag(v)^T = diag(v)``;
    * ``(cP)^-1 = c^-1 P^-1`` and ``(A_1 ... A_k)^-1 = A_k^-1 ... A_1^-1`` when every factor is
      square; ``(Y^-1)^-1 = Y``; ``diag(v)^-1 = diag((1/t).(v))``; ``A A^-1 = A^-1 A = I``;
    * ``1_{1xn} 1_{nx1} = n``; ``diag(v) 1 = v``; ``1^T diag(v) = v^T``; ``diag(1) = I``;
      ``dg(diag(w)) = w``; ``dg(u w^T) = diag(w) u`` for columns ``u``, ``w``;
    * entrywise functions compose, ``f.(g.(u)) = (f o g).(u)``, and multiply on one argument,
      ``diag(f.(u)) diag(g.(u)) = diag((f g).(u))``, ``diag(f.(u)) g.(u) = (f g).(u)``; a constant
      function is a multiple of ones; ``tr(diag(v_1) .. diag(v_k) M) = v_1^T diag(v_2) ..
      diag(v_k) dg(M)``;
    * Hadamard products of columns: ``a o b = diag(a) b``;
    * ``tr(A^T) = tr(A)``, ``tr(AB) = tr(BA)`` (traces are rotated to one canonical product, a 1x1
      quadratic form where one exists), ``tr(cA + B) = c tr(A) + tr(B)``, ``tr(I_n) = n``;
    * ``det(cP) = c^n det(P)`` for ``n x n`` ``P``, ``det(AB) = det(A) det(B)`` for square factors,
      ``det(X^T) = det(X)``, ``det(Y^-1) = 1/det(Y)``.

A construct without a stated rule raises :class:`NoRule` with the reason: the caller reports the
reason instead of guessing.  Shapes are SymPy expressions (``D``, ``D**2``...) compared
structurally.

The module passes 600 lines on purpose: the normal form is one closed system (a product rule may
call for a trace, a diagonal or an inverse, and each of those for products again), and splitting
it would split mutually recursive functions across modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr

from symmle.base.errors import DerivationError

__all__ = [
    "NoRule",
    "Context",
    "Form",
    "IDENTITIES",
    "to_form",
    "product",
    "transpose",
    "inverse",
    "diag",
    "diagonal",
    "trace_terms",
    "trace_atom",
    "scalar",
    "normalize",
    "entrywise",
    "is_invertible",
    "inverse_atom",
    "transpose_atom",
]

#: The identities of the normal form, by name (reports cite them).
IDENTITIES: Mapping[str, str] = {
    "transpose": "(AB)^T = B^T A^T, (A^{-1})^T = (A^T)^{-1}, S^T = S for symmetric S",
    "inverse": "(AB)^{-1} = B^{-1} A^{-1} for square A, B; A A^{-1} = I",
    "cyclic": "tr(AB) = tr(BA), tr(A^T) = tr(A)",
    "determinant": "det(cA) = c^n det(A), det(AB) = det(A) det(B), det(A^{-1}) = 1/det(A)",
    "ones": "1^T 1 = n, diag(v) 1 = v",
}

#: Largest integer matrix power expanded, and largest number of terms a product may create.
_MAX_POWER = 64
_MAX_TERMS = 20000

#: The one dummy every entrywise function is written in, so that equal functions compare equal.
_T = sp.Dummy("t")


class NoRule(DerivationError):
    """No stated rule applies; the message is the reason, one line."""


@dataclass(frozen=True)
class Context:
    """What the rules may assume about the matrix symbols.

    Attributes
    ----------
    symmetric : frozenset of MatrixSymbol
        Declared symmetric (``S^T = S``): covariance matrices, ``T2 = sum x x^T``, and their
        differentials.
    invertible : frozenset of MatrixSymbol
        Declared invertible (an spd matrix is); atoms ``Y^-1`` are invertible by construction.
    differentials : frozenset of MatrixSymbol
        Differential symbols (``dX``); rewrites that may put either of two factors at the top
        level of a product (``dg(u w^T) = diag(w) u = diag(u) w``) keep these there.
    """

    symmetric: frozenset = frozenset()
    invertible: frozenset = frozenset()
    differentials: frozenset = frozenset()

    @classmethod
    def of(cls, symmetric: Iterable = (), invertible: Iterable = ()) -> Context:
        """A context declaring ``symmetric`` and ``invertible`` symbols (no differentials yet)."""
        return cls(frozenset(symmetric), frozenset(invertible), frozenset())

    def with_differential(self, dx: sp.Basic, symmetric: bool) -> Context:
        """This context with ``dx`` marked as a differential (symmetric if its variable is)."""
        sym = self.symmetric | {dx} if symmetric else self.symmetric
        return Context(sym, self.invertible, self.differentials | {dx})


def _rows(a: sp.Basic) -> sp.Expr:
    return a.shape[0]


def _cols(a: sp.Basic) -> sp.Expr:
    return a.shape[1]


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.sympify(a) == sp.sympify(b)


def _is_one(n: sp.Expr) -> bool:
    return sp.sympify(n) == 1


class Form:
    """``sum_k c_k P_k``: products ``P_k`` (tuples of atoms) with scalar coefficients ``c_k``.

    The empty product is the identity of the form's (square) shape.  Forms are values: the
    operations return new forms and never change their operands.
    """

    __slots__ = ("shape", "terms")

    def __init__(self, shape: tuple[sp.Expr, sp.Expr], terms: Mapping[tuple, sp.Expr] | None = None):
        self.shape = (sp.sympify(shape[0]), sp.sympify(shape[1]))
        self.terms: dict[tuple, sp.Expr] = {}
        for p, c in (terms or {}).items():
            self._add(p, c)

    def _add(self, p: tuple, c: sp.Expr) -> None:
        c = self.terms.get(p, sp.S.Zero) + c
        if c == 0:
            self.terms.pop(p, None)
        else:
            self.terms[p] = c

    @classmethod
    def zero(cls, shape: tuple[sp.Expr, sp.Expr]) -> Form:
        """The zero matrix of ``shape``."""
        return cls(shape)

    @classmethod
    def identity(cls, n: sp.Expr, c: sp.Expr = sp.S.One) -> Form:
        """``c I_n``."""
        return cls((n, n), {(): sp.sympify(c)})

    @classmethod
    def atom(cls, a: sp.Basic, c: sp.Expr = sp.S.One) -> Form:
        """``c a`` for one atom ``a``."""
        return cls(a.shape, {(a,): sp.sympify(c)})

    @property
    def is_zero(self) -> bool:
        return not self.terms

    def __add__(self, other: Form) -> Form:
        if not (_same(self.shape[0], other.shape[0]) and _same(self.shape[1], other.shape[1])):
            raise NoRule(f"cannot add matrices of shapes {self.shape} and {other.shape}")
        out = Form(self.shape, self.terms)
        for p, c in other.terms.items():
            out._add(p, c)
        return out

    def __neg__(self) -> Form:
        return self.scale(-1)

    def __sub__(self, other: Form) -> Form:
        return self + (-other)

    def scale(self, c: sp.Expr) -> Form:
        """``c * self`` for a scalar ``c``."""
        c = sp.sympify(c)
        if c == 0:
            return Form(self.shape)
        return Form(self.shape, {p: v * c for p, v in self.terms.items()})

    def mul(self, other: Form, ctx: Context) -> Form:
        """The product ``self @ other``, distributed and simplified by the product rules."""
        if not _same(self.shape[1], other.shape[0]):
            raise NoRule(f"cannot multiply matrices of shapes {self.shape} and {other.shape}")
        if len(self.terms) * len(other.terms) > _MAX_TERMS:
            raise NoRule(f"a product of sums of {len(self.terms)} and {len(other.terms)} terms: too large")
        out = Form((self.shape[0], other.shape[1]))
        for p, c in self.terms.items():
            for q, d in other.terms.items():
                for r, e in _simplify(p + q, c * d, out.shape, ctx).terms.items():
                    out._add(r, e)
        return out

    def expr(self) -> sp.Basic:
        """The form as a SymPy matrix expression, terms in a fixed order."""
        parts = []
        for p in sorted(self.terms, key=_key):
            c = self.terms[p]
            if not p:
                m = sp.Identity(self.shape[0])
                parts.append(m if c == 1 else sp.MatMul(c, m))
                continue
            body = list(p)
            if c == 1:
                parts.append(body[0] if len(body) == 1 else sp.MatMul(*body))
            else:
                parts.append(sp.MatMul(c, *body))
        if not parts:
            return sp.ZeroMatrix(*self.shape)
        return parts[0] if len(parts) == 1 else sp.MatAdd(*parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Form) and self.shape == other.shape and self.terms == other.terms

    def __hash__(self) -> int:  # pragma: no cover - forms are not used as keys
        return hash((self.shape, frozenset(self.terms.items())))

    def __repr__(self) -> str:
        return f"Form({self.expr()})"


def _key(p: tuple) -> tuple:
    return tuple(sp.default_sort_key(a) for a in p)


# ---------------------------------------------------------------- atoms


def _lambda(fn: sp.Basic) -> sp.Lambda:
    """``fn`` as a ``Lambda`` in the fixed dummy ``_T``."""
    if isinstance(fn, sp.Lambda):
        if len(fn.variables) != 1:
            raise NoRule("an entrywise function of more than one argument")
        return sp.Lambda(_T, fn.expr.xreplace({fn.variables[0]: _T}))
    return sp.Lambda(_T, fn(_T))


def entrywise(fn: sp.Basic, v: sp.Basic, ctx: Context) -> Form:
    """``f.(v)`` as a form: an atom on a column (a row is the transpose of one)."""
    body = _lambda(fn).expr  # in _T (SymPy turns Lambda(t, t) into its own identity function)
    arg = to_form(v, ctx)
    if len(arg.terms) == 1:
        ((p, c),) = arg.terms.items()
        if len(p) == 1 and isinstance(p[0], ElementwiseApplyFunction):  # f.(g.(u)) = (f o g).(u)
            inner = p[0]
            body = body.xreplace({_T: c * _lambda(inner.function).expr})
            arg = to_form(inner.expr, ctx)
    if body == _T:
        return arg
    slope = sp.diff(body, _T)
    if _T in body.free_symbols and _T not in slope.free_symbols:  # a t + b: a v + b 1
        return arg.scale(slope) + entrywise(sp.Lambda(_T, body.xreplace({_T: 0})), arg.expr(), ctx)
    if _T not in body.free_symbols:  # a constant function: c times a matrix of ones
        if _is_one(arg.shape[0]) and _is_one(arg.shape[1]):
            return Form.identity(1, body)
        return Form.atom(sp.OneMatrix(*arg.shape), body)
    lam = sp.Lambda(_T, body)
    if _is_one(arg.shape[0]) and not _is_one(arg.shape[1]):
        col = transpose(arg, ctx)
        return Form.atom(sp.Transpose(ElementwiseApplyFunction(lam, col.expr())))
    return Form.atom(ElementwiseApplyFunction(lam, arg.expr()))


def transpose_atom(a: sp.Basic, ctx: Context) -> sp.Basic:
    """The transpose of one atom, as an atom."""
    if isinstance(a, sp.MatrixSymbol):
        return a if a in ctx.symmetric else sp.Transpose(a)
    if isinstance(a, sp.Transpose):
        return a.arg
    if isinstance(a, sp.OneMatrix):
        return sp.OneMatrix(a.shape[1], a.shape[0])
    if isinstance(a, DiagMatrix):
        return a
    if isinstance(a, sp.Inverse):
        inner = a.arg
        if isinstance(inner, (sp.MatrixSymbol, sp.Transpose)):
            return sp.Inverse(transpose_atom(inner, ctx))
        t = transpose(to_form(inner, ctx), ctx).expr()
        return sp.Inverse(t)
    if isinstance(a, DiagonalOf):
        return sp.Transpose(a)
    if isinstance(a, ElementwiseApplyFunction):
        if _is_one(a.shape[1]):
            return sp.Transpose(a)
        return ElementwiseApplyFunction(a.function, transpose(to_form(a.expr, ctx), ctx).expr())
    return sp.Transpose(a)


def inverse_atom(a: sp.Basic, ctx: Context) -> Form:
    """The inverse of one square atom, as a form."""
    if isinstance(a, sp.MatrixSymbol) or (isinstance(a, sp.Transpose) and isinstance(a.arg, sp.MatrixSymbol)):
        return Form.atom(sp.Inverse(a))
    if isinstance(a, sp.Inverse):
        return to_form(a.arg, ctx)
    if isinstance(a, DiagMatrix):
        return diag(entrywise(sp.Lambda(_T, 1 / _T), a.args[0], ctx), ctx)
    if isinstance(a, sp.OneMatrix):
        raise NoRule("inverse of a matrix of ones (singular)")
    return Form.atom(sp.Inverse(a))


def _never_zero(body: sp.Expr) -> bool:
    """Whether the scalar function ``t -> body`` is non-zero wherever it is defined: a product of
    non-zero numbers, exponentials and negative powers."""
    for f in sp.Mul.make_args(body):
        if f.is_Number and f != 0:
            continue
        if isinstance(f, sp.exp):
            continue
        if f.is_Pow and f.exp.is_negative and (f.exp.is_Number or isinstance(f.base, sp.exp)):
            continue
        return False
    return True


def is_invertible(a: sp.Basic, ctx: Context) -> bool:
    """Whether the atom is known to be invertible: ``Y^-1``, a declared invertible symbol, or
    ``diag(f.(u))`` with ``f`` never zero (``diag((1/t).(s))``, the inverse of ``diag(s)``)."""
    if isinstance(a, sp.Inverse):
        return True
    if isinstance(a, DiagMatrix) and isinstance(a.args[0], ElementwiseApplyFunction):
        return _never_zero(a.args[0].function.expr)
    if isinstance(a, sp.Transpose) and isinstance(a.arg, sp.MatrixSymbol):
        return a.arg in ctx.invertible
    return isinstance(a, sp.MatrixSymbol) and a in ctx.invertible


# ---------------------------------------------------------------- products


def _cancels(a: sp.Basic, b: sp.Basic) -> bool:
    return (isinstance(b, sp.Inverse) and b.arg == a) or (isinstance(a, sp.Inverse) and a.arg == b)


def _has_differential(p: Iterable[sp.Basic], ctx: Context) -> bool:
    return any(a.free_symbols & ctx.differentials for a in p)


def product(
    factors: Iterable[sp.Basic], ctx: Context, c: sp.Expr = sp.S.One, shape: tuple | None = None
) -> Form:
    """The product of atoms as a simplified form; ``shape`` is needed for an empty product."""
    p = tuple(factors)
    if not p:
        if shape is None:
            raise ValueError("an empty product needs its shape")
        return Form(shape, {(): sp.sympify(c)})
    return _simplify(p, sp.sympify(c), (_rows(p[0]), _cols(p[-1])), ctx)


def _simplify(p: tuple, c: sp.Expr, shape: tuple, ctx: Context) -> Form:
    """Apply the product rules of the normal form to ``c * p`` until none applies."""
    if c == 0:
        return Form(shape)
    p = list(p)
    changed = True
    while changed:
        changed = False
        for i in range(len(p) - 1):
            a, b = p[i], p[i + 1]
            if _cancels(a, b):
                del p[i : i + 2]
                changed = True
                break
            if isinstance(a, sp.OneMatrix) and isinstance(b, sp.OneMatrix) and _is_one(a.shape[0]):
                if _is_one(b.shape[1]):
                    c = c * a.shape[1]
                    del p[i : i + 2]
                    changed = True
                    break
            if isinstance(a, DiagMatrix) and isinstance(b, DiagMatrix):
                merged = _merge_diagonals(a, b, ctx)
                if merged is not None:
                    return _splice(p[:i], merged, p[i + 2 :], c, shape, ctx)
            if isinstance(a, DiagMatrix) and _is_one(_cols(b)) and not _is_one(_rows(b)):
                merged = _merge_entrywise(a, b, ctx)
                if merged is not None:
                    return _splice(p[:i], merged, p[i + 2 :], c, shape, ctx)
            if isinstance(a, DiagMatrix) and isinstance(b, sp.OneMatrix) and _is_one(b.shape[1]):
                return _splice(p[:i], to_form(a.args[0], ctx), p[i + 2 :], c, shape, ctx)
            if isinstance(b, DiagMatrix) and isinstance(a, sp.OneMatrix) and _is_one(a.shape[0]):
                return _splice(p[:i], transpose(to_form(b.args[0], ctx), ctx), p[i + 2 :], c, shape, ctx)
    return Form(shape, {tuple(p): c})


def _entrywise_parts(v: sp.Basic) -> tuple[sp.Expr, sp.Basic]:
    """``v`` as ``f.(u)``: the body of ``f`` (in ``_T``) and ``u`` (``v`` itself is ``t.(v)``)."""
    if isinstance(v, ElementwiseApplyFunction):
        return _lambda(v.function).expr, v.expr
    return _T, v


def _merge_diagonals(a: DiagMatrix, b: DiagMatrix, ctx: Context) -> Form | None:
    """``diag(f.(u)) diag(g.(u)) = diag((f g).(u))`` for the same ``u``; else None."""
    f, u = _entrywise_parts(a.args[0])
    g, w = _entrywise_parts(b.args[0])
    if u != w:
        return None
    return diag(entrywise(sp.Lambda(_T, f * g), u, ctx), ctx)


def _merge_entrywise(a: DiagMatrix, b: sp.Basic, ctx: Context) -> Form | None:
    """``diag(f.(u)) g.(u) = (f g).(u)`` for a column ``g.(u)`` (or ``u``) on the same ``u``; else None."""
    f, u = _entrywise_parts(a.args[0])
    if not (isinstance(b, ElementwiseApplyFunction) or b == u):
        return None
    g, w = _entrywise_parts(b)
    if u != w:
        return None
    return entrywise(sp.Lambda(_T, f * g), u, ctx)


def _splice(left: list, middle: Form, right: list, c: sp.Expr, shape: tuple, ctx: Context) -> Form:
    out = Form(shape)
    for q, d in middle.terms.items():
        out = out + _simplify(tuple(left) + q + tuple(right), c * d, shape, ctx)
    return out


# ---------------------------------------------------------------- operations on forms


def transpose(f: Form, ctx: Context) -> Form:
    """``F^T``: each product reversed, each atom transposed."""
    out = Form((f.shape[1], f.shape[0]))
    for p, c in f.terms.items():
        q = tuple(transpose_atom(a, ctx) for a in reversed(p))
        out = out + (_simplify(q, c, out.shape, ctx) if q else Form(out.shape, {(): c}))
    return out


def inverse(f: Form, ctx: Context) -> Form:
    """``F^-1`` by the rules for scalars, products of square factors and atoms; else an atom."""
    n, m = f.shape
    if not _same(n, m):
        raise NoRule(f"inverse of a non-square matrix of shape {f.shape}")
    if f.is_zero:
        raise NoRule("inverse of a zero matrix")
    if len(f.terms) == 1:
        ((p, c),) = f.terms.items()
        if all(_same(_rows(a), _cols(a)) for a in p):
            out = Form.identity(n, 1 / c)
            for a in reversed(p):
                out = out.mul(inverse_atom(a, ctx), ctx)
            return out
    return Form.atom(sp.Inverse(f.expr()))


def diag(v: Form, ctx: Context) -> Form:
    """``diag(v)`` of a column, by linearity: ``diag(sum c_k v_k) = sum c_k diag(v_k)``."""
    n, m = v.shape
    if not _is_one(m):
        if _is_one(n):
            return diag(transpose(v, ctx), ctx)
        raise NoRule(f"diag of a matrix of shape {v.shape} (a column is needed)")
    out = Form((n, n))
    for p, c in v.terms.items():
        if len(p) == 1 and isinstance(p[0], sp.OneMatrix):
            out = out + Form.identity(n, c)
        elif not p:  # a 1x1 identity
            out = out + Form.identity(n, c)
        else:
            out = out + Form.atom(DiagMatrix(product(p, ctx).expr()), c)
    return out


def diagonal(m: Form, ctx: Context) -> Form:
    """``dg(M)``, the column of the diagonal of a square ``M``, by linearity and the rules
    ``dg(I) = 1``, ``dg(diag(w)) = w``, ``dg(u w^T) = diag(w) u`` (``u``, ``w`` columns)."""
    n, k = m.shape
    if not _same(n, k):
        raise NoRule(f"diagonal of a non-square matrix of shape {m.shape}")
    out = Form((n, sp.S.One))
    for p, c in m.terms.items():
        if not p:
            out = out + (Form.identity(1, c) if _is_one(n) else Form((n, 1), {(sp.OneMatrix(n, 1),): c}))
            continue
        if len(p) == 1 and isinstance(p[0], DiagMatrix):
            out = out + to_form(p[0].args[0], ctx).scale(c)
            continue
        split = next((i for i in range(len(p) - 1) if _is_one(_cols(p[i]))), None)
        if split is not None:
            u, w = p[: split + 1], p[split + 1 :]  # u a column, w a row
            wt = transpose(product(w, ctx), ctx)
            uf = product(u, ctx)
            if _has_differential(w, ctx) and not _has_differential(u, ctx):
                out = out + diag(uf, ctx).mul(wt, ctx).scale(c)
            else:
                out = out + diag(wt, ctx).mul(uf, ctx).scale(c)
            continue
        out = out + Form.atom(DiagonalOf(product(p, ctx).expr()), c)
    return out


# ---------------------------------------------------------------- from SymPy


def to_form(e: sp.Basic, ctx: Context) -> Form:
    """A SymPy matrix expression as a :class:`Form` (raises :class:`NoRule` for what has no rule)."""
    if not isinstance(e, MatrixExpr):
        raise NoRule(f"a scalar where a matrix was expected: {e}")
    if isinstance(e, sp.MatrixSymbol):
        return Form.atom(e)
    if isinstance(e, sp.Identity):
        return Form.identity(e.shape[0])
    if isinstance(e, sp.ZeroMatrix):
        return Form(e.shape)
    if isinstance(e, sp.OneMatrix):
        if _is_one(e.shape[0]) and _is_one(e.shape[1]):
            return Form.identity(1)
        return Form.atom(e)
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        out = None
        for m in mats:
            f = to_form(m, ctx)
            out = f if out is None else out.mul(f, ctx)
        if out is None:
            raise NoRule(f"a product without matrices: {e}")
        return out.scale(scalar(coeff, ctx))
    if isinstance(e, sp.MatAdd):
        out = Form(e.shape)
        for a in e.args:
            out = out + to_form(a, ctx)
        return out
    if isinstance(e, sp.Transpose):
        return transpose(to_form(e.arg, ctx), ctx)
    if isinstance(e, sp.Inverse):
        return inverse(to_form(e.arg, ctx), ctx)
    if isinstance(e, sp.MatPow):
        base, k = e.args
        if not (k.is_Integer):
            raise NoRule(f"matrix power with a non-integer exponent: {k}")
        if abs(k) > _MAX_POWER:
            raise NoRule(f"matrix power {k}: powers beyond {_MAX_POWER} are not expanded")
        f = to_form(base, ctx)
        if k < 0:
            f, k = inverse(f, ctx), -k
        out = Form.identity(f.shape[0])
        for _ in range(int(k)):
            out = out.mul(f, ctx)
        return out
    if isinstance(e, ElementwiseApplyFunction):
        return entrywise(e.function, e.expr, ctx)
    if isinstance(e, sp.HadamardProduct):
        args = [to_form(a, ctx) for a in e.args]
        if not all(_is_one(a.shape[1]) for a in args):
            raise NoRule("Hadamard product of matrices (only columns have a rule: a o b = diag(a) b)")
        out = args[-1]
        for a in reversed(args[:-1]):
            out = diag(a, ctx).mul(out, ctx)
        return out
    if isinstance(e, DiagMatrix):
        return diag(to_form(e.args[0], ctx), ctx)
    if isinstance(e, DiagonalOf):
        return diagonal(to_form(e.arg, ctx), ctx)
    raise NoRule(f"no rule for the matrix construct {type(e).__name__}")


# ---------------------------------------------------------------- traces and scalars


def trace_atom(p: tuple) -> sp.Expr:
    """``tr(P)`` of a product, as the SymPy scalar ``Trace``."""
    return sp.Trace(p[0] if len(p) == 1 else sp.MatMul(*p))


def _rotations(p: tuple) -> list[tuple]:
    return [p[i:] + p[:i] for i in range(len(p))]


def trace_terms(f: Form, ctx: Context) -> dict[tuple, sp.Expr]:
    """``tr(F)`` as ``{canonical product: coefficient}`` (the empty product stands for the number 1).

    Each product is rotated (``tr(AB) = tr(BA)``) and transposed (``tr(A^T) = tr(A)``) to one
    canonical representative, after cancelling factors that rotation makes adjacent.
    """
    if not _same(f.shape[0], f.shape[1]):
        raise NoRule(f"trace of a non-square matrix of shape {f.shape}")
    out: dict[tuple, sp.Expr] = {}

    def add(p: tuple, c: sp.Expr) -> None:
        v = out.get(p, sp.S.Zero) + c
        if v == 0:
            out.pop(p, None)
        else:
            out[p] = v

    for p, c in f.terms.items():
        for q, d in _trace_product(p, c, f.shape[0], ctx).items():
            add(q, d)
    return out


def _trace_product(p: tuple, c: sp.Expr, n: sp.Expr, ctx: Context) -> dict[tuple, sp.Expr]:
    if not p:
        return {(): c * n}
    for r in _rotations(p):
        shape = (_rows(r[0]), _cols(r[-1]))
        s = _simplify(r, c, shape, ctx)
        if s.terms != {r: c}:  # a rotation brought cancelling factors together
            out: dict[tuple, sp.Expr] = {}
            for q, d in s.terms.items():
                for k, v in _trace_product(q, d, shape[0], ctx).items():
                    out[k] = out.get(k, sp.S.Zero) + v
            return {k: v for k, v in out.items() if v != 0}
    for r in _rotations(p):
        # tr(diag(v1) diag(v2)..diag(vk) M) = v1^T diag(v2)..diag(vk) dg(M): the diagonal of M is
        # all such a trace reads (a statistic inside it then has a part, dg(T), to be replaced)
        last = r[-1]
        if (
            len(r) >= 2
            and all(isinstance(a, DiagMatrix) for a in r[:-1])
            and not isinstance(last, DiagMatrix)
            and _same(_rows(last), _cols(last))
            and not _is_one(_rows(last))
        ):
            v = transpose(to_form(r[0].args[0], ctx), ctx)
            rest = product(r[1:-1], ctx, shape=(_rows(last), _rows(last)))
            new = v.mul(rest, ctx).mul(diagonal(Form.atom(last), ctx), ctx).scale(c)
            out: dict[tuple, sp.Expr] = {}
            for q, d in new.terms.items():
                for k, val in _trace_product(q, d, sp.S.One, ctx).items():
                    out[k] = out.get(k, sp.S.Zero) + val
            return {k: val for k, val in out.items() if val != 0}
    t = tuple(transpose_atom(a, ctx) for a in reversed(p))
    candidates = _rotations(p) + _rotations(t)
    quadratic = [q for q in candidates if _is_one(_rows(q[0])) and _is_one(_cols(q[-1]))]
    best = min(quadratic or candidates, key=_key)
    return {best: c}


def _det(f: Form, ctx: Context) -> sp.Expr:
    n, m = f.shape
    if not _same(n, m):
        raise NoRule(f"determinant of a non-square matrix of shape {f.shape}")
    if f.is_zero:
        return sp.S.Zero
    if len(f.terms) == 1:
        ((p, c),) = f.terms.items()
        if all(_same(_rows(a), _cols(a)) for a in p):
            out = c**n
            for a in p:
                if isinstance(a, sp.Transpose) and isinstance(a.arg, sp.MatrixSymbol):
                    out *= sp.Determinant(a.arg)
                elif isinstance(a, sp.Inverse):
                    out /= _det(to_form(a.arg, ctx), ctx)
                else:
                    out *= sp.Determinant(a)
            return out
    return sp.Determinant(f.expr())


def scalar(e: sp.Basic, ctx: Context) -> sp.Expr:
    """A scalar expression with every ``Trace`` and ``Determinant`` rewritten in canonical form."""
    e = sp.sympify(e)
    if isinstance(e, sp.Trace):
        f = to_form(e.arg, ctx)
        return sp.Add(*[c * (trace_atom(p) if p else 1) for p, c in trace_terms(f, ctx).items()])
    if isinstance(e, sp.Determinant):
        return _det(to_form(e.arg, ctx), ctx)
    if isinstance(e, MatrixExpr):
        raise NoRule(f"a matrix in a scalar context: {e}")
    if isinstance(e, MatrixElement):
        raise NoRule(f"no rule for a matrix entry: {e}")
    if not e.args or isinstance(e, sp.Lambda):
        return e
    args = [scalar(a, ctx) if isinstance(a, sp.Basic) else a for a in e.args]
    return e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)


def normalize(e: sp.Basic, ctx: Context) -> sp.Basic:
    """``e`` (matrix or scalar) in the normal form, as a SymPy expression."""
    if isinstance(e, MatrixExpr):
        return to_form(e, ctx).expr()
    return scalar(e, ctx)
