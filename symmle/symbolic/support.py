r"""Parameters that set the support: the MLE where a support constraint binds.

The likelihood is zero unless every observation lies in the support
:math:`[a(\theta), b(\theta)]`.  Each end that moves with :math:`\theta`
gives a constraint on it from an order statistic: :math:`a(\theta) \le
\min_i x_i` and :math:`b(\theta) \ge \max_i x_i`.  Solved for
:math:`\theta` where it binds, each is a bound :math:`\theta \ge r` or
:math:`\theta \le r`, as the end rises or falls with :math:`\theta`; the
feasible set is the intersection of these bounds (an end each, or both ends
set by one parameter, as in :math:`U(\theta, 2\theta)` or
:math:`U(-\theta, \theta)`).  If the log-likelihood is monotone on it, the
MLE is the bound it climbs towards: the largest lower bound when it
decreases, the smallest upper bound when it increases.

The sign of the derivative is proved where SymPy can (assumptions, or a
factor of :math:`\theta` alone without zero or discontinuity on the
domain: :func:`symmle.symbolic.estimator.sign_on`), and otherwise checked
on test data across the feasible set, which the estimator's note says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.symbolic.estimator import Estimator, admissible, sign_on, solve
from symmle.symbolic.evaluate import Formula, SampleEvaluator, verification_datasets
from symmle.symbolic.likelihood import Likelihood

__all__ = ["Constraint", "SupportBound", "support_estimator"]


@dataclass(frozen=True)
class Constraint:
    """One end of the support as a bound on the parameter.

    Attributes
    ----------
    upper : bool
        From the upper end of the support (else the lower end).
    end : Expr
        The end, a function of the parameter.
    order : Expr
        The order statistic it must not cross: ``Max(x)`` for the upper end, ``Min(x)`` for the lower.
    root : Expr
        The parameter's value where the constraint binds.
    above : bool
        The feasible side: the parameter ``>= root`` (else ``<= root``).
    """

    upper: bool
    end: sp.Expr
    order: sp.Expr
    root: sp.Expr
    above: bool

    def relation(self) -> sp.Rel:
        """The constraint on the data: ``end >= Max(x)`` or ``end <= Min(x)``."""
        return (
            sp.Ge(self.end, self.order, evaluate=False)
            if self.upper
            else sp.Le(self.end, self.order, evaluate=False)
        )

    def bound(self, theta: sp.Symbol) -> sp.Rel:
        """The constraint on the parameter: ``theta >= root`` or ``theta <= root``."""
        return (
            sp.Ge(theta, self.root, evaluate=False) if self.above else sp.Le(theta, self.root, evaluate=False)
        )


@dataclass(frozen=True)
class SupportBound:
    """How the MLE of a parameter that sets the support was found.

    Attributes
    ----------
    constraints : tuple of Constraint
        One per end of the support the parameter moves.
    direction : int
        -1 when the log-likelihood decreases in the parameter on the feasible set, +1 when it increases.
    proved : bool
        Whether that sign was proved symbolically (else checked on test data).
    """

    constraints: tuple[Constraint, ...]
    direction: int
    proved: bool


def _none(name: str, note: str) -> tuple[Estimator, None]:
    return Estimator(name, "none", note=note), None


def support_estimator(
    lik: Likelihood, theta: sp.Symbol, timeout: float | None
) -> tuple[Estimator, SupportBound | None]:
    """The MLE of ``theta``, which sets one or both ends of the support (see the module docstring).

    Examples
    --------
    >>> import symmle
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> m = symmle.inline_model("1/theta", "x", "theta,2*theta", ["theta:positive"])
    >>> est, how = support_estimator(build_likelihood(m), m.parameter_symbols[0], None)
    >>> est.kind, est.expr, how.direction, how.proved
    ('boundary', Max(x)/2, -1, True)
    >>> [str(c.bound(m.parameter_symbols[0])) for c in how.constraints]
    ['theta <= Min(x)', 'theta >= Max(x)/2']
    """
    model = lik.model
    name = theta.name
    domain = {q.symbol: q.domain for q in model.parameters}[theta]
    others = set(model.parameter_symbols) - {theta}
    point = model.point()
    constraints = []
    for upper, end in zip((False, True), model.support):
        if theta not in end.free_symbols:
            continue
        side = "upper" if upper else "lower"
        order = lik.order_statistics[1 if upper else 0]
        roots = solve([end - order], [theta], timeout, f"solve the support constraint for {name}")
        good = [
            r[theta]
            for r in roots or []
            if theta in r and admissible(r[theta], domain) and not (r[theta].free_symbols & others)
        ]
        if len(good) != 1:
            return _none(name, f"the constraint from the {side} end of the support has no unique solution")
        slope_expr = sp.diff(end, theta)
        slope = sign_on(slope_expr, theta, domain, timeout) or int(np.sign(float(slope_expr.subs(point))))
        if slope == 0:
            return _none(name, f"the {side} end of the support does not move with it")
        # the feasible side lies above the root when the upper end rises, or the lower end falls
        constraints.append(Constraint(upper, end, order, good[0], (slope > 0) == upper))
    lower = [c.root for c in constraints if c.above]
    upper_ = [c.root for c in constraints if not c.above]
    dl = sp.diff(lik.log_likelihood, theta)
    sign = sign_on(dl, theta, domain, timeout)
    direction, proved, verified = 0, sign != 0, True
    checker = _Monotone(lik, theta, lower, upper_, dl)
    if sign == -1 and lower or sign == 1 and upper_:
        direction = sign
        # the proof is cross-checked on numbers all the same
        verified = checker.holds(direction)
    elif sign != 0:
        way = "decreases" if sign < 0 else "increases"
        return _none(name, f"the log-likelihood {way} in {name} with no support constraint to stop it")
    else:
        for want, bounds in ((-1, lower), (1, upper_)):
            if bounds and checker.holds(want):
                direction = want
                break
    if direction == 0:
        return _none(name, "the likelihood is not monotone on the feasible set")
    binding = lower if direction < 0 else upper_
    root = binding[0] if len(binding) == 1 else (sp.Max(*binding) if direction < 0 else sp.Min(*binding))
    if domain in ("integer", "positive_integer") and not root.is_integer:
        root = sp.ceiling(root) if direction < 0 else sp.floor(root)
    way = "decreasing" if direction < 0 else "increasing"
    if len(constraints) == 1:
        side = "largest" if constraints[0].upper else "smallest"
        note = (
            f"the log-likelihood is {way} in {name} on the feasible set, "
            f"so the constraint from the {side} observation binds"
        )
    else:
        bounds = " and ".join(str(c.bound(theta)) for c in constraints)
        which = "largest lower" if direction < 0 else "smallest upper"
        note = (
            f"both ends of the support move with {name}: the data need {bounds}; "
            f"the log-likelihood is {way} in {name} on this feasible set, so the {which} bound binds"
        )
    if not proved:
        note += " (the sign of the derivative was checked on test data, not proved)"
    return (
        Estimator(name, "boundary", expr=root, verified=verified, note=note),
        SupportBound(tuple(constraints), direction, proved),
    )


class _Monotone:
    """The sign of the derivative across the feasible set, on test data."""

    def __init__(
        self, lik: Likelihood, theta: sp.Symbol, lower: list[sp.Expr], upper: list[sp.Expr], dl: sp.Expr
    ) -> None:
        model = lik.model
        self.lik, self.theta = lik, theta
        self.point = model.point()
        self.constants = model.constant_point()
        self.domain = {q.symbol: q.domain for q in model.parameters}[theta]
        self.others = [q for q in model.parameters if q.symbol is not theta]

        def compiled(e: sp.Expr):
            return Formula.of(e.subs(self.constants), lik).compile()

        self.lower = [compiled(r) for r in lower]
        self.upper = [compiled(r) for r in upper]
        self.dl = compiled(dl)
        self.ell = compiled(lik.log_likelihood)

    def holds(self, want: int) -> bool:
        """Whether ``want`` (-1 decreasing, +1 increasing) is the sign across the feasible set."""
        rng = np.random.default_rng(11)
        for data in verification_datasets(self.lik, self.constants, self.point):
            ev = SampleEvaluator(self.lik, data, self.constants)
            lo = max((f(ev.values, data) for f in self.lower), default=-np.inf)
            hi = min((f(ev.values, data) for f in self.upper), default=np.inf)
            if np.isnan(lo) or np.isnan(hi) or lo > hi or not (np.isfinite(lo) or np.isfinite(hi)):
                return False
            # from the binding bound into the feasible set
            start, inward = (lo, 1.0) if want < 0 else (hi, -1.0)
            if np.isfinite(lo) and np.isfinite(hi):
                points = start + inward * (hi - lo) * np.array([1e-9, 1e-3, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
            else:
                steps = np.array([1e-6, 1e-3, 0.1, 1.0, 10.0, 1e3])
                points = np.r_[start + inward * steps * (abs(start) + 1), start * (1 + inward * steps[:3])]
                points = np.sort(points)[:: int(inward)]
            points = [t for t in points if in_domain(float(t), self.domain) and lo <= t <= hi]
            if not points:
                return False
            for _ in range(3):
                values = dict(ev.values)
                for q in self.others:
                    scale = (
                        1.0 if q.domain in ("integer", "positive_integer") else float(rng.uniform(0.5, 1.5))
                    )
                    values[q.name] = self.point[q.symbol] * scale
                if not self._falls(values, data, points, want):
                    return False
        return True

    def _falls(self, values: dict, data: np.ndarray, points: list[float], want: int) -> bool:
        """The log-likelihood falls from the binding bound inwards, and its derivative has the wanted sign.

        A derivative that underflows to 0 far from the bound is no counterexample as long as the
        log-likelihood does not rise there.
        """
        name = self.theta.name
        slopes = [want * self.dl({**values, name: float(t)}, data) for t in points]
        ells = [self.ell({**values, name: float(t)}, data) for t in points]
        if not all(np.isfinite(slopes)) or not all(np.isfinite(ells)) or not slopes[0] > 0:
            return False
        if any(s < 0 for s in slopes):
            return False
        return all(b <= a + 1e-12 * (abs(a) + 1) for a, b in zip(ells, ells[1:]))
