"""Mixtures of a vector family by EM (symmle.numbers.mixture_vector).

Against scikit-learn's GaussianMixture (full covariances, tol 1e-12, ten initialisations) on iris
and on seeded 2-D data; the log-likelihood against SciPy's multivariate normal at the estimates; the
monotone trace; degenerate data; the JSON shapes; standard errors against a finite-difference
Hessian; the numerical checks (monotonicity, the information's cross-check) made to fire; a
mixture of another vector family (isotropic covariance) against a direct maximisation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import optimize, stats

import symmle
from symmle.base.errors import DataError, SpecError, VerificationError
from symmle.cli import cli
from symmle.numbers import mixture_vector as mv
from symmle.numbers.mixture_em import MixtureResult


@pytest.fixture(scope="module")
def mvn():
    return symmle.derive("mvnormal")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris  # in the test extra: a missing one fails, not skips

    return load_iris().data


def _sklearn(x, k):
    from sklearn.mixture import GaussianMixture

    g = GaussianMixture(k, tol=1e-12, n_init=10, covariance_type="full", max_iter=10000, random_state=0).fit(
        x
    )
    order = np.argsort(g.means_[:, 0])
    return g.weights_[order], g.means_[order], g.covariances_[order], float(g.score(x)) * x.shape[0]


def _mixture_loglik(x, w, mu, sigma):
    dens = sum(wk * stats.multivariate_normal(m, s).pdf(x) for wk, m, s in zip(w, mu, sigma))
    return float(np.sum(np.log(dens)))


def _synthetic():
    rng = np.random.default_rng(2024)
    return np.r_[
        rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.5]], 250),
        rng.multivariate_normal([4.0, 1.0], [[0.6, -0.2], [-0.2, 0.4]], 150),
        rng.multivariate_normal([1.0, 5.0], [[0.8, 0.0], [0.0, 0.3]], 200),
    ]


@pytest.mark.parametrize("k", [2, 3])
def test_iris_agrees_with_sklearn(mvn, iris, k):
    r = symmle.fit(mvn, iris, mixture=k, seed=0)
    assert isinstance(r, MixtureResult) and r.converged and r.components == k
    w, mu, sigma, ll = _sklearn(iris, k)
    # scikit-learn adds reg_covar = 1e-6 to each covariance's diagonal: agreement to that order
    assert np.allclose(r.estimates["w"], w, atol=2e-5)
    assert np.allclose(r.estimates["mu"], mu, atol=2e-5)
    assert np.allclose(r.estimates["Sigma"], sigma, atol=2e-5)
    assert r.log_likelihood >= ll - 1e-8
    # the reported log-likelihood is the mixture's at the estimates (an independent evaluation)
    direct = _mixture_loglik(iris, r.estimates["w"], r.estimates["mu"], r.estimates["Sigma"])
    assert r.log_likelihood == pytest.approx(direct, rel=1e-12)
    # canonical order: by the first coordinate of the first parameter
    assert np.all(np.diff(np.asarray(r.estimates["mu"])[:, 0]) > 0)


def test_synthetic_agrees_with_sklearn(mvn):
    x = _synthetic()
    r = symmle.fit(mvn, x, mixture=3, seed=4)
    w, mu, sigma, ll = _sklearn(x, 3)
    assert np.allclose(r.estimates["w"], w, atol=1e-5)
    assert np.allclose(r.estimates["mu"], mu, atol=1e-5)
    assert np.allclose(r.estimates["Sigma"], sigma, atol=1e-5)
    assert r.log_likelihood >= ll - 1e-8
    # the estimates recover the truth to within a few standard errors
    assert np.allclose(r.estimates["mu"], [[0, 0], [1, 5], [4, 1]], atol=5 * np.asarray(r.stderr["mu"]))


def test_trace_is_monotone_and_converged(mvn, iris):
    r = symmle.fit(mvn, iris, mixture=3, seed=1)
    trace = np.asarray(r.trace)
    assert len(trace) == r.iterations + 1 and len(trace) > 5
    assert np.all(np.diff(trace) >= -1e-11 * np.abs(trace[1:]))
    assert trace[-1] == r.log_likelihood
    assert abs(trace[-1] - trace[-2]) <= 1e-10 * abs(trace[-1])


def test_a_decreasing_log_likelihood_is_an_internal_error(mvn, iris, monkeypatch):
    real = mv._EM.m_step
    calls = []

    def spoiled(self, r):
        w, thetas, envs = real(self, r)
        calls.append(1)
        if len(calls) > 2:  # a bad M-step: the means moved off the weighted means
            mu = self.fam.params[0].symbol
            thetas = [{**t, mu: t[mu] + 0.05} for t in thetas]
            envs = [self.fam.prepare(t) for t in thetas]
        return w, thetas, envs

    monkeypatch.setattr(mv._EM, "m_step", spoiled)
    with pytest.raises(VerificationError, match="decreased"):
        mv.fit_vector_mixture(mvn, iris, 2, seed=0, starts=1)


def test_component_on_collinear_points_is_a_data_error(mvn):
    rng = np.random.default_rng(1)
    t = rng.normal(0, 1, 60)
    x = np.r_[rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 1]], 80), np.c_[10 + t, 5 + 2 * t]]
    with pytest.raises(DataError, match="singular"):
        symmle.fit(mvn, x, mixture=2, seed=0)


def test_too_few_rows_and_bad_components(mvn):
    x = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(DataError, match="at least"):
        symmle.fit(mvn, x, mixture=2)
    with pytest.raises(SpecError):
        symmle.fit(mvn, np.random.default_rng(0).normal(size=(50, 2)), mixture=0)


def test_stderr_against_finite_difference_hessian(mvn):
    rng = np.random.default_rng(5)
    x = np.r_[
        rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 2]], 60),
        rng.multivariate_normal([3, 1], [[0.5, -0.2], [-0.2, 0.7]], 40),
    ]
    r = mv.fit_vector_mixture(mvn, x, 2, seed=0)
    assert r.information == "observed" and not r.warnings
    fam = mv._Family(mvn, 2, None)
    mu_s, sigma_s = (q.symbol for q in fam.params)
    w = np.asarray(r.estimates["w"])
    thetas = [
        {mu_s: np.asarray(r.estimates["mu"])[k].reshape(-1, 1), sigma_s: np.asarray(r.estimates["Sigma"])[k]}
        for k in range(2)
    ]
    cov = np.linalg.inv(-mv.numerical_hessian(fam, x, w, thetas))
    se = np.sqrt(np.diag(cov))  # (w1, mu_1, vech Sigma_1, mu_2, vech Sigma_2)
    assert r.stderr["w"][0] == pytest.approx(se[0], rel=1e-4)
    assert r.stderr["w"][1] == pytest.approx(se[0], rel=1e-4)  # w2 = 1 - w1
    for k in range(2):
        block = se[1 + 5 * k : 1 + 5 * (k + 1)]
        assert np.allclose(r.stderr["mu"][k], block[:2], rtol=1e-4)
        s = np.asarray(r.stderr["Sigma"][k])
        assert np.allclose([s[0, 0], s[1, 0], s[1, 1]], block[2:], rtol=1e-4)
        assert np.allclose(s, s.T)


def test_a_wrong_information_is_caught(mvn, iris, monkeypatch):
    real = mv._Information.component_hessian
    monkeypatch.setattr(mv._Information, "component_hessian", lambda self, env: 1.001 * real(self, env))
    r = mv.fit_vector_mixture(mvn, iris, 2, seed=0, starts=2)
    assert r.information == "" and r.stderr["mu"] is None
    assert any("disagrees" in w for w in r.warnings)


def test_a_wrong_gradient_is_caught(mvn, iris, monkeypatch):
    real = mv._Information.score_map

    def doubled(self, env):
        a, m = real(self, env)
        return a, m * np.r_[np.ones(m.shape[0] - 1), 2.0][:, None]  # one coordinate's slope doubled

    monkeypatch.setattr(mv._Information, "score_map", doubled)
    r = mv.fit_vector_mixture(mvn, iris, 2, seed=0, starts=2)
    assert r.information == "" and any("gradient disagrees" in w for w in r.warnings)


def test_other_vector_family_against_direct_maximisation():
    d = symmle.derive("mvnormal_isotropic")
    rng = np.random.default_rng(11)
    x = np.r_[rng.normal([0, 0, 0], 1.0, (150, 3)), rng.normal([3, 3, 0], 0.5, (100, 3))]
    r = symmle.fit(d, x, mixture=2, seed=0)
    assert r.converged and np.shape(r.estimates["mu"]) == (2, 3) and np.shape(r.estimates["s2"]) == (2,)

    def nll(z):
        w1 = 1 / (1 + np.exp(-z[0]))
        mu = z[1:7].reshape(2, 3)
        s2 = np.exp(z[7:9])
        dens = w1 * stats.multivariate_normal(mu[0], s2[0] * np.eye(3)).pdf(x) + (
            1 - w1
        ) * stats.multivariate_normal(mu[1], s2[1] * np.eye(3)).pdf(x)
        return -np.sum(np.log(dens))

    w = np.asarray(r.estimates["w"])
    z0 = np.r_[np.log(w[0] / w[1]), np.asarray(r.estimates["mu"]).reshape(-1), np.log(r.estimates["s2"])]
    best = optimize.minimize(nll, z0, method="BFGS", options={"gtol": 1e-9})
    assert -nll(z0) == pytest.approx(r.log_likelihood, rel=1e-12)
    assert -best.fun <= r.log_likelihood + 1e-7  # no better point nearby: EM's M-step was the weighted MLE
    assert np.allclose(best.x, z0, atol=1e-4)
    assert r.information == "observed" and np.shape(r.stderr["s2"]) == (2,)


def test_cli_json_shapes(tmp_path, iris):
    path = tmp_path / "iris.csv"
    cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    np.savetxt(path, iris, delimiter=",", header=",".join(cols), comments="", fmt="%.1f")
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "mvnormal",
            "--mixture",
            "3",
            str(path),
            "--columns",
            ",".join(cols),
            "--seed",
            "0",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    k, d = 3, 4
    assert doc["schema"] == 1 and doc["mixture"] == k and doc["converged"] is True
    assert np.shape(doc["estimates"]["w"]) == (k,)
    assert np.shape(doc["estimates"]["mu"]) == (k, d)
    assert np.shape(doc["estimates"]["Sigma"]) == (k, d, d)
    for name in ("w", "mu", "Sigma"):
        assert np.shape(doc["stderr"][name]) == np.shape(doc["estimates"][name])
        assert np.shape(doc["ci95"][name]) == (*np.shape(doc["estimates"][name]), 2)
    assert doc["columns"] == cols
    n_par = k - 1 + k * (d + d * (d + 1) // 2)
    assert doc["bic"] == pytest.approx(np.log(150) * n_par - 2 * doc["log_likelihood"])
    assert doc["aic"] == pytest.approx(2 * n_par - 2 * doc["log_likelihood"])
    assert doc["iterations"] >= 1 and doc["starts"]["n"] == 10 and 1 <= doc["starts"]["distinct_optima"] <= 10
    text = CliRunner().invoke(
        cli, ["fit", "mvnormal", "--mixture", "2", str(path), "--columns", "petal_length,petal_width"]
    )
    assert text.exit_code == 0 and "mvnormal mixture of 2" in text.output and "Sigma[2,1]" in text.output


def test_cli_degenerate_and_refused(tmp_path):
    rng = np.random.default_rng(1)
    t = rng.normal(0, 1, 60)
    x = np.r_[rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 1]], 80), np.c_[10 + t, 5 + 2 * t]]
    path = tmp_path / "x.csv"
    np.savetxt(path, x, delimiter=",", header="a,b", comments="")
    res = CliRunner().invoke(cli, ["fit", "mvnormal", "--mixture", "2", str(path)])
    assert res.exit_code != 0 and "singular" in res.output and "Traceback" not in res.output
    labels = tmp_path / "labels.csv"
    labels.write_text("c\nred\nblue\nred\n")
    res = CliRunner().invoke(cli, ["fit", "categorical", "--mixture", "2", str(labels), "--column", "c"])
    assert res.exit_code != 0 and "--mixture" in res.output


def test_far_from_the_origin_keeps_its_digits(mvn, iris):
    """Shifting the data by 1e6 shifts the means and leaves the rest, standard errors included."""
    r0 = mv.fit_vector_mixture(mvn, iris, 2, seed=0, starts=2)
    r1 = mv.fit_vector_mixture(mvn, iris + 1e6, 2, seed=0, starts=2)
    assert r1.information == "observed"
    assert np.allclose(np.asarray(r1.estimates["mu"]) - 1e6, r0.estimates["mu"], rtol=0, atol=1e-8)
    assert np.allclose(r1.estimates["Sigma"], r0.estimates["Sigma"], rtol=1e-7)
    for name in ("w", "mu", "Sigma"):
        assert np.allclose(r1.stderr[name], r0.stderr[name], rtol=1e-6)


def test_acceleration_reaches_the_plain_em_optimum(mvn, monkeypatch):
    rng = np.random.default_rng(0)  # two overlapping clusters: plain EM crawls (about 1000 steps)
    x = np.r_[rng.normal([0, 0], 1, (600, 2)), rng.normal([1.5, 0.5], 0.7, (400, 2))]
    fast = mv.fit_vector_mixture(mvn, x, 2, seed=0, starts=2)
    monkeypatch.setattr(mv, "ACCELERATE", False)
    plain = mv.fit_vector_mixture(mvn, x, 2, seed=0, starts=2)
    assert fast.converged and plain.converged
    assert fast.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-12)
    for name in ("w", "mu", "Sigma"):
        assert np.allclose(fast.estimates[name], plain.estimates[name], atol=1e-6)
    assert 3 * len(fast.trace) < len(plain.trace)
    assert np.all(np.diff(fast.trace) >= -1e-11 * np.abs(fast.trace[1:]))
