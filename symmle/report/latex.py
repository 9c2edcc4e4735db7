"""A derivation as LaTeX lecture notes (``symmle derive --format latex``).

The body is the outline (:mod:`symmle.report.outline`) with one
``\\subsection*`` per section and, per step, its sentence followed by its
``align`` block (:mod:`symmle.report.equations`); the standalone document
around it needs nothing but ``amsmath``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symmle.report.equations import step_latex
from symmle.report.escape import tex_plain, tex_text, tex_title
from symmle.report.outline import notes, sections
from symmle.report.printer import notation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["to_latex"]


def to_latex(d: Derivation, standalone: bool = False) -> str:
    r"""Return the derivation as LaTeX lecture notes.

    Each section is a ``\subsection*``; each step a sentence followed by an
    ``align`` block, whose number is labelled (``\label{eq:nll}``) and
    referred to by later sentences (``\eqref{eq:nll}``); warnings become a
    closing "Notes" section.  Long blocks may break across pages.

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
    data = notation(d)
    parts = []
    for section, steps in sections(d):
        parts.append(f"\\subsection*{{{tex_text(section)}}}")
        for s in steps:
            para = tex_text(s.text)
            block = step_latex(s, data)
            after = getattr(s, "after", "")
            chunk = para + ("\n" + block if block else "")
            if after:
                chunk += ("\n" if block else " ") + tex_text(after)
            parts.append(chunk)
    if d.warnings:
        items = "\n".join(f"\\item {tex_plain(note)}" for note in notes(d))
        parts.append("\\subsection*{Notes}\n\\begin{itemize}\n" + items + "\n\\end{itemize}")
    body = "\n\n".join(parts)
    if not standalone:
        return body
    title = tex_title(d.model.title)
    return (
        "\\documentclass[11pt]{article}\n"
        "\\usepackage{amsmath}\n"
        "\\allowdisplaybreaks\n"
        "\\setlength{\\parindent}{0pt}\n"
        "\\setlength{\\parskip}{0.6em}\n"
        "\\setlength{\\emergencystretch}{2em}\n"
        f"\\title{{Maximum-likelihood estimation:\\\\ {title}}}\n"
        "\\author{Derived with symmle}\n"
        "\\date{}\n"
        "\\begin{document}\n"
        "\\maketitle\n\n" + body + "\n\n\\end{document}\n"
    )
