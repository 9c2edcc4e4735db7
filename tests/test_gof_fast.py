"""The fast bootstrap of ``gof``: order statistics drawn through a verified quantile function.

The draw must have the right distribution (the means of the order statistics against their exact
values, the pooled replicates against the model by KS), the quantile function must be checked and
refused when wrong, the in-place kernels must agree with lambdify, and the p-values must agree with
the sampler-and-sort path and with ``scipy.stats.goodness_of_fit`` within Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import symmle
from symmle.model.build import load_model
from symmle.numbers import cdf
from symmle.numbers.cdf import distribution_function, quantile_function
from symmle.numbers.kernel import Kernel
from symmle.simulate.bootstrap import gof, order_statistics


def _quantile(name: str, **at: float):
    # generous budgets: the integral and the solve take seconds on a loaded machine (then cached)
    dist = distribution_function(load_model(name), at=at or None, timeout=120)
    q, why = quantile_function(dist, at=[at] if at else (), timeout=120)
    assert q is not None, why
    return dist, q


# --------------------------------------------------------------------------
# the quantile function
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "point"),
    [
        ("exponential", {"lam": 0.7}),
        ("normal", {"mu": -1.0, "sigma2": 2.5}),
        ("weibull", {"k": 1.7, "lam": 3.0}),
    ],
)
def test_quantile_inverts_the_distribution_function(name, point):
    dist, q = _quantile(name, **point)
    u = np.array([1e-6, 0.01, 0.3, 0.5, 0.77, 0.99, 1 - 1e-6])
    x = q(u, point, dist.parameters)
    F, S = dist(x[None, :], point)
    assert np.allclose(F[0], u, rtol=1e-9, atol=0)
    assert np.allclose(S[0], 1 - u, rtol=1e-7, atol=0)
    assert np.all(np.diff(x) > 0)


def test_quantile_matches_scipy_ppf():
    dist, q = _quantile("normal", mu=1.0, sigma2=4.0)
    u = np.linspace(0.001, 0.999, 11)
    assert np.allclose(q(u, {"mu": 1.0, "sigma2": 4.0}, dist.parameters), stats.norm.ppf(u, 1, 2), rtol=1e-10)


def test_a_wrong_quantile_function_is_refused(monkeypatch):
    from symmle.numbers import cdf_cache

    m = load_model("exponential")
    x, lam = m.variable, m.parameters[0].symbol
    wrong = sp.log(-1 / (x - 1)) / (2 * lam)  # off by a factor 2
    monkeypatch.setattr(cdf_cache, "load_quantile", lambda *a: ([wrong], ""))
    cdf._MEMO.clear()
    dist = distribution_function(m)
    q, why = quantile_function(dist)
    assert q is None and "numerical check" in why
    # and gof falls back to the sampler and the sort
    data = np.random.default_rng(0).exponential(1.0, 200)
    r = gof(symmle.derive("exponential"), data, boot=19, seed=0)
    assert r.draw == "sampler"
    cdf._MEMO.clear()


def test_a_decreasing_solution_is_refused(monkeypatch):
    from symmle.numbers import cdf_cache

    m = load_model("exponential")
    x, lam = m.variable, m.parameters[0].symbol
    decreasing = -sp.log(x) / lam  # S^{-1}, not F^{-1}: F(Q(u)) = 1 - u
    right = sp.log(-1 / (x - 1)) / lam
    monkeypatch.setattr(cdf_cache, "load_quantile", lambda *a: ([decreasing, right], ""))
    cdf._MEMO.clear()
    q, _ = quantile_function(distribution_function(m))
    u = np.array([0.1, 0.5, 0.9])
    assert q is not None and np.allclose(q(u, {"lam": 2.0}, ["lam"]), -np.log1p(-u) / 2.0, rtol=1e-14)
    cdf._MEMO.clear()


def test_no_closed_form_inverse_uses_the_sampler():
    data = np.random.default_rng(2).gamma(2.0, 1.5, 300)
    r = gof(symmle.derive("gamma"), data, boot=9, seed=0)
    assert r.draw == "sampler"


# --------------------------------------------------------------------------
# the order statistics
# --------------------------------------------------------------------------


def test_order_statistics_of_the_exponential_have_the_exact_means():
    # E[X_(i)] = sum_{j < i} 1 / (n - j) / lam (Renyi), Var likewise with squares
    dist, q = _quantile("exponential", lam=2.0)
    n, rows = 6, 40_000
    x = order_statistics(np.random.default_rng(3), rows, n, q, {"lam": 2.0}, ["lam"])
    assert np.all(np.diff(x, axis=1) >= 0)
    inv = 1.0 / (n - np.arange(n))
    mean = np.cumsum(inv) / 2.0
    var = np.cumsum(inv**2) / 4.0
    se = np.sqrt(var / rows)
    assert np.all(np.abs(x.mean(axis=0) - mean) < 4.5 * se)


def test_order_statistics_of_the_uniform_have_the_exact_means():
    dist, q = _quantile("uniform", theta=3.0)
    n, rows = 5, 40_000
    x = order_statistics(np.random.default_rng(4), rows, n, q, {"theta": 3.0}, ["theta"])
    i = np.arange(1, n + 1)
    mean = 3.0 * i / (n + 1)
    var = 9.0 * i * (n + 1 - i) / ((n + 1) ** 2 * (n + 2))
    assert np.all(np.abs(x.mean(axis=0) - mean) < 4.5 * np.sqrt(var / rows))


@pytest.mark.parametrize(
    ("name", "point", "ref"),
    [
        ("exponential", {"lam": 0.5}, stats.expon(scale=2.0)),
        ("normal", {"mu": 3.0, "sigma2": 4.0}, stats.norm(3.0, 2.0)),
        ("weibull", {"k": 1.5, "lam": 2.0}, stats.weibull_min(1.5, scale=2.0)),
    ],
)
def test_pooled_order_statistics_follow_the_model(name, point, ref):
    dist, q = _quantile(name, **point)
    x = order_statistics(np.random.default_rng(5), 200, 50, q, point, dist.parameters)
    assert np.all(np.diff(x, axis=1) >= 0)
    # one value per row at a random rank: independent draws from F
    pick = x[np.arange(200), np.random.default_rng(6).integers(0, 50, 200)]
    assert stats.kstest(pick, ref.cdf).pvalue > 1e-3
    # all of them pooled: the empirical distribution of the pooled rows is F (KS distance small)
    assert stats.kstest(x.ravel(), ref.cdf).statistic < 0.02


# --------------------------------------------------------------------------
# the in-place kernels
# --------------------------------------------------------------------------


def test_kernel_agrees_with_lambdify_and_falls_back_on_the_unknown():
    x, a, b = sp.symbols("x a b", positive=True)
    data = np.random.default_rng(7).uniform(0.1, 3.0, (4, 50))
    cols = (np.array([[0.5], [1.0], [2.0], [3.0]]), np.array([[1.5], [0.2], [1.0], [2.5]]))
    for expr in (
        1 - sp.exp(-((x / a) ** b)),
        sp.erfc((x - a) / sp.sqrt(2 * b)) / 2,
        sp.log(1 + x**2) * a - sp.sqrt(x) / b + x ** (a + x),
        sp.gamma(x) * a,  # no ufunc in place: lambdify does it all
    ):
        k = Kernel([x, a, b], expr)
        out = np.empty_like(data)
        k(out, data, *cols)
        want = sp.lambdify([x, a, b], expr, "scipy")(data, *cols)
        assert np.allclose(out, want, rtol=1e-13, atol=0)
    assert not Kernel([x, a, b], sp.gamma(x) * a).in_place
    assert Kernel([x, a, b], 1 - sp.exp(-((x / a) ** b))).in_place


# --------------------------------------------------------------------------
# the p-values
# --------------------------------------------------------------------------


def test_p_values_agree_with_the_sampler_path():
    # data a little off the exponential, so the p-values are away from 0 and 1
    data = np.random.default_rng(8).weibull(1.08, 400) * 2.0
    d = symmle.derive("exponential")
    fast = gof(d, data, boot=600, seed=1)
    slow = gof(d, data, boot=600, seed=2, order_stats=False)
    assert fast.draw == "order_statistics" and slow.draw == "sampler"
    for k in ("ks", "cvm", "ad"):
        a, b = fast.statistics[k], slow.statistics[k]
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
        assert abs(a.p_value - b.p_value) < 4.5 * np.hypot(a.mc_error, b.mc_error) + 2 / 600


def test_p_values_agree_with_the_sampler_path_normal():
    data = np.random.default_rng(9).standard_t(12, 300) * 1.5 + 2.0
    d = symmle.derive("normal")
    fast = gof(d, data, boot=500, seed=3)
    slow = gof(d, data, boot=500, seed=4, order_stats=False)
    assert fast.draw == "order_statistics" and slow.draw == "sampler"
    for k in ("ks", "cvm", "ad"):
        a, b = fast.statistics[k], slow.statistics[k]
        assert abs(a.p_value - b.p_value) < 4.5 * np.hypot(a.mc_error, b.mc_error) + 2 / 500


@pytest.mark.parametrize("statistic", ["ks", "ad"])
def test_p_values_agree_with_scipy_goodness_of_fit_exponential(statistic):
    data = np.random.default_rng(11).weibull(1.08, 300) * 2.0
    r = gof(symmle.derive("exponential"), data, boot=500, seed=6)
    assert r.draw == "order_statistics"
    ref = stats.goodness_of_fit(
        stats.expon,
        data,
        known_params={"loc": 0.0},
        statistic=statistic,
        n_mc_samples=500,
        rng=np.random.default_rng(7),
    )
    s = r.statistics[statistic]
    assert s.statistic == pytest.approx(ref.statistic, rel=1e-9)
    se = np.hypot(s.mc_error, np.sqrt(ref.pvalue * (1 - ref.pvalue) / 500))
    assert abs(s.p_value - ref.pvalue) < 4.5 * se + 2 / 500


def test_the_seed_gives_one_result_whatever_the_threads(monkeypatch):
    from symmle.simulate import bootstrap

    data = np.random.default_rng(10).exponential(1.0, 500)
    d = symmle.derive("exponential")
    monkeypatch.setattr(bootstrap, "BLOCK_BYTES", 8 * 500 * 7)  # many blocks
    monkeypatch.setattr(bootstrap, "WORKERS", 1)
    one = gof(d, data, boot=100, seed=5)
    monkeypatch.setattr(bootstrap, "WORKERS", 2)
    two = gof(d, data, boot=100, seed=5)
    assert one.draw == "order_statistics"
    assert {k: s.p_value for k, s in one.statistics.items()} == {
        k: s.p_value for k, s in two.statistics.items()
    }


@pytest.mark.parametrize("lam", [0.5, 50.0])  # 50: F passes 0.9 before mid-row, both computed whole
def test_half_row_evaluation_keeps_the_digits_of_f_and_s(lam):
    dist = distribution_function(load_model("exponential"))
    xs = np.sort(np.random.default_rng(12).exponential(2.0, (3, 1001)), axis=1)
    values = {"lam": np.array([lam, lam * 1.1, lam * 0.9])}
    F0, S0 = dist(xs, values)
    F, S = dist(xs, values, out=(np.empty_like(xs), np.empty_like(xs)), sorted_rows=True)
    assert np.allclose(F, F0, rtol=1e-14, atol=1e-16)
    assert np.allclose(S, S0, rtol=1e-13, atol=0)  # relative, in the upper tail too
    assert np.all((F >= 0) & (F <= 1) & (S >= 0) & (S <= 1))
