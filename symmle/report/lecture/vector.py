r"""The lecture of a vector model: N independent draws of a vector, parameters that are vectors or matrices.

In the notation of a lecture note on the multivariate Gaussian: bold vectors and matrices
(:math:`\mathbf{x}`, :math:`\boldsymbol{\mu}`, :math:`\boldsymbol{\Sigma}`), observations
:math:`\mathbf{x}^{(n)}`, :math:`n = 1, \dots, N`.  The steps, in order: the model; the likelihood as a
product, the log-likelihood as a sum over :math:`n` reduced to the matrix statistics
(:math:`\mathbf{T}_1 = \sum_n \mathbf{x}^{(n)}`, :math:`\mathbf{T}_2 = \sum_n \mathbf{x}^{(n)}
\mathbf{x}^{(n)\top}`...) and the NLL; for each parameter its differential and gradient, with the
identities of matrix calculus the pipeline used (:data:`~symmle.symbolic.matrix_calculus.RULES`), set to
zero and solved; the score equations of the parameters found numerically; the estimators (in the
centred sums where they are equal); what the second-order check verified; and the Fisher information
and Cramér–Rao bound per block (:mod:`symmle.report.lecture.vector_info`).

Every expression shown is the pipeline's, or a rearrangement of it that is checked equal first
(:mod:`symmle.report.lecture.vector_forms`); a parameter the pipeline found no closed form for is
shown with what exists (its gradient, its score equation, or the reason).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.model.spec import Model, Quantity
from symmle.report.lecture.core import LIKELIHOOD, MAXIMISING, MODEL, SECOND_ORDER, Step, combine_logs, quick
from symmle.report.lecture.finish import label_for, reference
from symmle.report.lecture.vector_forms import Checker, Display, Observation, data_sum
from symmle.report.lecture.vector_info import VectorInformationSteps
from symmle.report.lecture.vector_notation import distinct, explain_notation, quantity_phrase, support_phrase
from symmle.report.lecture.vector_simplex import SimplexSteps, simplex_parameter
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.matrix_calculus import RULES, differential, gradient
from symmle.symbolic.matrix_solve import solve_stationary
from symmle.symbolic.stationarity import Stationarity
from symmle.symbolic.vector_stationarity import verification_kwargs

__all__ = ["VectorLecture"]

#: The rules of a differential, in the order a lecture states them.
_DIFFERENTIAL_RULES = (
    "trace",
    "log_det",
    "determinant",
    "inverse",
    "transpose",
    "product",
    "chain",
    "entrywise",
    "diag",
    "cyclic",
    "diag_trace",
)
#: The rules of solving a stationarity condition a lecture states (SymPy's scalar solve goes unsaid).
_SOLVING = ("inverse_sandwich", "invertible_factor", "linear")


class VectorLecture(SimplexSteps, VectorInformationSteps):
    """The steps of the derivation of a vector model (see the module docstring)."""

    def __init__(self, model: Model, lik: Likelihood, st: Stationarity, info: Information) -> None:
        super().__init__(model, lik, st, info)
        self.x = model.variable
        self.dim = model.dimension
        name = "n" if "n" not in model.symbols else self.i.name
        self.n = sp.Symbol(name, integer=True, positive=True)
        self.kw = verification_kwargs(lik)
        self.show = Display(lik, self.n, **self.kw)
        self.hats = {
            p: sp.MatrixSymbol(f"hat_{p.name}", *p.shape)
            if isinstance(p, sp.MatrixSymbol)
            else sp.Symbol(f"hat_{p.name}", **self.assumptions(p))
            for p in self.theta
        }
        self.estimates = {
            self.hats[p]: st.estimators[p.name].expr
            for p in self.theta
            if st.estimators.get(p.name) is not None and st.estimators[p.name].kind == "closed_form"
        }
        self.quantities: dict[sp.Basic, Quantity] = {
            q.symbol: q for q in (*model.parameters, *model.constants)
        }
        domains = {s: q.domain for s, q in self.quantities.items()}
        self.check = Checker(self.show, domains, model.support_set, self.estimates)
        self.data = frozenset({self.x})
        self.solved: dict[sp.Basic, sp.Basic] = {}
        self.joint = False

    @classmethod
    def fits(cls, model: Model) -> bool:
        """Whether ``model`` observes a vector (it has a dimension)."""
        return bool(getattr(model, "is_vector", False))

    def steps(self) -> list[Step]:
        """The model, the likelihood, its maximisation, the second-order check, the information."""
        out = self.model_steps() + self.likelihood_steps()
        out += self.stationarity_steps()
        out += self.estimator_steps()
        out += self.hessian_steps()
        simplex = self.simplex_information()
        out += self.simplex_information_steps(simplex) if simplex is not None else self.information_steps()
        return explain_notation(out)

    # ------------------------------------------------------------------ helpers
    def observation(self, k: Any) -> Observation:
        return Observation(self.x, k)

    def best(self, derived: Any, *, centres: list[sp.Basic] | None = None, sums: bool = False) -> Any:
        """The clearest checked form of ``derived``: centred sums, sums over the data, or tidied."""
        candidates = []
        for c in centres or []:
            centred = self.show.centred(derived, c)
            if centred is not None:
                candidates.append(centred)
        if sums:
            candidates.append(self.show.tidy(self.show.in_sums(derived)))
        candidates.append(self.show.tidy(derived))
        checked = [form for form in candidates if self.check.equal(form, derived)]
        if not checked:
            return derived
        # the data themselves (no statistic symbol) where possible, then the shortest
        stats = [s.symbol for s in self.lik.statistics]
        return min(checked, key=lambda form: (any(form.has(t) for t in stats), len(self.tex(form))))

    def dim_tex(self) -> str:
        return self.tex(self.dim)

    # ------------------------------------------------------------------ the model
    def quantity_tex(self, q: Quantity) -> str:
        """A parameter or constant and its domain, as a phrase."""
        return quantity_phrase(q, self.tex) or self.domain_tex(q)

    def density_shown(self) -> sp.Expr:  # type: ignore[override]
        return self.shown(None, self.model.density)

    def model_steps(self) -> list[Step]:
        """The model: the density, its support, the parameters and the known constants."""
        m = self.model
        xs = f"{self.tex(self.observation(1))}, \\dots, {self.tex(self.observation(self.N))}"
        text = (
            f"We are given $N$ independent, identically distributed (IID) observations ${xs}$, vectors "
            f"of dimension ${self.dim_tex()}$, each a draw from the {self.density_word}"
        )
        many = len(m.parameters) > 1
        after = (
            f"{support_phrase(m.support_set, self.tex(self.x), self.dim_tex())}. "
            f"The unknown parameter{'s are' if many else ' is'} "
            f"{self.listing([self.quantity_tex(q) for q in m.parameters])}"
        )
        if m.constants:
            after += "; known constant" + ("s" if len(m.constants) > 1 else "") + ": "
            after += self.listing([self.quantity_tex(q) for q in m.constants])
        after += "."
        line = (self.f(self.x, *self.theta), self.density_shown())
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

    # ------------------------------------------------------------------ the likelihood
    def log_density_shown(self) -> sp.Expr:
        """``log f(x)`` as a lecturer writes it: the logarithm of each factor, constants combined, tidied."""
        parts = []
        for factor in sp.Mul.make_args(self.density_shown()):
            if isinstance(factor, sp.exp):
                parts.append(factor.args[0])
            else:
                parts.append(sp.expand_log(sp.log(factor), force=True))
        total = sp.Add(*parts)
        free = sp.expand_mul(sp.Add(*[t for t in sp.Add.make_args(total) if not self.show.is_data(t)]))
        rest = sp.Add(*[t for t in sp.Add.make_args(total) if self.show.is_data(t)])
        return self.show.tidy(combine_logs(free) + rest)

    def gathered(self, per: sp.Expr) -> sp.Expr:
        """``sum_n per(x^(n))``: the terms free of the data times ``N``, scalar factors out of sums."""
        out = sp.S.Zero
        free = sp.S.Zero
        for t in sp.Add.make_args(per):
            if not self.show.is_data(t):
                free += t
                continue
            c, g = t.as_independent(self.x, as_Add=False)
            out += c * data_sum(self.show.at_observation(g), self.n, self.N)
        return sp.Add(*[self.N * t for t in sp.Add.make_args(combine_logs(free))]) + out

    def in_statistics(self, expr: sp.Expr) -> sp.Expr:
        """The log-likelihood in the statistics with ``N (...)`` multiplied out and logarithms combined."""
        out = sp.S.Zero
        for t in sp.Add.make_args(expr):
            adds = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.Add)]
            if len(adds) == 1:
                rest = t / adds[0]
                out += sp.Add(*[rest * u for u in sp.Add.make_args(combine_logs(adds[0]))])
            else:
                out += t
        return self.show.tidy(out)

    def likelihood_steps(self) -> list[Step]:
        """The likelihood as a product, the log-likelihood as a sum reduced to the statistics, the NLL."""
        lik, N, n = self.lik, self.N, self.n
        f = self.f
        first, second, last = (self.tex(f(self.observation(k), *self.theta)) for k in (1, 2, N))
        chain = rf"{first} \, {second} \cdots {last}"
        density = self.density_shown()
        const, rest = density.as_independent(self.x, as_Add=False)
        product = sp.Product(self.show.at_observation(density), (n, 1, N))
        if isinstance(rest, sp.exp):
            # a product of exponentials is the exponential of the sum: L = c^N exp(sum_n a_n)
            inside = sp.exp(self.gathered(rest.args[0]), evaluate=False)
            power = sp.Pow(const, N)
            if isinstance(const, sp.Pow) and isinstance(power, sp.Pow) and power.base == const:
                power = sp.Pow(const.base, const.exp * N, evaluate=False)  # c^(a N): checked below
            pulled = inside if const == 1 else sp.Mul(power, inside, evaluate=False)
            if self.check.equal(pulled, product):
                product = pulled
        lines: list[tuple[Any, Any]] = [
            (self.L, chain),
            (self.L, sp.Product(f(self.show.obs, *self.theta), (n, 1, N))),
            (self.L, product),
        ]
        joint = "joint probability" if self.model.discrete else "joint density"
        steps = [
            Step(
                "Likelihood",
                f"The observations are independent, so their {joint} is the product of their "
                f"{self.densities_word}. Viewed as a function of the parameter"
                f"{'s' if len(self.theta) > 1 else ''}, it is the likelihood:",
                tuple(lines),
                kind="likelihood",
                section=LIKELIHOOD,
                label=label_for("likelihood"),
            )
        ]
        per = self.log_density_shown()
        if not self.check.equal(per, lik.log_density):
            per = lik.log_density
        ell_lines: list[tuple[Any, Any]] = [
            (self.ell, sp.log(self.L)),
            (self.ell, sp.Sum(sp.log(f(self.show.obs, *self.theta)), (n, 1, N))),
            (self.ell, sp.Sum(self.show.at_observation(per), (n, 1, N))),
        ]
        gathered = self.gathered(per)
        if self.check.equal(gathered, lik.log_likelihood):
            ell_lines.append((self.ell, gathered))
        stats = self.in_statistics(lik.log_likelihood)
        if not self.check.equal(stats, lik.log_likelihood):
            stats = lik.log_likelihood
        ell_lines.append((self.ell, stats))
        ell_lines = distinct(ell_lines)
        informative = [s for s in lik.statistics if s.informative]
        other = [s for s in lik.statistics if not s.informative]
        for s in lik.statistics:
            ell_lines.append((s.symbol, self.show.tidy(self.show.sum_of(s.expr))))
        names = self.listing([f"${self.tex(s.symbol)}$" for s in informative])
        after = [
            "Each term is a scalar, its own trace, so a quadratic form is a trace "
            r"($\mathbf{u}^{\top} \mathbf{A} \mathbf{u} = \operatorname{tr}(\mathbf{A} \mathbf{u} "
            r"\mathbf{u}^{\top})$) and the sum over $n$ moves inside the trace, which is linear: "
            f"the data enter only through the statistics {names}"
            + (", which are" if len(informative) > 1 else ", which is")
            + " sufficient for the parameters."
        ]
        if other:
            free = self.listing([f"${self.tex(s.symbol)}$" for s in other])
            after.append(f"The term {free} is free of the parameters.")
        steps.append(
            Step(
                "Log-likelihood",
                "Instead of maximising the likelihood directly, it is easier to maximise its logarithm, "
                f"the log-likelihood: the logarithm turns the product {reference('likelihood')} into a sum "
                "over the observations.",
                tuple(ell_lines),
                after=" ".join(after),
                kind="log_likelihood",
                section=LIKELIHOOD,
                label=label_for("log_likelihood"),
            )
        )
        nll_lines: list[tuple[Any, Any]] = [(self.J, -self.ell)]
        if len(ell_lines) > 4 and ell_lines[3][0] == self.ell:
            neg = self.show.tidy(-ell_lines[3][1])
            if self.check.equal(neg, lik.nll):
                nll_lines.append((self.J, neg))
        if len(nll_lines) == 1:
            centred = self.best(lik.nll, centres=self.vectors())
            if centred is not lik.nll:
                nll_lines.append((self.J, centred))
        neg_stats = self.show.tidy(self.in_statistics(lik.nll))
        nll_lines.append((self.J, neg_stats if self.check.equal(neg_stats, lik.nll) else lik.nll))
        steps.append(
            Step(
                "Negative log-likelihood",
                "Maximising the log-likelihood is the same as minimising the negative log-likelihood (NLL):",
                tuple(distinct(nll_lines)),
                kind="nll",
                section=LIKELIHOOD,
                label=label_for("nll"),
            )
        )
        return steps

    # ------------------------------------------------------------------ maximisation
    def rules_tex(self, rules: tuple[str, ...]) -> str:
        used = [r for r in _DIFFERENTIAL_RULES if r in rules]
        if "log_det" in used and "determinant" in used:
            used.remove("determinant")
        return self.listing([f"${RULES[r]}$" for r in used])

    def stationarity_steps(self) -> list[Step]:
        """Each parameter's differential and gradient, set to zero and solved where the pipeline solved it."""
        steps: list[Step] = []
        nll = self.lik.nll
        scores = dict(zip(self.st.parameters, self.st.score))
        for p in self.st.parameters:
            record = self.lagrange_record(p) if simplex_parameter(self.model, p) else None
            if record is not None:  # on the simplex: the Lagrangian, stage by stage
                steps += self.lagrange_steps(p, record)
                continue
            score = scores.get(p)
            e = self.st.estimators.get(p.name)
            if score is None or score is sp.nan:
                note = (e.note if e is not None else "no gradient was found").replace("$", chr(92) + "$")
                steps.append(
                    Step(
                        f"Gradient in {p.name}",
                        f"No gradient of the NLL in ${self.tex(p)}$ was found: {note}.",
                        (),
                        kind="derivative",
                        parameter=p.name,
                        section=MAXIMISING,
                    )
                )
                continue
            steps.append(self._gradient_step(p, score, nll))
            if e is not None and e.kind == "closed_form":
                steps += self._solve_step(p, score, e.expr, steps)
            elif e is not None and e.kind == "numeric":
                steps.append(self._numeric_step(p, score))
            elif e is not None:
                note = e.note.replace("$", chr(92) + "$")
                steps[-1] = replace(
                    steps[-1], after=(steps[-1].after + f" No estimator was found: {note}.").strip()
                )
        return steps

    def _gradient_step(self, p: sp.Basic, score: sp.Basic, nll: sp.Expr) -> Step:
        grad = -score
        centres = self.vectors()
        shown_grad = self.best(grad, centres=centres, sums=True)
        lines: list[tuple[Any, Any]] = []
        matrix = isinstance(p, sp.MatrixSymbol)
        symmetric = p in self.show.symmetric
        rules: tuple[str, ...] = ()
        out = quick(f"the gradient in {p}", lambda: gradient(nll, p, **self.kw, timeout=2.0))
        if out is not None and out.ok:
            rules = out.rules
        if matrix:
            d = quick(f"the differential in {p}", lambda: differential(nll, p, **self.kw, timeout=2.0))
            if d is not None and d.ok:
                dX = next(
                    iter(d.value.atoms(sp.MatrixSymbol) - set(self.quantities) - set(self.show.summands)),
                    None,
                )
                target = sp.Trace(grad * dX) if symmetric else sp.Trace(grad.T * dX)
                shown_d = self.best(d.value, centres=centres, sums=True)
                if dX is not None and self.check.equal(shown_d, target):
                    lines.append((r"\mathrm{d}J", shown_d))
        lines.append((sp.Derivative(self.J, p), shown_grad))
        dp = self.tex(p)
        if matrix and lines[0][0] == r"\mathrm{d}J":
            text = (
                f"Differentiate the NLL {reference('nll')} with respect to ${dp}$. Its differential "
                f"in a direction $\\mathrm{{d}}{dp}$ follows from "
                + (self.rules_tex(rules) or "the rules of matrix calculus")
                + " (the other parameters held fixed):"
            )
            how = (
                r"Written as $\mathrm{d}J = \operatorname{tr}(\mathbf{G}^{\top} \mathrm{d}"
                + dp
                + r")$, it gives the gradient $\mathbf{G} = \partial J / \partial "
                + dp
                + "$"
            )
            if symmetric:
                how += (
                    f". As ${dp}$ is symmetric, $\\mathrm{{d}}{dp}$ ranges over symmetric matrices and only "
                    r"the symmetric part $(\mathbf{G} + \mathbf{G}^{\top})/2$ is determined; "
                    "that is the gradient shown"
                )
            after = how + "."
        else:
            text = f"Differentiate the NLL {reference('nll')} with respect to ${dp}$" + (
                f", by {self.rules_tex(rules)}:" if rules and self.rules_tex(rules) else ":"
            )
            after = ""
        return Step(
            f"Gradient in {p.name}",
            text,
            tuple(lines),
            after=after,
            kind="derivative",
            parameter=p.name,
            section=MAXIMISING,
            label=label_for("derivative", p.name),
        )

    def _solve_step(self, p: sp.Basic, score: sp.Basic, target: sp.Basic, steps: list[Step]) -> list[Step]:
        """``G_p = 0`` solved for ``p`` alone (the others held fixed), checked against the estimator."""
        out = quick(f"solve the gradient in {p}", lambda: solve_stationary(score, p, **self.kw, timeout=2.0))
        others = {q: e.expr for q in self.theta if q is not p for e in [self.st.estimators.get(q.name)]}
        root = out.value if out is not None and out.ok else None
        if root is not None:
            known = {
                q: v
                for q, v in others.items()
                if v is not None and self.st.estimators[q.name].kind == "closed_form"
            }
            free = sp.sympify(root).free_symbols if not isinstance(root, MatrixExpr) else root.free_symbols
            if any(q in free for q in self.theta if q is not p and q not in known):
                root = None
            elif not self.check.equal(sp.sympify(root).xreplace(known), target):
                root = None
        dp = rf"\partial J / \partial {self.tex(p)}"
        zero = r"\mathbf{0}" if isinstance(p, sp.MatrixSymbol) else "0"
        if root is None:
            self.joint = True
            steps[-1] = replace(
                steps[-1],
                after=(
                    steps[-1].after + " It is set to zero below, together with the other conditions."
                ).strip(),
            )
            return []
        self.solved[p] = root
        shown = self.best(root, centres=[c for c in self.vectors() if c != p], sums=True)
        rest = [q for q in self.theta if q is not p and q in shown.free_symbols]
        how = [f"${RULES[r]}$" for r in _SOLVING if r in out.rules and r in RULES]
        after = ""
        if how:
            after = "The solution uses " + self.listing(how) + ". "
        if rest:
            names = self.listing([f"${self.tex(q)}$" for q in rest])
            after += f"This holds for any value of {names}; " + (
                "at the maximum it takes its estimate."
                if len(rest) == 1
                else "at the maximum they take their estimates."
            )
        return [
            Step(
                f"Stationarity in {p.name}",
                f"Setting ${dp} = {zero}$ in {reference('derivative', p.name)} and solving for "
                f"${self.tex(p)}$ gives",
                ((p, shown),),
                after=after.strip(),
                kind="stationary",
                parameter=p.name,
                section=MAXIMISING,
                label=label_for("stationary", p.name),
            )
        ]

    def _numeric_step(self, p: sp.Basic, score: sp.Basic) -> Step:
        """The score equation of a parameter without a closed form (or why it cannot be set to zero)."""
        q = self.quantities.get(p)
        dp = self.tex(p)
        zero = sp.ZeroMatrix(*score.shape) if isinstance(score, MatrixExpr) else sp.S.Zero
        equation = self.best(score, sums=True)
        if q is not None and q.domain == "simplex":
            text = (
                f"The entries of ${dp}$ are probabilities constrained to sum to one "
                rf"($\mathbf{{1}}^{{\top}} {dp} = 1$), so the maximum is not where the gradient "
                f"{reference('derivative', p.name)} vanishes: on the constraint only its component along "
                "the simplex must vanish, which a Lagrange multiplier for the constraint expresses. symmle "
                "has not derived that solution for this model, so no estimator is shown."
            )
            return Step(
                f"Constraint on {p.name}",
                text,
                (),
                kind="reduced",
                parameter=p.name,
                section=MAXIMISING,
            )
        return Step(
            f"Score equation in {p.name}",
            f"Setting the gradient {reference('derivative', p.name)} to zero gives the score equation "
            f"of ${dp}$:",
            ((equation, zero),),
            after=(
                f"It has no closed-form solution for ${dp}$: symmle solves it numerically when fitting, "
                "maximising the log-likelihood with this exact gradient."
            ),
            kind="reduced",
            parameter=p.name,
            section=MAXIMISING,
            label=label_for("reduced", p.name),
        )

    def estimator_steps(self) -> list[Step]:
        """The closed-form estimators, each after those it is written in, in the centred sums where equal."""
        hats = self.hats
        closed = [
            p for p in self.theta if getattr(self.st.estimators.get(p.name), "kind", "") == "closed_form"
        ]
        if not closed:
            return []
        first = self.show.first
        mean_hats = []  # estimates equal to T1 / N: the centred first sum vanishes at them
        if first is not None:
            for p in closed:
                est = self.st.estimators[p.name].expr
                if (
                    isinstance(p, sp.MatrixSymbol)
                    and p.shape == self.x.shape
                    and self.check.equal(est, first / self.N)
                ):
                    mean_hats.append(p)
        lines: list[tuple[Any, Any]] = []
        order = sorted(closed, key=lambda p: (p not in mean_hats, self.theta.index(p)))
        for p in order:
            est = self.st.estimators[p.name].expr
            hat = hats[p]
            forms = []
            for c in mean_hats:
                if c is p:
                    continue
                centred = self.show.centred(est, hats[c], first_vanishes=True)
                if centred is not None and self.check.equal(centred, est):
                    forms.append(centred)
                    break
            sums = self.show.tidy(self.show.in_sums(est))
            if not forms and self.check.equal(sums, est):
                forms.append(sums)
            stats = self.show.tidy(est)
            stats = stats if self.check.equal(stats, est) else est
            if not forms or forms[-1] != stats:
                forms.append(stats)
            for k, form in enumerate(forms):
                lines.append((hat if k == 0 else None, form))
        many = len(closed) > 1
        text = (
            "Solving the stationarity conditions jointly gives"
            if self.joint
            else "The maximum-likelihood estimator"
        ) + ("s are therefore" if many and not self.joint else " is therefore" if not self.joint else "")
        if self.joint:
            text += " the maximum-likelihood estimator" + ("s" if many else "")
        numeric = [p for p in self.theta if p not in closed]
        after = ""
        if numeric:
            names = self.listing([f"${self.tex(p)}$" for p in numeric])
            after = f"No closed form is shown for {names} (see above)."
        return [
            Step(
                "Estimators",
                text,
                tuple(lines),
                after=after,
                kind="estimators",
                section=MAXIMISING,
                label=label_for("estimators"),
            )
        ]

    def hessian_steps(self) -> list[Step]:
        """What the second-order check verified, entry by entry at D = 2 and D = 3."""
        closed = [
            p for p in self.theta if getattr(self.st.estimators.get(p.name), "kind", "") == "closed_form"
        ]
        if not closed:
            return []
        verified = all(self.st.estimators[p.name].verified for p in closed)
        on_simplex = [p for p in closed if simplex_parameter(self.model, p) and self.lagrange_record(p)]
        free = [p for p in closed if p not in on_simplex]
        coords = []
        for p in free:
            q = self.quantities.get(p)
            if q is not None and q.domain == "spd":
                coords.append(f"the distinct entries of ${self.tex(p)}$")
            elif isinstance(p, sp.MatrixSymbol):
                coords.append(f"the entries of ${self.tex(p)}$")
            else:
                coords.append(f"${self.tex(p)}$")
        spd = [p for p in free if getattr(self.quantities.get(p), "domain", "") == "spd"]
        checks = []
        if free:
            checks.append(
                "that the gradient vanishes at the estimators and that the Hessian in the coordinates "
                f"({self.listing(coords)}) is negative definite there"
                + (
                    ", and that "
                    + self.listing([f"${self.tex(self.hats[p])}$" for p in spd])
                    + " is symmetric positive definite"
                    if spd
                    else ""
                )
            )
        checks += [self.simplex_second_order(p) for p in on_simplex]
        if verified:
            text = (
                "To confirm a maximum rather than a minimum or a saddle point, symmle wrote the "
                "log-likelihood "
                f"{reference('log_likelihood')} out entry by entry at {self.at_dims()} (explicit matrices "
                "of symbols, ordinary partial derivatives, no matrix calculus) and checked, on random data "
                "sets, "
                + "; and, ".join(checks)
                + ". The stationary point is a maximum"
                + (" on the simplex." if on_simplex else ".")
            )
        else:
            text = "The entrywise check of the maximum did not pass for every parameter (see the notes)."
        return [Step("Second-order check", text, (), kind="hessian", section=SECOND_ORDER)]
