r"""The distribution function of a fitted scalar model, evaluated for many parameter values at once.

Goodness-of-fit statistics need :math:`F(x_{(i)};\hat\theta)` at the sorted data and, for the
parametric bootstrap, at every replicate's own estimate: an array of rows, each with its own
parameters.  :func:`distribution_function` builds a :class:`DistributionFunction` that does this
for any scalar family:

``closed_form``
    :math:`F(x) = \int_{lo}^{x} f(u)\,du` and :math:`S(x) = \int_{x}^{hi} f(u)\,du` derived by
    SymPy under a time budget (:math:`S = 1 - F` where the second integral has no closed form),
    and each checked against quadrature of the density at the fitted parameters and at the model's
    own point before it is used.  A form that fails its check is not used.
``quadrature``
    No closed form (or none that passed): the density is integrated between consecutive order
    statistics by Gauss-Legendre rules of 5 and 10 nodes, vectorised over all rows; a gap where
    the two rules disagree is integrated again by :func:`scipy.integrate.quad`, and the two tails
    (below the smallest and above the largest value of each row) by
    :func:`symmle.base.quadrature.integrate_support`.  ``F`` is the lower tail plus the running
    sum of the gaps, ``S`` the upper tail plus the running sum from the top, so both keep their
    relative accuracy in their own tail (the Anderson-Darling statistic takes both logarithms).
``summation`` (discrete models)
    The mass function tabulated from the lower end of the support to the largest value, for all
    rows at once, and summed.

The constants of the model are fixed at their values when the function is built.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from scipy import integrate

from symmle.base.budget import attempt
from symmle.base.errors import DataError, DerivationError, DerivationTimeout
from symmle.base.numeric import to_function
from symmle.base.quadrature import integrate_support, interior_points, mass_cuts
from symmle.model.spec import Model

__all__ = [
    "CDF_TIMEOUT",
    "DistributionFunction",
    "QuantileFunction",
    "distribution_function",
    "quantile_function",
]

#: Budget in seconds of each symbolic integral (F, then S).
CDF_TIMEOUT = 8.0
#: Budget in seconds of solving ``F(x) = u`` for ``x``.
QUANTILE_TIMEOUT = 8.0
#: Probabilities at which a quantile function is checked: ``F(Q(u)) = u`` (``S(Q(u)) = 1 - u`` above 1/2).
QUANTILE_CHECK_U = (
    1e-8,
    1e-5,
    1e-3,
    0.02,
    0.1,
    0.25,
    0.4,
    0.5,
    0.6,
    0.75,
    0.9,
    0.98,
    1 - 1e-3,
    1 - 1e-5,
    1 - 1e-8,
)
#: Relative agreement a quantile function must reach there.
QUANTILE_RTOL = 1e-7
#: Relative agreement a closed form must reach with quadrature of the density.
CHECK_RTOL = 1e-7
#: Values of the mass function tabulated at once (rows x values), for a discrete model.
TABLE_CELLS = 1 << 22
#: Largest number of values of a discrete model's table.
MAX_VALUES = 10**7

_G5 = np.polynomial.legendre.leggauss(5)
_G10 = np.polynomial.legendre.leggauss(10)


@dataclass(frozen=True)
class DistributionFunction:
    """``F`` and ``S = 1 - F`` of one model, at rows of data with a parameter value per row.

    Attributes
    ----------
    model : Model
        The model (its constants fixed at ``constants``).
    method : str
        ``"closed_form"``, ``"quadrature"`` or ``"summation"``.
    cdf_expr, sf_expr : sympy expressions or None
        The closed forms of ``F`` and ``S`` (``closed_form`` only).
    note : str
        Why there is no closed form (empty otherwise).
    """

    model: Model
    constants: dict[str, float]
    method: str
    cdf_expr: sp.Expr | None = None
    sf_expr: sp.Expr | None = None
    note: str = ""
    _fns: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def parameters(self) -> list[str]:
        return [q.name for q in self.model.parameters]

    # ------------------------------------------------------------------ helpers
    def _args(self, values: Mapping[str, Any], rows: int) -> list[np.ndarray]:
        """Parameter values as ``(rows, 1)`` columns, in the model's order."""
        out = []
        for name in self.parameters:
            v = np.asarray(values[name], dtype=float).reshape(-1)
            out.append(np.broadcast_to(v, (rows,)).reshape(rows, 1))
        return out

    def _fixed(self) -> dict[sp.Symbol, float]:
        return {q.symbol: self.constants[q.name] for q in self.model.constants}

    def density(self, x: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        """The density (or mass) at ``x`` (rows), parameters by row."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        fn = self._fns.get("pdf")
        if fn is None:
            m = self.model
            fn = to_function([m.variable, *m.parameter_symbols], m.density.subs(self._fixed()))
            self._fns["pdf"] = fn
        with np.errstate(all="ignore"):
            out = np.asarray(fn(x, *self._args(values, x.shape[0])), dtype=float) * np.ones_like(x)
        return np.where(np.isfinite(out) & (out > 0), out, 0.0)

    def support(self, values: Mapping[str, Any], rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The ends of the support, one per row."""
        m = self.model
        ends = []
        for e in m.support:
            e = sp.sympify(e).subs(self._fixed())
            if e.free_symbols:
                fn = to_function(list(m.parameter_symbols), e)
                with np.errstate(all="ignore"):
                    v = np.asarray(fn(*[a[:, 0] for a in self._args(values, rows)]), dtype=float)
            else:
                v = np.asarray(float(e))
            ends.append(np.broadcast_to(v, (rows,)).astype(float))
        return ends[0], ends[1]

    # ------------------------------------------------------------------ continuous
    def __call__(
        self,
        xs: np.ndarray,
        values: Mapping[str, Any],
        out: tuple[np.ndarray, np.ndarray] | None = None,
        *,
        sorted_rows: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(F, S)`` at ``xs`` (a row of sorted data per parameter value), each clipped to [0, 1].

        Parameters
        ----------
        xs : ndarray (rows, n)
            Each row sorted in increasing order.
        values : mapping of str to array (rows,) or float
            The parameter values of each row.
        out : (ndarray, ndarray), optional
            Buffers of the shape of ``xs`` for ``F`` and ``S`` (a closed form is then evaluated
            into them by :class:`symmle.numbers.kernel.Kernel`, without temporaries).
        sorted_rows : bool
            With ``out``: the rows are sorted, so that ``F`` need be evaluated on the lower half of
            each row only and ``S`` on the upper (each complement by subtraction where exact enough).
        """
        xs = np.atleast_2d(np.asarray(xs, dtype=float))
        if self.model.discrete:
            raise DerivationError("a discrete model's distribution function is a table: use .table()")
        if self.method == "closed_form" and out is not None:
            if "cdf_kernel" not in self._fns:
                from symmle.numbers.kernel import Kernel

                syms = [self.model.variable, *self.model.parameter_symbols]
                self._fns["cdf_kernel"] = Kernel(syms, self.cdf_expr)
                self._fns["sf_kernel"] = Kernel(syms, self.sf_expr)
            args = self._args(values, xs.shape[0])
            F, S = out
            kf, ks = self._fns["cdf_kernel"], self._fns["sf_kernel"]
            n = xs.shape[1]
            c = n // 2
            whole = True
            if sorted_rows and n >= 2:
                # F on the lower half of each row, S on the upper, each complement by subtraction
                # where it keeps its digits (S = 1 - F while F <= 0.9, F = 1 - S while S <= 0.9):
                # one evaluation of a closed form per value.  F increases along a sorted row.
                kf(F[:, :c], xs[:, :c], *args)
                ks(S[:, c:], xs[:, c:], *args)
                if np.all(F[:, c - 1] <= 0.9) and np.all(S[:, c] <= 0.9):
                    np.subtract(1.0, F[:, :c], out=S[:, :c])
                    np.subtract(1.0, S[:, c:], out=F[:, c:])
                    whole = False
                else:
                    kf(F[:, c:], xs[:, c:], *args)
                    ks(S[:, :c], xs[:, :c], *args)
            else:
                kf(F, xs, *args)
                ks(S, xs, *args)
            ends = (F[:, 0], F[:, -1], S[:, 0], S[:, -1])
            if whole or not all(np.all((e >= 0.0) & (e <= 1.0)) for e in ends):
                for a in (F, S):  # the clip of np.clip, as two plain ufuncs (faster)
                    np.maximum(a, 0.0, out=a)
                    np.minimum(a, 1.0, out=a)
            # else: a sorted row's F and S are monotone, so their ends bound them: nothing to clip
            return F, S
        if self.method == "closed_form":
            if "cdf" not in self._fns:
                syms = [self.model.variable, *self.model.parameter_symbols]
                self._fns["cdf"] = to_function(syms, self.cdf_expr)
                self._fns["sf"] = to_function(syms, self.sf_expr)
            args = self._args(values, xs.shape[0])
            with np.errstate(all="ignore"):
                F = _full(self._fns["cdf"](xs, *args), xs.shape)
                S = _full(self._fns["sf"](xs, *args), xs.shape)
        else:
            F, S = self._quadrature(xs, values)
        return np.clip(F, 0.0, 1.0, out=F), np.clip(S, 0.0, 1.0, out=S)

    def _quadrature(self, xs: np.ndarray, values: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        rows, n = xs.shape
        lo, hi = self.support(values, rows)
        gaps = np.zeros((rows, max(n - 1, 0)))
        if n > 1:
            a, b = xs[:, :-1], xs[:, 1:]
            half, mid = (b - a) / 2, (b + a) / 2
            est = []
            for nodes, weights in (_G5, _G10):
                acc = np.zeros_like(a)
                for t, w in zip(nodes, weights):
                    acc += w * self.density(mid + half * t, values)
                est.append(acc * half)
            gaps = est[1]
            bad = ~(np.abs(est[1] - est[0]) <= 1e-9 * np.abs(est[1]) + 1e-16) & (b > a)
            for r, j in zip(*np.nonzero(bad)):
                gaps[r, j] = self._quad_row(values, r, rows, a[r, j], b[r, j])
        lower = np.empty(rows)
        upper = np.empty(rows)
        total = gaps.sum(axis=1)
        for r in range(rows):
            point = _row(values, r, rows)
            lower[r] = self._tail(point, lo[r], xs[r, 0], careful=False)
            upper[r] = self._tail(point, xs[r, -1], hi[r], careful=False)
            # the density integrates to 1: a row whose pieces do not is integrated again, carefully
            if not abs(lower[r] + total[r] + upper[r] - 1.0) <= 1e-9:
                lower[r] = self._tail(point, lo[r], xs[r, 0], careful=True)
                upper[r] = self._tail(point, xs[r, -1], hi[r], careful=True)
        F = np.concatenate([lower[:, None], lower[:, None] + np.cumsum(gaps, axis=1)], axis=1)
        tail = np.cumsum(gaps[:, ::-1], axis=1)[:, ::-1]
        S = np.concatenate([upper[:, None] + tail, upper[:, None]], axis=1)
        return F, S

    def _quad_row(self, values: Mapping[str, Any], r: int, rows: int, a: float, b: float) -> float:
        return self._tail(_row(values, r, rows), a, b, careful=False)

    def _tail(self, point: Mapping[str, float], a: float, b: float, *, careful: bool) -> float:
        """The integral of the density over ``(a, b)`` at one parameter value."""
        if not b > a:
            return 0.0

        self.density(np.zeros((1, 1)), point)  # compiles the density on first use
        fn = self._fns["pdf"]
        args = [np.float64(point[name]) for name in self.parameters]

        def f(t: Any) -> Any:
            with np.errstate(all="ignore"):
                v = fn(t, *args)
            if np.ndim(v) == 0:
                v = float(v)
                return v if math.isfinite(v) and v > 0 else 0.0
            v = np.asarray(v, dtype=float) * np.ones(np.shape(t))
            return np.where(np.isfinite(v) & (v > 0), v, 0.0)

        with _warnings.catch_warnings(), np.errstate(all="ignore"):
            _warnings.simplefilter("ignore")
            if careful:
                return float(integrate_support(f, float(a), float(b))[0])
            return float(integrate.quad(f, float(a), float(b), epsabs=0, epsrel=1e-11, limit=200)[0])

    # ------------------------------------------------------------------ discrete
    def table(self, top: int, values: Mapping[str, Any], rows: int) -> tuple[int, np.ndarray]:
        """``(lo, P)``: the mass function at ``lo, lo + 1, ..., top`` for each row, shape ``(rows, K)``.

        ``lo`` is the lower end of the support (the same for every row).
        """
        lo, _ = self.support(values, rows)
        if not np.all(np.isfinite(lo)) or np.ptp(lo) != 0:
            raise DerivationError(
                "the distribution function of a discrete model is summed from the lower end of its "
                "support, which must be finite and not depend on the parameters"
            )
        start = int(math.ceil(lo[0]))
        k = top - start + 1
        if k > MAX_VALUES:
            raise DataError(f"the data reach {top}: more than {MAX_VALUES:.0e} values to tabulate")
        grid = np.arange(start, top + 1, dtype=float)
        out = np.empty((rows, k))
        step = max(1, TABLE_CELLS // max(k, 1))
        for r0 in range(0, rows, step):
            sub = {
                name: np.broadcast_to(np.asarray(v, dtype=float).reshape(-1), (rows,))[r0 : r0 + step]
                for name, v in values.items()
            }
            out[r0 : r0 + step] = self.density(np.broadcast_to(grid, (len(sub[self.parameters[0]]), k)), sub)
        return start, out


def _full(v: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``v`` as a float array of ``shape`` that may be written (a constant is broadcast and copied)."""
    v = np.asarray(v, dtype=float)
    if v.shape == shape and v.flags.writeable and v.flags.owndata:
        return v
    return np.array(np.broadcast_to(v, shape))


def _row(values: Mapping[str, Any], r: int, rows: int) -> dict[str, float]:
    return {
        k: float(np.broadcast_to(np.asarray(v, dtype=float).reshape(-1), (rows,))[r])
        for k, v in values.items()
    }


# ---------------------------------------------------------------------- building


def distribution_function(
    model: Model,
    constants: Mapping[str, float] | None = None,
    *,
    at: Mapping[str, float] | None = None,
    timeout: float | None = CDF_TIMEOUT,
) -> DistributionFunction:
    """The distribution function of a scalar ``model``: a closed form that checks, else quadrature.

    Parameters
    ----------
    model : Model
        A scalar model (no vector variable, no link).
    constants : mapping, optional
        Values of the model's constants (those given in the model are used otherwise).
    at : mapping, optional
        Parameter values (e.g. the estimates) at which a closed form is checked, besides the
        model's own point.
    timeout : float, optional
        Budget in seconds of each symbolic integral.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> F = distribution_function(load_model("exponential"))
    >>> F.method, F.cdf_expr
    ('closed_form', 1 - exp(-lam*x))
    >>> f, s = F(np.array([[0.5, 1.0]]), {"lam": 2.0})
    >>> [round(float(v), 6) for v in f[0]], [round(float(v), 6) for v in s[0]]
    ([0.632121, 0.864665], [0.367879, 0.135335])
    """
    if model.is_vector or model.is_regression:
        raise DerivationError("goodness of fit is for models of one scalar variable")
    consts: dict[str, float] = {}
    for q in model.constants:
        v = (constants or {}).get(q.name, q.value)
        if v is None:
            raise DerivationError(
                f"missing value for constant '{q.name}' (give it as --const {q.name}=VALUE)"
            )
        consts[q.name] = float(v)
    if model.discrete:
        return DistributionFunction(model, consts, "summation")
    key = _memo_key(model, consts, timeout)
    known = _MEMO.get(key) if key is not None else None
    if known is not None:
        # the same closed form, already checked at the model's point: checked again at ``at``
        if at and known.method == "closed_form":
            fixed = known._fixed()
            point = {**model.point(), **{q.symbol: float(at[q.name]) for q in model.parameters}, **fixed}
            why = _verify(model, model.density.subs(fixed), known.cdf_expr, known.sf_expr, point)
            if why:
                return DistributionFunction(model, consts, "quadrature", note=why)
        return known
    cdf, sf, note = _closed_form(model, consts, at, timeout)
    if cdf is None:
        return DistributionFunction(model, consts, "quadrature", note=note)
    out = DistributionFunction(model, consts, "closed_form", cdf_expr=cdf, sf_expr=sf)
    if key is not None:
        if len(_MEMO) >= MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = out
    return out


#: Closed-form distribution functions made in this process (with their compiled functions), checked
#: again at each new ``at``; not kept when the cache of derivations is switched off.
MEMO_SIZE = 32
_MEMO: dict[str, DistributionFunction] = {}


def _memo_key(model: Model, consts: Mapping[str, float], timeout: float | None) -> str | None:
    from symmle.symbolic import cache

    if not cache.enabled():  # --no-cache, SYMMLE_NO_CACHE: every closed form derived afresh
        return None
    try:
        return repr((cache._canonical(cache.model_key(model)), sorted(consts.items()), timeout))
    except Exception:  # a model the cache cannot key: not kept
        return None


_BAD = (sp.Integral, sp.Piecewise, sp.hyper, sp.meijerg, sp.exp_polar, sp.nan, sp.zoo, sp.I)


def _usable(e: sp.Expr | None) -> bool:
    return e is not None and not e.has(*_BAD) and not e.has(sp.oo, -sp.oo)


def _closed_form(
    model: Model, consts: Mapping[str, float], at: Mapping[str, float] | None, timeout: float | None
) -> tuple[sp.Expr | None, sp.Expr | None, str]:
    """``(F, S, "")`` checked at the model's point and at ``at``, or ``(None, None, why)``."""
    from symmle.numbers.cdf_cache import load_cdf, store_cdf

    seconds = timeout if timeout is not None else CDF_TIMEOUT
    cached = load_cdf(model, consts, seconds)
    if cached is None:
        cdf, sf, note = _integrals(model, consts, seconds)
        if note != _timed_out(seconds):  # a time-out depends on the machine's load: not kept on disk
            store_cdf(model, consts, seconds, cdf, sf, note)
    else:
        cdf, sf, note = cached
    if cdf is None:
        return None, None, note
    fixed = {q.symbol: consts[q.name] for q in model.constants}
    f = model.density.subs(fixed)
    points = [model.point()]
    if at:
        points.append({**model.point(), **{q.symbol: float(at[q.name]) for q in model.parameters}})
    for point in points:
        why = _verify(model, f, cdf, sf, {**point, **fixed})
        if why:
            return None, None, why
    return cdf, sf, ""


def _timed_out(seconds: float) -> str:
    return f"no closed form within {seconds:g} s"


def _integrals(
    model: Model, consts: Mapping[str, float], seconds: float
) -> tuple[sp.Expr | None, sp.Expr | None, str]:
    """``F`` and ``S`` by SymPy, each under ``seconds`` (``S = 1 - F`` if its own integral fails)."""
    x = model.variable
    fixed = {q.symbol: consts[q.name] for q in model.constants}
    f = model.density.subs(fixed)
    lo, hi = (sp.sympify(e).subs(fixed) for e in model.support)
    u = sp.Dummy("u", **{k: v for k, v in x.assumptions0.items() if k in ("real", "positive", "nonnegative")})
    fu = f.subs(x, u)

    def integral(a: sp.Expr, b: sp.Expr) -> sp.Expr:
        value = sp.integrate(fu, (u, a, b), conds="none")
        return value if value.has(sp.Integral) else sp.simplify(value)

    try:
        cdf, timed_out = attempt("the distribution function", seconds, lambda: integral(lo, x))
    except (DerivationTimeout, RecursionError):
        raise
    except Exception as exc:  # SymPy's integrator fails in many ways
        return None, None, f"SymPy could not integrate the density ({type(exc).__name__})"
    if timed_out:
        return None, None, _timed_out(seconds)
    if not _usable(cdf):
        return None, None, "the integral of the density has no closed form"
    try:
        sf, _ = attempt("the survival function", seconds, lambda: integral(x, hi))
    except (DerivationTimeout, RecursionError):
        raise
    except Exception:
        sf = None
    if not _usable(sf):
        sf = 1 - cdf
    return cdf, sf, ""


_COMPILED: dict[Any, Any] = {}


def _compiled(args: list[sp.Symbol], expr: sp.Expr) -> Any:
    """``to_function(args, expr)``, made once per expression (a few are kept)."""
    key = (tuple(args), expr)
    fn = _COMPILED.get(key)
    if fn is None:
        if len(_COMPILED) >= 64:
            _COMPILED.clear()
        fn = _COMPILED[key] = to_function(args, expr)
    return fn


def _at(fn: Any, vals: list[Any]) -> Any:
    """``fn`` of the variable alone, the parameters fixed at ``vals``."""
    return lambda t: fn(t, *vals)


def _verify(model: Model, f: sp.Expr, cdf: sp.Expr, sf: sp.Expr, point: Mapping[sp.Symbol, float]) -> str:
    """Empty if ``cdf`` and ``sf`` agree with quadrature of ``f`` at ``point``; else why not."""
    x = model.variable
    try:
        lo, hi = (float(sp.sympify(e).subs(point)) for e in model.support)
        params = list(model.parameter_symbols)
        if all(e.free_symbols <= {x, *params} for e in (f, cdf, sf)) and all(p in point for p in params):
            # compiled once with the parameters as arguments (gof checks every new estimate)
            vals = [np.float64(point[p]) for p in params]
            dens, F, S = (_at(_compiled([x, *params], e), vals) for e in (f, cdf, sf))
        else:
            dens = to_function([x], f.subs(point))
            F = to_function([x], cdf.subs(point))
            S = to_function([x], sf.subs(point))
    except (TypeError, ValueError) as exc:
        return f"the closed form could not be evaluated ({exc})"

    def g(t: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            t = np.asarray(t, dtype=float)
            v = np.asarray(dens(t), dtype=float) * np.ones_like(t)
        return np.where(np.isfinite(v), v, 0.0)

    ts = sorted(_check_points(g, lo, hi))
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore")
        # F at the points: the lower tail, then the pieces between them; S likewise from the top
        pieces = [integrate.quad(g, a, b, epsabs=0, epsrel=1e-12, limit=200)[0] for a, b in zip(ts, ts[1:])]
        want_f = np.cumsum([integrate_support(g, lo, ts[0])[0], *pieces])
        want_s = np.cumsum([integrate_support(g, ts[-1], hi)[0], *pieces[::-1]])[::-1]
        got_f = np.array([float(np.real(F(t))) for t in ts])
        got_s = np.array([float(np.real(S(t))) for t in ts])
    for got, want in ((got_f, want_f), (got_s, want_s)):
        if not np.all(
            np.isfinite(got) & (np.abs(got - want) <= CHECK_RTOL * np.maximum(np.abs(want), 1e-12) + 1e-13)
        ):
            return "the closed form of the distribution function failed its check against quadrature"
    return ""


def _check_points(g: Any, lo: float, hi: float) -> Sequence[float]:
    """Points spread over the mass of the density ``g`` (where the check means something)."""

    def logw(t: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.log(g(t))

    cuts = [c for c in mass_cuts(logw, lo, hi)[0] if lo < c < hi]
    if len(cuts) < 3:
        return [*cuts, *interior_points(lo, hi, 3)]
    pick = np.linspace(0, len(cuts) - 1, 7).round().astype(int)
    return [cuts[i] for i in sorted(set(pick.tolist()))]


# ---------------------------------------------------------------------- the quantile function


@dataclass(frozen=True)
class QuantileFunction:
    """``Q(u; theta)``, the inverse of a closed-form distribution function, checked numerically.

    ``expr`` is written in the model's variable standing for ``u`` (so that it is stored and read
    back with the model's own symbols); ``fn(u, *parameters)`` evaluates it on arrays.
    """

    expr: sp.Expr
    fn: Any = field(repr=False, compare=False)
    kernel: Any = field(default=None, repr=False, compare=False)

    def __call__(
        self,
        u: np.ndarray,
        values: Mapping[str, float],
        parameters: Sequence[str],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``Q`` at ``u`` (any shape) with scalar parameter ``values`` (into ``out`` if given)."""
        args = [np.float64(values[k]) for k in parameters]
        if out is not None and self.kernel is not None:
            return self.kernel(out, u, *args)
        with np.errstate(all="ignore"):
            v = _full(self.fn(u, *args), np.shape(u))
        if out is not None:
            np.copyto(out, v)
            return out
        return v


def quantile_function(
    dist: DistributionFunction,
    *,
    at: Sequence[Mapping[str, float]] = (),
    timeout: float | None = QUANTILE_TIMEOUT,
) -> tuple[QuantileFunction | None, str]:
    """The closed-form inverse of ``dist``'s ``F``, checked at the model's point and at each of ``at``.

    ``F(x) = u`` is solved for ``x`` by SymPy under ``timeout`` (the answer kept on disk like the
    distribution function's); each real solution is checked at probabilities from 1e-8 to
    1 - 1e-8 (:data:`QUANTILE_CHECK_U`): finite, strictly increasing in ``u``, inside the support,
    and ``F(Q(u)) = u`` (``S(Q(u)) = 1 - u`` above 1/2) to a relative :data:`QUANTILE_RTOL`.  The
    first solution that passes at every point is used; ``(None, why)`` if none does.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> q, why = quantile_function(distribution_function(load_model("exponential")), at=[{"lam": 2.0}])
    >>> round(float(q(np.array(0.5), {"lam": 2.0}, ["lam"])), 12)   # log(2) / 2
    0.34657359028
    """
    if dist.method != "closed_form" or dist.model.discrete:
        return None, "no closed-form distribution function to invert"
    m = dist.model
    found = dist._fns.get("quantile")  # (compiled candidates, note): solved once per function
    if found is None:
        from symmle.numbers.cdf_cache import load_quantile, store_quantile

        seconds = timeout if timeout is not None else QUANTILE_TIMEOUT
        stored = load_quantile(m, dist.constants, seconds)
        if stored is None:
            candidates, note = _solve_quantile(dist, seconds)
            if note != _timed_out(seconds):
                store_quantile(m, dist.constants, seconds, candidates, note)
        else:
            candidates, note = stored
        compiled = []
        for expr in _variants(candidates):
            try:
                from symmle.numbers.kernel import Kernel

                syms = [m.variable, *m.parameter_symbols]
                e = expr.subs(dist._fixed())
                compiled.append(QuantileFunction(expr, to_function(syms, e), Kernel(syms, e)))
            except (TypeError, ValueError):
                continue
        found = (compiled, note)
        dist._fns["quantile"] = found
    compiled, note = found
    if not compiled:
        return None, note or "SymPy found no inverse of the distribution function"
    points = [{q.name: float(m.point()[q.symbol]) for q in m.parameters}, *[dict(p) for p in at]]
    for q in compiled:
        if all(_quantile_checks(dist, q, point) for point in points):
            return q, ""
    return None, "no inverse of the distribution function passed its numerical check"


def _solve_quantile(dist: DistributionFunction, seconds: float) -> tuple[list[sp.Expr], str]:
    """The solutions of ``F(x) = u`` (written in ``x`` for ``u``), or ``([], why)``."""
    x = dist.model.variable
    u = sp.Dummy("u", positive=True)
    try:
        sols, timed_out = attempt(
            "the quantile function", seconds, lambda: sp.solve(sp.Eq(dist.cdf_expr, u), x, dict=False)
        )
    except (DerivationTimeout, RecursionError):
        raise
    except Exception as exc:  # SymPy's solver fails in many ways
        return [], f"SymPy could not solve F(x) = u ({type(exc).__name__})"
    if timed_out:
        return [], _timed_out(seconds)
    out = []
    for s in sols or []:
        if not isinstance(s, sp.Expr) or not _usable(s):
            continue
        e = s.xreplace({u: x})
        if e.free_symbols <= {x, *dist.model.parameter_symbols}:
            out.append(e)
    return out, "" if out else "SymPy found no closed-form solution of F(x) = u"


def _quantile_checks(dist: DistributionFunction, q: QuantileFunction, point: Mapping[str, float]) -> bool:
    """``Q`` is finite, increasing, inside the support and inverts ``F`` at ``point`` (see above)."""
    u = np.array(QUANTILE_CHECK_U)
    try:
        xs = q(u, point, dist.parameters)
        if not (np.all(np.isfinite(xs)) and np.all(np.diff(xs) > 0)):
            return False
        lo, hi = dist.support(point, 1)
        if not (np.all(xs >= lo[0]) and np.all(xs <= hi[0])):
            return False
        F, S = dist(xs[None, :], point)
    except (TypeError, ValueError, ArithmeticError):
        return False
    F, S = F[0], S[0]
    low = u <= 0.5
    ok_f = np.abs(F[low] - u[low]) <= QUANTILE_RTOL * u[low]
    ok_s = np.abs(S[~low] - (1 - u[~low])) <= QUANTILE_RTOL * (1 - u[~low])
    return bool(np.all(ok_f) and np.all(ok_s))


def _variants(solutions: Sequence[sp.Expr]) -> list[sp.Expr]:
    """Each solution, preceded by a cheaper form with ``log(1/a)`` written ``-log(a)`` (e.g.
    ``log(-1/(u - 1))`` as ``-log(1 - u)``, evaluated as ``-log1p(-u)``).  The identity holds for
    ``a > 0``; every form is checked numerically before use, so one that does not hold is not used.
    """
    out: list[sp.Expr] = []
    for e in solutions:
        try:
            alt = e.replace(
                lambda a: isinstance(a, sp.log) and sp.count_ops(1 / a.args[0]) < sp.count_ops(a.args[0]),
                lambda a: -sp.log(sp.expand(1 / a.args[0])),
            )
        except (TypeError, ValueError, RecursionError):
            alt = e
        if alt != e and _usable(alt) and sp.count_ops(alt) < sp.count_ops(e):
            out.append(alt)
        out.append(e)
    return out
