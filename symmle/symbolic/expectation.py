r"""Expectations :math:`E[g(X)]` in closed form, each checked against quadrature.

The Fisher information needs expectations that SymPy's ``integrate`` often
cannot do as they stand, or does only after a long search.  So the integral
is first put into a form it handles (each a mechanism, none tied to a family):

* a **location-scale form** :math:`x = l + s\,t`: when :math:`s f(l + s t)`
  is free of :math:`l` and :math:`s`, the integral is against a fixed density
  of :math:`t` (:func:`standardise`);
* on the real line, the substitution :math:`u = e^{-t}`, when :math:`t` enters
  through exponentials (the integral becomes a Mellin transform);
* the **fold** :math:`\int_{\mathbb R} h = \int_0^\infty h(r + w) + h(r - w)\,dw`
  at a kink :math:`r` of ``Abs``/``sign``, or at 0 for an even or odd
  integrand: on each side the kink is gone;
* **moments in** :math:`\log v`: :math:`\int a(v) \log^m v\,dv` is the
  :math:`m`-th derivative at :math:`s = 0` of the Mellin transform
  :math:`\int a(v) v^s\,dv`;
* powers of proportional bases merged (:math:`(\nu + t^2)^{-2}
  (1 + t^2/\nu)^{-c} = \nu^{-2} (1 + t^2/\nu)^{-2-c}`) and Euler's Beta
  integrals before SymPy's ``integrate`` (:mod:`symmle.symbolic.integrals`).

Each strategy runs under its own share of the time budget.  One that runs out
of its share (or fails after using most of it) is not tried again for this
model, in any form, so a model with no closed form costs a few shares, not
the whole budget.  Every value found is compared with quadrature (or
summation) at a parameter point before it is accepted; a wrong one falls
through to the next strategy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base.budget import attempt
from symmle.base.numeric import to_function
from symmle.base.quadrature import integrate_support, sum_support
from symmle.model.density import density_function
from symmle.model.spec import Model
from symmle.symbolic.integrals import (
    Cold,
    S,
    closed_form,
    definite,
    derivative_at_zero,
    integrate,
    light,
    warm_up,
)
from symmle.symbolic.kinks import kink_points

__all__ = [
    "SYMPY_FAILURES",
    "Standard",
    "Expectations",
    "standardise",
    "try_step",
    "tidy",
    "as_real",
    "numeric_expectation",
    "agrees",
]

#: What SymPy raises when a strategy does not apply (an undecidable condition in
#: ``integrate``, an unsupported form): the strategy has failed, nothing more.
SYMPY_FAILURES = (
    TypeError,
    ValueError,
    NotImplementedError,
    AttributeError,
    ZeroDivisionError,
    RecursionError,
    sp.PolynomialError,
)

# fixed dummies, so that moments computed for one expectation serve the next
_U = sp.Dummy("u", positive=True)
_W = sp.Dummy("w", positive=True)
#: Highest power of log(v) the moments are taken for (a Fisher information needs 2 or 3).
_MAX_LOG_POWER = 8


def try_step(step: str, seconds: float | None, fn: Callable):
    """:func:`~symmle.base.budget.attempt`, a strategy that raises counted as one that found nothing."""
    try:
        return attempt(step, seconds, fn)
    except SYMPY_FAILURES:
        return None, False


def _size(expr: sp.Basic) -> int:
    """Operations plus the digits of the numbers: a simpler form must not invent big numbers."""
    digits = sum(max(0, len(str(abs(r.p))) + len(str(r.q)) - 3) for r in expr.atoms(sp.Rational))
    return int(sp.count_ops(expr)) + digits


_simplify_warm = False


def _warm_simplify() -> None:
    """The first ``simplify`` of a process imports ``sympy.physics.units`` (0.3 s, more under load).

    Paid once, outside any share, so that it does not decide how far the first
    simplification gets.
    """
    global _simplify_warm
    if not _simplify_warm:
        sp.simplify(2 * sp.Dummy())
        _simplify_warm = True


def tidy(expr: sp.Expr, seconds: float | None) -> sp.Expr:
    """``expr`` simplified if SymPy finds a smaller form within ``seconds``, else ``expr`` as it is.

    The expression is already right; simplifying is only for the reader, so
    it may not take more than its share, nor return something larger.
    """
    if not isinstance(expr, sp.Basic) or expr.is_Atom:
        return expr
    _warm_simplify()

    def keep(candidate: sp.Expr) -> None:
        nonlocal found
        if _size(candidate) < _size(found):
            found = candidate

    def run():
        # cheap rewritings first, each kept if it is smaller (simplify may then run out of the
        # share): powers of one base; gamma functions of shifted arguments on one argument, so
        # that their ratios cancel (gamma(a + 5/2)/gamma(a + 1/2) is a polynomial in a)
        keep(sp.powsimp(expr, combine="exp"))
        if found.has(sp.gamma, sp.polygamma):
            keep(sp.factor(sp.gammasimp(sp.expand_func(found))))
        return sp.simplify(found, ratio=1, measure=_size)

    found = expr
    value, _ = try_step("simplify", seconds, run)
    best = found if value is None or _size(value) > _size(found) else value
    return best if _size(best) <= _size(expr) else expr


def as_real(value: sp.Expr) -> float:
    """A real number from a SymPy value, ``nan`` if it is not one."""
    try:
        z = complex(sp.N(value, 30))
    except (TypeError, ValueError):
        return math.nan
    return z.real if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real)) else math.nan


def numeric_expectation(model: Model, expr_x: sp.Expr, point: Mapping[sp.Symbol, float], f=None):
    """Quadrature/summation of ``expr_x * f`` over the support at ``point``, and the rounding it inherits.

    Returns ``(value, rounding)`` with ``rounding()`` a bound on the error
    that the density's own rounding puts into a sum (``sum |expr_x f| eps_f``,
    ``eps_f`` from ``f.rounding``: large where ``log f`` holds
    ``loggamma(n + 1)`` at a huge ``n``), 0 for an integral; computed only
    when asked.  ``None`` if a finite sum did not settle.  ``f`` is the
    density at ``point`` if already compiled (:func:`density_function`).
    """
    f = density_function(model, point) if f is None else f
    h = to_function([model.variable], expr_x.subs(point))
    lo, hi = model.support_at(point)

    def integrand(t):
        with np.errstate(all="ignore"):
            t_arr = np.asarray(t, dtype=float)
            fv = np.asarray(f(t_arr), dtype=float)
            hv = np.asarray(h(t_arr), dtype=float) * np.ones_like(t_arr)
            return np.where(fv > 0, hv * fv, 0.0)

    if not model.discrete:
        value, _ = integrate_support(integrand, lo, hi, log_weight=f.log)
        return value, lambda: 0.0
    value, ok = sum_support(integrand, lo, hi, log_weight=f.log)
    if not ok and math.isfinite(hi):
        return None

    def rounding() -> float:
        bound, _ = sum_support(lambda t: np.abs(integrand(t)) * f.rounding(t), lo, hi, log_weight=f.log)
        return bound

    return value, rounding


def agrees(symbolic: float, numeric: float, rounding: Callable[[], float]) -> bool:
    """Whether a closed form's value matches quadrature: 1e-6 relative, or the sum's own rounding."""
    if not math.isfinite(symbolic):
        return False
    if abs(symbolic - numeric) <= 1e-6 * max(1.0, abs(numeric)):
        return True
    # the sum is only as good as its terms: a pmf computed to 1e-5 (huge n) widens the check
    return abs(symbolic - numeric) <= 8 * rounding()


@dataclass(frozen=True)
class Standard:
    """A location-scale form: ``X = loc + scale * t`` with ``t`` free of both."""

    t: sp.Symbol
    loc: sp.Expr
    scale: sp.Expr
    density: sp.Expr  #: density of t
    support: tuple[sp.Expr, sp.Expr]


def standardise(model: Model) -> Standard | None:
    r"""Find a location and/or scale among the model's symbols.

    If :math:`s\,f(l + s t)` and the mapped support are free of :math:`l` and
    :math:`s`, expectations become integrals against a fixed density of
    :math:`t`.  A form that removes both a location and a scale is tried
    before one that removes only one of them (a location alone leaves the
    scale inside every integral), and parameters before constants.

    Examples
    --------
    >>> from symmle.model.build import inline_model
    >>> m = inline_model("exp(-(x-m)/b - exp(-(x-m)/b))/b", "x", "-oo,oo", ["m:real", "b:positive"])
    >>> std = standardise(m)
    >>> std.loc, std.scale, std.density
    (m, b, exp(-t - exp(-t)))
    """
    if model.discrete:
        return None
    x, f = model.variable, model.density
    constants = {q.symbol for q in model.constants}
    quantities = [q for q in (*model.parameters, *model.constants) if q.symbol in f.free_symbols]
    locs = [None, *(q.symbol for q in quantities if q.domain == "real")]
    scales = [None, *(q.symbol for q in quantities if q.domain == "positive")]
    pairs = [(loc, scale) for loc in locs for scale in scales if loc is not None or scale is not None]
    pairs.sort(key=lambda ls: (-sum(v is not None for v in ls), sum(v in constants for v in ls)))
    for loc, scale in pairs:
        shift, sc = loc if loc is not None else sp.S.Zero, scale if scale is not None else sp.S.One
        moved = {v for v in (loc, scale) if v is not None}
        support = tuple(sp.simplify((e - shift) / sc) for e in model.support)
        if any(e.free_symbols & moved for e in support):
            continue
        # on a positive support, log(a*t) splits into log(a) + log(t)
        t = sp.Symbol("t", positive=True) if support[0].is_nonnegative else sp.Symbol("t", real=True)
        f0 = light(f.subs(x, shift + sc * t) * sc)
        if f0.free_symbols & moved:
            f0 = sp.simplify(f0)
        if not (f0.free_symbols & moved):
            return Standard(t, shift, sc, f0, support)  # type: ignore[arg-type]
    return None


def _parity(h: sp.Expr, v: sp.Symbol, point: Mapping[sp.Symbol, float]) -> int:
    """+1 if ``h`` looks even in ``v`` at the check point, -1 if odd, 0 otherwise (only picks a strategy)."""
    at = h.subs(point)
    try:
        pairs = [(as_real(at.subs(v, w)), as_real(at.subs(v, -w))) for w in (0.31, 1.07, 2.9)]
    except SYMPY_FAILURES:
        return 0
    if not all(math.isfinite(a) and math.isfinite(b) for a, b in pairs):
        return 0
    if all(abs(a - b) <= 1e-9 * (abs(a) + abs(b)) for a, b in pairs):
        return 1
    if all(abs(a + b) <= 1e-9 * (abs(a) + abs(b)) for a, b in pairs):
        return -1
    return 0


def _special_in_denominator(h: sp.Expr, v: sp.Symbol) -> bool:
    """Whether ``h`` divides by a special function of ``v`` (``1/(1 + erf(a*v))**2``).

    No antiderivative and no Meijer G form exists for such an integrand in
    general: SymPy searches until the share runs out, so it is not asked.
    """
    for p in h.atoms(sp.Pow):
        if p.exp.is_negative and p.base.has(v):
            for f in p.base.atoms(sp.Function):
                if type(f).__module__.startswith("sympy.functions.special") and f.has(v):
                    return True
    return False


class Expectations:
    """:math:`E[g(X)]` for one model, by the strategies of this module.

    Calling it returns a checked closed form or ``None``; both are
    remembered, so an expectation needed by several entries of the Fisher
    information is searched for once.

    Parameters
    ----------
    model : Model
    share : float or None
        Budget of each strategy, in seconds (``None``: unbounded).

    Attributes
    ----------
    polish : float or None
        Budget of a simplification (half a share): it is only for the reader.
    """

    def __init__(self, model: Model, share: float | None) -> None:
        self.model = model
        self.share = share
        self.polish = None if share is None else share / 2
        self.point = model.point()
        self._std: Standard | None | bool = False
        self._memo: dict[sp.Expr, sp.Expr | None] = {}
        self._numeric: dict[sp.Expr, tuple | None] = {}
        self._moments: dict[tuple, sp.Expr | None] = {}
        self._dropped: set[str] = set()
        self._density = None

    def standard(self) -> Standard | None:
        """The model's location-scale form, found on first use."""
        if self._std is False:
            found, _ = try_step("location-scale form", self.share, lambda: standardise(self.model))
            self._std = found
        return self._std  # type: ignore[return-value]

    def __call__(self, g: sp.Expr) -> sp.Expr | None:
        if g not in self._memo:
            self._memo[g] = self._search(g)
        return self._memo[g]

    def _search(self, g: sp.Expr) -> sp.Expr | None:
        """The first strategy's value that passes its check; strategies that ran out of time are skipped."""
        self.standard()
        # choosing the strategies (a location-scale form of g, its kinks, its parity) is work too
        plan, _ = try_step("choosing strategies", self.share, lambda: list(self._strategies(g)))
        for name, fn in plan or ():
            if name in self._dropped:
                continue
            start = time.monotonic()
            try:
                value, timed_out = try_step(f"an expectation by {name}", self.share, fn)
            except Cold:  # SymPy's integrate is needed: set it up outside the share, then again
                warm_up()
                start = time.monotonic()
                value, timed_out = try_step(f"an expectation by {name}", self.share, fn)
            if value is not None and self._checks(g, value):
                return value
            spent = time.monotonic() - start
            if timed_out or (self.share is not None and spent > self.share / 2):
                # it cannot finish in its share: not again for this model, in any form
                self._dropped.add(name)
        return None

    def numeric(self, g: sp.Expr):
        """:func:`numeric_expectation` of ``g`` at the check point (remembered), ``None`` if it fails."""
        if g not in self._numeric:
            try:
                if self._density is None:
                    self._density = density_function(self.model, self.point)
                self._numeric[g] = numeric_expectation(self.model, g, self.point, self._density)
            except (*SYMPY_FAILURES, NameError, OverflowError):
                self._numeric[g] = None
        return self._numeric[g]

    def _checks(self, g: sp.Expr, value: sp.Expr) -> bool:
        """Whether ``value`` matches quadrature of ``g f`` at the check point (unknown counts as yes)."""
        found = self.numeric(g)
        if found is None or not math.isfinite(found[0]):
            return True  # the entry's own check decides
        return agrees(as_real(value.subs(self.point)), *found)

    def _strategies(self, g: sp.Expr) -> Iterator[tuple[str, Callable[[], sp.Expr | None]]]:
        model = self.model
        x, f = model.variable, model.density
        lo, hi = model.support
        if model.discrete:
            yield "summation", lambda: closed_form(sp.summation(g * f, (x, lo, hi)))
            return
        std = self.standard()
        if std is not None:
            h = light(g.subs(x, std.loc + std.scale * std.t) * std.density)
            yield from self._routes(h, std.t, *std.support)
        yield from self._routes(g * f, x, lo, hi)
        if lo.is_nonnegative:
            yield "the substitution u = log x", lambda: self._by_log(g * f, x, lo, hi)

    def _routes(self, h, v, lo, hi) -> Iterator[tuple[str, Callable[[], sp.Expr | None]]]:
        r"""The strategies for :math:`\int_{lo}^{hi} h\,dv`, most specific first."""
        if lo == -sp.oo and hi == sp.oo:
            kinks = kink_points(h, v)
            if kinks is not None and len(kinks) == 1:
                yield "a fold at a kink", lambda: self._folded(h, v, kinks[0], 0)
            elif kinks == []:
                if any(e.has(v) for e in h.atoms(sp.exp)):
                    yield "the substitution u = exp(-t)", lambda: self._exp_substituted(h, v)
                parity = _parity(h, v, self.point)
                if parity:
                    yield "a fold at 0", lambda: self._folded(h, v, sp.S.Zero, parity)
        if lo == 0 and any(e.has(v) for e in h.atoms(sp.log)):
            yield "moments in log x", lambda: self._mellin(h, v, hi)
        if not _special_in_denominator(h, v):
            yield "integration", lambda: definite(h, v, lo, hi)

    def _folded(self, h, v, at, parity: int) -> sp.Expr | None:
        r""":math:`\int_0^\infty h(r + w) + h(r - w)\,dw`; 0 for an odd integrand (checked after)."""
        if parity == -1:
            return sp.S.Zero
        if parity == 1:
            k = 2 * h.subs(v, _W)
        else:
            k = h.subs(v, at + _W) + h.subs(v, at - _W)
        return self._half_line(k, _W, sp.oo)

    def _half_line(self, k, w, hi) -> sp.Expr | None:
        if k.has(sp.log(w)):
            return self._mellin(k, w, hi)
        return definite(k, w, 0, hi)

    def _exp_substituted(self, h, v) -> sp.Expr | None:
        r""":math:`\int_{\mathbb R} h(t)\,dt = \int_0^\infty h(-\log u)\,du/u`, when that is a Mellin form."""
        k = sp.powsimp(sp.powdenest(h.subs(v, -sp.log(_U)) / _U))
        if any(e.has(sp.log(_U)) for e in k.atoms(sp.exp)):
            return None
        return self._half_line(k, _U, sp.oo)

    def _mellin(self, h, v, hi) -> sp.Expr | None:
        r""":math:`\int_0^{hi} a(v) \log^m v\,dv = m!\,[s^m] \int_0^{hi} a(v) v^s\,dv`, power by power."""
        log_v = sp.Dummy("L")
        h = sp.expand_log(h, force=True).xreplace({sp.log(v): log_v})
        if any(e.has(v) for e in h.atoms(sp.log)):
            return None
        if not h.is_polynomial(log_v):
            return None
        # the coefficient of L**m is the m-th derivative at L = 0 over m!: no expansion, so
        # denominators such as (1 + v**b)**3 stay as they are (Beta integrals need them)
        total, rest = sp.S.Zero, h
        for m in range(_MAX_LOG_POWER + 1):
            if rest == 0:
                break
            coeff = rest.subs(log_v, 0) / sp.factorial(m)
            rest = sp.diff(rest, log_v)
            if coeff == 0:
                continue
            moment = self._moment(sp.factor(coeff) if coeff.is_rational_function(v) else coeff, v, hi)
            if moment is None:
                return None
            total += derivative_at_zero(moment, m)
        else:
            if rest != 0:
                return None
        return closed_form(total)

    def _moment(self, a, v, hi) -> sp.Expr | None:
        key = (a, v, hi)
        if key not in self._moments:
            self._moments[key] = definite(a * v**S, v, sp.S.Zero, hi)
        return self._moments[key]

    def _by_log(self, h, x, lo, hi) -> sp.Expr | None:
        u = sp.Symbol("u", real=True)
        k = sp.powsimp(sp.expand_log(h.subs(x, sp.exp(u)) * sp.exp(u), force=True))
        ends = (sp.log(lo) if lo != 0 else -sp.oo, sp.log(hi) if hi != sp.oo else sp.oo)
        return integrate(k, u, *ends)
