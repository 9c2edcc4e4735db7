r"""What a regression's lecture steps share, and the steps of its Fisher information.

:class:`RegressionBase` holds the state of a regression's lecture (the
:class:`~symmle.symbolic.regression.Regression`, its names and checked forms from
:mod:`symmle.report.lecture.regression_forms`) and its helpers; its information steps are the weight
:math:`w(\eta, \phi) = -E[\partial^2 l/\partial\eta^2]` and :math:`\mathbf{X}^\top\mathbf{W}\mathbf{X}`, the
per-observation information in :math:`(\eta, \phi)` with its sums over the observations, and the
Cramér–Rao bound of :math:`\hat{\boldsymbol\beta}` where the information is block-diagonal.  The other
steps are in :mod:`symmle.report.lecture.regression_estimators` and
:mod:`symmle.report.lecture.regression`.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symmle.model.spec import Model
from symmle.report.lecture.core import INFORMATION, Lecture, Step, quick
from symmle.report.lecture.finish import label_for, reference
from symmle.report.lecture.regression_forms import RegressionForms, RegressionNames, display_function
from symmle.report.lecture.vector_forms import DataSum
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.regression import Regression
from symmle.symbolic.stationarity import Stationarity

__all__ = ["RegressionBase", "quick_simplify"]

#: Widest per-observation formula shown (characters of LaTeX); a longer one is described instead.
WIDEST = 700


def quick_simplify(expr: sp.Expr) -> sp.Expr | None:
    """``simplify(expr)`` under a presentation budget (``None`` if it times out)."""
    return quick("simplify a per-observation function", lambda: sp.simplify(expr))


class RegressionBase(Lecture):
    r"""The state and helpers of a regression's lecture, and its information steps.

    ``lik``, ``st`` and ``info`` are those of one observation in :math:`(\eta, \phi)`; the
    regression itself is ``regression`` (derived here from ``model`` if it is not given).
    """

    def __init__(
        self,
        model: Model,
        lik: Likelihood,
        st: Stationarity,
        info: Information,
        regression: Regression | None = None,
    ) -> None:
        super().__init__(model, lik, st, info)
        if regression is None:
            from symmle.symbolic.regression import derive_regression

            regression = derive_regression(model)
        self.reg = reg = regression
        self.names = n = RegressionNames.of(reg, lik.N, lik.index)
        self.forms = RegressionForms(reg, n)
        self.y, self.eta, self.par = reg.response, reg.eta, reg.parameter.symbol
        self.shared = reg.shared
        self.data = frozenset({n.response})
        self.at_i = {self.y: n.y_i, self.eta: n.eta_i, self.par: n.theta_i}
        self.ell = sp.Function("ell")(n.beta, *self.shared)
        self.l_fn, self.s_fn, self.w_fn = sp.Function("l"), sp.Function(n.s), sp.Function(n.w)
        self.s_prime = display_function(f"{n.s}_prime", f"{n.s}'")
        self.closed = reg.kind == "closed_form"

    @classmethod
    def fits(cls, model: Model) -> bool:
        """Whether ``model`` is a regression (a parameter linked to a linear predictor)."""
        return bool(getattr(model, "is_regression", False))

    # ------------------------------------------------------------------ helpers
    def tex(self, expr: Any) -> str:
        """``expr`` in LaTeX, the family's variable written as the response (``y`` for ``x``)."""
        return super().tex(self.names.shown(expr))

    def at(self, expr: Any) -> Any:
        """``expr`` at observation ``i``: ``y_i``, ``eta_i`` and ``theta_i``."""
        return expr.xreplace(self.at_i) if isinstance(expr, sp.Basic) else expr

    def per(self, fn: Any, *lead: sp.Basic) -> sp.Expr:
        """``fn(lead..., phi...)``: a per-observation function, the shared parameters last."""
        return fn(*lead, *self.shared)

    def fits_page(self, expr: sp.Basic) -> bool:
        """Whether ``expr`` is short enough to show."""
        return len(self.tex(expr)) <= WIDEST

    @property
    def phi_tex(self) -> str:
        """The shared parameters, as maths in a sentence."""
        return self.listing([f"${self.tex(s)}$" for s in self.shared])

    @property
    def orthogonal(self) -> bool:
        r"""Whether every cross entry :math:`I_{\eta\phi}` of the information is zero (verified)."""
        info = self.reg.information
        return all(info[0, k] == 0 for k in range(1, len(self.shared) + 1))

    # ------------------------------------------------------------------ information
    def information_steps(self) -> list[Step]:
        """The weight, :math:`X^T W X`, the information in the shared parameters and the bound."""
        n, f = self.names, self.forms
        w_eta = self.per(self.w_fn, self.eta)
        e, s, w = self.tex(self.eta), n.s, n.w
        lines: list[tuple[Any, Any]] = []
        if f.weight is not None:
            lines.append((w_eta, f.weight))
        info_lhs = rf"\mathcal{{I}}_{{{self.tex(n.beta)} {self.tex(n.beta)}}}"
        lines += [
            (info_lhs, DataSum(sp.MatMul(self.at(w_eta), n.row, n.row.T), self.i, self.N)),
            (None, n.X.T * n.W * n.X),
        ]
        after = f"with ${self.tex(n.W)} = \\operatorname{{diag}}({self.tex(self.at(w_eta))})$. "
        if f.weight is None:
            after += f"symmle found no closed form of ${w}$ that it could check."
        elif f.observed_is_expected:
            after += f"Here ${w} = -{s}'$: the observed and the expected information are equal."
        else:
            after += (
                f"The observed information has $-{s}'$, which depends on the response, in place of ${w}$."
            )
        text = (
            f"The Fisher information is the expected negative Hessian {reference('hessian', 'beta')}. Per "
            f"observation, the weight ${self.tex(w_eta)} = -\\mathrm{{E}}[\\partial^{{2}} l / \\partial "
            f"{e}^{{2}}]$ is the information in the linear predictor:"
        )
        steps = [
            Step(
                "Fisher information",
                text,
                tuple(lines),
                after=after,
                kind="fisher",
                parameter="beta",
                section=INFORMATION,
                label=label_for("fisher", "beta"),
            )
        ]
        if self.shared:
            steps.append(self.shared_information_step())
        if f.weight is not None and self.orthogonal:
            steps.append(self.bound_step())
        return steps

    def shared_information_step(self) -> Step:
        r"""The information of one observation in :math:`(\eta, \phi)` and its sums over the observations."""
        n, info = self.names, self.reg.information
        order = [self.eta, *self.shared]
        args = ", ".join(self.tex(s) for s in order)
        lines: list[tuple[Any, Any]] = [(rf"\mathcal{{I}}({args})", info)]
        for k, phi in enumerate(self.shared, start=1):
            cross = info[0, k]
            if cross != 0 and cross is not sp.nan:
                lhs = rf"\mathcal{{I}}_{{{self.tex(n.beta)} {self.tex(phi)}}}"
                lines.append((lhs, DataSum(sp.MatMul(self.at(cross), n.row), self.i, self.N)))
            own = info[k, k]
            if own is not sp.nan:
                total = self.N * own if not own.has(self.eta) else sp.Sum(self.at(own), (self.i, 1, self.N))
                lines.append((rf"\mathcal{{I}}_{{{self.tex(phi)} {self.tex(phi)}}}", total))
        after = ""
        if self.orthogonal:
            after = (
                f"The cross terms vanish: ${self.tex(n.beta)}$ and {self.phi_tex} are orthogonal, and the "
                "information is block-diagonal."
            )
        if any(info[k, j] is sp.nan for k in range(info.rows) for j in range(info.cols)):
            after += (
                " An entry marked -- has no closed form that symmle could find and check; standard errors "
                "then use the observed information at the estimate."
            )
        return Step(
            "Information with the shared parameters",
            f"Per observation, the Fisher information in $({args})$, each entry checked numerically by "
            "symmle, and its sums over the observations:",
            tuple(lines),
            after=after.strip(),
            kind="fisher",
            parameter=self.shared[0].name,
            section=INFORMATION,
            label=label_for("fisher", "shared"),
        )

    def bound_step(self) -> Step:
        r"""The Cramér–Rao bound of :math:`\hat{\boldsymbol\beta}`: :math:`(X^T W X)^{-1}`."""
        n = self.names
        lines: list[tuple[Any, Any]] = [(sp.Function("Cov")(n.hat_beta), sp.Inverse(n.X.T * n.W * n.X))]
        w = self.reg.weight
        if w is not None and not w.has(self.eta) and not w.has(self.par):  # W = w I
            lines.append((None, sp.MatMul(1 / w, sp.Inverse(n.X.T * n.X))))
        return Step(
            "Cramér–Rao bound",
            f"An unbiased estimator of ${self.tex(n.beta)}$ has a covariance at least the inverse of the "
            f"information {reference('fisher', 'beta')} (in the order of positive semi-definite matrices), a "
            "bound the MLE attains as $N \\to \\infty$:",
            tuple(lines),
            kind="crlb",
            section=INFORMATION,
            relations=(r"\succeq",) + ("=",) * (len(lines) - 1),
            label=label_for("crlb"),
        )
