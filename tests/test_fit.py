"""``symmle.fit`` and ``symmle fit``: estimates, standard errors, intervals, JSON, errors.

The numbers are checked against references built in the tests: an optimiser
on ``-sum(log f(x_i))`` from the density (``tools.optimiser_mle``), the
textbook likelihood equations of gamma, beta and Weibull solved to machine
precision, SciPy's log-densities, a finite-difference observed information,
and the truth of large simulated samples.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from scipy import optimize, special, stats

import symmle
from symmle.base.errors import DataError
from symmle.cli import cli
from symmle.model.catalogue import family_names

FAMILIES = family_names("scalar")
N_SAMPLE = 2000
N_LARGE = 10**5
Z95 = 1.959963984540054
FIT_KEYS = {
    "schema",
    "model",
    "n",
    "estimates",
    "kind",
    "stderr",
    "ci95",
    "ci_method",
    "log_likelihood",
    "warnings",
}
NUMERIC = ["gamma", "beta", "weibull"]


def expected_interval(value: float, se: float, domain: str) -> tuple[tuple[float, float], str]:
    """The default 95% interval, written out here: Wald on the log scale of a positive parameter,
    the logit scale of one in (0, 1), the natural scale of a real one (delta method, mapped back)."""
    if domain in ("positive", "nonnegative", "positive_integer") and value > 0:
        w = Z95 * se / value
        return (value * math.exp(-w), value * math.exp(w)), "wald-log"
    if domain == "unit":
        z, w = math.log(value / (1 - value)), Z95 * se / (value * (1 - value))
        return (1 / (1 + math.exp(-(z - w))), 1 / (1 + math.exp(-(z + w)))), "wald-logit"
    return (value - Z95 * se, value + Z95 * se), "wald"


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def boundary_value(model, name: str, data: np.ndarray) -> float | None:
    """The order statistic a parameter that is an end of the support must equal (None otherwise)."""
    sym = model.symbols[name]
    if model.support[1] == sym:
        return float(np.max(data))
    if model.support[0] == sym:
        return float(np.min(data))
    return None


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    return result.stdout


def strict_json(text: str) -> dict:
    """Parse JSON, refusing NaN and Infinity (not JSON)."""

    def refuse(c):
        raise AssertionError(f"non-JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------


def fsum_mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return math.fsum(values.tolist()) / values.size


def gamma_mle(x: np.ndarray) -> dict[str, float]:
    """Shape a and rate b: log(a) - digamma(a) = log(mean x) - mean(log x), b = a/mean x."""
    m, ml = fsum_mean(x), fsum_mean(np.log(x))
    s = math.log(m) - ml

    def eq(la):
        a = math.exp(la)
        return math.log(a) - special.digamma(a) - s

    la = optimize.brentq(eq, -30.0, 30.0, xtol=1e-15, rtol=1e-15, maxiter=500)
    a = math.exp(la)
    return {"a": a, "b": a / m}


def beta_mle(x: np.ndarray) -> dict[str, float]:
    """digamma(a) - digamma(a+b) = mean log x, digamma(b) - digamma(a+b) = mean log(1-x).

    Newton from SciPy's fit.
    """
    g1, g2 = fsum_mean(np.log(x)), fsum_mean(np.log1p(-x))
    a, b, _, _ = stats.beta.fit(x, floc=0, fscale=1)
    theta = np.array([a, b], dtype=float)
    for _ in range(100):
        a, b = theta
        f = np.array(
            [
                special.digamma(a) - special.digamma(a + b) - g1,
                special.digamma(b) - special.digamma(a + b) - g2,
            ]
        )
        t, ta, tb = special.polygamma(1, a + b), special.polygamma(1, a), special.polygamma(1, b)
        J = np.array([[ta - t, -t], [-t, tb - t]])
        step = np.linalg.solve(J, f)
        theta = theta - step
        if np.all(np.abs(step) <= 1e-16 * np.abs(theta)):
            break
    return {"a": float(theta[0]), "b": float(theta[1])}


def weibull_mle(x: np.ndarray) -> dict[str, float]:
    """Shape k: 1/k + mean(log x) = sum(x^k log x)/sum(x^k); scale lam = (mean x^k)^(1/k)."""
    lx = np.log(x)
    top = float(np.max(x))
    ml = fsum_mean(lx)

    def eq(k):
        w = (x / top) ** k
        return 1.0 / k + ml - math.fsum((w * lx).tolist()) / math.fsum(w.tolist())

    k = optimize.brentq(eq, 1e-3, 1e3, xtol=1e-15, rtol=1e-15, maxiter=500)
    lam = top * fsum_mean((x / top) ** k) ** (1.0 / k)
    return {"lam": lam, "k": k}


REFERENCE = {"gamma": gamma_mle, "beta": beta_mle, "weibull": weibull_mle}

SCIPY_LOGPDF = {
    "gamma": lambda x, e: stats.gamma.logpdf(x, e["a"], scale=1 / e["b"]),
    "beta": lambda x, e: stats.beta.logpdf(x, e["a"], e["b"]),
    "weibull": lambda x, e: stats.weibull_min.logpdf(x, e["k"], scale=e["lam"]),
}


def observed_information_se(
    model, data: np.ndarray, estimates: dict[str, float], names: list[str], tools
) -> dict[str, float]:
    """Standard errors from a central finite-difference Hessian of sum(log f(x_i)) built from the density."""
    consts = tools.constant_values(model)
    syms = [q.symbol for q in model.parameters]
    lf = sp.lambdify(
        [model.variable, *syms], tools.log_density_expr(model).subs(consts), modules=tools.MODULES
    )

    def ell(theta):
        with np.errstate(all="ignore"):
            return math.fsum((np.asarray(lf(data, *theta), dtype=float) * np.ones_like(data)).tolist())

    base = [estimates[q.name] for q in model.parameters]
    idx = [[q.name for q in model.parameters].index(n) for n in names]
    h = [1e-4 * max(abs(base[i]), 1e-3) for i in idx]
    H = np.empty((len(idx), len(idx)))
    for a, i in enumerate(idx):
        for b, j in enumerate(idx):

            def at(di, dj, i=i, j=j):
                t = list(base)
                t[i] += di
                t[j] += dj
                return ell(t)

            H[a, b] = (at(h[a], h[b]) - at(h[a], -h[b]) - at(-h[a], h[b]) + at(-h[a], -h[b])) / (
                4 * h[a] * h[b]
            )
    cov = np.linalg.inv(-H)
    return {n: math.sqrt(cov[a, a]) for a, n in enumerate(names)}


# --------------------------------------------------------------------------
# estimates
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_fit_equals_optimiser(name, derivation, families, tools):
    d = derivation(name)
    model = d.model
    data = families.sample(name, N_SAMPLE)
    consts = families.constants(model)
    r = symmle.fit(d, data, consts)
    assert list(r.estimates) == [q.name for q in model.parameters]
    assert r.n == N_SAMPLE and r.model == name
    boundary = [p for p, k in r.kind.items() if k == "boundary"]
    for p in boundary:
        assert r.estimates[p] == boundary_value(model, p, data), (p, r.estimates[p])
    if boundary and len(boundary) < len(model.parameters):
        pytest.skip("the optimiser reference does not handle a mix of boundary and regular parameters")
    if boundary:
        return
    start = tools.perturbed(model.point(), model.parameter_symbols)
    fitted = tools.optimiser_mle(model, data, start)
    for q in model.parameters:
        assert rel(r.estimates[q.name], fitted[q.symbol]) <= 1e-6, (
            q.name,
            r.estimates[q.name],
            fitted[q.symbol],
        )
    # the reported log-likelihood is that of the density at the estimate, and not below the optimiser's
    point = {**tools.constant_values(model), **{q.symbol: r.estimates[q.name] for q in model.parameters}}
    with np.errstate(all="ignore"):
        ll = math.fsum(np.log(tools.density_function(model, point)(data)).tolist())
        ll_opt = math.fsum(np.log(tools.density_function(model, {**point, **fitted})(data)).tolist())
    assert rel(r.log_likelihood, ll) <= 1e-10
    assert r.log_likelihood >= ll_opt - 1e-9 * abs(ll_opt)


@pytest.mark.parametrize("name", FAMILIES)
def test_large_sample_estimates_near_truth(name, derivation, families):
    """10**5 draws at model.point().

    Regular estimates land within 5 standard errors, boundary ones within 20 exact ones.
    """
    d = derivation(name)
    model = d.model
    data = families.sample(name, N_LARGE)
    truth = model.point()
    r = symmle.fit(d, data, families.constants(model))
    for q in model.parameters:
        est, true = r.estimates[q.name], truth[q.symbol]
        if r.kind[q.name] == "boundary":
            # the exact standard deviation of an order statistic: about one spacing
            se = r.stderr[q.name]
            spacing = (float(np.max(data)) - float(np.min(data))) / data.size
            assert se is not None and 0 < se <= 20 * spacing, (q.name, se, spacing)
            assert abs(est - true) <= 20 * se, (q.name, est, true, se)
            assert r.ci95[q.name] is None
        else:
            se = r.stderr[q.name]
            assert se is not None and math.isfinite(se) and se > 0, (q.name, se)
            assert abs(est - true) <= 5 * se, (q.name, est, true, se)
            # and the standard error shrinks like 1/sqrt(n): not absurdly wide
            assert se <= 0.05 * max(abs(true), 1.0), (q.name, se)


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_families_match_tight_reference(name, derivation, families):
    d = derivation(name)
    for n, seed in ((N_SAMPLE, None), (200, 11), (N_LARGE, None)):
        data = families.sample(name, n, seed)
        r = symmle.fit(d, data)
        ref = REFERENCE[name](np.asarray(data))
        assert set(r.kind.values()) == {"numeric"}
        for p, v in ref.items():
            assert rel(r.estimates[p], v) <= 1e-8, (n, p, r.estimates[p], v)
        ll = math.fsum(SCIPY_LOGPDF[name](np.asarray(data), ref).tolist())
        assert rel(r.log_likelihood, ll) <= 1e-10


@pytest.mark.parametrize("name", FAMILIES)
def test_stderr_matches_observed_information(name, derivation, families, tools):
    """Expected-information standard errors agree with a finite-difference observed information (n = 2000)."""
    d = derivation(name)
    model = d.model
    data = families.sample(name, N_SAMPLE)
    r = symmle.fit(d, data, families.constants(model))
    regular = [p for p, k in r.kind.items() if k != "boundary"]
    if not regular:
        assert r.information == ""
        return
    assert r.information in ("expected", "observed")
    se = observed_information_se(model, np.asarray(data), r.estimates, regular, tools)
    for p in regular:
        assert r.stderr[p] is not None
        assert rel(r.stderr[p], se[p]) <= 0.03, (p, r.stderr[p], se[p])


# --------------------------------------------------------------------------
# intervals, JSON, text
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_ci95_json_and_text(name, derivation, families):
    d = derivation(name)
    model = d.model
    data = families.sample(name, N_SAMPLE)
    r = symmle.fit(d, data, families.constants(model))
    wald = symmle.fit(d, data, families.constants(model), ci="wald")
    domains = {q.name: q.domain for q in model.parameters}
    for p, v in r.estimates.items():
        se, ci = r.stderr[p], r.ci95[p]
        if se is None or r.kind[p] == "boundary":
            assert ci is None and wald.ci95[p] is None
            assert r.ci_method[p] is None
        else:
            (lo, hi), how = expected_interval(v, se, domains[p])
            assert r.ci_method[p] == how
            assert ci[0] == pytest.approx(lo, rel=1e-13, abs=1e-300)
            assert ci[1] == pytest.approx(hi, rel=1e-13, abs=1e-300)
            assert ci[0] < v < ci[1]
            assert wald.ci_method[p] == "wald"
            assert wald.ci95[p][0] == pytest.approx(v - Z95 * se, rel=1e-15, abs=1e-300)
            assert wald.ci95[p][1] == pytest.approx(v + Z95 * se, rel=1e-15, abs=1e-300)
    for p, k in r.kind.items():
        if k == "boundary":
            # the exact standard deviation of the order statistic; no Wald interval
            assert r.stderr[p] is not None and r.stderr[p] > 0 and r.ci95[p] is None
            assert any(p in w and "standard error" in w for w in r.warnings), r.warnings
    doc = strict_json(r.to_json())
    assert doc == strict_json(json.dumps(r.to_dict()))
    assert doc["schema"] == 1
    assert FIT_KEYS <= set(doc), FIT_KEYS - set(doc)
    assert doc["model"] == name
    assert doc["n"] == N_SAMPLE
    assert list(doc["estimates"]) == [q.name for q in model.parameters]
    assert doc["estimates"] == r.estimates
    assert doc["kind"] == {p: e.kind for p, e in d.solutions.items()}
    assert doc["stderr"] == r.stderr
    for p in r.estimates:
        if r.ci95[p] is None:
            assert doc["ci95"][p] is None
        else:
            assert doc["ci95"][p] == list(r.ci95[p])
        assert doc["ci_method"][p] == r.ci_method[p]
    assert doc["log_likelihood"] == r.log_likelihood
    assert isinstance(doc["warnings"], list) and all(isinstance(w, str) for w in doc["warnings"])
    text = r.to_text()
    for p, v in r.estimates.items():
        assert p in text and f"{v:.10g}" in text
    assert f"{r.log_likelihood:.10g}" in text


def test_uniform_boundary_stderr_and_warning(families):
    data = families.sample("uniform", N_SAMPLE)
    r = symmle.fit("uniform", data)
    assert r.kind == {"theta": "boundary"}
    assert r.estimates["theta"] == float(np.max(data))
    n, theta = len(data), r.estimates["theta"]
    # sd of the maximum of n U(0, theta) draws, at the estimate
    assert r.stderr["theta"] == pytest.approx(theta * math.sqrt(n / ((n + 1) ** 2 * (n + 2))), rel=1e-8)
    assert r.ci95 == {"theta": None}
    assert any("theta" in w for w in r.warnings)
    doc = strict_json(r.to_json())
    assert doc["stderr"] == {"theta": r.stderr["theta"]} and doc["ci95"] == {"theta": None}


# --------------------------------------------------------------------------
# an MLE that does not exist is an error
# --------------------------------------------------------------------------

NO_MLE = [
    ("bernoulli", np.zeros(20), {}),
    ("bernoulli", np.ones(20), {}),
    ("binomial", np.full(5, 6.0), {"n": 6}),
    ("poisson", np.zeros(10), {}),
    ("geometric", np.ones(10), {}),
    ("exponential", np.zeros(10), {}),
    ("normal", np.full(10, 2.5), {}),
    ("normal", np.array([1.0]), {}),
    ("lognormal", np.full(10, 2.5), {}),
    ("inverse_gaussian", np.full(10, 2.5), {}),
    ("gamma", np.full(10, 2.5), {}),
    ("gamma", np.array([2.5]), {}),
    ("weibull", np.full(10, 2.5), {}),
    ("beta", np.full(3, 0.3), {}),
    # ten copies of 0.3 used to end in an OverflowError from the coordinate transform (fixed in b102c5d)
    ("beta", np.full(10, 0.3), {}),
    ("beta", np.full(10, 0.5), {}),
    ("uniform", np.zeros(3), {}),
]


@pytest.mark.parametrize("name,data,consts", NO_MLE, ids=[f"{c[0]}-{len(c[1])}x{c[1][0]:g}" for c in NO_MLE])
def test_no_mle_is_a_data_error(name, data, consts):
    with pytest.raises(DataError) as info:
        symmle.fit(name, data, consts)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,text,param", [("bernoulli", "0\n0\n0\n0\n", "p"), ("beta", "0.3\n" * 10, "a")])
def test_no_mle_on_the_command_line(tmp_path, name, text, param):
    path = tmp_path / "data.txt"
    path.write_text(text)
    result = run("fit", name, path)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: ") and param in lines[0], lines
    assert "internal error" not in lines[0]
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------


def write_txt(path, values):
    path.write_text("\n".join(repr(float(v)) for v in values) + "\n")
    return path


def test_cli_normal_csv_column(tmp_path, families):
    data = np.asarray(families.sample("normal", N_SAMPLE))
    path = tmp_path / "data.csv"
    path.write_text("id,height\n" + "".join(f"{i + 1},{v!r}\n" for i, v in enumerate(data.tolist())))
    out = ok(run("fit", "normal", path, "--column", "height"))
    assert "mu" in out and "sigma2" in out
    doc = strict_json(ok(run("fit", "normal", path, "--column", "height", "--json")))
    assert doc["schema"] == 1 and doc["n"] == N_SAMPLE
    mean = fsum_mean(data)
    var = math.fsum(((data - mean) ** 2).tolist()) / data.size
    assert rel(doc["estimates"]["mu"], mean) <= 1e-12
    assert rel(doc["estimates"]["sigma2"], var) <= 1e-12
    # the id column is not the data: by index, column 2 is the same
    doc2 = strict_json(ok(run("fit", "normal", path, "--column", "2", "--json")))
    assert doc2["estimates"] == doc["estimates"]


def test_cli_gamma_npy_json(tmp_path, families):
    data = np.asarray(families.sample("gamma", N_SAMPLE))
    np.save(tmp_path / "samples.npy", data)
    doc = strict_json(ok(run("fit", "gamma", tmp_path / "samples.npy", "--json")))
    assert doc["schema"] == 1
    assert FIT_KEYS <= set(doc)
    assert doc["kind"] == {"a": "numeric", "b": "numeric"}
    ref = gamma_mle(data)
    wald = strict_json(ok(run("fit", "gamma", tmp_path / "samples.npy", "--json", "--ci", "wald")))
    for p, v in ref.items():
        assert rel(doc["estimates"][p], v) <= 1e-8
        (lo, hi), how = expected_interval(doc["estimates"][p], doc["stderr"][p], "positive")
        assert doc["ci_method"][p] == how == "wald-log"
        assert doc["ci95"][p] == pytest.approx([lo, hi], rel=1e-13)
        assert wald["ci_method"][p] == "wald"
        assert wald["ci95"][p][0] == pytest.approx(doc["estimates"][p] - Z95 * doc["stderr"][p], rel=1e-14)
        assert wald["ci95"][p][1] == pytest.approx(doc["estimates"][p] + Z95 * doc["stderr"][p], rel=1e-14)


def test_cli_uniform_txt(tmp_path, families):
    data = np.asarray(families.sample("uniform", N_SAMPLE))
    path = write_txt(tmp_path / "x.txt", data)
    out = ok(run("fit", "uniform", path))
    assert "theta" in out and "boundary" in out
    doc = strict_json(ok(run("fit", "uniform", path, "--json")))
    assert doc["estimates"]["theta"] == float(np.max(data))
    assert doc["stderr"]["theta"] > 0 and doc["ci95"] == {"theta": None}
    assert doc["warnings"]


def test_cli_weibull_scale_known_shape(tmp_path, families):
    data = 1.7 * np.random.default_rng(5).weibull(1.5, N_SAMPLE)
    np.save(tmp_path / "x.npy", data)
    doc = strict_json(ok(run("fit", "weibull_scale", tmp_path / "x.npy", "--const", "k=1.5", "--json")))
    assert rel(doc["estimates"]["lam"], fsum_mean(data**1.5) ** (1 / 1.5)) <= 1e-12


def test_cli_inline_weibull_numeric(tmp_path, derivation):
    truth = {"k": 2.2, "lam": 1.7}
    data = truth["lam"] * np.random.default_rng(17).weibull(truth["k"], 3000)
    np.save(tmp_path / "data.npy", data)
    doc = strict_json(
        ok(
            run(
                "fit",
                "--pdf",
                "k/lam*(x/lam)**(k-1)*exp(-(x/lam)**k)",
                "--var",
                "x",
                "--support",
                "0,oo",
                "--param",
                "k:positive",
                "--param",
                "lam:positive",
                tmp_path / "data.npy",
                "--json",
            )
        )
    )
    assert list(doc["estimates"]) == ["k", "lam"]
    assert doc["kind"] == {"k": "numeric", "lam": "numeric"}
    ref = weibull_mle(data)
    for p, v in truth.items():
        assert rel(doc["estimates"][p], ref[p]) <= 1e-8
        assert abs(doc["estimates"][p] - v) <= 5 * doc["stderr"][p]
    catalogue = symmle.fit(derivation("weibull"), data)
    for p in truth:
        assert rel(doc["estimates"][p], catalogue.estimates[p]) <= 1e-8


def test_cli_inline_boundary(tmp_path):
    data = 2.0 * np.random.default_rng(23).uniform(size=3000) ** (1 / 3)
    np.save(tmp_path / "x.npy", data)
    doc = strict_json(
        ok(
            run(
                "fit",
                "--pdf",
                "3*x**2/theta**3",
                "--var",
                "x",
                "--support",
                "0,theta",
                "--param",
                "theta:positive",
                tmp_path / "x.npy",
                "--json",
            )
        )
    )
    assert doc["estimates"]["theta"] == float(np.max(data))
    assert doc["kind"] == {"theta": "boundary"}
    # M/theta ~ Beta(3n, 1) at the estimate
    a, theta = 3 * data.size, doc["estimates"]["theta"]
    assert doc["stderr"]["theta"] == pytest.approx(theta * math.sqrt(a / ((a + 1) ** 2 * (a + 2))), rel=1e-8)


def test_cli_stdin():
    doc = strict_json(ok(run("fit", "poisson", "-", "--json", input="1\n3\n2\n2\n")))
    assert doc["estimates"] == {"lam": 2.0}
    assert doc["n"] == 4
    doc = strict_json(
        ok(
            run(
                "fit", "normal", "-", "--column", "height", "--json", input="id,height\n1,1.5\n2,2.5\n3,3.5\n"
            )
        )
    )
    assert doc["estimates"]["mu"] == pytest.approx(2.5, rel=1e-15)
    assert doc["estimates"]["sigma2"] == pytest.approx(2 / 3, rel=1e-14)
