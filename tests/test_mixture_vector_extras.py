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
