"""Data the model cannot take are refused before estimating, naming the first bad observation.

``symmle.fit`` (and ``symmle fit``, exit code 3) and generated modules
(``symmle compile``: a ``ValueError`` naming ``x[i]``) refuse empty data,
values that are not finite numbers, values outside the support, non-integers
for a discrete model, and values where the log-density is finite for no
parameter value (a 0 in gamma, Weibull or log-normal data, a 0 or 1 in beta
data): the likelihood is then 0, unbounded or undefined whatever the
parameters, and the solver's own failure ("not finite anywhere on the search
grid") would not say why.  The check reads the model's support and
log-density, not its name: an inline model with a singular point inside its
support is refused the same way.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import symmle
from symmle.base import _runtime
from symmle.base.errors import DataError
from symmle.cli import cli
from symmle.model.build import inline_model
from symmle.numbers.codegen import module_source


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)


# --------------------------------------------------------------------------
# symmle.fit and symmle fit
# --------------------------------------------------------------------------

#: (family, data, the row named (1-based), the support as the message writes it)
ZERO_DENSITY = [
    ("gamma", [1.2, 0.7, 0.0, 2.0], 3, "(0, oo)"),
    ("weibull", [0.0, 1.2, 0.7], 1, "(0, oo)"),
    ("lognormal", [1.2, 0.7, 2.0, 0.4, 0.0], 5, "(0, oo)"),
    ("beta", [0.2, 0.0, 0.5], 2, "(0, 1]"),
    ("beta", [0.2, 0.5, 1.0, 0.0], 3, "[0, 1)"),
]


@pytest.mark.parametrize(("name", "data", "row", "support"), ZERO_DENSITY)
def test_fit_names_the_row_where_the_density_is_nowhere_finite(name, data, row, support, derivation):
    value = data[row - 1]
    with pytest.raises(DataError) as err:
        symmle.fit(derivation(name), data)
    message = str(err.value)
    assert message.startswith(
        f"row {row} of the data, x = {value:g}, is outside the support {support} of the model"
    )
    assert "log-density there is not finite" in message
    assert "search grid" not in message and "MLE" not in message


def test_cli_exit_code_and_one_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("1.5\n0.3\n0\n2.2\n")
    out = run("fit", "gamma", path)
    assert out.exit_code == 3
    assert out.output.count("\n") == 1 and "Traceback" not in out.output
    assert "row 3 of the data, x = 0, is outside the support (0, oo) of the model" in out.output


def test_fit_refuses_a_singular_point_inside_the_support():
    # the density a |x|^(a-1) / 2 on [-1, 1] is 0 or infinite at x = 0 whatever a
    m = inline_model(pdf="a*Abs(x)**(a-1)/2", var="x", support="-1,1", params=["a:positive"])
    d = symmle.derive(m)
    with pytest.raises(
        DataError, match=r"^row 3 of the data, x = 0, is outside where the model's density is"
    ):
        symmle.fit(d, [0.5, -0.3, 0.0, 0.9])
    assert symmle.fit(d, [0.5, -0.3, 0.2, 0.9]).estimates["a"] > 0


def test_fit_refuses_a_value_of_zero_mass_of_a_discrete_model():
    # x p^2 (1 - p)^(x - 1) puts no mass on 0, although the declared support starts there; with
    # 200 counts the check reads each distinct value once (a table of the counts)
    m = inline_model(pdf="x*p**2*(1-p)**(x-1)", var="x", support="0,oo", params=["p:unit"], discrete=True)
    d = symmle.derive(m)
    rng = np.random.default_rng(7)
    x = rng.negative_binomial(2, 0.4, size=200).astype(float) + 1  # 1, 2, ...
    assert symmle.fit(d, x).estimates["p"] == pytest.approx(
        2 / (1 + np.mean(x)), rel=1e-10
    )  # 2N / (N + sum x)
    x[56] = 0.0
    with pytest.raises(DataError, match=r"^row 57 of the data, x = 0, is outside the support \(0, oo\)"):
        symmle.fit(d, x)


def test_fit_keeps_values_where_some_parameter_value_explains_them(derivation):
    # a 0 is fine where the density is positive there (exponential), and far-out values are
    # explained by parameters on their scale
    assert symmle.fit(derivation("exponential"), [0.0, 1.0, 2.0]).estimates["lam"] == 1.0
    plan = derivation("normal").compile().plan
    rows = np.array([1e300, -1e300, 3.0, 0.0])
    assert not _runtime.unexplained(plan, rows, {}).any()


# --------------------------------------------------------------------------
# generated modules
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Generated modules of a few families, imported (they import only NumPy and SciPy)."""
    out = {}
    root = tmp_path_factory.mktemp("generated")
    for name in ("normal", "gamma", "poisson", "beta", "binomial", "uniform"):
        path = root / f"{name}_mle.py"
        path.write_text(module_source(symmle.derive(name)))
        spec = importlib.util.spec_from_file_location(f"{name}_mle", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out[name] = (mod, path)
    return out


#: (family, constants, data, message): the first bad observation by its index and value
BAD = [
    ("normal", {}, [], "the data are empty"),
    ("normal", {}, [1.0, np.nan, 2.0], "x[1] = nan is not a finite number"),
    ("normal", {}, [1.0, 2.0, np.inf], "x[2] = inf is not a finite number"),
    ("gamma", {}, [1.0, -1.0, np.nan], "x[1] = -1 is outside the support [0, oo) of the model"),
    ("poisson", {}, [1.0, 2.5, 3.0], "x[1] = 2.5 is not an integer (the model is discrete)"),
    ("poisson", {}, [1.0, 2.0, -3.0], "x[2] = -3 is outside the support [0, oo) of the model"),
    ("binomial", {"n": 10}, [1.0, 2.0, 11.0], "x[2] = 11 is outside the support [0, 10] of the model"),
    ("uniform", {}, [0.5, -2.0], "x[1] = -2 is outside the support [0, oo) of the model"),
]


@pytest.mark.parametrize(("name", "constants", "data", "message"), BAD)
@pytest.mark.parametrize("function", ["estimate", "stderr", "log_likelihood"])
def test_generated_module_refuses_bad_data(modules, name, constants, data, message, function):
    mod, _ = modules[name]
    kwargs = dict(constants)
    if function == "log_likelihood":
        kwargs.update({p: 0.3 if p == "p" else 1.5 for p in mod.PARAMETERS})
    with pytest.raises(ValueError) as err:
        getattr(mod, function)(np.array(data, dtype=float), **kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("gamma", [1.2, 0.7, 0.0, 2.0], "x[2] = 0 is outside the support (0, oo) of the model: "),
        ("beta", [0.2, 0.5, 1.0], "x[2] = 1 is outside the support [0, 1) of the model: "),
    ],
)
def test_generated_module_names_a_value_of_no_finite_density(modules, name, data, message):
    mod, _ = modules[name]
    for function in (mod.estimate, mod.stderr):
        with pytest.raises(ValueError) as err:
            function(np.array(data))
        assert str(err.value).startswith(message), str(err.value)
        assert "does not exist" not in str(err.value)


def test_generated_module_checks_without_symmle(modules):
    # the checks come with the module's copy of the runtime: no SymPy or symmle needed
    _, path = modules["gamma"]
    script = (
        "import importlib.abc, importlib.util, json, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('sympy', 'symmle'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "spec = importlib.util.spec_from_file_location('m', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "out = []\n"
        "for x in ([], [1.0, float('nan')], [1.0, -2.0], [3.0, 0.0, 1.0]):\n"
        "    try:\n"
        "        m.estimate(x)\n"
        "    except ValueError as e:\n"
        "        out.append(str(e))\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got[:3] == [
        "the data are empty",
        "x[1] = nan is not a finite number",
        "x[1] = -2 is outside the support [0, oo) of the model",
    ]
    assert got[3].startswith("x[1] = 0 is outside the support (0, oo) of the model")


def test_generated_module_still_estimates_good_data(modules):
    mod, _ = modules["binomial"]
    assert mod.estimate([1.0, 2.0, 10.0, 0.0], n=10) == {"p": pytest.approx(13 / 40, rel=1e-14)}
    mod, _ = modules["uniform"]
    assert mod.estimate([0.5, 2.0]) == {"theta": 2.0}
