"""Regressions: the link modifier, the chain-rule derivation, and fits against statsmodels and NIST.

The reference values are statsmodels' own fits (OLS, Logit, Probit, GLM, NegativeBinomial) on its
shipped data sets (Longley, Spector) and on seeded data, NIST's certified Longley values (as
statsmodels' test results hold them) and the NIST Norris file in SciPy's wheel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.base.errors import DataError, SpecError
from symmle.cli import cli
from symmle.model.build import load_model, model_from_dict
from symmle.symbolic.derivation import derive

sm = pytest.importorskip("statsmodels.api")


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def _digits(a, b) -> float:
    """Significant digits to which ``a`` agrees with the reference ``b`` (the worst entry)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rel = np.abs(a - b) / np.abs(b)
    return float(-np.log10(max(rel.max(), 1e-17)))


# ------------------------------------------------------------------------------------------- the model


def test_a_spec_link_table_makes_a_regression():
    spec = {
        "variable": "y",
        "support": ["0", "oo"],
        "density": "lam**y*exp(-lam)/factorial(y)",
        "discrete": True,
        "parameters": {"lam": "positive"},
        "link": {"lam": "log"},
    }
    m = model_from_dict(spec)
    assert m.is_regression and m.link == (("lam", "log"),)
    assert m.to_dict()["link"] == {"lam": "log"}


@pytest.mark.parametrize(
    ("family", "links", "message"),
    [
        ("bernoulli", {"q": "logit"}, "'q' is not a parameter"),
        ("bernoulli", {"p": "foo"}, "unknown link 'foo'"),
        ("bernoulli", {"p": "log"}, "the log link applies to positive"),
        ("uniform", {"theta": "log"}, "sets the support"),
        ("normal", {"mu": "identity", "sigma2": "log"}, "one parameter may be linked"),
        ("mvnormal", {"mu": "identity"}, "vector model"),
    ],
)
def test_a_bad_link_is_a_one_line_error(family, links, message):
    with pytest.raises(SpecError, match=message) as info:
        load_model(family, validate=False).with_link(links)
    assert "\n" not in str(info.value)


def test_catalogue_regressions_are_listed_apart():
    from symmle.model.catalogue import family_names, list_families

    names = family_names("regression")
    for name in (
        "linear_regression",
        "logistic_regression",
        "probit_regression",
        "poisson_regression",
        "gamma_regression",
        "negative_binomial_regression",
    ):
        assert name in names and name not in family_names("scalar")
    listed = {f["name"]: f for f in list_families()}
    assert listed["logistic_regression"]["link"] == {"p": "logit"}


# ------------------------------------------------------------------------------------------- derivation


def test_normal_identity_has_the_normal_equations_and_rss_over_n():
    reg = derive("linear_regression").regression
    assert reg.kind == "closed_form"
    assert sp.simplify(reg.working_response - reg.response) == 0  # X^T X beta = X^T y
    (stat,) = reg.residual_statistics
    assert sp.simplify(stat.expr - (reg.response - reg.eta) ** 2) == 0
    N = sp.Symbol("N", integer=True, positive=True)
    assert sp.simplify(reg.profile["sigma2"] - stat.symbol / N) == 0


def test_logistic_score_weight_and_no_closed_form():
    reg = derive("logistic_regression").regression
    y, eta = reg.response, reg.eta
    p = 1 / (1 + sp.exp(-eta))
    assert reg.kind == "newton"
    assert sp.simplify(reg.score - (y - p)) == 0  # X^T (y - p)
    assert sp.simplify(reg.weight - p * (1 - p)) == 0  # X^T W X


@pytest.mark.parametrize(
    ("family", "links", "weight"),
    [
        ("poisson", {"lam": "log"}, lambda eta, s: sp.exp(eta)),
        ("weibull", {"lam": "log"}, lambda eta, s: s["k"] ** 2),
        ("exponential", {"lam": "identity"}, lambda eta, s: 1 / eta**2),
    ],
)
def test_the_weight_is_the_fisher_information_in_eta(family, links, weight):
    reg = derive(load_model(family).with_link(links)).regression
    shared = {q.name: q.symbol for q in reg.model.parameters}
    assert sp.simplify(reg.weight - weight(reg.eta, shared)) == 0


# ------------------------------------------------------------------------------------------- fits


@pytest.fixture(scope="module")
def longley() -> pd.DataFrame:
    return sm.datasets.longley.load_pandas().data


@pytest.fixture(scope="module")
def spector() -> pd.DataFrame:
    return sm.datasets.spector.load_pandas().data


def test_longley_matches_nist_to_eleven_digits(longley):
    from statsmodels.regression.tests.results.results_regression import Longley

    cert = Longley()
    r = symmle.fit(
        "linear_regression", longley, formula="TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR"
    )
    assert r.terms == ["Intercept", "GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
    order = [1, 2, 3, 4, 5, 6, 0]  # statsmodels lists the intercept last
    beta = np.array(r.estimates["beta"])[order]
    se = np.array(r.stderr["beta"])[order]
    assert _digits(beta, cert.params) >= 11
    assert _digits(se, cert.bse) >= 11
    assert r.statistic == "t" and r.df_resid == 9
    # sigma2_hat = RSS/N, the MLE (NIST's residual SD is sqrt(RSS/(N - p)))
    assert _digits(r.estimates["sigma2"], cert.ssr / 16) >= 11
    assert r.log_likelihood == pytest.approx(-109.6174348, rel=1e-9)
    ols = sm.OLS(longley["TOTEMP"], sm.add_constant(longley.drop(columns="TOTEMP"))).fit()
    assert np.allclose(
        np.array(r.p_values["beta"])[order], ols.pvalues.values[[1, 2, 3, 4, 5, 6, 0]], rtol=1e-6
    )


def test_norris_matches_nist_to_twelve_digits():
    import scipy

    path = Path(scipy.__file__).parent / "stats/tests/data/nist_linregress/Norris.dat"
    if not path.exists():
        pytest.skip("SciPy's Norris file is not installed")
    rows = path.read_text().splitlines()[60:]
    data = np.array([[float(v) for v in line.split()] for line in rows if line.strip()])
    df = pd.DataFrame({"y": data[:, 0], "x": data[:, 1]})
    r = symmle.fit("linear_regression", df, formula="y ~ x")
    assert _digits(r.estimates["beta"], [-0.262323073774029, 1.00211681802045]) >= 12
    assert _digits(r.stderr["beta"], [0.232818234301152, 0.429796848199937e-03]) >= 12
    rsd = math.sqrt(r.estimates["sigma2"] * r.n / r.df_resid)
    assert _digits(rsd, 0.884796396144373) >= 12


def test_logit_and_probit_match_statsmodels_on_spector(spector):
    X = sm.add_constant(spector[["GPA", "TUCE", "PSI"]])
    for model, ref in (("logistic_regression", sm.Logit), ("probit_regression", sm.Probit)):
        r = symmle.fit(model, spector, formula="GRADE ~ GPA + TUCE + PSI")
        res = ref(spector["GRADE"], X).fit(disp=0, tol=1e-12)
        assert np.allclose(r.estimates["beta"], res.params.values, rtol=1e-8, atol=1e-10)
        assert np.allclose(r.stderr["beta"], res.bse.values, rtol=1e-6)
        assert r.log_likelihood == pytest.approx(res.llf, rel=1e-10)
        assert r.aic == pytest.approx(res.aic, rel=1e-10) and r.bic == pytest.approx(res.bic, rel=1e-10)


def test_bernoulli_with_a_logit_link_is_logistic_regression(spector):
    a = symmle.fit("bernoulli", spector, link={"p": "logit"}, formula="GRADE ~ GPA + TUCE + PSI")
    b = symmle.fit("logistic_regression", spector, formula="GRADE ~ GPA + TUCE + PSI")
    assert np.allclose(a.estimates["beta"], b.estimates["beta"], rtol=1e-12)


def _poisson_data(seed=3, n=400):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "dose": rng.choice(["low", "mid", "high"], n),
            "time": rng.uniform(0.5, 3.0, n),
        }
    )
    eta = -2 + 0.03 * df["age"] + df["dose"].map({"low": 0.0, "mid": 0.4, "high": 0.9}) + np.log(df["time"])
    df["n"] = rng.poisson(np.exp(eta))
    df["log_time"] = np.log(df["time"])
    return df


def test_poisson_with_categories_and_an_offset_matches_glm():
    df = _poisson_data()
    r = symmle.fit("poisson", df, link={"lam": "log"}, formula="n ~ age + C(dose)", offset="log_time")
    glm = sm.GLM.from_formula("n ~ age + C(dose)", df, family=sm.families.Poisson(), offset=df["log_time"])
    res = glm.fit(tol=1e-12)
    assert r.terms == list(res.params.index)
    assert np.allclose(r.estimates["beta"], res.params.values, rtol=1e-8)
    assert np.allclose(r.stderr["beta"], res.bse.values, rtol=1e-6)
    assert r.log_likelihood == pytest.approx(res.llf, rel=1e-10)


def test_gamma_regression_matches_glm_coefficients_and_its_scale():
    rng = np.random.default_rng(5)
    n = 500
    x = rng.normal(size=n)
    mu = np.exp(0.5 + 0.3 * x)
    k = 2.5
    df = pd.DataFrame({"x": x, "y": rng.gamma(k, mu / k)})
    r = symmle.fit("gamma_regression", df, formula="y ~ x")
    res = sm.GLM.from_formula("y ~ x", df, family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-12)
    assert np.allclose(r.estimates["beta"], res.params.values, rtol=1e-6)
    # the dispersion fixed at symmle's 1/k_hat: GLM's Newton standard errors are the observed information's
    fixed = sm.GLM.from_formula("y ~ x", df, family=sm.families.Gamma(sm.families.links.Log()))
    res2 = fixed.fit(method="newton", scale=1 / r.estimates["k"], tol=1e-12)
    assert np.allclose(r.stderr["beta"], res2.bse.values, rtol=1e-4)


def test_negative_binomial_matches_statsmodels_nb2():
    from statsmodels.discrete.discrete_model import NegativeBinomial

    rng = np.random.default_rng(11)
    n = 600
    x = rng.normal(size=n)
    mu = np.exp(1.0 + 0.4 * x)
    alpha = 0.5
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    df = pd.DataFrame({"x": x, "y": y})
    r = symmle.fit("negative_binomial_regression", df, formula="y ~ x")
    res = NegativeBinomial(df["y"], sm.add_constant(df["x"])).fit(disp=0, maxiter=200, method="newton")
    assert np.allclose(r.estimates["beta"], res.params.values[:2], rtol=1e-6)
    assert r.estimates["alpha"] == pytest.approx(res.params.values[2], rel=1e-5)
    assert np.allclose(r.stderr["beta"], res.bse.values[:2], rtol=1e-4)
    assert r.log_likelihood == pytest.approx(res.llf, rel=1e-9)


def test_weibull_with_a_log_link_estimates_the_shape_too():
    rng = np.random.default_rng(2)
    n = 2000
    t = rng.normal(size=n)
    y = np.exp(0.5 + 0.3 * t) * rng.weibull(1.7, size=n)
    r = symmle.fit("weibull", pd.DataFrame({"t": t, "y": y}), link={"lam": "log"}, formula="y ~ t")
    beta, se = np.array(r.estimates["beta"]), np.array(r.stderr["beta"])
    assert np.all(np.abs(beta - [0.5, 0.3]) < 4 * se)
    assert abs(r.estimates["k"] - 1.7) < 4 * r.stderr["k"]
    assert r.kind == {"beta": "numeric", "k": "numeric"}


# ------------------------------------------------------------------------------------------- errors


def test_complete_separation_says_the_mle_does_not_exist():
    df = pd.DataFrame({"x": [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], "y": [0, 0, 0, 1, 1, 1]})
    with pytest.raises(DataError, match="does not exist") as info:
        symmle.fit("logistic_regression", df, formula="y ~ x")
    assert "x" in str(info.value) and "\n" not in str(info.value)


def test_quasi_complete_separation_is_an_error_too():
    df = pd.DataFrame({"x": [-2.0, -1.0, 0.0, 0.0, 1.0, 2.0], "y": [0, 0, 0, 1, 1, 1]})
    with pytest.raises(DataError, match="does not exist"):
        symmle.fit("probit_regression", df, formula="y ~ x")


def test_a_rank_deficient_design_names_the_collinear_terms():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    df["c"] = 2 * df["a"] - df["b"]
    df["y"] = df["a"] + rng.normal(size=50)
    for model in ("linear_regression", "poisson_regression"):
        if model == "poisson_regression":
            df["y"] = rng.poisson(2.0, size=50)
        with pytest.raises(DataError, match="rank-deficient") as info:
            symmle.fit(model, df, formula="y ~ a + b + c")
        assert all(name in str(info.value) for name in ("a", "b", "c"))


def test_a_response_outside_the_support_names_its_row():
    df = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "y": [0, 1, 2, 1]})
    with pytest.raises(DataError, match="row 3"):
        symmle.fit("logistic_regression", df, formula="y ~ x")


def test_regression_options_without_a_link_are_refused():
    with pytest.raises(SpecError, match="link"):
        symmle.fit("poisson", pd.DataFrame({"y": [1, 2], "x": [0, 1]}), formula="y ~ x")


# ------------------------------------------------------------------------------------------- command line


def test_cli_fit_with_a_formula_prints_a_coefficient_table_and_json(tmp_path, spector):
    path = tmp_path / "spector.csv"
    spector.to_csv(path, index=False)
    r = run("fit", "bernoulli", "--link", "p=logit", str(path), "--formula", "GRADE ~ GPA + TUCE + PSI")
    assert r.exit_code == 0, r.output
    out = r.stdout
    for word in ("coef", "std err", "P>|z|", "[0.025", "Intercept", "GPA", "Log-likelihood", "AIC", "BIC"):
        assert word in out
    r = run("fit", "logistic_regression", str(path), "--formula", "GRADE ~ GPA + TUCE + PSI", "--json")
    doc = json.loads(r.stdout)
    assert doc["schema"] == 1 and doc["terms"] == ["Intercept", "GPA", "TUCE", "PSI"]
    assert len(doc["estimates"]["beta"]) == 4 and len(doc["stderr"]["beta"]) == 4
    assert len(doc["ci95"]["beta"]) == 4 and len(doc["p_values"]["beta"]) == 4
    for key in ("log_likelihood", "aic", "bic", "n", "df_resid", "iterations"):
        assert doc[key] is not None


def test_cli_fit_with_y_and_x_columns(tmp_path, longley):
    path = tmp_path / "longley.csv"
    longley.to_csv(path, index=False)
    x = "GNPDEFL,GNP,UNEMP,ARMED,POP,YEAR"
    r = run("fit", "linear_regression", str(path), "--y", "TOTEMP", "--x", x, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["terms"][0] == "Intercept" and doc["statistic"] == "t"
    assert doc["estimates"]["beta"][6] == pytest.approx(1829.15146461355, rel=1e-11)
    assert isinstance(doc["estimates"]["sigma2"], float)


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "bernoulli", "--link", "p=foo"],
        ["fit", "bernoulli", "--link", "p"],
        ["fit", "bernoulli", "--link", "q=logit"],
        ["fit", "poisson", "--formula", "y ~ x"],
    ],
)
def test_cli_bad_regression_options_exit_two(tmp_path, args):
    path = tmp_path / "d.csv"
    path.write_text("y,x\n1,0.5\n0,0.7\n")
    r = run(*args[:2], str(path), *args[2:])
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output


def test_check_a_logistic_regression_by_simulation():
    r = symmle.check(
        "logistic_regression", {"beta": "[-1, 0.5, 2]"}, n=400, reps=60, seed=4, agree=3, design="normal"
    )
    assert r.passed, r.failures()
    assert set(r.parameters) == {"beta[1]", "beta[2]", "beta[3]"}


def test_a_bad_response_past_the_first_block_is_named_by_its_row():
    from symmle.numbers.regression_fit import CHUNK_ROWS

    n = CHUNK_ROWS + 10
    y = np.zeros(n)
    y[:5] = 1
    y[CHUNK_ROWS + 3] = 2  # row CHUNK_ROWS + 4 of the data
    df = pd.DataFrame({"y": y, "x": np.linspace(-1, 1, n)})
    with pytest.raises(DataError, match=rf"^row {CHUNK_ROWS + 4} of the data"):
        symmle.fit("logistic_regression", df, formula="y ~ x")


def test_probit_with_a_strong_signal_keeps_its_digits_in_the_tails():
    # |eta| reaches 25: Phi(eta) as (1 + erf)/2 would round to 0 or 1 and stall Newton
    from scipy.stats import norm

    rng = np.random.default_rng(3)
    x = rng.normal(size=3000) * 3
    y = (rng.random(3000) < norm.cdf(0.5 + 2.5 * x)).astype(float)
    r = symmle.fit("probit_regression", pd.DataFrame({"x": x, "y": y}), formula="y ~ x")
    res = sm.Probit(y, sm.add_constant(x)).fit(disp=0)
    assert np.allclose(r.estimates["beta"], res.params, rtol=1e-8)
    assert r.log_likelihood == pytest.approx(res.llf, rel=1e-10)
