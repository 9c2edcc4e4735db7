r"""Parameters the data cannot identify.

The per-observation scores :math:`s_k(x; \theta) = \partial_k \log f(x \mid \theta)`
of the regular parameters are functions of :math:`x`.  If some combination
:math:`\sum_k c_k s_k(x; \theta)` vanishes for every :math:`x` in the support,
the likelihood is flat along :math:`c` whatever the data (the Fisher
information :math:`E[s s^T]` is singular), and the data cannot tell those
parameters apart: a score that is identically zero, or two parameters that
enter only through :math:`b_0 + b_1 x` with :math:`x` a constant.  Such a model
has no unique MLE, so it is refused before anything is solved.

The test is numerical: the matrix of scores at many points of the support has
a null vector, at several random parameter values, to a relative tolerance far
below what rounding or a merely ill-conditioned model gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp

from symmle.base.errors import SpecError
from symmle.base.numeric import to_function
from symmle.base.quadrature import interior_points
from symmle.symbolic.likelihood import Likelihood

__all__ = ["check_identifiable"]

#: Smallest singular value of the column-scaled score matrix, relative to the largest, below which
#: the scores are taken as linearly dependent (a well-posed model stays many orders above it).
DEPENDENT = 1e-9
#: Points of the support at which the scores are evaluated.
POINTS = 48
#: Random parameter values at which the dependence must hold.
DRAWS = 3


def check_identifiable(lik: Likelihood, regular: Sequence[sp.Symbol]) -> None:
    """Refuse a model whose data cannot identify some of its ``regular`` parameters.

    Raises
    ------
    SpecError
        Naming the parameters involved, and pointing to regression when the
        model has constants (a covariate declared as a constant is the usual cause).

    Examples
    --------
    >>> import symmle
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> m = symmle.inline_model("exp(-(x-a-b)**2/2)/sqrt(2*pi)", "x", "-oo,oo", ["a:real", "b:real"])
    >>> check_identifiable(build_likelihood(m), m.parameter_symbols)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    symmle.SpecError: the data cannot identify a and b separately: ...
    """
    regular = list(regular)
    if not regular:
        return
    found = _dependent(lik, regular)
    if found is None:
        return
    zero, involved = found
    model = lik.model
    names = [p.name for p in involved]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if zero:
        message = (
            f"the data cannot identify {listed}: the score of {listed} is zero for every observation, "
            "so the likelihood does not change with it"
        )
    else:
        message = (
            f"the data cannot identify {listed} separately: their scores are linearly dependent "
            "(the Fisher information is singular), so the likelihood is flat along a combination of them"
        )
    consts = [
        q.name
        for q in model.constants
        if any(q.symbol in sp.diff(lik.log_density, p).free_symbols for p in involved)
    ]
    if consts:
        message += (
            f"; {', '.join(consts)} {'is a constant' if len(consts) == 1 else 'are constants'}, "
            "one value for every observation: regression models with covariates are not supported yet"
        )
    raise SpecError(message)


def _dependent(lik: Likelihood, regular: list[sp.Symbol]) -> tuple[bool, list[sp.Symbol]] | None:
    """``(a score is zero, the parameters in the dependence)`` if the scores are dependent, else ``None``."""
    model = lik.model
    x = model.variable
    constants = model.constant_point()
    point = model.point()
    domains = {q.symbol: q.domain for q in model.parameters}
    # parameters that set the support are held at the check point: only the regular ones vary
    held = {q: v for q, v in point.items() if q not in regular}
    scores = [sp.diff(lik.log_density, p).subs(constants).subs(held) for p in regular]
    fns = [to_function([x, *regular], s) for s in scores]
    rng = np.random.default_rng(23)
    verdicts = []
    for _ in range(DRAWS):
        theta = {
            p: point[p]
            * (1.0 if domains[p] in ("integer", "positive_integer") else float(rng.uniform(0.7, 1.3)))
            for p in regular
        }
        at = {**point, **theta, **constants}
        try:
            lo, hi = model.support_at(at)
        except (TypeError, ValueError):
            return None
        if model.discrete:
            top = hi if np.isfinite(hi) else lo + 4 * POINTS
            xs = np.unique(np.linspace(lo, min(top, lo + 4 * POINTS), POINTS).round())
        else:
            xs = np.array(interior_points(lo, hi, POINTS))
        with np.errstate(all="ignore"):
            cols = [
                np.broadcast_to(
                    np.real(np.asarray(f(xs, *[theta[p] for p in regular]), dtype=complex)), xs.shape
                )
                for f in fns
            ]
        S = np.column_stack(cols)
        S = S[np.all(np.isfinite(S), axis=1)]
        if S.shape[0] < len(regular) + 1:
            return None  # too few points to tell
        norms = np.linalg.norm(S, axis=0)
        top = norms.max()
        if top == 0:
            return None
        zero = norms <= DEPENDENT * top
        if zero.any():
            verdicts.append((True, frozenset(np.flatnonzero(zero))))
            continue
        _, sv, vt = np.linalg.svd(S / norms, full_matrices=False)
        if sv[-1] > DEPENDENT * sv[0]:
            return None  # independent at this draw: identified
        null = np.abs(vt[-1])
        verdicts.append((False, frozenset(np.flatnonzero(null > 1e-6 * null.max()))))
    zero = all(v[0] for v in verdicts)
    involved = sorted(frozenset.intersection(*(v[1] for v in verdicts)) or verdicts[0][1])
    return zero, [regular[i] for i in involved]
