"""Vector observations through the one pipeline (issue 12): derive, fit, bad input.

The multivariate Gaussian's estimators are compared with the first seed's formulas as
mathematics (entrywise at D = 2, 3) and with NumPy (np.mean, np.cov(bias=True)) on iris
and random data; its standard errors with Var(Sigma_hat_jk) = (S_jj S_kk + S_jk^2)/N; the
Dirichlet with a tight reference optimisation of SciPy's log-density.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from scipy import optimize, special, stats

import symmle
from symmle.base.errors import DataError
from symmle.cli import cli
from symmle.model.catalogue import catalogue_dir
from symmle.model.explicit import at_dimension, explicit_symbols
from symmle.numbers.matrix_eval import evaluate

SPECS = catalogue_dir()  # the vector families of the catalogue


@pytest.fixture(scope="module")
def mvn():
    return symmle.derive(SPECS / "mvnormal.toml")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris().data


def test_mvnormal_estimators_are_the_seeds(mvn):
    """mu_hat = (1/N) sum x_n and Sigma_hat = (1/N) sum (x_n - mu_hat)(x_n - mu_hat)^T, at D = 2 and 3."""
    lik = mvn.likelihood
    t1, t2 = (s.symbol for s in lik.statistics[:2])
    assert [s.expr for s in lik.statistics[:2]] == [
        mvn.model.variable,
        mvn.model.variable * mvn.model.variable.T,
    ]
    for n, rows in ((2, 4), (3, 5)):
        xs = [sp.Matrix(n, 1, lambda i, j, k=k: sp.Symbol(f"x{k}_{i}")) for k in range(rows)]
        env = {mvn.model.dimension: n, lik.N: rows, t1: sum(xs, sp.zeros(n, 1))}
        env[t2] = sum((v * v.T for v in xs), sp.zeros(n, n))
        mu_hat = sp.Matrix(at_dimension(mvn.estimators["mu"].xreplace(env), explicit_symbols(mvn.model, n)))
        sigma_hat = sp.Matrix(
            at_dimension(mvn.estimators["Sigma"].xreplace(env), explicit_symbols(mvn.model, n))
        )
        seed_mu = sum(xs, sp.zeros(n, 1)) / rows
        seed_sigma = sum(((v - seed_mu) * (v - seed_mu).T for v in xs), sp.zeros(n, n)) / rows
        assert (mu_hat - seed_mu).applyfunc(sp.simplify) == sp.zeros(n, 1)
        assert (sigma_hat - seed_sigma).applyfunc(sp.expand) == sp.zeros(n, n)
    assert all(e.verified for e in mvn.solutions.values())


def test_mvnormal_fisher_blocks(mvn):
    """I(mu) = Sigma^-1 and the Sigma block inverts to (S_jj S_kk + S_jk^2) per observation."""
    sigma = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 0.7]])
    mu, big = (q.symbol for q in mvn.model.parameters)
    f = evaluate(mvn.fisher, {mvn.model.dimension: 3, mu: np.zeros((3, 1)), big: sigma})
    assert np.allclose(f[:3, :3], np.linalg.inv(sigma))
    assert np.allclose(f[:3, 3:], 0)
    cov = np.linalg.inv(f[3:, 3:])
    pairs = [(i, j) for j in range(3) for i in range(j, 3)]
    expected = [sigma[i, i] * sigma[j, j] + sigma[i, j] ** 2 for i, j in pairs]
    assert np.allclose(np.diag(cov), expected)


@pytest.mark.parametrize("offset", [0.0, 1e9])
def test_fit_mvnormal_against_numpy(mvn, iris, offset):
    x = iris + offset
    r = symmle.fit(mvn, x)
    ref_mean = iris.mean(0) + offset
    # x - offset is exact (the data as stored, shifted back): the covariance without cancellation
    ref_cov = np.cov(x - offset, rowvar=False, bias=True)
    assert np.allclose(r.estimates["mu"], ref_mean, rtol=1e-14)
    assert np.allclose(r.estimates["Sigma"], ref_cov, rtol=1e-10, atol=0)
    s, n = r.estimates["Sigma"], x.shape[0]
    assert np.allclose(r.stderr["mu"], np.sqrt(np.diag(s) / n))
    assert np.allclose(r.stderr["Sigma"], np.sqrt((np.outer(np.diag(s), np.diag(s)) + s**2) / n))
    assert r.log_likelihood == pytest.approx(
        stats.multivariate_normal(r.estimates["mu"], s).logpdf(x).sum(), rel=1e-10
    )
    doc = r.to_dict()
    assert len(doc["estimates"]["mu"]) == 4 and len(doc["estimates"]["Sigma"]) == 4
    assert np.shape(doc["stderr"]["Sigma"]) == (4, 4) and np.shape(doc["ci95"]["mu"]) == (4, 2)


def test_fit_mvnormal_random_data(mvn):
    rng = np.random.default_rng(7)
    a = rng.normal(size=(6, 6))
    x = rng.multivariate_normal(np.arange(6.0), a @ a.T + np.eye(6), size=3000)
    r = symmle.fit(mvn, x)
    assert np.allclose(r.estimates["Sigma"], np.cov(x, rowvar=False, bias=True), rtol=1e-12)


def test_isotropic_and_known_covariance(iris):
    iso = symmle.fit(symmle.derive(SPECS / "mvnormal_isotropic.toml"), iris)
    centred = iris - iris.mean(0)
    assert iso.estimates["s2"] == pytest.approx((centred**2).sum() / iris.size, rel=1e-12)
    known = symmle.derive(SPECS / "mvnormal_known_cov.toml", constants={"Sigma": np.eye(4).tolist()})
    r = symmle.fit(known, iris)
    assert np.allclose(r.estimates["mu"], iris.mean(0)) and np.allclose(r.stderr["mu"], np.sqrt(1 / 150))
    # the log-likelihood: row by row here (the known covariance's x^T x term is its own statistic)
    ref = stats.multivariate_normal(iris.mean(0), np.eye(4)).logpdf(iris).sum()
    assert r.log_likelihood == pytest.approx(ref, rel=1e-12)
    ref_iso = stats.multivariate_normal(iso.estimates["mu"], iso.estimates["s2"] * np.eye(4)).logpdf(iris)
    assert iso.log_likelihood == pytest.approx(ref_iso.sum(), rel=1e-12)


def test_dirichlet_against_a_reference_optimisation():
    rng = np.random.default_rng(3)
    x = rng.dirichlet([2.0, 3.0, 5.0], size=1500)
    d = symmle.derive(SPECS / "dirichlet.toml")
    assert d.solutions["a"].kind == "numeric"
    r = symmle.fit(d, x)
    logs = np.log(x).sum(0)

    def nll(z):  # the Dirichlet's own log-likelihood and its gradient in log a (SciPy's digamma)
        a = np.exp(z)
        value = stats.dirichlet(a).logpdf(x.T).sum()
        grad = (len(x) * (special.digamma(a.sum()) - special.digamma(a)) + logs) * a
        return -value, -grad

    ref = optimize.minimize(nll, np.zeros(3), jac=True, method="BFGS", options={"gtol": 1e-10})
    assert np.allclose(r.estimates["a"], np.exp(ref.x), rtol=1e-6)
    assert r.log_likelihood == pytest.approx(-ref.fun, rel=1e-12)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.ones((3, 4)), "rows"),  # fewer than D + 1 rows: Sigma_hat is singular
        (np.column_stack([np.arange(10.0), 2 * np.arange(10.0), np.sin(np.arange(10.0))]), "collinear"),
        (np.array([[1.0, 2.0], [np.nan, 1.0], [0.0, 3.0], [2.0, 2.0]]), "row 2"),
    ],
)
def test_bad_data_is_one_clear_error(mvn, data, message):
    with pytest.raises(DataError) as err:
        symmle.fit(mvn, data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_fit_from_the_command_line(tmp_path, iris):
    path = tmp_path / "iris.csv"
    lines = ["a,b,c,d,name"] + [",".join(map(str, row)) + ",setosa" for row in iris]
    path.write_text("\n".join(lines) + "\n")
    spec = str(SPECS / "mvnormal.toml")
    out = CliRunner().invoke(cli, ["fit", spec, str(path), "--columns", "d,a", "--json"])
    assert out.exit_code == 0, out.output
    import json

    doc = json.loads(out.output)
    assert doc["columns"] == ["d", "a"]
    assert np.allclose(doc["estimates"]["mu"], iris[:, [3, 0]].mean(0))
    bad = CliRunner().invoke(cli, ["fit", spec, str(path), "--columns", "a,name"])
    assert bad.exit_code == 3 and "name" in bad.output and "Traceback" not in bad.output
    wrong = CliRunner().invoke(cli, ["fit", spec, str(path), "--column", "a"])
    assert wrong.exit_code == 2 and "--columns" in wrong.output


def test_inline_vector_model_with_dim():
    pdf = "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))"
    out = CliRunner().invoke(
        cli,
        ["derive", "--pdf", pdf, "--var", "x", "--dim", "D", "--param", "mu:vector", "--param", "Sigma:spd"],
    )
    assert out.exit_code == 0, out.output
    assert "T1" in out.output and "Sigma" in out.output


def test_categorical_from_labels_and_multinomial_from_counts(tmp_path):
    """p_hat = n_k/N from the Lagrangian (derived, verified), against the counts; SEs sqrt(p(1-p)/n)."""
    cat = symmle.derive(SPECS / "categorical.toml")
    assert cat.solutions["p"].kind == "closed_form" and cat.stationarity.constrained
    labels = tmp_path / "labels.csv"
    labels.write_text("species\n" + "\n".join(["b", "a", "c", "a", "a", "b"]) + "\n")
    out = CliRunner().invoke(cli, ["fit", str(SPECS / "categorical.toml"), str(labels), "--json"])
    assert out.exit_code == 0, out.output
    import json

    doc = json.loads(out.output)
    assert doc["categories"] == ["a", "b", "c"]
    assert np.allclose(doc["estimates"]["p"], [3 / 6, 2 / 6, 1 / 6])
    p = np.array([3, 2, 1]) / 6
    assert np.allclose(doc["stderr"]["p"], np.sqrt(p * (1 - p) / 6))
    assert doc["log_likelihood"] == pytest.approx(float(np.sum([3, 2, 1] * np.log(p))))

    rng = np.random.default_rng(5)
    x = rng.multinomial(7, [0.1, 0.2, 0.3, 0.4], size=300).astype(float)
    mult = symmle.derive(SPECS / "multinomial.toml")
    r = symmle.fit(mult, x)
    total = x.sum()
    assert np.allclose(r.estimates["p"], x.sum(0) / total)  # not T1/N: each row holds 7 counts
    assert np.allclose(r.stderr["p"], np.sqrt(r.estimates["p"] * (1 - r.estimates["p"]) / total))
    ref = sum(stats.multinomial(7, r.estimates["p"]).logpmf(row) for row in x)
    assert r.log_likelihood == pytest.approx(ref, rel=1e-12)


def test_diagonal_covariance_is_the_variance_of_each_column(iris):
    d = symmle.derive(SPECS / "mvnormal_diagonal.toml")
    assert {e.kind for e in d.solutions.values()} == {"closed_form"}
    r = symmle.fit(d, iris)
    assert np.allclose(r.estimates["s2"], iris.var(0), rtol=1e-12)
    assert np.allclose(r.stderr["s2"], iris.var(0) * np.sqrt(2 / len(iris)))


def test_npy_rows_are_memory_mapped_and_dirichlet_shares(tmp_path):
    rng = np.random.default_rng(11)
    x = rng.multivariate_normal([1.0, -2.0, 0.5], np.diag([1.0, 2.0, 3.0]), size=5000)
    path = tmp_path / "big.npy"
    np.save(path, x)
    out = CliRunner().invoke(cli, ["fit", str(SPECS / "mvnormal.toml"), str(path), "--json"])
    assert out.exit_code == 0, out.output
    import json

    doc = json.loads(out.output)
    assert np.allclose(doc["estimates"]["Sigma"], np.cov(x, rowvar=False, bias=True), rtol=1e-12)
    shares = tmp_path / "shares.csv"
    y = rng.dirichlet([1.5, 2.5, 4.0], size=400)
    shares.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.17g}" for v in row) for row in y) + "\n")
    out = CliRunner().invoke(cli, ["fit", str(SPECS / "dirichlet.toml"), str(shares), "--columns", "a,b,c"])
    assert out.exit_code == 0, out.output
    assert "numeric" in out.output and "a[3]" in out.output
    y[5, 1] = -0.1
    shares.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.17g}" for v in row) for row in y) + "\n")
    out = CliRunner().invoke(cli, ["fit", str(SPECS / "dirichlet.toml"), str(shares)])
    assert out.exit_code == 3 and "row 6" in out.output and "\n" not in out.output.strip()


def test_compiled_log_likelihood_keeps_its_digits_far_from_zero(mvn, iris):
    """The compiled module's log-likelihood is written in the mean and scatter: no cancellation at 1e9."""
    x = iris + 1e9
    est = mvn.compile()
    values = est(x)
    ref = stats.multivariate_normal(values["mu"], values["Sigma"]).logpdf(x).sum()
    assert est.log_likelihood(x, **values) == pytest.approx(ref, rel=1e-10)
