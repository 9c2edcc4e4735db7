"""Matrix expressions as NumPy code: the printer of compiled vector models.

SymPy's :class:`~sympy.printing.numpy.NumPyPrinter` prints scalar formulas but
not the matrix expressions of the vector pipeline (``Determinant``, ``Trace``,
``KroneckerProduct``, entrywise functions, the duplication matrix of
:mod:`symmle.symbolic.matrix_information`).  :class:`MatrixPrinter` extends it
(and :class:`MatrixSciPyPrinter` SciPy's, for special functions) so that every
node becomes a call of the helpers of :mod:`symmle.numbers._vector_runtime`,
which work on *stacks* of matrices: the same printed formula estimates one data
set or ``R`` replicates of a simulation at once.

- ``Inverse(A) @ B`` becomes ``mx_solve(A, B)`` and ``B @ Inverse(A)`` ``mx_rsolve(B, A)``:
  an explicit inverse only where nothing multiplies it;
- ``log(Determinant(A))`` becomes ``mx_logdet(A)`` (``slogdet``: no overflow of the
  determinant of a large matrix);
- an entrywise function ``f.(M)`` becomes ``(lambda e: f(e))(M)``;
- a scalar times a matrix becomes ``mx_scale(s, M)`` (the scalar may be a stack too).

Every symbol is printed by the name the caller gives it (:func:`print_matrix_code`'s
``names``), which the caller has checked; a symbol without a name, or a node without a
printing rule, raises :class:`~symmle.base.errors.DerivationError` naming it, so no
unknown form is ever guessed or written unvetted.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter, SciPyPrinter

from symmle.base.errors import DerivationError

__all__ = ["MatrixPrinter", "MatrixSciPyPrinter", "print_matrix_code"]


def _is_inverse(e: sp.Basic) -> bool:
    return isinstance(e, sp.Inverse) or (isinstance(e, sp.MatPow) and e.exp == -1)


class _MatrixRules:
    """The printing rules of matrix nodes, mixed into NumPy's and SciPy's printers."""

    _names: dict[sp.Basic, str]
    _lambdas: int

    def _name_of(self, e: sp.Basic) -> str:
        try:
            return self._names[e]
        except KeyError:
            raise DerivationError(
                f"cannot write the symbol {e} as code: it is not a value of the plan"
            ) from None

    # --- leaves ---------------------------------------------------------------
    def _print_Symbol(self, e: sp.Symbol) -> str:
        return self._name_of(e)

    _print_Dummy = _print_Symbol

    def _print_MatrixSymbol(self, e: sp.MatrixSymbol) -> str:
        return self._name_of(e)

    def _print_Identity(self, e: sp.Identity) -> str:
        return f"mx_eye({self._print(e.shape[0])})"

    def _print_ZeroMatrix(self, e: sp.ZeroMatrix) -> str:
        return f"mx_zeros({self._print(e.shape[0])}, {self._print(e.shape[1])})"

    def _print_OneMatrix(self, e: sp.OneMatrix) -> str:
        return f"mx_ones({self._print(e.shape[0])}, {self._print(e.shape[1])})"

    def _print_DuplicationMatrix(self, e: sp.Basic) -> str:
        return f"mx_duplication({self._print(e.args[0])})"

    def _explicit(self, e: sp.MatrixBase) -> str:
        rows = ", ".join("[" + ", ".join(self._print(c) for c in row) + "]" for row in e.tolist())
        return f"mx_explicit([{rows}])"

    _print_ImmutableDenseMatrix = _explicit
    _print_MutableDenseMatrix = _explicit
    _print_ImmutableSparseMatrix = _explicit
    _print_MutableSparseMatrix = _explicit

    def _print_BlockMatrix(self, e: sp.BlockMatrix) -> str:
        rows = ", ".join("[" + ", ".join(self._print(b) for b in row) + "]" for row in e.blocks.tolist())
        return f"mx_blocks([{rows}])"

    # --- operations -----------------------------------------------------------
    def _print_MatAdd(self, e: sp.MatAdd) -> str:
        return "(" + " + ".join(self._print(a) for a in e.args) + ")"

    def _print_MatMul(self, e: sp.MatMul) -> str:
        scalars = [a for a in e.args if not getattr(a, "is_Matrix", False)]
        factors = [a for a in e.args if getattr(a, "is_Matrix", False)]
        body = self._chain(factors)
        if not scalars:
            return body
        coeff = sp.Mul(*scalars)
        if coeff == 1:
            return body
        if coeff.is_Number:
            return f"({self._print(coeff)})*{body}"
        return f"mx_scale({self._print(coeff)}, {body})"

    def _chain(self, factors: list[sp.Basic]) -> str:
        """A product of matrices, solving where an inverse multiplies something."""
        if len(factors) == 1:
            return self._print(factors[0])
        at = next((i for i, f in enumerate(factors) if _is_inverse(f)), None)
        if at is None:
            return "(" + " @ ".join(self._print(f) for f in factors) + ")"
        inner = self._print(factors[at].args[0])
        if at == 0:
            return f"mx_solve({inner}, {self._chain(factors[1:])})"
        if at == len(factors) - 1:
            return f"mx_rsolve({self._chain(factors[:-1])}, {inner})"
        return f"({self._chain(factors[:at])} @ mx_solve({inner}, {self._chain(factors[at + 1 :])}))"

    def _print_HadamardProduct(self, e: sp.Basic) -> str:
        return "(" + " * ".join(self._print(a) for a in e.args) + ")"

    def _print_Transpose(self, e: sp.Transpose) -> str:
        return f"mx_t({self._print(e.arg)})"

    def _print_Inverse(self, e: sp.Inverse) -> str:
        return f"mx_inv({self._print(e.arg)})"

    def _print_MatPow(self, e: sp.MatPow) -> str:
        if e.exp == -1:
            return f"mx_inv({self._print(e.base)})"
        if not (e.exp.is_Integer):
            raise DerivationError(f"cannot write the matrix power {e} as code (a non-integer exponent)")
        return f"mx_matpow({self._print(e.base)}, {self._print(e.exp)})"

    def _print_Trace(self, e: sp.Trace) -> str:
        return f"mx_trace({self._print(e.arg)})"

    def _print_Determinant(self, e: sp.Determinant) -> str:
        return f"mx_det({self._print(e.arg)})"

    def _print_log(self, e: sp.log) -> str:
        if isinstance(e.args[0], sp.Determinant):
            return f"mx_logdet({self._print(e.args[0].arg)})"
        return super()._print_log(e)  # type: ignore[misc]

    def _print_KroneckerProduct(self, e: sp.Basic) -> str:
        out = self._print(e.args[0])
        for a in e.args[1:]:
            out = f"mx_kron({out}, {self._print(a)})"
        return out

    def _print_DiagMatrix(self, e: sp.Basic) -> str:
        return f"mx_diag({self._print(e.args[0])})"

    def _print_DiagonalOf(self, e: sp.Basic) -> str:
        return f"mx_diagonal({self._print(e.args[0])})"

    def _print_ElementwiseApplyFunction(self, e: ElementwiseApplyFunction) -> str:
        fn = e.function
        if not isinstance(fn, sp.Lambda):
            d = sp.Dummy("e")
            fn = sp.Lambda(d, fn(d))
        (var,) = fn.variables
        self._lambdas += 1
        local = f"_e{self._lambdas}"
        self._names[var] = local
        try:
            body = self._print(fn.expr)
        finally:
            del self._names[var]
        return f"(lambda {local}: {body})({self._print(e.expr)})"


class MatrixPrinter(_MatrixRules, NumPyPrinter):
    """NumPy's printer with the matrix rules (see the module docstring)."""

    def __init__(self, names: Mapping[sp.Basic, str]) -> None:
        super().__init__({"fully_qualified_modules": True})
        self._names = dict(names)
        self._lambdas = 0


class MatrixSciPyPrinter(_MatrixRules, SciPyPrinter):
    """SciPy's printer with the matrix rules: special functions (``gammaln``, ``polygamma``)."""

    def __init__(self, names: Mapping[sp.Basic, str]) -> None:
        super().__init__({"fully_qualified_modules": True})
        self._names = dict(names)
        self._lambdas = 0


def print_matrix_code(expr: sp.Basic, names: Mapping[sp.Basic, str]) -> tuple[str, set[str]]:
    """``(code, modules)``: ``expr`` as a Python expression on stacks, and the modules it imports.

    NumPy alone where it suffices, SciPy for special functions.

    Raises
    ------
    DerivationError
        A node without a printing rule, or a symbol without a name in ``names``.

    Examples
    --------
    >>> D = sp.Symbol("D", integer=True, positive=True)
    >>> S, m = sp.MatrixSymbol("S", D, D), sp.MatrixSymbol("m", D, 1)
    >>> code, modules = print_matrix_code(sp.log(sp.Determinant(S)) + sp.Trace(m.T * S.I * m),
    ...                                   {S: "v_S", m: "v_m", D: "v_D"})
    >>> code
    'mx_logdet(v_S) + mx_trace((mx_t(v_m) @ mx_solve(v_S, v_m)))'
    """
    last: Exception | None = None
    for cls in (MatrixPrinter, MatrixSciPyPrinter):
        printer = cls(names)
        try:
            text = printer.doprint(expr)
        except PrintMethodNotImplementedError as exc:
            last = exc
            continue
        if "math" in printer.module_imports:
            continue  # scalar-only functions (math.lgamma): not for arrays
        return text, set(printer.module_imports)
    raise DerivationError(f"cannot write {sp.sstr(expr)[:200]} as NumPy/SciPy code ({last})")
