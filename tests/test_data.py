"""Bad data: every problem is a ``DataError`` (exit code 3 on the command line) with one line naming it.

Each case is checked twice: through the library (``load_data`` then
``fit``) and through ``symmle fit``, which must print exactly one line
``symmle: error: ...`` on stderr, nothing on stdout, and no traceback.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import symmle
import symmle._runtime
from symmle.cli import cli
from symmle.data import load_data, validate_data
from symmle.errors import DataError


def write(path, text):
    path.write_text(text)
    return path


def npy(path, array):
    np.save(path, np.asarray(array))
    return path


# (id, make(tmp_path) -> path, model, extra CLI args, constants for fit, column, words the message must contain)
CASES = [
    ("nan-npy", lambda t: npy(t / "x.npy", [1.0, 2.0, np.nan, 3.0]), "exponential", [], {}, None, ["row 3", "nan"]),
    ("inf-npy", lambda t: npy(t / "x.npy", [1.0, np.inf, 3.0]), "exponential", [], {}, None, ["row 2", "inf"]),
    ("minus-inf-npy", lambda t: npy(t / "x.npy", [0.5, 1.0, 2.0, -np.inf]), "normal", [], {}, None, ["row 4", "inf"]),
    ("nan-txt", lambda t: write(t / "x.txt", "1.0\nnan\n2.0\n"), "normal", [], {}, None, ["row 2", "nan"]),
    ("empty-csv-field", lambda t: write(t / "data.csv", "id,height\n1,170.5\n2,\n3,180.25\n"), "normal", ["--column", "height"], {},
     "height", ["row 2"]),
    ("empty-file", lambda t: write(t / "x.txt", ""), "exponential", [], {}, None, ["x.txt", "empty"]),
    ("blank-file", lambda t: write(t / "x.csv", "\n  \n"), "exponential", [], {}, None, ["x.csv", "empty"]),
    ("header-only-csv", lambda t: write(t / "x.csv", "id,height\n"), "normal", ["--column", "height"], {}, "height", ["no data"]),
    ("empty-array", lambda t: npy(t / "x.npy", np.array([], dtype=float)), "exponential", [], {}, None, ["empty"]),
    ("negative-exponential", lambda t: write(t / "x.txt", "1.0\n2.0\n-0.5\n3.0\n"), "exponential", [], {}, None,
     ["row 3", "-0.5", "support"]),
    ("negative-exponential-npy", lambda t: npy(t / "x.npy", [1.0, 2.0, 3.0, 4.0, -2.0]), "exponential", [], {}, None,
     ["row 5", "support"]),
    ("above-beta-support", lambda t: write(t / "x.txt", "0.2\n0.5\n1.5\n"), "beta", [], {}, None, ["row 3", "1.5", "support"]),
    ("non-integer-poisson", lambda t: write(t / "x.txt", "1\n2\n1.5\n3\n"), "poisson", [], {}, None, ["row 3", "1.5", "integer"]),
    ("binomial-above-n", lambda t: write(t / "x.txt", "1\n7\n2\n"), "binomial", ["--const", "n=6"], {"n": 6}, None, ["row 2", "support"]),
    ("missing-constant", lambda t: npy(t / "x.npy", [1.0, 2.0, 3.0]), "weibull_scale", [], {}, None, ["k"]),
    ("unknown-column", lambda t: write(t / "data.csv", "id,height\n1,170\n2,180\n"), "normal", ["--column", "weight"], {}, "weight",
     ["weight"]),
    ("several-columns", lambda t: write(t / "data.csv", "id,height\n1,170\n2,180\n"), "normal", [], {}, None, ["--column"]),
    ("several-columns-no-header", lambda t: write(t / "data.txt", "1 170\n2 180\n"), "normal", [], {}, None, ["--column"]),
    ("column-out-of-range", lambda t: write(t / "data.csv", "id,height\n1,170\n2,180\n"), "normal", ["--column", "3"], {}, "3",
     ["3"]),
    ("non-numeric-cell-csv", lambda t: write(t / "data.csv", "id,height\n1,170\n2,abc\n3,180\n"), "normal", ["--column", "height"], {},
     "height", ["line 3", "abc"]),
    ("non-numeric-cell-txt", lambda t: write(t / "x.txt", "1.0\n2.0\nfoo\n"), "normal", [], {}, None, ["line 3", "foo"]),
    ("missing-file", lambda t: t / "nowhere.csv", "normal", [], {}, None, ["nowhere.csv"]),
    ("npy-2d", lambda t: npy(t / "x.npy", np.ones((5, 3))), "normal", [], {}, None, ["--column"]),
    ("npy-3d", lambda t: npy(t / "x.npy", np.ones((2, 2, 2))), "normal", [], {}, None, ["dimension"]),
    ("npy-strings", lambda t: npy(t / "x.npy", np.array(["a", "b"])), "normal", [], {}, None, ["x.npy"]),
    ("not-npy", lambda t: write(t / "x.npy", "1.0\n2.0\n"), "normal", [], {}, None, ["x.npy"]),
]
IDS = [c[0] for c in CASES]


def one_line_error(result, words):
    assert result.exit_code == 3, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("symmle: error: "), lines
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_data_library(case, tmp_path):
    _, make, model, _, consts, column, words = case
    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        symmle.fit(model, load_data(path, column), consts)
    message = str(info.value)
    assert "\n" not in message
    for w in words:
        assert w in message, (w, message)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_data_command_line(case, tmp_path):
    _, make, model, args, _, _, words = case
    path = make(tmp_path)
    result = CliRunner().invoke(cli, ["fit", model, str(path), *args])
    one_line_error(result, words)


def test_bad_data_on_stdin():
    result = CliRunner().invoke(cli, ["fit", "exponential", "-"], input="")
    one_line_error(result, ["standard input", "empty"])
    result = CliRunner().invoke(cli, ["fit", "exponential", "-"], input="1.0\n-1.0\n")
    one_line_error(result, ["row 2", "support"])


def test_bad_row_is_found_beyond_the_first_chunk(tmp_path, monkeypatch):
    """Rows are numbered across chunks of a memory-mapped file."""
    x = np.random.default_rng(1).exponential(1.0, 5000)
    x[2500] = np.nan
    x[4000] = -1.0
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(symmle._runtime, "CHUNK", 1000)
    result = CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.npy")])
    one_line_error(result, ["row 2501"])
    x[2500] = 1.0
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.npy")])
    one_line_error(result, ["row 4001", "support"])


def test_validate_data_directly():
    validate_data(np.array([0.0, 1.0, 2.5]), lo=0.0, hi=np.inf, discrete=False)
    validate_data(np.array([0.0, 1.0, 2.0]), lo=0.0, hi=np.inf, discrete=True)
    with pytest.raises(DataError, match="row 2"):
        validate_data(np.array([0.0, -1.0, 2.5]), lo=0.0, hi=np.inf, discrete=False)
    with pytest.raises(DataError, match="row 3"):
        validate_data(np.array([0.0, 1.0, 2.5]), lo=0.0, hi=np.inf, discrete=True)
    with pytest.raises(DataError, match="row 1"):
        validate_data(np.array([np.nan, 1.0]), lo=-np.inf, hi=np.inf, discrete=False)
    with pytest.raises(DataError, match="empty"):
        validate_data(np.array([]), lo=-np.inf, hi=np.inf, discrete=False)
    with pytest.raises(DataError, match="row 2"):
        validate_data(np.array([0.5, 1.5]), lo=0.0, hi=1.0, discrete=False)


def test_good_files_load(tmp_path):
    """The loaders read what they should (so the error cases above fail for the stated reason)."""
    values = [1.5, 2.25, 0.125]
    write(tmp_path / "a.csv", "id,height\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    assert load_data(tmp_path / "a.csv", "height").tolist() == values
    assert load_data(tmp_path / "a.csv", "2").tolist() == values
    write(tmp_path / "a.txt", "\n".join(map(str, values)) + "\n")
    assert load_data(tmp_path / "a.txt").tolist() == values
    npy(tmp_path / "a.npy", values)
    loaded = load_data(tmp_path / "a.npy")
    assert isinstance(loaded, np.memmap) and loaded.tolist() == values
    npy(tmp_path / "b.npy", np.column_stack([np.arange(3.0), values]))
    assert load_data(tmp_path / "b.npy", "2").tolist() == values


def test_real_process_prints_one_line(tmp_path):
    path = write(tmp_path / "x.txt", "1.0\n2.0\n-0.5\n")
    out = subprocess.run([sys.executable, "-m", "symmle", "fit", "exponential", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 3, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: ") and "row 3" in lines[0], out.stderr


def test_column_on_a_one_dimensional_npy_is_refused(tmp_path):
    """--column on a file that has one column is an error, not silently ignored."""
    path = tmp_path / "x.npy"
    np.save(path, np.arange(1.0, 6.0))
    with pytest.raises(DataError, match="one column"):
        load_data(path, column="2")
    assert load_data(path, column="1").shape == (5,)


def test_one_line_of_numbers_is_the_observations(tmp_path):
    """A .txt file with its numbers written across one line holds observations, not columns."""
    (tmp_path / "x.txt").write_text("1.0 2.0 3.5\n")
    assert load_data(tmp_path / "x.txt").tolist() == [1.0, 2.0, 3.5]
    # with a header, one line is one row of a table: pick a column
    (tmp_path / "t.txt").write_text("a b\n1.0 2.0\n")
    with pytest.raises(DataError, match="2 columns"):
        load_data(tmp_path / "t.txt")
