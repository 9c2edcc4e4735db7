r"""A derivation as Markdown lecture notes (``symmle derive --format markdown``, Jupyter).

The outline (:mod:`symmle.report.outline`) with a ``#`` title, ``##``
sections and, per step, its sentence and its equations as
``$$\begin{aligned}...\end{aligned}$$`` (:mod:`symmle.report.equations`), as
MathJax, KaTeX, GitHub and Jupyter read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symmle.report.equations import step_aligned
from symmle.report.escape import md_plain, md_text
from symmle.report.outline import notes, sections
from symmle.report.printer import notation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["to_markdown"]


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
    data = notation(d)
    parts = [f"# {md_plain(d.model.title)}"]
    for section, steps in sections(d):
        parts.append(f"## {section}")
        for s in steps:
            parts.append(md_text(s.text))
            if s.lines:
                parts.append("$$\n" + step_aligned(s, data) + "\n$$")
            after = getattr(s, "after", "")
            if after:
                parts.append(md_text(after))
    if d.warnings:
        # a warning is free text: a dollar in it is a dollar, not maths
        items = "\n".join(f"- {md_text(note.replace('$', chr(92) + '$'))}" for note in notes(d))
        parts.append("## Notes\n\n" + items)
    return "\n\n".join(parts) + "\n"
