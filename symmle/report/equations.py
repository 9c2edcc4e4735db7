"""The equations of a derivation step as LaTeX ``align`` rows that fit the page.

A step (:class:`~symmle.report.lecture.core.Step`) holds its equations as
``(left-hand side, right-hand side)`` pairs.  :func:`step_latex` writes them as
an ``align`` block in the notation of a lecture note (continuation lines start
with ``&=``, a repeated left-hand side is left out), and :func:`step_aligned` as
the ``aligned`` block that Markdown's ``$$...$$`` takes.  A right-hand side too
wide for the page is broken at its top-level ``+``/``-``; a wide matrix gets its
common denominator named, or is given entry by entry.  Widths are estimated from
the LaTeX itself (:func:`_width`), in characters of normal size.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.report.printer import (
    Notation,
    Printer,
    common_denominator,
    exact,
    function_latex,
    latex,
    with_names,
)

if TYPE_CHECKING:
    from symmle.report.lecture.core import Step

__all__ = ["Abbreviations", "step_aligned", "step_latex"]

#: what a label may hold (as :func:`~symmle.report.lecture.core.label_for` makes them)
_LABEL = re.compile(r"eq:[A-Za-z0-9.:-]+")

# --------------------------------------------------------------------------
# width of LaTeX, for breaking long lines
# --------------------------------------------------------------------------

_SPACING = {
    r"\left",
    r"\right",
    r"\,",
    r"\;",
    r"\!",
    r"\quad",
    r"\qquad",
    r"\notag",
    r"\displaystyle",
}


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
        tex = tex[: m.start()] + "M" * round(_matrix_width(m.group(1))) + tex[m.end() :]
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
            elif cmd in (
                "\\hat",
                "\\mathrm",
                "\\operatorname",
                "\\text",
                "\\sqrt",
                "\\mathbf",
                "\\boldsymbol",
            ):
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
            elif cmd in _OPERATORS:
                w += len(cmd) - 1.0
            else:
                w += 1.0
            continue
        if c in "+-=<>":
            w += 1.8
        else:
            w += 1.0
        k += 1
    return w, k


#: commands printed as their name in roman letters (``\exp`` is three characters wide)
_OPERATORS = {r"\exp", r"\log", r"\max", r"\min", r"\sin", r"\cos", r"\tan", r"\sinh", r"\cosh", r"\tanh"}
_OPERATORS |= {r"\arctan", r"\det", r"\ln"}

#: widest line of an ``align`` block, left-hand side column included (characters; every family's
#: document and a two-component mixture then have no line more than 10 pt too wide)
_LINE = 50.0


def _pack(pieces: list[tuple[str, str]], room: float, first: str = "") -> list[str]:
    """Signed terms ``(sign, tex)`` packed greedily into lines no wider than ``room``."""
    lines: list[str] = []
    current = first
    for sign, tex in pieces:
        lead = not current.strip() or current.endswith("( ")
        piece = (("- " if sign == "-" else "") + tex) if lead else f" {sign} {tex}"
        if current.strip() and not lead and _width(current + piece) > room:
            lines.append(current)
            current = f"{sign} {tex}"
        else:
            current += piece
    lines.append(current)
    return lines


def _layout(expr: sp.Expr, data: Any, room: float) -> list[str]:
    r"""The LaTeX of ``expr`` broken at its top-level ``+``/``-`` if too wide.

    A sum over the data of a long expression is broken inside its
    parentheses (``\Big(`` ... ``\Big)``).
    """
    printer = Printer(with_names(data, expr))
    whole = printer.doprint(expr)
    if _width(whole) <= room:
        return [whole]
    if isinstance(expr, (sp.Add, sp.MatAdd)):
        return _pack(printer.signed_terms(expr), room)
    body, sign = expr, ""
    if body.could_extract_minus_sign() and isinstance(-body, sp.Sum):
        body, sign = -body, "- "
    if isinstance(body, sp.Sum) and len(body.limits) == 1 and isinstance(body.function, sp.Add):
        head = sign + printer.limits(r"\sum", body.limits[0]) + r" \Big( "
        lines = _pack(printer.signed_terms(body.function), room, first=head)
        lines[-1] += r" \Big)"
        return lines
    return [whole]


#: the letters that name abbreviated subexpressions (none of symmle's own: E, H, I, J, L, N, S, T...)
_LETTERS = "ABCDGKMPRUVW"
#: at most this many abbreviations in one block of equations
_MAX_ABBREVIATIONS = 12


class Abbreviations:
    r"""Names for subexpressions too wide to show inline, shared by the rows of one block.

    A row whose pieces are still wider than the line once broken at its
    ``+``/``-`` gets its subexpression of most width (times its occurrences)
    replaced by a letter, ``A`` (or ``A_{i}`` where it depends on the index
    of a sum), and the block closes with ``\text{where } A_{i} = ...``.  Each
    replacement is an identity: :meth:`restore` gives the expression back.

    Parameters
    ----------
    taken : set of str
        Names and LaTeX names already on the page, which no letter may take.
    """

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)
        self.names: dict[sp.Expr, sp.Expr] = {}  # subexpression -> its name
        self.order: list[sp.Expr] = []

    def apply(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the names given so far."""
        for sub in self.order:
            expr = expr.xreplace({sub: self.names[sub]})
        return expr

    def restore(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every name replaced by what it stands for."""
        for sub in reversed(self.order):
            expr = expr.xreplace({self.names[sub]: sub})
        return expr

    def name(self, sub: sp.Expr, index: sp.Symbol | None) -> sp.Expr:
        """The name of ``sub``: a new letter, indexed by ``index`` if it depends on it."""
        if sub in self.names:
            return self.names[sub]
        letter = next((c for c in _LETTERS if c not in self.taken), None)
        k = 1
        while letter is None:
            letter = f"A{k}" if f"A{k}" not in self.taken else None
            k += 1
        self.taken.add(letter)
        named = sp.Indexed(sp.IndexedBase(letter), index) if index is not None else sp.Symbol(letter)
        self.names[sub] = named
        self.order.append(sub)
        return named

    def definitions(self) -> list[tuple[sp.Expr, sp.Expr]]:
        """``(name, subexpression)`` in the order given (a later one may use an earlier name)."""
        return [(self.names[sub], sub) for sub in self.order]


def _bound(expr: sp.Expr) -> set:
    """The indices of the sums and products in ``expr``."""
    return {lim[0] for s in expr.atoms(sp.Sum, sp.Product) for lim in s.limits}


def _widest_part(expr: sp.Expr, data: Any, room: float) -> tuple[sp.Expr, sp.Symbol | None] | None:
    """The subexpression worth a name: most width saved, its definition fitting the line."""
    bound = _bound(expr)
    printer = Printer(with_names(data, expr))
    best, best_score = None, 0.0
    counts = Counter(sp.preorder_traversal(expr))
    for sub, count in counts.items():
        if sub == expr or not isinstance(sub, sp.Expr) or sub.is_Atom:
            continue
        if isinstance(sub, (sp.Indexed, AppliedUndef, MatrixExpr)) or sub.has(sp.Sum, sp.Product):
            continue  # (a matrix cannot be named by a scalar symbol)
        if isinstance(sub, sp.Mul) and sub.could_extract_minus_sign():
            continue
        indices = sub.free_symbols & bound
        if len(indices) > 1:
            continue
        width = _width(printer.doprint(sub))
        if width < 8:
            continue
        if max(_width(line) for line in _layout(sub, data, room - 6)) > room - 6:
            continue  # its definition would not fit either
        score = width * count
        if score > best_score:
            best, best_score = (sub, next(iter(indices)) if indices else None), score
    return best


def _rhs_lines(expr: Any, data: Any, room: float, names: Abbreviations | None = None) -> list[str]:
    r"""The LaTeX of a right-hand side in lines no wider than ``room`` where possible.

    Broken at its top-level ``+``/``-`` (:func:`_layout`); with ``names``, a
    piece still too wide has its widest subexpressions named
    (:class:`Abbreviations`).
    """
    if isinstance(expr, str):
        return [expr]
    expr = exact(sp.sympify(expr))
    if names is not None:
        expr = names.apply(expr)
    lines = _layout(expr, data, room)
    for _ in range(_MAX_ABBREVIATIONS):
        if names is None or len(names.order) >= _MAX_ABBREVIATIONS or max(map(_width, lines)) <= room:
            break
        part = _widest_part(expr, data, room)
        if part is None:
            break
        expr = expr.xreplace({part[0]: names.name(*part)})
        lines = _layout(expr, data, room)
    return lines


def _where_rows(names: Abbreviations, data: Any, column: float) -> list[str]:
    """The rows that define the abbreviations of a block: ``\\text{where } A_{i} &= ...``.

    ``column`` is the width of the block's left-hand sides.
    """
    rows = []
    for k, (name, sub) in enumerate(names.definitions()):
        left = (r"\text{where } " if k == 0 else "") + latex(name, data)
        lines = _layout(sub, data, _LINE - max(column, _width(left)))
        rows.append(f"{left} &= {lines[0]}")
        rows += [r"&\quad " + more for more in lines[1:]]
    return rows


def _entry_label(base: Any, a: int, b: int, data: frozenset) -> str:
    r"""The name of entry (a, b) of the matrix called ``base``.

    ``H_{\mu\lambda}`` for a function of the parameters, else ``\left[\cdots\right]_{12}``.
    """
    if isinstance(base, AppliedUndef) and all(isinstance(s, sp.Symbol) for s in base.args):
        head = function_latex(str(base.func))
        args = base.args
        return f"{head}_{{{latex(args[a], data)} {latex(args[b], data)}}}"
    return rf"\left[{latex(base, data)}\right]_{{{a + 1}{b + 1}}}"


def _entry_rows(
    m: sp.MatrixBase, base: Any, data: Any, room: float, names: Abbreviations | None = None
) -> list[tuple[str, str]]:
    """A wide matrix entry by entry: ``[(label, rhs line), ...]`` (one triangle if symmetric)."""
    out: list[tuple[str, str]] = []
    symmetric = m.is_square and all(m[a, b] == m[b, a] for a in range(m.rows) for b in range(a))
    for a in range(m.rows):
        for b in range(m.cols):
            if symmetric and b < a:
                continue
            label = _entry_label(base, a, b, data)
            # its mirror goes right of the alignment point: the left column stays narrow
            mirror = _entry_label(base, b, a, data) + " = " if symmetric and a != b else ""
            for k, line in enumerate(_rhs_lines(m[a, b], data, room - 8 - _width(mirror), names)):
                out.append((label if k == 0 else "", mirror + line if k == 0 else r"\quad " + line))
    return out


# --------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------

#: a left-hand side wider than this (characters) is not written before the alignment point
_LEFT = 20.0


def _taken(step: Step, data: Any) -> set[str]:
    """The names on the page of a step, which no abbreviation may take."""
    taken: set[str] = set()
    if isinstance(data, Notation):
        taken |= set(data.declared) | set(data.names.values())
    for row in step.lines:
        for side in row:
            if isinstance(side, sp.Basic):
                taken |= {str(s) for s in side.free_symbols}
                taken |= {str(b.label) for b in side.atoms(sp.IndexedBase)}
    return taken


def _rows(step: Step, data: Any, numbered: bool) -> list[str]:
    """The rows of a step's ``align`` block (without the environment)."""
    rows: list[str] = []
    previous: Any = None
    relations = step.relations or ()
    previous_rhs: Any = None
    names = Abbreviations(_taken(step, data))
    force = False  # show the next left-hand side even if it repeats (after rows of another name)
    column = 0.0  # the width of the left-hand sides' column so far: every row's right side starts after it
    for k, (lhs, rhs) in enumerate(step.lines):
        rel = relations[k] if k < len(relations) and relations[k] else "="
        show = lhs is not None and (k == 0 or force or not _same(lhs, previous))
        force = False
        left = latex(lhs, data) if show else ""
        if show and rel == "=" and _width(left) > _LEFT and not isinstance(rhs, (str, sp.MatrixBase)):
            if not isinstance(lhs, str) and _width(latex(rhs, data)) <= _LEFT:
                # a long left-hand side of a short one (an equation "... = 0"): written as "0 = ..."
                lhs, rhs = rhs, lhs
                left = latex(lhs, data)
                force = True
            else:
                # both long: the left-hand side on lines of its own, then "= right-hand side"
                parts = _rhs_lines(lhs, data, _LINE, names)
                rows.append("&" + parts[0])
                rows += [r"&\quad " + more for more in parts[1:]]
                left, force = "", True
        column = max(column, min(_width(left), 14.0) if left else 0.0)
        room = _LINE - column
        wide = isinstance(rhs, sp.MatrixBase) and _width(latex(rhs, data)) > _LINE
        common = common_denominator(rhs) if wide else None
        if common is not None and _width(latex(common[1], data)) <= _LINE - 8:
            # too wide with its common denominator in front: the denominator gets a name
            rows.append(rf"{left} &{rel} \frac{{1}}{{\Delta}} {latex(common[1], data)}")
            rows.append(rf"\text{{where }} \Delta &= {latex(common[0], data)}")
            force = True
        elif wide:
            # too wide for the page: name the entries, then give them one by one
            base = lhs if lhs is not None else (previous_rhs if isinstance(previous_rhs, str) else previous)
            labels = (
                " & ".join(_entry_label(base, a, b, data) for b in range(rhs.cols)) for a in range(rhs.rows)
            )
            grid = r"\begin{pmatrix} " + r" \\ ".join(labels) + r" \end{pmatrix}"
            rows.append(f"{left} &{rel} {grid}")
            for label, line in _entry_rows(rhs, base, data, _LINE, names):
                rows.append(f"{label} &{'=' if label else ''} {line}" if label else f"&{line}")
                # the entries' labels widen the left column, which the definitions below share
                column = max(column, _width(label) if label else 0.0)
            force = True
        else:
            parts = _rhs_lines(rhs, data, room, names)
            rows.append(f"{left} &{rel} {parts[0]}")
            for more in parts[1:]:
                rows.append(r"&\quad " + more)
        if lhs is not None:
            previous = lhs
        previous_rhs = rhs
    where = _where_rows(names, data, column)
    if numbered:
        # one equation number per block, on its last line of equations (not on its definitions)
        rows = [r + r" \notag" for r in rows[:-1]] + rows[-1:] + [r + r" \notag" for r in where]
        return rows
    return rows + where


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        return a == b
    except Exception:  # noqa: BLE001 - comparison of exotic objects
        return False


def step_latex(step: Step, data: Notation | frozenset = frozenset(), *, numbered: bool = True) -> str:
    """The ``align`` block of one step ('' if it has no equations), its number labelled with its label."""
    if not step.lines:
        return ""
    rows = _rows(step, data, numbered)
    label = getattr(step, "label", "")
    if numbered and label and _LABEL.fullmatch(label):
        # on the numbered row: the last one without \notag
        last = max(k for k, r in enumerate(rows) if not r.endswith(r"\notag"))
        rows[last] += rf" \label{{{label}}}"
    return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"


def step_aligned(step: Step, data: Notation | frozenset = frozenset()) -> str:
    """The equations of one step as an ``aligned`` block without numbers, for ``$$...$$`` in Markdown."""
    rows = _rows(step, data, numbered=False)
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
