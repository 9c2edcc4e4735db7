"""95% intervals of ``symmle.fit``: on the log or logit scale by default, plain Wald on request.

A positive parameter's interval is made on the log scale (``se(log theta) =
se/theta`` by the delta method) and one in (0, 1) on the logit scale, then
mapped back, so it never leaves the domain; ``ci="wald"`` (``--ci wald``)
gives estimate +/- 1.96 se.  The references are written out here; the
coverage of both kinds on small exponential samples is simulated and
compared with its exact value from the gamma distribution of the sample sum.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from scipy import stats

import symmle
from symmle.base._runtime import in_domain
from symmle.base.errors import SpecError
from symmle.cli import cli
from symmle.model.domains import DOMAINS
from symmle.numbers.fitting import INTERVAL_SCALE, Z95, interval

#: Five points, as a new user would try first (their variance's Wald interval goes below 0).
FIVE = [0.5, 1.2, 2.3, 0.1, 1.7]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def test_normal_on_five_points_keeps_the_variance_positive():
    r = symmle.fit("normal", FIVE)
    s2, se = r.estimates["sigma2"], r.stderr["sigma2"]
    assert s2 == pytest.approx(np.var(FIVE), rel=1e-14)
    assert se == pytest.approx(s2 * math.sqrt(2 / 5), rel=1e-12)  # sqrt(2 sigma^4 / n)
    # the Wald interval of the variance reaches below zero here ...
    wald = symmle.fit("normal", FIVE, ci="wald")
    assert wald.ci95["sigma2"][0] < 0
    assert wald.ci95["sigma2"] == pytest.approx((s2 - Z95 * se, s2 + Z95 * se), rel=1e-15)
    # ... the default, on the log scale, does not: exp(log s2 -/+ 1.96 se/s2)
    lo, hi = r.ci95["sigma2"]
    assert lo == pytest.approx(s2 * math.exp(-Z95 * math.sqrt(2 / 5)), rel=1e-12)
    assert hi == pytest.approx(s2 * math.exp(Z95 * math.sqrt(2 / 5)), rel=1e-12)
    assert 0 < lo < s2 < hi
    assert r.ci_method == {"mu": "wald", "sigma2": "wald-log"}
    assert wald.ci_method == {"mu": "wald", "sigma2": "wald"}
    # a real parameter keeps its Wald interval
    assert r.ci95["mu"] == wald.ci95["mu"]


def test_unit_parameter_on_the_logit_scale():
    x = [1, 1, 1, 0]
    r = symmle.fit("bernoulli", x)
    p, se = r.estimates["p"], r.stderr["p"]
    assert p == 0.75 and se == pytest.approx(math.sqrt(0.75 * 0.25 / 4), rel=1e-12)
    assert symmle.fit("bernoulli", x, ci="wald").ci95["p"][1] > 1  # Wald leaves (0, 1)
    z, w = math.log(3), Z95 * se / (p * (1 - p))
    expit = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    assert r.ci95["p"] == pytest.approx((expit(z - w), expit(z + w)), rel=1e-12)
    assert 0 < r.ci95["p"][0] < p < r.ci95["p"][1] < 1
    assert r.ci_method == {"p": "wald-logit"}


def test_text_and_json_say_how_the_intervals_were_made(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("\n".join(map(str, FIVE)) + "\n")
    out = run("fit", "normal", path)
    assert out.exit_code == 0, out.output
    notes = out.output.split("standard errors from the expected information\n", 1)[1]
    assert "95% Wald intervals: mu as estimate +/- 1.96 se" in notes
    assert "sigma2 on the log scale, mapped back (delta method)" in notes
    doc = json.loads(run("fit", "normal", path, "--json").output)
    assert doc["ci_method"] == {"mu": "wald", "sigma2": "wald-log"}
    assert doc["ci95"]["sigma2"][0] > 0
    wald = json.loads(run("fit", "normal", path, "--json", "--ci", "wald").output)
    assert wald["ci_method"] == {"mu": "wald", "sigma2": "wald"}
    assert wald["ci95"]["sigma2"][0] < 0
    assert wald["estimates"] == doc["estimates"] and wald["stderr"] == doc["stderr"]
    bad = run("fit", "normal", path, "--ci", "bootstrap")
    assert bad.exit_code == 2 and "--ci" in bad.output


def test_boundary_parameters_keep_no_interval():
    r = symmle.fit("uniform", [0.5, 1.5, 2.0])
    assert r.ci95 == {"theta": None} and r.ci_method == {"theta": None}
    assert r.to_dict()["ci_method"] == {"theta": None}
    assert "95% Wald intervals" not in r.to_text()


def test_unknown_method_is_refused():
    with pytest.raises(SpecError, match="unknown interval method 'bootstrap'"):
        symmle.fit("normal", FIVE, ci="bootstrap")
    with pytest.raises(SpecError):
        interval(1.0, 0.1, "positive", "exact")


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_domain_has_a_scale_that_stays_inside_it(domain):
    lo, hi = INTERVAL_SCALE[domain]
    # the scale's open interval holds the domain's representative point and nothing beyond its ends
    point = DOMAINS[domain][1]
    assert lo < point < hi and in_domain(point, domain)
    for end in (lo, hi):
        if math.isfinite(end):
            assert not in_domain(end - 1 if end == lo else end + 1, domain)
    # a tiny estimate with a huge standard error: the interval stays in the open interval
    value = point if domain.endswith("integer") else (lo + point) / 2 if math.isfinite(lo) else point
    (a, b), how = interval(value, 50 * abs(value) + 1, domain)
    assert how == (
        "wald" if math.isinf(lo) and math.isinf(hi) else "wald-logit" if math.isfinite(hi) else "wald-log"
    )
    assert lo <= a < value < b <= hi
    if how != "wald":
        assert lo < a and b <= hi


def _exact_coverage(n: int) -> dict[str, float]:
    """Coverage of both intervals of an exponential rate at sample size ``n``.

    ``lam_hat = n / S`` with ``S ~ Gamma(n, 1/lam)`` and ``se = lam_hat / sqrt(n)``, so
    each interval covers ``lam`` exactly when ``S`` lies between two multiples of ``n / lam``.
    """
    g, c = stats.gamma(n), Z95 / math.sqrt(n)
    return {
        "wald-log": g.cdf(n * math.exp(c)) - g.cdf(n * math.exp(-c)),
        "wald": g.cdf(n * (1 + c)) - g.cdf(max(n * (1 - c), 0.0)),
    }


@pytest.mark.parametrize("n", [3, 10])
def test_coverage_on_small_exponential_samples(n, derivation):
    d = derivation("exponential")
    lam = d.model.parameter_symbols[0]
    # the standard error from the derivation's Fisher information, evaluated here
    info = sp.lambdify(lam, d.fisher[0, 0])
    rng = np.random.default_rng(20240917 + n)
    true, reps = 2.5, 4000
    rows = rng.exponential(1 / true, size=(reps, n))
    est = d.compile().estimate_rows(rows)["lam"]
    covered = {"wald-log": 0, "wald": 0}
    lowest = math.inf
    for v in est:
        se = 1 / math.sqrt(n * info(v))
        assert se == pytest.approx(v / math.sqrt(n), rel=1e-12)
        (a, b), how = interval(v, se, "positive")
        assert how == "wald-log"
        lowest = min(lowest, a)
        covered["wald-log"] += a <= true <= b
        (a, b), _ = interval(v, se, "positive", "wald")
        covered["wald"] += a <= true <= b
        if n == 3:
            assert a < 0  # 1.96/sqrt(3) > 1: the Wald interval of a rate always reaches below 0
    assert lowest > 0
    exact = _exact_coverage(n)
    for how, k in covered.items():
        rate = k / reps
        mc = math.sqrt(exact[how] * (1 - exact[how]) / reps)
        assert abs(rate - exact[how]) <= 4 * mc, (how, rate, exact[how])
    # about 95%: 0.921 at n = 3, 0.941 at n = 10 (Wald: 0.953, 0.955, with its negative lower ends)
    assert abs(exact["wald-log"] - 0.95) < (0.035 if n == 3 else 0.012)
    # fit gives these intervals: the same numbers on a few of the samples
    for row, v in zip(rows[:5], est[:5]):
        r = symmle.fit(d, row)
        assert r.estimates["lam"] == pytest.approx(v, rel=1e-14)
        assert r.ci95["lam"] == pytest.approx(interval(v, v / math.sqrt(n), "positive")[0], rel=1e-12)
