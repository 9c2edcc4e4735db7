"""``symmle check`` of vector models: verdicts per entry, and verdicts that fail when they must.

The mvnormal estimators pass at their true values; the same check of a derivation whose
``Sigma_hat`` is made wrong on purpose (the unbiased ``S/(N-1)``, or ``1.1 S/N``) fails.  The
true values are vectors and matrices read by the safe parser, and each mistake in them (another
dimension, a matrix that is not positive definite, an unknown name) is one line with exit code 2.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.model.catalogue import catalogue_dir
from symmle.simulate.check import check
from symmle.simulate.vector_sampling import vector_sampler

SPECS = catalogue_dir()  # the vector families of the catalogue
MVN = str(SPECS / "mvnormal.toml")
TRUE = {"mu": "[0, 1]", "Sigma": "[[2, 0.5], [0.5, 1]]"}


@pytest.fixture(scope="module")
def mvnormal():
    return symmle.derive(MVN)


def _with_sigma(d, factor):
    """The derivation with ``Sigma_hat`` multiplied by ``factor(N)``: a wrong estimator."""
    e = d.solutions["Sigma"]
    N = d.likelihood.N
    wrong = dataclasses.replace(e, expr=factor(N) * e.expr)
    st = d.stationarity
    estimators = {**dict(st.estimators), "Sigma": wrong}
    return dataclasses.replace(d, stationarity=dataclasses.replace(st, estimators=estimators))


def test_mvnormal_passes_at_the_true_values(mvnormal):
    r = check(mvnormal, TRUE, n=300, reps=300, seed=4, agree=20)
    assert r.passed, r.to_text()
    assert list(r.parameters) == ["mu[1]", "mu[2]", "Sigma[1,1]", "Sigma[2,1]", "Sigma[2,2]"]
    sigma21 = r.parameters["Sigma[2,1]"]
    # the CRLB of an off-diagonal entry: (S_11 S_22 + S_12^2)/n
    assert sigma21.crlb == pytest.approx((2 * 1 + 0.5**2) / 300, rel=1e-12)
    assert r.parameters["mu[1]"].crlb == pytest.approx(2 / 300, rel=1e-12)
    assert all(p.agreement is not None and p.agreement < 1e-9 for p in r.parameters.values())
    doc = r.to_dict()
    sigma = doc["parameters"]["Sigma"]
    assert doc["true"] == {"mu": [0.0, 1.0], "Sigma": [[2.0, 0.5], [0.5, 1.0]]} and doc["dimension"] == 2
    assert np.shape(sigma["mean"]) == (2, 2) and sigma["mean"][0][1] == sigma["mean"][1][0]
    assert np.shape(doc["parameters"]["mu"]["coverage"]) == (2,) and sigma["verdict"] == "pass"
    assert set(sigma["entries"]) == {"Sigma[1,1]", "Sigma[2,1]", "Sigma[2,2]"}
    json.dumps(doc)  # plain JSON


@pytest.mark.parametrize(
    "factor, failing",
    [
        (lambda N: N / (N - 1), "agreement"),  # the unbiased covariance: too small a bias to see
        (lambda N: sp.Rational(11, 10), "bias"),  # a scaled one
    ],
)
def test_a_wrong_sigma_estimator_fails(mvnormal, factor, failing):
    r = check(_with_sigma(mvnormal, factor), TRUE, n=300, reps=300, seed=4, agree=20)
    assert not r.passed
    failed = r.failures()
    assert any(f.startswith("Sigma[") and f.endswith(failing) for f in failed), failed
    assert not any(f.startswith("mu[") for f in failed), failed  # the mean is still right


def test_isotropic_and_dirichlet_pass():
    r = check(
        str(SPECS / "mvnormal_isotropic.toml"),
        {"mu": "[1, -1, 2]", "s2": "0.5"},
        n=200,
        reps=200,
        seed=1,
        agree=10,
    )
    assert r.passed, r.to_text()
    assert r.parameters["s2"].crlb == pytest.approx(2 * 0.5**2 / (3 * 200), rel=1e-12)
    r = check(str(SPECS / "dirichlet.toml"), {"a": [2.0, 3.0, 5.0]}, n=200, reps=60, seed=2, agree=5)
    assert r.passed, r.to_text()
    assert r.parameters["a[1]"].kind == "numeric"


def test_the_multivariate_samplers_draw_the_model():
    rng = np.random.default_rng(0)
    m = load_model(MVN)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = vector_sampler(m, {"mu": np.array([0.0, 1.0]), "Sigma": cov}, 2)((4, 20000), rng)
    assert x.shape == (4, 20000, 2)
    flat = x.reshape(-1, 2)
    assert np.allclose(flat.mean(axis=0), [0, 1], atol=0.03) and np.allclose(np.cov(flat.T), cov, atol=0.05)
    p = np.array([0.2, 0.3, 0.5])
    counts = vector_sampler(load_model(SPECS / "multinomial.toml"), {"p": p}, 3)((2, 5000), rng)
    assert np.all(counts.sum(axis=-1) == 20) and np.allclose(counts.reshape(-1, 3).mean(0) / 20, p, atol=0.01)
    onehot = vector_sampler(load_model(SPECS / "categorical.toml"), {"p": p}, 3)((1, 5000), rng)
    assert set(np.unique(onehot)) <= {0.0, 1.0} and np.all(onehot.sum(axis=-1) == 1)


def _cli(*args):
    return CliRunner().invoke(cli, ["check", MVN, *args, "--n", "50", "--reps", "20"])


@pytest.mark.parametrize(
    "true, message",
    [
        (
            "mu=[0,1,2],Sigma=[[2,0.5],[0.5,1]]",
            "the true values have different dimensions: 'mu' has 3, 'Sigma' has 2",
        ),
        (
            "mu=[0,1],Sigma=[[2,3],[3,1]]",
            "true value of 'Sigma' is not in its domain 'spd': it is not positive definite",
        ),
        (
            "mu=[0,1],Sigma=[[2,0.5],[0.4,1]]",
            "true value of 'Sigma' is not in its domain 'spd': it is not symmetric",
        ),
        ("mu=[0,1],Sigma=[[2,0.5],[0.5,1]],nu=2", "unknown parameter 'nu' in the true values"),
        ("mu=[0,1]", "missing true value of parameter 'Sigma'"),
        ("mu=__import__('os'),Sigma=[[2,0.5],[0.5,1]]", "true value of mu"),
        ("mu=[0,1],Sigma=[2,1]", "value of 'Sigma' must be a square matrix"),
        (
            "mu=[0]*60,Sigma=[[1]]",
            "true value of mu",  # no arithmetic on lists: the parser refuses it
        ),
    ],
)
def test_bad_true_values_are_one_line_exit_2(true, message):
    result = _cli("--true", true)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: ") and message in lines[0], result.output


def test_the_cli_check_and_its_json():
    result = _cli("--true", "mu=[0,1],Sigma=[[2,0.5],[0.5,1]]", "--seed", "3", "--agree", "3", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == "pass" and np.shape(doc["parameters"]["Sigma"]["bias"]) == (2, 2)
    text = _cli("--true", "mu=[0,1],Sigma=[[2,0.5],[0.5,1]]", "--seed", "3", "--agree", "3")
    assert text.exit_code == 0 and "Sigma[2,1]" in text.output and "D = 2" in text.output
    generic = _cli("--true", "mu=[0,1],Sigma=[[2,0.5],[0.5,1]]", "--generic-sampler")
    assert generic.exit_code == 2 and "draws scalar models only" in generic.output
    small = _cli("--true", "mu=[0,1],Sigma=[[2,0.5],[0.5,1]]", "--sizes", "2,10")
    assert small.exit_code == 2 and "at least D + 1 = 3 rows" in small.output
