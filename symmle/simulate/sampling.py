"""Drawing IID samples of a model at given parameter and constant values.

This is the one place in symmle that draws samples.  A model is sampled in
one of two ways, and the resulting :class:`ModelSampler` records which
(``kind``):

``"declared"``
    The family's ``[sampler]`` table: a whitelisted
    ``numpy.random.Generator`` method whose arguments (and optional transform
    of the raw draw) are SymPy expressions already parsed by
    :mod:`symmle.model.build`.  Nothing is ever evaluated as Python text.

``"generic"``
    Built from the density itself, for any model (every inline ``--pdf``
    model has no ``[sampler]``):

    * continuous: numerical inversion of the CDF by UNU.RAN's PINV
      (:class:`scipy.stats.sampling.NumericalInversePolynomial`), which
      interpolates the inverse CDF, integrated from the pdf, to a u-error
      ``|u - CDF(x)|`` below ``1e-10``.  PINV works in a coordinate ``y``
      where the density is smooth and bounded with exponential tails
      (``log(x - lo)`` on a half-line, the logit on an interval,
      ``asinh((x - c)/s)`` on the real line), so that a pole at an end
      (beta or gamma with shape below 1) or a power-law tail (Pareto, Levy)
      is an easy case.  If that fails, PINV is tried in ``x`` itself, and
      last a tabulated CDF in ``y`` inverted by monotone interpolation;
      otherwise a :class:`~symmle.base.errors.SymmleError` gives each reason;
    * discrete: the pmf tabulated on the support's integers, walking out
      from the mode until the mass left is negligible (an infinite support
      is cut where the remaining mass is below about ``1e-16``; the table
      must sum to 1 within ``1e-9``, or within its rounding error if that is
      larger), then sampled by a guide table
      (:class:`scipy.stats.sampling.DiscreteGuideTable`).

Every draw lies in the support: discrete draws are integers of the
support, continuous draws lie strictly inside it (a value rounded onto a
finite end is moved to the nearest float inside).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from scipy import interpolate, optimize
from scipy.special import expit, logit
from scipy.stats import sampling as unuran

from symmle.base._runtime import in_domain
from symmle.base.errors import SpecError, SymmleError
from symmle.base.numeric import to_function
from symmle.base.quadrature import integer_argmax
from symmle.model.spec import Model

__all__ = ["ModelSampler", "draw", "sampler"]

#: u-resolution asked of PINV (its maximal error ``|u - CDF(x)|``).
U_RESOLUTION = 1e-10
#: Budget of one PINV set-up: density evaluations (about 0.1 s) and seconds.
PINV_CALLS = 100_000
PINV_SECONDS = 0.4
#: A discrete support is cut where the mass left beyond a block is below this.
TAIL_MASS = 1e-16
#: A tabulated pmf must sum to 1 within this.
MASS_TOLERANCE = 1e-9
#: Largest number of support points tabulated for a discrete model.
MAX_POINTS = 1 << 23

_BIG = np.finfo(float).max


class ModelSampler:
    """Draws IID samples of one model at fixed parameter and constant values.

    Build one with :func:`sampler`; call it with a size and a generator.

    Attributes
    ----------
    model : Model
        The model sampled.
    values : dict of str to float
        The parameter and constant values, by name.
    kind : str
        ``"declared"`` (the family's ``[sampler]``) or ``"generic"`` (built
        from the density).
    method : str
        How draws are made, for reports: ``"numpy.random.Generator.gamma"``,
        ``"PINV in log(x - lo)"``, ``"PINV"`` (in ``x``), ``"tabulated CDF
        in ..."``, ``"guide table over k = 0..57"``.
    support : (float, float)
        The support at ``values``.
    """

    def __init__(
        self,
        model: Model,
        values: Mapping[str, float],
        kind: str,
        method: str,
        support: tuple[float, float],
        raw: Callable[[int | tuple[int, ...], np.random.Generator], np.ndarray],
    ) -> None:
        self.model = model
        self.values = dict(values)
        self.kind = kind
        self.method = method
        self.support = support
        self._raw = raw

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v:g}" for k, v in self.values.items())
        return f"<ModelSampler {self.model.name} ({vals}): {self.kind}, {self.method}>"

    def __call__(self, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draw an array of shape ``size``.

        Parameters
        ----------
        size : int or tuple of int
            Shape of the result, e.g. ``(reps, n)`` for ``reps`` samples of
            size ``n`` in one vectorised call.
        rng : numpy.random.Generator
            The source of randomness (the only one).

        Returns
        -------
        numpy.ndarray
            Float array of draws (integer-valued for a discrete model).

        Raises
        ------
        SymmleError
            If a declared sampler draws outside the support (a wrong spec).
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        x = np.asarray(self._raw(size, rng), dtype=float)
        return _inside(x, self.support, self.model, self.kind)


def sampler(model: Model, values: Mapping[str, float], *, generic: bool = False) -> ModelSampler:
    """A sampler of ``model`` at ``values``.

    Parameters
    ----------
    model : Model
        The model.
    values : mapping
        Parameter *and* constant values by name (a constant with a value
        fixed in the model may be left out).  SymPy symbols as keys are
        accepted too.
    generic : bool
        Build the generic sampler from the density even if the model
        declares a ``[sampler]``.

    Returns
    -------
    ModelSampler

    Raises
    ------
    SpecError
        A missing or unknown name, a value outside its domain, an empty
        support, or declared sampler arguments NumPy rejects.
    SymmleError
        If the generic sampler cannot be built (the message says why).

    Examples
    --------
    >>> import numpy as np
    >>> from symmle.model.build import inline_model, load_model
    >>> s = sampler(load_model("gamma"), {"a": 2.0, "b": 3.0})
    >>> s.kind, s.method
    ('declared', 'numpy.random.Generator.gamma')
    >>> s((2, 5), np.random.default_rng(0)).shape
    (2, 5)
    >>> lindley = inline_model("th**2/(1+th)*(1+x)*exp(-th*x)", "x", "0,oo", ["th:positive"])
    >>> g = sampler(lindley, {"th": 1.5})
    >>> g.kind
    'generic'
    >>> x = g(100_000, np.random.default_rng(1))
    >>> bool(abs(x.mean() - (2 + 1.5) / (1.5 * 2.5)) < 0.01)   # mean (th+2)/(th(th+1))
    True
    """
    vals = _values(model, values)
    point = {q.symbol: vals[q.name] for q in (*model.parameters, *model.constants)}
    support = _support(model, point, vals)
    if model.sampler is not None and not generic:
        method, raw = _declared(model, point, vals)
        return ModelSampler(model, vals, "declared", method, support, raw)
    build = _generic_discrete if model.discrete else _generic_continuous
    with np.errstate(all="ignore"):  # the density is probed at extreme points on purpose
        method, raw = build(model, point, vals, support)
    return ModelSampler(model, vals, "generic", method, support, raw)


def draw(
    model: Model,
    values: Mapping[str, float],
    size: int | tuple[int, ...],
    rng: np.random.Generator,
    *,
    generic: bool = False,
) -> np.ndarray:
    """Draw ``size`` IID values of ``model`` at ``values``: ``sampler(...)(size, rng)``.

    Examples
    --------
    >>> import numpy as np
    >>> from symmle.model.build import load_model
    >>> x = draw(load_model("poisson"), {"lam": 3.0}, 4, np.random.default_rng(0), generic=True)
    >>> x.dtype, bool(np.all(x == np.round(x)))
    (dtype('float64'), True)
    """
    return sampler(model, values, generic=generic)(size, rng)


# --------------------------------------------------------------------------
# values and support
# --------------------------------------------------------------------------


def _values(model: Model, values: Mapping[Any, Any]) -> dict[str, float]:
    """Every parameter and constant value by name, checked against its domain."""
    if not isinstance(values, Mapping):
        raise SpecError(f"values must be a mapping of name to number, not {type(values).__name__}")
    given: dict[str, Any] = {}
    for key, v in values.items():
        given[key.name if isinstance(key, sp.Symbol) else str(key)] = v
    quantities = (*model.parameters, *model.constants)
    names = {q.name for q in quantities}
    unknown = sorted(set(given) - names)
    if unknown:
        raise SpecError(f"unknown name '{unknown[0]}' for model {model.name}; it has {', '.join(q.name for q in quantities)}")
    out: dict[str, float] = {}
    for q in quantities:
        role = "parameter" if q in model.parameters else "constant"
        if q.name not in given:
            if q.value is None:
                raise SpecError(f"no value given for {role} '{q.name}' of model {model.name}")
            out[q.name] = float(q.value)
            continue
        raw = given[q.name]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, np.integer, np.floating, sp.Number)):
            raise SpecError(f"value of {role} '{q.name}' must be a number, not {raw!r}")
        v = float(raw)
        if not in_domain(v, q.domain):
            raise SpecError(f"value {v:g} of {role} '{q.name}' is not in its domain '{q.domain}'")
        if q.value is not None and not math.isclose(v, float(q.value), rel_tol=1e-12, abs_tol=1e-300):
            raise SpecError(f"constant '{q.name}' is fixed at {float(q.value):g} by the model; got {v:g}")
        out[q.name] = v
    return out


def _where(vals: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in vals.items())


def _support(model: Model, point: Mapping[sp.Symbol, float], vals: Mapping[str, float]) -> tuple[float, float]:
    try:
        lo, hi = model.support_at(point)
    except (TypeError, ValueError):
        raise SpecError(f"the support of {model.name} is not numeric at {_where(vals)}") from None
    if not lo < hi:
        raise SpecError(f"the support [{lo:g}, {hi:g}] of {model.name} is empty at {_where(vals)}")
    if model.discrete:
        if math.isinf(lo):
            raise SymmleError(f"cannot sample {model.name}: a discrete support needs a finite lower end")
        if not float(lo).is_integer() or not (math.isinf(hi) or float(hi).is_integer()):
            raise SpecError(f"the support [{lo:g}, {hi:g}] of discrete {model.name} has a non-integer end at {_where(vals)}")
    return lo, hi


def _inside(x: np.ndarray, support: tuple[float, float], model: Model, kind: str) -> np.ndarray:
    """Check draws against the support; move continuous draws rounded onto an end inside."""
    lo, hi = support
    if np.isnan(x).any():
        raise SymmleError(f"the {kind} sampler of {model.name} drew NaN")
    if model.discrete:
        bad = (x < lo) | (x > hi) | (x != np.round(x))
    else:
        bad = (x < lo) | (x > hi)
    if bad.any():
        raise SymmleError(f"the {kind} sampler of {model.name} drew {x[bad].flat[0]:g}, outside the support [{lo:g}, {hi:g}]")
    if not model.discrete:
        # an end of the support (also an infinite one) is not a value of the variable
        low = math.nextafter(lo, math.inf) if math.isfinite(lo) else -_BIG
        high = math.nextafter(hi, -math.inf) if math.isfinite(hi) else _BIG
        if low <= high:
            np.clip(x, low, high, out=x)
    return x


# --------------------------------------------------------------------------
# declared samplers
# --------------------------------------------------------------------------


def _declared(model: Model, point: Mapping[sp.Symbol, float], vals: Mapping[str, float]):
    s = model.sampler
    assert s is not None
    kwargs: dict[str, float] = {}
    for key, expr in s.args:
        value = expr.subs(point)
        try:
            number = float(value)
        except TypeError:
            number = math.nan
        if not math.isfinite(number):
            raise SpecError(f"sampler argument {key} = {expr} of {model.name} is not a finite real number at {_where(vals)}")
        kwargs[key] = number
    call = f"numpy.random.Generator.{s.method}({', '.join(f'{k}={v:g}' for k, v in kwargs.items())})"
    try:  # NumPy validates its arguments: ask it once, here, rather than at the first draw
        with np.errstate(all="ignore"):
            getattr(np.random.default_rng(0), s.method)(**kwargs, size=1)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SpecError(f"sampler of {model.name}: {call} is invalid at {_where(vals)}: {exc}") from None
    transform = None
    if s.transform is not None:
        raw_symbol = s.draw if s.draw is not None else model.variable
        transform = to_function([raw_symbol], s.transform.subs(point))
    method = s.method  # one of symmle.model.spec.SAMPLER_METHODS

    def raw(size, rng):
        x = np.asarray(getattr(rng, method)(**kwargs, size=size), dtype=float)
        if transform is not None:
            with np.errstate(all="ignore"):
                x = np.asarray(transform(x), dtype=float) * np.ones_like(x)
        return x

    return f"numpy.random.Generator.{method}", raw


# --------------------------------------------------------------------------
# the density as fast scalar and vector functions
# --------------------------------------------------------------------------


class _Density:
    """The density at fixed values, for one float (fast: PINV calls it thousands of times) and for arrays.

    Where the direct form over- or underflows (``x**(a-1)*exp(-b*x)`` at
    large ``a``, ``exp(-lam)*lam**k`` at large ``lam``), the value comes from
    the expanded log-density, as in :func:`symmle.model.density.density_function`.
    """

    def __init__(self, model: Model, point: Mapping[sp.Symbol, float]) -> None:
        # a plain real variable: with an integer one SymPy turns loggamma(k + 1) back into
        # log(gamma(k + 1)), which overflows beyond k = 170
        t = sp.Dummy("t", real=True)
        f_expr = model.density.subs(point).subs(model.variable, t)
        self._direct = to_function([t], f_expr)
        # binomial(n, k) and factorial(k) as gamma functions, so that their logs become loggamma
        log_f = sp.expand_log(sp.log(f_expr.rewrite(sp.gamma)), force=True)
        self._logged = to_function([t], log_f)
        #: the size of what cancels in log f: its rounding error is about eps times this
        self._log_size = to_function([t], sp.Add(*(sp.Abs(term) for term in sp.Add.make_args(log_f))))

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The density at each ``x``, as computed (possibly negative or NaN: for checks)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        with np.errstate(all="ignore"):
            v = np.real(np.asarray(self._direct(x))).astype(float) * np.ones_like(x)
            bad = ~np.isfinite(v) | (v == 0)  # overflow, or underflow of a factor (exp(-700)*700**k)
            if bad.any():
                v[bad] = np.exp(np.real(np.asarray(self._logged(x[bad]))).astype(float) * np.ones_like(x[bad]))
        return v

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The density at each ``x``; 0 where it is not a finite non-negative number."""
        v = self.raw(x)
        return np.where(np.isfinite(v) & (v > 0), v, 0.0)

    def rounding(self, x: float) -> float:
        """Relative rounding error to expect in the density at ``x``."""
        with np.errstate(all="ignore"):
            size = float(np.real(self._log_size(x)))
        return np.finfo(float).eps * (size if math.isfinite(size) else 1.0)

    def at(self, x: float) -> float:
        """The density at one float; 0 where it is not finite (a pole: PINV needs a bounded pdf)."""
        try:  # plain floats: several times faster than arrays
            v = float(self._direct(x))
        except (ArithmeticError, ValueError, TypeError):  # 0.0**-1.5 raises on Python floats
            v = math.nan
        if not (math.isfinite(v) and v > 0):
            try:
                v = math.exp(float(self._logged(x)))
            except (ArithmeticError, ValueError, TypeError):
                v = math.nan
        return v if math.isfinite(v) and v > 0 else 0.0


# --------------------------------------------------------------------------
# continuous: PINV in a smooth coordinate y, else in x, else a table
# --------------------------------------------------------------------------


def _generic_continuous(model: Model, point, vals, support):
    lo, hi = support
    f = _Density(model, point)
    xc, scale = _center(f, lo, hi, vals)
    coord = _Coordinate(lo, hi, xc, scale)
    log_g = _log_density_in(coord, f)
    yc = coord.y(xc)

    def pdf_y(y: float) -> float:
        return math.exp(log_g(y))

    if math.isinf(lo) and math.isinf(hi):
        # on the real line no point is special: invert around the centre, so that a narrow
        # peak far from 0 keeps its digits (PINV works with absolute tolerances in x)
        natural = ("PINV", lambda: _pinv(lambda u: f.at(xc + u), (-math.inf, math.inf), 0.0), lambda u: xc + u)
    else:
        natural = ("PINV", lambda: _pinv(f.at, (lo, hi), xc), lambda x: x)
    smooth = (f"PINV in {coord.name}", lambda: _pinv(pdf_y, (-math.inf, math.inf), yc), coord.x)
    # y first: there the density is smooth and bounded with exponential tails.  In x, a pole
    # at an end, a heavy tail, or a peak narrow next to its distance from an end is PINV's hard
    # case, which it may spend minutes on (beta with a = 1e6) beyond the reach of any budget
    attempts = [smooth, natural]
    reasons = []
    for name, build, to_x in attempts:
        gen, why = build()
        if gen is not None:
            return name, _pinv_draws(gen, to_x)
        reasons.append(f"{name}: {why}")
    table, why = _tabulated(log_g, yc)
    if table is not None:
        return f"tabulated CDF in {coord.name}", lambda size, rng: coord.x(table(rng.random(size)))
    reasons.append(f"tabulated CDF in {coord.name}: {why}")
    raise SymmleError(f"cannot build a sampler for {model.name} at {_where(vals)}: " + "; ".join(reasons))


def _pinv_draws(gen, to_x):
    def raw(size, rng):
        return to_x(np.asarray(gen.rvs(size=size, random_state=rng), dtype=float))

    return raw


class _Coordinate:
    """A smooth increasing map ``x = T(y)`` from the real line onto ``(lo, hi)``.

    In ``y`` a pole at a finite end (``x**(a-1)``, ``a < 1``) and a power-law
    tail (Pareto, Levy) become exponential tails, which PINV handles well:
    ``y = log(x - lo)`` on a half-line, the logit on an interval, and
    ``y = asinh((x - c)/s)`` on the real line (``c`` the centre, ``s`` the width).
    """

    def __init__(self, lo: float, hi: float, center: float, scale: float) -> None:
        self.lo, self.hi, self.center, self.scale = lo, hi, center, scale
        if math.isfinite(lo) and math.isfinite(hi):
            self.name = "logit((x - lo)/(hi - lo))"
        elif math.isfinite(lo):
            self.name = "log(x - lo)"
        elif math.isfinite(hi):
            self.name = "-log(hi - x)"
        else:
            self.name = "asinh((x - c)/s)"

    def x(self, y: np.ndarray) -> np.ndarray:
        """``T(y)`` for an array (the draws)."""
        lo, hi = self.lo, self.hi
        y = np.asarray(y, dtype=float)
        with np.errstate(all="ignore"):
            if math.isfinite(lo) and math.isfinite(hi):
                w = hi - lo
                return np.where(y <= 0, lo + w * expit(y), hi - w * expit(-y))
            if math.isfinite(lo):
                return lo + np.exp(y)
            if math.isfinite(hi):
                return hi - np.exp(-y)
            return self.center + self.scale * np.sinh(y)

    def x1(self, y: float) -> tuple[float, float]:
        """``(T(y), log T'(y))`` for one float, with ``math`` only."""
        lo, hi = self.lo, self.hi
        a = abs(y)
        if math.isfinite(lo) and math.isfinite(hi):
            e = math.exp(-a)  # expit(-|y|) = e/(1 + e), without overflow
            t = e / (1 + e)
            x = lo + (hi - lo) * t if y <= 0 else hi - (hi - lo) * t
            return x, math.log(hi - lo) - a - 2 * math.log1p(e)
        if a > 709:
            inf = math.copysign(math.inf, y)
            if math.isfinite(lo):
                return (lo + math.exp(y) if y < 0 else inf), y
            if math.isfinite(hi):
                return (hi - math.exp(-y) if y > 0 else inf), -y
            return self.center + self.scale * inf, a
        if math.isfinite(lo):
            return lo + math.exp(y), y
        if math.isfinite(hi):
            return hi - math.exp(-y), -y
        return self.center + self.scale * math.sinh(y), math.log(self.scale) + a + math.log1p(math.exp(-2 * a)) - math.log(2)

    def y(self, x: float) -> float:
        """``T^-1(x)``."""
        lo, hi = self.lo, self.hi
        if math.isfinite(lo) and math.isfinite(hi):
            return float(logit((x - lo) / (hi - lo)))
        if math.isfinite(lo):
            return math.log(x - lo)
        if math.isfinite(hi):
            return -math.log(hi - x)
        return math.asinh((x - self.center) / self.scale)


def _log_density_in(coord: _Coordinate, f: _Density) -> Callable[[float], float]:
    """``log g(y)``, the log density of ``y``, for one float.

    Near a finite end ``x`` runs out of digits (``1 - x`` is 0 below 1e-16),
    while ``y`` does not: a density with a pole there (a beta with ``b = 0.1``
    has 1 % of its mass within 1e-16 of 1) would lose that mass, and the
    rounding of ``x`` makes ``g`` noisy before that.  So where ``|x - end|``
    falls below ``2**-17 |end|`` (or 1e-300 at an end 0), ``log g`` is
    continued as it is for any power law ``|x - end|**(b-1)`` times a smooth
    factor (linearly, with a correction decaying like ``|x - end|``); the
    draws there round onto the floats next to the end, which is where they
    belong.
    """
    lo, hi = coord.lo, coord.hi

    def raw(y: float) -> float:
        x, log_jac = coord.x1(y)
        if not lo < x < hi:
            return -math.inf
        v = f.at(x)
        return math.log(v) + log_jac if v > 0 else -math.inf

    tails = []  # (side, y at the cut, log g there, limiting slope, correction)
    for side, end in ((1, hi), (-1, lo)):
        if not math.isfinite(end):
            continue
        # rounding x to floats near `end` puts noise of ulp(end)/|x - end| into the density: keep
        # that below 1e-11 (PINV integrates to 1e-10); and stay within 1/1024 of the distance from
        # the end to the centre, so that the peak itself is never extrapolated
        near = max(min(abs(end) * 2.0**-17, abs(coord.center - end) * 2.0**-10), 1e-300)
        a, b = coord.y(coord.center), side * 800.0  # the centre is far from the end; 800 is past it
        if abs(coord.x1(b)[0] - end) > near:
            continue
        for _ in range(100):  # bisection for the y where x comes within `near` of the end
            m = (a + b) / 2
            if abs(coord.x1(m)[0] - end) > near:
                a = m
            else:
                b = m
        # the slope of log g tends to a constant s at the end (a power law), with a correction
        # K*exp(-side*(y - cut)) in proportion to the distance to the end (the other, smooth
        # factors of the density): two finite differences give both, and the continuation is
        # log g(cut) + s*(y - cut) + side*K*(1 - exp(-side*(y - cut)))
        l0, l1, l2 = raw(a), raw(a - side), raw(a - 2 * side)
        d1, d2 = (l0 - l1) * side, (l1 - l2) * side
        e1 = math.e - 1
        k = (d2 - d1) / e1**2
        slope = d1 - k * e1
        if all(map(math.isfinite, (l0, l1, l2))) and slope * side < 0:
            tails.append((side, a, l0, slope, k))
        else:
            tails.append((side, a, -math.inf, 0.0, 0.0))

    def log_g(y: float) -> float:
        for side, cut, value, slope, k in tails:
            t = (y - cut) * side
            if t > 0:
                return value + slope * (y - cut) + side * k * -math.expm1(-t)
        return raw(y)

    return log_g


def _grid(lo: float, hi: float, vals: Mapping[str, float]) -> np.ndarray:
    """Points inside ``(lo, hi)`` spread over scales 1e-13 .. 1e13, plus points derived from the values.

    A density's mass may sit anywhere; its location is often a value, a
    ratio or a product of values (``mu``, ``a/b``), so those are tried too,
    which finds peaks narrower than the grid's spacing.
    """
    t = np.linspace(-30.0, 30.0, 601)
    if math.isfinite(lo) and math.isfinite(hi):
        base = lo + (hi - lo) * expit(t)
    elif math.isfinite(lo):
        base = lo + np.exp(t)
    elif math.isfinite(hi):
        base = hi - np.exp(t)
    else:
        base = np.concatenate([-np.exp(t), [0.0], np.exp(t)])
    d = _derived(vals)
    extra = [d, -d]
    for end in (lo, hi):
        if math.isfinite(end):
            extra += [end + d, end - d]
    pts = np.concatenate([base, *extra])
    return np.unique(pts[np.isfinite(pts) & (pts > lo) & (pts < hi)])


def _derived(vals: Mapping[str, float]) -> np.ndarray:
    """Numbers made of the values where a distribution's mass often sits: ``v``, ``1/v``, ``sqrt(v)``, ``v*w``, ``v/w``."""
    signed = np.array([a for a in vals.values() if math.isfinite(a)], dtype=float)
    v = np.abs(signed[signed != 0])
    return np.concatenate([signed, v, 1 / v, np.sqrt(v), np.outer(v, v).ravel(), np.divide.outer(v, v).ravel()])


def _center(f: _Density, lo: float, hi: float, vals: Mapping[str, float]) -> tuple[float, float]:
    """``(x, scale)``: a point of high probability and the width of the mass around it.

    The point maximises the density per unit of ``log(x - lo)`` (of the
    logit on an interval), not the density itself, so that a pole at an
    end, where the density is largest but the mass small, is not chosen.
    """

    def score(x: np.ndarray) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        with np.errstate(all="ignore"):
            s = np.log(f(x))
            if math.isfinite(lo):
                s = s + np.log(x - lo)
            if math.isfinite(hi):
                s = s + np.log(hi - x)
        return np.where(np.isfinite(s), s, -np.inf)

    xs = _grid(lo, hi, vals)
    if xs.size == 0:
        raise SymmleError(f"the support [{lo:g}, {hi:g}] has no room for a sample")
    s = score(xs)
    i = int(np.argmax(s))
    if not np.isfinite(s[i]):
        raise SymmleError("the density is zero (or not finite) everywhere it was evaluated in the support")
    best, top = float(xs[i]), float(s[i])
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, xs.size - 1)]
    if a < b:
        res = optimize.minimize_scalar(lambda x: -score(x)[0], bounds=(a, b), method="bounded", options={"xatol": 1e-10 * max(abs(best), 1e-300)})
        if np.isfinite(res.fun) and -res.fun > top:
            best, top = float(res.x), float(-res.fun)
    # width: the nearest distance at which the score falls by 2
    span = max(abs(best), 1.0)
    ds = np.geomspace(1e-14 * span, 1e14 * span, 281)
    drop = (score(np.concatenate([best + ds, best - ds])) < top - 2).reshape(2, -1).any(axis=0)
    scale = float(ds[np.argmax(drop)]) if drop.any() else span
    return best, scale


class _Pdf:
    """The distribution object handed to UNU.RAN: the pdf, on a budget.

    PINV may refine its intervals for minutes on a density it cannot
    handle; an exception from the pdf stops it (though UNU.RAN may spin on
    for a while before it notices: the budget is not a hard time limit).
    """

    def __init__(self, pdf: Callable[[float], float]) -> None:
        self._pdf, self._left = pdf, PINV_CALLS
        self._deadline = time.perf_counter() + PINV_SECONDS

    def pdf(self, x: float) -> float:
        self._left -= 1
        if self._left < 0 or time.perf_counter() > self._deadline:
            raise _OutOfBudget
        return self._pdf(x)


class _OutOfBudget(Exception):
    pass


def _pinv(pdf: Callable[[float], float], domain: tuple[float, float], center: float):
    """A PINV generator, or ``None`` and the reason it could not be set up."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            gen = unuran.NumericalInversePolynomial(_Pdf(pdf), domain=domain, center=center, u_resolution=U_RESOLUTION)
        except _OutOfBudget:
            return None, f"no inverse to u-error {U_RESOLUTION:g} within {PINV_CALLS} evaluations of the density or {PINV_SECONDS:g} s"
        except (RuntimeError, ArithmeticError, ValueError, TypeError) as exc:  # UNURANError is a RuntimeError
            return None, _unuran_message(exc)
    # a warning that the inverse may miss the requested accuracy counts as a failure
    serious = [str(w.message) for w in caught if "center moved" not in str(w.message)]
    if serious:
        return None, _unuran_message(serious[0])
    return gen, ""


def _unuran_message(exc: Any) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.split("] ", 1)[-1]  # drop UNU.RAN's "[objid: PINV.003] 51 :" prefix


def _tabulated(log_g: Callable[[float], float], yc: float):
    """Inverse CDF in ``y`` from the density tabulated and integrated by Gauss-Legendre.

    Returns ``(inverse, "")``, or ``(None, reason)`` if the table misses
    mass (the density in ``y`` does not decay, or has a gap).
    """
    log_gv = np.vectorize(log_g, otypes=[float])
    top = log_g(yc)
    if not math.isfinite(top):
        return None, "the density is zero at its centre"
    ends = []
    for side in (-1.0, 1.0):  # walk out until the density in y is e**-50 of its top
        step, y = 0.25, yc
        while not (log_g(y) < top - 50 and log_g(y + side * step) < top - 50):
            y += side * step
            step *= 1.5
            if abs(y - yc) > 1e4:
                return None, "the density does not decay in y (tail too heavy)"
        ends.append(y)
    edges = np.linspace(ends[0], ends[1], 4097)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    ys = mid[:, None] + half[:, None] * nodes[None, :]
    g = np.exp(log_gv(ys) - top)
    mass = (g * weights).sum(axis=1) * half
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    # the density integrates to 1: a gap that stopped the walk, or a cut tail, shows here
    total = float(cdf[-1]) * math.exp(top)
    if not abs(total - 1) < 1e-6:
        return None, f"the table holds mass {total:.8g}, not 1 (a gap in the support, or a heavy tail)"
    cdf /= cdf[-1]
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    return interpolate.PchipInterpolator(cdf[keep], edges[keep]), ""


# --------------------------------------------------------------------------
# discrete: the pmf tabulated from its mode outwards
# --------------------------------------------------------------------------


def _generic_discrete(model: Model, point, vals, support):
    lo, hi = support
    f = _Density(model, point)
    where = f"{model.name} at {_where(vals)}"

    def pmf(ks: np.ndarray) -> np.ndarray:
        p = f.raw(ks)
        bad = ~np.isfinite(p) | (p < 0)
        if bad.any():
            what = "negative" if np.isfinite(p[bad][0]) else "not finite"
            raise SymmleError(f"cannot sample {where}: the pmf is {what} at {model.variable}={ks[bad][0]:g}")
        return p

    mode = _discrete_mode(f, lo, hi, vals)
    # walk out from the mode in blocks of doubling length: the mass beyond a block whose own
    # mass is below TAIL_MASS is as small, for any tail that decays at least like a power
    left: list[np.ndarray] = []
    right = [pmf(np.array([mode]))]
    count = 1
    for sign, blocks in ((1, right), (-1, left)):
        start, size = mode + sign, 256
        while lo <= start <= hi:
            end = min(start + size - 1, hi) if sign > 0 else max(start - size + 1, lo)
            ks = np.arange(start, end + sign, sign, dtype=float)
            p = pmf(ks)
            blocks.append(p if sign > 0 else p[::-1])
            count += ks.size
            if p.sum() < TAIL_MASS:
                break
            if count > MAX_POINTS:
                raise SymmleError(
                    f"cannot sample {where}: more than {MAX_POINTS} support points carry mass (the pmf at "
                    f"{model.variable}={end:g} is still {p[-1]:.3g}): the tail is too heavy or the spread too wide to tabulate"
                )
            start, size = end + sign, min(size * 2, 1 << 20)
    first = mode - sum(b.size for b in left)
    probs = np.concatenate([*left[::-1], *right])
    total = float(probs.sum())
    tolerance = max(MASS_TOLERANCE, 64 * f.rounding(mode))
    if not abs(total - 1.0) <= tolerance:
        raise SymmleError(
            f"cannot sample {where}: the pmf sums to {total:.12g} over {model.variable}={first:g}..{first + probs.size - 1:g}, "
            f"not 1 within {tolerance:.2g} (is it normalised at these values?)"
        )
    nz = np.flatnonzero(probs > 0)  # drop ends that underflow, so every index the table returns carries mass
    probs = probs[nz[0] : nz[-1] + 1]
    first, last = first + nz[0], first + nz[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            table = unuran.DiscreteGuideTable(probs / probs.sum())
        except (RuntimeError, ValueError) as exc:  # UNURANError is a RuntimeError
            raise SymmleError(f"cannot sample {where}: guide table: {_unuran_message(exc)}") from None

    def raw(size, rng):
        return first + np.asarray(table.rvs(size=size, random_state=rng), dtype=float)

    return f"guide table over {model.variable} = {int(first)}..{int(last)}", raw


def _discrete_mode(f: _Density, lo: float, hi: float, vals: Mapping[str, float]) -> float:
    """An integer where the pmf is largest.

    The pmf is tried at ``lo`` plus a geometric grid of offsets and at
    integers near numbers made of the values (``n*p``, ``lam``), then a
    ternary search runs between the best point's neighbours (taking the pmf
    to be unimodal there).
    """
    top = hi if math.isfinite(hi) else lo + 2.0**52
    d = _derived(vals)
    d = np.abs(d[np.isfinite(d) & (np.abs(d) < 2.0**52)])
    offsets = np.unique(np.floor(np.geomspace(1.0, 2.0**52, 400))) - 1
    ks = np.concatenate([lo + offsets, np.floor(d), np.ceil(d), lo + np.floor(d)])
    ks = np.unique(ks[(ks >= lo) & (ks <= top)])
    p = f(ks)
    i = int(np.argmax(p))
    if not p[i] > 0:
        raise SymmleError("the pmf is zero everywhere it was evaluated in the support")
    best, p_best = ks[i], p[i]
    k, p_k = integer_argmax(f, ks[max(i - 1, 0)], ks[min(i + 1, ks.size - 1)])
    return k if p_k > p_best else float(best)
