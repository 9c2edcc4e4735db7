r"""The lecture of a regression: a family whose parameter is :math:`\theta_i = g^{-1}(\eta_i)`.

In the notation of a lecture note on linear and logistic regression: responses :math:`y_i`, the
design matrix :math:`\mathbf{X}` (:math:`N \times p`) with rows :math:`\mathbf{x}_i^\top`, the
coefficients :math:`\boldsymbol\beta` and the linear predictor
:math:`\eta_i = \mathbf{x}_i^\top\boldsymbol\beta` (:mod:`symmle.report.lecture.regression_forms` picks
the names).  The steps, in order:

* the model: :math:`y_i` from the family at :math:`\theta_i = g^{-1}(\eta_i)`, the shared
  parameters :math:`\phi`;
* the log-likelihood :math:`\ell(\boldsymbol\beta, \phi) = \sum_i l(y_i, \eta_i, \phi)`;
* the gradient by the chain rule, :math:`\sum_i s(y_i, \eta_i)\,\mathbf{x}_i = \mathbf{X}^\top\mathbf{s}`
  (:math:`\mathbf{X}^\top(\mathbf{y} - \mathbf{p})` for the logistic regression), with the score
  :math:`s = \partial l/\partial\eta` of the family through its link;
* the closed form (:math:`s` affine in :math:`\eta`: the normal equations, the shared parameters
  profiled, the bias of a profiled estimator where it can be derived), or no closed form: Fisher
  scoring (IRLS) and Newton's method with the exact :math:`s` and :math:`\partial s/\partial\eta`
  (:mod:`symmle.report.lecture.regression_estimators`);
* the Hessian :math:`\mathbf{X}^\top\operatorname{diag}(s')\mathbf{X}` and the second-order check;
* the Fisher information :math:`\mathbf{X}^\top\mathbf{W}\mathbf{X}`, the information of one
  observation in :math:`(\eta, \phi)` and the Cramér–Rao bound
  (:mod:`symmle.report.lecture.regression_base`).

Every per-observation expression is the :class:`~symmle.symbolic.regression.Regression`'s, or a form
of it checked equal first (:class:`~symmle.report.lecture.regression_forms.RegressionForms`).  The
family's variable ``x`` is written ``y``, the response of the notation of regression, with a word
saying so (:attr:`~symmle.report.lecture.regression_forms.RegressionNames.rename`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sympy as sp

from symmle.report.lecture.core import LIKELIHOOD, MAXIMISING, MODEL, SECOND_ORDER, Step
from symmle.report.lecture.finish import label_for, reference
from symmle.report.lecture.regression_base import quick_simplify
from symmle.report.lecture.regression_estimators import BIAS, RegressionEstimators
from symmle.report.lecture.vector_forms import DataSum

__all__ = ["BIAS", "RegressionLecture"]


class RegressionLecture(RegressionEstimators):
    """The steps of the derivation of a regression (see the module docstring)."""

    def steps(self) -> list[Step]:
        """The model, the log-likelihood, its maximisation, the second-order check, the information."""
        out = [self.model_step(), self.log_likelihood_step(), *self.score_steps()]
        if self.closed:
            out += self.closed_form_steps()
            out += [self.hessian_step(SECOND_ORDER), self.second_order_step()]
        else:
            out += [self.hessian_step(MAXIMISING), *self.newton_steps(), self.second_order_step()]
        out += self.information_steps()
        if self.closed:
            out += self.bias_steps()
        shown = self.names.shown
        return [replace(s, lines=tuple((shown(a), shown(b)) for a, b in s.lines)) for s in out]

    # ------------------------------------------------------------------ the model
    def support_tex(self) -> str:
        """The support of the response, as LaTeX."""
        lo, hi = self.model.support
        y = self.tex(self.names.y_i)
        if self.model.discrete:
            if hi == sp.oo:
                return rf"{y} \in \{{{self.tex(lo)}, {self.tex(lo + 1)}, \dots\}}"
            if (hi - lo).is_Integer and hi - lo <= 2:
                return rf"{y} \in \{{{', '.join(self.tex(lo + k) for k in range(int(hi - lo) + 1))}\}}"
            return rf"{y} \in \{{{self.tex(lo)}, {self.tex(lo + 1)}, \dots, {self.tex(hi)}\}}"
        left = r"-\infty <" if lo == -sp.oo else rf"{self.tex(lo)} \le"
        right = r"< \infty" if hi == sp.oo else rf"\le {self.tex(hi)}"
        return f"{left} {y} {right}"

    def model_step(self) -> Step:
        """The family at each observation's parameter, the link, the linear predictor."""
        m, n, reg = self.model, self.names, self.reg
        X, row, beta, p = self.tex(n.X), self.tex(n.row), self.tex(n.beta), self.tex(n.p)
        ys = rf"{self.tex(n.y_i.base[1])}, \dots, {self.tex(n.y_i.base[n.N])}"
        renamed = f" (the family's variable ${super().tex(n.variable)}$)" if n.rename else ""
        text = (
            f"We observe $N$ independent responses ${ys}${renamed}. Observation $i$ comes with a vector "
            f"${row}$ of ${p}$ covariates, the $i$-th row of the $N \\times {p}$ design matrix ${X}$, and "
            f"its response has the {self.density_word}"
        )
        density = self.density_shown(m.density, self.y).xreplace(self.at_i)
        inverse = self.at(reg.link.inverse(self.eta))
        lines: list[tuple[Any, Any]] = [
            (self.f(n.y_i, n.theta_i, *self.shared), density),
            (n.theta_i, inverse),
            (n.eta_i, n.linear_predictor),
        ]
        t = self.tex(self.par)
        after = (
            f"for ${self.support_tex()}$. The parameter ${t}$ varies with the observation: the "
            f"{reg.link.name} link $g({t}) = {self.tex(reg.link.forward(self.par))}$ maps "
            f"${self.tex(n.theta_i)}$ to the linear predictor ${self.tex(n.eta_i)} = "
            f"{self.tex(n.linear_predictor)}$."
        )
        if self.shared:
            one = len(self.shared) == 1
            shared = [self.domain_tex(q) for q in m.parameters if q.symbol in self.shared]
            after += (
                f" The other parameter{'' if one else 's'} {self.listing(shared)} "
                f"{'is' if one else 'are'} shared by all observations."
            )
        after += f" The unknowns are the coefficients ${beta}$" + (
            f" and {self.phi_tex}." if self.shared else "."
        )
        if m.constants:
            after += " Known constant" + ("s: " if len(m.constants) > 1 else ": ")
            after += self.listing([self.domain_tex(q) for q in m.constants]) + "."
        return Step(
            "Model",
            text + ":",
            tuple(lines),
            after=after,
            kind="model",
            section=MODEL,
            label=label_for("model"),
        )

    # ------------------------------------------------------------------ the log-likelihood
    def gathered(self, logf: sp.Expr) -> sp.Expr:
        """``sum_i logf_i`` as ``N A + sum_k c_k sum_i g_k``: what is free of the observation out of sums."""
        const = sp.S.Zero
        sums: dict[sp.Expr, sp.Expr] = {}
        for t in sp.Add.make_args(logf):
            if not t.has(self.y) and not t.has(self.par):
                const += t
                continue
            c, g = t.as_independent(self.y, self.par, as_Add=False)
            sums[g] = sums.get(g, sp.S.Zero) + c
        out = self.N * const
        for g, c in sums.items():
            out += c * sp.Sum(self.at(g), (self.i, 1, self.N))
        return out

    def log_likelihood_step(self) -> Step:
        """The sum over the observations of the log-density at each one's parameter, and ``l(y, eta)``."""
        n, reg, f = self.names, self.reg, self.forms
        logf = f.log_density
        lines: list[tuple[Any, Any]] = [
            (self.ell, sp.Sum(sp.log(self.f(n.y_i, n.theta_i, *self.shared)), (self.i, 1, self.N))),
            (self.ell, sp.Sum(self.at(logf), (self.i, 1, self.N))),
        ]
        gathered = self.gathered(logf)
        if gathered != lines[-1][1]:
            lines.append((self.ell, gathered))
        identity = reg.link.name == "identity"
        l_eta = self.per(self.l_fn, self.y, self.eta)
        if not identity:
            shown = reg.log_density
            simple = quick_simplify(shown)
            if simple is not None and sp.count_ops(simple) < sp.count_ops(shown) and f.same(simple, shown):
                shown = simple
            lines.append((l_eta, shown))
        l_i, lp = self.tex(self.at(l_eta)), self.tex(n.linear_predictor)
        if identity:
            f_i = self.tex(self.f(n.y_i, n.eta_i, *self.shared))
            after = (
                f"with ${self.tex(n.theta_i)} = {self.tex(n.eta_i)} = {lp}$: observation $i$ contributes "
                f"${l_i} = \\log {f_i}$."
            )
        else:
            after = (
                f"with ${self.tex(n.theta_i)} = g^{{-1}}({lp})$. Written in the linear predictor, "
                f"observation $i$ contributes ${l_i}$, the log-{self.density_word} at "
                f"${self.tex(self.par)} = g^{{-1}}({self.tex(self.eta)})$, given last."
            )
        return Step(
            "Log-likelihood",
            "The observations are independent, so the log-likelihood is the sum over the observations of "
            f"the logarithm of each {self.density_word}, at its own parameter ${self.tex(n.theta_i)}$:",
            tuple(lines),
            after=after,
            kind="log_likelihood",
            section=LIKELIHOOD,
            label=label_for("log_likelihood"),
        )

    # ------------------------------------------------------------------ the score
    def score_steps(self) -> list[Step]:
        """The gradient ``X^T s`` by the chain rule, and the score of one observation through the link."""
        n, f, reg = self.names, self.forms, self.reg
        s_eta = self.per(self.s_fn, self.y, self.eta)
        s_i = self.at(s_eta)
        lines: list[tuple[Any, Any]] = [
            (sp.Derivative(self.ell, n.beta), DataSum(sp.MatMul(s_i, n.row), self.i, self.N)),
            (None, n.X.T * n.s_vec),
        ]
        c = f.residual_factor
        if c is not None:
            mean = n.X * n.beta if reg.link.name == "identity" else n.theta_vec
            lines.append((None, sp.MatMul(c, n.X.T, n.y_vec - mean)))
        e, t = self.tex(self.eta), self.tex(self.par)
        gradient = Step(
            "Gradient",
            f"The coefficients enter the log-likelihood {reference('log_likelihood')} only through the "
            f"linear predictors ${self.tex(n.eta_i)} = {self.tex(n.linear_predictor)}$, whose gradient is "
            f"${self.tex(n.row)}$. By the chain rule,",
            tuple(lines),
            after=(
                f"where ${self.tex(s_eta)} = \\partial l / \\partial {e}$ is the score of one observation in "
                f"its linear predictor, given below, and ${self.tex(n.s_vec)}$ the vector of the $N$ scores "
                f"${self.tex(s_i)}$."
            ),
            kind="derivative",
            parameter="beta",
            section=MAXIMISING,
            label=label_for("derivative", "beta"),
        )
        score_lines: list[tuple[Any, Any]] = []
        text = f"The score of one observation is the derivative of its log-{self.density_word} in ${e}$"
        if f.chain is not None and reg.link.name != "identity":
            a, j = f.chain
            score_lines.append((s_eta, sp.Mul(a, j, evaluate=False)))
            text += (
                f"; by the chain rule through ${t} = g^{{-1}}({e})$ it is "
                f"$(\\partial \\log f / \\partial {t})\\,(d{t}/d{e})$, with $d{t}/d{e} = {self.tex(j)}$:"
            )
        else:
            text += ":"
        shown = f.score
        short = not score_lines or sp.count_ops(shown) <= 2 * sp.count_ops(score_lines[0][1])
        if (short and self.fits_page(shown)) or not score_lines:
            score_lines.append((s_eta, shown))
        after = ""
        if c is not None:
            after = (
                f"So the gradient {reference('derivative', 'beta')} is a weighted sum of the residuals "
                f"${self.tex(self.at(self.y - self.par))}$."
            )
        return [
            gradient,
            Step(
                "Score of one observation",
                text,
                tuple(score_lines),
                after=after,
                kind="derivative",
                parameter=self.eta.name,
                section=MAXIMISING,
                label=label_for("derivative", self.eta.name),
            ),
        ]

    # ------------------------------------------------------------------ Hessian, second order
    def hessian_step(self, section: str) -> Step:
        """The Hessian ``X^T D X``, ``D = diag(s'(y_i, eta_i))``, and the curvature ``s'``."""
        n, f = self.names, self.forms
        s_prime = self.per(self.s_prime, self.y, self.eta)
        d_i = self.at(s_prime)
        beta = self.tex(n.beta)
        D = sp.MatrixSymbol("D" if "D" not in self.model.symbols else "D_", self.N, self.N)
        lines: list[tuple[Any, Any]] = [
            (
                rf"\frac{{\partial^{{2}} \ell}}{{\partial {beta} \, \partial {self.tex(n.beta.T)}}}",
                DataSum(sp.MatMul(d_i, n.row, n.row.T), self.i, self.N),
            ),
            (None, n.X.T * D * n.X),
        ]
        curvature = -f.weight if f.observed_is_expected and f.weight is not None else f.curvature
        shown = self.fits_page(curvature)
        if shown:
            lines.append((s_prime, curvature))
        e, s = self.tex(self.eta), n.s
        after = (
            f"where ${self.tex(D)} = \\operatorname{{diag}}({self.tex(d_i)})$ and ${s}' = \\partial {s} / "
            f"\\partial {e}$ is the curvature of one observation's log-{self.density_word} in ${e}$"
        )
        after += "." if shown else " (symmle has it in closed form; it is too long to show)."
        return Step(
            "Hessian",
            f"Differentiating the gradient {reference('derivative', 'beta')} once more gives the Hessian:",
            tuple(lines),
            after=after,
            kind="hessian",
            parameter="beta",
            section=section,
            label=label_for("hessian", "beta"),
        )

    def second_order_step(self) -> Step:
        """Why the stationary point is the maximum, or what the fit checks instead."""
        n, f, reg = self.names, self.forms, self.reg
        X, beta, s = self.tex(n.X), self.tex(n.beta), n.s
        hessian = reference("hessian", "beta")
        if self.closed and reg.slope is not None and reg.slope.is_negative:
            text = (
                f"The Hessian {hessian} is $b\\, {self.tex(n.X.T * n.X)}$ with "
                f"$b = {self.tex(reg.slope)} < 0$, "
                f"negative definite when ${X}$ has full column rank: the stationary point is the maximum"
                + (f" in the coefficients, for any value of {self.phi_tex}" if self.shared else "")
                + "."
            )
        elif f.concave:
            text = (
                f"As ${s}' < 0$ for every response and linear predictor, the Hessian {hessian} is negative "
                f"definite when ${X}$ has full column rank: the log-likelihood is concave in ${beta}$"
                + (f" (for fixed {self.phi_tex})" if self.shared else "")
                + ", and a stationary point is the unique maximum. For some data there is none (under "
                "separation in a binary regression, for instance): symmle's fit then reports an error, "
                "never an estimate."
            )
        else:
            text = (
                f"symmle cannot show that ${s}' < 0$ everywhere, so the log-likelihood need not be concave "
                f"in ${beta}$: its fit checks at the estimate that the observed information (the negative "
                "Hessian) is positive definite, and reports an error otherwise."
            )
        return Step("Second-order check", text, (), kind="hessian", section=SECOND_ORDER)
