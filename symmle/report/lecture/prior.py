r"""The lecture of a model with priors: the MLE's lecture, then the prior, the log-posterior and the MAP.

The steps of the likelihood's own derivation come first (the builder of its kind writes them); then
the prior densities, the log-posterior (log-likelihood plus log-prior, up to a constant), the
derivative of the log-posterior in each parameter, the MAP estimators beside the MLEs, and, where
one was recognised and verified, the catalogue family of the posterior with its parameters.
Every expression shown is one the pipeline derived (:mod:`symmle.symbolic.prior`), only written with
the statistics as sums over the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.report.lecture.core import Step, quick
from symmle.report.lecture.finish import define_at_first_use, label_for, reference, resolve_references
from symmle.report.lecture.scalar import ScalarLecture

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["PRIOR", "MAP", "prior_steps"]

#: The section headings of the steps a prior adds.
PRIOR = "Prior and posterior"
MAP = "Maximum a posteriori (MAP) estimation"


def prior_steps(d: Derivation) -> tuple[Step, ...]:
    """The steps of ``d`` (a MAP derivation): the MLE's, then those of the prior (see the module)."""
    result = d.prior
    lec = ScalarLecture(d.model, d.likelihood, d.stationarity, d.information)
    tex = lec.tex
    theta = d.model.parameter_symbols
    args = ", ".join(tex(p) for p in theta)
    post = rf"\log \pi({args} \mid x_{{1}}, \dots, x_{{N}})"
    steps: list[Step] = []

    # the priors
    lines: list[tuple[Any, Any]] = []
    said = []
    for pr in result.priors:
        syms = [q.symbol for q in d.model.parameters if q.name in pr.parameters]
        lines.append((sp.Function("pi")(*syms), pr.density))
        if pr.family is not None:
            values = ", ".join(f"${tex(sp.Symbol(k))} = {tex(v)}$" for k, v in pr.args)
            said.append(f"${tex(syms[0])}$ has the prior of the catalogue family {pr.family} with {values}")
        else:
            who = lec.listing([f"${tex(s)}$" for s in syms])
            said.append(f"{who} {'have' if len(syms) > 1 else 'has'} the prior density given inline")
    flat = [q for q in d.model.parameters if not any(q.name in pr.parameters for pr in result.priors)]
    after = ""
    if flat:
        after = (
            lec.listing([f"${tex(q.symbol)}$" for q in flat])
            + (" have" if len(flat) > 1 else " has")
            + " a flat prior (a constant density), which changes nothing in the maximisation."
        )
    steps.append(
        Step(
            "Prior",
            "Estimation by maximum a posteriori (MAP) adds a prior: " + "; ".join(said) + ":",
            tuple(lines),
            after=after,
            kind="prior",
            section=PRIOR,
            label=label_for("prior"),
        )
    )

    # the log-posterior
    ell = lec.explicit(d.log_likelihood)
    logprior = result.log_prior
    lines = [
        (post, rf"\ell({args}) + \log \pi({args}) + \text{{const}}"),
        (None, sp.Add(ell, logprior, evaluate=False)),
    ]
    steps.append(
        Step(
            "Log-posterior",
            "By Bayes' theorem the posterior is proportional to the likelihood times the prior, so "
            "its logarithm is the log-likelihood plus the log-prior, up to a constant free of the "
            f"parameters. With the log-likelihood {reference('log_likelihood')}:",
            tuple(lines),
            after="The prior adds terms in the parameters only: the data still enter through the same sums.",
            kind="log_posterior",
            section=PRIOR,
            label=label_for("log_posterior"),
        )
    )

    # the posterior family
    pf = result.posterior
    if pf is not None:
        p = d.model.symbols[pf.parameter]
        lines = [(rf"{tex(sp.Symbol(k))}'", lec.plain(v)) for k, v in pf.parameters]
        steps.append(
            Step(
                "Posterior family",
                f"The log-posterior {reference('log_posterior')} differs from the log-density of the "
                f"catalogue family {pf.family}, in ${tex(p)}$, only by a constant free of ${tex(p)}$: "
                "the prior is conjugate, and the posterior is that family with the parameters",
                tuple(lines),
                after="symmle matched the two log-densities by their coefficients and checked numerically "
                "that they differ by a constant at random data and parameter values.",
                kind="posterior",
                section=PRIOR,
                label=label_for("posterior"),
            )
        )
    # its derivatives
    st = d.stationarity
    for p, s in zip(st.parameters, st.score):
        shown = quick("the MAP score in sums", lambda s=s: lec.spread(lec.explicit(s))) or lec.explicit(s)
        steps.append(
            Step(
                f"Derivative of the log-posterior in {p.name}",
                f"Differentiate the log-posterior {reference('log_posterior')} with respect to "
                f"${tex(p)}$ and set the derivative to zero:",
                ((rf"\frac{{\partial}}{{\partial {tex(p)}}} {post}", shown), (None, sp.S.Zero)),
                kind="map_derivative",
                parameter=p.name,
                section=MAP,
                label=label_for("map_derivative", p.name),
            )
        )

    # the MAP beside the MLE
    lines = []
    notes = []
    mle = result.mle.solutions
    for q in d.model.parameters:
        p = q.symbol
        hat = tex(lec.hats[p])
        e_mle, e_map = mle.get(q.name), d.solutions.get(q.name)
        for e, tag in ((e_mle, "MLE"), (e_map, "MAP")):
            name = rf"{hat}_{{\mathrm{{{tag}}}}}"
            if e is not None and e.kind in ("closed_form", "boundary") and e.expr is not None:
                lines.append((name, lec.plain(e.expr)))
            elif e is not None and e.equation is not None:
                notes.append(
                    f"${name}$ has no closed form: it solves "
                    f"${tex(lec.explicit(e.equation.lhs))} = {tex(lec.explicit(e.equation.rhs))}$ "
                    "numerically."
                )
            elif e is not None:
                notes.append(f"${name}$: no closed form.")
    checked = ", ".join(
        f"${tex(sp.Symbol(n, **lec.assumptions(d.model.symbols[n])))}$" for n in result.checked
    )
    after = " ".join(notes)
    if checked:
        after += (
            f" symmle checked the closed-form MAP of {checked} against a numerical maximisation of the "
            "log-posterior on several data sets."
        )
    steps.append(
        Step(
            "MLE and MAP",
            "The maximum-likelihood estimator and the MAP estimator side by side:",
            tuple(lines),
            after=after.strip(),
            kind="map_estimators",
            section=MAP,
            label=label_for("map_estimators"),
        )
    )

    # references to the MLE's equations resolve against its steps (already labelled and finished)
    before = list(result.mle.steps)
    resolved = resolve_references(before + steps)[len(before) :]
    return tuple(before) + tuple(define_at_first_use(resolved))
