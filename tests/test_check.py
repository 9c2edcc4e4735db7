"""``symmle.check`` and ``symmle check``: simulation checks.

They pass for right estimators and fail for wrong ones.

Every family of the catalogue must pass at modest n and replicates with a
fixed seed.  Then the check is shown able to fail: a wrong estimator
injected through the API (a variance divided by N+1, a scale off by a
factor, an inconsistent mean, an unbiased order statistic instead of the
MLE), a wrong Fisher information, and a declared sampler that does not
match the density each fail the check meant to catch them.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.base.errors import SpecError, VerificationError
from symmle.cli import cli
from symmle.model.build import model_from_dict
from symmle.model.catalogue import family_names
from symmle.simulate import simulation, verdicts
from symmle.simulate.check import check, parse_assignments
from symmle.simulate.results import CheckResult

SEED = 20261124
N, REPS, AGREE = 400, 300, 5
LINDLEY = [
    "--pdf",
    "th**2/(1+th)*(1+x)*exp(-th*x)",
    "--var",
    "x",
    "--support",
    "0,oo",
    "--param",
    "th:positive",
]
PARAM_KEYS = {
    "kind",
    "true",
    "mean",
    "bias",
    "bias_mc_error",
    "variance",
    "crlb",
    "efficiency",
    "coverage",
    "agreement",
    "consistency",
    "checks",
    "verdict",
}
CHECKS = {"bias", "efficiency", "coverage", "agreement", "consistency"}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def strict_json(text: str) -> dict:
    """Parse JSON, refusing NaN and Infinity (not JSON)."""

    def refuse(c):
        raise AssertionError(f"non-JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


def truth(model) -> dict[str, float]:
    """The parameters' values at ``model.point()``, by name."""
    point = model.point()
    return {q.name: point[q.symbol] for q in model.parameters}


def with_estimator(d, name: str, change):
    """A copy of derivation ``d`` whose estimator of ``name`` is ``change(expr)``."""
    st = d.stationarity
    est = dict(st.estimators)
    est[name] = dataclasses.replace(est[name], expr=change(est[name].expr))
    return dataclasses.replace(d, stationarity=dataclasses.replace(st, estimators=est))


def failed(result: CheckResult) -> set[tuple[str, str]]:
    return {(name, c) for name, p in result.parameters.items() for c in p.failures()}


# --------------------------------------------------------------------------
# the catalogue passes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", family_names("scalar"))
def test_catalogue_passes(name, derivation, families):
    d = derivation(name)
    r = check(
        d, truth(d.model), constants=families.constants(d.model), n=N, reps=REPS, seed=SEED, agree=AGREE
    )
    assert r.passed, r.to_text()
    assert r.without_mle == 0
    for q in d.model.parameters:
        p = r.parameters[q.name]
        assert set(p.checks) == CHECKS
        assert p.checks["bias"].passed and p.checks["consistency"].passed
        assert p.checks["agreement"].passed, p.checks["agreement"]
        if p.kind == "boundary":
            assert (
                p.crlb is None
                and p.checks["efficiency"].passed is None
                and p.checks["coverage"].passed is None
            )
            assert p.expected_slope == -1.0
        else:
            assert p.checks["efficiency"].passed and p.checks["coverage"].passed
            assert p.agreement is not None and p.agreement <= verdicts.AGREE_RTOL
            assert p.agreement_rows == AGREE


def test_result_is_reproducible_and_block_size_free(derivation, monkeypatch):
    """Same seed, same numbers, whether the replicates are drawn in one block or in many."""
    d = derivation("normal")
    one = check(d, {"mu": 3, "sigma2": 4}, n=200, reps=100, seed=5, agree=0)
    again = check(d, {"mu": 3, "sigma2": 4}, n=200, reps=100, seed=5, agree=0)
    monkeypatch.setattr(simulation, "BLOCK_BYTES", 8 * 200 * 7)  # 7 replicates per block
    blocks = check(d, {"mu": 3, "sigma2": 4}, n=200, reps=100, seed=5, agree=0)
    for k in ("mu", "sigma2"):
        np.testing.assert_array_equal(one.estimates[k], again.estimates[k])
        np.testing.assert_array_equal(one.estimates[k], blocks.estimates[k])
    assert one.to_dict()["parameters"] == blocks.to_dict()["parameters"]


def test_fresh_seed_is_recorded_and_repeats_the_run(derivation):
    d = derivation("poisson")
    first = check(d, {"lam": 2}, n=50, reps=30, agree=0)
    again = check(d, {"lam": 2}, n=50, reps=30, agree=0, seed=first.seed)
    np.testing.assert_array_equal(first.estimates["lam"], again.estimates["lam"])
    assert strict_json(first.to_json())["seed"] == first.seed


def test_inline_model_uses_the_generic_sampler():
    m = symmle.inline_model("th**2/(1+th)*(1+x)*exp(-th*x)", "x", "0,oo", ["th:positive"])
    r = symmle.check(m, {"th": "7/10"}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert r.sampler == "generic"
    assert r.passed, r.to_text()


def test_boundary_and_regular_parameters_together():
    """Shifted exponential: the location is the sample minimum, the rate is optimised with it fixed."""
    m = symmle.inline_model("lam*exp(-lam*(x-a))", "x", "a,oo", ["a:real", "lam:positive"])
    r = check(m, {"a": 1.5, "lam": 2}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert r.passed, r.to_text()
    assert r.parameters["a"].kind == "boundary" and r.parameters["a"].checks["agreement"].passed
    assert (
        r.parameters["lam"].checks["agreement"].passed
        and r.parameters["lam"].agreement <= verdicts.AGREE_RTOL
    )


def test_declared_and_generic_samplers_agree(derivation):
    d = derivation("gamma_rate")
    r = check(
        d, {"b": 1.7}, constants={"a": 2.2}, n=N, reps=REPS, seed=SEED, agree=AGREE, generic_sampler=True
    )
    assert r.sampler == "generic" and r.passed, r.to_text()


# --------------------------------------------------------------------------
# the check can fail
# --------------------------------------------------------------------------


def test_variance_over_n_plus_one_fails_agreement(derivation):
    """An O(1/N) error hides in the Monte Carlo noise of the bias, but not from the optimiser."""
    d = derivation("normal")
    N_ = d.likelihood.N
    wrong = with_estimator(d, "sigma2", lambda e: e * N_ / (N_ + 1))
    r = check(wrong, {"mu": 3, "sigma2": 4}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert not r.passed
    assert ("sigma2", "agreement") in failed(r)
    assert r.parameters["mu"].passed
    worst = r.parameters["sigma2"].agreement
    assert worst == pytest.approx(1 / (N + 1), rel=1e-6)
    # the same estimator, with the right one beside it, passes
    assert check(d, {"mu": 3, "sigma2": 4}, n=N, reps=REPS, seed=SEED, agree=AGREE).passed


def test_biased_estimator_fails_bias(derivation):
    d = derivation("normal")
    wrong = with_estimator(d, "sigma2", lambda e: e * sp.Rational(11, 10))
    r = check(wrong, {"mu": 3, "sigma2": 4}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert {("sigma2", "bias"), ("sigma2", "agreement")} <= failed(r)
    assert not r.passed and "FAIL" in r.to_text()


def test_inconsistent_estimator_fails_bias_and_consistency(derivation):
    d = derivation("normal")
    wrong = with_estimator(d, "mu", lambda e: e + sp.Rational(1, 2))
    r = check(wrong, {"mu": 3, "sigma2": 4}, n=2000, reps=REPS, seed=SEED, agree=0)
    assert {("mu", "bias"), ("mu", "consistency")} <= failed(r)
    assert r.parameters["mu"].slope > -0.3


def test_unbiased_order_statistic_is_not_the_mle(derivation):
    """(N+1)/N * max(x) is unbiased, but it is not where the likelihood is largest."""
    d = derivation("uniform")
    N_ = d.likelihood.N
    wrong = with_estimator(d, "theta", lambda e: e * (N_ + 1) / N_)
    r = check(wrong, {"theta": 2}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert ("theta", "agreement") in failed(r)
    assert "not on the data's edge" in r.parameters["theta"].checks["agreement"].note


def test_wrong_fisher_information_fails_efficiency(derivation):
    d = derivation("normal")
    info = d.information
    doubled = dataclasses.replace(info, fisher=2 * info.fisher, crlb=info.crlb / 2)
    wrong = dataclasses.replace(d, information=doubled)
    r = check(wrong, {"mu": 3, "sigma2": 4}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert {("mu", "efficiency"), ("sigma2", "efficiency")} <= failed(r)
    # the intervals are too narrow by sqrt(2): coverage near P(|Z| < 1.96/sqrt(2)) = 0.83
    assert {("mu", "coverage"), ("sigma2", "coverage")} <= failed(r)
    assert r.parameters["mu"].efficiency == pytest.approx(0.5, abs=0.1)
    assert all(p.checks["bias"].passed and p.checks["agreement"].passed for p in r.parameters.values())


def test_sampler_that_does_not_match_the_density_fails():
    """A [sampler] with scale lam instead of 1/lam: the estimates converge to the wrong value."""
    m = model_from_dict(
        {
            "name": "bad_exponential",
            "variable": "x",
            "support": ["0", "oo"],
            "density": "lam*exp(-lam*x)",
            "parameters": {"lam": "positive"},
            "sampler": {"method": "exponential", "args": {"scale": "lam"}},
        }
    )
    r = check(m, {"lam": 2}, n=N, reps=REPS, seed=SEED, agree=AGREE)
    assert {("lam", "bias"), ("lam", "efficiency")} <= failed(r)
    assert r.parameters["lam"].checks["agreement"].passed  # the estimator itself is right
    assert r.parameters["lam"].mean == pytest.approx(0.5, rel=0.05)
    good = check(m, {"lam": 2}, n=N, reps=REPS, seed=SEED, agree=AGREE, generic_sampler=True)
    assert good.passed, good.to_text()


def test_mle_that_rarely_exists_fails(derivation):
    """Bernoulli p = 0.02 at n = 20: two samples in three are all zeros, whose MLE 0 is outside (0, 1)."""
    r = check(derivation("bernoulli"), {"p": 0.02}, n=20, reps=200, seed=SEED, agree=2)
    assert r.existence.passed is False and not r.passed
    assert r.without_mle == pytest.approx(200 * 0.98**20, rel=0.2)
    assert "estimates: MLE not found too often" in r.failures()
    assert "FAIL estimates" in r.to_text()


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------


def test_sizes(derivation):
    r = check(derivation("exponential"), {"lam": 2}, n=200, reps=50, seed=1, agree=0, sizes=[50, 100])
    assert r.sizes == (50, 100, 200) and r.parameters["lam"].sizes == (50, 100, 200)
    assert len(r.parameters["lam"].rmse) == 3
    with pytest.raises(SpecError, match="at least 2"):
        check(derivation("exponential"), {"lam": 2}, n=200, reps=50, sizes=[1])


def test_parse_assignments():
    assert parse_assignments("mu=3, sigma2=4") == {"mu": "3", "sigma2": "4"}
    assert parse_assignments(["a=Max(1, 2)", "b=sqrt(2)"]) == {"a": "Max(1, 2)", "b": "sqrt(2)"}
    for bad in ("mu", "mu=", "=3", "mu=1,mu=2"):
        with pytest.raises(SpecError):
            parse_assignments(bad)


@pytest.mark.parametrize(
    "true, constants, message",
    [
        ({"mu": 3}, None, "missing true value of parameter 'sigma2'"),
        ({"mu": 3, "sigma2": 4, "tau": 1}, None, "unknown parameter 'tau'"),
        ({"mu": 3, "sigma2": -4}, None, "not in its domain 'positive'"),
        ({"mu": "3*x", "sigma2": 4}, None, "true value of mu"),
        ({"mu": 3, "sigma2": 4}, {"k": 2}, "unknown constant 'k'"),
    ],
)
def test_bad_values_are_spec_errors(true, constants, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        check("normal", true, constants=constants, n=10, reps=10)


def test_missing_constant_is_a_spec_error():
    with pytest.raises(SpecError, match="missing value for constant 'k'"):
        check("weibull_scale", {"lam": 2}, n=10, reps=10)


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------


def test_json_document(derivation):
    d = derivation("gamma")
    r = check(d, {"a": 2.5, "b": 1.5}, n=200, reps=100, seed=SEED, agree=3)
    doc = strict_json(r.to_json())
    assert doc["schema"] == 1
    assert doc["model"] == "gamma" and doc["n"] == 200 and doc["reps"] == 100 and doc["seed"] == SEED
    assert doc["true"] == {"a": 2.5, "b": 1.5} and doc["sampler"] == "declared"
    assert set(doc["parameters"]) == {"a", "b"}
    for p in doc["parameters"].values():
        assert set(p) == PARAM_KEYS
        assert p["kind"] == "numeric" and p["verdict"] in ("pass", "fail")
        assert set(p["checks"]) == CHECKS
        assert p["bias"] == pytest.approx(p["mean"] - p["true"])
        assert p["efficiency"] == pytest.approx(p["crlb"] / p["variance"])
        assert 0 <= p["coverage"] <= 1
        assert p["consistency"]["sizes"] == doc["sizes"] and len(p["consistency"]["rmse"]) == len(
            doc["sizes"]
        )
    assert doc["passed"] is r.passed and doc["verdict"] == ("pass" if r.passed else "fail")
    assert doc["tolerances"]["z"] == verdicts.Z
    assert doc["tolerances"]["constants"]["AGREE_RTOL"] == verdicts.AGREE_RTOL


def test_json_has_nulls_where_nothing_exists(derivation):
    doc = strict_json(check(derivation("uniform"), {"theta": 2}, n=100, reps=50, seed=1, agree=2).to_json())
    p = doc["parameters"]["theta"]
    assert p["crlb"] is None and p["efficiency"] is None and p["coverage"] is None
    assert p["checks"]["efficiency"]["passed"] is None and p["checks"]["coverage"]["passed"] is None


def test_text_table(derivation):
    text = check(derivation("exponential"), {"lam": 2}, n=100, reps=50, seed=1, agree=2).to_text()
    header = next(line for line in text.splitlines() if "parameter" in line)
    for column in (
        "true",
        "mean",
        "bias ± MC error",
        "variance",
        "CRLB",
        "efficiency",
        "coverage",
        "agreement",
        "slope",
        "verdict",
    ):
        assert column in header
    assert any(line.split()[:2] == ["lam", "2"] for line in text.splitlines())
    assert text.rstrip().endswith("PASS: every check passed")


def test_progress_bar_runs(derivation, capsys):
    r = check(derivation("poisson"), {"lam": 2}, n=50, reps=40, seed=1, agree=2, progress=True)
    assert r.passed
    assert capsys.readouterr().out == ""  # the bar goes to standard error only


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def test_cli_table():
    r = run("check", "exponential", "--true", "lam=2", "--n", 200, "--reps", 100, "--seed", 1, "--agree", 3)
    assert r.exit_code == 0, r.output
    assert "exponential: simulation check, n = 200, 100 replicates, seed 1" in r.stdout
    assert "PASS: every check passed" in r.stdout
    assert r.stderr == ""  # no progress bar off a terminal


def test_cli_json_with_constants():
    r = run(
        "check",
        "weibull_scale",
        "--true",
        "lam=2",
        "--const",
        "k=1.5",
        "--json",
        "--n",
        200,
        "--reps",
        100,
        "--seed",
        2,
        "--agree",
        3,
    )
    assert r.exit_code == 0, r.output
    doc = strict_json(r.stdout)
    assert doc["schema"] == 1 and doc["constants"] == {"k": 1.5} and doc["passed"] is True
    assert set(doc["parameters"]["lam"]) == PARAM_KEYS


def test_cli_inline_generic():
    r = run(
        "check", *LINDLEY, "--true", "th=0.7", "--n", 300, "--reps", 200, "--seed", 3, "--agree", 3, "--json"
    )
    assert r.exit_code == 0, r.output
    doc = strict_json(r.stdout)
    assert doc["sampler"] == "generic" and doc["passed"] is True


def test_cli_failure_exit_code(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(
        'name = "bad"\nvariable = "x"\nsupport = ["0", "oo"]\ndensity = "lam*exp(-lam*x)"\n'
        '[parameters]\nlam = "positive"\n[sampler]\nmethod = "exponential"\nargs = { scale = "lam" }\n'
    )
    r = run("check", spec, "--true", "lam=2", "--n", 200, "--reps", 100, "--seed", 1, "--agree", 2)
    assert r.exit_code == VerificationError.exit_code == 6
    assert "FAIL" in r.stdout and "Traceback" not in r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symmle: error: check failed: lam: bias")
    r = run("check", spec, "--true", "lam=2", "--n", 200, "--reps", 100, "--seed", 1, "--agree", 2, "--json")
    assert r.exit_code == 6 and strict_json(r.stdout)["passed"] is False


@pytest.mark.parametrize(
    "args, message",
    [
        (["normal", "--true", "mu=3"], "missing true value of parameter 'sigma2'"),
        (["normal", "--true", "mu=3,sigma2=4,tau=1"], "unknown parameter 'tau'"),
        (["normal", "--true", "mu=3,sigma2=0"], "not in its domain"),
        (["normal", "--true", "mu=3,sigma2=__import__('os')"], "true value of sigma2"),
        (["normal", "--true", "mu"], "--true must be NAME=VALUE"),
        (["normal"], "check needs --true"),
        (["weibull_scale", "--true", "lam=2"], "missing value for constant 'k'"),
        (["normal", "--true", "mu=3,sigma2=4", "--sizes", "10,x"], "--sizes must be integers"),
        (["nonexistent", "--true", "mu=3"], "unknown model"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, message):
    r = run("check", *args, "--n", 20, "--reps", 10)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.output and r.stdout == ""


def test_cli_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "check.png"
    r = run(
        "check",
        "normal",
        "--true",
        "mu=3,sigma2=4",
        "--n",
        200,
        "--reps",
        100,
        "--seed",
        1,
        "--agree",
        2,
        "--plot",
        out,
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in r.stdout


def test_plot_without_matplotlib_is_one_line(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = run(
        "check", "normal", "--true", "mu=3,sigma2=4", "--n", 20, "--reps", 10, "--plot", tmp_path / "x.png"
    )
    assert r.exit_code == 2 and 'pip install "symmle[plot]"' in r.stderr
    assert not (tmp_path / "x.png").exists() and r.stdout == ""
