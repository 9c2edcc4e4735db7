"""Bad data: every problem is a ``DataError`` (exit code 3 on the command line) with one line naming it.

Each case is checked twice: through the library (``load_data`` then
``fit``) and through ``symmle fit``, which must print exactly one line
``symmle: error: ...`` on stderr, nothing on stdout, and no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import symmle
import symmle.base._runtime
import symmle.numbers.data as data_module
from symmle.base.errors import DataError
from symmle.cli import cli
from symmle.numbers.data import load_data, validate_data


def write(path, text):
    path.write_text(text)
    return path


def npy(path, array):
    np.save(path, np.asarray(array))
    return path


# (id, make(tmp_path) -> path, model, extra CLI args, constants for fit, column,
#  words the message must contain)
CASES = [
    (
        "nan-npy",
        lambda t: npy(t / "x.npy", [1.0, 2.0, np.nan, 3.0]),
        "exponential",
        [],
        {},
        None,
        ["row 3", "nan"],
    ),
    (
        "inf-npy",
        lambda t: npy(t / "x.npy", [1.0, np.inf, 3.0]),
        "exponential",
        [],
        {},
        None,
        ["row 2", "inf"],
    ),
    (
        "minus-inf-npy",
        lambda t: npy(t / "x.npy", [0.5, 1.0, 2.0, -np.inf]),
        "normal",
        [],
        {},
        None,
        ["row 4", "inf"],
    ),
    ("nan-txt", lambda t: write(t / "x.txt", "1.0\nnan\n2.0\n"), "normal", [], {}, None, ["row 2", "nan"]),
    (
        "empty-csv-field",
        lambda t: write(t / "data.csv", "id,height\n1,170.5\n2,\n3,180.25\n"),
        "normal",
        ["--column", "height"],
        {},
        "height",
        ["row 2"],
    ),
    ("empty-file", lambda t: write(t / "x.txt", ""), "exponential", [], {}, None, ["x.txt", "empty"]),
    ("blank-file", lambda t: write(t / "x.csv", "\n  \n"), "exponential", [], {}, None, ["x.csv", "empty"]),
    (
        "header-only-csv",
        lambda t: write(t / "x.csv", "id,height\n"),
        "normal",
        ["--column", "height"],
        {},
        "height",
        ["no data"],
    ),
    (
        "empty-array",
        lambda t: npy(t / "x.npy", np.array([], dtype=float)),
        "exponential",
        [],
        {},
        None,
        ["empty"],
    ),
    (
        "negative-exponential",
        lambda t: write(t / "x.txt", "1.0\n2.0\n-0.5\n3.0\n"),
        "exponential",
        [],
        {},
        None,
        ["row 3", "-0.5", "support"],
    ),
    (
        "negative-exponential-npy",
        lambda t: npy(t / "x.npy", [1.0, 2.0, 3.0, 4.0, -2.0]),
        "exponential",
        [],
        {},
        None,
        ["row 5", "support"],
    ),
    (
        "above-beta-support",
        lambda t: write(t / "x.txt", "0.2\n0.5\n1.5\n"),
        "beta",
        [],
        {},
        None,
        ["row 3", "1.5", "support"],
    ),
    (
        "non-integer-poisson",
        lambda t: write(t / "x.txt", "1\n2\n1.5\n3\n"),
        "poisson",
        [],
        {},
        None,
        ["row 3", "1.5", "integer"],
    ),
    (
        "binomial-above-n",
        lambda t: write(t / "x.txt", "1\n7\n2\n"),
        "binomial",
        ["--const", "n=6"],
        {"n": 6},
        None,
        ["row 2", "support"],
    ),
    ("missing-constant", lambda t: npy(t / "x.npy", [1.0, 2.0, 3.0]), "weibull_scale", [], {}, None, ["k"]),
    (
        "unknown-column",
        lambda t: write(t / "data.csv", "id,height\n1,170\n2,180\n"),
        "normal",
        ["--column", "weight"],
        {},
        "weight",
        ["weight"],
    ),
    (
        "several-columns",
        lambda t: write(t / "data.csv", "id,height\n1,170\n2,180\n"),
        "normal",
        [],
        {},
        None,
        ["--column"],
    ),
    (
        "several-columns-no-header",
        lambda t: write(t / "data.txt", "1 170\n2 180\n"),
        "normal",
        [],
        {},
        None,
        ["--column"],
    ),
    (
        "column-out-of-range",
        lambda t: write(t / "data.csv", "id,height\n1,170\n2,180\n"),
        "normal",
        ["--column", "3"],
        {},
        "3",
        ["3"],
    ),
    (
        "non-numeric-cell-csv",
        lambda t: write(t / "data.csv", "id,height\n1,170\n2,abc\n3,180\n"),
        "normal",
        ["--column", "height"],
        {},
        "height",
        ["line 3", "abc"],
    ),
    (
        "non-numeric-cell-txt",
        lambda t: write(t / "x.txt", "1.0\n2.0\nfoo\n"),
        "normal",
        [],
        {},
        None,
        ["line 3", "foo"],
    ),
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
    monkeypatch.setattr(symmle.base._runtime, "CHUNK", 1000)
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
    out = subprocess.run(
        [sys.executable, "-m", "symmle", "fit", "exponential", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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


# --- .npy files whose values are not one number per row ---------------------------------------------------


def test_structured_npy_with_a_sub_array_field_is_refused(tmp_path):
    """Field 'a' of shape (2,) was flattened: 'n = 3' with the moments of all 6 values."""
    path = tmp_path / "x.npy"
    np.save(path, np.array([([1.0, 2.0],), ([3.0, 4.0],), ([5.0, 9.0],)], dtype=[("a", "f8", (2,))]))
    for column in (None, "a"):
        with pytest.raises(DataError, match=r"field 'a' of x.npy holds an array of shape \(2,\)"):
            load_data(path, column)
    result = CliRunner().invoke(cli, ["fit", "normal", str(path)])
    one_line_error(result, ["field 'a'", "one number per row"])


def test_structured_npy_scalar_field_is_read_by_name(tmp_path):
    """A named scalar field is still a column (next to the sub-array field that is refused)."""
    path = tmp_path / "x.npy"
    np.save(
        path,
        np.array(
            [(1, [0.0, 0.0], 2.5), (2, [0.0, 0.0], 3.5)],
            dtype=[("id", "i4"), ("pair", "f8", (2,)), ("h", "f8")],
        ),
    )
    assert load_data(path, "h").tolist() == [2.5, 3.5]
    with pytest.raises(DataError, match="shape"):
        load_data(path, "pair")


def test_timedelta_npy_is_refused(tmp_path):
    """timedelta64 is a NumPy integer subtype: it was fitted as numbers (datetime64 was refused)."""
    path = npy(tmp_path / "x.npy", np.array([1, 2, 3], dtype="timedelta64[s]"))
    with pytest.raises(DataError, match="timedelta64"):
        load_data(path)


def test_empty_npy_file_is_a_data_error(tmp_path):
    """np.load raised EOFError on a 0-byte .npy: an internal error (exit 70)."""
    (tmp_path / "x.npy").write_bytes(b"")
    result = CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.npy")])
    one_line_error(result, ["x.npy", "not a readable .npy file"])


# --- text read as a stream ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.txt", "x.npy"])
def test_data_that_is_not_a_regular_file(tmp_path, name):
    """A directory was reported as a missing file; the message now says what it is and how to stream."""
    (tmp_path / name).mkdir()
    with pytest.raises(DataError, match="is a directory, not a regular file: to stream data, give -"):
        load_data(tmp_path / name)


def test_nul_byte_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"1.0\n2.0\n3\x00\n4.0\n")
    with pytest.raises(DataError, match="x.txt, line 3 holds a NUL byte"):
        load_data(path)


def test_bytes_that_are_not_utf8_are_refused_naming_their_line(tmp_path):
    """The message was Python's ('utf-8' codec can't decode byte 0xff in position 8)."""
    path = tmp_path / "x.txt"
    path.write_bytes(b"1.0\n2.0\n\xff\n")
    with pytest.raises(DataError, match="x.txt, line 3 is not UTF-8 text"):
        load_data(path)


def test_over_long_line_is_refused(tmp_path):
    """A line of 2**20 + 1 characters is not accumulated (it was read as the number inf)."""
    path = tmp_path / "x.txt"
    path.write_text("1.0\n" + "1" * (data_module.MAX_LINE_LENGTH + 1) + "\n")
    with pytest.raises(DataError, match="line 2 is longer than 1,048,576 characters"):
        load_data(path)


def test_byte_order_mark_is_not_part_of_the_header(tmp_path):
    """A spreadsheet's UTF-8 byte-order mark made the first column '\\ufeffheight'."""
    path = tmp_path / "x.csv"
    path.write_bytes("height,id\r\n1.5,1\r\n2.5,2\r\n".encode("utf-8-sig"))
    assert load_data(path, "height").tolist() == [1.5, 2.5]


def test_carriage_returns_end_lines():
    """A bare CR on standard input was csv.Error (exit 70): \r and \r\n end lines (universal newlines)."""
    args = [sys.executable, "-m", "symmle", "fit", "exponential", "-", "--json"]
    text = b"a,b\r1,2\r\n3,4\r5,6\n"
    out = subprocess.run([*args, "--column", "b"], input=text, capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["n"] == 3 and result["estimates"]["lam"] == pytest.approx(1 / 4, rel=1e-12)
    out = subprocess.run(args, input=text, capture_output=True, timeout=120, check=False)
    assert out.returncode == 3
    assert out.stderr.decode().startswith("symmle: error: standard input has 2 columns")


ROWS = 3000
TABLE = "id,height\r\n" + "".join(f"{i},{'' if i == 1234 else i / 8}\r\n" for i in range(ROWS))


@pytest.mark.parametrize("block", [7, 64, 1000, 1 << 20])
def test_blocks_join_into_the_same_column(tmp_path, monkeypatch, block):
    """Whatever the block size, the column, its missing cell and the line of a bad cell are the same."""
    monkeypatch.setattr(data_module, "BLOCK_BYTES", block)
    path = tmp_path / "x.csv"
    path.write_text(TABLE, newline="")
    got = load_data(path, "height")
    expected = np.array([np.nan if i == 1234 else i / 8 for i in range(ROWS)])
    np.testing.assert_array_equal(got, expected)
    # a character of several bytes may straddle two blocks
    path.write_bytes(("h\n" + "1.5\n" * 40 + "é\n").encode())
    with pytest.raises(DataError, match="line 42: 'é' is not a number"):
        load_data(path)
    path.write_text(TABLE.replace("2500,312.5", "2500,3l2.5"), newline="")
    with pytest.raises(DataError, match="line 2502: '3l2.5' is not a number"):
        load_data(path, "height")
    # one column in the first lines, two in a late one
    path.write_text("".join(f"{i / 8}\n" if i != 2990 else "1 2\n" for i in range(ROWS)))
    with pytest.raises(DataError, match="line 2991 has 2 columns: choose one with --column"):
        load_data(path)


# Peak resident memory (VmHWM) added by reading the file, after a small read has loaded the
# parsers (pyarrow and its thread pools).  Address space (RLIMIT_AS) is no measure of this since
# pyarrow: its threads reserve about a gigabyte of address space that they never touch.
MEMORY_CHILD = """
import sys
import numpy as np
from symmle.numbers.data import load_data
def peak():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) << 10
load_data(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
before = peak()
x = load_data(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else None)
print(x.shape[0], repr(float(x.sum())), peak() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("name, column", [("x.txt", None), ("x.csv", "value")])
def test_text_data_is_read_in_bounded_memory(tmp_path, name, column):
    """2 million rows within 160 MB of resident memory (about 460 bytes a value were needed: 900 MB)."""
    n = 2_000_000
    x = np.random.default_rng(3).exponential(1.0, n).round(6)
    path = tmp_path / name
    small = tmp_path / ("small" + path.suffix)
    if column is None:
        np.savetxt(path, x, fmt="%.6f")
        np.savetxt(small, x[:5000], fmt="%.6f")
    else:
        for p, m in ((path, n), (small, 5000)):
            with open(p, "w") as fh:
                fh.write("id,value\n")
                np.savetxt(fh, np.column_stack([np.arange(m), x[:m]]), fmt=["%d", "%.6f"], delimiter=",")
    args = [sys.executable, "-c", MEMORY_CHILD, str(path), str(small)] + ([column] if column else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rows, total, grown = out.stdout.split()
    assert int(rows) == n and float(total) == pytest.approx(x.sum(), rel=1e-12)
    assert int(grown) < 160 << 20, f"reading took {int(grown) >> 20} MB"
