"""A regression's derivation as the schema-1 JSON document (``symmle derive --format json``).

The shape of :mod:`symmle.report.json_doc` where it applies (``schema``, ``model`` with its ``link``,
``log_likelihood``, ``estimators``, ``fisher_information``, ``crlb``, ``steps``, ``warnings``), with
what a regression is made of:

* ``log_likelihood`` is the per-observation :math:`l(y, \\eta, \\phi)` (the log-likelihood is its
  sum over the observations at :math:`\\eta_i = x_i^\\top\\beta`, ``linear_predictor``), and
  ``regression`` names the symbols of the strings: the linked ``parameter``, the ``link``, the
  linear predictor ``eta``, the ``response``, the ``shared`` parameters, and the matrix symbols of
  the matrix expressions (``design`` ``X``, ``N`` x ``dimension``; ``coefficients`` ``beta``;
  the vectors ``scores`` ``s`` and ``weights`` ``W``...);
* ``score`` :math:`s = \\partial l/\\partial\\eta`, ``curvature`` :math:`\\partial s/\\partial\\eta`
  and ``weight`` :math:`w = -E[\\partial^2 l/\\partial\\eta^2]`, per observation;
* ``estimators.beta``: ``closed_form`` with ``expr`` ``(X.T*X)**(-1)*X.T*y`` (a SymPy string of
  matrix symbols), the ``normal_equations`` and the ``working_response``; or ``newton`` with
  ``expr`` null, the score ``equation`` and the Fisher-scoring ``update``.  Each shared parameter
  is ``closed_form`` (profiled: ``expr`` in ``N`` and the residual ``statistics``, and its
  ``bias`` where it is derived) or ``newton`` (its per-observation ``score``);
* ``fisher_information``: ``per_observation`` in the order ``parameters`` (``eta`` then the shared
  ones; ``null`` where an entry was not found) and ``beta``, the matrix :math:`X^\\top W X`;
  ``crlb`` the bound of :math:`\\hat\\beta` where the information is block-diagonal, else ``null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.report.equations import step_latex
from symmle.report.escape import tex_text
from symmle.report.lecture.regression_forms import (
    RegressionForms,
    RegressionNames,
    beta_hat,
    newton_step,
    working_vector,
)
from symmle.report.matrix_str import parseable
from symmle.report.printer import latex, notation

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["regression_dict"]


def _str(expr: sp.Basic | None) -> str | None:
    """A SymPy string (matrix expressions too) ``sympify`` parses back; ``None`` for what does not exist."""
    if expr is None or expr is sp.nan or (isinstance(expr, sp.Basic) and expr.has(sp.nan)):
        return None
    return parseable(expr)


def regression_dict(d: Derivation, schema: int) -> dict[str, Any]:
    """Return the JSON document of a regression's derivation (see the module docstring).

    Examples
    --------
    >>> from symmle import derive
    >>> doc = regression_dict(derive("linear_regression"), 1)
    >>> doc["estimators"]["beta"]["expr"], doc["estimators"]["sigma2"]["expr"]
    ('(X.T*X)**(-1)*X.T*y', 'R1/N')
    """
    reg = d.regression
    n = RegressionNames.of(reg, d.likelihood.N, d.likelihood.index)
    forms = RegressionForms(reg, n)

    def show(expr: sp.Basic | None) -> str | None:
        return _str(n.shown(expr))

    data = notation(d)
    estimators: dict[str, Any] = {"beta": _beta(reg, n, forms, data, show)}
    estimators.update(_shared(reg, n, forms, data, show))
    orthogonal = all(reg.information[0, k] == 0 for k in range(1, len(reg.shared) + 1))
    info = n.X.T * n.W * n.X
    crlb = None
    if reg.weight is not None and orthogonal:
        bound = sp.Inverse(info)
        crlb = {"beta": {"expr": show(bound), "latex": latex(bound, data)}}
    return {
        "schema": schema,
        "model": d.model.to_dict(),
        "regression": {
            "parameter": reg.parameter.name,
            "link": reg.link.name,
            "inverse_link": show(reg.link.inverse(reg.eta)),
            "eta": reg.eta.name,
            "response": n.response.name,
            "variable": n.variable.name,
            "shared": [s.name for s in reg.shared],
            "design": n.X.name,
            "rows": n.row.name,
            "observations": n.N.name,
            "dimension": n.p.name,
            "coefficients": n.beta.name,
            "response_vector": n.y_vec.name,
            "scores": n.s_vec.name,
            "weights": n.W.name,
            "kind": reg.kind,
        },
        "log_likelihood": show(reg.log_density),
        "linear_predictor": f"{n.row.name}^T {n.beta.name}",
        "score": show(reg.score),
        "curvature": show(reg.curvature),
        "weight": show(reg.weight),
        "estimators": estimators,
        "fisher_information": {
            "parameters": [reg.eta.name, *(s.name for s in reg.shared)],
            "per_observation": [
                [show(reg.information[i, j]) for j in range(reg.information.cols)]
                for i in range(reg.information.rows)
            ],
            "beta": {
                "expr": show(info),
                "latex": latex(info, data),
                "W": f"diag({n.w}({reg.eta}_i))",
            },
        },
        "crlb": crlb,
        "steps": [
            {
                "title": s.title,
                "text": tex_text(s.text + (" " + s.after if s.after else "")),
                "latex": step_latex(s, data),
            }
            for s in d.steps
        ],
        "warnings": list(d.warnings),
    }


def _beta(reg, n: RegressionNames, forms: RegressionForms, data, show) -> dict[str, Any]:
    X = n.X
    if reg.kind == "closed_form":
        z = working_vector(reg, n)
        est = beta_hat(reg, n)
        return {
            "kind": "closed_form",
            "expr": show(est),
            "latex": latex(est, data),
            "normal_equations": f"Eq({show(X.T * X * n.beta)}, {show(X.T * z)})",
            "working_response": show(reg.working_response),
            "working_vector": z.name,
            "verified": forms.closed_form_verified(),
        }
    update = n.beta + newton_step(n)
    return {
        "kind": "newton",
        "expr": None,
        "latex": None,
        "equation": f"Eq({show(X.T * n.s_vec)}, {parseable(sp.ZeroMatrix(n.p, 1))})",
        "update": show(update),
        "update_latex": latex(n.beta, data) + " + " + latex(newton_step(n), data),
        "method": "Newton's method with the exact score and curvature; Fisher scoring (IRLS) with weights",
        "observed_equals_expected": forms.observed_is_expected,
        "verified": None,
    }


def _shared(reg, n: RegressionNames, forms: RegressionForms, data, show) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bias = {b.parameter: b for b in forms.bias}
    verified = forms.closed_form_verified() if reg.kind == "closed_form" else None
    for s, g in zip(reg.shared, reg.shared_score):
        est = reg.profile.get(s.name) if reg.kind == "closed_form" else None
        if est is None:
            out[s.name] = {"kind": "newton", "expr": None, "latex": None, "score": show(g), "verified": None}
            continue
        entry: dict[str, Any] = {
            "kind": "closed_form",
            "expr": show(est),
            "latex": latex(est, data),
            "statistics": {st.symbol.name: show(st.expr) for st in reg.residual_statistics},
            "verified": verified,
        }
        b = bias.get(s)
        if b is not None:
            entry["bias"] = {
                "expectation": show(b.expectation),
                "unbiased": show(b.unbiased),
                "biased": b.biased,
            }
        out[s.name] = entry
    return out
