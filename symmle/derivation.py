"""The :class:`Derivation`: everything derived for one model, immutable.

:func:`derive` runs the pipeline (spec -> likelihood -> stationarity ->
information) and records the ordered steps a lecturer would write.  The
consumers (render, compile, check, fit) only read a Derivation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import sympy as sp

from symmle.budget import DEFAULT_TIMEOUT, enforced
from symmle.fisher import Information, fisher_information
from symmle.likelihood import Likelihood, build_likelihood
from symmle.solve import Estimator, Stationarity, solve_stationarity
from symmle.spec import Model, load_model

__all__ = ["Step", "Derivation", "derive"]


@dataclass(frozen=True)
class Step:
    """One step of a derivation: a sentence and aligned equations.

    ``lines`` are ``(lhs, rhs)`` pairs of SymPy objects; the first line's
    ``lhs`` is shown, later lines continue with ``= rhs``.
    """

    title: str
    text: str
    lines: tuple[tuple[sp.Basic, sp.Basic], ...]


@dataclass(frozen=True, eq=False)
class Derivation:
    """The derivation of the MLE of one model.

    Attributes
    ----------
    model : Model
    likelihood : Likelihood
    stationarity : Stationarity
    information : Information
    steps : tuple of Step
    warnings : tuple of str
    """

    model: Model
    likelihood: Likelihood
    stationarity: Stationarity
    information: Information
    steps: tuple[Step, ...]
    warnings: tuple[str, ...]

    @property
    def solutions(self) -> dict[str, Estimator]:
        """Every parameter's :class:`~symmle.solve.Estimator` record."""
        return dict(self.stationarity.estimators)

    @cached_property
    def estimators(self) -> dict[str, sp.Expr | Estimator]:
        """Closed-form estimators as SymPy expressions; a record where there is none."""
        return {k: (e.expr if e.kind == "closed_form" else e) for k, e in self.stationarity.estimators.items()}

    @property
    def fisher(self) -> sp.Matrix:
        """Per-observation Fisher information (``nan`` where it does not exist)."""
        return self.information.fisher

    @property
    def crlb(self) -> sp.Matrix | None:
        """Cramér–Rao bound :math:`(N I)^{-1}`, or ``None``."""
        return self.information.crlb

    @property
    def log_likelihood(self) -> sp.Expr:
        return self.likelihood.log_likelihood

    @property
    def nll(self) -> sp.Expr:
        return self.likelihood.nll

    @property
    def sufficient_statistics(self) -> dict[str, sp.Expr]:
        """``{"T1": g1(x), ...}``: each ``T_j`` is the sum of ``g_j`` over the sample."""
        return {s.symbol.name: s.expr for s in self.likelihood.statistics}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle derive --format json`` (schema 1)."""
        from symmle import render

        return render.to_dict(self)

    def to_text(self) -> str:
        from symmle import render

        return render.to_text(self)

    def to_latex(self, standalone: bool = False) -> str:
        from symmle import render

        return render.to_latex(self, standalone=standalone)

    def to_markdown(self) -> str:
        from symmle import render

        return render.to_markdown(self)

    def compile(self, *, timeout: float | None = None):
        """Fast NumPy estimators of this derivation; see :class:`symmle.compile.CompiledModel`."""
        from symmle.compile import CompiledModel

        return CompiledModel(self, timeout=timeout)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in self.estimators.items())
        return f"<Derivation {self.model.name}: {parts}>"


def _steps(model: Model, lik: Likelihood, st: Stationarity, info: Information) -> tuple[Step, ...]:
    x, N, i = model.variable, lik.N, lik.index
    theta = model.parameter_symbols
    f = sp.Function("f")
    L, ell, J = sp.Function("L")(*theta), sp.Function("ell")(*theta), sp.Function("J")(*theta)
    xi = lik.sample[i]
    steps = [
        Step("Model", f"The {'probability mass' if model.discrete else 'density'} of one observation, for {x} in [{model.support[0]}, {model.support[1]}]:",
             ((f(x), model.density),)),
        Step("Likelihood", f"The likelihood of N independent, identically distributed samples {x}_1, ..., {x}_N is the product of their densities:",
             ((L, sp.Product(model.density.subs(x, xi), (i, 1, N))),)),
    ]
    explicit = lik.explicit(lik.log_likelihood)
    steps.append(Step("Log-likelihood", "Taking logarithms turns the product into a sum:",
                      ((ell, sp.Sum(lik.per_sample(lik.log_density), (i, 1, N))), (ell, explicit))))
    stats = tuple((s.symbol, lik.sum_over_sample(s.expr)) for s in lik.statistics)
    if stats:
        steps.append(Step("Sufficient statistics", "The data enter only through these sums:", stats))
    steps.append(Step("Negative log-likelihood", "We minimise the negative log-likelihood:", ((J, lik.nll),)))
    for p, s in zip(st.parameters, st.score):
        steps.append(Step(f"Stationarity in {p}", f"Set the partial derivative with respect to {p} to zero:",
                          ((sp.Derivative(J, p), -s), (sp.S.Zero, -s))))
    for name, e in st.estimators.items():
        hat = sp.Symbol(f"hat_{name}")
        if e.kind == "closed_form":
            steps.append(Step(f"Estimator of {name}", "Solving gives the maximum-likelihood estimator (verified: the score vanishes and the Hessian is negative definite on test data):",
                              ((hat, e.expr), (hat, lik.explicit(e.expr)))))
        elif e.kind == "boundary":
            steps.append(Step(f"Estimator of {name}", f"The support depends on {name}; {e.note}:", ((hat, e.expr),)))
        elif e.kind == "numeric":
            steps.append(Step(f"Estimator of {name}", e.note + ":", ((e.equation.lhs, e.equation.rhs),)))
        else:
            steps.append(Step(f"Estimator of {name}", e.note, ()))
    if info.fisher.shape[0]:
        steps.append(Step("Fisher information", "Per observation, I(theta) = E[-d^2 log f / d theta^2]:", ((sp.Symbol("I"), info.fisher),)))
    if info.crlb is not None:
        steps.append(Step("Cramér–Rao bound", "Any unbiased estimator has covariance at least (N I)^-1:", ((sp.Symbol("CRLB"), info.crlb),)))
    return tuple(steps)


def derive(model: str | Path | Model, *, timeout: float | None = DEFAULT_TIMEOUT, constants: Mapping[str, Any] | None = None) -> Derivation:
    """Derive the maximum-likelihood estimators of a model.

    Parameters
    ----------
    model : str, Path or Model
        A catalogue name (see ``symmle list``), a spec file, or a Model.
    timeout : float, optional
        Budget in seconds of each symbolic step; ``None`` for none.
    constants : mapping, optional
        Known values of constants (used for numerical verification).

    Returns
    -------
    Derivation

    Raises
    ------
    SpecError
        If the model is invalid.
    DerivationTimeout
        If a step that cannot fall back runs out of time.

    Examples
    --------
    >>> d = derive("exponential")
    >>> d.estimators["lam"]
    N/T1
    >>> d.fisher
    Matrix([[lam**(-2)]])
    """
    m = load_model(model)
    if constants:
        m = m.with_constants(constants)
    lik = build_likelihood(m, timeout=timeout)
    st = solve_stationarity(lik, timeout=timeout)
    info = fisher_information(lik, list(st.parameters), timeout=timeout)
    warnings = list(st.warnings) + list(info.warnings)
    if timeout and not enforced():
        warnings.append("time budgets are not enforced outside the main thread")
    return Derivation(m, lik, st, info, _steps(m, lik, st, info), tuple(warnings))
