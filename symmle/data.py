"""Reading and validating data for ``fit``.

Files: ``.npy`` (memory-mapped, so any size fits in bounded memory), ``.csv``
(a header row is recognised; ``column`` picks a column by name or 1-based
index), ``.txt`` (one number per line, or columns separated by white space,
picked with ``column``), or ``-`` for standard input.  Every problem is a :class:`~symmle.errors.DataError` with one
line naming the first bad row.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from symmle import _runtime
from symmle.errors import DataError

__all__ = ["load_data", "validate_data"]


def load_data(source: str | Path, column: str | None = None) -> np.ndarray:
    r"""Load one column of numbers from ``source``.

    Parameters
    ----------
    source : str or Path
        A ``.npy``, ``.csv`` or ``.txt`` file, or ``"-"`` for standard input.
    column : str, optional
        Column name (CSV header, structured ``.npy`` field) or 1-based index.

    Returns
    -------
    ndarray
        One-dimensional; memory-mapped for ``.npy`` files.

    Raises
    ------
    DataError
        If the file is missing, unreadable or empty, a cell is not a number
        (naming its line), or the column is ambiguous or unknown.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "heights.csv"
    ...     _ = path.write_text("name,height\na,1.62\nb,1.75\nc,1.80\n")
    ...     load_data(path, column="height").tolist()
    [1.62, 1.75, 1.8]
    """
    if str(source) == "-":
        return _parse_text(sys.stdin.read(), "standard input", column)
    path = Path(source)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix.lower() == ".npy":
        return _load_npy(path, column)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path.name}: {getattr(exc, 'strerror', None) or exc}") from None
    return _parse_text(text, path.name, column)


def _load_npy(path: Path, column: str | None) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path.name} is not a readable .npy file: {exc}") from None
    if arr.dtype.names:
        if column is None:
            if len(arr.dtype.names) != 1:
                raise DataError(f"{path.name} has fields {', '.join(arr.dtype.names)}: choose one with --column")
            column = arr.dtype.names[0]
        if column not in arr.dtype.names:
            raise DataError(f"{path.name} has no field '{column}'")
        arr = arr[column]
    elif arr.ndim == 2:
        if column is None and arr.shape[1] != 1:
            raise DataError(f"{path.name} has {arr.shape[1]} columns: choose one with --column INDEX (1-based)")
        idx = _index(column, arr.shape[1], path.name) if column is not None else 0
        arr = arr[:, idx]
    elif arr.ndim != 1:
        raise DataError(f"{path.name} has {arr.ndim} dimensions; expected one column of numbers")
    elif column not in (None, "1"):
        raise DataError(f"{path.name} has one column; --column {column} does not apply")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{path.name} holds {arr.dtype}, not numbers")
    if np.iscomplexobj(arr):
        raise DataError(f"{path.name} holds complex numbers")
    return arr


def _index(column: str, ncols: int, where: str) -> int:
    try:
        k = int(column)
    except ValueError:
        raise DataError(f"{where} has no header; --column must be a 1-based index") from None
    if not 1 <= k <= ncols:
        raise DataError(f"--column {k} is out of range: {where} has {ncols} column(s)")
    return k - 1


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_text(text: str, where: str, column: str | None) -> np.ndarray:
    lines = [ln for ln in text.splitlines()]
    if not any(ln.strip() for ln in lines):
        raise DataError(f"{where} is empty")
    comma = any("," in ln for ln in lines[:50])
    if comma:
        rows = list(csv.reader(io.StringIO(text)))
    else:
        rows = [ln.split() for ln in lines]
    numbered = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    header = None
    if numbered and not all(_is_number(c) for c in numbered[0][1] if c):
        header = numbered[0][1]
        numbered = numbered[1:]
    if not numbered:
        raise DataError(f"{where} has no data rows")
    if header is None and column is None and len(numbered) == 1 and len(numbered[0][1]) > 1:
        # one line of numbers without a header: the observations, written across
        line, cells = numbered[0]
        numbered = [(line, [c]) for c in cells]
    ncols = max(len(r) for _, r in numbered)
    if column is None:
        if ncols != 1:
            raise DataError(f"{where} has {ncols} columns: choose one with --column")
        idx = 0
    elif header is not None and column in header:
        idx = header.index(column)
    elif header is not None and not column.isdigit():
        raise DataError(f"{where} has no column '{column}'; columns: {', '.join(header)}")
    else:
        idx = _index(column, ncols, where)
    out = np.empty(len(numbered))
    for k, (line, cells) in enumerate(numbered):
        cell = cells[idx] if idx < len(cells) else ""
        try:
            out[k] = float(cell) if cell else math.nan
        except ValueError:
            raise DataError(f"{where}, line {line}: '{cell[:40]}' is not a number") from None
    return out


def validate_data(x: np.ndarray, *, lo: float, hi: float, discrete: bool, variable: str = "x") -> None:
    """Check that ``x`` is non-empty, finite, inside ``[lo, hi]`` and integer if ``discrete``.

    The data are read in chunks, so a memory-mapped array of any size needs
    bounded memory.

    Parameters
    ----------
    x : ndarray
        One-dimensional observations.
    lo, hi : float
        The ends of the support that do not depend on parameters
        (``-inf``/``inf`` where they do).
    discrete : bool
        Whether the observations must be integers.
    variable : str, optional
        Name of the variable in error messages.

    Raises
    ------
    DataError
        Naming the first bad row (1-based) and what is wrong with it.

    Examples
    --------
    >>> validate_data(np.array([0.0, 2.0, 5.0]), lo=0, hi=np.inf, discrete=True)
    >>> validate_data(np.array([1.0, 2.5]), lo=0, hi=np.inf, discrete=True)
    Traceback (most recent call last):
        ...
    symmle.errors.DataError: row 2 of the data, x = 2.5, is not an integer (the model is discrete)
    """
    n = int(x.shape[0])
    if n == 0:
        raise DataError("the data are empty")
    for start, chunk in zip(range(0, n, _runtime.CHUNK), _runtime.chunks(x, _runtime.CHUNK)):
        bad = ~np.isfinite(chunk)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(f"row {start + k + 1} of the data is {chunk[k]} (not a finite number)")
        out = (chunk < lo) | (chunk > hi)
        if out.any():
            k = int(np.flatnonzero(out)[0])
            raise DataError(f"row {start + k + 1} of the data, {variable} = {chunk[k]:g}, is outside the support [{lo:g}, {hi:g}]")
        if discrete:
            frac = chunk != np.round(chunk)
            if frac.any():
                k = int(np.flatnonzero(frac)[0])
                raise DataError(f"row {start + k + 1} of the data, {variable} = {chunk[k]:g}, is not an integer (the model is discrete)")


def fixed_support(support: tuple, parameters: set, constants: Mapping) -> tuple[float, float]:
    """Numeric ends of a support that do not involve parameters (else infinite)."""
    ends = []
    for e, default in zip(support, (-math.inf, math.inf)):
        if e.free_symbols & parameters:
            ends.append(default)
            continue
        v = e.subs(constants)
        ends.append(float(v) if v.is_number else default)
    return ends[0], ends[1]
