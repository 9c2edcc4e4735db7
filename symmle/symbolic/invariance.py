r"""Derived quantities: invariance of the MLE, the delta method, the information of a reparametrisation.

For a smooth function :math:`g(\theta)` of the parameters (:mod:`symmle.model.derived` reads it):

* by invariance, the MLE of :math:`g` is :math:`g(\hat\theta)`; where every parameter :math:`g`
  uses has a closed-form estimator, substituting it gives :math:`\hat g` in closed form;
* by the delta method, :math:`\operatorname{Var}(\hat g) \approx \nabla g^\top (N I)^{-1} \nabla g`
  with the exact gradient :math:`\nabla g`;
* where :math:`g` uses one parameter :math:`\theta_k` and is strictly monotone in it, it is a
  reparametrisation: :math:`\phi = g(\theta_k)`, :math:`\theta_k = h(\phi)`, and the information in
  :math:`(\phi, \text{others})` is :math:`J^\top I(\theta(\phi)) J` with :math:`J` the Jacobian of
  :math:`\theta` in the new parameters (one parameter: :math:`I_\phi = I_\theta / g'(\theta)^2`).

Every result is checked numerically before it is reported: the gradient against central finite
differences of :math:`g` at two parameter points, the variance against the quadratic form of those
finite differences with the numerically inverted information, the closed form against plain
substitution on data sets, and the reparametrised information against numerical integration
(summation) of :math:`-\partial^2 \log f(x; \theta(\phi))` over the model's density.  What fails or
cannot be checked is left out, with a note.  Each symbolic step runs under the time budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from symmle.base.numeric import to_function
from symmle.model.derived import DerivedSpec
from symmle.symbolic.expectation import SYMPY_FAILURES, as_real, numeric_expectation, try_step

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["DerivedQuantity", "Reparametrisation", "derive_quantities"]

#: What a derived quantity of a MAP derivation is, and is not.
MAP_NOTE = (
    "{name} is shown at the MAP estimate, g(theta_MAP): a plug-in, not the MAP of {name} (a MAP is not "
    "invariant under reparametrisation: the prior's density changes with a Jacobian) and not its MLE "
    "(g(theta_MLE), by invariance); its delta-method variance uses the likelihood's information, to "
    "which the MAP's asymptotic variance is equal to first order"
)

#: Relative tolerance of the numerical checks (finite differences are good to ~1e-8).
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Reparametrisation:
    r"""A one-to-one reparametrisation :math:`\phi = g(\theta_k)`: the parameter replaced, its inverse
    :math:`\theta_k = h(\phi)`, the new parameters, the Jacobian and the information in them."""

    replaced: str
    inverse: sp.Expr
    parameters: tuple[sp.Symbol, ...]
    jacobian: sp.Matrix
    fisher: sp.Matrix


@dataclass(frozen=True)
class DerivedQuantity:
    r"""What is derived for one derived quantity :math:`g(\theta)`.

    Attributes
    ----------
    name : str
    expr : Expr
        :math:`g` in the model's parameters and constants.
    symbol : Symbol
        :math:`\phi`, the new parameter's symbol (``positive`` where :math:`g` is known positive).
    domain : str
        ``"positive"`` or ``"real"``: the range of :math:`g` as far as it is known.
    gradient : tuple of Expr
        :math:`\partial g/\partial\theta_j`, in the model's parameter order (verified).
    estimator : Expr or None
        :math:`g(\hat\theta)` in closed form (``N``, ``T_j``, order statistics) where every parameter
        used has a closed-form estimator; ``None`` otherwise (the fit evaluates ``g`` at the estimates).
    variance : Expr or None
        The delta-method asymptotic variance :math:`\nabla g^\top (N I)^{-1} \nabla g` (verified).
    replaces : str or None
        The parameter that :math:`g` reparametrises one-to-one, if any.
    inverse : Expr or None
        :math:`\theta_k = h(\phi)` for a reparametrisation.
    parameters : tuple of Symbol
        The new parameters (:math:`\theta` with :math:`\theta_k` replaced by :math:`\phi`).
    jacobian : Matrix or None
        :math:`J = \partial\theta/\partial(\text{new parameters})`, in :math:`\phi`.
    fisher : Matrix or None
        The information of one observation in the new parameters (verified).
    notes : tuple of str
        What was left out and why.
    """

    name: str
    expr: sp.Expr
    symbol: sp.Symbol
    domain: str
    gradient: tuple[sp.Expr, ...]
    estimator: sp.Expr | None = None
    variance: sp.Expr | None = None
    replaces: str | None = None
    inverse: sp.Expr | None = None
    parameters: tuple[sp.Symbol, ...] = ()
    jacobian: sp.Matrix | None = None
    fisher: sp.Matrix | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def positive(self) -> bool:
        """Whether ``g`` is known to be positive (its intervals are then made on the log scale)."""
        return self.domain == "positive"

    @property
    def reparametrisation(self) -> Reparametrisation | None:
        """The one-to-one reparametrisation ``g`` makes, or ``None``."""
        if self.replaces is None or self.fisher is None:
            return None
        return Reparametrisation(self.replaces, self.inverse, self.parameters, self.jacobian, self.fisher)

    def gradient_at(self, d: Derivation, values: Mapping[str, float]) -> np.ndarray:
        """The gradient's value at named parameter and constant values (model parameter order)."""
        syms = list(d.model.parameter_symbols) + list(d.model.constant_symbols)
        f = to_function(syms, sp.Tuple(*self.gradient))
        return np.array([float(v) for v in f(*[values[s.name] for s in syms])], dtype=float)

    def value_at(self, d: Derivation, values: Mapping[str, float]) -> float:
        """:math:`g` at named parameter and constant values (``nan`` where it is undefined)."""
        syms = list(d.model.parameter_symbols) + list(d.model.constant_symbols)
        with np.errstate(all="ignore"):
            v = complex(to_function(syms, self.expr)(*[values[s.name] for s in syms]))
        return v.real if abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) else math.nan


def _on_domains(d: Derivation, e: sp.Expr) -> sp.Expr:
    """``e`` with each parameter written through its domain, so SymPy's sign rules see the bounds.

    A parameter in (0, 1) is ``t/(1 + t)`` with ``t`` positive (an increasing bijection onto
    (0, 1)): ``p/(1 - p)`` is then ``t``, known positive.  Other parameters keep their symbols
    (their assumptions already state their domain).
    """
    sub = {}
    for q in d.model.parameters:
        if q.domain == "unit":
            t = sp.Dummy(f"{q.name}_odds", positive=True)
            sub[q.symbol] = t / (1 + t)
    return e.xreplace(sub) if sub else e


def _range(d: Derivation, g: sp.Expr, timeout: float | None) -> str:
    """``"positive"`` where ``g`` is positive on the parameters' domains, else ``"real"``."""
    if g.is_positive:
        return "positive"
    on, _ = try_step("the sign of a derived quantity", timeout, lambda: sp.simplify(_on_domains(d, g)))
    return "positive" if on is not None and on.is_positive else "real"


def _points(d: Derivation) -> list[dict[sp.Symbol, float]]:
    """Two parameter points: the model's check point and a seeded random one inside the domains."""
    m = d.model
    base = m.point()
    rng = np.random.default_rng(20261204)
    other = dict(base)
    for q in m.parameters:
        v = base[q.symbol]
        if q.domain == "unit":
            other[q.symbol] = float(rng.uniform(0.2, 0.8))
        elif q.domain in ("positive", "nonnegative"):
            other[q.symbol] = v * float(np.exp(rng.uniform(-0.4, 0.4)))
        elif q.domain == "real":
            other[q.symbol] = v + float(rng.uniform(0.3, 0.9))
    return [base, other]


def _close(a: float, b: float, tol: float = TOLERANCE) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def _num(expr: sp.Expr, at: Mapping[sp.Symbol, float]) -> float:
    return as_real(expr.subs(at))


def _fd_gradient(g: sp.Expr, params: Sequence[sp.Symbol], at: Mapping[sp.Symbol, float]) -> np.ndarray:
    """Central finite differences of ``g`` (Richardson-extrapolated) at ``at``."""
    syms = list(at)
    f = to_function(syms, g)

    def value(shift: dict[sp.Symbol, float]) -> float:
        with np.errstate(all="ignore"):
            v = complex(f(*[at[s] + shift.get(s, 0.0) for s in syms]))
        return v.real if abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) else math.nan

    out = []
    for p in params:
        h = 1e-3 * max(1.0, abs(at[p]))
        d1 = (value({p: h}) - value({p: -h})) / (2 * h)
        d2 = (value({p: h / 2}) - value({p: -h / 2})) / h
        out.append((4 * d2 - d1) / 3)
    return np.array(out)


def _tidy(expr: sp.Expr, what: str, timeout: float | None) -> sp.Expr:
    """``expr`` simplified within the budget, else as it is."""
    found, _ = try_step(f"simplify the {what}", timeout, lambda: sp.factor(sp.simplify(expr)))
    return expr if found is None or found.has(sp.nan, sp.zoo) else found


def derive_quantities(
    d: Derivation, specs: Sequence[DerivedSpec], *, timeout: float | None = None
) -> tuple[DerivedQuantity, ...]:
    """Derive (and check) every derived quantity of ``specs`` for the derivation ``d``."""
    return tuple(_derive_one(d, s, timeout) for s in specs)


def _derive_one(d: Derivation, spec: DerivedSpec, timeout: float | None) -> DerivedQuantity:
    m = d.model
    g = spec.expr
    params = list(m.parameter_symbols)
    regular = list(d.stationarity.parameters)
    notes: list[str] = []
    if getattr(d, "prior", None) is not None:
        notes.append(MAP_NOTE.format(name=spec.name))
    domain = _range(d, g, timeout)
    if domain == "positive" and not all(_num(g, at) > 0 for at in _points(d)):  # checked, never assumed
        domain = "real"
    phi = sp.Symbol(spec.name, **({"positive": True} if domain == "positive" else {"real": True}))
    grad, _ = try_step(f"gradient of {spec.name}", timeout, lambda: tuple(sp.diff(g, p) for p in params))
    if grad is not None:  # each entry tidied (within the budget); the check below is on the tidy form
        grad = tuple(_tidy(e, f"gradient of {spec.name}", timeout) for e in grad)
    points = _points(d)
    if grad is None or not _gradient_checks(g, grad, params, points):
        notes.append(f"the gradient of {spec.name} was not found or failed its numerical check: no variance")
        return DerivedQuantity(spec.name, g, phi, domain, tuple(grad or ()), notes=tuple(notes))
    estimator = _estimator(d, spec.name, g, timeout, notes)
    used = [p for p in params if p in g.free_symbols]
    variance = None
    if any(p not in regular for p in used):
        irregular = ", ".join(p.name for p in used if p not in regular)
        notes.append(
            f"{spec.name} uses {irregular}, whose MLE is not asymptotically normal (the support depends "
            "on it): no delta-method variance"
        )
    elif d.crlb is None:
        notes.append(f"the Cramér–Rao bound is not available: no delta-method variance of {spec.name}")
    else:
        variance = _variance(d, spec.name, g, grad, regular, points, timeout, notes)
    found = _reparametrisation(d, spec.name, g, grad, phi, used, regular, points, timeout, notes)
    return DerivedQuantity(spec.name, g, phi, domain, grad, estimator, variance, *found, notes=tuple(notes))


def _gradient_checks(g, grad, params, points) -> bool:
    checked = 0
    for at in points:
        fd = _fd_gradient(g, params, at)
        exact = np.array([_num(e, at) for e in grad])
        if not (np.all(np.isfinite(fd)) and np.all(np.isfinite(exact))):
            continue  # g undefined near this point (log of a negative): try the next
        if not all(abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)) for a, b in zip(exact, fd)):
            return False
        checked += 1
    return checked > 0


def _estimator(d: Derivation, name: str, g: sp.Expr, timeout, notes: list[str]) -> sp.Expr | None:
    """:math:`g(\\hat\\theta)` in closed form, checked against plain substitution on data sets."""
    from symmle.symbolic.evaluate import verification_datasets

    sols = d.solutions
    used = [q for q in d.model.parameters if q.symbol in g.free_symbols]
    if any(sols[q.name].kind not in ("closed_form", "boundary") or sols[q.name].expr is None for q in used):
        return None
    raw = g.subs({q.symbol: sols[q.name].expr for q in used}, simultaneous=True)
    tidy = _tidy(raw, f"estimator of {name}", timeout)
    if tidy is raw:
        return raw
    lik = d.likelihood
    point = d.model.point()
    consts = {q.symbol: point[q.symbol] for q in d.model.constants}
    try:
        for data in verification_datasets(lik, consts, point):
            values = {**lik.statistic_values(data, consts), **consts}
            a, b = as_real(raw.subs(values)), as_real(tidy.subs(values))
            if math.isfinite(a) and not _close(a, b, 1e-9):
                return raw
    except SYMPY_FAILURES:
        return raw
    return tidy


def _fisher_at(d: Derivation, at: Mapping[sp.Symbol, float], idx: list[int]) -> np.ndarray:
    return np.array([[_num(d.fisher[i, j], at) for j in idx] for i in idx], dtype=float)


def _variance(d, name, g, grad, regular, points, timeout, notes) -> sp.Expr | None:
    params = list(d.model.parameter_symbols)
    idx = [params.index(p) for p in regular]
    crlb = d.crlb
    raw = sp.S.Zero
    for a in idx:
        for b in idx:
            if grad[a] != 0 and grad[b] != 0:
                raw += grad[a] * crlb[a, b] * grad[b]
    if raw.has(sp.nan):
        notes.append(f"the Cramér–Rao bound has missing entries: no delta-method variance of {name}")
        return None
    variance = _tidy(raw, f"variance of {name}", timeout)
    N = d.likelihood.N
    checked = 0
    for at in points:
        fd = _fd_gradient(g, [params[i] for i in idx], at)
        info = _fisher_at(d, at, idx)
        if not (np.all(np.isfinite(fd)) and np.all(np.isfinite(info))):
            continue
        try:
            cov = np.linalg.inv(10.0 * info)
        except np.linalg.LinAlgError:
            continue
        expected = float(fd @ cov @ fd)
        got = _num(variance, {**at, N: 10})
        if not _close(got, expected):
            notes.append(
                f"the delta-method variance of {name} failed its numerical check "
                f"({got:.8g} against {expected:.8g}): it is left out"
            )
            return None
        checked += 1
    if not checked:
        notes.append(f"the delta-method variance of {name} could not be checked numerically: it is left out")
        return None
    return variance


def _one_to_one(d: Derivation, dg: sp.Expr, timeout: float | None) -> bool:
    """``g`` is strictly monotone on the parameter's domain (its derivative has one sign there)."""
    if dg.is_positive or dg.is_negative:
        return True
    on, _ = try_step("the sign of a derivative", timeout, lambda: sp.simplify(_on_domains(d, dg)))
    return on is not None and (bool(on.is_positive) or bool(on.is_negative))


def _reparametrisation(d, name, g, grad, phi, used, regular, points, timeout, notes) -> tuple:
    """``(replaces, inverse, parameters, jacobian, fisher)`` of a one-to-one reparametrisation, or Nones."""
    none = (None, None, (), None, None)
    params = list(d.model.parameter_symbols)
    if len(used) != 1:
        return none
    (p,) = used
    k = params.index(p)
    if p not in regular or len(regular) != len(params):
        return none
    if not _one_to_one(d, grad[k], timeout):
        notes.append(
            f"{name} is not shown to be one-to-one in {p.name}: no reparametrised information "
            "(its delta-method variance stands)"
        )
        return none
    if any(e == sp.nan for e in d.fisher):
        return none
    roots, _ = try_step(
        f"solve {name} = g({p.name}) for {p.name}", timeout, lambda: sp.solve(sp.Eq(phi, g), p)
    )
    inverse = None
    for h in roots or ():
        if _inverse_checks(g, h, p, phi, points):
            inverse = h
            break
    if inverse is None:
        notes.append(f"{p.name} could not be written as a function of {name}: no reparametrised information")
        return none
    new = tuple(phi if q == p else q for q in params)
    dh, _ = try_step(f"derivative of {p.name}({name})", timeout, lambda: sp.diff(inverse, phi))
    if dh is None:
        return none
    J = sp.eye(len(params))
    J[k, k] = dh
    at_phi = d.fisher.xreplace({p: inverse})
    raw = J.T * at_phi * J
    fisher = raw.applyfunc(lambda e: _tidy(e, f"information in {name}", timeout))
    if not _fisher_checks(d, fisher, g, inverse, phi, new, points[0]):
        notes.append(
            f"the information in the parameters ({', '.join(s.name for s in new)}) failed its "
            "numerical check against the model written in them: it is left out"
        )
        return none
    return p.name, inverse, new, J, fisher


def _inverse_checks(g, h, p, phi, points) -> bool:
    """``h(g(theta)) = theta`` at the check points (the root that maps back)."""
    ok = 0
    for at in points:
        v0 = _num(g, at)
        if not math.isfinite(v0):
            continue
        back = _num(h, {**at, phi: v0})
        if not _close(back, at[p], 1e-9):
            return False
        ok += 1
    return ok > 0


def _fisher_checks(d, fisher, g, inverse, phi, new, at) -> bool:
    """Each entry against quadrature of ``-d2 log f(x; theta(phi))`` (or the score product) at ``at``.

    The log-density is written in the new parameters (``theta_k = h(phi)``) and differentiated afresh:
    a check of the whole chain rule, not of the product ``J^T I J`` alone.
    """
    m = d.model
    (p,) = [q for q in m.parameter_symbols if q not in new]
    logf = d.likelihood.log_density.xreplace({p: inverse})
    outer = any(any(row) for row in d.information.outer)
    phi_value = _num(g, at)
    if not math.isfinite(phi_value):
        return False
    numeric_at = {**at, phi: phi_value}
    n = len(new)
    for a in range(n):
        for b in range(a, n):
            if outer:
                integrand = sp.diff(logf, new[a]) * sp.diff(logf, new[b])
            else:
                integrand = -sp.diff(logf, new[a], new[b])
            try:
                found = numeric_expectation(m, integrand.subs({phi: phi_value}), at)
            except (*SYMPY_FAILURES, NameError, OverflowError):
                return False
            if found is None:
                return False
            value = _num(fisher[a, b], numeric_at)
            if not (math.isfinite(value) and abs(value - found[0]) <= 1e-6 * max(1.0, abs(found[0]))):
                return False
    return True
