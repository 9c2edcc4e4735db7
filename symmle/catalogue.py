"""The catalogue of model families shipped in ``derivations/``.

This module only reads TOML; it never imports SymPy, so ``symmle list``
stays fast.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from symmle.errors import SpecError

__all__ = ["catalogue_dir", "family_names", "family_path", "read_spec_file", "list_families"]


def catalogue_dir() -> Path:
    """Directory holding the catalogue's ``*.toml`` files.

    Installed, it is ``symmle/derivations`` (the wheel maps ``derivations/``
    there); in a source checkout it is ``derivations/`` beside the package.
    """
    here = Path(__file__).resolve().parent
    installed = here / "derivations"
    return installed if installed.is_dir() else here.parent / "derivations"


def family_names() -> list[str]:
    """Return the sorted names of the catalogue families.

    Returns
    -------
    list of str
        The stems of the ``*.toml`` files in :func:`catalogue_dir`.

    Examples
    --------
    >>> names = family_names()
    >>> "normal" in names, names == sorted(names)
    (True, True)
    """
    return sorted(p.stem for p in catalogue_dir().glob("*.toml"))


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

    Raises
    ------
    SpecError
        If the file cannot be read or is not valid TOML.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path.name}: {exc.strerror or exc}") from None
    if len(text) > 100_000:
        raise SpecError(f"spec file {path.name} is too large ({len(text)} characters)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"spec file {path.name} is not valid TOML: {exc}") from None


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
            }
        )
    return out
