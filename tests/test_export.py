"""``symmle export MODEL --to statsmodels``: the written module fitted by statsmodels agrees with ``fit``.

The module is written by the command line into a temporary directory and run in a subprocess (as a
user would import it), so nothing of symmle is in the process that fits it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

import symmle
from symmle.base.errors import SpecError
from symmle.cli import cli
from symmle.numbers.export_statsmodels import class_name, statsmodels_source

pytest.importorskip("statsmodels")

FIT = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import {module} as mod
    x = np.load(sys.argv[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mod.{cls}(x).fit(disp=0)
        robust = mod.{cls}(x).fit(disp=0, cov_type="HC0")
    print(json.dumps({{"params": res.params.tolist(), "bse": res.bse.tolist(), "llf": float(res.llf),
                      "names": list(res.model.exog_names), "robust": robust.bse.tolist(),
                      "summary": "Log-Likelihood" in str(res.summary())}}))
    """
)


def _sample(name: str) -> np.ndarray:
    rng = np.random.default_rng(17)
    return {
        "normal": lambda: rng.normal(1.5, 2.0, 250),
        "gamma": lambda: rng.gamma(2.5, 1 / 1.5, 300),
        "poisson": lambda: rng.poisson(3.3, 200).astype(float),
    }[name]()


@pytest.mark.parametrize("name", ["normal", "gamma", "poisson"])
def test_exported_model_agrees_with_fit(tmp_path, name):
    out = CliRunner().invoke(
        cli, ["export", name, "--to", "statsmodels", "-o", str(tmp_path / f"{name}_model.py")]
    )
    assert out.exit_code == 0, out.output
    source = (tmp_path / f"{name}_model.py").read_text()
    ast.parse(source)
    x = _sample(name)
    np.save(tmp_path / "x.npy", x)
    script = FIT.format(module=f"{name}_model", cls=class_name(name))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    ref = symmle.fit(name, x)
    names = list(ref.estimates)
    assert got["names"] == names
    np.testing.assert_allclose(got["params"], [ref.estimates[k] for k in names], rtol=1e-6)
    np.testing.assert_allclose(got["bse"], [ref.stderr[k] for k in names], rtol=1e-6)
    assert got["llf"] == pytest.approx(ref.log_likelihood, rel=1e-9)
    # robust (sandwich) errors read score_obs: finite, and of the size of the model-based ones
    assert np.all(np.isfinite(got["robust"]))
    np.testing.assert_allclose(got["robust"], got["bse"], rtol=0.5)
    assert got["summary"]


def test_constants_are_keyword_arguments(tmp_path):
    path = tmp_path / "weibull_scale_model.py"
    out = CliRunner().invoke(cli, ["export", "weibull_scale", "--to", "statsmodels", "-o", str(path)])
    assert out.exit_code == 0, out.output
    rng = np.random.default_rng(2)
    x = 2.0 * rng.weibull(1.5, 200)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        """
        import sys, warnings
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        import weibull_scale_model as mod
        x = np.load(sys.argv[2])
        try:
            mod.WeibullScaleModel(x)
        except ValueError as exc:
            print("refused:", exc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            print(repr(float(mod.WeibullScaleModel(x, k=1.5).fit(disp=0).params[0])))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    refused, value = proc.stdout.strip().splitlines()
    assert refused == "refused: give the value of the constant k"
    ref = symmle.fit("weibull_scale", x, {"k": 1.5})
    assert float(value) == pytest.approx(ref.estimates["lam"], rel=1e-8)


def test_non_regular_and_structured_models_are_refused():
    with pytest.raises(SpecError, match="sets the support"):
        statsmodels_source(symmle.derive("uniform"))
    with pytest.raises(SpecError, match="scalar model"):
        statsmodels_source(symmle.derive("poisson", prior={"lam": "gamma(a=2, b=1)"}))


def test_hostile_names_never_reach_the_source():
    assert class_name('x"):\n import os') == "SymmleModel"
    assert class_name("class") == "ClassModel"
    d = symmle.derive("exponential")
    hostile = replace(d.model, title='Evil """\nimport os\nos.system("x")', name='e"; import os #')
    src = statsmodels_source(replace(d, model=hostile))
    tree = ast.parse(src)
    imports = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imports |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imports <= {"numpy", "scipy.special", "statsmodels.base.model"}
    assert not any(
        isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "system" for node in ast.walk(tree)
    )
    assert "class SymmleModel(GenericLikelihoodModel):" in src
    assert ast.get_docstring(tree).startswith('Evil """')
