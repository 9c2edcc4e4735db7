"""Invariants checked on every family of the catalogue.

Each test is parametrized over ``family_names("scalar")`` so that a new spec file is
tested as soon as it is added.  The numbers the derivations are compared
with come from the density alone (see ``conftest.py``): quadrature and
summation, sampling, and a numerical optimiser on ``-sum(log f(x_i))``.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import sympy as sp

import symmle
from symmle.model.catalogue import family_names, list_families
from symmle.symbolic.evaluate import SampleEvaluator

FAMILIES = family_names("scalar")

REQUIRED = (
    "normal normal_mean normal_variance bernoulli binomial geometric poisson negative_binomial exponential "
    "exponential_scale gamma_rate gamma beta lognormal weibull_scale weibull rayleigh maxwell half_normal "
    "inverse_gaussian laplace_scale pareto inverse_gamma_scale levy uniform"
).split()

#: Families whose estimators are not all in closed form, and the kind expected.
NOT_CLOSED = {"gamma": "numeric", "beta": "numeric", "weibull": "numeric", "uniform": "boundary"}

#: Families that knowingly ship without a [sampler] (drawn by inverse CDF here): none.
NO_SAMPLER: set[str] = set()

CLOSED = [f for f in FAMILIES if f not in NOT_CLOSED]
NUMERIC = [f for f in FAMILIES if NOT_CLOSED.get(f) == "numeric"]

N_SAMPLE = 2000


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def regular_indices(model) -> list[int]:
    return [k for k, q in enumerate(model.parameters) if not model.depends_on_support(q.symbol)]


# --------------------------------------------------------------------------
# the catalogue itself
# --------------------------------------------------------------------------


def test_catalogue_size_and_names():
    assert len(FAMILIES) >= 24
    missing = [n for n in REQUIRED if n not in FAMILIES]
    assert not missing, f"catalogue lacks {missing}"


@pytest.mark.parametrize("name", FAMILIES)
def test_family_has_title_and_sampler(name):
    entry = {f["name"]: f for f in list_families()}[name]
    assert isinstance(entry["title"], str) and entry["title"].strip() and entry["title"] != name
    model = symmle.load_model(name)
    assert model.name == name
    assert model.title == entry["title"]
    if name in NO_SAMPLER:
        assert model.sampler is None
    else:
        assert model.sampler is not None, f"{name} has no [sampler]"


@pytest.mark.parametrize("name", FAMILIES)
def test_density_normalises(name, tools):
    model = symmle.load_model(name)
    point = model.point()
    assert abs(tools.total_mass(model, point) - 1.0) < 1e-6


@pytest.mark.parametrize("name", [f for f in FAMILIES if f not in NO_SAMPLER])
def test_sampler_matches_density(name, tools, rng):
    """The [sampler] draws from the density: sample mean of a bounded function vs its expectation."""
    model = symmle.load_model(name)
    point = model.point()
    x = model.variable
    data = tools.sample(model, point, 20_000, rng)
    lo, hi = tools.support_at(model, point)
    assert np.all((data >= lo) & (data <= hi))
    if model.discrete:
        assert np.all(data == np.round(data))
    # the CDF at the median of the sample is about 1/2 (a bounded statistic, so 5 sigma is tight)
    m = float(np.median(data))
    indicator = sp.Piecewise((1, x <= m), (0, True))
    cdf = (
        tools.expectation(model, point, indicator)
        if model.discrete
        else tools.integrate_over(
            lambda t: float(tools.density_function(model, point)(t)), lo, m, extra=list(point.values())
        )
    )
    empirical = float(np.mean(data <= m))
    assert abs(cdf - empirical) < 5 * 0.5 / np.sqrt(data.size) + 1e-3


# --------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_estimator_kinds(name, derivation):
    d = derivation(name)
    kinds = {k: e.kind for k, e in d.solutions.items()}
    assert list(kinds) == [q.name for q in d.model.parameters]
    expected = NOT_CLOSED.get(name, "closed_form")
    assert set(kinds.values()) == {expected}, kinds
    for e in d.solutions.values():
        if e.kind == "closed_form":
            assert e.expr is not None and e.verified
            assert d.estimators[e.parameter] == e.expr
        elif e.kind == "numeric":
            assert e.expr is None and isinstance(e.equation, sp.Eq)
        elif e.kind == "boundary":
            assert e.expr is not None and e.verified
            assert any("support" in w for w in d.warnings), d.warnings


@pytest.mark.parametrize("name", CLOSED)
def test_score_vanishes_at_estimator(name, derivation, tools, rng_factory):
    d = derivation(name)
    model = d.model
    st = d.stationarity
    subs = {q.symbol: d.solutions[q.name].expr for q in model.parameters}
    consts = tools.constant_values(model)
    undecided = []
    for s in st.score:
        r = sp.simplify(s.subs(subs))
        if r != 0:
            undecided.append((s, r))
    if not undecided:
        return
    for seed in (1, 2, 3):
        data = tools.sample(model, model.point(), 40, rng_factory(seed))
        ev = SampleEvaluator(d.likelihood, data, consts)
        values = {p: ev(subs[p], {}) for p in subs}
        for s, r in undecided:
            scale = sum(abs(ev(t, values)) for t in sp.Add.make_args(sp.expand(s)))
            assert abs(ev(s, values)) <= 1e-9 * max(scale, 1e-300), (s, r)


@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_equals_optimiser(name, derivation, tools):
    d = derivation(name)
    model = d.model
    point = model.point()
    consts = tools.constant_values(model)
    data = tools.sample(model, point, N_SAMPLE, np.random.default_rng(seed_of(name)))
    closed = tools.closed_form_estimates(d, data, consts)
    # the same through symmle's own evaluator
    ev = SampleEvaluator(d.likelihood, data, consts)
    for p, v in closed.items():
        assert tools.rel_err(ev(d.estimators[p.name], {}), v) < 1e-10
    start = tools.perturbed(point, model.parameter_symbols)
    fitted = tools.optimiser_mle(model, data, start)
    for p in model.parameter_symbols:
        assert tools.rel_err(closed[p], fitted[p]) < 1e-6, (p, closed[p], fitted[p])


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_equations_hold_at_optimiser_mle(name, derivation, tools):
    d = derivation(name)
    model = d.model
    point = model.point()
    consts = tools.constant_values(model)
    data = tools.sample(model, point, N_SAMPLE, np.random.default_rng(seed_of(name)))
    fitted = tools.optimiser_mle(model, data, tools.perturbed(point, model.parameter_symbols))
    ev = SampleEvaluator(d.likelihood, data, consts)
    for e in d.solutions.values():
        p = model.symbols[e.parameter]
        off = {**fitted, p: fitted[p] * 1.05}
        assert e.kind == "numeric"
        residual, scale = tools.equation_residual(ev, e.equation, fitted)
        assert np.isfinite(residual) and scale > 0
        assert residual <= 1e-6 * scale, (e.equation, residual, scale)
        # and the equation is informative: it fails when its own parameter moves
        residual, scale = tools.equation_residual(ev, e.equation, off)
        assert residual > 1e-4 * scale, e.equation


def test_uniform_is_non_regular(derivation, tools):
    """theta sets the support: its MLE is the sample maximum, and it has no Fisher information."""
    d = derivation("uniform")
    e = d.solutions["theta"]
    assert e.kind == "boundary"
    assert any("support" in w for w in d.warnings), d.warnings
    assert d.stationarity.parameters == ()
    data = tools.sample(d.model, d.model.point(), 500, np.random.default_rng(3))
    ev = SampleEvaluator(d.likelihood, data, {})
    assert ev(e.expr, {}) == float(np.max(data))
    assert d.fisher.shape == (1, 1) and d.fisher[0, 0] == sp.nan
    assert d.crlb is None


# --------------------------------------------------------------------------
# Fisher information and Cramér-Rao bound
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_fisher_matches_quadrature(name, derivation, tools):
    d = derivation(name)
    model = d.model
    point = model.point()
    n = len(model.parameters)
    assert d.fisher.shape == (n, n)
    assert d.fisher == d.fisher.T
    regular = regular_indices(model)
    for i in range(n):
        for j in range(n):
            if i not in regular or j not in regular:
                assert d.fisher[i, j] == sp.nan, "the information of a non-regular parameter does not exist"
    # every regular entry of the catalogue has a closed form
    for i in regular:
        for j in regular:
            assert d.fisher[i, j] != sp.nan, f"I[{i},{j}] not found"
    diag = {i: tools.fisher_by_quadrature(model, point, i, i) for i in regular}
    for i in regular:
        for j in regular:
            if j < i:
                continue
            symbolic = float(sp.N(d.fisher[i, j].subs(point), 30))
            numeric = diag[i] if i == j else tools.fisher_by_quadrature(model, point, i, j)
            scale = max(abs(numeric), np.sqrt(abs(diag[i] * diag[j])))
            assert abs(symbolic - numeric) <= 1e-6 * scale, (i, j, d.fisher[i, j], symbolic, numeric)


@pytest.mark.parametrize("name", FAMILIES)
def test_fisher_positive_definite_and_crlb(name, derivation):
    d = derivation(name)
    info = d.fisher
    if any(e == sp.nan for e in info):
        assert name == "uniform"
        return
    point = d.model.point()
    values = np.array(info.subs(point).evalf(30).tolist(), dtype=float)
    assert np.all(np.linalg.eigvalsh(values) > 0)
    N = d.likelihood.N
    assert d.crlb is not None
    diff = (d.crlb - (N * info).inv()).applyfunc(sp.simplify)
    assert diff == sp.zeros(*info.shape), diff


# --------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------

DERIVE_KEYS = {
    "schema",
    "model",
    "log_likelihood",
    "sufficient_statistics",
    "estimators",
    "fisher_information",
    "crlb",
    "steps",
    "warnings",
}
MODEL_KEYS = {"name", "density", "variable", "discrete", "support", "parameters", "constants"}


ORDER = {"Min": sp.Symbol("sample_min"), "Max": sp.Symbol("sample_max")}


def plain_order_statistics(expr: sp.Expr) -> sp.Expr:
    """``Min(x)``/``Max(x)`` (undefined functions of the variable) as plain symbols."""
    from sympy.core.function import AppliedUndef

    return expr.replace(
        lambda a: isinstance(a, AppliedUndef) and a.func.__name__ in ORDER, lambda a: ORDER[a.func.__name__]
    )


def json_symbols(d) -> dict[str, sp.Basic]:
    model = d.model
    names = {q.name: q.symbol for q in (*model.parameters, *model.constants)}
    names["N"] = d.likelihood.N
    names.update({s.symbol.name: s.symbol for s in d.likelihood.statistics})
    return names


@pytest.mark.parametrize("name", FAMILIES)
def test_json_document(name, derivation):
    d = derivation(name)
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["schema"] == 1
    assert DERIVE_KEYS <= set(doc)
    assert MODEL_KEYS <= set(doc["model"])
    model = d.model
    assert doc["model"]["name"] == name
    assert doc["model"]["variable"] == model.variable.name
    assert doc["model"]["discrete"] is model.discrete
    assert doc["model"]["parameters"] == {q.name: q.domain for q in model.parameters}
    assert doc["model"]["constants"] == {q.name: q.domain for q in model.constants}
    assert list(doc["estimators"]) == [q.name for q in model.parameters]
    assert set(doc["sufficient_statistics"]) == set(d.sufficient_statistics)
    names = json_symbols(d)
    x = model.variable
    for key, g in doc["sufficient_statistics"].items():
        parsed = sp.sympify(g, locals={**names, x.name: x})
        assert sp.simplify(parsed - d.sufficient_statistics[key]) == 0
    for pname, entry in doc["estimators"].items():
        e = d.solutions[pname]
        assert entry["kind"] == e.kind
        if e.kind == "closed_form":
            parsed = sp.sympify(entry["expr"], locals=names)
            assert parsed.free_symbols <= set(names.values())
            assert sp.simplify(parsed - e.expr) == 0, (entry["expr"], e.expr)
            assert entry["latex"]
        elif e.kind == "boundary":
            x = model.variable.name
            order = {k: (lambda v, k=k, x=x: ORDER[k] if str(v) == x else None) for k in ORDER}
            parsed = sp.sympify(entry["expr"], locals={**names, **order, x: sp.Symbol(x)})
            assert parsed.free_symbols <= set(names.values()) | set(ORDER.values())
            assert sp.simplify(parsed - plain_order_statistics(e.expr)) == 0, (entry["expr"], e.expr)
        else:
            assert entry["expr"] is None
        if e.kind == "numeric":
            assert entry["equation"]
    fisher = doc["fisher_information"]
    n = len(model.parameters)
    assert len(fisher) == n and all(len(row) == n for row in fisher)
    for i in range(n):
        for j in range(n):
            cell = fisher[i][j]
            if d.fisher[i, j] == sp.nan:
                assert cell is None
            else:
                assert sp.simplify(sp.sympify(cell, locals=names) - d.fisher[i, j]) == 0
    if d.crlb is None:
        assert doc["crlb"] is None
    else:
        for i in range(n):
            for j in range(n):
                cell = doc["crlb"][i][j]
                if d.crlb[i, j] == sp.nan:
                    assert cell is None
                else:
                    assert sp.simplify(sp.sympify(cell, locals=names) - d.crlb[i, j]) == 0
    assert isinstance(doc["steps"], list) and doc["steps"]
    assert all({"title", "latex"} <= set(s) for s in doc["steps"])
    assert doc["warnings"] == list(d.warnings)
