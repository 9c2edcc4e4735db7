"""Closed-form distribution functions kept on disk, beside the cache of derivations.

SymPy takes seconds to integrate a density (tens of seconds to give up on one); reading the result
back takes milliseconds.  An entry holds the closed forms of ``F`` and ``S`` (or the note saying
SymPy found none; a time-out is not kept, since it depends on the machine's load), keyed
by the model's canonical form (:func:`symmle.symbolic.cache.model_key`), the constants' values, the
budget and the versions of the code.  The entry is JSON read through the whitelist of
:mod:`symmle.symbolic.codec`, its content must match its SHA-256, and a closed form read back is
checked against quadrature of the density by the caller before it is used, as a fresh one is.
The cache follows the derivations' switches (``--no-cache``, ``SYMMLE_NO_CACHE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import sympy as sp

from symmle.base.errors import SpecError, SymmleError
from symmle.base.files import read_bounded
from symmle.model.spec import Model
from symmle.symbolic import cache, codec

__all__ = ["load_cdf", "load_quantile", "store_cdf", "store_quantile"]

#: Version of the entry format; part of the key.
FORMAT = 1
MAX_BYTES = 1 << 20


def _key(model: Model, constants: Mapping[str, float], timeout: float | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "what": "distribution function",
        "versions": cache._versions(),
        "model": cache.model_key(model),
        "constants": {k: float(v).hex() for k, v in sorted(constants.items())},
        "timeout": None if timeout is None else float(timeout).hex(),
    }


def _path(key: dict[str, Any]):
    digest = hashlib.sha256(cache._canonical(key)).hexdigest()[:40]
    return cache.cache_dir() / "distribution_functions" / f"{digest}.json"


def _read(key: dict[str, Any]) -> dict[str, Any] | None:
    """The payload stored under ``key``, ``None`` if the entry is another key's or fails its SHA-256."""
    doc = json.loads(read_bounded(_path(key), MAX_BYTES, SpecError, "cache entry"))
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    payload = doc["payload"]
    if hashlib.sha256(cache._canonical(payload)).hexdigest() != doc.get("sha256"):
        return None
    return payload


def _write(key: dict[str, Any], payload: dict[str, Any]) -> None:
    """Store ``payload`` under ``key`` with its SHA-256, atomically (a failed write is let go)."""
    doc = {"key": key, "payload": payload, "sha256": hashlib.sha256(cache._canonical(payload)).hexdigest()}
    path = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        cache._write_atomically(path, cache._canonical(doc))


def load_cdf(
    model: Model, constants: Mapping[str, float], timeout: float | None
) -> tuple[sp.Expr | None, sp.Expr | None, str] | None:
    """``(F, S, note)`` as stored, or ``None`` on a miss (never raises for what an entry holds)."""
    if not cache.enabled():
        return None
    try:
        payload = _read(_key(model, constants, timeout))
        if payload is None:
            return None
        if payload.get("cdf") is None:
            return None, None, str(payload.get("note", ""))
        table = codec.SymbolTable.of(model)
        return codec.decode_expr(payload["cdf"], table), codec.decode_expr(payload["sf"], table), ""
    except (OSError, SymmleError, ValueError, TypeError, KeyError, RecursionError, codec.Unstorable):
        return None
    except codec.Unreadable:
        return None


def store_cdf(
    model: Model,
    constants: Mapping[str, float],
    timeout: float | None,
    cdf: sp.Expr | None,
    sf: sp.Expr | None,
    note: str,
) -> None:
    """Keep ``(F, S)`` (or the note why there is none); never raises."""
    if not cache.enabled():
        return
    try:
        key = _key(model, constants, timeout)
        if cdf is None:
            payload: dict[str, Any] = {"cdf": None, "note": note}
        else:
            payload = {"cdf": codec.encode_expr(cdf), "sf": codec.encode_expr(sf)}
            table = codec.SymbolTable.of(model)
            if (
                codec.decode_expr(payload["cdf"], table) != cdf
                or codec.decode_expr(payload["sf"], table) != sf
            ):
                return
        _write(key, payload)
    except (OSError, SymmleError, ValueError, TypeError, RecursionError, codec.Unstorable, codec.Unreadable):
        return


def _quantile_key(model: Model, constants: Mapping[str, float], timeout: float | None) -> dict[str, Any]:
    return {**_key(model, constants, timeout), "what": "quantile function"}


def load_quantile(
    model: Model, constants: Mapping[str, float], timeout: float | None
) -> tuple[list[sp.Expr], str] | None:
    """``(solutions of F(x) = u, note)`` as stored (``u`` written as the variable), or ``None``."""
    if not cache.enabled():
        return None
    try:
        payload = _read(_quantile_key(model, constants, timeout))
        if payload is None:
            return None
        table = codec.SymbolTable.of(model)
        return [codec.decode_expr(e, table) for e in payload["solutions"]], str(payload.get("note", ""))
    except (OSError, SymmleError, ValueError, TypeError, KeyError, RecursionError, codec.Unstorable):
        return None
    except codec.Unreadable:
        return None


def store_quantile(
    model: Model, constants: Mapping[str, float], timeout: float | None, solutions: list[sp.Expr], note: str
) -> None:
    """Keep the solutions of ``F(x) = u`` (checked by the caller each time they are used); never raises."""
    if not cache.enabled():
        return
    try:
        key = _quantile_key(model, constants, timeout)
        payload = {"solutions": [codec.encode_expr(e) for e in solutions], "note": note}
        table = codec.SymbolTable.of(model)
        if [codec.decode_expr(e, table) for e in payload["solutions"]] != list(solutions):
            return
        _write(key, payload)
    except (OSError, SymmleError, ValueError, TypeError, RecursionError, codec.Unstorable, codec.Unreadable):
        return
