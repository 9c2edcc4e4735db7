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
from symmle.report.lecture.vector_info import as_scalar_block, block_stated, bound_blocks
from symmle.report.matrix_str import parseable
from symmle.report.printer import latex, notation
from symmle.symbolic.constrained import SimplexInformation

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
                named = isinstance(lhs, (sp.Symbol, sp.MatrixSymbol))
                if named and lhs.name.startswith("hat_") and lhs.name[4:] not in forms:
                    forms[lhs.name[4:]] = rhs
    return forms


def _equation_forms(d: Derivation) -> dict[str, Any]:
    """The score equation of each parameter found numerically, as a vector lecture shows it."""
    forms: dict[str, Any] = {}
    for s in d.steps:
        if getattr(s, "kind", "") == "reduced" and getattr(s, "parameter", "") and s.lines:
            lhs, rhs = s.lines[0]
            if isinstance(lhs, sp.Basic) and isinstance(rhs, sp.Basic):
                forms[s.parameter] = (lhs, rhs)
    return forms


def _vector_blocks(d: Derivation) -> tuple[dict | None, dict | None]:
    """``fisher_information`` and ``crlb`` of a vector model: ``{"blocks": [...]}`` each, or ``None``.

    Each block has ``rows`` and ``cols`` (parameter names), ``coordinates`` (``vec``, ``vech`` or
    ``scalar`` for its rows and columns) and ``expr`` (a SymPy string, ``None`` where the block has
    no meaning: a simplex parameter in all its entries).
    """
    fi = getattr(d.information, "blocks", None)
    if fi is None:
        return None, None
    if isinstance(fi, SimplexInformation):
        return _simplex_blocks(d, fi)
    fisher = []
    kinds: dict = {}
    for (a, b), block in fi.blocks.items():
        kinds.setdefault(a, block.row_coordinates)
        kinds.setdefault(b, block.col_coordinates)
        stated = block_stated(d.model, a, block.row_coordinates) and block_stated(
            d.model, b, block.col_coordinates
        )
        fisher.append(
            {
                "rows": str(a),
                "cols": str(b),
                "coordinates": [block.row_coordinates, block.col_coordinates],
                "expr": parseable(as_scalar_block(block.matrix)) if stated else None,
            }
        )
    bounds = bound_blocks(d.information)
    crlb = None
    if bounds is not None:
        crlb = {
            "blocks": [
                {
                    "rows": str(p),
                    "cols": str(p),
                    "coordinates": [kinds.get(p, ""), kinds.get(p, "")],
                    "expr": parseable(b) if block_stated(d.model, p, kinds.get(p, "")) else None,
                }
                for p, b in bounds
            ]
        }
    return {"blocks": fisher}, crlb


def _simplex_blocks(d: Derivation, si: SimplexInformation) -> tuple[dict, dict | None]:
    """The information and bound of a simplex parameter on its free coordinates (``coordinates``: ``free``).

    The free coordinates ``p_{1:K-1}`` and the last entry ``p_K`` are written as the symbols named by
    ``free`` (a ``(K - 1, 1)`` matrix, ``p_free``) and ``last`` (``p_last``, standing for ``1 - 1^T
    p_free``), so that ``expr`` parses back.  The Fisher block is per observation (one-hot rows) or per
    count (``per``); ``total`` is the factor of the sample's information.
    """
    p = si.parameter
    names = {s.name for s in (si.matrix.free_symbols | si.total.free_symbols)} | {p.name}

    def fresh(stem: str) -> str:
        while stem in names:
            stem += "_"
        names.add(stem)
        return stem

    q = sp.MatrixSymbol(fresh(f"{p.name}_free"), *si.free.shape)
    last = sp.Symbol(fresh(f"{p.name}_last"), positive=True)
    named = {si.free: q, si.last: last}
    free = {
        "free": q.name,
        "last": last.name,
        "last_expr": parseable(1 - sp.Trace(sp.OneMatrix(1, q.shape[0]) * q)),
        "per": "observation" if si.identities else "count",
        "total": parseable(si.total),
    }
    block = {"rows": str(p), "cols": str(p), "coordinates": ["free", "free"]}
    fisher = {"blocks": [{**block, **free, "expr": parseable(d.information.fisher.xreplace(named))}]}
    crlb = d.information.crlb
    if crlb is None:
        return fisher, None
    return fisher, {"blocks": [{**block, **free, "expr": parseable(crlb.xreplace(named))}]}


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
    if getattr(d, "regression", None) is not None:  # one observation in (eta, phi): see regression_json
        from symmle.report.regression_json import regression_dict

        return regression_dict(d, SCHEMA)
    data = notation(d)
    # a MAP derivation's estimator step is the MLE's: its MAP forms are written out below
    forms = _estimator_forms(d) if getattr(d, "prior", None) is None else {}
    vector = bool(getattr(d.model, "is_vector", False))
    text = parseable if vector else _str
    equations = _equation_forms(d) if vector else {}
    estimators = {}
    for name, e in d.solutions.items():
        shown = forms.get(name)
        if shown is None and e.expr is not None:
            shown = e.expr if vector else d.likelihood.explicit(e.expr)
        entry: dict[str, Any] = {
            "kind": e.kind,
            "expr": text(e.expr) if e.expr is not None else None,
            "latex": latex(shown, data) if shown is not None and e.expr is not None else None,
        }
        if e.equation is not None and vector:
            entry["equation"] = f"Eq({parseable(e.equation.lhs)}, {parseable(e.equation.rhs)})"
            lhs, rhs = equations.get(name, (e.equation.lhs, e.equation.rhs))
            entry["equation_latex"] = f"{latex(lhs, data)} = {latex(rhs, data)}"
        elif e.equation is not None:
            entry["equation"] = _str(e.equation)
            entry["equation_latex"] = latex(d.likelihood.explicit(e.equation), data)
        entry["verified"] = e.verified
        if e.note:
            entry["note"] = e.note
        estimators[name] = entry
    if vector:
        fisher, crlb = _vector_blocks(d)
    else:
        fisher, crlb = _matrix(d.fisher), _matrix(d.crlb)
    doc = {
        "schema": SCHEMA,
        "model": d.model.to_dict(),
        "log_likelihood": text(d.log_likelihood),
        "sufficient_statistics": {k: text(v) for k, v in d.sufficient_statistics.items()},
        "estimators": estimators,
        "fisher_information": fisher,
        "crlb": crlb,
        "steps": [
            {"title": s.title, "text": tex_text(_joined_text(s)), "latex": step_latex(s, data)}
            for s in d.steps
        ],
        "warnings": list(d.warnings),
        # MAP only: the priors, the log-posterior, the MLE beside it and the posterior family
        **(_prior_fields(d) if getattr(d, "prior", None) is not None else {}),
    }
    if getattr(d, "derived", ()):  # --derived: see symmle.report.derived
        from symmle.report.derived import derived_dict

        doc["derived"] = derived_dict(d)
    if getattr(d, "mixture", None) is not None:  # --mixture K: see symmle.report.lecture.mixture
        from symmle.report.lecture.mixture import mixture_json

        doc["mixture"] = mixture_json(d)
    return doc


def _prior_fields(d: Derivation) -> dict[str, Any]:
    from symmle.report.prior_text import prior_json

    return prior_json(d)


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
