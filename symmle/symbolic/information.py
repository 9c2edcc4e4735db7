r"""Fisher information, Cramér–Rao bound, and their numerical verification.

The per-observation information is :math:`I(\theta) = -E[\partial^2 \log f]`.
With the split of :mod:`symmle.symbolic.likelihood`, the second derivatives are
linear in the functions :math:`g_j(x)`, so only the expectations
:math:`E[g_j(X)]` are needed.  They are found, cheapest first, by

1. the score identities :math:`E[\partial_k \log f] = 0`, a linear system in
   the :math:`E[g_j]` (exact for exponential families, no integration);
2. direct integration or summation of :math:`g f` over the support;
3. the substitution :math:`u = \log x` for positive supports.

Every entry is then compared with quadrature (or summation) of
:math:`-\partial^2 \log f \cdot f` at a parameter point; an entry that
cannot be found or fails the check is reported as missing, never guessed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symmle.base.budget import attempt
from symmle.base.numeric import to_function
from symmle.base.quadrature import integrate_support, sum_support
from symmle.model.density import density_function
from symmle.model.spec import Model
from symmle.symbolic.likelihood import Likelihood

__all__ = ["Information", "fisher_information"]


@dataclass(frozen=True)
class Information:
    """Fisher information of one observation and the Cramér–Rao bound.

    Made by :func:`fisher_information`.

    Attributes
    ----------
    fisher : Matrix
        :math:`I(\\theta)`, in the model's parameter order.  Entries that do
        not exist (non-regular parameters) or could not be found are ``nan``.
    crlb : Matrix or None
        :math:`(N I)^{-1}`; ``None`` where it cannot be formed.
    verified : tuple of tuple of bool
        ``verified[i][j]`` says whether entry ``(i, j)`` passed its
        numerical check.
    expectations : dict of Expr to Expr
        The expectations :math:`E[g(X)]` the entries were computed from.
    warnings : tuple of str

    Examples
    --------
    >>> from symmle import derive
    >>> info = derive("normal").information
    >>> info.fisher
    Matrix([
    [1/sigma2,               0],
    [       0, 1/(2*sigma2**2)]])
    >>> info.verified, info.expectations
    (((True, True), (True, True)), {x: mu, x**2: mu**2 + sigma2})
    >>> derive("uniform").information.fisher   # the support depends on theta
    Matrix([[nan]])
    """

    fisher: sp.Matrix
    crlb: sp.Matrix | None
    verified: tuple[tuple[bool, ...], ...]
    expectations: dict[sp.Expr, sp.Expr] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _expectation_by_identities(
    lik: Likelihood, regular: list[sp.Symbol], timeout: float | None
) -> dict[sp.Expr, sp.Expr]:
    """Solve the score identities :math:`E[\\partial_k \\log f] = 0` for the :math:`E[g_j]`."""
    unknowns = {
        s.expr: sp.Dummy(f"E{s.symbol.name}") for s, c in lik.coefficients if c.free_symbols & set(regular)
    }
    if not unknowns:
        return {}
    coupled_unknowns = []
    eqs = []
    for p in regular:
        e = sp.diff(lik.baseline, p) + sum(
            (sp.diff(c, p) * unknowns[s.expr] for s, c in lik.coefficients if s.expr in unknowns), sp.S.Zero
        )
        if lik.coupled != 0 and lik.coupled.has(p):
            # E[d h / d theta] is an unknown of its own, left undetermined
            d = sp.Dummy("Eh")
            coupled_unknowns.append(d)
            e += d
        eqs.append(e)
    syms = list(unknowns.values()) + coupled_unknowns

    def run():
        sol = sp.linsolve(eqs, syms)
        return next(iter(sol)) if sol else None

    sol, _ = _attempt("expectations from the score identities", timeout, run)
    if sol is None:
        return {}
    out = {}
    free = set(syms)
    for g, value in zip(unknowns, sol):
        if not (value.free_symbols & free):
            out[g] = sp.simplify(value)
    return out


def _by_mellin(model: Model, g: sp.Expr) -> sp.Expr | None:
    r""":math:`E[a(X) \log^m X] = \partial_s^m E[a(X) X^s]|_{s=0}`, term by term.

    Integrals with powers of :math:`\log x` are hard for SymPy, while the
    moment :math:`E[a(X) X^s]` often has a quick closed form (a Mellin
    transform); differentiating it in :math:`s` brings the logarithms back.
    """
    x, f = model.variable, model.density
    lo, hi = model.support
    s = sp.Dummy("s", positive=True)
    parts = sp.collect(sp.expand(g), sp.log(x), evaluate=False)
    total = sp.S.Zero
    for power, coeff in parts.items():
        m = 0 if power == 1 else sp.degree(power, sp.log(x)) if power.has(sp.log(x)) else None
        if m is None or coeff.has(sp.log(x)):
            return None
        moment = sp.integrate(coeff * x**s * f, (x, lo, hi), conds="none")
        if moment.has(sp.Integral, sp.nan, sp.zoo):
            return None
        total += sp.diff(moment, s, m).subs(s, 0)
    return sp.simplify(total)


@dataclass(frozen=True)
class _Standard:
    """A location-scale form: ``X = loc + scale * t`` with ``t`` free of both."""

    t: sp.Symbol
    loc: sp.Expr
    scale: sp.Expr
    density: sp.Expr  #: density of t
    support: tuple[sp.Expr, sp.Expr]


def _standardise(model: Model) -> _Standard | None:
    r"""Find a location and/or scale among the model's symbols.

    If :math:`s\,f(l + s t)` and the mapped support are free of :math:`l` and
    :math:`s`, expectations become integrals against a fixed density of
    :math:`t`, which SymPy handles far more easily (Cauchy, logistic...).
    """
    if model.discrete:
        return None
    x, f = model.variable, model.density
    quantities = (*model.parameters, *model.constants)
    locs = [None] + [q.symbol for q in quantities if q.domain == "real" and q.symbol in f.free_symbols]
    scales = [None] + [q.symbol for q in quantities if q.domain == "positive" and q.symbol in f.free_symbols]
    t = sp.Symbol("t", real=True)
    for loc in locs:
        for scale in scales:
            if loc is None and scale is None:
                continue
            shift, sc = loc if loc is not None else sp.S.Zero, scale if scale is not None else sp.S.One
            moved = {v for v in (loc, scale) if v is not None}
            support = tuple(sp.simplify((e - shift) / sc) for e in model.support)
            if any(e.free_symbols & moved for e in support):
                continue
            f0 = sp.simplify(f.subs(x, shift + sc * t) * sc)
            if not (f0.free_symbols & moved):
                return _Standard(t, shift, sc, f0, support)  # type: ignore[arg-type]
    return None


def _integrate_expectation(
    model: Model, g: sp.Expr, timeout: float | None, std: _Standard | None = None
) -> sp.Expr | None:
    """:math:`E[g(X)]` by symbolic integration or summation, or ``None``."""
    x, f = model.variable, model.density
    lo, hi = model.support

    def direct():
        if model.discrete:
            r = sp.summation(g * f, (x, lo, hi))
        else:
            r = sp.integrate(g * f, (x, lo, hi), conds="none")
        return None if r.has(sp.Integral, sp.Sum, sp.nan, sp.zoo) else sp.simplify(r)

    if not model.discrete and lo.is_nonnegative and g.has(sp.log(x)):
        value, _ = _attempt(f"E[{g}] by moments in log {x}", timeout, lambda: _by_mellin(model, g))
        if value is not None:
            return value
    if std is not None:

        def standardised():
            h = sp.simplify(g.subs(x, std.loc + std.scale * std.t))
            r = sp.integrate(h * std.density, (std.t, *std.support), conds="none")
            return None if r.has(sp.Integral, sp.nan, sp.zoo) else sp.simplify(r)

        value, _ = _attempt(f"E[{g}] in standard form", timeout, standardised)
        if value is not None:
            return value

    value, _ = _attempt(f"E[{g}] by {'summation' if model.discrete else 'integration'}", timeout, direct)
    if value is not None or model.discrete or not lo.is_nonnegative:
        return value
    u = sp.Symbol("u", real=True)

    def by_log():
        integrand = sp.expand_log((g * f).subs(x, sp.exp(u)) * sp.exp(u), force=True)
        r = sp.integrate(
            sp.powsimp(integrand),
            (u, sp.log(lo) if lo != 0 else -sp.oo, sp.log(hi) if hi != sp.oo else sp.oo),
            conds="none",
        )
        return None if r.has(sp.Integral, sp.nan, sp.zoo) else sp.simplify(r)

    value, _ = _attempt(f"E[{g}] with u = log {x}", timeout, by_log)
    return value


#: What SymPy raises when a strategy does not apply (an undecidable condition in
#: ``integrate``, an unsupported form): the strategy has failed, nothing more.
_SYMPY_FAILURES = (
    TypeError,
    ValueError,
    NotImplementedError,
    AttributeError,
    ZeroDivisionError,
    RecursionError,
    sp.PolynomialError,
)


def _attempt(step: str, seconds: float | None, fn):
    """:func:`attempt`, with a strategy that raises counted as one that found nothing."""
    try:
        return attempt(step, seconds, fn)
    except _SYMPY_FAILURES:
        return None, False


def _where(point: Mapping[sp.Symbol, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point.items())


def _as_real(value: sp.Expr) -> float:
    """A real number from a SymPy value, ``nan`` if it is not one."""
    try:
        z = complex(sp.N(value, 30))
    except (TypeError, ValueError):
        return math.nan
    return z.real if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real)) else math.nan


def _numeric_entry(model: Model, expr_x: sp.Expr, point: Mapping[sp.Symbol, float]):
    """Quadrature/summation of ``expr_x * f`` over the support at ``point``, and the rounding it inherits.

    Returns ``(value, rounding)`` with ``rounding()`` a bound on the error
    that the density's own rounding puts into a sum (``sum |expr_x f| eps_f``,
    ``eps_f`` from ``f.rounding``: large where ``log f`` holds
    ``loggamma(n + 1)`` at a huge ``n``), 0 for an integral; computed only
    when asked.  ``None`` if a finite sum did not settle.
    """
    f = density_function(model, point)
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


def _entry(
    lik: Likelihood,
    logf_parts: sp.Expr,
    expectations: dict,
    p: sp.Symbol,
    q: sp.Symbol,
    timeout: float | None,
    std: _Standard | None = None,
):
    """``(E[-d2 log f / dp dq], -d2 log f / dp dq)`` or ``None`` if an expectation is not found."""
    model = lik.model
    inner = None if timeout is None else timeout / 3
    d2 = -sp.diff(logf_parts, p, q)
    # E[-d2]: replace each g_j by its expectation, integrate what is left
    value = -sp.diff(lik.baseline, p, q)
    for s, c in lik.coefficients:
        c2 = sp.diff(c, p, q)
        if c2 == 0:
            continue
        if s.expr not in expectations:
            e = _integrate_expectation(model, s.expr, inner, std)
            if e is None:
                return None
            expectations[s.expr] = e
        value -= c2 * expectations[s.expr]
    if lik.coupled != 0:
        h2 = sp.diff(lik.coupled, p, q)
        if h2 != 0:
            e = _integrate_expectation(model, h2, inner, std)
            if e is None:
                return None
            value -= e
    return sp.simplify(value), d2


def fisher_information(
    lik: Likelihood, regular: list[sp.Symbol], *, timeout: float | None = None
) -> Information:
    """Per-observation Fisher information of ``lik``'s model.

    Parameters
    ----------
    lik : Likelihood
    regular : list of Symbol
        Regular parameters (the support does not depend on them).  The
        information of the others does not exist; their rows are ``nan``.
    timeout : float, optional
        Budget of each symbolic step.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> lam = load_model("exponential").symbols["lam"]
    >>> fisher_information(build_likelihood(load_model("exponential")), [lam]).fisher
    Matrix([[lam**(-2)]])
    """
    model = lik.model
    params = list(model.parameter_symbols)
    n = len(params)
    warnings: list[str] = []
    logf_parts = lik.baseline + sum((c * s.expr for s, c in lik.coefficients), sp.S.Zero) + lik.coupled
    expectations = _expectation_by_identities(lik, regular, timeout)
    # a location-scale form helps with what the identities leave to integration
    std = None
    if lik.coupled != 0:
        std, _ = _attempt("location-scale form", timeout, lambda: _standardise(model))
    point = model.point()
    entries = [[sp.nan] * n for _ in range(n)]
    verified = [[False] * n for _ in range(n)]
    # the entries share one budget: a model whose expectations do not integrate
    # costs one time-out, not one per entry
    deadline = None if timeout is None else time.monotonic() + timeout
    for a in range(n):
        for b in range(a, n):
            p, q = params[a], params[b]
            if p not in regular or q not in regular:
                continue
            name = f"I[{p},{q}]"
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0.05:
                warnings.append(
                    f"Fisher information entry {name} was not attempted: "
                    f"the {timeout:g} s budget of the Fisher information ran out"
                )
                continue
            found, timed_out = _attempt(
                f"Fisher information {name}",
                left,
                lambda p=p, q=q, left=left: _entry(lik, logf_parts, expectations, p, q, left, std),
            )
            if found is None:
                why = (
                    f"timed out after {timeout:g} s"
                    if timed_out
                    else "has no closed form that symmle could find"
                )
                warnings.append(f"Fisher information entry {name} {why}")
                continue
            value, d2 = found
            if d2.has(sp.DiracDelta) or value.has(sp.DiracDelta):
                warnings.append(
                    f"Fisher information entry {name} does not exist: "
                    f"the log-density is not twice differentiable in {p} and {q}"
                )
                continue
            try:
                found_numeric = _numeric_entry(model, d2, point)
            except (*_SYMPY_FAILURES, NameError):
                found_numeric = None
            if found_numeric is None:
                warnings.append(
                    f"Fisher information entry {name} = {value} could not be checked numerically; "
                    "not reported"
                )
                continue
            numeric, rounding = found_numeric
            symbolic = _as_real(value.subs(point))
            ok = math.isfinite(symbolic) and abs(symbolic - numeric) <= 1e-6 * max(1.0, abs(numeric))
            if math.isfinite(symbolic) and not ok:
                # the sum is only as good as its terms: a pmf computed to 1e-5 (huge n) widens the check
                ok = abs(symbolic - numeric) <= 8 * rounding()
            if not ok:
                warnings.append(
                    f"Fisher information entry {name} = {value} failed its numerical check "
                    f"({symbolic:.8g} vs quadrature {numeric:.8g}); not reported"
                )
                continue
            entries[a][b] = entries[b][a] = value
            verified[a][b] = verified[b][a] = True
    for p in params:
        if p not in regular:
            warnings.append(f"the Fisher information for {p} does not exist (the support depends on {p})")
    fisher = sp.Matrix(entries)
    idx = [params.index(p) for p in regular]
    if idx and all(verified[i][j] for i in idx for j in idx):
        values = np.array([[_as_real(fisher[i, j].subs(point)) for j in idx] for i in idx])
        if not np.all(np.isfinite(values)) or np.min(np.linalg.eigvalsh(values)) <= 0:
            warnings.append(f"the Fisher information is not positive definite at {_where(point)}")
    crlb = None
    sub = fisher.extract(idx, idx) if idx else sp.Matrix()
    if idx and not any(e == sp.nan for e in sub):
        inv, timed_out = _attempt("Cramér–Rao bound", timeout, lambda: sp.simplify(sub.inv() / lik.N))
        if inv is not None:
            crlb = sp.Matrix(n, n, lambda i, j: sp.nan)
            for r, i in enumerate(idx):
                for c, j in enumerate(idx):
                    crlb[i, j] = inv[r, c]
    return Information(fisher, crlb, tuple(map(tuple, verified)), expectations, tuple(warnings))
