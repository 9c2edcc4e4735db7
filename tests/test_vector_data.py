"""Vector observations: several columns, rows of counts, category labels, and one-pass moments.

Loaders on every format against the numbers written; every bad input a one-line ``DataError``
naming its row (or line) and column; the moments of :func:`symmle.base._runtime.vector_moments`
against NumPy on ordinary data and iris, against exact rational arithmetic on data of mean 1e9,
and over a memory map in blocks against the array in memory.
"""

from __future__ import annotations

import gzip
import io
import sys
import tracemalloc
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import symmle.numbers.data as data_module
from symmle.base import _runtime
from symmle.base.errors import DataError
from symmle.numbers.data import load_columns
from symmle.numbers.labels import load_labels
from symmle.numbers.vector_data import (
    load_count_rows,
    load_matrix,
    load_simplex_rows,
    sample_moments,
    sample_sums,
    validate_rows,
)


def one_line(exc_info, *words):
    """The error is one line holding every word."""
    message = str(exc_info.value)
    assert "\n" not in message, message
    for w in words:
        assert w in message, (w, message)
    return message


def table_text(x, names, sep=","):
    lines = [sep.join(names)] + [sep.join(repr(float(v)) for v in row) for row in x]
    return "\n".join(lines) + "\n"


@pytest.fixture
def x():
    return np.random.default_rng(7).normal(size=(200, 3)) * [1.0, 2.0, 3.0] + [5.0, -1.0, 0.5]


# --- loading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "tsv", "txt", "csv.gz", "parquet", "npy", "stdin"])
def test_every_format_reads_all_columns_and_chosen_ones_in_order(fmt, x, tmp_path, monkeypatch):
    names = ["a", "b", "c"]
    path = tmp_path / f"t.{fmt}"
    if fmt in ("csv", "tsv", "txt"):
        path.write_text(table_text(x, names, {"csv": ",", "tsv": "\t", "txt": " "}[fmt]))
    elif fmt == "csv.gz":
        with gzip.open(path, "wt") as fh:
            fh.write(table_text(x, names))
    elif fmt == "parquet":
        pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]}), path)
    elif fmt == "npy":
        np.save(path, x)
        names = ["1", "2", "3"]  # a plain array's columns are its 1-based indices
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(table_text(x, names).encode())))
        path = "-"
    got, got_names = load_columns(path)
    np.testing.assert_array_equal(np.asarray(got), x)
    assert got_names == names
    if fmt == "stdin":  # standard input is read once
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(table_text(x, names).encode())))
    m = load_matrix(path, [names[2], names[0]])
    np.testing.assert_array_equal(np.asarray(m.values), x[:, [2, 0]])
    assert m.columns == [names[2], names[0]] and m.dropped is None


def test_columns_by_index_and_the_names_of_a_headerless_table(x, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n")
    got, names = load_columns(path, ["3", "1"])
    np.testing.assert_array_equal(got, x[:, [2, 0]])
    assert names == ["3", "1"]


def test_a_table_of_many_blocks_is_read_whole(tmp_path, monkeypatch):
    """Rows beyond the first lines are converted block by block (pyarrow, NumPy): all of them, in order."""
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)
    x = np.random.default_rng(3).normal(size=(5000, 4))
    for sep, suffix in ((",", "csv"), (" ", "txt")):
        path = tmp_path / f"t.{suffix}"
        path.write_text(table_text(x, ["a", "b", "c", "d"], sep))
        got, names = load_columns(path, ["d", "b"])
        np.testing.assert_array_equal(got, x[:, [3, 1]])
        assert names == ["d", "b"]


def test_npy_columns_stay_memory_mapped(tmp_path):
    x = np.arange(40.0).reshape(10, 4)
    np.save(tmp_path / "x.npy", x)
    whole, _ = load_columns(tmp_path / "x.npy")
    run, names = load_columns(tmp_path / "x.npy", ["2", "3"])
    picked, _ = load_columns(tmp_path / "x.npy", ["4", "1"])
    assert isinstance(whole, np.memmap) and isinstance(run, np.memmap)
    assert names == ["2", "3"]
    np.testing.assert_array_equal(run, x[:, 1:3])
    np.testing.assert_array_equal(picked, x[:, [3, 0]])
    with pytest.raises(DataError) as e:
        load_columns(tmp_path / "x.npy", ["a"])
    one_line(e, "no column named 'a'", "1 to 4")


def test_structured_npy_fields_are_columns(tmp_path):
    rec = np.zeros(5, dtype=[("h", "f8"), ("w", "i4"), ("name", "U3")])
    rec["h"], rec["w"] = np.arange(5) + 0.5, np.arange(5) * 2
    np.save(tmp_path / "r.npy", rec)
    got, names = load_columns(tmp_path / "r.npy", ["w", "h"])
    assert names == ["w", "h"]
    np.testing.assert_array_equal(got, np.c_[rec["w"], rec["h"]])
    with pytest.raises(DataError) as e:
        load_columns(tmp_path / "r.npy")
    one_line(e, "name", "not numbers")


BAD_TABLES = [
    # (id, file name, text, columns, words of the message)
    ("text-cell", "t.csv", "a,b,c\n1,2,3\n4,x,6\n", None, ["line 3", "column 'b'", "'x' is not a number"]),
    ("short-row", "t.csv", "a,b,c\n1,2,3\n4,5\n", None, ["line 3", "2 cells", "3 columns"]),
    ("long-row", "t.csv", "a,b,c\n1,2,3\n4,5,6,7\n", ["a"], ["line 3", "4 cells", "3 columns"]),
    ("ragged-txt", "t.txt", "1 2 3\n4 5 6\n7 8\n", None, ["line 3", "2 cells"]),
    ("no-column", "t.csv", "a,b,c\n1,2,3\n", ["b", "z"], ["no column 'z'", "columns: a, b, c"]),
    ("index-out-of-range", "t.csv", "1,2\n3,4\n", ["3"], ["--columns 3 is out of range", "2 column"]),
    ("chosen-twice", "t.csv", "a,b\n1,2\n3,4\n", ["a", "1"], ["'a' is chosen twice"]),
    ("nan", "t.csv", "a,b\n1,2\n3,NA\n5,6\n", None, ["row 2", "column 'b'", "nan", "--dropna"]),
    ("empty-cell", "t.csv", "a,b\n1,2\n3,\n", None, ["row 2", "column 'b'", "missing"]),
    ("inf", "t.csv", "a,b\n1,2\n3,4\n-inf,0\n", None, ["row 3", "column 'a'", "inf"]),
    ("empty", "t.csv", "", None, ["empty"]),
    ("header-only", "t.csv", "a,b\n", None, ["no data rows"]),
]


@pytest.mark.parametrize("case", BAD_TABLES, ids=[c[0] for c in BAD_TABLES])
def test_bad_tables_are_one_line_errors_naming_row_and_column(case, tmp_path):
    _, name, text, columns, words = case
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError) as e:
        load_matrix(path, columns)
    one_line(e, *words)


def test_bad_rows_past_the_first_block_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)
    body = "".join(f"{i},{i + 1},{i + 2}\n" for i in range(3000))
    for tail, words in (
        ("1,2\n", ["line 3002", "2 cells"]),
        ("1,2,3,4\n", ["line 3002", "4 cells"]),  # a block whose rows are all too long
        ("1,two,3\n", ["line 3002", "column 'b'", "'two'"]),
    ):
        path = tmp_path / "t.csv"
        path.write_text("a,b,c\n" + body + tail + body)
        with pytest.raises(DataError) as e:
            load_matrix(path)
        one_line(e, *words)


@pytest.mark.parametrize("sep", [",", "\t", None])
def test_a_block_whose_rows_all_have_another_width_is_refused(sep):
    """pyarrow holds a block to the width of its own first row, NumPy reads only the columns asked for."""
    cells = sep or " "
    block = "".join(cells.join(str(v) for v in range(k, k + 4)) + "\n" for k in range(5)).encode()
    with pytest.raises(DataError) as e:
        data_module._convert_block(10, block, sep, [0, 1], "t.csv", width=3)
    one_line(e, "line 10", "4 cells", "3 columns")
    got = data_module._convert_block(10, block, sep, [3, 0], "t.csv", width=4)
    assert got.tolist() == [[k + 3, k] for k in range(5)]


def test_nan_in_a_memory_map_is_named_by_row_and_column(tmp_path, monkeypatch):
    x = np.ones((3000, 3))
    x[2345, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(_runtime, "CHUNK", 999)  # several blocks
    with pytest.raises(DataError) as e:
        load_matrix(tmp_path / "x.npy")
    one_line(e, "row 2346", "column '3'", "nan")


def test_dropna_drops_rows_and_names_later_rows_by_their_place_in_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\nNA,3\n4,5\n6,NA\n7,8\n")
    m = load_matrix(path, dropna=True)
    assert m.values.tolist() == [[1, 2], [4, 5], [7, 8]]
    assert m.dropped.count == 2 and m.dropped.rows.tolist() == [1, 3]
    path.write_text("a,b\n1,2\nNA,3\n4,5\n6,NA\n7,inf\n")
    with pytest.raises(DataError) as e:
        load_matrix(path, dropna=True)
    one_line(e, "row 5", "column 'b'", "inf")


def test_the_dimension_the_model_expects(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n")
    assert load_matrix(path, dim=3).values.shape == (1, 3)
    with pytest.raises(DataError) as e:
        load_matrix(path, ["a", "b"], dim=3)
    one_line(e, "2 column(s) (a, b)", "dimension is 3")


def test_count_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,0,3\n2,2,0\n")
    m = load_count_rows(path, ["c", "a"])
    assert m.values.dtype == np.int64 and m.values.tolist() == [[3, 1], [0, 2]]
    for text, words in (
        ("a,b\n1,2\n3,-1\n", ["row 2", "column 'b' = -1", "negative"]),
        ("a,b\n1,2\n3,2.5\n", ["row 2", "column 'b' = 2.5", "not a whole number"]),
    ):
        path.write_text(text)
        with pytest.raises(DataError) as e:
            load_count_rows(path)
        one_line(e, *words)
    np.save(tmp_path / "c.npy", np.array([[1, 2], [3, 4]], dtype=np.int32))
    counts = load_count_rows(tmp_path / "c.npy").values
    assert isinstance(counts, np.memmap) and counts.dtype == np.int32


def test_simplex_and_onehot_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n0.2,0.3,0.5\n0.1,0.1,0.8\n")
    assert load_simplex_rows(path).values.shape == (2, 3)
    for text, words in (
        ("a,b\n0.5,0.5\n0.5,0.6\n", ["row 2", "adds up to 1.1"]),
        ("a,b\n0.5,0.5\n1,0\n", ["row 2", "column 'b' = 0", "not positive"]),
    ):
        path.write_text(text)
        with pytest.raises(DataError) as e:
            load_simplex_rows(path)
        one_line(e, *words)
    validate_rows(np.array([[0, 1, 0], [1, 0, 0]]), support="onehot")
    with pytest.raises(DataError) as e:
        validate_rows(np.array([[0, 1, 0], [1, 1, 0]]), ["x", "y", "z"], "onehot")
    one_line(e, "row 2", "2 ones")


# --- labels -----------------------------------------------------------------------------------------


def test_labels_become_counts_in_a_stable_order(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 4096)  # many blocks, counted by pyarrow
    rng = np.random.default_rng(5)
    labels = rng.choice(["virginica", "setosa", "versicolor"], 20000)
    expected_categories, expected_counts = np.unique(labels, return_counts=True)
    results = []
    for order in (labels, labels[::-1]):
        path = tmp_path / "iris.csv"
        path.write_text("x,species\n" + "".join(f"{i},{s}\n" for i, s in enumerate(order)))
        results.append(load_labels(path, "species"))
    for got in results:
        assert got.categories == expected_categories.tolist()
        assert got.counts.tolist() == expected_counts.tolist()
        assert got.n == 20000 and got.column == "species" and got.dropped == 0
    by_index = load_labels(path, "2")
    assert by_index.counts.tolist() == expected_counts.tolist()


def test_integer_labels_are_ordered_by_value(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("10\n2\n-1\n02\n10\n")
    got = load_labels(path)
    assert got.categories == ["-1", "2", "10"] and got.counts.tolist() == [1, 2, 2]


def test_labels_from_gzip_parquet_and_npy(tmp_path):
    with gzip.open(tmp_path / "l.csv.gz", "wt") as fh:
        fh.write("id,g\n1,b\n2,a\n3,b\n")
    assert load_labels(tmp_path / "l.csv.gz", "g").counts.tolist() == [1, 2]
    pq.write_table(
        pa.table({"g": pa.array(["b", "a", None, "b"]).dictionary_encode(), "k": [3, 1, 3, 3]}),
        tmp_path / "l.parquet",
    )
    got = load_labels(tmp_path / "l.parquet", "g", dropna=True)
    assert (got.categories, got.counts.tolist(), got.dropped) == (["a", "b"], [1, 2], 1)
    assert load_labels(tmp_path / "l.parquet", "k").counts.tolist() == [1, 3]
    with pytest.raises(DataError) as e:
        load_labels(tmp_path / "l.parquet", "g")
    one_line(e, "row 3", "missing")
    np.save(tmp_path / "l.npy", np.array(["b", "a", "b", "c"]))
    got = load_labels(tmp_path / "l.npy")
    assert (got.categories, got.counts.tolist()) == (["a", "b", "c"], [1, 2, 1])


def test_bad_labels_are_one_line_errors(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("id,g\n1,a\n2,NA\n3,b\n")
    with pytest.raises(DataError) as e:
        load_labels(path, "g")
    one_line(e, "line 3", "missing", "--dropna")
    assert load_labels(path, "g", dropna=True).counts.tolist() == [1, 1]
    with pytest.raises(DataError) as e:
        load_labels(path, "species")
    one_line(e, "no column 'species'", "columns: id, g")
    with pytest.raises(DataError) as e:
        load_labels(path)
    one_line(e, "2 columns", "--column")
    path.write_text("id,g\n1,a\n2\n")
    with pytest.raises(DataError) as e:
        load_labels(path, "g")
    one_line(e, "line 3", "1 cells")


# --- moments ----------------------------------------------------------------------------------------


def test_moments_agree_with_numpy_on_random_data():
    rng = np.random.default_rng(11)
    a = rng.normal(size=(6, 6))
    x = rng.normal(size=(50_000, 6)) @ a + rng.normal(size=6) * 10
    n, mean, scatter = _runtime.vector_moments(x, chunk_rows=777)
    assert n == 50_000
    np.testing.assert_allclose(mean, np.mean(x, axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scatter / n, np.cov(x, rowvar=False, bias=True), rtol=1e-11, atol=1e-12)
    assert np.array_equal(scatter, scatter.T)


def test_moments_agree_with_numpy_on_iris():
    from sklearn.datasets import load_iris  # in the test extra: a missing one fails, not skips

    x = load_iris().data
    m = sample_moments(x, ["sepal_length", "sepal_width", "petal_length", "petal_width"])
    np.testing.assert_allclose(m.mean, np.mean(x, axis=0), rtol=1e-14)
    np.testing.assert_allclose(m.covariance, np.cov(x, rowvar=False, bias=True), rtol=1e-13)
    assert m.n == 150


def _exact_covariance(x):
    """Mean-centred scatter / n of float rows in exact rational arithmetic."""
    rows = [[Fraction(float(v)) for v in row] for row in x]
    n, d = len(rows), len(rows[0])
    mean = [sum(r[j] for r in rows) / n for j in range(d)]
    return np.array(
        [
            [float(sum((r[j] - mean[j]) * (r[k] - mean[k]) for r in rows) / n) for k in range(d)]
            for j in range(d)
        ]
    )


@pytest.mark.parametrize("order", ["random", "sorted"])
def test_mean_1e9_and_unit_sd_keeps_1e_10_relative_accuracy(order):
    """Pilot-centred blocks and an exact recentring: the cancellation of sum x x^T - n m m^T is avoided.

    Sorted by the first column, the first rows' pilot is far from the mean: a second pass is centred at it.
    """
    rng = np.random.default_rng(2024)
    x = 1e9 + rng.normal(size=(1500, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    if order == "sorted":
        x = x[np.argsort(x[:, 0])]
    exact = _exact_covariance(x)
    n, _, scatter = _runtime.vector_moments(x, chunk_rows=128)  # many blocks
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    assert np.max(np.abs(scatter / n - exact) / scale) <= 1e-10
    # what the test guards against: the one-pass raw moments lose every digit here
    raw = (x.T @ x) / n - np.outer(x.mean(0), x.mean(0))
    assert np.max(np.abs(raw - exact) / scale) > 1e-3


def test_a_pilot_far_from_the_mean_is_replaced_by_the_mean(monkeypatch):
    """Recentring at a far pilot multiplies the scatter's rounding error by 1 + (delta/sd)**2; then a
    second pass is centred at the mean (here the pilot is the first row, an outlier)."""
    monkeypatch.setattr(_runtime, "PILOT", 1)
    rng = np.random.default_rng(1)
    x = 1e9 + rng.normal(size=(1500, 2))
    x[0] += [1e7, -1e7]
    exact = _exact_covariance(x)
    n, _, scatter = _runtime.vector_moments(x, chunk_rows=128)
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    assert np.max(np.abs(scatter / n - exact) / scale) <= 1e-14


def test_a_memory_map_in_blocks_equals_the_array_in_memory(tmp_path):
    x = np.random.default_rng(4).normal(size=(20_000, 5)) + 100.0
    for layout in ("C", "F"):
        path = tmp_path / f"x{layout}.npy"
        np.save(path, np.asarray(x, order=layout))
        mapped = np.load(path, mmap_mode="r")
        assert isinstance(mapped, np.memmap)
        got = _runtime.vector_moments(mapped, chunk_rows=333)
        ref = _runtime.vector_moments(x, chunk_rows=333)
        assert got[0] == ref[0]
        np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_array_equal(got[2], ref[2])
        whole = _runtime.vector_moments(x)  # other blocks: the same to rounding
        np.testing.assert_allclose(got[2], whole[2], rtol=1e-12)


def test_a_memory_map_is_never_read_whole_into_memory(tmp_path):
    x = np.random.default_rng(8).normal(size=(200_000, 10))  # 16 MB
    np.save(tmp_path / "x.npy", x)
    mapped = load_matrix(tmp_path / "x.npy").values
    del x
    tracemalloc.start()
    try:
        sample_moments(mapped)
        sample_sums(mapped)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_too_few_rows_constant_and_collinear_columns_are_named():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 3))
    with pytest.raises(DataError) as e:
        sample_moments(x, ["a", "b", "c"])
    one_line(e, "3 row(s) of 3 columns", "at least D + 1 = 4 rows")
    assert sample_moments(x, full_rank=False).n == 3  # a model that estimates no covariance
    y = rng.normal(size=(500, 4)) + 1e6
    with pytest.raises(DataError) as e:
        sample_moments(np.c_[y, np.full(500, 2.5)], ["a", "b", "c", "d", "e"])
    one_line(e, "column 'e' is constant", "2.5")
    z = np.c_[y[:, :3], y[:, 0] - 2 * y[:, 2], y[:, 3]]
    with pytest.raises(DataError) as e:
        sample_moments(z, ["a", "b", "c", "d", "e"])
    message = one_line(e, "columns 'a', 'c', 'd' are collinear")
    assert "'b'" not in message and "'e'" not in message
    # nearly but not exactly collinear: a genuine (if small) variance is kept
    w = np.c_[y[:, :3], y[:, 0] - 2 * y[:, 2] + 1e-4 * rng.normal(size=500)]
    assert sample_moments(w).n == 500


def test_a_cell_that_is_not_finite_is_named_by_the_moments():
    x = np.ones((1000, 3))
    x[700, 1] = np.inf
    with pytest.raises(DataError) as e:
        sample_moments(x, ["a", "b", "c"], chunk_rows=64)
    one_line(e, "row 701", "column 'b'", "inf")
    with pytest.raises(_runtime.BadData) as e:
        _runtime.vector_moments(x)
    assert (e.value.index, e.value.column) == (700, 1)


def test_column_sums_for_dirichlet_and_multinomial():
    rng = np.random.default_rng(12)
    p = rng.dirichlet([2.0, 3.0, 4.0], size=10_000)
    np.testing.assert_allclose(sample_sums(p, fn=np.log), np.log(p).sum(axis=0), rtol=1e-12)
    counts = rng.multinomial(1000, [0.2, 0.3, 0.5], size=10_000)
    assert sample_sums(counts).tolist() == counts.sum(axis=0).tolist()  # exact
    # compensated across blocks: large and small terms keep the small ones
    big = np.array([[1e16], [1.0], [-1e16], [1.0]])
    assert _runtime.column_sums(big, chunk_rows=1).tolist() == [2.0]
    with pytest.raises(DataError) as e:
        sample_sums(np.array([[0.5, 0.5], [1.0, 0.0]]), ["a", "b"], np.log)
    one_line(e, "row 2", "column 'b' = 0", "log")
