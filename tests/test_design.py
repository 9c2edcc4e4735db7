"""Regression designs (symmle/numbers/design.py) and the vetting of formulas (symmle/numbers/formula.py).

The designs are compared with statsmodels' (which builds them with formulaic too) column by column,
by term name, on the same CSV file read by pandas; hostile formulas must be refused before formulaic
sees them, and a canary file shows that none of them ran.
"""

from __future__ import annotations

import gzip
import io
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from symmle.base.errors import DataError, SpecError, SymmleError
from symmle.numbers.data import load_columns
from symmle.numbers.design import Design, load_design, vet_formula
from symmle.numbers.formula import MAX_TERMS, parse_formula

COLUMNS = ["y", "x", "z", "dose", "g", "log_time", "count"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A CSV file of 300 rows (a string column ``dose``, an integer one ``g``) and pandas' reading of it."""
    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.uniform(1, 3, n),
            "z": rng.normal(size=n),
            "dose": rng.choice(["low", "mid", "high"], n),
            "g": rng.integers(1, 4, n),
            "log_time": rng.normal(size=n),
            "count": rng.poisson(3, n),
        }
    )
    path = tmp_path_factory.mktemp("design") / "d.csv"
    frame.to_csv(path, index=False)
    return path, pd.read_csv(path)


def _statsmodels_design(formula, frame):
    import statsmodels.formula.api as smf

    model = smf.ols(formula, frame)
    return model.endog_names, model.exog_names, model.exog, model.endog


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x",  # the intercept
        "y ~ x - 1",
        "y ~ x + 0",
        "y ~ x + C(dose)",  # levels that are text
        "y ~ x + C(g)",  # levels that are numbers
        "y ~ 0 + C(dose)",
        "y ~ C(dose, Treatment('low')) + z",
        "y ~ x:z",
        "y ~ x*z",
        "y ~ C(dose)*x",
        "y ~ C(dose):C(g)",
        "y ~ np.log(x) + I(x**2)",
        "y ~ (x + z + np.sqrt(x))**2",
        "y ~ (x + z + C(dose))**3",
        "y ~ x:z + x + C(g):C(dose) + C(g)",
        "y ~ 0 + C(dose):x + C(g)",
        "y ~ C(dose)/x + z - C(dose)",
        "y ~ x/z",
        "np.log(x) ~ z",
        "y ~ np.exp(z) + I(x * z - 1)",
    ],
)
def test_design_matches_statsmodels(table, formula):
    path, frame = table
    d = load_design(path, formula=formula)
    name, terms, X, y = _statsmodels_design(formula, frame)
    assert d.response == name
    assert d.terms == terms  # statsmodels' names, in its order
    np.testing.assert_allclose(d.X, X, rtol=1e-15, atol=0)
    np.testing.assert_allclose(d.y, y, rtol=1e-15)
    assert d.offset is None and d.dropped is None and d.in_memory


def test_term_names_are_formulaics(table):
    path, _ = table
    d = load_design(path, formula="y ~ x + C(dose) + C(g)")
    assert d.terms == ["Intercept", "C(dose)[T.low]", "C(dose)[T.mid]", "C(g)[T.2]", "C(g)[T.3]", "x"]
    assert load_design(path, formula="y ~ 0 + C(dose)").terms == [
        "C(dose)[high]",
        "C(dose)[low]",
        "C(dose)[mid]",
    ]
    assert load_design(path, formula="y ~ x", intercept=False).terms == ["x"]


def test_offset_column(table):
    path, frame = table
    d = load_design(path, formula="count ~ x + C(dose)", offset="log_time")
    np.testing.assert_array_equal(d.offset, frame["log_time"].to_numpy())
    assert "log_time" not in d.terms and d.response == "count"
    y, X, off = d.rows(10, 20)
    np.testing.assert_array_equal(off, frame["log_time"].to_numpy()[10:20])
    c = load_design(path, y="count", x=["x"], offset="log_time")
    np.testing.assert_array_equal(c.offset, frame["log_time"].to_numpy())
    assert c.terms == ["Intercept", "x"]


# --- hostile formulas ---------------------------------------------------------------------------------


def _attacks(canary):
    touch = f"__import__('pathlib').Path({str(canary)!r}).touch()"
    return [
        f"y ~ {touch}",
        f"y ~ x + I({touch})",
        f"y ~ __import__('os').system('touch {canary}')",
        "y ~ x.__class__",
        "y ~ x.__class__.__bases__",
        "y ~ np.load('f')",
        "y ~ np.lib.npyio.load('f')",
        "y ~ np.__dict__",
        "y ~ {x: 1}[x]",
        "y ~ {x}",
        "y ~ (lambda: 1)()",
        "y ~ lambda: 1",
        "y ~ x[0]",
        "y ~ eval('1')",
        "y ~ open('f')",
        "y ~ getattr(x, 'real')",
        "y ~ x if x else z",
        "y ~ x; import os",
        "y ~ x == 1",
        "y ~ x @ z",
        "y ~ not x",
        "y ~ 'x'",
        "y ~ C(dose, levels=['a'])",
        f"y ~ C(dose, Treatment(f'{{{touch}}}'))",
        "y ~ C(dose, Treatment(b'low'))",
        "y ~ C(np.log(x))",
        "y ~ `__import__`",
        "y ~ `x'`",
        "y ~ I(C(dose))",
        "C(dose) ~ x",
        "y ~ x | z",
        "y ~ x %in% z",
        "y ~ .",
        "y ~ 1j",
        "y ~ 0x1f",
        "y ~ ｘ",
        "y ~ x\x1b[31m",
        "y ~ x ~ z",
        "~ x",
        "y ~",
        "",
        "y ~ poly(x, 2.5)",
        "y ~ (x + z)**x",
        "y ~ x ** -1",
    ]


def test_canary_would_be_created_without_vetting(tmp_path):
    """The attacks are real: formulaic alone runs them (so the canary below can catch one)."""
    from formulaic import model_matrix

    canary = tmp_path / "canary"
    frame = pd.DataFrame({"y": [1.0, 2.0], "x": [1.0, 3.0]})
    try:
        model_matrix(_attacks(canary)[1], frame)
    except Exception:  # noqa: BLE001 - whatever formulaic makes of None
        pass
    assert canary.exists()


def test_hostile_formulas_are_refused(table, tmp_path):
    path, _ = table
    canary = tmp_path / "canary"
    for formula in _attacks(canary):
        with pytest.raises(SpecError) as err:
            vet_formula(formula, COLUMNS)
        message = str(err.value)
        assert "\n" not in message and "\x1b" not in message, formula
        with pytest.raises(SpecError):
            load_design(path, formula=formula)
    assert not canary.exists()


def test_refusal_names_the_token():
    with pytest.raises(SpecError, match=r"'load' \(character 8\) is not allowed after 'np.'"):
        vet_formula("y ~ np.load('f')", COLUMNS)
    with pytest.raises(SpecError, match=r"'__import__' \(character 5\) is not an allowed function"):
        vet_formula("y ~ __import__('os')", COLUMNS)
    with pytest.raises(SpecError, match=r"'lambda'"):
        vet_formula("y ~ (lambda: 1)()", COLUMNS)
    with pytest.raises(SpecError, match=r"'\[' \(character 6\)"):
        vet_formula("y ~ x[0]", COLUMNS)
    with pytest.raises(SpecError, match=r"'\.' \(character 6\) is not allowed \(attribute access\)"):
        vet_formula("y ~ x.__class__", COLUMNS)


def test_a_hostile_level_in_treatment_stays_a_string(tmp_path):
    canary = tmp_path / "canary"
    level = f"x) + __import__('pathlib').Path({str(canary)!r}).touch() + ("
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"y": [1.0, 2.0, 3.0, 4.0], "dose": ["a", "b", "a", level]}), path)
    for quote in ('"', "'"):
        formula = f"y ~ C(dose, Treatment({quote}{level}{quote}))"
        if quote == "'":  # the level holds a ': it cannot be quoted with one
            with pytest.raises(SpecError):
                load_design(path, formula=formula)
            continue
        d = load_design(path, formula=formula)
        assert d.p == 3
    assert not canary.exists()


def test_formulas_are_bounded():
    with pytest.raises(SpecError, match="nested more than"):
        vet_formula("y ~ " + "(" * 300 + "x" + ")" * 300, COLUMNS)
    with pytest.raises(SpecError, match="nested more than"):
        vet_formula("y ~ " + "-" * 300 + "x", COLUMNS)
    with pytest.raises(SpecError, match=f"more than {MAX_TERMS:,} terms"):
        vet_formula("y ~ (x + z + g + count + log_time + dose)**6", COLUMNS)
    with pytest.raises(SpecError, match="longer than"):
        vet_formula("y ~ " + " + ".join(["x"] * 2000), COLUMNS)
    long_sum = "y ~ " + "+".join(["x"] * 1900)  # a long chain is not a deep tree
    vet_formula(long_sum, COLUMNS)
    assert parse_formula("y ~ (x + z)**2").text == "y~(x+z)**2"


def test_allowed_formulas_pass(table):
    for formula in [
        "y ~ x + z",
        "y ~ -1 + x",
        "y ~ C(dose, Sum) + C(g, Treatment(2))",
        "y ~ center(x) + scale(z) + poly(x, 3)",
        "y ~ log(x) + np.log1p(x) + sqrt(x) + abs(z)",
        "np.log(y - -10) ~ x",
        "y ~ `log_time`",
    ]:
        vet_formula(formula, COLUMNS)
        load_design(table[0], formula=formula)


# --- columns ------------------------------------------------------------------------------------------


def test_columns_by_name_and_index(table):
    path, frame = table
    by_name = load_design(path, y="y", x=["x", "z"])
    by_index = load_design(path, y="1", x=["2", "3"])
    assert by_name.terms == by_index.terms == ["Intercept", "x", "z"]
    assert by_name.response == by_index.response == "y"
    np.testing.assert_array_equal(by_name.X, by_index.X)
    np.testing.assert_array_equal(by_name.X[:, 1:], frame[["x", "z"]].to_numpy())
    assert load_design(path, y="y", x=["x"], intercept=False).terms == ["x"]
    assert load_design(path, y="y").terms == ["Intercept"]
    with pytest.raises(SpecError, match="no columns"):
        load_design(path, y="y", intercept=False)
    with pytest.raises(SpecError):
        load_design(path, y="y", formula="y ~ x")
    with pytest.raises(SpecError):
        load_design(path)


def test_npy_is_memory_mapped_and_read_in_chunks(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(200_000, 5))
    path = tmp_path / "big.npy"
    np.save(path, a)
    tracemalloc.start()
    try:
        d = load_design(path, y="c1", x=["c2", "3", "c5"], offset="4")
        loading = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        gram = np.zeros((d.p, d.p))
        sizes = []
        for _, X, _ in d.chunks(10_000):
            sizes.append(X.shape[0])
            assert X.flags.c_contiguous and X.dtype == np.float64 and X.shape[1] == 4
            gram += X.T @ X
        reading = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not d.in_memory and (d.n, d.p) == (200_000, 4)
    assert d.terms == ["Intercept", "c2", "c3", "c5"] and d.response == "c1"
    assert sizes == [10_000] * 20
    # a design in memory would take n * p * 8 = 6.4 MB: loading and reading hold a slice at a time
    assert loading < a.nbytes / 4 and reading < 2 * 10_000 * d.p * 8 + (1 << 20)
    full = np.column_stack([np.ones(len(a)), a[:, [1, 2, 4]]])
    np.testing.assert_allclose(gram, full.T @ full, rtol=1e-12)
    y, X, off = d.rows(123_456, 123_460)
    np.testing.assert_array_equal(X, full[123_456:123_460])
    np.testing.assert_array_equal(y, a[123_456:123_460, 0])
    np.testing.assert_array_equal(off, a[123_456:123_460, 3])
    f = load_design(path, formula="c1 ~ c2 + np.log(np.abs(c3))")
    assert f.terms == ["Intercept", "c2", "np.log(np.abs(c3))"] and f.in_memory
    with pytest.raises(DataError, match=r"no column 'c9'; columns: c1, c2, c3, c4, c5"):
        load_design(path, y="c9", x=["c2"])
    with pytest.raises(DataError, match="chosen twice"):
        load_design(path, y="c1", x=["c1"])


def test_npy_with_missing_values(tmp_path):
    a = np.arange(60, dtype=float).reshape(20, 3)
    a[4, 2] = np.nan
    a[9, 1] = np.nan
    path = tmp_path / "m.npy"
    np.save(path, a)
    with pytest.raises(DataError, match=r"row 5 of the data, column 'c3', is nan, a missing value"):
        load_design(path, y="c1", x=["c2", "c3"])
    d = load_design(path, y="c1", x=["c2", "c3"], dropna=True)
    kept = np.delete(a, [4, 9], axis=0)
    assert (d.n, d.dropped) == (18, 2) and not d.in_memory
    np.testing.assert_array_equal(d.X[:, 1:], kept[:, 1:])
    np.testing.assert_array_equal(np.concatenate([y for y, _, _ in d.chunks(7)]), kept[:, 0])
    np.testing.assert_array_equal(d.rows(3, 6)[0], kept[3:6, 0])
    assert [d.source_row(k) for k in (3, 4, 8, 17)] == [4, 6, 11, 20]


def test_structured_npy_fields(tmp_path):
    rec = np.zeros(5, dtype=[("t", "f8"), ("dose", "i4"), ("w", "f8")])
    rec["t"], rec["dose"], rec["w"] = [1, 2, 3, 4, 5], [1, 2, 1, 2, 3], [0.5, 1, 2, 3, 4]
    path = tmp_path / "r.npy"
    np.save(path, rec)
    d = load_design(path, formula="t ~ w + C(dose)")
    assert d.terms == ["Intercept", "C(dose)[T.2]", "C(dose)[T.3]", "w"]
    assert load_design(path, y="t", x=["w"]).terms == ["Intercept", "w"]


def test_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table(
            {
                "y": [1.0, 2.0, 3.5, 4.0, 5.0, 7.0],
                "x": [1.0, 2.0, None, 4.0, 5.0, 6.0],
                "dose": ["low", "mid", None, " low", "high", "mid"],
                "k": [1, 2, 3, 1, 2, 1],
            }
        ),
        path,
    )
    d = load_design(path, formula="y ~ x + C(dose) + C(k)", dropna=True)
    assert d.terms == ["Intercept", "C(dose)[T.low]", "C(dose)[T.mid]", "C(k)[T.2]", "x"]
    assert (d.n, d.dropped) == (5, 1)
    np.testing.assert_array_equal(d.X[:, 1], [1, 0, 1, 0, 0])  # " low" is "low"
    with pytest.raises(DataError, match=r"row 3 of the data, column 'x', is nan"):
        load_design(path, formula="y ~ x + C(dose)")
    # a text column used bare is a factor, as in patsy (this one has a missing value)
    with pytest.raises(DataError, match=r"row 3 of the data, column 'dose', is nan"):
        load_design(path, formula="y ~ dose")
    assert load_design(path, formula="y ~ dose", dropna=True).terms == [
        "Intercept",
        "dose[T.low]",
        "dose[T.mid]",
    ]
    assert load_design(path, y="y", x=["k"]).terms == ["Intercept", "k"]


# --- text ---------------------------------------------------------------------------------------------


def test_bad_cell_names_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("y,x,dose\n1,2,low\n2,abc,mid\n3,4,high\n")
    with pytest.raises(DataError, match=r"bad.csv, line 3, column 'x': 'abc' is not a number .*C\(\)"):
        load_design(path, formula="y ~ x + C(dose)")
    assert load_design(path, formula="y ~ dose").terms == ["Intercept", "dose[T.low]", "dose[T.mid]"]
    with pytest.raises(DataError, match=r"line 3, column 'x'"):
        load_design(path, y="y", x=["x"])


def test_missing_values_with_and_without_dropna(tmp_path):
    path = tmp_path / "na.csv"
    path.write_text("y,x,dose\n1,2,low\n2,NA,mid\n3,4,\n5,6,low\n7,8,mid\n9,1,high\n")
    with pytest.raises(
        DataError, match=r"^row 2 of the data, column 'x', is nan, a missing value \(--dropna"
    ):
        load_design(path, formula="y ~ x + C(dose)")
    d = load_design(path, formula="y ~ x + C(dose)", dropna=True)
    assert (d.n, d.dropped) == (4, 2)
    np.testing.assert_array_equal(d.y, [1, 5, 7, 9])
    assert d.terms == ["Intercept", "C(dose)[T.low]", "C(dose)[T.mid]", "x"]
    # only the columns used count: dose's missing cell does not drop row 4 here
    assert load_design(path, formula="y ~ x", dropna=True).n == 5
    # a term that is not finite is named by its row in the file, after the rows dropped
    with pytest.raises(DataError, match=r"^row 6 of the data, term 'np.log\(x - 1\)', is -inf"):
        load_design(path, formula="y ~ np.log(x - 1) + C(dose)", dropna=True)
    with pytest.raises(DataError, match=r"^row 3 of the data, column 'y', is inf"):
        load_design(_write(tmp_path / "inf.csv", "y,x\n1,2\n2,3\ninf,4\n"), y="y", x=["x"])
    with pytest.raises(DataError, match="every row"):
        load_design(_write(tmp_path / "all.csv", "y,x\n1,NA\n2,\n"), y="y", x=["x"], dropna=True)


def _write(path, text):
    path.write_text(text)
    return path


def test_unknown_columns_list_those_that_exist(table):
    path, _ = table
    listed = "columns: y, x, z, dose, g, log_time, count"
    with pytest.raises(DataError, match=f"no column 'w'; {listed}"):
        load_design(path, formula="y ~ x + w")
    with pytest.raises(DataError, match=f"no column 'w'; {listed}"):
        load_design(path, y="y", x=["w"])
    with pytest.raises(DataError, match="no column 'w'; columns: y, x"):
        vet_formula("y ~ x + C(w)", ["y", "x"])


def test_categories_across_blocks_and_separators(tmp_path):
    """Labels keep one code per level across the head, pyarrow's blocks and the line-by-line reader."""
    levels = ["b", "a", "c d"]
    rows = [f"{i % 7},{levels[i % 3]},{i}" for i in range(5000)]
    rows[4000] = '4000,"a",oops'  # a block pyarrow refuses: read line by line
    text = "y,dose,x\n" + "\n".join(rows) + "\n"
    path = _write(tmp_path / "c.csv", text)
    codes = {"dose": {}}
    values, names = load_columns(path, ["y", "dose"], labels=codes)
    assert names == ["y", "dose"] and sorted(codes["dose"]) == sorted(levels)
    decoded = np.array(list(codes["dose"]))[values[:, 1].astype(int)]
    assert decoded.tolist() == [levels[i % 3] for i in range(5000)]
    d = load_design(path, formula="y ~ C(dose)")
    assert d.terms == ["Intercept", "C(dose)[T.b]", "C(dose)[T.c d]"]
    space = _write(tmp_path / "c.txt", "y dose\n1 low\n2 mid\n3 low\n")
    assert load_design(space, formula="y ~ C(dose)").terms == ["Intercept", "C(dose)[T.mid]"]
    packed = tmp_path / "c.csv.gz"
    packed.write_bytes(gzip.compress(b"y,dose\n1,low\n2,mid\n3,low\n"))
    np.testing.assert_array_equal(load_design(packed, formula="y ~ C(dose)").X[:, 1], [0, 1, 0])


def test_standard_input(monkeypatch):
    text = b"y,x,dose\n1,2,low\n2,3,mid\n4,5,low\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    d = load_design("-", formula="y ~ x + C(dose)")
    assert d.terms == ["Intercept", "C(dose)[T.mid]", "x"] and d.n == 3
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    assert load_design("-", y="y", x=["2"]).terms == ["Intercept", "x"]


def test_formula_design_is_read_only(table):
    d = load_design(table[0], formula="y ~ x")
    with pytest.raises(ValueError):
        d.X[0, 0] = 2.0
    assert isinstance(d, Design) and d.source_row(0) == 1


def test_every_error_is_one_line(table, tmp_path):
    path, _ = table
    bad = [
        dict(formula="y ~ C(dose, Treatment('none'))"),  # formulaic's error: no such level
        dict(formula="y ~ x + 2"),  # formulaic's own syntax error
        dict(formula="y ~ x + nothing"),
    ]
    for kwargs in bad:
        with pytest.raises(SymmleError) as err:
            load_design(path, **kwargs)
        assert "\n" not in str(err.value)


def test_tables_in_memory(table):
    path, frame = table
    frame = frame.assign(dose=pd.Categorical(frame["dose"]), g=frame["g"].astype("Int64"))
    frame.loc[3, "x"] = np.nan
    frame.loc[5, "dose"] = np.nan
    formula = "y ~ x + C(dose) + C(g)"
    from_frame = load_design(frame, formula=formula, dropna=True)
    from_file = load_design(path, formula=formula)
    assert from_frame.terms == from_file.terms and (from_frame.n, from_frame.dropped) == (298, 2)
    np.testing.assert_array_equal(from_frame.X, np.delete(from_file.X, [3, 5], axis=0))
    with pytest.raises(DataError, match=r"^row 4 of the data, column 'x', is nan"):
        load_design(frame, formula=formula)
    columns = {"y": [1.0, 2.0, 4.0], "x": [0.5, 1.0, 4.0], "grp": ["p", "q", "p"]}
    d = load_design(columns, formula="y ~ x + C(grp)")
    assert d.terms == ["Intercept", "C(grp)[T.q]", "x"]
    assert load_design(columns, y="y", x=["x"]).terms == ["Intercept", "x"]
    assert load_design(columns, formula="y ~ grp").terms == ["Intercept", "grp[T.q]"]  # text: a factor
    columns["grp"] = ["p", "1.5", "p"]
    with pytest.raises(DataError, match=r"column 'grp' of the data holds .*, not numbers .*C\(\)"):
        load_design(columns, formula="y ~ grp")  # numbers and text mixed
    with pytest.raises(DataError, match="no column 'w'; columns: y, x, grp"):
        load_design(columns, y="y", x=["w"])


def test_whole_arrays_are_kept_for_a_design_in_memory(table):
    d = load_design(table[0], y="y", x=["x", "z"])
    assert d.X is d.X and d.y is d.y and not d.X.flags.writeable
    np.testing.assert_array_equal(d.X, np.vstack([X for _, X, _ in d.chunks(7)]))


def test_a_covariate_all_of_text_is_a_factor_as_in_patsy(tmp_path):
    import statsmodels.formula.api as smf

    path = tmp_path / "t.csv"
    path.write_text("t,treatment,x\n1.5,a,0.1\n2.5,b,0.4\n0.7,a,0.2\n3.1,b,0.9\n1.1,c,0.3\n")
    design = load_design(path, formula="t ~ treatment + x")
    import pandas as pd

    ref = smf.ols("t ~ treatment + x", pd.read_csv(path)).fit()
    assert design.terms == list(ref.params.index)
    assert np.array_equal(design.X, ref.model.exog)


def test_a_covariate_mixing_numbers_and_text_names_the_cell(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("t,x\n1.5,0.1\n2.5,oops\n0.7,0.2\n")
    with pytest.raises(DataError, match=r"line 3.*'oops' is not a number.*C\(\)"):
        load_design(path, formula="t ~ x")
    path.write_text("t,x\n1.5,a\nlow,b\n0.7,a\n")
    with pytest.raises(DataError, match="not a number"):
        load_design(path, formula="t ~ x")  # a text response
