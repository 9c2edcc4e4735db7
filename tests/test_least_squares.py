"""Linear least squares (symmle.numbers.least_squares): NIST certified values, weights, chunks, rank.

NIST StRD Longley (statsmodels' copy of the data, NIST's certified values as statsmodels' own test
results hold them) and Norris (the file SciPy ships, certified values read from it) on raw data;
a large-residual polynomial fit against exact rational arithmetic (the refinement step is what
gets it to 10 digits); weights against replicated rows and statsmodels' WLS; chunked and per-chunk
weighted input against the whole; the rank-deficiency error naming the collinear terms.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from symmle.base.errors import DataError
from symmle.numbers.least_squares import (
    check_rank,
    condition_number,
    covariance_factor,
    least_squares,
)


def digits(estimate, certified) -> float:
    """The fewest significant digits the estimates share with the certified values."""
    estimate, certified = np.atleast_1d(estimate), np.atleast_1d(certified)
    err = np.abs(estimate - certified) / np.abs(certified)
    return float(-np.log10(max(err.max(), 1e-17)))


def solve(X, y, chunk=None, weights=None):
    """least_squares on X, y (in chunks of ``chunk`` rows), with its SEs and residual SD."""
    n, p = X.shape
    if chunk is None:

        def chunks():
            return [(X, y)]
    else:

        def chunks():
            return ((X[i : i + chunk], y[i : i + chunk]) for i in range(0, n, chunk))

    fit = least_squares(chunks, [f"x{j}" for j in range(p)], weights=weights)
    s2 = fit.rss / (n - p)
    return fit, np.sqrt(s2 * np.diag(covariance_factor(fit.r))), np.sqrt(s2)


def longley():
    sm_longley = pytest.importorskip("statsmodels.datasets.longley")
    results = pytest.importorskip("statsmodels.regression.tests.results.results_regression")
    df = sm_longley.load_pandas().data
    X = np.column_stack([np.ones(len(df)), df[["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]]])
    cert = results.Longley()  # NIST's certified values, constant last
    beta = np.r_[cert.params[-1], cert.params[:-1]]
    se = np.r_[cert.bse[-1], cert.bse[:-1]]
    return X, df["TOTEMP"].to_numpy(float), beta, se, np.sqrt(cert.scale)


@pytest.mark.parametrize("chunk", [None, 5])
def test_longley_certified_to_11_digits(chunk):
    X, y, beta, se, sd = longley()
    fit, got_se, got_sd = solve(X, y, chunk)
    assert sd == pytest.approx(304.854073561965, rel=1e-14)  # NIST's residual SD
    assert digits(fit.beta, beta) >= 11
    assert digits(got_se, se) >= 11
    assert digits(got_sd, sd) >= 11
    assert fit.n == 16


def norris():
    import scipy

    path = os.path.join(os.path.dirname(scipy.__file__), "stats/tests/data/nist_linregress/Norris.dat")
    if not os.path.exists(path):
        pytest.skip("SciPy's copy of NIST's Norris.dat is not installed")
    lines = open(path, encoding="ascii").read().splitlines()
    cert = {}
    for line in lines[29:46]:
        words = line.split()
        if words[:1] in (["B0"], ["B1"]):
            cert[words[0]] = (float(words[1]), float(words[2]))
        elif words[:2] == ["Standard", "Deviation"]:
            cert["sd"] = float(words[2])
    data = np.array([[float(v) for v in line.split()] for line in lines[60:] if line.strip()])
    return data[:, 1], data[:, 0], cert


def test_norris_certified_to_12_digits():
    x, y, cert = norris()
    assert len(x) == 36 and set(cert) == {"B0", "B1", "sd"}
    X = np.column_stack([np.ones_like(x), x])
    fit, se, sd = solve(X, y)
    assert digits(fit.beta, [cert["B0"][0], cert["B1"][0]]) >= 12
    assert digits(se, [cert["B0"][1], cert["B1"][1]]) >= 12
    assert digits(sd, cert["sd"]) >= 12


def exact_least_squares(X, y):
    """The least-squares solution in exact rational arithmetic (normal equations, Gauss-Jordan)."""
    Xf = [[Fraction(v) for v in row] for row in X.tolist()]
    yf = [Fraction(v) for v in y.tolist()]
    p = len(Xf[0])
    a = [
        [sum(r[i] * r[j] for r in Xf) for j in range(p)] + [sum(r[i] * t for r, t in zip(Xf, yf))]
        for i in range(p)
    ]
    for k in range(p):
        piv = next(i for i in range(k, p) if a[i][k] != 0)
        a[k], a[piv] = a[piv], a[k]
        for i in range(p):
            if i != k and a[i][k] != 0:
                f = a[i][k] / a[k][k]
                a[i] = [u - f * v for u, v in zip(a[i], a[k])]
    return np.array([float(a[i][p] / a[i][i]) for i in range(p)])


def test_large_residual_polynomial_against_exact_arithmetic():
    # a quintic on 0..20 with residuals of 1e9 (a Wampler-like problem): Householder QR alone gets
    # about 9 digits here (numpy.linalg.lstsq 7); the refinement step (residual and X^T r in extended
    # precision) about 13
    x = np.arange(21.0)
    X = np.vander(x, 6, increasing=True)
    y = X.sum(axis=1) + 1e9 * (-1.0) ** np.arange(21)
    exact = exact_least_squares(X, y)
    fit = least_squares(lambda: [(X, y)], [f"x^{k}" for k in range(6)])
    assert digits(fit.beta, exact) >= 11.5
    r = y - X @ exact
    assert fit.rss == pytest.approx(float(np.dot(r, r)), rel=1e-12)


def test_statsmodels_ols_agrees_on_random_design():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(5000), rng.normal(size=(5000, 4)) * [1, 1e3, 1e-3, 50] + [0, 1e4, 0, 0]])
    y = X @ [1.0, 2.0, -3e-3, 400.0, 0.5] + rng.normal(size=5000)
    fit, se, _ = solve(X, y, chunk=777)
    ref = sm.OLS(y, X).fit()
    np.testing.assert_allclose(fit.beta, ref.params, rtol=1e-9)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-9)
    assert fit.rss == pytest.approx(ref.ssr, rel=1e-11)
    np.testing.assert_allclose(covariance_factor(fit.r), np.linalg.inv(X.T @ X), rtol=1e-8)
    assert np.allclose(fit.r, np.triu(fit.r)) and (np.diag(fit.r) > 0).all()


def test_weights_equal_replicated_rows_and_statsmodels_wls():
    rng = np.random.default_rng(11)
    n = 300
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=n)
    w = rng.integers(0, 4, n).astype(float)  # 0 drops a row, 2 counts it twice
    fit = least_squares(lambda: [(X, y)], ["a", "b", "c"], weights=w)
    rep = np.repeat(np.arange(n), w.astype(int))
    ref = least_squares(lambda: [(X[rep], y[rep])], ["a", "b", "c"])
    np.testing.assert_allclose(fit.beta, ref.beta, rtol=1e-12)
    assert fit.rss == pytest.approx(ref.rss, rel=1e-12)
    np.testing.assert_allclose(fit.r.T @ fit.r, (X * w[:, None]).T @ X, rtol=1e-12)
    assert fit.n == n and ref.n == int(w.sum())
    sm = pytest.importorskip("statsmodels.api")
    wls = sm.WLS(y, X, weights=w).fit()
    np.testing.assert_allclose(fit.beta, wls.params, rtol=1e-10)
    assert fit.rss == pytest.approx(wls.ssr, rel=1e-10)


def test_chunks_with_their_own_weights_and_a_second_pass():
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(1000), rng.normal(size=(1000, 3))])
    y = X @ [3.0, 1.0, 0.0, -1.0] + rng.normal(size=1000)
    w = rng.uniform(0.1, 3.0, 1000)
    calls = []

    def chunks():
        calls.append(1)
        for i in range(0, 1000, 64):
            yield X[i : i + 64], y[i : i + 64], w[i : i + 64]

    fit = least_squares(chunks, list("abcd"))
    whole = least_squares(lambda: [(X, y)], list("abcd"), weights=w)
    assert len(calls) == 1  # TSQR; a well-conditioned design needs no refinement pass
    np.testing.assert_allclose(fit.beta, whole.beta, rtol=1e-13)
    np.testing.assert_allclose(fit.r, whole.r, rtol=1e-12, atol=1e-12 * np.abs(whole.r).max())
    X[:, 3] = X[:, 1] + 1e-4 * X[:, 3]  # nearly collinear: condition number far above REFINE_ABOVE
    calls.clear()
    fit = least_squares(chunks, list("abcd"))
    whole = least_squares(lambda: [(X, y)], list("abcd"), weights=w)
    assert len(calls) == 2  # TSQR, then the refinement pass
    np.testing.assert_allclose(fit.beta, whole.beta, rtol=1e-9)


def test_memory_mapped_design(tmp_path):
    rng = np.random.default_rng(2)
    data = np.column_stack([rng.normal(size=(20_000, 3)), np.ones(20_000)])
    data[:, 0] = data[:, 1:] @ [2.0, -1.0, 4.0] + 0.1 * rng.normal(size=20_000)
    np.save(tmp_path / "d.npy", data)
    mm = np.load(tmp_path / "d.npy", mmap_mode="r")

    def chunks():
        for i in range(0, mm.shape[0], 3000):
            block = mm[i : i + 3000]
            yield block[:, 1:], block[:, 0]

    fit = least_squares(chunks, ["a", "b", "Intercept"])
    ref = np.linalg.lstsq(data[:, 1:], data[:, 0], rcond=None)[0]
    np.testing.assert_allclose(fit.beta, ref, rtol=1e-11)


def rank_error(X, terms) -> str:
    with pytest.raises(DataError) as info:
        least_squares(lambda: [(X, np.arange(X.shape[0], dtype=float))], terms)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_exactly_collinear_column_is_named():
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=50), rng.normal(size=50)
    X = np.column_stack([np.ones(50), x1, x2, 2 * x1 - x2])
    message = rank_error(X, ["Intercept", "x1", "x2", "x3"])
    assert "rank-deficient: x3 = 2*x1 - x2 (the coefficients are not identifiable)" in message
    assert message.endswith("drop one of x1, x2, x3")


def test_duplicated_dummy_with_intercept_is_named():
    g = np.arange(30) % 3
    X = np.column_stack([np.ones(30), g == 0, g == 1, g == 2, np.linspace(0, 1, 30)]).astype(float)
    terms = ["Intercept", "C(g)[a]", "C(g)[b]", "C(g)[c]", "x"]
    message = rank_error(X, terms)
    assert "C(g)[c] = Intercept - C(g)[a] - C(g)[b]" in message
    assert "drop one of Intercept, C(g)[a], C(g)[b], C(g)[c]" in message and "x," not in message


def test_two_relations_and_a_zero_column():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    X = np.column_stack([np.ones(40), x, 3 * x + 0.5, np.zeros(40), x**2])
    message = rank_error(X, ["Intercept", "x", "z", "nothing", "x2"])
    assert "nothing is zero in every row" in message
    assert "z = 0.5*Intercept + 3*x" in message
    assert "drop one term of each relation" in message


def test_ill_conditioned_but_full_rank_polynomial_is_fitted():
    # Filip-like: a degree-10 polynomial on x in [-9, -3]; column-scaled condition number ~ 1e9,
    # far from singular at the stated tolerance, so it must be fitted, not refused
    x = np.linspace(-9, -3, 82)
    X = np.vander(x, 11, increasing=True)
    y = np.cos(x)
    fit = least_squares(lambda: [(X, y)], [f"x^{k}" for k in range(11)])
    assert 1e8 < condition_number(fit.r) < 1e12
    assert digits(fit.beta, exact_least_squares(X, y)) >= 9  # of the float64 design's exact solution
    check_rank(fit.r, [f"x^{k}" for k in range(11)])  # no error


def test_scale_of_columns_does_not_matter_to_the_rank_decision():
    rng = np.random.default_rng(3)
    x = rng.normal(size=100)
    X = np.column_stack([np.ones(100), 1e8 * x, 1e-8 * rng.normal(size=100)])
    fit = least_squares(lambda: [(X, x)], ["Intercept", "big", "small"])  # full rank: no error
    assert fit.beta[1] == pytest.approx(1e-8, rel=1e-12)
    message = rank_error(np.column_stack([np.ones(100), 1e8 * x, 1e-8 * x]), ["Intercept", "big", "small"])
    assert "small = 1e-16*big" in message


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("nan", "row 8: the value of x is not finite"),
        ("inf_y", "row 3: the value of the response is not finite"),
        ("weight", "row 5: the weight -1.0 is not a finite number >= 0"),
        ("few", "the design has 2 rows for 3 coefficients"),
        ("empty", "the design has no rows"),
    ],
)
def test_bad_input_is_one_line_data_error(case, words):
    X = np.column_stack([np.ones(10), np.arange(10.0), np.arange(10.0) ** 2])
    y = np.arange(10.0)
    w = None
    if case == "nan":
        X[7, 1] = np.nan
    elif case == "inf_y":
        y[2] = np.inf
    elif case == "weight":
        w = np.ones(10)
        w[4] = -1.0
    elif case == "few":
        X, y = X[:2], y[:2]
    elif case == "empty":
        X, y = X[:0], y[:0]
    with pytest.raises(DataError) as info:
        least_squares(lambda: [(X, y)], ["Intercept", "x", "x2"], weights=w)
    assert words in str(info.value) and "\n" not in str(info.value)
