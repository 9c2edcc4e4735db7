"""The results of a derivation as JSON data, and back, with no ``eval``.

The cache of derivations (:mod:`symmle.symbolic.cache`) keeps them on disk,
where anyone who can write the file could change it.  So nothing read back
is executed: an expression is stored as a tree of nested lists,
``[class name, argument, ...]``, and read back by walking that tree against
a whitelist of SymPy classes, built with SymPy's evaluation switched off so
that the very tree that was stored comes back.  No string ever reaches a
SymPy constructor (which would hand it to ``sympify``): symbols are looked
up by name in the model's one symbol table (:class:`SymbolTable`: the
model's variable, parameters and constants, the sample size ``N``, the
index ``i``, the observations ``x[i]``, the statistics ``Tj`` and the order
statistics ``Min(x)``, ``Max(x)``), numbers are read from digits, and every
number that SymPy might later evaluate at great cost (``9**9**9``,
``factorial(10**9)``) is refused.  Each expression is written out again
after reading and must give the stored tree back exactly.

The records of a derivation (:class:`~symmle.symbolic.likelihood.Likelihood`,
:class:`~symmle.symbolic.stationarity.Stationarity`,
:class:`~symmle.symbolic.information.Information` and the records inside
them) are stored field by field, so a field added to one of them is stored
too, and an entry whose fields differ from the code's is refused.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef, UndefinedFunction
from sympy.functions.elementary.piecewise import ExprCondPair

from symmle.model.spec import Model
from symmle.symbolic.information import Information
from symmle.symbolic.likelihood import (
    Likelihood,
    Statistic,
    order_statistics,
    sample_symbols,
    statistic_symbol,
)
from symmle.symbolic.stationarity import Estimator, Stationarity
from symmle.symbolic.support import Constraint, SupportBound

__all__ = ["Unstorable", "Unreadable", "SymbolTable", "encode", "decode", "encode_expr", "decode_expr"]


class Unstorable(ValueError):
    """A value the codec cannot write (an unknown class, a Dummy symbol, ...)."""


class Unreadable(ValueError):
    """Stored data that does not read back into exactly what was stored."""


#: SymPy classes an expression may be built from, by name.  Symbols, the
#: sample ``x[i]`` and undefined functions are not here: they come from the
#: symbol table.
_CLASS_NAMES = (
    "Add Mul Pow exp log Abs sign re im arg floor ceiling gamma loggamma lowergamma uppergamma "
    "factorial factorial2 binomial beta digamma trigamma polygamma zeta erf erfc erfi expint Ei LambertW "
    "sin cos tan cot sec csc asin acos atan atan2 sinh cosh tanh asinh acosh atanh Min Max "
    "Piecewise ExprCondPair Sum Product Tuple Indexed Equality Unequality StrictLessThan LessThan "
    "StrictGreaterThan GreaterThan And Or Not DiracDelta Heaviside besseli besselk besselj bessely"
).split()
_NAMESPACE = {**vars(sp), "ExprCondPair": ExprCondPair}
CLASSES: Mapping[str, type] = {
    name: _NAMESPACE[name]
    for name in _CLASS_NAMES
    if isinstance(_NAMESPACE.get(name), type) and issubclass(_NAMESPACE[name], sp.Basic)
}
#: Singletons of ``sympy.S`` that may appear (``pi``, ``E``, ``oo``, ``nan``, ``1/2``...).
SINGLETONS = frozenset(
    "Zero One NegativeOne Half Infinity NegativeInfinity NaN ComplexInfinity Pi Exp1 ImaginaryUnit "
    "EulerGamma Catalan GoldenRatio true false".split()
)
_SINGLETON_OF = {id(getattr(sp.S, name)): name for name in SINGLETONS}
#: Classes whose constructor never evaluates the sum or product, but writes ``1*f``
#: for its function when evaluation is off.
_BUILT_EVALUATED = (sp.Sum, sp.Product)
#: Functions whose value at a large number SymPy computes exactly, at great cost.
_COSTLY = tuple(
    CLASSES[n] for n in ("factorial", "factorial2", "gamma", "loggamma", "binomial", "polygamma", "zeta")
)

#: Bounds on what is read back (the parser's bounds for user input, :mod:`symmle.model.parse`).
MAX_DIGITS = 4000
MAX_EXPONENT = 1000
MAX_SPECIAL_ARG = 1000
MAX_PRECISION = 10_000
MAX_MATRIX = 64
_INTEGER = re.compile(rf"-?[0-9]{{1,{MAX_DIGITS}}}\Z")


# --------------------------------------------------------------------------
# the symbol table
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SymbolTable:
    """Every symbol a derivation of one model may contain, by name.

    Built from the model and the statistics' expressions by the same
    functions the derivation uses, never from stored text.

    Attributes
    ----------
    symbols : mapping of str to Symbol
    indexed : mapping of str to IndexedBase
    functions : mapping of str to UndefinedFunction
    """

    symbols: Mapping[str, sp.Symbol]
    indexed: Mapping[str, sp.IndexedBase]
    functions: Mapping[str, UndefinedFunction]

    @classmethod
    def of(cls, model: Model, statistics: list[sp.Expr] = ()) -> SymbolTable:
        """The table of ``model``, with ``T1, T2, ...`` for the given statistics ``g_j(x)``.

        Raises
        ------
        Unstorable
            If two different symbols share a name (a parameter named ``N``).
        """
        N, i, sample = sample_symbols(model)
        symbols: dict[str, sp.Symbol] = {}
        named = [*model.symbols.values(), N, i]
        named += [statistic_symbol(j, g) for j, g in enumerate(statistics, start=1)]
        for s in named:
            if symbols.setdefault(s.name, s) != s:
                raise Unstorable(f"two symbols are named {s.name}")
        functions = {f.func.__name__: f.func for f in order_statistics(model)}
        return cls(symbols, {sample.name: sample}, functions)


# --------------------------------------------------------------------------
# expressions
# --------------------------------------------------------------------------


def encode_expr(e: Any) -> list:
    """An expression (or matrix) as nested lists of strings and integers.

    Raises
    ------
    Unstorable
        If it holds a class outside the whitelist, a Dummy or a Wild.

    Examples
    --------
    >>> x = sp.Symbol("x", positive=True)
    >>> encode_expr(2 * sp.log(x) + sp.Rational(1, 3))
    ['Add', ['Rational', '1', '3'], ['Mul', ['Integer', '2'], ['log', ['Symbol', 'x']]]]
    """
    if isinstance(e, sp.MatrixBase):
        kind = "immutable" if isinstance(e, sp.ImmutableMatrix) else "mutable"
        return ["Matrix", kind, e.rows, e.cols, [encode_expr(v) for v in e]]
    if not isinstance(e, sp.Basic):
        raise Unstorable(f"not a SymPy object: {type(e).__name__}")
    name = _SINGLETON_OF.get(id(e))
    if name is not None:
        return ["S", name]
    if isinstance(e, (sp.Dummy, sp.Wild)):
        raise Unstorable(f"a {type(e).__name__} symbol cannot be stored")
    if isinstance(e, sp.Symbol):
        return ["Symbol", e.name]
    if isinstance(e, sp.IndexedBase):
        return ["IndexedBase", e.name]
    if isinstance(e, AppliedUndef):
        return ["Applied", e.func.__name__, *[encode_expr(a) for a in e.args]]
    if isinstance(e, sp.Integer):
        return ["Integer", str(int(e))]
    if isinstance(e, sp.Rational):
        return ["Rational", str(e.p), str(e.q)]
    if isinstance(e, sp.Float):
        sign, man, exp, bc = e._mpf_
        return ["Float", int(sign), str(int(man)), int(exp), int(bc), int(e._prec)]
    name = type(e).__name__
    if CLASSES.get(name) is not type(e):
        raise Unstorable(f"the class {name} is not among those the cache may store")
    return [name, *[encode_expr(a) for a in e.args]]


def _integer(text: Any) -> int:
    if not isinstance(text, str) or not _INTEGER.match(text):
        raise Unreadable("not an integer")
    return int(text)


def _small(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise Unreadable("a number out of range")
    return value


def _big_number(e: sp.Basic, bound: float) -> bool:
    """Whether ``e`` is a number larger than ``bound`` in magnitude."""
    return isinstance(e, sp.Rational) and (abs(e.p) > bound * e.q)


def _guard(cls: type, args: list[sp.Basic]) -> None:
    """Refuse what SymPy would evaluate at great cost once evaluation is back on."""
    if cls is sp.Pow:
        base, exp = args
        if isinstance(base, sp.Rational) and _big_number(exp, MAX_EXPONENT) and abs(base) != 1 and base != 0:
            raise Unreadable("a power too large to evaluate")
    elif issubclass(cls, _COSTLY) and any(_big_number(a, MAX_SPECIAL_ARG) for a in args):
        raise Unreadable(f"{cls.__name__} of a number too large to evaluate")


def decode_expr(node: Any, table: SymbolTable) -> Any:
    """Read back an expression written by :func:`encode_expr`, with symbols from ``table``.

    Raises
    ------
    Unreadable
        If the tree names a class outside the whitelist or a symbol outside
        the table, holds an oversized number, or does not rebuild exactly.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> m = load_model("exponential")
    >>> table = SymbolTable.of(m)
    >>> e = decode_expr(encode_expr(m.density), table)
    >>> e == m.density, e.free_symbols == m.density.free_symbols
    (True, True)
    >>> decode_expr(["Symbol", "y"], table)
    Traceback (most recent call last):
        ...
    symmle.symbolic.codec.Unreadable: unknown symbol 'y'
    """
    with sp.evaluate(False):
        out = _decode(node, table)
    if encode_expr(out) != node:
        raise Unreadable("the stored expression does not rebuild exactly")
    return out


def _decode(node: Any, table: SymbolTable) -> Any:
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise Unreadable("not an expression")
    head, rest = node[0], node[1:]
    if head == "Symbol" and len(rest) == 1:
        return _lookup(table.symbols, rest[0], "symbol")
    if head == "IndexedBase" and len(rest) == 1:
        return _lookup(table.indexed, rest[0], "sample")
    if head == "Applied" and rest:
        return _lookup(table.functions, rest[0], "function")(*[_decode(a, table) for a in rest[1:]])
    if head == "S" and len(rest) == 1 and rest[0] in SINGLETONS:
        return getattr(sp.S, rest[0])
    if head == "Integer" and len(rest) == 1:
        return sp.Integer(_integer(rest[0]))
    if head == "Rational" and len(rest) == 2:
        p, q = _integer(rest[0]), _integer(rest[1])
        if q <= 0:
            raise Unreadable("a rational with a non-positive denominator")
        return sp.Rational(p, q)
    if head == "Float" and len(rest) == 5:
        sign, man, exp, bc, prec = rest
        mpf = (_small(sign, 0, 1), _integer(man), _small(exp, -(10**9), 10**9), _small(bc, 0, 10**6))
        return sp.Float._new(mpf, _small(prec, 1, MAX_PRECISION))
    if head == "Matrix" and len(rest) == 4:
        kind, rows, cols, entries = rest
        rows, cols = _small(rows, 0, MAX_MATRIX), _small(cols, 0, MAX_MATRIX)
        if (
            not isinstance(entries, list)
            or len(entries) != rows * cols
            or kind not in ("mutable", "immutable")
        ):
            raise Unreadable("a malformed matrix")
        values = [_decode(v, table) for v in entries]
        cls = sp.ImmutableMatrix if kind == "immutable" else sp.MutableDenseMatrix
        return cls(rows, cols, values)
    cls = CLASSES.get(head)
    if cls is None:
        raise Unreadable(f"the class {head!r} is not allowed")
    args = [_decode(a, table) for a in rest]
    _guard(cls, args)
    try:
        if cls in _BUILT_EVALUATED:
            with sp.evaluate(True):
                return cls(*args)
        return cls(*args)
    except (TypeError, ValueError, ArithmeticError, AttributeError, IndexError) as exc:
        raise Unreadable(f"{head} does not rebuild: {type(exc).__name__}") from None


def _lookup(table: Mapping[str, Any], name: Any, what: str) -> Any:
    if not isinstance(name, str) or name not in table:
        raise Unreadable(f"unknown {what} {name!r}")
    return table[name]


# --------------------------------------------------------------------------
# the records of a derivation
# --------------------------------------------------------------------------

#: The records a derivation is made of, by class name.
RECORDS: Mapping[str, type] = {
    cls.__name__: cls
    for cls in (Likelihood, Statistic, Stationarity, Estimator, Information, SupportBound, Constraint)
}


def encode(value: Any, model: Model) -> Any:
    """A derivation's record (or any value inside one) as JSON data.

    ``model`` is written as a reference only: it is what the cache entry is
    keyed by, and is given again when reading.

    Raises
    ------
    Unstorable
        If a value of an unknown type is found.
    """
    if value is model:
        return {"$": "model"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value) is int:
        return {"$": "int", "v": str(value)}
    if isinstance(value, float):
        return {"$": "float", "v": float(value).hex()}
    if isinstance(value, (sp.Basic, sp.MatrixBase)):
        return {"$": "expr", "v": encode_expr(value)}
    if isinstance(value, (tuple, list)):
        return {"$": type(value).__name__, "v": [encode(v, model) for v in value]}
    if isinstance(value, dict):
        return {"$": "dict", "v": [[encode(k, model), encode(v, model)] for k, v in value.items()]}
    name = type(value).__name__
    if RECORDS.get(name) is type(value):
        return {
            "$": name,
            "v": {f.name: encode(getattr(value, f.name), model) for f in dataclasses.fields(value)},
        }
    raise Unstorable(f"a value of type {name} cannot be stored")


def decode(data: Any, model: Model, table: SymbolTable) -> Any:
    """Read back what :func:`encode` wrote, for ``model`` and its symbol table.

    Raises
    ------
    Unreadable
        If the data are malformed, name an unknown record or field, or an
        expression does not read back exactly.
    """
    if data is None or isinstance(data, (bool, str)):
        return data
    if not isinstance(data, dict) or set(data) - {"$", "v"} or not isinstance(data.get("$"), str):
        raise Unreadable("a malformed value")
    tag, v = data["$"], data.get("v")
    if tag == "model":
        return model
    if tag == "int":
        return _integer(v)
    if tag == "float":
        if not isinstance(v, str) or len(v) > 40:
            raise Unreadable("a malformed float")
        try:
            return float.fromhex(v)
        except (ValueError, OverflowError):
            raise Unreadable("a malformed float") from None
    if tag == "expr":
        return decode_expr(v, table)
    if tag in ("tuple", "list"):
        if not isinstance(v, list):
            raise Unreadable("a malformed sequence")
        items = [decode(x, model, table) for x in v]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 for p in v):
            raise Unreadable("a malformed mapping")
        return {_hashable(decode(k, model, table)): decode(x, model, table) for k, x in v}
    cls = RECORDS.get(tag)
    if cls is None or not isinstance(v, dict):
        raise Unreadable(f"an unknown record {tag!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    if sorted(v) != sorted(names):
        raise Unreadable(f"the fields of {tag} differ from this version's")
    return cls(**{n: decode(v[n], model, table) for n in names})


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise Unreadable("an unhashable mapping key") from None
    return key


def statistics_of(likelihood: Likelihood) -> list[sp.Expr]:
    """The statistics' expressions ``g_j(x)``, in order: what the table's ``Tj`` are made from."""
    return [s.expr for s in likelihood.statistics]
