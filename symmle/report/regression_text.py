"""A regression's derivation as a plain-text summary for the terminal (``symmle derive``).

The regression counterpart of :mod:`symmle.report.text`: the family and its link, the log-likelihood
as a sum of per-observation terms :math:`l(y_i, \\eta_i, \\phi)`, the score by the chain rule
(``X^T s``), the Hessian, the estimators (least squares and the profiled shared parameters, or
Newton's method), the Fisher information ``X^T W X`` with the per-observation information in
``(eta, phi)``, the Cramér–Rao bound and the warnings.  Matrix expressions are written as a lecture
writes them in plain text (``(X^T X)^-1 X^T y``); everything else is SymPy's plain notation.  Every
character written is printable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp
from sympy.printing.str import StrPrinter

from symmle.base.terminal import printable
from symmle.report.lecture.regression_forms import (
    RegressionForms,
    RegressionNames,
    beta_hat,
    newton_step,
    working_vector,
)

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["matrix_text", "regression_text"]


class _MatrixText(StrPrinter):
    """Matrix expressions as a lecture writes them in plain text: ``X^T W X``, ``(X^T X)^-1``."""

    def _print_Transpose(self, expr) -> str:
        return self._wrap(expr.arg) + "^T"

    def _print_Inverse(self, expr) -> str:
        return self._wrap(expr.arg) + "^-1"

    def _print_MatPow(self, expr) -> str:
        base, k = expr.args
        return self._wrap(base) + ("^-1" if k == -1 else f"^{self._print(k)}")

    def _print_MatMul(self, expr) -> str:
        coeff, mats = expr.as_coeff_matrices()
        sign = ""
        if coeff.could_extract_minus_sign():
            sign, coeff = "-", -coeff
        parts = [f"({self._print(m)})" if isinstance(m, sp.MatAdd) else self._print(m) for m in mats]
        if coeff != 1:
            c = self._print(coeff)
            parts.insert(0, c if coeff.is_Symbol or coeff.is_Integer else f"({c})")
        return sign + " ".join(parts)

    def _print_MatAdd(self, expr) -> str:
        terms = sorted(expr.args, key=lambda t: (t.could_extract_minus_sign(), sp.default_sort_key(t)))
        out = ""
        for k, t in enumerate(terms):
            text = self._print(t)
            if text.startswith("-"):
                out += ("-" if k == 0 else " - ") + text[1:]
            else:
                out += ("" if k == 0 else " + ") + text
        return out

    def _wrap(self, m) -> str:
        text = self._print(m)
        return text if isinstance(m, sp.MatrixSymbol) else f"({text})"


def matrix_text(expr: sp.Basic) -> str:
    """``expr`` in plain text, matrices as ``X^T X``, ``(X^T W X)^-1`` (see :class:`_MatrixText`)."""
    return _MatrixText({"order": None}).doprint(expr)


def _s(expr: sp.Basic) -> str:
    return "n/a" if expr is None or expr is sp.nan else sp.sstr(expr)


def regression_text(d: Derivation) -> str:
    """Return the terminal summary of a regression's derivation (see the module docstring).

    Examples
    --------
    >>> from symmle import derive
    >>> text = regression_text(derive("logistic_regression"))
    >>> print(next(line for line in text.splitlines() if "dl/dbeta" in line))
      dl/dbeta = X^T s = X^T (y - p),  s_i = s(y_i, eta_i)
    """
    reg = d.regression
    m = d.model
    n = RegressionNames.of(reg, d.likelihood.N, d.likelihood.index)
    forms = RegressionForms(reg, n)

    def show(expr: sp.Basic) -> str:
        return _s(n.shown(expr))

    y, eta, par = n.response, reg.eta, reg.parameter.symbol
    phi = ", ".join(s.name for s in reg.shared)
    args = ", ".join([y.name, eta.name, *(s.name for s in reg.shared)])
    args_i = ", ".join([f"{y}_i", f"{eta}_i", *(s.name for s in reg.shared)])
    lp = f"{n.row.name}^T beta"
    lines = [f"{m.title} ({m.name})", ""]
    renamed = f"  (the family's variable {n.variable})" if n.rename else ""
    lines.append(f"  family       f({y}) = {show(m.density)}{renamed}")
    lines.append(
        f"  support      {y} in [{show(m.support[0])}, {show(m.support[1])}]"
        + ("  (integers)" if m.discrete else "")
    )
    eta_i = sp.Symbol(f"{eta}_i", **{k: v for k, v in eta.assumptions0.items() if k == "real"})
    lines.append(
        f"  link         {reg.link.name}: {par}_i = {show(reg.link.inverse(eta_i))},  {eta_i} = {lp}"
    )
    lines.append(
        f"  coefficients beta ({n.p} x 1); {n.row.name}^T is row i of the design {n.X.name} ({n.N} x {n.p})"
    )
    if reg.shared:
        shared = [q for q in m.parameters if q.symbol in reg.shared]
        lines.append("  shared       " + ", ".join(f"{q.name} ({q.domain})" for q in shared))
    if m.constants:
        lines.append(
            "  constants    "
            + ", ".join(
                f"{q.name} ({q.domain}{'' if q.value is None else ' = ' + show(q.value)})"
                for q in m.constants
            )
        )
    lines += ["", f"Log-likelihood (sum over the N observations, {eta}_i = {lp})"]
    lines.append(f"  l(beta{', ' + phi if phi else ''}) = sum_i l({args_i})")
    lines.append(f"  l({args}) = {show(reg.log_density)}")
    shown = forms.log_density
    pad = " " * len(f"  l({args}) ")
    lines.append(f"{pad}= {show(shown)}    (at {par} = {show(reg.link.inverse(eta))})")
    lines += ["", "Score (chain rule)"]
    gradient = f"  dl/dbeta = {n.X.name}^T {n.s_vec.name}"
    if forms.residual_factor is not None:
        mean = n.X * n.beta if reg.link.name == "identity" else n.theta_vec
        gradient += " = " + matrix_text(sp.MatMul(forms.residual_factor, n.X.T, n.y_vec - mean))
    lines.append(gradient + f",  {n.s_vec.name}_i = {n.s}({args_i})")
    score = f"  {n.s}({args}) = dl/d{eta} = {show(reg.score)}"
    if forms.score != reg.score:
        score += f" = {show(forms.score)}"
    lines.append(score)
    for s, g in zip(reg.shared, reg.shared_score):
        lines.append(f"  d l({args})/d{s} = {show(g)}    (summed over i: the score of {s})")
    lines += ["", "Hessian"]
    lines.append(f"  d2l/dbeta dbeta^T = {n.X.name}^T D {n.X.name},  D = diag({n.s}'({y}_i, {eta}_i))")
    lines.append(f"  {n.s}'({args}) = {show(reg.curvature)}")
    lines += ["", "Estimators"]
    lines += _estimator_lines(d, n, forms, show)
    lines += ["", "Fisher information"]
    w = reg.weight
    lines.append(
        f"  I(beta, beta) = {n.X.name}^T {n.W.name} {n.X.name},  {n.W.name} = diag({n.w}({eta}_i)),  "
        f"{n.w}({eta}) = -E[d2l/d{eta}2] = {show(w)}"
        + (f" = {show(forms.weight)}" if forms.weight is not None and forms.weight != w else "")
    )
    if forms.observed_is_expected:
        lines.append(f"  (w = -{n.s}': the observed and the expected information are equal)")
    order = [eta, *reg.shared]
    lines.append(f"  per observation in ({', '.join(s.name for s in order)}):")
    lines += ["  " + row for row in _matrix_rows(reg.information)]
    orthogonal = all(reg.information[0, k] == 0 for k in range(1, len(reg.shared) + 1))
    lines += ["", "Cramer-Rao bound"]
    if w is not None and orthogonal:
        bound = f"  Cov(beta_hat) >= ({n.X.name}^T {n.W.name} {n.X.name})^-1"
        if not w.has(eta) and not w.has(par):
            bound += " = " + matrix_text(sp.MatMul(1 / w, sp.Inverse(n.X.T * n.X)))
        lines.append(bound)
    else:
        lines.append(
            "  the inverse of the information in (beta, " + (phi or "") + "): not available in closed form"
        )
    if d.warnings:
        lines += ["", "Warnings"] + [f"  - {w}" for w in d.warnings]
    return printable("\n".join(lines) + "\n")


def _estimator_lines(d: Derivation, n: RegressionNames, forms: RegressionForms, show) -> list[str]:
    reg = d.regression
    lines = []
    if reg.kind == "closed_form":
        z = working_vector(reg, n)
        verified = ", verified" if forms.closed_form_verified() else ""
        lines.append(
            f"  beta_hat = {matrix_text(beta_hat(reg, n))}    [closed form: normal equations "
            f"{matrix_text(n.X.T * n.X * n.beta)} = {matrix_text(n.X.T * z)}{verified}]"
        )
        if reg.working_response != reg.response:
            z_i = reg.working_response.subs(reg.response, sp.Symbol(f"{n.response}_i"))
            lines.append(f"      {z.name}_i = {show(z_i)}")
        at = {reg.eta: sp.Symbol(f"{reg.eta}_hat_i"), reg.response: sp.Symbol(f"{n.response}_i")}
        stats = ", ".join(f"{st.symbol} = sum_i {show(st.expr.subs(at))}" for st in reg.residual_statistics)
        bias = {b.parameter: b for b in forms.bias}
        for s in reg.shared:
            lines.append(f"  {s}_hat = {show(reg.profile[s.name])}    [profiled; {stats}]")
            b = bias.get(s)
            if b is not None and b.biased and b.unbiased is not None:
                lines.append(
                    f"      E[{s}_hat] = {show(b.expectation)}: biased; {show(b.unbiased)} is unbiased"
                )
            elif b is None:
                lines.append("      biased in finite samples in general (consistent as N -> oo)")
        return lines
    lines.append(f"  beta_hat: no closed form    [Newton, exact {n.s} and {n.s}']")
    lines.append(
        f"      beta <- beta + {matrix_text(newton_step(n))}    (Fisher scoring, IRLS; Newton's method uses "
        f"-{n.s}' in place of {n.w}" + (", equal here)" if forms.observed_is_expected else ")")
    )
    for s in reg.shared:
        lines.append(f"  {s}_hat solves sum_i dl/d{s} = 0 jointly    [Newton]")
    return lines


def _matrix_rows(m: sp.Matrix) -> list[str]:
    cells = [[_s(m[i, j]) for j in range(m.shape[1])] for i in range(m.shape[0])]
    width = max(len(c) for row in cells for c in row)
    return ["[ " + "  ".join(c.ljust(width) for c in row) + " ]" for row in cells]
