"""Likelihood-ratio, Wald and score tests (symmle.hypothesis_test, ``symmle test``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import optimize, special, stats

import symmle
from symmle.base.errors import SpecError
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.numbers.hypothesis import _check_score, hypothesis_test


def stat(r, key):
    return r.statistics[key]["statistic"]


def test_normal_mean_matches_the_t_test():
    x = np.random.default_rng(11).normal(0.3, 1.7, 37)
    n = x.size
    r = hypothesis_test("normal", x, {"mu": 0})
    t = stats.ttest_1samp(x, 0.0).statistic
    assert stat(r, "lr") == pytest.approx(n * np.log1p(t**2 / (n - 1)), rel=1e-9)
    assert stat(r, "wald") == pytest.approx(n * x.mean() ** 2 / x.var(), rel=1e-9)
    # score: U_mu = N xbar / s0 with s0 = mean(x^2), info N / s0
    assert stat(r, "score") == pytest.approx(n * x.mean() ** 2 / np.mean(x**2), rel=1e-9)
    assert r.df == 1 and r.information == "expected"
    assert r.estimates["null"]["sigma2"] == pytest.approx(np.mean(x**2), rel=1e-10)
    for key in ("lr", "wald", "score"):
        s = r.statistics[key]
        assert s["df"] == 1 and s["p"] == pytest.approx(stats.chi2.sf(s["statistic"], 1), rel=1e-12)


def test_poisson_score_is_pearson():
    x = np.random.default_rng(5).poisson(3.1, 64)
    lam0, n, t = 2.5, x.size, x.sum()
    r = symmle.hypothesis_test("poisson", x, {"lam": lam0})
    assert stat(r, "score") == pytest.approx((t - n * lam0) ** 2 / (n * lam0), rel=1e-10)
    lam = t / n
    assert stat(r, "wald") == pytest.approx((lam - lam0) ** 2 / (lam / n), rel=1e-10)
    ll = lambda v: stats.poisson.logpmf(x, v).sum()  # noqa: E731
    assert stat(r, "lr") == pytest.approx(2 * (ll(lam) - ll(lam0)), rel=1e-9)
    # every parameter restricted: the null log-likelihood is evaluated, not fitted
    assert r.log_likelihood["null"] == pytest.approx(ll(lam0), rel=1e-12)


def test_bernoulli_score_is_the_proportions_z_test_squared():
    from statsmodels.stats.proportion import proportions_ztest

    x = np.random.default_rng(8).binomial(1, 0.38, 90)
    p0 = 0.5
    r = hypothesis_test("bernoulli", x, {"p": p0})
    z, _ = proportions_ztest(x.sum(), x.size, value=p0, prop_var=p0)
    assert stat(r, "score") == pytest.approx(z**2, rel=1e-10)
    z_wald, _ = proportions_ztest(x.sum(), x.size, value=p0)  # variance at the estimate
    assert stat(r, "wald") == pytest.approx(z_wald**2, rel=1e-10)


def test_binomial_with_a_known_constant():
    x = np.random.default_rng(2).binomial(10, 0.3, 40)
    p0 = 0.35
    r = hypothesis_test("binomial", x, {"p": p0}, {"n": 10})
    m, t = 10 * x.size, x.sum()
    assert stat(r, "score") == pytest.approx((t - m * p0) ** 2 / (m * p0 * (1 - p0)), rel=1e-10)


def test_exponential_within_gamma_against_scipy():
    x = np.random.default_rng(21).gamma(1.6, 1 / 0.8, 120)
    r = hypothesis_test("gamma", x, {"a": 1})

    def nll(z):  # gamma with shape a and rate b, on the log scale
        a, b = np.exp(z)
        return -np.sum(a * np.log(b) + (a - 1) * np.log(x) - b * x - special.gammaln(a))

    best = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    ll_full = -best.fun
    ll_null = stats.expon.logpdf(x, scale=x.mean()).sum()  # the exponential's MLE: rate 1/xbar
    assert r.log_likelihood["full"] == pytest.approx(ll_full, abs=1e-6)
    assert r.log_likelihood["null"] == pytest.approx(ll_null, rel=1e-10)
    assert stat(r, "lr") == pytest.approx(2 * (ll_full - ll_null), abs=1e-5)
    assert r.estimates["null"] == pytest.approx({"a": 1.0, "b": 1 / x.mean()}, rel=1e-10)


def test_all_parameters_restricted():
    x = np.random.default_rng(4).normal(0.2, 1.1, 50)
    n = x.size
    r = hypothesis_test("normal", x, {"mu": 0, "sigma2": 1})
    assert r.df == 2 and r.estimates["null"] == {"mu": 0.0, "sigma2": 1.0}
    ll0 = stats.norm.logpdf(x).sum()
    ll1 = stats.norm.logpdf(x, x.mean(), x.std()).sum()
    assert stat(r, "lr") == pytest.approx(2 * (ll1 - ll0), rel=1e-10)
    # score at (0, 1): U = (sum x, (sum x^2 - N)/2), information diag(N, N/2)
    u = np.array([x.sum(), (np.sum(x**2) - n) / 2])
    assert stat(r, "score") == pytest.approx(u[0] ** 2 / n + u[1] ** 2 / (n / 2), rel=1e-10)
    assert r.statistics["lr"]["p"] == pytest.approx(stats.chi2.sf(stat(r, "lr"), 2), rel=1e-12)


@pytest.mark.parametrize(
    "family, null, draw",
    [
        ("gamma", {"a": 1.0}, lambda g: g.exponential(1.5, 20000)),
        ("bernoulli", {"p": 0.3}, lambda g: g.binomial(1, 0.3, 20000)),
        ("normal", {"sigma2": 4.0}, lambda g: g.normal(1.0, 2.0, 20000)),
    ],
)
def test_the_three_statistics_agree_on_large_samples(family, null, draw):
    x = draw(np.random.default_rng(31))
    r = hypothesis_test(family, x, null)
    lr, w, s = stat(r, "lr"), stat(r, "wald"), stat(r, "score")
    assert abs(w - lr) < 0.05 * (1 + lr) and abs(s - lr) < 0.05 * (1 + lr)
    # under an alternative they all reject, and stay of the same size
    shifted = {k: v * 1.08 for k, v in null.items()}
    r = hypothesis_test(family, x, shifted)
    lr, w, s = stat(r, "lr"), stat(r, "wald"), stat(r, "score")
    assert lr > 20 and 0.7 < w / lr < 1.4 and 0.7 < s / lr < 1.4
    assert r.verdict.startswith("reject H0 at 5%")


def test_a_wrong_score_is_caught():
    m = load_model("normal")
    d = symmle.derive(m)
    compiled = d.compile()
    x = np.random.default_rng(1).normal(0.5, 1.0, 40)
    at = {"mu": 0.0, "sigma2": float(np.mean(x**2))}
    u = np.array([x.sum() / at["sigma2"], 0.0])
    cov = np.diag([at["sigma2"] / x.size, 2 * at["sigma2"] ** 2 / x.size])
    assert _check_score(compiled, x, at, ["mu", "sigma2"], u, cov) == ""
    wrong = u + np.array([0.05 * np.sqrt(x.size / at["sigma2"]), 0.0])
    assert "disagrees with a finite difference" in _check_score(compiled, x, at, ["mu", "sigma2"], wrong, cov)


@pytest.mark.parametrize(
    "model, null, message",
    [
        ("normal", {"sigma2": -1}, "not in its domain 'positive'"),
        ("normal", {"nu": 1}, "unknown parameter 'nu'"),
        ("bernoulli", {"p": 1}, "not in its domain 'unit'"),
        ("binomial", {"n": 3}, "is a constant of binomial"),
        ("normal", {}, "restricts no parameter"),
        ("uniform", {"theta": 2}, "chi-square reference does not apply"),
        ("mvnormal", {"mu": 0}, "not yet supported"),
        ("normal", {"mu": "abc"}, "unknown symbol 'abc'"),
    ],
)
def test_refused_nulls(model, null, message):
    with pytest.raises(SpecError, match=message):
        hypothesis_test(model, [1.0, 2.0, 3.5], null, {"n": 5} if model == "binomial" else None)


def test_regression_is_not_yet_supported():
    m = load_model("poisson").with_link({"lam": "log"})
    with pytest.raises(SpecError, match="regression models are not yet supported"):
        hypothesis_test(m, [1, 2, 3], {"lam": 1})


@pytest.fixture
def csv(tmp_path):
    x = np.random.default_rng(9).gamma(1.5, 1.0, 60)
    path = tmp_path / "w.csv"
    path.write_text("w\n" + "\n".join(f"{v:.17g}" for v in x) + "\n")
    return path, x


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def test_cli_text_and_json(csv):
    path, x = csv
    out = run("test", "gamma", path, "--column", "w", "--null", "a=1")
    assert out.exit_code == 0, out.output
    assert "likelihood ratio" in out.output and "score (Rao)" in out.output and "Wald" in out.output
    lib = hypothesis_test("gamma", x, {"a": 1})
    assert lib.verdict in out.output
    out = run("test", "gamma", path, "--column", "w", "--null", "a=1", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["schema"] == 1 and doc["model"] == "gamma" and doc["n"] == 60
    assert doc["null"] == {"a": 1.0}
    assert set(doc["estimates"]) == {"full", "null"} and set(doc["log_likelihood"]) == {"full", "null"}
    for key in ("lr", "wald", "score"):
        assert doc["statistics"][key]["df"] == 1
        assert doc["statistics"][key]["statistic"] == pytest.approx(stat(lib, key), rel=1e-9)
    assert doc["verdict"] == lib.verdict


def test_cli_several_and_inline(csv):
    path, x = csv
    out = run("test", "normal", path, "--null", "mu=1,sigma2=1", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["statistics"]["lr"]["df"] == 2
    inline = ["--pdf", "lam*exp(-lam*x)", "--support", "0,oo", "--param", "lam:positive"]
    out = run("test", *inline, path, "--null", "lam=0.5", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["statistics"]["score"]["statistic"] == pytest.approx(
        (x.size - 0.5 * x.sum()) ** 2 / x.size, rel=1e-9
    )


@pytest.mark.parametrize(
    "null, message",
    [
        ("sigma2=-1", "not in its domain"),
        ("nu=0", "unknown parameter 'nu'"),
        ("mu", "--null must be NAME=VALUE"),
        (None, "test needs --null"),
    ],
)
def test_cli_errors_are_one_line(csv, null, message):
    path, _ = csv
    args = ["test", "normal", path] + ([] if null is None else ["--null", null])
    out = run(*args)
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_cli_uniform_is_refused(csv):
    path, _ = csv
    out = run("test", "uniform", path, "--null", "theta=5")
    assert out.exit_code == 2 and "chi-square reference does not apply" in out.output


def test_a_wrong_score_is_reported_not_used(monkeypatch):
    from symmle.numbers.compiled import CompiledModel

    init = CompiledModel.__init__

    def wrong(self, *args, **kwargs):
        init(self, *args, **kwargs)
        right = self.plan["score"][0]
        self.plan["score"][0] = lambda values, data: 1.1 * right(values, data) + 1.0

    monkeypatch.setattr(CompiledModel, "__init__", wrong)
    x = np.random.default_rng(6).poisson(3.0, 50)
    r = hypothesis_test("poisson", x, {"lam": 2.5})
    assert r.statistics["score"]["statistic"] is None and r.statistics["score"]["p"] is None
    assert any("disagrees with a finite difference" in w for w in r.warnings)
    assert "disagrees with a finite difference" in r.to_text()
    assert r.statistics["lr"]["statistic"] is not None  # the others stand


def test_cli_constants_and_dropna(tmp_path):
    x = np.random.default_rng(12).weibull(1.5, 80) * 2.0
    path = tmp_path / "t.csv"
    path.write_text("t\n" + "\n".join(f"{v:.17g}" for v in x) + "\nNA\n")
    out = run("test", "weibull_scale", path, "--const", "k=1.5", "--null", "lam=2", "--dropna", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output[out.output.index("{") :])
    lib = hypothesis_test("weibull_scale", x, {"lam": 2}, {"k": 1.5})
    assert doc["n"] == 80 and doc["dropped"] == 1
    assert doc["statistics"]["lr"]["statistic"] == pytest.approx(stat(lib, "lr"), rel=1e-10)
    out = run("test", "weibull_scale", path, "--null", "lam=2", "--dropna")
    assert out.exit_code == 3 and "missing value for constant 'k'" in out.output
