"""Exact finite-sample bias (``symmle derive --bias``): against simulation, symbolically, every format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.symbolic.moments import exact_bias

N = 8
R = 40_000


def _draws(rng, name, values):
    v = values
    size = (R, N)
    if name == "normal":
        return rng.normal(v["mu"], np.sqrt(v["sigma2"]), size)
    if name == "exponential":
        return rng.exponential(1 / v["lam"], size)
    if name == "poisson":
        return rng.poisson(v["lam"], size).astype(float)
    if name == "uniform":
        return rng.uniform(0, v["theta"], size)
    if name == "pareto":
        return v["xm"] * (1 + rng.pareto(v["alpha"], size))
    if name == "gamma_rate":
        return rng.gamma(v["a"], 1 / v["b"], size)
    if name == "exponential_scale":
        return rng.exponential(v["theta"], size)
    raise AssertionError(name)


#: each case: model, constants, parameter values, and the estimator written out in NumPy (independently)
CASES = [
    ("normal", {}, {"mu": 1.5, "sigma2": 2.0}, "mu", lambda x, v: x.mean(axis=1)),
    ("normal", {}, {"mu": 1.5, "sigma2": 2.0}, "sigma2", lambda x, v: x.var(axis=1)),
    ("exponential", {}, {"lam": 2.0}, "lam", lambda x, v: N / x.sum(axis=1)),
    ("poisson", {}, {"lam": 3.0}, "lam", lambda x, v: x.mean(axis=1)),
    ("uniform", {}, {"theta": 3.0}, "theta", lambda x, v: x.max(axis=1)),
    ("pareto", {"xm": 1.5}, {"alpha": 3.0}, "alpha", lambda x, v: N / np.log(x / v["xm"]).sum(axis=1)),
    ("gamma_rate", {"a": 2.5}, {"b": 2.0}, "b", lambda x, v: N * v["a"] / x.sum(axis=1)),
    ("exponential_scale", {}, {"theta": 2.0}, "theta", lambda x, v: x.mean(axis=1)),
]


def _value(expr, d, values):
    subs = {d.model.symbols[k]: val for k, val in values.items()}
    subs[d.likelihood.N] = N
    return float(expr.subs(subs))


def _evaluate(est, d, x, values):
    """The estimator ``est`` (in N, T_j, Min/Max) evaluated on each simulated sample (rows of x)."""
    lik = d.likelihood
    lo, hi = lik.order_statistics
    data = {lik.N: N, lo: x.min(axis=1), hi: x.max(axis=1)}
    for s in lik.statistics:
        g = sp.lambdify(d.model.variable, s.expr.subs({d.model.symbols[k]: v for k, v in values.items()}))
        data[s.symbol] = np.sum(g(x) * np.ones_like(x), axis=1)
    data.update({d.model.symbols[k]: v for k, v in values.items()})
    keys = list(data)
    dummies = [sp.Dummy() for _ in keys]
    f = sp.lambdify(dummies, est.subs(dict(zip(keys, dummies))))
    return f(*[data[k] for k in keys]) * np.ones(len(x))


@pytest.mark.parametrize("model,consts,params,name,numpy_est", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_exact_moments_match_simulation(model, consts, params, name, numpy_est):
    d = symmle.derive(model, constants=consts) if consts else symmle.derive(model)
    m = exact_bias(d)[name]
    assert m.exact, m.reason
    values = {**params, **consts}
    rng = np.random.default_rng(20261204)
    x = _draws(rng, model, values)
    est = numpy_est(x, values)
    # the estimator of the derivation is the one simulated
    assert np.allclose(_evaluate(m.estimator, d, x[:50], values), est[:50])
    se = est.std() / np.sqrt(R)
    assert abs(est.mean() - _value(m.expectation, d, values)) < 4 * se
    assert abs(est.mean() - params[name] - _value(m.bias, d, values)) < 4 * se
    assert est.var() == pytest.approx(_value(m.variance, d, values), rel=0.06)
    assert np.mean((est - params[name]) ** 2) == pytest.approx(_value(m.mse, d, values), rel=0.06)
    assert m.unbiased is not None
    corrected = _evaluate(m.unbiased, d, x, values)
    assert abs(corrected.mean() - params[name]) < 4 * corrected.std() / np.sqrt(R)
    assert corrected.var() == pytest.approx(_value(m.unbiased_mse, d, values), rel=0.06)


def _same(a, b):
    return sp.simplify(a - b) == 0


def test_textbook_three_symbolically():
    d = symmle.derive("normal")
    s2, n = d.model.symbols["sigma2"], d.likelihood.N
    m = exact_bias(d)["sigma2"]
    assert _same(m.bias, -s2 / n)
    assert _same(m.unbiased, n / (n - 1) * d.solutions["sigma2"].expr)
    assert _same(m.unbiased_mse, 2 * s2**2 / (n - 1))

    d = symmle.derive("exponential")
    lam, n, t1 = d.model.symbols["lam"], d.likelihood.N, d.likelihood.statistics[0].symbol
    m = exact_bias(d)["lam"]
    assert _same(m.expectation, n * lam / (n - 1))
    assert _same(m.unbiased, (n - 1) / t1)
    assert m.condition_text == "N > 2"

    d = symmle.derive("uniform")
    th, n = d.model.symbols["theta"], d.likelihood.N
    hi = d.likelihood.order_statistics[1]
    m = exact_bias(d)["theta"]
    assert _same(m.expectation, n * th / (n + 1))
    assert _same(m.unbiased, (n + 1) / n * hi)


def test_no_exact_expression_is_null_with_a_reason():
    got = exact_bias(symmle.derive("gamma"))
    for name in ("a", "b"):
        assert not got[name].exact and got[name].bias is None and got[name].unbiased is None
        assert "numeric" in got[name].reason
    # a closed form that is neither a polynomial nor a power of a statistic (sqrt(T1/N))
    m = exact_bias(symmle.derive("rayleigh"))["sigma"]
    assert m.estimator is not None and m.bias is None and m.reason


def test_a_budget_running_out_is_no_exact_expression_not_a_hang():
    got = exact_bias(symmle.derive("pareto"), timeout=0.05)["alpha"]
    assert got.bias is None and "time budget" in got.reason


def test_vector_and_regression_models_are_refused():
    with pytest.raises(symmle.SpecError, match="not available"):
        exact_bias(symmle.derive("poisson_regression"))


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def test_cli_text():
    r = run("derive", "exponential", "--bias")
    assert r.exit_code == 0, r.output
    assert "Exact finite-sample bias" in r.output
    assert "E[lam_hat]         = N*lam/(N - 1)" in r.output
    assert "unbiased lam_tilde = (N - 1)/T1" in r.output
    plain = run("derive", "exponential")
    assert "Exact finite-sample bias" not in plain.output


def test_cli_json():
    r = run("derive", "uniform", "--bias", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["schema"] == 1
    e = doc["estimators"]["theta"]
    th, n = sp.symbols("theta N")
    assert _same(sp.sympify(e["bias"], locals={"theta": th, "N": n}), -th / (n + 1))
    assert e["unbiased"] is not None and e["variance"] is not None and e["mse"] is not None
    doc = json.loads(run("derive", "gamma", "--bias", "--format", "json").output)
    assert doc["estimators"]["a"]["bias"] is None and doc["estimators"]["a"]["unbiased"] is None
    assert doc["estimators"]["a"]["bias_reason"]
    plain = json.loads(run("derive", "uniform", "--format", "json").output)
    assert "bias" not in plain["estimators"]["theta"]


def test_cli_refuses_regression_clearly():
    r = run("derive", "poisson_regression", "--bias")
    assert r.exit_code != 0 and "not available" in r.output and "Traceback" not in r.output


def test_markdown_section():
    r = run("derive", "normal", "--bias", "--format", "markdown")
    assert r.exit_code == 0 and "## Exact finite-sample bias" in r.output
    assert "\\tilde{\\sigma}^{2}" in r.output


@pytest.mark.parametrize("model", ["normal", "pareto", "gamma"])
def test_latex_compiles(tmp_path, model):
    from tests.test_latex import PDFLATEX, compile_tex

    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed")
    r = run("derive", model, "--bias", "--format", "latex", "--standalone")
    assert r.exit_code == 0 and "\\subsection*{Exact finite-sample bias}" in r.output
    compile_tex(PDFLATEX, r.output, tmp_path, model)
