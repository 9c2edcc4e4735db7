"""Matrix expressions as plain strings: parseable by SymPy (the JSON document) or readable (the terminal).

SymPy's own ``sstr`` writes an entrywise function as ``Lambda(_d, log(_d)).(x)`` and a column of ones
as ``1``, which neither parses back nor reads unambiguously.  :func:`parseable` writes every matrix
construct as a call SymPy's namespace knows (``OneMatrix(K, 1)``, ``Identity(D)``, ``DiagMatrix(v)``,
``KroneckerProduct(A, B)``, ``Trace(M)``, ``Determinant(S)``), a transpose as ``.T``, an entrywise
function as ``v.applyfunc(Lambda(t, f(t)))`` and the duplication matrix as ``DuplicationMatrix(D)``
(:class:`~symmle.symbolic.matrix_information.DuplicationMatrix`, which a reader passes in ``locals``
with the model's symbols).  :func:`readable` writes the same for a person: ``log.(x)`` for an entrywise
function, ``Dup(D)`` for the duplication matrix.

>>> import sympy as sp
>>> K = sp.Symbol("K", integer=True, positive=True)
>>> a = sp.MatrixSymbol("a", K, 1)
>>> e = sp.Trace(sp.OneMatrix(1, K) * a.applyfunc(sp.loggamma))
>>> parseable(e)
'Trace(OneMatrix(1, K)*a.applyfunc(Lambda(_d, loggamma(_d))))'
>>> readable(e)
'Trace(OneMatrix(1, K)*loggamma.(a))'
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.printing.str import StrPrinter

from symmle.symbolic.matrix_information import DuplicationMatrix

__all__ = ["parseable", "readable"]


class _Parseable(StrPrinter):
    """``sstr`` with every matrix construct written as a call SymPy parses back."""

    def _print(self, expr, **kwargs) -> str:
        if isinstance(expr, DuplicationMatrix):
            return self.duplication(expr)
        return super()._print(expr, **kwargs)

    def duplication(self, expr: DuplicationMatrix) -> str:
        return f"DuplicationMatrix({self._print(expr.n)})"

    def _print_OneMatrix(self, expr) -> str:
        return f"OneMatrix({self._print(expr.shape[0])}, {self._print(expr.shape[1])})"

    def _print_ZeroMatrix(self, expr) -> str:
        return f"ZeroMatrix({self._print(expr.shape[0])}, {self._print(expr.shape[1])})"

    def _print_Identity(self, expr) -> str:
        return f"Identity({self._print(expr.shape[0])})"

    def _print_DiagMatrix(self, expr) -> str:
        return f"DiagMatrix({self._print(expr.args[0])})"

    def _print_DiagonalOf(self, expr) -> str:
        return f"DiagonalOf({self._print(expr.arg)})"

    def _print_Dummy(self, expr) -> str:
        return "_" + expr.name

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        inner = self._print(expr.expr)
        if not isinstance(expr.expr, sp.MatrixSymbol):
            inner = f"({inner})"
        return f"{inner}.applyfunc({self._print(expr.function)})"


class _Readable(_Parseable):
    """:class:`_Parseable` for a person: ``log.(x)``, ``Dup(D)``."""

    def duplication(self, expr: DuplicationMatrix) -> str:
        return f"Dup({self._print(expr.n)})"

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        fn = expr.function
        var, body = fn.variables[0], fn.expr
        if isinstance(body, sp.Function) and body.args == (var,):
            return f"{type(body).__name__}.({self._print(expr.expr)})"
        return f"({var.name} -> {self._print(body)}).({self._print(expr.expr)})"

    def _print_Dummy(self, expr) -> str:
        return expr.name


def parseable(expr: sp.Basic) -> str:
    """``expr`` as a string SymPy's ``sympify`` parses back (see the module docstring)."""
    return _Parseable({"order": None}).doprint(expr)


def readable(expr: sp.Basic) -> str:
    """``expr`` as a plain string for a person (see the module docstring)."""
    return _Readable({"order": None}).doprint(expr)
