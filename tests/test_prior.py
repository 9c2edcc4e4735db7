"""MAP with priors: the prior modifier, conjugate posteriors, numeric MAP, fit, CLI, errors.

The textbook formulas are written here by hand and compared symbolically with what symmle
derives; the non-conjugate MAP and the fits are compared with SciPy maximising a log-posterior
built in the test from ``scipy.stats``.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from scipy import optimize, stats

import symmle
from symmle.base.errors import SpecError
from symmle.cli import cli
from symmle.model.build import load_model


def stat(d, g):
    """The statistic symbol of ``d`` whose summand is ``g`` (in the model's variable)."""
    (found,) = [s.symbol for s in d.likelihood.statistics if sp.simplify(s.expr - g) == 0]
    return found


def same(a, b) -> bool:
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


def posterior_of(d):
    p = d.prior.posterior
    return p.family, dict(p.parameters)


# --------------------------------------------------------------------------------------------------
# conjugate priors: the MAP and the posterior family by hand
# --------------------------------------------------------------------------------------------------


def test_beta_bernoulli():
    a, b = 3, 5
    d = symmle.derive("bernoulli", prior={"p": f"beta(a={a}, b={b})"})
    N, T1 = d.likelihood.N, stat(d, d.model.variable)
    e = d.solutions["p"]
    assert e.kind == "closed_form" and e.verified
    assert same(e.expr, (T1 + a - 1) / (N + a + b - 2))
    family, params = posterior_of(d)
    assert family == "beta"
    assert same(params["a"], T1 + a) and same(params["b"], N - T1 + b)
    # the MLE beside it is untouched
    assert same(d.prior.mle.solutions["p"].expr, T1 / N)
    assert same(d.log_likelihood, d.prior.mle.log_likelihood)


def test_gamma_poisson():
    a, b = 3, 2
    d = symmle.derive("poisson", prior={"lam": f"gamma(a={a}, b={b})"})
    N, T1 = d.likelihood.N, stat(d, d.model.variable)
    assert same(d.estimators["lam"], (T1 + a - 1) / (N + b))
    family, params = posterior_of(d)
    assert family == "gamma" and same(params["a"], T1 + a) and same(params["b"], N + b)


def test_normal_normal_with_clashing_names():
    """A normal prior on a normal model's mu: the prior's own mu and sigma2 are its numbers."""
    m0, s0 = 1, 4
    m = load_model("normal_mean").with_constants({"sigma2": "2"})
    d = symmle.derive(m, prior=[f"mu ~ normal(mu={m0}, sigma2={s0})"])
    sigma2 = d.model.constant_symbols[0]  # its value (2) is for the numerical checks; it stays symbolic
    N, T1 = d.likelihood.N, stat(d, d.model.variable)
    mu = d.model.parameter_symbols[0]
    assert d.model.prior[0].density.free_symbols == {mu}
    precision = N / sigma2 + sp.Rational(1, s0)
    assert same(d.estimators["mu"], (T1 / sigma2 + sp.Rational(m0, s0)) / precision)
    family, params = posterior_of(d)
    assert family == "normal"
    assert same(params["mu"], (T1 / sigma2 + sp.Rational(m0, s0)) / precision)
    assert same(params["sigma2"], 1 / precision)


def test_normal_normal_symbolic_known_variance():
    d = symmle.derive("normal_mean", prior={"mu": "normal(mu=0, sigma2=10)"})
    N, T1 = d.likelihood.N, stat(d, d.model.variable)
    sigma2 = d.model.constant_symbols[0]
    assert same(d.estimators["mu"], T1 / (N + sigma2 / 10))


def test_inverse_gamma_on_a_normal_variance():
    a, b = 3, 2
    d = symmle.derive("normal_variance", prior={"sigma2": f"inverse_gamma_scale(a={a}, b={b})"})
    mu = d.model.constant_symbols[0]
    S = stat(d, (d.model.variable - mu) ** 2)
    N = d.likelihood.N
    # by hand: the log-posterior -(N/2 + a + 1) log s - (S/2 + b)/s has its maximum at
    # s = (S/2 + b)/(N/2 + a + 1) = (S + 2b)/(N + 2a + 2)
    assert same(d.estimators["sigma2"], (S + 2 * b) / (N + 2 * a + 2))
    family, params = posterior_of(d)
    assert family == "inverse_gamma_scale"
    assert same(params["a"], N / 2 + a) and same(params["b"], S / 2 + b)


# --------------------------------------------------------------------------------------------------
# non-conjugate priors: numeric MAP against SciPy
# --------------------------------------------------------------------------------------------------


def scipy_map(logpost, start):
    r = optimize.minimize_scalar(
        lambda t: -logpost(np.exp(t)), bracket=(np.log(start) - 1, np.log(start) + 1), tol=1e-12
    )
    return float(np.exp(r.x))


def test_lognormal_prior_on_poisson_has_no_conjugate_and_matches_scipy():
    d = symmle.derive("poisson", prior={"lam": "lognormal(mu=0.5, sigma2=2)"})
    assert d.prior.posterior is None
    est = d.compile()
    x = np.random.default_rng(3).poisson(2.5, 30)

    def logpost(lam):
        return stats.poisson.logpmf(x, lam).sum() + stats.lognorm.logpdf(lam, s=np.sqrt(2), scale=np.exp(0.5))

    assert est(x)["lam"] == pytest.approx(scipy_map(logpost, x.mean()), rel=1e-7)


def test_inline_prior_pdf_numeric_map_matches_scipy():
    d = symmle.derive("exponential", prior_pdf="exp(-(log(lam))**2/2)/lam*(1 + lam**3)")
    assert d.solutions["lam"].kind == "numeric"
    assert d.prior.posterior is None
    x = np.random.default_rng(5).exponential(0.7, 25)

    def logpost(lam):
        return (
            stats.expon.logpdf(x, scale=1 / lam).sum() - np.log(lam) ** 2 / 2 - np.log(lam) + np.log1p(lam**3)
        )

    assert d.compile()(x)["lam"] == pytest.approx(scipy_map(logpost, 1 / x.mean()), rel=1e-7)


def test_fit_with_prior_matches_scipy_and_reports_posterior_curvature():
    x = np.random.default_rng(11).poisson(3.0, 40)
    r = symmle.fit("poisson", x, prior={"lam": "gamma(a=2, b=1)"})
    assert r.estimator == "map"

    def logpost(lam):
        return stats.poisson.logpmf(x, lam).sum() + stats.gamma.logpdf(lam, a=2, scale=1)

    lam = scipy_map(logpost, x.mean())
    assert r.estimates["lam"] == pytest.approx(lam, rel=1e-8)
    h = 1e-4 * lam
    curvature = -(logpost(lam + h) - 2 * logpost(lam) + logpost(lam - h)) / h**2
    assert r.stderr["lam"] == pytest.approx(1 / np.sqrt(curvature), rel=1e-5)
    doc = r.to_dict()
    assert doc["estimator"] == "map" and doc["prior"][0]["family"] == "gamma"
    assert doc["log_posterior"] == pytest.approx(
        logpost(lam) - stats.gamma.logpdf(lam, 2) + np.log(lam) - lam
    )
    assert "curvature of the log-posterior" in r.to_text()
    # without a prior it is the MLE
    assert symmle.fit("poisson", x).estimates["lam"] == pytest.approx(x.mean())


def test_flat_prior_on_the_other_parameter():
    d = symmle.derive("normal", prior={"mu": "normal(mu=0, sigma2=100)"}, timeout=4)
    x = np.random.default_rng(2).normal(3.0, 1.5, 20)
    got = d.compile()(x)

    def nlp(v):
        mu, s2 = v[0], np.exp(v[1])
        return -(stats.norm.logpdf(x, mu, np.sqrt(s2)).sum() + stats.norm.logpdf(mu, 0, 10))

    r = optimize.minimize(
        nlp, [x.mean(), np.log(x.var())], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
    )
    assert got["mu"] == pytest.approx(r.x[0], rel=1e-6)
    assert got["sigma2"] == pytest.approx(np.exp(r.x[1]), rel=1e-6)


# --------------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------------


def test_latex_shows_mle_and_map_and_compiles(tmp_path):
    d = symmle.derive("bernoulli", prior={"p": "beta(a=2, b=2)"})
    tex = d.to_latex(standalone=True)
    assert r"\hat{p}_{\mathrm{MLE}}" in tex and r"\hat{p}_{\mathrm{MAP}}" in tex
    md = d.to_markdown()
    assert "side by side" in md and r"\hat{p}_{\mathrm{MAP}}" in md
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("pdflatex is not installed")
    (tmp_path / "map.tex").write_text(tex, encoding="utf-8")
    for _ in range(2):
        run = subprocess.run(
            [engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "map.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "map.log").read_text(encoding="latin-1")
    assert "Undefined control sequence" not in log and "undefined" not in log.lower().split("warning")[-1]


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def test_cli_derive_text_and_json():
    r = run("derive", "bernoulli", "--prior", "p ~ beta(a=2, b=2)")
    assert r.exit_code == 0, r.output
    assert "p_MAP = (T1 + 1)/(N + 2)" in r.output and "p_MLE = T1/N" in r.output
    r = run("derive", "bernoulli", "--prior", "p ~ beta(a=2, b=2)", "--format", "json")
    doc = json.loads(r.output)
    assert doc["schema"] == 1 and doc["estimator"] == "map"
    names = {"N": sp.Symbol("N"), "T1": sp.Symbol("T1")}
    assert same(
        sp.sympify(doc["estimators"]["p"]["expr"], locals=names), (names["T1"] + 1) / (names["N"] + 2)
    )
    assert doc["posterior"]["family"] == "beta"
    assert same(sp.sympify(doc["posterior"]["parameters"]["a"], locals=names), names["T1"] + 2)
    assert doc["mle"]["p"]["expr"] == "T1/N"
    r = run("derive", "exponential", "--prior-pdf", "exp(-lam)", "--format", "json")
    doc = json.loads(r.output)
    assert doc["posterior"]["family"] == "gamma"


def test_cli_fit_json(tmp_path):
    path = tmp_path / "counts.txt"
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    path.write_text("\n".join(map(str, x)) + "\n")
    r = run("fit", "poisson", str(path), "--prior", "lam ~ gamma(a=2, b=1)", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["estimator"] == "map" and doc["estimates"]["lam"] == pytest.approx(
        (x.sum() + 1) / (len(x) + 1)
    )
    r = run("fit", "poisson", str(path), "--prior", "lam ~ gamma(a=2, b=1)")
    assert "maximum a posteriori (MAP) fit" in r.output


def test_cache_keeps_map_and_mle_apart():
    plain = symmle.derive("poisson", cache=True)
    with_prior = symmle.derive("poisson", prior={"lam": "gamma(a=2, b=1)"}, cache=True)
    again = symmle.derive("poisson", cache=True)
    N, T1 = plain.likelihood.N, stat(plain, plain.model.variable)
    assert same(plain.estimators["lam"], T1 / N) and same(again.estimators["lam"], T1 / N)
    assert same(with_prior.estimators["lam"], (T1 + 1) / (N + 1))


# --------------------------------------------------------------------------------------------------
# bad input: one line, never a traceback
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["poisson", "--prior", "lam ~ nosuch(a=1)"], "unknown prior family"),
        (["poisson", "--prior", "lam ~ gamma(a=2, c=1)"], "has no parameter 'c'"),
        (["poisson", "--prior", "lam ~ gamma(a=2)"], "needs a value for b"),
        (["poisson", "--prior", "lam ~ gamma(a=-2, b=1)"], "not in its domain"),
        (["poisson", "--prior", "mu ~ normal(mu=0, sigma2=1)"], "not a parameter"),
        (["poisson", "--prior", "lam ~ beta(a=2, b=2)"], "does not cover the domain of lam"),
        (["poisson", "--prior", "lam ~ gamma(a=__import__('os'), b=1)"], "unknown function"),
        (["poisson", "--prior-pdf", "__import__('os').system('true')"], "not allowed"),
        (["poisson", "--prior", "lam gamma(a=1, b=1)"], "PARAM ~ FAMILY"),
        (
            ["poisson", "--prior", "lam ~ gamma(a=1, b=1)", "--prior", "lam ~ gamma(a=2, b=1)"],
            "more than one prior",
        ),
        (["poisson", "--prior-pdf", "log(lam) - lam"], "not positive"),
        (["poisson", "--prior", "lam ~ poisson(lam=2)"], "continuous family"),
    ],
)
def test_errors_are_one_line(args, needle):
    r = run("derive", *args)
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.output


def test_library_error_is_a_spec_error():
    with pytest.raises(SpecError, match="does not cover"):
        symmle.derive("exponential", prior={"lam": "beta(a=1, b=1)"})


def test_compile_with_prior_writes_a_map_module(tmp_path):
    out = tmp_path / "gp.py"
    r = run("compile", "poisson", "-o", str(out), "--prior", "lam ~ gamma(a=2, b=1)")
    assert r.exit_code == 0, r.output
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)  # the module symmle wrote
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    assert namespace["estimate"](x)["lam"] == pytest.approx((x.sum() + 1) / (len(x) + 1))
    assert "maximum a posteriori" in namespace["__doc__"]


def test_two_priors_one_per_parameter_match_scipy():
    d = symmle.derive(
        "normal",
        prior=["mu ~ normal(mu=0, sigma2=100)", "sigma2 ~ inverse_gamma_scale(a=3, b=2)"],
        timeout=4,
    )
    x = np.random.default_rng(2).normal(3.0, 1.5, 20)
    got = d.compile()(x)

    def nlp(v):
        mu, s2 = v[0], np.exp(v[1])
        return -(
            stats.norm.logpdf(x, mu, np.sqrt(s2)).sum()
            + stats.norm.logpdf(mu, 0, 10)
            + stats.invgamma.logpdf(s2, a=3, scale=2)
        )

    r = optimize.minimize(
        nlp, [x.mean(), np.log(x.var())], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
    )
    assert got["mu"] == pytest.approx(r.x[0], rel=1e-6)
    assert got["sigma2"] == pytest.approx(np.exp(r.x[1]), rel=1e-6)
