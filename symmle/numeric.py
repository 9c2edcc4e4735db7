"""The one place where SymPy expressions become NumPy functions.

Every numeric evaluation in symmle (verification by quadrature, compiled
estimators) goes through :func:`to_function`, which calls
:func:`sympy.lambdify` with an explicit argument order and then checks the
generated function's signature against it, so that a renamed or reordered
symbol cannot silently feed the wrong number into a formula.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["to_function", "MODULES"]

#: Modules used for numeric code: SciPy's special functions first (gammaln,
#: digamma, polygamma, erf...), NumPy for the rest.
MODULES: tuple[str, ...] = ("scipy", "numpy")


class _Psi(sp.Function):
    """The digamma function, printed as the ufunc ``scipy.special.psi``.

    SymPy turns ``digamma(z)`` into ``polygamma(0, z)``, which prints as
    ``scipy.special.polygamma``: a Python wrapper ten times slower per call
    than the ufunc it ends in, for the same numbers.
    """

    nargs = 1

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module_format('scipy.special.psi')}({printer._print(self.args[0])})"

    _scipycode = _numpycode


class _Zeta(sp.Function):
    """The Hurwitz zeta function ``zeta(s, a)``, printed as the ufunc ``scipy.special.zeta``."""

    nargs = 2

    def _numpycode(self, printer: Any) -> str:
        s, a = (printer._print(arg) for arg in self.args)
        return f"{printer._module_format('scipy.special.zeta')}({s}, {a})"

    _scipycode = _numpycode


def _polygamma(n: sp.Expr, z: sp.Expr) -> sp.Expr:
    """``polygamma(n, z)`` as ufuncs: ``psi`` for n = 0, Hurwitz zeta for n >= 1 (as SciPy computes it)."""
    if n == 0:
        return _Psi(z)
    if n.is_Integer and n > 0:
        return (-1) ** (n + 1) * sp.factorial(n) * _Zeta(n + 1, z)
    return sp.polygamma(n, z)


def _log_binomial(n: sp.Expr, k: sp.Expr) -> sp.Expr:
    """``log(binomial(n, k))`` through ``loggamma``, which does not overflow at large ``n``."""
    return sp.loggamma(n + 1, evaluate=False) - sp.loggamma(k + 1, evaluate=False) - sp.loggamma(n - k + 1, evaluate=False)


#: Integers beyond this are not exact in float64, and overflow NumPy's int64 as literals.
_BIG_INTEGER = 2**53


def _stable(expr: sp.Expr) -> sp.Expr:
    """Rewrite overflow-prone special functions inside logarithms, polygamma as ufuncs, and huge integers as floats."""
    # `sqrt(100000000000000000001)` would reach NumPy as a Python int beyond int64: an object array
    big = {i: sp.Float(i, 20) for i in expr.atoms(sp.Integer) if abs(i) > _BIG_INTEGER}
    if big:
        expr = expr.xreplace(big)
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], (sp.gamma, sp.factorial)),
        # unevaluated: SymPy turns loggamma(k + 1) of an integer k back into log(gamma(k + 1))
        lambda e: sp.loggamma(e.args[0].args[0] + (1 if isinstance(e.args[0], sp.factorial) else 0), evaluate=False),
    )
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sp.binomial),
        lambda e: _log_binomial(*e.args[0].args),
    )
    return expr.replace(lambda e: isinstance(e, sp.polygamma), lambda e: _polygamma(*e.args))


def to_function(args: Sequence[sp.Symbol], expr: sp.Expr, *, modules: Sequence[str] = MODULES) -> Callable[..., Any]:
    """Compile ``expr`` into a numeric function of ``args`` (in that order).

    Parameters
    ----------
    args : sequence of Symbol
        Positional arguments of the generated function.
    expr : Expr
        Expression whose free symbols are all in ``args``.

    Returns
    -------
    callable
        ``f(*values)`` evaluating ``expr`` with NumPy/SciPy semantics.

    Raises
    ------
    ValueError
        If ``expr`` has free symbols outside ``args``, or the generated
        signature does not match ``args``.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> float(to_function([x, y], x - y)(5.0, 2.0))
    3.0
    """
    args = list(args)
    extra = sp.sympify(expr).free_symbols - set(args)
    if extra:
        raise ValueError(f"expression has symbols not among the arguments: {sorted(map(str, extra))}")
    fn = sp.lambdify(args, _stable(sp.sympify(expr)), modules=list(modules), dummify=True)
    n = len(inspect.signature(fn).parameters)
    if n != len(args):
        raise ValueError(f"lambdify produced {n} arguments for {len(args)} symbols")

    def numeric(*values: Any) -> Any:
        # NumPy scalars overflow to inf (as arrays do) where Python floats raise OverflowError
        return fn(*[np.float64(v) if type(v) is float else v for v in values])

    numeric.__doc__ = fn.__doc__
    return numeric
