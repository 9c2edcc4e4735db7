r"""The lecture of a finite mixture: the family's lecture, then the mixture and its EM.

The steps of one component's derivation come first (the builder of its kind writes them: they hold
the log-likelihood in N and the sums :math:`T_j`, the score and the closed forms the M-step reuses);
then the mixture density with its weights on the simplex, the complete-data log-likelihood with the
indicators :math:`z_{ik}`, the E-step responsibilities, :math:`Q(\theta, \theta')` in the weighted
sums :math:`N_k` and :math:`S_{kj}`, its derivative in each component parameter, the M-step updates
and the weights by the Lagrangian of the simplex.  Every expression shown is one
:mod:`symmle.symbolic.mixture` derived and checked numerically; the component symbols of the record
(``mu_k``, ``S_k1``) are only written as indexed objects (:math:`\mu_{k}`, :math:`S_{k,1}`).

:func:`mixture_text` and :func:`mixture_json` give the terminal summary and the JSON section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.base.terminal import printable
from symmle.report.lecture.core import Step
from symmle.report.lecture.finish import define_at_first_use, label_for, reference, resolve_references
from symmle.report.lecture.scalar import ScalarLecture
from symmle.report.names import accented, subscript

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation
    from symmle.symbolic.mixture import MixtureDerivation

__all__ = ["MIXTURE", "E_STEP", "M_STEP", "mixture_steps", "mixture_text", "mixture_json"]

#: The section headings of the steps a mixture adds.
MIXTURE = "Finite mixture"
E_STEP = "EM: the E-step"
M_STEP = "EM: the M-step"


class _Show:
    """The record's symbols as displayed (indexed), and the LaTeX of the lecture."""

    def __init__(self, d: Derivation) -> None:
        mix: MixtureDerivation = d.mixture
        self.mix = mix
        self.sy = sy = mix.symbols
        self.lec = ScalarLecture(d.model, d.likelihood, d.stationarity, d.information)
        self.k, self.l = sy.index, sy.inner
        self.i, self.N = d.likelihood.index, d.likelihood.N
        self.x = d.likelihood.sample
        self.names = {role: sp.IndexedBase(name, real=True) for role, name in sy.names.items()}
        self.display = sy.display({j: s for j, (_, s, _) in enumerate(mix.statistics, start=1)})
        self.theta = [self.display[sy.component[q.name]] for q in d.model.parameters]
        self.w = self.display[sy.weight]
        self.Nk = self.display[sy.count]
        self.f = sp.Function("f")
        self.r = sp.IndexedBase(sy.names["responsibility"], positive=True)[self.i, self.k]
        self.z = sp.IndexedBase(sy.names["indicator"], nonnegative=True, integer=True)[self.i, self.k]

    def shown(self, expr: sp.Expr) -> sp.Expr:
        return sp.sympify(expr).xreplace(self.display)

    def at(self, obj: sp.Expr, index: sp.Symbol) -> sp.Expr:
        """An indexed object (``mu[k]``) at another index (``mu[l]``)."""
        return obj.xreplace({self.k: index})

    def tex(self, expr: Any) -> str:
        return self.lec.tex(expr)

    def hat(self, symbol: sp.Symbol) -> str:
        """The estimate of a component symbol in LaTeX, e.g. :math:`\\hat{\\mu}_{k}`."""
        shown = self.display[symbol]
        label = str(shown.base.label)
        if label.isascii():  # the lecture's own hat (hat_sigma2), with the index
            return subscript(self.tex(sp.Symbol("hat_" + label)), self.tex(self.k))
        return accented(r"\hat", self.tex(shown))

    def density(self, at: sp.Expr, index: sp.Symbol | None = None) -> sp.Expr:
        theta = self.theta if index is None else [self.at(t, index) for t in self.theta]
        return self.f(at, *theta)

    def sum_k(self, expr: sp.Expr, index: sp.Symbol | None = None) -> sp.Sum:
        return sp.Sum(expr, (index or self.k, 1, self.mix.K))

    def sum_i(self, expr: sp.Expr) -> sp.Sum:
        return sp.Sum(expr, (self.i, 1, self.N))


def mixture_steps(d: Derivation) -> tuple[Step, ...]:
    """The steps of ``d`` (a mixture derivation): the component's, then those of the mixture's EM."""
    mix = d.mixture
    s = _Show(d)
    tex, K, k = s.tex, mix.K, s.k
    theta_k = ", ".join(tex(t) for t in s.theta)
    xi = s.x[s.i]
    steps: list[Step] = []

    # the mixture density
    f_k = s.lec.density_shown(s.shown(mix.component_density), d.model.variable)
    steps.append(
        Step(
            "Mixture density",
            f"The derivation above is that of one component. A mixture of $K = {K}$ components draws "
            f"each observation from component ${tex(k)}$ with probability ${tex(s.w)}$, and then from the "
            f"{s.lec.density_word} {reference('model')} with its own parameters ${theta_k}$:",
            (
                (sp.Function("p")(d.model.variable), s.sum_k(s.w * s.density(d.model.variable))),
                (s.density(d.model.variable), f_k),
            ),
            after=f"The weights lie on the simplex: ${tex(s.w)} > 0$ and ${tex(s.sum_k(s.w))} = 1$.",
            kind="mixture_density",
            section=MIXTURE,
            label=label_for("mixture_density"),
        )
    )
    # the complete-data log-likelihood
    ell_c = s.sum_i(s.sum_k(s.z * (sp.log(s.w) + sp.log(s.density(xi)))))
    steps.append(
        Step(
            "Complete-data log-likelihood",
            f"Had we observed which component each observation came from, the indicators ${tex(s.z)}$ "
            f"(1 if $x_{{{tex(s.i)}}}$ comes from component ${tex(k)}$, 0 otherwise), the log-likelihood "
            "would be",
            ((r"\ell_{c}(\theta, w)", ell_c),),
            after="EM maximises the likelihood of the observed data by alternating two steps: the "
            "expectation of this log-likelihood given the data at the current estimates "
            r"$\theta'$ (E-step), and its maximisation (M-step).",
            kind="complete_data",
            section=MIXTURE,
            label=label_for("complete_data"),
        )
    )
    # the responsibilities
    denominator = s.sum_k(s.at(s.w, s.l) * s.density(xi, s.l), s.l)
    steps.append(
        Step(
            "Responsibilities",
            f"By Bayes' theorem the expectation of ${tex(s.z)}$ given $x_{{{tex(s.i)}}}$ is the "
            "posterior probability that the observation comes from component "
            f"${tex(k)}$, its responsibility:",
            (
                (s.r, rf"\mathrm{{E}}\left[{tex(s.z)} \mid x_{{{tex(s.i)}}}, \theta'\right]"),
                (None, s.w * s.density(xi) / denominator),
            ),
            after=f"evaluated at the current estimates $\\theta'$; ${tex(s.sum_k(s.r))} = 1$ for each "
            f"observation{_verified(mix, 'responsibilities', ' (checked numerically: verified)')}.",
            kind="responsibilities",
            section=E_STEP,
            label=label_for("responsibilities"),
        )
    )
    # Q in weighted sums
    weighted_lines: list[tuple[Any, Any]] = [(s.Nk, s.sum_i(s.r))]
    for _, stat, g in mix.statistics:
        weighted_lines.append((s.display[stat], s.lec.pull(s.sum_i(s.r * g.subs(d.model.variable, xi)))))
    steps.append(
        Step(
            "Weighted sums",
            "The E-step computes, for each component, the expected number of its observations and the "
            "responsibility-weighted sufficient statistics, the sums $T_{j}$ of "
            f"{reference('log_likelihood')} with each observation weighted by ${tex(s.r)}$:",
            tuple(weighted_lines),
            kind="weighted_sums",
            section=E_STEP,
            label=label_for("weighted_sums"),
        )
    )
    q_terms = s.shown(mix.q_component)
    steps.append(
        Step(
            "Expected complete-data log-likelihood",
            f"Replacing ${tex(s.z)}$ by ${tex(s.r)}$ in {reference('complete_data')} gives",
            (
                (
                    r"Q(\theta, \theta')",
                    s.sum_i(s.sum_k(s.r * (sp.log(s.w) + sp.log(s.density(xi))))),
                ),
                (None, s.sum_k(s.Nk * sp.log(s.w) + s.sum_i(s.r * sp.log(s.density(xi))))),
                (None, s.sum_k(q_terms)),
            ),
            after=f"The log-likelihood {reference('log_likelihood')} is linear in $N$ and the sums "
            f"$T_{{j}}$, so weighting each observation by ${tex(s.r)}$ turns $N$ into ${tex(s.Nk)}$ and "
            f"each $T_{{j}}$ into ${tex(sp.IndexedBase(mix.symbols.names['statistic'])[k, sp.Symbol('j')])}$ "
            f"of {reference('weighted_sums')}"
            + _verified(
                mix,
                "Q",
                ": symmle checked the last form against the double sum on random data and "
                "responsibilities (verified)",
            )
            + ".",
            kind="q_function",
            section=E_STEP,
            label=label_for("q_function"),
        )
    )
    # the derivatives
    for name, score in mix.score:
        pk = s.display[mix.symbols.component[name]]
        steps.append(
            Step(
                f"Derivative of Q in {name}_k",
                f"Only the ${tex(k)}$-th term of {reference('q_function')} depends on ${tex(pk)}$; its "
                f"derivative is the score {reference('derivative', name)} with ${tex(s.Nk)}$ and the "
                f"weighted sums in place of $N$ and the $T_{{j}}$:",
                ((rf"\frac{{\partial Q}}{{\partial {tex(pk)}}}", s.shown(score)), (None, sp.S.Zero)),
                after=_verified(
                    mix, "derivatives", "Checked against the weighted score on random data: verified."
                ),
                kind="mixture_derivative",
                parameter=name,
                section=M_STEP,
                label=label_for("mixture_derivative", name),
            )
        )
    # the updates
    lines: list[tuple[Any, Any]] = []
    notes: list[str] = []
    for st in mix.m_step:
        hat = s.hat(st.symbol)
        if st.expr is not None:
            lines.append((hat, s.shown(st.expr)))
            if st.kind == "profile":
                notes.append(f"${tex(hat)}$ is in closed form given the parameters solved numerically.")
        else:
            eq = st.equation
            notes.append(
                f"${tex(hat)}$ has no closed form: it solves "
                f"${tex(s.shown(eq.lhs))} = {tex(s.shown(eq.rhs))}$, "
                "the weighted version of the equation above, solved numerically with its exact derivatives."
            )
    checked = [
        f"${tex(s.shown(sp.IndexedBase(f'hat_{st.parameter}')[k]))}$" for st in mix.m_step if st.verified
    ]
    after = " ".join(notes)
    if checked:
        after += (
            f" symmle checked {s.lec.listing(checked)} against a numerical maximisation of the weighted "
            rf"log-likelihood $\sum_{{i}} r_{{i}} \log f(x_{{i}}; \theta)$ on random weighted data, and that "
            "the weighted score vanishes there: verified."
        )
    steps.append(
        Step(
            "M-step updates",
            f"Setting the derivatives to zero is the maximum-likelihood problem of one component "
            f"with ${tex(s.Nk)}$ and the weighted sums in place of $N$ and the $T_{{j}}$, so the estimators "
            f"{reference('estimators')} carry over with the same substitution:",
            tuple(lines),
            after=after.strip(),
            kind="m_step",
            section=M_STEP,
            label=label_for("m_step"),
        )
    )
    # the weights by the Lagrangian
    lam = mix.symbols.multiplier
    sum_w = s.sum_k(s.w)
    steps.append(
        Step(
            "Weights",
            f"The weights enter {reference('q_function')} only through $"
            f"{tex(s.sum_k(s.Nk * sp.log(s.w)))}$, to be maximised on the simplex. With a multiplier "
            f"${tex(lam)}$ for the constraint, the Lagrangian and its stationarity conditions are",
            (
                (
                    rf"\mathcal{{L}}(\theta, w, {tex(lam)})",
                    rf"Q(\theta, \theta') + {tex(lam * (1 - sum_w))}",
                ),
                (rf"\frac{{\partial \mathcal{{L}}}}{{\partial {tex(s.w)}}}", s.Nk / s.w - lam),
                (None, sp.S.Zero),
                (s.w, s.Nk / lam),
                (lam, s.sum_k(s.Nk)),
                (None, s.sum_i(s.sum_k(s.r))),
                (None, s.N),
                (s.hat(mix.symbols.weight), s.shown(mix.weights)),
            ),
            after="The multiplier follows from the constraint "
            f"${tex(sum_w)} = 1$, and the responsibilities of each observation sum to 1. "
            f"The Hessian of ${tex(s.sum_k(s.Nk * sp.log(s.w)))}$ is diagonal with entries "
            f"${tex(-s.Nk / s.w**2)} < 0$: the stationary point is the maximum on the simplex"
            + _verified(
                mix,
                "weights",
                f". SymPy solved the stationarity conditions for $K = {K}$, and a numerical maximisation on "
                "the simplex agreed: verified",
            )
            + ".",
            kind="weights",
            section=M_STEP,
            label=label_for("weights"),
        )
    )
    before = list(mix.component.steps)
    resolved = resolve_references(before + steps)[len(before) :]
    return tuple(before) + tuple(define_at_first_use(resolved))


def _verified(mix: MixtureDerivation, check: str, text: str) -> str:
    """``text`` if the check passed, else a sentence that it did not."""
    if mix.check(check):
        return text
    if any(name == check for name, _ in mix.checks):
        return " (the numerical check of this step FAILED)"
    return ""


# --------------------------------------------------------------------------------------------------
# terminal and JSON
# --------------------------------------------------------------------------------------------------


def _fmt(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def mixture_text(d: Derivation) -> str:
    """The component's summary, then the mixture's EM: density, E-step, Q, derivatives, M-step, weights."""
    from symmle.report.text import to_text

    mix = d.mixture
    sy = mix.symbols
    k, other = sy.index, sy.inner
    K = mix.K
    component = to_text(mix.component).rstrip("\n")
    theta_k = ", ".join(str(sy.component[q.name]) for q in d.model.parameters)
    theta_l = ", ".join(str(sy.at(sy.component[q.name], other)) for q in d.model.parameters)
    x = d.model.variable
    w, wl = sy.weight, sy.at(sy.weight, other)
    r = f"{sy.names['responsibility']}_i{k}"
    z = f"{sy.names['indicator']}_i{k}"

    def ok(check: str) -> str:
        return "    [verified]" if mix.check(check) else "    [check FAILED]"

    lines = [
        component,
        "",
        f"Mixture of {K} components (EM)",
        f"  density      p({x}) = sum_{k}=1..{K} {w}*f({x}; {theta_k}),  {w} > 0,  sum_{k} {w} = 1",
        f"  f({x}; {theta_k}) = {_fmt(mix.component_density)}",
        "",
        f"Complete-data log-likelihood (indicators {z} = 1 if x_i is from component {k}, else 0)",
        f"  l_c = sum_i sum_{k} {z}*(log({w}) + log f(x_i; {theta_k}))",
        "",
        "E-step: responsibilities",
        f"  {r} = {w}*f(x_i; {theta_k}) / sum_{other} {wl}*f(x_i; {theta_l})" + ok("responsibilities"),
        f"  {sy.count} = sum_i {r}",
    ]
    for _, stat, g in mix.statistics:
        lines.append(f"  {stat} = sum_i {r}*{_fmt(g.subs(x, sp.Symbol(x.name + '_i')))}")
    lines += [
        "",
        f"Q(theta, theta') = sum_i sum_{k} {r}*(log({w}) + log f(x_i; {theta_k}))",
        f"  Q = sum_{k}=1..{K} [{_fmt(mix.q_component)}]" + ok("Q"),
        "",
        f"Derivatives of Q (the component's score with N -> {sy.count}, T_j -> {sy.names['statistic']}_{k}j)",
    ]
    for name, score in mix.score:
        lines.append(f"  dQ/d{sy.component[name]} = {_fmt(score)} = 0" + ok("derivatives"))
    lines += ["", "M-step (the component's weighted MLE)"]
    for st in mix.m_step:
        status = "verified" if st.verified else "check FAILED"
        if st.kind == "closed_form":
            lines.append(f"  {st.symbol} = {_fmt(st.expr)}    [closed form, {status}]")
        elif st.kind == "profile":
            lines.append(f"  {st.symbol} = {_fmt(st.expr)}    [closed form given the numeric ones, {status}]")
        else:
            lines.append(
                f"  {st.symbol} solves {_fmt(st.equation.lhs)} = {_fmt(st.equation.rhs)}    "
                f"[solved numerically with exact derivatives, {status}]"
            )
    lam = "lambda" if sy.multiplier.name == "lamda" else sy.multiplier.name  # lamda: a SymPy string
    lines += [
        "",
        "Weights (Lagrangian of the simplex constraint)",
        f"  L = Q + {lam}*(1 - sum_{k} {w})",
        f"  dL/d{w} = {sy.count}/{w} - {lam} = 0,  {lam} = sum_{k} {sy.count} = N",
        f"  {w} = {_fmt(mix.weights)}" + ok("weights"),
    ]
    extra = [m for m in d.warnings if m not in mix.component.warnings]
    if extra:
        lines += ["", "Warnings (mixture)"] + [f"  - {m}" for m in extra]
    return printable("\n".join(lines) + "\n")


def mixture_json(d: Derivation) -> dict[str, Any]:
    """The ``mixture`` section of the JSON document, with the LaTeX of each update."""
    from symmle.report.printer import latex, notation

    mix = d.mixture
    doc = mix.to_dict()
    s = _Show(d)
    data = notation(d)
    for st in mix.m_step:
        entry = doc["m_step"][st.parameter]
        entry["latex"] = None if st.expr is None else latex(s.shown(st.expr), data)
        if st.equation is not None:
            entry["equation_latex"] = (
                f"{latex(s.shown(st.equation.lhs), data)} = {latex(s.shown(st.equation.rhs), data)}"
            )
    doc["weights"]["latex"] = latex(s.shown(mix.weights), data)
    return doc
