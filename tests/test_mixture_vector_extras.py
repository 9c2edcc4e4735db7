"""Vector mixtures: K chosen by BIC (``--components``), ``check --mixture``, ``compile --mixture``.

The BIC choice against scikit-learn's GaussianMixture.bic (the same parameter count) on iris and on
seeded well-separated clusters.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.numbers.mixture_vector import VectorMixtureResult


@pytest.fixture(scope="module")
def mvn():
    return symmle.derive("mvnormal")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris  # in the test extra: a missing one fails, not skips

    return load_iris().data


def _sklearn_bic(x, k, tol=1e-10):
    from sklearn.mixture import GaussianMixture

    g = GaussianMixture(k, tol=tol, n_init=3, covariance_type="full", max_iter=5000, random_state=0).fit(x)
    return float(g.bic(x)), int(g._n_parameters())


def _clusters():
    rng = np.random.default_rng(11)
    return np.r_[
        rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 0.8]], 120),
        rng.multivariate_normal([9.0, 0.0], [[0.7, -0.2], [-0.2, 1.1]], 100),
        rng.multivariate_normal([4.0, 9.0], [[1.2, 0.0], [0.0, 0.6]], 110),
    ]


def test_iris_components_match_sklearn_bic(mvn, iris):
    r = symmle.fit(mvn, iris, components=range(1, 5), seed=0)
    assert isinstance(r, VectorMixtureResult)
    rows = {row["k"]: row for row in r.selection}
    assert sorted(rows) == [1, 2, 3, 4] and all(row["error"] is None for row in rows.values())
    ours = {k: rows[k]["bic"] for k in rows}
    # scikit-learn to a tight tolerance where both reach the same optimum (K <= 3); at K = 4 it
    # stops at a worse local optimum whatever the tolerance
    theirs = {k: _sklearn_bic(iris, k, tol=1e-10 if k <= 3 else 1e-4) for k in rows}
    # the same parameter count: K - 1 weights, K means, K full covariances
    n = iris.shape[0]
    for k, (_, p) in theirs.items():
        assert p == k - 1 + k * (4 + 10)
        assert ours[k] == pytest.approx(-2 * rows[k]["log_likelihood"] + p * np.log(n), rel=1e-12)
    assert r.n_parameters == theirs[r.components][1]
    # the same K chosen, and the BIC of every K where both reach the same optimum agrees; where
    # scikit-learn stops at a worse local optimum (K = 4 here), ours is no larger
    assert r.components == min(theirs, key=lambda k: theirs[k][0]) == 2
    for k in (1, 2, 3):
        assert ours[k] == pytest.approx(theirs[k][0], rel=1e-4)
    assert ours[4] <= theirs[4][0] * (1 + 1e-4)
    # K = 1 is the plain fit
    plain = symmle.fit(mvn, iris)
    assert rows[1]["log_likelihood"] == pytest.approx(plain.log_likelihood, rel=1e-12)
    assert rows[1]["bic"] == pytest.approx(plain.bic, rel=1e-12)
    # the chosen fit is the K = 2 mixture itself
    assert r.bic == rows[2]["bic"] and len(r.estimates["w"]) == 2


def test_three_separated_clusters_choose_three(mvn):
    x = _clusters()
    r = symmle.fit(mvn, x, components="1..4", seed=0)
    assert r.components == 3 and r.converged
    bics = [row["bic"] for row in r.selection]
    assert int(np.argmin(bics)) + 1 == 3
    assert sorted(np.round(np.asarray(r.estimates["mu"])[:, 0]).tolist()) == [0.0, 4.0, 9.0]
    assert r.components == min(range(1, 5), key=lambda k: _sklearn_bic(x, k, tol=1e-6)[0])


def test_cli_components_table_and_json(tmp_path):
    x = _clusters()
    path = tmp_path / "xy.csv"
    np.savetxt(path, x, delimiter=",", header="a,b", comments="")
    runner = CliRunner()
    res = runner.invoke(cli, ["fit", "mvnormal", "--components", "2..4", str(path), "--columns", "a,b"])
    assert res.exit_code == 0, res.output
    assert "the number of components chosen by BIC" in res.output
    chosen = [line for line in res.output.splitlines() if "<- chosen" in line]
    assert len(chosen) == 1 and chosen[0].split()[0] == "3"
    assert "mvnormal mixture of 3" in res.output
    res = runner.invoke(cli, ["fit", "mvnormal", "--components", "1,3", str(path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == 1 and doc["mixture"] == 3 and doc["chosen_by"] == "bic"
    assert [row["k"] for row in doc["components_bic"]] == [1, 3]
    assert np.asarray(doc["estimates"]["Sigma"]).shape == (3, 2, 2)


def test_cli_components_refusals(tmp_path):
    path = tmp_path / "xy.csv"
    np.savetxt(path, _clusters(), delimiter=",", header="a,b", comments="")
    runner = CliRunner()
    both = runner.invoke(cli, ["fit", "mvnormal", "--mixture", "2", "--components", "1..3", str(path)])
    assert both.exit_code != 0 and "not both" in both.output and "Traceback" not in both.output
    bad = runner.invoke(cli, ["fit", "mvnormal", "--components", "3..1", str(path)])
    assert bad.exit_code != 0 and "empty range" in bad.output
    counts = tmp_path / "c.csv"
    np.savetxt(counts, [[1, 2, 3], [2, 2, 2]], delimiter=",", header="a,b,c", comments="", fmt="%d")
    multi = runner.invoke(cli, ["fit", "multinomial", "--components", "1..2", str(counts)])
    assert multi.exit_code != 0 and "--components" in multi.output and "Traceback" not in multi.output


# ---------------------------------------------------------------- check --mixture of a vector family

TRUE = "w=[0.4,0.6],mu=[[0,0],[3,3]],Sigma=[[[1,0],[0,1]],[[1,0.5],[0.5,2]]]"


def test_check_vector_mixture_statistics(mvn):
    from symmle.simulate.mixture_vector_check import VectorMixtureCheckResult

    true = {"w": "[0.6, 0.4]", "mu": "[[4, 4], [0, 0]]", "Sigma": "[[[1, 0.5], [0.5, 2]], [[1, 0], [0, 1]]]"}
    r = symmle.check(mvn, true, n=300, reps=6, seed=3, mixture=2)
    assert isinstance(r, VectorMixtureCheckResult) and r.failed == 0
    # canonical order: the true components sorted by the first coordinate of mu
    assert r.true["w"] == [0.4, 0.6] and r.true["mu"] == [[0.0, 0.0], [4.0, 4.0]]
    assert sorted(r.entries) == sorted(["w", "mu[1]", "mu[2]", "Sigma[1,1]", "Sigma[2,1]", "Sigma[2,2]"])
    sigma21 = r.entries["Sigma[2,1]"]
    assert [e.true for e in sigma21] == [0.0, 0.5]
    # the statistics are those of the replicates' estimates, and near the truth
    for label, row in r.entries.items():
        est = r.estimates[label]
        for k, e in enumerate(row):
            assert e.mean == pytest.approx(float(np.mean(est[:, k])), rel=1e-12, abs=1e-12)
            assert e.sd == pytest.approx(float(np.std(est[:, k], ddof=1)), rel=1e-12)
            assert abs(e.bias) < 4 * e.sd / np.sqrt(6) + 0.05
            assert e.mean_se is not None and 0.3 < e.mean_se / e.sd < 3
    # the weights of the two components are complementary in every replicate
    assert np.allclose(r.estimates["w"].sum(axis=1), 1.0)
    doc = r.to_dict()
    assert doc["schema"] == 1 and doc["mixture"] == 2
    assert np.asarray(doc["true"]["Sigma"]).shape == (2, 2, 2)
    assert len(doc["parameters"]["mu[1]"]["coverage"]) == 2


def test_check_vector_mixture_cli(tmp_path):
    res = CliRunner().invoke(
        cli,
        ["check", "mvnormal", "--mixture", "2", "--true", TRUE, "--n", "300", "--reps", "4", "--seed", "0"],
    )
    assert res.exit_code in (0, 6), res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("mvnormal mixture of 2: simulation check, n = 300, 4 replicates, seed 0")
    assert lines[2].split()[:2] == ["component", "parameter"]
    rows = [line.split() for line in lines[3:15]]
    assert [(r[0], r[1]) for r in rows[:6]] == [
        ("1", "w"),
        ("1", "mu[1]"),
        ("1", "mu[2]"),
        ("1", "Sigma[1,1]"),
        ("1", "Sigma[2,1]"),
        ("1", "Sigma[2,2]"),
    ]
    assert rows[10][:3] == ["2", "Sigma[2,1]", "0.5"]
    res = CliRunner().invoke(
        cli,
        ["check", "mvnormal", "--mixture", "2", "--true", TRUE, "--n", "200", "--reps", "2", "--json"],
    )
    doc = json.loads(res.stdout)
    assert doc["true"]["mu"] == [[0.0, 0.0], [3.0, 3.0]] and doc["replicates_failed"]["total"] == 0


@pytest.mark.parametrize(
    "true, message",
    [
        (TRUE.replace("[[0,0],[3,3]]", "[[0,0],[3,3],[1,1]]"), "a mixture of 2 needs 2"),
        (TRUE.replace("[[0,0],[3,3]]", "[[0,0,0],[3,3,3]]"), "different dimensions"),
        (TRUE.replace("[[1,0],[0,1]]", "[[1,2],[2,1]]"), "not positive definite"),
        (TRUE.replace("[0.5,2]]]", "[0.4,2]]]"), "not symmetric"),
        (TRUE.replace("w=[0.4,0.6]", "w=[0.5,0.6]"), "must sum to 1"),
        (TRUE.replace("w=[0.4,0.6]", "w=[-0.4,1.4]"), "strictly between 0 and 1"),
        (TRUE[:-1], "unbalanced brackets"),
        (TRUE.replace("[[0,0],[3,3]]", "[0,3]"), "component 1"),
        (TRUE.replace("[3,3]", "[3,__import__('os')]"), "unknown function"),
        ("w=[0.4,0.6],mu=[[0,0],[3,3]]", "missing true value of 'Sigma'"),
        (TRUE.replace("[3,3]", "[0,0]").replace("[[1,0.5],[0.5,2]]", "[[1,0],[0,1]]"), "not identifiable"),
    ],
)
def test_check_vector_mixture_bad_truth_is_one_line(true, message):
    res = CliRunner().invoke(cli, ["check", "mvnormal", "--mixture", "2", "--true", true, "--n", "50"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error:") and message in lines[0], res.output


def test_compile_vector_mixture_refused_clearly(tmp_path):
    out = tmp_path / "m.py"
    res = CliRunner().invoke(cli, ["compile", "mvnormal", "--mixture", "2", "-o", str(out)])
    assert res.exit_code == 2 and not out.exists()
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "vector family 'mvnormal' is not generated yet" in lines[0]


def test_check_mixture_hands_a_vector_family_on(mvn):
    from symmle.simulate.mixture_check import check_mixture
    from symmle.simulate.mixture_vector_check import VectorMixtureCheckResult

    true = {"w": [0.5, 0.5], "mu": [[0, 0], [5, 5]], "Sigma": [np.eye(2), 2 * np.eye(2)]}
    r = check_mixture(mvn, true, 2, n=200, reps=3, seed=2, starts=2)
    assert isinstance(r, VectorMixtureCheckResult) and r.failed == 0
    assert [e.true for e in r.entries["Sigma[2,2]"]] == [1.0, 2.0]
