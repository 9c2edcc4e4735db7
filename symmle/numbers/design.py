"""The design of a regression: the response y, the matrix X of the linear predictor and an offset.

:func:`load_design` reads them from every format of ``fit`` (text, optionally compressed, or
standard input through :mod:`symmle.numbers.data`; Parquet and ``.npy`` through
:mod:`symmle.numbers.typed_files`) or from a pandas DataFrame (``symmle.fit(..., df)``), by a
Wilkinson formula (``"y ~ x + C(dose) + np.log(z)"``, built by `formulaic
<https://matthewwardrop.github.io/formulaic/>`_, with statsmodels' term names: ``Intercept``,
``C(dose)[T.mid]``, ``x:z``) or by columns (``y="y", x=["a", "b"]``).
A plain 2-D ``.npy`` array's columns are ``c1``, ``c2``, ...; by columns they may also be given by
1-based index.  A design by columns keeps a ``.npy`` file memory-mapped: :meth:`Design.rows` and
:meth:`Design.chunks` read slices and add the intercept per slice, so no copy of the whole design
is made.  A formula design is built in memory.

A formula is untrusted text, and formulaic evaluates its factors as Python: it is parsed and vetted
first by :mod:`symmle.numbers.formula` (:func:`vet_formula`), and formulaic sees only the formula
rebuilt from the vetted tokens.  Term names and their order are statsmodels' (patsy's): the
intercept, the terms of categories only, then the others grouped by their numeric factors.

Data problems are one-line ``DataError`` naming the row (1-based, in the data as read) and the
column: a cell that is not a number in a column used as one (a column of categories goes in
``C()``), a missing value (unless ``dropna``), an infinite value, a term that is not finite
(``np.log(0)``), an unknown column (listing those that exist) or no rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from symmle.base import _runtime
from symmle.base.errors import DataError, SpecError
from symmle.base.files import open_regular
from symmle.numbers.data import label_codes, load_columns, source_kind
from symmle.numbers.formula import (
    FORMULA_CONTEXT,
    categorical_columns,
    listed,
    parse_formula,
    patsy_terms,
    show,
    term_bound,
    vet_formula,
)
from symmle.numbers.missing import Dropped, row_error, source_rows
from symmle.numbers.typed_files import PARQUET_BATCH_ROWS, load_npy_columns, load_parquet_columns, pick_column

__all__ = ["MAX_DESIGN_CELLS", "Design", "load_design", "vet_formula"]

#: Most cells (rows times columns) of a design built in memory from a formula.
MAX_DESIGN_CELLS = 1 << 28

# --- the design ---------------------------------------------------------------------------------------


class Design:
    """The response, the design matrix and its term names, read in slices of rows.

    Built by :func:`load_design`.  A design by columns adds the intercept itself, per slice.

    Attributes
    ----------
    response : str
        The name of y (the formula's left side, or the column).
    terms : list of str
        The names of X's columns, in order.
    n, p : int
        Rows and columns of X.
    in_memory : bool
        False for a memory-mapped ``.npy`` design (read it by :meth:`chunks`).
    dropped : int or None
        Rows dropped for a missing value (``dropna=True``), else None.
    """

    def __init__(
        self,
        response: str,
        terms: list[str],
        x: np.ndarray,
        y: np.ndarray,
        offset: np.ndarray | None = None,
        *,
        cols: list[int] | None = None,
        intercept: bool = False,
        removed: np.ndarray | None = None,
        lazy: bool = False,
        dropna: bool = False,
    ) -> None:
        """``x`` (N, k): X's columns (``cols`` of them, after a column of ones with ``intercept``);
        ``removed``: the rows of the data as read that were dropped, still in the arrays if ``lazy``."""
        self.response, self.terms = response, list(terms)
        self._x, self._y, self._offset = x, y, offset
        self._cols, self._intercept = cols, bool(intercept)
        self._removed = np.empty(0, dtype=np.intp) if removed is None else np.asarray(removed, dtype=np.intp)
        self._gaps = self._removed - np.arange(self._removed.size)
        self._skip = self._removed if lazy and self._removed.size else None
        self.dropped = int(self._removed.size) if dropna else None
        self.n = int(x.shape[0]) - (0 if self._skip is None else int(self._skip.size))
        self.p = (x.shape[1] if cols is None else len(cols)) + self._intercept
        self.in_memory = not isinstance(x, np.memmap)
        self._arrays: tuple | None = None
        if self.p == 0:
            raise SpecError("the design has no columns: no intercept and no covariates")

    def __repr__(self) -> str:
        return f"Design({self.response!r} ~ {self.terms}, n={self.n})"

    def _assemble(self, lo: int, hi: int, block: np.ndarray | None = None) -> tuple:
        """``(y, X, offset)`` of the array rows ``lo`` to ``hi`` less those skipped."""
        xb = self._x[lo:hi] if block is None else block
        yb, ob = self._y[lo:hi], None if self._offset is None else self._offset[lo:hi]
        if self._skip is not None:
            a, b = np.searchsorted(self._skip, [lo, hi])
            if a < b:
                keep = np.ones(hi - lo, dtype=bool)
                keep[self._skip[a:b] - lo] = False
                xb, yb, ob = xb[keep], yb[keep], None if ob is None else ob[keep]
        if not self._intercept and self._cols is None and xb.dtype == np.float64 and xb.flags.c_contiguous:
            X = xb
        else:
            X = np.empty((xb.shape[0], self.p))
            X[:, : int(self._intercept)] = 1.0
            X[:, int(self._intercept) :] = xb if self._cols is None else xb[:, self._cols]
        y = np.ascontiguousarray(yb, dtype=np.float64)
        return y, X, None if ob is None else np.ascontiguousarray(ob, dtype=np.float64)

    def _source(self, k: int) -> int:
        """The row of the data as read (0-based) of the k-th row of the design."""
        if not self._removed.size:
            return k
        # the k-th row kept follows the dropped rows d_i with d_i - i <= k
        return k + int(np.searchsorted(self._gaps, k, side="right"))

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(y, X, offset)`` of rows ``start`` to ``stop`` (0-based) of the design.

        ``y`` is float64 of shape (m,), ``X`` float64 (m, p) C-contiguous, ``offset`` (m,) or None.
        """
        start, stop = max(0, start), min(stop, self.n)
        if stop <= start:
            return self._assemble(0, 0)
        if self._skip is None:
            return self._assemble(start, stop)
        return self._assemble(self._source(start), self._source(stop - 1) + 1)

    def chunks(self, size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(y, X, offset)`` of consecutive slices of at most ``size`` rows (by default about 2 MB of X).

        A memory-mapped file's pages are released after each slice, so memory holds one slice.
        """
        size = size or max(1, _runtime.CHUNK // self.p)
        for lo, block in _runtime.row_chunks(self._x, size, dtype=None):
            yield self._assemble(lo, lo + block.shape[0], block)

    def _whole(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``rows(0, n)``, read-only; kept for a design in memory (``y``, ``X`` and ``offset`` are
        asked for again and again), made afresh for a memory-mapped one."""
        if self._arrays is not None:
            return self._arrays
        arrays = self.rows(0, self.n)
        for a in arrays:
            if a is not None:
                a.flags.writeable = False
        if self.in_memory:
            self._arrays = arrays
        return arrays

    @property
    def X(self) -> np.ndarray:
        """The whole design matrix, read-only (a copy in memory, for a memory-mapped design)."""
        return self._whole()[1]

    @property
    def y(self) -> np.ndarray:
        """The whole response, float64, read-only."""
        return self._whole()[0]

    @property
    def offset(self) -> np.ndarray | None:
        """The whole offset, or None."""
        return None if self._offset is None else self._whole()[2]

    def source_row(self, k: int) -> int:
        """The row (1-based, in the data as read) of the k-th row of the design (0-based)."""
        return self._source(k) + 1

    @contextmanager
    def source_rows(self) -> Iterator[None]:
        """Name the row of a :func:`~symmle.numbers.missing.row_error` raised within (a row of the
        design) by its row in the data as read."""
        rows = self._removed
        with source_rows(Dropped(None, int(rows.size), rows) if rows.size else None):
            yield


# --- reading ------------------------------------------------------------------------------------------


def load_design(
    source: str | Path,
    *,
    formula: str | None = None,
    y: str | None = None,
    x: list[str] | None = None,
    offset: str | None = None,
    intercept: bool = True,
    dropna: bool = False,
) -> Design:
    """Read a regression design from ``source`` by a formula or by columns.

    Parameters
    ----------
    source : str, Path, DataFrame or mapping
        ``.csv``, ``.tsv``, ``.txt`` (optionally ``.gz``, ``.bz2``, ``.xz``), ``.parquet``, ``.npy``,
        ``"-"`` for standard input, or a table in memory: a pandas DataFrame or a mapping of column
        names to columns (numbers; text, or a pandas categorical, in ``C()``).
    formula : str, optional
        ``"y ~ terms"`` (vetted by :func:`vet_formula`); or give ``y`` (and ``x``).
    y : str, optional
        The response's column (name, or 1-based index), without a formula.
    x : list of str, optional
        The covariates' columns, without a formula (none: an intercept-only design).
    offset : str, optional
        A column added to the linear predictor with coefficient 1 (``log_time``).
    intercept : bool
        Add an intercept (with a formula, ``False`` appends ``- 1``).
    dropna : bool
        Drop the rows with a missing value in a column used, instead of refusing the first.

    Returns
    -------
    Design

    Raises
    ------
    SpecError
        Neither or both of ``formula`` and ``y``; a formula that is not allowed.
    DataError
        One line naming the row and the column of a bad cell, an unknown column, or no rows.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "d.csv"
    ...     _ = path.write_text("y,x,dose\\n1.5,1,low\\n2.5,2,mid\\n2.0,3,low\\n4.0,5,mid\\n")
    ...     d = load_design(path, formula="y ~ x + C(dose)")
    >>> d.terms, d.X[:, 1].tolist()
    (['Intercept', 'C(dose)[T.mid]', 'x'], [0.0, 1.0, 0.0, 1.0])
    """
    if formula is not None and (y is not None or x is not None):
        raise SpecError("give the design either by a formula ('y ~ x') or by columns (--y, --x), not both")
    if formula is None and y is None:
        raise SpecError(
            "a regression needs its design: a formula ('y ~ x', --formula) or the response column (--y, "
            "with covariates --x)"
        )
    if formula is not None:
        if x:
            raise SpecError("give the covariates in the formula, not by --x too")
        return _formula_design(source, formula, offset, intercept, dropna)
    return _column_design(source, y, list(x or []), offset, intercept, dropna)


def _npy(path: Path, wanted: list[str], indices: bool) -> tuple[np.ndarray, list[str], list[int]]:
    """A ``.npy`` file's columns, the columns' names and the positions of ``wanted``.

    A structured array's fields are read into memory; a plain one stays memory-mapped, its
    columns named ``c1``, ``c2``, ... (and, with ``indices``, also by 1-based index).
    """
    label = f"data file {path}"
    open_regular(path, DataError, label, "").close()
    try:
        fields = np.load(path, mmap_mode="r", allow_pickle=False).dtype.names
    except (ValueError, OSError, EOFError):
        fields = None  # load_npy_columns names the problem
    if fields:
        values, names = load_npy_columns(path, wanted, label, "")
        return values, names, list(range(len(wanted)))
    values, names = load_npy_columns(path, None, label, "")
    names = [f"c{j + 1}" for j in range(len(names))]
    idx = []
    for c in wanted:
        if c in names:
            idx.append(names.index(c))
        elif indices and c.isdigit() and 1 <= int(c) <= len(names):
            idx.append(int(c) - 1)
        else:
            shown = ", ".join(names[:8]) + (f", ... {names[-1]}" if len(names) > 8 else "")
            raise DataError(f"{path.name} has no column '{show(c)}'; columns: {shown}")
    if len(set(idx)) < len(idx):
        raise DataError(f"a column of {path.name} is chosen twice")
    return values, names, idx


def _column_design(source, y: str, x: list[str], offset: str | None, intercept: bool, dropna: bool) -> Design:
    wanted = [y, *x, *([offset] if offset is not None else [])]
    kind = None if _is_table(source) or str(source) == "-" else source_kind(source)
    if _is_table(source):
        columns = _table_columns(source, wanted, [])
        if len(columns) < len(wanted):
            raise DataError("a column is chosen twice")
        values, names, idx = (
            np.column_stack([c.values for c in columns.values()]),
            wanted,
            list(range(len(wanted))),
        )
    elif kind is not None and kind[1] == ".npy":
        values, names, idx = _npy(kind[0], wanted, indices=True)
    else:
        values, names = load_columns(source, wanted)
        idx = list(range(len(wanted)))
    terms = [names[j] for j in idx[1 : 1 + len(x)]]
    if intercept and "Intercept" in terms:
        raise DataError("a column named 'Intercept' clashes with the intercept: leave the intercept out")
    rows = max(1, _runtime.CHUNK // (4 * values.shape[1]))  # a scan of a memory map holds one block
    parts = ((lo, block[:, idx]) for lo, block in _runtime.row_chunks(values, rows, dtype=None))
    removed = _scan(parts, values.shape[0], [names[j] for j in idx], dropna)
    return Design(
        names[idx[0]],
        ["Intercept"] * intercept + terms,
        values,
        values[:, idx[0]],
        values[:, idx[-1]] if offset is not None else None,
        cols=idx[1 : 1 + len(x)],
        intercept=intercept,
        removed=removed,
        lazy=True,
        dropna=dropna,
    )


def _scan(parts: Iterator[tuple[int, np.ndarray]], n: int, names: list[str], dropna: bool) -> np.ndarray:
    """The rows with a missing cell (with ``dropna``; else an error naming the first), from blocks
    ``(first row, cells)`` of the columns ``names``; an error naming the first infinite cell."""
    if n == 0:
        raise DataError("the data have no rows")
    found = []
    for start, part in parts:
        if part.dtype.kind != "f":
            continue
        bad = ~np.isfinite(part)
        if not bad.any():
            continue
        nan = np.isnan(part)
        refused = bad & ~nan if dropna else bad
        if refused.any():
            i, j = np.argwhere(refused)[0]
            what = "is nan, a missing value (--dropna drops such rows)" if nan[i, j] else f"is {part[i, j]}"
            raise row_error(start + int(i) + 1, f", column '{show(names[j])}', {what}")
        found.append(start + np.flatnonzero(nan.any(axis=1)))
    rows = np.concatenate(found) if found else np.empty(0, dtype=np.intp)
    if rows.size == n:
        raise DataError(f"every row of the data ({n:,}) has a missing value: no data are left")
    return rows


class _Column(NamedTuple):
    values: np.ndarray  # float64: numbers, or codes into levels (NaN: missing)
    levels: list[str] | None


def _read_columns(source, numeric: list[str], labels: list[str]) -> dict[str, _Column]:
    """The columns a formula uses: numbers, and labels (a column only in C()) as codes."""
    wanted = numeric + labels
    if _is_table(source):
        return _table_columns(source, numeric, labels)
    kind = None if str(source) == "-" else source_kind(source)
    if kind is not None and kind[1] == ".npy":
        values, _, idx = _npy(kind[0], wanted, indices=False)
        return {c: _Column(np.asarray(values[:, j], dtype=np.float64), None) for c, j in zip(wanted, idx)}
    if kind is not None and kind[1] in (".parquet", ".pq"):
        return _parquet_columns(kind[0], numeric, labels)
    codes: dict[str, dict[str, int]] = {c: {} for c in labels}
    values, names = load_columns(source, wanted, labels=codes)
    for c, got in zip(wanted, names):
        if c != got:  # an index, in a table whose header does not name it
            raise DataError(
                f"the data have no column named '{show(c)}' (a formula names columns by the header)"
            )
    return {c: _Column(values[:, j], list(codes[c]) if c in codes else None) for j, c in enumerate(wanted)}


def _is_table(source) -> bool:
    """A pandas DataFrame or a mapping of columns (not a path)."""
    return isinstance(source, Mapping) or (hasattr(source, "columns") and hasattr(source, "__getitem__"))


def _table_columns(table, numeric: list[str], labels: list[str]) -> dict[str, _Column]:
    """Columns of a DataFrame or a mapping of columns: numbers as float64, labels (text) as codes."""
    import pandas as pd

    names = [str(c) for c in (table.columns if hasattr(table, "columns") else table)]
    keys = dict(zip(names, table.columns if hasattr(table, "columns") else table))
    out = {}
    for c in numeric + labels:
        if c not in keys:
            raise DataError(f"the data have no column '{show(c)}'; columns: {listed(names)}")
        values = table[keys[c]]
        if not isinstance(values, pd.Series):
            values = np.asarray(values)
            if values.ndim != 1:
                raise DataError(f"column '{show(c)}' of the data is not one column of values")
            values = pd.Series(values)
        dtype = values.dtype
        categorical = isinstance(dtype, pd.CategoricalDtype)
        if dtype.kind in "biuf" and not categorical:  # a nullable integer's NA becomes NaN
            out[c] = _Column(values.to_numpy(dtype=np.float64, na_value=np.nan), None)
        elif c in labels and (categorical or dtype.kind in "OSU"):
            codes, uniques = pd.factorize(values.astype(object))  # a missing value's code is -1
            out[c] = _Column(np.where(codes < 0, np.nan, codes), [str(u) for u in uniques])
        else:
            raise DataError(f"column '{show(c)}' of the data holds {dtype}, not numbers")
    if out and len({len(v.values) for v in out.values()}) > 1:
        raise DataError("the columns of the data have different lengths")
    return out


def _parquet_columns(path: Path, numeric: list[str], labels: list[str]) -> dict[str, _Column]:
    """Columns of a Parquet file: numbers by :mod:`~symmle.numbers.typed_files`, strings as codes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    label, out = f"data file {path}", {}
    with open_regular(path, DataError, label, "") as fh:
        try:
            table = pq.ParquetFile(fh)
            schema = table.schema_arrow
            for c in labels:
                kind = schema.field(
                    schema.names[pick_column(c, schema.names, len(schema.names), path.name)]
                ).type
                kind = kind.value_type if pa.types.is_dictionary(kind) else kind
                if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                    continue  # numbers: read below
                codes: dict[str, int] = {}
                parts = []
                for batch in table.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[c]):
                    col = batch.column(0)
                    col = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
                    parts.append(np.empty(len(col)))
                    label_codes(col.cast(pa.string()), codes, parts[-1])
                out[c] = _Column(np.concatenate(parts) if parts else np.empty(0), list(codes))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path.name}: cannot read it: {' '.join(str(exc).split())[:200]}") from None
    rest = [c for c in numeric + labels if c not in out]
    if rest:
        values, _ = load_parquet_columns(path, rest, label, "")
        out.update({c: _Column(values[:, j], None) for j, c in enumerate(rest)})
    return {c: out[c] for c in numeric + labels}


def _as_numbers(column: _Column) -> _Column:
    """Labels that are all finite numbers as numbers, as pandas would read them."""
    if column.levels is None:
        return column
    try:
        numbers = np.array([float(v) for v in column.levels] + [np.nan])
    except ValueError:
        return column
    if not np.isfinite(numbers[:-1]).all():
        return column
    codes = np.where(np.isnan(column.values), len(column.levels), column.values).astype(np.intp)
    return _Column(numbers[codes], None)


def _categories(codes: np.ndarray, levels: list[str]):
    """A pandas Categorical of the levels present, in sorted order (as formulaic orders text)."""
    import pandas as pd

    codes = codes.astype(np.intp)
    order = sorted(np.unique(codes).tolist(), key=lambda k: levels[k])
    remap = np.empty(len(levels), dtype=np.intp)
    remap[order] = np.arange(len(order))
    return pd.Categorical.from_codes(remap[codes], [levels[k] for k in order]), len(order)


def _text_columns(source, parsed, offset: str | None, exc: DataError) -> dict[str, _Column]:
    """The columns again, where a covariate is text: a column with no number at all is categorical.

    As in patsy and formulaic, a covariate all of whose cells are text is a factor (its term names read
    ``treatment[T.b]``).  A column that mixes numbers and text is refused with the first cell that is
    not a number (``exc``), and so is a text response or offset.
    """
    numeric = parsed.numeric + ([offset] if offset is not None and offset not in parsed.numeric else [])
    cols = {c: _as_numbers(v) for c, v in _read_columns(source, [], numeric + parsed.labels).items()}
    for c in numeric:
        levels = cols[c].levels
        if levels is None:
            continue
        mixed = any(_is_number(v) for v in levels)
        if mixed or c == parsed.numeric[0] or c == offset:
            raise DataError(f"{exc} (a covariate of categories goes in C())") from None
    return cols


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _formula_design(source, formula: str, offset: str | None, intercept: bool, dropna: bool) -> Design:
    parsed = parse_formula(formula)  # refuses what is not allowed before any data are read
    numeric = parsed.numeric + ([offset] if offset is not None and offset not in parsed.numeric else [])
    try:
        cols = {c: _as_numbers(v) for c, v in _read_columns(source, numeric, parsed.labels).items()}
    except DataError as exc:
        if not str(exc).endswith(("is not a number", "not numbers")):
            raise
        cols = _text_columns(source, parsed, offset, exc)
    parsed = parse_formula(formula, list(cols))
    names, n0 = list(cols), len(next(iter(cols.values())).values)
    rows = max(1, _runtime.CHUNK // len(names))
    parts = (
        (lo, np.column_stack([cols[c].values[lo : lo + rows] for c in names])) for lo in range(0, n0, rows)
    )
    removed = _scan(parts, n0, names, dropna)
    keep = None
    if removed.size:
        keep = np.ones(n0, dtype=bool)
        keep[removed] = False
    frame, widths, in_c = {}, {}, set(categorical_columns(parsed.rhs))
    for c in names:
        v = cols[c].values if keep is None else cols[c].values[keep]
        if cols[c].levels is not None:
            frame[c], widths[c] = _categories(v, cols[c].levels)
            continue
        # whole numbers in C() as integers, so that their levels read 2, not 2.0 (as in pandas)
        frame[c] = v.astype(np.int64) if c in in_c and np.array_equal(v, np.round(v)) else v
        widths[c] = int(np.unique(v).size) if c in in_c else 1
    n = n0 - int(removed.size)
    cells = (term_bound(parsed.rhs, widths, MAX_DESIGN_CELLS) + 1) * n
    if cells > MAX_DESIGN_CELLS:
        raise DataError(f"the design would have up to {cells:,} cells: more than {MAX_DESIGN_CELLS:,}")
    response, terms, X, y = _model_matrix(
        parsed.text + ("" if intercept else "-1"), parsed.rhs, frame, formula
    )
    off = None
    if offset is not None:
        off = cols[offset].values if keep is None else cols[offset].values[keep]
    for array in (X, y):  # rows() and X hand out views of these: no one may write into them
        array.flags.writeable = False
    design = Design(response, terms, X, y, off, removed=removed, dropna=dropna)
    with design.source_rows():  # a row of the design, named by its row in the data as read
        for names_, values in (([response], y[:, None]), (terms, X)):
            bad = ~np.isfinite(values)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                what = f", term '{show(names_[j])}', is {values[i, j]} (not a finite number)"
                raise row_error(int(i) + 1, what)
    return design


def _patsy_order(text: str, rhs: tuple):
    """The formula ``text`` for formulaic, its terms in the order statsmodels' designs (patsy's) have.

    patsy groups the terms by their set of numeric factors (the group without any first, then in
    the order the groups appear in its expansion of the formula), each group by degree; the order
    also decides which interactions are coded at full rank.  statsmodels orders formulaic's terms
    by this rule too (its "legacy" ordering).
    """
    from formulaic import Formula

    parsed = Formula(text, _ordering="none")
    terms = list(parsed.rhs)
    wanted = patsy_terms(rhs)
    leaves = list(dict.fromkeys(leaf for term in wanted for leaf in term))
    singles = [t for t in Formula("+".join(leaves), _ordering="none") if t.degree] if leaves else []
    if len(singles) == len(leaves):  # each factor as formulaic writes it
        expr = {leaf: t.factors[0].expr for leaf, t in zip(leaves, singles)}
        rank = {frozenset(expr[leaf] for leaf in term): i for i, term in enumerate(wanted)}
        terms.sort(key=lambda t: (t.degree > 0, rank.get(frozenset(f.expr for f in t.factors), len(rank))))
    groups: dict[frozenset, list] = {frozenset(): []}
    for t in terms:
        numeric = (
            frozenset(f.expr for f in t.factors if not f.expr.startswith("C(")) if t.degree else frozenset()
        )
        groups.setdefault(numeric, []).append(t)
    ordered = [t for group in groups.values() for t in sorted(group, key=lambda t: t.degree)]
    return Formula(lhs=parsed.lhs, rhs=Formula(ordered, _ordering="none"), _ordering="none")


def _model_matrix(
    text: str, rhs: tuple, frame: dict, formula: str
) -> tuple[str, list[str], np.ndarray, np.ndarray]:
    """formulaic's design of the vetted ``text``: the response's name, the terms, X and y."""
    import pandas as pd
    from formulaic import model_matrix
    from formulaic.errors import FormulaParsingError

    where = f"formula '{show(formula)}'"
    try:
        spec = _patsy_order(text, rhs)
        with np.errstate(all="ignore"):
            mm = model_matrix(spec, pd.DataFrame(frame), context=dict(FORMULA_CONTEXT), na_action="ignore")
    except FormulaParsingError as exc:
        raise SpecError(f"{where}: {' '.join(str(exc).split())[:200]}") from None
    except Exception as exc:  # formulaic evaluating vetted factors on these data (poly of a constant, ...)
        raise DataError(f"{where}: {' '.join(str(exc).split())[:200]}") from None
    if mm.lhs.shape[1] != 1:
        raise SpecError(f"{where}: the left side of ~ must be one numeric column")
    X = np.ascontiguousarray(mm.rhs.to_numpy(dtype=np.float64))
    y = np.ascontiguousarray(mm.lhs.to_numpy(dtype=np.float64)[:, 0])
    return str(mm.lhs.columns[0]), [str(c) for c in mm.rhs.columns], X, y
