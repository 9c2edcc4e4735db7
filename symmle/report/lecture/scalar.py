"""The lecture of a scalar IID model: one observed variable, N independent draws from its density.

The steps, in order: the model; the likelihood as a product, the log-likelihood as a sum and the NLL;
the support constraints of boundary parameters; each partial derivative set to zero and solved for its
parameter; the reduced equation of the parameters found numerically; the estimators; the second-order
check; the Fisher information of one observation and the Cramér–Rao bound (those two in
:mod:`symmle.report.lecture.information`).  The notation and the checked rearrangements are those of
:mod:`symmle.report.lecture.core`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sympy as sp

from symmle.model.spec import Model
from symmle.report.lecture.core import (
    LIKELIHOOD,
    MAXIMISING,
    MODEL,
    SECOND_ORDER,
    Step,
    quick,
)
from symmle.report.lecture.finish import label_for, reference
from symmle.report.lecture.information import InformationSteps
from symmle.report.printer import INDICATOR, subscript
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood, quantile_parts
from symmle.symbolic.stationarity import Stationarity

__all__ = ["ScalarLecture"]


class ScalarLecture(InformationSteps):
    """The steps of the derivation of a scalar IID model (see the module docstring)."""

    def __init__(self, model: Model, lik: Likelihood, st: Stationarity, info: Information) -> None:
        super().__init__(model, lik, st, info)
        self.x = model.variable
        self.xi = lik.sample[self.i]
        self.X = self.random_variable(self.x)
        self.data = frozenset({self.x, self.X})
        # the log-likelihood as a lecturer writes it: N * (what is free of x) + coefficients times sums
        self.logf = lik.log_density
        self.ell_sum = self.gather(self.logf, self.x, self.xi)
        self.solved: dict[sp.Symbol, sp.Expr] = {}  # p -> its own score equation solved for p
        self.shown: dict[sp.Symbol, sp.Expr] = {}  # p -> its displayed estimator (in hats)
        self.joint = False  # some stationarity condition was not solved on its own

    @classmethod
    def fits(cls, model: Model) -> bool:
        """Whether ``model`` observes one scalar variable."""
        return isinstance(model.variable, sp.Symbol)

    def support_tex(self) -> str:
        """The support of the variable, as LaTeX."""
        lo, hi = self.model.support
        x = self.tex(self.x)
        if self.model.discrete:
            if hi == sp.oo:
                return rf"{x} \in \{{{self.tex(lo)}, {self.tex(lo + 1)}, \dots\}}"
            if (hi - lo).is_Integer and hi - lo <= 2:
                return rf"{x} \in \{{{', '.join(self.tex(lo + k) for k in range(int(hi - lo) + 1))}\}}"
            return rf"{x} \in \{{{self.tex(lo)}, {self.tex(lo + 1)}, \dots, {self.tex(hi)}\}}"
        left = r"-\infty <" if lo == -sp.oo else rf"{self.tex(lo)} \le"
        right = r"< \infty" if hi == sp.oo else rf"\le {self.tex(hi)}"
        return f"{left} {x} {right}"

    # ------------------------------------------------------------------ steps
    def steps(self) -> list[Step]:
        """The model, the likelihood, its maximisation, the second-order check, the information."""
        out = self.model_steps() + self.likelihood_steps()
        out += self.boundary_steps()
        out += self.stationarity_steps()
        out += self.numeric_steps()
        out += self.estimator_steps()
        out += self.hessian_steps()
        out += self.information_steps()
        return out

    def model_steps(self) -> list[Step]:
        """The model: the density, its support, the parameters and the known constants."""
        m = self.model
        xs = rf"{subscript(self.tex(self.x), '1')}, \dots, {subscript(self.tex(self.x), 'N')}"
        text = (
            f"We are given $N$ independent, identically distributed (IID) observations ${xs}$, "
            f"each a draw from the {self.density_word}"
        )
        many = len(m.parameters) > 1
        after = (
            f"for ${self.support_tex()}$. The unknown parameter{'s are' if many else ' is'} "
            f"{self.listing([self.domain_tex(q) for q in m.parameters])}"
        )
        if m.constants:
            known = []
            for q in m.constants:
                value = ""
                if q.value is not None:
                    value = f" (here ${self.tex(q.symbol)} = {self.tex(sp.nsimplify(q.value))}$)"
                known.append(self.domain_tex(q) + value)
            after += "; known constant" + ("s" if len(known) > 1 else "") + ": " + self.listing(known)
        after += "."
        line = (self.f(self.x, *self.theta), self.density_shown(m.density, self.x))
        return [
            Step(
                "Model",
                text + ":",
                (line,),
                after=after,
                kind="model",
                section=MODEL,
                label=label_for("model"),
            )
        ]

    def support_parameters(self) -> list[sp.Symbol]:
        """The parameters that set an end of the support."""
        return [p for p in self.theta if self.model.depends_on_support(p)]

    def indicators(self) -> tuple[sp.Expr, sp.Expr] | None:
        """The indicator that ``x_i`` lies within the ends of the support set by parameters; its product.

        ``1{x_i <= theta}`` and ``1{theta >= max_i x_i}``; ``None`` if no parameter sets an end.
        """
        lo, hi = self.model.support
        params = set(self.theta)
        low, high = bool(lo.free_symbols & params), bool(hi.free_symbols & params)
        if not (low or high):
            return None
        smallest, largest = self.lik.order_statistics
        one = sp.Function(INDICATOR)
        if low and high:
            each = one(sp.And(sp.Le(lo, self.xi, evaluate=False), sp.Le(self.xi, hi, evaluate=False)))
            every = one(sp.And(sp.Le(lo, smallest, evaluate=False), sp.Ge(hi, largest, evaluate=False)))
        elif high:
            each, every = one(sp.Le(self.xi, hi, evaluate=False)), one(sp.Ge(hi, largest, evaluate=False))
        else:
            each, every = one(sp.Le(lo, self.xi, evaluate=False)), one(sp.Le(lo, smallest, evaluate=False))
        return each, every

    def feasible_tex(self) -> str:
        """The constraints that the data put on the parameters setting the support, as LaTeX."""
        lo, hi = self.model.support
        params = set(self.theta)
        smallest, largest = (self.tex(s) for s in self.lik.order_statistics)
        parts = []
        if lo.free_symbols & params:
            parts.append(rf"{self.tex(lo)} \le {smallest}")
        if hi.free_symbols & params:
            parts.append(rf"{self.tex(hi)} \ge {largest}")
        return " and ".join(f"${t}$" for t in parts)

    def likelihood_steps(self) -> list[Step]:
        """The likelihood as a product, the log-likelihood as a sum, and the NLL.

        Where parameters set the support, the likelihood carries the indicator
        that every observation lies in it, and the log-likelihood is shown
        where that indicator is one.
        """
        lik, N, i, xi = self.lik, self.N, self.i, self.xi
        sample = lik.sample
        chain = (
            rf"{self.tex(self.f(sample[1], *self.theta))} \, {self.tex(self.f(sample[2], *self.theta))} "
            rf"\cdots {self.tex(self.f(sample[N], *self.theta))}"
        )
        joint = "joint probability" if self.model.discrete else "joint density"
        each = self.density_shown(self.model.density, self.x, xi)
        lines: list[tuple[Any, Any]] = [
            (self.L, chain),
            (self.L, sp.Product(self.f(xi, *self.theta), (i, 1, N))),
        ]
        indicators = self.indicators()
        text = (
            f"The observations are independent, so their {joint} is the product of their "
            f"{self.densities_word}. "
            f"Viewed as a function of the parameter{'s' if len(self.theta) > 1 else ''}, "
            "it is the likelihood"
        )
        if indicators is None:
            lines.append((self.L, sp.Product(each, (i, 1, N))))
            text += ":"
        else:
            ind_i, ind_all = indicators
            lines.append((self.L, sp.Product(sp.Mul(each, ind_i, evaluate=False), (i, 1, N))))
            lines.append((self.L, sp.Mul(sp.Product(each, (i, 1, N)), ind_all, evaluate=False)))
            text += (
                r"; the indicator $\mathbf{1}\{\cdot\}$ (one where its condition holds, zero elsewhere) "
                f"says that the {self.density_word} is zero outside the support, which depends on "
                + self.listing([f"${self.tex(p)}$" for p in self.support_parameters()])
                + ":"
            )
        steps = [
            Step(
                "Likelihood",
                text,
                tuple(lines),
                kind="likelihood",
                section=LIKELIHOOD,
                label=label_for("likelihood"),
            )
        ]
        per = self.per_sample(self.logf, self.x).subs(self.x, xi)
        stats = [s for s in lik.statistics if s.informative]
        sums = self.listing([f"${self.tex(lik.sum_over_sample(s.expr))}$" for s in stats])
        # whether the observations appear in the log-likelihood at all (not only through the support)
        data_inside = bool(self.ell_sum.atoms(sp.Indexed)) or self.ell_sum.has(self.x)
        after = []
        if indicators is not None:
            after.append(
                f"This holds where the indicator in {reference('likelihood')} is one, that is for "
                f"{self.feasible_tex()}; elsewhere the likelihood is zero and "
                r"$\ell = -\infty$."
            )
        if stats and lik.coupled == 0:
            after.append(
                f"The data enter only through {sums}: {'these are' if len(stats) > 1 else 'this is'} "
                "sufficient for the parameters."
                if indicators is None
                else f"Apart from the indicator, the data enter only through {sums}."
            )
        elif stats:
            after.append(
                f"The data enter through {sums} and through sums that involve the parameters themselves."
            )
        elif data_inside:
            after.append("The data enter through sums that involve the parameters themselves.")
        elif indicators is not None:
            after.append(
                "Apart from the indicator, the data do not enter the likelihood: only the support "
                "constrains the parameters."
            )
        else:
            after.append("The data do not enter the log-likelihood at all.")
        steps.append(
            Step(
                "Log-likelihood",
                "Instead of maximising the likelihood directly, it is easier to maximise its logarithm, "
                f"the log-likelihood: the logarithm turns the product {reference('likelihood')} into a sum.",
                (
                    (self.ell, sp.log(self.L)),
                    (self.ell, sp.Sum(sp.log(self.f(xi, *self.theta)), (i, 1, N))),
                    (self.ell, sp.Sum(per, (i, 1, N))),
                    (self.ell, self.ell_sum),
                ),
                after=" ".join(after),
                kind="log_likelihood",
                section=LIKELIHOOD,
                label=label_for("log_likelihood"),
            )
        )
        nll = -self.ell_sum
        lines = [(self.J, -self.ell), (self.J, nll)]
        inside = any(s.function.free_symbols & set(self.theta) for s in nll.atoms(sp.Sum))
        if inside and lik.coupled == 0:
            expanded = quick("the NLL in the sums", lambda: self.in_statistics(lik.nll))
            if expanded is not None and expanded != nll:
                lines.append((self.J, expanded))
        steps.append(
            Step(
                "Negative log-likelihood",
                "Maximising the log-likelihood is the same as minimising the negative log-likelihood (NLL):",
                tuple(lines),
                kind="nll",
                section=LIKELIHOOD,
                label=label_for("nll"),
            )
        )
        return steps

    # ------------------------------------------------------------------ maximisation
    def boundary_steps(self) -> list[Step]:
        """For each parameter the support depends on: the constraint and the slope that makes it bind."""
        steps = []
        lo, hi = self.model.support
        how = dict(self.st.support)
        for p, value in self.st.boundary:
            e = self.st.estimators[p.name]
            found = how.get(p)
            if found is not None:
                ends = [(c.upper, c.end, c.order) for c in found.constraints]
            else:
                upper = p in hi.free_symbols
                ends = [(upper, hi if upper else lo, self.lik.order_statistics[1 if upper else 0])]
            parts = [
                rf"{self.tex(end)} \ge {self.tex(order)}"
                if upper
                else rf"{self.tex(end)} \le {self.tex(order)}"
                for upper, end, order in ends
            ]
            constraint = "$ and $".join(parts)
            if found is not None and len(ends) > 1:
                bounds = "$ and $".join(self.tex(c.bound(p)) for c in found.constraints)
                constraint += f"$, that is ${bounds}"
            slope = self.tidy(sp.diff(self.ell_sum, p))
            sign = True if slope.is_positive else False if slope.is_negative else None
            if sign is None and found is not None and found.proved:
                sign = found.direction > 0

            text = (
                f"The support depends on ${self.tex(p)}$, so by its indicator the likelihood "
                f"{reference('likelihood')} is zero unless every observation lies in the support, that is "
                f"unless ${constraint}$. On this feasible set the derivative of the log-likelihood "
                f"{reference('log_likelihood')} is"
            )
            if sign is True:
                why = f"It is positive, so the log-likelihood increases with ${self.tex(p)}$"
            elif sign is False:
                why = f"It is negative, so the log-likelihood decreases as ${self.tex(p)}$ grows"
            else:
                why = f"symmle checked on test data that {e.note}"
            if len(ends) > 1:
                side = "the largest lower bound" if sign is False else "the smallest upper bound"
            else:
                side = "the largest observation" if ends[0][0] else "the smallest observation"
            after = (
                f"{why}, and the maximum is where the constraint binds: at {side}."
                if sign is not None
                else f"{why[0].upper()}{why[1:]}."
            )
            steps.append(
                Step(
                    f"Support constraint on {p.name}",
                    text,
                    ((sp.Derivative(self.ell, p), slope),),
                    after=after,
                    kind="boundary",
                    parameter=p.name,
                    section=MAXIMISING,
                    label=label_for("boundary", p.name),
                )
            )
            self.shown[p] = value
        return steps

    def _values(self) -> dict[sp.Symbol, sp.Expr]:
        """Parameters with an estimator in closed form or as an order statistic."""
        out = {}
        for p in self.theta:
            e = self.st.estimators.get(p.name)
            if e is not None and e.kind in ("closed_form", "boundary") and e.expr is not None:
                out[p] = e.expr
        return out

    def stationarity_steps(self) -> list[Step]:
        """Each partial derivative of the NLL, and its root for its own parameter where one is found."""
        steps = []
        values = self._values()
        profile = dict(self.st.profile)
        kinks = dict(self.st.kinks)
        nll = -self.ell_sum
        for p in self.st.parameters:
            d = self.spread(sp.diff(nll, p))
            lines: list[tuple[Any, Any]] = [(sp.Derivative(self.J, p), d)]
            inside = any(p in s.free_symbols for s in d.atoms(sp.Sum))
            lin = self.spread(self.linearise(d, {p})) if inside else d
            if lin != d:
                lines.append((sp.Derivative(self.J, p), lin))
            section = MAXIMISING
            steps.append(
                Step(
                    f"Partial derivative in {p.name}",
                    f"Differentiate the NLL {reference('nll')} with respect to ${self.tex(p)}$:",
                    tuple(lines),
                    kind="derivative",
                    parameter=p.name,
                    section=section,
                    label=label_for("derivative", p.name),
                )
            )
            if p in kinks:
                steps.append(self._subgradient_step(p, kinks[p]))
                continue
            e = self.st.estimators[p.name]
            target = None
            if e.kind == "closed_form":
                target = e.expr
            elif p in profile:
                target = profile[p]
            roots = (
                quick(
                    f"solve dJ/d{p} = 0 for {p}",
                    lambda p=p, lin=lin: self.solve_own(p, self.linearise(lin, linear_only=True)),
                )
                or []
            )
            chosen = None
            for r in roots:
                if target is None:
                    break
                others = {q: v for q, v in values.items() if q is not p and q in r.free_symbols}
                unknown = any(q in r.free_symbols and q not in others for q in self.theta if q is not p)
                if unknown and p not in profile:
                    continue
                if self.equal(r.subs(others), target):
                    chosen = r
                    break
            dp = rf"\partial J / \partial {self.tex(p)}"
            if chosen is not None:
                self.solved[p] = chosen
                rest = [q for q in self.theta if q is not p and q in chosen.free_symbols]
                after = ""
                if rest:
                    names = self.listing([f"${self.tex(q)}$" for q in rest])
                    after = f"This holds for any value of {names}; " + (
                        "at the maximum it takes its estimate."
                        if len(rest) == 1
                        else "at the maximum they take their estimates."
                    )
                steps.append(
                    Step(
                        f"Stationarity in {p.name}",
                        f"Setting ${dp} = 0$ in {reference('derivative', p.name)} and solving for "
                        f"${self.tex(p)}$ gives",
                        ((p, chosen),),
                        after=after,
                        kind="stationary",
                        parameter=p.name,
                        section=section,
                        label=label_for("stationary", p.name),
                    )
                )
            else:
                # no closed form for p on its own: the condition is the derivative above, set to zero
                self.joint = True
                why = (
                    f"Setting ${dp} = 0$ in {reference('derivative', p.name)} gives an equation with "
                    f"no closed-form solution for ${self.tex(p)}$ on its own."
                    if e.kind != "closed_form"
                    else "It is set to zero below, together with the other conditions."
                )
                steps[-1] = replace(steps[-1], after=why)
        return steps

    def _subgradient_step(self, p: sp.Symbol, quantile: sp.Expr) -> Step:
        """A parameter in which the log-likelihood is piecewise linear: its maximum by the subgradient."""
        self.solved[p] = quantile
        m = self.tex(p)
        u, level = quantile_parts(quantile)  # type: ignore[misc]
        what = "median" if level == sp.S.Half else f"${self.tex(level)}$-quantile"
        text = (
            f"The absolute value has a kink where ${m}$ meets an observation, so the log-likelihood is not "
            f"differentiable there, and between kinks the derivative counts the observations on either "
            f"side of ${m}$: setting it to zero has no root in general. The log-likelihood is concave and "
            f"piecewise linear in ${m}$, so its maximum is where the subgradient contains zero, that is "
            f"where no move of ${m}$ either way raises it: at the sample {what} of ${self.tex(u)}$,"
        )
        between = "the two middle observations" if level == sp.S.Half else "two neighbouring order statistics"
        after = (
            f"When ${self.tex(level * self.lik.N)}$ is a whole number, every ${m}$ between {between} "
            "maximises the likelihood equally; the estimate is their midpoint, and the other estimates "
            "are the same anywhere in between."
        )
        return Step(
            f"Subgradient in {p.name}",
            text,
            ((p, quantile),),
            after=after,
            kind="stationary",
            parameter=p.name,
            section=MAXIMISING,
        )

    def numeric_steps(self) -> list[Step]:
        """The reduced equations of the parameters found numerically."""
        st = self.st
        if not st.reduced:
            return []
        names = self.listing([f"${self.tex(p)}$" for p in st.reduced])
        lines: list[tuple[Any, Any]] = []
        for eq in st.equations:
            lines.append((self.explicit(eq.lhs), self.explicit(eq.rhs)))
        notes = []
        if not lines:
            for p in st.reduced:
                e = st.estimators[p.name]
                if e.equation is not None:
                    lines.append((self.explicit(e.equation.lhs), self.explicit(e.equation.rhs)))
                if e.note:
                    notes.append(f"For ${self.tex(p)}$: {e.note.replace('$', chr(92) + '$')}.")
        if st.profile:
            given = self.listing([f"${self.tex(p)} = {self.tex(self.explicit(v))}$" for p, v in st.profile])
            text = (
                f"Substituting {given} into the remaining stationarity "
                f"condition{'s' if len(st.reduced) > 1 else ''} "
                f"leaves {'one equation' if len(lines) == 1 else f'{len(lines)} equations'} "
                f"in {names} alone:"
            )
        else:
            text = f"The stationarity conditions for {names} reduce to"
        if not lines:
            # nothing to display: the conditions are the derivatives above, set to zero
            shown = self.listing([reference("derivative", p.name) for p in st.reduced])
            text = f"The stationarity conditions for {names} are {shown} set to zero."
        count = len(st.reduced)
        method = (
            "Brent's method on the score"
            if count == 1
            else "a trust region on the exact Hessian of the profile log-likelihood"
        )
        one = len(lines) == 1 or (not lines and count == 1)
        after = (
            ("It has" if one else "They have") + " no closed-form solution, "
            "so symmle solves "
            + ("it" if one else "them")
            + " numerically: a coarse search of the profile log-likelihood, "
            f"then {method} ({'one parameter' if count == 1 else 'several parameters'}), "
            "then Newton steps on exact derivatives. "
            "The result must be a maximum (a negative definite Hessian); "
            "otherwise symmle reports that the MLE was not reached."
        )
        after = " ".join([*notes, after]).strip()
        return [
            Step(
                "Reduced equation",
                text,
                tuple(lines),
                after=after,
                kind="reduced",
                section=MAXIMISING,
                label=label_for("reduced"),
            )
        ]

    def estimator_steps(self) -> list[Step]:
        """The estimators, each after those it is written in."""
        hats = self.hats
        shown: dict[sp.Symbol, sp.Expr] = {}
        profile = dict(self.st.profile)
        for p in self.theta:
            e = self.st.estimators.get(p.name)
            if e is None:
                continue
            if e.kind == "boundary":
                shown[p] = e.expr
            elif e.kind == "closed_form":
                form = self.solved.get(p)
                shown[p] = form.xreplace(hats) if form is not None else self.plain(e.expr)
            elif p in profile:
                form = self.solved.get(p, self.explicit(profile[p]))
                shown[p] = form.xreplace(hats)
        self.shown = shown
        # each estimator after those it is written in
        order: list[sp.Symbol] = []
        pending = [p for p in self.theta if p in shown]
        while pending:
            ready = [
                p for p in pending if not any(hats[q] in shown[p].free_symbols for q in pending if q is not p)
            ]
            ready = ready or pending[:1]
            order += [ready[0]]
            pending.remove(ready[0])
        lines = [(hats[p], shown[p]) for p in order]
        left = [p for p in self.theta if p not in shown]
        numeric = [p for p in left if getattr(self.st.estimators.get(p.name), "kind", "") == "numeric"]
        after = []
        for p in left:
            e = self.st.estimators.get(p.name)
            if e is not None and e.kind != "numeric":
                note = e.note.replace("$", chr(92) + "$")
                after.append(f"No estimator of ${self.tex(p)}$ was found: {note}.")
        many = len(lines) > 1
        if numeric:
            roots = self.listing([f"${self.tex(hats[p])}$" for p in numeric])
            text = (
                f"With {roots} the root{'s' if len(numeric) > 1 else ''} of the reduced equation"
                f"{'s' if len(self.st.equations) > 1 else ''} {reference('reduced')}, the "
                + (
                    "other maximum-likelihood estimators are"
                    if many
                    else "other maximum-likelihood estimator is"
                )
            )
        elif self.joint:
            text = "Solving the stationarity conditions jointly gives the maximum-likelihood estimator" + (
                "s" if many else ""
            )
        else:
            text = (
                "The maximum-likelihood estimators are therefore"
                if many
                else "The maximum-likelihood estimator is therefore"
            )
        if not lines:
            if numeric:
                after.insert(
                    0,
                    f"The maximum-likelihood estimate{'s' if len(numeric) > 1 else ''} {roots} "
                    f"{'are the roots' if len(numeric) > 1 else 'is the root'} "
                    "of the reduced equation"
                    f"{'s' if len(self.st.equations) > 1 else ''} {reference('reduced')}.",
                )
            if not after:
                return []
            return [Step("Estimators", " ".join(after), (), kind="estimators", section=MAXIMISING)]
        return [
            Step(
                "Estimators",
                text,
                tuple(lines),
                after=" ".join(after),
                kind="estimators",
                section=MAXIMISING,
                label=label_for("estimators"),
            )
        ]

    def hessian_steps(self) -> list[Step]:
        """The Hessian of the log-likelihood, at the estimate where the data sums can be eliminated."""
        # a piecewise-linear parameter has no second derivative: its maximum came from the subgradient
        regular = [p for p in self.st.parameters if p not in dict(self.st.kinks)]
        if not regular:
            return []
        k = len(regular)
        H = sp.Matrix(k, k, lambda a, b: self.spread(sp.diff(self.ell_sum, regular[a], regular[b])))
        if k == 1:
            lhs: Any = sp.Derivative(self.ell, (regular[0], 2))
            lines: list[tuple[Any, Any]] = [(lhs, H[0, 0])]
        else:
            lhs = sp.Function("H")(*regular)
            lines = [(lhs, H)]
        at = quick("the Hessian at the estimate", lambda: self.at_estimate(H, regular, self.shown))
        claims = []
        closed = all(self.st.estimators[p.name].kind == "closed_form" for p in regular)
        negative = (
            at is not None
            and all(at[a, a].is_negative for a in range(k))
            and all(at[a, b] == 0 for a in range(k) for b in range(k) if a != b)
        )
        if at is not None and (negative or any(e.has(sp.Sum) for e in H)):
            if k == 1:
                p = regular[0]
                name: Any = (
                    rf"\left.\frac{{\partial^{{2}} \ell}}{{\partial {self.squared(p)}}}\right|"
                    rf"_{{{self.tex(p)} = {self.tex(self.hats[p])}}}"
                )
            else:
                name = sp.Function("H")(*[self.hats[p] for p in regular])
            lines.append((name, at[0, 0] if k == 1 else at))
            if negative:
                claims.append(
                    "Its diagonal entries are negative and the others vanish, so it is negative "
                    "definite and the stationary point is a maximum."
                    if k > 1
                    else "This is negative, so the stationary point is a maximum."
                )
        verified = all(self.st.estimators[p.name].verified for p in regular)
        if closed and verified:
            claims.append(
                "symmle also checked on several test data sets that the score vanishes at the "
                "estimate and that the Hessian is negative definite there."
            )
        elif not closed:
            claims.append(
                "For the parameters found numerically, symmle checks that this matrix is negative "
                "definite at the solution of each data set."
            )
        else:
            claims.append(
                "The numerical check of the maximum did not pass for every parameter (see the notes)."
            )
        text = (
            "To confirm a maximum rather than a minimum or a saddle point, the Hessian of the "
            f"log-likelihood {reference('log_likelihood')} must be negative definite at the estimate."
            + (" It is" if k > 1 else " The second derivative is")
        )
        return [
            Step(
                "Second-order check",
                text,
                tuple(lines),
                after=" ".join(claims),
                kind="hessian",
                section=SECOND_ORDER,
                label=label_for("hessian"),
            )
        ]
