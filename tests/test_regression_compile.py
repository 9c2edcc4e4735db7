"""``symmle compile`` and ``Derivation.compile()`` of regressions.

The generated module is written by the CLI and imported in a fresh interpreter in which SymPy and
symmle cannot be imported; its estimates, standard errors and log-likelihood are held against
:func:`symmle.fit` to 1e-10 on seeded logistic, Poisson (with an offset) and Weibull (log link,
shape estimated) data and on Longley (against NIST's certified values too).  Then: the in-process
:class:`CompiledRegression` runs the same source; the copies of the fitting code are verbatim;
separation, a rank-deficient design and bad input are clear errors; hostile text cannot break out
of the docstrings and a name that is not an identifier is refused.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.model.build import load_model, model_from_dict
from symmle.numbers.codegen import module_source

#: Runs in a fresh interpreter: the module must not need SymPy or symmle.
RUNNER = """
import json, sys
sys.modules["sympy"] = None
sys.modules["symmle"] = None
import numpy as np
sys.path.insert(0, sys.argv[1])
import {module} as mod
y, X = np.load(sys.argv[2]), np.load(sys.argv[3])
offset = np.load(sys.argv[4]) if len(sys.argv) > 4 else None
est, se = mod.estimate(y, X, offset), mod.stderr(y, X, offset)
out = {{
    "parameters": list(mod.PARAMETERS),
    "estimates": {{k: np.asarray(v).tolist() for k, v in est.items()}},
    "stderr": {{k: None if v is None else np.asarray(v).tolist() for k, v in se.items()}},
    "log_likelihood": mod.log_likelihood(y, X, offset, **est),
    "docs": [mod.__doc__, mod.estimate.__doc__, mod.stderr.__doc__, mod.log_likelihood.__doc__],
    "modules": sorted(k.split(".")[0] for k, v in sys.modules.items() if v is not None),
}}
print(json.dumps(out))
"""


def _frame(n: int = 1500, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n), "t": rng.uniform(0.5, 3.0, size=n)})
    df["log_t"] = np.log(df.t)
    df["yl"] = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + df.a - 2 * df.b)))).astype(float)
    df["yp"] = rng.poisson(np.exp(0.2 + 0.5 * df.a - 0.4 * df.b + df.log_t)).astype(float)
    df["yw"] = np.exp(0.5 + 0.3 * df.a - 0.2 * df.b) * rng.weibull(1.7, size=n)
    return df


def _longley() -> pd.DataFrame:
    from statsmodels.datasets import longley

    return longley.load_pandas().data


LONGLEY = "TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR"

#: (CLI arguments, symmle.fit's model and link, data, formula, offset column)
CASES = {
    "logistic": (["logistic_regression"], ("logistic_regression", None), _frame, "yl ~ a + b", None),
    "poisson_offset": (
        ["poisson", "--link", "lam=log"],
        ("poisson", {"lam": "log"}),
        _frame,
        "yp ~ a + b",
        "log_t",
    ),
    "weibull_log": (
        ["weibull", "--link", "lam=log"],
        ("weibull", {"lam": "log"}),
        _frame,
        "yw ~ a + b",
        None,
    ),
    "linear_longley": (["linear_regression"], ("linear_regression", None), _longley, LONGLEY, None),
}


def _arrays(df: pd.DataFrame, formula: str, offset: str | None):
    from formulaic import model_matrix

    y, X = model_matrix(formula, df)
    return y.to_numpy()[:, 0].astype(float), X, None if offset is None else df[offset].to_numpy(dtype=float)


def _compile(tmp_path: Path, args: list[str], stem: str) -> Path:
    out = tmp_path / f"{stem}.py"
    result = CliRunner().invoke(cli, ["compile", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {out}"
    return out


def _run_module(tmp_path: Path, module: Path, y, X, offset) -> dict:
    files = []
    for name, v in (("y", y), ("X", np.asarray(X, dtype=float)), ("offset", offset)):
        if v is not None:
            np.save(tmp_path / f"{name}.npy", v)
            files.append(str(tmp_path / f"{name}.npy"))
    code = RUNNER.format(module=module.stem)
    run = subprocess.run(
        [sys.executable, "-c", code, str(module.parent), *files], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _close(a, b, rtol: float = 1e-10) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=0))


@pytest.mark.parametrize("case", list(CASES))
def test_generated_module_agrees_with_fit(tmp_path, case):
    args, (model, link), data, formula, offset = CASES[case]
    df = data()
    fit = symmle.fit(model, df, link=link, formula=formula, offset=offset)
    y, X, off = _arrays(df, formula, offset)
    out = _run_module(tmp_path, _compile(tmp_path, args, f"{case}_mle"), y, X, off)
    assert out["parameters"] == ["beta", *(k for k in fit.estimates if k != "beta")]
    for name, value in fit.estimates.items():
        assert _close(out["estimates"][name], value), (name, out["estimates"][name], value)
        assert _close(out["stderr"][name], fit.stderr[name]), (name, out["stderr"][name], fit.stderr[name])
    assert _close(out["log_likelihood"], fit.log_likelihood)
    assert not {"sympy", "symmle"} & set(out["modules"])
    # the formulas are in the docstrings: the score X^T s, and the closed form's normal equations
    module_doc, estimate_doc, stderr_doc, loglik_doc = out["docs"]
    assert "X^T s" in module_doc and "l = " in loglik_doc
    if case == "linear_longley":
        assert "X^T X beta = X^T (z - offset)" in estimate_doc and "sigma2_hat = R1/N" in estimate_doc
        assert "N/(N - p)" in stderr_doc
    else:
        assert "Newton" in estimate_doc


def test_longley_matches_nist_certified_values(tmp_path):
    from statsmodels.regression.tests.results.results_regression import Longley

    cert = Longley()
    y, X, _ = _arrays(_longley(), LONGLEY, None)
    est, se = symmle.derive("linear_regression").compile().estimate_with_stderr(y, X)
    order = [1, 2, 3, 4, 5, 6, 0]  # statsmodels lists the intercept last
    digits = -np.log10(np.abs(est["beta"][order] - cert.params) / np.abs(cert.params))
    assert digits.min() >= 11, digits
    digits = -np.log10(np.abs(se["beta"][order] - cert.bse) / np.abs(cert.bse))
    assert digits.min() >= 11, digits
    # sigma2_hat is the MLE RSS/N; NIST's residual variance is RSS/(N - p)
    assert abs(est["sigma2"] * 16 / 9 - cert.scale) <= 1e-11 * cert.scale


def test_generated_module_imports_numpy_and_scipy_only():
    for name in ("logistic_regression", "linear_regression", "negative_binomial_regression"):
        src = module_source(symmle.derive(name))
        roots = set()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots.add((node.module or "").split(".")[0])
        assert roots <= {"__future__", "math", "warnings", "collections", "typing", "numpy", "scipy"}, roots


def test_compile_in_process_runs_the_generated_source():
    from symmle.numbers.regression_compiled import CompiledRegression

    d = symmle.derive("gamma_regression")
    est = d.compile()
    assert isinstance(est, CompiledRegression) and est.source == module_source(d)
    rng = np.random.default_rng(5)
    n = 800
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    mu = np.exp(1.0 + 0.4 * x)
    y = rng.gamma(3.0, mu / 3.0)
    df = pd.DataFrame({"y": y, "x": x})
    fit = symmle.fit("gamma_regression", df, formula="y ~ x")
    e, s = est.estimate_with_stderr(y, X)
    assert _close(e["beta"], fit.estimates["beta"]) and _close(e["k"], fit.estimates["k"])
    assert _close(s["beta"], fit.stderr["beta"]) and _close(s["k"], fit.stderr["k"])
    assert est.parameters == ("beta", "k") and est(y, X)["k"] == e["k"]


def test_the_fitting_code_is_copied_verbatim():
    from symmle.base import _runtime
    from symmle.numbers import (
        _regression_driver,
        _regression_runtime,
        least_squares,
        separation,
    )

    src = module_source(symmle.derive("logistic_regression"))
    for fn in (
        _regression_runtime.regression_sums,
        _regression_runtime.newton,
        _regression_runtime.score_signs,
        _regression_runtime.gram_factor,
        least_squares.least_squares,
        least_squares.check_rank,
        separation.find_separation,
        _regression_driver.regression_fit,
        _regression_driver.regression_fit_blocks,
        _regression_driver.regression_start,
        _regression_driver._values_text,
        _runtime.in_domain,
    ):
        assert inspect.getsource(fn) in src, fn.__name__


def test_a_memory_mapped_design_gives_the_same_fit(tmp_path):
    df = _frame(3000, seed=2)
    y, X, off = _arrays(df, "yp ~ a + b", "log_t")
    np.save(tmp_path / "X.npy", np.asarray(X, dtype=float))
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    est = symmle.derive("poisson_regression").compile()
    assert isinstance(mapped, np.memmap)
    e1, s1 = est.estimate_with_stderr(y, X, off)
    e2, s2 = est.estimate_with_stderr(y, mapped, off)
    assert _close(e1["beta"], e2["beta"], 1e-12) and _close(s1["beta"], s2["beta"], 1e-12)


def test_separation_is_an_error_naming_it(tmp_path):
    x = np.array([-3.0, -2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 2.0, 2.5, 3.0])
    y = (x > 0).astype(float)
    X = pd.DataFrame({"Intercept": np.ones(x.size), "dose": x})
    est = symmle.derive("logistic_regression").compile()
    with pytest.raises(symmle.DataError, match="separation.*dose.*MLE does not exist"):
        est(y, X)
    # the standalone module raises its own DataError, a ValueError, with the same message
    _compile(tmp_path, ["logistic_regression"], "sep_mle")
    code = (
        "import sys, numpy as np; sys.modules['sympy'] = None; sys.modules['symmle'] = None\n"
        f"sys.path.insert(0, {str(tmp_path)!r}); import sep_mle as m\n"
        f"x = np.array({x.tolist()!r}); X = np.column_stack([np.ones(x.size), x])\n"
        "try:\n    m.estimate((x > 0).astype(float), X)\n"
        "except ValueError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("DataError complete separation") and "X[:, 1]" in run.stdout


@pytest.mark.parametrize("model", ["probit_regression", "logistic_regression", "cloglog"])
def test_quasi_complete_separation_is_found_where_the_score_is_0_over_0(model):
    # the probit's score is 0/0 beyond |eta| = 8 in floating point: the signs come from the rest
    m = load_model("bernoulli").with_link({"p": "cloglog"}) if model == "cloglog" else model
    x = np.array([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0])
    y = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    with pytest.raises(symmle.DataError, match="quasi-complete separation.*MLE does not exist"):
        symmle.derive(m).compile()(y, np.column_stack([np.ones(6), x]))


def test_score_signs_pass_over_points_where_the_score_is_not_a_number():
    from symmle.numbers._regression_runtime import score_signs

    def probit_like(y, eta):  # the sign of y - Phi(eta), not a number beyond |eta| = 8
        with np.errstate(all="ignore"):
            return np.where(np.abs(eta) > 8, np.nan, y - 0.5 - 0.4 * np.tanh(eta))

    assert score_signs(probit_like, np.array([0.0, 1.0, 0.5])).tolist() == [-1, 1, 0]
    # a number on less than half the grid: no sign; a number of the other sign beyond a gap: no sign
    assert score_signs(lambda y, eta: np.where(np.abs(eta) > 0.1, np.nan, -1.0), np.zeros(2)).tolist() == [
        0,
        0,
    ]
    assert score_signs(
        lambda y, eta: np.where(eta > 50, 1.0, np.where(eta > 8, np.nan, -1.0)), np.zeros(1)
    ).tolist() == [0]


def test_rank_deficient_design_names_the_columns():
    rng = np.random.default_rng(3)
    a = rng.normal(size=50)
    X = pd.DataFrame({"Intercept": np.ones(50), "a": a, "twice_a": 2 * a})
    y = rng.poisson(2.0, size=50).astype(float)
    for name in ("poisson_regression", "linear_regression"):
        with pytest.raises(symmle.DataError, match="rank-deficient: twice_a = 2\\*a "):
            symmle.derive(name).compile()(y, X)
        # the fit says the same: the relation in the design's units, not in its scaled columns'
        with pytest.raises(symmle.DataError, match="rank-deficient: twice_a = 2\\*a "):
            symmle.fit(name, X.assign(y=y), formula="y ~ a + twice_a")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda y, X, o: (np.r_[y[:-1], 2.0], X, o), "row 40: y = 2.0 is outside the support"),
        (lambda y, X, o: (np.r_[y[:-1], 0.5], X, o), "row 40: y = 0.5 is not an integer"),
        (
            lambda y, X, o: (y, np.vstack([X[:-1], [1.0, np.nan]]), o),
            "row 40: the value of X\\[:, 1\\] is not",
        ),
        (lambda y, X, o: (y, X[:-1], o), "39 rows for 40 responses"),
        (lambda y, X, o: (y, X[:, 1], o), "2-D array"),
        (lambda y, X, o: (y, X, np.zeros(3)), "one number per row"),
        (lambda y, X, o: (y[:2], X[:2], o), "2 observations for 2 coefficients"),
    ],
)
def test_bad_input_is_one_clear_error(change, message):
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(40), rng.normal(size=40)])
    y = (rng.random(40) < 0.5).astype(float)
    est = symmle.derive("logistic_regression").compile()
    y, X, off = change(y, X, None)
    with pytest.raises(symmle.DataError, match=message):
        est(y, X, off)


def test_constants_are_given_checked_and_used():
    m = model_from_dict(
        {
            "name": "known_variance",
            "variable": "y",
            "support": ["-oo", "oo"],
            "density": "exp(-(y - mu)**2/(2*s2))/sqrt(2*pi*s2)",
            "parameters": {"mu": "real"},
            "constants": {"s2": "positive"},
            "link": {"mu": "identity"},
        }
    )
    est = symmle.derive(m).compile()
    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(30), rng.normal(size=30)])
    y = X @ [1.0, 2.0] + rng.normal(size=30)
    se = est.stderr(y, X, s2=4.0)["beta"]
    assert _close(se, 2.0 * np.sqrt(np.diag(np.linalg.inv(X.T @ X))), 1e-12)
    fit = symmle.fit(m, pd.DataFrame({"y": y, "x": X[:, 1]}), {"s2": 4.0}, formula="y ~ x")
    assert _close(se, fit.stderr["beta"])
    with pytest.raises(symmle.SpecError, match="give the value of the constant s2"):
        est(y, X)
    with pytest.raises(symmle.SpecError, match="unknown constant 'sigma'"):
        est(y, X, s2=1.0, sigma=1.0)
    with pytest.raises(symmle.SpecError, match="outside its domain"):
        est(y, X, s2=-1.0)


def test_log_likelihood_needs_every_value():
    est = symmle.derive(load_model("weibull").with_link({"lam": "log"})).compile()
    X = np.column_stack([np.ones(5), np.arange(5.0)])
    y = np.array([0.5, 1.0, 1.5, 2.0, 4.0])
    beta, k = np.array([0.1, 0.2]), 1.5
    lam = np.exp(X @ beta)
    want = np.sum(np.log(k / lam) + (k - 1) * np.log(y / lam) - (y / lam) ** k)
    assert abs(est.log_likelihood(y, X, beta=beta, k=k) - want) <= 1e-12 * abs(want)
    with pytest.raises(symmle.SpecError, match="give the value of k"):
        est.log_likelihood(y, X, beta=beta)
    with pytest.raises(symmle.SpecError, match="beta must be 2 finite numbers"):
        est.log_likelihood(y, X, beta=[1.0], k=k)


def test_hostile_title_and_name_are_escaped(tmp_path):
    d = symmle.derive("logistic_regression")
    sentinel = tmp_path / "PWNED"
    text = f'X"""\nimport os; os.system("touch {sentinel}")\n"""\x1b[31m\\N{{x}}\u202e'
    model = dataclasses.replace(d.model, title=text, name=text)
    reg = dataclasses.replace(d.regression, model=model)
    path = tmp_path / "hostile_mle.py"
    path.write_text(module_source(dataclasses.replace(d, model=model, regression=reg)), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", "import hostile_mle as m; print(repr(m.__doc__))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert not sentinel.exists()
    doc = eval(run.stdout)  # noqa: S307 - the repr of a string printed above
    assert text.split("\n")[0] in doc and "os.system" in doc


def test_a_name_that_is_not_an_identifier_is_refused():
    d = symmle.derive("gamma_regression")
    reg = d.regression
    (k,) = reg.shared
    evil = sp.Symbol('k) or __import__("os").system("true") or (k', positive=True)
    swap = {k: evil}
    bad = dataclasses.replace(
        reg,
        shared=(evil,),
        log_density=reg.log_density.xreplace(swap),
        shared_score=tuple(e.xreplace(swap) for e in reg.shared_score),
        hessian=reg.hessian.xreplace(swap),
    )
    with pytest.raises(symmle.SpecError, match="not an identifier"):
        module_source(dataclasses.replace(d, regression=bad))


def test_a_name_that_is_an_argument_is_refused():
    m = model_from_dict(
        {
            "name": "shifted",
            "variable": "y",
            "support": ["-oo", "oo"],
            "density": "exp(-(y - mu - offset)**2/2)/sqrt(2*pi)",
            "parameters": {"mu": "real"},
            "constants": {"offset": "real"},
            "link": {"mu": "identity"},
        }
    )
    with pytest.raises(symmle.SpecError, match="'offset'.*name of an argument"):
        module_source(symmle.derive(m))


def test_compile_link_flag(tmp_path):
    out = _compile(tmp_path, ["bernoulli", "--link", "p=probit"], "probit_mle")
    assert "probit link" in out.read_text()
    result = CliRunner().invoke(
        cli, ["compile", "bernoulli", "--link", "p=nosuch", "-o", str(tmp_path / "x.py")]
    )
    assert result.exit_code == 2 and "unknown link 'nosuch'" in result.output
    assert not (tmp_path / "x.py").exists()
