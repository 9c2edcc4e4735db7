r"""Parameters in which the log-likelihood is piecewise linear: quantiles by the subgradient.

Where a parameter :math:`m` enters the log-likelihood only through a sum of
absolute values and a linear term,

.. math::

    \ell(m, \phi) = w(\phi) \sum_{i=1}^N |m - u(x_i)| + k(\phi)\, N m + R(\phi),
    \qquad w(\phi) < 0,

the function is concave and piecewise linear in :math:`m`, with kinks at the
:math:`u(x_i)`, and has no derivative there: the score equation has no root
in general.  Its maximum is where the subgradient contains 0.  Between kinks,
with :math:`L` of the :math:`u(x_i)` below :math:`m`, the slope is
:math:`N k + w (2L - N)`; it is positive while :math:`L < N q` and negative
once :math:`L > N q`, with

.. math::

    q = \frac{1 - k/w}{2}.

So the maximiser is the sample :math:`q`-quantile of the :math:`u(x_i)` (the
median when :math:`k = 0`, as for the Laplace location), whatever
:math:`\phi`, provided :math:`q` does not depend on :math:`\phi` and lies in
:math:`(0, 1)`.  When :math:`N q` is a whole number the slope is 0 between the
:math:`N q`-th and the next order statistic: every point of that interval is a
maximiser, and the estimate is its midpoint
(:func:`symmle.symbolic.likelihood.sample_quantile`).  On that interval
:math:`\ell` does not change with :math:`m` for any :math:`\phi`, so the other
parameters' estimates do not depend on the choice.

Nothing here knows a family: the structure is read off the log-likelihood,
and the result is checked on test data against every kink and every
midpoint between kinks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base.numeric import to_function
from symmle.symbolic.estimator import Estimator
from symmle.symbolic.evaluate import Formula, SampleEvaluator, verification_datasets
from symmle.symbolic.likelihood import Likelihood, sample_quantile

__all__ = ["Kink", "find_kink", "kink_estimator"]


@dataclass(frozen=True)
class Kink:
    r"""A parameter in which the log-likelihood is piecewise linear (see the module docstring).

    Attributes
    ----------
    parameter : Symbol
    weight : Expr
        :math:`w`, the (negative) coefficient of :math:`\sum_i |m - u(x_i)|`.
    slope : Expr
        :math:`k`, the coefficient of :math:`N m`.
    u : Expr
        :math:`u(x)`, where the kinks are.
    level : Expr
        :math:`q`, the quantile that maximises.
    estimator : Expr
        ``Median(u)`` or ``Quantile(u, q)``.
    """

    parameter: sp.Symbol
    weight: sp.Expr
    slope: sp.Expr
    u: sp.Expr
    level: sp.Expr
    estimator: sp.Expr


def find_kink(lik: Likelihood, ell: sp.Expr, m: sp.Symbol) -> Kink | None:
    """The piecewise-linear structure of ``ell`` in ``m``, or ``None`` where it has none.

    Examples
    --------
    >>> import symmle
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> model = symmle.inline_model("exp(-Abs(x-m)/b)/(2*b)", "x", "-oo,oo", ["m:real", "b:positive"])
    >>> lik = build_likelihood(model)
    >>> k = find_kink(lik, lik.log_likelihood, model.parameter_symbols[0])
    >>> k.weight, k.slope, k.level, k.estimator
    (-1/b, 0, 1/2, Median(x))
    """
    model = lik.model
    x = model.variable
    others = set(model.parameter_symbols) - {m}
    _, dependent = ell.as_independent(m, as_Add=True)
    if not dependent.has(sp.Sum):
        return None
    kinked, rest = [], sp.S.Zero
    for term in sp.Add.make_args(sp.expand_mul(dependent)):
        sums = [s for s in term.atoms(sp.Sum) if m in s.function.free_symbols]
        if not sums:
            rest += term
            continue
        outside, inside = term.as_independent(sp.Sum, as_Add=False)
        if len(sums) != 1 or inside != sums[0] or outside.has(m):
            return None
        kinked.append((outside, sums[0]))
    if len(kinked) != 1:
        return None
    outside, total = kinked[0]
    if len(total.limits) != 1 or total.limits[0][1:] != (1, lik.N):
        return None
    arg = _absolute_argument(total.function)
    if arg is None:
        return None
    sample = lik.sample[lik.index]
    a = sp.diff(arg, m)
    if a.has(m) or a.has(sample) or a == 0 or a.free_symbols & others:
        return None
    u = sp.simplify(-(arg - a * m) / a).subs(sample, x)
    if u.has(m) or u.free_symbols & others or not u.has(x):
        return None
    # the rest must be linear in m, its slope proportional to N and free of the data
    d = sp.simplify(sp.diff(rest, m))
    slope = sp.simplify(d / lik.N)
    if (
        d.has(m)
        or slope.has(lik.N)
        or slope.has(sp.Sum)
        or slope.free_symbols & {s.symbol for s in lik.statistics}
    ):
        return None
    weight = sp.simplify(outside * sp.Abs(a))
    level = sp.simplify((1 - slope / weight) / 2)
    if level.free_symbols & set(model.parameter_symbols) or level.is_real is False:
        return None
    return Kink(m, weight, slope, u, level, sample_quantile(u, level))


def _absolute_argument(f: sp.Expr) -> sp.Expr | None:
    """``v`` of a summand ``Abs(v)`` (also ``sqrt(v**2)`` as SymPy may keep it), else ``None``."""
    if isinstance(f, sp.Abs):
        return f.args[0]
    if f.is_Pow and f.exp == sp.S.Half and f.base.is_Pow and f.base.exp == 2:
        return f.base.base
    return None


def kink_estimator(lik: Likelihood, ell: sp.Expr, kink: Kink) -> Estimator:
    """The quantile estimator of ``kink``, checked on test data (``none`` where a check fails)."""
    name = kink.parameter.name
    why = _refuted(lik, ell, kink)
    if why:
        return Estimator(name, "none", note=f"the log-likelihood is piecewise linear in {name}, but {why}")
    q = kink.level
    what = "the median" if q == sp.S.Half else f"the {q}-quantile"
    between = "the two middle order statistics" if q == sp.S.Half else "that order statistic and the next"
    note = (
        f"the log-likelihood is concave and piecewise linear in {name}, with kinks at the {kink.u} of "
        f"each observation, so it has no score root: its maximum is where the subgradient contains 0, "
        f"{what} of the {kink.u}_i. When N*{q} is a whole number every {name} between {between} "
        "maximises it, and the estimate is their midpoint"
    )
    return Estimator(name, "closed_form", expr=kink.estimator, verified=True, note=note)


def _refuted(lik: Likelihood, ell: sp.Expr, kink: Kink) -> str:
    """Why the quantile is not the maximiser ('' if every check passes).

    The weight must be negative and the level in (0, 1) at the check points;
    on each test data set, at random values of the other parameters, no kink
    and no midpoint between kinks may have a larger log-likelihood than the
    estimate.
    """
    model = lik.model
    point = model.point()
    constants = model.constant_point()
    m = kink.parameter
    others = [q for q in model.parameters if q.symbol is not m]
    level = complex(kink.level.subs(constants).evalf())
    if not (abs(level.imag) < 1e-12 and 0 < level.real < 1):
        return f"the maximising quantile level {kink.level} is not in (0, 1)"
    objective = Formula.of(ell.subs(constants), lik).compile()
    weight = Formula.of(kink.weight.subs(constants), lik).compile()
    u = to_function([model.variable], kink.u.subs(constants))
    rng = np.random.default_rng(17)
    for data in verification_datasets(lik, constants, point):
        ev = SampleEvaluator(lik, data, constants)
        estimate = ev(kink.estimator, {})
        kinks = np.sort(np.asarray(u(data), dtype=float) * np.ones_like(data))
        candidates = np.r_[kinks, (kinks[1:] + kinks[:-1]) / 2, kinks[0] - 1.0, kinks[-1] + 1.0]
        for _ in range(3):
            values: Mapping[str, float] = {
                **ev.values,
                **{
                    q.name: point[q.symbol]
                    * (1.0 if q.domain in ("integer", "positive_integer") else float(rng.uniform(0.5, 1.5)))
                    for q in others
                },
            }
            if not weight(values, data) < 0:
                return "it is not concave in it (the weight of the absolute values is not negative)"
            best = objective({**values, m.name: estimate}, data)
            tops = [objective({**values, m.name: float(c)}, data) for c in candidates]
            if not np.isfinite(best) or max(tops) > best + 1e-9 * (abs(best) + 1):
                return "the quantile is not its maximum on a test data set"
    return ""
