r"""Checks of a derivation read back from the cache, before it is trusted.

A cache entry is a file that anyone who can write the cache directory could
change, and that a crash or a full disk could cut short.  Its integrity hash
catches the accidents; these checks catch a changed formula.  They hold the
stored results against the model's density, which is not stored but comes
from the model itself, at parameter values drawn at random on every read
(so no entry can be made to pass at known points), and on random data sets:

* the log-density reproduces the density, and its split
  :math:`A(\theta) + \sum_j c_j(\theta) g_j(x) + h(x, \theta)` the log-density;
* the log-likelihood is the sum of the log-densities of a data set;
* each score is the derivative of the log-likelihood, and each Hessian entry
  the derivative of a score;
* each closed-form estimator zeroes the scores at a maximum, each profile
  relation zeroes its parameter's score, each reduced equation vanishes
  where the score it was made from does, and each boundary estimator puts
  an end of the support on the sample's extreme with the likelihood falling
  away from it;
* each Fisher entry and expectation agrees with quadrature (or summation)
  over the density, and the Cramér–Rao bound inverts :math:`N I`.

These are the checks the derivation itself made, or checks as strong,
but cheap: they evaluate the formulas with SymPy at given numbers (no code
generation) and integrate only the few expectations the information is
made of.  A derivation from a smooth density has no branches (``Piecewise``,
``Abs``, comparisons...); a stored formula for it that has one is refused,
since a branch could hide a wrong formula away from the points checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from symmle.base._runtime import in_domain
from symmle.base.budget import attempt
from symmle.base.numeric import to_function
from symmle.base.quadrature import integrate_support, interior_points, sum_support
from symmle.model.spec import Model
from symmle.symbolic.evaluate import verification_datasets
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood, sample_symbols, statistic_symbol
from symmle.symbolic.pointwise import DIGITS, NotEvaluable, evaluate, number
from symmle.symbolic.stationarity import Stationarity

__all__ = ["Rejected", "recheck"]

#: Relative tolerance of identities (evaluated in 30 digits).
IDENTITY_RTOL = 1e-9
#: Relative tolerance of a score at a maximum, against the size of its terms.
SCORE_RTOL = 1e-7
#: Relative tolerance against quadrature, as in :mod:`symmle.symbolic.information`.
QUADRATURE_RTOL = 1e-6

#: The kinds of estimator (see :class:`~symmle.symbolic.stationarity.Estimator`).
KINDS = ("closed_form", "numeric", "boundary", "none")
#: Classes that make a formula branch or bend.
BRANCHING = (
    sp.Piecewise,
    ExprCondPair,
    sp.core.relational.Relational,
    sp.logic.boolalg.BooleanFunction,
    sp.logic.boolalg.BooleanAtom,
    sp.Heaviside,
    sp.DiracDelta,
    sp.sign,
    sp.Abs,
    sp.floor,
    sp.ceiling,
    sp.Min,
    sp.Max,
    sp.re,
    sp.im,
    sp.arg,
)


class Rejected(Exception):
    """A stored derivation failed a check; the message says which."""


def recheck(
    model: Model, lik: Likelihood, st: Stationarity, info: Information, rng: np.random.Generator
) -> None:
    """Check a derivation read back from the cache against ``model``'s density.

    Parameters
    ----------
    model : Model
        The model, as the caller built it (not read from the cache).
    lik, st, info : Likelihood, Stationarity, Information
        The stored results, read back with ``model``'s symbol table.
    rng : numpy.random.Generator
        Draws the parameter values and data sets of the checks.

    Raises
    ------
    Rejected
        If any check fails (the message names it).
    """
    _structure(model, lik, st, info)
    for point in (_random_point(model, rng), _random_point(model, rng)):
        # an odd size: a sum of signs over the sample (a median's score) is never zero
        sets = verification_datasets(lik, _constants(model, point), point, count=3, size=9, rng=rng)
        data = [_Data(lik, point, d) for d in sets]
        _log_density(model, lik, point)
        _log_likelihood(lik, point, data[0])
        _derivatives(lik, st, point, data[0])
        _estimators(model, lik, st, point, data, rng)
    _information(model, lik, st, info, _random_point(model, rng))


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------


def _number(expr: sp.Basic, env: Mapping[sp.Basic, Any]) -> complex:
    """``expr`` at ``env`` (see :func:`~symmle.symbolic.pointwise.value`)."""
    return _complex(_exact(expr, env))


def _exact(expr: sp.Basic, env: Mapping[sp.Basic, Any], **sums: Any) -> Any:
    """``expr`` at ``env`` as an mpmath number (see :func:`~symmle.symbolic.pointwise.evaluate`)."""
    try:
        return evaluate(expr, env, **sums)
    except NotEvaluable as exc:
        raise Rejected(f"a stored formula cannot be evaluated: {exc}") from None


def _real(z: complex) -> float:
    return z.real if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real)) else math.nan


def _close(a: complex, b: complex, rtol: float, scale: float = 0.0) -> bool:
    return abs(a - b) <= rtol * (1.0 + abs(a) + abs(b) + scale)


def _constants(model: Model, point: Mapping[sp.Symbol, float]) -> dict[sp.Symbol, float]:
    return {q.symbol: point[q.symbol] for q in model.constants}


def _random_point(model: Model, rng: np.random.Generator) -> dict[sp.Symbol, float]:
    """Parameter and constant values near :meth:`Model.point`, drawn at random.

    Quantities of one domain keep the order their points have (so that the
    ends ``a < b`` of a support stay in order); given constant values stay.
    """
    base = model.point()
    out: dict[sp.Symbol, float] = {}
    by_domain: dict[str, list] = {}
    for q in (*model.parameters, *model.constants):
        if q.value is not None:
            out[q.symbol] = base[q.symbol]
        else:
            by_domain.setdefault(q.domain, []).append(q)
    for domain, qs in by_domain.items():
        if domain in ("integer", "positive_integer"):
            values = sorted(base[q.symbol] + float(rng.integers(0, 3)) for q in qs)
        elif domain == "real":
            values = sorted(base[q.symbol] + rng.uniform(-1.0, 1.0) for q in qs)
        elif domain == "unit":
            values = sorted(min(0.9, max(0.05, base[q.symbol] + rng.uniform(-0.15, 0.15))) for q in qs)
        else:  # positive, nonnegative
            values = sorted(base[q.symbol] * math.exp(rng.uniform(-0.5, 0.5)) for q in qs)
        ordered = sorted(qs, key=lambda q: base[q.symbol])
        out.update({q.symbol: float(v) for q, v in zip(ordered, values)})
    return out


class _Data:
    """The numbers a likelihood's formulas need on one data set at one point."""

    def __init__(self, lik: Likelihood, point: Mapping[sp.Symbol, float], data: np.ndarray) -> None:
        self.lik = lik
        self.data = [float(v) for v in np.asarray(data, dtype=float)]
        lo, hi = lik.order_statistics
        stats: dict[sp.Basic, float] = {lik.N: len(self.data), lo: min(self.data), hi: max(self.data)}
        x = lik.model.variable
        consts = _constants(lik.model, point)
        for s in lik.statistics:
            total = sum(_number(s.expr, {**consts, x: v}) for v in self.data)
            stats[s.symbol] = _real(total)
        # converted once: most formulas are evaluated many times on one data set
        self.env = {k: number(v) for k, v in {**point, **stats}.items()}
        self.values = [number(v) for v in self.data]
        self.term = lik.sample[lik.index]

    def __call__(self, expr: sp.Basic, values: Mapping[sp.Symbol, float] | None = None) -> complex:
        """``expr`` on this data set, with ``values`` over the point's parameter values."""
        return _complex(self.exact(expr, values))

    def exact(self, expr: sp.Basic, values: Mapping[sp.Symbol, Any] | None = None) -> Any:
        """As calling it, but an mpmath number in 30 digits (or the caller's higher precision)."""
        env = {**self.env, **{k: number(v) for k, v in (values or {}).items()}}
        for s in sp.sympify(expr).atoms(sp.Sum):
            if s.limits != ((self.lik.index, 1, self.lik.N),):
                raise Rejected(f"a sum over other than the sample: {s}")
        return _exact(expr, env, data=self.values, term=self.term)


def _complex(z: Any) -> complex:
    try:
        return complex(z)
    except (TypeError, OverflowError):
        return complex(math.nan, 0.0)


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------


def _structure(model: Model, lik: Likelihood, st: Stationarity, info: Information) -> None:
    """What can be told without numbers: who is regular, which records exist, no branches."""
    if lik.model is not model:
        raise Rejected("the likelihood is not of this model")
    if (lik.N, lik.index, lik.sample) != sample_symbols(model):
        raise Rejected("the sample's symbols are not the model's")
    for j, s in enumerate(lik.statistics, start=1):
        if s.symbol != statistic_symbol(j, s.expr):
            raise Rejected(f"the statistic {s.symbol} is not named in order")
    pset = set(model.parameter_symbols)
    x = model.variable
    for s, c in lik.coefficients:
        if s.informative != bool(c.free_symbols & pset) or c.has(x) or s.expr.free_symbols & pset:
            raise Rejected(f"the statistic {s.symbol} is not split as stated")
    if lik.baseline.has(x):
        raise Rejected("the part of the log-density free of the variable holds the variable")
    regular = tuple(q.symbol for q in model.parameters if not model.depends_on_support(q.symbol))
    if st.parameters != regular:
        raise Rejected("the regular parameters are not those of the model")
    names = [q.name for q in model.parameters]
    if list(st.estimators) != names or any(st.estimators[n].parameter != n for n in names):
        raise Rejected("the estimators are not one per parameter, in order")
    for e in st.estimators.values():
        if e.kind not in KINDS or (e.kind in ("closed_form", "boundary")) != (e.expr is not None):
            raise Rejected(f"the estimator of {e.parameter} is malformed")
    bounded = {model.symbols[e.parameter] for e in st.estimators.values() if e.kind == "boundary"}
    if {p for p, _ in st.boundary} != bounded or bounded & set(regular):
        raise Rejected("the boundary estimators are not those of the parameters that set the support")
    for p, expr in st.boundary:
        e = st.estimators[p.name]
        if e.kind != "boundary" or e.expr != expr:
            raise Rejected(f"the boundary estimator of {p} is not the one stated")
    _support_records(model, st, bounded)
    reduced = set(st.reduced)
    profiled = {p for p, _ in st.profile}
    if not reduced <= set(regular) or profiled & reduced or not profiled <= set(regular):
        raise Rejected("the reduced and profiled parameters are not regular parameters")
    for p, v in st.profile:
        e = st.estimators[p.name]
        eq = e.equation
        if e.kind != "numeric" or not e.verified or eq is None or eq.lhs != p or eq.rhs != v:
            raise Rejected(f"the profile relation of {p} is not the one stated, or not verified")
    if st.equations:
        if [st.estimators[p.name].equation for p in st.reduced] != list(st.equations):
            raise Rejected("the reduced equations are not the estimators' equations")
    n = len(model.parameters)
    if info.fisher.shape != (n, n) or len(info.verified) != n or any(len(r) != n for r in info.verified):
        raise Rejected("the Fisher information is not a square matrix over the parameters")
    for i in range(n):
        for j in range(n):
            exists = info.fisher[i, j] != sp.nan
            if exists != info.verified[i][j] or info.fisher[i, j] != info.fisher[j, i]:
                raise Rejected("the Fisher information's entries and their checks disagree")
    if info.crlb is not None and info.crlb.shape != (n, n):
        raise Rejected("the Cramér–Rao bound is not a square matrix over the parameters")
    _no_new_branches(model, lik, st, info)


def _support_records(model: Model, st: Stationarity, bounded: set[sp.Symbol]) -> None:
    """Each stored support constraint is an end of this model's support, bound where it meets the sample."""
    if not {p for p, _ in st.support} <= bounded:
        raise Rejected("a support constraint is stated for a parameter that does not set the support")
    x = model.variable
    for p, sb in st.support:
        if sb.direction not in (-1, 1) or not sb.constraints:
            raise Rejected(f"the support constraints of {p} are malformed")
        for c in sb.constraints:
            end = model.support[1] if c.upper else model.support[0]
            order = sp.Function("Max" if c.upper else "Min")(x)
            if c.end != end or str(c.order.func) != str(order.func) or c.order.args != order.args:
                raise Rejected(f"a support constraint of {p} is not an end of the support")
            met, _ = attempt(
                "support check", 2.0, lambda c=c, p=p: sp.simplify(c.end.subs(p, c.root) - c.order) == 0
            )
            if not met:
                raise Rejected(f"a support constraint of {p} does not bind where it is stated to")


def _no_new_branches(model: Model, lik: Likelihood, st: Stationarity, info: Information) -> None:
    source = [model.density, *model.support]
    if any(e.has(*BRANCHING) for e in source):
        return
    stored = [lik.log_density, lik.baseline, lik.coupled, lik.log_likelihood, *st.score, st.hessian]
    stored += [e for _, c in lik.coefficients for e in (_.expr, c)]
    stored += [e.expr for e in st.estimators.values() if e.expr is not None]
    # an equation is a relation; what may not branch are its sides
    equations = [e.equation for e in st.estimators.values() if e.equation is not None]
    stored += [side for eq in (*equations, *st.equations) for side in (eq.lhs, eq.rhs)]
    stored += [v for _, v in (*st.profile, *st.boundary)]
    stored += [info.fisher, *info.expectations.keys(), *info.expectations.values()]
    stored += [info.crlb] if info.crlb is not None else []
    if any(e.has(*BRANCHING) for e in stored):
        raise Rejected("a stored formula branches where the density does not")


def _probes(model: Model, point: Mapping[sp.Symbol, float]) -> list[float]:
    lo, hi = model.support_at(point)
    if model.discrete:
        start = lo if math.isfinite(lo) else 0.0
        return [start + k for k in range(5) if start + k <= hi]
    return interior_points(lo, hi, 5)


def _log_density(model: Model, lik: Likelihood, point: Mapping[sp.Symbol, float]) -> None:
    """The log-density gives the density back, and its split gives the log-density back."""
    x = model.variable
    compared = 0
    for t in _probes(model, point):
        at = {**point, x: t}
        f = _number(model.density, at)
        logf = _number(lik.log_density, at)
        parts = [_number(lik.baseline, at), _number(lik.coupled, at)]
        parts += [_number(c, at) * _number(s.expr, at) for s, c in lik.coefficients]
        if not (math.isfinite(abs(f)) and f.real > 0):
            continue
        if not _close(np.exp(logf), f, IDENTITY_RTOL):
            raise Rejected(f"the log-density does not give the density at {x} = {t:g}")
        if not _close(sum(parts), logf, IDENTITY_RTOL, scale=sum(abs(p) for p in parts)):
            raise Rejected("the split of the log-density does not add up to it")
        compared += 1
    if not compared:
        raise Rejected("the density could not be evaluated inside its support")


def _log_likelihood(lik: Likelihood, point: Mapping[sp.Symbol, float], d: _Data) -> None:
    x = lik.model.variable
    terms = [_number(lik.log_density, {**point, x: v}) for v in d.data]
    ell = d(lik.log_likelihood)
    if not _close(ell, sum(terms), IDENTITY_RTOL, scale=sum(abs(t) for t in terms)):
        raise Rejected("the log-likelihood is not the sum of the log-densities of a data set")


def _derivatives(lik: Likelihood, st: Stationarity, point: Mapping[sp.Symbol, float], d: _Data) -> None:
    """Each score is the derivative of the log-likelihood, each Hessian entry that of a score.

    The derivatives are taken numerically (``mpmath.diff``, in more than 30
    digits), so that nothing stored is differentiated symbolically: SymPy's
    ``diff`` would cost more than all the other checks together.
    """
    params = list(st.parameters)
    if len(st.score) != len(params) or st.hessian.shape != (len(params), len(params)):
        raise Rejected("the score and Hessian do not match the regular parameters")
    with mpmath.workdps(DIGITS):
        at = {p: mpmath.mpf(point[p]) for p in params}
        # the parameters that set the support sit at their estimates, as in the score
        at.update({p: d.exact(expr) for p, expr in st.boundary})
        for k, p in enumerate(params):
            slope = mpmath.diff(lambda t, p=p: d.exact(lik.log_likelihood, {**at, p: t}), at[p])
            if not _close(d(st.score[k], at), _complex(slope), IDENTITY_RTOL):
                raise Rejected(f"the score for {p} is not the derivative of the log-likelihood")
            for j, q in enumerate(params):
                slope = mpmath.diff(lambda t, k=k, q=q: d.exact(st.score[k], {**at, q: t}), at[q])
                if not _close(d(st.hessian[k, j], at), _complex(slope), IDENTITY_RTOL):
                    raise Rejected(f"the Hessian entry ({p}, {q}) is not the derivative of the score")


def _vanishes(d: _Data, terms: Sequence[sp.Expr], values: Mapping[sp.Symbol, float]) -> bool:
    """Whether the sum of ``terms`` is zero at ``values``, relative to the size of the terms."""
    parts = [d(t, values) for t in terms]
    return abs(sum(parts)) <= SCORE_RTOL * (sum(abs(p) for p in parts) + 1e-300)


def _terms(expr: sp.Expr) -> tuple[sp.Expr, ...]:
    return sp.Add.make_args(sp.expand(expr))


def _estimators(
    model: Model,
    lik: Likelihood,
    st: Stationarity,
    point: Mapping[sp.Symbol, float],
    data: Sequence[_Data],
    rng: np.random.Generator,
) -> None:
    domains = {q.symbol: q.domain for q in model.parameters}
    params = list(st.parameters)
    closed = {model.symbols[e.parameter]: e.expr for e in st.estimators.values() if e.kind == "closed_form"}
    # a stationary point that leaves the domain for some data is stated as an equation p = formula
    stationary = {p: st.estimators[p.name].equation.rhs for p in st.reduced if not st.equations}
    if closed or stationary:
        if set(closed) | set(stationary) != set(params):
            raise Rejected("closed forms are stated for some regular parameters only")
        _stationary_point(st, {**closed, **stationary}, domains, data, inside=not stationary)
    for p, expr in st.boundary:
        _boundary(model, lik, st, p, expr, point, data)
    if st.profile or st.equations:
        _reduced(model, st, domains, point, data[0], rng)


def _stationary_point(st, solution, domains, data, inside: bool) -> None:
    """The scores vanish at the stated solution, a maximum, on the data sets (inside the domain)."""
    params = list(st.parameters)
    terms = [_terms(s) for s in st.score]
    passed = 0
    for d in data:
        values = {p: _real(d(solution[p])) for p in params}
        # a stationary point stated as an equation may leave the domain (its note says so)
        if not all(math.isfinite(v) and (not inside or in_domain(v, domains[p])) for p, v in values.items()):
            continue
        for p, t in zip(params, terms):
            if not _vanishes(d, t, values):
                raise Rejected(f"the score for {p} does not vanish at the stated estimators")
        n = len(params)
        h = np.array([[_real(d(st.hessian[i, j], values)) for j in range(n)] for i in range(n)])
        if not np.all(np.isfinite(h)) or np.max(np.linalg.eigvalsh((h + h.T) / 2)) >= 0:
            raise Rejected("the stated estimators are not a maximum")
        passed += 1
    if passed < 2:
        raise Rejected("the stated estimators left the parameter domain on the check data")


def _boundary(model, lik, st, p, expr, point, data) -> None:
    """The estimate puts an end of the support on the sample's extreme; the likelihood falls away."""
    ell = lik.log_likelihood
    others = {b: e for b, e in st.boundary if b is not p}
    for d in data:
        at = {**point}
        for b, e in others.items():
            at[b] = _real(d(e))
        value = _real(d(expr))
        if not math.isfinite(value):
            raise Rejected(f"the boundary estimator of {p} is not a number on a data set")
        lo, hi = model.support_at({**at, p: value})
        xmin, xmax = min(d.data), max(d.data)
        tol = 1e-9 * (1.0 + abs(xmin) + abs(xmax))
        if not (abs(lo - xmin) <= tol or abs(hi - xmax) <= tol) or lo > xmin + tol or hi < xmax - tol:
            raise Rejected(f"the boundary estimator of {p} does not put the support's end on the data")
        best = _real(d(ell, {**at, p: value}))
        if not math.isfinite(best):
            raise Rejected(f"the likelihood is not finite at the boundary estimate of {p}")
        domain = next(q.domain for q in model.parameters if q.symbol == p)
        step = 1.0 if domain.endswith("integer") else 1e-3 * (1.0 + abs(value))
        feasible = 0
        for moved in (value - step, value + step):
            a, b = model.support_at({**at, p: moved})
            if a <= xmin and b >= xmax:
                feasible += 1
                if _real(d(ell, {**at, p: moved})) > best + IDENTITY_RTOL * (1 + abs(best)):
                    raise Rejected(f"the likelihood rises away from the boundary estimate of {p}")
        if not feasible:
            raise Rejected(f"no value of {p} near its boundary estimate keeps the data in the support")


def _reduced(model, st, domains, point, d: _Data, rng) -> None:
    """Profile relations zero scores; each reduced equation is a score times a factor of the data only.

    Each profile relation solves the score equation of some parameter (not
    always its own); with all of them in place, that many scores vanish at
    any value of the reduced parameters.  Each reduced equation is what is
    left of one score, rearranged and divided by ``N`` or a positive
    function of the data, so its ratio to that score does not change with
    the reduced parameters (and it is zero where the score is).
    """
    params = list(st.parameters)
    terms = {p: _terms(s) for p, s in zip(params, st.score)}
    rows: list[tuple[dict, list[complex]]] = []  # (scores, equation residuals) at each drawn point
    for _ in range(12):
        drawn = _random_point(model, rng)
        values = {p: drawn[p] for p in st.reduced}
        for p, v in st.profile:
            values[p] = _real(d(v, values))
        values.update({p: point[p] for p in params if p not in values})
        if not all(math.isfinite(v) and in_domain(v, domains[p]) for p, v in values.items()):
            continue
        if sum(_vanishes(d, terms[q], values) for q in params) < len(st.profile):
            raise Rejected("the profile relations do not zero the scores they solve")
        scores = {q: d(st.score[params.index(q)], values) for q in params}
        rows.append((scores, [d(eq.lhs - eq.rhs, values) for eq in st.equations]))
        if len(rows) == 5:
            break
    if len(rows) < 2:
        raise Rejected("the reduced parameters left their domain on the check data")
    for k, eq in enumerate(st.equations):
        if not any(_proportional([(g[q], e[k]) for g, e in rows]) for q in params):
            raise Rejected(f"the reduced equation {eq} does not vanish with any score")


def _proportional(pairs: list[tuple[complex, complex]]) -> bool:
    """Whether ``e = c g`` for one constant ``c != 0`` over the pairs ``(g, e)``, seen at two or more."""
    ratios = []
    for g, e in pairs:
        if not (np.isfinite(g) and np.isfinite(e)):
            return False
        if g == 0 or e == 0:  # a score of sums of signs can be exactly zero: then so is the equation
            if g != e:
                return False
            continue
        ratios.append(e / g)
    return len(ratios) >= 2 and all(abs(r - ratios[0]) <= 1e-7 * abs(ratios[0]) for r in ratios[1:])


def _information(
    model: Model, lik: Likelihood, st: Stationarity, info: Information, point: Mapping[sp.Symbol, float]
) -> None:
    """Fisher entries and expectations against quadrature of the density; the CRLB inverts N I.

    An entry is :math:`-\\partial^2 A - \\sum_j \\partial^2 c_j\\, E[g_j] - E[\\partial^2 h]`: the
    second derivatives of the parameter functions are taken numerically, the
    expectations by quadrature (symbolic derivatives only of ``h``, the part
    of the log-density that does not separate, which quadrature needs as a
    function of the variable).
    """
    params = list(model.parameter_symbols)
    subs = dict(point)
    # E[g] for the statistics the second derivatives need, and for every stored expectation
    needed: list[sp.Expr] = list(info.expectations)
    entries = []
    for a in range(len(params)):
        for b in range(a, len(params)):
            if info.verified[a][b]:
                p, q = params[a], params[b]
                h2 = sp.diff(lik.coupled, p, q) if lik.coupled.has(p) and lik.coupled.has(q) else sp.S.Zero
                parts = [(c, s.expr) for s, c in lik.coefficients if c.has(p) and c.has(q)]
                needed += [g for _, g in parts] + ([h2] if h2 != 0 else [])
                entries.append((a, b, parts, h2))
    needed = list(dict.fromkeys(needed))
    if not needed and not entries:
        _crlb(lik, info, params, subs)
        return
    means = dict(zip(needed, _expectations(model, lik, needed, point)))
    for g, mean in info.expectations.items():
        if not _close(_number(mean, subs), means[g], QUADRATURE_RTOL):
            raise Rejected(f"the expectation E[{g}] disagrees with quadrature")
    for a, b, parts, h2 in entries:
        p, q = params[a], params[b]
        terms = [-_second(lik.baseline, subs, p, q)]
        terms += [-_second(c, subs, p, q) * means[g] for c, g in parts]
        terms += [-means[h2]] if h2 != 0 else []
        stated = _number(info.fisher[a, b], subs)
        if not _close(stated, sum(terms), QUADRATURE_RTOL, scale=sum(abs(t) for t in terms)):
            raise Rejected(f"the Fisher information entry ({p}, {q}) disagrees with quadrature")
    _crlb(lik, info, params, subs)


def _second(expr: sp.Expr, point: Mapping[sp.Symbol, float], p: sp.Symbol, q: sp.Symbol) -> complex:
    """:math:`\\partial^2 e / \\partial p \\partial q` at ``point``, numerically in more than 30 digits."""
    if not (expr.has(p) and expr.has(q)):
        return 0j

    with mpmath.workdps(DIGITS):
        if p == q:
            return _complex(mpmath.diff(lambda t: _exact(expr, {**point, p: t}), point[p], 2))
        pair = (point[p], point[q])
        return _complex(mpmath.diff(lambda s, t: _exact(expr, {**point, p: s, q: t}), pair, (1, 1)))


def _expectations(
    model: Model, lik: Likelihood, exprs: list[sp.Expr], point: Mapping[sp.Symbol, float]
) -> list[complex]:
    """``E[h(X)]`` at ``point`` for each ``h``, by quadrature or summation of ``h f``.

    The density is taken as ``exp`` of the log-density (checked against the
    density already), which does not overflow; all the functions are
    compiled in one call.
    """
    x = model.variable
    names = [q.symbol for q in (*model.parameters, *model.constants)]
    fn = to_function([x, *names], sp.Tuple(lik.log_density, *exprs))
    args = [point[s] for s in names]
    lo, hi = model.support_at(point)

    def parts(t):
        with np.errstate(all="ignore"):
            t_arr = np.asarray(t, dtype=float)
            out = [np.real(np.asarray(v, dtype=complex)) * np.ones_like(t_arr) for v in fn(t_arr, *args)]
        return out[0], out[1:]

    def log_weight(t):
        return parts(t)[0]

    out = []
    for k in range(len(exprs)):

        def integrand(t, k=k):
            logf, hs = parts(t)
            with np.errstate(all="ignore"):
                fv = np.exp(logf)
                return np.where(fv > 0, hs[k] * fv, 0.0)

        def scalar(t: float, k=k) -> float:
            values = fn(t, *args)
            f = math.exp(_real(complex(values[0]))) if _real(complex(values[0])) < 700 else math.inf
            return _real(complex(values[k + 1])) * f if f > 0 else 0.0

        if model.discrete:
            total, ok = sum_support(integrand, lo, hi, log_weight=log_weight)
            if not ok:
                raise Rejected("an expectation could not be summed to check it")
        else:
            total, _ = integrate_support(scalar, lo, hi)
        out.append(complex(total))
    return out


def _crlb(lik: Likelihood, info: Information, params: list[sp.Symbol], subs) -> None:
    if info.crlb is None:
        return
    idx = [i for i in range(len(params)) if info.verified[i][i]]
    n_value = 7
    at = {**subs, lik.N: n_value}
    for i in range(len(params)):
        for j in range(len(params)):
            if (i in idx and j in idx) != (info.crlb[i, j] != sp.nan):
                raise Rejected("the Cramér–Rao bound covers other parameters than the information")
    if not idx:
        return
    c = np.array([[_number(info.crlb[i, j], at) for j in idx] for i in idx])
    f = np.array([[_number(info.fisher[i, j], subs) for j in idx] for i in idx])
    product = c @ (float(n_value) * f)
    if not np.allclose(product, np.eye(len(idx)), rtol=0, atol=1e-8):
        raise Rejected("the Cramér–Rao bound is not the inverse of N times the information")
