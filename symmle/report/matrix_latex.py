r"""Matrix expressions in LaTeX, in the notation of a lecture note on vectors and matrices.

:class:`MatrixPrinting` is the part of :class:`~symmle.report.printer.Printer` that writes SymPy's matrix
expressions: matrix symbols in bold (:func:`bold`: ``\mathbf{x}``, ``\boldsymbol{\mu}``,
``\hat{\boldsymbol{\Sigma}}``), ``^{\top}`` for the transpose, ``^{-1}`` for the inverse, ``|\cdot|`` for the
determinant, ``\operatorname{tr}`` for a trace (none for the trace of a 1 x 1 product, which is its entry),
scalar coefficients before the matrices (``\frac{1}{N} \mathbf{T}_{1}``), ``\mathbf{1}`` and
``\mathbf{1}^{\top}`` for the columns and rows of ones, ``\mathbf{I}`` and ``\mathbf{0}``,
``\operatorname{diag}(\mathbf{v})``, ``\operatorname{dg}(\mathbf{M})`` (the column of a diagonal),
``\otimes`` and ``\circ``, and a scalar function applied entrywise to a vector as the function of the vector
(``\log(\mathbf{x})``, ``\psi(\mathbf{a})``), its powers as Hadamard powers (``\mathbf{s}^{\circ -1}``).
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.special import OneMatrix

from symmle.symbolic.matrix_information import DuplicationMatrix

__all__ = ["MatrixPrinting", "bold", "is_one_by_one"]

_ACCENT = re.compile(r"^(\\(?:hat|tilde|bar))\{")


def _split_head(tex: str) -> tuple[str, str]:
    """``tex`` split before its first top-level sub- or superscript."""
    depth = 0
    for k, ch in enumerate(tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0 and ch in "_^" and k > 0:
            return tex[:k], tex[k:]
    return tex, ""


def bold(tex: str) -> str:
    r"""The LaTeX name of a symbol in bold, its accent, sub- and superscripts outside.

    >>> bold("x"), bold(r"\mu"), bold(r"\hat{\Sigma}"), bold("T_{1}")
    ('\\mathbf{x}', '\\boldsymbol{\\mu}', '\\hat{\\boldsymbol{\\Sigma}}', '\\mathbf{T}_{1}')
    >>> bold(r"\tilde{s}^{2}")
    '\\tilde{\\mathbf{s}}^{2}'
    """
    m = _ACCENT.match(tex)
    if m:
        depth, start = 0, m.end(1)
        for k in range(start, len(tex)):
            depth += {"{": 1, "}": -1}.get(tex[k], 0)
            if depth == 0:  # the accent's argument is tex[start + 1 : k]
                return f"{m.group(1)}{{{bold(tex[start + 1 : k])}}}{tex[k + 1 :]}"
    head, tail = _split_head(tex)
    if head.isascii() and head.isalpha():
        return rf"\mathbf{{{head}}}{tail}"
    return rf"\boldsymbol{{{head}}}{tail}"


def is_one_by_one(m: sp.Basic) -> bool:
    """Whether ``m`` is a matrix expression of shape 1 x 1."""
    return isinstance(m, MatrixExpr) and m.shape == (1, 1)


def _atomic(m: sp.Basic) -> bool:
    """Matrix expressions written without parentheses before a superscript or beside a factor."""
    return isinstance(m, (sp.MatrixSymbol, sp.Identity, sp.ZeroMatrix, OneMatrix, DuplicationMatrix)) or (
        getattr(m, "is_MatrixSymbol_like", False)
    )


class MatrixPrinting:
    """LaTeX of matrix expressions (a mixin of :class:`~symmle.report.printer.Printer`).

    The printer sets ``_aliases`` (symbols written as given LaTeX) and ``_entrywise`` (the dummies of
    entrywise functions being written, whose powers are Hadamard powers).
    """

    _aliases: dict
    _entrywise: set

    def differential(self, expr: sp.Basic) -> str:
        r"""``d(X)`` as ``\mathrm{d}`` and ``X`` as printed, a prime for a second direction (``d(X)'``)."""
        base = self._print(expr.base)  # type: ignore[attr-defined]
        if not expr.name.endswith("'"):
            return rf"\mathrm{{d}}{base}"
        return rf"\mathrm{{d}}{{{base}}}^{{\prime}}" if "^" in base else rf"\mathrm{{d}}{base}^{{\prime}}"

    def _print_MatrixSymbol(self, expr, style="plain"):
        return bold(self.symbol(expr.name))  # type: ignore[attr-defined]

    def _superscript(self, m: sp.Basic, sup: str) -> str:
        tex = self._print(m)  # type: ignore[attr-defined]
        if _atomic(m):
            return f"{{{tex}}}^{{{sup}}}" if "^" in tex else f"{tex}^{{{sup}}}"
        return rf"\left({tex}\right)^{{{sup}}}"

    def _print_Transpose(self, expr):
        return self._superscript(expr.arg, r"\top")

    def _print_Inverse(self, expr):
        return self._superscript(expr.arg, "-1")

    def _print_MatPow(self, expr):
        base, k = expr.args
        return self._superscript(base, self._print(k))  # type: ignore[attr-defined]

    def _print_Determinant(self, expr):
        return rf"\left|{self._print(expr.arg)}\right|"  # type: ignore[attr-defined]

    def _print_Trace(self, expr):
        arg = expr.arg
        inner = self._print(arg)  # type: ignore[attr-defined]
        if is_one_by_one(arg):
            return rf"\left({inner}\right)" if isinstance(arg, sp.MatAdd) else inner
        return rf"\operatorname{{tr}}\left({inner}\right)"

    def _factor(self, m: sp.Basic, last: bool) -> str:
        """A factor of a matrix product, in parentheses where it is a sum (or a sum over the data)."""
        tex = self._print(m)  # type: ignore[attr-defined]
        if isinstance(m, (sp.MatAdd, KroneckerProduct)) or (getattr(m, "is_DataSum", False) and not last):
            return rf"\left({tex}\right)"
        return tex

    def _print_MatMul(self, expr):
        coeff, mats = expr.as_coeff_matrices()
        sign = ""
        if coeff.could_extract_minus_sign():
            sign, coeff = "- ", -coeff
        body = " ".join(self._factor(m, k == len(mats) - 1) for k, m in enumerate(mats))
        if coeff == 1:
            return sign + body
        ctex = self._print(coeff)  # type: ignore[attr-defined]
        if isinstance(coeff, sp.Add):
            ctex = rf"\left({ctex}\right)"
        return f"{sign}{ctex} {body}"

    def signed_matrix_terms(self, expr: sp.MatAdd) -> list[tuple[str, str]]:
        """The terms of a matrix sum as ``(sign, LaTeX)``, those with a minus sign last."""
        out = []
        for t in sorted(expr.args, key=sp.default_sort_key):
            coeff = t.as_coeff_matrices()[0] if isinstance(t, sp.MatMul) else sp.S.One
            if coeff.could_extract_minus_sign():
                out.append(("-", self._print(sp.MatMul(-coeff, *t.as_coeff_matrices()[1]))))  # type: ignore[attr-defined]
            else:
                out.append(("+", self._print(t)))  # type: ignore[attr-defined]
        return [p for p in out if p[0] == "+"] + [p for p in out if p[0] == "-"]

    def _print_MatAdd(self, expr):
        tex = ""
        for k, (sign, body) in enumerate(self.signed_matrix_terms(expr)):
            if k == 0:
                tex = ("- " if sign == "-" else "") + body
            else:
                tex += f" {sign} {body}"
        return tex

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if rows == 1 and cols == 1:
            return "1"
        if rows == 1:
            return r"\mathbf{1}^{\top}"
        if cols == 1:
            return r"\mathbf{1}"
        return r"\mathbf{1} \mathbf{1}^{\top}"

    def _print_Identity(self, expr):
        return r"\mathbf{I}"

    def _print_ZeroMatrix(self, expr):
        return r"\mathbf{0}"

    def _print_DiagMatrix(self, expr):
        return rf"\operatorname{{diag}}\left({self._print(expr.args[0])}\right)"  # type: ignore[attr-defined]

    def _print_DiagonalOf(self, expr):
        return rf"\operatorname{{dg}}\left({self._print(expr.arg)}\right)"  # type: ignore[attr-defined]

    def _print_KroneckerProduct(self, expr):
        parts = []
        for a in expr.args:
            tex = self._print(a)  # type: ignore[attr-defined]
            parts.append(rf"\left({tex}\right)" if isinstance(a, (sp.MatAdd, sp.MatMul)) else tex)
        return r" \otimes ".join(parts)

    def _print_HadamardProduct(self, expr):
        parts = []
        for a in expr.args:
            tex = self._print(a)  # type: ignore[attr-defined]
            parts.append(rf"\left({tex}\right)" if isinstance(a, (sp.MatAdd, sp.MatMul)) else tex)
        return r" \circ ".join(parts)

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction):
        """``f.(v)`` as ``f(v)`` (the function of a vector acts entrywise), powers as Hadamard powers."""
        fn, v = expr.function, expr.expr
        var = fn.variables[0]
        tex = self._print(v)  # type: ignore[attr-defined]
        if not (_atomic(v) or isinstance(v, sp.Transpose)):  # log(x - 1), not log x - 1
            tex = rf"\left({tex}\right)"
        self._aliases[var] = tex
        self._entrywise.add(var)
        try:
            return self._print(fn.expr)  # type: ignore[attr-defined]
        finally:
            self._aliases.pop(var, None)
            self._entrywise.discard(var)

    def hadamard_power(self, base: sp.Basic, exp: sp.Basic) -> str | None:
        """``v^{\\circ k}`` for a power of the variable of an entrywise function being written."""
        if base in self._entrywise:
            alias = self._aliases[base]
            alias = f"{{{alias}}}" if "^" in alias else alias
            return f"{alias}^{{\\circ {self._print(exp)}}}"  # type: ignore[attr-defined]
        return None
