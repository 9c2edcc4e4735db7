"""Derived quantities ``--derived NAME=EXPR``: invariance of the MLE, the delta method, reparametrisation.

The symbolic results are compared with formulas written here (``sp.simplify(a - b) == 0``); the fit's
standard errors with a delta method computed in the test from a finite-difference gradient and a
covariance from a finite-difference Hessian of the log-likelihood (NumPy only).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.base.errors import SpecError
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.model.derived import parse_derived


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def refused(result) -> str:
    """The one-line error of a refused command (non-zero exit, no traceback)."""
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: "), result.output
    return lines[0]


# ------------------------------------------------------------------------------------------------
# bad input: one-line SpecError, non-zero exit
# ------------------------------------------------------------------------------------------------

BAD = [
    ("2x=mu", "not a valid identifier"),
    ("a-b=mu", "not a valid identifier"),
    ("mu=2*mu", "already declared as the parameter"),
    ("sigma2=mu", "already declared as the parameter"),
    ("N=mu", "reserved"),
    ("T1=mu", "reserved"),
    ("sqrt=mu", "reserved"),
    ("lambda=mu", "reserved"),
    ("_x=mu", "reserved"),
    ("__import__=mu", "reserved"),
    ("y=foo", "unknown symbol 'foo'"),
    ("y=x", "not the variable x"),
    ("y=", "has no expression"),
    ("y=   ", "has no expression"),
    ("=mu", "name before '='"),
    ("noequals", "must be NAME=EXPR"),
    ("y=3", "does not depend on any parameter"),
    ("y=__import__('os').system('true')", "attribute access is not allowed"),
    ("y=__import__('os')", "unknown function '__import__'"),
    ("y=mu.__class__", "attribute"),
    ("y=lambda: mu", "lambda"),
    ("y=mu; import os", "invalid syntax"),
    ("y=[mu, sigma2]", "list literals are not allowed"),
    ("y=Piecewise((mu, mu > 0), (sigma2, True))", "Piecewise is not allowed"),
]


@pytest.mark.parametrize("item,message", BAD, ids=[b[0] for b in BAD])
def test_bad_derived_is_a_one_line_spec_error(item, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        parse_derived([item], load_model("normal"))
    assert "\n" not in str(exc.value)
    line = refused(run("derive", "normal", "--derived", item))
    assert message in line


def test_duplicate_name_is_refused():
    with pytest.raises(SpecError, match="'s' is already declared as the derived quantity"):
        symmle.derive("normal", derived=["s=sqrt(sigma2)", "s=mu"])


def test_injection_runs_nothing(tmp_path):
    """A would-be injection in the expression is refused by the safe parser and never executed."""
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    proc = subprocess.run(
        [sys.executable, "-m", "symmle", "fit", "normal", "/nonexistent.csv", "--derived", f"y={code}"],
        capture_output=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode != 0 and not marker.exists()
    err = proc.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith("symmle: error: derived quantity y"), proc.stderr
    assert b"Traceback" not in proc.stderr


def test_mapping_form_is_checked_too():
    with pytest.raises(SpecError, match="must be text"):
        parse_derived({"y": 3}, load_model("normal"))
    with pytest.raises(SpecError, match="not a valid identifier"):
        symmle.derive("normal", derived={"a b": "mu"})


# ------------------------------------------------------------------------------------------------
# non-scalar models: refused in one line (derive and fit, API and CLI), before any data are read
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,kind",
    [
        (["mvnormal", "--derived", "s=mu"], "a vector model"),
        (["poisson_regression", "--derived", "m=lam"], "a regression"),
        (["normal", "--link", "mu=identity", "--derived", "m=sigma2"], "a regression"),
    ],
)
def test_non_scalar_models_are_refused(args, kind):
    line = refused(run("derive", *args))
    assert "--derived is for scalar-parameter models" in line and kind in line
    line = refused(run("fit", args[0], "/nonexistent/data.csv", *args[1:]))
    assert "--derived is for scalar-parameter models" in line  # not "no such file": refused first


def test_non_scalar_models_are_refused_by_the_library():
    with pytest.raises(SpecError, match="scalar-parameter models: mvnormal is a vector model"):
        symmle.derive("mvnormal", derived={"s": "mu"})
    x = np.random.default_rng(1).normal(size=(20, 2))
    with pytest.raises(SpecError, match="scalar-parameter models"):
        symmle.fit("mvnormal", x, derived={"s": "mu"})


# ------------------------------------------------------------------------------------------------
# derive: the formulas against the textbook ones
# ------------------------------------------------------------------------------------------------


def zero(e) -> bool:
    return sp.simplify(e) == 0


@pytest.fixture(scope="module")
def normal_sigma():
    return symmle.derive("normal", derived={"sigma": "sqrt(sigma2)"})


def test_normal_sigma_estimator_variance_information(normal_sigma):
    d = normal_sigma
    mu, sigma2 = d.model.symbols["mu"], d.model.symbols["sigma2"]
    N = d.likelihood.N
    (q,) = d.derived
    assert q.name == "sigma" and q.positive
    # invariance: sigma_hat = sqrt(sigma2_hat), with sigma2_hat the derivation's own closed form
    assert zero(q.estimator - sp.sqrt(d.solutions["sigma2"].expr))
    assert zero(q.expr - sp.sqrt(sigma2))
    # delta method: (1/(2 sigma))^2 * 2 sigma^4 / N = sigma^2 / (2N)
    assert zero(q.variance - sigma2 / (2 * N))
    assert zero(q.gradient[0]) and zero(q.gradient[1] - 1 / (2 * sp.sqrt(sigma2)))
    # information in (mu, sigma): diag(1/sigma^2, 2/sigma^2)
    r = q.reparametrisation
    assert r is not None and r.replaced == "sigma2"
    s = q.symbol
    assert [p.name for p in r.parameters] == ["mu", "sigma"] and r.parameters[0] == mu
    assert zero(r.inverse - s**2)
    expected = sp.diag(1 / s**2, 2 / s**2)
    assert all(zero(a - b) for a, b in zip(r.fisher, expected))


def test_exponential_mean():
    d = symmle.derive("exponential", derived=["mean=1/lam"])
    lam, N = d.model.symbols["lam"], d.likelihood.N
    (q,) = d.derived
    (T1,) = [s.symbol for s in d.likelihood.statistics]
    assert zero(q.estimator - T1 / N)  # the sample mean
    assert zero(q.variance - 1 / (N * lam**2))  # (1/lam^2)^2 * lam^2 / N
    r = q.reparametrisation
    m = q.symbol
    assert r is not None and zero(r.inverse - 1 / m)
    assert zero(r.fisher[0, 0] - 1 / m**2)  # the exponential with mean m has information 1/m^2


def test_several_parameters_no_reparametrisation():
    """cv = sqrt(sigma2)/mu uses two parameters: a variance, no one-to-one reparametrisation."""
    d = symmle.derive("normal", derived={"cv": "sqrt(sigma2)/mu"})
    mu, sigma2, N = d.model.symbols["mu"], d.model.symbols["sigma2"], d.likelihood.N
    (q,) = d.derived
    g = sp.sqrt(sigma2) / mu
    expected = sp.diff(g, mu) ** 2 * sigma2 / N + sp.diff(g, sigma2) ** 2 * 2 * sigma2**2 / N
    assert zero(q.variance - expected)
    assert q.reparametrisation is None and not q.positive  # mu may be negative


def test_unit_parameter_odds_is_positive_and_one_to_one():
    d = symmle.derive("bernoulli", derived={"odds": "p/(1-p)"})
    p, N = d.model.symbols["p"], d.likelihood.N
    (q,) = d.derived
    assert q.positive  # seen through p in (0, 1)
    assert zero(q.variance - p / (N * (1 - p) ** 3))  # (1/(1-p)^2)^2 p(1-p)/N
    o = q.symbol
    assert zero(q.reparametrisation.fisher[0, 0] - 1 / (o * (1 + o) ** 2))


def test_irregular_parameter_has_no_variance():
    d = symmle.derive("uniform", derived={"half": "theta/2"})
    (q,) = d.derived
    assert q.variance is None and any("not asymptotically normal" in n for n in q.notes)
    assert zero(q.estimator - d.solutions["theta"].expr / 2)


# ------------------------------------------------------------------------------------------------
# fit: the delta method against one computed here
# ------------------------------------------------------------------------------------------------


def _fd_gradient(g, theta, h=1e-5):
    out = np.zeros(len(theta))
    for k in range(len(theta)):
        e = np.zeros(len(theta))
        e[k] = h * max(1.0, abs(theta[k]))
        out[k] = (g(theta + e) - g(theta - e)) / (2 * e[k])
    return out


def _fd_hessian(f, theta, h=1e-4):
    k = len(theta)
    H = np.zeros((k, k))
    steps = [h * max(1.0, abs(t)) for t in theta]
    for i in range(k):
        for j in range(k):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = steps[i], steps[j]
            H[i, j] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (
                4 * steps[i] * steps[j]
            )
    return H


@pytest.fixture(scope="module")
def normal_data():
    return np.random.default_rng(20261204).normal(2.0, 1.5, 400)


@pytest.fixture(scope="module")
def normal_fit(normal_data):
    return symmle.fit("normal", normal_data, derived=["sigma=sqrt(sigma2)", "cv=sqrt(sigma2)/mu"])


def test_fit_delta_method_against_finite_differences(normal_data, normal_fit):
    x = normal_data
    n = len(x)
    theta = np.array([x.mean(), x.var()])  # the normal MLE, written out

    def nll(t):
        mu, s2 = t
        return 0.5 * n * np.log(2 * np.pi * s2) + ((x - mu) ** 2).sum() / (2 * s2)

    cov = np.linalg.inv(_fd_hessian(nll, theta))  # observed = expected information at the normal MLE
    for name, g in [("sigma", lambda t: np.sqrt(t[1])), ("cv", lambda t: np.sqrt(t[1]) / t[0])]:
        grad = _fd_gradient(g, theta)
        se = math.sqrt(grad @ cov @ grad)
        e = normal_fit.derived[name]
        assert e["estimate"] == pytest.approx(g(theta), rel=1e-10)
        assert e["stderr"] == pytest.approx(se, rel=1e-4)
    # the textbook asymptotic standard error of sigma_hat: sqrt(sigma2 / (2N))
    assert normal_fit.derived["sigma"]["stderr"] == pytest.approx(math.sqrt(x.var() / (2 * n)), rel=1e-10)


def test_fit_interval_respects_the_domain():
    """mean = 1/lam is positive: its interval is on the log scale, where Wald's would cross zero."""
    x = np.array([0.2, 1.9, 0.7])
    r = symmle.fit("exponential", x, derived={"mean": "1/lam"})
    e = r.derived["mean"]
    assert e["estimate"] == pytest.approx(x.mean())
    assert e["stderr"] == pytest.approx(x.mean() / math.sqrt(3))  # |d(1/lam)/dlam| * lam/sqrt(n)
    assert e["estimate"] - 1.96 * e["stderr"] < 0  # the plain Wald interval would leave the domain
    lo, hi = e["ci95"]
    assert 0 < lo < e["estimate"] < hi and e["ci_method"] == "wald-log"
    assert lo * hi == pytest.approx(e["estimate"] ** 2)  # symmetric on the log scale


def test_fit_sigma_interval_is_positive(normal_fit):
    lo, hi = normal_fit.derived["sigma"]["ci95"]
    assert 0 < lo < normal_fit.derived["sigma"]["estimate"] < hi
    assert normal_fit.derived["cv"]["ci_method"] == "wald"  # cv may be negative: a plain interval


def test_fit_undefined_and_irregular_are_reported():
    x = np.random.default_rng(3).normal(-1.0, 0.5, 30)
    r = symmle.fit("normal", x, derived={"lm": "log(mu)"})
    assert r.derived["lm"]["estimate"] is None and any("lm = log(mu) is undefined" in w for w in r.warnings)
    u = symmle.fit("uniform", np.random.default_rng(4).uniform(0, 2, 25), derived={"half": "theta/2"})
    assert u.derived["half"]["estimate"] == pytest.approx(u.estimates["theta"] / 2)
    assert u.derived["half"]["stderr"] is None
    assert any("no delta-method standard error for the derived quantity half" in w for w in u.warnings)


# ------------------------------------------------------------------------------------------------
# JSON contracts and the text table
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normal_csv(tmp_path_factory, normal_data):
    path = tmp_path_factory.mktemp("derived") / "normal.csv"
    np.savetxt(path, normal_data, header="x", comments="")
    return str(path)


def test_fit_json_contract(normal_csv, normal_fit):
    r = run(
        "fit",
        "normal",
        normal_csv,
        "--derived",
        "sigma=sqrt(sigma2)",
        "--derived",
        "cv=sqrt(sigma2)/mu",
        "--json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["schema"] == 1 and set(doc["derived"]) == {"sigma", "cv"}
    for name, e in doc["derived"].items():
        assert {"estimate", "stderr", "ci95", "ci_method", "expr", "estimator_kind"} <= set(e)
        assert e["estimator_kind"] == "mle"
        assert e["estimate"] == pytest.approx(normal_fit.derived[name]["estimate"], rel=1e-9)
        assert e["stderr"] == pytest.approx(normal_fit.derived[name]["stderr"], rel=1e-9)
        assert isinstance(e["ci95"], list) and len(e["ci95"]) == 2
    assert doc["derived"]["sigma"]["expr"] == "sqrt(sigma2)"
    plain = json.loads(run("fit", "normal", normal_csv, "--json").output)
    assert "derived" not in plain  # the key appears only with --derived


def test_fit_text_table(normal_csv):
    r = run("fit", "normal", normal_csv, "--derived", "sigma=sqrt(sigma2)")
    assert r.exit_code == 0, r.output
    assert "derived quantities (by invariance; standard errors by the delta method)" in r.output
    assert "sigma on the log scale, mapped back" in r.output


def test_derive_json_has_the_derived_entries():
    r = run("derive", "normal", "--derived", "sigma=sqrt(sigma2)", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    e = doc["derived"]["sigma"]
    assert e["estimator_kind"] == "mle"
    sigma2, N = sp.Symbol("sigma2", positive=True), sp.Symbol("N", positive=True)
    # the entries are SymPy text: read back here (trusted, our own output) and compared symbolically
    assert zero(sp.sympify(e["variance"], locals={"sigma2": sigma2, "N": N}) - sigma2 / (2 * N))
    fi = e["fisher_information"]
    assert fi["parameters"] == ["mu", "sigma"]
    s = sp.Symbol("sigma", positive=True)
    matrix = sp.Matrix([[sp.sympify(v, locals={"sigma": s}) for v in row] for row in fi["matrix"]])
    assert all(zero(a - b) for a, b in zip(matrix, sp.diag(1 / s**2, 2 / s**2)))
    assert any(step["title"] == "Variance of sigma" for step in doc["steps"])
    assert "derived" not in json.loads(run("derive", "normal", "--format", "json").output)


def test_derive_text_section():
    r = run("derive", "normal", "--derived", "sigma=sqrt(sigma2)")
    assert r.exit_code == 0, r.output
    assert "by invariance, sigma_hat = sqrt(sigma2_hat) = sqrt(N*T2 - T1**2)/N" in r.output
    assert "Var(sigma_hat) ~ sigma2/(2*N)    [delta method, verified]" in r.output


# ------------------------------------------------------------------------------------------------
# LaTeX: compiles, and a hostile-but-valid name is escaped
# ------------------------------------------------------------------------------------------------


def test_latex_compiles_with_hostile_names(tmp_path):
    from tests.test_latex import PDFLATEX, compile_tex

    args = ["--derived", "input=sqrt(sigma2)", "--derived", "σ_é__x=mu/sigma2", "--derived", "textbf_1=mu**2"]
    r = run("derive", "normal", *args, "--format", "latex", "--standalone")
    assert r.exit_code == 0, r.output
    tex = r.output
    assert "\\subsection*{Derived quantities}" in tex
    assert "\\input" not in tex and "\\textbf" not in tex  # names are never pasted as commands
    assert r"\mathrm{input}" in tex and r"\mathrm{U00E9}" in tex and "hat\\_" not in tex
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed")
    compile_tex(PDFLATEX, tex, tmp_path, "derived")


# ------------------------------------------------------------------------------------------------
# with a prior: g at the MAP, labelled as a plug-in (not the MAP of g)
# ------------------------------------------------------------------------------------------------

PRIOR = ["--prior", "p ~ beta(a=2, b=2)"]


@pytest.fixture(scope="module")
def bernoulli_map():
    return symmle.derive("bernoulli", prior={"p": "beta(a=2, b=2)"})


def test_derive_with_prior_shows_the_plug_in(tmp_path, bernoulli_map):
    from symmle.symbolic.derivation import with_derived

    d = with_derived(bernoulli_map, {"odds": "p/(1-p)"})
    (q,) = d.derived
    p_map = d.solutions["p"].expr
    assert zero(q.estimator - p_map / (1 - p_map))
    assert any("not the MAP of odds" in n for n in q.notes)
    r = run("derive", "bernoulli", *PRIOR, "--derived", "odds=p/(1-p)")
    assert r.exit_code == 0, r.output
    assert r.output == d.to_text()
    assert "Derived quantities" in r.output
    assert "at the MAP estimate (a plug-in, not the MAP of odds), odds_MAP = p_MAP/(1 - p_MAP)" in r.output
    assert d.to_dict()["derived"]["odds"]["estimator_kind"] == "map_plug_in"
    tex = d.to_latex(standalone=True)
    assert "not the MAP of" in tex and "by invariance of the maximum-likelihood" not in tex
    from tests.test_latex import PDFLATEX, compile_tex

    if PDFLATEX is not None:
        compile_tex(PDFLATEX, tex, tmp_path, "map_derived")


def test_fit_with_prior_shows_the_plug_in(tmp_path, bernoulli_map):
    x = (np.random.default_rng(5).random(60) < 0.3).astype(int)
    r = symmle.fit(bernoulli_map, x, derived={"odds": "p/(1-p)"})
    p_map = (x.sum() + 1) / (len(x) + 2)
    e = r.derived["odds"]
    assert r.estimator == "map" and e["estimator_kind"] == "map_plug_in"
    assert e["estimate"] == pytest.approx(p_map / (1 - p_map))
    assert 0 < e["ci95"][0] < e["estimate"] < e["ci95"][1]
    path = tmp_path / "b.csv"
    np.savetxt(path, x, header="x", comments="", fmt="%d")
    out = run("fit", "bernoulli", str(path), *PRIOR, "--derived", "odds=p/(1-p)")
    assert out.exit_code == 0, out.output
    assert "g(theta_MAP) is a plug-in, not the MAP of g" in out.output


def test_other_interval_methods_fall_back_to_the_delta_method():
    """An interval method other than transformed/wald (profile) is for the parameters: g keeps its own."""
    from symmle.numbers.derived_fit import fit_derived

    d = symmle.derive("exponential")
    x = np.array([0.2, 1.9, 0.7, 0.4])
    compiled = d.compile()
    estimates = {"lam": 1 / x.mean()}
    found, warnings = fit_derived(d, compiled, x, estimates, {}, {"mean": "1/lam"}, ci="profile")
    same, none = fit_derived(d, compiled, x, estimates, {}, {"mean": "1/lam"}, ci="transformed")
    assert found["mean"]["ci95"] == pytest.approx(same["mean"]["ci95"])
    assert found["mean"]["ci_method"] == "wald-log"
    assert any("--ci profile is for the model's parameters" in w for w in warnings) and not none
