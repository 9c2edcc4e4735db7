"""Stationarity: score, Hessian, and the maximum-likelihood estimators.

For the regular parameters (those that do not move the support) the score
equations are solved with SymPy.  A root is kept only if it lies in the
parameter domain (symbol assumptions first, then numbers) and is verified
on several admissible data sets: the score vanishes there and the Hessian
is negative definite.  Where no closed form is found, the problem is
reduced as far as algebra allows (parameters with a closed form given the
others are profiled out) and the remaining equations are reported as
``numeric``; no root is ever guessed.

Three strategies sit beside the score equations, each in its own module:
parameters that set the support get the bound where a support constraint
binds (:mod:`symmle.symbolic.support`); parameters in which the
log-likelihood is piecewise linear get a sample quantile by the subgradient
(:mod:`symmle.symbolic.subgradient`); and a model whose data cannot identify some
parameters is refused first (:mod:`symmle.symbolic.identify`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.budget import attempt
from symmle.model.domains import DOMAINS
from symmle.symbolic.estimator import KINDS, Estimator, admissible, solve
from symmle.symbolic.evaluate import SampleEvaluator, stress_datasets, verification_datasets
from symmle.symbolic.identify import check_identifiable
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.subgradient import find_kink, kink_estimator
from symmle.symbolic.support import SupportBound, support_estimator

__all__ = ["Estimator", "KINDS", "Stationarity", "solve_stationarity"]


@dataclass(frozen=True)
class Stationarity:
    """Score, Hessian and estimators of the regular parameters.

    Made by :func:`solve_stationarity`.  The regular parameters are those
    that do not move the support; the others get ``boundary`` estimators.

    Attributes
    ----------
    parameters : tuple of Symbol
        The regular parameters, in model order.
    score : tuple of Expr
        :math:`\\partial \\ell / \\partial \\theta_k`, in ``N`` and the statistics ``T_j``.
    hessian : Matrix
        :math:`\\partial^2 \\ell / \\partial \\theta_k \\partial \\theta_l`.
    estimators : dict of str to Estimator
        Every parameter's estimator, in model order.
    equations : tuple of Eq
        The reduced system left to numerics (empty if all are closed form).
    warnings : tuple of str
    reduced : tuple of Symbol
        Parameters left to numerics.
    profile : tuple of (Symbol, Expr)
        Closed forms of other parameters given the reduced ones, in order.
    boundary : tuple of (Symbol, Expr)
        Order-statistic estimators of the parameters that set the support.
    support : tuple of (Symbol, SupportBound)
        For each of those, its support constraints and the sign of the
        log-likelihood's slope on the feasible set.
    kinks : tuple of (Symbol, Expr)
        Regular parameters in which the log-likelihood is piecewise linear
        (``Abs(x - m)``), with their estimator, a sample quantile found by the
        subgradient (:mod:`symmle.symbolic.subgradient`).  They are in
        ``parameters`` and ``score``, but their Hessian entries hold
        ``DiracDelta`` terms.

    Examples
    --------
    >>> from symmle import derive
    >>> st = derive("exponential").stationarity
    >>> st.parameters, st.score, st.hessian
    ((lam,), (N/lam - T1,), Matrix([[-N/lam**2]]))
    """

    parameters: tuple[sp.Symbol, ...]  #: regular parameters, in model order
    score: tuple[sp.Expr, ...]  #: d ell / d theta_k
    hessian: sp.Matrix  #: d2 ell / d theta_k d theta_l
    estimators: dict[str, Estimator]
    equations: tuple[sp.Eq, ...] = ()  #: reduced system left to numerics
    warnings: tuple[str, ...] = field(default=())
    #: parameters left to numerics (maximise the profile log-likelihood over them)
    reduced: tuple[sp.Symbol, ...] = ()
    #: closed forms of other parameters given the reduced ones, in order
    profile: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    #: order-statistic estimators of the parameters that set the support
    boundary: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    #: how each of those was found: the support constraints and the slope that makes one bind
    support: tuple[tuple[sp.Symbol, SupportBound], ...] = ()
    #: sample quantiles (``Median(x)``) of the parameters in which the log-likelihood is piecewise linear
    kinks: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    #: simplex parameters of a vector model, each with its Lagrangian derivation
    #: (:class:`~symmle.symbolic.constrained.LagrangeDerivation`)
    constrained: tuple = ()


def _vanishes(ev: SampleEvaluator, expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> bool:
    """Whether ``expr`` is zero at ``values`` relative to the size of its terms."""
    scale = sum(abs(ev(t, values)) for t in sp.Add.make_args(sp.expand(expr))) + 1e-300
    return abs(ev(expr, values)) <= 1e-7 * scale


def _show(data: np.ndarray) -> str:
    head = ", ".join(f"{v:.3g}" for v in data[:4])
    return f"[{head}{', ...' if data.size > 4 else ''}] (n={data.size})"


class _Checker:
    """Numeric checks of candidate solutions on several data sets."""

    def __init__(
        self, lik: Likelihood, params: Sequence[sp.Symbol], score: Sequence[sp.Expr], hessian: sp.Matrix
    ) -> None:
        model = lik.model
        point = model.point()
        constants = model.constant_point()
        self.domains = {q.symbol: q.domain for q in model.parameters}
        self.params = list(params)
        self.fixed = {q.symbol: point[q.symbol] for q in model.parameters if q.symbol not in params}
        self.score = list(score)
        self.hessian = hessian
        self.evaluators = [
            SampleEvaluator(lik, d, constants) for d in verification_datasets(lik, constants, point)
        ]
        self.stress = [SampleEvaluator(lik, d, constants) for d in stress_datasets(lik, constants, point)]

    def leaves_domain(self, solution: Mapping[sp.Symbol, sp.Expr]) -> str:
        """Why ``solution`` leaves the parameter domain on some stress data set ('' if never)."""
        for ev in self.stress:
            values = dict(self.fixed)
            for p in self.params:
                v = ev(solution[p], values)
                if np.isfinite(v) and not in_domain(v, self.domains[p]):
                    return f"{p} = {v:.4g} on the data set {_show(ev.data)}"
                values[p] = v
        return ""

    def check(self, solution: Mapping[sp.Symbol, sp.Expr]) -> tuple[bool, str]:
        """Whether ``solution`` is an interior maximum on every data set."""
        for ev in self.evaluators:
            values = dict(self.fixed)
            for p in self.params:
                v = ev(solution[p], values)
                if not np.isfinite(v) or not in_domain(v, self.domains[p]):
                    return False, f"{p} = {v:.4g} is outside its domain on a test data set"
                values[p] = v
            for p, s in zip(self.params, self.score):
                if not _vanishes(ev, s, values):
                    return False, f"the score for {p} does not vanish at the solution"
            h = np.array(
                [
                    [ev(self.hessian[i, j], values) for j in range(len(self.params))]
                    for i in range(len(self.params))
                ]
            )
            if not np.all(np.isfinite(h)) or np.max(np.linalg.eigvalsh((h + h.T) / 2)) >= 0:
                return False, "the Hessian is not negative definite at the solution"
        return True, ""

    def loglik(self, ell: sp.Expr, solution: Mapping[sp.Symbol, sp.Expr]) -> list[float]:
        out = []
        for ev in self.evaluators:
            values = {**self.fixed, **{p: ev(solution[p], self.fixed) for p in self.params}}
            out.append(ev(ell, values))
        return out


def _tidy_equation(exprs: Sequence[sp.Expr], params: set[sp.Symbol], N: sp.Symbol) -> sp.Eq:
    """Write ``expr = 0`` as ``(terms with parameters) = (the rest)``, per observation.

    ``exprs`` are forms of one equation (the score, and over a common denominator).
    """
    # expanding can obscure an equation (inside sums over the data, or over a
    # common denominator of many terms): keep the shortest form
    candidates = [_tidy_equation_with(e, params, N, deep=d) for e in exprs for d in (True, False)]
    return min(candidates, key=lambda q: len(sp.sstr(q)))


def _tidy_equation_with(expr: sp.Expr, params: set[sp.Symbol], N: sp.Symbol, deep: bool) -> sp.Eq:
    if not deep:
        e = sp.expand(sp.expand_log(expr, force=True), deep=False)
        if all(t.has(N) for t in sp.Add.make_args(e) if not t.has(sp.Sum) and t.free_symbols & params):
            e = sp.expand(e / N, deep=False)
        left = sp.Add(*[t for t in sp.Add.make_args(e) if t.free_symbols & params])
        right = -sp.Add(*[t for t in sp.Add.make_args(e) if not (t.free_symbols & params)])
        return sp.Eq(left, right, evaluate=False)
    e = sp.expand(sp.expand_log(sp.together(expr), force=True))
    num, den = sp.fraction(sp.together(e))
    e = sp.expand(num) if not (den.free_symbols & params) and den.is_positive else e
    if all(t.has(N) for t in sp.Add.make_args(e) if t.free_symbols & params):
        e = sp.expand(sp.expand_log(e / N, force=True))
    left = sp.Add(*[t for t in sp.Add.make_args(e) if t.free_symbols & params])
    right = sp.logcombine(
        -sp.Add(*[t for t in sp.Add.make_args(e) if not (t.free_symbols & params)]), force=True
    )
    if left.could_extract_minus_sign():
        left, right = -left, -right
    return sp.Eq(left, right, evaluate=False)


def solve_stationarity(lik: Likelihood, *, timeout: float | None = None) -> Stationarity:
    """Derive the score, Hessian and estimators of ``lik``'s regular parameters.

    Raises
    ------
    SpecError
        When the data cannot identify some parameters (:mod:`symmle.symbolic.identify`).

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> st = solve_stationarity(build_likelihood(load_model("poisson")))
    >>> st.estimators["lam"].expr
    T1/N
    """
    model = lik.model
    if model.is_vector:
        from symmle.symbolic.vector_stationarity import solve_vector_stationarity

        return solve_vector_stationarity(lik, timeout=timeout)
    warnings: list[str] = []
    estimators: dict[str, Estimator] = {}
    regular = []
    boundary: dict[sp.Symbol, sp.Expr] = {}
    support: dict[sp.Symbol, SupportBound] = {}
    for q in model.parameters:
        if not model.depends_on_support(q.symbol):
            regular.append(q.symbol)
            continue
        warnings.append(
            f"{q.name} sets the support, so the model is not regular in {q.name}: "
            f"no stationary point is taken for it; its MLE is where the support constraint binds"
        )
        est, how = support_estimator(lik, q.symbol, timeout)
        estimators[q.name] = est
        if est.kind == "boundary":
            boundary[q.symbol] = est.expr
            support[q.symbol] = how  # type: ignore[assignment]
        else:
            warnings.append(f"no maximum-likelihood estimator found for {q.name}: {est.note}")
    check_identifiable(lik, regular)
    ell = lik.log_likelihood.subs(boundary)
    score = tuple(sp.diff(ell, p) for p in regular)
    hessian = sp.Matrix(len(regular), len(regular), lambda i, j: sp.diff(score[i], regular[j]))
    common: dict = {"boundary": tuple(boundary.items()), "support": tuple(support.items())}
    # a kink (Abs(x - m)) has no score root: a sample quantile by the subgradient
    kinks: dict[sp.Symbol, sp.Expr] = {}
    for p in regular:
        kink, _ = attempt(f"look for kinks in {p}", timeout, lambda p=p: find_kink(lik, ell, p))
        if kink is None:
            continue
        est = kink_estimator(lik, ell, kink)
        if est.kind == "closed_form":
            kinks[p] = kink.estimator
            estimators[p.name] = est
        else:
            warnings.append(est.note)
    common["kinks"] = tuple(kinks.items())
    smooth = [p for p in regular if p not in kinks]
    equations: tuple[sp.Eq, ...] = ()
    if smooth:
        equations, reduced, profile = _solve_smooth(
            lik, ell.subs(kinks), smooth, estimators, warnings, timeout
        )
        common.update(reduced=reduced, profile=profile)
    return Stationarity(
        tuple(regular), score, hessian, _ordered(model, estimators), equations, tuple(warnings), **common
    )


def _solve_smooth(
    lik: Likelihood,
    ell: sp.Expr,
    regular: list[sp.Symbol],
    estimators: dict[str, Estimator],
    warnings: list[str],
    timeout: float | None,
) -> tuple[tuple[sp.Eq, ...], tuple[sp.Symbol, ...], tuple[tuple[sp.Symbol, sp.Expr], ...]]:
    """Solve the score equations of ``ell`` for ``regular``: closed forms, or profiles and reduced equations.

    Fills ``estimators`` and ``warnings``; returns ``(equations, reduced, profile)``.
    """
    model = lik.model
    score = tuple(sp.diff(ell, p) for p in regular)
    hessian = sp.Matrix(len(regular), len(regular), lambda i, j: sp.diff(score[i], regular[j]))
    domains = {q.symbol: q.domain for q in model.parameters}
    checker = _Checker(lik, regular, score, hessian)

    def each_admissible(sol: Mapping[sp.Symbol, sp.Expr], unknowns: Sequence[sp.Symbol]) -> bool:
        return all(p in sol and admissible(sol[p], domains[p]) for p in unknowns)

    # a system tried once (and perhaps timed out) is not tried again
    tried: dict[tuple, list[dict[sp.Symbol, sp.Expr]] | None] = {}

    def solve_once(eqs: list[sp.Expr], unknowns: list[sp.Symbol], step: str):
        key = (tuple(eqs), tuple(unknowns))
        if key not in tried:
            tried[key] = solve(eqs, unknowns, timeout, step)
        return tried[key]

    # 1. the whole system at once
    eqs = [sp.together(s) for s in score]
    solutions = solve_once(eqs, regular, "solve the score equations")
    if solutions is None:
        warnings.append(
            f"solving the score equations timed out after {timeout:g} s; reducing them one at a time"
        )
        solutions = []
    every = set(model.parameter_symbols)
    candidates = [
        s
        for s in solutions
        if each_admissible(s, regular) and not any(s[p].free_symbols & every for p in regular)
    ]

    # 2. otherwise eliminate one parameter at a time: each from its own score
    #    equation first, then from the others
    profile: dict[sp.Symbol, tuple[sp.Expr, sp.Expr]] = {}  # p -> (value, equation it zeroes)
    remaining = list(zip(regular, eqs))
    if not candidates:
        while remaining:
            step = _eliminate_one(remaining, domains, solve_once)
            if step is None:
                break
            p, q, value, source = step
            profile = {a: (v.subs(p, value), e) for a, (v, e) in profile.items()}
            profile[p] = (value, source)
            rest = [(a, sp.together(e.subs(p, value))) for a, e in remaining if a is not q]
            # keep one equation per remaining parameter
            remaining = [(q if a is p else a, e) for a, e in rest]
        if not remaining and not any(v.free_symbols & every for v, _ in profile.values()):
            candidates = [{p: v for p, (v, _) in profile.items()}]

    if candidates:
        verified = []
        for sol in candidates:
            tidy, _ = attempt(
                "simplify the estimators", timeout, lambda sol=sol: {p: sp.simplify(sol[p]) for p in regular}
            )
            sol = tidy or sol
            ok, why = checker.check(sol)
            if ok:
                verified.append(sol)
            else:
                warnings.append(
                    f"discarded a stationary point ({', '.join(f'{p} = {sol[p]}' for p in regular)}): {why}"
                )
        if len(verified) > 1:
            # several maxima: keep the one with the largest likelihood on every data set
            lls = [checker.loglik(ell, s) for s in verified]
            best = [
                i
                for i in range(len(verified))
                if all(lls[i][d] >= max(other[d] for other in lls) - 1e-9 for d in range(len(lls[i])))
            ]
            verified = [verified[best[0]]] if best else []
            if not best:
                warnings.append("several local maxima with no uniform best; solving numerically")
        if len(verified) == 1:
            outside = checker.leaves_domain(verified[0])
            if outside:
                warnings.append(
                    f"the stationary point leaves the parameter domain for some data ({outside}); "
                    "for such data the MLE is not this formula "
                    "(it lies on the domain boundary or does not exist)"
                )
            for p in regular:
                if outside:
                    # not a closed form of the MLE: the maximum must be sought inside the domain
                    estimators[p.name] = Estimator(
                        p.name,
                        "numeric",
                        equation=sp.Eq(p, verified[0][p]),
                        verified=False,
                        note="stationary point, valid only for data where it lies in the domain; "
                        "otherwise maximise within the domain",
                    )
                else:
                    estimators[p.name] = Estimator(p.name, "closed_form", expr=verified[0][p], verified=True)
            return (), tuple(regular) if outside else (), ()
        profile, remaining = {}, list(zip(regular, eqs))

    # 3. numeric: report the profile relations and the reduced equations
    pset = set(regular)
    reduced = []
    as_derived = dict(zip(eqs, score))
    for p, e in remaining:
        forms = [e, as_derived[e]] if e in as_derived else [e]
        eq, _ = attempt(
            f"tidy the equation for {p}", timeout, lambda forms=forms: _tidy_equation(forms, pset, lik.N)
        )
        eq = eq if eq is not None else sp.Eq(e, 0)
        reduced.append(eq)
        estimators[p.name] = Estimator(
            p.name,
            "numeric",
            equation=eq,
            verified=False,
            note="no closed form found; solve the equation numerically",
        )
    for p, (v, source) in profile.items():
        ok = _verify_profile(checker, p, v, source)
        if ok and not (v.free_symbols & every):
            # free of the parameters left to numerics: a closed form of the MLE in its own right
            estimators[p.name] = Estimator(
                p.name,
                "closed_form",
                expr=v,
                verified=True,
                note="the stationarity condition in it has this root whatever the other parameters",
            )
            continue
        estimators[p.name] = Estimator(
            p.name,
            "numeric",
            equation=sp.Eq(p, v),
            verified=ok,
            note="closed form given the other parameters" + ("" if ok else " (numerical check failed)"),
        )
        if not ok:
            warnings.append(f"the profile relation {p} = {v} failed its numerical check")
    warnings.append(
        "no closed form for "
        + ", ".join(p.name for p, _ in remaining)
        + "; the reduced equation(s) must be solved numerically"
    )
    return tuple(reduced), tuple(p for p, _ in remaining), tuple((p, v) for p, (v, _) in profile.items())


def _eliminate_one(remaining, domains, solve_once):
    """Find one parameter with a unique admissible root of one equation (``solve_once`` solves).

    Returns ``(parameter, owner of the equation, root, equation)`` or ``None``.
    """
    own = [((p, eq), (p, eq)) for p, eq in remaining]
    cross = [((p, None), (q, eq)) for p, _ in remaining for q, eq in remaining if q is not p]
    for (p, _), (q, eq) in own + cross:
        if p not in eq.free_symbols:
            continue
        roots = solve_once([eq], [p], f"solve d/d{q} = 0 for {p}")
        good = [
            r[p]
            for r in roots or []
            if p in r and admissible(r[p], domains[p]) and p not in r[p].free_symbols
        ]
        if len(good) == 1:
            return p, q, good[0], eq
    return None


def _verify_profile(checker: _Checker, p: sp.Symbol, value: sp.Expr, score_p: sp.Expr) -> bool:
    """The profile relation must zero the equation it came from, whatever the other parameters."""
    others = [q for q in checker.params if q is not p]
    rng = np.random.default_rng(7)
    for ev in checker.evaluators:
        for _ in range(2):
            values = dict(checker.fixed)
            for q in others:
                values[q] = (
                    DOMAINS[checker.domains[q]][1] * float(rng.uniform(0.6, 1.4))
                    if checker.domains[q] not in ("integer", "positive_integer")
                    else DOMAINS[checker.domains[q]][1]
                )
            values[p] = ev(value, values)
            if not np.isfinite(values[p]):
                return False
            if not _vanishes(ev, score_p, values):
                return False
    return True


def _ordered(model, estimators: dict[str, Estimator]) -> dict[str, Estimator]:
    return {q.name: estimators[q.name] for q in model.parameters if q.name in estimators}
