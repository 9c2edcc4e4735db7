"""Rendering of a :class:`~symmle.derivation.Derivation`: text, JSON, LaTeX, Markdown.

Rendering only reads a Derivation; it never derives anything.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import sympy as sp

if TYPE_CHECKING:
    from symmle.derivation import Derivation

__all__ = ["to_dict", "to_json", "to_text", "to_latex", "to_markdown", "latex"]

SCHEMA = 1

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
    "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
}
_ALIASES = {"lam": "lambda", "lamda": "lambda", "th": "theta"}


def symbol_latex(name: str) -> str:
    """LaTeX for a symbol name: ``sigma2`` -> ``\\sigma^{2}``, ``lam`` -> ``\\lambda``, ``hat_mu`` -> ``\\hat{\\mu}``."""
    if name.startswith("hat_"):
        return r"\hat{" + symbol_latex(name[4:]) + "}"
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", name)
    if m and m.group(1) == "T":
        return f"T_{{{m.group(2)}}}"
    if m and _ALIASES.get(m.group(1), m.group(1)) in _GREEK:
        return symbol_latex(m.group(1)) + f"^{{{m.group(2)}}}"
    base = _ALIASES.get(name, name)
    if base in _GREEK:
        return "\\" + base
    if "_" in name:
        head, _, tail = name.partition("_")
        return symbol_latex(head) + "_{" + symbol_latex(tail) + "}"
    return name if len(name) == 1 else r"\mathrm{" + name + "}"


def latex(expr: sp.Basic) -> str:
    """LaTeX of a SymPy object with symbol names rendered the lecturer's way."""
    # the sample minimum and maximum (undefined functions Min(x), Max(x))
    order = {f: sp.Symbol(rf"\{str(f.func).lower()}_{{i}} {symbol_latex(str(f.args[0]))}_{{i}}")
             for f in expr.atoms(sp.core.function.AppliedUndef) if str(f.func) in ("Min", "Max") and len(f.args) == 1}
    expr = expr.subs(order) if order else expr
    names = {s: symbol_latex(s.name) for s in expr.atoms(sp.Symbol)}
    names.update({s: s.name for s in order.values()})
    for idx in expr.atoms(sp.Indexed):
        names[idx.base.label] = symbol_latex(str(idx.base.label))
    return sp.latex(expr, symbol_names=names, ln_notation=False)


def _str(expr: sp.Basic | None) -> str | None:
    if expr is None or expr == sp.nan:
        return None
    return sp.sstr(expr)


def _matrix(m: sp.Matrix | None) -> list[list[str | None]] | None:
    if m is None:
        return None
    return [[_str(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])]


def to_dict(d: Derivation) -> dict[str, Any]:
    """The schema-1 JSON document of a derivation."""
    estimators = {}
    for name, e in d.solutions.items():
        entry: dict[str, Any] = {"kind": e.kind, "expr": _str(e.expr), "latex": latex(e.expr) if e.expr is not None else None}
        if e.equation is not None:
            entry["equation"] = _str(e.equation)
            entry["equation_latex"] = latex(e.equation)
        entry["verified"] = e.verified
        if e.note:
            entry["note"] = e.note
        estimators[name] = entry
    return {
        "schema": SCHEMA,
        "model": d.model.to_dict(),
        "log_likelihood": _str(d.log_likelihood),
        "sufficient_statistics": {k: _str(v) for k, v in d.sufficient_statistics.items()},
        "estimators": estimators,
        "fisher_information": _matrix(d.fisher),
        "crlb": _matrix(d.crlb),
        "steps": [{"title": s.title, "latex": _step_latex(s)} for s in d.steps],
        "warnings": list(d.warnings),
    }


def to_json(d: Derivation) -> str:
    return json.dumps(to_dict(d), indent=2)


def _step_latex(step) -> str:
    if not step.lines:
        return ""
    rows = []
    for k, (lhs, rhs) in enumerate(step.lines):
        left = latex(lhs) if k == 0 else ""
        rows.append(f"{left} &= {latex(rhs)}")
    return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"


def to_latex(d: Derivation, standalone: bool = False) -> str:
    """The derivation as LaTeX (``align`` blocks with text between them)."""
    parts = []
    for s in d.steps:
        parts.append(f"\\paragraph{{{s.title}}} {_tex_text(s.text)}\n{_step_latex(s)}")
    for w in d.warnings:
        parts.append(f"\\paragraph{{Note}} {_tex_text(w)}")
    body = "\n\n".join(parts)
    if not standalone:
        return body
    title = _tex_text(d.model.title)
    return (
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\allowdisplaybreaks\n"
        f"\\title{{Maximum-likelihood estimation: {title}}}\n\\date{{}}\n"
        "\\begin{document}\n\\maketitle\n" + body + "\n\\end{document}\n"
    )


def _tex_text(text: str) -> str:
    out = []
    for ch in text:
        out.append({"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "^": r"\^{}", "{": r"\{", "}": r"\}", "–": "--"}.get(ch, ch))
    return "".join(out)


def to_markdown(d: Derivation) -> str:
    """The derivation as Markdown with ``$$`` display maths."""
    parts = [f"# {d.model.title}"]
    for s in d.steps:
        parts.append(f"## {s.title}\n\n{s.text}")
        if s.lines:
            parts.append("$$\n" + _step_latex(s).replace("{align}", "{aligned}") + "\n$$")
    if d.warnings:
        parts.append("## Notes\n\n" + "\n".join(f"- {w}" for w in d.warnings))
    return "\n\n".join(parts) + "\n"


def _fmt(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def to_text(d: Derivation) -> str:
    """A readable plain-text summary for the terminal."""
    m = d.model
    lik = d.likelihood
    lines = [f"{m.title} ({m.name})", ""]
    lines.append(f"  density      f({m.variable}) = {_fmt(m.density)}")
    lines.append(f"  support      {m.variable} in [{_fmt(m.support[0])}, {_fmt(m.support[1])}]" + ("  (integers)" if m.discrete else ""))
    lines.append("  parameters   " + ", ".join(f"{q.name} ({q.domain})" for q in m.parameters))
    if m.constants:
        lines.append("  constants    " + ", ".join(f"{q.name} ({q.domain}{'' if q.value is None else ' = ' + _fmt(q.value)})" for q in m.constants))
    lines += ["", "Log-density", f"  log f = {_fmt(lik.log_density)}", ""]
    if lik.statistics:
        lines.append("Sufficient statistics (sums over the N samples)")
        lines += [f"  {s.symbol} = sum_i {_fmt(s.expr.subs(m.variable, sp.Symbol(m.variable.name + '_i')))}" for s in lik.statistics]
        lines.append("")
    lines += ["Log-likelihood", f"  l = {_fmt(d.log_likelihood)}", ""]
    lines.append("Score equations")
    for p, s in zip(d.stationarity.parameters, d.stationarity.score):
        lines.append(f"  dl/d{p} = {_fmt(s)} = 0")
    lines += ["", "Estimators"]
    for name, e in d.solutions.items():
        if e.kind == "closed_form":
            lines.append(f"  {name}_hat = {_fmt(e.expr)}    [closed form{', verified' if e.verified else ''}]")
        elif e.kind == "numeric":
            lines.append(f"  {name}_hat solves {_fmt(e.equation.lhs)} = {_fmt(e.equation.rhs)}    [numeric]")
        elif e.kind == "boundary":
            lines.append(f"  {name}_hat = {_fmt(e.expr)}    [boundary: {e.note}]")
        else:
            lines.append(f"  {name}_hat: {e.note}    [{e.kind}]")
    lines += ["", "Fisher information (per observation)"]
    lines += ["  " + row for row in _matrix_rows(d.fisher)]
    lines += ["", "Cramer-Rao bound (N I)^-1"]
    lines += ["  " + row for row in (_matrix_rows(d.crlb) if d.crlb is not None else ["not available"])]
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return "\n".join(lines) + "\n"


def _matrix_rows(m: sp.Matrix) -> list[str]:
    cells = [["n/a" if m[i, j] == sp.nan else _fmt(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])]
    if not cells:
        return ["(none)"]
    width = max(len(c) for row in cells for c in row)
    return ["[ " + "  ".join(c.ljust(width) for c in row) + " ]" for row in cells]
