"""Free text in the documents, escaped for TeX and Markdown.

The sentences of a derivation's steps are words with ``$...$`` maths
(:func:`tex_text`, :func:`md_text`: the words escaped, the maths kept); a
model's title and the engine's warnings are free text, possibly from an
untrusted spec file (:func:`tex_plain`, :func:`tex_title`, :func:`md_plain`:
every character shows as itself, never as a command, a tag or maths).
Characters outside ASCII become what ``pdflatex`` with ``amsmath`` alone can
typeset; control characters are never written.
"""

from __future__ import annotations

import html
import re
import unicodedata

from symmle.base.terminal import printable
from symmle.report.printer import GREEK, greek_letter

__all__ = ["md_plain", "md_text", "tex_plain", "tex_text", "tex_title"]

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "^": r"\^{}",
    "{": r"\{",
    "}": r"\}",
    "~": r"\~{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "–": "--",
    "—": "---",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "é": r"\'{e}",
    "è": r"\`{e}",
    "ö": r"\"{o}",
    "ü": r"\"{u}",
    "…": r"\dots{}",
    "×": r"$\times$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
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


#: combining accents and the TeX accent commands that put them on a letter
_ACCENTS = {
    "\u0301": "'",
    "\u0300": "`",
    "\u0302": "^",
    "\u0308": '"',
    "\u0303": "~",
    "\u0327": "c",
    "\u030c": "v",
    "\u030a": "r",
    "\u0304": "=",
}


def _tex_char(ch: str) -> str:
    """A character outside ASCII in text that pdflatex with amsmath alone can typeset."""
    letter = greek_letter(ch)
    if letter is not None:
        return f"$\\{letter}$" if letter in GREEK else "?"
    base, *marks = unicodedata.normalize("NFKD", ch)
    if ord(base) < 128 and marks and all(c in _ACCENTS for c in marks):
        out = base
        for c in marks:
            out = f"\\{_ACCENTS[c]}{{{out}}}"
        return out
    return "?"


def tex_plain(text: str) -> str:
    """LaTeX of free text: TeX's special characters escaped, no maths, no commands."""
    out = []
    for ch in printable(text):  # a control character is an error in TeX's input
        if ch in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(_tex_char(ch))
    return "".join(out)


def tex_text(text: str) -> str:
    """LaTeX of a sentence with ``$...$`` maths: the words escaped, the maths kept."""
    return "".join(f"${s}$" if m else tex_plain(s) for m, s in _segments(text))


def _one_line(text: str) -> str:
    """A title as one line of printable text: its line breaks would end a heading."""
    return " ".join(printable(text, newlines=False).split())


def tex_title(text: str) -> str:
    """LaTeX of free text such as a model's title: every character as itself, no maths, no commands."""
    return tex_plain(_one_line(text))


def md_plain(text: str) -> str:
    r"""Markdown of free text such as a model's title: every character shows as itself.

    ``<``, ``>`` and ``&`` become HTML entities, so no tag (``<script>``) reaches a
    Markdown renderer such as Jupyter's; Markdown's own marks and ``$`` (maths)
    are escaped with a backslash.

    Examples
    --------
    >>> print(md_plain("</script><script>alert(1)</script> $x$ *b*"))
    &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; \$x\$ \*b\*
    """
    return re.sub(r"([\\`*_\[\]{}|$~#!])", r"\\\1", html.escape(_one_line(text), quote=False))


def md_text(text: str) -> str:
    """Markdown of a sentence with ``$...$`` maths."""
    out = []
    for m, s in _segments(printable(text)):
        if m:
            out.append(f"${s.strip()}$")
        else:
            out.append(re.sub(r"([\\`*_\[\]<>|$])", r"\\\1", s))
    return "".join(out)
