"""Vector observations for ``fit``: rows of several columns, their checks and their sufficient statistics.

A vector model observes a row of D numbers per observation: ``mvnormal`` any real row, ``multinomial``
a row of counts, ``dirichlet`` a row on the simplex, ``categorical`` a one-hot row (or labels: see
:mod:`symmle.numbers.labels`).  :func:`load_matrix`, :func:`load_count_rows` and
:func:`load_simplex_rows` read the columns with :func:`symmle.numbers.data.load_columns` (every
format of ``fit``; a ``.npy`` file stays memory-mapped), drop the rows with a missing value if asked
(``--dropna``), and check every row against the support with :func:`validate_rows`: a bad cell is one
line naming its row in the data as read, its column and what is wrong.

The statistics are the runtime's (:func:`symmle.base._runtime.vector_moments`,
:func:`~symmle.base._runtime.column_sums`, :func:`~symmle.base._runtime.check_scatter`), one pass over
blocks of rows, so that ``fit`` and a compiled module compute the same numbers; :func:`sample_moments`
and :func:`sample_sums` call them and name a bad cell or a singular covariance by the columns' names.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from symmle.base import _runtime
from symmle.base.errors import DataError
from symmle.numbers.data import load_columns
from symmle.numbers.missing import Dropped, drop_missing, row_error, source_rows

__all__ = [
    "SIMPLEX_TOLERANCE",
    "SUPPORTS",
    "Matrix",
    "Moments",
    "load_count_rows",
    "load_matrix",
    "load_simplex_rows",
    "sample_moments",
    "sample_sums",
    "validate_rows",
]

#: The sets a row may be required to lie in (the ``support`` of a vector model).
SUPPORTS = ("real", "counts", "simplex", "onehot")
#: How far the entries of a row on the simplex may add up from 1 (rounding of shares written
#: with a few digits).
SIMPLEX_TOLERANCE = 1e-6


class Matrix(NamedTuple):
    """Rows of observations as read: the values, the columns' names and the rows dropped."""

    #: Shape (N, D): float64, or a memory map of a ``.npy`` file in its own numeric type
    #: (:func:`load_count_rows`: integers).
    values: np.ndarray
    #: The name of each column (a header's, Parquet's, a structured ``.npy`` file's field, else its
    #: 1-based index as text).
    columns: list[str]
    #: The rows dropped for a missing value (``dropna=True``), else None.
    dropped: Dropped | None


class Moments(NamedTuple):
    """The number of rows, their mean and their scatter about it (see :func:`sample_moments`)."""

    n: int
    #: Shape (D,).
    mean: np.ndarray
    #: Shape (D, D): ``sum_i (x_i - mean)(x_i - mean)^T``.
    scatter: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """The MLE of a Gaussian covariance, ``scatter / n``."""
        return self.scatter / self.n


def load_matrix(
    source: str | Path, columns: list[str] | None = None, dropna: bool = False, dim: int | None = None
) -> Matrix:
    """Rows of real numbers from ``source``: every cell finite.

    Parameters
    ----------
    source : str or Path
        A ``.npy`` (an (N, D) array, memory-mapped), ``.parquet``, ``.csv``, ``.tsv`` or ``.txt``
        file (text optionally ``.gz``, ``.bz2``, ``.xz``), or ``"-"`` for standard input.
    columns : list of str, optional
        The columns, in this order, by name or 1-based index; by default all of them.
    dropna : bool
        Drop the rows with a missing value (NaN, an empty cell, ``NA``, ...) instead of refusing
        the first.
    dim : int, optional
        The dimension the model expects: the number of columns must be it.

    Returns
    -------
    Matrix

    Raises
    ------
    DataError
        One line naming the problem: the file (see :func:`symmle.numbers.data.load_columns`: a
        cell that is not a number by its line and column, a row of another width, a column that
        does not exist with those that do), the number of columns against ``dim``, or the first
        cell that is missing or not finite, by its row and column.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "t.csv"
    ...     _ = path.write_text("a,b\\n1,2\\n3,NA\\n5,6\\n")
    ...     m = load_matrix(path, dropna=True)
    ...     load_matrix(path)
    Traceback (most recent call last):
        ...
    symmle.DataError: row 2 of the data, column 'b', is nan, a missing value (--dropna drops such rows)
    >>> m.values.tolist(), m.columns, m.dropped.count
    ([[1.0, 2.0], [5.0, 6.0]], ['a', 'b'], 1)
    """
    return _load(source, columns, dropna, dim, "real")


def load_count_rows(
    source: str | Path, columns: list[str] | None = None, dropna: bool = False, dim: int | None = None
) -> Matrix:
    """Rows of counts (a multinomial sample) from ``source``: every cell a non-negative integer.

    As :func:`load_matrix`; the values are int64 (a ``.npy`` file of integers stays memory-mapped
    in its own type; counts written as floats are converted).  A cell that is negative or not a
    whole number is refused, naming its row and column.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "t.csv"
    ...     _ = path.write_text("a,b,c\\n1,0,3\\n2,2.5,0\\n")
    ...     load_count_rows(path)
    Traceback (most recent call last):
        ...
    symmle.DataError: row 2 of the data, column 'b' = 2.5, is not a whole number: not a count
    """
    m = _load(source, columns, dropna, dim, "counts")
    return m._replace(values=_as_counts(m.values))


def load_simplex_rows(
    source: str | Path, columns: list[str] | None = None, dropna: bool = False, dim: int | None = None
) -> Matrix:
    """Rows on the simplex (a Dirichlet sample) from ``source``: positive cells adding up to 1.

    As :func:`load_matrix`; a row whose sum is farther than :data:`SIMPLEX_TOLERANCE` from 1, or a
    cell that is not positive, is refused, naming its row (and column).
    """
    return _load(source, columns, dropna, dim, "simplex")


def _load(
    source: str | Path, columns: list[str] | None, dropna: bool, dim: int | None, support: str
) -> Matrix:
    values, names = load_columns(source, columns)
    if dim is not None and values.shape[1] != dim:
        raise DataError(
            f"the data have {values.shape[1]} column(s) ({_names(names)}); the model's dimension is {dim}"
        )
    dropped = drop_missing(values) if dropna else None
    if dropped is not None:
        values = dropped.values
    with source_rows(dropped):  # a bad row is named by its row in the data as read
        validate_rows(values, names, support)
    return Matrix(values, names, dropped)


def _names(names: list[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _as_counts(x: np.ndarray) -> np.ndarray:
    """Checked counts as integers: a ``.npy`` file's integers as they are, others as int64."""
    if x.dtype.kind in "iu":
        return x
    out = np.empty(x.shape, dtype=np.int64)
    for start, block in _runtime.row_chunks(x, dtype=None):
        out[start : start + block.shape[0]] = block
    return out


def validate_rows(x: np.ndarray, columns: list[str] | None = None, support: str = "real") -> None:
    """Check every row of ``x`` in one pass over blocks of rows; raise on the first bad one.

    Parameters
    ----------
    x : ndarray
        Shape (N, D), memory-mapped or not.
    columns : list of str, optional
        The columns' names in messages (default: 1-based indices).
    support : str
        One of :data:`SUPPORTS`: ``"real"`` (every cell finite), ``"counts"`` (non-negative
        integers), ``"simplex"`` (positive cells adding up to 1 within
        :data:`SIMPLEX_TOLERANCE`), ``"onehot"`` (cells 0 or 1, one 1 in each row).

    Raises
    ------
    DataError
        For empty data, or naming the first bad row (1-based), its column and what is wrong.

    Examples
    --------
    >>> validate_rows(np.array([[0.2, 0.8], [0.5, 0.6]]), ["a", "b"], "simplex")
    Traceback (most recent call last):
        ...
    symmle.DataError: row 2 of the data adds up to 1.1, not 1: not on the simplex
    """
    if support not in SUPPORTS:
        raise ValueError(f"unknown support {support!r}: one of {', '.join(SUPPORTS)}")
    if x.ndim != 2:
        raise DataError(f"expected rows of several columns, got an array of shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError("the data are empty")
    names = columns or [str(j + 1) for j in range(x.shape[1])]
    for start, block in _runtime.row_chunks(x):
        found = _bad_cells(block, names, support)
        if found:
            row, _, detail = min(found, key=lambda f: f[:2])
            raise row_error(start + row + 1, detail)


def _first(mask: np.ndarray) -> tuple[int, int] | None:
    """The first True cell of a 2-D mask in row order, or None."""
    if not mask.any():
        return None
    i, j = np.argwhere(mask)[0]
    return int(i), int(j)


def _bad_cells(block: np.ndarray, names: list[str], support: str) -> list[tuple[int, int, str]]:
    """``(row, column, detail)`` of the first cell of ``block`` that breaks each rule."""
    found = []
    show = _runtime.show_number
    at = _first(~np.isfinite(block))
    if at is not None:
        i, j = at
        v = block[i, j]
        what = "is nan, a missing value (--dropna drops such rows)" if np.isnan(v) else f"is {v} (not finite)"
        found.append((i, j, f", column '{names[j]}', {what}"))
        block = block[:i]  # the rules below need finite cells: the rows before this one
    if support == "counts":
        for mask, what in ((block < 0, "is negative"), (block != np.round(block), "is not a whole number")):
            at = _first(mask)
            if at is not None:
                i, j = at
                found.append((i, j, f", column '{names[j]}' = {show(block[i, j])}, {what}: not a count"))
    elif support == "simplex":
        at = _first(block <= 0)
        if at is not None:
            i, j = at
            found.append(
                (i, j, f", column '{names[j]}' = {show(block[i, j])}, is not positive: not on the simplex")
            )
        total = block.sum(axis=1)
        off = np.flatnonzero(~(np.abs(total - 1.0) <= SIMPLEX_TOLERANCE))
        if off.size:
            i = int(off[0])
            found.append((i, len(names), f" adds up to {total[i]:.15g}, not 1: not on the simplex"))
    elif support == "onehot":
        at = _first((block != 0) & (block != 1))
        if at is not None:
            i, j = at
            found.append((i, j, f", column '{names[j]}' = {show(block[i, j])}, is not 0 or 1: not one-hot"))
        ones = block.sum(axis=1)
        off = np.flatnonzero(ones != 1)
        if off.size:
            i = int(off[0])
            found.append((i, len(names), f" holds {show(ones[i])} ones, not one: not one-hot"))
    return found


def _cell_error(exc: _runtime.BadData, columns: list[str] | None) -> DataError:
    """A runtime error about a cell as a DataError naming its row and column."""
    if exc.index is None:
        return DataError(str(exc))
    column = exc.column if exc.column is not None else 0
    name = columns[column] if columns is not None else str(column + 1)
    value = _runtime.show_number(exc.value)
    return row_error(exc.index + 1, f", column '{name}' = {value}, {exc.reason}")


def sample_moments(
    x: np.ndarray, columns: list[str] | None = None, *, full_rank: bool = True, chunk_rows: int | None = None
) -> Moments:
    """The number of rows, their mean and their scatter, in one pass (see
    :func:`symmle.base._runtime.vector_moments`).

    Parameters
    ----------
    x : ndarray
        Shape (N, D), memory-mapped or not.
    columns : list of str, optional
        The columns' names in messages.
    full_rank : bool
        Require the covariance estimate ``scatter / n`` to be nonsingular (a model that estimates
        a covariance): at least D + 1 rows, no constant column, no collinear columns.
    chunk_rows : int, optional
        Rows per block (default: about 2 MB of float64).

    Raises
    ------
    DataError
        A cell that is not finite (by row and column), a sum that overflows, or, with
        ``full_rank``, a singular covariance estimate naming the columns involved.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    >>> m = sample_moments(x)
    >>> m.n, m.mean.round(4).tolist(), m.covariance.round(4).tolist()
    (3, [2.0, 2.6667], [[0.6667, 1.0], [1.0, 2.8889]])
    >>> sample_moments(x[:2], ["a", "b"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    symmle.DataError: 2 row(s) of 2 columns: the covariance needs at least D + 1 = 3 rows ...
    """
    try:
        n, mean, scatter = _runtime.vector_moments(x, chunk_rows)
        if full_rank:
            _runtime.check_scatter(n, scatter, mean, columns)
    except _runtime.BadData as exc:
        raise _cell_error(exc, columns) from None
    except _runtime.NoMLE as exc:
        raise DataError(str(exc)) from None
    return Moments(n, mean, scatter)


def sample_sums(
    x: np.ndarray, columns: list[str] | None = None, fn=None, *, chunk_rows: int | None = None
) -> np.ndarray:
    """``sum_i fn(x_i)`` over the rows (entrywise ``fn``; the rows themselves without it), shape (D,).

    One pass, compensated (exact for counts below 2**53): the totals of a multinomial sample, or
    with ``fn=np.log`` the ``sum_i log x_i`` of a Dirichlet one.  A cell where the data or ``fn`` is
    not finite is a DataError naming its row and column.

    Examples
    --------
    >>> sample_sums(np.array([[1, 0, 3], [2, 2, 0]])).tolist()
    [3.0, 2.0, 3.0]
    >>> sample_sums(np.array([[0.5, 0.5], [1.0, 0.0]]), ["a", "b"], np.log)
    Traceback (most recent call last):
        ...
    symmle.DataError: row 2 of the data, column 'b' = 0, gives log = -inf
    """
    try:
        return _runtime.column_sums(x, fn, chunk_rows)
    except _runtime.BadData as exc:
        raise _cell_error(exc, columns) from None
    except _runtime.NoMLE as exc:
        raise DataError(str(exc)) from None
