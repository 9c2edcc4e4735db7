"""Stationarity equations of matrix calculus: ``G = 0`` solved by stated rules.

The gradient ``G`` comes from :func:`symmle.symbolic.matrix_calculus.gradient` (for a symmetric
``X``, its symmetric part: stationarity over symmetric ``X`` is ``sym(G) = 0``).  The rules
(:data:`~symmle.symbolic.matrix_calculus.RULES` names them):

* linear in ``X``: every term holds ``X`` once, at the top level of its product, all of them as
  ``L X R`` with the same invertible factors (declared invertible symbols, ``Y^-1`` atoms) on the
  left and on the right: the equation is multiplied by ``L^-1`` and ``R^-1`` until it reads
  ``a X + B = 0`` with a scalar ``a`` shown non-zero, so ``X = -B/a``;
* ``X^-1`` in ``G`` (``X`` declared invertible): ``G`` is multiplied by ``X`` on both sides (or on
  one) when that removes every ``X^-1`` and leaves a linear equation, which has the same solutions
  (``X`` is invertible): ``-N/2 S^-1 + 1/2 S^-1 A S^-1 = 0`` gives ``S = A/N``;
* a scalar ``X`` (an ``sp.Symbol``): SymPy's ``solve`` on the scalar equation, its traces and
  determinants (free of ``X``) held by symbols; exactly one admissible root is required;
* entry by entry, for a column ``X`` when the rules above do not apply: every term of ``G`` is a
  scalar times a Hadamard product of columns, ``diag(a_1) ... diag(a_m) b`` with each ``a_j`` and
  ``b`` a column symbol, an entrywise function ``f.(u)`` of such a column, ``dg(M)`` (``M`` free of
  ``X``) or ``1``.  The ``k``-th entry of such a term is a function of the ``k``-th entries alone,
  so ``G = 0`` holds iff one scalar equation ``h(x_k, a_k, ...) = 0`` holds for every ``k``; that
  equation is solved for ``x_k`` by the scalar rule (one admissible root; ``x_k > 0`` when ``X`` is
  declared positive), and the root is read back as a column: sums stay sums, products of entries
  become Hadamard products ``diag(u) w``, a function of one entry an entrywise function.
  ``diag(1/v) T1 - lambda 1 = 0`` gives ``v = T1/lambda``; the diagonal covariance's
  ``-N/2 (1/v) + 1/2 diag(1/v^2) (dg(T2) - ...) = 0`` gives ``v = dg(T2)/N - T1 o T1/N^2``.

Anything else is refused with the reason: ``X`` and ``X^T`` together (``X`` not symmetric), ``X``
with different factors (a Sylvester equation), ``X`` inside a nonlinear function that is not
entrywise, a factor that mixes the entries (``A X``, ``1^T X``), a coefficient not shown non-zero.
:func:`solve_stationary_system` solves the parameters in sequence (``mu`` first, then ``Sigma``
with ``mu`` substituted).  Each public function takes a ``timeout`` and returns an
:class:`~symmle.symbolic.matrix_calculus.Outcome`; the numerical checks of a solution are
:func:`symmle.symbolic.matrix_verify.verify_root` (the equation holds entrywise) and
:func:`symmle.symbolic.matrix_verify.verify_stationary` (a strict local maximum).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.symbolic.matrix_calculus import (
    Outcome,
    as_scalar,
    at_top,
    context,
    depends,
    matrix_atoms,
    run_step,
    substitute,
    use_rule,
)
from symmle.symbolic.matrix_forms import (
    Context,
    Form,
    NoRule,
    diag,
    entrywise,
    inverse_atom,
    is_invertible,
    scalar,
    to_form,
    trace_atom,
)

__all__ = ["solve_linear", "solve_entrywise", "solve_stationary", "solve_stationary_system"]


def _holds_inverse_of(f: Form, x: sp.Basic) -> bool:
    return any(
        isinstance(a, sp.Inverse) and x in a.free_symbols and (a.arg == x or at_top(a.arg, x))
        for p in f.terms
        for a in p
    )


def _linear_split(f: Form, x: sp.Basic) -> tuple[list[tuple[tuple, tuple, sp.Expr]], Form]:
    """``f`` as ``sum c L X R`` (returned as ``(L, R, c)``) plus the terms free of ``X``."""
    xs: list[tuple[tuple, tuple, sp.Expr]] = []
    const = Form(f.shape)
    for p, c in f.terms.items():
        if depends(c, x):
            raise NoRule(f"a coefficient depends on {x}: the equation is not linear")
        at = [i for i, a in enumerate(p) if x in a.free_symbols]
        if not at:
            const = const + Form(f.shape, {p: c})
            continue
        if len(at) > 1:
            raise NoRule(f"{x} appears more than once in a product: the equation is not linear")
        i = at[0]
        if p[i] != x:
            if at_top(p[i], x):
                raise NoRule(f"{x} and its transpose both appear (not symmetric): no rule")
            raise NoRule(f"{x} appears inside {type(p[i]).__name__}: the equation is not linear")
        xs.append((p[:i], p[i + 1 :], c))
    return xs, const


def _nonzero(a: sp.Expr) -> bool:
    if a.is_zero is False:
        return True
    return sp.simplify(a).is_zero is False


def solve_linear(f: Form, x: sp.Basic, ctx: Context) -> Form:
    """Solve ``f = 0`` for ``x`` (linear): strip common invertible factors, then ``aX + B = 0``.

    A building block: raises :class:`NoRule` when the rule does not apply.
    """
    for _ in range(64):
        xs, const = _linear_split(f, x)
        if not xs:
            raise NoRule(f"the equation does not involve {x}")
        if all(not left and not right for left, right, _ in xs):
            a = sp.Add(*[c for _, _, c in xs])
            if not _nonzero(a):
                raise NoRule(f"cannot show the coefficient {a} of {x} is non-zero")
            use_rule("linear")
            return const.scale(-1 / a)
        lefts = {left[0] if left else None for left, _, _ in xs}
        rights = {right[-1] if right else None for _, right, _ in xs}
        if len(lefts) == 1 and None not in lefts and is_invertible(next(iter(lefts)), ctx):
            use_rule("invertible_factor")
            f = inverse_atom(next(iter(lefts)), ctx).mul(f, ctx)
        elif len(rights) == 1 and None not in rights and is_invertible(next(iter(rights)), ctx):
            use_rule("invertible_factor")
            f = f.mul(inverse_atom(next(iter(rights)), ctx), ctx)
        else:
            common = [a for side in (lefts, rights) if len(side) == 1 and None not in side for a in side]
            if common:
                raise NoRule(f"the factor {common[0]} beside {x} is not known to be invertible")
            raise NoRule(
                f"{x} appears with different factors on its left or right"
                " (a Sylvester-type equation): no rule"
            )
    raise NoRule("too many invertible factors to strip")


class _Entries:
    """The ``k``-th entries of columns of ``x``'s length: a scalar stand-in for each column atom (the
    unknown's is ``x_k``), and the way back from a scalar in the stand-ins to a column."""

    def __init__(self, x: sp.MatrixSymbol, positive: bool, ctx: Context) -> None:
        self.x, self.ctx, self.rows = x, ctx, x.shape[0]
        self.xk = sp.Dummy(f"{x.name}_k", positive=True) if positive else sp.Dummy(f"{x.name}_k", real=True)
        self.symbols: dict[sp.Basic, sp.Dummy] = {x: self.xk}
        self.back: dict[sp.Dummy, Form] = {self.xk: Form.atom(x)}
        self.t = sp.Dummy("t")

    def _stand_in(self, a: sp.Basic) -> sp.Dummy:
        s = self.symbols.get(a)
        if s is None:
            s = sp.Dummy(f"e{len(self.symbols)}", real=True)
            self.symbols[a] = s
            self.back[s] = Form.atom(a)
        return s

    def of_form(self, f: Form) -> sp.Expr:
        """The ``k``-th entry of a column form."""
        if not (f.shape[1] == 1 and f.shape[0] == self.rows):
            raise NoRule(f"a term of shape {f.shape} has no entrywise reading beside {self.x}")
        out = sp.S.Zero
        for p, c in f.terms.items():
            if depends(c, self.x):
                raise NoRule(f"a scalar factor holds {self.x}: its entries are coupled")
            out += c * self._of_product(p)
        return out

    def _of_product(self, p: tuple) -> sp.Expr:
        x = self.x
        factors = []
        i = 0
        while i < len(p) and isinstance(p[i], DiagMatrix):  # diag(a) w = a o w: entry a_k w_k
            factors.append(self.of_form(to_form(p[i].args[0], self.ctx)))
            i += 1
        if i == len(p) or p[i].shape != (self.rows, 1):
            shown = p[i] if i < len(p) else p[-1]
            raise NoRule(f"{shown} mixes the entries of a column: no entrywise reading")
        factors.append(self._of_column(p[i]))
        rest = p[i + 1 :]
        if rest:  # a column times a 1x1 product: a scalar factor
            if rest[0].shape[0] != 1:
                raise NoRule(f"{rest[0]} mixes the entries of a column: no entrywise reading")
            s = trace_atom(rest)
            if depends(s, x):
                raise NoRule(f"a scalar factor holds {x}: its entries are coupled")
            factors.append(scalar(s, self.ctx))
        return sp.Mul(*factors)

    def _of_column(self, a: sp.Basic) -> sp.Expr:
        x = self.x
        if a == x:
            return self.xk
        if isinstance(a, sp.OneMatrix):
            return sp.S.One
        if isinstance(a, ElementwiseApplyFunction):
            var, body = a.function.variables[0], a.function.expr
            if depends(body, x):
                raise NoRule(f"an entrywise function whose definition involves {x}: no rule")
            return body.xreplace({var: self.of_form(to_form(a.expr, self.ctx))})
        if depends(a, x):
            raise NoRule(f"{x} inside {type(a).__name__}: no entrywise reading")
        return self._stand_in(a)  # a column free of x: a symbol, dg(M), ...

    def column(self, e: sp.Expr) -> Form:
        """The column whose ``k``-th entry is ``e`` (the inverse of :meth:`of_form`)."""
        here = e.free_symbols & self.back.keys()
        if not here:
            if sp.sympify(self.rows) == 1:
                return Form.identity(1, e)
            return Form.atom(sp.OneMatrix(self.rows, 1), e)
        if e in self.back:
            return self.back[e]
        if isinstance(e, sp.Add):
            out = Form((self.rows, sp.S.One))
            for a in e.args:
                out = out + self.column(a)
            return out
        if isinstance(e, sp.Mul):
            coeff = sp.Mul(*[a for a in e.args if not (a.free_symbols & here)])
            parts = [a for a in e.args if a.free_symbols & here]
            if coeff != 1:
                return self.column(sp.Mul(*parts)).scale(coeff)
            out = self.column(parts[-1])
            for a in reversed(parts[:-1]):  # a Hadamard product: u o w = diag(u) w
                out = diag(self.column(a), self.ctx).mul(out, self.ctx)
            return out
        holders = [a for a in e.args if a.free_symbols & here]
        if len(here) == 1:
            (s,) = here
            inner, arg = s, self.back[s]
        elif len(holders) == 1:
            inner, arg = holders[0], self.column(holders[0])
        else:
            raise NoRule(f"no column has the entries {e}")
        return entrywise(sp.Lambda(self.t, e.xreplace({inner: self.t})), arg.expr(), self.ctx)


def solve_entrywise(f: Form, x: sp.MatrixSymbol, ctx: Context, positive: bool = False) -> Form:
    """Solve the column equation ``f = 0`` for the column ``x`` entry by entry (module docstring).

    A building block: raises :class:`NoRule` when a term has no entrywise reading or the scalar
    equation has not exactly one admissible root.
    """
    if x.shape[1] != 1:
        raise NoRule(f"{x} is not a column: no entrywise rule")
    entries = _Entries(x, positive, ctx)
    h = entries.of_form(f)
    if not depends(h, entries.xk):
        raise NoRule(f"the equation does not involve {x}")
    root = _solve_scalar(h, entries.xk, ctx)
    if depends(root, entries.xk):
        raise NoRule(f"the root for the entries of {x} involves them")
    use_rule("entrywise_solve")
    return entries.column(root)


def _solve_matrix(g: sp.Basic, x: sp.MatrixSymbol, ctx: Context, positive: bool = False) -> sp.Basic:
    f = to_form(g, ctx)
    if f.shape != x.shape:
        raise NoRule(f"the equation has shape {f.shape}, {x} has shape {x.shape}")
    if x.shape[1] == 1 and not _holds_inverse_of(f, x):
        # a column: the linear rule, else entry by entry; each attempt records its rules apart, so
        # that the result names only the rules of the one that succeeded
        reasons = []
        for step, rule in (
            ("linear", lambda: solve_linear(f, x, ctx)),
            ("entry by entry", lambda: solve_entrywise(f, x, ctx, positive)),
        ):
            out = run_step(step, None, rule)
            if out.ok:
                for r in out.rules:
                    use_rule(r)
                return out.value.expr()
            reasons.append(out.reason)
        raise NoRule("; ".join(reasons))
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
                sol = solve_linear(cand, x, ctx)
            except NoRule as exc:
                tried.append(f"{name} ({exc})")
                continue
            use_rule("inverse_sandwich")
            return sol.expr()
        raise NoRule(f"multiplying by {x} on {', '.join(tried) or 'any side'} leaves no linear equation")
    return solve_linear(f, x, ctx).expr()


def _linear_root(h: sp.Expr, x: sp.Symbol) -> list[sp.Expr] | None:
    """The root of ``h = 0`` when ``h``'s numerator is of degree 1 in ``x`` and its denominator is
    free of ``x`` or ``c x^k`` with ``x`` non-zero (``solve`` finds it too, after a second of
    simplification); else ``None``."""
    num, den = sp.fraction(sp.together(h))
    try:
        poly = sp.Poly(num, x)
    except sp.PolynomialError:
        return None
    if poly.degree() != 1:
        return None
    a, b = poly.all_coeffs()
    if not _nonzero(a):
        return None
    root = sp.factor_terms(-b / a)
    if depends(den, x):
        # a denominator c x^k vanishes only at x = 0, which a non-zero x excludes
        d = sp.Poly(den, x)
        if not (len(d.terms()) == 1 and x.is_nonzero):
            return None
    return [root]


def _solve_scalar(g: sp.Expr, x: sp.Symbol, ctx: Context) -> sp.Expr:
    e = scalar(g, ctx)
    atoms = matrix_atoms(e)
    if any(depends(a, x) for a in atoms):
        raise NoRule(f"{x} appears inside a trace or determinant of the scalar equation")
    zs = [sp.Dummy(f"s{i}") for i in range(len(atoms))]
    h = e.xreplace(dict(zip(atoms, zs)))
    back = dict(zip(zs, atoms))
    roots = _linear_root(h, x)
    if roots is None:
        roots = sp.solve(h, x, dict=False)
    roots = [r for r in roots if not (x.is_positive and r.is_positive is False)]
    roots = [r for r in roots if not (x.is_real and r.is_real is False)]
    if len(roots) != 1:
        raise NoRule(f"the scalar equation for {x} has {len(roots)} admissible roots, not one")
    use_rule("scalar_solve")
    return scalar(roots[0].xreplace(back), ctx)


def solve_stationary(
    g: sp.Basic,
    x: sp.Basic,
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    positive: Iterable = (),
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
    positive : iterable of MatrixSymbol
        Columns with positive entries (a simplex, variances): the entrywise rule keeps the roots
        that may be positive.

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
    1/N*A
    """
    ctx = context(symmetric, invertible)
    pos = x in frozenset(positive)

    def run() -> sp.Basic:
        if isinstance(x, sp.MatrixSymbol):
            return _solve_matrix(sp.sympify(g), x, ctx, pos)
        if isinstance(x, sp.Symbol):
            return _solve_scalar(as_scalar(g), x, ctx)
        raise NoRule(f"cannot solve for {x} (a symbol or matrix symbol is needed)")

    return run_step(f"stationary point in {x}", timeout, run)


def solve_stationary_system(
    gradients: Mapping[sp.Basic, sp.Basic],
    *,
    symmetric: Iterable = (),
    invertible: Iterable = (),
    positive: Iterable = (),
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
    sym, inv, pos = tuple(symmetric), tuple(invertible), tuple(positive)

    def run() -> dict:
        solved: dict = {}
        pending = list(gradients)
        while pending:
            reasons = []
            for p in list(pending):
                g = substitute(gradients[p], solved, symmetric=sym, invertible=inv)
                r = solve_stationary(g, p, symmetric=sym, invertible=inv, positive=pos, timeout=None)
                for rule in r.rules:
                    use_rule(rule)
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

    return run_step("stationary point", timeout, run)
