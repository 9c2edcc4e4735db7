"""Opening the files a user names: regular files only for input, a bounded read, safe output.

A path given on the command line is untrusted.  It may name a FIFO (opening it for reading
blocks until some process writes to it, maybe never), a device (``/dev/zero`` never ends), a
directory, or a file far larger than anything symmle means to read.  Every input file is
therefore checked to be a regular file *before* it is opened, opened without blocking and
checked again on the open descriptor (the path may have changed in between), and read with a
bound where the whole file is read at once.

Output goes to a regular file, a character device (a terminal, ``/dev/null``, ``/dev/full``) or
a pipe that some process is reading; a FIFO nobody reads is refused at once instead of blocking,
and every failure (a full disk, a full device) is one error naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from symmle.base.errors import SpecError, SymmleError

__all__ = ["open_regular", "read_bounded", "refuse_input", "write_output"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _kind(mode: int) -> str:
    """What a non-regular file is, for a message."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def _reason(exc: OSError) -> str:
    """The operating system's words for ``exc`` (``strerror`` can be None)."""
    return exc.strerror or str(exc) or type(exc).__name__


def open_regular(path: str | Path, error: type[SymmleError], label: str, hint: str = "") -> BinaryIO:
    """Open an existing regular file for reading in binary mode, never blocking on the open.

    Parameters
    ----------
    path : str or Path
        The file; a symbolic link is followed, and its target must be a regular file.
    error : type of SymmleError
        The error to raise (:class:`~symmle.base.errors.SpecError` for a spec file,
        :class:`~symmle.base.errors.DataError` for data).
    label : str
        How messages name the file, e.g. ``"spec file model.toml"``.
    hint : str, optional
        Appended to the message that refuses a file that is not regular.

    Returns
    -------
    BinaryIO
        A buffered binary reader; the caller closes it.

    Raises
    ------
    SymmleError
        Of class ``error``: the file does not exist, cannot be opened, or is not a regular file.

    Examples
    --------
    >>> import tempfile
    >>> from symmle.base.errors import DataError
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open_regular(tmp, DataError, "data file x")
    Traceback (most recent call last):
        ...
    symmle.DataError: data file x is a directory, not a regular file
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{label} does not exist") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise error(f"cannot read {label}: {_reason(exc) if isinstance(exc, OSError) else exc}") from None
    if not stat.S_ISREG(mode):
        raise error(f"{label} is {_kind(mode)}, not a regular file{hint}")
    try:
        # O_NONBLOCK: if the path became a FIFO since the stat, open() returns at once
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except OSError as exc:
        raise error(f"cannot read {label}: {_reason(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{label} is {_kind(mode)}, not a regular file{hint}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | Path, limit: int, error: type[SymmleError], label: str) -> bytes:
    """Read a whole regular file of at most ``limit`` bytes.

    A larger file is refused from its size before anything is read, and the read itself stops
    after ``limit + 1`` bytes (the file may grow while it is read).

    Parameters
    ----------
    path : str or Path
        The file (see :func:`open_regular`).
    limit : int
        The largest size accepted, in bytes.
    error : type of SymmleError
        The error to raise.
    label : str
        How messages name the file.

    Returns
    -------
    bytes

    Raises
    ------
    SymmleError
        Of class ``error``, as :func:`open_regular` does, or if the file is larger than ``limit``.
    """
    too_large = f"{label} is too large (more than {limit:,} bytes)"
    with open_regular(path, error, label) as fh:
        try:
            if os.fstat(fh.fileno()).st_size > limit:
                raise error(too_large)
            data = fh.read(limit + 1)
        except OSError as exc:
            raise error(f"cannot read {label}: {_reason(exc)}") from None
    if len(data) > limit:
        raise error(too_large)
    return data


def write_output(path: str | Path, data: str | bytes, error: type[SymmleError] = SpecError) -> None:
    """Write ``data`` (text as UTF-8) to the file ``path``, creating or replacing it.

    ``path`` may be a regular file (created if it does not exist), a character device
    (``/dev/stdout`` on a terminal, ``/dev/null``) or a pipe or FIFO that a process is reading.
    A FIFO with no reader is refused at once (opening it would block until a reader comes), and
    so are directories, block devices and sockets.

    Parameters
    ----------
    path : str or Path
        The file to write.
    data : str or bytes
        What to write; a ``str`` is encoded as UTF-8.
    error : type of SymmleError, optional
        The error to raise (an output file is an option of the command: :class:`SpecError`).

    Raises
    ------
    SymmleError
        Of class ``error``, one line naming ``path``: it cannot be opened or is not writable,
        or the write failed (``/dev/full``: no space left on device).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_output(Path(tmp) / "out.txt", "lam_hat = N/T1\\n")
    ...     (Path(tmp) / "out.txt").read_text()
    'lam_hat = N/T1\\n'
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    label = str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError) as exc:
        raise error(f"cannot write {label}: {_reason(exc) if isinstance(exc, OSError) else exc}") from None
    if mode is not None:
        _check_writable_kind(mode, label, error)
    try:
        # O_NONBLOCK: opening a FIFO that no process reads fails (ENXIO) instead of blocking
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NONBLOCK | _CLOEXEC, 0o666)
    except OSError as exc:
        reason = "no process is reading this FIFO" if exc.errno == errno.ENXIO else _reason(exc)
        raise error(f"cannot write {label}: {reason}") from None
    try:
        _check_writable_kind(os.fstat(fd).st_mode, label, error)
        os.set_blocking(fd, True)  # a reader is there: wait for it as a pipe does
        with os.fdopen(fd, "wb") as fh:
            fd = -1  # closed by the file object from here on, even if the write fails
            fh.write(payload)
    except OSError as exc:
        raise error(f"cannot write {label}: {_reason(exc)}") from None
    finally:
        if fd >= 0:
            os.close(fd)


def refuse_input(
    output: str | Path, inputs: list[str | Path | None], error: type[SymmleError] = SpecError
) -> None:
    """Refuse an output path that names one of the files read (writing it would destroy it).

    The comparison is :func:`os.path.samefile`: the same file under another name, through a
    symbolic link or a hard link, is refused too.  Call it before any work, since the output is
    opened (and truncated) only once the work is done.

    Parameters
    ----------
    output : str or Path
        The file to be written.
    inputs : list
        The files read (None entries, ``"-"`` and paths that do not exist are skipped).
    error : type of SymmleError, optional
        The error to raise (an output file is an option of the command: :class:`SpecError`).

    Raises
    ------
    SymmleError
        Of class ``error``, one line naming both paths.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     spec = Path(tmp) / "model.toml"
    ...     _ = spec.write_text("name = 'm'")
    ...     refuse_input(Path(tmp) / "out.tex", [spec])
    ...     refuse_input(Path(tmp) / "." / "model.toml", [spec])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    symmle.SpecError: cannot write .../model.toml: it is the input file ...; choose another output file
    """
    for source in inputs:
        if source is None or str(source) == "-":
            continue
        try:
            same = os.path.samefile(output, source)
        except (OSError, ValueError):  # one of them does not exist (yet), or cannot be looked at
            continue
        if same:
            raise error(f"cannot write {output}: it is the input file {source}; choose another output file")


def _check_writable_kind(mode: int, label: str, error: type[SymmleError]) -> None:
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise error(f"cannot write {label}: it is {_kind(mode)}")
