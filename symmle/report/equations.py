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
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.core.function import AppliedUndef

from symmle.report.printer import Printer, common_denominator, exact, function_latex, latex, with_names

if TYPE_CHECKING:
    from symmle.report.lecture.core import Step

__all__ = ["step_aligned", "step_latex"]

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


def _rhs_lines(expr: Any, data: frozenset, room: float) -> list[str]:
    r"""The LaTeX of a right-hand side, broken at its top-level ``+``/``-`` if too wide.

    A sum over the data of a long expression is broken inside its
    parentheses (``\Big(`` ... ``\Big)``).
    """
    if isinstance(expr, str):
        return [expr]
    expr = exact(sp.sympify(expr))
    printer = Printer(with_names(data, expr))
    whole = printer.doprint(expr)
    if _width(whole) <= room:
        return [whole]
    if isinstance(expr, sp.Add):
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


def _entry_label(base: Any, a: int, b: int, data: frozenset) -> str:
    r"""The name of entry (a, b) of the matrix called ``base``.

    ``H_{\mu\lambda}`` for a function of the parameters, else ``\left[\cdots\right]_{12}``.
    """
    if isinstance(base, AppliedUndef) and all(isinstance(s, sp.Symbol) for s in base.args):
        head = function_latex(str(base.func))
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


def step_aligned(step: Step, data: frozenset = frozenset()) -> str:
    """The equations of one step as an ``aligned`` block without numbers, for ``$$...$$`` in Markdown."""
    rows = _rows(step, data, numbered=False)
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
