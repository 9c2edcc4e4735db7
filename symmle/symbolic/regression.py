r"""Regression: the family's linked parameter as :math:`g^{-1}(x_i^\top\beta)`, derived by the chain rule.

With :math:`\eta_i = x_i^\top \beta` and the other parameters :math:`\phi` shared,

.. math::

    \ell(\beta, \phi) = \sum_{i=1}^N l(y_i, \eta_i, \phi), \qquad
    \frac{\partial \ell}{\partial \beta} = \sum_i s(y_i, \eta_i, \phi)\, x_i = X^\top s, \qquad
    \mathcal{I}_{\beta\beta} = \sum_i w(\eta_i, \phi)\, x_i x_i^\top = X^\top W X,

where :math:`s = \partial l / \partial \eta` and :math:`w = -E[\partial^2 l / \partial \eta^2]`.
Everything per observation comes from one scalar model: the family with the
linked parameter replaced by :math:`g^{-1}(\eta)` (:func:`per_observation_model`),
derived by the ordinary pipeline, so its Fisher information in
:math:`(\eta, \phi)` is the weight :math:`w` and the cross terms, verified there.

Where :math:`s` is affine in :math:`\eta`, :math:`s = b(\phi)\,(\eta - z(y))`,
the score equations are the normal equations :math:`X^\top X \beta = X^\top z`
whatever :math:`\phi` is, so :math:`\hat\beta` is least squares of the
working response :math:`z(y)` on :math:`X`; the shared parameters are then
profiled: :math:`l` splits into :math:`A(\phi) + \sum_j c_j(\phi) g_j(y, \eta)`,
the statistics :math:`R_j = \sum_i g_j(y_i, \hat\eta_i)` (for the normal,
the residual sum of squares) replace the data, and the stationarity
equations in :math:`\phi` are solved in closed form where SymPy can.
Otherwise the fit is Newton's method with the exact derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp

from symmle.base.budget import budget
from symmle.model.link import LINKS, Link
from symmle.model.spec import Model, Quantity, Sampler

__all__ = ["Regression", "per_observation_model", "derive_regression", "ResidualStatistic"]


@dataclass(frozen=True)
class ResidualStatistic:
    r"""A statistic of the profiled shared parameters: :math:`R = \sum_i g(y_i, \hat\eta_i)`."""

    symbol: sp.Symbol
    expr: sp.Expr  #: g(y, eta)


@dataclass(frozen=True)
class Regression:
    r"""The derivation of a regression: the chain rule through the link.

    Attributes
    ----------
    model : Model
        The linked model (``model.link`` names the parameter and the link).
    per_observation : Derivation
        The family in :math:`(\eta, \phi)`, derived by the ordinary pipeline.
    parameter : Quantity
        The linked parameter :math:`\theta`.
    link : Link
    eta : Symbol
        The linear predictor :math:`\eta`.
    response : Symbol
        The family's variable :math:`y`.
    shared : tuple of Symbol
        The other parameters :math:`\phi`, in model order.
    log_density : Expr
        :math:`l(y, \eta, \phi)`.
    score : Expr
        :math:`s = \partial l / \partial \eta`.
    curvature : Expr
        :math:`\partial^2 l / \partial \eta^2`.
    weight : Expr or None
        :math:`w = -E[\partial^2 l/\partial\eta^2]` (the Fisher information of
        one observation in :math:`\eta`), ``None`` if it was not found.
    shared_score, hessian
        :math:`\partial l/\partial\phi_k` and the Hessian of :math:`l` in
        :math:`(\eta, \phi)`, as differentiated (the forms numerics evaluate;
        ``score`` and ``curvature`` are simplified for display).
    information : Matrix
        The Fisher information of one observation in :math:`(\eta, \phi)`
        (``nan`` where an entry was not found or failed its check).
    working_response : Expr or None
        :math:`z(y)` where :math:`s = b(\phi)(\eta - z)` (the closed form:
        :math:`\hat\beta = (X^\top X)^{-1} X^\top z`); ``None`` otherwise.
    slope : Expr or None
        :math:`b(\phi) = \partial s / \partial \eta` in that case.
    residual_statistics : tuple of ResidualStatistic
        The statistics the shared parameters are profiled on.
    profile : dict of str to Expr
        Closed forms of the shared parameters in ``N`` and the residual statistics.
    profile_equations : tuple of Expr
        :math:`\partial \ell / \partial \phi_k` in those statistics (the equations solved).
    warnings : tuple of str
    """

    model: Model
    per_observation: object
    parameter: Quantity
    link: Link
    eta: sp.Symbol
    response: sp.Symbol
    shared: tuple[sp.Symbol, ...]
    log_density: sp.Expr
    score: sp.Expr
    curvature: sp.Expr
    weight: sp.Expr | None
    shared_score: tuple[sp.Expr, ...]
    hessian: sp.Matrix
    information: sp.Matrix | None = None
    working_response: sp.Expr | None = None
    slope: sp.Expr | None = None
    residual_statistics: tuple[ResidualStatistic, ...] = ()
    profile: dict[str, sp.Expr] = field(default_factory=dict)
    profile_equations: tuple[sp.Expr, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def closed_form(self) -> bool:
        """Whether :math:`\\hat\\beta` is least squares (and every shared parameter has a closed form)."""
        return self.working_response is not None and len(self.profile) == len(self.shared)

    @property
    def kind(self) -> str:
        """``closed_form`` (least squares and profiled scalars) or ``newton``."""
        return "closed_form" if self.closed_form else "newton"

    @property
    def hessian_score(self) -> sp.Expr:
        """:math:`\\partial l/\\partial\\eta` as differentiated (for numerics; ``score`` is simplified)."""
        return sp.diff(self.log_density, self.eta)

    @property
    def eta_domain(self) -> str:
        """The domain of the linear predictor (``real`` for log, logit, probit, cloglog)."""
        return self.link.eta_domain(self.parameter.domain)

    @property
    def variables(self) -> tuple[sp.Symbol, ...]:
        """The arguments of the per-observation functions: ``(y, eta, *shared, *constants)``."""
        return (self.response, self.eta, *self.shared, *self.model.constant_symbols)


def _eta_symbol(model: Model, domain: str) -> sp.Symbol:
    from symmle.model.domains import DOMAINS

    taken = set(model.symbols)
    name = next(n for n in ("eta", *(f"eta{k}" for k in range(1, 99))) if n not in taken)
    return sp.Symbol(name, **DOMAINS[domain][0])


def per_observation_model(model: Model) -> tuple[Model, sp.Symbol]:
    r"""The family of one observation in :math:`(\eta, \phi)`: the linked parameter is :math:`g^{-1}(\eta)`.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> m, eta = per_observation_model(load_model("bernoulli").with_link({"p": "logit"}))
    >>> [q.name for q in m.parameters]
    ['eta']
    >>> sp.simplify(m.density.subs(m.variable, 1) - 1 / (1 + sp.exp(-eta)))   # P(x = 1) = expit(eta)
    0
    """
    ((name, link_name),) = model.link
    link = LINKS[link_name]
    q = next(q for q in model.parameters if q.name == name)
    domain = link.eta_domain(q.domain)
    eta = _eta_symbol(model, domain)
    theta = link.inverse(eta)
    swap = {q.symbol: theta}
    params = tuple(Quantity(eta.name, domain, eta) if p.name == name else p for p in model.parameters)
    sampler = model.sampler
    if sampler is not None:
        sampler = Sampler(
            sampler.method,
            tuple((k, sp.sympify(v).subs(swap)) for k, v in sampler.args),
            None if sampler.transform is None else sampler.transform.subs(swap),
            sampler.draw,
        )
    per = replace(
        model,
        name=f"{model.name} per observation",
        density=model.density.subs(swap),
        parameters=params,
        sampler=sampler,
        link=(),
        latex=tuple((k, v) for k, v in model.latex if k != name),
        source={},
    )
    return per, eta


def _split(logf: sp.Expr, y: sp.Symbol, eta: sp.Symbol) -> tuple[sp.Expr, dict[sp.Expr, sp.Expr]] | None:
    """:math:`l = A(\\phi) + \\sum_j c_j(\\phi) g_j(y, \\eta)`, or ``None`` if a term does not separate."""
    baseline = sp.S.Zero
    groups: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(logf):
        coef, g = term.as_independent(y, eta, as_Add=False)
        if g == 1:
            baseline += coef
            continue
        if coef.has(y, eta):
            return None
        groups[g] = groups.get(g, sp.S.Zero) + coef
    return baseline, groups


def _profile(reg: Regression, logf: sp.Expr, timeout: float | None) -> Regression:
    """Closed forms of the shared parameters at the least-squares fit, in residual statistics."""
    if not reg.shared:
        return reg
    parts = _split(logf, reg.response, reg.eta)
    if parts is None:
        return replace(reg, warnings=(*reg.warnings, "the shared parameters are found numerically"))
    baseline, groups = parts
    N = sp.Symbol("N", integer=True, positive=True)
    stats = []
    ell = N * baseline
    for j, (g, c) in enumerate(groups.items(), 1):
        if not any(c.has(s) for s in reg.shared):
            continue  # free of the shared parameters: no part in their equations
        r = sp.Symbol(f"R{j}", positive=bool(g.is_nonnegative) or None, real=True)
        stats.append(ResidualStatistic(r, g))
        ell += c * r
    equations = tuple(sp.diff(ell, s) for s in reg.shared)
    try:
        with budget("profiled shared parameters", timeout):
            sols = sp.solve(list(equations), list(reg.shared), dict=True)
    except (NotImplementedError, ValueError, TypeError):
        sols = []
    good = [s for s in sols if len(s) == len(reg.shared) and _admissible(s, reg, stats, ell, N)]
    if len(good) != 1:
        return replace(
            reg,
            residual_statistics=tuple(stats),
            profile_equations=equations,
            warnings=(*reg.warnings, "the shared parameters are found numerically"),
        )
    profile = {s.name: sp.simplify(good[0][s]) for s in reg.shared}
    return replace(reg, residual_statistics=tuple(stats), profile=profile, profile_equations=equations)


def _admissible(sol: dict, reg: Regression, stats: list, ell: sp.Expr, N: sp.Symbol) -> bool:
    """The solution is in the domain and a maximum at random statistics (a numerical check)."""
    rng = np.random.default_rng(7)
    from symmle.base._runtime import in_domain

    doms = {q.symbol: q.domain for q in reg.model.parameters}
    for _ in range(5):
        at = {N: int(rng.integers(5, 50))}
        at.update({st.symbol: float(rng.uniform(0.5, 20.0)) for st in stats})
        at.update(reg.model.constant_point())
        try:
            values = {s: complex(v.subs(at).evalf()) for s, v in sol.items()}
        except (TypeError, ValueError):
            return False
        if any(abs(v.imag) > 1e-12 or not in_domain(v.real, doms[s]) for s, v in values.items()):
            return False
        point = {**at, **{s: v.real for s, v in values.items()}}
        grad = [float(sp.diff(ell, s).subs(point)) for s in reg.shared]
        hess = np.array([[float(sp.diff(ell, a, b).subs(point)) for b in reg.shared] for a in reg.shared])
        if max(abs(g) for g in grad) > 1e-8 * (1 + np.abs(hess).max()):
            return False
        if np.linalg.eigvalsh(hess).max() >= 0:
            return False
    return True


def derive_regression(model: Model, *, timeout: float | None = None) -> Regression:
    """Derive the regression of ``model`` on a linear predictor (see the module docstring).

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> reg = derive_regression(load_model("normal").with_link({"mu": "identity"}))
    >>> reg.kind, reg.working_response, reg.profile
    ('closed_form', x, {'sigma2': R1/N})
    >>> reg = derive_regression(load_model("bernoulli").with_link({"p": "logit"}))
    >>> reg.kind, sp.simplify(reg.score - (reg.response - 1 / (1 + sp.exp(-reg.eta)))), reg.weight
    ('newton', 0, exp(eta)/(exp(2*eta) + 2*exp(eta) + 1))
    """
    from symmle.base.errors import SpecError
    from symmle.symbolic.derivation import derive

    fixed = [q.name for q in model.parameters if model.depends_on_support(q.symbol)]
    if fixed:
        raise SpecError(
            f"'{fixed[0]}' sets the support of {model.name}: a regression needs a family whose support "
            "does not depend on its parameters"
        )
    per, eta = per_observation_model(model)
    d = derive(per, timeout=timeout)
    ((name, link_name),) = model.link
    q = next(q for q in model.parameters if q.name == name)
    y = model.variable
    shared = tuple(p.symbol for p in model.parameters if p.name != name)
    with budget("regression derivatives", timeout):
        logf = d.likelihood.log_density
        score = sp.simplify(sp.diff(logf, eta))
        curvature = sp.simplify(sp.diff(score, eta))
        shared_score = tuple(sp.diff(logf, s) for s in shared)
        args = (eta, *shared)
        # as differentiated, not simplified: what numerics evaluate (simplify may merge exp(eta**2)
        # factors that overflow, or differences that cancel)
        hessian = sp.Matrix([[sp.diff(logf, a, b) for b in args] for a in args])
    # the per-observation information in the order (eta, *shared); an entry not found or not verified is nan
    order = [[p.symbol for p in per.parameters].index(a) for a in args]
    verified = d.information.verified
    information = sp.Matrix(
        len(args),
        len(args),
        lambda i, j: d.information.fisher[order[i], order[j]] if verified[order[i]][order[j]] else sp.nan,
    )
    w = information[0, 0]
    weight = None if w.has(sp.nan) else sp.simplify(w)
    reg = Regression(
        model=model,
        per_observation=d,
        parameter=q,
        link=LINKS[link_name],
        eta=eta,
        response=y,
        shared=shared,
        log_density=logf,
        score=score,
        curvature=curvature,
        weight=weight,
        shared_score=shared_score,
        hessian=hessian,
        information=information,
        warnings=tuple(d.information.warnings),  # the per-observation stationarity is not the fit
    )
    slope = curvature
    if not slope.has(eta) and not slope.has(y) and slope != 0:
        z = sp.simplify(eta - score / slope)  # s = b (eta - z): the working response
        if not z.has(eta) and not any(z.has(s) for s in shared):
            reg = replace(reg, working_response=z, slope=slope)
            log_raw = sp.expand_log(sp.log(per.density), force=True)
            reg = _profile(reg, log_raw, timeout)
    return reg
