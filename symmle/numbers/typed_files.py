"""One column of numbers from a typed binary file: a NumPy ``.npy`` array or a Parquet table.

Both formats are read by random access, so the file must be a regular file (it is checked by
:func:`~symmle.base.files.open_regular` before it is read).  A ``.npy`` file is memory-mapped,
so its size is no limit; a Parquet column is read one record batch at a time by
``pyarrow.parquet.ParquetFile.iter_batches``, so memory holds the float64 column and one batch.
Every problem is a :class:`~symmle.base.errors.DataError` with one line naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from symmle.base.errors import DataError
from symmle.base.files import open_regular

__all__ = [
    "PARQUET_BATCH_ROWS",
    "float_values",
    "load_npy",
    "load_npy_columns",
    "load_parquet",
    "load_parquet_columns",
    "pick_column",
]

#: Rows of a Parquet column converted at a time.
PARQUET_BATCH_ROWS = 1 << 16


def pick_column(
    column: str | None, names: list[str] | None, ncols: int, where: str, flag: str = "--column"
) -> int:
    """The 0-based index of ``column``: a name among ``names`` first, else a 1-based index.

    Parameters
    ----------
    column : str or None
        What ``--column`` says; None: the table must have one column.
    names : list of str or None
        The column names (a header), or None if the table has none.
    ncols : int
        The number of columns.
    where : str
        The name of the input in messages.
    flag : str
        The option that chose the column, in messages.

    Returns
    -------
    int

    Raises
    ------
    DataError
        The column is not given and the table has several, is not a name of the table, or is an
        index out of range.

    Examples
    --------
    >>> pick_column("b", ["a", "b"], 2, "t.csv"), pick_column("1", ["a", "b"], 2, "t.csv")
    (1, 0)
    >>> pick_column("c", ["a", "b"], 2, "t.csv")
    Traceback (most recent call last):
        ...
    symmle.DataError: t.csv has no column 'c'; columns: a, b
    """
    if column is None:
        if ncols != 1:
            raise DataError(f"{where} has {ncols} columns: choose one with --column")
        return 0
    if names is not None and column in names:
        return names.index(column)
    if names is not None and not column.isdigit():
        raise DataError(f"{where} has no column '{column}'; columns: {', '.join(names)}")
    try:
        k = int(column)
    except ValueError:
        raise DataError(
            f"{where} has no column named '{column}': it has no header; {flag} takes 1-based indices, "
            f"1 to {ncols}"
        ) from None
    if not 1 <= k <= ncols:
        raise DataError(f"{flag} {k} is out of range: {where} has {ncols} column(s)")
    return k - 1


def float_values(values, out: np.ndarray) -> None:
    """Copy a pyarrow float64 array (or chunked array) into ``out``, a null as NaN.

    Read from the array's buffers: ``to_numpy`` would import pandas where it is installed
    (pyarrow looks for pandas objects), which costs a third of a second and 45 MB.
    """
    pos = 0
    for chunk in getattr(values, "chunks", [values]):
        n, offset = len(chunk), chunk.offset
        validity, data = chunk.buffers()
        part = out[pos : pos + n]
        if data is None:  # no values at all
            part[:] = np.nan
            pos += n
            continue
        part[:] = np.frombuffer(data, dtype=np.float64, count=offset + n)[offset:]
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            part[bits[offset : offset + n] == 0] = np.nan
        pos += n


# --- .npy ---------------------------------------------------------------------------------------------


def _open_npy(path: Path, label: str, hint: str) -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped."""
    # np.load opens the path itself (a memory map needs a path): check it first
    open_regular(path, DataError, label, hint).close()
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path.name} is not a readable .npy file: {_one_line(exc)}") from None


def _check_numbers(arr: np.ndarray, where: str) -> None:
    if arr.dtype.kind == "c":
        raise DataError(f"{where} holds complex numbers")
    # booleans, integers and floats: timedelta64 is a NumPy integer subtype, but a duration, not a number
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{where} holds {arr.dtype}, not numbers")


def load_npy(path: Path, column: str | None, label: str, hint: str) -> np.ndarray:
    """One column of a ``.npy`` file, memory-mapped (see :func:`symmle.numbers.data.load_data`)."""
    arr = _open_npy(path, label, hint)
    where = path.name
    if arr.dtype.names:
        if column is None:
            if len(arr.dtype.names) != 1:
                raise DataError(f"{where} has fields {', '.join(arr.dtype.names)}: choose one with --column")
            column = arr.dtype.names[0]
        if column not in arr.dtype.names:
            raise DataError(f"{where} has no field '{column}'")
        where = f"field '{column}' of {path.name}"
        shape = arr.dtype.fields[column][0].shape
        if shape:  # a sub-array field: arr[column] would be 2-D, and read as one long column
            raise DataError(
                f"{where} holds an array of shape {shape} in each row; expected one number per row"
            )
        arr = arr[column]
        if arr.ndim != 1:
            raise DataError(f"{path.name} has {arr.ndim} dimensions; expected one record per row")
    elif arr.ndim == 2:
        if column is None and arr.shape[1] != 1:
            raise DataError(f"{where} has {arr.shape[1]} columns: choose one with --column INDEX (1-based)")
        idx = pick_column(column, None, arr.shape[1], where) if column is not None else 0
        arr = arr[:, idx]
    elif arr.ndim != 1:
        raise DataError(f"{where} has {arr.ndim} dimensions; expected one column of numbers")
    elif column not in (None, "1"):
        raise DataError(f"{where} has one column; --column {column} does not apply")
    _check_numbers(arr, where)
    return arr


def load_npy_columns(
    path: Path, columns: list[str] | None, label: str, hint: str
) -> tuple[np.ndarray, list[str]]:
    """Columns of a ``.npy`` file and their names (see :func:`symmle.numbers.data.load_columns`).

    A 2-D array's columns are named by their 1-based indices; a 1-D array is one column; the
    fields of a structured array are columns, copied into memory as float64.  Chosen columns of
    a 2-D array that are all of them, or a run of consecutive ones in order, stay memory-mapped
    (a view); others are copied into memory, a block of rows at a time.
    """
    arr = _open_npy(path, label, hint)
    where = path.name
    if arr.dtype.names:
        if arr.ndim != 1:
            raise DataError(f"{where} has {arr.ndim} dimensions; expected one record per row")
        fields = list(arr.dtype.names)
        chosen = fields if columns is None else [fields[_field(c, fields, where)] for c in columns]
        for name in chosen:
            shape = arr.dtype.fields[name][0].shape
            if shape:
                raise DataError(
                    f"field '{name}' of {where} holds an array of shape {shape} in each row; "
                    "expected one number per row"
                )
            _check_numbers(arr[name], f"field '{name}' of {where}")
        out = np.empty((arr.shape[0], len(chosen)))
        for start in range(0, arr.shape[0], PARQUET_BATCH_ROWS):
            rows = arr[start : start + PARQUET_BATCH_ROWS]
            for j, name in enumerate(chosen):
                out[start : start + rows.shape[0], j] = rows[name]
        return out, chosen
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2:
        raise DataError(f"{where} has {arr.ndim} dimensions; expected an (N, D) array of rows")
    _check_numbers(arr, where)
    d = arr.shape[1]
    idx = (
        list(range(d)) if columns is None else [pick_column(c, None, d, where, "--columns") for c in columns]
    )
    names = [str(k + 1) for k in idx]
    if not idx:
        raise DataError(f"{where} has no columns")
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return arr[:, idx[0] : idx[0] + len(idx)], names
    out = np.empty((arr.shape[0], len(idx)))
    rows = max(1, PARQUET_BATCH_ROWS // d)
    for start in range(0, arr.shape[0], rows):
        out[start : start + rows] = arr[start : start + rows][:, idx]
    return out, names


def _field(column: str, fields: list[str], where: str) -> int:
    if column in fields:
        return fields.index(column)
    raise DataError(f"{where} has no field '{column}'; fields: {', '.join(fields)}")


# --- Parquet ------------------------------------------------------------------------------------------


def load_parquet(path: Path, column: str | None, label: str, hint: str) -> np.ndarray:
    """One column of a Parquet file as float64, a null as NaN, read a record batch at a time.

    Integer, floating-point, decimal and boolean columns are numbers; any other type (strings,
    dates, lists, ...) is refused, naming the column and its type.

    Examples
    --------
    >>> import tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "t.parquet"
    ...     pq.write_table(pa.table({"id": [1, 2, 3], "h": [1.5, None, 2.0]}), path)
    ...     load_parquet(path, "h", "data file t.parquet", "").tolist()
    [1.5, nan, 2.0]
    """
    return _read_parquet(path, None if column is None else [column], label, hint, one=True)[0][:, 0]


def load_parquet_columns(
    path: Path, columns: list[str] | None, label: str, hint: str
) -> tuple[np.ndarray, list[str]]:
    """Columns of a Parquet file as an (N, D) float64 array, and their names (all by default)."""
    return _read_parquet(path, columns, label, hint, one=False)


def _read_parquet(
    path: Path, columns: list[str] | None, label: str, hint: str, one: bool
) -> tuple[np.ndarray, list[str]]:
    """Columns of a Parquet file as float64, a record batch at a time (``one``: a single column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = path.name
    flag = "--column" if one else "--columns"
    with open_regular(path, DataError, label, hint) as fh:
        try:
            table = pq.ParquetFile(fh)
            schema = table.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            if fh.seek(0, 2) == 0:
                raise DataError(f"{where} is empty") from None
            raise DataError(f"{where} is not a readable Parquet file: {_one_line(exc)}") from None
        names = list(schema.names)
        if not names:
            raise DataError(f"{where} has no columns")
        if one or columns is not None:
            chosen = [names[pick_column(c, names, len(names), where, flag)] for c in (columns or [None])]
        else:
            chosen = names
        for name in chosen:
            kind = schema.field(name).type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            if not (
                pa.types.is_integer(kind)
                or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind)
                or pa.types.is_boolean(kind)
            ):
                raise DataError(f"column '{name}' of {where} holds {kind}, not numbers")
        if table.metadata.num_rows == 0:
            raise DataError(f"{where} has no data rows")
        try:
            out = np.empty((table.metadata.num_rows, len(chosen)))
        except (MemoryError, ValueError):  # the footer's count is the file's word, not a measure
            raise DataError(
                f"{where} says it holds {table.metadata.num_rows:,} rows: too many to read"
            ) from None
        filled = 0
        name = chosen[0]
        try:
            for batch in table.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=chosen):
                m = batch.num_rows
                if filled + m > out.shape[0]:
                    raise ValueError(f"more rows than the {out.shape[0]:,} its metadata says")
                for j, name in enumerate(chosen):
                    values = batch.column(name)
                    if pa.types.is_dictionary(values.type):
                        values = values.dictionary_decode()
                    float_values(values.cast(pa.float64()), out[filled : filled + m, j])
                filled += m
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{where}: cannot read column '{name}': {_one_line(exc)}") from None
    if filled != out.shape[0]:
        raise DataError(f"{where}: column '{name}' holds {filled:,} rows, its metadata says {out.shape[0]:,}")
    return out, chosen


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
