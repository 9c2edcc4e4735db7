"""Wilkinson formulas, vetted before formulaic evaluates them.

A formula is untrusted text, and formulaic evaluates its factors as Python (``eval`` with the
builtins in reach).  :func:`parse_formula` parses it first, by a small lexer and a precedence
parser of its own (formulaic's precedences for the formula, Python's inside calls), and allows
only column names (bare identifiers, or any name in backticks without quotes, backslashes or
double underscores), numbers, the operators ``~ + - * : / ** ^ ( ) ,`` and calls of
:data:`FUNCTIONS`: ``C(col)`` with a contrast among :data:`CONTRASTS` (``Treatment('low')`` is the
one place a quoted string may appear), ``poly(x, k)``, ``center``, ``scale``, ``I(...)`` and the
functions of ``np`` in :data:`NP_FUNCTIONS`.  Anything else (attributes, dunders, other strings,
lambdas, subscripts, keywords, braces, comparisons) is a one-line ``SpecError`` naming the token
and where it is.  formulaic then sees only the formula rebuilt from the vetted tokens
(:attr:`ParsedFormula.text`), evaluated in :data:`FORMULA_CONTEXT`, whose ``np`` holds nothing but
the allowed functions.  A formula is also bounded: its length, its nesting, and the number of
terms it can expand to (``(a + b + ... + z)**5``) are checked before anything is evaluated.

The design itself is built by :mod:`symmle.numbers.design`.
"""

from __future__ import annotations

import keyword
import re
import types
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from symmle.base.errors import DataError, SpecError

__all__ = [
    "CONTRASTS",
    "FORMULA_CONTEXT",
    "FUNCTIONS",
    "MAX_FORMULA_LENGTH",
    "MAX_TERMS",
    "NP_FUNCTIONS",
    "ParsedFormula",
    "categorical_columns",
    "listed",
    "parse_formula",
    "patsy_terms",
    "show",
    "term_bound",
    "vet_formula",
]

#: Functions a formula may call: on the formula's level (``C``, ``poly``, ``center``, ...) and inside
#: a Python factor (the others), as ``name(...)`` or ``np.name(...)`` for those in ``NP_FUNCTIONS``.
FUNCTIONS = ("C", "I", "poly", "center", "scale", "log", "exp", "sqrt", "log2", "log10", "log1p", "abs")
_FORMULA_ONLY = frozenset({"C", "poly", "center", "scale"})
NP_FUNCTIONS = ("log", "exp", "sqrt", "log2", "log10", "log1p", "abs", "expm1")
#: Contrasts of ``C(col, ...)``: ``Treatment`` may name its reference level, ``Treatment('low')``.
CONTRASTS = ("Treatment", "Sum", "Helmert", "Diff")
MAX_FORMULA_LENGTH = 4000
#: Most terms a formula may expand to, counted before the data are read (``(a+b+c)**3`` is 19 at most).
MAX_TERMS = 10_000
_MAX_POLY = 20
_MAX_DEPTH = 100
_BARE = ("log", "exp", "sqrt", "log2", "log10", "log1p", "abs")
#: The namespace formulaic evaluates factors in (ahead of its own): ``np`` holds only the allowed functions.
FORMULA_CONTEXT = {
    "np": types.SimpleNamespace(**{name: getattr(np, name) for name in NP_FUNCTIONS}),
    **{name: getattr(np, name) for name in _BARE},
}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|`(?P<quoted>[^`]*)`|(?P<str>'[^'\\\n]*'|\"[^\"\\\n]*\")|(?P<op>\*\*|[~+\-*:/^(),.]))",
    re.ASCII,  # digits and spaces as Python's source reads them
)


class _Token(NamedTuple):
    kind: str  # num, name, quoted, str, op, end
    text: str
    at: int  # 0-based character


def show(text: str) -> str:
    """``text`` (a token, a column's name) for a one-line message: control characters escaped, cut at 40."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:40])
    return shown + ("..." if len(text) > 40 else "")


def _lex(formula: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(formula):
        if formula[pos:].isspace():
            break
        m = _TOKEN.match(formula, pos)
        if m is None or m.lastgroup is None:
            at = pos + len(formula[pos:]) - len(formula[pos:].lstrip())
            raise SpecError(
                f"formula: '{show(formula[at])}' (character {at + 1}) is not allowed in a formula"
            )
        tokens.append(_Token(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup)))
        pos = m.end()
    return [*tokens, _Token("end", "", len(formula))]


class ParsedFormula(NamedTuple):
    """A vetted formula (see :func:`parse_formula`)."""

    #: The formula rebuilt from its vetted tokens: what formulaic is given.
    text: str
    #: The parsed sides of ``~`` (nodes of :class:`_Parser`).
    lhs: tuple
    rhs: tuple
    #: The columns used as numbers (the response's first).
    numeric: list[str]
    #: The columns used only as the first argument of ``C()``: labels, numbers or text.
    labels: list[str]


class _Parser:
    """A precedence parser of formulas (formulaic's precedences) and of the Python inside calls.

    Nodes: ``("col", name, text)``, ``("num", value)``, ``("factor", width, text)`` (a call: its
    number of columns, ``("C", col)`` for a categorical one; ``text`` as formulaic is given it),
    ``("neg", node)`` and ``("chain", first, [(op, node), ...])`` for operators applied left to
    right (so that a long sum is not a deep tree).
    """

    _BINARY = {"+": 100, "-": 100, "*": 200, "/": 200, ":": 300, "**": 500, "^": 500}
    _PYTHON = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}

    def __init__(self, formula: str, columns: Sequence[str] | None) -> None:
        self.tokens, self.pos, self.depth = _lex(formula), 0, 0
        self.columns = columns
        self.known = None if columns is None else frozenset(columns)
        self.out: list[str] = []
        self.numeric: dict[str, None] = {}
        self.labels: dict[str, None] = {}

    def peek(self, k: int = 0) -> _Token:
        return self.tokens[min(self.pos + k, len(self.tokens) - 1)]

    def fail(self, token: _Token, why: str) -> SpecError:
        what = f"'{show(token.text)}' (character {token.at + 1})" if token.kind != "end" else "the end"
        return SpecError(f"formula: {what} {why}")

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.peek()
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise self.fail(token, f"is not allowed here: expected {text or kind}")
        self.pos += 1
        # formulaic sees these tokens only: a level re-quoted, a column in backticks as written
        quoted = {"str": repr(token.text[1:-1]), "quoted": f"`{token.text}`"}
        self.out.append(quoted.get(token.kind, token.text))
        return token

    def parse(self) -> ParsedFormula:
        if self.peek().text == "~":
            raise self.fail(self.peek(), "has no response on its left: write 'y ~ ...'")
        lhs = self.primary(python=False, response=True)
        self.take("~")
        rhs = self.expression(0, python=False)
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "is not allowed here")
        labels = [c for c in self.labels if c not in self.numeric]
        return ParsedFormula("".join(self.out), lhs, rhs, list(self.numeric), labels)

    def expression(self, floor: int, python: bool) -> tuple:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(self.peek(), f"is nested more than {_MAX_DEPTH} deep")
        table = self._PYTHON if python else self._BINARY
        token = self.peek()
        if token.text in ("+", "-"):  # unary: formulaic's binds as its binary, Python's above * and /
            self.take()
            child = self.expression(3 if python else 101, python)
            first = ("neg", child) if token.text == "-" else child
        else:
            first = self.primary(python)
        rest = []
        while (op := self.peek()).kind == "op" and op.text in table and table[op.text] >= floor:
            self.take()
            if not python and op.text in ("**", "^"):  # a power of terms: a whole number
                k = self.take(kind="num")
                if not k.text.isdigit() or int(k.text) < 1:
                    raise self.fail(k, "is not a power: expected a whole number >= 1")
                rest.append((op.text, ("num", int(k.text))))
            else:
                right_assoc = op.text in ("**", "^")
                rest.append((op.text, self.expression(table[op.text] + (not right_assoc), python)))
        self.depth -= 1
        return ("chain", first, rest) if rest else first

    def primary(self, python: bool, response: bool = False) -> tuple:
        token = self.peek()
        if token.kind == "num" and not response:
            self.take()
            return ("num", float(token.text))
        if token.text == "(" and not response:
            self.take("(")
            node = self.expression(0, python)
            self.take(")")
            return node
        if token.kind == "quoted" or (token.kind == "name" and self.peek(1).text not in ("(", ".")):
            return ("col", self.column(numeric=True), self.out[-1])
        if token.kind == "name":
            return self.call(python, response)
        raise self.fail(token, "is not allowed here" + ("" if token.kind == "end" else ": expected a term"))

    def column(self, numeric: bool) -> str:
        token = self.peek()
        name = token.text
        if token.kind not in ("name", "quoted"):
            raise self.fail(token, "is not a column")
        if keyword.iskeyword(name) or "__" in name or not name.strip() or re.search(r"['\"\\\n]", name):
            raise self.fail(token, "is not allowed as a name")
        if self.known is not None and name not in self.known:
            raise DataError(f"the data have no column '{show(name)}'; columns: {listed(self.columns)}")
        self.take()
        (self.numeric if numeric else self.labels)[name] = None
        return name

    def call(self, python: bool, response: bool) -> tuple:
        start = len(self.out)
        token = self.take(kind="name")
        name = token.text
        if name != "np" and self.peek().text == ".":
            raise self.fail(
                self.peek(), "is not allowed (attribute access); a column name with a dot goes in `backticks`"
            )
        if name == "np":
            self.take(".")
            if self.peek().text not in NP_FUNCTIONS or self.peek().kind != "name":
                raise self.fail(self.peek(), f"is not allowed after 'np.': one of {', '.join(NP_FUNCTIONS)}")
            self.take()
        elif name not in FUNCTIONS:
            raise self.fail(
                token, f"is not an allowed function: one of {', '.join(FUNCTIONS)}, np.{NP_FUNCTIONS[0]}, ..."
            )
        elif name in _FORMULA_ONLY and (python or response):
            raise self.fail(token, "is not allowed " + ("on the left of ~" if response else "inside a call"))
        self.take("(")
        width: object = 1
        if name == "C":
            if self.peek(1).text in ("(", "."):
                raise self.fail(self.peek(), "is not allowed here: C() takes a column")
            width = ("C", self.column(numeric=False))
            if self.peek().text == ",":
                self.take(",")
                self.contrast()
        else:
            self.expression(0, python=True)
            if name == "poly":
                self.take(",")
                k = self.take(kind="num")
                if not k.text.isdigit() or not 1 <= int(k.text) <= _MAX_POLY:
                    raise self.fail(k, f"is not a degree: expected a whole number from 1 to {_MAX_POLY}")
                width = int(k.text)
        self.take(")")
        return ("factor", width, "".join(self.out[start:]))

    def contrast(self) -> None:
        token = self.take(kind="name")
        if token.text not in CONTRASTS:
            raise self.fail(token, f"is not a contrast: one of {', '.join(CONTRASTS)}")
        if token.text == "Treatment" and self.peek().text == "(":  # the reference level
            self.take("(")
            if self.peek().text == "-":
                self.take("-")
            if self.peek().kind not in ("str", "num"):
                raise self.fail(self.peek(), "is not a level: expected a quoted level or a number")
            self.take()
            self.take(")")


def listed(names: Sequence[str], most: int = 30) -> str:
    """Column names for a one-line message: at most ``most`` of them, then how many in all."""
    shown = ", ".join(show(c) for c in list(names)[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def term_bound(node: tuple, widths: dict[str, int], cap: int) -> int:
    """An upper bound on the columns ``node`` expands to (at most ``cap``)."""
    kind = node[0]
    if kind == "factor":
        return widths.get(node[1][1], 1) if isinstance(node[1], tuple) else node[1]
    if kind != "chain":
        return 1 if kind == "col" else 0
    a = term_bound(node[1], widths, cap)
    for op, right in node[2]:
        if op in ("**", "^"):  # a + a^2 + ... + a^k
            power, total = 1, 0
            for _ in range(min(int(right[1]), 64) if a > 1 else 1):
                power = min(power * a, cap)
                total = min(total + power, cap)
            a = total
            continue
        b = term_bound(right, widths, cap)
        a = min({"+": a + b, "-": a, "*": a + b + a * b, ":": a * b, "/": a + a * b}[op], cap)
    return a


def parse_formula(formula: str, columns: Sequence[str] | None = None) -> ParsedFormula:
    """Parse and vet ``formula`` (see the module's docstring); with ``columns``, check its names too.

    Raises
    ------
    SpecError
        One line naming the first token that is not allowed, or a formula too long, too deeply
        nested or expanding to more than :data:`MAX_TERMS` terms.
    DataError
        A name that is not one of ``columns``, listing them.

    Examples
    --------
    >>> f = parse_formula("y ~ x * C(dose) + np.log(z)")
    >>> f.text, f.numeric, f.labels
    ('y~x*C(dose)+np.log(z)', ['y', 'x', 'z'], ['dose'])
    """
    if not isinstance(formula, str) or not formula.strip():
        raise SpecError("formula: empty; write 'y ~ x1 + x2'")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise SpecError(f"formula: longer than {MAX_FORMULA_LENGTH} characters")
    parsed = _Parser(formula, columns).parse()
    if term_bound(parsed.rhs, {}, MAX_TERMS + 1) + 1 > MAX_TERMS:
        raise SpecError(f"formula: expands to more than {MAX_TERMS:,} terms")
    return parsed


def vet_formula(formula: str, columns: Sequence[str]) -> None:
    """Check that ``formula`` is a formula symmle lets formulaic evaluate, on these columns.

    Parameters
    ----------
    formula : str
        ``"response ~ terms"``; see the module's docstring for what may appear.
    columns : sequence of str
        The columns of the data; every name in the formula must be one of them.

    Raises
    ------
    SpecError
        One line naming the first token that is not allowed (and where it is).
    DataError
        A name that is not a column, listing the columns.

    Examples
    --------
    >>> vet_formula("y ~ x + C(dose) + np.log(z)", ["y", "x", "dose", "z"])
    >>> vet_formula("y ~ x.__class__", ["y", "x"])
    Traceback (most recent call last):
        ...
    symmle.SpecError: formula: '.' (character 6) is not allowed (attribute access); ...
    """
    parse_formula(formula, list(columns))


def categorical_columns(node: tuple) -> Iterator[str]:
    """The columns of C() calls in a parsed formula."""
    if node[0] == "factor" and isinstance(node[1], tuple):
        yield node[1][1]
    elif node[0] in ("neg", "chain"):
        for child in [node[1], *(right for _, right in (node[2] if node[0] == "chain" else ()))]:
            yield from categorical_columns(child)


def patsy_terms(node: tuple) -> list[tuple[str, ...]]:
    """The terms of a parsed side of ``~`` in the order patsy's algebra makes them, without the intercept.

    A term is a tuple of its factors' texts (a column, or a call such as ``C(dose)``).  statsmodels'
    designs (patsy's) order their terms from this list (see :func:`symmle.numbers.design`).

    Examples
    --------
    >>> patsy_terms(parse_formula("y ~ (a + b + C(d))**2 - b").rhs)
    [('a',), ('C(d)',), ('a', 'b'), ('a', 'C(d)'), ('b', 'C(d)')]
    """
    kind = node[0]
    if kind in ("col", "factor"):
        return [(node[2],)]
    if kind != "chain":
        return []

    def unique(terms):
        seen, out = set(), []
        for t in terms:
            t = tuple(dict.fromkeys(t))
            if frozenset(t) not in seen:
                seen.add(frozenset(t))
                out.append(t)
        return out

    def interact(left, right):
        return unique([a + b for a in left for b in right])

    acc = patsy_terms(node[1])
    for op, right in node[2]:
        if op in ("**", "^"):  # left, then left:left, left:left:left, ... (up to its number of terms)
            left = big = acc
            for _ in range(1, min(len(left), int(right[1]))):
                big = interact(left, big)
                acc = unique(acc + big)
            continue
        terms = patsy_terms(right)
        if op == "+":
            acc = unique(acc + terms)
        elif op == "-":
            acc = [t for t in acc if frozenset(t) not in {frozenset(r) for r in terms}]
        elif op == ":":
            acc = interact(acc, terms)
        elif op == "*":
            acc = unique(acc + terms + interact(acc, terms))
        else:  # "/": the left side's factors together, interacted with the right
            acc = unique(acc + interact([tuple(f for t in acc for f in t)], terms))
    return acc
