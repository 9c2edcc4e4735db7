"""The cache of derivations on disk: a model derived once is read back, and checked, after that.

Deriving a model takes seconds, most of it in SymPy; reading it back takes
milliseconds.  :func:`~symmle.symbolic.derivation.derive` looks here first
and stores what it derives.

Where
    The user's cache directory (``platformdirs``: ``~/.cache/symmle`` on
    Linux, honouring ``XDG_CACHE_HOME``; ``~/Library/Caches/symmle`` on
    macOS; ``%LOCALAPPDATA%\\symmle\\Cache`` on Windows), or the directory
    named by the environment variable ``SYMMLE_CACHE_DIR``.  Entries are
    the files ``derivations/*.json`` in it.  ``SYMMLE_NO_CACHE=1``
    switches the cache off, as ``--no-cache`` and ``cache=False`` do.

Key
    Everything a derivation depends on: the model's canonical form (name,
    title, variable, discreteness, support, density, and each parameter and
    constant with its domain, assumptions and known value, all as exact
    expression trees), the time budget, and the versions of symmle (with a
    hash of the source of the stages that derive: ``base``, ``model``,
    ``symbolic``), SymPy, mpmath, NumPy, SciPy and Python.  Only derivations
    that no time budget cut short are stored.

Trust
    Nothing read is executed: the entry is JSON, its expressions are read
    by :mod:`symmle.symbolic.codec` (a whitelist of classes, symbols from the
    model's own table), its content must match its SHA-256, and the
    derivation read back is checked against the model's density
    (:mod:`symmle.symbolic.recheck`) before it is used.  An entry that is
    missing, corrupt, stale or fails a check is ignored, and the fresh
    derivation replaces it.

Robustness
    An entry is written to a temporary file and renamed into place, so a
    reader sees a whole entry or none, and processes may share the
    directory.  A directory that cannot be created or written leaves symmle
    working without a cache.  At most :data:`MAX_ENTRIES` entries and
    :data:`MAX_BYTES` bytes are kept; the least recently used go first.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from symmle.base.budget import attempt
from symmle.base.errors import DerivationTimeout, SpecError, SymmleError
from symmle.base.files import read_bounded
from symmle.model.spec import Model
from symmle.symbolic import codec
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import Likelihood
from symmle.symbolic.recheck import Rejected, recheck
from symmle.symbolic.stationarity import Stationarity

__all__ = [
    "ENV_DIR",
    "ENV_OFF",
    "MAX_ENTRIES",
    "MAX_BYTES",
    "Lookup",
    "cache_dir",
    "caching",
    "enabled",
    "load",
    "store",
    "clear",
]

#: Environment variable naming the cache directory.
ENV_DIR = "SYMMLE_CACHE_DIR"
#: Environment variable that switches the cache off (any value but ``""`` and ``"0"``).
ENV_OFF = "SYMMLE_NO_CACHE"
#: Version of the entry format; part of the key.
FORMAT = 1
#: Most entries kept.
MAX_ENTRIES = 500
#: Most bytes kept, over all entries.
MAX_BYTES = 64 * 2**20
#: Largest entry read.
MAX_ENTRY_BYTES = 8 * 2**20
#: Budget in seconds of the checks of an entry read back (at most the derivation's budget).
RECHECK_SECONDS = 20.0
#: The stages whose source a derivation depends on (hashed into the key).
_STAGES = ("base", "model", "symbolic")

#: Set by :func:`caching`; ``None`` outside it.
_enabled: contextvars.ContextVar[bool | None] = contextvars.ContextVar("symmle_cache", default=None)


@dataclass(frozen=True)
class Lookup:
    """What :func:`load` found.

    Attributes
    ----------
    records : (Likelihood, Stationarity, Information) or None
        The derivation read back and checked; ``None`` on a miss.
    status : str
        ``hit``, or why there was none (``no entry``, ``corrupt: ...``,
        ``rejected: ...``...).
    path : Path or None
        The entry's file, if the model can be cached at all.
    """

    records: tuple[Likelihood, Stationarity, Information] | None
    status: str
    path: Path | None = None


# --------------------------------------------------------------------------
# switching it on and off, and where it lives
# --------------------------------------------------------------------------


@contextlib.contextmanager
def caching(on: bool) -> Iterator[None]:
    """Use the cache (or not) for the derivations made in the body, unless a call says otherwise.

    Examples
    --------
    >>> with caching(False):
    ...     enabled(None)
    False
    """
    token = _enabled.set(bool(on))
    try:
        yield
    finally:
        _enabled.reset(token)


def enabled(option: bool | None = None) -> bool:
    """Whether a derivation uses the cache.

    ``option`` if given; otherwise as the innermost :func:`caching` says;
    otherwise not if ``SYMMLE_NO_CACHE`` is set; otherwise yes.
    """
    if option is not None:
        return bool(option)
    inside = _enabled.get()
    if inside is not None:
        return inside
    return os.environ.get(ENV_OFF, "").strip() in ("", "0")


def cache_dir() -> Path:
    """The cache directory: ``SYMMLE_CACHE_DIR``, or the user's cache directory for symmle.

    Examples
    --------
    >>> cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/symmle')
    """
    named = os.environ.get(ENV_DIR, "").strip()
    if named:
        return Path(named).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("symmle", appauthor=False))


def _entries() -> Path:
    return cache_dir() / "derivations"


def clear() -> int:
    """Delete every entry of the cache; return how many were deleted.

    Errors (a directory that is not there, or not writable) are ignored.
    """
    removed = 0
    with contextlib.suppress(OSError):
        for path in _entries().iterdir():
            if path.suffix in (".json", ".tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += path.suffix == ".json"
    return removed


# --------------------------------------------------------------------------
# the key
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    import mpmath
    import scipy
    import sympy

    import symmle

    package = Path(symmle.__file__).resolve().parent
    code = hashlib.sha256()
    for stage in _STAGES:
        for path in sorted((package / stage).glob("*.py")):
            code.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {
        "symmle": symmle.__version__,
        "code": code.hexdigest(),
        "sympy": sympy.__version__,
        "mpmath": mpmath.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def _symbol(s: Any) -> list:
    return [s.name, sorted([k, v] for k, v in s.assumptions0.items() if v is not None)]


def model_key(model: Model) -> dict[str, Any]:
    """The canonical form of ``model``: what a derivation of it depends on.

    Raises
    ------
    Unstorable
        If an expression of the model cannot be written exactly.
    """
    e = codec.encode_expr

    def quantity(q) -> list:
        return [q.name, q.domain, _symbol(q.symbol), None if q.value is None else e(q.value)]

    return {
        "name": model.name,
        "title": model.title,
        "variable": _symbol(model.variable),
        "discrete": bool(model.discrete),
        "support": [e(v) for v in model.support],
        "density": e(model.density),
        "parameters": [quantity(q) for q in model.parameters],
        "constants": [quantity(q) for q in model.constants],
    }


def key_of(model: Model, timeout: float | None) -> dict[str, Any]:
    """The key of the derivation of ``model`` under the budget ``timeout``.

    Raises
    ------
    Unstorable
        If the model cannot be written exactly, or symmle's own source
        cannot be read (then nothing tells one version of it from another).
    """
    try:
        versions = _versions()
    except OSError as exc:
        raise codec.Unstorable(f"symmle's source cannot be read: {exc}") from None
    return {
        "format": FORMAT,
        "versions": versions,
        "model": model_key(model),
        "timeout": None if timeout is None else float(timeout).hex(),
    }


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _path(key: dict[str, Any]) -> Path:
    return _entries() / (hashlib.sha256(_canonical(key)).hexdigest()[:40] + ".json")


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------


def load(model: Model, timeout: float | None) -> Lookup:
    """Read back the derivation of ``model`` under ``timeout``, if an entry holds it and passes its checks.

    Never raises for what the entry holds: a missing, corrupt, stale or
    tampered entry is a miss (the time-out of an enclosing budget does
    propagate).
    """
    try:
        key = key_of(model, timeout)
    except codec.Unstorable as exc:
        return Lookup(None, f"not cacheable: {exc}")
    path = _path(key)
    try:
        raw = read_bounded(path, MAX_ENTRY_BYTES, SpecError, "cache entry")
    except (OSError, SymmleError) as exc:
        missing = isinstance(exc, FileNotFoundError) or not path.exists()
        return Lookup(None, "no entry" if missing else f"unreadable: {exc}", path)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return Lookup(None, "corrupt: not JSON", path)
    if not isinstance(doc, dict) or set(doc) != {"symmle_cache", "key", "payload", "sha256"}:
        return Lookup(None, "corrupt: not a cache entry", path)
    if doc["key"] != key:
        return Lookup(None, "stale: made for another version or model", path)
    try:
        digest = hashlib.sha256(_canonical(doc["payload"])).hexdigest()
    except (TypeError, ValueError, RecursionError):
        digest = None
    if digest != doc["sha256"]:
        return Lookup(None, "corrupt: the content does not match its hash", path)
    seconds = RECHECK_SECONDS if timeout is None else min(RECHECK_SECONDS, timeout)
    result, timed_out = attempt("check the cached derivation", seconds, lambda: _read(model, doc["payload"]))
    if timed_out:
        return Lookup(None, f"rejected: its checks took more than {seconds:g} s", path)
    if isinstance(result, str):
        return Lookup(None, result, path)
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: evicted last
    return Lookup(result, "hit", path)


def _read(model: Model, payload: Any) -> tuple[Likelihood, Stationarity, Information] | str:
    """The records of ``payload``, checked, or why not."""
    try:
        if not isinstance(payload, dict) or set(payload) != {
            "statistics",
            "likelihood",
            "stationarity",
            "information",
        }:
            return "corrupt: not a derivation"
        if not isinstance(payload["statistics"], list):
            return "corrupt: no statistics"
        lik, st, info = _decode(model, payload)
        recheck(model, lik, st, info, np.random.default_rng())
    except (codec.Unreadable, codec.Unstorable) as exc:
        return f"corrupt: {exc}"
    except Rejected as exc:
        return f"rejected: {exc}"
    except DerivationTimeout:
        raise
    except (RecursionError, MemoryError):
        return "rejected: too large to read back"
    except Exception as exc:  # a check that cannot even run is a check that failed
        return f"rejected: a check could not run ({type(exc).__name__})"
    return lik, st, info


def _decode(model: Model, payload: dict[str, Any]) -> tuple[Likelihood, Stationarity, Information]:
    """The records of a payload, read back with ``model``'s symbol table (not yet checked).

    Raises
    ------
    Unreadable
        If the payload does not read back into a derivation.
    """
    base = codec.SymbolTable.of(model)
    statistics = [codec.decode_expr(g, base) for g in payload["statistics"]]
    table = codec.SymbolTable.of(model, statistics)
    records = ("likelihood", "stationarity", "information")
    lik, st, info = (codec.decode(payload[k], model, table) for k in records)
    if not (isinstance(lik, Likelihood) and isinstance(st, Stationarity) and isinstance(info, Information)):
        raise codec.Unreadable("not a derivation")
    if [s.expr for s in lik.statistics] != statistics:
        raise codec.Unreadable("the statistics disagree")
    return lik, st, info


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------


def store(model: Model, timeout: float | None, lik: Likelihood, st: Stationarity, info: Information) -> str:
    """Store a complete derivation of ``model`` under ``timeout``; return what happened.

    Never raises: a model that cannot be written exactly, or a directory
    that cannot be written, leaves the cache as it was.
    """
    try:
        key = key_of(model, timeout)
        payload = {
            "statistics": [codec.encode_expr(s.expr) for s in lik.statistics],
            "likelihood": codec.encode(lik, model),
            "stationarity": codec.encode(st, model),
            "information": codec.encode(info, model),
        }
        # what would not read back exactly is not written (it would be a miss at every read)
        if _decode(model, json.loads(_canonical(payload))) != (lik, st, info):
            return "not cacheable: it does not read back exactly"
    except (codec.Unstorable, codec.Unreadable, RecursionError) as exc:
        return f"not cacheable: {exc}"
    doc = {"symmle_cache": FORMAT, "key": key, "payload": payload}
    doc["sha256"] = hashlib.sha256(_canonical(payload)).hexdigest()
    data = _canonical(doc)
    if len(data) > MAX_ENTRY_BYTES:
        return "not cacheable: too large"
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)
    except OSError as exc:
        return f"not writable: {exc.strerror or exc}"
    _evict(path.parent)
    return "stored"


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _evict(directory: Path) -> None:
    """Delete the least recently used entries beyond the limits, and temporary files left by crashes."""
    entries = []
    now = time.time()
    with contextlib.suppress(OSError):
        for path in directory.iterdir():
            try:
                st = path.stat()
            except OSError:
                continue
            if path.suffix == ".tmp":
                if now - st.st_mtime > 3600:
                    with contextlib.suppress(OSError):
                        path.unlink()
            elif path.suffix == ".json":
                entries.append((st.st_mtime, st.st_size, path))
    entries.sort(reverse=True)
    total = 0
    for count, (_, size, path) in enumerate(entries, start=1):
        total += size
        if count > MAX_ENTRIES or total > MAX_BYTES:
            with contextlib.suppress(OSError):
                path.unlink()
