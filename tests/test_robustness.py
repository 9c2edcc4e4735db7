"""Densities and inputs that once broke symmle, found by trying models nobody had tried.

Each test names the failure it guards against.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from scipy import optimize, stats

import symmle
from symmle.base import _runtime
from symmle.base.errors import DerivationError, SpecError
from symmle.base.numeric import to_function

LOGSER = ("-p**x/(x*log(1-p))", "x", "1,oo", ["p:unit"])


def test_logarithmic_series_log_density_is_real_and_fits():
    """log(-p**x/(x log(1-p))) expanded term by term gave i*pi + ... - log(log(1 - p)).

    That is complex, and was unfittable.
    """
    m = symmle.inline_model(*LOGSER, discrete=True)
    d = symmle.derive(m)
    assert not d.likelihood.log_density.has(sp.I)
    x = np.random.default_rng(0).logseries(0.7, 3000).astype(float)
    est = symmle.fit(d, x).estimates["p"]
    ref = optimize.minimize_scalar(
        lambda p: -stats.logser.logpmf(x, p).sum(),
        bounds=(0.01, 0.99),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
    assert est == pytest.approx(ref, rel=1e-8)


def test_laplace_location_is_the_median_and_fits():
    """|x - m| has a kink: its second derivative is a DiracDelta, and the score has no root.

    That crashed the Fisher check and the fit, then was refused; the subgradient gives the median,
    and the scale is the mean absolute deviation about it.
    """
    m = symmle.inline_model("exp(-Abs(x-m)/b)/(2*b)", "x", "-oo,oo", ["m:real", "b:positive"])
    d = symmle.derive(m)
    assert d.solutions["m"].kind == "closed_form" and d.solutions["b"].kind == "closed_form"
    for n in (200, 201):
        x = np.random.default_rng(1).laplace(0.5, 1.3, n)
        r = symmle.fit(d, x)
        assert r.estimates["m"] == pytest.approx(np.median(x), rel=1e-14)
        assert r.estimates["b"] == pytest.approx(np.mean(np.abs(x - np.median(x))), rel=1e-12)


def test_python_float_overflow_is_inf_not_an_exception():
    """A parameter as a Python float raised OverflowError (a**-b with a tiny a) inside a fit."""
    a = sp.Symbol("a", positive=True)
    assert math.isinf(to_function([a], a**-400)(1e-5))
    assert math.isnan(_runtime.sum_over(lambda c: c * (1e300**2.0), np.ones(3)))


def test_model_without_an_estimator_is_a_derivation_error():
    """A model without a derived estimator: fit blamed the data (exit 3), it must blame the model.

    (U(-theta, theta) was such a model until both ends of the support gave constraints; here the
    support end 2 + sin(theta) reaches the sample maximum at infinitely many theta.)
    """
    m = symmle.inline_model("1/(2+sin(theta))", "x", "0,2+sin(theta)", ["theta:real"])
    with pytest.raises(DerivationError, match="no estimator of theta"):
        symmle.fit(m, np.array([0.5, 0.2, 0.9]))


def test_check_refuses_an_impossible_simulation_before_drawing():
    with pytest.raises(SpecError, match="would draw"):
        symmle.check("exponential", {"lam": 1.0}, n=10**8, reps=1000)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["check", "normal", "--true", "mu=1,sigma2=1", "--n", "1"], "--n"),
        (["nosuch"], "No such command"),
        (["derive", "normal", "--format", "pdf"], "--format"),
        (["--bogus"], "--bogus"),
    ],
)
def test_usage_errors_are_one_line(args, needle):
    """click's own usage errors printed a four-line Usage/Try/Error block."""
    r = subprocess.run([sys.executable, "-m", "symmle", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error:") and needle in lines[0], r.stderr


@pytest.mark.parametrize(
    "pdf, var, support, param, const",
    [
        # binomial(x + r - 1, x) overflows past x ~ 170: the log form must take over
        ("binomial(x+r-1,x)*p**r*(1-p)**x", "x", "0,oo", "p:unit", "r:positive_integer=3"),
        # at n = 10**6 every factor over- or underflows; log(k!) of an integer k must stay loggamma
        ("binomial(n, k)*p**k*(1-p)**(n-k)", "k", "0,n", "p:unit", "n:positive_integer=1000000"),
    ],
)
def test_pmfs_with_huge_factors_normalise(pdf, var, support, param, const):
    """These valid pmfs were refused as 'not finite' or 'does not sum to 1'."""
    m = symmle.inline_model(pdf, var, support, [param], [const], discrete=True)
    d = symmle.derive(m)
    assert d.solutions["p"].kind == "closed_form" and d.solutions["p"].verified


def test_power_law_tails_are_summed():
    """A pmf with a k**-s tail (Yule-Simon) did not converge within MAX_TERMS and was refused."""
    from symmle.base.quadrature import sum_support

    total, ok = sum_support(lambda k: k**-2.0, 1, math.inf)
    assert ok and total == pytest.approx(math.pi**2 / 6, rel=1e-9)
    _, ok = sum_support(lambda k: 1.0 / k, 1, math.inf)  # the harmonic series really diverges
    assert not ok


def test_yule_simon_fits_like_scipy():
    x = stats.yulesimon.rvs(1.7, size=2000, random_state=np.random.default_rng(0)).astype(float)
    m = symmle.inline_model("r*beta(x, r+1)", "x", "1,oo", ["r:positive"], discrete=True)
    est = symmle.fit(m, x).estimates["r"]
    ref = optimize.minimize_scalar(
        lambda a: -stats.yulesimon.logpmf(x, a).sum(),
        bounds=(0.1, 10),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
    assert est == pytest.approx(ref, rel=1e-7)


def test_generated_lambertw_estimator_is_real_without_warnings(tmp_path):
    """The zero-truncated Poisson's closed form goes through lambertw (complex dtype): no ComplexWarning."""
    import importlib.util
    import warnings

    from symmle.numbers.codegen import module_source

    m = symmle.inline_model(
        "lam**x*exp(-lam)/(factorial(x)*(1-exp(-lam)))", "x", "1,oo", ["lam:positive"], discrete=True
    )
    d = symmle.derive(m)
    assert d.solutions["lam"].expr.has(sp.LambertW)
    path = tmp_path / "ztp_mle.py"
    path.write_text(module_source(d))
    spec = importlib.util.spec_from_file_location("ztp_mle", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = np.random.default_rng(0).poisson(2.0, 5000)
    x = x[x > 0].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est, se = mod.estimate(x), mod.stderr(x)
    assert est["lam"] == pytest.approx(d.compile()(x)["lam"], rel=1e-12) and se["lam"] > 0
