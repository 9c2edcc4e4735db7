"""The :class:`Estimator` record and what every strategy of finding one shares.

The strategies (score equations in :mod:`symmle.symbolic.stationarity`, support
constraints in :mod:`symmle.symbolic.support`, piecewise-linear objectives in
:mod:`symmle.symbolic.subgradient`) each return an :class:`Estimator`.  They share the
filter of roots by domain (:func:`admissible`), the budgeted ``solve``
(:func:`solve`), and the proof of the sign of an expression on a parameter's
domain (:func:`sign_on`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base.budget import attempt

__all__ = ["Estimator", "KINDS", "admissible", "solve", "no_closed_form", "sign_on", "interval_of"]

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
        The estimator, in ``N``, the statistics ``T_j`` and constants (and
        order statistics: ``Min(x)``, ``Max(x)``, ``Median(x)``).
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


def admissible(value: sp.Expr, domain: str) -> bool:
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


def _inside_sum(expr: sp.Expr, symbol: sp.Symbol) -> bool:
    """Whether ``symbol`` occurs inside an unevaluated sum over the data."""
    return any(symbol in s.function.free_symbols for s in expr.atoms(sp.Sum))


def _exponential_rates(expr: sp.Expr, u: sp.Symbol) -> list[list[sp.Rational]] | None:
    """The rates of the exponentials ``b**(c*u)`` and ``exp(c*u)`` in ``expr``, as vectors.

    Each rate ``c*log(b)`` is written over the logarithms of primes (and ``1`` for
    ``e``) with rational coordinates, so that rates are rationally dependent
    exactly when their vectors are linearly dependent.  ``None`` when some
    exponential of ``u`` has a rate that is not of this form (a symbolic base,
    an exponent not linear in ``u``).
    """
    rates: list[dict] = []
    for atom in expr.atoms(sp.Pow, sp.exp):
        base, exponent = (sp.E, atom.exp) if isinstance(atom, sp.exp) else atom.as_base_exp()
        if u not in exponent.free_symbols:
            continue
        if u in base.free_symbols:
            return None
        c = sp.diff(exponent, u)
        if not (c.is_Rational and c != 0 and sp.diff(c, u) == 0):
            return None
        if base == sp.E:
            rates.append({sp.E: c})
        elif base.is_Rational and base.is_positive and base != 1:
            num, den = base.as_numer_denom()
            vec = {q: c * k for q, k in sp.factorint(num).items()}
            for q, k in sp.factorint(den).items():
                vec[q] = vec.get(q, 0) - c * k
            rates.append(vec)
        else:
            return None
    keys = sorted({k for r in rates for k in r}, key=str)
    return [[r.get(k, sp.Integer(0)) for k in keys] for r in rates]


def no_closed_form(eq: sp.Expr, u: sp.Symbol) -> str | None:
    """Why ``eq = 0`` has no closed-form root in ``u`` that ``solve`` could find, or ``None``.

    An exponential polynomial with at least three distinct exponentials of
    ``u`` whose rates span two or more rationally independent directions (as in
    ``2**-s + 3**-s + 5**-s = c``) is not a polynomial in any one exponential,
    so no substitution reduces it to an algebraic equation; ``sympy.solve``
    spends its whole budget on it and gives up.

    Examples
    --------
    >>> s, c = sp.symbols("s c", positive=True)
    >>> no_closed_form(2**-s + 3**-s + 5**-s - c, s) is not None
    True
    >>> no_closed_form(2**-s + 4**-s - c, s) is None     # a quadratic in 2**-s
    True
    """
    rates = _exponential_rates(eq, u)
    if rates is None:
        return None
    distinct = {tuple(r) for r in rates}
    if len(distinct) < 3 or sp.Matrix(list(distinct)).rank() < 2:
        return None
    return (
        f"the equation is an exponential polynomial in {u} with rationally independent rates, "
        "which has no closed-form root"
    )


def solve(
    eqs: list[sp.Expr], unknowns: list[sp.Symbol], timeout: float | None, step: str
) -> list[dict[sp.Symbol, sp.Expr]] | None:
    """``sympy.solve`` under a budget: the solutions as dicts, ``[]`` if none, ``None`` on time-out."""
    # No closed form can isolate a parameter trapped inside a sum over the data.
    if any(_inside_sum(e, u) for e in eqs for u in unknowns):
        return []
    # nor the root of a single transcendental equation of a known kind
    if len(eqs) == 1 and len(unknowns) == 1 and no_closed_form(eqs[0], unknowns[0]):
        return []

    def run() -> list[dict[sp.Symbol, sp.Expr]]:
        try:
            return sp.solve(eqs, unknowns, dict=True)
        except (NotImplementedError, ValueError, TypeError, ZeroDivisionError):
            return []

    result, timed_out = attempt(step, timeout, run)
    return None if timed_out else result


def interval_of(domain: str) -> sp.Set:
    """The real interval a parameter of ``domain`` lives in (integers: the interval that holds them).

    Examples
    --------
    >>> interval_of("positive"), interval_of("unit")
    (Interval.open(0, oo), Interval.open(0, 1))
    """
    return {
        "real": sp.Reals,
        "positive": sp.Interval.open(0, sp.oo),
        "nonnegative": sp.Interval(0, sp.oo),
        "unit": sp.Interval.open(0, 1),
        "integer": sp.Reals,
        "positive_integer": sp.Interval(1, sp.oo),
    }[domain]


def sign_on(expr: sp.Expr, theta: sp.Symbol, domain: str, timeout: float | None) -> int:
    r"""+1 or -1 when the sign of ``expr`` is proved for every ``theta`` in ``domain``, else 0.

    Each factor is proved by the symbols' assumptions or, where it depends on
    ``theta`` alone, by having no zero and no discontinuity on the domain
    (``solveset`` and ``continuous_domain``): a continuous function without a
    zero on an interval keeps the sign it has at any one point of it.  The
    other symbols of ``expr`` (``N``, statistics, other parameters) must be
    settled by their assumptions.

    Examples
    --------
    >>> t = sp.Symbol("t", positive=True)
    >>> N = sp.Symbol("N", positive=True)
    >>> sign_on(-N * sp.exp(-t) / (1 - sp.exp(-t)), t, "positive", None)   # 1 - exp(-t) > 0 for t > 0
    -1
    >>> sign_on(t - 1, t, "positive", None)
    0
    """
    found, _ = attempt(
        f"prove the sign of the derivative in {theta}", timeout, lambda: _sign(expr, theta, domain)
    )
    return found or 0


def _sign(expr: sp.Expr, theta: sp.Symbol, domain: str) -> int:
    if expr.is_positive:
        return 1
    if expr.is_negative:
        return -1
    sign = 1
    for factor in sp.Mul.make_args(sp.factor_terms(sp.together(expr))):
        s = _factor_sign(factor, theta, domain)
        if s == 0:
            return 0
        sign *= s
    return sign


def _factor_sign(f: sp.Expr, theta: sp.Symbol, domain: str) -> int:
    if f.is_positive:
        return 1
    if f.is_negative:
        return -1
    if f.is_Pow and f.exp.is_integer:
        s = _factor_sign(f.base, theta, domain)
        if s and f.exp.is_number:
            return s if int(f.exp) % 2 else 1
        return 1 if s and f.exp.is_even else 0
    if f.is_Pow and f.base.is_positive:
        return 1
    if f.free_symbols != {theta}:
        return 0
    interval = interval_of(domain)
    t = sp.Dummy("t", real=True)
    g = f.subs(theta, t)
    try:
        if sp.calculus.util.continuous_domain(g, t, interval) != interval:
            return 0
        if sp.solveset(g, t, interval) != sp.S.EmptySet:
            return 0
    except (NotImplementedError, ValueError, TypeError):
        return 0
    inf, sup = interval.inf, interval.sup
    probe = (inf + sup) / 2 if inf.is_finite and sup.is_finite else (inf + 1 if inf.is_finite else sup - 1)
    if not probe.is_finite:
        probe = sp.Integer(1)
    value = complex(g.subs(t, probe).evalf())
    if not np.isfinite(value) or abs(value.imag) > 1e-12 * max(1.0, abs(value.real)) or value.real == 0:
        return 0
    return 1 if value.real > 0 else -1
