"""Category labels for ``fit``: one column of labels becomes the count of each category.

A categorical sample is a column of labels (``setosa``, ``versicolor``, ... or integers); its
sufficient statistic is how many rows hold each label.  :func:`load_labels` reads the column from
every format of ``fit`` (text through the checked blocks of :mod:`symmle.numbers.data`, parsed by
pyarrow; Parquet a record batch at a time; ``.npy`` a block at a time), so memory holds one block
and one count per category whatever the number of rows.

The categories are in a stable order that does not depend on the order of the rows: if every
label is a whole number (``3``, ``-1``, ``007``; a boolean is 0 or 1), by value, written as
``str(int(label))`` (so ``7`` and ``007`` are one category); otherwise by their text (code point
order, after stripping white space around it).  A missing label (an empty cell, ``NA``, a Parquet
null, ...; see :data:`~symmle.numbers.missing.MISSING_VALUES`) is an error naming its line or row,
unless ``dropna``.

Text: the first row is a header when ``column`` is a name (then it must be one of its cells) or,
as for numbers, when it is not all numbers; ``header`` says it outright.  Rows must have the width
of the table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from symmle.base._runtime import show_number as _show
from symmle.base.errors import DataError
from symmle.base.files import open_regular
from symmle.numbers.data import (
    _EOL,
    _MISSING,
    HEAD_LENGTH,
    HEAD_LINES,
    _cells,
    _is_number,
    _Lines,
    _stdin_reader,
    _text_blocks,
    open_text,
    source_kind,
)
from symmle.numbers.missing import MISSING_VALUES
from symmle.numbers.typed_files import PARQUET_BATCH_ROWS, pick_column

__all__ = ["MAX_CATEGORIES", "Labels", "load_labels"]

#: Most distinct labels in a column (a column of measurements read as labels would hold as many
#: as it has rows).
MAX_CATEGORIES = 1 << 20
_INTEGER = re.compile(r"[+-]?[0-9]+")


class Labels(NamedTuple):
    """The categories of a column of labels and how many rows hold each."""

    #: The distinct labels, in the order of the module's docstring.
    categories: list[str]
    #: int64, the number of rows holding each category.
    counts: np.ndarray
    #: The number of rows counted (the sum of ``counts``).
    n: int
    #: Rows dropped for a missing label (``dropna``).
    dropped: int
    #: The name of the column read (a header's or Parquet's), else its 1-based index.
    column: str


def load_labels(
    source: str | Path, column: str | None = None, *, dropna: bool = False, header: bool | None = None
) -> Labels:
    """Read a column of category labels from ``source`` and count each category.

    Parameters
    ----------
    source : str or Path
        A ``.csv``, ``.tsv``, ``.txt`` (optionally ``.gz``, ``.bz2``, ``.xz``), ``.parquet`` or
        ``.npy`` file, or ``"-"`` for standard input.
    column : str, optional
        By name or 1-based index; required when the table has several columns.
    dropna : bool
        Drop (and count in ``dropped``) the rows whose label is missing instead of refusing them.
    header : bool, optional
        Whether the first row of text is a header; by default as the module's docstring says.

    Returns
    -------
    Labels

    Raises
    ------
    DataError
        One line naming the problem: the file, the column (listing those that exist), a row of
        another width, a missing label (by its line), a type that is not labels, no rows, or more
        than :data:`MAX_CATEGORIES` categories.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "iris.csv"
    ...     _ = path.write_text("length,species\\n5.1,setosa\\n7.0,versicolor\\n4.9, setosa\\n")
    ...     labels = load_labels(path, "species")
    >>> labels.categories, labels.counts.tolist(), labels.n
    (['setosa', 'versicolor'], [2, 1], 3)
    """
    if str(source) == "-":
        counts, dropped, name = _text_labels(_stdin_reader(), "standard input", column, None, dropna, header)
    else:
        path, kind, compressed = source_kind(source)
        if kind == ".npy":
            counts, dropped, name = _npy_labels(path, column, dropna)
        elif kind in (".parquet", ".pq"):
            counts, dropped, name = _parquet_labels(path, column, dropna)
        else:
            with open_text(path, kind, compressed) as (read, sep):
                counts, dropped, name = _text_labels(read, path.name, column, sep, dropna, header)
    categories, numbers = _ordered(counts)
    if not categories:
        raise DataError("no labels left: every row's label is missing" if dropped else "the data are empty")
    n = int(numbers.sum())
    return Labels(categories, numbers, n, dropped, name)


def _ordered(counts: Counter) -> tuple[list[str], np.ndarray]:
    """Categories in their stable order, and their counts: whole numbers by value, else by text."""
    keys = list(counts)
    if all(isinstance(k, (int, np.integer)) or (isinstance(k, str) and _INTEGER.fullmatch(k)) for k in keys):
        merged: Counter = Counter()
        for k, c in counts.items():
            merged[int(k)] += c
        order = sorted(merged)
        return [str(k) for k in order], np.array([merged[k] for k in order], dtype=np.int64)
    merged = Counter()
    for k, c in counts.items():
        merged[str(k)] += c
    order = sorted(merged)
    return order, np.array([merged[k] for k in order], dtype=np.int64)


def _add(counts: Counter, items: Iterable[tuple[object, int]], where: str) -> None:
    for k, c in items:
        counts[k] += c
    if len(counts) > MAX_CATEGORIES:
        raise DataError(f"{where} holds more than {MAX_CATEGORIES:,} distinct labels: not categories")


def _missing_label(where: str, at: str, label: str) -> DataError:
    shown = f" ('{label}')" if label else ""
    return DataError(f"{where}, {at}: the label is missing{shown} (--dropna drops such rows)")


# --- text ---------------------------------------------------------------------------------------------


def _text_labels(
    read: Callable[[int], bytes],
    where: str,
    column: str | None,
    sep: str | None,
    dropna: bool,
    header: bool | None,
) -> tuple[Counter, int, str]:
    lines = _Lines(_text_blocks(read, where))
    head: list[tuple[int, str]] = []
    size = 0
    while len(head) < HEAD_LINES and size < HEAD_LENGTH and (item := lines.next()) is not None:
        if item[1].strip():
            head.append(item)
            size += len(item[1])
    if not head:
        raise DataError(f"{where} is empty")
    if sep is None and any("," in text for _, text in head):
        sep = ","
    rows = [(n, c) for n, text in head if any(c := _cells(text, sep, n, where))]
    if not rows:
        raise DataError(f"{where} is empty")
    first = rows[0][1]
    if header is None:
        named = column is not None and not column.isdigit()
        header = named or not all(_is_number(c) or c in _MISSING for c in first)
    names = rows.pop(0)[1] if header else None
    width = len(first)
    idx = pick_column(column, names, width, where)
    name = names[idx] if names is not None and names[idx] else str(idx + 1)
    counts: Counter = Counter()
    dropped = _count_rows(rows, idx, width, where, dropna, counts)
    for start, block in lines.rest():
        dropped += _count_block(start, block, sep, idx, width, where, dropna, counts)
    return counts, dropped, name


def _count_rows(
    rows: list[tuple[int, list[str]]], idx: int, width: int, where: str, dropna: bool, counts: Counter
) -> int:
    """Count the labels of parsed rows; the number of missing ones dropped."""
    dropped = 0
    found: Counter = Counter()
    for number, cells in rows:
        if len(cells) != width:
            raise DataError(f"{where}, line {number} has {len(cells)} cells; the table has {width} columns")
        label = cells[idx].strip()
        if label in _MISSING:
            if not dropna:
                raise _missing_label(where, f"line {number}", label)
            dropped += 1
            continue
        found[label] += 1
    _add(counts, found.items(), where)
    return dropped


def _count_block(
    start: int,
    block: bytes,
    sep: str | None,
    idx: int,
    width: int,
    where: str,
    dropna: bool,
    counts: Counter,
) -> int:
    """Count a block of lines by pyarrow, or line by line where it refuses them (to name the line)."""
    if block.isspace():
        return 0
    if sep is not None:
        got = _arrow_labels(block, sep, idx, width)
        if got is not None and (dropna or got[1] == 0):
            _add(counts, got[0], where)
            return got[1]
    rows = []
    for k, line in enumerate(_EOL.split(block)[:-1]):
        cells = _cells(line.decode("utf-8"), sep, start + k, where)
        if any(cells):
            rows.append((start + k, cells))
    return _count_rows(rows, idx, width, where, dropna, counts)


def _arrow_labels(block: bytes, sep: str, idx: int, width: int) -> tuple[list[tuple[str, int]], int] | None:
    """``(label counts, missing)`` of a delimited block by pyarrow; None where it refuses the block."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    first = block[: _EOL.search(block).start()].decode("utf-8")
    try:
        if len(_cells(first, sep, 0, "")) != width:  # pyarrow holds the block to its first line's width
            return None
    except DataError:
        return None
    wanted = list(dict.fromkeys([f"f{idx}", f"f{width - 1}"]))
    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                null_values=[v for v in MISSING_VALUES if v],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowException:
        return None
    labels = pc.utf8_trim_whitespace(table.column(f"f{idx}"))
    # a cell of white space, or a missing value padded with it, is missing too
    missing = pc.or_(pc.is_null(labels), pc.is_in(labels, value_set=pa.array(MISSING_VALUES)))
    n_missing = pc.sum(pc.cast(missing, pa.int64())).as_py() or 0
    kept = pc.filter(labels, pc.invert(missing)) if n_missing else labels
    vc = pc.value_counts(kept)
    return list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())), n_missing


# --- Parquet and .npy ---------------------------------------------------------------------------------


def _parquet_labels(path: Path, column: str | None, dropna: bool) -> tuple[Counter, int, str]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    where = path.name
    with open_regular(path, DataError, f"data file {path}", "") as fh:
        try:
            table = pq.ParquetFile(fh)
            schema = table.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"{where} is not a readable Parquet file: {' '.join(str(exc).split())[:200]}"
            ) from None
        names = list(schema.names)
        if not names:
            raise DataError(f"{where} has no columns")
        name = names[pick_column(column, names, len(names), where)]
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_floating(kind)
        ):
            raise DataError(f"column '{name}' of {where} holds {kind}, not labels")
        counts: Counter = Counter()
        dropped = 0
        row = 0
        try:
            for batch in table.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[name]):
                values = batch.column(0)
                if pa.types.is_dictionary(values.type):
                    values = values.dictionary_decode()
                if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                    values = pc.utf8_trim_whitespace(values)
                    blank = pc.fill_null(pc.is_in(values, value_set=pa.array(MISSING_VALUES)), False)
                    values = pc.if_else(blank, pa.scalar(None, values.type), values)
                elif pa.types.is_floating(values.type):
                    values = pa.array(_whole_numbers(values.to_numpy(zero_copy_only=False), row, where))
                missing = values.null_count
                if missing and not dropna:
                    k = int(np.flatnonzero(np.asarray(pc.is_null(values)))[0])
                    raise _missing_label(where, f"row {row + k + 1} of the data", "")
                dropped += missing
                vc = pc.value_counts(values.drop_null() if missing else values)
                _add(counts, zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()), where)
                row += len(values)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"{where}: cannot read column '{name}': {' '.join(str(exc).split())[:200]}"
            ) from None
    return counts, dropped, name


def _whole_numbers(values: np.ndarray, row: int, where: str) -> np.ndarray:
    """Float labels as integers (NaN as missing: a masked array); a fraction is an error naming its row."""
    bad = np.isfinite(values) & (values != np.round(values))
    bad |= np.isinf(values)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}, row {row + k + 1} of the data: {_show(values[k])} is not a whole number: not a label"
        )
    nan = np.isnan(values)
    return np.ma.masked_array(np.where(nan, 0, values).astype(np.int64), mask=nan)


def _npy_labels(path: Path, column: str | None, dropna: bool) -> tuple[Counter, int, str]:
    open_regular(path, DataError, f"data file {path}", "").close()
    where = path.name
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where} is not a readable .npy file: {' '.join(str(exc).split())[:200]}") from None
    if arr.dtype.names:
        fields = list(arr.dtype.names)
        if column is None and len(fields) != 1:
            raise DataError(f"{where} has fields {', '.join(fields)}: choose one with --column")
        name = fields[0] if column is None else column
        if name not in fields:
            raise DataError(f"{where} has no field '{name}'; fields: {', '.join(fields)}")
        arr = arr[name]
    elif arr.ndim == 2:
        idx = pick_column(column, None, arr.shape[1], where)
        name = str(idx + 1)
        arr = arr[:, idx]
    else:
        name = "1"
    if arr.ndim != 1:
        raise DataError(f"{where} has {arr.ndim} dimensions; expected one label per row")
    if arr.dtype.kind not in "biuUSf":
        raise DataError(f"{where} holds {arr.dtype}, not labels")
    counts: Counter = Counter()
    dropped = 0
    for start in range(0, arr.shape[0], PARQUET_BATCH_ROWS):
        block = np.asarray(arr[start : start + PARQUET_BATCH_ROWS])
        if block.dtype.kind == "f":
            masked = _whole_numbers(block, start, where)
            missing = np.ma.getmaskarray(masked)
            block = masked.data
        elif block.dtype.kind in "US":
            block = np.char.strip(block.astype(str))
            missing = np.isin(block, MISSING_VALUES)
        else:
            missing = np.zeros(block.shape, dtype=bool)
        if missing.any():
            if not dropna:
                raise _missing_label(
                    where, f"row {start + int(np.flatnonzero(missing)[0]) + 1} of the data", ""
                )
            dropped += int(missing.sum())
            block = block[~missing]
        values, numbers = np.unique(block, return_counts=True)
        _add(counts, zip(values.tolist(), numbers.tolist()), where)
    return counts, dropped, name
