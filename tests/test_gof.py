"""Goodness of fit (symmle gof), model comparison (symmle compare) and diagnostic plots (--plot).

The statistics are held against SciPy's (``kstest``, ``cramervonmises``, ``anderson``, ``chisquare``)
at the same parameters; the bootstrap p-values against ``scipy.stats.goodness_of_fit`` within their
Monte Carlo error; a wrong family must be rejected on a large sample; ``compare`` must rank the
true family first and list the family that cannot fit with its reason.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import symmle
from symmle.model.build import load_model
from symmle.numbers.cdf import distribution_function
from symmle.numbers.gof import pool_cells, statistics

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "symmle", *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


@pytest.fixture(scope="module")
def normal_cdf():
    # a generous budget: the integral takes about a second, longer on a loaded machine
    return distribution_function(load_model("normal"), at={"mu": 1.0, "sigma2": 4.0}, timeout=120)


# --------------------------------------------------------------------------
# the statistics, at the same parameters as SciPy
# --------------------------------------------------------------------------


def test_normal_cdf_is_closed_form_and_checked(normal_cdf):
    assert normal_cdf.method == "closed_form"
    x = np.sort(np.random.default_rng(1).normal(1, 2, size=50))
    F, S = normal_cdf(x[None, :], {"mu": 1.0, "sigma2": 4.0})
    assert np.allclose(F[0], stats.norm.cdf(x, 1, 2), rtol=1e-12, atol=1e-15)
    assert np.allclose(S[0], stats.norm.sf(x, 1, 2), rtol=1e-12, atol=1e-15)


def test_statistics_against_scipy_normal(normal_cdf):
    x = np.random.default_rng(11).normal(1.5, 2.5, size=300)
    mu, sd = x.mean(), x.std(ddof=1)  # anderson(x, "norm") uses these
    got, _ = statistics(normal_cdf, x[None, :], {"mu": mu, "sigma2": sd**2})
    assert got["ks"][0] == pytest.approx(stats.kstest(x, "norm", args=(mu, sd)).statistic, rel=1e-10)
    assert got["cvm"][0] == pytest.approx(stats.cramervonmises(x, "norm", args=(mu, sd)).statistic, rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SciPy 1.17 asks for a p-value method
        assert got["ad"][0] == pytest.approx(stats.anderson(x, "norm").statistic, rel=1e-9)


def test_statistics_by_quadrature_against_scipy_weibull():
    # a short budget: no closed form in time, so F comes from quadrature of the density
    dist = distribution_function(load_model("weibull"), timeout=0.3)
    assert dist.method == "quadrature"
    ref = stats.weibull_min(1.7, scale=2.0)
    x = ref.rvs(size=400, random_state=np.random.default_rng(5))
    got, _ = statistics(dist, x[None, :], {"lam": 2.0, "k": 1.7})
    assert got["ks"][0] == pytest.approx(stats.kstest(x, ref.cdf).statistic, rel=1e-9)
    assert got["cvm"][0] == pytest.approx(stats.cramervonmises(x, ref.cdf).statistic, rel=1e-8)
    gof = stats.goodness_of_fit(
        stats.weibull_min,
        x,
        known_params={"c": 1.7, "scale": 2.0, "loc": 0.0},
        statistic="ad",
        n_mc_samples=9,
        rng=np.random.default_rng(0),
    )
    assert got["ad"][0] == pytest.approx(gof.statistic, rel=1e-8)


def test_rows_each_at_their_own_parameters(normal_cdf):
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(4, 60))
    mus, vs = np.array([0.0, 0.5, -1.0, 2.0]), np.array([1.0, 2.0, 0.5, 3.0])
    got, _ = statistics(normal_cdf, rows, {"mu": mus, "sigma2": vs})
    for r in range(4):
        want = stats.kstest(rows[r], "norm", args=(mus[r], math.sqrt(vs[r]))).statistic
        assert got["ks"][r] == pytest.approx(want, rel=1e-10)


def test_chi_square_with_pooled_cells_against_scipy():
    dist = distribution_function(load_model("poisson"))
    x = np.random.default_rng(4).poisson(3.0, size=250)
    lam = float(x.mean())
    got, cells = statistics(dist, x[None, :], {"lam": lam})
    edges = [(a, b) for a, b in cells]
    obs = [np.sum((x >= a) & (x <= b)) for a, b in edges[:-1]] + [np.sum(x >= edges[-1][0])]
    probs = [stats.poisson.cdf(b, lam) - stats.poisson.cdf(a - 1, lam) for a, b in edges[:-1]]
    probs.append(stats.poisson.sf(edges[-1][0] - 1, lam))
    expected = len(x) * np.array(probs)
    assert np.all(expected >= 5)
    want = stats.chisquare(obs, expected, ddof=1)
    assert got["chi2"][0] == pytest.approx(want.statistic, rel=1e-9)
    r = symmle.gof("poisson", x, boot=0)
    assert r.statistics["chi2"].df == len(cells) - 2
    assert r.statistics["chi2"].p_asymptotic == pytest.approx(want.pvalue, rel=1e-9)


def test_pool_cells_expect_at_least_five():
    cells = pool_cells(np.array([0.5, 1, 3, 8, 9, 4, 2, 1, 0.5]), 0.2)
    assert cells[0][0] == 0 and cells[-1][1] == 8
    expected = np.array([0.5, 1, 3, 8, 9, 4, 2, 1, 0.5])
    sums = [expected[a : b + 1].sum() for a, b in cells]
    sums[-1] += 0.2
    assert all(s >= 5 for s in sums)
    assert all(cells[j][1] + 1 == cells[j + 1][0] for j in range(len(cells) - 1))


# --------------------------------------------------------------------------
# bootstrap p-values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("statistic", ["ks", "cvm", "ad"])
def test_bootstrap_p_values_match_scipy_goodness_of_fit(statistic):
    B = 400
    x = np.random.default_rng(21).exponential(1.5, size=150)
    ours = symmle.gof("exponential", x, boot=B, seed=3).statistics[statistic]
    ref = stats.goodness_of_fit(
        stats.expon,
        x,
        known_params={"loc": 0.0},
        statistic=statistic,
        n_mc_samples=B,
        rng=np.random.default_rng(4),
    )
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9)
    p = 0.5 * (ours.p_value + ref.pvalue)
    # two independent Monte Carlo estimates of one p-value: their difference has variance 2 p (1 - p) / B
    assert abs(ours.p_value - ref.pvalue) <= 4 * math.sqrt(2 * p * (1 - p) / B) + 2 / B
    assert ours.mc_error == pytest.approx(math.sqrt(ours.p_value * (1 - ours.p_value) / B))


def test_wrong_family_is_rejected():
    x = np.random.default_rng(8).exponential(2.0, size=2000)
    r = symmle.gof("normal", x, boot=199, seed=1)
    for key in ("ks", "cvm", "ad"):
        assert r.statistics[key].p_value < 0.01, key
    right = symmle.gof("exponential", x, boot=199, seed=1)
    assert min(s.p_value for s in right.statistics.values()) > 0.01


def test_gof_json_schema_and_seed_repeats():
    x = np.random.default_rng(9).exponential(1.0, size=100)
    a = symmle.gof("exponential", x, boot=50, seed=7).to_dict()
    b = symmle.gof("exponential", x, boot=50, seed=7).to_dict()
    assert a["schema"] == 1 and a["boot"] == 50 and a["seed"] == 7
    assert set(a["statistics"]) == {"ks", "cvm", "ad"}
    for s in a["statistics"].values():
        assert set(s) >= {"statistic", "p_value", "mc_error"}
    assert a["statistics"] == b["statistics"]


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------


def test_compare_ranks_true_family_first_and_lists_exclusions():
    x_pos = np.random.default_rng(12).gamma(2.5, 1.5, size=4000)
    x = np.append(x_pos, -0.25)  # one negative value: outside the gamma's support
    c = symmle.compare(["normal", "gamma", "lognormal", "weibull"], x_pos, boot=0, cdf_timeout=1.0)
    assert [r.model for r in c.fits][0] == "gamma"
    aics = [r.aic for r in c.fits]
    assert aics == sorted(aics)
    assert not c.excluded
    c = symmle.compare(["gamma", "normal"], x, boot=0, cdf_timeout=1.0)
    assert [r.model for r in c.fits] == ["normal"]
    ((name, reason),) = c.excluded
    assert name == "gamma" and "outside the support" in reason
    doc = c.to_dict()
    assert doc["schema"] == 1
    assert set(doc["fits"][0]) >= {"model", "log_likelihood", "aic", "bic", "ks", "cvm", "ad"}
    assert doc["excluded"] == [{"model": "gamma", "reason": reason}]


def test_compare_cli_json(tmp_path):
    data = tmp_path / "w.csv"
    x = np.random.default_rng(13).exponential(2.0, size=300)
    data.write_text("w\n" + "\n".join(f"{v:.6f}" for v in x) + "\n")
    out = _cli(
        "compare",
        str(data),
        "--column",
        "w",
        "exponential",
        "poisson",
        "--boot",
        "20",
        "--seed",
        "1",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == 1 and doc["boot"] == 20
    assert [f["model"] for f in doc["fits"]] == ["exponential"]
    assert doc["fits"][0]["ks"]["p_value"] is not None
    assert doc["excluded"][0]["model"] == "poisson" and "integer" in doc["excluded"][0]["reason"]


# --------------------------------------------------------------------------
# plots and the command line
# --------------------------------------------------------------------------


def test_fit_plot_writes_png_continuous_and_discrete(tmp_path):
    pytest.importorskip("matplotlib")
    w = tmp_path / "w.csv"
    w.write_text("w\n" + "\n".join(f"{v:.6f}" for v in np.random.default_rng(1).exponential(2, 200)) + "\n")
    k = tmp_path / "k.csv"
    k.write_text("k\n" + "\n".join(str(v) for v in np.random.default_rng(1).poisson(4, 200)) + "\n")
    for model, data, column in (("exponential", w, "w"), ("poisson", k, "k")):
        png = tmp_path / f"{model}.png"
        out = _cli("fit", model, str(data), "--column", column, "--plot", str(png))
        assert out.returncode == 0, out.stderr
        assert f"wrote {png}" in out.stdout
        assert png.read_bytes()[:8] == PNG


def test_compare_plot_overlays(tmp_path):
    pytest.importorskip("matplotlib")
    from symmle.simulate.fit_plots import plot_fits

    x = np.random.default_rng(2).gamma(3, 2, size=300)
    c = symmle.compare(["gamma", "normal"], x, boot=0, cdf_timeout=1.0)
    out = plot_fits([(r.model, r.distribution, r.estimates) for r in c.fits], x, tmp_path / "c.png")
    assert out.read_bytes()[:8] == PNG


def test_gof_cli_text_and_errors(tmp_path):
    data = tmp_path / "x.csv"
    data.write_text(
        "x\n" + "\n".join(f"{v:.6f}" for v in np.random.default_rng(3).exponential(size=80)) + "\n"
    )
    out = _cli("gof", "exponential", str(data), "--boot", "30", "--seed", "2")
    assert out.returncode == 0, out.stderr
    for name in ("Kolmogorov-Smirnov", "Cramer-von Mises", "Anderson-Darling", "MC error"):
        assert name in out.stdout
    bad = _cli("gof", "poisson", str(data))  # not integers
    assert bad.returncode == 3 and bad.stderr.startswith("symmle: error:") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    neg = _cli("gof", "exponential", str(data), "--boot", "-1")
    assert neg.returncode == 2


def test_threads_do_not_change_the_result(monkeypatch):
    import symmle.simulate.bootstrap as bootstrap

    x = np.random.default_rng(14).normal(size=500)
    monkeypatch.setattr(bootstrap, "WORKERS", 3)
    many = symmle.gof("normal", x, boot=300, seed=5).to_dict()["statistics"]
    monkeypatch.setattr(bootstrap, "WORKERS", 1)
    one = symmle.gof("normal", x, boot=300, seed=5).to_dict()["statistics"]
    assert many == one


def test_closed_form_read_back_from_the_cache_and_a_wrong_one_refused(monkeypatch, tmp_path):
    import sympy as sp

    import symmle.numbers.cdf as cdf
    from symmle.numbers.cdf_cache import store_cdf

    # a cache of its own: the wrong entry written below never reaches another test
    monkeypatch.setenv("SYMMLE_CACHE_DIR", str(tmp_path))
    cdf._MEMO.clear()
    m = load_model("exponential")
    first = distribution_function(m)
    assert first.method == "closed_form"
    cdf._MEMO.clear()  # the disk cache is under test, not the process's memo

    def no_sympy(*args, **kwargs):
        raise AssertionError("the closed form should come from the cache")

    monkeypatch.setattr(cdf, "_integrals", no_sympy)
    again = distribution_function(m)
    assert again.method == "closed_form" and sp.simplify(again.cdf_expr - first.cdf_expr) == 0
    # an entry holding a wrong formula is refused by the check against quadrature, never used
    x, lam = m.variable, m.parameters[0].symbol
    wrong = 1 - sp.exp(-2 * lam * x)
    store_cdf(m, {}, cdf.CDF_TIMEOUT, wrong, 1 - wrong, "")
    cdf._MEMO.clear()
    refused = distribution_function(m)
    assert refused.method == "quadrature" and "failed its check" in refused.note
    F, S = refused(np.array([[0.5, 1.0]]), {"lam": 2.0})
    assert np.allclose(F[0], 1 - np.exp(-2.0 * np.array([0.5, 1.0])), rtol=1e-12)
    cdf._MEMO.clear()


def test_gof_with_a_constant_and_an_inline_model():
    x = np.random.default_rng(0).binomial(10, 0.3, size=300)
    r = symmle.gof("binomial", x, {"n": 10}, boot=100, seed=1)
    assert set(r.statistics) == {"ks", "cvm", "ad", "chi2"} and r.cdf == "summation"
    assert r.statistics["chi2"].p_value > 0.01
    m = symmle.inline_model("th**2/(1+th)*(1+x)*exp(-th*x)", "x", "0,oo", ["th:positive"])
    y = np.random.default_rng(16).exponential(1.0, size=200)
    s = symmle.gof(m, y, boot=50, seed=2)
    assert 0 < s.statistics["ad"].p_value <= 1 and s.statistics["ad"].mc_error is not None
