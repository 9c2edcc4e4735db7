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
  determinants (free of ``X``) held by symbols; exactly one admissible root is required.

Anything else is refused with the reason: ``X`` and ``X^T`` together (``X`` not symmetric), ``X``
with different factors (a Sylvester equation), ``X`` inside a nonlinear function, a coefficient not
shown non-zero.  :func:`solve_stationary_system` solves the parameters in sequence (``mu`` first,
then ``Sigma`` with ``mu`` substituted).  Each public function takes a ``timeout`` and returns an
:class:`~symmle.symbolic.matrix_calculus.Outcome`; the numerical check of a solution is
:func:`symmle.symbolic.matrix_verify.verify_stationary`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp

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
from symmle.symbolic.matrix_forms import Context, Form, NoRule, inverse_atom, is_invertible, scalar, to_form

__all__ = ["solve_linear", "solve_stationary", "solve_stationary_system"]


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
    1/N*A
    """
    ctx = context(symmetric, invertible)

    def run() -> sp.Basic:
        if isinstance(x, sp.MatrixSymbol):
            return _solve_matrix(sp.sympify(g), x, ctx)
        if isinstance(x, sp.Symbol):
            return _solve_scalar(as_scalar(g), x, ctx)
        raise NoRule(f"cannot solve for {x} (a symbol or matrix symbol is needed)")

    return run_step(f"stationary point in {x}", timeout, run)


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
