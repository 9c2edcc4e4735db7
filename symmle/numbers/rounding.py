r"""First-order bounds of the rounding error of a formula evaluated in floating point.

A closed-form estimator can be exact in algebra and still lose every digit in
double precision where it is evaluated: ``LambertW(z) + m`` near the branch
point :math:`z = -1/e`, where :math:`W' = W/(z(1 + W))` magnifies the rounding
of ``z``; ``-b + sqrt(b**2 + c)`` when ``c`` is small beside ``b**2``; ``log(z)``
with ``z`` rounded near 1.  :func:`rounding_bounds` gives two expressions in
the formula's own inputs, both in units of the rounding unit
:math:`u = 2^{-53}`:

``ops``
    running error analysis (Wilkinson): every operation's result is rounded
    (relative error ``u``), and each rounding is carried to the result
    through the absolute values of the partial derivatives of the operations
    above it.  It bounds, to first order, the error the *formula* adds.
``data``
    :math:`\sum_j |\partial f/\partial s_j|\,|s_j|`, the exact derivatives of
    the whole formula: the error that rounding the statistics ``s_j`` (sums
    over the data, each uncertain by about ``u`` relative) causes whatever the
    formula.  It is the problem's own condition, which no formula can beat.

A formula whose ``ops`` bound exceeds ``data + |f|`` by orders of magnitude at
the data is ill-conditioned as written there, though the estimate itself is
determined to full precision by the statistics.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp
from sympy.core.function import ArgumentIndexError

__all__ = ["rounding_bounds"]


def _ops(expr: sp.Expr) -> sp.Expr | None:
    """The ``ops`` bound of ``expr`` (inputs exact), or ``None`` for an operation without a derivative."""
    memo: dict[sp.Basic, sp.Expr | None] = {}

    def rec(e: sp.Basic) -> sp.Expr | None:
        if e in memo:
            return memo[e]
        if e.is_Atom:
            r: sp.Expr | None = sp.S.Zero  # inputs, numbers
        elif e.is_Add or e.is_Mul:
            errs = [rec(a) for a in e.args]
            if any(r_ is None for r_ in errs):
                return None
            if e.is_Add:
                # each partial sum is rounded; they are bounded by the sum of |terms|
                r = sp.Add(*errs) + sp.Add(*[sp.Abs(a) for a in e.args])
            else:
                parts = [
                    err * sp.Mul(*[sp.Abs(b) for j, b in enumerate(e.args) if j != i])
                    for i, err in enumerate(errs)
                    if err != 0
                ]
                r = sp.Add(*parts) + (len(e.args) - 1) * sp.Abs(e)
        elif e.is_Pow:
            b, k = e.args
            rb, rk = rec(b), rec(k)
            if rb is None or rk is None:
                return None
            r = sp.Abs(e)
            if rb != 0:
                r += sp.Abs(k * b ** (k - 1)) * rb
            if rk != 0:
                r += sp.Abs(e * sp.log(b)) * rk
        elif isinstance(e, sp.Piecewise):
            pieces = [(rec(v), c) for v, c in e.args]
            if any(v is None for v, _ in pieces):
                return None
            r = sp.Piecewise(*pieces)
        elif isinstance(e, sp.Function):
            r = sp.Abs(e)  # the function's own rounding
            for i, a in enumerate(e.args, 1):
                ra = rec(a)
                if ra is None:
                    return None
                if ra == 0:
                    continue
                try:
                    r += sp.Abs(e.fdiff(i)) * ra
                except (ArgumentIndexError, NotImplementedError, TypeError, ValueError):
                    return None
        else:
            return None  # Relational, Sum...: not a numeric operation this analysis knows
        memo[e] = r
        return r

    return rec(expr)


def rounding_bounds(expr: sp.Expr, inputs: Iterable[sp.Symbol]) -> tuple[sp.Expr, sp.Expr] | None:
    """``(ops, data)``: first-order rounding-error bounds of ``expr``, in units of ``u``.

    Parameters
    ----------
    expr : Expr
        The formula as it is evaluated (after the rewrites of :func:`symmle.base.numeric._stable`).
    inputs : iterable of Symbol
        The symbols that carry rounding error of their own (statistics);
        every other symbol is taken as exact.

    Returns
    -------
    (Expr, Expr) or None
        ``None`` if ``expr`` has an operation without a known derivative.

    Examples
    --------
    >>> b, c = sp.symbols("b c", positive=True)
    >>> ops, data = rounding_bounds(-b + sp.sqrt(b**2 + c), [b, c])
    >>> at = {b: 1e8, c: 1.0}
    >>> float(ops.subs(at)) / float((data + abs(-b + sp.sqrt(b**2 + c))).subs(at)) > 1e15
    True
    """
    ops = _ops(expr)
    if ops is None:
        return None
    data = sp.Add(*[sp.Abs(sp.diff(expr, s)) * sp.Abs(s) for s in inputs if s in expr.free_symbols])
    return ops, data
