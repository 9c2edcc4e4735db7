"""Text that is safe to show: no control characters, no terminal escape sequences.

Names and titles come from spec files and data, so they may hold ANSI
colour codes, a carriage return that overwrites a line, a bell, NUL, or
bidirectional overrides that make a line read differently than it is.
:func:`printable` removes them all; the command line passes every line it
prints through it, and so do the ``to_text`` methods of the results.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["printable"]

#: ANSI/ECMA-48 escape sequences, whole, so that no "[31m" is left behind
_ESCAPES = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?               # CSI: colours, cursor moves, erasing
    | \x9b[0-?]*[ -/]*[@-~]?                 # the same, 8-bit
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # OSC: window title, hyperlinks
    | [\x1b][PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC strings
    | [\x90\x98\x9d\x9e\x9f][^\x1b\x9c]*(?:\x1b\\|\x9c)?
    | \x1b[ -/]*[0-~]?                       # any other escape
    """,
    re.VERBOSE,
)

#: control, format (bidi overrides, zero-width), surrogate, unassigned, line and paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


def printable(text: str, *, newlines: bool = True) -> str:
    r"""``text`` without escape sequences and control characters.

    Parameters
    ----------
    text : str
    newlines : bool, optional
        Keep line feeds and tabs (the default); otherwise they become spaces.

    Returns
    -------
    str
        Only characters that a terminal shows as themselves (and, if
        ``newlines``, ``\n`` and ``\t``).

    Examples
    --------
    >>> printable("\x1b[31mred\x1b[0m\rover\x00written\n")
    'redoverwritten\n'
    >>> printable("a\nb\tc", newlines=False)
    'a b c'
    """
    text = _ESCAPES.sub("", str(text))
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch if newlines else " ")
        elif ch.isprintable() or unicodedata.category(ch) not in _HIDDEN:
            out.append(ch)
    return "".join(out)
