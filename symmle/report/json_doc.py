"""A derivation as the schema-1 JSON document (``symmle derive --format json``).

The document is a public contract (its ``schema`` field says which layout it
has): expressions are SymPy strings with their LaTeX beside them
(:mod:`symmle.report.printer`), the steps carry their sentence (escaped for
TeX) and their ``align`` block, and ``None`` marks what does not exist.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.report.equations import step_latex
from symmle.report.escape import tex_text
from symmle.report.printer import latex, notation

if TYPE_CHECKING:
    from symmle.report.lecture.core import Step
    from symmle.symbolic.derivation import Derivation

__all__ = ["SCHEMA", "to_dict", "to_json"]

#: the version of the document's layout, its ``schema`` field
SCHEMA = 1


def _estimator_forms(d: Derivation) -> dict[str, Any]:
    """The displayed estimator of each parameter, from the derivation's estimator step."""
    forms: dict[str, Any] = {}
    for s in d.steps:
        if getattr(s, "kind", "") == "estimators":
            for lhs, rhs in s.lines:
                if isinstance(lhs, sp.Symbol) and lhs.name.startswith("hat_") and lhs.name[4:] not in forms:
                    forms[lhs.name[4:]] = rhs
    return forms


def _str(expr: sp.Basic | None) -> str | None:
    if expr is None or expr == sp.nan:
        return None
    return sp.sstr(expr)


def _matrix(m: sp.Matrix | None) -> list[list[str | None]] | None:
    if m is None:
        return None
    return [[_str(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])]


def _joined_text(s: Step) -> str:
    """A step's sentence and its closing sentence, as one text."""
    after = getattr(s, "after", "")
    return s.text + (" " + after if after else "")


def to_dict(d: Derivation) -> dict[str, Any]:
    r"""Return the schema-1 JSON document of a derivation, as a dict.

    This is ``symmle derive --format json`` (and :meth:`Derivation.to_dict`).

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    dict
        ``schema``, ``model``, ``log_likelihood``,
        ``sufficient_statistics``, ``estimators`` (per parameter: ``kind``,
        ``expr``, ``latex``, ``verified``, and ``equation``/``note`` where
        they apply), ``fisher_information``, ``crlb``, ``steps`` (``title``,
        ``text``, ``latex``) and ``warnings``.  Expressions are SymPy
        strings; ``None`` marks what does not exist.

    Examples
    --------
    >>> from symmle import derive
    >>> doc = to_dict(derive("poisson"))
    >>> doc["sufficient_statistics"]
    {'T1': 'x', 'T2': 'log(factorial(x))'}
    >>> doc["estimators"]["lam"]
    {'kind': 'closed_form', 'expr': 'T1/N', 'latex': '\\frac{1}{N} \\sum_{i=1}^{N} x_{i}', 'verified': True}
    >>> doc["fisher_information"], doc["crlb"]
    ([['1/lam']], [['lam/N']])
    """
    data = notation(d)
    forms = _estimator_forms(d)
    estimators = {}
    for name, e in d.solutions.items():
        shown = forms.get(name)
        if shown is None and e.expr is not None:
            shown = d.likelihood.explicit(e.expr)
        entry: dict[str, Any] = {
            "kind": e.kind,
            "expr": _str(e.expr),
            "latex": latex(shown, data) if shown is not None and e.expr is not None else None,
        }
        if e.equation is not None:
            entry["equation"] = _str(e.equation)
            entry["equation_latex"] = latex(d.likelihood.explicit(e.equation), data)
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
        "steps": [
            {"title": s.title, "text": tex_text(_joined_text(s)), "latex": step_latex(s, data)}
            for s in d.steps
        ],
        "warnings": list(d.warnings),
    }


def to_json(d: Derivation) -> str:
    """Return :func:`to_dict` as indented JSON text (``symmle derive --format json``).

    Parameters
    ----------
    d : Derivation

    Returns
    -------
    str

    Examples
    --------
    >>> import json
    >>> from symmle import derive
    >>> text = to_json(derive("poisson"))
    >>> json.loads(text)["estimators"]["lam"]["expr"]
    'T1/N'
    """
    return json.dumps(to_dict(d), indent=2)
