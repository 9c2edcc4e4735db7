"""The command line: output of ``list`` and ``derive``, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sympy as sp
from click.testing import CliRunner

from symmle.cli import cli
from symmle.model.catalogue import family_names

LAM_EXP = ["--pdf", "lam*exp(-lam*x)", "--var", "x", "--support", "0,oo", "--param", "lam:positive"]
WEIBULL = [
    "--pdf",
    "k/lam*(x/lam)**(k-1)*exp(-(x/lam)**k)",
    "--var",
    "x",
    "--support",
    "0,oo",
    "--param",
    "lam:positive",
    "--const",
    "k:positive=1.8",
]
BINOMIAL = [
    "--pdf",
    "binomial(n, k)*p**k*(1-p)**(n-k)",
    "--var",
    "k",
    "--discrete",
    "--support",
    "0,n",
    "--param",
    "p:unit",
    "--const",
    "n:positive_integer",
]


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    return result.stdout


def sym_table(doc):
    """Symbols for the names of a derive JSON document (assumptions as in the model)."""
    domain = {
        "real": {"real": True},
        "positive": {"positive": True},
        "nonnegative": {"nonnegative": True},
        "unit": {"positive": True},
        "integer": {"integer": True},
        "positive_integer": {"integer": True, "positive": True},
    }
    m = doc["model"]
    names = {k: sp.Symbol(k, **domain[v]) for k, v in {**m["parameters"], **m["constants"]}.items()}
    names["N"] = sp.Symbol("N", positive=True, integer=True)
    for t in doc["sufficient_statistics"]:
        names[t] = sp.Symbol(t)
    return names


def statistic_named(doc, names, g):
    """The ``T_j`` whose expression is ``g`` (a string in the model variable)."""
    x = sp.Symbol(doc["model"]["variable"])
    for t, expr in doc["sufficient_statistics"].items():
        if (
            sp.simplify(
                sp.sympify(expr, locals={doc["model"]["variable"]: x})
                - sp.sympify(g, locals={doc["model"]["variable"]: x})
            )
            == 0
        ):
            return names[t]
    raise AssertionError(f"no statistic {g} in {doc['sufficient_statistics']}")


def same(a, b):
    """Equal as mathematics, whatever the assumptions on the symbols."""
    plain = lambda e: e.subs({s: sp.Symbol(s.name) for s in e.free_symbols})  # noqa: E731
    return sp.simplify(plain(a) - plain(b)) == 0


# --------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------


def test_list_text():
    out = ok(run("list"))
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 24
    names = {line.split()[0] for line in lines}
    assert set(family_names()) <= names


def test_list_json():
    doc = json.loads(ok(run("list", "--json")))
    assert doc["schema"] == 1
    families = {f["name"]: f for f in doc["families"]}
    assert len(families) >= 24
    assert families["normal"]["parameters"] == {"mu": "real", "sigma2": "positive"}
    assert families["normal"]["constants"] == {}
    assert families["binomial"]["discrete"] is True
    assert families["binomial"]["constants"] == {"n": "positive_integer"}
    assert families["exponential"]["parameters"] == {"lam": "positive"}
    for f in families.values():
        assert {"name", "title", "discrete", "parameters", "constants"} <= set(f)
        assert f["parameters"]


# --------------------------------------------------------------------------
# derive
# --------------------------------------------------------------------------


def test_derive_normal_text():
    out = ok(run("derive", "normal"))
    assert "mu_hat" in out and "sigma2_hat" in out
    assert "Fisher" in out


@pytest.mark.parametrize("fmt", ["latex", "markdown"])
def test_derive_other_formats(fmt):
    out = ok(run("derive", "exponential", "--format", fmt))
    assert "lambda" in out


def test_derive_poisson_json():
    doc = json.loads(ok(run("derive", "poisson", "--format", "json")))
    assert doc["schema"] == 1
    names = sym_table(doc)
    est = doc["estimators"]["lam"]
    assert est["kind"] == "closed_form"
    T = statistic_named(doc, names, "x")
    assert same(sp.sympify(est["expr"], locals=names), T / names["N"])
    lam = names["lam"]
    assert same(sp.sympify(doc["fisher_information"][0][0], locals=names), 1 / lam)
    assert same(sp.sympify(doc["crlb"][0][0], locals=names), lam / names["N"])


def test_derive_output_file(tmp_path):
    target = tmp_path / "out.json"
    ok(run("derive", "exponential", "--format", "json", "-o", str(target)))
    assert json.loads(target.read_text())["schema"] == 1


def test_inline_exponential():
    doc = json.loads(ok(run("derive", *LAM_EXP, "--format", "json")))
    names = sym_table(doc)
    T = statistic_named(doc, names, "x")
    assert same(sp.sympify(doc["estimators"]["lam"]["expr"], locals=names), names["N"] / T)
    assert "lam_hat" in ok(run("derive", *LAM_EXP))


def test_inline_weibull_known_shape():
    doc = json.loads(ok(run("derive", *WEIBULL, "--format", "json")))
    names = sym_table(doc)
    k = names["k"]
    est = doc["estimators"]["lam"]
    assert est["kind"] == "closed_form"
    T = statistic_named(doc, names, "x**k")
    assert same(sp.sympify(est["expr"], locals=names), (T / names["N"]) ** (1 / k))


def test_inline_binomial():
    doc = json.loads(ok(run("derive", *BINOMIAL, "--format", "json")))
    names = sym_table(doc)
    T = statistic_named(doc, names, "k")
    assert same(sp.sympify(doc["estimators"]["p"]["expr"], locals=names), T / (names["N"] * names["n"]))
    assert ok(run("derive", *BINOMIAL))


# --------------------------------------------------------------------------
# errors: one line on stderr, non-zero exit, never a traceback
# --------------------------------------------------------------------------

ERRORS = {
    "unknown_model": (["derive", "no_such_family"], "no_such_family"),
    "unknown_symbol": (
        ["derive", "--pdf", "lam*exp(-mu*x)", "--support", "0,oo", "--param", "lam:positive"],
        "mu",
    ),
    "not_normalised": (
        ["derive", "--pdf", "2*lam*exp(-lam*x)", "--support", "0,oo", "--param", "lam:positive"],
        "1",
    ),
    "negative_density": (
        ["derive", "--pdf", "1 + a*(2*x - 1)", "--support", "0,1", "--param", "a:positive"],
        "negative",
    ),
    "missing_support": (["derive", "--pdf", "lam*exp(-lam*x)", "--param", "lam:positive"], "support"),
    "bad_domain": (
        ["derive", "--pdf", "lam*exp(-lam*x)", "--support", "0,oo", "--param", "lam:positiv"],
        "positiv",
    ),
    "param_is_variable": (
        ["derive", "--pdf", "x*exp(-x*x)", "--support", "0,oo", "--param", "x:positive"],
        "x",
    ),
    "duplicate_param": (["derive", *LAM_EXP, "--param", "lam:positive"], "lam"),
    "reversed_support": (
        ["derive", "--pdf", "lam*exp(-lam*x)", "--support", "5,1", "--param", "lam:positive"],
        "support",
    ),
    "const_bad_syntax": (["derive", *WEIBULL[:-2], "--const", "k"], "--const"),
    "const_bad_value": (["derive", *WEIBULL[:-2], "--const", "k:positive=-2"], "k"),
    "model_and_pdf": (["derive", "normal", *LAM_EXP], "not both"),
    "no_model": (["derive"], "MODEL"),
    "unknown_constant": (["derive", "binomial", "--const", "m=7"], "'m'"),
    "constant_outside_domain": (["derive", "binomial", "--const", "n=2.5"], "n"),
    "tiny_timeout": (["derive", "normal", "--timeout", "0.001"], "time budget"),
    "missing_spec_file": (["derive", "no_such_dir/model.toml"], "model.toml"),
    "unwritable_output": (["derive", "exponential", "-o", "/nonexistent_dir_symmle/out.txt"], "cannot write"),
    "inline_option_with_model": (["derive", "normal", "--param", "mu:real"], "--pdf"),
    "attribute_access": (
        ["derive", "--pdf", "lam.__class__", "--support", "0,oo", "--param", "lam:positive"],
        None,
    ),
    "import_in_pdf": (
        [
            "derive",
            "--pdf",
            "__import__('os').system('true')",
            "--support",
            "0,oo",
            "--param",
            "lam:positive",
        ],
        None,
    ),
}


@pytest.mark.parametrize("args, needle", list(ERRORS.values()), ids=list(ERRORS))
def test_error_is_one_line(args, needle):
    result = run(*args)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if lines[0].startswith("Usage:") or lines[0].startswith("Error:"):
        pytest.fail(f"click usage error instead of symmle's: {result.stderr!r}")
    assert lines[0].startswith("symmle: error:"), lines[0]
    assert "internal error" not in lines[0], lines[0]
    if needle is not None:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""


def test_usage_error_has_no_traceback():
    result = run("derive", "normal", "--format", "pdf")
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "pdf" in result.stderr


def test_symmle_error_exit_codes():
    assert run("derive", "no_such_family").exit_code == 2  # SpecError
    assert run("derive", "normal", "--timeout", "0.001").exit_code == 5  # DerivationTimeout


def test_derive_spec_file(tmp_path):
    path = tmp_path / "rate.toml"
    path.write_text(
        'name = "rate"\ntitle = "Rate"\nvariable = "x"\nsupport = ["0", "oo"]\ndensity = "lam*exp(-lam*x)"\n'
        '[parameters]\nlam = "positive"\n',
        encoding="utf-8",
    )
    doc = json.loads(ok(run("derive", str(path), "--format", "json")))
    assert doc["model"]["name"] == "rate"
    names = sym_table(doc)
    assert same(
        sp.sympify(doc["estimators"]["lam"]["expr"], locals=names),
        names["N"] / statistic_named(doc, names, "x"),
    )


def test_derive_catalogue_with_constant_value():
    doc = json.loads(ok(run("derive", "binomial", "--const", "n=7", "--format", "json")))
    names = sym_table(doc)
    assert same(
        sp.sympify(doc["estimators"]["p"]["expr"], locals=names),
        statistic_named(doc, names, "x") / (names["N"] * names["n"]),
    )


# --------------------------------------------------------------------------
# python -m symmle
# --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["list"], ["--help"]], ids=["list", "help"])
def test_python_m_symmle(args):
    proc = subprocess.run([sys.executable, "-m", "symmle", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "Traceback" not in proc.stderr
    if args == ["list"]:
        assert len(proc.stdout.strip().splitlines()) >= 24


def test_closed_pipe_is_not_an_error():
    """`symmle list | head -1` must not print an error when the reader closes the pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "symmle", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader is gone before symmle writes anything
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert "error" not in stderr and "Traceback" not in stderr, stderr
