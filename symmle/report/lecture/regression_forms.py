r"""The notation of a regression's lecture and the forms it shows, each checked equal to the derivation.

A regression (:class:`~symmle.symbolic.regression.Regression`) is derived per observation, in the
linear predictor :math:`\eta` and the shared parameters :math:`\phi`.  The lecture writes it in the
notation of a lecture note on linear and logistic regression: the design matrix :math:`\mathbf{X}`
(:math:`N \times p`) with rows :math:`\mathbf{x}_i^\top`, the coefficients :math:`\boldsymbol{\beta}`, the
response vector :math:`\mathbf{y}`, the weights :math:`\mathbf{W}`; :class:`RegressionNames` picks these
names so that none is a name of the model.

:class:`RegressionForms` holds what the writers show beside the derivation's own expressions:

* a per-observation function written in the family's parameter :math:`\theta = g^{-1}(\eta)` where that
  is shorter (the logistic score :math:`y - p` rather than its form in :math:`\eta`), and the score by
  the chain rule :math:`s = (\partial \log f / \partial \theta)(d\theta / d\eta)`;
* the score vector in the data (:math:`\mathbf{X}^\top(\mathbf{y} - \mathbf{p})`) where :math:`s` is a
  multiple of :math:`y - \theta`;
* the bias of a profiled shared parameter (:class:`Bias`), derived only where the argument holds;
* a numerical check of the closed form (:meth:`RegressionForms.closed_form_verified`): the normal
  equations' solution zeroes the score on random data, and the profiled shared parameters zero theirs.

Every form is compared with the derivation's expression at random points in 30 digits
(:meth:`RegressionForms.same`) and dropped if it differs; nothing here derives what the pipeline did not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from symmle.report.lecture.core import combine_logs, quick
from symmle.symbolic.pointwise import NotEvaluable, evaluate
from symmle.symbolic.regression import Regression, ResidualStatistic

__all__ = [
    "Bias",
    "RegressionForms",
    "RegressionNames",
    "beta_hat",
    "display_function",
    "newton_step",
    "signs_out",
    "working_vector",
]

#: Random points at which two forms are compared, and how many must be evaluable.
_POINTS, _NEEDED = 6, 3


def _fresh(candidates: tuple[str, ...], taken: set[str]) -> str:
    """The first candidate not taken (else the first with underscores appended); it is then taken."""
    for c in candidates:
        if c not in taken:
            taken.add(c)
            return c
    name = candidates[0]
    while name in taken:
        name += "_"
    taken.add(name)
    return name


@dataclass(frozen=True)
class RegressionNames:
    r"""The symbols of a regression's lecture, none of them a name of the model.

    Attributes
    ----------
    N, i, p : Symbol
        The number of observations, their index and the number of coefficients.
    response : Symbol
        The response as the documents write it: the family's variable, except that a variable
        named ``x`` (the covariates' name in the notation of regression) is written ``y`` where
        the model has no ``y`` (:attr:`rename` maps the variable to it).
    X, row, beta : MatrixSymbol
        The design (:math:`N \times p`), its :math:`i`-th row as a column :math:`\mathbf{x}_i`, and
        :math:`\boldsymbol{\beta}` (:math:`p \times 1`).
    y_vec, theta_vec, s_vec, z_vec : MatrixSymbol
        The response, the linked parameter, the scores and the working response as :math:`N`-vectors.
    W : MatrixSymbol
        The diagonal matrix of the weights.
    y_i, eta_i, theta_i : Indexed
        Observation :math:`i`'s response, linear predictor and parameter.
    s, w, z : str
        The names of the score, the weight and the working response as functions.
    """

    N: sp.Symbol
    i: sp.Symbol
    p: sp.Symbol
    response: sp.Symbol
    variable: sp.Symbol
    X: sp.MatrixSymbol
    row: sp.MatrixSymbol
    beta: sp.MatrixSymbol
    y_vec: sp.MatrixSymbol
    theta_vec: sp.MatrixSymbol
    s_vec: sp.MatrixSymbol
    z_vec: sp.MatrixSymbol
    W: sp.MatrixSymbol
    y_i: sp.Expr
    eta_i: sp.Expr
    theta_i: sp.Expr
    s: str
    w: str
    z: str

    @classmethod
    def of(cls, reg: Regression, N: sp.Symbol, i: sp.Symbol) -> RegressionNames:
        """The names for ``reg``, with the sample size ``N`` and the index ``i``."""
        model = reg.model
        variable = reg.response
        taken = set(model.symbols) | {N.name, i.name, reg.eta.name, "beta", "f", "L", "ell", "J", "E", "Var"}
        taken |= {s.symbol.name for s in reg.residual_statistics}
        response = variable
        if variable.name == "x" and "y" not in taken:
            response = sp.Symbol("y", **variable.assumptions0)
            taken = (taken - {variable.name}) | {"y"}
        letter = next(
            (c for c in "XZUVG" if c not in taken and c.lower() not in taken),
            _fresh(("X",), set(taken)),
        )
        taken |= {letter, letter.lower()}
        p = sp.Symbol(_fresh(("p", "q", "K", "m"), taken), integer=True, positive=True)
        W = _fresh(("W", "V", "Q"), taken)
        s, w, z = (
            _fresh(("s", "u", "g"), taken),
            _fresh(("w", "v", "c"), taken),
            _fresh(("z", "t", "r"), taken),
        )
        theta = reg.parameter.symbol
        eta = sp.IndexedBase(reg.eta.name, **_kind(reg.eta))
        return cls(
            N=N,
            i=i,
            p=p,
            response=response,
            variable=variable,
            X=sp.MatrixSymbol(letter, N, p),
            row=sp.MatrixSymbol(f"{letter.lower()}_{i.name}", p, 1),
            beta=sp.MatrixSymbol("beta", p, 1),
            y_vec=sp.MatrixSymbol(response.name, N, 1),
            theta_vec=sp.MatrixSymbol(theta.name, N, 1),
            s_vec=sp.MatrixSymbol(s, N, 1),
            z_vec=sp.MatrixSymbol(z, N, 1),
            W=sp.MatrixSymbol(W, N, N),
            y_i=sp.IndexedBase(response.name, **_kind(response))[i],
            eta_i=eta[i],
            theta_i=sp.IndexedBase(theta.name, **_kind(theta))[i],
            s=s,
            w=w,
            z=z,
        )

    @property
    def rename(self) -> dict[sp.Symbol, sp.Symbol]:
        """The family's variable to the response as written (empty where they are the same)."""
        return {} if self.response == self.variable else {self.variable: self.response}

    def shown(self, expr: Any) -> Any:
        """``expr`` with the family's variable written as the response (:attr:`rename`)."""
        if not self.rename or not isinstance(expr, sp.Basic):
            return expr
        return expr.xreplace(self.rename)

    @property
    def linear_predictor(self) -> sp.Expr:
        r""":math:`\mathbf{x}_i^\top \boldsymbol{\beta}`."""
        return self.row.T * self.beta

    @property
    def hat_beta(self) -> sp.MatrixSymbol:
        return sp.MatrixSymbol("hat_beta", self.p, 1)


def _kind(s: sp.Symbol) -> dict[str, bool]:
    """The assumptions of ``s`` an indexed stand-in keeps."""
    keys = ("real", "positive", "nonnegative", "integer")
    return {k: v for k, v in s.assumptions0.items() if k in keys and v is not None}


@dataclass(frozen=True)
class Bias:
    r"""The bias of a profiled parameter :math:`\hat\phi = c\,R`, :math:`R = \sum_i (z_i - \hat\eta_i)^2`.

    With :math:`s = b(\eta - z)`: :math:`E[s] = 0` gives :math:`E[z_i] = \eta_i`, and
    :math:`E[s^2] = w` gives :math:`\operatorname{Var}(z_i) = w / b^2 = v`.  When :math:`v` is free
    of :math:`\eta` (the same for every observation),
    :math:`R = \mathbf{z}^\top(\mathbf{I} - \mathbf{H})\mathbf{z}` with the hat matrix
    :math:`\mathbf{H} = \mathbf{X}(\mathbf{X}^\top\mathbf{X})^{-1}\mathbf{X}^\top` and
    :math:`(\mathbf{I} - \mathbf{H})\mathbf{X} = \mathbf{0}`, so :math:`E[R] = v \operatorname{tr}(\mathbf{I}
    - \mathbf{H}) = (N - p)\,v`.

    Attributes
    ----------
    parameter : Symbol
        :math:`\phi`.
    statistic : ResidualStatistic
        :math:`R` and its summand.
    variance : Expr
        :math:`v = \operatorname{Var}(z_i)`.
    expected_statistic : Expr
        :math:`E[R] = (N - p) v`.
    expectation : Expr
        :math:`E[\hat\phi]`.
    unbiased : Expr or None
        :math:`\hat\phi\,\phi / E[\hat\phi]` where that ratio is free of the parameters (``R/(N - p)``).
    """

    parameter: sp.Symbol
    statistic: ResidualStatistic
    variance: sp.Expr
    expected_statistic: sp.Expr
    expectation: sp.Expr
    unbiased: sp.Expr | None

    @property
    def biased(self) -> bool:
        return sp.simplify(self.expectation - self.parameter) != 0


class RegressionForms:
    """The forms a regression's documents show, each checked equal to the derivation (module docstring)."""

    def __init__(self, reg: Regression, names: RegressionNames) -> None:
        self.reg, self.names = reg, names
        self.y, self.eta, self.theta = reg.response, reg.eta, reg.parameter.symbol
        self.inverse = reg.link.inverse(self.eta)
        self.rng = np.random.default_rng(20240611)

    # ------------------------------------------------------------------ numerical comparison
    def _draw(self, s: sp.Symbol, domain: str | None = None) -> float:
        rng = self.rng
        if domain == "real" or (domain is None and not s.is_positive):
            return float(rng.uniform(-1.5, 1.5))
        if domain == "unit":
            return float(rng.uniform(0.15, 0.85))
        if s.is_integer:
            return float(rng.integers(1, 6))
        return float(rng.uniform(0.4, 2.5))

    def response_values(self, size: int) -> np.ndarray:
        """Values in the response's support (at the model's point for constants in its ends)."""
        m = self.reg.model
        lo, hi = m.support_at(m.point())
        rng = self.rng
        if m.discrete:
            top = lo + 6 if math.isinf(hi) else hi
            return rng.integers(int(lo), int(top) + 1, size).astype(float)
        if math.isinf(lo) and math.isinf(hi):
            return rng.uniform(-2.0, 2.0, size)
        if math.isinf(hi):
            return lo + rng.uniform(0.2, 3.0, size)
        if math.isinf(lo):
            return hi - rng.uniform(0.2, 3.0, size)
        return lo + (hi - lo) * rng.uniform(0.05, 0.95, size)

    def point(self) -> dict[sp.Symbol, float]:
        """Random values of the response, the linear predictor, the shared parameters and the constants."""
        reg = self.reg
        domains = {q.symbol: q.domain for q in reg.model.parameters}
        out = {self.y: float(self.response_values(1)[0]), self.eta: self._draw(self.eta, reg.eta_domain)}
        out.update({s: self._draw(s, domains.get(s)) for s in reg.shared})
        out.update(reg.model.constant_point())
        return out

    def same(self, a: sp.Basic, b: sp.Basic) -> bool:
        r"""Whether ``a`` and ``b`` agree at random points (:math:`\theta = g^{-1}(\eta)`), in 30 digits.

        Symbols other than the response, :math:`\eta`, the shared parameters and the constants (``N``,
        ``p``, statistics) get random positive values.  At least :data:`_NEEDED` points must be
        evaluable, and every evaluable one must agree.
        """
        a, b = (sp.sympify(e).subs(self.theta, self.inverse) for e in (a, b))
        good = 0
        for _ in range(_POINTS):
            at = self.point()
            for s in (a.free_symbols | b.free_symbols) - set(at):
                at[s] = self._draw(s)
            try:
                u, v = evaluate(a, at), evaluate(b, at)
            except NotEvaluable:
                return False
            try:
                u, v = complex(u), complex(v)
            except (TypeError, ValueError):
                continue
            if not all(math.isfinite(t) for t in (u.real, u.imag, v.real, v.imag)):
                continue
            if abs(u - v) > 1e-20 * (1 + abs(u) + abs(v)):
                return False
            good += 1
        return good >= _NEEDED

    # ------------------------------------------------------------------ forms in theta
    def in_theta(self, expr: sp.Expr) -> sp.Expr | None:
        r"""``expr`` (in :math:`\eta`) written in :math:`\theta = g^{-1}(\eta)`, where that is no longer."""

        def rewrite() -> sp.Expr | None:
            e = sp.simplify(expr.subs(self.eta, self.reg.link.forward(self.theta)))
            e = min((e, sp.factor_terms(e)), key=sp.count_ops)
            if e.has(self.eta) or e.has(sp.erfinv) or sp.count_ops(e) > sp.count_ops(expr):
                return None
            return e

        e = quick("a per-observation function in the linked parameter", rewrite)
        return e if e is not None and self.same(e, expr) else None

    def shown(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` in the linked parameter where that is no longer, else as derived."""
        e = self.in_theta(expr)
        return expr if e is None else e

    @cached_property
    def log_density(self) -> sp.Expr:
        r""":math:`\log f(y; \theta, \phi)` in the family's parameter, logarithms expanded (checked)."""
        m = self.reg.model
        y, theta = self.y, self.theta

        def expand() -> sp.Expr:
            logf = sp.expand_log(sp.log(m.density), force=True)
            free = sp.Add(*[t for t in sp.Add.make_args(logf) if not t.has(y) and not t.has(theta)])
            return combine_logs(free) + (logf - free)

        e = quick("the log-density in the linked parameter", expand)
        if e is not None and self.same(e, self.reg.log_density):
            return e
        return self.reg.log_density.subs(self.eta, self.reg.link.forward(theta))

    @cached_property
    def chain(self) -> tuple[sp.Expr, sp.Expr] | None:
        r""":math:`(\partial \log f/\partial\theta, d\theta/d\eta)`, in :math:`\theta` where shorter."""
        a = quick(
            "the derivative in the linked parameter",
            lambda: sp.simplify(sp.diff(self.log_density, self.theta)),
        )
        if a is None:
            return None
        j = sp.diff(self.inverse, self.eta)
        j = self.shown(j)
        if not self.same(a * j, self.reg.score):
            return None
        return a, j

    @cached_property
    def score(self) -> sp.Expr:
        """The score :math:`s` as shown (in the linked parameter where shorter)."""
        return self.shown(self.reg.score)

    @cached_property
    def curvature(self) -> sp.Expr:
        return self.shown(self.reg.curvature)

    @cached_property
    def weight(self) -> sp.Expr | None:
        return None if self.reg.weight is None else self.shown(self.reg.weight)

    @cached_property
    def residual_factor(self) -> sp.Expr | None:
        r""":math:`c` where :math:`s = c\,(y - \theta)`, :math:`c` free of :math:`y` and :math:`\theta`."""
        y, theta = self.y, self.theta
        c = quick("the score as a multiple of y - theta", lambda: sp.simplify(self.score / (y - theta)))
        if c is None or c.has(y) or c.has(theta) or c.has(self.eta) or c == 0:
            return None
        return c if self.same(c * (y - theta), self.reg.score) else None

    @cached_property
    def observed_is_expected(self) -> bool:
        r"""Whether :math:`-s' = w` (the curvature is free of :math:`y`: Newton's method is scoring)."""
        w = self.reg.weight
        return w is not None and not self.reg.curvature.has(self.y) and self.same(-self.reg.curvature, w)

    @cached_property
    def concave(self) -> bool:
        r"""Whether SymPy's assumptions prove :math:`s' < 0` for every response and parameter."""
        return quick("the sign of the curvature", lambda: self.reg.curvature.is_negative) is True

    # ------------------------------------------------------------------ the closed form
    @cached_property
    def bias(self) -> tuple[Bias, ...]:
        """The bias of each profiled shared parameter where the argument of :class:`Bias` holds."""
        reg = self.reg
        z, b, w = reg.working_response, reg.slope, reg.weight
        if not reg.closed_form or z is None or b is None or w is None or len(reg.residual_statistics) != 1:
            return ()
        (stat,) = reg.residual_statistics
        if not self.same(stat.expr, (z - self.eta) ** 2):
            return ()
        v = quick("the variance of the working response", lambda: sp.simplify(w / b**2))
        if v is None or v.has(self.eta) or v.has(self.y):
            return ()
        N, p, R = self.names.N, self.names.p, stat.symbol
        out = []
        for phi in reg.shared:
            est = reg.profile.get(phi.name)
            if est is None or est.free_symbols - {R, N} or sp.diff(est, R, 2) != 0 or est.subs(R, 0) != 0:
                continue
            expected = (N - p) * v
            mean = signs_out(sp.factor(est.subs(R, expected)))
            ratio = sp.factor(mean / phi)
            unbiased = None
            if not (ratio.free_symbols & {phi, *reg.shared}):
                unbiased = signs_out(sp.factor(est / ratio))
            out.append(Bias(phi, stat, v, expected, mean, unbiased))
        return tuple(out)

    def closed_form_verified(self, rows: int = 9, cols: int = 3) -> bool:
        r"""Whether least squares of :math:`z(y)` on random data zeroes the score, and the profile its own.

        On random data (``rows`` observations, ``cols`` covariates, the response in its support, the
        shared parameters at random values): :math:`\hat\beta` by ``numpy.linalg.lstsq`` of
        :math:`z(y_i)` on :math:`\mathbf{X}` must give :math:`\mathbf{X}^\top s(\mathbf{y}, \mathbf{X}
        \hat\beta, \phi) = \mathbf{0}`, and the profiled :math:`\hat\phi` (at the residual statistics of
        :math:`\hat\beta`) must zero :math:`\sum_i \partial l / \partial\phi`.
        """
        reg = self.reg
        if reg.working_response is None:
            return False
        try:
            return self._verify(rows, cols)
        except (NotEvaluable, TypeError, ValueError, ZeroDivisionError, np.linalg.LinAlgError):
            return False

    def _verify(self, rows: int, cols: int) -> bool:
        reg = self.reg
        rng = self.rng
        consts = reg.model.constant_point()
        X = np.column_stack([np.ones(rows), rng.normal(size=(rows, cols - 1))])
        y = self.response_values(rows)
        z = np.array([float(complex(evaluate(reg.working_response, {self.y: v, **consts})).real) for v in y])
        beta = np.linalg.lstsq(X, z, rcond=None)[0]
        eta = X @ beta
        phi = {
            s: self._draw(s, q.domain) for q in reg.model.parameters for s in [q.symbol] if s in reg.shared
        }

        def at(k: int, values: dict) -> dict:
            return {self.y: y[k], self.eta: eta[k], **values, **consts}

        score = np.array([float(complex(evaluate(reg.score, at(k, phi))).real) for k in range(rows)])
        scale = np.abs(X).T @ np.abs(score) + 1.0
        if np.max(np.abs(X.T @ score) / scale) > 1e-9:
            return False
        if not reg.shared:
            return True
        stats = {
            st.symbol: sum(float(complex(evaluate(st.expr, at(k, phi))).real) for k in range(rows))
            for st in reg.residual_statistics
        }
        stats[self.names.N] = rows
        hat = {s: float(complex(evaluate(reg.profile[s.name], {**stats, **consts})).real) for s in reg.shared}
        for k_phi in range(len(reg.shared)):
            terms = [float(complex(evaluate(reg.shared_score[k_phi], at(k, hat))).real) for k in range(rows)]
            if abs(sum(terms)) > 1e-9 * (1.0 + sum(abs(t) for t in terms)):
                return False
        return True


def signs_out(e: sp.Expr) -> sp.Expr:
    """A product with each sum among its factors led by a plus: ``-s(p - N)/N -> s(N - p)/N``."""
    sign, factors = sp.S.One, []
    for f in sp.Mul.make_args(e):
        base, power = f.as_base_exp()
        if isinstance(base, sp.Add) and base.could_extract_minus_sign() and power.is_Integer:
            sign *= sp.S.NegativeOne ** int(power)
            factors.append(sp.Pow(-base, power))
        else:
            factors.append(f)
    return sp.Mul(sign, *factors)


def display_function(name: str, head: str) -> type[sp.Function]:
    """An undefined function called ``name`` written ``head(args)`` in LaTeX (``s'(y, eta)``, for display)."""

    def _latex(self: sp.Function, printer: object, *args: object, **kwargs: object) -> str:
        return head + "(" + ", ".join(printer._print(a) for a in self.args) + ")"  # type: ignore[attr-defined]

    return type(name, (sp.Function,), {"_latex": _latex})


def working_vector(reg: Regression, names: RegressionNames) -> sp.MatrixSymbol:
    r"""The vector least squares fits: :math:`\mathbf{y}` where :math:`z(y) = y`, else :math:`\mathbf{z}`."""
    return names.y_vec if reg.working_response == reg.response else names.z_vec


def beta_hat(reg: Regression, names: RegressionNames) -> sp.MatrixExpr:
    r"""Least squares, :math:`(\mathbf{X}^\top\mathbf{X})^{-1}\mathbf{X}^\top\mathbf{z}`."""
    X = names.X
    return sp.Inverse(X.T * X) * X.T * working_vector(reg, names)


def newton_step(names: RegressionNames) -> sp.MatrixExpr:
    r"""The scoring step :math:`(\mathbf{X}^\top\mathbf{W}\mathbf{X})^{-1}\mathbf{X}^\top\mathbf{s}`."""
    X = names.X
    return sp.Inverse(X.T * names.W * X) * X.T * names.s_vec
