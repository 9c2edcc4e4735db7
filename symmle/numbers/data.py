"""Reading and validating data for ``fit``.

Files: ``.npy`` (memory-mapped, so any size fits in bounded memory), ``.parquet`` (one column
read a record batch at a time), and text: ``.csv`` (a header row is recognised; ``column`` picks
a column by name or 1-based index), ``.tsv`` (the same, separated by tabs), ``.txt`` (one
number per line, or columns separated by white space, picked with ``column``), or ``-`` for
standard input.  Text may be compressed: ``.gz``, ``.bz2`` or ``.xz`` after its suffix
(``data.csv.gz``) is decompressed as it is read.  Text other than ``.tsv`` is comma-separated
if its first :data:`HEAD_LINES` lines hold a comma, else separated by runs of white space.
A cell that is empty or one of :data:`~symmle.numbers.missing.MISSING_VALUES` (``NA``,
``null``, ...) is a missing value, read as NaN: validation reports its row, and
:func:`~symmle.numbers.missing.drop_missing` drops such rows (``symmle fit --dropna``).
Every problem is a :class:`~symmle.base.errors.DataError` with one line naming the first bad
line or row.

Text is read as a stream, a block of about :data:`BLOCK_BYTES` at a time, so memory stays
within a few times the float64 size of the column whatever the size of the input: a NUL byte or
bytes that are not UTF-8 are refused at their first occurrence, and so is a line longer than
:data:`MAX_LINE_LENGTH`.  Blocks of complete lines are converted by pyarrow's multithreaded
CSV parser (``pyarrow.csv.read_csv``; NumPy's ``loadtxt`` for several columns separated by
runs of white space, which pyarrow does not split); a block it refuses is read again line by
line, by the rules below, to name the line.  (pyarrow's streaming reader, ``open_csv``, would
convert the stream as fast, but the block that holds a bad cell is gone when it fails, so the
line could not be named, and standard input cannot be read twice.)  A data file must be a
regular file: a FIFO, a device or a directory is refused (``-`` streams standard input).

This module is the one place that reads data (text here, the binary formats in
:mod:`symmle.numbers.typed_files`) and validates it; missing values are
:mod:`symmle.numbers.missing`.  :func:`load_columns` reads several columns at once (for vector
models, :mod:`symmle.numbers.vector_data`), holding every row of text to the table's width.  The
module is longer than most (about 650 lines) because the streaming of text, its conversion by
block and the naming of a bad line are one mechanism that the two loaders share.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import itertools
import lzma
import math
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from symmle.base import _runtime
from symmle.base.errors import DataError
from symmle.base.files import open_regular
from symmle.numbers.missing import MISSING_VALUES, row_error
from symmle.numbers.typed_files import (
    float_values,
    load_npy,
    load_npy_columns,
    load_parquet,
    load_parquet_columns,
    pick_column,
)

__all__ = [
    "BLOCK_BYTES",
    "HEAD_LENGTH",
    "HEAD_LINES",
    "MAX_LINE_LENGTH",
    "fixed_support",
    "label_codes",
    "load_columns",
    "load_data",
    "open_text",
    "source_kind",
    "validate_data",
]

#: Bytes of text read at a time (at most ``MAX_LINE_LENGTH``: see ``_text_blocks``); four reads are
#: converted at a time, so that pyarrow parses them in parallel.
BLOCK_BYTES = 1 << 20
_READS_CONVERTED = 4
#: The longest line accepted in text data, in characters.
MAX_LINE_LENGTH = 1 << 20
#: Lines that decide the delimiter, the header and the number of columns of text data, at most
#: ``HEAD_LENGTH`` characters of them.
HEAD_LINES = 50
HEAD_LENGTH = 1 << 20
_BOM = codecs.BOM_UTF8
_EOL = re.compile(rb"\r\n|\r|\n")
_MISSING = frozenset(MISSING_VALUES)
#: Compressed text, by the last suffix of its name: how to open it, what the format is called.
_COMPRESSED = {".gz": (gzip.open, "gzip"), ".bz2": (bz2.open, "bzip2"), ".xz": (lzma.open, "xz")}
_TEXT_HINT = ": to stream data, give - and redirect the data to standard input"
_RANDOM_ACCESS_HINT = _TEXT_HINT + " as text (a {} file is read by random access: save it to a regular file)"


def load_data(source: str | Path, column: str | None = None) -> np.ndarray:
    r"""Load one column of numbers from ``source``.

    Parameters
    ----------
    source : str or Path
        A ``.npy``, ``.parquet``, ``.csv``, ``.tsv`` or ``.txt`` file (text optionally
        compressed: ``.csv.gz``, ``.txt.bz2``, ``.csv.xz``), or ``"-"`` for standard input.
    column : str, optional
        Column name (CSV header, Parquet column, structured ``.npy`` field) or 1-based index.

    Returns
    -------
    ndarray
        One-dimensional; memory-mapped for ``.npy`` files.  A missing value is NaN.

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
    ...     _ = path.write_text("name,height\na,1.62\nb,NA\nc,1.80\n")
    ...     load_data(path, column="height").tolist()
    [1.62, nan, 1.8]
    """
    columns = None if column is None else [column]
    if str(source) == "-":
        return _read_table(_stdin_reader(), "standard input", columns)[0][:, 0]
    path, kind, compressed = source_kind(source)
    if kind in (".npy", ".parquet", ".pq"):
        load = load_npy if kind == ".npy" else load_parquet
        return load(path, column, f"data file {path}", _RANDOM_ACCESS_HINT.format(kind))
    with open_text(path, kind, compressed) as (read, sep):
        return _read_table(read, path.name, columns, sep)[0][:, 0]


def load_columns(
    source: str | Path, columns: list[str] | None = None, *, labels: dict[str, dict[str, int]] | None = None
) -> tuple[np.ndarray, list[str]]:
    r"""Load several columns of numbers from ``source``: an (N, D) array and the columns' names.

    The formats of :func:`load_data`.  Text is read as a table whose rows all have the width of
    its header (or of its first row): a row of another width is an error naming its line.  The
    names are the header's, Parquet's or a structured ``.npy`` file's, else the 1-based indices
    (``"1"``, ``"2"``, ...).

    Parameters
    ----------
    source : str or Path
        As for :func:`load_data`.
    columns : list of str, optional
        The columns, in this order, each by name or 1-based index; by default all of them.
    labels : dict, optional
        Text only: columns of ``columns`` (keyed as named there) read as labels, not numbers.
        Each is filled in with its distinct cells (stripped), each mapped to its code (0, 1, ...
        in order of first appearance), and the column of ``values`` holds each row's code (NaN
        for a missing cell).

    Returns
    -------
    values : ndarray
        Shape ``(N, len(columns))``; a missing value is NaN.  A 2-D ``.npy`` file is
        memory-mapped, in its own numeric type, when the columns are all or a run of
        consecutive ones in order; otherwise they are copied into memory as float64.
    names : list of str
        The name of each column of ``values``.

    Raises
    ------
    DataError
        As :func:`load_data`; also for a row of another width, a column chosen twice, or a
        column that does not exist (naming those that do).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "t.csv"
    ...     _ = path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    ...     x, names = load_columns(path, ["c", "a"])
    >>> x.tolist(), names
    ([[3.0, 1.0], [6.0, 4.0]], ['c', 'a'])
    """
    if columns is not None and not columns:
        raise DataError("no columns chosen")
    codes = None if not labels else {j: labels[c] for j, c in enumerate(columns or []) if c in labels}
    if str(source) == "-":
        values, names = _read_table(_stdin_reader(), "standard input", columns, strict=True, labels=codes)
    else:
        path, kind, compressed = source_kind(source)
        if kind in (".npy", ".parquet", ".pq"):
            if codes:
                raise ValueError("labels are read from text only")
            load = load_npy_columns if kind == ".npy" else load_parquet_columns
            values, names = load(path, columns, f"data file {path}", _RANDOM_ACCESS_HINT.format(kind))
        else:
            with open_text(path, kind, compressed) as (read, sep):
                values, names = _read_table(read, path.name, columns, sep, strict=True, labels=codes)
    twice = [name for name, k in Counter(names).items() if k > 1]
    if columns is not None and twice:
        raise DataError(f"column '{twice[0]}' is chosen twice")
    return values, names


def source_kind(source: str | Path) -> tuple[Path, str, tuple | None]:
    """``(path, kind, compressed)``: the format by the suffix (``".csv"``, ...) and the compression, if any.

    A compressed ``.npy`` or Parquet file is refused (it is read by random access).
    """
    path = Path(source)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    compressed = _COMPRESSED.get(suffixes[-1]) if suffixes else None
    kind = suffixes[-2 if compressed else -1] if len(suffixes) > bool(compressed) else ""
    if compressed and kind in (".npy", ".parquet", ".pq"):
        raise DataError(f"{path.name}: a compressed {kind} file cannot be read; decompress it first")
    return path, kind, compressed


@contextmanager
def open_text(
    path: Path, kind: str, compressed: tuple | None
) -> Iterator[tuple[Callable[[int], bytes], str | None]]:
    """``(read, sep)`` of a text file, decompressed as it is read: checked reads and the delimiter.

    ``sep`` is a tab for ``.tsv`` (where an empty cell is a missing value), else None (decided
    by the first lines).
    """
    sep = "\t" if kind == ".tsv" else None
    with open_regular(path, DataError, f"data file {path}", _TEXT_HINT) as fh:
        if compressed is None:
            yield _checked(fh.read, path.name, "cannot read it"), sep
            return
        opener, name = compressed
        with opener(fh) as stream:
            yield _checked(stream.read, path.name, f"not a valid {name} file"), sep


def _checked(read: Callable[[int], bytes], where: str, what: str) -> Callable[[int], bytes]:
    """``read`` with its errors (a bad compressed stream, a failing disk) as one-line DataErrors."""

    def checked(n: int) -> bytes:
        try:
            return read(n)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise DataError(f"{where}: {what}: {reason}") from None

    return checked


def _stdin_reader() -> Callable[[int], bytes]:
    stdin = sys.stdin
    if stdin is None:
        raise DataError("standard input is closed")
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return _checked(buffer.read, "standard input", "cannot read it")
    return lambda n: stdin.read(n).encode("utf-8")  # a text stream (an embedding application's)


# --- text: a stream of checked blocks of complete lines -----------------------------------------------


def _line_ends(data: bytes) -> int:
    """Line ends in ``data``: ``\\n``, ``\\r\\n`` and a lone ``\\r``, as universal newlines count them."""
    n = data.count(b"\n")
    return n + data.count(b"\r") - data.count(b"\r\n") if b"\r" in data else n


def _too_long(line: bytes) -> bool:
    """More than ``MAX_LINE_LENGTH`` characters (a character takes 1 to 4 bytes)."""
    if len(line) <= MAX_LINE_LENGTH:
        return False
    return line.isascii() or len(line.decode("utf-8", "replace")) > MAX_LINE_LENGTH


def _text_blocks(read: Callable[[int], bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """Blocks of complete lines of ``read``'s bytes, as ``(number of the first line, bytes)``.

    Each block ends with a line end (``\\n``, ``\\r\\n`` or ``\\r``), is UTF-8 without a NUL byte,
    and holds no line longer than :data:`MAX_LINE_LENGTH`; a leading byte-order mark is dropped.
    At most about ``4 * MAX_LINE_LENGTH + BLOCK_BYTES`` bytes are held.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()  # a character may straddle two reads
    carry = b""  # the unfinished last line
    line = 1  # the number of the first line not yet yielded
    first = True
    while True:
        chunk = read(BLOCK_BYTES)
        end = not chunk
        nul = chunk.find(b"\0")
        if nul >= 0:
            at = line + _line_ends(carry + chunk[:nul])
            raise DataError(f"{where}, line {at} holds a NUL byte: binary data, not text")
        pending = len(decoder.getstate()[0])
        if pending or not chunk.isascii() or end:  # ASCII needs no decoding (the usual case)
            try:
                decoder.decode(chunk, final=end)
            except UnicodeDecodeError as exc:
                at = line + _line_ends(carry + chunk[: max(exc.start - pending, 0)])
                raise DataError(
                    f"{where}, line {at} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}): binary data?"
                ) from None
        buf, hold = carry + chunk, b""
        if first and buf:
            first = False
            buf = buf.removeprefix(_BOM)  # a byte-order mark, as spreadsheets write
        if not end and buf.endswith(b"\r"):  # maybe the first half of \r\n
            buf, hold = buf[:-1], b"\r"
        if end and buf and not buf.endswith((b"\n", b"\r")):
            buf += b"\n"
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        block, carry = buf[:cut], buf[cut:] + hold
        # a line within one read is at most BLOCK_BYTES long: only the first line (which may have
        # begun in earlier reads) and the unfinished last one need a check
        head = _EOL.search(block)
        if head is not None and _too_long(block[: head.start()]):
            at = line
        elif _too_long(carry):
            at = line + _line_ends(block)
        else:
            at = 0
        if at:
            raise DataError(
                f"{where}, line {at} is longer than {MAX_LINE_LENGTH:,} characters: not a table of numbers"
            )
        if block:
            yield line, block
            line += _line_ends(block)
        if end:
            return


class _Lines:
    """Lines of a stream one at a time, decoded (for the head), then the rest as blocks (the body)."""

    def __init__(self, blocks: Iterator[tuple[int, bytes]]) -> None:
        self._blocks = blocks
        self._block = b""
        self._pos = 0
        self._line = 1

    def next(self) -> tuple[int, str] | None:
        """The next line and its number, or None at the end."""
        while self._pos >= len(self._block):
            item = next(self._blocks, None)
            if item is None:
                return None
            (self._line, self._block), self._pos = item, 0
        eol = _EOL.search(self._block, self._pos)  # every block ends with a line end
        text = self._block[self._pos : eol.start()].decode("utf-8")
        number = self._line
        self._pos, self._line = eol.end(), self._line + 1
        return number, text

    def rest(self) -> Iterator[tuple[int, bytes]]:
        """The lines not read by :meth:`next`, as blocks ``(number of the first line, bytes)``.

        Consecutive blocks are joined, up to ``_READS_CONVERTED`` reads in one.
        """
        blocks = self._blocks
        if self._pos < len(self._block):
            blocks = itertools.chain([(self._line, self._block[self._pos :])], blocks)
        self._block = b""
        while group := list(itertools.islice(blocks, _READS_CONVERTED)):
            yield group[0][0], b"".join(block for _, block in group)


# --- text: a table of numbers -------------------------------------------------------------------------


def _cells(line: str, sep: str | None, number: int, where: str) -> list[str]:
    """The cells of a line: separated by ``sep`` (quoted as CSV), or by runs of white space."""
    if sep is None:
        return line.split()
    try:
        return [c.strip() for c in next(csv.reader([line], delimiter=sep), [])]
    except csv.Error as exc:
        raise DataError(f"{where}, line {number}: {exc}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_table(
    read: Callable[[int], bytes],
    where: str,
    columns: list[str] | None,
    sep: str | None = None,
    *,
    strict: bool = False,
    labels: dict[int, dict[str, int]] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read a text table of numbers: an array of one column per entry of ``columns``, and their names.

    Parameters
    ----------
    read : callable
        ``read(n)`` returns up to ``n`` bytes; ``b""`` at the end.
    where : str
        The name of the input in messages.
    columns : list of str or None
        Columns by header name or 1-based index; None: the input must have one column (with
        ``strict``: every column).
    sep : str, optional
        The delimiter (``"\t"`` for ``.tsv``); by default a comma if the first lines hold one,
        else runs of white space.
    strict : bool
        Every row must have the width of the header (or of the first row); else a short row's
        missing cells are missing values and a long row's extra cells are ignored.

    Returns
    -------
    values : ndarray
        Shape ``(rows, len(columns))`` (``(rows, 1)`` for None); a missing value is NaN.
    names : list of str
        The header's name of each column, or its 1-based index.
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
    if sep is None and any("," in text for _, text in head):
        sep = ","  # else cells are separated by white space
    rows = [(n, c) for n, text in head if any(c := _cells(text, sep, n, where))]
    # the header and the one-line form need the first two rows: look past blank ones
    while len(rows) < 2 and (item := lines.next()) is not None:
        if any(c := _cells(item[1], sep, item[0], where)):
            rows.append((item[0], c))
    header = None
    if rows and not all(_is_number(c) or c in _MISSING for c in rows[0][1]):
        header = rows.pop(0)[1]
    if not rows:
        raise DataError(f"{where} has no data rows")
    if header is None and columns is None and len(rows) == 1 and len(rows[0][1]) > 1 and not strict:
        # one line of numbers without a header (and, by the loop above, nothing after it):
        # the observations, written across
        number, cells = rows[0]
        return _convert([(number, [c]) for c in cells], [0], where), ["1"]
    # a strict table has the width of its header, or of its first row
    width = (len(header) if header is not None else len(rows[0][1])) if strict else None
    ncols = width or max(len(c) for _, c in rows)
    if columns is None and strict:
        usecols = list(range(ncols))
    elif columns is None:
        pick_column(None, header, ncols, where)  # one column, or an error
        usecols = None
    else:
        flag = "--columns" if strict else "--column"
        usecols = [pick_column(col, header, ncols, where, flag) for col in columns]
    for number, cells in rows if strict else ():
        _check_width(cells, width, number, where)
    names = [(header[i] if header is not None and header[i] else str(i + 1)) for i in usecols or [0]]
    shown = names if strict else None  # a table's bad cell is named by its column too
    parts = [_convert(rows, usecols or [0], where, shown, labels)]
    parts += [
        _convert_block(start, block, sep, usecols, where, width, shown, labels)
        for start, block in lines.rest()
    ]
    return (np.concatenate(parts) if len(parts) > 1 else parts[0]), names


def _check_width(cells: list[str], width: int, number: int, where: str) -> None:
    """A row of a strict table must have ``width`` cells."""
    if len(cells) != width:
        raise DataError(f"{where}, line {number} has {len(cells)} cells; the table has {width} columns")


def _convert(
    rows: list[tuple[int, list[str]]],
    usecols: list[int],
    where: str,
    names: list[str] | None = None,
    labels: dict[int, dict[str, int]] | None = None,
) -> np.ndarray:
    """Rows of cells to numbers, naming the line (and the column, from ``names``) of a cell that is
    not one; a missing cell is NaN.  A column of ``labels`` holds codes (see :func:`load_columns`)."""
    out = np.empty((len(rows), len(usecols)))
    for k, (number, cells) in enumerate(rows):
        for j, idx in enumerate(usecols):
            cell = cells[idx] if idx < len(cells) else ""
            if labels and j in labels:
                cell = cell.strip()
                out[k, j] = math.nan if cell in _MISSING else labels[j].setdefault(cell, len(labels[j]))
                continue
            try:
                out[k, j] = math.nan if cell in _MISSING else float(cell)
            except ValueError:
                at = f"line {number}" if names is None else f"line {number}, column '{names[j]}'"
                raise DataError(f"{where}, {at}: '{cell[:40]}' is not a number") from None
    return out


def _convert_block(
    start: int,
    block: bytes,
    sep: str | None,
    usecols: list[int] | None,
    where: str,
    width: int | None = None,
    names: list[str] | None = None,
    labels: dict[int, dict[str, int]] | None = None,
) -> np.ndarray:
    """A block of lines to numbers: a C parser, or line by line where it refuses the block.

    With ``width``, every line must have that many cells (else an error naming the first that
    does not).
    """
    if block.isspace():
        return np.empty((0, 1 if usecols is None else len(usecols)))
    if sep is not None or usecols is None:
        out = _arrow_block(block, sep, usecols, width, labels)
    else:  # NumPy's parser reads numbers only: labels are read line by line
        out = None if labels else _numpy_block(block, usecols, width)
    if out is not None:
        return out
    # a cell that is not a number, a row of another width, blank cells: find which, and where
    rows = []
    for k, line in enumerate(_EOL.split(block)[:-1]):
        line = line.decode("utf-8")
        cells = _cells(line, sep, start + k, where)
        if not any(cells):
            continue
        if usecols is None and len(cells) > 1:
            raise DataError(f"{where}, line {start + k} has {len(cells)} columns: choose one with --column")
        if width is not None:
            _check_width(cells, width, start + k, where)
        rows.append((start + k, cells))
    return _convert(rows, usecols or [0], where, names, labels)


def _arrow_block(
    block: bytes,
    sep: str | None,
    usecols: list[int] | None,
    width: int | None = None,
    labels: dict[int, dict[str, int]] | None = None,
) -> np.ndarray | None:
    """``block`` parsed by pyarrow (delimited, or one column); None where pyarrow refuses it.

    With ``width``, None also where a line does not have ``width`` cells.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # without a header, pyarrow names the columns f0, f1, ...; a header was read before the block
    wanted = [f"f{i}" for i in dict.fromkeys(usecols or [0])]
    types = dict.fromkeys(wanted, pa.float64())
    for j in labels or ():
        types[f"f{usecols[j]}"] = pa.string()
    if width is not None:
        # pyarrow holds every line of a block to the width of its first: check that one, and that
        # the last column is there
        first = block[: _EOL.search(block).start()].decode("utf-8")
        try:
            if len(_cells(first, sep, 0, "")) != width:
                return None
        except DataError:  # a bad quote: named line by line
            return None
        wanted = list(dict.fromkeys([*wanted, f"f{width - 1}"]))
        types.setdefault(f"f{width - 1}", pa.string())
    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=_ARROW_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=sep or ",", quote_char='"' if sep else False),
            convert_options=pacsv.ConvertOptions(
                # one column of numbers separated by white space: a line with a comma is two cells
                # here (refused below), one bad cell by the rules of the line-by-line reader
                include_columns=wanted if sep else None,
                column_types=types,
                null_values=MISSING_VALUES,
                strings_can_be_null=bool(labels),
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowException:
        return None
    if usecols is None and table.num_columns != 1:
        return None
    out = np.empty((len(usecols or [0]), table.num_rows))
    for j, idx in enumerate(usecols or [0]):
        if labels and j in labels:
            label_codes(table.column(f"f{idx}"), labels[j], out[j])
        else:
            float_values(table.column(f"f{idx}"), out[j])  # a null is NaN
    return out.T


def label_codes(values, codes: dict[str, int], out: np.ndarray) -> None:
    """Write the code of each label of a pyarrow string array into ``out`` (NaN: missing).

    A label is stripped of white space around it (as a cell of text is); a null or one of
    :data:`~symmle.numbers.missing.MISSING_VALUES` is missing.  ``codes`` maps each label to its code
    and is extended with those not in it yet (0, 1, ... in order of first appearance).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.utf8_trim_whitespace(values)
    values = pc.if_else(pc.is_in(values, value_set=pa.array(MISSING_VALUES)), None, values)
    encoded = pc.dictionary_encode(values)
    found = encoded.dictionary.to_pylist()
    lookup = np.array([codes.setdefault(v, len(codes)) for v in found] + [np.nan], dtype=float)
    index = encoded.indices.fill_null(len(found)).to_numpy(zero_copy_only=False)
    out[:] = lookup[index]


#: pyarrow splits a block into pieces of this size, parsed in parallel (a longer row is refused
#: and the block read line by line).
_ARROW_BLOCK = 1 << 20


def _numpy_block(block: bytes, usecols: list[int], width: int | None = None) -> np.ndarray | None:
    """Columns separated by runs of white space, by NumPy's C parser; None where it refuses them.

    With ``width``, None also where a line does not have ``width`` cells (every column is
    parsed then: NumPy checks the width of lines only for those it reads).
    """
    text = block.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        out = np.loadtxt(
            io.StringIO(text), dtype=np.float64, comments=None, usecols=None if width else usecols, ndmin=2
        )
    except ValueError:  # a cell that is not a number, a missing cell: found line by line
        return None
    if width is not None:
        return out[:, usecols] if out.shape[1] == width else None
    return out if out.shape[1] == len(usecols) else None


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
            if math.isnan(chunk[k]):
                raise row_error(start + k + 1, " is nan, a missing value (--dropna drops such rows)")
            raise row_error(start + k + 1, f" is {chunk[k]} (not a finite number)")
        out = (chunk < lo) | (chunk > hi)
        if out.any():
            k = int(np.flatnonzero(out)[0])
            raise row_error(
                start + k + 1, f", {variable} = {chunk[k]:g}, is outside the support [{lo:g}, {hi:g}]"
            )
        if discrete:
            frac = chunk != np.round(chunk)
            if frac.any():
                k = int(np.flatnonzero(frac)[0])
                raise row_error(
                    start + k + 1, f", {variable} = {chunk[k]:g}, is not an integer (the model is discrete)"
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
