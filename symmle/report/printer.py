"""SymPy expressions as LaTeX in a lecturer's notation: the printer of every report.

:func:`latex` writes a SymPy object with :class:`Printer`, SymPy's LaTeX printer
with the lecturer's conventions: ``x_i`` for the sample element, digits as
subscripts (``s1`` -> ``s_{1}``) except the ``2`` of a variance's name
(``sigma2`` -> ``\\sigma^{2}``, and ``\\sigma^{4}`` for its square; see
:func:`symbol_latex`), Greek names as Greek, the names a spec gives in its
``[latex]`` table (:class:`Notation`), ``\\hat{\\mu}`` for the estimator symbol
``hat_mu`` and ``\\tilde{\\mu}`` for ``tilde_mu``, ``\\log`` with parentheses,
factors such as :math:`\\frac{1}{N}` written before a sum
(:math:`\\frac{1}{N}\\sum_{i=1}^{N} x_i`), data terms first (:math:`x_i - \\mu`),
``\\psi`` and ``\\psi'`` for the digamma and trigamma functions,
``\\min_i x_i``/``\\max_i x_i`` for the order statistics, ``\\mathbf{1}\\{\\dots\\}``
for the indicator ``Indicator(condition)``, and ``\\text{--}`` for
entries that do not exist.  Floats never appear: any Float is shown as the
rational it stands for.  The names of symbols are :mod:`symmle.report.names`
(re-exported here).

Breaking long formulas into lines is :mod:`symmle.report.equations`; the
documents are written by one module per format (:mod:`symmle.report.latex`,
:mod:`~symmle.report.markdown`, :mod:`~symmle.report.json_doc`,
:mod:`~symmle.report.text`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from symmle.report.matrix_latex import MatrixPrinting
from symmle.report.names import (
    GREEK,
    Notation,
    accented,
    function_latex,
    greek_letter,
    model_notation,
    subscript,
    symbol_latex,
    with_names,
)
from symmle.symbolic.matrix_calculus import MatrixDifferential, ScalarDifferential

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = [
    "GREEK",
    "INDICATOR",
    "Notation",
    "Printer",
    "accented",
    "common_denominator",
    "data_symbols",
    "exact",
    "function_latex",
    "greek_letter",
    "latex",
    "model_notation",
    "notation",
    "subscript",
    "symbol_latex",
    "with_names",
]

#: the undefined function that stands for the indicator of its condition: ``\mathbf{1}\{x_i \le \theta\}``
INDICATOR = "Indicator"


# --------------------------------------------------------------------------
# the printer
# --------------------------------------------------------------------------


def _has_data(expr: sp.Basic, data: frozenset) -> bool:
    return bool(expr.atoms(sp.Indexed)) or bool(expr.free_symbols & data)


def _data_negative(expr: sp.Basic, data: frozenset) -> bool:
    """Whether ``expr`` (an Add) reads better negated: its data terms all carry a minus sign."""
    if not isinstance(expr, sp.Add):
        return False
    terms = [t for t in expr.args if _has_data(t, data)]
    return bool(terms) and all(t.could_extract_minus_sign() for t in terms)


def _is_indicator(f: sp.Basic) -> bool:
    return isinstance(f, AppliedUndef) and str(f.func) == INDICATOR


def _is_trailing(f: sp.Basic) -> bool:
    """Factors written after their coefficient: sums, logarithms, exponentials, indicators and traces."""
    if isinstance(f, (sp.Sum, sp.Product, sp.log, sp.exp, sp.Trace, ScalarDifferential)) or _is_indicator(f):
        return True
    return isinstance(f, sp.Pow) and isinstance(f.base, sp.Sum) and f.exp.is_positive is True


class Printer(MatrixPrinting, LatexPrinter):
    """SymPy's LaTeX printer with a lecturer's conventions (see the module docstring).

    Matrix expressions are written by :class:`~symmle.report.matrix_latex.MatrixPrinting`.

    Parameters
    ----------
    notation : Notation or frozenset of Symbol, optional
        How symbols are written (a set: the symbols that stand for
        observations, whose terms are written first).
    """

    def __init__(self, notation: Notation | frozenset | set = frozenset()) -> None:
        super().__init__(
            {"ln_notation": False, "mat_str": "pmatrix", "mat_delim": "", "fold_frac_powers": True}
        )
        self.notation = notation if isinstance(notation, Notation) else Notation(frozenset(notation))
        self.data = self.notation.data
        self._aliases: dict[sp.Symbol, str] = {}
        self._entrywise: set[sp.Symbol] = set()

    def symbol(self, name: str) -> str:
        """The LaTeX of the symbol called ``name``, in this printer's notation."""
        return symbol_latex(name, self.notation)

    def _print(self, expr, **kwargs):
        if expr is sp.nan:
            return r"\text{--}"  # an entry that does not exist (NaN's own _latex would win otherwise)
        if isinstance(expr, (MatrixDifferential, ScalarDifferential)):
            return self.differential(expr)  # (their own _latex would write d s^{2}^{\prime})
        return super()._print(expr, **kwargs)

    # symbols, indexed data, numbers
    def _print_Symbol(self, expr, style="plain"):
        if expr in self._aliases:
            return self._aliases[expr]
        return self.symbol(expr.name)

    _print_Dummy = _print_Symbol

    def _print_Indexed(self, expr):
        return subscript(self.symbol(str(expr.base.label)), ",".join(self._print(i) for i in expr.indices))

    def _print_NaN(self, expr):
        return r"\text{--}"

    def _print_Float(self, expr):
        return self._print(sp.nsimplify(expr, rational=True))

    # sums and products: data terms first, coefficients before sums
    def _ordered_terms(self, expr: sp.Add, order=None) -> list[sp.Expr]:
        """The terms of ``expr`` in SymPy's order, those with a minus sign last."""
        terms = self._as_ordered_terms(expr, order=order)
        minus = [t.could_extract_minus_sign() for t in terms]
        return [t for t, m in zip(terms, minus) if not m] + [t for t, m in zip(terms, minus) if m]

    def signed_terms(self, expr: sp.Add) -> list[tuple[str, str]]:
        """The terms of ``expr`` as ``(sign, LaTeX)`` in the printed order, to break a long sum into lines."""
        if isinstance(expr, sp.MatAdd):
            return self.signed_matrix_terms(expr)
        out = []
        for t in self._ordered_terms(expr):
            sign = "-" if t.could_extract_minus_sign() else "+"
            body = -t if sign == "-" else t
            tex = self._print(body)
            if self._needs_add_brackets(body):
                tex = rf"\left({tex}\right)"
            out.append((sign, tex))
        return out

    def limits(self, head: str, limit: tuple) -> str:
        """The head of a sum or product over one index.

        ``limits(r"\\sum", (i, 1, N))`` -> ``\\sum_{i=1}^{N}``.
        """
        i, lo, hi = limit
        return rf"{head}_{{{self._print(i)}={self._print(lo)}}}^{{{self._print(hi)}}}"

    def _print_Add(self, expr, order=None):
        terms = self._ordered_terms(expr, order=order)
        tex = ""
        for k, term in enumerate(terms):
            if k and term.could_extract_minus_sign():
                tex += " - "
                term = -term
            elif k:
                tex += " + "
            term_tex = self._print(term)
            if self._needs_add_brackets(term):
                term_tex = rf"\left({term_tex}\right)"
            tex += term_tex
        return tex

    def _print_Mul(self, expr):
        flipped = self._absorb_sign(expr)
        if flipped is not None:
            return flipped
        factors = sp.Mul.make_args(expr)
        trailing = [f for f in factors if _is_trailing(f)]
        if not trailing or len(trailing) == len(factors):
            if len(trailing) > 1:
                return " ".join(self._trailing(trailing))
            return super()._print_Mul(expr)
        others = [f for f in factors if not _is_trailing(f)]
        # unevaluated, so that a root kept whole (1/sqrt(2 pi sigma^2)) is not split again
        coef = others[0] if len(others) == 1 else sp.Mul(*others, evaluate=False)

        parts = self._trailing(trailing)
        if isinstance(coef, sp.Mul) and any(
            f.is_Pow and f.base.is_Mul and not f.exp.is_Integer for f in others
        ):
            # a whole root among other factors: numerator and denominator by hand, nothing re-evaluated
            num = [f for f in others if not (f.is_Pow and f.exp.is_negative)]
            den = [
                f.base if f.exp == -1 else sp.Pow(f.base, -f.exp, evaluate=False)
                for f in others
                if f.is_Pow and f.exp.is_negative
            ]
            den.sort(key=lambda f: f.is_Pow and not f.exp.is_Integer)  # x sqrt(2 pi sigma^2)

            top = " ".join(self._print(f) for f in num) or "1"
            bottom = " ".join(self._print(f) for f in den)
            return (rf"\frac{{{top}}}{{{bottom}}}" if den else top) + " " + " ".join(parts)
        if coef == 1:
            return " ".join(parts)

        if coef == -1:
            return "- " + " ".join(parts)
        ctex = self._print(coef)
        if coef.is_Add:
            ctex = rf"\left({ctex}\right)"
        return ctex + " " + " ".join(parts)

    def _absorb_sign(self, expr: sp.Mul) -> str | None:
        """A leading minus absorbed by a factor that reads better negated.

        ``-1/(p (p - 1))`` -> ``1/(p (1 - p))``.
        """
        if not expr.could_extract_minus_sign():
            return None
        for f in sp.Mul.make_args(expr):
            b, e = f.as_base_exp()
            if not (isinstance(b, sp.Add) and e.is_Integer and e.is_odd):
                continue
            numbers = [t for t in b.args if t.is_Number]
            if len(numbers) != 1 or numbers[0] > 0 or _has_data(b, self.data):
                continue
            d = sp.Symbol("zzflip")  # sorts last: p (1 - p)
            new = expr.xreplace({b: -d})
            if new.could_extract_minus_sign() or d not in new.free_symbols:
                continue
            self._aliases[d] = rf"\left({self._print(-b)}\right)"
            return self._print(new)
        return None

    def _trailing(self, factors: list) -> list[str]:
        # logarithms, exponentials and indicators before sums and products, so that no factor reads
        # as inside a sum
        factors = sorted(factors, key=lambda f: isinstance(f, (sp.Sum, sp.Product, sp.Pow)))
        out = []
        for k, f in enumerate(factors):
            tex = self._print(f)
            if isinstance(f, (sp.Sum, sp.Product)) and k < len(factors) - 1:
                tex = rf"\left({tex}\right)"
            elif isinstance(f, sp.Trace) and len(factors) > 1 and not tex.startswith(r"\left("):
                tex = rf"\left({tex}\right)"  # two quadratic forms side by side: each in parentheses
            out.append(tex)
        return out

    def _print_Pow(self, expr):
        b, e = expr.base, expr.exp
        hadamard = self.hadamard_power(b, e)
        if hadamard is not None:
            return hadamard
        if isinstance(b, sp.Symbol) and e.is_Rational and e.is_positive:
            base, power = self.notation.parts(b.name)
            total = power * e
            if power != 1 and total.is_integer:
                return base if total == 1 else f"{base}^{{{total}}}"
        if isinstance(b, sp.Add) and e.is_even and _data_negative(b, self.data):
            return super()._print_Pow(sp.Pow(-b, e, evaluate=False))
        if isinstance(b, sp.Sum) and e.is_positive:
            return rf"\left({self._print(b)}\right)^{{{self._print(e)}}}"
        if e.is_Pow and e.exp == -1 and e.base.is_Symbol and not b.is_Function:
            # x^{1/k}: a fraction in a superscript is hard to read
            return r"{}^{{1/{}}}".format(self.parenthesize(b, PRECEDENCE["Pow"]), self._print(e.base))
        return super()._print_Pow(expr)

    def _print_Sum(self, expr):
        if len(expr.limits) != 1:
            return super()._print_Sum(expr)
        f = expr.function
        tex = self.limits(r"\sum", expr.limits[0]) + " "
        # a sign shared by every term is written outside the sum
        sign = ""
        if all(t.could_extract_minus_sign() for t in sp.Add.make_args(f)):
            sign, f = "- ", -f
        if isinstance(f, sp.Add):
            return sign + tex + rf"\left({self._print(f)}\right)"
        return sign + tex + self._print(f)

    def _print_Product(self, expr):
        if len(expr.limits) != 1:
            return super()._print_Product(expr)
        f = expr.function
        inner = self._print(f)
        if isinstance(f, sp.Add):
            inner = rf"\left({inner}\right)"
        return self.limits(r"\prod", expr.limits[0]) + " " + inner

    # functions
    @staticmethod
    def _simple(arg: sp.Basic) -> bool:
        """Arguments that need no growing parentheses."""
        return isinstance(arg, (sp.Symbol, sp.Indexed, sp.Number, sp.NumberSymbol)) or (
            isinstance(arg, AppliedUndef) and str(arg.func) in ("Min", "Max")
        )

    def _call(self, head: str, arg: sp.Basic, exp=None) -> str:
        inner = self._print(arg)
        if isinstance(arg, sp.Determinant):  # log|S|: the bars are the parentheses
            tex = f"{head} {inner}"
            return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
        tex = f"{head}({inner})" if self._simple(arg) else rf"{head}\left({inner}\right)"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_log(self, expr, exp=None):
        arg = expr.args[0]
        if isinstance(arg, sp.gamma):
            return self._call(r"\log\Gamma", arg.args[0], exp)
        if isinstance(arg, sp.factorial) and self._simple(arg.args[0]):
            tex = rf"\log {self._print(arg.args[0])}!"
            return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
        return self._call(r"\log", arg, exp)

    def _print_gamma(self, expr, exp=None):
        return self._call(r"\Gamma", expr.args[0], exp)

    def _print_exp(self, expr, exp=None):
        inner = self._print(expr.args[0])
        # a fraction in a superscript is too small to read: exp(...) instead
        # a fraction, a sum or a vector in a superscript is too small to read: exp(...) instead
        wide = any(t in inner for t in (r"\frac", r"\sum", r"\mathbf", r"\boldsymbol"))
        tex = rf"\exp\left({inner}\right)" if wide else f"e^{{{inner}}}"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_Abs(self, expr, exp=None):
        arg = expr.args[0]
        if _data_negative(arg, self.data):
            arg = -arg
        tex = rf"\left|{self._print(arg)}\right|"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    def _print_polygamma(self, expr, exp=None):
        m, z = expr.args
        name = rf"\psi^{{({self._print(m)})}}"
        if m.is_Integer:
            name = {0: r"\psi", 1: r"\psi'", 2: r"\psi''"}.get(int(m), name)
        return self._call(name, z, exp)

    def _print_digamma(self, expr, exp=None):
        return self._print_polygamma(sp.Tuple(0, expr.args[0]), exp)

    def _print_trigamma(self, expr, exp=None):
        return self._print_polygamma(sp.Tuple(1, expr.args[0]), exp)

    def _print_loggamma(self, expr, exp=None):
        return self._call(r"\log\Gamma", expr.args[0], exp)

    def _print_Function(self, expr, exp=None):
        if not isinstance(expr, AppliedUndef):
            return super()._print_Function(expr, exp)
        name = str(expr.func)
        args = expr.args
        if name in ("Min", "Max") and len(args) == 1:
            x = self._print(args[0])
            tex = rf"\{name.lower()}_{{i}} " + subscript(x, "i")
            return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
        if name == INDICATOR and len(args) == 1:
            tex = rf"\mathbf{{1}}\left\{{{self._print(args[0])}\right\}}"
            return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
        if name == "E" and len(args) == 1:
            tex = rf"\mathrm{{E}}\left[{self._print(args[0])}\right]"
            return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
        head = function_latex(name)
        texts = [self._print(a) for a in args]
        if name == "f" and len(texts) > 1:
            # f(x; theta): the observation, then the parameters
            inner = texts[0] + "; " + ", ".join(texts[1:])
        else:
            inner = ", ".join(texts)
        tex = f"{head}({inner})"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_Derivative(self, expr):
        f = expr.expr
        if not isinstance(f, AppliedUndef):
            return super()._print_Derivative(expr)
        dim = sum(n for _, n in expr.variable_count)
        below = " ".join(
            rf"\partial {self._print(v)}"
            if n == 1
            else rf"\partial {self.parenthesize_super(self._print(v))}^{{{n}}}"
            for v, n in expr.variable_count
        )
        head = function_latex(str(f.func))
        top = r"\partial " + head if dim == 1 else rf"\partial^{{{dim}}} {head}"
        return rf"\frac{{{top}}}{{{below}}}"

    def _print_MatrixBase(self, expr):
        return self._matrix(expr)

    def _matrix(self, m) -> str:
        """A pmatrix; a common denominator of the entries is written in front of it."""
        common = common_denominator(m)
        if common is not None:
            den, inner = common
            return rf"\frac{{1}}{{{self._print(den)}}} {self._pmatrix(inner)}"
        return self._pmatrix(m)

    def _pmatrix(self, m) -> str:
        rows = [
            " & ".join(r"\displaystyle " + self._print(m[i, j]) for j in range(m.cols)) for i in range(m.rows)
        ]
        return r"\begin{pmatrix} " + r" \\[1ex] ".join(rows) + r" \end{pmatrix}"

    _print_ImmutableMatrix = _print_MatrixBase
    _print_ImmutableDenseMatrix = _print_MatrixBase
    _print_MutableDenseMatrix = _print_MatrixBase
    _print_Matrix = _print_MatrixBase


def common_denominator(m: sp.MatrixBase) -> tuple[sp.Expr, sp.ImmutableMatrix] | None:
    """``(D, M D)`` when every non-zero entry of ``M`` has the same denominator ``D``."""
    if m.rows < 2:
        return None
    entries = [m[i, j] for i in range(m.rows) for j in range(m.cols)]
    dens = {sp.fraction(sp.together(e))[1] for e in entries if e != 0 and e is not sp.nan}
    if len(dens) != 1 or dens == {sp.S.One}:
        return None
    (den,) = dens
    return den, sp.ImmutableMatrix(
        m.rows, m.cols, [e if e is sp.nan else sp.cancel(e * den) for e in entries]
    )


def exact(expr: sp.Basic) -> sp.Basic:
    """``expr`` with any Float replaced by the rational it stands for (no ``1.0`` in print)."""
    if isinstance(expr, sp.Basic) and expr.has(sp.Float):
        return expr.xreplace({f: sp.nsimplify(f, rational=True) for f in expr.atoms(sp.Float)})
    return expr


def latex(expr: Any, data: Notation | frozenset | set = frozenset()) -> str:
    r"""Write a SymPy object as LaTeX in the lecturer's notation.

    See the module docstring for the conventions (``\sigma^{2}`` for
    ``sigma2``, ``\hat{\mu}`` for ``hat_mu``, no floats...).

    Parameters
    ----------
    expr : sympy.Basic or str
        The object; a ``str`` is LaTeX already and is returned as it is.
    data : Notation or set of Symbol, optional
        How symbols are written (:class:`Notation`), or just the symbols that
        stand for observations (besides the indexed ``x_i``), whose terms are
        written first (:math:`x - \mu`).  Without declared names, the
        expression's own symbols decide whether digits are indices.

    Returns
    -------
    str

    Examples
    --------
    >>> mu, s2 = sp.symbols("mu sigma2", positive=True)
    >>> print(latex(sp.log(2*sp.pi*s2)/2))
    \frac{1}{2} \log\left(2 \pi \sigma^{2}\right)
    >>> print(latex(sp.Symbol("hat_lam")), latex(sp.Float(0.5)*mu))
    \hat{\lambda} \frac{\mu}{2}
    >>> x, i, N = sp.IndexedBase("x"), sp.Symbol("i", integer=True), sp.Symbol("N", integer=True)
    >>> print(latex(sp.Sum(x[i], (i, 1, N))/N))
    \frac{1}{N} \sum_{i=1}^{N} x_{i}
    """
    if isinstance(expr, str):
        return expr
    expr = exact(sp.sympify(expr))
    return Printer(with_names(data, expr)).doprint(expr)


def data_symbols(d: Derivation) -> frozenset:
    """The symbols that stand for observations in a derivation's formulas.

    The observation ``x`` and the random variable ``X`` (as in :math:`\\mathrm{E}[X]`).
    """
    x = d.model.variable
    upper = x.name.upper()
    return frozenset({x, sp.Symbol(upper), sp.Symbol(upper, real=True), sp.Symbol(upper, positive=True)})


def notation(d: Derivation) -> Notation:
    """The notation of a derivation's documents (:func:`model_notation` with :func:`data_symbols`)."""
    return model_notation(d.model, data_symbols(d))
