"""The ``[sampler]`` table of a spec: how to draw from a model with a ``numpy.random.Generator``.

The method must be one of :data:`~symmle.model.spec.SAMPLER_METHODS`; its
arguments are expressions in the parameters and constants, read by the safe
parser.  A vector model's sampler is either a vector method with exactly its
arguments, of the shapes of :data:`~symmle.model.spec.VECTOR_SAMPLER_ARGS`, or a
scalar method that draws each entry on its own (its arguments scalars or
``D x 1`` vectors, broadcast over the entries); it takes no transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.matrices import is_matrix, shape_text
from symmle.model.parse import brief, parse_expression
from symmle.model.spec import SAMPLER_METHODS, VECTOR_SAMPLER_ARGS, Sampler

__all__ = ["sampler_table", "vector_sampler_table"]


def sampler_table(
    table: Any, symbols: Mapping[str, sp.Basic], variable: sp.Symbol | None, origin: str
) -> Sampler | None:
    """The ``[sampler]`` table of a scalar model as a :class:`Sampler` (``None`` if absent).

    ``variable`` is the model's variable, the raw draw of a ``transform``; ``None``
    for a vector model, whose table :func:`vector_sampler_table` checks further.

    Raises
    ------
    SpecError
        On an unknown key or method, an argument that is not ``name = "expression"``,
        or an expression the parser refuses.
    """
    if table is None:
        return None
    if not isinstance(table, Mapping) or set(table) - {"method", "args", "transform"}:
        raise SpecError(f"{origin}: [sampler] takes only method, args and transform")
    method = table.get("method")
    if not isinstance(method, str) or method not in SAMPLER_METHODS:
        raise SpecError(
            f"{origin}: sampler method {brief(repr(method))} is not an allowed numpy.random.Generator method"
        )
    if variable is not None and method in VECTOR_SAMPLER_ARGS:
        raise SpecError(
            f"{origin}: sampler method '{method}' draws vectors: it needs a vector model "
            '(dimension = "D", or --dim D)'
        )
    args_table = table.get("args", {})
    if not isinstance(args_table, Mapping):
        raise SpecError(f"{origin}: sampler args must be a table")
    args = []
    for key, text in args_table.items():
        if not isinstance(key, str) or not key.isidentifier() or not isinstance(text, (str, int, float)):
            raise SpecError(f'{origin}: sampler argument {key!r} must be name = "expression"')
        args.append((key, parse_expression(str(text), symbols, what=f"sampler argument {key}")))
    if variable is None:
        return Sampler(method, tuple(args))
    transform = table.get("transform")
    if transform is not None:
        if not isinstance(transform, str):
            raise SpecError(f"{origin}: sampler transform must be a string")
        draw = sp.Symbol(variable.name, real=True)
        expr = parse_expression(transform, {**symbols, variable.name: draw}, what="sampler transform")
        return Sampler(method, tuple(args), expr, draw)
    return Sampler(method, tuple(args))


def vector_sampler_table(table: Any, symbols: Mapping[str, sp.Basic], dimension: sp.Symbol, origin: str):
    """The ``[sampler]`` table of a vector model as a :class:`Sampler` (``None`` if absent).

    Raises
    ------
    SpecError
        As :func:`sampler_table`, and on a transform, on arguments that are not
        exactly those of a vector method, or of the wrong shape.
    """
    if table is None:
        return None
    if isinstance(table, Mapping) and "transform" in table:
        raise SpecError(f"{origin}: the sampler of a vector model takes no transform")
    sampler = sampler_table(table, symbols, None, origin)
    column, square = (dimension, 1), (dimension, dimension)
    wanted = VECTOR_SAMPLER_ARGS.get(sampler.method)
    given = dict(sampler.args)
    if wanted is not None and set(given) != set(wanted):
        raise SpecError(
            f"{origin}: sampler method '{sampler.method}' takes the arguments {', '.join(wanted)} "
            f"(got {', '.join(given) or 'none'})"
        )
    args = []
    for key, expr in sampler.args:
        kind = wanted[key] if wanted is not None else None
        if is_matrix(expr) and expr.shape == (1, 1):
            expr = sp.Trace(expr)
        shape = tuple(expr.shape) if is_matrix(expr) else ()
        ok = {"vector": [column], "matrix": [square], "scalar": [()], None: [(), column]}[kind]
        if shape not in ok:
            need = {"vector": "a D x 1 vector", "matrix": "a D x D matrix", "scalar": "a scalar"}.get(
                kind, "a scalar or a D x 1 vector (each entry is drawn on its own)"
            )
            got = shape_text(expr) if shape else "a scalar"
            raise SpecError(f"{origin}: sampler argument {key} must be {need}, got {got}")
        if kind == "scalar" and expr.is_number and not (expr.is_integer and expr.is_positive):
            # the multinomial's n: the total of each drawn row
            raise SpecError(f"{origin}: sampler argument {key} must be a positive integer, got {brief(expr)}")
        args.append((key, expr))
    return Sampler(sampler.method, tuple(args))
