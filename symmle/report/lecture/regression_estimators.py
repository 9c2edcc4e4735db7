r"""A regression's estimators in its lecture: the closed form, or Newton's method.

* Where the score is affine in :math:`\eta`, :math:`s = b(\eta - z(y))`: the normal equations
  :math:`\mathbf{X}^\top\mathbf{X}\boldsymbol\beta = \mathbf{X}^\top\mathbf{z}` and their solution, the shared
  parameters profiled in the residual statistics, the estimators, and the bias of a profiled
  parameter where it can be derived (:class:`~symmle.report.lecture.regression_forms.Bias`; otherwise
  the lecture says only that the MLE is biased in finite samples in general).
* Otherwise: no closed form; the Fisher-scoring (IRLS) step
  :math:`\boldsymbol\beta + (\mathbf{X}^\top\mathbf{W}\mathbf{X})^{-1}\mathbf{X}^\top\mathbf{s}`, how
  Newton's method differs, and the score equations of the shared parameters.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symmle.report.lecture.core import MAXIMISING, Step
from symmle.report.lecture.finish import label_for, reference
from symmle.report.lecture.regression_base import RegressionBase, quick_simplify
from symmle.report.lecture.regression_forms import beta_hat, newton_step, signs_out, working_vector

__all__ = ["BIAS", "RegressionEstimators"]

#: The heading of the bias of the profiled shared parameters.
BIAS = "Bias in finite samples"


class RegressionEstimators(RegressionBase):
    """The steps of a regression's estimators (see the module docstring)."""

    # ------------------------------------------------------------------ the closed form
    def closed_form_steps(self) -> list[Step]:
        """The score as ``b (eta - z)``, the normal equations and their solution, the profiled parameters."""
        n, reg, f = self.names, self.reg, self.forms
        z, b = reg.working_response, reg.slope
        z_vec = working_vector(reg, n)
        z_fn = sp.Function(n.z)(self.y)
        e, X = self.tex(self.eta), self.tex(n.X)
        text = (
            f"The score {reference('derivative', self.eta.name)} is affine in ${e}$: with the constant slope "
            f"$b = \\partial {n.s} / \\partial {e} = {self.tex(b)}$ and the working response "
            f"${self.tex(z_fn)} = {self.tex(z)}$,"
        )
        verified = f.closed_form_verified()
        fitted = f"${self.tex(z_vec)}$"
        if z_vec != n.y_vec:
            fitted += f", the vector of the ${self.tex(self.at(z_fn))}$,"
        after = [
            f"provided ${X}$ has full column rank ${self.tex(n.p)}$: ${self.tex(n.hat_beta)}$ is the "
            f"least-squares fit of {fitted} on ${X}$. symmle computes it by Householder QR of ${X}$ and "
            "never forms the inverse"
        ]
        if verified:
            after.append(
                "On random data, symmle checked that this solution makes the gradient vanish"
                + (" and that the profiled estimates below make theirs vanish" if self.shared else "")
            )
        else:
            after.append("symmle could not confirm this closed form numerically on random data")
        whatever = f", whatever the value of {self.phi_tex}," if self.shared else ""
        steps = [
            Step(
                "Normal equations",
                text,
                ((self.per(self.s_fn, self.y, self.eta), sp.Mul(b, self.eta - z, evaluate=False)),),
                after=(
                    f"so the gradient {reference('derivative', 'beta')} is "
                    f"$b\\, {self.tex(n.X.T * (n.X * n.beta - z_vec))}$."
                ),
                kind="stationary",
                parameter="beta",
                section=MAXIMISING,
                label=label_for("stationary", "beta-slope"),
            ),
            Step(
                "Least squares",
                f"As $b \\neq 0$, setting the gradient to zero gives the normal equations{whatever} and "
                "their solution:",
                ((n.X.T * n.X * n.beta, n.X.T * z_vec), (n.hat_beta, beta_hat(reg, n))),
                after=". ".join(after) + ".",
                kind="stationary",
                parameter="beta",
                section=MAXIMISING,
                label=label_for("stationary", "beta"),
            ),
        ]
        return steps + self.profile_steps()

    def profile_steps(self) -> list[Step]:
        """The residual statistics, the score equations of the shared parameters in them, their solution."""
        n, reg = self.names, self.reg
        if not self.shared:
            return [self.estimator_step()]
        hat_eta = sp.IndexedBase(f"hat_{self.eta.name}", **self.assumptions(self.eta))[self.i]
        lines: list[tuple[Any, Any]] = []
        rss = []
        for st in reg.residual_statistics:
            g = st.expr.xreplace({self.y: n.y_i, self.eta: hat_eta})
            lines.append((st.symbol, sp.Sum(g, (self.i, 1, self.N))))
            if self.forms.same(st.expr, (self.y - self.eta) ** 2):
                rss.append(st.symbol)
        for phi, eq in zip(self.shared, reg.profile_equations):
            lines.append((sp.Derivative(self.ell, phi), eq))
        solved = [phi for phi in self.shared if phi.name in reg.profile]
        lines += [(self.hats[phi], reg.profile[phi.name]) for phi in solved]
        stats = self.listing([f"${self.tex(s.symbol)}$" for s in reg.residual_statistics]) or "no statistic"
        text = (
            f"At ${self.tex(n.hat_beta)}$, with the fitted linear predictors ${self.tex(hat_eta)} = "
            f"{self.tex(n.row.T * n.hat_beta)}$, the log-likelihood {reference('log_likelihood')} depends "
            f"on the data only through {stats}. Setting the derivative in {self.phi_tex} to zero and "
            "solving gives the profiled estimate" + ("s" if len(solved) > 1 else "") + ":"
        )
        after = ""
        if rss:
            after = self.listing([f"${self.tex(r)}$" for r in rss]) + " is the residual sum of squares (RSS)."
        return [
            Step(
                "Profiled shared parameters",
                text,
                tuple(lines),
                after=after,
                kind="stationary",
                parameter=self.shared[0].name,
                section=MAXIMISING,
                label=label_for("stationary", "profile"),
            ),
            self.estimator_step(),
        ]

    def estimator_step(self) -> Step:
        """The estimators; the bias of a profiled parameter is only claimed where it is derived."""
        n, reg = self.names, self.reg
        lines: list[tuple[Any, Any]] = [(n.hat_beta, beta_hat(reg, n))]
        lines += [(self.hats[phi], reg.profile[phi.name]) for phi in self.shared if phi.name in reg.profile]
        derived = {b.parameter for b in self.forms.bias}
        plain = [phi for phi in self.shared if phi not in derived]
        after = ""
        if plain:
            after = (
                "In general the maximum-likelihood estimate of "
                + self.listing([f"${self.tex(p)}$" for p in plain])
                + " is biased in finite samples (it is consistent as $N \\to \\infty$); symmle derives no "
                "exact correction for it."
            )
        return Step(
            "Estimators",
            "The maximum-likelihood estimators are therefore",
            tuple(lines),
            after=after,
            kind="estimators",
            section=MAXIMISING,
            label=label_for("estimators"),
        )

    def bias_steps(self) -> list[Step]:
        """The mean of each profiled parameter whose bias is derived, and its unbiased version."""
        n, reg = self.names, self.reg
        z_vec = working_vector(reg, n)
        z = n.y_i if z_vec == n.y_vec else sp.IndexedBase(n.z, real=True)[self.i]
        E, Var = sp.Function("E"), sp.Function("Var")
        eye, H = r"\mathbf{I}", r"\mathbf{H}"
        p = self.tex(n.p)
        out = []
        for bias in self.forms.bias:
            phi, R = bias.parameter, bias.statistic.symbol
            hat = self.tex(self.hats[phi])
            lines: list[tuple[Any, Any]] = [
                (E(z), n.eta_i),
                (Var(z), rf"{n.w} / b^{{2}}"),
                (None, sp.Mul(reg.weight, sp.Pow(reg.slope, -2), evaluate=False)),
                (None, bias.variance),
                (E(R), bias.expected_statistic),
                (E(self.hats[phi]), bias.expectation),
            ]
            text = (
                f"Is ${hat}$ unbiased? The score has mean zero and variance ${n.w}$ (the information "
                f"identity), so ${n.s} = b({self.tex(self.eta)} - {n.z})$ gives the mean and variance of the "
                "working response, the same for every observation. The residual statistic is "
                f"${self.tex(R)} = {self.tex(z_vec.T)}({eye} - {H}){self.tex(z_vec)}$ with the hat matrix "
                f"${H} = {self.tex(n.X * sp.Inverse(n.X.T * n.X) * n.X.T)}$; as "
                f"$({eye} - {H}){self.tex(n.X)} = \\mathbf{{0}}$ and "
                f"$\\operatorname{{tr}}({eye} - {H}) = N - {p}$, its mean is $(N - {p})$ "
                "times that variance:"
            )
            after = f"So ${hat}$ is unbiased." if not bias.biased else ""
            if bias.biased and bias.unbiased is not None:
                tilde = sp.Symbol(f"tilde_{phi.name}", **self.assumptions(phi))
                factor = self.tex(signs_out(sp.factor(bias.expectation / phi)))
                after = (
                    f"So ${hat}$ is biased: it underestimates ${self.tex(phi)}$ by the factor ${factor}$. "
                    f"The estimator ${self.tex(tilde)} = {self.tex(bias.unbiased)}$ is unbiased. As "
                    "$N \\to \\infty$ the bias vanishes."
                )
            out.append(
                Step(
                    f"Bias of {phi.name}",
                    text,
                    tuple(lines),
                    after=after,
                    kind="bias",
                    parameter=phi.name,
                    section=BIAS,
                    label=label_for("bias", phi.name),
                )
            )
        return out

    # ------------------------------------------------------------------ Newton / Fisher scoring
    def newton_steps(self) -> list[Step]:
        """No closed form: the Fisher-scoring step, Newton's method, the shared parameters' equations."""
        n, f = self.names, self.forms
        X, W, s, beta = (self.tex(m) for m in (n.X, n.W, n.s_vec, n.beta))
        e = self.tex(self.eta)
        scoring = self.tex(sp.Inverse(n.X.T * n.W * n.X) * n.X.T * n.W)
        working = rf"{X} {beta}^{{(t)}} + {W}^{{-1}} {s}"
        lines = [
            (rf"{beta}^{{(t+1)}}", rf"{beta}^{{(t)}} + {self.tex(newton_step(n))}"),
            (None, rf"{scoring} \left({working}\right)"),
        ]
        text = (
            f"The score is not affine in ${e}$ (its derivative {reference('hessian', 'beta')} depends on "
            f"${e}$), so the score equations ${self.tex(n.X.T * n.s_vec)} = \\mathbf{{0}}$ are not linear in "
            f"${beta}$: there is no closed form, and they are solved iteratively with the exact ${n.s}$ and "
            f"${n.s}'$. Fisher scoring, or iteratively reweighted least squares (IRLS), steps from "
            f"${beta}^{{(t)}}$, with ${s}$ and ${W}$ evaluated there, to"
        )
        newton = f"Newton's method has the observed curvature $-{n.s}'$ in place of ${n.w}$"
        if f.observed_is_expected:
            newton += "; for this family and link the two are equal, so Newton's method is Fisher scoring. "
        else:
            newton += (
                f" (they differ here: $-{n.s}'$ depends on the response); symmle's fit takes Newton's steps. "
            )
        after = f"The second form is weighted least squares of the working response ${working}$ on ${X}$. "
        after += newton
        if self.shared:
            many = len(self.shared) > 1
            after += (
                f"The shared parameter{'s' if many else ''} {self.phi_tex} {'are' if many else 'is'} updated "
                f"jointly with the coefficients, from {'their' if many else 'its'} own score "
                f"equation{'s' if many else ''} below. "
            )
        after += (
            "Each step solves its linear system by a Cholesky factorisation, never by inverting the matrix."
        )
        steps = [
            Step(
                "No closed form: Newton's method",
                text,
                tuple(lines),
                after=after,
                kind="reduced",
                parameter="beta",
                section=MAXIMISING,
                label=label_for("reduced", "beta"),
            )
        ]
        if self.shared:
            equations = []
            for g in self.reg.shared_score:
                shown = f.shown(quick_simplify(g) or g)
                equations.append((sp.Sum(self.at(shown if f.same(shown, g) else g), (self.i, 1, self.N)), 0))
            steps.append(
                Step(
                    "Score equations of the shared parameters",
                    "The shared parameters solve, with the coefficients,",
                    tuple(equations),
                    kind="reduced",
                    parameter=self.shared[0].name,
                    section=MAXIMISING,
                    label=label_for("reduced", "shared"),
                )
            )
        return steps
