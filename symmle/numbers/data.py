"""Reading and validating data for ``fit``.

Files: ``.npy`` (memory-mapped, so any size fits in bounded memory), ``.csv``
(a header row is recognised; ``column`` picks a column by name or 1-based
index), ``.txt`` (one number per line, or columns separated by white space,
picked with ``column``), or ``-`` for standard input.  Text (``.csv``,
``.txt`` or standard input) is comma-separated if its first
:data:`HEAD_LINES` lines hold a comma, else separated by white space.
Every problem is a :class:`~symmle.base.errors.DataError` with one line naming
the first bad line or row.

Text is read as a stream, a block of about :data:`BLOCK_BYTES` at a time, so
memory stays within a few times the float64 size of the column whatever the
size of the input: a NUL byte or bytes that are not UTF-8 are refused at
their first occurrence, and so is a line longer than :data:`MAX_LINE_LENGTH`.
Each block is converted by NumPy's C parser (``numpy.loadtxt``); a block it
refuses is read again line by line, by the rules below, to name the line
(and to read an empty cell as a missing value, which validation reports).
A data file must be a regular file: a FIFO, a device or a directory is
refused (``-`` streams standard input).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from symmle.base import _runtime
from symmle.base.errors import DataError
from symmle.base.files import open_regular

__all__ = ["BLOCK_BYTES", "HEAD_LENGTH", "HEAD_LINES", "MAX_LINE_LENGTH", "load_data", "validate_data"]

#: Bytes of text read and converted at a time.
BLOCK_BYTES = 1 << 20
#: The longest line accepted in text data, in characters.
MAX_LINE_LENGTH = 1 << 20
#: Lines that decide the delimiter, the header and the number of columns of text data, at most
#: ``HEAD_LENGTH`` characters of them.
HEAD_LINES = 50
HEAD_LENGTH = 1 << 20
_NOT_REGULAR_HINT = ": to stream data, give - and redirect the data to standard input"


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
        If the file is missing, not a regular file, unreadable, empty or not
        text, a cell is not a number (naming its line), or the column is
        ambiguous or unknown.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "heights.csv"
    ...     _ = path.write_text("name,height\na,1.62\nb,1.75\nc,1.80\n")
    ...     load_data(path, column="height").tolist()
    [1.62, 1.75, 1.8]
    """
    columns = None if column is None else [column]
    if str(source) == "-":
        return _read_table(_stdin_reader(), "standard input", columns)[:, 0]
    path = Path(source)
    label = f"data file {path}"
    if path.suffix.lower() == ".npy":
        # np.load opens the path itself (a memory map needs a path): check it first
        open_regular(path, DataError, label, _NOT_REGULAR_HINT).close()
        return _load_npy(path, column)
    with open_regular(path, DataError, label, _NOT_REGULAR_HINT) as fh:
        return _read_table(fh.read, path.name, columns)[:, 0]


def _stdin_reader() -> Callable[[int], bytes]:
    stdin = sys.stdin
    if stdin is None:
        raise DataError("standard input is closed")
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return buffer.read
    return lambda n: stdin.read(n).encode("utf-8")  # a text stream (an embedding application's)


# --- .npy ---------------------------------------------------------------------------------------------


def _load_npy(path: Path, column: str | None) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path.name} is not a readable .npy file: {exc}") from None
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
        idx = _index(column, arr.shape[1], where) if column is not None else 0
        arr = arr[:, idx]
    elif arr.ndim != 1:
        raise DataError(f"{where} has {arr.ndim} dimensions; expected one column of numbers")
    elif column not in (None, "1"):
        raise DataError(f"{where} has one column; --column {column} does not apply")
    if arr.dtype.kind == "c":
        raise DataError(f"{where} holds complex numbers")
    # booleans, integers and floats: timedelta64 is a NumPy integer subtype, but a duration, not a number
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{where} holds {arr.dtype}, not numbers")
    return arr


def _index(column: str, ncols: int, where: str) -> int:
    try:
        k = int(column)
    except ValueError:
        raise DataError(f"{where} has no header; --column must be a 1-based index") from None
    if not 1 <= k <= ncols:
        raise DataError(f"--column {k} is out of range: {where} has {ncols} column(s)")
    return k - 1


# --- text: a stream of checked blocks of complete lines -----------------------------------------------


def _text_blocks(read: Callable[[int], bytes], where: str) -> Iterator[tuple[int, str]]:
    """Blocks of complete lines of ``read``'s bytes, as ``(number of the first line, text)``.

    Each text ends with ``"\\n"``; line ends ``\\r\\n`` and ``\\r`` become ``\\n``, as Python's
    universal newlines read them.  At most ``MAX_LINE_LENGTH + BLOCK_BYTES`` characters are held.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()  # a character may straddle two reads
    carry = ""  # the unfinished last line
    line = 1  # the number of the first line not yet yielded
    first = True
    while True:
        chunk = read(BLOCK_BYTES)
        end = not chunk
        nul = chunk.find(b"\0")
        if nul >= 0:
            at = line + chunk.count(b"\n", 0, nul)
            raise DataError(f"{where}, line {at} holds a NUL byte: binary data, not text")
        pending = len(decoder.getstate()[0])
        try:
            piece = decoder.decode(chunk, final=end)
        except UnicodeDecodeError as exc:
            at = line + chunk.count(b"\n", 0, max(exc.start - pending, 0))
            raise DataError(
                f"{where}, line {at} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}): binary data?"
            ) from None
        if first and piece:
            first = False
            piece = piece.removeprefix("\ufeff")  # a byte-order mark, as spreadsheets write
        buf, hold = carry + piece, ""
        if "\r" in buf:
            if buf.endswith("\r") and not end:  # maybe the first half of \r\n
                buf, hold = buf[:-1], "\r"
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        if end and buf and not buf.endswith("\n"):
            buf += "\n"
        cut = buf.rfind("\n") + 1
        text, carry = buf[:cut], buf[cut:] + hold
        # a line within one read is at most BLOCK_BYTES <= MAX_LINE_LENGTH long: only the first line
        # (which may have begun in earlier reads) and the unfinished last one need a check
        first_end = text.find("\n")
        if first_end > MAX_LINE_LENGTH or len(carry) > MAX_LINE_LENGTH:
            at = line if first_end > MAX_LINE_LENGTH else line + text.count("\n")
            raise DataError(
                f"{where}, line {at} is longer than {MAX_LINE_LENGTH:,} characters: not a table of numbers"
            )
        if text:
            yield line, text
            line += text.count("\n")
        if end:
            return


class _Lines:
    """Lines of a stream one at a time (for the head), then the rest as blocks (for the body)."""

    def __init__(self, blocks: Iterator[tuple[int, str]]) -> None:
        self._blocks = blocks
        self._lines: list[str] = []
        self._pos = 0
        self._start = 1

    def next(self) -> tuple[int, str] | None:
        """The next line and its number, or None at the end."""
        while self._pos >= len(self._lines):
            block = next(self._blocks, None)
            if block is None:
                return None
            self._start, text = block
            self._lines, self._pos = text.split("\n")[:-1], 0
        self._pos += 1
        return self._start + self._pos - 1, self._lines[self._pos - 1]

    def rest(self) -> Iterator[tuple[int, str]]:
        """The lines not read by :meth:`next`, as blocks ``(number of the first line, text)``."""
        if self._pos < len(self._lines):
            yield self._start + self._pos, "\n".join(self._lines[self._pos :]) + "\n"
        self._lines = []
        yield from self._blocks


# --- text: a table of numbers -------------------------------------------------------------------------


def _cells(line: str, comma: bool, number: int, where: str) -> list[str]:
    if not comma:
        return line.split()
    try:
        return [c.strip() for c in next(csv.reader([line]), [])]
    except csv.Error as exc:
        raise DataError(f"{where}, line {number}: {exc}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_table(read: Callable[[int], bytes], where: str, columns: list[str] | None) -> np.ndarray:
    """Read a text table of numbers: an array of one column per entry of ``columns``.

    Parameters
    ----------
    read : callable
        ``read(n)`` returns up to ``n`` bytes; ``b""`` at the end.
    where : str
        The name of the input in messages.
    columns : list of str or None
        Columns by header name or 1-based index; None: the input must have one column.

    Returns
    -------
    ndarray
        Shape ``(rows, len(columns))`` (``(rows, 1)`` for None); an empty cell is NaN.
    """
    lines = _Lines(_text_blocks(read, where))
    head: list[tuple[int, str]] = []
    size = 0
    while len(head) < HEAD_LINES and size < HEAD_LENGTH and (item := lines.next()) is not None:
        if item[1].strip():
            head.append(item)
            size += len(item[1])
    if not head:
        raise DataError(f"{where} is empty")
    comma = any("," in text for _, text in head)  # else cells are separated by white space
    rows = [(n, c) for n, text in head if any(c := _cells(text, comma, n, where))]
    # the header and the one-line form need the first two rows: look past blank ones
    while len(rows) < 2 and (item := lines.next()) is not None:
        if any(c := _cells(item[1], comma, item[0], where)):
            rows.append((item[0], c))
    header = None
    if rows and not all(_is_number(c) for c in rows[0][1] if c):
        header = rows.pop(0)[1]
    if not rows:
        raise DataError(f"{where} has no data rows")
    if header is None and columns is None and len(rows) == 1 and len(rows[0][1]) > 1:
        # one line of numbers without a header (and, by the loop above, nothing after it):
        # the observations, written across
        number, cells = rows[0]
        return _convert([(number, [c]) for c in cells], [0], where)
    ncols = max(len(c) for _, c in rows)
    if columns is None:
        if ncols != 1:
            raise DataError(f"{where} has {ncols} columns: choose one with --column")
        usecols = None
    else:
        usecols = [_column_index(col, header, ncols, where) for col in columns]
    parts = [_convert(rows, usecols or [0], where)]
    parts += [_convert_block(start, text, comma, usecols, where) for start, text in lines.rest()]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _column_index(column: str, header: list[str] | None, ncols: int, where: str) -> int:
    if header is not None and column in header:
        return header.index(column)
    if header is not None and not column.isdigit():
        raise DataError(f"{where} has no column '{column}'; columns: {', '.join(header)}")
    return _index(column, ncols, where)


def _convert(rows: list[tuple[int, list[str]]], usecols: list[int], where: str) -> np.ndarray:
    """Rows of cells to numbers, naming the line of a cell that is not one; a missing cell is NaN."""
    out = np.empty((len(rows), len(usecols)))
    for k, (number, cells) in enumerate(rows):
        for j, idx in enumerate(usecols):
            cell = cells[idx] if idx < len(cells) else ""
            try:
                out[k, j] = float(cell) if cell else math.nan
            except ValueError:
                raise DataError(f"{where}, line {number}: '{cell[:40]}' is not a number") from None
    return out


def _convert_block(start: int, text: str, comma: bool, usecols: list[int] | None, where: str) -> np.ndarray:
    """A block of lines to numbers: NumPy's C parser, or line by line where it refuses the block."""
    width = 1 if usecols is None else len(usecols)
    if not text.strip():
        return np.empty((0, width))
    try:
        out = np.loadtxt(
            io.StringIO(text),
            dtype=np.float64,
            delimiter="," if comma else None,
            comments=None,
            usecols=usecols,
            ndmin=2,
            quotechar='"' if comma else None,
        )
        if out.shape[1] == width:
            return out
    except ValueError:  # a cell that is not a number, an empty or missing cell: found below
        pass
    rows = []
    for k, line in enumerate(text.split("\n")[:-1]):
        cells = _cells(line, comma, start + k, where)
        if not any(cells):
            continue
        if usecols is None and len(cells) > 1:
            raise DataError(f"{where}, line {start + k} has {len(cells)} columns: choose one with --column")
        rows.append((start + k, cells))
    return _convert(rows, usecols or [0], where)


# --- validation ---------------------------------------------------------------------------------------


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
    symmle.DataError: row 2 of the data, x = 2.5, is not an integer (the model is discrete)
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
            raise DataError(
                f"row {start + k + 1} of the data, {variable} = {chunk[k]:g}, "
                f"is outside the support [{lo:g}, {hi:g}]"
            )
        if discrete:
            frac = chunk != np.round(chunk)
            if frac.any():
                k = int(np.flatnonzero(frac)[0])
                raise DataError(
                    f"row {start + k + 1} of the data, {variable} = {chunk[k]:g}, "
                    "is not an integer (the model is discrete)"
                )


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
