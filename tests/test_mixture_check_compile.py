"""``symmle check --mixture K`` and ``symmle compile --mixture K`` (issue 14, part 6).

The check simulates from a known mixture and fits every replicate by EM; its
statistics must say what a correct fit looks like (small bias, plausible coverage),
and it must refuse bad true values in one line.  The compiled module, imported in a
subprocess that cannot import symmle or SymPy, must fit the data as
``symmle.fit(..., mixture=K)`` does, and no text of the model may become code in it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.model.spec import Model, Quantity
from symmle.numbers.mixture_codegen import mixture_module_source
from symmle.simulate.mixture_check import check_mixture, mixture_truth

TRUE = "w=[0.3,0.7],mu=[-2,2],sigma2=[1,2.25]"


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def one_line_error(result, needle=None):
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("symmle: error:"), lines[0]
    assert "Traceback" not in result.output
    if needle is not None:
        assert needle in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------


def test_check_normal_mixture_is_unbiased_with_plausible_coverage():
    r = check_mixture(
        "normal", dict(w="[0.3,0.7]", mu="[-2,2]", sigma2="[1,2.25]"), 2, n=500, reps=10, seed=0, starts=2
    )
    assert r.failed == 0 and r.without_se == 0
    assert r.true == {"w": [0.3, 0.7], "mu": [-2.0, 2.0], "sigma2": [1.0, 2.25]}
    assert r.estimates["mu"].shape == (10, 2)
    for name, row in r.entries.items():
        assert [e.label for e in row] == [f"{name}[1]", f"{name}[2]"]
        for e in row:
            assert e.sd > 0
            # a switched label or a wrong sampler would put the mean far from the truth
            assert abs(e.bias) < e.sd, e
            assert abs(e.bias) <= 4 * e.bias_mc_error + 6 * e.sd / np.sqrt(500), e
            assert 0.6 <= e.coverage <= 1.0, e
            assert 0.5 < e.mean_se / e.sd < 2.0, e
    assert r.passed, r.failures()
    doc = r.to_dict()
    assert doc["schema"] == 1 and doc["mixture"] == 2 and doc["order_by"] == "mu"
    assert doc["parameters"]["sigma2"]["true"] == [1.0, 2.25]
    assert len(doc["parameters"]["w"]["coverage"]) == 2
    json.dumps(doc)  # plain JSON types only


def test_check_puts_the_true_components_in_canonical_order():
    r = check_mixture("exponential", {"w": [0.7, 0.3], "lam": [5.0, 0.2]}, 2, n=300, reps=3, seed=1, starts=1)
    assert r.true == {"w": [0.3, 0.7], "lam": [0.2, 5.0]}
    assert np.all(np.abs(r.estimates["lam"][:, 0] - 0.2) < 0.1)
    assert np.all(np.abs(r.estimates["lam"][:, 1] - 5.0) < 2.0)


def test_a_tie_in_the_first_parameter_is_warned_about():
    w, theta, warn = mixture_truth(
        load_model("normal"), {"w": "[0.5,0.5]", "mu": "[0,0]", "sigma2": "[4,1]"}, 2
    )
    assert w.tolist() == [0.5, 0.5] and theta.tolist() == [[0.0, 0.0], [4.0, 1.0]]
    assert len(warn) == 1 and "not identified" in warn[0]
    assert mixture_truth(load_model("normal"), {"w": [0.5, 0.5], "mu": [0, 1], "sigma2": [1, 1]}, 2)[2] == []


def test_check_cli_json_and_text():
    args = ["check", "exponential", "--mixture", "2", "--true", "w=[0.4,0.6],lam=[0.2,5]"]
    args += ["--n", "200", "--reps", "3", "--seed", "4"]
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1 and doc["model"] == "exponential" and doc["reps"] == 3
    assert doc["replicates_failed"]["total"] == 0
    assert set(doc["parameters"]) == {"w", "lam"}
    text = run(*args)
    assert text.exit_code == 0
    assert text.stdout.startswith("exponential mixture of 2: simulation check, n = 200, 3 replicates, seed 4")
    assert "lam[2]" in text.stdout and "mean SE" in text.stdout


SENTINEL_CODE = "__import__('pathlib').Path('PWNED').touch()"


@pytest.mark.parametrize(
    "true, needle",
    [
        ("w=[0.3,0.7],mu=[-2,2,5],sigma2=[1,2.25]", "mu has 3 value(s); a mixture of 2 needs 2"),
        ("w=[0.3],mu=[-2,2],sigma2=[1,2.25]", "w has 1 value(s)"),
        ("w=[0.3,0.6],mu=[-2,2],sigma2=[1,2.25]", "must sum to 1"),
        ("w=[1.2,-0.2],mu=[-2,2],sigma2=[1,2.25]", "strictly between 0 and 1"),
        ("w=[0.3,0.7],mu=[-2,2],sigma2=[1,2.25],nu=[1,2]", "unknown parameter 'nu'"),
        ("w=[0.3,0.7],mu=[-2,2]", "missing true value of 'sigma2'"),
        ("w=[0.3,0.7],mu=[-2,2],sigma2=[1,-2.25]", "not in its domain 'positive'"),
        ("w=[0.3,0.7],mu=-2,sigma2=[1,2.25]", "must be a list of 2 numbers"),
        ("w=[0.5,0.5],mu=[1,1],sigma2=[2,2]", "not identifiable"),
        (f"w=[0.3,0.7],mu=[{SENTINEL_CODE},2],sigma2=[1,2.25]", "--true mu"),
        ("w=[0.3,0.7],mu=[os.system('x'),2],sigma2=[1,2.25]", "--true mu"),
    ],
    ids=[
        "long",
        "short",
        "sum",
        "outside",
        "unknown",
        "missing",
        "domain",
        "scalar",
        "same",
        "inject",
        "attr",
    ],
)
def test_bad_true_values_are_one_line_errors(true, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("check", "normal", "--mixture", "2", "--true", true, "--n", "50", "--reps", "2")
    one_line_error(result, needle)
    assert not (tmp_path / "PWNED").exists()


def test_check_refuses_options_that_do_not_apply():
    base = ["check", "normal", "--mixture", "2", "--true", TRUE]
    one_line_error(run(*base, "--sizes", "100,200"), "--sizes")
    one_line_error(run(*base, "--agree", "3"), "--agree")
    one_line_error(run(*base, "--plot", "x.png"), "--plot")
    one_line_error(run(*base[:3], "0", *base[4:]), "at least 1")


# --------------------------------------------------------------------------
# compile
# --------------------------------------------------------------------------

#: imports the module with symmle and SymPy made unimportable, fits, prints JSON
_RUNNER = """
import json, sys
sys.modules["symmle"] = None
sys.modules["sympy"] = None
import numpy as np
import {name} as mod
x = np.load("data.npy")
r = mod.fit(x, seed=3)
out = {{k: np.asarray(v).tolist() for k, v in r["estimates"].items()}}
se = {{k: np.asarray(v).tolist() for k, v in r["stderr"].items()}}
print(json.dumps({{"estimates": out, "stderr": se, "ll": r["log_likelihood"], "converged": r["converged"],
                  "ll_call": mod.log_likelihood(x, **r["estimates"])}}))
"""

DATA = {
    "normal": lambda g: np.r_[g.normal(-2, 1, 300), g.normal(2, 1.5, 700)],
    "exponential": lambda g: np.r_[g.exponential(1.0, 300), g.exponential(10.0, 300)],
    "poisson": lambda g: np.r_[g.poisson(2, 300), g.poisson(12, 300)].astype(float),
    "gamma": lambda g: np.r_[g.gamma(2, 1, 300), g.gamma(9, 2, 300)],
}


def _compiled_fit(tmp_path: Path, family: str, x: np.ndarray) -> dict:
    name = f"{family}_mix"
    result = run("compile", family, "--mixture", "2", "-o", str(tmp_path / f"{name}.py"))
    assert result.exit_code == 0, (result.output, result.exception)
    np.save(tmp_path / "data.npy", x)
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER.format(name=name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("family", sorted(DATA))
def test_compiled_module_agrees_with_fit(tmp_path, family):
    x = DATA[family](np.random.default_rng(5))
    got = _compiled_fit(tmp_path, family, x)
    want = symmle.fit(family, x, mixture=2, seed=3)
    assert got["converged"] and want.converged
    assert (
        set(got["estimates"])
        == set(want.estimates)
        == {"w", *(q.name for q in load_model(family).parameters)}
    )
    for k, v in want.estimates.items():
        np.testing.assert_allclose(got["estimates"][k], v, rtol=1e-6, atol=0)
        np.testing.assert_allclose(got["stderr"][k], want.stderr[k], rtol=1e-5, atol=0)
    assert got["ll"] == pytest.approx(want.log_likelihood, rel=1e-10)
    assert got["ll_call"] == pytest.approx(want.log_likelihood, rel=1e-10)
    # the components are distinct: a module fitting one component twice would fail here
    first = load_model(family).parameters[0].name
    assert got["estimates"][first][0] < 0.8 * got["estimates"][first][1]


def test_compiled_module_takes_constants(tmp_path):
    """weibull_scale has the constant k, the name of fit's own argument: given as constants={...}."""
    d = symmle.derive("weibull_scale")
    path = tmp_path / "wbmix.py"
    path.write_text(mixture_module_source(d, 2), encoding="utf-8")
    mod = _load(path)
    g = np.random.default_rng(1)
    x = np.r_[1.0 * g.weibull(1.5, 300), 8.0 * g.weibull(1.5, 300)]
    got = mod.fit(x, 2, seed=0, constants={"k": 1.5})
    want = symmle.fit("weibull_scale", x, {"k": 1.5}, mixture=2, seed=0)
    for name, v in want.estimates.items():
        np.testing.assert_allclose(got["estimates"][name], v, rtol=1e-6, atol=0)
    with pytest.raises(TypeError, match="missing the value of the constant 'k'"):
        mod.fit(x)


def _load(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compiled_module_refuses_bad_data_and_degenerate_fits(tmp_path):
    path = tmp_path / "expmix.py"
    path.write_text(mixture_module_source(symmle.derive("exponential"), 2), encoding="utf-8")
    mod = _load(path)
    with pytest.raises(ValueError, match=r"x\[1\] = nan is not a finite number"):
        mod.fit(np.array([1.0, np.nan, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"x\[0\] = -1.0 is outside the support"):
        mod.fit(np.array([-1.0, 1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="at least 4 distinct values"):
        mod.fit(np.array([1.0, 1.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match="k must be a whole number"):
        mod.fit(np.arange(1.0, 10.0), k=0)
    est = mod.estimate(np.random.default_rng(0).exponential(1.0, 200), k=2, seed=0)
    assert set(est) == {"w", "lam"} and np.isclose(est["w"].sum(), 1.0)
    se = mod.stderr(np.random.default_rng(0).exponential(1.0, 200), k=2, seed=0)
    assert se is None or set(se) == {"w", "lam"}
    # a normal component collapsing onto a repeated value: the same refusal as symmle.fit's
    path = tmp_path / "normix.py"
    path.write_text(mixture_module_source(symmle.derive("normal"), 2), encoding="utf-8")
    normix = _load(path)
    x = np.r_[np.full(50, 1.0), np.random.default_rng(0).normal(0, 1, 200)]
    with pytest.raises(symmle.DataError) as fitted:
        symmle.fit("normal", x, mixture=2)
    with pytest.raises(normix.MixtureError) as compiled:
        normix.fit(x)
    assert "collapses onto a point" in str(compiled.value)
    assert str(compiled.value) == str(fitted.value)


def test_compile_refuses_what_has_no_weighted_m_step():
    one_line_error(run("compile", "uniform", "--mixture", "2", "-o", "u.py"), "support")
    one_line_error(run("compile", "normal", "--mixture", "x", "-o", "u.py"), "whole number")


# --------------------------------------------------------------------------
# hostile text
# --------------------------------------------------------------------------


def test_hostile_param_name_via_pdf_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hostile = f"lam) or {SENTINEL_CODE} or (lam:positive"
    args = ["compile", "--pdf", "lam*exp(-lam*x)", "--var", "x", "--support", "0,oo", "--param", hostile]
    one_line_error(run(*args, "--mixture", "2", "-o", "evil.py"), "not a valid identifier")
    evil_pdf = [
        "compile",
        "--pdf",
        SENTINEL_CODE,
        "--var",
        "x",
        "--support",
        "0,oo",
        "--param",
        "lam:positive",
    ]
    one_line_error(run(*evil_pdf, "--mixture", "2", "-o", "e.py"))
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "e.py").exists()
    assert not (tmp_path / "PWNED").exists()


def test_hostile_title_and_symbol_names_never_become_code(tmp_path):
    sentinel = tmp_path / "PWNED"
    touch = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    d = symmle.derive("exponential")
    reference = ast.parse(mixture_module_source(d, 2))
    for text in [
        f'X"""; {touch}; """',
        f"X'''\n{touch}\n'''",
        "\\N{x} {x} \x1b[31m\u202e",
        f'a"\n{touch}\n#',
    ]:
        hostile = dataclasses.replace(d, model=dataclasses.replace(d.model, title=text, name=text))
        src = mixture_module_source(hostile, 2)
        tree = ast.parse(src)
        # the same statements as the harmless module: the text is only ever in the docstring
        assert [type(s).__name__ for s in tree.body] == [type(s).__name__ for s in reference.body]
        assert ast.get_docstring(tree).count(text.split("\n")[0][:3]) >= 1
        path = tmp_path / "hostile_mix.py"
        path.write_text(src, encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-c", "import hostile_mix"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert not sentinel.exists()
    lam = sp.Symbol(f"lam) or {touch} or (lam", positive=True)
    x = sp.Symbol("x", positive=True)
    model = Model(
        name="hand",
        title="Hand-built",
        variable=x,
        discrete=False,
        support=(sp.S.Zero, sp.oo),
        density=lam * sp.exp(-lam * x),
        parameters=(Quantity(lam.name, "positive", lam),),
    )
    with pytest.raises(symmle.SpecError, match="not an identifier"):
        mixture_module_source(symmle.derive(model), 2)
    assert not sentinel.exists()
