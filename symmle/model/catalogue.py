"""The catalogue of model families shipped in ``derivations/``.

This module only reads TOML; it never imports SymPy, so ``symmle list``
stays fast.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from symmle.base.errors import SpecError
from symmle.base.files import read_bounded

__all__ = [
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "catalogue_dir",
    "family_names",
    "family_path",
    "read_spec_file",
    "list_families",
]

#: The largest spec file read, in bytes (the catalogue's largest is a few kB).
MAX_SPEC_BYTES = 100_000
#: The deepest nesting of tables and arrays in a spec file (the catalogue's is 3).
MAX_SPEC_DEPTH = 32


def catalogue_dir() -> Path:
    """Directory holding the catalogue's ``*.toml`` files.

    Installed, it is ``symmle/derivations`` (the wheel maps ``derivations/``
    there); in a source checkout it is ``derivations/`` beside the package.
    """
    package = Path(__file__).resolve().parent.parent  # symmle/
    installed = package / "derivations"
    return installed if installed.is_dir() else package.parent / "derivations"


def family_names(kind: str | None = None) -> list[str]:
    """Return the sorted names of the catalogue families.

    Parameters
    ----------
    kind : {"scalar", "vector", "regression"}, optional
        Only the families of one variable (``"scalar"``), those of vector observations
        (``"vector"``: their spec has a ``dimension``) or the regressions (``"regression"``:
        their spec has a ``[link]``); all by default.

    Returns
    -------
    list of str
        The stems of the ``*.toml`` files in :func:`catalogue_dir`.

    Examples
    --------
    >>> names = family_names()
    >>> "normal" in names, names == sorted(names)
    (True, True)
    >>> "mvnormal" in family_names("vector"), "mvnormal" in family_names("scalar")
    (True, False)
    >>> "logistic_regression" in family_names("regression"), "logistic_regression" in family_names("scalar")
    (True, False)
    """
    if kind not in (None, "scalar", "vector", "regression"):
        raise ValueError(f"kind must be 'scalar', 'vector' or 'regression', not {kind!r}")
    paths = sorted(catalogue_dir().glob("*.toml"))
    if kind is None:
        return [p.stem for p in paths]
    return [p.stem for p in paths if _kind(read_spec_file(p)) == kind]


def _kind(spec: dict[str, Any]) -> str:
    return "vector" if "dimension" in spec else "regression" if "link" in spec else "scalar"


def family_path(name: str) -> Path | None:
    """Return the spec file of a catalogue family.

    Parameters
    ----------
    name : str
        A family name, such as ``"normal"``.

    Returns
    -------
    Path or None
        The family's ``.toml`` file; ``None`` if there is no such family
        (a name that is not an identifier, such as a path, never matches).

    Examples
    --------
    >>> family_path("normal").name
    'normal.toml'
    >>> family_path("no_such_family") is None, family_path("../normal") is None
    (True, True)
    """
    if not name.isidentifier():
        return None
    path = catalogue_dir() / f"{name}.toml"
    return path if path.is_file() else None


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a spec file as a TOML table.

    The file must be a regular file (a FIFO or a device is refused before it
    is opened for reading) of at most :data:`MAX_SPEC_BYTES` bytes (refused
    from its size, before it is read), UTF-8 text, and nested at most
    :data:`MAX_SPEC_DEPTH` tables or arrays deep.

    Raises
    ------
    SpecError
        If the file cannot be read, is not a regular file, is too large, is
        not UTF-8 text, is not valid TOML or is nested too deeply.

    Examples
    --------
    >>> read_spec_file(catalogue_dir() / "exponential.toml")["parameters"]
    {'lam': 'positive'}
    """
    path = Path(path)
    label = f"spec file {path.name}"
    raw = read_bounded(path, MAX_SPEC_BYTES, SpecError, label)
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (a file saved "with BOM") is not TOML
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"{label} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}): is it a binary file?"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{label} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        data = None
    if data is None or _depth_exceeds(data, MAX_SPEC_DEPTH):
        raise SpecError(f"{label} is nested too deeply (more than {MAX_SPEC_DEPTH} tables or arrays)")
    return data


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests dicts or lists more than ``limit`` deep (iteratively: no recursion)."""
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth >= limit:
                return True
            todo.extend((v, depth + 1) for v in item)
    return False


def list_families() -> list[dict[str, Any]]:
    """Summarise each catalogue family, as ``symmle list --json`` does.

    Only the TOML files are read (no SymPy), so this is fast.

    Returns
    -------
    list of dict
        One dict per family, in the order of :func:`family_names`, with
        ``name``, ``title``, ``discrete``, ``parameters`` and ``constants``
        (each a dict of name to domain).

    Raises
    ------
    SpecError
        If a catalogue file cannot be read or is not valid TOML.

    Examples
    --------
    >>> families = {f["name"]: f for f in list_families()}
    >>> families["normal"]["parameters"]
    {'mu': 'real', 'sigma2': 'positive'}
    >>> families["weibull_scale"]["constants"]
    {'k': 'positive'}
    """
    out = []
    for name in family_names():
        spec = read_spec_file(catalogue_dir() / f"{name}.toml")
        out.append(
            {
                "name": spec.get("name", name),
                "title": spec.get("title", ""),
                "discrete": bool(spec.get("discrete", False)),
                "parameters": dict(spec.get("parameters", {})),
                "constants": dict(spec.get("constants", {})),
                **({"link": dict(spec["link"])} if "link" in spec else {}),
            }
        )
    return out
