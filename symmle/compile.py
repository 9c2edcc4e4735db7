r"""Compiled estimators: fast, numerically stable NumPy functions of a Derivation.

:meth:`Derivation.compile` returns a :class:`CompiledModel`.  Calling it on
data computes the sufficient statistics (one pass each, in chunks, so a
memory-mapped array of any size needs bounded memory), then evaluates the
closed-form and order-statistic estimators, and solves what is left
numerically with exact derivatives.

Numerical stability
-------------------
A formula such as :math:`\hat\sigma^2 = (N T_2 - T_1^2)/N^2` loses every digit
when the mean is large compared with the spread.  symmle rewrites it in
*centred* statistics :math:`U_k = \sum_i (h(x_i) - c)^k`, where :math:`h` is the
function the statistics are polynomials of (``x``, ``log x``...) and
:math:`c` a pilot value taken from the data.  The rewritten formula is kept only
if the pilot cancels exactly (it then becomes, e.g.,
:math:`(N U_2 - U_1^2)/N^2`, whose terms are of the size of the spread).
This is a general mechanism, not a per-family rule: any estimator that is
invariant under shifts of :math:`h(x)` gets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp
from scipy import optimize

from symmle.budget import attempt
from symmle.errors import DataError
from symmle.numeric import to_function

if TYPE_CHECKING:
    from symmle.derivation import Derivation
    from symmle.likelihood import Likelihood

__all__ = ["CompiledModel", "compile_derivation", "CHUNK"]

#: Elements per chunk when reducing data.
CHUNK = 1 << 20
#: Size of the subsample used to locate starting values.
PILOT = 4096


def _chunks(x: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, x.shape[0], CHUNK):
        yield np.asarray(x[start : start + CHUNK], dtype=float)


class _Fn:
    """A compiled expression in N, statistics, order statistics, parameters,
    constants and sums over the data (each evaluated in one chunked pass)."""

    def __init__(self, expr: sp.Expr, lik: Likelihood) -> None:
        expr = sp.sympify(expr)
        var = lik.model.variable
        subs: dict[sp.Basic, sp.Symbol] = {}
        self.sums: list[tuple[sp.Symbol, Callable[..., Any], list[sp.Symbol]]] = []
        for s in sorted(expr.atoms(sp.Sum), key=sp.default_sort_key):
            d = sp.Dummy("sum")
            summand = s.function.subs(lik.sample[lik.index], var)
            args = sorted(summand.free_symbols - {var}, key=lambda a: a.name)
            self.sums.append((d, to_function([var, *args], summand), args))
            subs[s] = d
        self.order: list[tuple[sp.Expr, sp.Symbol]] = []
        for o in lik.order_statistics:
            if expr.has(o):
                d = sp.Dummy(str(o.func))
                self.order.append((o, d))
                subs[o] = d
        expr = expr.subs(subs) if subs else expr
        self.args = sorted(expr.free_symbols, key=lambda a: a.name)
        self.fn = to_function(self.args, expr)
        self.symbols = set(self.args) - set(subs.values())

    def __call__(self, values: Mapping[Any, float], data: np.ndarray | None = None) -> float:
        vals = dict(values)
        for d, f, args in self.sums:
            a = [vals[s] for s in args]
            with np.errstate(all="ignore"):
                vals[d] = math.fsum(float(np.sum(np.asarray(f(c, *a), dtype=float) * np.ones_like(c))) for c in _chunks(data))
        for o, d in self.order:
            vals[d] = vals[o]
        with np.errstate(all="ignore"):
            return float(np.real(self.fn(*[vals[a] for a in self.args])))


@dataclass(frozen=True)
class _Centred:
    """Statistics that are polynomials in one function ``h`` of the variable."""

    h: sp.Expr
    pilot: sp.Symbol
    powers: dict[int, sp.Symbol]  # k -> U_k = sum (h(x) - pilot)**k


def _polynomial_base(g: sp.Expr, x: sp.Symbol) -> tuple[sp.Expr, sp.Poly] | None:
    """``(h, P)`` with ``g = P(h(x))``, ``h`` the variable or one function of it."""
    candidates = [x] + sorted({a for a in g.atoms(sp.Function) if a.has(x)}, key=sp.default_sort_key)
    for h in candidates:
        t = sp.Dummy("h")
        expr = g.subs(h, t) if h is not x else g.subs(x, t)
        if expr.has(x):
            continue
        try:
            poly = sp.Poly(expr, t)
        except sp.PolynomialError:
            continue
        if poly.degree() >= 1 and not any(c.has(t) for c in poly.all_coeffs()):
            return h, poly
    return None


def _centre(lik: Likelihood, exprs: Mapping[str, sp.Expr], timeout: float | None) -> tuple[dict[str, sp.Expr], list[_Centred]]:
    """Rewrite estimators in centred statistics where the pilot cancels exactly."""
    x = lik.model.variable
    groups: dict[sp.Expr, dict[sp.Symbol, sp.Poly]] = {}
    for s in lik.statistics:
        base = _polynomial_base(s.expr, x)
        if base is not None:
            groups.setdefault(base[0], {})[s.symbol] = base[1]
    centred: list[_Centred] = []
    subs: dict[sp.Symbol, sp.Expr] = {}
    for n, (h, polys) in enumerate(groups.items()):
        degree = max(p.degree() for p in polys.values())
        pilot = sp.Symbol(f"c{n}", real=True)
        powers = {k: sp.Symbol(f"U{n}_{k}", real=True) for k in range(1, degree + 1)}
        powers_even = {k: sp.Symbol(f"U{n}_{k}", nonnegative=True) for k in powers if k % 2 == 0}
        powers.update(powers_even)
        u = sp.Dummy("u")
        for T, poly in polys.items():
            shifted = sp.Poly(poly.as_expr().subs(poly.gens[0], u + pilot), u)
            subs[T] = sum((c * (powers[m] if m else lik.N) for (m,), c in shifted.terms()), sp.S.Zero)
        centred.append(_Centred(h, pilot, powers))
    out = dict(exprs)
    if not centred:
        return out, []
    pilots = {c.pilot for c in centred}
    for name, e in exprs.items():
        if not (e.free_symbols & set(subs)):
            continue
        new, _ = attempt(f"centre the estimator of {name}", timeout, lambda e=e: sp.cancel(sp.expand(e.subs(subs))))
        if new is not None and not (new.free_symbols & pilots):
            out[name] = sp.factor_terms(new)
    used = set().union(*(e.free_symbols for e in out.values())) if out else set()
    return out, [c for c in centred if set(c.powers.values()) & used]


def _to_z(theta: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return math.log(theta)
    if domain == "unit":
        return math.log(theta / (1 - theta))
    return theta


def _from_z(z: np.ndarray | float, domain: str):
    if domain in ("positive", "nonnegative"):
        return np.exp(z)
    if domain == "unit":
        return 1 / (1 + np.exp(-z))
    return z


def _candidates(domain: str, data_scale: float, data_centre: float) -> np.ndarray:
    """Starting values spread over a domain, on the data's scale where it has one."""
    if domain in ("positive", "nonnegative"):
        # shapes are scale-free, scales follow the data: search both
        return np.unique(np.r_[10.0 ** np.linspace(-5, 5, 41), abs(data_scale) * 10.0 ** np.linspace(-3, 3, 25)])
    if domain == "unit":
        return np.linspace(0.01, 0.99, 33)
    return data_centre + data_scale * np.r_[-np.geomspace(100, 0.01, 15), 0.0, np.geomspace(0.01, 100, 15)]


class CompiledModel:
    """Estimators, log-likelihood and standard errors of one derivation, as NumPy code.

    Call it on data: ``est(x, **constants) -> {"mu": ..., "sigma2": ...}``.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> est = symmle.derive("exponential").compile()
    >>> round(est(np.array([0.5, 1.5, 1.0]))["lam"], 12)
    1.0
    """

    def __init__(self, d: Derivation, *, timeout: float | None = None) -> None:
        self.derivation = d
        lik = self.likelihood = d.likelihood
        model = d.model
        st = d.stationarity
        self.parameters = tuple(q.name for q in model.parameters)
        self.constants = tuple(q.name for q in model.constants)
        self._symbols = {q.name: q.symbol for q in (*model.parameters, *model.constants)}
        self._known = {q.symbol: float(q.value) for q in model.constants if q.value is not None}
        self.kinds = {name: e.kind for name, e in d.solutions.items()}
        closed = {name: e.expr for name, e in d.solutions.items() if e.kind in ("closed_form", "boundary")}
        closed, self._centred = _centre(lik, closed, timeout)
        self.formulas = closed
        self._closed = {name: _Fn(e, lik) for name, e in closed.items()}
        # numeric part: maximise the profile log-likelihood over the reduced parameters
        self._reduced = list(st.reduced)
        self._profile = [(p, _Fn(v, lik)) for p, v in st.profile]
        ell = lik.log_likelihood.subs(dict(st.boundary))
        if self._reduced:
            prof = ell.subs({p: v for p, v in reversed(st.profile)})
            self._objective = _Fn(prof, lik)
            self._gradient = [_Fn(sp.diff(prof, p), lik) for p in self._reduced]
            self._hessian = [[_Fn(sp.diff(prof, p, q), lik) for q in self._reduced] for p in self._reduced]
        # standard errors: expected information where complete, else observed
        self._regular = list(st.parameters)
        self._obs_hessian = [[_Fn(st.hessian[i, j], lik) for j in range(len(self._regular))] for i in range(len(self._regular))]
        idx = [list(model.parameter_symbols).index(p) for p in self._regular]
        fisher = d.fisher.extract(idx, idx) if idx else sp.Matrix()
        self._fisher = None if any(e == sp.nan for e in fisher) or not idx else [[_Fn(fisher[i, j], lik) for j in range(len(idx))] for i in range(len(idx))]
        self._logf = to_function([model.variable, *self._symbols.values()], lik.log_density)
        self._stat_fns = {s.symbol: to_function([model.variable, *model.constant_symbols], s.expr) for s in lik.statistics}
        self._h_fns = [to_function([model.variable, *model.constant_symbols], c.h) for c in self._centred]
        self._domains = {q.symbol: q.domain for q in model.parameters}

    # -- statistics ---------------------------------------------------------
    def _constants(self, constants: Mapping[str, float]) -> dict[sp.Symbol, float]:
        values = dict(self._known)
        for name, v in constants.items():
            if name not in self._symbols or name in self.parameters:
                raise DataError(f"unknown constant '{name}'; this model's constants: {', '.join(self.constants) or '(none)'}")
            values[self._symbols[name]] = float(v)
        missing = [q.name for q in self.derivation.model.constants if q.symbol not in values]
        if missing:
            raise DataError(f"missing value for constant '{missing[0]}' (give it as {missing[0]}=VALUE)")
        return values

    def statistics(self, x: np.ndarray, constants: Mapping[sp.Symbol, float], needed: set[sp.Symbol] | None = None) -> dict[Any, float]:
        """``N``, the ``T_j``, the centred ``U_k``, pilots, ``Min(x)``, ``Max(x)`` of ``x``.

        Each is reduced over the data in chunks, one pass per statistic.
        """
        lik = self.likelihood
        cargs = [constants[s] for s in self.derivation.model.constant_symbols]
        n = int(x.shape[0])
        values: dict[Any, float] = {lik.N: float(n)}
        stats = [s for s in self._stat_fns if needed is None or s in needed]
        sums = {s: [] for s in stats}
        cent: list[tuple[_Centred, Callable[..., Any], float, dict[int, list[float]]]] = []
        lo, hi = math.inf, -math.inf
        for chunk in _chunks(x):
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
            with np.errstate(all="ignore"):
                for s in stats:
                    sums[s].append(float(np.sum(np.asarray(self._stat_fns[s](chunk, *cargs), dtype=float) * np.ones_like(chunk))))
                if not cent:
                    for c, h in zip(self._centred, self._h_fns):
                        pilot = float(np.mean(np.asarray(h(chunk[:PILOT], *cargs), dtype=float)))
                        cent.append((c, h, pilot, {k: [] for k in c.powers}))
                for c, h, pilot, acc in cent:
                    u = np.asarray(h(chunk, *cargs), dtype=float) * np.ones_like(chunk) - pilot
                    for k in acc:
                        acc[k].append(float(u.sum() if k == 1 else np.dot(u, u) if k == 2 else np.sum(u**k)))
        for s in stats:
            values[s] = math.fsum(sums[s])
        for c, _, pilot, acc in cent:
            values[c.pilot] = pilot
            for k, parts in acc.items():
                values[c.powers[k]] = math.fsum(parts)
        mn, mx = lik.order_statistics
        values[mn], values[mx] = lo, hi
        return values

    # -- estimation ---------------------------------------------------------
    def __call__(self, x: Any, **constants: float) -> dict[str, float]:
        """Maximum-likelihood estimates from data ``x`` (constants by name)."""
        return self.estimate(x, **constants)

    def estimate(self, x: Any, **constants: float) -> dict[str, float]:
        x = _as_data(x)
        consts = self._constants(constants)
        values = {**self.statistics(x, consts), **consts}
        out: dict[Any, float] = {}
        for name, fn in self._closed.items():
            out[self._symbols[name]] = fn(values, x)
        values.update(out)
        if self._reduced:
            values.update(self._solve(x, values))
            for p, fn in self._profile:
                values[p] = out[p] = fn(values, x)
            for p in self._reduced:
                out[p] = values[p]
        return {name: float(out[self._symbols[name]]) for name in self.parameters if self._symbols[name] in out}

    def _solve(self, x: np.ndarray, values: dict[Any, float]) -> dict[sp.Symbol, float]:
        """Maximise the profile log-likelihood over the reduced parameters."""
        reduced = self._reduced
        domains = [self._domains[p] for p in reduced]
        if any(d in ("integer", "positive_integer") for d in domains):
            raise DataError("numeric estimation of an integer-valued parameter is not supported")
        consts = {k: v for k, v in values.items()}
        # starting values: a coarse search on a subsample
        sub = np.asarray(x[: min(x.shape[0], PILOT)], dtype=float)
        sub_values = {**consts, **self.statistics(sub, {s: consts[s] for s in self.derivation.model.constant_symbols})}
        scale = float(np.std(sub)) or 1.0
        centre = float(np.median(sub))
        grids = [_candidates(d, scale, centre) for d in domains]
        if len(grids) == 1:
            points = grids[0][:, None]
        else:
            mesh = np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(grids), -1).T
            rng = np.random.default_rng(0)
            points = mesh if len(mesh) <= 3000 else mesh[rng.choice(len(mesh), 3000, replace=False)]

        def objective(theta: Sequence[float], vals: dict[Any, float], data: np.ndarray) -> float:
            v = self._objective({**vals, **dict(zip(reduced, theta))}, data)
            return v if np.isfinite(v) else -np.inf

        scores = np.array([objective(p, sub_values, sub) for p in points])
        if not np.any(np.isfinite(scores)):
            raise DataError("the log-likelihood is not finite anywhere on the search grid: the MLE does not exist for these data")
        best = points[int(np.nanargmax(scores))]
        z0 = np.array([_to_z(t, d) for t, d in zip(best, domains)])

        def neg(z: np.ndarray) -> float:
            theta = [float(_from_z(zi, d)) for zi, d in zip(z, domains)]
            v = objective(theta, values, x)
            return -v if np.isfinite(v) else 1e300

        def grad_theta(theta: Sequence[float]) -> np.ndarray:
            vals = {**values, **dict(zip(reduced, theta))}
            return np.array([g(vals, x) for g in self._gradient])

        def neg_grad(z: np.ndarray) -> np.ndarray:
            theta = [float(_from_z(zi, d)) for zi, d in zip(z, domains)]
            jac = np.array([_dtheta_dz(t, d) for t, d in zip(theta, domains)])
            return -grad_theta(theta) * jac

        if len(reduced) == 1:
            theta = self._solve_1d(z0[0], domains[0], grids[0], neg, grad_theta)
        else:
            res = optimize.minimize(neg, z0, jac=neg_grad, method="BFGS", options={"gtol": 1e-10, "maxiter": 500})
            theta = np.array([float(_from_z(zi, d)) for zi, d in zip(res.x, domains)])
        theta = self._newton(theta, values, x, grad_theta)
        return dict(zip(reduced, theta))

    def _solve_1d(self, z0: float, domain: str, grid: np.ndarray, neg: Callable, grad_theta: Callable) -> np.ndarray:
        """Bracket the root of the profile score around the best grid point; Brent's method."""
        zs = np.array([_to_z(t, domain) for t in grid])
        k = int(np.argmin(np.abs(zs - z0)))
        lo, hi = zs[max(k - 1, 0)], zs[min(k + 1, len(zs) - 1)]

        def score(z: float) -> float:
            return float(grad_theta([float(_from_z(z, domain))])[0])

        f_lo, f_hi = score(lo), score(hi)
        widen = 0
        while not (np.isfinite(f_lo) and np.isfinite(f_hi) and f_lo > 0 > f_hi) and widen < 40:
            if not (np.isfinite(f_lo) and f_lo > 0):
                lo -= 1.0
                f_lo = score(lo)
            if not (np.isfinite(f_hi) and f_hi < 0):
                hi += 1.0
                f_hi = score(hi)
            widen += 1
        if not (f_lo > 0 > f_hi):
            raise DataError(
                f"the MLE of {self._reduced[0]} does not exist for these data: the likelihood does not turn "
                f"over inside the parameter domain ({domain})"
            )
        z = optimize.brentq(score, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)
        return np.array([float(_from_z(z, domain))])

    def _newton(self, theta: np.ndarray, values: dict[Any, float], x: np.ndarray, grad_theta: Callable) -> np.ndarray:
        """Polish with Newton steps on exact derivatives; confirm a maximum."""
        reduced = self._reduced
        theta = np.asarray(theta, dtype=float)
        for _ in range(20):
            vals = {**values, **dict(zip(reduced, theta))}
            g = grad_theta(theta)
            h = np.array([[f(vals, x) for f in row] for row in self._hessian])
            if not (np.all(np.isfinite(h)) and np.all(np.isfinite(g))):
                break
            try:
                step = np.linalg.solve(h, g)
            except np.linalg.LinAlgError:
                break
            new = theta - step
            if any(not _inside(t, self._domains[p]) for t, p in zip(new, reduced)):
                break
            theta = new
            if np.all(np.abs(step) <= 1e-13 * np.maximum(np.abs(theta), 1e-300)):
                break
        vals = {**values, **dict(zip(reduced, theta))}
        h = np.array([[f(vals, x) for f in row] for row in self._hessian])
        g = grad_theta(theta)
        if not np.all(np.isfinite(theta)) or not np.all(np.isfinite(h)) or np.max(np.linalg.eigvalsh((h + h.T) / 2)) >= 0:
            names = ", ".join(p.name for p in reduced)
            raise DataError(f"numerical maximisation for {names} did not converge to a maximum (the MLE may not exist for these data)")
        # distance to the stationary point, in standard-error units: |g| / sqrt(|H_ii|)
        if np.any(np.abs(g) > 1e-6 * np.sqrt(np.abs(np.diag(h)))):
            raise DataError("numerical maximisation did not converge: the score does not vanish at the last iterate")
        return theta

    # -- log-likelihood and standard errors ---------------------------------
    def log_likelihood(self, x: Any, **params_and_constants: float) -> float:
        """:math:`\\sum_i \\log f(x_i)` at the given parameter and constant values."""
        x = _as_data(x)
        values = []
        for name, sym in self._symbols.items():
            if name in params_and_constants:
                values.append(float(params_and_constants[name]))
            elif sym in self._known:
                values.append(self._known[sym])
            else:
                raise DataError(f"missing value for '{name}'")
        with np.errstate(all="ignore"):
            total = math.fsum(float(np.sum(np.asarray(self._logf(c, *values), dtype=float) * np.ones_like(c))) for c in _chunks(x))
        return total

    def covariance(self, x: Any, estimates: Mapping[str, float], **constants: float) -> tuple[np.ndarray | None, str]:
        """Asymptotic covariance of the regular parameters and its source."""
        x = _as_data(x)
        consts = self._constants(constants)
        values = {**self.statistics(x, consts), **consts, **{self._symbols[k]: v for k, v in estimates.items()}}
        n = values[self.likelihood.N]
        if not self._regular:
            return None, ""
        if self._fisher is not None:
            info = n * np.array([[f(values, x) for f in row] for row in self._fisher])
            source = "expected"
        else:
            info = -np.array([[f(values, x) for f in row] for row in self._obs_hessian])
            source = "observed"
        if not np.all(np.isfinite(info)):
            return None, source
        try:
            return np.linalg.inv(info), source
        except np.linalg.LinAlgError:
            return None, source

    def stderr(self, x: Any, **constants: float) -> dict[str, float | None]:
        """Asymptotic standard errors at the estimate (``None`` where none exists)."""
        est = self.estimate(x, **constants)
        cov, _ = self.covariance(x, est, **constants)
        out: dict[str, float | None] = {name: None for name in self.parameters}
        if cov is not None:
            for i, p in enumerate(self._regular):
                out[p.name] = float(math.sqrt(cov[i, i])) if cov[i, i] >= 0 else None
        return out


def _inside(value: float, domain: str) -> bool:
    from symmle.spec import in_domain

    return in_domain(value, domain)


def _dtheta_dz(theta: float, domain: str) -> float:
    if domain in ("positive", "nonnegative"):
        return theta
    if domain == "unit":
        return theta * (1 - theta)
    return 1.0


def _as_data(x: Any) -> np.ndarray:
    if isinstance(x, np.memmap):
        return x.reshape(-1)
    arr = np.asarray(x, dtype=float)
    return arr.reshape(-1)


def compile_derivation(d: Derivation, *, timeout: float | None = None) -> CompiledModel:
    """Compile a derivation; see :class:`CompiledModel`."""
    return CompiledModel(d, timeout=timeout)
