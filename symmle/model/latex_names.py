r"""The LaTeX names a spec may give its symbols (its ``[latex]`` table), checked to be safe.

A spec's ``[latex]`` table (``s2 = "s_2"``) says how the lecture notes write a
declared name.  The text is untrusted and ends up inside a document that a user
compiles, so it is not LaTeX in general but a small, inert subset of math mode:
ASCII letters and digits, ``_`` and ``^`` (each once per atom, each with an
argument), balanced braces, and backslash commands from :data:`COMMANDS`: Greek
letters, accents and math fonts that take one argument, and a few symbols.
Nothing else passes: no ``\input``, ``\write18``, ``\def``, ``\catcode``, no
``^^`` character codes, no ``%``, ``$``, ``#``, ``&``, spaces or control
characters, and no command that needs a package beyond ``amsmath``.
:func:`latex_name_error` says what is wrong with a name, or ``None``; the spec
reader refuses a bad name with it, and the printer ignores any name that fails
it (a :class:`~symmle.model.spec.Model` built by hand is not trusted either).
"""

from __future__ import annotations

import re

__all__ = ["COMMANDS", "MAX_LATEX_NAME", "latex_name_error"]

#: the longest LaTeX name accepted (characters)
MAX_LATEX_NAME = 80
_MAX_DEPTH = 6

_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi "
    "varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
).split()
#: commands that take one argument: accents and math fonts (all in LaTeX or amsmath)
_UNARY = (
    "hat widehat tilde widetilde bar overline underline check breve dot ddot vec acute grave mathring "
    "mathrm mathit mathbf mathsf mathtt mathcal operatorname"
).split()
#: commands that stand alone
_SYMBOLS = ("ell imath jmath hbar partial infty nabla star ast dagger prime", *_GREEK)
#: every command a LaTeX name may use, and how many arguments it takes
COMMANDS: dict[str, int] = {
    **{c: 0 for group in _SYMBOLS for c in group.split()},
    **{c: 1 for c in _UNARY},
}

_TOKEN = re.compile(r"\\[A-Za-z]+|[A-Za-z0-9{}_^]")


def _tokens(text: str) -> list[str] | str:
    """The tokens of ``text``, or the reason it has a character outside the subset."""
    out: list[str] = []
    k = 0
    while k < len(text):
        m = _TOKEN.match(text, k)
        if m is None:
            ch = text[k]
            shown = repr(ch) if ch.isprintable() and ch != " " else f"U+{ord(ch):04X}"
            if ch == "\\":
                return "a backslash must start a command of letters"
            return f"character {shown} at position {k + 1} is not allowed"
        if m.group(0).startswith("\\") and m.group(0)[1:] not in COMMANDS:
            return f"command {m.group(0)} is not allowed"
        out.append(m.group(0))
        k = m.end()
    return out


class _Parser:
    """A recursive reader of the subset: atoms, each with at most one ``_`` and one ``^``."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.k = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.k] if self.k < len(self.tokens) else None

    def sequence(self, depth: int) -> str | None:
        """Atoms until a closing brace or the end; the reason of the first fault, else None."""
        if depth > _MAX_DEPTH:
            return f"braces are nested more than {_MAX_DEPTH} deep"
        while self.peek() not in (None, "}"):
            fault = self.atom(depth)
            if fault:
                return fault
            seen: set[str] = set()
            while self.peek() in ("_", "^"):
                mark = self.tokens[self.k]
                if mark in seen:
                    return f"'{mark}' twice on one symbol (write braces: a_{{12}}, {{a^2}}^3)"
                seen.add(mark)
                self.k += 1
                fault = self.argument(depth, f"'{mark}'")
                if fault:
                    return fault
        return None

    def atom(self, depth: int) -> str | None:
        tok = self.peek()
        if tok in ("_", "^"):
            return f"'{tok}' needs something before it"
        return self.argument(depth, "")

    def argument(self, depth: int, after: str) -> str | None:
        """One argument: a letter, a digit, a command (with its own argument) or a braced group."""
        tok = self.peek()
        if tok is None or tok in ("}", "_", "^"):
            return f"{after} needs an argument" if after else "unbalanced braces"
        self.k += 1
        if tok == "{":
            fault = self.sequence(depth + 1)
            if fault:
                return fault
            if self.peek() != "}":
                return "unbalanced braces"
            self.k += 1
            return None
        if tok.startswith("\\"):
            name = tok[1:]
            if name not in COMMANDS:
                return f"command \\{name} is not allowed"
            if COMMANDS[name]:
                return self.argument(depth, f"\\{name}")
        return None


def latex_name_error(text: object) -> str | None:
    r"""What makes ``text`` unsafe or malformed as the LaTeX name of a symbol, or ``None`` if it is fine.

    Examples
    --------
    >>> latex_name_error("s_2"), latex_name_error(r"\hat{\beta}_{1}"), latex_name_error(r"\sigma^2_x")
    (None, None, None)
    >>> latex_name_error(r"\input{secret}")
    'command \\input is not allowed'
    >>> latex_name_error("^^5cinput")
    "'^' needs something before it"
    >>> latex_name_error("a_1_2")
    "'_' twice on one symbol (write braces: a_{12}, {a^2}^3)"
    """
    if not isinstance(text, str):
        return "it must be a string"
    if not text:
        return "it is empty"
    if len(text) > MAX_LATEX_NAME:
        return f"it has {len(text)} characters; at most {MAX_LATEX_NAME} are allowed"
    tokens = _tokens(text)
    if isinstance(tokens, str):
        return tokens
    if all(t in "{}" for t in tokens if t not in "_^"):
        return "it shows no letter, digit or symbol"
    parser = _Parser(tokens)
    fault = parser.sequence(0)
    if fault is None and parser.peek() is not None:
        fault = "unbalanced braces"
    return fault
