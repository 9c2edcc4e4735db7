r"""``symmle compile MODEL --mixture K``: a standalone module that fits K-component mixtures by EM.

The module prints, as NumPy code, the same expressions :mod:`symmle.numbers.mixture_em`
compiles in-process: the component log-density :math:`\log f(x;\theta)`, the
statistics' summands :math:`g_j(x)`, the M-step (each closed-form estimator of the
derivation with :math:`N \to N_k = \sum_i r_{ik}` and :math:`T_j \to S_{kj} = \sum_i
r_{ik} g_j(x_i)`; for a parameter without a closed form, the derived profile
log-likelihood and its exact gradient, maximised numerically with SciPy), the
log-likelihood in N and the statistics (the generalised-EM check), and the first and
second derivatives of the log-density (the observed information).  The EM driver
(:mod:`symmle.numbers._mixture_runtime`: log-sum-exp E-step, monotonicity check,
convergence rule, seeded starts, degeneracy rules, canonical order) is copied in
verbatim.  The module imports NumPy (and SciPy where a formula or the numeric
M-step needs it), never SymPy or symmle.

Untrusted text (the model's name, title, density) reaches the module only through
:func:`symmle.numbers.codegen._docstring` and :func:`~symmle.numbers.codegen._literal`,
and symbol names only through :func:`~symmle.numbers.codegen._local`, which admits
identifiers only.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import TYPE_CHECKING

import sympy as sp

from symmle.base.errors import DerivationError, SpecError
from symmle.numbers import _mixture_runtime, mixture_em
from symmle.numbers.codegen import _docstring, _literal, _local, _Writer

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["mixture_module_source"]

_LOGLIK_DOC = (
    "The mixture log-likelihood sum_i log sum_k w_k f(x_i; theta_k); each parameter a list of K values."
)
_MARKER = "# ---- copied into generated modules from here ----\n"


def _runtime_source() -> str:
    src = inspect.getsource(_mixture_runtime)
    head, sep, body = src.partition(_MARKER)
    assert sep, "the mixture runtime must mark where the copied part starts"
    assert "import math\n\nimport numpy as np\n" in head, (
        "the module header must import what the runtime imports"
    )
    return body.strip() + "\n"


class _Functions:
    """Writes expressions as functions ``fn(v)`` or ``fn(v, _x)`` of the values ``v`` (by name)."""

    def __init__(self, variable: sp.Symbol, known: set[str]) -> None:
        self.w = _Writer()
        self.variable = variable
        self.known = known  # every name a function may read from v
        self.functions: list[str] = []
        self._count = 0

    def __call__(self, e: sp.Expr, pointwise: bool = False) -> str:
        self._count += 1
        name = f"_mix{self._count}"
        e = sp.sympify(e)
        reads = sorted({s.name for s in e.free_symbols if isinstance(s, sp.Symbol)} - {self.variable.name})
        stray = [r for r in reads if r not in self.known]
        if stray:
            raise AssertionError(f"the formula {e} reads {stray[0]}, which is not a value of the plan")
        if not pointwise and self.variable in e.free_symbols:
            raise AssertionError(f"the formula {e} reads the data variable")
        renamed = {s: sp.Symbol(_local(s.name)) for s in e.free_symbols}
        lines = [f"def {name}(v{', _x' if pointwise else ''}):"]
        if pointwise:
            lines.append(f"    {_local(self.variable.name)} = _x")
        lines += [f"    {_local(r)} = v[{_literal(r)}]" for r in reads]
        lines.append(f"    return {self.w.expr(e.xreplace(renamed))}")
        self.functions.append("\n".join(lines) + "\n")
        return name


def mixture_module_source(d: Derivation, components: int, *, timeout: float | None = None) -> str:
    """Source of a standalone module fitting K-component mixtures: ``fit``, ``estimate``, ``log_likelihood``.

    ``components`` is the default K of the module's ``fit`` (any K may be asked for).

    Examples
    --------
    >>> import symmle
    >>> src = mixture_module_source(symmle.derive("exponential"), 2)
    >>> "def fit(x, k=2, seed=0, starts=10, constants=None, **named_constants):" in src
    True
    """
    K = mixture_em.check_components(components)
    m = d.model
    if m.is_vector or m.is_regression:
        raise SpecError(
            "--mixture: only scalar families can be mixed for now (no vector or regression models)"
        )
    if any(q.name == "w" for q in m.parameters):
        raise SpecError("the model has a parameter named 'w', the name of a mixture's weights: rename it")
    params = set(m.parameter_symbols)
    if any(e.free_symbols & params for e in m.support):
        raise SpecError(
            f"--mixture: the support of '{m.name}' depends on its parameters; mixtures need a fixed support"
        )
    for name, e in d.solutions.items():
        if e.kind not in ("closed_form", "numeric"):
            raise DerivationError(
                f"--mixture: the estimator of {name} is of kind {e.kind}: "
                "a weighted M-step needs a closed form or a smooth numeric solve"
            )
    lik, st = d.likelihood, d.stationarity
    x, N = m.variable, lik.N
    stats = [s.symbol for s in lik.statistics]
    symbols = [q.symbol for q in m.parameters]
    consts = [q.symbol for q in m.constants]
    ell = lik.log_likelihood
    allowed = {N, *stats, *symbols, *consts}
    if not ell.free_symbols <= allowed:
        extra = ", ".join(sorted(str(s) for s in ell.free_symbols - allowed))
        raise DerivationError(
            f"--mixture: the log-likelihood of '{m.name}' does not reduce to N and sufficient statistics "
            f"(it also reads {extra}), so symmle has no weighted M-step for it"
        )
    names = [s.name for s in (x, N, *stats, *symbols, *consts)]
    if len(set(names)) != len(names):
        raise DerivationError("--mixture: the model's names clash with the names of N and the statistics")
    fn = _Functions(x, {s.name for s in (N, *stats, *symbols, *consts)})
    logf = lik.log_density
    plan_fns = {
        "logf": fn(logf, pointwise=True),
        "stats": "[" + ", ".join(fn(s.expr, pointwise=True) for s in lik.statistics) + "]",
        "closed": "["
        + ", ".join(
            f"({_literal(name)}, {fn(e.expr)})" for name, e in d.solutions.items() if e.kind == "closed_form"
        )
        + "]",
        "profile": "[" + ", ".join(f"({_literal(p.name)}, {fn(v)})" for p, v in st.profile) + "]",
        "ell": fn(ell),
        "grad": "[" + ", ".join(fn(sp.diff(logf, p), pointwise=True) for p in symbols) + "]",
        "hess": "["
        + ", ".join(
            "[" + ", ".join(fn(sp.diff(logf, p, q), pointwise=True) for q in symbols) + "]" for p in symbols
        )
        + "]",
        "support": "("
        + ", ".join("None" if e.has(sp.oo, -sp.oo) else fn(e, pointwise=True) for e in m.support)
        + ")",
    }
    if st.reduced:
        prof = ell.subs({p: v for p, v in reversed(st.profile)})
        plan_fns["objective"] = fn(prof)
        plan_fns["gradient"] = "[" + ", ".join(fn(sp.diff(prof, p)) for p in st.reduced) + "]"
    else:
        plan_fns["objective"] = "None"
        plan_fns["gradient"] = "[]"
    known = {q.name: float(q.value) for q in m.constants if q.value is not None}
    literals = {
        "parameters": [q.name for q in m.parameters],
        "domains": [q.domain for q in m.parameters],
        "constants": [q.name for q in m.constants],
        "constant_domains": {q.name: q.domain for q in m.constants},
        "known": known,
        "variable": x.name,
        "discrete": bool(m.discrete),
        "N": N.name,
        "T": [s.name for s in stats],
        "reduced": [p.name for p in st.reduced],
        "tol_loglik": mixture_em.TOL_LOGLIK,
        "tol_params": mixture_em.TOL_PARAMS,
        "max_iter": mixture_em.MAX_ITER,
        "monotone_slack": mixture_em.MONOTONE_SLACK,
        "min_weight": mixture_em.MIN_WEIGHT,
        "min_count": mixture_em.MIN_COUNT,
        "collapse": mixture_em.COLLAPSE,
        "max_components": mixture_em.MAX_COMPONENTS,
    }
    plan = [f"{_literal(k)}: {_literal(v)}" for k, v in literals.items()]
    plan += [f"{_literal(k)}: {v}" for k, v in plan_fns.items()]
    plan_text = textwrap.indent(",\n".join(plan), "    ")
    imports = sorted(i for i in fn.w.imports if i not in ("numpy", "math"))
    if st.reduced:
        imports = sorted({*imports, "scipy.optimize"})
    header = _header(d, K, imports)
    default_consts = "".join(f", {c.name}=..." for c in m.constants if c.value is None)
    api = f"""

PARAMETERS = {_literal(tuple(q.name for q in m.parameters))}
CONSTANTS = {_literal(tuple(q.name for q in m.constants))}
COMPONENTS = {_literal(K)}

PLAN = {{
{plan_text},
}}


def fit(x, k={K}, seed=0, starts=10, constants=None, **named_constants):
    {_docstring(_fit_doc(d, default_consts))}
    return mix_fit(PLAN, x, k, seed, starts, dict(constants or {{}}, **named_constants))


def estimate(x, k={K}, seed=0, starts=10, constants=None, **named_constants):
    {_docstring("The estimates of fit(...): weights w and per-component parameters, arrays of k values.")}
    return fit(x, k, seed, starts, constants, **named_constants)["estimates"]


def stderr(x, k={K}, seed=0, starts=10, constants=None, **named_constants):
    {_docstring("The standard errors of fit(...), from the observed information (None if singular).")}
    return fit(x, k, seed, starts, constants, **named_constants)["stderr"]


def log_likelihood(x, w, **params_and_constants):
    {_docstring(_LOGLIK_DOC)}
    params = {{p: params_and_constants.pop(p) for p in PARAMETERS if p in params_and_constants}}
    return mix_log_likelihood(PLAN, x, w, params, params_and_constants)
"""
    return header + "\n\n" + _runtime_source() + "\n\n" + "\n\n".join(fn.functions) + api


def _fit_doc(d: Derivation, default_consts: str) -> str:
    return (
        "Fit a k-component mixture to the 1-D data x by EM, from `starts` starts (the quantile split, "
        "then k-means++ seeds drawn with `seed`).\n\n"
        "    Returns a dict: estimates (w and each parameter, arrays of k values in canonical order, "
        "sorted by the first parameter), stderr (the same shapes, from the observed information; "
        "None where it is singular), log_likelihood, iterations, converged, starts, "
        "distinct_optima, warnings.  A bad value in x, or a mixture that degenerates (a component "
        "collapsing onto a point, a weight vanishing: the MLE does not exist), raises MixtureError "
        f"(a ValueError).  Constants: fit(x{default_consts}), or fit(x, constants={{...}}) "
        "(for a constant named like an argument of fit).\n    "
    )


def _header(d: Derivation, K: int, imports: list[str]) -> str:
    m = d.model
    lik, st = d.likelihood, d.stationarity
    var = m.variable
    Nk = sp.Symbol("N_k")
    sub = {lik.N: Nk, **{s.symbol: sp.Symbol(f"S_k{i + 1}") for i, s in enumerate(lik.statistics)}}
    lines = [
        f"{m.title}: a mixture of K components (default {K}) fitted by EM, generated by symmle.",
        "",
        f"Component ({m.name}): f({var}) = {sp.sstr(m.density)} for {var} in "
        f"[{sp.sstr(m.support[0])}, {sp.sstr(m.support[1])}]{' (integers)' if m.discrete else ''}.",
        "Mixture: p(x) = sum_k w_k f(x; theta_k), the weights on the simplex.",
        "",
        "E-step (in log space, log-sum-exp): r_ik = w_k f(x_i; theta_k) / p(x_i).",
        "M-step: the weights w_k = N_k/N, and each component's weighted MLE, the derived estimators with",
        "N_k = sum_i r_ik and S_kj = sum_i r_ik g_j(x_i) in place of N and T_j:",
    ]
    lines += [f"    g_{i + 1}({var}) = {sp.sstr(s.expr)}" for i, s in enumerate(lik.statistics)]
    for name, e in d.solutions.items():
        if e.kind == "closed_form":
            lines.append(f"    {name}_k = {sp.sstr(e.expr.xreplace(sub))}")
    for p, v in st.profile:
        lines.append(f"    {p.name}_k = {sp.sstr(v.xreplace(sub))}  (given the numeric ones)")
    if st.reduced:
        lines.append(
            f"    {', '.join(p.name for p in st.reduced)}: maximise the weighted profile log-likelihood "
            "numerically (SciPy BFGS, exact gradient); a step that lowers Q is not taken (generalised EM)"
        )
    lines += [
        "",
        "The log-likelihood must not decrease from one iteration to the next (a decrease beyond rounding "
        "raises ArithmeticError); EM stops when the relative change of the log-likelihood is at most "
        f"{mixture_em.TOL_LOGLIK:g} and that of the parameters at most {mixture_em.TOL_PARAMS:g}.",
        "",
        "Use::",
        "",
        "    result = fit(x)             # estimates, stderr, log_likelihood, iterations, converged, ...",
        "    estimate(x, k=3, seed=1)    # {'w': [...], "
        + ", ".join(f"{q.name!r}: [...]" for q in m.parameters)
        + "}",
        "",
        f"Generated code: imports NumPy{' and SciPy' if imports else ''} only, "
        "and runs without SymPy or symmle.",
        "",
    ]
    return (
        _docstring("\n".join(lines))
        + "\n\nimport math\n\nimport numpy\nimport numpy as np\n"
        + "".join(f"import {i}\n" for i in imports)
    )
