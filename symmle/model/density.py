"""Numerical checks of a model's density: it is a density at a parameter point.

:func:`density_function` evaluates the density at fixed parameter values,
robustly: where its direct form over- or underflows, through the expanded
log-density, with an estimate of the rounding error to expect.
:func:`check_density` uses it to verify that the density is real, finite and
non-negative on the support and integrates (or sums) to one; a sum over a
support too wide to settle is reported as unverified (a warning), and a sum
whose terms carry large rounding errors is allowed that error.

A vector model's density is checked the same way at concrete dimensions
(:data:`VECTOR_CHECK_DIMENSIONS`), its matrices made explicit
(:mod:`symmle.model.explicit`) at a random admissible point: by cubature over
R^D, over the simplex (in its first D - 1 coordinates, the last one being 1
minus their sum), by the finite sum over the one-hot vectors, and over the
count vectors of each total in :data:`COUNT_TOTALS` (a pmf of counts is the
pmf given their total, as the multinomial's).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
from scipy import integrate

from symmle.base._runtime import EstimateWarning  # one definition, shared with generated modules
from symmle.base.budget import attempt, budget
from symmle.base.errors import DerivationTimeout, SpecError
from symmle.base.numeric import to_function
from symmle.base.quadrature import integrate_support, interior_points, probe_points, sum_support
from symmle.model.explicit import at_dimension, explicit_symbols, model_point

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = [
    "density_function",
    "check_density",
    "SERIES_TIMEOUT",
    "VECTOR_CHECK_DIMENSIONS",
    "COUNT_TOTALS",
]

#: Budget, in seconds, of SymPy's summation of a series too slow to sum numerically.
SERIES_TIMEOUT = 10.0
#: Where the closed form of the partial sums is checked against the terms (offsets from the support's start).
_PARTIAL_CHECKS = (0, 1, 7, 100, 10_000, 1_000_000)
#: The dimensions at which a vector model's density is checked (1 is skipped on the simplex: one point).
VECTOR_CHECK_DIMENSIONS = (2, 1)
#: The totals over whose count vectors a pmf of counts must sum to 1.
COUNT_TOTALS = (0, 1, 2, 3, 5)
# the seed of the point of a vector check: reproducible messages
_VECTOR_SEED = 20240612


def density_function(model: Model, point: Mapping[sp.Symbol, float]):
    """The density at ``point`` as a NumPy function of the variable.

    Where the direct form over- or underflows (``gamma(k + r)/factorial(k)``
    at large ``k``), the value comes from the expanded log-density instead.

    Parameters
    ----------
    model : Model
    point : mapping of Symbol to float
        Values of every parameter and constant (e.g. :meth:`~symmle.model.spec.Model.point`).

    Returns
    -------
    callable
        ``f(x)``: a float for a scalar ``x``, an array of the shape of ``x``
        otherwise.  Its attribute ``f.log(x)`` is the log-density (real,
        for arrays), and ``f.rounding(x)`` the relative rounding error to
        expect in ``f(x)``: ``eps`` times the size of the terms that cancel
        in ``log f`` (``loggamma(n + 1) - loggamma(x + 1) - ...`` at large ``n``).

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> m = load_model("exponential")
    >>> f = density_function(m, {m.parameters[0].symbol: 2.0})
    >>> round(f(0.5), 12)   # 2 exp(-1)
    0.735758882343
    >>> f(np.array([0.0, 1.0, 2.0])).shape
    (3,)
    """
    f_expr = model.density.subs(point)
    direct = to_function([model.variable], f_expr)
    log_expr = sp.expand_log(sp.log(f_expr), force=True)
    via_log = to_function([model.variable], log_expr)

    def f(x):
        with np.errstate(all="ignore"):
            x = np.asarray(x, dtype=float)
            # a real array even for a scalar x (0-d products give NumPy scalars)
            value = np.array(np.broadcast_to(np.asarray(direct(x), dtype=float), x.shape), dtype=float)
            # overflow (inf, nan) or underflow of a factor (0.35**3.5e6 * binomial(1e7, 3.5e6) = 0)
            bad = ~np.isfinite(value) | (value == 0)
            if np.any(bad):
                alt = np.exp(np.real(np.asarray(via_log(x[bad]), dtype=complex)) * np.ones_like(x[bad]))
                value[bad] = alt
            return value if value.ndim else float(value)

    def log_f(x):
        with np.errstate(all="ignore"):
            x = np.asarray(x, dtype=float)
            return np.real(np.asarray(via_log(x), dtype=complex)) * np.ones_like(x)

    size = []

    def rounding(x):
        if not size:  # compiled on first use: only a check that failed needs it
            t = sp.Dummy("t", real=True)  # not an integer: SymPy would fold loggamma(k + 1) back into a log
            logged = sp.expand_log(sp.log(f_expr.subs(model.variable, t).rewrite(sp.gamma)), force=True)
            size.append(to_function([t], sp.Add(*(sp.Abs(term) for term in sp.Add.make_args(logged)))))
        with np.errstate(all="ignore"):
            x = np.asarray(x, dtype=float)
            s = np.abs(np.real(np.asarray(size[0](x), dtype=complex))) * np.ones_like(x)
        return np.finfo(float).eps * np.where(np.isfinite(s), np.maximum(s, 1.0), 1.0)

    # the log-density locates the bulk of a sum where the density itself underflows
    f.log = log_f
    f.rounding = rounding
    return f


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def check_density(model: Model, *, timeout: float | None = SERIES_TIMEOUT) -> None:
    """Verify numerically that the density is a density at a parameter point.

    Checks that it is finite and non-negative inside the support and that it
    integrates (or sums) to one, at the point of :meth:`~symmle.model.spec.Model.point`.
    A vector model is checked at the dimensions :data:`VECTOR_CHECK_DIMENSIONS`,
    at a random admissible point of :func:`~symmle.model.explicit.model_point`
    (fixed seed), within ``timeout`` seconds for each dimension.

    A pmf whose series settles too slowly to be summed numerically (a
    tail ``0.01 k**-1.01``) is summed by SymPy instead
    (:func:`_series_sum`), within ``timeout`` seconds.

    Parameters
    ----------
    model : Model
    timeout : float or None, optional
        Budget of SymPy's summation, in seconds.

    Raises
    ------
    SpecError
        Naming the failed property and the point used.
    DerivationTimeout
        If a vector model's check at one dimension takes longer than ``timeout``.

    Examples
    --------
    >>> from symmle.model.build import inline_model, load_model
    >>> check_density(load_model("poisson"))   # passes: returns None
    >>> bad = inline_model("exp(-lam*x)", "x", "0,oo", ["lam:positive"], validate=False)
    >>> check_density(bad)   # the factor lam is missing: 1/1.7
    Traceback (most recent call last):
        ...
    symmle.SpecError: density does not integrate to 1 over its support: got 0.588235 at lam=1.7
    """
    if model.is_vector:
        for n in VECTOR_CHECK_DIMENSIONS:
            if n == 1 and model.support_set == "simplex":
                continue
            with budget(f"the density check at {model.dimension} = {n}", timeout):
                _check_vector_density(model, n)
        return
    point = model.point()
    where = ", ".join(f"{s}={v:g}" for s, v in point.items())
    try:
        lo, hi = model.support_at(point)
    except (TypeError, ValueError):
        raise SpecError("support does not evaluate to numbers at the check point " + where) from None
    if not lo < hi:
        raise SpecError(f"support [{lo:g}, {hi:g}] is empty or reversed at {where}")
    if model.discrete and not all(math.isinf(end) or float(end).is_integer() for end in (lo, hi)):
        raise SpecError(
            f"support ends of a discrete model must be integers (got [{lo:g}, {hi:g}] at {where})"
        )
    try:
        f = density_function(model, point)
    except Exception as exc:  # lambdify of an unsupported construct
        raise SpecError(f"density cannot be evaluated numerically: {_one_line(exc)}") from None
    if model.discrete:
        if math.isinf(lo):
            raise SpecError("a discrete support must have a finite lower end")
        probe = np.arange(lo, min(hi, lo + 200) + 1)
        if math.isfinite(hi) and hi > lo + 200:  # and across a long support, up to its top
            probe = np.union1d(probe, probe_points(int(lo), int(hi)))
    else:
        probe = np.asarray(interior_points(lo, hi, 41))
    with np.errstate(all="ignore"):
        direct = to_function([model.variable], model.density.subs(point))
        raw = np.asarray(direct(probe)) * np.ones(probe.shape)
    complex_at = np.flatnonzero(np.iscomplex(raw)) if np.iscomplexobj(raw) else ()
    if len(complex_at):
        k = complex_at[0]
        raise SpecError(f"density is not real: {raw[k]:.6g} at {model.variable}={probe[k]:g} ({where})")
    values = np.asarray(f(probe), dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < -1e-12))
    if bad.size:
        k = bad[0]
        kind = "negative" if np.isfinite(values[k]) else "not finite"
        raise SpecError(f"density is {kind} at {model.variable}={probe[k]:g} ({where})")
    if model.discrete:
        total, ok = sum_support(f, lo, hi, log_weight=f.log)
        if not ok and math.isfinite(hi):
            # a finite sum that could not be bounded is unverified, not wrong
            warnings.warn(
                f"the pmf could not be checked to sum to 1 over {model.variable}={lo:g}..{hi:g} "
                f"({where}): its sum over so wide a support did not settle",
                EstimateWarning,
                stacklevel=2,
            )
            return
        if not ok:
            total = _series_sum(model, f, int(lo), timeout)
            if total == math.inf:
                raise SpecError(f"density does not sum to 1 ({where}): the series diverges")
            if total is None:
                raise SpecError(
                    f"density could not be checked to sum to 1 ({where}): its series does not settle "
                    f"numerically, and SymPy finds no closed form of its partial sums within {timeout:g} s "
                    "(it may diverge)"
                )
    else:
        total, _ = integrate_support(f, lo, hi, log_weight=f.log)
    if not abs(total - 1.0) < 1e-6 and model.discrete:
        # the terms may be computed to fewer digits than that (log f cancelling terms of size 1e10):
        # the sum is then only as good as its terms
        precision, _ = sum_support(lambda k: f(k) * f.rounding(k), lo, hi, log_weight=f.log)
        if abs(total - 1.0) < 8 * precision:
            return
    if not math.isfinite(total):
        verb, noun = ("sum", "sum") if model.discrete else ("integrate", "integral")
        raise SpecError(f"density does not {verb} to 1 over its support: its {noun} is not finite at {where}")
    if not abs(total - 1.0) < 1e-6:
        verb = "sum" if model.discrete else "integrate"
        digits = 6 if abs(total - 1.0) > 1e-5 else 12  # never "got 1"
        raise SpecError(f"density does not {verb} to 1 over its support: got {total:.{digits}g} at {where}")


def _series_sum(model: Model, f, lo: int, timeout: float | None) -> float | None:
    """The sum of the pmf over ``lo, lo + 1, ...`` by SymPy: ``inf`` if it diverges, ``None`` if unknown.

    SymPy's closed form of the partial sums ``S(K)`` (a telescoping series
    ``k**-a - (k + 1)**-a`` gives ``1 - (K + 1)**-a``) is trusted only
    once it matches the terms summed one by one at several ``K`` (up to
    ``lo + 10**6``); the sum is then its limit, which proves convergence
    (or divergence: ``harmonic(K)`` tends to ``oo``).  The parameters
    take exact values (1.7 as 17/10), so SymPy can see the cancellation.
    """
    k = model.variable
    K = sp.Dummy("K", integer=True, positive=True)
    quantities = {q.symbol: q for q in (*model.parameters, *model.constants)}
    exact = {
        s: quantities[s].value if quantities[s].value is not None else sp.Rational(repr(v))
        for s, v in model.point().items()
    }
    term = model.density.subs(exact)

    def closed_form():
        partial = sp.summation(term, (k, lo, lo + K - 1))
        if partial.has(sp.Sum):
            return None
        # at a Float K: SymPy would sum harmonic(10**6) exactly, as a rational
        at = [complex(partial.subs(K, sp.Float(n + 1, 30)).evalf(20)) for n in _PARTIAL_CHECKS]
        return partial, at, sp.limit(partial, K, sp.oo)

    try:
        found, _ = attempt("sum of the pmf's series", timeout, closed_form)
    except DerivationTimeout:
        raise
    except Exception:  # SymPy failing on a construct it cannot sum: unknown, not an error of the model
        return None
    if found is None:
        return None
    _, at, limit = found
    direct = np.cumsum(np.asarray(f(np.arange(lo, lo + _PARTIAL_CHECKS[-1] + 1, dtype=float)), dtype=float))
    for n, value in zip(_PARTIAL_CHECKS, at):
        if not abs(value - direct[n]) <= 1e-8 * max(1.0, abs(direct[n])):
            return None  # SymPy's partial sums are not those of the terms
    if limit == sp.oo:
        return math.inf
    value = complex(sp.N(limit, 20)) if limit.is_number else complex("nan")
    return value.real if math.isfinite(value.real) and abs(value.imag) <= 1e-12 else None


def _show(value) -> str:
    """A number, a vector or a matrix as a spec writes it: ``0.5``, ``[1, 2]``, ``[[1, 0], [0, 1]]``."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return f"{float(a):.4g}"
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 1:
        return "[" + ", ".join(f"{v:.4g}" for v in a) + "]"
    return "[" + ", ".join(_show(row) for row in a) + "]"


def _compositions(total: int, parts: int):
    """The vectors of ``parts`` non-negative integers that sum to ``total``."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _check_vector_density(model: Model, n: int) -> None:
    """:func:`check_density` of a vector model at dimension ``n``.

    A matrix constant's given value (of its own dimension, checked to lie in its
    domain when given) is set aside: the density must be one at every admissible value.
    """
    constants = tuple(replace(q, value=None) if q.is_matrix else q for q in model.constants)
    model = replace(model, constants=constants)
    rng = np.random.default_rng(_VECTOR_SEED + n)
    point = model_point(model, n, rng)
    where = ", ".join(f"{s}={_show(v)}" for s, v in point.items())
    table = explicit_symbols(model, n)
    numbers = {s: sp.ImmutableMatrix(v) if np.ndim(v) else sp.Float(v, 17) for s, v in point.items()}
    numbers[model.dimension] = sp.Integer(n)
    numbers[model.variable] = table[model.variable]
    entries = list(table[model.variable])
    try:
        f_expr = at_dimension(model.density, numbers)
        fn = to_function(entries, f_expr)
    except DerivationTimeout:
        raise
    except Exception as exc:  # SymPy failing on a construct at a concrete dimension, or lambdify
        raise SpecError(f"density cannot be evaluated at {where}: {_one_line(exc)}") from None

    def f(points: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            columns = [np.asarray(points[:, k], dtype=float) for k in range(n)]
            return np.asarray(fn(*columns)) * np.ones(len(points))

    support = model.support_set
    if support == "real":
        probes = 2.0 * rng.normal(size=(64, n))
    elif support == "simplex":
        probes = rng.dirichlet(np.ones(n), size=64)
    elif support == "onehot":
        probes = np.eye(n)
    else:
        groups = [np.array(list(_compositions(t, n)), dtype=float) for t in COUNT_TOTALS]
        probes = np.concatenate(groups)
    try:
        values = f(probes)
    except Exception as exc:  # a function the numeric code lacks
        raise SpecError(f"density cannot be evaluated numerically at {where}: {_one_line(exc)}") from None
    if np.iscomplexobj(values) and np.any(np.iscomplex(values)):
        k = int(np.flatnonzero(np.iscomplex(values))[0])
        raise SpecError(f"density is not real at {model.variable}={_show(probes[k][:, None])} ({where})")
    values = np.real(values)
    bad = np.flatnonzero(~np.isfinite(values) | (values < -1e-12))
    if bad.size:
        k = int(bad[0])
        kind = "negative" if np.isfinite(values[k]) else "not finite"
        raise SpecError(f"density is {kind} at {model.variable}={_show(probes[k][:, None])} ({where})")

    def fail(over: str, verb: str, total: float) -> SpecError:
        digits = 6 if abs(total - 1.0) > 1e-5 else 12
        return SpecError(f"density does not {verb} to 1 over {over}: got {total:.{digits}g} at {where}")

    if support == "onehot":
        total = float(values.sum())
        if not abs(total - 1.0) < 1e-9:
            raise fail(f"the {n} one-hot vectors", "sum", total)
    elif support == "counts":
        for t, group in zip(COUNT_TOTALS, groups):
            total = float(np.real(f(group)).sum())
            if not abs(total - 1.0) < 1e-9:
                raise fail(f"the vectors of {n} counts with total {t}", "sum", total)
    elif support == "real":
        # adaptive cubature; a kink (Abs) keeps it from converging, but its estimate is then good to ~1e-8
        found = integrate.cubature(
            lambda xs: np.real(f(xs)), [-np.inf] * n, [np.inf] * n, rtol=1e-8, atol=0, max_subdivisions=1000
        )
        total, error = float(found.estimate), float(found.error)
        if not abs(total - 1.0) < 1e-6 and not abs(total - 1.0) > 10 * error:
            raise SpecError(
                f"density could not be checked to integrate to 1 over R^{n}: cubature gives {total:.6g} "
                f"with an error of up to {error:.2g} at {where}"
            )
        if not abs(total - 1.0) < 1e-6:
            raise fail(f"R^{n}", "integrate", total)
    else:
        total = _simplex_integral(lambda xs: np.real(f(xs)), n)
        if not abs(total - 1.0) < 1e-6:
            raise fail(f"the simplex of dimension {n}", "integrate", total)


def _simplex_integral(f, n: int) -> float:
    """The integral of ``f`` (of an (m, n) array of points) over the simplex, in its first n - 1 coordinates.

    At n = 2 by QUADPACK (which handles the endpoint singularities of a
    Dirichlet with a < 1); beyond, by cubature over the unit cube mapped onto
    the simplex by stick breaking (x_k = u_k (1 - u_1) ... (1 - u_{k-1})).
    """
    if n == 1:
        return float(f(np.ones((1, 1)))[0])
    if n == 2:
        total, _ = integrate.quad(lambda t: float(f(np.array([[t, 1.0 - t]]))[0]), 0.0, 1.0, limit=200)
        return float(total)

    def mapped(u: np.ndarray) -> np.ndarray:
        rest = np.cumprod(np.concatenate([np.ones((len(u), 1)), 1.0 - u], axis=1), axis=1)
        x = np.concatenate([u * rest[:, :-1], rest[:, -1:]], axis=1)
        return f(x) * np.prod(rest[:, 1:-1], axis=1)  # the Jacobian: prod_k (1 - u_1)...(1 - u_k), k < n - 1

    found = integrate.cubature(mapped, [0.0] * (n - 1), [1.0] * (n - 1), rtol=1e-10, atol=0)
    return float(found.estimate)
