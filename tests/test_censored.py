"""Censored data: the survival function, closed forms from the censored score equations, and fits.

Every numeric reference is written here from scratch with SciPy (``scipy.stats`` distributions and
``scipy.optimize``), never through symmle.  lifelines is not a dependency: its test runs only where
it is installed.  statsmodels has no parametric survival fit; the exponential is checked against its
Poisson GLM with offset ``log t``, whose likelihood is proportional to the censored exponential's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from scipy import optimize, stats

from symmle.base.errors import DataError, SpecError
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.numbers.censored_fit import CensoredLogLikelihood, censored_data, fit_censored, interval_data
from symmle.symbolic.censored import Distribution, derive_censored


def _right_censored(seed=11, n=120, scale=2.0, censor=3.5, shape=None):
    rng = np.random.default_rng(seed)
    t = scale * (rng.weibull(shape, n) if shape else rng.exponential(1.0, n))
    c = rng.exponential(censor, n)
    return np.minimum(t, c), (t <= c).astype(int)


def _direct(nll, start):
    """The minimiser of ``nll`` by Nelder-Mead then BFGS, on the log scale of positive parameters."""
    r = optimize.minimize(
        nll, start, method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-13, "maxiter": 20000}
    )
    r = optimize.minimize(nll, r.x, method="BFGS", options={"gtol": 1e-10})
    return r.x


def _hessian(f, x, h=1e-4):
    """Central-difference Hessian of ``f`` at ``x``."""
    x = np.asarray(x, dtype=float)
    k = x.size
    out = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            ea, eb = np.eye(k)[a] * h * max(1, abs(x[a])), np.eye(k)[b] * h * max(1, abs(x[b]))
            out[a, b] = (f(x + ea + eb) - f(x + ea - eb) - f(x - ea + eb) + f(x - ea - eb)) / (
                4 * np.linalg.norm(ea) * np.linalg.norm(eb)
            )
    return out


# ------------------------------------------------------------------------------------------ symbolic


def test_exponential_closed_form_is_events_over_total_time():
    d = derive_censored(load_model("exponential"), timeout=20)
    c = d.likelihood
    ((total, g),) = c.totals  # one statistic: the sum of every time, censored or not
    assert g == load_model("exponential").variable
    assert not c.event_sums and not c.censored_sums
    e = d.estimators["lam"]
    assert e.kind == "closed_form" and e.verified
    assert sp.simplify(e.expr - c.d / total) == 0
    lam = load_model("exponential").parameters[0].symbol
    assert sp.simplify(c.log_likelihood - (c.d * sp.log(lam) - lam * total)) == 0


def test_weibull_with_known_shape_has_a_closed_form():
    m = load_model("weibull_scale")
    d = derive_censored(m, timeout=20)
    k = m.constants[0].symbol
    x = m.variable
    ((total, g),) = d.likelihood.totals
    assert sp.simplify(g - x**k) == 0
    assert d.estimators["lam"].kind == "closed_form"
    assert sp.simplify(d.estimators["lam"].expr - (total / d.likelihood.d) ** (1 / k)) == 0


@pytest.mark.parametrize(
    "name, frozen",
    [
        ("exponential", lambda p: stats.expon(scale=1 / p["lam"])),
        ("weibull", lambda p: stats.weibull_min(p["k"], scale=p["lam"])),
        ("normal", lambda p: stats.norm(p["mu"], np.sqrt(p["sigma2"]))),
    ],
)
def test_survival_function_matches_scipy(name, frozen):
    m = load_model(name)
    d = derive_censored(m, timeout=20)
    point = m.point()
    dist = frozen({s.name: v for s, v in point.items()})
    S = sp.lambdify(m.variable, d.distribution.survival.subs(point), "scipy")
    F = sp.lambdify(m.variable, d.distribution.cdf.subs(point), "scipy")
    for t in (0.2, 0.9, 2.5):
        assert S(t) == pytest.approx(dist.sf(t), rel=1e-10)
        assert F(t) == pytest.approx(dist.cdf(t), rel=1e-10)


def test_weibull_with_both_parameters_is_numeric_with_a_profile():
    d = derive_censored(load_model("weibull"), timeout=20)
    assert {e.kind for e in d.estimators.values()} == {"numeric"}
    # the scale given the shape: lam**k = sum(t**k) / d, from the censored score equation
    lam = d.estimators["lam"]
    assert lam.equation is not None and lam.equation.lhs == load_model("weibull").parameters[0].symbol


# ------------------------------------------------------------------------------------------ fits


def test_exponential_fit_against_direct_optimisation():
    t, s = _right_censored()
    r = fit_censored("exponential", censored_data(t, s))
    assert r.kind["lam"] == "closed_form"
    assert r.estimates["lam"] == pytest.approx(s.sum() / t.sum(), rel=1e-12)

    def nll(z):
        dist = stats.expon(scale=np.exp(-z[0]))
        return -(np.sum(dist.logpdf(t[s == 1])) + np.sum(dist.logsf(t[s == 0])))

    (z,) = _direct(nll, [0.0])
    assert r.estimates["lam"] == pytest.approx(np.exp(z), rel=1e-6)
    assert r.log_likelihood == pytest.approx(-nll([z]), rel=1e-10)

    def nll_lam(v):
        return nll(np.log(v))

    se = 1 / np.sqrt(_hessian(nll_lam, [r.estimates["lam"]])[0, 0])
    assert r.stderr["lam"] == pytest.approx(se, rel=1e-4)
    assert r.censored == {"n_events": int(s.sum()), "n_censored": int((s == 0).sum())}


def test_exponential_against_statsmodels_poisson_glm():
    """The censored exponential likelihood is the Poisson GLM of the status with offset log t."""
    sm = pytest.importorskip("statsmodels.api")
    t, s = _right_censored(seed=5)
    glm = sm.GLM(s, np.ones((t.size, 1)), family=sm.families.Poisson(), offset=np.log(t)).fit()
    r = fit_censored("exponential", censored_data(t, s))
    lam = np.exp(glm.params[0])
    assert r.estimates["lam"] == pytest.approx(lam, rel=1e-8)
    # delta method from the GLM's log-rate standard error
    assert r.stderr["lam"] == pytest.approx(lam * glm.bse[0], rel=1e-6)


def test_weibull_fit_against_direct_optimisation():
    t, s = _right_censored(seed=3, n=150, scale=2.0, shape=1.6, censor=4.0)
    r = fit_censored("weibull", censored_data(t, s))

    def nll(z):
        dist = stats.weibull_min(np.exp(z[1]), scale=np.exp(z[0]))
        return -(np.sum(dist.logpdf(t[s == 1])) + np.sum(dist.logsf(t[s == 0])))

    z = _direct(nll, [0.0, 0.0])
    assert r.estimates["lam"] == pytest.approx(np.exp(z[0]), rel=1e-6)
    assert r.estimates["k"] == pytest.approx(np.exp(z[1]), rel=1e-6)

    def nll_theta(v):
        return nll(np.log(v))

    cov = np.linalg.inv(_hessian(nll_theta, [r.estimates["lam"], r.estimates["k"]]))
    assert r.stderr["lam"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-4)
    assert r.stderr["k"] == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-4)
    assert r.information == "observed"


def test_weibull_known_shape_closed_form_fit():
    t, s = _right_censored(seed=8, shape=1.5)
    r = fit_censored("weibull_scale", censored_data(t, s), {"k": 1.5}, timeout=120)  # a loaded machine
    assert r.kind["lam"] == "closed_form"
    assert r.estimates["lam"] == pytest.approx((np.sum(t**1.5) / s.sum()) ** (1 / 1.5), rel=1e-12)


def test_weibull_against_lifelines():
    lifelines = pytest.importorskip("lifelines", reason="lifelines is not installed")
    t, s = _right_censored(seed=3, n=150, scale=2.0, shape=1.6, censor=4.0)
    wf = lifelines.WeibullFitter().fit(t, s)
    r = fit_censored("weibull", censored_data(t, s))
    assert r.estimates["lam"] == pytest.approx(wf.lambda_, rel=1e-4)
    assert r.estimates["k"] == pytest.approx(wf.rho_, rel=1e-4)


def test_quadrature_path_agrees_with_the_closed_form_survival():
    """Without a closed-form S, quadrature of the density and its exact derivatives give the same numbers."""
    t, s = _right_censored(seed=4, shape=1.3)
    d = derive_censored(load_model("weibull"), timeout=20)
    data = censored_data(t, s)
    closed = CensoredLogLikelihood(d, {})
    numeric = CensoredLogLikelihood(replace(d, distribution=Distribution(None, None)), {})
    assert closed.symbolic and not numeric.symbolic
    for theta in ([1.7, 1.2], [2.4, 0.8]):
        v1, g1, h1 = closed(data, theta)
        v2, g2, h2 = numeric(data, theta)
        assert v2 == pytest.approx(v1, rel=1e-10)
        np.testing.assert_allclose(g2, g1, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(h2, h1, rtol=1e-8, atol=1e-8)


def test_gamma_by_quadrature_against_direct_optimisation():
    """The gamma's S(t) has no derivative in the shape that NumPy evaluates: quadrature, end to end."""
    t, s = _right_censored(seed=6, n=40, shape=1.3)
    r = fit_censored("gamma", censored_data(t, s))
    assert any("quadrature" in w for w in r.warnings)

    def nll(z):
        dist = stats.gamma(np.exp(z[0]), scale=np.exp(-z[1]))
        return -(np.sum(dist.logpdf(t[s == 1])) + np.sum(dist.logsf(t[s == 0])))

    z = _direct(nll, [0.0, 0.0])
    assert r.estimates["a"] == pytest.approx(np.exp(z[0]), rel=1e-6)
    assert r.estimates["b"] == pytest.approx(np.exp(z[1]), rel=1e-6)
    assert r.log_likelihood == pytest.approx(-nll(z), rel=1e-10)


def test_interval_censored_normal_against_direct_optimisation():
    rng = np.random.default_rng(21)
    x = rng.normal(1.0, 2.0, 160)
    lo, hi = np.floor(x), np.floor(x) + 1
    lo[:25] = np.nan  # left-censored: below hi
    hi[25:50] = np.nan  # right-censored: above lo
    lo[50:70] = hi[50:70] = x[50:70]  # exact
    r = fit_censored("normal", interval_data(lo, hi))

    def nll(z):
        dist = stats.norm(z[0], np.exp(z[1] / 2))
        exact = lo == hi
        left, right = np.isnan(lo), np.isnan(hi)
        mid = ~exact & ~left & ~right
        return -(
            np.sum(dist.logpdf(lo[exact]))
            + np.sum(dist.logcdf(hi[left]))
            + np.sum(dist.logsf(lo[right]))
            + np.sum(np.log(dist.cdf(hi[mid]) - dist.cdf(lo[mid])))
        )

    z = _direct(nll, [0.0, 0.0])
    assert r.estimates["mu"] == pytest.approx(z[0], rel=1e-6, abs=1e-7)
    assert r.estimates["sigma2"] == pytest.approx(np.exp(z[1]), rel=1e-6)
    assert r.log_likelihood == pytest.approx(-nll(z), rel=1e-9)

    def nll_theta(v):
        return nll([v[0], np.log(v[1])])

    cov = np.linalg.inv(_hessian(nll_theta, [r.estimates["mu"], r.estimates["sigma2"]]))
    assert r.stderr["mu"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-4)
    assert r.stderr["sigma2"] == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-4)
    assert r.censored == {"n_events": 20, "n_censored": 140, "n_right": 25, "n_left": 25, "n_interval": 90}


def test_interval_with_only_right_censoring_equals_the_status_form():
    t, s = _right_censored(seed=9)
    a = fit_censored("exponential", censored_data(t, s))
    b = fit_censored("exponential", interval_data(t, np.where(s == 1, t, np.nan)))
    assert b.estimates["lam"] == pytest.approx(a.estimates["lam"], rel=1e-8)
    assert b.stderr["lam"] == pytest.approx(a.stderr["lam"], rel=1e-6)


# ------------------------------------------------------------------------------------------ input


@pytest.mark.parametrize("bad, shown", [("2", "got 2"), ("0.5", "got 0.5"), ("", "got a missing value")])
def test_bad_status_is_a_one_line_error_naming_the_row(tmp_path, bad, shown):
    path = tmp_path / "times.csv"
    path.write_text(f"t,status\n1.2,1\n0.5,0\n2.0,{bad}\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "symmle",
            "fit",
            "exponential",
            str(path),
            "--column",
            "t",
            "--censored",
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == DataError.exit_code
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "row 3" in proc.stderr and shown in proc.stderr and "status" in proc.stderr


def test_interval_errors():
    with pytest.raises(DataError, match="row 2 .*both ends"):
        interval_data([1.0, np.nan], [2.0, np.nan])
    with pytest.raises(DataError, match="row 1 .*exceeds"):
        interval_data([3.0], [2.0])
    with pytest.raises(DataError, match="no event"):
        censored_data([1.0, 2.0], [0, 0])


def test_fit_json_has_the_censored_counts(tmp_path):
    t, s = _right_censored(seed=2, n=30)
    path = tmp_path / "times.csv"
    path.write_text("t,status\n" + "".join(f"{float(a)!r},{int(b)}\n" for a, b in zip(t, s)))
    out = CliRunner().invoke(
        cli, ["fit", "exponential", str(path), "--column", "t", "--censored", "status", "--json"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["schema"] == 1
    assert doc["censored"] == {"n_events": int(s.sum()), "n_censored": int((s == 0).sum())}
    assert doc["estimates"]["lam"] == pytest.approx(s.sum() / t.sum(), rel=1e-12)
    assert doc["kind"] == {"lam": "closed_form"} and doc["information"] == "observed"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("model", ["exponential", "normal"])
def test_derive_censored_latex_compiles(tmp_path, model):
    out = CliRunner().invoke(cli, ["derive", model, "--censored", "--format", "latex", "--standalone"])
    assert out.exit_code == 0, out.output
    assert r"\log S" in out.stdout
    (tmp_path / "notes.tex").write_text(out.stdout)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "notes.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "notes.pdf").stat().st_size > 0


# ------------------------------------------------------------------------------------------ check


def test_check_with_censoring(tmp_path):
    from symmle.simulate.censored_check import censoring_scale, check_censored

    t = np.random.default_rng(0).exponential(2.0, 50000)
    s = censoring_scale(t, 0.25)
    # exponential lifetimes (rate 1/2) and censoring (rate 1/s): P(C < T) = (1/s) / (1/s + 1/2)
    assert (1 / s) / (1 / s + 0.5) == pytest.approx(0.25, abs=0.01)
    r = check_censored(
        "weibull_scale",
        {"lam": 2.0},
        constants={"k": 1.5},
        censor_rate=0.3,
        n=150,
        reps=80,
        seed=3,
        timeout=120,  # the closed form's integrals take seconds, more on a loaded machine
    )
    p = r.parameters["lam"]
    assert p["kind"] == "closed_form" and r.passed, r.to_text()
    assert r.censored == pytest.approx(0.3, abs=0.03)
    assert p["mean_se"] == pytest.approx(p["sd"], rel=0.25)
    out = CliRunner().invoke(
        cli,
        [
            "check",
            "exponential",
            "--true",
            "lam=0.5",
            "--censor-rate",
            "0.4",
            "--n",
            "100",
            "--reps",
            "60",
            "--seed",
            "2",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["schema"] == 1 and doc["passed"] and doc["censor_rate"] == 0.4
    assert abs(doc["parameters"]["lam"]["bias"]) <= 4 * doc["parameters"]["lam"]["mc_error"]


def test_check_fails_when_censoring_is_ignored():
    """The check has power: the uncensored estimator N / sum(t) on censored data is flagged as biased."""
    from symmle.simulate.censored_check import CensoredCheck

    rng = np.random.default_rng(5)
    naive = []
    for _ in range(100):
        t, c = rng.exponential(2.0, 100), rng.exponential(4.0, 100)
        x = np.minimum(t, c)
        naive.append(x.size / x.sum())
    bias = np.mean(naive) - 0.5
    mc = np.std(naive, ddof=1) / np.sqrt(len(naive))
    assert abs(bias) > 4 * mc  # what check_censored's verdict would reject
    r = CensoredCheck(
        "x",
        100,
        100,
        0,
        0.3,
        0.3,
        {
            "lam": {
                "bias": bias,
                "mc_error": mc,
                "coverage": 0.95,
                "bias_ok": abs(bias) <= 4 * mc,
                "coverage_ok": True,
            }
        },
    )
    assert not r.passed and "exceeds 4 Monte Carlo errors" in r.failures()[0]


# ------------------------------------------------------------------------------------------ compile


@pytest.mark.parametrize(
    "name, constants", [("exponential", {}), ("weibull_scale", {"k": 1.4}), ("weibull", {}), ("normal", {})]
)
def test_compiled_censored_module_agrees_with_fit(tmp_path, name, constants):
    path = tmp_path / f"c_{name}.py"
    out = CliRunner().invoke(cli, ["compile", name, "--censored", "-o", str(path)])
    assert out.exit_code == 0, out.output
    t, s = _right_censored(seed=4, n=150, shape=1.4, censor=4.0)
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "s.npy", s)
    script = (
        "import json, sys, warnings\nimport numpy as np\nsys.path.insert(0, sys.argv[1])\n"
        f"import c_{name} as mod\n"
        "t, s = np.load(sys.argv[2]), np.load(sys.argv[3])\nc = json.loads(sys.argv[4])\n"
        "warnings.simplefilter('ignore')\n"
        "print(json.dumps([mod.estimate(t, s, **c), mod.stderr(t, s, **c)]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path),
            str(tmp_path / "t.npy"),
            str(tmp_path / "s.npy"),
            json.dumps(constants),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},  # no PYTHONPATH: the module runs without symmle
    )
    assert proc.returncode == 0, proc.stderr
    est, se = json.loads(proc.stdout)
    r = fit_censored(name, censored_data(t, s), constants)
    for k in r.estimates:
        assert est[k] == pytest.approx(r.estimates[k], rel=1e-6)
        assert se[k] == pytest.approx(r.stderr[k], rel=1e-5)


def test_compile_censored_without_a_printable_survival_is_refused():
    out = CliRunner().invoke(cli, ["compile", "gamma", "--censored", "-o", "/dev/null"])
    assert out.exit_code == SpecError.exit_code and "no NumPy form" in out.output
