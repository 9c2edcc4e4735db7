"""Standard errors of boundary (order-statistic) MLEs, from their exact sampling distribution.

Each case compares ``order_statistic_stderr`` with the standard deviation of
the sample minimum or maximum worked out by hand for that density.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symmle
from symmle.numbers.fitting import order_statistic_stderr


def _at(d, **values):
    table = d.model.symbols
    return {table[k]: v for k, v in values.items()}


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_uniform_maximum(n):
    d = symmle.derive("uniform")
    exact = 2.0 * math.sqrt(n / ((n + 1) ** 2 * (n + 2)))  # sd of the max of n U(0, 2)
    assert order_statistic_stderr(d, "theta", _at(d, theta=2.0), n) == pytest.approx(exact, rel=1e-8)


def test_shifted_exponential_minimum():
    # min of n Exp(lam) shifted by mu is mu + Exp(n lam): sd 1/(n lam)
    d = symmle.derive(symmle.inline_model("lam*exp(-lam*(x-mu))", "x", "mu,oo", ["mu:real", "lam:positive"]))
    assert order_statistic_stderr(d, "mu", _at(d, mu=2.0, lam=1.5), 400) == pytest.approx(
        1 / (400 * 1.5), rel=1e-8
    )


def test_pareto_scale_minimum():
    # the min of n Pareto(a, xm) is Pareto(n a, xm)
    d = symmle.derive(symmle.inline_model("a*xm**a/x**(a+1)", "x", "xm,oo", ["xm:positive", "a:positive"]))
    k, xm = 50 * 3.0, 1.5
    exact = xm * math.sqrt(k / ((k - 1) ** 2 * (k - 2)))
    assert order_statistic_stderr(d, "xm", _at(d, xm=xm, a=3.0), 50) == pytest.approx(exact, rel=1e-8)


def test_power_density_maximum():
    # P(M <= t) = (t/theta)**(3n): M/theta ~ Beta(3n, 1)
    d = symmle.derive(symmle.inline_model("3*x**2/theta**3", "x", "0,theta", ["theta:positive"]))
    a = 3 * 20
    exact = 2.0 * math.sqrt(a / ((a + 1) ** 2 * (a + 2)))
    assert order_statistic_stderr(d, "theta", _at(d, theta=2.0), 20) == pytest.approx(exact, rel=1e-8)


def test_discrete_uniform_maximum():
    # P(m - M >= k) = ((m - k)/m)**n on 1..m
    d = symmle.derive(symmle.inline_model("1/m", "x", "1,m", ["m:positive_integer"], discrete=True))
    m, n = 12, 30
    tail = np.array([((m - k) / m) ** n for k in range(1, m)])
    mean = tail.sum()
    second = sum((2 * k - 1) * t for k, t in zip(range(1, m), tail))
    exact = math.sqrt(second - mean**2)
    assert order_statistic_stderr(d, "m", _at(d, m=float(m)), n) == pytest.approx(exact, rel=1e-10)


def test_fit_reports_boundary_stderr_without_a_wald_interval():
    x = np.random.default_rng(3).uniform(0, 2, 500)
    r = symmle.fit("uniform", x)
    n = 500
    theta = r.estimates["theta"]
    assert r.stderr["theta"] == pytest.approx(theta * math.sqrt(n / ((n + 1) ** 2 * (n + 2))), rel=1e-8)
    assert r.ci95["theta"] is None
    assert any("standard error of theta" in w for w in r.warnings)


@pytest.mark.parametrize("n", [1, 5, 200])
def test_a_multiple_of_the_maximum(n):
    """Uniform(theta, 2 theta): theta_hat = max/2, whose sd is half that of the sample maximum."""
    d = symmle.derive(symmle.inline_model("1/theta", "x", "theta,2*theta", ["theta:positive"]))
    theta = 0.95
    exact = theta / 2 * math.sqrt(n / ((n + 1) ** 2 * (n + 2)))  # the max of n U(theta, 2 theta), halved
    assert order_statistic_stderr(d, "theta", _at(d, theta=theta), n) == pytest.approx(exact, rel=1e-8)
    fit = symmle.fit(d, np.random.default_rng(n).uniform(theta, 2 * theta, n))
    assert fit.stderr["theta"] > 0 and fit.ci95["theta"] is None


def test_a_function_of_the_data_that_is_not_an_extreme_has_no_stderr():
    """Uniform(-theta, theta): theta_hat = max|x| is not a multiple of min or max; no number is made up."""
    d = symmle.derive(symmle.inline_model("1/(2*theta)", "x", "-theta,theta", ["theta:positive"]))
    assert order_statistic_stderr(d, "theta", _at(d, theta=1.0), 10) is None
    fit = symmle.fit(d, [-1.2, 0.9, 0.5, -1.7, 1.1])
    assert fit.stderr["theta"] is None
    assert any("not a linear function" in w for w in fit.warnings)
