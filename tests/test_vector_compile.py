"""``symmle compile`` and ``Derivation.compile()`` of vector models.

The generated module is imported in a fresh interpreter in which SymPy and symmle cannot be
imported, and its estimates, standard errors and log-likelihood are held against
:func:`symmle.fit` (and the log-likelihood against SciPy's densities).  Then: the numerical
stability of the pilot-centred statistics (data of mean 1e9 and unit spread against the
covariance of the same floats computed exactly), a memory map against the array, bad input as
one clear error, and hostile text and names in the model.
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
from scipy import stats

import symmle
from symmle.cli import cli
from symmle.model.build import load_model
from symmle.model.catalogue import catalogue_dir
from symmle.model.explicit import at_dimension
from symmle.numbers.codegen import module_source
from symmle.numbers.matrix_code import print_matrix_code

SPECS = catalogue_dir()  # the vector families of the catalogue

#: Runs in a fresh interpreter: the module must not need SymPy or symmle.
RUNNER = """
import json, sys
sys.modules["sympy"] = None
sys.modules["symmle"] = None
import numpy as np
sys.path.insert(0, sys.argv[1])
import {module} as mod
x = np.load(sys.argv[2])
est, se = mod.estimate(x), mod.stderr(x)
values = {{k: np.asarray(v).tolist() for k, v in est.items()}}
out = {{
    "parameters": list(mod.PARAMETERS),
    "estimates": values,
    "stderr": {{k: None if v is None else np.asarray(v).tolist() for k, v in se.items()}},
    "log_likelihood": mod.log_likelihood(x, **values),
    "docs": [mod.estimate.__doc__, mod.stderr.__doc__, mod.log_likelihood.__doc__],
}}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def derived():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = symmle.derive(SPECS / f"{name}.toml")
        return cache[name]

    return get


def _data(name: str, rng: np.random.Generator, n: int = 400) -> np.ndarray:
    if name == "dirichlet":
        return rng.dirichlet([2.0, 3.0, 4.5], size=n)
    cov = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.3], [0.1, -0.3, 1.5]])
    return rng.multivariate_normal([0.0, 1.0, -2.0], cov, size=n)


def _compile(tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}_mle.py"
    result = CliRunner().invoke(cli, ["compile", str(SPECS / f"{name}.toml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _run_module(tmp_path: Path, module: Path, x: np.ndarray) -> dict:
    data = tmp_path / "x.npy"
    np.save(data, x)
    code = RUNNER.format(module=module.stem)
    run = subprocess.run(
        [sys.executable, "-c", code, str(module.parent), str(data)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _close(a, b, rtol: float) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b))))


@pytest.mark.parametrize(
    "name, rtol", [("mvnormal", 1e-12), ("mvnormal_isotropic", 1e-12), ("dirichlet", 1e-7)]
)
def test_generated_module_agrees_with_fit(tmp_path, derived, name, rtol):
    d = derived(name)
    x = _data(name, np.random.default_rng(5))
    got = _run_module(tmp_path, _compile(tmp_path, name), x)
    ref = symmle.fit(d, x)
    assert got["parameters"] == [q.name for q in d.model.parameters]
    for p in got["parameters"]:
        assert _close(got["estimates"][p], ref.estimates[p], rtol), (p, got["estimates"][p], ref.estimates[p])
        assert _close(got["stderr"][p], ref.stderr[p], max(rtol, 1e-10) * 100), p
    assert got["log_likelihood"] == pytest.approx(ref.log_likelihood, rel=1e-10)
    # the log-likelihood is sum log f(x_i) of the density, not of the derivation: SciPy's
    est = {k: np.asarray(v) for k, v in got["estimates"].items()}
    if name == "dirichlet":
        direct = stats.dirichlet.logpdf(x.T, est["a"]).sum()
    else:
        cov = est["Sigma"] if "Sigma" in est else est["s2"] * np.eye(x.shape[1])
        direct = stats.multivariate_normal.logpdf(x, est["mu"], cov).sum()
    assert got["log_likelihood"] == pytest.approx(direct, rel=1e-10)
    estimate_doc, stderr_doc, loglik_doc = got["docs"]
    for p in got["parameters"]:
        assert f"{p} = " in estimate_doc or f"{p} solves" in estimate_doc  # the formula in the docstring
    assert "information" in stderr_doc and "log f(x) = " in loglik_doc


@pytest.mark.parametrize("name, scipy", [("mvnormal", False), ("dirichlet", True)])
def test_generated_module_imports_numpy_and_scipy_only(tmp_path, name, scipy):
    tree = ast.parse(_compile(tmp_path, name).read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:  # what importing the module imports (SciPy's optimiser is imported when used)
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").split(".")[0])
    assert top <= {"math", "warnings", "numpy", "scipy"}, top
    assert ("scipy" in top) == scipy
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"estimate", "stderr", "log_likelihood"} <= names


def test_compiled_in_process_equals_fit_and_module(derived):
    d = derived("mvnormal")
    x = _data("mvnormal", np.random.default_rng(7), 250)
    est = d.compile()
    got, se = est.estimate_with_stderr(x)
    ref = symmle.fit(d, x)
    for p in ("mu", "Sigma"):
        assert _close(got[p], ref.estimates[p], 1e-13) and _close(se[p], ref.stderr[p], 1e-12)
    assert est.log_likelihood(x, **got) == pytest.approx(ref.log_likelihood, rel=1e-12)
    # many data sets at once, vectorised, equal one by one
    stack = np.stack([x[:100], x[100:200]])
    rows = est.estimate_rows(stack)
    for r in range(2):
        one = est.estimate(stack[r])
        assert _close(rows["Sigma"][r], one["Sigma"], 1e-12) and _close(rows["mu"][r], one["mu"], 1e-12)
    se_rows = est.stderr_rows(rows, 100, 3)
    assert _close(se_rows["Sigma"][1], est.stderr(stack[1])["Sigma"], 1e-12)


@pytest.mark.parametrize("name", ["mvnormal", "mvnormal_isotropic"])
def test_mean_1e9_keeps_ten_digits(derived, name):
    """Data far from the origin: the pilot-centred scatter, not sum x x^T - N m m^T."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(20_000, 3))
    x = 1e9 + z
    exact = x - 1e9  # exact: Sterbenz, every x within a factor 2 of 1e9
    centred = exact - exact.mean(axis=0)
    cov = centred.T @ centred / x.shape[0]
    got = derived(name).compile()(x)
    fitted = symmle.fit(derived(name), x).estimates
    if name == "mvnormal":
        assert np.max(np.abs(fitted["Sigma"] - cov) / np.abs(np.diag(cov)).max()) < 1e-10
    else:  # fit evaluated sum x x^T - N m m^T in floating point: s2 was -128
        assert abs(fitted["s2"] - np.trace(cov) / 3) / (np.trace(cov) / 3) < 1e-10
    if name == "mvnormal":
        assert np.max(np.abs(got["Sigma"] - cov) / np.abs(np.diag(cov)).max()) < 1e-10
    else:
        assert abs(got["s2"] - np.trace(cov) / 3) / (np.trace(cov) / 3) < 1e-10
    assert np.max(np.abs(got["mu"] - (1e9 + exact.mean(axis=0)))) < 1e-10 * 1e9


def test_memory_map_equals_array(tmp_path, derived):
    x = _data("mvnormal", np.random.default_rng(11), 5000)
    np.save(tmp_path / "big.npy", x)
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    est = derived("mvnormal").compile()
    a, b = est(x), est(mapped)
    assert np.array_equal(a["mu"], b["mu"]) and np.array_equal(a["Sigma"], b["Sigma"])


def test_bad_input_is_one_clear_error(tmp_path, derived):
    est = derived("mvnormal").compile()
    x = _data("mvnormal", np.random.default_rng(2), 50)
    bad = x.copy()
    bad[17, 2] = np.nan
    with pytest.raises(symmle.DataError, match=r"row 18 of the data, column '3' = nan"):
        est(bad)
    with pytest.raises(symmle.DataError, match="at least D \\+ 1 = 4 rows"):
        est(x[:3])
    with pytest.raises(symmle.DataError, match="an \\(N, D\\) array"):
        est(x[:, 0])
    collinear = np.column_stack([x[:, 0], x[:, 1], x[:, 0] + 2 * x[:, 1]])
    with pytest.raises(symmle.DataError, match="collinear"):
        est(collinear)
    with pytest.raises(symmle.DataError, match="not in its domain 'spd'"):
        est.log_likelihood(x, mu=[0, 0, 0], Sigma=[[1, 2, 0], [2, 1, 0], [0, 0, 1]])
    with pytest.raises(symmle.DataError, match="dimension 2; the data have 3 columns"):
        est.log_likelihood(x, mu=[0, 0], Sigma=np.eye(3))
    shares = derived("dirichlet").compile()
    rows = np.random.default_rng(1).dirichlet([1, 2, 3], size=20)
    rows[4] *= 1.2
    with pytest.raises(symmle.DataError, match="row 5 of the data adds up to .*not on the simplex"):
        shares(rows)
    # the generated module: a ValueError naming the cell
    module = _compile(tmp_path, "mvnormal")
    np.save(tmp_path / "bad.npy", bad)
    code = (
        f"import sys, numpy as np; sys.path.insert(0, {str(tmp_path)!r}); import {module.stem} as m\n"
        f"try:\n    m.estimate(np.load({str(tmp_path / 'bad.npy')!r}))\n"
        "except ValueError as e:\n    print(e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "x[17, 2] = nan is not a finite number", run.stdout + run.stderr


def test_printer_covers_the_matrix_nodes():
    """Each node the derivations write prints as NumPy code that evaluates to the explicit value."""
    from symmle.numbers import _vector_runtime as rt
    from symmle.symbolic.matrix_information import DuplicationMatrix

    D = sp.Symbol("D", integer=True, positive=True)
    S, m = sp.MatrixSymbol("S", D, D), sp.MatrixSymbol("m", D, 1)
    t = sp.Dummy("t")
    exprs = [
        sp.log(sp.Determinant(S)),
        sp.Determinant(S),
        sp.Trace(S.I * m * m.T),
        m.T * S.I,
        sp.KroneckerProduct(S.I, S) * DuplicationMatrix(D),
        sp.DiagMatrix(m) + sp.Identity(D) + sp.OneMatrix(D, D),
        m.applyfunc(sp.Lambda(t, sp.loggamma(t))),
        sp.Trace(sp.OneMatrix(1, D) * m) * S,
    ]
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    s_val, m_val = a @ a.T + 3 * np.eye(3), rng.uniform(0.5, 2, size=(3, 1))
    names = {S: "v_S", m: "v_m", D: "v_D"}
    namespace = {k: getattr(rt, k) for k in dir(rt) if k.startswith("mx_")}
    import numpy
    import scipy.special

    namespace.update(numpy=numpy, scipy=scipy, v_S=s_val, v_m=m_val, v_D=3)
    for e in exprs:
        code, _ = print_matrix_code(e, names)
        got = eval(code, namespace)  # noqa: S307 - code printed here from a SymPy expression
        table = {D: 3, S: sp.ImmutableMatrix(s_val), m: sp.ImmutableMatrix(m_val)}
        table[DuplicationMatrix(D)] = DuplicationMatrix(3).as_explicit()
        explicit = at_dimension(e, table)
        want = np.array(sp.N(explicit), dtype=float)
        assert np.allclose(got, want, rtol=1e-10), (e, code)
    with pytest.raises(symmle.DerivationError, match="not a value of the plan"):
        print_matrix_code(sp.Trace(S) + sp.Symbol("evil"), names)


def test_hostile_title_and_name_are_escaped(tmp_path, derived):
    d = derived("mvnormal")
    sentinel = tmp_path / "PWNED"
    text = f'X"""\nimport os; os.system("touch {sentinel}")\n"""\x1b[31m\\N{{x}}\u202e'
    hostile = dataclasses.replace(d, model=dataclasses.replace(d.model, title=text, name=text))
    path = tmp_path / "hostile_mle.py"
    path.write_text(module_source(hostile), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", "import hostile_mle as m; print(repr(m.__doc__))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert not sentinel.exists()
    assert text in eval(run.stdout)  # noqa: S307 - the repr of a string printed above


def test_a_name_that_is_not_an_identifier_is_refused(derived):
    d = derived("mvnormal")
    evil = sp.Symbol('D) or __import__("os").system("true") or (D', integer=True, positive=True)
    model = dataclasses.replace(d.model, dimension=evil)
    with pytest.raises(symmle.SpecError, match="not an identifier"):
        module_source(dataclasses.replace(d, model=model))


def test_vector_spec_compiles_from_the_cli_and_says_so(tmp_path):
    out = tmp_path / "m.py"
    result = CliRunner().invoke(cli, ["compile", str(SPECS / "mvnormal_isotropic.toml"), "-o", str(out)])
    assert result.exit_code == 0 and result.output.strip() == f"wrote {out}"
    assert load_model(SPECS / "mvnormal_isotropic.toml").is_vector
