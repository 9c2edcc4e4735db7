"""Tables as a new user has them: CSV, TSV, compressed text and Parquet, with missing values.

Each format must give exactly the numbers of the same column saved as ``.npy`` (the values are
written with ``repr``, so text holds them exactly); a missing value is named by its row unless
``--dropna`` drops it; a byte-order mark is not part of a column name.  Then what a command does
with its output: it never overwrites the file it reads (``-o`` naming the spec file), it fails in
one line when standard output is closed or full, and a missing matplotlib is an option error.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import symmle.base._runtime
import symmle.numbers.data as data_module
import symmle.numbers.missing as missing_module
from symmle.base.errors import DataError
from symmle.cli import cli
from symmle.numbers.data import load_data, validate_data

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parent.parent
ROWS = 3000
VALUES = np.random.default_rng(17).gamma(2.5, 1 / 1.5, ROWS)
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def table_text(values, sep: str = ",", missing: dict[int, str] | None = None) -> str:
    """``id<sep>value<sep>other`` and one row per value (``missing[i]`` in place of value i)."""
    missing = missing or {}
    rows = [sep.join(["id", "value", "other"])]
    rows += [sep.join([str(i), missing.get(i, repr(float(v))), "1.5"]) for i, v in enumerate(values)]
    return "\n".join(rows) + "\n"


def write_table(path: Path, values, missing: dict[int, str] | None = None, bom: bool = False) -> Path:
    """``values`` as column ``value`` of ``path``, in the format its name says."""
    suffixes = path.suffixes
    if suffixes[-1] == ".parquet":
        column = pa.array([None if i in (missing or {}) else float(v) for i, v in enumerate(values)])
        pq.write_table(pa.table({"id": np.arange(len(values)), "value": column}), path, row_group_size=700)
        return path
    text = table_text(values, "\t" if ".tsv" in suffixes else ",", missing)
    data = ("\ufeff" if bom else "") + text
    opener = OPENERS.get(suffixes[-1])
    if opener is None:
        path.write_text(data, encoding="utf-8")
    else:
        with opener(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    return path


def fit_json(args: list[str]) -> tuple[dict, str]:
    r = CliRunner().invoke(cli, ["fit", *args, "--json"])
    assert r.exit_code == 0, (r.exit_code, r.output)
    return json.loads(r.stdout), r.stderr


def one_line_error(result, code: int, *words: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: "), lines
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


FORMATS = ["x.csv", "x.tsv", "x.csv.gz", "x.txt.bz2", "x.csv.xz", "x.tsv.gz", "x.parquet"]


# --- every format gives the numbers of .npy ----------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_formats_give_the_numbers_of_npy(tmp_path, monkeypatch, name):
    """On main, .parquet and compressed text were read as text: 'holds a NUL byte' or 'not UTF-8'."""
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)  # many blocks, each converted by pyarrow
    np.save(tmp_path / "x.npy", VALUES)
    path = write_table(tmp_path / name, VALUES)
    expected = load_data(tmp_path / "x.npy")
    np.testing.assert_array_equal(load_data(path, "value"), expected)
    np.testing.assert_array_equal(load_data(path, "2"), expected)  # by 1-based index


@pytest.mark.parametrize("name", ["x.csv.gz", "x.parquet"])
def test_fit_of_a_table_is_the_fit_of_npy(tmp_path, name):
    np.save(tmp_path / "x.npy", VALUES)
    path = write_table(tmp_path / name, VALUES)
    reference, _ = fit_json(["gamma", str(tmp_path / "x.npy")])
    got, _ = fit_json(["gamma", str(path), "--column", "value"])
    assert got["n"] == ROWS
    assert got["estimates"] == reference["estimates"] and got["stderr"] == reference["stderr"]


def test_tsv_keeps_empty_cells_in_their_column(tmp_path):
    """Tab-separated cells were split on runs of white space: an empty cell shifted the next one left."""
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\tc\n1\t\t3\n4\t5\t6\n")
    np.testing.assert_array_equal(load_data(path, "c"), [3.0, 6.0])
    np.testing.assert_array_equal(load_data(path, "b"), [np.nan, 5.0])


# --- missing values and --dropna -------------------------------------------------------------------------

MISSING = {1: "", 40: "NA", 41: "null", 1234: "NaN", 2500: "", 2999: "N/A"}


@pytest.mark.parametrize("name", ["x.csv", "x.csv.gz", "x.tsv", "x.parquet"])
def test_missing_cells_are_nan(tmp_path, monkeypatch, name):
    """'NA' and 'null' cells (as R and databases write them) were 'not a number' errors."""
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)
    path = write_table(tmp_path / name, VALUES, MISSING)
    expected = VALUES.copy()
    expected[list(MISSING)] = np.nan
    np.testing.assert_array_equal(load_data(path, "value"), expected)


def test_nan_names_its_row_and_suggests_dropna(tmp_path):
    path = write_table(tmp_path / "x.csv", VALUES, {40: "NA"})
    r = CliRunner().invoke(cli, ["fit", "gamma", str(path), "--column", "value"])
    one_line_error(r, 3, "row 41 of the data", "missing", "--dropna")
    np.save(tmp_path / "x.npy", np.where(np.arange(ROWS) == 7, np.nan, VALUES))
    one_line_error(CliRunner().invoke(cli, ["fit", "gamma", str(tmp_path / "x.npy")]), 3, "row 8", "--dropna")


@pytest.mark.parametrize("name", ["x.csv", "x.csv.gz", "x.parquet", "x.npy"])
def test_dropna_drops_the_missing_rows_and_says_how_many(tmp_path, name):
    """fit had no --dropna: one missing cell made the whole file unusable."""
    keep = np.ones(ROWS, bool)
    keep[list(MISSING)] = False
    np.save(tmp_path / "clean.npy", VALUES[keep])
    if name.endswith(".npy"):
        path = tmp_path / name
        np.save(path, np.where(keep, VALUES, np.nan))
        args = ["gamma", str(path), "--dropna"]
    else:
        args = ["gamma", str(write_table(tmp_path / name, VALUES, MISSING)), "--column", "value", "--dropna"]
    got, err = fit_json(args)
    reference, _ = fit_json(["gamma", str(tmp_path / "clean.npy")])
    assert got["dropped"] == len(MISSING) and got["n"] == ROWS - len(MISSING)
    assert got["estimates"] == reference["estimates"]
    assert err.splitlines() == [
        f"symmle: dropped {len(MISSING)} of {ROWS:,} rows with a missing value (--dropna)"
    ]
    # without missing values nothing is dropped, and the JSON says so
    got, _ = fit_json(["gamma", str(tmp_path / "clean.npy"), "--dropna"])
    assert got["dropped"] == 0 and got["estimates"] == reference["estimates"]


def test_dropna_still_names_a_bad_row_by_its_row_in_the_file(tmp_path):
    """After rows are dropped, a value outside the support is named by its row in the file."""
    path = tmp_path / "x.csv"
    path.write_text("h\n1.0\nNA\n\n2.0\nnull\n-3.0\n4.0\n")
    r = CliRunner().invoke(cli, ["fit", "exponential", str(path), "--dropna"])
    one_line_error(r, 3, "row 5 of the data", "-3", "support")  # data rows: 1.0 NA 2.0 null -3.0


def test_dropna_with_every_row_missing(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("h\nNA\n\nnan\n")
    r = CliRunner().invoke(cli, ["fit", "exponential", str(path), "--dropna"])
    one_line_error(r, 3, "every row of the data (2) has a missing value")


def test_drop_missing_reads_a_memory_map_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(symmle.base._runtime, "CHUNK", 64)
    x = np.random.default_rng(5).normal(size=1000)
    x[np.random.default_rng(6).choice(1000, 150, replace=False)] = np.nan
    np.save(tmp_path / "x.npy", x)
    drop_missing = missing_module.drop_missing
    d = drop_missing(load_data(tmp_path / "x.npy"))
    np.testing.assert_array_equal(d.values, x[~np.isnan(x)])
    np.testing.assert_array_equal(d.rows, np.flatnonzero(np.isnan(x)))
    assert d.count == 150
    clean = np.arange(5.0)
    assert drop_missing(clean).values is clean and drop_missing(clean).count == 0


def test_source_rows_maps_every_kept_row_to_its_row_in_the_data():
    drop_missing, source_rows = missing_module.drop_missing, missing_module.source_rows
    rng = np.random.default_rng(8)
    for _ in range(20):
        x = rng.uniform(1.0, 2.0, 60)
        x[rng.random(60) < rng.random()] = np.nan
        if np.isnan(x).all():
            continue
        d = drop_missing(x)
        kept = np.flatnonzero(~np.isnan(x))
        for k in range(kept.size):
            y = d.values.copy()
            y[k] = -1.0
            with pytest.raises(DataError, match=rf"^row {kept[k] + 1} of the data, x = -1,"):
                with source_rows(d):
                    validate_data(y, lo=0.0, hi=np.inf, discrete=False)


# --- a byte-order mark ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.csv", "x.csv.gz", "x.tsv"])
def test_byte_order_mark_is_not_part_of_a_column_name(tmp_path, monkeypatch, name):
    """Excel's "CSV UTF-8" starts with a BOM: the first column must still be called 'id'."""
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)
    path = write_table(tmp_path / name, VALUES, bom=True)
    np.testing.assert_array_equal(load_data(path, "id"), np.arange(ROWS, dtype=float))
    np.testing.assert_array_equal(load_data(path, "value"), VALUES)
    path.write_bytes("\ufeff1.5\n2.5\n".encode())  # no header, one column
    if name == "x.csv":
        assert load_data(path).tolist() == [1.5, 2.5]


# --- errors through the new readers -----------------------------------------------------------------------


def test_a_bad_cell_in_compressed_text_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)
    path = write_table(tmp_path / "x.csv.gz", VALUES, {2500: "3l2.5"})
    with pytest.raises(DataError, match=r"^x.csv.gz, line 2502: '3l2.5' is not a number$"):
        load_data(path, "value")
    r = CliRunner().invoke(cli, ["fit", "gamma", str(path), "--column", "valeur"])
    one_line_error(r, 3, "no column 'valeur'", "columns: id, value, other")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ["x.csv.gz is empty"]),
        (b"id,value\n", ["x.csv.gz has no data rows"]),
        (b"\n\n", ["x.csv.gz is empty"]),
    ],
    ids=["empty", "header-only", "blank"],
)
def test_compressed_text_errors(tmp_path, content, words):
    with gzip.open(tmp_path / "x.csv.gz", "wb") as fh:
        fh.write(content)
    one_line_error(CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.csv.gz")]), 3, *words)


def test_a_file_that_is_not_what_its_name_says(tmp_path):
    (tmp_path / "x.csv.gz").write_text("id,value\n1,2\n")
    r = CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.csv.gz")])
    one_line_error(r, 3, "x.csv.gz", "not a valid gzip file")
    (tmp_path / "x.parquet").write_text("id,value\n1,2\n")
    r = CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.parquet")])
    one_line_error(r, 3, "x.parquet is not a readable Parquet file")
    (tmp_path / "e.parquet").write_bytes(b"")
    one_line_error(CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "e.parquet")]), 3, "empty")
    np.save(tmp_path / "x.npy", VALUES)
    with open(tmp_path / "x.npy", "rb") as src, gzip.open(tmp_path / "x.npy.gz", "wb") as dst:
        dst.write(src.read())
    r = CliRunner().invoke(cli, ["fit", "exponential", str(tmp_path / "x.npy.gz")])
    one_line_error(r, 3, "compressed .npy", "decompress it first")


def test_parquet_columns(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table(
            {
                "n": pa.array([1, 2, 3], pa.int32()),
                "name": ["a", "b", "c"],
                "flag": [True, False, True],
                "when": pa.array([1, 2, 3], pa.timestamp("s")),
            }
        ),
        path,
    )
    assert load_data(path, "n").tolist() == [1.0, 2.0, 3.0]
    assert load_data(path, "flag").tolist() == [1.0, 0.0, 1.0]
    runner = CliRunner()

    def fit(*extra):
        return runner.invoke(cli, ["fit", "poisson", str(path), *extra])

    one_line_error(fit(), 3, "t.parquet has 4 columns", "--column")
    one_line_error(fit("--column", "name"), 3, "'name'", "string, not numbers")
    one_line_error(fit("--column", "when"), 3, "timestamp")
    one_line_error(fit("--column", "x"), 3, "columns: n, name, flag, when")
    one_line_error(fit("--column", "5"), 3, "out of range")
    pq.write_table(pa.table({"h": pa.array([], pa.float64())}), tmp_path / "none.parquet")
    one_line_error(runner.invoke(cli, ["fit", "poisson", str(tmp_path / "none.parquet")]), 3, "no data rows")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_data_that_is_a_pipe_says_what_it_is(tmp_path):
    """/dev/stdin on a pipe (`cat x.csv | symmle fit M /dev/stdin`) and a FIFO are named as such."""
    cmd = [sys.executable, "-m", "symmle", "fit", "exponential", "/dev/stdin"]
    out = subprocess.run(cmd, input=b"1.0\n2.0\n", capture_output=True, timeout=120, check=False)
    err = out.stderr.decode()
    assert out.returncode == 3 and len(err.splitlines()) == 1, err
    assert "/dev/stdin is a FIFO (named pipe), not a regular file" in err and "give -" in err
    assert "does not exist" not in err
    os.mkfifo(tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"is a FIFO .*\(a \.parquet file is read by random access"):
        load_data(tmp_path / "x.parquet")


CHILD = """
import sys
from symmle.numbers.data import load_data
def peak():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) << 10
load_data(sys.argv[2], "value")
before = peak()
x = load_data(sys.argv[1], "value")
print(x.shape[0], repr(float(x.sum())), peak() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_compressed_text_is_read_in_bounded_memory(tmp_path):
    """2 million rows of .csv.gz within 160 MB of resident memory: decompressed as a stream."""
    n = 2_000_000
    x = np.random.default_rng(3).exponential(1.0, n).round(6)
    with gzip.open(tmp_path / "big.csv.gz", "wb", compresslevel=1) as fh:
        fh.write(b"id,value\n")
        np.savetxt(fh, np.column_stack([np.arange(n), x]), fmt=["%d", "%.6f"], delimiter=",")
    write_table(tmp_path / "small.csv.gz", VALUES)
    args = [sys.executable, "-c", CHILD, str(tmp_path / "big.csv.gz"), str(tmp_path / "small.csv.gz")]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rows, total, grown = out.stdout.split()
    assert int(rows) == n and float(total) == pytest.approx(x.sum(), rel=1e-12)
    assert int(grown) < 160 << 20, f"reading took {int(grown) >> 20} MB"


# --- output: never the input, never lost ----------------------------------------------------------------


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "model.toml"
    spec.write_bytes((ROOT / "derivations" / "exponential.toml").read_bytes())
    return spec


@pytest.mark.parametrize(
    "command",
    [
        ["derive", "{spec}", "--format", "latex", "-o", "{out}"],
        ["compile", "{spec}", "-o", "{out}"],
        [
            "check",
            "{spec}",
            "--true",
            "lam=2",
            "--n",
            "40",
            "--reps",
            "20",
            "--agree",
            "2",
            "--plot",
            "{out}",
        ],
    ],
    ids=["derive", "compile", "check-plot"],
)
@pytest.mark.parametrize("how", ["same-path", "other-spelling", "symlink", "hard-link"])
def test_output_that_is_the_input_is_refused(tmp_path, command, how):
    """`symmle derive model.toml -o model.toml` replaced the spec by its derivation, silently."""
    spec = _spec(tmp_path)
    before = spec.read_bytes()
    out = {
        "same-path": spec,
        "other-spelling": tmp_path / "." / "model.toml",
        "symlink": tmp_path / "link.toml",
        "hard-link": tmp_path / "hard.toml",
    }[how]
    if how == "symlink":
        out.symlink_to(spec)
    elif how == "hard-link":
        os.link(spec, out)
    args = [a.format(spec=spec, out=out) for a in command]
    r = CliRunner().invoke(cli, args)
    one_line_error(r, 2, "it is the input file", "choose another output file")
    assert spec.read_bytes() == before


def test_output_next_to_the_input_is_written(tmp_path):
    spec = _spec(tmp_path)
    r = CliRunner().invoke(cli, ["derive", str(spec), "-o", str(tmp_path / "model.txt")])
    assert r.exit_code == 0, r.output
    assert "lam" in (tmp_path / "model.txt").read_text()


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "symmle", *args], capture_output=True, timeout=120, check=False, **kwargs
    )


@pytest.mark.skipif(not Path("/bin/sh").exists(), reason="needs a POSIX shell")
@pytest.mark.parametrize("command", [["derive", "exponential"], ["list"]])
def test_closed_standard_output_is_an_error(command):
    """`symmle derive exponential >&-` printed nothing and exited 0."""
    out = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "symmle", *command],
        stdout=None,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )
    err = out.stderr.decode()
    assert out.returncode == 2, (out.returncode, err)
    assert err.splitlines() == ["symmle: error: cannot write the output: standard output is closed"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_standard_output_is_one_line():
    """`symmle derive exponential > /dev/full` was an internal error (exit 70)."""
    with open("/dev/full", "wb") as full:
        out = subprocess.run(
            [sys.executable, "-m", "symmle", "derive", "exponential"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    err = out.stderr.decode()
    assert out.returncode == 2, (out.returncode, err)
    assert err.splitlines() == ["symmle: error: cannot write to standard output: No space left on device"]


def test_reader_that_went_away_is_no_traceback():
    """`symmle derive normal | head -c0`: exit 141 (as a process killed by SIGPIPE), no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "symmle", "derive", "normal", "--format", "latex"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away before anything is written
    try:
        err = proc.stderr.read().decode()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 141, (proc.returncode, err)
    assert "Traceback" not in err and "Exception ignored" not in err


def test_plot_without_matplotlib_is_an_option_error(monkeypatch, tmp_path):
    """A missing matplotlib exited with 1, a code no documented error has; it is a bad option: 2."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    args = ["check", "exponential", "--true", "lam=2", "--n", "20", "--reps", "10", "--plot"]
    r = CliRunner().invoke(cli, [*args, str(tmp_path / "x.png")])
    one_line_error(r, 2, "matplotlib", 'pip install "symmle[plot]"')
    assert not (tmp_path / "x.png").exists()
