"""The Fisher information and the Cramér–Rao bound of a scalar IID model, as lecture steps.

:class:`InformationSteps` is the part of :class:`~symmle.report.lecture.scalar.ScalarLecture` that
writes the information of one observation entry by entry (each expectation by linearity from those the
information was computed with) and the Cramér–Rao bound, stated for unbiased estimators, with the mean
of each estimator where it follows cheaply from the moments of the data (:meth:`estimator_mean`).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symmle.report.lecture.core import INFORMATION, Lecture, Step, quick
from symmle.report.lecture.finish import label_for, reference

__all__ = ["InformationSteps"]


class InformationSteps(Lecture):
    """The information and Cramér–Rao steps of a scalar lecture.

    The subclass sets ``x`` (the variable), ``X`` (its random variable) and
    ``logf`` (the log-density in ``x``).
    """

    x: sp.Symbol
    X: sp.Symbol
    logf: sp.Expr

    def _expectation(self, h: sp.Expr) -> sp.Expr | None:
        """``E[h(X)]`` from the expectations the information was computed with, by linearity."""
        table = {sp.expand(g): v for g, v in self.info.expectations.items()}
        total = sp.S.Zero
        for t in sp.Add.make_args(sp.expand(h.subs(self.X, self.x))):
            c, g = t.as_independent(self.x, as_Add=False)
            if g == 1:
                total += c
            elif g in table:
                total += c * table[g]
            else:
                return None
        return sp.factor(sp.simplify(total))

    def information_steps(self) -> list[Step]:
        """The Fisher information of one observation, entry by entry, and the Cramér–Rao bound."""
        info, theta = self.info, self.theta
        regular = list(self.st.parameters)
        if not theta:
            return []
        section = INFORMATION
        steps = []
        Xf = self.f(self.X, *theta)
        logf_X = self.logf.subs(self.x, self.X)
        k = len(theta)
        I_theta = sp.Function("I")(*theta)
        if k == 1:
            p = theta[0]
            second = rf"\frac{{\partial^{{2}}}}{{\partial {self.squared(p)}}}"
        else:
            second = r"\frac{\partial^{2}}{\partial \theta \, \partial \theta^{\top}}"
        definition = rf"-\mathrm{{E}}\left[{second} \log {self.tex(Xf)}\right]"
        E = sp.Function("E")

        def expect(g: sp.Expr) -> sp.Expr:
            """``E[g(X)]`` by linearity, constants outside: ``E[(X - mu)/s] = E[X - mu]/s``."""
            out = sp.S.Zero
            for t in sp.Add.make_args(g):
                c, h = t.as_independent(self.X, as_Add=False)
                if isinstance(h, sp.Add):
                    data = [u for u in h.args if u.has(self.X)]
                    rest = [u for u in h.args if not u.has(self.X)]
                    if all(u.could_extract_minus_sign() for u in data) and any(
                        u.free_symbols & set(theta) for u in rest
                    ):
                        c, h = -c, -h  # E[X - mu], not E[mu - X]
                out += c * E(h) if h.has(self.X) else t
            return out

        def entry(a: int, b: int) -> sp.Expr:
            p, q = theta[a], theta[b]
            if p not in regular or q not in regular:
                return sp.nan
            # term by term, so that each keeps its shape (E[X - mu] rather than E[X] - mu),
            # unless expanding into the functions of X the statistics use is shorter
            shaped = sp.Add(*[expect(-sp.diff(t, p, q)) for t in sp.Add.make_args(logf_X)])
            flat = quick("expand an information entry", lambda: expect(sp.expand(-sp.diff(logf_X, p, q))))
            return flat if flat is not None and sp.count_ops(flat) < sp.count_ops(shaped) else shaped

        inner = sp.Matrix(k, k, lambda a, b: entry(a, b))
        final = info.fisher[0, 0] if k == 1 else info.fisher
        middle = inner[0, 0] if k == 1 else inner
        lines: list[tuple[Any, Any]] = [(I_theta, definition), (I_theta, middle)]
        if middle != final:
            lines.append((I_theta, final))
        after = []
        needed = sorted(
            {e for v in inner if v is not sp.nan for e in v.atoms(sp.Function) if e.func == E},
            key=sp.default_sort_key,
        )
        known = (
            quick("expectations by linearity", lambda: {e: self._expectation(e.args[0]) for e in needed})
            or {}
        )
        if needed and all(known.get(e) is not None for e in needed):
            values = [f"${self.tex(e)} = {self.tex(known[e])}$" for e in needed]
            after.append("Here " + self.listing(values) + ".")
        elif needed and info.expectations:
            used = [
                f"$\\mathrm{{E}}[{self.tex(g.subs(self.x, self.X))}] = {self.tex(v)}$"
                for g, v in info.expectations.items()
            ]
            after.append("The expectations needed follow from " + self.listing(used) + ".")
        irregular = [p for p in theta if p not in regular]
        if not regular:
            names = self.listing([f"${self.tex(p)}$" for p in irregular])
            steps.append(
                Step(
                    "Fisher information",
                    f"The support depends on {names}, so the regularity conditions behind the "
                    "Fisher information fail: it does not exist, and neither does the Cramér–Rao "
                    "bound. (Estimators at the boundary of the support "
                    "typically converge at rate $1/N$ rather than $1/\\sqrt{N}$.)",
                    (),
                    kind="fisher",
                    section=section,
                )
            )
            return steps
        if irregular:
            names = self.listing([f"${self.tex(p)}$" for p in irregular])
            after.append(
                f"The entries for {names} do not exist (marked $\\text{{--}}$): the support depends "
                f"on {'it' if len(irregular) == 1 else 'them'}, so the regularity conditions behind "
                "the Fisher information fail."
            )
        missing = [
            (a, b)
            for a in range(k)
            for b in range(a, k)
            if theta[a] in regular and theta[b] in regular and info.fisher[a, b] is sp.nan
        ]
        if missing:
            after.append(
                "Entries marked $\\text{--}$ for regular parameters could not be found in closed "
                "form or failed their numerical check (see the notes)."
            )
        checked = [info.verified[a][b] for a in range(k) for b in range(k) if info.fisher[a, b] is not sp.nan]
        if checked and all(checked):
            method = "summation" if self.model.discrete else "integration"
            after.append(f"Each entry was checked against numerical {method} at a parameter point.")
        text = (
            f"The Fisher information of one observation ${self.tex(self.X)}$ is minus the expected "
            f"second derivative of its log-{self.density_word}:"
        )
        steps.append(
            Step(
                "Fisher information",
                text,
                tuple(lines),
                after=" ".join(after),
                kind="fisher",
                section=section,
                label=label_for("fisher"),
            )
        )
        if info.crlb is not None and regular:
            steps.append(self.crlb_step(regular, irregular))
        return steps

    def estimator_mean(self, p: sp.Symbol) -> sp.Expr | None:
        """``E[p_hat]`` of a closed-form estimator, where it follows cheaply from the expectations at hand.

        The estimator must be a polynomial of degree at most two in the sums
        ``T_j = sum_i g_j(x_i)``: for IID draws ``E[T_j] = N E[g_j(X)]`` and
        ``E[T_j T_k] = N E[g_j g_k] + N (N - 1) E[g_j] E[g_k]``, with each
        ``E[g(X)]`` from the expectations the Fisher information was computed
        with (:meth:`_expectation`).  ``None`` otherwise (``N / T_1``, say).
        """
        e = self.st.estimators.get(p.name)
        if e is None or e.kind != "closed_form" or e.expr is None:
            return None
        g = {s.symbol: s.expr for s in self.lik.statistics}
        if not e.expr.free_symbols & set(g):
            return None
        N = self.N

        def mean() -> sp.Expr | None:
            poly = sp.Poly(sp.expand(e.expr), *g)
            if poly.total_degree() > 2:
                return None
            total = sp.S.Zero
            for powers, coef in poly.terms():
                factors = [t for t, k in zip(g, powers) for _ in range(k)]
                if not factors:
                    value = sp.S.One
                elif len(factors) == 1:
                    value = self._expectation(g[factors[0]])
                    value = None if value is None else N * value
                else:
                    a, b = (g[t] for t in factors)
                    both, ea, eb = self._expectation(a * b), self._expectation(a), self._expectation(b)
                    if both is None or ea is None or eb is None:
                        return None
                    value = N * both + N * (N - 1) * ea * eb
                if value is None:
                    return None
                total += coef * value
            return sp.factor(sp.simplify(total))

        return quick(f"the mean of the estimator of {p}", mean)

    def bias_sentences(self, regular: list[sp.Symbol]) -> list[str]:
        """What is known of each estimator's mean: unbiased, or its mean where it is biased."""
        out = []
        for p in regular:
            m = self.estimator_mean(p)
            if m is None:
                continue
            hat = self.tex(self.hats[p])
            mean = rf"$\mathrm{{E}}\left[{hat}\right] = {self.tex(m)}$"
            if sp.simplify(m - p) == 0:
                out.append(f"Here ${hat}$ is unbiased ({mean}), so the bound applies to it at every $N$.")
            else:
                out.append(
                    f"Here ${hat}$ is biased ({mean}), so the bound does not apply to it as it stands."
                )
        return out

    def crlb_step(self, regular: list[sp.Symbol], irregular: list[sp.Symbol]) -> Step:
        """The Cramér–Rao bound of the regular parameters, for unbiased estimators (written with a tilde).

        The maximum-likelihood estimator need not be unbiased: the sentences say
        which estimators are (where that follows cheaply, :meth:`estimator_mean`)
        and that the MLE attains the bound only as ``N`` grows.
        """
        theta = self.theta
        idx = [theta.index(p) for p in regular]
        bound = self.info.crlb.extract(idx, idx)
        Ireg = sp.Function("I")(*theta)
        tilde = {p: sp.Symbol(f"tilde_{p.name}", **self.assumptions(p)) for p in regular}
        fisher = reference("fisher")
        if len(regular) == 1:
            p = regular[0]
            lines = [
                (sp.Function("Var")(tilde[p]), rf"\frac{{1}}{{N {self.tex(Ireg)}}}"),
                (None, bound[0, 0]),
            ]
            text = (
                f"By the Cramér–Rao inequality, any unbiased estimator ${self.tex(tilde[p])}$ of "
                f"${self.tex(p)}$ from $N$ observations has variance at least the inverse of the total "
                f"information $N {self.tex(Ireg)}$, with the information of one observation from {fisher}:"
            )
            rel = ("\\ge", "=")
        else:
            inverse = (
                rf"\left(N {self.tex(Ireg)}\right)^{{-1}}"
                if len(regular) == len(theta)
                else r"\left(N I\right)^{-1}"
            )
            lines = [(sp.Function("Cov")(*[tilde[p] for p in regular]), inverse), (None, bound)]
            text = (
                "By the Cramér–Rao inequality, any unbiased estimator "
                f"$({self.args_tex(tilde[p] for p in regular)})$ of $({self.args_tex(regular)})$ from $N$ "
                "observations has covariance at least the inverse of the total information "
                f"$N {self.tex(Ireg)}$, with the information of one observation from {fisher} "
                r"($A \succeq B$: $A - B$ is positive semidefinite):"
            )
            rel = ("\\succeq", "=")
        after = ["The bound holds for unbiased estimators; the maximum-likelihood estimator need not be one."]
        after += self.bias_sentences(regular)
        after.append(
            "Under the usual regularity conditions the maximum-likelihood estimator is asymptotically "
            "unbiased and attains this bound as $N \\to \\infty$; the bound gives its asymptotic variance "
            "and standard errors."
        )
        if irregular:
            after.append(f"No such bound applies to {self.listing([f'${self.tex(p)}$' for p in irregular])}.")
        return Step(
            "Cramér–Rao bound",
            text,
            tuple(lines),
            after=" ".join(after),
            kind="crlb",
            section=INFORMATION,
            relations=rel,
            label=label_for("crlb"),
        )
