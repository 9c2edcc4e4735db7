"""The finishing pass over the steps of a lecture: labels, references, special functions defined at first use.

A builder (:mod:`symmle.report.lecture.scalar`) gives each step with equations a label
(:func:`label_for`) and writes references to earlier steps into its sentences (:func:`reference`);
:func:`resolve_references` then makes every label unique and drops any reference to a block that is
not shown, and :func:`define_at_first_use` closes the first step that uses a special function with its
definition.  Both are format-free: the writers turn labels into ``\\label``/``\\eqref`` (LaTeX) or
numbers (Markdown).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import sympy as sp

from symmle.report.lecture.core import Lecture, Step

__all__ = ["GLOSSARY", "define_at_first_use", "label_for", "reference", "resolve_references"]


def label_for(kind: str, parameter: str = "") -> str:
    """The label of a step's equations: ``eq:`` and its kind, and its parameter if any.

    Only ASCII letters and digits are kept as they are; any other character of
    a parameter's name is written as ``.hex.``, so that two names never share
    a label and nothing but ``[A-Za-z0-9.:-]`` reaches LaTeX.

    >>> label_for("log_likelihood"), label_for("derivative", "sigma_1"), label_for("stationary", "λ")
    ('eq:log-likelihood', 'eq:derivative-sigma.5f.1', 'eq:stationary-.3bb.')
    """
    safe = "".join(c if c.isascii() and c.isalnum() else f".{ord(c):x}." for c in parameter)
    return f"eq:{kind.replace('_', '-')}" + (f"-{safe}" if parameter else "")


def reference(kind: str, parameter: str = "") -> str:
    """A reference to a step's equations, as maths in a sentence: ``$\\eqref{eq:...}$``."""
    return f"$\\eqref{{{label_for(kind, parameter)}}}$"


_REFERENCE = re.compile(r" ?\$\\eqref\{(eq:[A-Za-z0-9.:-]+)\}\$")


def resolve_references(steps: list[Step]) -> list[Step]:
    """The steps with a label on each block of equations, and no reference to a block that is not shown.

    A reference to a label no step shows is dropped with the space before it.
    """
    out, labels = [], set()
    for s in steps:
        label = s.label if s.lines else ""
        if label in labels:  # never two equal labels (label_for makes none, but a builder might)
            k = 2
            while f"{label}-{k}" in labels:
                k += 1
            label = f"{label}-{k}"
        labels.add(label)
        out.append(replace(s, label=label))

    def keep(m: re.Match) -> str:
        return m.group(0) if m.group(1) in labels else ""

    return [replace(s, text=_REFERENCE.sub(keep, s.text), after=_REFERENCE.sub(keep, s.after)) for s in out]


#: The special functions and constants a lecture defines where it first uses them: (key, LaTeX
#: pattern of its printed form in a sentence, the definition, the keys it is defined in terms of)
GLOSSARY: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "gamma",
        r"\\Gamma(?:\(|\\left\()",
        r"$\Gamma(z) = \int_{0}^{\infty} t^{z - 1} e^{-t} \, dt$ is the gamma function",
        (),
    ),
    (
        "digamma",
        r"\\psi(?:\(|\\left\()",
        r"$\psi(z) = \frac{d}{dz} \log\Gamma(z) = \Gamma'(z) / \Gamma(z)$ is the digamma function",
        ("gamma",),
    ),
    (
        "trigamma",
        r"\\psi'(?!')",
        r"$\psi'(z) = \frac{d}{dz} \psi(z)$ is the trigamma function",
        ("digamma",),
    ),
    (
        "polygamma",
        r"\\psi''|\\psi\^\{\(",
        r"$\psi^{(m)}(z) = \frac{d^{m}}{dz^{m}} \psi(z)$ is the polygamma function of order $m$",
        ("digamma",),
    ),
    (
        "beta",
        r"\\operatorname\{B\}",
        r"$\operatorname{B}(a, b) = \Gamma(a) \, \Gamma(b) / \Gamma(a + b)$ is the beta function",
        ("gamma",),
    ),
    (
        "erf",
        r"\\operatorname\{erf\}",
        r"$\operatorname{erf}(z) = \frac{2}{\sqrt{\pi}} \int_{0}^{z} e^{-t^{2}} \, dt$ is the error function",
        (),
    ),
    (
        "euler",
        "",
        r"$\gamma = \lim_{n \to \infty} \left(\sum_{k=1}^{n} \frac{1}{k} - \log n\right)$"
        " is the Euler–Mascheroni constant",
        (),
    ),
)


def _special_in(obj: Any) -> set[str]:
    """The keys of :data:`GLOSSARY` for the special functions and constants in a SymPy object."""
    values = list(obj) if isinstance(obj, sp.MatrixBase) else [obj] if isinstance(obj, sp.Basic) else []
    found: set[str] = set()
    for v in values:
        if v.has(sp.gamma, sp.loggamma):
            found.add("gamma")
        for a in v.atoms(sp.polygamma):
            m = a.args[0]
            found.add({0: "digamma", 1: "trigamma"}.get(int(m), "polygamma") if m.is_Integer else "polygamma")
        if v.has(sp.beta):
            found.add("beta")
        if v.has(sp.erf):
            found.add("erf")
        if v.has(sp.EulerGamma):
            found.add("euler")
    return found


def define_at_first_use(steps: list[Step]) -> list[Step]:
    """The steps with each special function defined after the first display (or sentence) that uses it.

    A function is found in a step's equations (SymPy objects) or in its
    sentences (the LaTeX the printer writes for it, :data:`GLOSSARY`); its
    definition, and that of any function it is defined in terms of and not
    yet defined, closes that step: "Here ... is the digamma function."
    """
    entries = {key: (pattern, text, needs) for key, pattern, text, needs in GLOSSARY}
    order = [key for key, *_ in GLOSSARY]
    defined: set[str] = set()
    out = []
    for s in steps:
        used: set[str] = set()
        for row in s.lines:
            for side in row:
                used |= _special_in(side)
        for key, (pattern, _, _) in entries.items():
            if pattern and re.search(pattern, s.text + " " + s.after):
                used.add(key)
        new: set[str] = set()
        pending = [k for k in used if k not in defined]
        while pending:
            key = pending.pop()
            if key not in defined and key not in new:
                new.add(key)
                pending += [k for k in entries[key][2] if k not in defined]
        if not new:
            out.append(s)
            continue
        defined |= new
        items = [entries[k][1] for k in order if k in new]
        gloss = "Here " + Lecture.listing(items) + "."
        out.append(replace(s, after=(s.after + " " + gloss).strip()))
    return out
