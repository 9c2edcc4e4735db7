"""The one place where SymPy expressions become NumPy functions.

Every numeric evaluation in symmle (verification by quadrature, compiled
estimators) goes through :func:`to_function`, which calls
:func:`sympy.lambdify` with an explicit argument order and then checks the
generated function's signature against it, so that a renamed or reordered
symbol cannot silently feed the wrong number into a formula.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import keyword
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp
from sympy.codegen.rewriting import expm1_opt, log1p_opt
from sympy.core.function import ArgumentIndexError

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

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.polygamma(1, self.args[0])

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module_format('scipy.special.psi')}({printer._print(self.args[0])})"

    _scipycode = _numpycode


class _Zeta(sp.Function):
    """The Hurwitz zeta function ``zeta(s, a)``, printed as the ufunc ``scipy.special.zeta``."""

    nargs = 2

    def fdiff(self, argindex: int = 2) -> sp.Expr:
        if argindex != 2:
            raise ArgumentIndexError(self, argindex)  # the order s is an integer constant
        s, a = self.args
        return -s * _Zeta(s + 1, a)

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
    return (
        sp.loggamma(n + 1, evaluate=False)
        - sp.loggamma(k + 1, evaluate=False)
        - sp.loggamma(n - k + 1, evaluate=False)
    )


#: Integers beyond this are not exact in float64, and overflow NumPy's int64 as literals.
_BIG_INTEGER = 2**53


def _minus_one(e: sp.Basic) -> bool:
    """``e`` is a sum of a number and a number times ``exp(a)`` (and other terms): ``expm1`` may apply."""
    if not (e.is_Add and any(a.is_Number for a in e.args)):
        return False
    return any(
        isinstance(a, sp.exp)
        or (a.is_Mul and len(a.args) == 2 and a.args[0].is_Number and isinstance(a.args[1], sp.exp))
        for a in e.args
    )


def _one_plus(e: sp.Basic) -> bool:
    """``e`` is ``log`` of a sum with a number term: ``log1p`` may apply."""
    return isinstance(e, sp.log) and e.args[0].is_Add and any(a.is_Number for a in e.args[0].args)


class erfc_neg(sp.Function):  # noqa: N801 - printed as scipy.special.erfc(-x)
    """``erfc(-x) = 1 + erf(x)``, kept as it is: SymPy evaluates ``erfc(-x)`` to ``2 - erfc(x)``,
    which cancels to 0 where ``erfc(-x)`` is tiny (a probit's ``Phi(eta)`` at ``eta = -10``)."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        return 2 * sp.exp(-(x**2)) / sp.sqrt(sp.pi)

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module_format('scipy.special.erfc')}(-({printer._print(self.args[0])}))"

    _scipycode = _numpycode
    _pythoncode = _numpycode


def _erf_complement(e: sp.Basic) -> bool:
    """``e`` is ``a + b*erf(u)`` with ``a = +-b``, or ``erf(u)**2 - 1``: a difference from 1 of ``erf``."""
    if not e.is_Add or len(e.args) != 2:
        return False
    a, t = sorted(e.args, key=lambda v: not v.is_Number)
    if not a.is_Number:
        return False
    b, f = t.as_coeff_Mul()
    if isinstance(f, sp.erf):
        return a in (b, -b)
    return f.is_Pow and isinstance(f.base, sp.erf) and f.exp == 2 and a == -b


def _to_erfc(e: sp.Basic) -> sp.Basic:
    """``b (1 +- erf(u))`` as ``b erfc(-+u)``, ``erf(u)**2 - 1`` as ``-erfc(u) erfc(-u)``: no cancellation."""
    a, t = sorted(e.args, key=lambda v: not v.is_Number)
    b, f = t.as_coeff_Mul()
    if isinstance(f, sp.erf):
        u = f.args[0]
        # erfc_neg: SymPy would turn erfc(-u) back into 2 - erfc(u) whenever the tree is rebuilt
        return b * erfc_neg(u) if a == b else -b * sp.erfc(u)
    u = f.base.args[0]
    return -b * sp.erfc(u) * erfc_neg(u)


def _stable(expr: sp.Expr) -> sp.Expr:
    """Rewrite for floating point: ``erfc`` for ``1 - erf(u)``, ``expm1``/``log1p`` for ``exp(a) - 1`` and
    ``log(1 + a)``, overflow-prone special functions inside logarithms as ``loggamma``, polygamma as
    ufuncs, and huge integers as floats.

    ``1 - exp(-lam)`` at ``lam = 1e-12`` keeps 4 digits; ``-expm1(-lam)`` keeps them all.  The rewrites
    are SymPy's own (:mod:`sympy.codegen.rewriting`), which NumPy's printers write as ``numpy.expm1``
    and ``numpy.log1p``.
    """
    # `sqrt(100000000000000000001)` would reach NumPy as a Python int beyond int64: an object array
    big = {i: sp.Float(i, 20) for i in expr.atoms(sp.Integer) if abs(i) > _BIG_INTEGER}
    if big:
        expr = expr.xreplace(big)
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], (sp.gamma, sp.factorial)),
        # unevaluated: SymPy turns loggamma(k + 1) of an integer k back into log(gamma(k + 1))
        lambda e: sp.loggamma(
            e.args[0].args[0] + (1 if isinstance(e.args[0], sp.factorial) else 0), evaluate=False
        ),
    )
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sp.binomial),
        lambda e: _log_binomial(*e.args[0].args),
    )
    # only on sums of a number and (multiples of) exponentials: SymPy's rewrite visits every Add (slow on
    # large expressions), and would also trade ``-1 + a*exp(b)`` for a longer form gaining nothing
    expr = expr.replace(_erf_complement, _to_erfc)
    expr = expr.replace(_minus_one, expm1_opt)
    expr = expr.replace(_one_plus, log1p_opt)
    return expr.replace(lambda e: isinstance(e, sp.polygamma), lambda e: _polygamma(*e.args))


@functools.lru_cache(maxsize=1)
def _taken() -> frozenset[str]:
    """Names the generated code may use: Python's, and those of the modules it is given."""
    import scipy.special

    return frozenset(
        {*dir(builtins), *vars(np), *vars(scipy.special), *vars(math), "numpy", "scipy", "math", "mpmath"}
    )


def _plain(args: Sequence[sp.Symbol]) -> bool:
    """Whether ``args`` can be the generated function's parameters as they are.

    Then ``lambdify`` need not replace each by a Dummy (``dummify``), which
    rebuilds the whole expression and is half the cost of compiling a small
    formula: every argument is a Symbol named by an identifier that is no
    keyword and no name the generated code may use, and no two share a name.
    """
    names = [getattr(a, "name", None) for a in args]
    return (
        all(isinstance(a, sp.Symbol) and not isinstance(a, sp.Dummy) for a in args)
        and all(isinstance(n, str) and n.isidentifier() and not keyword.iskeyword(n) for n in names)
        and len(set(names)) == len(names)
        and not set(names) & _taken()
    )


def to_function(
    args: Sequence[sp.Symbol], expr: sp.Expr, *, modules: Sequence[str] = MODULES, cse: bool = False
) -> Callable[..., Any]:
    """Compile ``expr`` into a numeric function of ``args`` (in that order).

    Parameters
    ----------
    args : sequence of Symbol
        Positional arguments of the generated function.
    expr : Expr
        Expression whose free symbols are all in ``args`` (or a tuple of them:
        the function returns a tuple).
    cse : bool, optional
        Compute common subexpressions once (for a tuple of related expressions).

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
    fn = sp.lambdify(
        args, _stable(sp.sympify(expr)), modules=list(modules), dummify=not _plain(args), cse=cse
    )
    n = len(inspect.signature(fn).parameters)
    if n != len(args):
        raise ValueError(f"lambdify produced {n} arguments for {len(args)} symbols")

    def numeric(*values: Any) -> Any:
        # NumPy scalars overflow to inf (as arrays do) where Python floats raise OverflowError
        return fn(*[np.float64(v) if type(v) is float else v for v in values])

    numeric.__doc__ = fn.__doc__
    return numeric
