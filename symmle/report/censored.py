"""A censored-data derivation (``symmle derive MODEL --censored``) as text, LaTeX, Markdown and JSON.

The documents show the model, the right-censored log-likelihood with its :math:`\\log S(t)` terms,
the survival function (derived and checked by quadrature, or left to quadrature), the
log-likelihood in the number of events ``d`` and its sums, the score equations, the estimators and
the observed information.  Expressions are printed by :func:`symmle.report.printer.latex`; free
text goes through :mod:`symmle.report.escape`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.base.budget import attempt
from symmle.report.escape import md_text, tex_plain, tex_text, tex_title
from symmle.report.names import model_notation
from symmle.report.printer import latex

if TYPE_CHECKING:
    from symmle.symbolic.censored import CensoredDerivation

__all__ = ["to_dict", "to_text", "to_latex", "to_markdown", "sections"]


def _tidy(e: sp.Expr) -> sp.Expr:
    """``e`` simplified within a second, else as it is."""
    r, _ = attempt("simplify an entry of the observed information", 1.0, lambda: sp.simplify(e))
    return e if r is None else r


def _notation(d: CensoredDerivation):
    return model_notation(d.model, frozenset({d.model.variable}))


def _statistics(d: CensoredDerivation) -> list[tuple[sp.Symbol, sp.Expr, str]]:
    """``(symbol, its sum written out, which observations)`` of each statistic."""
    c = d.likelihood
    if c is None:
        return []
    i, x = c.index, c.sample
    var = d.model.variable
    out = []
    for sym, g in c.totals:
        out.append((sym, sp.Sum(g.subs(var, x[i]), (i, 1, c.N)), "all observations"))
    for sym, g in c.event_sums:
        out.append((sym, sp.Sum(c.status[i] * g.subs(var, x[i]), (i, 1, c.N)), "the events"))
    for sym, g in c.censored_sums:
        out.append((sym, sp.Sum((1 - c.status[i]) * g.subs(var, x[i]), (i, 1, c.N)), "the censored times"))
    return out


def sections(d: CensoredDerivation) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """``[(section, [(sentence, [LaTeX equations])])]``: what LaTeX and Markdown both show."""
    m = d.model
    nt = _notation(d)
    x = m.variable
    lo, hi = m.support
    theta = ", ".join(latex(q.symbol, nt) for q in m.parameters)
    f_of = f"f({latex(x, nt)} \\mid {theta})"
    out = []
    out.append(
        (
            "The model",
            [
                (
                    "The density of one lifetime, on its support:",
                    [
                        f"{f_of} &= {latex(m.density, nt)}, \\quad "
                        f"{latex(lo, nt)} < {latex(x, nt)} < {latex(hi, nt)}"
                    ],
                )
            ],
        )
    )
    ell = (
        "\\ell("
        + theta
        + ") &= \\sum_{i=1}^{N} \\left[\\delta_i \\log f(x_i) + (1 - \\delta_i) \\log S(x_i)\\right]"
    )
    out.append(
        (
            "Censored observations",
            [
                (
                    "Each observation is a pair $(x_i, \\delta_i)$: $\\delta_i = 1$ when the event was "
                    "observed at $x_i$, $\\delta_i = 0$ when $x_i$ is right-censored (the event comes "
                    "later). An event contributes its density, a censored time the probability $S(x_i)$ "
                    "of lasting beyond it:",
                    [ell],
                )
            ],
        )
    )
    dist = d.distribution
    u = sp.Symbol("u", real=True)
    if dist.survival is not None:
        out.append(
            (
                "The survival function",
                [
                    (
                        "Integrating the density (each result checked against numerical quadrature):",
                        [
                            f"S({latex(x, nt)}) &= \\int_{{{latex(x, nt)}}}^{{{latex(hi, nt)}}} f(u)\\,du "
                            f"= {latex(dist.survival, nt)}",
                            f"F({latex(x, nt)}) &= 1 - S({latex(x, nt)}) = {latex(dist.cdf, nt)}",
                        ],
                    )
                ],
            )
        )
    else:
        out.append(
            (
                "The survival function",
                [
                    (
                        "No closed form was found for the integral; S and F are computed by quadrature of "
                        "the "
                        "density, their derivatives by quadrature of the exact derivatives of the density:",
                        [
                            f"S({latex(x, nt)}) &= \\int_{{{latex(x, nt)}}}^{{{latex(hi, nt)}}} "
                            f"{latex(m.density.subs(x, u), nt)}\\,du"
                        ],
                    )
                ],
            )
        )
    c = d.likelihood
    if c is not None:
        logs = [
            f"\\log f({latex(x, nt)}) &= {latex(c.events.log_density, nt)}",
            f"\\log S({latex(x, nt)}) &= {latex(c.censored.log_density, nt)}",
        ]
        defs = [f"{latex(c.d, nt)} &= \\sum_{{i=1}}^{{N}} \\delta_i"] + [
            f"{latex(sym, nt)} &= {latex(total, nt)}" for sym, total, _ in _statistics(d)
        ]
        out.append(
            (
                "Log-likelihood",
                [
                    ("The two logarithms, expanded:", logs),
                    (
                        f"Summed over the sample, with ${latex(c.d, nt)}$ events and the sums "
                        "(over every observation, over the events with $\\delta_i = 1$, or over the censored "
                        "times with $\\delta_i = 0$):",
                        defs,
                    ),
                    ("the censored log-likelihood is", [f"\\ell({theta}) &= {latex(c.log_likelihood, nt)}"]),
                ],
            )
        )
        score = [
            f"\\frac{{\\partial \\ell}}{{\\partial {latex(q.symbol, nt)}}} &= {latex(s, nt)} = 0"
            for q, s in zip(m.parameters, d.score)
        ]
        out.append(("Maximising the likelihood", [("The score equations:", score)]))
    est = []
    for q in m.parameters:
        e = d.estimators[q.name]
        hat = f"\\hat{{{latex(q.symbol, nt)}}}"
        if e.kind == "closed_form":
            est.append(
                (
                    f"${hat}$: a closed form, verified on censored data sets:",
                    [f"{hat} &= {latex(e.expr, nt)}"],
                )
            )
        elif e.equation is not None:
            est.append(
                (
                    f"${hat}$: {e.note or 'solved numerically'}:",
                    [f"{latex(e.equation.lhs, nt)} &= {latex(e.equation.rhs, nt)}"],
                )
            )
        else:
            est.append(
                (f"${hat}$: maximise the censored log-likelihood numerically (exact derivatives).", [])
            )
    out.append(("The estimators", est))
    if d.hessian is not None:
        info = -d.hessian
        rows = " \\\\ ".join(
            " & ".join(latex(_tidy(info[a, b]), nt) for b in range(info.cols)) for a in range(info.rows)
        )
        out.append(
            (
                "Observed information",
                [
                    (
                        "The standard errors come from the observed information at the estimate:",
                        [f"J({theta}) &= -\\nabla^2 \\ell = \\begin{{pmatrix}} {rows} \\end{{pmatrix}}"],
                    )
                ],
            )
        )
    return out


def to_latex(d: CensoredDerivation, standalone: bool = False) -> str:
    parts = []
    for title, steps in sections(d):
        parts.append(f"\\subsection*{{{tex_text(title)}}}")
        for sentence, eqs in steps:
            block = "\\begin{align*}\n" + " \\\\\n".join(eqs) + "\n\\end{align*}" if eqs else ""
            parts.append(tex_text(sentence) + ("\n" + block if block else ""))
    if d.warnings:
        items = "\n".join(f"\\item {tex_plain(w)}" for w in d.warnings)
        parts.append("\\subsection*{Notes}\n\\begin{itemize}\n" + items + "\n\\end{itemize}")
    body = "\n\n".join(parts)
    if not standalone:
        return body
    return (
        "\\documentclass[11pt]{article}\n\\usepackage{amsmath}\n\\allowdisplaybreaks\n"
        "\\setlength{\\parindent}{0pt}\n\\setlength{\\parskip}{0.6em}\n"
        f"\\title{{Maximum-likelihood estimation from censored data:\\\\ {tex_title(d.model.title)}}}\n"
        "\\author{Derived with symmle}\n\\date{}\n\\begin{document}\n\\maketitle\n\n"
        + body
        + "\n\n\\end{document}"
    )


def to_markdown(d: CensoredDerivation) -> str:
    lines = [f"# {md_text(d.model.title)}: censored data", ""]
    for title, steps in sections(d):
        lines += [f"## {md_text(title)}", ""]
        for sentence, eqs in steps:
            lines += [md_text(sentence), ""]
            if eqs:
                lines += ["$$\\begin{aligned}", " \\\\\n".join(eqs), "\\end{aligned}$$", ""]
    if d.warnings:
        lines += ["## Notes", ""] + [f"- {md_text(w)}" for w in d.warnings] + [""]
    return "\n".join(lines)


def to_text(d: CensoredDerivation) -> str:
    m = d.model
    lines = [f"{m.title} ({m.name}): right-censored data", ""]
    lines.append("  status: delta_i = 1 event observed at x_i, 0 right-censored")
    lines.append("  log-likelihood: sum_i [delta_i log f(x_i) + (1 - delta_i) log S(x_i)]")
    dist = d.distribution
    if dist.survival is not None:
        lines.append(f"  S({m.variable}) = {sp.sstr(dist.survival)}    [verified by quadrature]")
    else:
        lines.append("  S(x): no closed form; computed by quadrature of the density")
    c = d.likelihood
    if c is not None:
        lines += ["", "Statistics", f"  {c.d} = number of events (sum of delta_i)"]
        for sym, total, which in _statistics(d):
            lines.append(f"  {sym} = {sp.sstr(total)}    (over {which})")
        lines += ["", "Log-likelihood", f"  {sp.sstr(c.log_likelihood)}", "", "Score equations"]
        for q, s in zip(m.parameters, d.score):
            lines.append(f"  d/d{q.name}: {sp.sstr(s)} = 0")
    lines += ["", "Estimators"]
    for q in m.parameters:
        e = d.estimators[q.name]
        if e.kind == "closed_form":
            lines.append(f"  {q.name}_hat = {sp.sstr(e.expr)}    [closed form, verified]")
        elif e.equation is not None:
            lines.append(f"  {sp.sstr(e.equation.lhs)} = {sp.sstr(e.equation.rhs)}    [{e.note}]")
        else:
            lines.append(f"  {q.name}: numeric (maximise the censored log-likelihood)")
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return "\n".join(lines) + "\n"


def to_dict(d: CensoredDerivation) -> dict[str, Any]:
    m = d.model
    c = d.likelihood
    return {
        "schema": 1,
        "model": m.to_dict(),
        "censoring": "right",
        "survival": None if d.distribution.survival is None else str(d.distribution.survival),
        "cdf": None if d.distribution.cdf is None else str(d.distribution.cdf),
        "log_likelihood": None if c is None else str(c.log_likelihood),
        "statistics": {} if c is None else {str(s): sp.sstr(t) for s, t, _ in _statistics(d)},
        "estimators": {
            q.name: {
                "kind": d.estimators[q.name].kind,
                "expr": str(d.estimators[q.name].expr)
                if d.estimators[q.name].kind == "closed_form"
                else None,
                "equation": None
                if d.estimators[q.name].equation is None
                else str(d.estimators[q.name].equation),
                "verified": d.estimators[q.name].verified,
            }
            for q in m.parameters
        },
        "warnings": list(d.warnings),
    }
