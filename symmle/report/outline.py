"""What the lecture notes say, and in which order, whatever their format.

The LaTeX and Markdown writers (:mod:`symmle.report.latex`,
:mod:`symmle.report.markdown`) both give a derivation's steps under their
section headings and close with the derivation's warnings as notes; this
module is that outline, so that the two documents cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symmle.report.lecture.core import Step
    from symmle.symbolic.derivation import Derivation

__all__ = ["notes", "sections"]


def sections(d: Derivation) -> list[tuple[str, list[Step]]]:
    """Steps grouped under their section headings, in order."""
    out: list[tuple[str, list[Step]]] = []
    for s in d.steps:
        section = getattr(s, "section", "") or s.title
        if not out or out[-1][0] != section:
            out.append((section, []))
        out[-1][1].append(s)
    return out


def notes(d: Derivation) -> list[str]:
    """The closing notes: each of the derivation's warnings as a sentence (not yet escaped)."""
    return [_sentence(w) for w in d.warnings]


def _sentence(text: str) -> str:
    """An engine message as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")
