r"""Kinks of a log-density: where its derivatives hold a ``DiracDelta``.

Differentiating ``Abs(u)`` gives ``sign(u)``, and differentiating ``sign(u)``
gives ``2*DiracDelta(u)``.  A ``DiracDelta`` in a second derivative means a
kink (the Laplace location, ``Abs(x - m)``) only if it survives: a term
:math:`c\,\delta^{(k)}(u)` is the zero distribution when :math:`c` and its
first :math:`k` derivatives vanish where :math:`u = 0` (``Abs(x - m)**3``
is twice differentiable: its second derivative holds
:math:`(x - m)^2 \delta(x - m)`, which is zero).  :func:`without_null_deltas`
drops such terms and keeps every other one.

:func:`kink_points` gives where, in a variable, the non-smooth functions of an
expression switch (the roots of their arguments), so that an integral can be
split there.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["without_null_deltas", "kink_points"]

#: Functions that are smooth except where their argument vanishes.
_SWITCHES = (sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta)


def _linear_root(u: sp.Expr, z: sp.Basic) -> sp.Expr | None:
    """The root of ``u`` in ``z`` if ``u`` is linear in ``z`` with a non-zero slope, else ``None``."""
    if z.is_integer:  # a summation index, not a point on the line
        return None
    slope = sp.diff(u, z)
    if slope == 0 or slope.has(z) or slope.has(sp.Derivative):
        return None
    root = sp.cancel(z - u / slope)
    return None if root.has(sp.nan, sp.zoo, sp.oo) else root


def _vanishes(c: sp.Expr, z: sp.Basic, root: sp.Expr, order: int) -> bool:
    """Whether ``c`` and its first ``order`` derivatives in ``z`` tend to 0 at ``root``, from both sides."""
    e = sp.Dummy("e", positive=True)
    for k in range(order + 1):
        dk = sp.diff(c, z, k) if k else c
        for side in (e, -e):
            try:
                value = sp.limit(dk.subs(z, root + side), e, 0, "+")
            except (NotImplementedError, ValueError, TypeError):
                return False
            if value != 0:
                return False
    return True


def _null(delta: sp.DiracDelta, cofactor: sp.Expr) -> bool:
    """Whether ``cofactor * delta`` is the zero distribution."""
    if cofactor.has(sp.DiracDelta):
        return False
    u = delta.args[0]
    order = int(delta.args[1]) if len(delta.args) > 1 else 0
    for z in sorted(u.atoms(sp.Symbol, sp.Indexed), key=sp.default_sort_key):
        root = _linear_root(u, z)
        if root is not None:
            return _vanishes(cofactor, z, root, order)
    return False


def _delta_sums(add: sp.Add) -> list[tuple[sp.Expr, sp.Sum]]:
    """The terms ``c * Sum(...)`` of ``add`` whose sum holds a ``DiracDelta``, as ``(c, Sum)``."""
    out = []
    for term in add.args:
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) == 1 and sums[0].has(sp.DiracDelta):
            index = {lim[0] for lim in sums[0].limits}
            c = term / sums[0]
            if not (c.free_symbols & index):
                out.append((c, sums[0]))
    return out


def _combine_sums(add: sp.Add) -> sp.Expr:
    """``add`` with its delta-holding sums of the same limits written as one sum."""
    pairs = _delta_sums(add)
    taken = {c * s for c, s in pairs}
    groups: dict[tuple, list[sp.Expr]] = {}
    for c, s in pairs:
        groups.setdefault(s.limits, []).append(c * s.function)
    rest = [t for t in add.args if t not in taken]
    return sp.Add(*rest, *(sp.Sum(sp.Add(*bodies), *limits) for limits, bodies in groups.items()))


def _sum_without_null_deltas(s: sp.Sum) -> sp.Expr:
    body = without_null_deltas(s.function)
    return sp.S.Zero if body == 0 else sp.Sum(body, *s.limits)


def without_null_deltas(expr: sp.Expr) -> sp.Expr:
    r"""``expr`` without its terms :math:`c\,\delta^{(k)}(u)` that are the zero distribution.

    The terms of each delta are gathered first.  They are dropped only when
    ``u`` is linear in one of its symbols and ``c`` with its first ``k``
    derivatives tends to 0 on both sides of the root; everything else is
    kept (so a real kink still shows).  Sums over the sample are treated
    term by term inside.

    Examples
    --------
    >>> x, m = sp.symbols("x m", real=True)
    >>> d2 = without_null_deltas(sp.diff(-sp.Abs(x - m) ** 3, m, 2))
    >>> d2.has(sp.DiracDelta), d2.subs({x: 2, m: sp.Rational(1, 2)})
    (False, -9)
    >>> without_null_deltas(sp.diff(-sp.Abs(x - m), m, 2))
    -2*DiracDelta(m - x)
    """
    if not expr.has(sp.DiracDelta):
        return expr
    # sums over the sample with the same limits are one sum: m**2*Sum(delta) - 2*m*Sum(x[i]*delta)
    # + Sum(x[i]**2*delta) is Sum((m - x[i])**2*delta), null
    expr = expr.replace(lambda e: isinstance(e, sp.Add) and len(_delta_sums(e)) > 1, _combine_sums)
    expr = expr.replace(lambda e: isinstance(e, sp.Sum) and e.has(sp.DiracDelta), _sum_without_null_deltas)
    kept = []
    # the terms of one delta are judged together: (m - x)**2*DiracDelta(m - x) may come
    # expanded, as m**2*DiracDelta(m - x) - 2*m*x*DiracDelta(m - x) + x**2*DiracDelta(m - x)
    cofactors: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(expr):
        if not term.has(sp.DiracDelta) or term.has(sp.Sum):
            kept.append(term)
            continue
        for t in sp.Add.make_args(sp.expand_mul(term)):
            deltas = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.DiracDelta)]
            if len(deltas) == 1:
                cofactors[deltas[0]] = cofactors.get(deltas[0], sp.S.Zero) + t / deltas[0]
            else:
                kept.append(t)
    kept += [c * d for d, c in cofactors.items() if not _null(d, c)]
    return sp.Add(*kept)


def kink_points(expr: sp.Expr, var: sp.Symbol) -> list[sp.Expr] | None:
    """Where the non-smooth functions of ``expr`` switch, in ``var``; ``None`` if not every one is linear.

    Examples
    --------
    >>> x, m = sp.symbols("x m", real=True)
    >>> kink_points(sp.exp(-sp.Abs(x - m)) * sp.sign(x - m), x)
    [m]
    >>> kink_points(sp.exp(-x**2), x)
    []
    """
    roots: list[sp.Expr] = []
    for f in expr.atoms(*_SWITCHES):
        u = f.args[0]
        if not u.has(var):
            continue
        root = _linear_root(u, var)
        if root is None:
            return None
        if not any(sp.simplify(root - r) == 0 for r in roots):
            roots.append(root)
    return roots
