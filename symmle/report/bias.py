"""The exact finite-sample bias section of ``symmle derive --bias``, in every format.

Reads the :class:`~symmle.symbolic.moments.ExactMoments` of each estimator
(:func:`~symmle.symbolic.moments.exact_bias`) and writes: its fields in the
JSON document (:func:`add_bias_fields`), and a section for the text,
Markdown and LaTeX documents (:func:`bias_text`, :func:`bias_markdown`,
:func:`bias_latex`).  Reasons and names are escaped like the rest of the
reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.base.terminal import printable
from symmle.report.escape import md_plain, tex_plain
from symmle.report.names import accented
from symmle.report.printer import latex, notation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation
    from symmle.symbolic.moments import ExactMoments

__all__ = ["add_bias_fields", "bias_text", "bias_markdown", "bias_latex", "with_bias_latex"]

TITLE = "Exact finite-sample bias"
_NONE = "no exact expression"
_MC = "the Monte Carlo bias of `symmle check` applies"


def add_bias_fields(doc: dict[str, Any], moments: Mapping[str, ExactMoments]) -> dict[str, Any]:
    """Add ``bias``, ``unbiased``, ``expectation``, ``variance``, ``mse``... to each estimator of ``doc``."""
    for name, m in moments.items():
        doc["estimators"].setdefault(name, {}).update(m.to_dict())
    return doc


def _why(m: ExactMoments) -> str:
    return f"{_NONE} ({m.reason}); {_MC}"


def bias_text(d: Derivation, moments: Mapping[str, ExactMoments]) -> str:
    """The plain-text section, to follow :meth:`Derivation.to_text`."""
    lines = ["", f"{TITLE} (N observations; checked numerically at N = 7)"]
    for name, m in moments.items():
        hat = f"{name}_hat"
        if not m.exact:
            lines.append(f"  {hat}: {_why(m)}")
            continue
        lines.append(f"  {hat} = {sp.sstr(m.estimator)}")
        rows = [
            (f"E[{hat}]", m.expectation),
            ("bias", m.bias),
            (f"Var[{hat}]", m.variance),
            ("MSE", m.mse),
        ]
        if m.unbiased is not None and m.bias != 0:
            rows += [(f"unbiased {name}_tilde", m.unbiased), (f"MSE[{name}_tilde]", m.unbiased_mse)]
        width = max(len(k) for k, _ in rows)
        lines += [f"    {k:<{width}} = {sp.sstr(v)}" for k, v in rows]
        if m.unbiased is None:
            lines.append("    no unbiased correction by a constant factor or shift")
        elif m.bias == 0:
            lines.append(f"    {hat} is unbiased")
        if m.condition:
            lines.append(f"    (valid for {m.condition_text})")
    return printable("\n".join(lines) + "\n")


def _rows_latex(d: Derivation, m: ExactMoments) -> tuple[str, list[tuple[str, str]]]:
    data = notation(d)
    theta = latex(d.model.symbols[m.parameter], data)
    hat = accented(r"\hat", theta)
    tilde = accented(r"\tilde", theta)
    rows = [
        (hat, latex(d.likelihood.explicit(m.estimator), data)),
        (rf"\operatorname{{E}}[{hat}]", latex(m.expectation, data)),
        (rf"\operatorname{{E}}[{hat}] - {theta}", latex(m.bias, data)),
        (rf"\operatorname{{Var}}[{hat}]", latex(m.variance, data)),
        (rf"\operatorname{{MSE}}[{hat}]", latex(m.mse, data)),
    ]
    if m.unbiased is not None and m.bias != 0:
        rows += [
            (tilde, latex(d.likelihood.explicit(m.unbiased), data)),
            (rf"\operatorname{{MSE}}[{tilde}]", latex(m.unbiased_mse, data)),
        ]
    return theta, rows


_INTRO = (
    "Where an estimator is a polynomial in the sufficient statistics, a power of a shifted one, "
    "or a function of the sample maximum or minimum, its mean and variance over samples of N "
    "observations follow exactly (moments of sums of independent terms, the Laplace transform of "
    "one term, or the density of the order statistic); each was checked numerically at N = 7."
)


def _estimator_paragraphs(
    d: Derivation,
    moments: Mapping[str, ExactMoments],
    plain: Callable[[str], str],
    display: Callable[[str], str],
) -> list[str]:
    """A paragraph per estimator, for LaTeX and Markdown: ``plain`` escapes prose, ``display`` sets rows."""
    parts = []
    for name, m in moments.items():
        theta = latex(d.model.symbols[name], notation(d))
        if not m.exact:
            parts.append(f"For ${theta}$: {plain(_why(m))}.")
            continue
        _, rows = _rows_latex(d, m)
        body = " \\\\\n".join(f"{k} &= {v}" for k, v in rows)
        text = f"For ${theta}$"
        text += f" (valid for ${latex_condition(d, m)}$)" if m.condition else ""
        text += ":" if m.unbiased is not None else "; no constant factor or shift makes it unbiased:"
        parts.append(f"{text}\n{display(body)}")
    return parts


def bias_latex(d: Derivation, moments: Mapping[str, ExactMoments]) -> str:
    """The LaTeX section (a ``\\subsection*``)."""
    display = lambda body: f"\\begin{{align*}}\n{body}\n\\end{{align*}}"  # noqa: E731
    paras = _estimator_paragraphs(d, moments, tex_plain, display)
    return "\n\n".join([f"\\subsection*{{{TITLE}}}", tex_plain(_INTRO), *paras])


def latex_condition(d: Derivation, m: ExactMoments) -> str:
    """The condition of ``m`` as LaTeX: ``N > 2``, ``N a > 2``."""
    data = notation(d)
    return ",\\ ".join(latex(c, data) for c in m.condition)


def with_bias_latex(tex: str, section: str, standalone: bool) -> str:
    """``tex`` (from :meth:`Derivation.to_latex`) with ``section`` added at the end of the body."""
    end = "\n\n\\end{document}\n"
    if standalone and tex.endswith(end):
        return tex[: -len(end)] + "\n\n" + section + end
    return tex + "\n\n" + section


def bias_markdown(d: Derivation, moments: Mapping[str, ExactMoments]) -> str:
    """The Markdown section (a ``##`` heading), to follow :meth:`Derivation.to_markdown`."""
    display = lambda body: f"\n$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"  # noqa: E731
    paras = _estimator_paragraphs(d, moments, md_plain, display)
    return "\n\n".join([f"## {TITLE}", md_plain(_INTRO), *paras]) + "\n"
