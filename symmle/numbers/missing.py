"""Missing values: which cells are missing, dropping their rows, and naming a row of what is left.

A missing value is NaN in the column read (:mod:`symmle.numbers.data` reads an empty cell and the
cells of :data:`MISSING_VALUES` as NaN, Parquet's null too).  Validation names it by its row;
``symmle fit --dropna`` drops such rows with :func:`drop_missing`, and :func:`source_rows` then
names a bad row of what is left by its row in the data as read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from symmle.base import _runtime
from symmle.base.errors import DataError

__all__ = ["MISSING_VALUES", "Dropped", "drop_missing", "row_error", "source_rows"]

#: Cells of text data that are missing values (those pandas reads as NaN), besides the empty cell.
MISSING_VALUES = (
    "",
    "NA",
    "N/A",
    "n/a",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "<NA>",
    "NULL",
    "null",
    "None",
    "NaN",
    "nan",
    "-NaN",
    "-nan",
    "1.#IND",
    "-1.#IND",
    "1.#QNAN",
    "-1.#QNAN",
)
_MISSING = frozenset(MISSING_VALUES)


class Dropped(NamedTuple):
    """What :func:`drop_missing` kept and dropped."""

    #: The rows kept.
    values: np.ndarray
    #: How many rows were dropped.
    count: int
    #: The 0-based positions of the dropped rows in the data, ascending.
    rows: np.ndarray


def drop_missing(x: np.ndarray) -> Dropped:
    """Drop the rows of ``x`` that hold a missing value (NaN), reading it in chunks.

    Parameters
    ----------
    x : ndarray
        One-dimensional data, or an (N, D) array of rows (a row is missing if any of its cells
        is), memory-mapped or not.

    Returns
    -------
    Dropped
        ``x`` itself if no row is missing, else the rows kept, in a new array.

    Raises
    ------
    DataError
        If every row is missing.

    Examples
    --------
    >>> drop_missing(np.array([1.5, np.nan, 2.0, np.nan]))
    Dropped(values=array([1.5, 2. ]), count=2, rows=array([1, 3]))
    >>> drop_missing(np.array([[1.0, 2.0], [3.0, np.nan]])).values
    array([[1., 2.]])
    """
    n = int(x.shape[0])
    if x.dtype.kind != "f":  # integers and booleans have no NaN
        return Dropped(x, 0, np.empty(0, dtype=np.intp))
    if x.ndim == 2:
        return _drop_missing_rows(x)
    found = [
        start + np.flatnonzero(np.isnan(chunk))
        for start, chunk in zip(range(0, n, _runtime.CHUNK), _runtime.chunks(x, _runtime.CHUNK))
    ]
    rows = np.concatenate(found) if found else np.empty(0, dtype=np.intp)
    if rows.size == 0:
        return Dropped(x, 0, rows)
    if rows.size == n:
        raise DataError(f"every row of the data ({n:,}) has a missing value: no data are left")
    kept = np.empty(n - rows.size)
    filled = 0
    for chunk in _runtime.chunks(x, _runtime.CHUNK):
        good = chunk[~np.isnan(chunk)]
        kept[filled : filled + good.size] = good
        filled += good.size
    return Dropped(kept, int(rows.size), rows)


def _drop_missing_rows(x: np.ndarray) -> Dropped:
    n = int(x.shape[0])
    found = [start + np.flatnonzero(np.isnan(block).any(axis=1)) for start, block in _runtime.row_chunks(x)]
    rows = np.concatenate(found) if found else np.empty(0, dtype=np.intp)
    if rows.size == 0:
        return Dropped(x, 0, rows)
    if rows.size == n:
        raise DataError(f"every row of the data ({n:,}) has a missing value: no data are left")
    kept = np.empty((n - rows.size, x.shape[1]))
    filled = 0
    for _, block in _runtime.row_chunks(x):
        good = block[~np.isnan(block).any(axis=1)]
        kept[filled : filled + good.shape[0]] = good
        filled += good.shape[0]
    return Dropped(kept, int(rows.size), rows)


def row_error(row: int, detail: str) -> DataError:
    """``row N of the data<detail>``; the error keeps ``row`` and ``detail``, for :func:`source_rows`."""
    exc = DataError(f"row {row} of the data{detail}")
    exc.row, exc.detail = row, detail
    return exc


@contextmanager
def source_rows(dropped: Dropped | None) -> Iterator[None]:
    """Report a bad row of the data kept by :func:`drop_missing` by its row in the source.

    Examples
    --------
    >>> from symmle.numbers.data import validate_data
    >>> d = drop_missing(np.array([1.0, np.nan, -2.0]))
    >>> with source_rows(d):
    ...     validate_data(d.values, lo=0, hi=np.inf, discrete=False)
    Traceback (most recent call last):
        ...
    symmle.DataError: row 3 of the data, x = -2, is outside the support [0, inf]
    """
    try:
        yield
    except DataError as exc:
        row = getattr(exc, "row", None)
        if dropped is None or not dropped.count or row is None:
            raise
        # the k-th kept row (0-based) is the source row k + (dropped rows before it): with the dropped
        # rows d_0 < d_1 < ..., d_i - i counts the kept rows before d_i
        k = row - 1
        before = int(np.searchsorted(dropped.rows - np.arange(dropped.rows.size), k, side="right"))
        raise row_error(k + before + 1, exc.detail) from None
