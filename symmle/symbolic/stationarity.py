"""Stationarity: score, Hessian, and the maximum-likelihood estimators.

For the regular parameters (those that do not move the support) the score
equations are solved with SymPy.  A root is kept only if it lies in the
parameter domain (symbol assumptions first, then numbers) and is verified
on several admissible data sets: the score vanishes there and the Hessian
is negative definite.  Where no closed form is found, the problem is
reduced as far as algebra allows (parameters with a closed form given the
others are profiled out) and the remaining equations are reported as
``numeric``; no root is ever guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.budget import attempt
from symmle.model.domains import DOMAINS
from symmle.symbolic.evaluate import SampleEvaluator, stress_datasets, verification_datasets
from symmle.symbolic.likelihood import Likelihood

__all__ = ["Estimator", "Stationarity", "solve_stationarity"]

KINDS = ("closed_form", "numeric", "boundary", "none")


@dataclass(frozen=True)
class Estimator:
    """How the MLE of one parameter is obtained.

    Attributes
    ----------
    kind : str
        ``closed_form``, ``numeric`` (``equation`` is what remains to solve),
        ``boundary`` (an order statistic) or ``none`` (``note`` says why).
    expr : Expr or None
        The estimator, in ``N``, the statistics ``T_j`` and constants.
    equation : Eq or None
        For ``numeric``: the equation this parameter solves (a profile
        relation to other parameters, or a reduced stationarity equation).
    verified : bool
        Whether the numerical cross-check passed.
    parameter : str
        The parameter's name.
    note : str
        How the estimator was found, or why there is none.

    Examples
    --------
    >>> from symmle import derive
    >>> derive("poisson").solutions["lam"]
    Estimator(parameter='lam', kind='closed_form', expr=T1/N, equation=None, verified=True, note='')
    >>> u = derive("uniform").solutions["theta"]
    >>> u.kind, u.expr
    ('boundary', Max(x))
    >>> a = derive("gamma").solutions["a"]
    >>> a.kind, a.expr, a.equation
    ('numeric', None, Eq(log(a) - polygamma(0, a), log(T1/N) - T2/N))
    """

    parameter: str
    kind: str
    expr: sp.Expr | None = None
    equation: sp.Eq | None = None
    verified: bool = False
    note: str = ""

    def __str__(self) -> str:
        if self.expr is not None:
            return str(self.expr)
        if self.equation is not None:
            return f"{self.kind}: solve {self.equation}"
        return f"{self.kind}: {self.note}"


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


def _admissible(value: sp.Expr, domain: str) -> bool:
    """False when SymPy can prove ``value`` lies outside ``domain``."""
    if value.has(sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo):
        return False
    if value.is_real is False:
        return False
    if domain in ("positive", "unit", "positive_integer") and value.is_positive is False:
        return False
    if domain == "nonnegative" and value.is_nonnegative is False:
        return False
    if domain == "unit" and (value - 1).is_nonnegative is True:
        return False
    return True


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

    def loglik(self, lik: Likelihood, solution: Mapping[sp.Symbol, sp.Expr]) -> list[float]:
        out = []
        for ev in self.evaluators:
            values = {**self.fixed, **{p: ev(solution[p], self.fixed) for p in self.params}}
            out.append(ev(lik.log_likelihood, values))
        return out


def _inside_sum(expr: sp.Expr, symbol: sp.Symbol) -> bool:
    """Whether ``symbol`` occurs inside an unevaluated sum over the data."""
    return any(symbol in s.function.free_symbols for s in expr.atoms(sp.Sum))


def _solve(
    eqs: list[sp.Expr], unknowns: list[sp.Symbol], timeout: float | None, step: str
) -> list[dict[sp.Symbol, sp.Expr]] | None:
    # No closed form can isolate a parameter trapped inside a sum over the data.
    if any(_inside_sum(e, u) for e in eqs for u in unknowns):
        return []

    def run() -> list[dict[sp.Symbol, sp.Expr]]:
        try:
            return sp.solve(eqs, unknowns, dict=True)
        except (NotImplementedError, ValueError, TypeError, ZeroDivisionError):
            return []

    result, timed_out = attempt(step, timeout, run)
    return None if timed_out else result


def _tidy_equation(expr: sp.Expr, params: set[sp.Symbol], N: sp.Symbol) -> sp.Eq:
    """Write ``expr = 0`` as ``(terms with parameters) = (the rest)``, per observation."""
    candidates = [_tidy_equation_with(expr, params, N, deep=True)]
    if expr.has(sp.Sum):
        # expanding inside sums over the data can obscure them: keep the shorter form
        candidates.append(_tidy_equation_with(expr, params, N, deep=False))
    return min(candidates, key=sp.count_ops)


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

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> st = solve_stationarity(build_likelihood(load_model("poisson")))
    >>> st.estimators["lam"].expr
    T1/N
    """
    model = lik.model
    warnings: list[str] = []
    estimators: dict[str, Estimator] = {}
    regular = []
    boundary: dict[sp.Symbol, sp.Expr] = {}
    for q in model.parameters:
        if not model.depends_on_support(q.symbol):
            regular.append(q.symbol)
            continue
        warnings.append(
            f"{q.name} sets the support, so the model is not regular in {q.name}: "
            f"no stationary point is taken for it; its MLE is where the support constraint binds"
        )
        est = _boundary_estimator(lik, q.symbol, timeout)
        estimators[q.name] = est
        if est.kind == "boundary":
            boundary[q.symbol] = est.expr
        else:
            warnings.append(f"no maximum-likelihood estimator found for {q.name}: {est.note}")
    ell = lik.log_likelihood.subs(boundary)
    score = tuple(sp.diff(ell, p) for p in regular)
    hessian = sp.Matrix(len(regular), len(regular), lambda i, j: sp.diff(score[i], regular[j]))
    if not regular:
        return Stationarity(
            (), (), sp.Matrix(), estimators, (), tuple(warnings), boundary=tuple(boundary.items())
        )
    domains = {q.symbol: q.domain for q in model.parameters}
    checker = _Checker(lik, regular, score, hessian)

    def admissible(sol: Mapping[sp.Symbol, sp.Expr], unknowns: Sequence[sp.Symbol]) -> bool:
        return all(p in sol and _admissible(sol[p], domains[p]) for p in unknowns)

    # 1. the whole system at once
    eqs = [sp.together(s) for s in score]
    solutions = _solve(eqs, regular, timeout, "solve the score equations")
    if solutions is None:
        warnings.append(
            f"solving the score equations timed out after {timeout:g} s; reducing them one at a time"
        )
        solutions = []
    every = set(model.parameter_symbols)
    candidates = [
        s for s in solutions if admissible(s, regular) and not any(s[p].free_symbols & every for p in regular)
    ]

    # 2. otherwise eliminate one parameter at a time: each from its own score
    #    equation first, then from the others
    profile: dict[sp.Symbol, tuple[sp.Expr, sp.Expr]] = {}  # p -> (value, equation it zeroes)
    remaining = list(zip(regular, eqs))
    if not candidates:
        while remaining:
            step = _eliminate_one(remaining, domains, timeout)
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
            lls = [checker.loglik(lik, s) for s in verified]
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
            return Stationarity(
                tuple(regular),
                score,
                hessian,
                _ordered(model, estimators),
                (),
                tuple(warnings),
                reduced=tuple(regular) if outside else (),
                boundary=tuple(boundary.items()),
            )
        profile, remaining = {}, list(zip(regular, eqs))

    # 3. numeric: report the profile relations and the reduced equations
    pset = set(regular)
    reduced = []
    for p, e in remaining:
        eq, _ = attempt(f"tidy the equation for {p}", timeout, lambda e=e: _tidy_equation(e, pset, lik.N))
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
    return Stationarity(
        tuple(regular),
        score,
        hessian,
        _ordered(model, estimators),
        tuple(reduced),
        tuple(warnings),
        reduced=tuple(p for p, _ in remaining),
        profile=tuple((p, v) for p, (v, _) in profile.items()),
        boundary=tuple(boundary.items()),
    )


def _sign(expr: sp.Expr) -> int:
    """+1 or -1 when SymPy can prove the sign of ``expr``, else 0."""
    if expr.is_positive:
        return 1
    if expr.is_negative:
        return -1
    return 0


def _boundary_estimator(lik: Likelihood, theta: sp.Symbol, timeout: float | None) -> Estimator:
    r"""The MLE of a parameter that sets one end of the support.

    The data must lie in the support: an upper end :math:`b(\theta)` must
    satisfy :math:`b(\theta) \ge \max_i x_i`, a lower end
    :math:`a(\theta) \le \min_i x_i`.  If the log-likelihood is monotone on
    this feasible set, decreasing away from where the constraint binds, the
    MLE is the binding point, a function of the order statistic.  Both
    facts are proved symbolically where possible and otherwise checked on
    test data over the feasible set.
    """
    model = lik.model
    name = theta.name
    domain = {q.symbol: q.domain for q in model.parameters}[theta]
    lo, hi = model.support
    in_lo, in_hi = theta in lo.free_symbols, theta in hi.free_symbols
    if in_lo and in_hi:
        return Estimator(name, "none", note="it sets both ends of the support")
    end = hi if in_hi else lo
    order_stat = lik.order_statistics[1 if in_hi else 0]
    others = set(model.parameter_symbols) - {theta}
    roots = _solve([end - order_stat], [theta], timeout, f"solve the support constraint for {name}")
    good = [
        r[theta]
        for r in roots or []
        if theta in r and _admissible(r[theta], domain) and not (r[theta].free_symbols & others)
    ]
    if len(good) != 1:
        return Estimator(name, "none", note="the binding support constraint has no unique solution")
    root = good[0]
    point = model.point()
    slope = _sign(sp.diff(end, theta)) or int(np.sign(float(sp.diff(end, theta).subs(point))))
    if slope == 0:
        return Estimator(name, "none", note="the support end does not move with it")
    # feasible set lies above the root when the upper end increases, or the lower end decreases
    above = (slope > 0) == in_hi
    dl = sp.diff(lik.log_likelihood, theta)
    want = -1 if above else 1  # the likelihood must fall going into the feasible set
    proved = _sign(want * dl) == 1
    if not proved and not _monotone_on_data(lik, theta, root, dl, above, want):
        return Estimator(name, "none", note="the likelihood is not monotone on the feasible set")
    if domain in ("integer", "positive_integer") and not root.is_integer:
        root = sp.ceiling(root) if above else sp.floor(root)
    side = "largest" if in_hi else "smallest"
    direction = "decreasing" if above else "increasing"
    return Estimator(
        name,
        "boundary",
        expr=root,
        verified=True,
        note=f"the log-likelihood is {direction} in {name} on the feasible set, "
        f"so the constraint from the {side} observation binds",
    )


def _monotone_on_data(
    lik: Likelihood, theta: sp.Symbol, root: sp.Expr, dl: sp.Expr, above: bool, want: int
) -> bool:
    """Check the sign of the derivative over the feasible set on test data."""
    model = lik.model
    point = model.point()
    constants = model.constant_point()
    rng = np.random.default_rng(11)
    for data in verification_datasets(lik, constants, point):
        ev = SampleEvaluator(lik, data, constants)
        r = ev(root, {})
        if not np.isfinite(r):
            return False
        for _ in range(3):
            values = {
                q.symbol: point[q.symbol] * float(rng.uniform(0.5, 1.5))
                if q.domain not in ("integer", "positive_integer")
                else point[q.symbol]
                for q in model.parameters
                if q.symbol is not theta
            }
            for step in (1e-6, 1e-3, 0.1, 1.0, 10.0, 1e3):
                t = r + (1 if above else -1) * step * (abs(r) + 1)
                v = ev(dl, {**values, theta: t})
                if not np.isfinite(v) or want * v <= 0:
                    return False
    return True


def _eliminate_one(remaining, domains, timeout):
    """Find one parameter with a unique admissible root of one equation.

    Returns ``(parameter, owner of the equation, root, equation)`` or ``None``.
    """
    own = [((p, eq), (p, eq)) for p, eq in remaining]
    cross = [((p, None), (q, eq)) for p, _ in remaining for q, eq in remaining if q is not p]
    for (p, _), (q, eq) in own + cross:
        if p not in eq.free_symbols:
            continue
        roots = _solve([eq], [p], timeout, f"solve d/d{q} = 0 for {p}")
        good = [
            r[p]
            for r in roots or []
            if p in r and _admissible(r[p], domains[p]) and p not in r[p].free_symbols
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
