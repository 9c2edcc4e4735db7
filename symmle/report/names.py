"""The names of symbols in LaTeX: the notation of a lecturer, and the names a spec gives.

:func:`symbol_latex` writes a symbol's name as a lecturer would: Greek names as
Greek (``lam`` -> ``\\lambda``), ``hat_mu`` -> ``\\hat{\\mu}``, digits as
subscripts except the ``2`` of a variance's name, names with ``_`` as
subscripts, Unicode Greek as commands.  A :class:`Notation` is how one
document writes its symbols: which stand for data, the names its spec gives in
LaTeX (its ``[latex]`` table, used only if they pass
:func:`~symmle.model.latex_names.latex_name_error`), and the declared names,
which decide whether a digit is an index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.model.latex_names import latex_name_error

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = [
    "GREEK",
    "Notation",
    "accented",
    "function_latex",
    "greek_letter",
    "model_notation",
    "subscript",
    "symbol_latex",
    "with_names",
]

#: Greek letters that LaTeX has as commands (``\lambda``, ``\Gamma``)
GREEK = frozenset(
    {
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "pi",
        "rho",
        "sigma",
        "tau",
        "upsilon",
        "phi",
        "chi",
        "psi",
        "omega",
        "Gamma",
        "Delta",
        "Theta",
        "Lambda",
        "Xi",
        "Pi",
        "Sigma",
        "Upsilon",
        "Phi",
        "Psi",
        "Omega",
    }
)
_ALIASES = {"lam": "lambda", "lamda": "lambda", "th": "theta", "eps": "epsilon"}
#: names whose trailing 2 is a square (a variance), not an index: sigma2 -> sigma^2
_SQUARED = {"sigma", "tau", "s", "omega"}
#: name prefixes written as accents: the estimate ``hat_mu``, any other estimator ``tilde_mu``
_ACCENTS = (("hat_", r"\hat"), ("tilde_", r"\tilde"))
_FUNCTION_NAMES = {
    "ell": r"\ell",
    "E": r"\mathrm{E}",
    "Var": r"\operatorname{Var}",
    "Cov": r"\operatorname{Cov}",
}


def subscript(base: str, index: str) -> str:
    """``base`` with a subscript; a base that has one already is braced (no double subscript)."""
    return ("{" + base + "}" if "_" in base or "^" in base else base) + "_{" + index + "}"


def greek_letter(ch: str) -> str | None:
    """The name of a Greek letter as LaTeX spells it (``λ`` -> ``lambda``, ``Λ`` -> ``Lambda``), else None.

    >>> greek_letter("λ"), greek_letter("Ω"), greek_letter("x")
    ('lambda', 'Omega', None)
    """
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", unicodedata.name(ch, ""))
    if not m:
        return None
    letter = {"LAMDA": "lambda"}.get(m.group(2), m.group(2)).lower()
    return letter.capitalize() if m.group(1) == "CAPITAL" else letter


def _unicode_latex(name: str) -> str:
    """LaTeX of a non-ASCII name: Greek letters as commands (``λ`` -> ``\\lambda``), others by code point."""
    out = []
    for ch in name:
        if ch.isascii():
            out.append(ch.replace("_", r"\_"))
            continue
        letter = greek_letter(ch)
        if letter is None:
            out.append(rf"\mathrm{{U{ord(ch):04X}}}")
        elif letter in GREEK:
            out.append("\\" + letter + " ")
        else:  # a letter LaTeX has no command for: its name, or its Latin capital (Alpha -> A)
            out.append(letter if letter.islower() else r"\mathrm{" + letter[0] + "}")
    return "{" + "".join(out).strip() + "}"


def _numbered_sibling(head: str, name: str, names: frozenset[str]) -> bool:
    """Whether another of ``names`` is ``head`` with a number (``s1`` beside ``s2``): digits are indices."""
    pattern = re.compile(re.escape(head) + r"_?\d+")
    return any(pattern.fullmatch(other) for other in names if other != name)


def _symbol_parts(name: str, names: frozenset[str] = frozenset()) -> tuple[str, int]:
    """``(base LaTeX, power)`` of a symbol name among the declared ``names``.

    ``sigma2`` -> ``(\\sigma, 2)``, ``hat_sigma2`` -> ``(\\hat{\\sigma}, 2)``,
    but ``sigma2`` beside ``sigma1`` -> ``(\\sigma_{2}, 1)``.
    """
    for prefix, accent in _ACCENTS:  # before the non-ASCII case: hat_σ is \hat{\sigma}
        if name.startswith(prefix) and len(name) > len(prefix):
            base, power = _symbol_parts(name[len(prefix) :], names)
            return accented(accent, base), power
    if not name.isascii():
        return _unicode_latex(name), 1
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", name)
    if m:
        head, digits = m.groups()
        if head == "T":
            return f"T_{{{digits}}}", 1
        base = _ALIASES.get(head, head)
        if digits == "2" and base in _SQUARED and not _numbered_sibling(head, name, names):
            return _symbol_parts(head)[0], 2
        return subscript(_symbol_parts(head)[0], digits), 1
    base = _ALIASES.get(name, name)
    if base in GREEK:
        return "\\" + base, 1
    if "_" in name.strip("_"):
        head, _, tail = name.strip("_").partition("_")
        return subscript(symbol_latex(head), symbol_latex(tail)), 1
    if len(name) == 1:
        return name, 1
    if len(name) == 2 and name.isalpha() and name.islower():
        return f"{name[0]}_{{{name[1]}}}", 1  # xm -> x_m
    return r"\mathrm{" + name.replace("_", r"\_") + "}", 1


def accented(accent: str, base: str) -> str:
    """``base`` with an accent on its head, its sub- and superscripts outside: ``\\hat{\\sigma}_{2}``."""
    depth = 0
    for k, ch in enumerate(base):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0 and ch in "_^" and k > 0:
            return f"{accent}{{{base[:k]}}}{base[k:]}"
    return f"{accent}{{{base}}}"


def symbol_latex(name: str, notation: Notation | None = None) -> str:
    """LaTeX for a symbol name.

    ``sigma2`` -> ``\\sigma^{2}``, ``lam`` -> ``\\lambda``, ``hat_mu`` -> ``\\hat{\\mu}``.
    A trailing ``2`` is a square only in the name of a variance (``sigma2``,
    ``tau2``, ``omega2``, ``s2``) that has no numbered sibling among the
    notation's declared names (``sigma1`` beside ``sigma2`` makes both
    indices); any other digits are subscripts.  A name the notation gives in
    LaTeX (a spec's ``[latex]`` table) is written as given.

    >>> symbol_latex("hat_sigma2")
    '\\\\hat{\\\\sigma}^{2}'
    >>> symbol_latex("s2", Notation(declared=frozenset({"s1", "s2"})))
    's_{2}'
    """
    base, power = (notation or Notation()).parts(name)
    return base if power == 1 else f"{base}^{{{power}}}"


@dataclass(frozen=True)
class Notation:
    """How a document writes its symbols.

    Attributes
    ----------
    data : frozenset of Symbol
        Symbols that stand for observations; terms with them are written first.
    names : mapping of str to str
        LaTeX names given by the spec (its ``[latex]`` table); a name that is
        not of the safe subset (:func:`~symmle.model.latex_names.latex_name_error`)
        is ignored.
    declared : frozenset of str
        The model's declared names, which decide whether digits are indices
        (:func:`symbol_latex`).
    """

    data: frozenset = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)
    declared: frozenset[str] = frozenset()

    def parts(self, name: str) -> tuple[str, int]:
        """``(base LaTeX, power)`` of the symbol called ``name``."""
        given = self.names.get(name)
        if given is not None and latex_name_error(given) is None:
            return given, 1
        for prefix, accent in _ACCENTS:
            if name.startswith(prefix) and name[len(prefix) :] in self.names:
                base, power = self.parts(name[len(prefix) :])
                return accented(accent, base), power
        return _symbol_parts(name, self.declared)


def model_notation(model: Model, data: frozenset | set = frozenset()) -> Notation:
    """The notation of a model's documents: its ``[latex]`` names and its declared names."""
    return Notation(frozenset(data), dict(model.latex), frozenset(model.symbols))


def function_latex(name: str) -> str:
    """LaTeX for the name of a function: ``ell`` -> ``\\ell``, ``Var`` -> ``\\operatorname{Var}``."""
    return _FUNCTION_NAMES.get(name, symbol_latex(name))


def with_names(data: Notation | frozenset | set, expr: Any) -> Notation:
    """``data`` as a :class:`Notation`; without declared names, those of ``expr``'s symbols."""
    notation = data if isinstance(data, Notation) else Notation(frozenset(data))
    if notation.declared or not isinstance(expr, sp.Basic):
        return notation
    names = frozenset(s.name for s in expr.free_symbols if isinstance(s, sp.Symbol))
    return Notation(notation.data, notation.names, names)
