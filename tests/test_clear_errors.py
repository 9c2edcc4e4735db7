"""Input that deserves a clear one-line message: never an internal error (exit 70), never a warning dump.

Each case was once an internal error or a multi-line warning on stderr. The command line is run as a
user runs it, in a subprocess, and stderr must be exactly one ``symmle:`` line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symmle
from symmle.base.budget import check_timeout
from symmle.base.errors import DataError, SpecError

EXPO = ["exponential"]
INLINE = ["--support", "0,oo", "--param", "lam:positive"]


def run(args: list[str], stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "symmle", *args], input=stdin, capture_output=True, timeout=300, cwd=cwd
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, proc.stderr.decode()
    assert lines[0].startswith("symmle: error: ")
    return lines[0]


@pytest.mark.parametrize("value", ["1e10", "inf", "1e300", "nan", "-inf", "0", "-1", "ten"])
def test_bad_timeout_is_a_usage_error(value):
    """--timeout 1e10 / inf / 1e300 overflowed the interval timer, nan raised ValueError: exit 70."""
    proc = run(["derive", *EXPO, "--timeout", value])
    assert proc.returncode == 2
    assert "timeout must be a number of seconds" in one_line(proc)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e300, "soon"])
def test_bad_timeout_in_the_library_is_a_spec_error(value):
    with pytest.raises(SpecError, match="timeout"):
        symmle.derive("exponential", timeout=value)


def test_timeout_check_accepts_ordinary_budgets():
    assert check_timeout(0.5) == 0.5 and check_timeout("20") == 20.0


@pytest.mark.parametrize(
    "density", ["lam*exp(-lam*x)*(1+sqrt(-1)*sin(x))", "lam*exp(-lam*x)*exp(sqrt(-1)*x)"]
)
def test_complex_valued_density_is_refused(density):
    """A complex density raised TypeError after a multi-line ComplexWarning."""
    proc = run(["derive", "--pdf", density, *INLINE])
    assert proc.returncode == 2
    assert "density is not real" in one_line(proc)


def test_radicand_beyond_int64_is_a_valid_density():
    """sqrt(10**20 + 1) reached NumPy as a Python int beyond int64: TypeError. The density is valid."""
    proc = run(["derive", "--pdf", "sqrt(10**20+1)/10**10*lam*exp(-lam*x)", *INLINE, "--format", "json"])
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    x = np.random.default_rng(0).exponential(0.5, 500)
    m = symmle.inline_model("sqrt(10**20+1)/10**10*lam*exp(-lam*x)", "x", "0,oo", ["lam:positive"])
    assert symmle.fit(m, x).estimates["lam"] == pytest.approx(1 / x.mean(), rel=1e-12)


def test_binary_spec_file(tmp_path):
    spec = tmp_path / "model.toml"
    spec.write_bytes(bytes(range(256)) * 4)
    proc = run(["derive", str(spec)])
    assert proc.returncode == 2
    one_line(proc)


def test_toml_nested_too_deep(tmp_path):
    spec = tmp_path / "deep.toml"
    spec.write_text("a=" + "[" * 5000 + "]" * 5000 + "\n")
    proc = run(["derive", str(spec)])
    assert proc.returncode == 2
    one_line(proc)


def test_carriage_return_inside_a_csv_row():
    """printf '1,2\\r5\\n' raised csv.Error: exit 70."""
    proc = run(["fit", *EXPO, "-"], stdin=b"1,2\r5\n")
    assert proc.returncode == 3
    one_line(proc)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize(
    "command", [["derive", *EXPO, "-o", "/dev/full"], ["compile", *EXPO, "-o", "/dev/full"]]
)
def test_writing_to_a_full_device(command):
    proc = run(command)
    assert proc.returncode == 2
    assert "cannot write" in one_line(proc)


def test_overflowing_sum_is_not_reported_as_a_missing_mle():
    """1e308 three times: the sum overflowed to inf, and symmle said the MLE was at lam = 0 (it is 1e-308)."""
    proc = run(["fit", *EXPO, "-"], stdin=b"1e308\n1e308\n1e308\n")
    assert proc.returncode == 3
    assert "overflows double precision" in one_line(proc)
    with pytest.raises(DataError, match="overflows"):
        symmle.fit("exponential", np.full(3, 1e308))


def test_numpy_warnings_do_not_reach_stderr():
    """`check gamma --true a=1e-5,b=1` printed four NumPy RuntimeWarnings before its one-line verdict."""
    proc = run(
        [
            "check",
            "gamma",
            "--true",
            "a=1e-5,b=1",
            "--n",
            "100",
            "--reps",
            "40",
            "--seed",
            "1",
            "--agree",
            "2",
        ]
    )
    assert proc.returncode == 6
    assert "check failed" in one_line(proc)


def test_agreement_is_capped_at_the_replicates():
    r = symmle.check("exponential", {"lam": 2.0}, n=50, reps=10, seed=3, agree=10**8)
    assert max(p.agreement_rows for p in r.parameters.values()) <= 10
    with pytest.raises(SpecError, match="agree"):
        symmle.check("exponential", {"lam": 2.0}, n=50, reps=10, seed=3, agree=-1)
