"""The steps of a derivation, in the order and notation of a lecture note.

:func:`lecture_steps` turns the results of the pipeline (model, likelihood,
stationarity, information) into :class:`Step` records: the likelihood as a
product, the log-likelihood as a sum, the NLL, each derivative set to zero,
the estimators, the second-order check, the Fisher information and the
Cramér–Rao bound.  :mod:`symmle.report.render` prints them; nothing here derives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symmle.base.budget import attempt
from symmle.base.errors import DerivationTimeout
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.stationarity import Stationarity
from symmle.model.spec import Model
from symmle.report.printer import latex, subscript

__all__ = ["Step", "lecture_steps"]


@dataclass(frozen=True)
class Step:
    r"""One step of a derivation: a sentence, aligned equations, a closing sentence.

    The renderers (:mod:`symmle.report.render`) turn a sequence of steps into
    lecture notes; a Step holds no formatting of its own.

    Attributes
    ----------
    title : str
        Short name of the step, e.g. ``"Estimators"``.
    text : str
        The sentence before the equations; ``$...$`` is LaTeX maths.
    lines : tuple of (lhs, rhs)
        The aligned equations, as SymPy objects.  A line whose ``lhs``
        equals the previous one's (or is ``None``) continues it with
        ``&= rhs``; otherwise the ``lhs`` is shown.  An element may also be
        a ``str`` of LaTeX, for what has no SymPy form
        (``f(x_1) \cdots f(x_N)``).
    after : str
        The sentence after the equations (``$...$`` is LaTeX maths).
    kind : str
        The role of the step: ``model``, ``likelihood``, ``log_likelihood``,
        ``nll``, ``boundary``, ``derivative``, ``stationary``, ``reduced``,
        ``estimators``, ``hessian``, ``fisher`` or ``crlb``.
    parameter : str
        The parameter the step is about, if any.
    section : str
        The heading the step is shown under.
    relations : tuple of str
        Each line's relation in LaTeX (default ``=``), e.g. ``\ge``.

    Examples
    --------
    >>> from symmle import derive
    >>> step = derive("poisson").steps[-1]
    >>> step.title, step.kind, step.relations
    ('Cramér–Rao bound', 'crlb', ('\\ge', '='))
    >>> step.lines[-1]
    (None, lam/N)
    """

    title: str
    text: str
    lines: tuple[tuple[Any, Any], ...]
    after: str = ""
    kind: str = ""
    parameter: str = ""
    section: str = ""
    relations: tuple[str, ...] = ()


def lecture_steps(model: Model, lik: Likelihood, st: Stationarity, info: Information) -> tuple[Step, ...]:
    """The steps of the derivation, in the order and notation of a lecture note.

    The likelihood as a product, the log-likelihood as a sum, the NLL, each
    partial derivative set to zero and solved, the estimators (support
    constraints for boundary kinds, the reduced equation for numeric ones),
    the second-order check, the Fisher information and the Cramér–Rao bound.
    Every expression is a SymPy object equal to what the pipeline derived;
    the forms shown are only rearranged (sums written out, constants pulled
    out of sums, logarithms of constants combined) and each rearrangement
    that is not an identity by construction is checked symbolically first.
    """
    return tuple(_Lecture(model, lik, st, info).steps())


#: Budget in seconds of each presentation-only manipulation (it falls back to the plain form).
_SHOW_SECONDS = 2.0


def _quick(step: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` under a small budget; ``None`` if it times out or fails."""

    def guarded() -> Any:
        try:
            return fn()
        except (DerivationTimeout, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - presentation falls back to the plain form
            return None

    value, _ = attempt(step, _SHOW_SECONDS, guarded)
    return value


def _combine_logs(expr: sp.Expr) -> sp.Expr:
    """Logarithms of positive quantities with the same coefficient, combined: ``-log(2)/2 - log(pi)/2 - log(s)/2 -> -log(2 pi s)/2``."""
    groups: dict[sp.Expr, sp.Expr] = {}
    rest = sp.S.Zero
    for t in sp.Add.make_args(expr):
        logs = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.log)]
        if len(logs) == 1 and logs[0].args[0].is_positive:
            coef = t / logs[0]
            groups[coef] = groups.get(coef, sp.S.One) * logs[0].args[0]
        else:
            rest += t
    return rest + sp.Add(*[c * sp.log(a) for c, a in groups.items()])


class _Lecture:
    """Builds the :class:`Step` sequence of one derivation (see :func:`lecture_steps`)."""

    def __init__(self, model: Model, lik: Likelihood, st: Stationarity, info: Information) -> None:
        self.model, self.lik, self.st, self.info = model, lik, st, info
        self.x, self.N, self.i = model.variable, lik.N, lik.index
        self.xi = lik.sample[self.i]
        self.theta = model.parameter_symbols
        self.f = sp.Function("f")
        self.L, self.ell, self.J = (sp.Function(n)(*self.theta) for n in ("L", "ell", "J"))
        X = sp.Symbol(self.x.name.upper(), **self._assumptions(self.x))
        self.X = X if X.name not in model.symbols and X.name != self.x.name else self.x
        self.data = frozenset({self.x, self.X})
        self.hats = {p: sp.Symbol(f"hat_{p.name}", **self._assumptions(p)) for p in self.theta}
        self._tex = latex
        self.density_word = "probability mass function" if model.discrete else "density"
        self.densities_word = "probability mass functions" if model.discrete else "densities"
        # the log-likelihood as a lecturer writes it: N * (what is free of x) + coefficients times sums
        self.logf = lik.log_density
        self.ell_sum = self._gather(self.logf)
        self.solved: dict[sp.Symbol, sp.Expr] = {}  # p -> its own score equation solved for p
        self.shown: dict[sp.Symbol, sp.Expr] = {}  # p -> its displayed estimator (in hats)
        self.joint = False  # some stationarity condition was not solved on its own

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _assumptions(s: sp.Symbol) -> dict[str, bool]:
        keys = ("real", "positive", "nonnegative", "integer")
        return {k: v for k, v in s.assumptions0.items() if k in keys and v is not None}

    def tex(self, expr: Any) -> str:
        return self._tex(expr, self.data)

    def explicit(self, expr: sp.Expr) -> sp.Expr:
        return self.tidy(self.lik.explicit(expr))

    def _pull(self, s: sp.Sum) -> sp.Expr:
        """``sum(c g)`` as ``c sum(g)``, with the data term of ``g`` positive."""
        if len(s.limits) != 1:
            return s
        i = s.limits[0][0]
        inner = sp.factor_terms(s.function)
        if sp.count_ops(inner) < 80 and inner.has(sp.Pow):
            combined = sp.factor_terms(sp.together(inner))  # no fractions within fractions
            if sp.count_ops(combined) < sp.count_ops(inner):
                inner = combined

        c, g = inner.as_independent(i, as_Add=False)
        if g == 1:
            return c * s.limits[0][2] if s.limits[0][1] == 1 else s
        if isinstance(g, sp.Add):
            # x_i - mu rather than mu - x_i (but 1 - x_i stays as it is)
            data = [t for t in g.args if t.has(i)]
            rest = [t for t in g.args if not t.has(i)]
            if data and all(t.could_extract_minus_sign() for t in data) and any(t.free_symbols & set(self.theta) for t in rest):
                c, g = -c, -g
        return c * sp.Sum(g, *s.limits)

    def tidy(self, expr: Any) -> Any:
        """Constants pulled out of the sums over the data (an identity)."""
        if not isinstance(expr, sp.Basic) or not expr.has(sp.Sum):
            return expr
        return expr.replace(lambda e: isinstance(e, sp.Sum), self._pull)

    def spread(self, expr: sp.Expr) -> sp.Expr:
        """Products over sums distributed at the top level only (sums over the data stay whole).

        The terms free of sums are gathered into one simplified term where that is shorter.
        """
        e = self.tidy(sp.Add(*[sp.expand(t, deep=False) for t in sp.Add.make_args(self.tidy(expr))]))

        free = [t for t in sp.Add.make_args(e) if not t.has(sp.Sum)]
        if len(free) > 1:
            short = _quick("gather the terms free of sums", lambda: sp.factor(sp.Add(*free)))
            if short is not None and sp.count_ops(short) < sp.count_ops(sp.Add(*free)):
                e = short + sp.Add(*[t for t in sp.Add.make_args(e) if t.has(sp.Sum)])
        return e


    def linearise(self, expr: sp.Expr, only: set | None = None, linear_only: bool = False) -> sp.Expr:
        """Sums over the data split by linearity: ``sum(x_i - mu) -> sum(x_i) - N mu``.

        Only sums with ``only`` symbols inside, and with ``linear_only`` only
        sums of sums (``sum (x_i - mu)^2`` stays whole).
        """

        def lin(s: sp.Sum) -> sp.Expr:
            if len(s.limits) != 1 or (only is not None and not (s.function.free_symbols & only)):
                return s
            if linear_only and not s.function.is_Add:
                return s

            i, lo, hi = s.limits[0]
            out = sp.S.Zero
            for t in sp.Add.make_args(sp.expand(s.function, log=False, power_base=False, power_exp=False)):
                c, g = t.as_independent(i, as_Add=False)
                if only is not None and g.free_symbols & only:
                    return s  # splitting would not take the symbols out of the sum
                out += c * (hi - lo + 1) if g == 1 else c * sp.Sum(g, (i, lo, hi))
            return out

        return self.tidy(expr.replace(lambda e: isinstance(e, sp.Sum), lin))

    def _gather(self, logf: sp.Expr) -> sp.Expr:
        """``sum_i logf(x_i)`` as ``N A + sum_k c_k sum_i g_k(x_i)``."""
        const = sp.S.Zero
        sums: dict[sp.Expr, sp.Expr] = {}
        for t in sp.Add.make_args(logf):
            if not t.has(self.x):
                const += t
                continue
            c, g = t.as_independent(self.x, as_Add=False)
            sums[g] = sums.get(g, sp.S.Zero) + c
        out = sp.Add(*[self.N * t for t in sp.Add.make_args(_combine_logs(const))])
        for g, c in sums.items():
            out += c * self._pull(sp.Sum(g.subs(self.x, self.xi), (self.i, 1, self.N)))
        return out

    def per_sample(self, logf: sp.Expr) -> sp.Expr:
        """``logf`` with logarithms of constants combined."""
        free = sp.Add(*[t for t in sp.Add.make_args(logf) if not t.has(self.x)])
        return _combine_logs(free) + (logf - free)

    def density_shown(self, density: sp.Expr, at: sp.Expr | None = None) -> sp.Expr:
        """The density (at ``at``) with a normalising constant under a root written as one root: ``1/sqrt(2 pi sigma^2)``."""
        if at is not None:
            density = density.subs(self.x, at)
        c, rest = density.as_independent(self.x if at is None else at, as_Add=False)
        roots = [f for f in sp.Mul.make_args(c) if f.is_Pow and f.exp in (sp.S.Half, -sp.S.Half) and f.base.free_symbols]
        if not roots:
            return density

        def show() -> sp.Expr | None:
            inverse = sp.factor(sp.powsimp(1 / c**2))
            square = sp.factor(sp.powsimp(c**2))
            fractional = lambda e: any(p.is_Pow and p.exp.is_Rational and not p.exp.is_Integer for p in sp.preorder_traversal(e))
            if not fractional(inverse) and sp.fraction(inverse)[1] == 1:
                root = sp.Pow(inverse, -sp.S.Half, evaluate=False)
            elif not fractional(square):
                root = sp.Pow(square, sp.S.Half, evaluate=False)
            else:
                return None
            if not c.is_positive and not (c.is_positive is None and all(a.is_positive for a in c.free_symbols)):
                return None
            return sp.Mul(root, *sp.Mul.make_args(rest), evaluate=False)

        shown = _quick("show the normalising constant", show)
        return shown if shown is not None else density

    def support_tex(self) -> str:
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

    def domain_tex(self, q) -> str:
        s = self.tex(q.symbol)
        return {
            "real": rf"${s} \in (-\infty, \infty)$",
            "positive": rf"${s} \in (0, \infty)$",
            "nonnegative": rf"${s} \in [0, \infty)$",
            "unit": f"${s} \\in (0, 1)$",
            "integer": f"${s}$, an integer",
            "positive_integer": rf"${s} \in \{{1, 2, \dots\}}$",
        }.get(q.domain, f"${s}$")

    @staticmethod
    def listing(items: list[str]) -> str:
        if len(items) <= 2:
            return " and ".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]

    def squared(self, p: sp.Symbol) -> str:
        """``p^{2}`` in LaTeX, with parentheses when ``p`` has a superscript of its own."""
        t = self.tex(p)
        return rf"\left({t}\right)^{{2}}" if "^" in t else f"{t}^{{2}}"

    def args_tex(self, params) -> str:
        return ", ".join(self.tex(p) for p in params)

    def glossary(self, *exprs: Any) -> str:
        """A sentence naming the special functions and constants that appear."""
        found: list[str] = []
        atoms = set()
        for e in exprs:
            if isinstance(e, sp.MatrixBase):
                for v in e:
                    atoms |= {(type(a), a.args[0] if isinstance(a, sp.polygamma) else None) for a in v.atoms(sp.polygamma, sp.gamma)}
                    if v.has(sp.EulerGamma):
                        atoms.add((type(sp.EulerGamma), None))
            elif isinstance(e, sp.Basic):
                atoms |= {(type(a), a.args[0] if isinstance(a, sp.polygamma) else None) for a in e.atoms(sp.polygamma, sp.gamma)}
                if e.has(sp.EulerGamma):
                    atoms.add((type(sp.EulerGamma), None))
        orders = {int(m) for t, m in atoms if t is sp.polygamma and m is not None and m.is_Integer}
        if sp.gamma in {t for t, _ in atoms}:
            found.append(r"$\Gamma$ is the gamma function")
        if 0 in orders:
            found.append(r"$\psi = \Gamma'/\Gamma$ is the digamma function")
        if 1 in orders:
            found.append(r"$\psi'$ is the trigamma function")
        if type(sp.EulerGamma) in {t for t, _ in atoms}:
            found.append("$\\gamma$ is the Euler–Mascheroni constant")
        return ("Here " + self.listing(found) + ".") if found else ""

    # ------------------------------------------------------------------ steps
    def steps(self) -> list[Step]:
        out = self.model_steps() + self.likelihood_steps()
        out += self.boundary_steps()
        out += self.stationarity_steps()
        out += self.numeric_steps()
        out += self.estimator_steps()
        out += self.hessian_steps()
        out += self.information_steps()
        return out

    def model_steps(self) -> list[Step]:
        m = self.model
        xs = rf"{subscript(self.tex(self.x), '1')}, \dots, {subscript(self.tex(self.x), 'N')}"
        text = (f"We are given $N$ independent, identically distributed (IID) observations ${xs}$, "
                f"each a draw from the {self.density_word}")
        many = len(m.parameters) > 1
        after = (f"for ${self.support_tex()}$. The unknown parameter{'s are' if many else ' is'} "
                 f"{self.listing([self.domain_tex(q) for q in m.parameters])}")
        if m.constants:
            known = []
            for q in m.constants:
                value = f" (here ${self.tex(q.symbol)} = {self.tex(sp.nsimplify(q.value))}$)" if q.value is not None else ""
                known.append(self.domain_tex(q) + value)
            after += "; known constant" + ("s" if len(known) > 1 else "") + ": " + self.listing(known)
        after += "."
        gloss = self.glossary(m.density)
        if gloss:
            after += " " + gloss
        return [Step("Model", text + ":", ((self.f(self.x, *self.theta), self.density_shown(m.density)),),
                     after=after, kind="model", section="The model")]

    def likelihood_steps(self) -> list[Step]:
        lik, N, i, xi = self.lik, self.N, self.i, self.xi
        sample = lik.sample
        chain = (rf"{self.tex(self.f(sample[1], *self.theta))} \, {self.tex(self.f(sample[2], *self.theta))} "
                 rf"\cdots {self.tex(self.f(sample[N], *self.theta))}")
        joint = "joint probability" if self.model.discrete else "joint density"
        steps = [Step(
            "Likelihood",
            f"The observations are independent, so their {joint} is the product of their {self.densities_word}. "
            f"Viewed as a function of the parameter{'s' if len(self.theta) > 1 else ''}, it is the likelihood:",
            ((self.L, chain), (self.L, sp.Product(self.f(xi, *self.theta), (i, 1, N))),
             (self.L, sp.Product(self.density_shown(self.model.density, xi), (i, 1, N)))),
            kind="likelihood", section="Likelihood",
        )]
        per = self.per_sample(self.logf).subs(self.x, xi)
        stats = [s for s in lik.statistics if s.informative]
        sums = self.listing([f"${self.tex(lik.sum_over_sample(s.expr))}$" for s in stats])
        if stats and lik.coupled == 0:
            after = f"The data enter only through {sums}: {'these are' if len(stats) > 1 else 'this is'} sufficient for the parameters."
        elif stats:
            after = f"The data enter through {sums} and through sums that involve the parameters themselves."
        else:
            after = "The data do not enter the log-likelihood at all: only the support constrains the parameters."
        steps.append(Step(
            "Log-likelihood",
            "Instead of maximising the likelihood directly, it is easier to maximise its logarithm, "
            "the log-likelihood: the logarithm turns the product into a sum.",
            ((self.ell, sp.log(self.L)), (self.ell, sp.Sum(sp.log(self.f(xi, *self.theta)), (i, 1, N))),
             (self.ell, sp.Sum(per, (i, 1, N))), (self.ell, self.ell_sum)),
            after=after, kind="log_likelihood", section="Likelihood",
        ))
        nll = -self.ell_sum
        lines = [(self.J, -self.ell), (self.J, nll)]
        inside = any(s.function.free_symbols & set(self.theta) for s in nll.atoms(sp.Sum))
        if inside and lik.coupled == 0:
            expanded = _quick("the NLL in the sums", lambda: self._in_statistics(lik.nll))
            if expanded is not None and expanded != nll:
                lines.append((self.J, expanded))
        steps.append(Step(
            "Negative log-likelihood",
            "Maximising the log-likelihood is the same as minimising the negative log-likelihood (NLL):",
            tuple(lines), kind="nll", section="Likelihood",
        ))
        return steps

    def _in_statistics(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` (in ``N`` and the ``T_j``) with the sums written out, constants combined."""
        e = sp.expand_mul(expr)
        free = sp.Add(*[t for t in sp.Add.make_args(e) if not (t.free_symbols & {s.symbol for s in self.lik.statistics})])
        return self.explicit(_combine_logs(free) + (e - free))

    # ------------------------------------------------------------------ maximisation
    def boundary_steps(self) -> list[Step]:
        steps = []
        lo, hi = self.model.support
        for p, value in self.st.boundary:
            e = self.st.estimators[p.name]
            upper = p in hi.free_symbols
            end = hi if upper else lo
            order = self.tex(self.lik.order_statistics[1 if upper else 0])
            constraint = rf"{self.tex(end)} \ge {order}" if upper else rf"{self.tex(end)} \le {order}"
            slope = self.tidy(sp.diff(self.ell_sum, p))
            sign = True if slope.is_positive else False if slope.is_negative else None

            text = (f"The support depends on ${self.tex(p)}$, so the likelihood is zero unless every observation lies in it, "
                    f"that is unless ${constraint}$. On this feasible set the derivative of the log-likelihood is")
            if sign is True:
                why = f"It is positive, so the log-likelihood increases with ${self.tex(p)}$"
            elif sign is False:
                why = f"It is negative, so the log-likelihood decreases as ${self.tex(p)}$ grows"
            else:
                why = f"symmle checked on test data that {e.note}"
            side = "largest" if upper else "smallest"
            after = (f"{why}, and the maximum is where the constraint binds: at the {side} observation."
                     if sign is not None else f"{why[0].upper()}{why[1:]}.")
            steps.append(Step(f"Support constraint on {p.name}", text,
                              ((sp.Derivative(self.ell, p), slope),), after=after, kind="boundary", parameter=p.name,
                              section="Maximising the likelihood"))
            self.shown[p] = value
        return steps

    def _solve_own(self, p: sp.Symbol, score: sp.Expr) -> list[sp.Expr]:
        """Roots for ``p`` of ``score = 0``, with sums over the data as unknown constants."""
        atoms = sorted(score.atoms(sp.Sum), key=sp.default_sort_key)
        if any(p in s.free_symbols for s in atoms):
            return []
        dummies = {s: sp.Dummy() for s in atoms}
        back = {v: k for k, v in dummies.items()}
        roots = sp.solve(sp.together(score.xreplace(dummies)), p, dict=False, check=False, simplify=False)
        out = []
        for r in roots:
            if p in r.free_symbols:
                continue
            together = sp.together(r)
            out.append(self.tidy((together if sp.count_ops(together) <= sp.count_ops(r) else r).xreplace(back)))
        return out

    def _equal(self, a: sp.Expr, b: sp.Expr) -> bool:
        """Whether two expressions in the data sums are equal (sums split by linearity first)."""

        def check() -> bool:
            u, v = self.linearise(self.explicit(a)), self.linearise(self.explicit(b))
            atoms = (u.atoms(sp.Sum) | v.atoms(sp.Sum))
            dummies = {s: sp.Dummy(positive=True) if s.function.is_positive else sp.Dummy(real=True) for s in atoms}
            return sp.simplify(u.xreplace(dummies) - v.xreplace(dummies)) == 0

        return _quick("compare two forms of an estimator", check) is True

    def _values(self) -> dict[sp.Symbol, sp.Expr]:
        """Parameters with an estimator in closed form or as an order statistic."""
        out = {}
        for p in self.theta:
            e = self.st.estimators.get(p.name)
            if e is not None and e.kind in ("closed_form", "boundary") and e.expr is not None:
                out[p] = e.expr
        return out

    def stationarity_steps(self) -> list[Step]:
        steps = []
        values = self._values()
        profile = dict(self.st.profile)
        nll = -self.ell_sum
        for p in self.st.parameters:
            d = self.spread(sp.diff(nll, p))
            lines: list[tuple[Any, Any]] = [(sp.Derivative(self.J, p), d)]
            lin = self.spread(self.linearise(d, {p})) if any(p in s.free_symbols for s in d.atoms(sp.Sum)) else d
            if lin != d:
                lines.append((sp.Derivative(self.J, p), lin))
            section = "Maximising the likelihood"
            steps.append(Step(f"Partial derivative in {p.name}", f"Differentiate the NLL with respect to ${self.tex(p)}$:",
                              tuple(lines), kind="derivative", parameter=p.name, section=section))
            e = self.st.estimators[p.name]
            target = None
            if e.kind == "closed_form":
                target = e.expr
            elif p in profile:
                target = profile[p]
            roots = _quick(f"solve dJ/d{p} = 0 for {p}", lambda p=p, lin=lin: self._solve_own(p, self.linearise(lin, linear_only=True))) or []
            chosen = None
            for r in roots:
                if target is None:
                    break
                others = {q: v for q, v in values.items() if q is not p and q in r.free_symbols}
                if any(q in r.free_symbols and q not in others for q in self.theta if q is not p) and p not in profile:
                    continue
                if self._equal(r.subs(others), target):
                    chosen = r
                    break
            dp = rf"\partial J / \partial {self.tex(p)}"
            if chosen is not None:
                self.solved[p] = chosen
                rest = [q for q in self.theta if q is not p and q in chosen.free_symbols]
                after = ""
                if rest:
                    after = (f"This holds for any value of {self.listing([f'${self.tex(q)}$' for q in rest])}; "
                             + ("at the maximum it takes its estimate." if len(rest) == 1 else "at the maximum they take their estimates."))
                steps.append(Step(f"Stationarity in {p.name}", f"Setting ${dp} = 0$ and solving for ${self.tex(p)}$ gives",
                                  ((p, chosen),), after=after, kind="stationary", parameter=p.name, section=section))
            else:
                # no closed form for p on its own: the condition is the derivative above, set to zero
                self.joint = True
                why = (f"Setting ${dp} = 0$ gives an equation with no closed-form solution for ${self.tex(p)}$ on its own."
                       if e.kind != "closed_form" else "It is set to zero below, together with the other conditions.")
                last = steps[-1]
                steps[-1] = Step(last.title, last.text, last.lines, after=why, kind=last.kind, parameter=last.parameter,
                                 section=last.section)
        return steps

    def numeric_steps(self) -> list[Step]:
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
            text = (f"Substituting {given} into the remaining stationarity condition{'s' if len(st.reduced) > 1 else ''} "
                    f"leaves {'one equation' if len(lines) == 1 else f'{len(lines)} equations'} in {names} alone:")
        else:
            text = f"The stationarity conditions for {names} reduce to"
        count = len(st.reduced)
        method = "Brent's method on the score" if count == 1 else "a trust region on the exact Hessian of the profile log-likelihood"
        after = (("It has" if len(lines) == 1 else "They have") + " no closed-form solution, so symmle solves "
                 + ("it" if len(lines) == 1 else "them") + f" numerically: a coarse search of the profile log-likelihood, "
                 f"then {method} ({'one parameter' if count == 1 else 'several parameters'}), then Newton steps on exact derivatives. "
                 "The result must be a maximum (a negative definite Hessian); otherwise symmle reports that the MLE was not reached.")
        gloss = self.glossary(*[a for row in lines for a in row])
        after = " ".join([*notes, after, gloss]).strip()
        return [Step("Reduced equation", text, tuple(lines), after=after, kind="reduced", section="Maximising the likelihood")]

    def estimator_steps(self) -> list[Step]:
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
                shown[p] = form.xreplace(hats) if form is not None else self._plain(e.expr)
            elif p in profile:
                form = self.solved.get(p, self.explicit(profile[p]))
                shown[p] = form.xreplace(hats)
        self.shown = shown
        # each estimator after those it is written in
        order: list[sp.Symbol] = []
        pending = [p for p in self.theta if p in shown]
        while pending:
            ready = [p for p in pending if not any(hats[q] in shown[p].free_symbols for q in pending if q is not p)]
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
                after.append(f"No estimator of ${self.tex(p)}$ was found: {e.note.replace('$', chr(92) + '$')}.")
        many = len(lines) > 1
        if numeric:
            roots = self.listing([f"${self.tex(hats[p])}$" for p in numeric])
            text = (f"With {roots} the root{'s' if len(numeric) > 1 else ''} of the reduced equation"
                    f"{'s' if len(self.st.equations) > 1 else ''} above, the "
                    + ("other maximum-likelihood estimators are" if many else "other maximum-likelihood estimator is"))
        elif self.joint:
            text = ("Solving the stationarity conditions jointly gives the maximum-likelihood estimator"
                    + ("s" if many else ""))
        else:
            text = "The maximum-likelihood estimators are therefore" if many else "The maximum-likelihood estimator is therefore"
        if not lines:
            if numeric:
                after.insert(0, f"The maximum-likelihood estimate{'s' if len(numeric) > 1 else ''} {roots} "
                                f"{'are the roots' if len(numeric) > 1 else 'is the root'} of the reduced equation"
                                f"{'s' if len(self.st.equations) > 1 else ''} above.")
            return [Step("Estimators", " ".join(after), (), kind="estimators", section="Maximising the likelihood")] if after else []
        return [Step("Estimators", text, tuple(lines), after=" ".join(after), kind="estimators", section="Maximising the likelihood")]


    def _plain(self, expr: sp.Expr) -> sp.Expr:
        """An estimator in the data sums, the sign of its denominator positive where that is simpler."""
        e = self.explicit(expr)

        def tidy() -> sp.Expr:
            num, den = sp.fraction(sp.together(e))
            if den.could_extract_minus_sign():
                num, den = -num, -den
            candidate = self.tidy(num / den)
            expanded = self.tidy(sp.expand(num / den)) if den.is_Pow or den.is_Symbol or den.is_Mul and not den.has(sp.Sum) else None
            best = min([c for c in (e, candidate, expanded) if c is not None], key=lambda c: (sp.count_ops(c), len(str(c))))
            return best

        return _quick("tidy an estimator", tidy) or e

    def hessian_steps(self) -> list[Step]:
        regular = list(self.st.parameters)
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
        at = _quick("the Hessian at the estimate", lambda: self._at_estimate(H, regular))
        claims = []
        closed = all(self.st.estimators[p.name].kind == "closed_form" for p in regular)
        negative = at is not None and all(at[a, a].is_negative for a in range(k)) and all(
            at[a, b] == 0 for a in range(k) for b in range(k) if a != b)
        if at is not None and (negative or any(e.has(sp.Sum) for e in H)):
            name = (rf"\left.\frac{{\partial^{{2}} \ell}}{{\partial {self.squared(regular[0])}}}\right|_{{{self.tex(regular[0])} = {self.tex(self.hats[regular[0]])}}}"
                    if k == 1 else sp.Function("H")(*[self.hats[p] for p in regular]))
            lines.append((name, at[0, 0] if k == 1 else at))
            if negative:
                claims.append("Its diagonal entries are negative and the others vanish, so it is negative definite "
                              "and the stationary point is a maximum." if k > 1 else
                              "This is negative, so the stationary point is a maximum.")
        verified = all(self.st.estimators[p.name].verified for p in regular)
        if closed and verified:
            claims.append("symmle also checked on several test data sets that the score vanishes at the estimate "
                          "and that the Hessian is negative definite there.")
        elif not closed:
            claims.append("For the parameters found numerically, symmle checks that this matrix is negative definite "
                          "at the solution of each data set.")
        else:
            claims.append("The numerical check of the maximum did not pass for every parameter (see the notes).")
        text = ("To confirm a maximum rather than a minimum or a saddle point, the Hessian of the log-likelihood "
                "must be negative definite at the estimate." + (" It is" if k > 1 else " The second derivative is"))
        return [Step("Second-order check", text, tuple(lines), after=" ".join(claims), kind="hessian", section="Second-order check")]

    def _at_estimate(self, H: sp.Matrix, regular: list[sp.Symbol]) -> sp.Matrix | None:
        """The Hessian at the estimate, in the estimates, where the data sums can be eliminated.

        Each displayed estimator is a relation between the estimates and the
        data sums; split by linearity, these are equations for the sums
        (e.g. ``sum x_i = N mu_hat``, ``sum x_i^2 - 2 mu_hat sum x_i + N mu_hat^2 = N sigma2_hat``),
        solved here and substituted into the Hessian.
        """
        if not all(p in self.shown for p in regular):
            return None
        hats = self.hats
        eqs = [self.linearise(hats[p] - form) for p, form in self.shown.items() if form.has(sp.Sum)]
        atoms = sorted(set().union(*(e.atoms(sp.Sum) for e in eqs)) if eqs else set(), key=sp.default_sort_key)
        values = {p: hats[p] for p in self.theta if p in self.shown}
        out = H.xreplace(values).applyfunc(self.linearise)
        if atoms and any(e.has(sp.Sum) for e in out):

            dummies = {s: sp.Dummy() for s in atoms}
            solutions = sp.solve([e.xreplace(dummies) for e in eqs], list(dummies.values()), dict=True, check=False, simplify=False)
            if len(solutions) != 1:
                return None
            sub = {s: solutions[0][u] for s, u in dummies.items() if u in solutions[0]}
            out = out.xreplace(sub)
        if any(e.has(sp.Sum) or e.atoms(sp.Indexed) for e in out):
            return None
        return out.applyfunc(lambda e: sp.factor(sp.simplify(e)))

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

        info, theta = self.info, self.theta
        regular = list(self.st.parameters)
        if not theta:
            return []
        section = "Fisher information and the Cramér–Rao bound"
        steps = []
        Xf = self.f(self.X, *theta)
        logf_X = self.logf.subs(self.x, self.X)
        k = len(theta)
        I = sp.Function("I")(*theta)
        if k == 1:
            p = theta[0]
            definition = rf"-\mathrm{{E}}\left[\frac{{\partial^{{2}}}}{{\partial {self.squared(p)}}} \log {self.tex(Xf)}\right]"
        else:
            definition = rf"-\mathrm{{E}}\left[\frac{{\partial^{{2}}}}{{\partial \theta \, \partial \theta^{{\top}}}} \log {self.tex(Xf)}\right]"
        E = sp.Function("E")

        def expect(g: sp.Expr) -> sp.Expr:
            """``E[g(X)]`` by linearity, constants outside: ``E[(X - mu)/s] = E[X - mu]/s``."""
            out = sp.S.Zero
            for t in sp.Add.make_args(g):
                c, h = t.as_independent(self.X, as_Add=False)
                if isinstance(h, sp.Add):
                    data = [u for u in h.args if u.has(self.X)]
                    if all(u.could_extract_minus_sign() for u in data) and any(u.free_symbols & set(theta) for u in h.args if not u.has(self.X)):
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
            flat = _quick("expand an information entry", lambda: expect(sp.expand(-sp.diff(logf_X, p, q))))
            return flat if flat is not None and sp.count_ops(flat) < sp.count_ops(shaped) else shaped


        inner = sp.Matrix(k, k, lambda a, b: entry(a, b))
        final = info.fisher[0, 0] if k == 1 else info.fisher
        middle = inner[0, 0] if k == 1 else inner
        lines: list[tuple[Any, Any]] = [(I, definition), (I, middle)]
        if middle != final:
            lines.append((I, final))
        after = []
        needed = sorted({e for v in inner if v is not sp.nan for e in v.atoms(sp.Function) if e.func == E}, key=sp.default_sort_key)
        known = _quick("expectations by linearity", lambda: {e: self._expectation(e.args[0]) for e in needed}) or {}
        if needed and all(known.get(e) is not None for e in needed):
            after.append("Here " + self.listing([f"${self.tex(e)} = {self.tex(known[e])}$" for e in needed]) + ".")
        elif needed and info.expectations:
            used = [f"$\\mathrm{{E}}[{self.tex(g.subs(self.x, self.X))}] = {self.tex(v)}$" for g, v in info.expectations.items()]
            after.append("The expectations needed follow from " + self.listing(used) + ".")
        irregular = [p for p in theta if p not in regular]
        if not regular:
            names = self.listing([f"${self.tex(p)}$" for p in irregular])
            steps.append(Step("Fisher information",
                              f"The support depends on {names}, so the regularity conditions behind the Fisher information fail: "
                              f"it does not exist, and neither does the Cramér–Rao bound. (Estimators at the boundary of the support "
                              f"typically converge at rate $1/N$ rather than $1/\\sqrt{{N}}$.)",
                              (), kind="fisher", section=section))
            return steps
        if irregular:

            names = self.listing([f"${self.tex(p)}$" for p in irregular])
            after.append(f"The entries for {names} do not exist (marked $\\text{{--}}$): the support depends on "
                         f"{'it' if len(irregular) == 1 else 'them'}, so the regularity conditions behind the Fisher information fail.")
        missing = [(a, b) for a in range(k) for b in range(a, k) if theta[a] in regular and theta[b] in regular and info.fisher[a, b] is sp.nan]
        if missing:
            after.append("Entries marked $\\text{--}$ for regular parameters could not be found in closed form or failed their numerical check (see the notes).")
        checked = [info.verified[a][b] for a in range(k) for b in range(k) if info.fisher[a, b] is not sp.nan]
        if checked and all(checked):
            after.append(f"Each entry was checked against numerical {'summation' if self.model.discrete else 'integration'} at a parameter point.")
        gloss = self.glossary(info.fisher)
        if gloss:
            after.append(gloss)
        steps.append(Step("Fisher information",
                          "The Fisher information of one observation $" + self.tex(self.X) + "$ is minus the expected second derivative of its log-"
                          + self.density_word + ":", tuple(lines), after=" ".join(after), kind="fisher", section=section))
        if info.crlb is not None and regular:
            idx = [theta.index(p) for p in regular]
            bound = info.crlb.extract(idx, idx)
            Ireg = sp.Function("I")(*theta)
            if len(regular) == 1:
                p = regular[0]
                lines = [(sp.Function("Var")(self.hats[p]), rf"\frac{{1}}{{N {self.tex(Ireg)}}}"), (None, bound[0, 0])]
                text = (f"By the Cramér–Rao inequality, any unbiased estimator of ${self.tex(p)}$ from $N$ observations "
                        "has variance at least the inverse of the total information:")
                rel = ("\\ge", "=")
            else:
                lines = [(sp.Function("Cov")(*[self.hats[p] for p in regular]),
                          rf"\left(N {self.tex(Ireg)}\right)^{{-1}}" if len(regular) == k else r"\left(N I\right)^{-1}"),
                         (None, bound)]
                text = ("By the Cramér–Rao inequality, any unbiased estimator of "
                        f"$({self.args_tex(regular)})$ from $N$ observations has covariance at least the inverse of the total information "
                        r"($A \succeq B$: $A - B$ is positive semidefinite):")
                rel = ("\\succeq", "=")
            after_b = ("Under the usual regularity conditions the maximum-likelihood estimator attains this bound as $N \\to \\infty$; "
                       "the bound gives its asymptotic variance and standard errors.")
            if irregular:
                after_b += f" No such bound applies to {self.listing([f'${self.tex(p)}$' for p in irregular])}."
            steps.append(Step("Cramér–Rao bound", text, tuple(lines), after=after_b, kind="crlb", section=section, relations=rel))
        return steps
