"""What every lecture builder shares: the :class:`Step` record and the :class:`Lecture` base class.

A builder (one per model kind, e.g. :mod:`symmle.report.lecture.scalar`) subclasses :class:`Lecture`
and writes its own sequence of steps; the base gives it the notation and the machinery of showing:

* the symbols a lecturer writes: the parameters ``theta``, their estimates ``hats``, the sample size ``N``
  and index ``i``, the likelihood ``L``, log-likelihood ``ell`` and NLL ``J`` as functions of the
  parameters, the density ``f``;
* the rearrangements that are shown rather than derived (constants pulled out of sums over the data, sums
  split by linearity, logarithms of constants combined, a normalising constant written as one root, the
  NLL written in the data sums), each an identity by construction or checked symbolically
  (:meth:`Lecture.equal`) and each under a small time budget (:func:`quick`) with the plain form as the
  fallback;
* the prose: lists of items, the domains of the quantities, the word for a density, and the section
  headings every lecture shares.

Labels, references and the definitions of special functions are added once the steps are written
(:mod:`symmle.report.lecture.finish`).

Nothing here derives: every expression shown is equal to what the pipeline derived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symmle.base.budget import attempt
from symmle.base.errors import DerivationTimeout
from symmle.model.spec import Model, Quantity
from symmle.report.printer import latex, model_notation
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.stationarity import Stationarity

__all__ = [
    "INFORMATION",
    "LIKELIHOOD",
    "MAXIMISING",
    "MODEL",
    "SECOND_ORDER",
    "SHOW_SECONDS",
    "Lecture",
    "Step",
    "combine_logs",
    "quick",
]

#: The section headings every lecture is written under, in order.
MODEL = "The model"
LIKELIHOOD = "Likelihood"
MAXIMISING = "Maximising the likelihood"
SECOND_ORDER = "Second-order check"
INFORMATION = "Fisher information and the Cramér–Rao bound"

#: Budget in seconds of each presentation-only manipulation (it falls back to the plain form).
SHOW_SECONDS = 2.0


@dataclass(frozen=True)
class Step:
    r"""One step of a derivation: a sentence, aligned equations, a closing sentence.

    The writers of :mod:`symmle.report` (LaTeX, Markdown, JSON) turn a
    sequence of steps into lecture notes; a Step holds no formatting of its own.

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
    label : str
        The label of the step's equations (``eq:derivative-mu``, made by
        :func:`~symmle.report.lecture.finish.label_for`); the sentences of later steps refer to it as
        ``$\eqref{eq:derivative-mu}$``.

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
    label: str = ""


def quick(step: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` under the budget of a presentation-only step; ``None`` if it times out or fails.

    The time-out of an enclosing step (and an interrupt) still propagates.
    """

    def guarded() -> Any:
        try:
            return fn()
        except (DerivationTimeout, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - presentation falls back to the plain form
            return None

    value, _ = attempt(step, SHOW_SECONDS, guarded)
    return value


def combine_logs(expr: sp.Expr) -> sp.Expr:
    """Logarithms of positive quantities with the same coefficient, combined.

    ``-log(2)/2 - log(pi)/2 - log(s)/2 -> -log(2 pi s)/2``.
    """
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


def _fractional(e: sp.Expr) -> bool:
    """Whether ``e`` has a power with a fractional exponent (a root)."""
    return any(p.is_Pow and p.exp.is_Rational and not p.exp.is_Integer for p in sp.preorder_traversal(e))


class Lecture:
    """The shared state and notation of a lecture builder; one subclass per model kind.

    A subclass says which models it writes (:meth:`fits`) and writes their
    steps (:meth:`steps`); :func:`~symmle.report.lecture.steps.lecture_steps`
    picks it.  The symbols of the data it shows (the variable, a random
    variable ``X``) go in ``data``, so that :meth:`tex` writes them as data
    (``x_{i}``, not a parameter).
    """

    def __init__(self, model: Model, lik: Likelihood, st: Stationarity, info: Information) -> None:
        self.model, self.lik, self.st, self.info = model, lik, st, info
        self.N, self.i = lik.N, lik.index
        self.theta = model.parameter_symbols
        self.f = sp.Function("f")
        self.L, self.ell, self.J = (sp.Function(n)(*self.theta) for n in ("L", "ell", "J"))
        self.hats = {p: sp.Symbol(f"hat_{p.name}", **self.assumptions(p)) for p in self.theta}
        self.data: frozenset[sp.Symbol] = frozenset()
        self.density_word = "probability mass function" if model.discrete else "density"
        self.densities_word = "probability mass functions" if model.discrete else "densities"

    @classmethod
    def fits(cls, model: Model) -> bool:
        """Whether this builder writes the lecture of ``model``."""
        return False

    def steps(self) -> list[Step]:
        """The steps of the lecture, in order."""
        raise NotImplementedError

    # ------------------------------------------------------------------ symbols
    @staticmethod
    def assumptions(s: sp.Symbol) -> dict[str, bool]:
        """The assumptions of ``s`` that a symbol standing for it keeps."""
        keys = ("real", "positive", "nonnegative", "integer")
        return {k: v for k, v in s.assumptions0.items() if k in keys and v is not None}

    def random_variable(self, x: sp.Symbol) -> sp.Symbol:
        """The random variable of the data symbol ``x``: ``X``, unless that name is taken."""
        X = sp.Symbol(x.name.upper(), **self.assumptions(x))
        return X if X.name not in self.model.symbols and X.name != x.name else x

    def tex(self, expr: Any) -> str:
        """``expr`` in LaTeX in the model's notation, the symbols in ``data`` written as data."""
        return latex(expr, model_notation(self.model, self.data))

    # ------------------------------------------------------------------ sums over the data
    def explicit(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the statistics written as sums over the data, constants pulled out."""
        return self.tidy(self.lik.explicit(expr))

    def pull(self, s: sp.Sum) -> sp.Expr:
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
            if (
                data
                and all(t.could_extract_minus_sign() for t in data)
                and any(t.free_symbols & set(self.theta) for t in rest)
            ):
                c, g = -c, -g
        return c * sp.Sum(g, *s.limits)

    def tidy(self, expr: Any) -> Any:
        """Constants pulled out of the sums over the data (an identity)."""
        if not isinstance(expr, sp.Basic) or not expr.has(sp.Sum):
            return expr
        return expr.replace(lambda e: isinstance(e, sp.Sum), self.pull)

    def spread(self, expr: sp.Expr) -> sp.Expr:
        """Products over sums distributed at the top level only (sums over the data stay whole).

        The terms free of sums are gathered into one simplified term where that is shorter.
        """
        e = self.tidy(sp.Add(*[sp.expand(t, deep=False) for t in sp.Add.make_args(self.tidy(expr))]))

        free = [t for t in sp.Add.make_args(e) if not t.has(sp.Sum)]
        if len(free) > 1:
            short = quick("gather the terms free of sums", lambda: sp.factor(sp.Add(*free)))
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
            terms = sp.Add.make_args(sp.expand(s.function, log=False, power_base=False, power_exp=False))
            for t in terms:
                c, g = t.as_independent(i, as_Add=False)
                if only is not None and g.free_symbols & only:
                    return s  # splitting would not take the symbols out of the sum
                out += c * (hi - lo + 1) if g == 1 else c * sp.Sum(g, (i, lo, hi))
            return out

        return self.tidy(expr.replace(lambda e: isinstance(e, sp.Sum), lin))

    def gather(self, logf: sp.Expr, x: sp.Symbol, xi: sp.Expr) -> sp.Expr:
        """``sum_i logf(x_i)`` as ``N A + sum_k c_k sum_i g_k(x_i)`` (``xi`` is ``x_i``)."""
        const = sp.S.Zero
        sums: dict[sp.Expr, sp.Expr] = {}
        for t in sp.Add.make_args(logf):
            if not t.has(x):
                const += t
                continue
            c, g = t.as_independent(x, as_Add=False)
            sums[g] = sums.get(g, sp.S.Zero) + c
        out = sp.Add(*[self.N * t for t in sp.Add.make_args(combine_logs(const))])
        for g, c in sums.items():
            out += c * self.pull(sp.Sum(g.subs(x, xi), (self.i, 1, self.N)))
        return out

    def in_statistics(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` (in ``N`` and the ``T_j``) with the sums written out, constants combined."""
        e = sp.expand_mul(expr)
        statistics = {s.symbol for s in self.lik.statistics}
        free = sp.Add(*[t for t in sp.Add.make_args(e) if not (t.free_symbols & statistics)])
        return self.explicit(combine_logs(free) + (e - free))

    # ------------------------------------------------------------------ the density
    @staticmethod
    def per_sample(logf: sp.Expr, x: sp.Symbol) -> sp.Expr:
        """``logf`` with the logarithms of what is free of ``x`` combined."""
        free = sp.Add(*[t for t in sp.Add.make_args(logf) if not t.has(x)])
        return combine_logs(free) + (logf - free)

    @staticmethod
    def density_shown(density: sp.Expr, x: sp.Symbol, at: sp.Expr | None = None) -> sp.Expr:
        """The density in ``x`` (at ``at``), a normalising constant under a root written as one root.

        ``1/sqrt(2 pi sigma^2)`` rather than ``sqrt(2)/(2 sqrt(pi) sigma)``.
        """
        if at is not None:
            density = density.subs(x, at)
        c, rest = density.as_independent(x if at is None else at, as_Add=False)
        roots = [
            f
            for f in sp.Mul.make_args(c)
            if f.is_Pow and f.exp in (sp.S.Half, -sp.S.Half) and f.base.free_symbols
        ]
        if not roots:
            return density

        def show() -> sp.Expr | None:
            inverse = sp.factor(sp.powsimp(1 / c**2))
            square = sp.factor(sp.powsimp(c**2))
            if not _fractional(inverse) and sp.fraction(inverse)[1] == 1:
                root = sp.Pow(inverse, -sp.S.Half, evaluate=False)
            elif not _fractional(square):
                root = sp.Pow(square, sp.S.Half, evaluate=False)
            else:
                return None
            positive = c.is_positive or (c.is_positive is None and all(a.is_positive for a in c.free_symbols))
            if not positive:
                return None
            return sp.Mul(root, *sp.Mul.make_args(rest), evaluate=False)

        shown = quick("show the normalising constant", show)
        return shown if shown is not None else density

    # ------------------------------------------------------------------ shown, not derived
    def solve_own(self, p: sp.Symbol, score: sp.Expr) -> list[sp.Expr]:
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
            shorter = together if sp.count_ops(together) <= sp.count_ops(r) else r
            out.append(self.tidy(shorter.xreplace(back)))
        return out

    def equal(self, a: sp.Expr, b: sp.Expr) -> bool:
        """Whether two expressions in the data sums are equal (sums split by linearity first)."""

        def check() -> bool:
            u, v = self.linearise(self.explicit(a)), self.linearise(self.explicit(b))
            atoms = u.atoms(sp.Sum) | v.atoms(sp.Sum)
            dummies = {
                s: sp.Dummy(positive=True) if s.function.is_positive else sp.Dummy(real=True) for s in atoms
            }
            return sp.simplify(u.xreplace(dummies) - v.xreplace(dummies)) == 0

        return quick("compare two forms of an estimator", check) is True

    def plain(self, expr: sp.Expr) -> sp.Expr:
        """An estimator in the data sums, the sign of its denominator positive where that is simpler."""
        e = self.explicit(expr)

        def tidy() -> sp.Expr:
            num, den = sp.fraction(sp.together(e))
            if den.could_extract_minus_sign():
                num, den = -num, -den
            candidate = self.tidy(num / den)
            simple = den.is_Pow or den.is_Symbol or den.is_Mul and not den.has(sp.Sum)
            expanded = self.tidy(sp.expand(num / den)) if simple else None
            forms = [c for c in (e, candidate, expanded) if c is not None]
            return min(forms, key=lambda c: (sp.count_ops(c), len(str(c))))

        return quick("tidy an estimator", tidy) or e

    def at_estimate(
        self, H: sp.Matrix, regular: list[sp.Symbol], shown: dict[sp.Symbol, sp.Expr]
    ) -> sp.Matrix | None:
        """The Hessian at the estimate, in the estimates, where the data sums can be eliminated.

        Each displayed estimator (``shown``, in hats) is a relation between the
        estimates and the data sums; split by linearity, these are equations
        for the sums (e.g. ``sum x_i = N mu_hat``,
        ``sum x_i^2 - 2 mu_hat sum x_i + N mu_hat^2 = N sigma2_hat``), solved
        here and substituted into the Hessian.
        """
        if not all(p in shown for p in regular):
            return None
        hats = self.hats
        eqs = [self.linearise(hats[p] - form) for p, form in shown.items() if form.has(sp.Sum)]
        atoms = sorted(set().union(*(e.atoms(sp.Sum) for e in eqs)), key=sp.default_sort_key)
        values = {p: hats[p] for p in self.theta if p in shown}
        out = H.xreplace(values).applyfunc(self.linearise)
        if atoms and any(e.has(sp.Sum) for e in out):
            dummies = {s: sp.Dummy() for s in atoms}
            solutions = sp.solve(
                [e.xreplace(dummies) for e in eqs],
                list(dummies.values()),
                dict=True,
                check=False,
                simplify=False,
            )
            if len(solutions) != 1:
                return None
            sub = {s: solutions[0][u] for s, u in dummies.items() if u in solutions[0]}
            out = out.xreplace(sub)
        if any(e.has(sp.Sum) or e.atoms(sp.Indexed) for e in out):
            return None
        return out.applyfunc(lambda e: sp.factor(sp.simplify(e)))

    # ------------------------------------------------------------------ prose
    def domain_tex(self, q: Quantity) -> str:
        """The domain of a parameter or constant, as maths in a sentence."""
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
        """``a``, ``a and b``, ``a, b and c``."""
        if len(items) <= 2:
            return " and ".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]

    def squared(self, p: sp.Symbol) -> str:
        """``p^{2}`` in LaTeX, with parentheses when ``p`` has a superscript of its own."""
        t = self.tex(p)
        return rf"\left({t}\right)^{{2}}" if "^" in t else f"{t}^{{2}}"

    def args_tex(self, params: Iterable[sp.Symbol]) -> str:
        """The parameters as a LaTeX argument list."""
        return ", ".join(self.tex(p) for p in params)
