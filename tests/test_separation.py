"""The linear-programming test for (quasi-)complete separation (symmle.numbers.separation).

Complete separation (logistic data split by ``x > 0``, and by a plane through 5,000 rows), quasi-
complete separation (ties on the boundary), data that are not separated (None, and statsmodels' Logit
converges on them), and the Poisson case (``y = 0`` in every row of one category: that category's
coefficient goes to -inf).  Every direction returned is checked on the rows themselves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symmle.numbers.separation import find_separation

BINARY = ("y = 1", "y = 0")


def assert_valid(X, sign, sep):
    """The direction satisfies the constraints, and its counts of separated and boundary rows."""
    eta = X @ sep.direction
    scale = np.max(np.abs(X), axis=0)  # as find_separation: equilibrated columns, |x_i|_1 |d|_inf
    size = np.abs(X / scale).sum(axis=1) * np.max(np.abs(sep.direction * scale))
    rel = np.zeros_like(eta)
    np.divide(sign * eta, size, out=rel, where=size > 0)
    assert (rel[sign != 0] >= -1e-9).all()
    assert np.all(np.abs(eta[sign == 0]) <= 1e-9 * size[sign == 0])
    assert sep.separated == int(np.sum(rel[sign != 0] > 1e-9))
    assert sep.boundary == int(np.sum(sign != 0)) - sep.separated
    assert "\n" not in sep.message and "the MLE does not exist" in sep.message


def test_complete_separation_by_the_sign_of_x():
    rng = np.random.default_rng(3)
    x, z = rng.normal(size=200), rng.normal(size=200)
    X = np.column_stack([np.ones(200), x, z])
    sign = np.where(x > 0, 1, -1)
    sep = find_separation(X, sign, ["Intercept", "x", "z"], BINARY)
    assert sep.kind == "complete" and sep.boundary == 0 and sep.separated == 200
    assert sep.direction.tolist() == [0.0, 1.0, 0.0] and sep.terms == ["x"]
    assert sep.message.startswith("complete separation: x > 0 for every y = 1 and x < 0 for every y = 0;")
    assert "(x -> +inf)" in sep.message
    assert_valid(X, sign, sep)


def test_complete_separation_by_a_threshold_reads_as_one():
    x = np.linspace(-3, 3, 61)
    X = np.column_stack([np.ones(61), x])
    sign = np.where(x > 1.05, 1, -1)
    sep = find_separation(X, sign, ["Intercept", "x"], BINARY)
    assert sep.kind == "complete"
    assert_valid(X, sign, sep)
    # "x > c for every y = 1 and x < c for every y = 0" with c between the groups
    c = float(sep.message.split("x > ")[1].split(" ")[0])
    assert 1.0 < c < 1.1
    assert sep.direction[1] == 1.0 and sep.direction[0] == pytest.approx(-c, rel=1e-5)


def test_complete_separation_of_many_rows_by_a_plane():
    # 5,000 rows (the LP by constraint generation); a vertex of the first LP leaves rows on the
    # boundary, which the later rounds separate strictly
    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(5000), rng.normal(size=(5000, 4))])
    sign = np.where(X[:, 1] + 0.5 * X[:, 2] > 0.3, 1, -1)
    sep = find_separation(X, sign, ["Intercept", "a", "b", "c", "d"], BINARY)
    assert sep.kind == "complete" and sep.separated == 5000
    assert_valid(X, sign, sep)


def test_quasi_complete_separation_with_ties_on_the_boundary():
    rng = np.random.default_rng(5)
    x = rng.integers(-1, 2, 300).astype(float)
    z = rng.normal(size=300)
    y = np.where(x > 0, 1, np.where(x < 0, 0, rng.integers(0, 2, 300)))
    X = np.column_stack([np.ones(300), x, z])
    sign = 2 * y - 1
    sep = find_separation(X, sign, ["Intercept", "x", "z"], BINARY)
    assert sep.kind == "quasi-complete"
    assert sep.boundary == int(np.sum(x == 0)) and sep.separated == int(np.sum(x != 0))
    assert sep.message.startswith(
        "quasi-complete separation: x >= 0 for every y = 1 and x <= 0 for every y = 0"
    )
    assert f"({sep.boundary} of them on the boundary)" in sep.message
    assert_valid(X, sign, sep)


def test_overlapping_data_are_not_separated():
    rng = np.random.default_rng(6)
    n = 6000  # more rows than one LP takes whole: constraint generation
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X[:, 1] - X[:, 2])))).astype(int)
    assert find_separation(X, 2 * y - 1, ["Intercept", "a", "b", "c"], BINARY) is None
    sm = pytest.importorskip("statsmodels.api")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no perfect-separation or convergence warning
        fit = sm.Logit(y, X).fit(disp=0)
    assert fit.mle_retvals["converged"]


def test_a_single_overlapping_pair_prevents_separation():
    # separated by x > 0 but for one row on each side
    x = np.linspace(-2, 2, 41)
    sign = np.where(x > 0, 1, -1)
    sign[5], sign[35] = 1, -1
    X = np.column_stack([np.ones(41), x])
    assert find_separation(X, sign, ["Intercept", "x"], BINARY) is None


def test_poisson_category_with_only_zero_counts():
    # the null space of the y > 0 rows is found by an SVD: its basis has parts ~1e-17 along the
    # other columns, which must not count as separating (or violating) the rows outside category c
    rng = np.random.default_rng(7)
    g = np.arange(6000) % 3
    z = rng.normal(size=(6000, 6))
    y = rng.poisson(np.array([2.0, 3.0, 0.0])[g])
    X = np.column_stack([np.ones(6000), g == 1, g == 2, z]).astype(float)
    terms = ["Intercept", "C(g)[T.b]", "C(g)[T.c]"] + [f"z{j}" for j in range(6)]
    sign = np.where(y == 0, -1, 0)  # y = 0: the log-likelihood never decreases as eta falls
    sep = find_separation(X, sign, terms, ("", "y = 0", "y > 0"))
    assert sep.kind == "quasi-complete" and sep.terms == ["C(g)[T.c]"]
    assert sep.direction.tolist() == [0.0, 0.0, -1.0] + [0.0] * 6
    assert "= 0 for every y > 0" in sep.message and "C(g)[T.c] -> -inf" in sep.message
    assert sep.separated == 2000 and sep.boundary == int(np.sum((y == 0) & (g != 2)))
    assert_valid(X, sign, sep)
    # with one positive count in that category the MLE exists
    y[2] = 1
    assert find_separation(X, np.where(y == 0, -1, 0), terms) is None


def test_every_row_of_one_kind():
    X = np.column_stack([np.ones(20), np.linspace(0, 1, 20)])
    sep = find_separation(X, np.ones(20, dtype=int), ["Intercept", "x"], BINARY)
    assert sep.kind == "complete" and sep.separated == 20
    assert_valid(X, np.ones(20), sep)


def test_duplicated_column_gives_no_false_separation():
    rng = np.random.default_rng(8)
    x = rng.normal(size=500)
    y = (rng.uniform(size=500) < 0.5).astype(int)
    X = np.column_stack([np.ones(500), x, x])
    assert find_separation(X, 2 * y - 1, ["Intercept", "x", "x_again"], BINARY) is None


def test_bad_arguments():
    X = np.ones((3, 2))
    with pytest.raises(ValueError):
        find_separation(X, np.array([1, 2, 0]), ["a", "b"])
    with pytest.raises(ValueError):
        find_separation(X, np.array([1, 0]), ["a", "b"])
    with pytest.raises(ValueError):
        find_separation(np.array([[1.0, np.nan]] * 3), np.array([1, 0, -1]), ["a", "b"])


def test_an_lp_answer_that_fails_on_the_rows_is_not_believed(monkeypatch):
    # a solver answer within its tolerance but violating rows in their own precision (here: one row
    # crossed by 1e-6 relative) must not be reported as separation
    import symmle.numbers.separation as separation

    x = np.linspace(-1, 1, 21)
    sign = np.where(x > 0, 1, -1)
    sign[12] = -1  # x = 0.2 on the wrong side: not separable
    X = np.column_stack([np.ones(21), x])
    assert find_separation(X, sign, ["Intercept", "x"]) is None
    monkeypatch.setattr(separation, "_lp", lambda b, c: np.array([-0.2 * (1 - 1e-6), 1.0]))
    assert find_separation(X, sign, ["Intercept", "x"]) is None
