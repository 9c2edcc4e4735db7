"""Profile-likelihood intervals: ``symmle.fit(..., ci="profile")``, ``symmle fit --ci profile``.

Each interval is compared with a reference made here without symmle: the
log-likelihood written with ``scipy.stats``, the nuisance parameters
maximised by ``scipy.optimize`` at each point of a fine grid of the profiled
one, and the crossing of ``2 (l_hat - l_p) = chi2_{1,0.95}`` read off the grid
by linear interpolation (or, where the profile has a closed form, the exact
expression).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import optimize, stats

import symmle
from symmle.base.errors import SpecError
from symmle.cli import cli
from symmle.model.build import inline_model
from symmle.model.catalogue import family_names

CRIT = stats.chi2.ppf(0.95, 1)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def grid_crossings(profile, grid):
    """The two crossings of ``2 (max - profile) = CRIT`` nearest the grid's maximum, interpolated."""
    values = np.array([profile(t) for t in grid])
    top = int(np.argmax(values))
    dev = 2 * (values[top] - values) - CRIT
    assert 0 < top < len(grid) - 1, "the grid must hold the maximum inside"
    below = [i for i in range(top, 0, -1) if dev[i - 1] > 0 >= dev[i]]
    above = [i for i in range(top, len(grid) - 1) if dev[i] <= 0 < dev[i + 1]]
    assert below and above, "the grid must reach the cut-off on both sides"
    i, k = below[0], above[0]
    lo = grid[i - 1] + (grid[i] - grid[i - 1]) * dev[i - 1] / (dev[i - 1] - dev[i])
    hi = grid[k] + (grid[k + 1] - grid[k]) * (-dev[k]) / (dev[k + 1] - dev[k])
    return lo, hi


def nuisance_profile(loglik, bounds):
    """``t -> max_u loglik(t, u)`` with ``u`` scalar, by bounded Brent on ``log u`` (positive ``u``)."""

    def profile(t):
        res = optimize.minimize_scalar(
            lambda s: -loglik(t, math.exp(s)), bounds=bounds, method="bounded", options={"xatol": 1e-10}
        )
        return -res.fun

    return profile


def test_gamma_shape_and_rate_match_a_brute_force_profile():
    rng = np.random.default_rng(2026)
    x = rng.gamma(2.5, 1 / 1.5, 60)
    r = symmle.fit("gamma", x, ci="profile")
    a, b = r.estimates["a"], r.estimates["b"]
    assert r.kind["a"] == "numeric" and r.ci_method == {"a": "profile", "b": "profile"}

    def ll(shape, rate):
        return float(np.sum(stats.gamma.logpdf(x, shape, scale=1 / rate)))

    ref_a = grid_crossings(
        nuisance_profile(ll, (math.log(b) - 4, math.log(b) + 4)), np.linspace(0.4 * a, 2.5 * a, 1500)
    )
    ref_b = grid_crossings(
        nuisance_profile(lambda t, u: ll(u, t), (math.log(a) - 4, math.log(a) + 4)),
        np.linspace(0.4 * b, 2.5 * b, 1500),
    )
    assert r.ci95["a"] == pytest.approx(ref_a, rel=2e-4)
    assert r.ci95["b"] == pytest.approx(ref_b, rel=2e-4)
    for name in ("a", "b"):
        lo, hi = r.ci95[name]
        assert 0 < lo < r.estimates[name] < hi
    # asymmetric, as the likelihood is: further above the estimate than below it
    assert hi - b > b - lo
    assert r.warnings == []


def test_normal_mean_matches_the_exact_profile_interval():
    rng = np.random.default_rng(11)
    x = rng.normal(3.0, 2.0, 25)
    r = symmle.fit("normal", x, ci="profile")
    n, xbar, s2 = len(x), x.mean(), x.var()
    # l_p(mu) = -n/2 log(2 pi (s2 + (xbar - mu)^2)) - n/2: the cut-off gives |mu - xbar| <= w
    w = math.sqrt(s2 * math.expm1(CRIT / n))
    assert r.ci95["mu"] == pytest.approx((xbar - w, xbar + w), rel=1e-9, abs=1e-9)
    # the Wald interval is narrower here (it uses 1.96 se = 1.96 sqrt(s2/n))
    assert w > 1.959963984540054 * math.sqrt(s2 / n)

    # sigma2: l_p(v) = -n/2 log(2 pi v) - n s2/(2 v), the maximum over mu being xbar
    def lp(v):
        return -n / 2 * math.log(2 * math.pi * v) - n * s2 / (2 * v)

    f = lambda v: 2 * (lp(s2) - lp(v)) - CRIT  # noqa: E731
    exact = (optimize.brentq(f, s2 / 100, s2, xtol=1e-14), optimize.brentq(f, s2, 100 * s2, xtol=1e-14))
    assert r.ci95["sigma2"] == pytest.approx(exact, rel=1e-9)

    # and against the brute-force profile over mu, found numerically
    def ll(v, mu):
        return float(np.sum(stats.norm.logpdf(x, mu, math.sqrt(v))))

    def profile(v):
        return -optimize.minimize_scalar(lambda mu: -ll(v, mu), bracket=(xbar - 1, xbar + 1)).fun

    assert r.ci95["sigma2"] == pytest.approx(
        grid_crossings(profile, np.linspace(s2 / 4, 4 * s2, 3000)), rel=1e-4
    )


def test_exponential_and_poisson_match_their_likelihood():
    rng = np.random.default_rng(5)
    x = rng.exponential(2.0, 12)
    r = symmle.fit("exponential", x, ci="profile")
    lam = r.estimates["lam"]
    ref = grid_crossings(
        lambda t: float(np.sum(stats.expon.logpdf(x, scale=1 / t))), np.linspace(lam / 5, 4 * lam, 4000)
    )
    assert r.ci95["lam"] == pytest.approx(ref, rel=1e-5)
    assert r.ci95["lam"][0] < lam < r.ci95["lam"][1]

    k = rng.poisson(3.0, 40)
    r = symmle.fit("poisson", k, ci="profile")
    lam = r.estimates["lam"]
    ref = grid_crossings(
        lambda t: float(np.sum(stats.poisson.logpmf(k, t))), np.linspace(lam / 3, 3 * lam, 4000)
    )
    assert r.ci95["lam"] == pytest.approx(ref, rel=1e-5)
    # not the Wald interval (which is symmetric about the estimate)
    lo, hi = r.ci95["lam"]
    assert hi - lam > lam - lo


def test_bernoulli_with_a_small_p_gets_an_asymmetric_interval_inside_0_1():
    x = np.zeros(60)
    x[[7, 30]] = 1  # p_hat = 1/30
    r = symmle.fit("bernoulli", x, ci="profile")
    p = r.estimates["p"]
    lo, hi = r.ci95["p"]
    ref = grid_crossings(
        lambda t: float(np.sum(stats.bernoulli.logpmf(x, t))), np.linspace(1e-5, 0.25, 20000)
    )
    assert (lo, hi) == pytest.approx(ref, rel=1e-4)
    assert 0 < lo < p < hi < 1
    assert hi - p > 2 * (p - lo)  # strongly skewed towards the larger values
    assert symmle.fit("bernoulli", x, ci="wald").ci95["p"][0] < 0  # where the Wald interval leaves (0, 1)


def test_positive_parameter_never_gets_a_negative_lower_end():
    x = [0.5, 1.2, 2.3]
    for model, name in (("exponential", "lam"), ("normal", "sigma2")):
        wald = symmle.fit(model, x, ci="wald").ci95[name]
        r = symmle.fit(model, x, ci="profile")
        assert wald[0] < 0 or model == "exponential"
        assert 0 < r.ci95[name][0] < r.estimates[name] < r.ci95[name][1]


def test_a_profile_that_never_reaches_the_cut_off_ends_at_the_edge_with_a_warning():
    # a weight w in (0, 1) between the densities 2x and 2(1 - x): finite at both ends, and on five
    # points the likelihood at w = 1 is within the cut-off of the maximum
    x = np.array([0.2, 0.7, 0.9, 0.6, 0.45])
    m = inline_model("2*(w*x+(1-w)*(1-x))", "x", "0,1", ["w:unit"])
    r = symmle.fit(m, x, ci="profile")
    lo, hi = r.ci95["w"]

    def ll(w):
        return float(np.sum(np.log(2 * (w * x + (1 - w) * (1 - x)))))

    w_hat = optimize.minimize_scalar(
        lambda w: -ll(w), bounds=(0, 1), method="bounded", options={"xatol": 1e-12}
    ).x
    assert r.estimates["w"] == pytest.approx(w_hat, rel=1e-6)
    assert 2 * (ll(w_hat) - ll(1.0)) < CRIT  # the reason the upper end is the edge
    assert hi == 1.0
    exact_lo = optimize.brentq(lambda w: 2 * (ll(w_hat) - ll(w)) - CRIT, 1e-12, w_hat, xtol=1e-14)
    assert lo == pytest.approx(exact_lo, rel=1e-7)
    assert any("upper end" in w and "edge of its domain" in w for w in r.warnings)


def test_cli_json_and_text_say_profile(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("\n".join(map(str, [0.5, 1.2, 2.3, 0.1, 1.7])) + "\n")
    out = run("fit", "gamma", path, "--ci", "profile", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["schema"] == 1 and doc["ci_method"] == {"a": "profile", "b": "profile"}
    py = symmle.fit("gamma", [0.5, 1.2, 2.3, 0.1, 1.7], ci="profile")
    assert doc["ci95"]["a"] == pytest.approx(list(py.ci95["a"]), rel=1e-12)
    text = run("fit", "gamma", path, "--ci", "profile")
    assert text.exit_code == 0, text.output
    assert "95% CI: profile likelihood for a, b" in text.output
    assert "Wald" not in text.output
    # the default is unchanged
    assert json.loads(run("fit", "gamma", path, "--json").output)["ci_method"] == {
        "a": "wald-log",
        "b": "wald-log",
    }


def test_bad_ci_and_unsupported_models_are_refused_in_one_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("1\n2\n3\n")
    bad = run("fit", "normal", path, "--ci", "likelihood")
    assert bad.exit_code == 2 and "--ci" in bad.output and "profile" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and "Traceback" not in bad.output
    with pytest.raises(SpecError, match="unknown interval method"):
        symmle.fit("normal", [1.0, 2.0, 3.0], ci="likelihood")
    cases = [
        ("fit", "mvnormal", path, "--ci", "profile"),
        ("fit", "poisson", path, "--ci", "profile", "--prior", "lam ~ gamma(a=2, b=1)"),
    ]
    for args in cases:
        out = run(*args)
        assert out.exit_code != 0
        assert len(out.output.strip().splitlines()) == 1 and "profile" in out.output, out.output
    table = tmp_path / "t.csv"
    table.write_text("y,z\n1.0,0.5\n2.1,1.0\n2.9,1.5\n4.2,2.0\n")
    out = run("fit", "normal", table, "--link", "mu=identity", "--formula", "y ~ z", "--ci", "profile")
    assert out.exit_code != 0 and "regression" in out.output and len(out.output.strip().splitlines()) == 1
    with pytest.raises(SpecError, match="regression"):
        symmle.fit(
            "normal",
            {"y": [1.0, 2.1, 2.9, 4.2], "z": [0.5, 1.0, 1.5, 2.0]},
            link={"mu": "identity"},
            formula="y ~ z",
            ci="profile",
        )


def test_derived_quantities_keep_their_delta_method_interval():
    r = symmle.fit("normal", [0.5, 1.2, 2.3, 0.1, 1.7], ci="profile", derived=["sigma=sqrt(sigma2)"])
    assert r.ci_method == {"mu": "profile", "sigma2": "profile"}
    assert r.derived["sigma"]["ci_method"] == "wald-log"


def test_data_far_from_zero_keep_their_digits():
    # T2 - 2 mu T1 + N mu^2 cancels on a sample around 1e6: the profile is then summed over the data
    rng = np.random.default_rng(8)
    x = rng.normal(1e6, 1.0, 500)
    r = symmle.fit("normal", x, ci="profile")
    xbar, s2 = x.mean(), np.mean((x - x.mean()) ** 2)
    w = math.sqrt(s2 * math.expm1(CRIT / len(x)))
    assert r.ci95["mu"] == pytest.approx((xbar - w, xbar + w), rel=1e-12)
    assert r.warnings == []


def _coordinate(domain):
    """``(to_z, from_z)`` of a domain: log, logit or the identity (written here, not symmle's)."""
    if domain in ("positive", "nonnegative"):
        return math.log, math.exp
    if domain == "unit":
        return (lambda t: math.log(t / (1 - t))), (lambda z: 1 / (1 + math.exp(-z)))
    return (lambda t: t), (lambda z: z)


SCALAR = family_names("scalar")


@pytest.mark.parametrize("name", SCALAR)
def test_every_scalar_family_ends_where_an_independent_profile_crosses(name, derivation, families):
    """At each end the log-density summed over the data, maximised over the other parameter by
    SciPy (no statistics, no derivatives), falls exactly 3.841/2 below its maximum."""
    d = derivation(name)
    m = d.model
    consts = families.constants(m)
    x = np.asarray(families.sample(name, 150))
    r = symmle.fit(d, x, consts, ci="profile")
    compiled = families.compiled(name)
    regular = [p.name for p in d.stationarity.parameters]
    domains = {q.name: q.domain for q in m.parameters}
    l_hat = compiled.log_likelihood(x, **consts, **r.estimates)
    for name_j in regular:
        assert r.ci_method[name_j] == "profile"
        lo, hi = r.ci95[name_j]
        assert lo < r.estimates[name_j] < hi
        others = [p for p in regular if p != name_j]
        for end in (lo, hi, (lo + r.estimates[name_j]) / 2, (hi + r.estimates[name_j]) / 2):

            def ll(values, name_j=name_j, end=end):
                return compiled.log_likelihood(x, **consts, **{**r.estimates, name_j: end, **values})

            if others:  # one other regular parameter in the scalar catalogue
                (k,) = others
                to_z, from_z = _coordinate(domains[k])
                z0 = to_z(r.estimates[k])
                found = optimize.minimize_scalar(
                    lambda z, k=k, from_z=from_z: -ll({k: from_z(z)}),
                    bounds=(z0 - 5, z0 + 5),
                    method="bounded",
                    options={"xatol": 1e-12},
                )
                lp = -found.fun
            else:
                lp = ll({})
            drop = 2 * (l_hat - lp)
            if end in (lo, hi):
                assert drop == pytest.approx(CRIT, abs=1e-6), (name_j, end)
            else:
                assert 0 <= drop < CRIT
    boundary = [p for p in m.parameters if r.kind[p.name] == "boundary"]
    assert all(r.ci95[p.name] is None for p in boundary)
