r"""A derivation as Markdown lecture notes (``symmle derive --format markdown``, Jupyter).

The outline (:mod:`symmle.report.outline`) with a ``#`` title, ``##``
sections and, per step, its sentence and its equations as
``$$\begin{aligned}...\end{aligned}$$`` (:mod:`symmle.report.equations`), as
MathJax, KaTeX, GitHub and Jupyter read it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from symmle.report.equations import step_aligned
from symmle.report.escape import md_plain, md_text
from symmle.report.outline import notes, sections
from symmle.report.printer import notation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["to_markdown"]


_REFERENCE = re.compile(r"\$\\eqref\{(eq:[A-Za-z0-9.:-]+)\}\$")


def _numbers(d: Derivation) -> dict[str, int]:
    """Each labelled block of equations and its number, 1, 2, ... in order."""
    labels = [getattr(s, "label", "") for s in d.steps if s.lines]
    return {label: k for k, label in enumerate(labels, start=1) if label}


def _references(text: str, numbers: dict[str, int]) -> str:
    """``$\\eqref{eq:...}$`` as the number of the block it names, ``(3)``."""
    return _REFERENCE.sub(lambda m: f"({numbers[m.group(1)]})" if m.group(1) in numbers else "", text)


def to_markdown(d: Derivation) -> str:
    r"""Return the derivation as Markdown lecture notes.

    Maths is ``$...$`` inline and ``$$\begin{aligned}...\end{aligned}$$``
    on display, as MathJax, KaTeX, GitHub and Jupyter read it.  Each display
    is numbered (``\tag{3}``), and the sentences refer to it as ``(3)``.

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
    data = notation(d)
    numbers = _numbers(d)
    parts = [f"# {md_plain(d.model.title)}"]
    for section, steps in sections(d):
        parts.append(f"## {section}")
        for s in steps:
            parts.append(md_text(_references(s.text, numbers)))
            if s.lines:
                tag = numbers.get(getattr(s, "label", ""))
                tagged = f" \\tag{{{tag}}}" if tag is not None else ""
                parts.append("$$\n" + step_aligned(s, data) + tagged + "\n$$")
            after = getattr(s, "after", "")
            if after:
                parts.append(md_text(_references(after, numbers)))
    if d.warnings:
        # a warning is free text: a dollar in it is a dollar, not maths
        items = "\n".join(f"- {md_text(note.replace('$', chr(92) + '$'))}" for note in notes(d))
        parts.append("## Notes\n\n" + items)
    return "\n\n".join(parts) + "\n"
