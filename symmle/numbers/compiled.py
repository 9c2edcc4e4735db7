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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base import _runtime
from symmle.base.budget import attempt
from symmle.base.errors import DataError, DerivationError
from symmle.base.numeric import _stable, to_function
from symmle.numbers.rounding import rounding_bounds
from symmle.symbolic.evaluate import Formula, by_name, verification_datasets
from symmle.symbolic.kinks import without_null_deltas
from symmle.symbolic.likelihood import quantile_name, quantile_parts

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation
    from symmle.symbolic.likelihood import Likelihood

__all__ = ["CompiledModel", "Formula", "plan_formulas", "CHUNK"]

#: Elements per chunk when reducing data; ``None`` lets the runtime choose
#: (small chunks for memory-mapped files, larger ones for arrays in memory).
CHUNK: int | None = None


def _pointwise(expr: sp.Expr, variable: sp.Symbol) -> Callable[[Mapping[str, float], np.ndarray], np.ndarray]:
    """``fn(values, chunk) -> array`` for a function of the variable (constants by name)."""
    names = sorted({s.name for s in expr.free_symbols} - {variable.name})
    syms = by_name(expr)
    f = to_function([variable, *[syms[n] for n in names]], expr)
    return lambda values, chunk: f(chunk, *[values[n] for n in names])


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


def _centre(
    lik: Likelihood, exprs: Mapping[str, sp.Expr], timeout: float | None
) -> tuple[dict[str, sp.Expr], list[_Centred]]:
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
        new, _ = attempt(
            f"centre the estimator of {name}", timeout, lambda e=e: sp.cancel(sp.expand(e.subs(subs)))
        )
        if new is not None and not (new.free_symbols & pilots):
            out[name] = sp.factor_terms(new)
    used = set().union(*(e.free_symbols for e in out.values())) if out else set()
    kept = [c for c in centred if set(c.powers.values()) & used]
    # Once a group's centred sums are computed anyway, its plain statistics
    # follow from them exactly (T = sum_k a_k(c) U_k): no separate pass.
    follow = {T: v for T, v in subs.items() if any(c.pilot in v.free_symbols for c in kept)}
    for name, e in out.items():
        if e.free_symbols & set(follow):
            out[name] = e.subs(follow)
    return out, kept


@dataclass(frozen=True)
class _Residual:
    """Sums of functions of the variable taken relative to a pilot value ``c`` of it."""

    pilot: sp.Symbol
    sums: dict[sp.Symbol, sp.Expr]  # name -> per-observation function of (x, c, N, constants)


def _residual(lik: Likelihood, e: sp.Expr, index: int) -> tuple[sp.Expr, _Residual] | None:
    r"""Rewrite a part of ``e`` that vanishes when every observation equals a pilot ``c``.

    Such a part (the inverse Gaussian's :math:`T_1 T_2 - N^2`) is a difference of
    nearly equal terms when the data vary little around ``c``: centring cannot
    help when it mixes different functions of the data (``x`` and ``1/x``).
    With :math:`T_j = N (g_j(c) + d_j)` and :math:`d_j` the mean of
    :math:`r_j = g_j(x) - g_j(c)`, the part is :math:`P = \sum_j a_j d_j + R(d)`
    with :math:`a_j = \partial P/\partial d_j` at 0 and :math:`R` of second
    order.  The first-order term is one sum of
    :math:`q(x) = \sum_j a_j r_j(x)`, simplified symbolically (for the inverse
    Gaussian, :math:`q \propto (x - c)^2/x`), so no term cancels; ``R`` is a
    product of small, accurately summed :math:`d_j`.  ``None`` where no part
    vanishes at the pilot, or the rewrite does not simplify.
    """
    x = lik.model.variable
    stats = {s.symbol: s.expr for s in lik.statistics if s.symbol in e.free_symbols}
    if not stats:
        return None
    c = sp.Symbol(f"r{index}", **({"positive": True} if x.is_positive else {"real": True}))
    N = lik.N
    d = {T: sp.Dummy(f"d_{T}") for T in stats}
    at_pilot = {T: N * (g.subs(x, c) + d[T]) for T, g in stats.items()}
    zero = {v: 0 for v in d.values()}
    num, den = sp.fraction(sp.together(e))
    parts = {}
    sums: dict[sp.Symbol, sp.Expr] = {}
    for k, part in enumerate((num, den)):
        if not (part.free_symbols & set(stats)):
            continue
        shifted = sp.expand(part.subs(at_pilot))
        if sp.simplify(shifted.subs(zero)) != 0:
            continue
        a = {T: sp.diff(shifted, d[T]).subs(zero) for T in stats}
        q = sp.factor(sp.cancel(sum((a[T] * (g - g.subs(x, c)) for T, g in stats.items()), sp.S.Zero)))
        rest = sp.expand(shifted - sum((a[T] * d[T] for T in stats), sp.S.Zero))
        if q == 0 or any(sp.simplify(sp.diff(rest, v).subs(zero)) != 0 for v in d.values()):
            return None
        Q = sp.Symbol(f"Q{index}_{k}", real=True)
        sums[Q] = q
        means = {}
        for T, g in stats.items():
            if rest.has(d[T]):
                D = sp.Symbol(f"D{index}_{T}", real=True)
                sums[D] = g - g.subs(x, c)
                means[d[T]] = D / N
        parts[part] = Q / N + rest.subs(means)
    if not parts:
        return None
    new = (parts.get(num, num)) / (parts.get(den, den))
    return new, _Residual(c, sums)


def _check_residual(
    lik: Likelihood, old: sp.Expr, new: sp.Expr, res: _Residual, point: Mapping[sp.Symbol, float]
) -> bool:
    """The rewrite equals the original on admissible data sets (pilot: the data's mean)."""
    x = lik.model.variable
    consts = {q.symbol: point[q.symbol] for q in lik.model.constants}
    for data in verification_datasets(lik, consts, point):
        values = {k: v for k, v in lik.statistic_values(data, consts).items()}
        values[res.pilot] = float(np.mean(data))
        for S, q in res.sums.items():
            f = to_function([x], q.subs({**values, **consts}))
            values[S] = float(np.sum(np.asarray(f(data), dtype=float) * np.ones_like(data)))
        try:
            a = complex(old.subs({**values, **consts}).evalf())
            b = complex(new.subs({**values, **consts}).evalf())
        except (TypeError, ValueError, ZeroDivisionError):
            return False
        if not (np.isfinite(a) and abs(a - b) <= 1e-9 * max(abs(a), 1e-300)):
            return False
    return True


def _rounding(
    name: str, fm: Formula, statistics: set[str], timeout: float | None
) -> tuple[Formula, Formula] | None:
    """``(loss, data)`` of a closed form (see :mod:`symmle.numbers.rounding`), or ``None``.

    ``loss = ops / (data + |f|)``, with ``f`` read as the parameter's value,
    is how many times the formula's own rounding error may exceed what the
    rounding of the statistics (``data``, in units of ``u``) or of the value
    itself causes anyway.  ``None`` for a formula with an operation without
    a known derivative, or whose loss is small whatever the data.
    """
    inputs = [s for s in fm.outer.free_symbols if s.name in statistics or s.name in dict(fm.sums)]
    outer = _stable(fm.outer)
    found, _ = attempt(
        f"bound the rounding error of the estimator of {name}",
        timeout,
        lambda: rounding_bounds(outer, inputs),
    )
    if found is None:
        return None
    ops, data = found
    if _monomial(outer):
        # the relative rounding errors of a product of powers add up: its loss is one number whatever
        # the data, and needs no check at run time when it is small
        loss = complex((ops / (data + sp.Abs(outer))).subs({s: 1.7 for s in outer.free_symbols}).evalf())
        if abs(loss) <= _runtime.LOSS:
            return None
    # the estimate's value is read by name, not computed again
    value = sp.Symbol(name, real=True)
    return Formula(ops / (data + sp.Abs(value)), fm.sums, fm.variable), Formula(data, fm.sums, fm.variable)


def _monomial(e: sp.Expr) -> bool:
    """``e`` is a number times a product of powers of symbols with numeric exponents."""
    return all(
        a.is_Symbol or a.is_Number or a.is_Mul or (a.is_Pow and a.exp.is_Number)
        for a in sp.preorder_traversal(e)
    )


def plan_formulas(d: Derivation, *, timeout: float | None = None) -> dict[str, Any]:
    """The SymPy side of a plan (see :mod:`symmle.base._runtime`): every formula to compile.

    Shared by :class:`CompiledModel` (lambdify) and :mod:`symmle.numbers.codegen`
    (printed source), so both run the same formulas through the same runtime.
    """
    lik = d.likelihood
    model = d.model
    st = d.stationarity
    closed = {name: e.expr for name, e in d.solutions.items() if e.kind in ("closed_form", "boundary")}
    closed, centred = _centre(lik, closed, timeout)
    residual: list[_Residual] = []
    point = model.point()
    for name, e in list(closed.items()):
        if e.free_symbols & {u for c in centred for u in c.powers.values()}:
            continue  # already centred
        found, _ = attempt(
            f"rewrite the estimator of {name} around a pilot",
            timeout,
            lambda e=e: _residual(lik, e, len(residual)),
        )
        if found is not None and _check_residual(lik, e, found[0], found[1], point):
            closed[name] = found[0]
            residual.append(found[1])
    # order statistics and sample quantiles stand for their parameters in what is left
    ell = lik.log_likelihood.subs(dict(st.boundary)).subs(dict(st.kinks))
    out: dict[str, Any] = {
        "parameters": [q.name for q in model.parameters],
        "constants": [q.name for q in model.constants],
        "known": {q.name: float(q.value) for q in model.constants if q.value is not None},
        "domains": {q.name: q.domain for q in model.parameters},
        "kinds": {name: e.kind for name, e in d.solutions.items()},
        "stats": {s.symbol.name: s.expr for s in lik.statistics},
        "raw": [s.symbol.name for s in lik.statistics if s.expr == model.variable],
        "centred": [(c.h, {k: u.name for k, u in c.powers.items()}, c.pilot.name) for c in centred],
        "residual": [(r.pilot.name, {S.name: q for S, q in r.sums.items()}) for r in residual],
        "closed": {name: Formula.of(e, lik) for name, e in closed.items()},
        # sample quantiles: (name, u(x), level, parameter), the estimate of a piecewise-linear parameter
        "quantiles": [
            (quantile_name(q, model.variable), *quantile_parts(q), p.name)  # type: ignore[misc]
            for p, q in st.kinks
        ],
        "reduced": [p.name for p in st.reduced],
        "profile": [(p.name, Formula.of(v, lik)) for p, v in st.profile],
        "regular": [p.name for p in st.parameters],
        # the score of each regular parameter: the numeric route when a closed form loses digits
        "score": [Formula.of(g, lik) for g in st.score],
        "logf": lik.log_density,
        "variable": model.variable,
        "display": closed,
    }
    statistics = {
        *out["stats"],
        *(u for _, powers, _ in out["centred"] for u in powers.values()),
        *(name for _, sums in out["residual"] for name in sums),
    }
    # order statistics (boundary kinds) are exact: no bound
    checked = [(n, fm) for n, fm in out["closed"].items() if out["kinds"].get(n) != "boundary"]
    checked += out["profile"]
    out["rounding"] = {name: _rounding(name, fm, statistics, timeout) for name, fm in checked}
    out["vectorised"] = False
    if st.reduced:
        prof = ell.subs({p: v for p, v in reversed(st.profile)})
        # a DiracDelta times what vanishes where it sits (Abs(x - m)**3) is no kink
        second = {(p, q): without_null_deltas(sp.diff(prof, p, q)) for p in st.reduced for q in st.reduced}
        kinked = [p for p in st.reduced if second[p, p].has(sp.DiracDelta)]
        if kinked:
            names = ", ".join(p.name for p in kinked)
            raise DerivationError(
                f"the log-likelihood is not twice differentiable in {names} "
                f"(a kink such as Abs(x - {kinked[0].name})): "
                "symmle's numeric solver needs second derivatives, so it cannot fit this model"
            )
        out["objective"] = Formula.of(prof, lik)
        # without sums over the data, the objective takes arrays of parameter values
        out["vectorised"] = not out["objective"].sums
        out["gradient"] = [Formula.of(sp.diff(prof, p), lik) for p in st.reduced]
        out["hessian"] = [[Formula.of(second[p, q], lik) for q in st.reduced] for p in st.reduced]
    # estimators that read only statistics can run on many data sets at once
    out["rowwise"] = not st.reduced and not any(fm.sums for fm in out["closed"].values())
    estimation = [*out["closed"].values(), *(fm for _, fm in out["profile"])]
    if st.reduced:
        estimation += [out["objective"], *out["gradient"], *(fm for row in out["hessian"] for fm in row)]
    out["discrete"] = bool(model.discrete)
    out["sums"] = any(fm.sums for fm in estimation)
    out["needed"] = set().union(*(fm.args() for fm in estimation)) if estimation else set()
    # a sample quantile may be read inside a sum (the mean absolute deviation about the median)
    out["needed"] |= {name for name, *_ in out["quantiles"]}
    n = len(st.parameters)
    hessian = st.hessian.applyfunc(without_null_deltas)
    smooth = not any(e.has(sp.DiracDelta) for e in hessian)
    # a log-likelihood with a kink (Abs(x - m)) has no observed information there
    out["observed"] = (
        [[Formula.of(hessian[i, j], lik) for j in range(n)] for i in range(n)] if smooth else None
    )
    idx = [list(model.parameter_symbols).index(p) for p in st.parameters]
    fisher = d.fisher.extract(idx, idx) if idx else sp.Matrix()
    # MAP (a prior): the standard errors come from the curvature of the log-posterior, not from
    # the Fisher information of the likelihood
    complete = bool(idx) and not any(e == sp.nan for e in fisher) and getattr(d, "prior", None) is None
    out["fisher"] = (
        [[Formula.of(fisher[i, j], lik) for j in range(n)] for i in range(n)] if complete else None
    )
    return out


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
        f = plan_formulas(d, timeout=timeout)
        var = f["variable"]
        self.parameters = tuple(f["parameters"])
        self.constants = tuple(f["constants"])
        self.kinds = dict(f["kinds"])
        self.formulas: dict[str, sp.Expr] = dict(f["display"])
        self.plan: dict[str, Any] = {
            "parameters": f["parameters"],
            "constants": f["constants"],
            "known": f["known"],
            "domains": f["domains"],
            "stats": {name: _pointwise(g, var) for name, g in f["stats"].items()},
            "raw": f["raw"],
            "centred": [(_pointwise(h, var), powers, pilot) for h, powers, pilot in f["centred"]],
            "residual": [
                (pilot, {name: _pointwise(q, var) for name, q in sums.items()})
                for pilot, sums in f["residual"]
            ],
            "closed": {name: fm.compile() for name, fm in f["closed"].items()},
            "quantiles": [
                (name, _pointwise(u, var), _pointwise(level, var), p) for name, u, level, p in f["quantiles"]
            ],
            "reduced": f["reduced"],
            "profile": [(name, fm.compile()) for name, fm in f["profile"]],
            "regular": f["regular"],
            "score": [fm.compile() for fm in f["score"]],
            "rounding": {name: b and (b[0].compile(), b[1].compile()) for name, b in f["rounding"].items()},
            "observed": None
            if f["observed"] is None
            else [[fm.compile() for fm in row] for row in f["observed"]],
            "fisher": None if f["fisher"] is None else [[fm.compile() for fm in row] for row in f["fisher"]],
            "logf": _pointwise(f["logf"], var),
            "needed": sorted(f["needed"]),
            "vectorised": f["vectorised"],
            "rowwise": f["rowwise"],
            "discrete": f["discrete"],
            "sums": f["sums"],
        }
        if f["reduced"]:
            self.plan["objective"] = f["objective"].compile()
            self.plan["gradient"] = [fm.compile() for fm in f["gradient"]]
            self.plan["hessian"] = [[fm.compile() for fm in row] for row in f["hessian"]]

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a runtime function on this plan; its errors become :class:`DataError`."""
        try:
            return fn(self.plan, *args, **kwargs)
        except _runtime.NoMLE as exc:
            raise DataError(str(exc)) from None

    def constant_values(self, **constants: float) -> dict[str, float]:
        """All constants' values by name (known ones and ``constants``); names a missing one."""
        return self._run(_runtime.constant_values, constants)

    def __call__(self, x: Any, **constants: float) -> dict[str, float]:
        """Maximum-likelihood estimates from data ``x`` (constants by name)."""
        return self.estimate(x, **constants)

    def estimate(self, x: Any, **constants: float) -> dict[str, float]:
        """Maximum-likelihood estimates from data ``x`` (constants by name)."""
        return self._run(_runtime.run_estimate, x, constants, size=CHUNK)

    def estimate_rows(self, rows: Any, **constants: float) -> dict[str, np.ndarray]:
        """Estimates of many data sets, one per row of a 2-D array: ``{param: array}``.

        Closed-form and order-statistic estimators run on all rows in one
        vectorised call; numeric kinds row by row.  ``nan`` marks a row
        whose MLE was not found.

        Examples
        --------
        >>> import numpy as np, symmle
        >>> est = symmle.derive("poisson").compile()
        >>> est.estimate_rows(np.array([[1, 2, 3], [4, 4, 4]]))["lam"]
        array([2., 4.])
        """
        return self._run(_runtime.run_estimate_rows, rows, constants)

    def statistics(self, x: Any, **constants: float) -> dict[str, float]:
        """``N``, the ``T_j``, centred sums ``U*`` and pilots ``c*``, ``_xmin``, ``_xmax``."""
        values = self.constant_values(**constants)
        return self._run(_runtime.statistics, _runtime.as_data(x), values, size=CHUNK)

    def covariance(
        self, x: Any, estimates: Mapping[str, float], **constants: float
    ) -> tuple[np.ndarray | None, str]:
        """Asymptotic covariance of the regular parameters and its source (expected/observed information)."""
        return self._run(_runtime.run_covariance, x, dict(estimates), constants, size=CHUNK)

    def estimate_with_stderr(
        self, x: Any, **constants: float
    ) -> tuple[dict[str, float], dict[str, float | None], str]:
        """``(estimates, standard errors, "expected" | "observed" | "")`` from one reduction of the data."""
        return self._run(_runtime.run_fit, x, constants, size=CHUNK)

    def stderr(self, x: Any, **constants: float) -> dict[str, float | None]:
        """Asymptotic standard errors at the estimate (``None`` where none exists)."""
        return self._run(_runtime.run_stderr, x, constants, size=CHUNK)

    def log_likelihood(self, x: Any, **params_and_constants: float) -> float:
        """:math:`\\sum_i \\log f(x_i)` at the given parameter and constant values."""
        return self._run(_runtime.run_log_likelihood, x, params_and_constants, size=CHUNK)

    @property
    def regular(self) -> list[str]:
        """Parameters with standard errors (the support does not depend on them)."""
        return list(self.plan["regular"])
