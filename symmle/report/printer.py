"""Rendering of a :class:`~symmle.symbolic.derivation.Derivation`: text, JSON, LaTeX, Markdown.

Rendering only reads a Derivation; it never derives anything.  The LaTeX and
Markdown documents print the derivation's steps (:class:`~symmle.report.steps.Step`)
in the notation of a lecture note: each step is a sentence followed by an
``align`` block whose continuation lines start with ``&=``.

The printer (:class:`_Printer`) is SymPy's LaTeX printer with the lecturer's
conventions: ``x_i`` for the sample element, ``\\sigma^{2}`` for ``sigma2``
(and ``\\sigma^{4}`` for its square), Greek names as Greek, ``\\hat{\\mu}`` for
the estimator symbol ``hat_mu``, ``\\log`` with parentheses, factors such as
:math:`\\frac{1}{N}` written before a sum (:math:`\\frac{1}{N}\\sum_{i=1}^{N} x_i`),
data terms first (:math:`x_i - \\mu`), ``\\psi`` and ``\\psi'`` for the digamma
and trigamma functions, ``\\min_i x_i``/``\\max_i x_i`` for the order
statistics, and ``\\text{--}`` for entries that do not exist.  Floats never
appear: any Float is shown as the rational it stands for.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from symmle.base.terminal import printable

if TYPE_CHECKING:
    from symmle.report.steps import Step
    from symmle.symbolic.derivation import Derivation

__all__ = ["latex", "step_latex", "subscript", "symbol_latex", "to_dict", "to_json", "to_latex", "to_markdown", "to_text"]

SCHEMA = 1

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
    "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega",
}
_ALIASES = {"lam": "lambda", "lamda": "lambda", "th": "theta", "eps": "epsilon"}
#: names whose trailing 2 is a square (a variance), not an index: sigma2 -> sigma^2
_SQUARED = {"sigma", "tau", "s", "omega"}
_FUNCTION_NAMES = {"ell": r"\ell", "E": r"\mathrm{E}", "Var": r"\operatorname{Var}", "Cov": r"\operatorname{Cov}"}


# --------------------------------------------------------------------------
# symbols
# --------------------------------------------------------------------------


def subscript(base: str, index: str) -> str:
    """``base`` with a subscript; a base that has one already is braced (no double subscript)."""
    return ("{" + base + "}" if "_" in base or "^" in base else base) + "_{" + index + "}"


_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def _unicode_latex(name: str) -> str:
    """LaTeX of a non-ASCII name: Greek letters as commands (``λ`` -> ``\\lambda``), anything else by code point."""
    import unicodedata

    out = []
    for ch in name:
        if ch.isascii():
            out.append(ch.replace("_", r"\_"))
            continue
        words = unicodedata.name(ch, "").split()
        if len(words) == 4 and words[:2] == ["GREEK", "SMALL"] and words[2] == "LETTER":
            letter = {"LAMDA": "lambda"}.get(words[3], words[3].lower())
            out.append("\\" + letter + " " if letter in _GREEK else letter)
        elif len(words) == 4 and words[:2] == ["GREEK", "CAPITAL"] and words[2] == "LETTER":
            letter = {"LAMDA": "Lambda"}.get(words[3], words[3].capitalize())
            out.append("\\" + letter + " " if letter in _GREEK_CAPITALS else r"\mathrm{" + letter[0] + "}")
        else:
            out.append(rf"\mathrm{{U{ord(ch):04X}}}")
    return "{" + "".join(out).strip() + "}"


def _symbol_parts(name: str) -> tuple[str, int]:
    """``(base LaTeX, power)`` of a symbol name: ``sigma2`` -> ``(\\sigma, 2)``, ``hat_sigma2`` -> ``(\\hat{\\sigma}, 2)``."""
    if not name.isascii():
        return _unicode_latex(name), 1
    if name.startswith("hat_"):
        base, power = _symbol_parts(name[4:])
        return r"\hat{" + base + "}", power
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", name)
    if m:
        head, digits = m.groups()
        if head == "T":
            return f"T_{{{digits}}}", 1
        base = _ALIASES.get(head, head)
        if digits == "2" and base in _SQUARED:
            return _symbol_parts(head)[0], 2
        return subscript(_symbol_parts(head)[0], digits), 1
    base = _ALIASES.get(name, name)
    if base in _GREEK:
        return "\\" + base, 1
    if "_" in name.strip("_"):
        head, _, tail = name.strip("_").partition("_")
        return subscript(symbol_latex(head), symbol_latex(tail)), 1
    if len(name) == 1:
        return name, 1
    if len(name) == 2 and name.isalpha() and name.islower():
        return f"{name[0]}_{{{name[1]}}}", 1  # xm -> x_m
    return r"\mathrm{" + name.replace("_", r"\_") + "}", 1


def symbol_latex(name: str) -> str:
    """LaTeX for a symbol name: ``sigma2`` -> ``\\sigma^{2}``, ``lam`` -> ``\\lambda``, ``hat_mu`` -> ``\\hat{\\mu}``.

    >>> symbol_latex("hat_sigma2")
    '\\\\hat{\\\\sigma}^{2}'
    """
    base, power = _symbol_parts(name)
    return base if power == 1 else f"{base}^{{{power}}}"


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


def _is_trailing(f: sp.Basic) -> bool:
    """Factors written after their coefficient: sums, logarithms and exponentials."""
    if isinstance(f, (sp.Sum, sp.log, sp.exp)):
        return True
    return isinstance(f, sp.Pow) and isinstance(f.base, sp.Sum) and f.exp.is_positive is True


class _Printer(LatexPrinter):
    """SymPy's LaTeX printer with a lecturer's conventions (see the module docstring)."""

    def __init__(self, data: frozenset = frozenset()) -> None:
        super().__init__({"ln_notation": False, "mat_str": "pmatrix", "mat_delim": "", "fold_frac_powers": True})
        self.data = data
        self._aliases: dict[sp.Symbol, str] = {}


    def _print(self, expr, **kwargs):
        if expr is sp.nan:
            return r"\text{--}"  # an entry that does not exist (NaN's own _latex would win otherwise)
        return super()._print(expr, **kwargs)

    # symbols, indexed data, numbers
    def _print_Symbol(self, expr, style="plain"):
        if expr in self._aliases:
            return self._aliases[expr]
        return symbol_latex(expr.name)

    _print_Dummy = _print_Symbol

    def _print_Indexed(self, expr):
        return subscript(symbol_latex(str(expr.base.label)), ",".join(self._print(i) for i in expr.indices))

    def _print_NaN(self, expr):
        return r"\text{--}"

    def _print_Float(self, expr):
        return self._print(sp.nsimplify(expr, rational=True))

    # sums and products: data terms first, coefficients before sums
    def _print_Add(self, expr, order=None):
        terms = self._as_ordered_terms(expr, order=order)
        terms = [t for t in terms if not t.could_extract_minus_sign()] + [t for t in terms if t.could_extract_minus_sign()]
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
        if isinstance(coef, sp.Mul) and any(f.is_Pow and f.base.is_Mul and not f.exp.is_Integer for f in others):
            # a whole root among other factors: numerator and denominator by hand, nothing re-evaluated
            num = [f for f in others if not (f.is_Pow and f.exp.is_negative)]
            den = [f.base if f.exp == -1 else sp.Pow(f.base, -f.exp, evaluate=False) for f in others if f.is_Pow and f.exp.is_negative]
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
        """A leading minus absorbed by a factor that reads better negated: ``-1/(p (p - 1)) -> 1/(p (1 - p))``."""
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
        # logarithms and exponentials before sums, so that no factor reads as inside a sum
        factors = sorted(factors, key=lambda f: isinstance(f, (sp.Sum, sp.Pow)))
        out = []
        for k, f in enumerate(factors):
            tex = self._print(f)
            if isinstance(f, sp.Sum) and k < len(factors) - 1:
                tex = rf"\left({tex}\right)"
            out.append(tex)
        return out

    def _print_Pow(self, expr):
        b, e = expr.base, expr.exp
        if isinstance(b, sp.Symbol) and e.is_Rational and e.is_positive:
            base, power = _symbol_parts(b.name)
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
        i, lo, hi = expr.limits[0]
        f = expr.function
        tex = rf"\sum_{{{self._print(i)}={self._print(lo)}}}^{{{self._print(hi)}}} "
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
        i, lo, hi = expr.limits[0]
        f = expr.function
        inner = self._print(f)
        if isinstance(f, sp.Add):
            inner = rf"\left({inner}\right)"
        return rf"\prod_{{{self._print(i)}={self._print(lo)}}}^{{{self._print(hi)}}} {inner}"

    # functions
    @staticmethod
    def _simple(arg: sp.Basic) -> bool:
        """Arguments that need no growing parentheses."""
        return isinstance(arg, (sp.Symbol, sp.Indexed, sp.Number, sp.NumberSymbol)) or (
            isinstance(arg, AppliedUndef) and str(arg.func) in ("Min", "Max"))

    def _call(self, head: str, arg: sp.Basic, exp=None) -> str:
        inner = self._print(arg)
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
        tex = rf"\exp\left({inner}\right)" if r"\frac" in inner or r"\sum" in inner else f"e^{{{inner}}}"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_Abs(self, expr, exp=None):
        arg = expr.args[0]
        if _data_negative(arg, self.data):
            arg = -arg
        tex = rf"\left|{self._print(arg)}\right|"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    def _print_polygamma(self, expr, exp=None):
        m, z = expr.args
        name = {0: r"\psi", 1: r"\psi'", 2: r"\psi''"}.get(int(m), rf"\psi^{{({self._print(m)})}}") if m.is_Integer else rf"\psi^{{({self._print(m)})}}"
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
        if name == "E" and len(args) == 1:
            tex = rf"\mathrm{{E}}\left[{self._print(args[0])}\right]"
            return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"
        head = _FUNCTION_NAMES.get(name, symbol_latex(name))
        texts = [self._print(a) for a in args]
        if name == "f" and len(texts) > 1:
            inner = texts[0] + "; " + ", ".join(texts[1:])  # f(x; theta): the observation, then the parameters
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
            rf"\partial {self._print(v)}" if n == 1 else rf"\partial {self.parenthesize_super(self._print(v))}^{{{n}}}"
            for v, n in expr.variable_count
        )
        head = _FUNCTION_NAMES.get(str(f.func), symbol_latex(str(f.func)))
        top = r"\partial " + head if dim == 1 else rf"\partial^{{{dim}}} {head}"
        return rf"\frac{{{top}}}{{{below}}}"

    def _print_MatrixBase(self, expr):
        return self._matrix(expr)

    def _matrix(self, m) -> str:
        """A pmatrix; a common denominator of the entries is written in front of it."""
        common = _common_denominator(m)
        if common is not None:
            den, inner = common
            return rf"\frac{{1}}{{{self._print(den)}}} {self._pmatrix(inner)}"
        return self._pmatrix(m)

    def _pmatrix(self, m) -> str:
        rows = [" & ".join(r"\displaystyle " + self._print(m[i, j]) for j in range(m.cols)) for i in range(m.rows)]
        return r"\begin{pmatrix} " + r" \\[1ex] ".join(rows) + r" \end{pmatrix}"

    _print_ImmutableMatrix = _print_MatrixBase
    _print_ImmutableDenseMatrix = _print_MatrixBase
    _print_MutableDenseMatrix = _print_MatrixBase
    _print_Matrix = _print_MatrixBase


def _common_denominator(m: sp.MatrixBase) -> tuple[sp.Expr, sp.ImmutableMatrix] | None:
    """``(D, M D)`` when every non-zero entry of ``M`` has the same denominator ``D``."""
    if m.rows < 2:
        return None
    entries = [m[i, j] for i in range(m.rows) for j in range(m.cols)]
    dens = {sp.fraction(sp.together(e))[1] for e in entries if e != 0 and e is not sp.nan}
    if len(dens) != 1 or dens == {sp.S.One}:
        return None
    (den,) = dens
    return den, sp.ImmutableMatrix(m.rows, m.cols, [e if e is sp.nan else sp.cancel(e * den) for e in entries])


def _exact(expr: sp.Basic) -> sp.Basic:
    """``expr`` with any Float replaced by the rational it stands for (no ``1.0`` in print)."""
    if isinstance(expr, sp.Basic) and expr.has(sp.Float):
        return expr.xreplace({f: sp.nsimplify(f, rational=True) for f in expr.atoms(sp.Float)})
    return expr


def latex(expr: Any, data: frozenset | set = frozenset()) -> str:
    r"""Write a SymPy object as LaTeX in the lecturer's notation.

    See the module docstring for the conventions (``\sigma^{2}`` for
    ``sigma2``, ``\hat{\mu}`` for ``hat_mu``, no floats...).

    Parameters
    ----------
    expr : sympy.Basic or str
        The object; a ``str`` is LaTeX already and is returned as it is.
    data : set of Symbol, optional
        Symbols that stand for observations (besides the indexed ``x_i``);
        terms with them are written first (:math:`x - \mu`).

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
    return _Printer(frozenset(data)).doprint(_exact(sp.sympify(expr)))


# --------------------------------------------------------------------------
# width of LaTeX, for breaking long lines
# --------------------------------------------------------------------------

_SPACING = {r"\left", r"\right", r"\,", r"\;", r"\!", r"\quad", r"\qquad", r"\notag", r"\displaystyle"}


_PMATRIX = re.compile(r"\\begin\{pmatrix\}((?:(?!\\begin\{pmatrix\}).)*?)\\end\{pmatrix\}", re.DOTALL)


def _matrix_width(body: str) -> float:
    """Width of a pmatrix body: the widest cell of each column, plus the spaces between columns."""
    rows = [r for r in re.split(r"\\\\(?:\[[^\]]*\])?", body)]
    cells = [[_width(c) for c in r.split("&")] for r in rows]
    cols = max(len(r) for r in cells)
    return sum(max((r[j] for r in cells if j < len(r)), default=0.0) for j in range(cols)) + 2.0 * cols + 1.0


def _width(tex: str) -> float:
    """A rough printed width of math ``tex``, in characters of normal size."""
    while True:
        m = _PMATRIX.search(tex)
        if not m:
            break
        tex = tex[: m.start()] + "M" * round(_matrix_width(m.group(1))) + tex[m.end():]
    return _group_width(tex, 0)[0]


def _read_group(tex: str, k: int) -> tuple[str, int]:
    """The argument at ``tex[k]``: a braced group or one token; returns (content, next index)."""
    while k < len(tex) and tex[k] == " ":
        k += 1
    if k >= len(tex):
        return "", k
    if tex[k] == "{":
        depth, j = 0, k
        while j < len(tex):
            if tex[j] == "{":
                depth += 1
            elif tex[j] == "}":
                depth -= 1
                if depth == 0:
                    return tex[k + 1 : j], j + 1
            j += 1
        return tex[k + 1 :], len(tex)
    if tex[k] == "\\":
        m = re.match(r"\\[A-Za-z]+|\\.", tex[k:])
        assert m
        return m.group(0), k + len(m.group(0))
    return tex[k], k + 1


def _group_width(tex: str, k: int) -> tuple[float, int]:
    w = 0.0
    while k < len(tex):
        c = tex[k]
        if c in " {}&":
            k += 1
            continue
        if c in "^_":
            arg, k = _read_group(tex, k + 1)
            w += 0.7 * _width(arg)
            continue
        if c == "\\":
            m = re.match(r"\\[A-Za-z]+|\\.", tex[k:])
            assert m
            cmd = m.group(0)
            k += len(cmd)
            if cmd in ("\\frac", "\\binom"):
                a, k = _read_group(tex, k)
                b, k = _read_group(tex, k)
                w += max(_width(a), _width(b)) + 0.5
            elif cmd in ("\\hat", "\\mathrm", "\\operatorname", "\\text", "\\sqrt", "\\mathbf"):
                a, k = _read_group(tex, k)
                w += _width(a) + (1.0 if cmd == "\\sqrt" else 0.0)
            elif cmd in ("\\sum", "\\prod"):
                w += 1.5
            elif cmd in _SPACING or cmd in ("\\begin", "\\end"):
                if cmd in ("\\begin", "\\end"):
                    _, k = _read_group(tex, k)
                w += {"\\quad": 1.0, "\\qquad": 2.0}.get(cmd, 0.0)
            elif cmd == "\\\\":
                w += 0.0
            else:
                w += 1.0
            continue
        if c in "+-=<>":
            w += 1.8
        else:
            w += 1.0
        k += 1
    return w, k


#: widest right-hand side of one line of an ``align`` block (characters)
_LINE = 46.0


def _add_terms(printer: _Printer, expr: sp.Add) -> list[tuple[str, str]]:
    """The terms of ``expr`` as (sign, LaTeX), in the printer's order."""
    terms = printer._as_ordered_terms(expr, order=None)
    terms = [t for t in terms if not t.could_extract_minus_sign()] + [t for t in terms if t.could_extract_minus_sign()]
    out = []
    for k, t in enumerate(terms):
        sign = "-" if t.could_extract_minus_sign() else "+"
        body = -t if sign == "-" else t
        tex = printer._print(body)
        if printer._needs_add_brackets(body):
            tex = rf"\left({tex}\right)"
        out.append((sign, tex))
    return out


def _pack(pieces: list[tuple[str, str]], room: float, first: str = "") -> list[str]:
    """Signed terms ``(sign, tex)`` packed greedily into lines no wider than ``room``."""
    lines: list[str] = []
    current = first
    for k, (sign, tex) in enumerate(pieces):
        lead = not current.strip() or current.endswith("( ")
        piece = (("- " if sign == "-" else "") + tex) if lead else f" {sign} {tex}"
        if current.strip() and not lead and _width(current + piece) > room:
            lines.append(current)
            current = f"{sign} {tex}"
        else:
            current += piece
    lines.append(current)
    return lines


def _rhs_lines(expr: Any, data: frozenset, room: float) -> list[str]:
    r"""The LaTeX of a right-hand side, broken at its top-level ``+``/``-`` if too wide.

    A sum over the data of a long expression is broken inside its
    parentheses (``\Big(`` ... ``\Big)``).
    """
    if isinstance(expr, str):
        return [expr]
    expr = _exact(sp.sympify(expr))
    printer = _Printer(data)
    whole = printer.doprint(expr)
    if _width(whole) <= room:
        return [whole]
    if isinstance(expr, sp.Add):
        return _pack(_add_terms(printer, expr), room)
    body, sign = expr, ""
    if body.could_extract_minus_sign() and isinstance(-body, sp.Sum):
        body, sign = -body, "- "
    if isinstance(body, sp.Sum) and len(body.limits) == 1 and isinstance(body.function, sp.Add):
        i, lo, hi = body.limits[0]
        head = sign + rf"\sum_{{{printer._print(i)}={printer._print(lo)}}}^{{{printer._print(hi)}}} \Big( "
        lines = _pack(_add_terms(printer, body.function), room, first=head)
        lines[-1] += r" \Big)"
        return lines
    return [whole]


def _entry_label(base: Any, a: int, b: int, data: frozenset) -> str:
    r"""The name of entry (a, b) of the matrix called ``base``: ``H_{\mu\lambda}`` or ``\left[\cdots\right]_{12}``."""
    if isinstance(base, AppliedUndef) and all(isinstance(s, sp.Symbol) for s in base.args):
        head = _FUNCTION_NAMES.get(str(base.func), symbol_latex(str(base.func)))
        args = base.args
        return f"{head}_{{{latex(args[a], data)} {latex(args[b], data)}}}"
    return rf"\left[{latex(base, data)}\right]_{{{a + 1}{b + 1}}}"


def _entry_rows(m: sp.MatrixBase, base: Any, data: frozenset, room: float) -> list[tuple[str, str]]:
    """A wide matrix entry by entry: ``[(label, rhs line), ...]`` (one triangle if symmetric)."""
    out: list[tuple[str, str]] = []
    symmetric = m.is_square and all(m[a, b] == m[b, a] for a in range(m.rows) for b in range(a))
    for a in range(m.rows):
        for b in range(m.cols):
            if symmetric and b < a:
                continue
            label = _entry_label(base, a, b, data)
            if symmetric and a != b:
                label += " = " + _entry_label(base, b, a, data)
            for k, line in enumerate(_rhs_lines(m[a, b], data, room - 8)):
                out.append((label if k == 0 else "", line if k == 0 else r"\quad " + line))
    return out


# --------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------


def _data_symbols(d: Derivation) -> frozenset:
    x = d.model.variable
    return frozenset({x, sp.Symbol(x.name.upper()), sp.Symbol(x.name.upper(), real=True), sp.Symbol(x.name.upper(), positive=True)})


def _rows(step: Step, data: frozenset, numbered: bool) -> list[str]:
    """The rows of a step's ``align`` block (without the environment)."""
    rows: list[str] = []
    previous: Any = None
    relations = step.relations or ()
    previous_rhs: Any = None
    force = False  # show the next left-hand side even if it repeats (after rows of another name)
    for k, (lhs, rhs) in enumerate(step.lines):
        rel = relations[k] if k < len(relations) and relations[k] else "="
        show = lhs is not None and (k == 0 or force or not _same(lhs, previous))
        force = False
        left = latex(lhs, data) if show else ""
        room = _LINE - (min(_width(left), 14.0) if show else 0.0)
        common = _common_denominator(rhs) if isinstance(rhs, sp.MatrixBase) and _width(latex(rhs, data)) > _LINE else None
        if common is not None and _width(latex(common[1], data)) <= _LINE - 8:
            # too wide with its common denominator in front: the denominator gets a name
            rows.append(rf"{left} &{rel} \frac{{1}}{{\Delta}} {latex(common[1], data)}")
            rows.append(rf"\text{{where }} \Delta &= {latex(common[0], data)}")
            force = True
        elif isinstance(rhs, sp.MatrixBase) and _width(latex(rhs, data)) > _LINE:
            # too wide for the page: name the entries, then give them one by one
            base = lhs if lhs is not None else (previous_rhs if isinstance(previous_rhs, str) else previous)
            grid = r"\begin{pmatrix} " + r" \\ ".join(
                " & ".join(_entry_label(base, a, b, data) for b in range(rhs.cols)) for a in range(rhs.rows)) + r" \end{pmatrix}"
            rows.append(f"{left} &{rel} {grid}")
            for label, line in _entry_rows(rhs, base, data, _LINE):
                rows.append(f"{label} &{'=' if label else ''} {line}" if label else f"&{line}")
            force = True
        else:
            parts = _rhs_lines(rhs, data, room)
            rows.append(f"{left} &{rel} {parts[0]}")
            for more in parts[1:]:
                rows.append(r"&\quad " + more)
        if lhs is not None:
            previous = lhs
        previous_rhs = rhs
    if numbered:
        # one equation number per block, on its last line
        rows = [r + r" \notag" for r in rows[:-1]] + rows[-1:]
    return rows


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        return a == b
    except Exception:  # noqa: BLE001 - comparison of exotic objects
        return False


def step_latex(step: Step, data: frozenset = frozenset(), *, numbered: bool = True) -> str:
    """The ``align`` block of one step ('' if it has no equations)."""
    if not step.lines:
        return ""
    rows = _rows(step, data, numbered)
    return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"


def _aligned(step: Step, data: frozenset) -> str:
    rows = _rows(step, data, numbered=False)
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


# --------------------------------------------------------------------------
# text: plain words with $...$ maths
# --------------------------------------------------------------------------

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "^": r"\^{}",
    "{": r"\{", "}": r"\}", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''", "é": r"\'{e}", "è": r"\`{e}", "ö": r"\"{o}", "ü": r"\"{u}",
    "…": r"\dots{}", "×": r"$\times$", "≤": r"$\le$", "≥": r"$\ge$",
}


def _segments(text: str) -> list[tuple[bool, str]]:
    """Split text at unescaped ``$``: ``[(is_math, piece), ...]``; ``\\$`` is a literal dollar."""
    out: list[tuple[bool, str]] = []
    buf, math, k = "", False, 0
    while k < len(text):
        c = text[k]
        if c == "\\" and k + 1 < len(text) and text[k + 1] == "$" and not math:
            buf += "$"
            k += 2
            continue
        if c == "$":
            out.append((math, buf))
            buf, math = "", not math
            k += 1
            continue
        buf += c
        k += 1
    out.append((math, buf))
    return [(m, s) for m, s in out if s]


_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0327": "c", "\u030c": "v", "\u030a": "r", "\u0304": "="}


def _tex_char(ch: str) -> str:
    """A character outside ASCII in text that pdflatex with amsmath alone can typeset."""
    name = unicodedata.name(ch, "")
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", name)
    if m:
        letter = {"LAMDA": "lambda"}.get(m.group(2), m.group(2)).lower()
        if m.group(1) == "CAPITAL":
            letter = letter.capitalize()
        return f"$\\{letter}$" if letter in _GREEK else "?"
    base, *marks = unicodedata.normalize("NFKD", ch)
    if ord(base) < 128 and marks and all(c in _ACCENTS for c in marks):
        out = base
        for c in marks:
            out = f"\\{_ACCENTS[c]}{{{out}}}"
        return out
    return "?"


def _tex_plain(text: str) -> str:
    out = []
    for ch in printable(text):  # a control character is an error in TeX's input
        if ch in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(_tex_char(ch))
    return "".join(out)


def _tex_text(text: str) -> str:
    """LaTeX of a sentence with ``$...$`` maths: the words escaped, the maths kept."""
    return "".join(f"${s}$" if m else _tex_plain(s) for m, s in _segments(text))


def _one_line(text: str) -> str:
    """A title as one line of printable text: its line breaks would end a heading."""
    return " ".join(printable(text, newlines=False).split())


def _tex_title(text: str) -> str:
    """LaTeX of free text such as a model's title: every character as itself, no maths, no commands."""
    return _tex_plain(_one_line(text))


def _md_plain(text: str) -> str:
    r"""Markdown of free text such as a model's title: every character shows as itself.

    ``<``, ``>`` and ``&`` become HTML entities, so no tag (``<script>``) reaches a
    Markdown renderer such as Jupyter's; Markdown's own marks and ``$`` (maths)
    are escaped with a backslash.

    Examples
    --------
    >>> print(_md_plain("</script><script>alert(1)</script> $x$ *b*"))
    &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; \$x\$ \*b\*
    """
    return re.sub(r"([\\`*_\[\]{}|$~#!])", r"\\\1", html.escape(_one_line(text), quote=False))


def _md_text(text: str) -> str:
    """Markdown of a sentence with ``$...$`` maths."""
    out = []
    for m, s in _segments(printable(text)):
        if m:
            out.append(f"${s.strip()}$")
        else:
            out.append(re.sub(r"([\\`*_\[\]<>|$])", r"\\\1", s))
    return "".join(out)


# --------------------------------------------------------------------------
# documents
# --------------------------------------------------------------------------


def _estimator_forms(d: Derivation) -> dict[str, Any]:
    """The displayed estimator of each parameter, from the derivation's estimator step."""
    forms: dict[str, Any] = {}
    for s in d.steps:
        if getattr(s, "kind", "") == "estimators":
            for lhs, rhs in s.lines:
                if isinstance(lhs, sp.Symbol) and lhs.name.startswith("hat_") and lhs.name[4:] not in forms:
                    forms[lhs.name[4:]] = rhs
    return forms


def _str(expr: sp.Basic | None) -> str | None:
    if expr is None or expr == sp.nan:
        return None
    return sp.sstr(expr)


def _matrix(m: sp.Matrix | None) -> list[list[str | None]] | None:
    if m is None:
        return None
    return [[_str(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])]


def to_dict(d: Derivation) -> dict[str, Any]:
    r"""Return the schema-1 JSON document of a derivation, as a dict.

    This is ``symmle derive --format json`` (and :meth:`Derivation.to_dict`).

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    dict
        ``schema``, ``model``, ``log_likelihood``,
        ``sufficient_statistics``, ``estimators`` (per parameter: ``kind``,
        ``expr``, ``latex``, ``verified``, and ``equation``/``note`` where
        they apply), ``fisher_information``, ``crlb``, ``steps`` (``title``,
        ``text``, ``latex``) and ``warnings``.  Expressions are SymPy
        strings; ``None`` marks what does not exist.

    Examples
    --------
    >>> from symmle import derive
    >>> doc = to_dict(derive("poisson"))
    >>> doc["sufficient_statistics"]
    {'T1': 'x', 'T2': 'log(factorial(x))'}
    >>> doc["estimators"]["lam"]
    {'kind': 'closed_form', 'expr': 'T1/N', 'latex': '\\frac{1}{N} \\sum_{i=1}^{N} x_{i}', 'verified': True}
    >>> doc["fisher_information"], doc["crlb"]
    ([['1/lam']], [['lam/N']])
    """
    data = _data_symbols(d)
    forms = _estimator_forms(d)
    estimators = {}
    for name, e in d.solutions.items():
        shown = forms.get(name)
        if shown is None and e.expr is not None:
            shown = d.likelihood.explicit(e.expr)
        entry: dict[str, Any] = {"kind": e.kind, "expr": _str(e.expr), "latex": latex(shown, data) if shown is not None and e.expr is not None else None}
        if e.equation is not None:
            entry["equation"] = _str(e.equation)
            entry["equation_latex"] = latex(d.likelihood.explicit(e.equation), data)
        entry["verified"] = e.verified
        if e.note:
            entry["note"] = e.note
        estimators[name] = entry
    return {
        "schema": SCHEMA,
        "model": d.model.to_dict(),
        "log_likelihood": _str(d.log_likelihood),
        "sufficient_statistics": {k: _str(v) for k, v in d.sufficient_statistics.items()},
        "estimators": estimators,
        "fisher_information": _matrix(d.fisher),
        "crlb": _matrix(d.crlb),
        "steps": [{"title": s.title, "text": _tex_text(_joined_text(s)), "latex": step_latex(s, data)} for s in d.steps],
        "warnings": list(d.warnings),
    }


def _sentence(text: str) -> str:
    """An engine message as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _joined_text(s: Step) -> str:

    after = getattr(s, "after", "")
    return s.text + (" " + after if after else "")


def to_json(d: Derivation) -> str:
    """Return :func:`to_dict` as indented JSON text (``symmle derive --format json``).

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    str

    Examples
    --------
    >>> import json
    >>> from symmle import derive
    >>> text = to_json(derive("poisson"))
    >>> json.loads(text)["estimators"]["lam"]["expr"]
    'T1/N'
    """
    return json.dumps(to_dict(d), indent=2)


def _sections(d: Derivation) -> list[tuple[str, list[Step]]]:
    """Steps grouped under their section headings, in order."""
    out: list[tuple[str, list[Step]]] = []
    for s in d.steps:
        section = getattr(s, "section", "") or s.title
        if not out or out[-1][0] != section:
            out.append((section, []))
        out[-1][1].append(s)
    return out


def to_latex(d: Derivation, standalone: bool = False) -> str:
    r"""Return the derivation as LaTeX lecture notes.

    Each section is a ``\subsection*``; each step a sentence followed by an
    ``align`` block; warnings become a closing "Notes" section.

    Parameters
    ----------
    d : Derivation
    standalone : bool, optional
        Return a complete document for ``pdflatex``, which needs only
        ``amsmath``, rather than the body alone.

    Returns
    -------
    str

    Examples
    --------
    >>> from symmle import derive
    >>> tex = to_latex(derive("poisson"))
    >>> [line for line in tex.splitlines() if line.startswith(r"\subsection")][:3]
    ['\\subsection*{The model}', '\\subsection*{Likelihood}', '\\subsection*{Maximising the likelihood}']
    >>> doc = to_latex(derive("poisson"), standalone=True)
    >>> print(doc.splitlines()[1], doc.splitlines()[-1])
    \usepackage{amsmath} \end{document}
    """
    data = _data_symbols(d)
    parts = []
    for section, steps in _sections(d):
        parts.append(f"\\subsection*{{{_tex_text(section)}}}")
        for s in steps:
            para = _tex_text(s.text)
            block = step_latex(s, data)
            after = getattr(s, "after", "")
            chunk = para + ("\n" + block if block else "")
            if after:
                chunk += ("\n" if block else " ") + _tex_text(after)
            parts.append(chunk)
    if d.warnings:
        parts.append("\\subsection*{Notes}\n\\begin{itemize}\n" + "\n".join(f"\\item {_tex_plain(_sentence(w))}" for w in d.warnings) + "\n\\end{itemize}")
    body = "\n\n".join(parts)
    if not standalone:
        return body
    title = _tex_title(d.model.title)
    return (
        "\\documentclass[11pt]{article}\n"
        "\\usepackage{amsmath}\n"

        "\\setlength{\\parindent}{0pt}\n"
        "\\setlength{\\parskip}{0.6em}\n"
        "\\setlength{\\emergencystretch}{2em}\n"
        f"\\title{{Maximum-likelihood estimation:\\\\ {title}}}\n"
        "\\author{Derived with symmle}\n"
        "\\date{}\n"
        "\\begin{document}\n"
        "\\maketitle\n\n" + body + "\n\n\\end{document}\n"
    )


def to_markdown(d: Derivation) -> str:
    r"""Return the derivation as Markdown lecture notes.

    Maths is ``$...$`` inline and ``$$\begin{aligned}...\end{aligned}$$``
    on display, as MathJax, KaTeX, GitHub and Jupyter read it.

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    str
        A ``#`` title (the model's), ``##`` sections, and the steps.

    Examples
    --------
    >>> from symmle import derive
    >>> md = to_markdown(derive("poisson"))
    >>> [line for line in md.splitlines() if line.startswith("#")][:3]
    ['# Poisson distribution', '## The model', '## Likelihood']
    """
    data = _data_symbols(d)
    parts = [f"# {_md_plain(d.model.title)}"]
    for section, steps in _sections(d):
        parts.append(f"## {section}")
        for s in steps:
            parts.append(_md_text(s.text))
            if s.lines:
                parts.append("$$\n" + _aligned(s, data) + "\n$$")
            after = getattr(s, "after", "")
            if after:
                parts.append(_md_text(after))
    if d.warnings:
        parts.append("## Notes\n\n" + "\n".join(f"- {_md_text(_sentence(w).replace('$', chr(92) + '$'))}" for w in d.warnings))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------
# plain text
# --------------------------------------------------------------------------


def _fmt(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def to_text(d: Derivation) -> str:
    r"""Return a readable plain-text summary for the terminal (``symmle derive``).

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    str
        The model, log-density, sufficient statistics, log-likelihood,
        score equations, estimators (with their kind), Fisher information,
        Cramér–Rao bound and warnings, in SymPy's plain notation.

    Examples
    --------
    >>> from symmle import derive
    >>> text = to_text(derive("exponential"))
    >>> print("\n".join(text.splitlines()[:5]))
    Exponential distribution (rate) (exponential)
    <BLANKLINE>
      density      f(x) = lam*exp(-lam*x)
      support      x in [0, oo]
      parameters   lam (positive)
    """
    m = d.model
    lik = d.likelihood
    lines = [f"{m.title} ({m.name})", ""]
    lines.append(f"  density      f({m.variable}) = {_fmt(m.density)}")
    lines.append(f"  support      {m.variable} in [{_fmt(m.support[0])}, {_fmt(m.support[1])}]" + ("  (integers)" if m.discrete else ""))
    lines.append("  parameters   " + ", ".join(f"{q.name} ({q.domain})" for q in m.parameters))
    if m.constants:
        lines.append("  constants    " + ", ".join(f"{q.name} ({q.domain}{'' if q.value is None else ' = ' + _fmt(q.value)})" for q in m.constants))
    lines += ["", "Log-density", f"  log f = {_fmt(lik.log_density)}", ""]
    if lik.statistics:
        lines.append("Sufficient statistics (sums over the N samples)")
        lines += [f"  {s.symbol} = sum_i {_fmt(s.expr.subs(m.variable, sp.Symbol(m.variable.name + '_i')))}" for s in lik.statistics]
        lines.append("")
    lines += ["Log-likelihood", f"  l = {_fmt(d.log_likelihood)}", ""]
    lines.append("Score equations")
    for p, s in zip(d.stationarity.parameters, d.stationarity.score):
        lines.append(f"  dl/d{p} = {_fmt(s)} = 0")
    lines += ["", "Estimators"]
    for name, e in d.solutions.items():
        if e.kind == "closed_form":
            lines.append(f"  {name}_hat = {_fmt(e.expr)}    [closed form{', verified' if e.verified else ''}]")
        elif e.kind == "numeric":
            lines.append(f"  {name}_hat solves {_fmt(e.equation.lhs)} = {_fmt(e.equation.rhs)}    [numeric]")
        elif e.kind == "boundary":
            lines.append(f"  {name}_hat = {_fmt(e.expr)}    [boundary: {e.note}]")
        else:
            lines.append(f"  {name}_hat: {e.note}    [{e.kind}]")
    lines += ["", "Fisher information (per observation)"]
    lines += ["  " + row for row in _matrix_rows(d.fisher)]
    lines += ["", "Cramer-Rao bound (N I)^-1"]
    lines += ["  " + row for row in (_matrix_rows(d.crlb) if d.crlb is not None else ["not available"])]
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return printable("\n".join(lines) + "\n")


def _matrix_rows(m: sp.Matrix) -> list[str]:
    cells = [["n/a" if m[i, j] == sp.nan else _fmt(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])]
    if not cells:
        return ["(none)"]
    width = max(len(c) for row in cells for c in row)
    return ["[ " + "  ".join(c.ljust(width) for c in row) + " ]" for row in cells]
