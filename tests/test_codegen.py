"""`symmle compile`: the generated module runs without SymPy or symmle and matches the in-process compile."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.model.catalogue import family_names
from symmle.numbers.codegen import module_source

FAMILIES = family_names("scalar")

# Runs a generated module with every import of sympy or symmle refused.
RUNNER = r"""
import importlib.abc, importlib.util, json, sys
import numpy as np

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("sympy", "symmle"):
            raise ImportError("blocked: " + name)

sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("generated", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
x = np.load(sys.argv[2])
constants = json.loads(sys.argv[3])
est = mod.estimate(x, **constants)
print(json.dumps({
    "parameters": list(mod.PARAMETERS),
    "estimate": est,
    "stderr": mod.stderr(x, **constants),
    "loglik": mod.log_likelihood(x, **est, **constants),
    "sympy_loaded": "sympy" in sys.modules,
    "doc": mod.estimate.__doc__,
}))
"""


def run_generated(path, data_path, constants) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(data_path), json.dumps(constants)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", FAMILIES)
def test_generated_module_matches_in_process(name, derivation, tools, tmp_path):
    d = derivation(name)
    model = d.model
    point = model.point()
    data = tools.sample(model, point, 3000, np.random.default_rng(zlib.crc32(name.encode())))
    constants = {q.name: point[q.symbol] for q in model.constants}
    path = tmp_path / f"{name}_mle.py"
    path.write_text(module_source(d))
    np.save(tmp_path / "x.npy", data)
    got = run_generated(path, tmp_path / "x.npy", constants)
    est = d.compile()
    expected = est(data, **constants)
    assert got["parameters"] == [q.name for q in model.parameters]
    assert not got["sympy_loaded"]
    for p, v in expected.items():
        assert got["estimate"][p] == pytest.approx(v, rel=1e-12, abs=1e-300), p
    for p, v in est.stderr(data, **constants).items():
        if v is None:
            assert got["stderr"][p] is None
        else:
            assert got["stderr"][p] == pytest.approx(v, rel=1e-10), p
    assert got["loglik"] == pytest.approx(est.log_likelihood(data, **expected, **constants), rel=1e-12)
    # the formulas are in the docstring
    assert all(p in got["doc"] for p in expected)


def test_compile_command_writes_a_module(tmp_path):
    out = tmp_path / "gamma_mle.py"
    result = CliRunner().invoke(cli, ["compile", "gamma", "-o", str(out)])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(5).gamma(2.5, 1 / 1.5, 20000)
    np.save(tmp_path / "x.npy", x)
    got = run_generated(out, tmp_path / "x.npy", {})
    ref = symmle.fit("gamma", x).estimates
    assert got["estimate"]["a"] == pytest.approx(ref["a"], rel=1e-10)
    assert got["estimate"]["b"] == pytest.approx(ref["b"], rel=1e-10)
    text = out.read_text()
    assert "import sympy" not in text and "import symmle" not in text


def test_closed_form_module_imports_numpy_only(tmp_path):
    """A family whose formulas need no special functions does not import SciPy."""
    text = module_source(symmle.derive("normal"))
    imports = [ln for ln in text.splitlines() if ln.startswith(("import ", "from "))]
    assert all("scipy" not in ln for ln in imports), imports
