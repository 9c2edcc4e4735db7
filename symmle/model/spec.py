"""The records of a model: :class:`Model`, its :class:`Quantity` objects and its :class:`Sampler`.

A :class:`Model` is immutable.  It owns the one symbol table of a model: the
variable, the parameters and the constants are created once, with the SymPy
assumptions their domains imply (:mod:`symmle.model.domains`), and every
later stage uses these very objects.  (A ``mu`` created elsewhere with other
assumptions would be a different symbol, and a derivative with respect to it
silently zero.)

Models are made from spec tables, the inline flags or files by
:mod:`symmle.model.build`, which validates them; their density is checked
numerically by :mod:`symmle.model.density`.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.domains import DOMAINS, check_value, spacing
from symmle.model.parse import brief, parse_number, strip_text

__all__ = ["Quantity", "Sampler", "Model", "SAMPLER_METHODS"]

#: numpy.random.Generator methods a ``[sampler]`` may name.
SAMPLER_METHODS = frozenset(
    "normal standard_normal gamma standard_gamma beta exponential standard_exponential poisson "
    "binomial negative_binomial geometric lognormal weibull rayleigh wald laplace pareto uniform "
    "chisquare logistic gumbel vonmises standard_cauchy standard_t f logseries hypergeometric "
    "zipf power triangular noncentral_chisquare".split()
)


@dataclass(frozen=True)
class Quantity:
    """A parameter (estimated) or constant (known) of a model.

    Attributes
    ----------
    name : str
        The name declared in the spec.
    domain : str
        One of :data:`~symmle.model.domains.DOMAINS`: ``real``, ``positive``, ``nonnegative``,
        ``unit``, ``integer`` or ``positive_integer``.
    symbol : sympy.Symbol
        The model's one Symbol of this name, with the assumptions of its
        domain (``positive=True``...).
    value : sympy.Expr, optional
        The known value of a constant, if given.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> q = load_model("exponential").parameters[0]
    >>> q.name, q.domain, q.symbol.is_positive
    ('lam', 'positive', True)
    >>> q.point()   # the domain's representative point
    1.7
    """

    name: str
    domain: str
    symbol: sp.Symbol
    value: sp.Expr | None = None  #: known value of a constant, if given

    def point(self) -> float:
        """A value for numerical checks: the given value, else the domain's point."""
        return float(self.value) if self.value is not None else DOMAINS[self.domain][1]


@dataclass(frozen=True)
class Sampler:
    """How to draw from a model with a ``numpy.random.Generator``: its ``[sampler]`` table.

    Attributes
    ----------
    method : str
        A method of ``numpy.random.Generator`` (one of :data:`SAMPLER_METHODS`).
    args : tuple of (str, sympy.Expr)
        Its keyword arguments, as expressions in the parameters and constants.
    transform : sympy.Expr, optional
        An expression in ``draw`` applied to each raw draw.
    draw : sympy.Symbol, optional
        The raw draw in ``transform``.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> load_model("exponential").sampler
    Sampler(method='exponential', args=(('scale', 1/lam),), transform=None, draw=None)
    >>> load_model("half_normal").sampler.transform
    Abs(x)
    """

    method: str
    args: tuple[tuple[str, sp.Expr], ...]
    transform: sp.Expr | None = None
    #: the raw draw in ``transform``: named like the variable but only real,
    #: since a raw draw need not lie in the support (``Abs(x)`` of a normal)
    draw: sp.Symbol | None = None


@dataclass(frozen=True)
class Model:
    """An immutable, validated model specification.

    Made by :func:`~symmle.model.build.load_model`,
    :func:`~symmle.model.build.inline_model` or
    :func:`~symmle.model.build.model_from_dict`; every later stage uses its
    symbols.

    Attributes
    ----------
    name, title : str
        Short name and human-readable title.
    variable : Symbol
        The observed variable (``integer=True`` for discrete models).
    discrete : bool
        Whether ``density`` is a probability mass function.
    support : (Expr, Expr)
        Lower and upper end of the support (inclusive for discrete models);
        they may involve parameters and constants.
    density : Expr
        The pdf or pmf.
    parameters, constants : tuple of Quantity
        Estimated and known quantities, in declaration order.
    sampler : Sampler or None
        The ``[sampler]`` table, if the spec has one.
    source : mapping
        The density and support text as given.
    latex : tuple of (str, str)
        The ``[latex]`` table: ``(name, LaTeX)`` for declared names that the
        documents write in a given way (checked by
        :func:`~symmle.model.latex_names.latex_name_error`).

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> m = load_model("weibull_scale")
    >>> m.variable, m.support, m.discrete
    (x, (0, oo), False)
    >>> [q.name for q in m.parameters], [q.name for q in m.constants]
    (['lam'], ['k'])
    >>> m.with_constants({"k": "1.5"}).constants[0].value
    3/2
    """

    name: str
    title: str
    variable: sp.Symbol
    discrete: bool
    support: tuple[sp.Expr, sp.Expr]
    density: sp.Expr
    parameters: tuple[Quantity, ...]
    constants: tuple[Quantity, ...] = ()
    sampler: Sampler | None = None
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    latex: tuple[tuple[str, str], ...] = ()

    @property
    def parameter_symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(q.symbol for q in self.parameters)

    @property
    def constant_symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(q.symbol for q in self.constants)

    @property
    def symbols(self) -> dict[str, sp.Symbol]:
        """The symbol table: every declared name to its one Symbol."""
        table = {self.variable.name: self.variable}
        table.update({q.name: q.symbol for q in (*self.parameters, *self.constants)})
        return table

    def point(self) -> dict[sp.Symbol, float]:
        """Parameter and constant values used for numerical verification.

        Given constant values are used as they are; otherwise each quantity
        gets its domain's point, shifted for each earlier quantity of the same
        domain, so that two parameters never coincide (a support ``[a, b]``
        stays non-empty, a symmetric formula does not hide an error).
        """
        seen: dict[str, int] = {}
        out = {}
        for q in (*self.parameters, *self.constants):
            if q.value is not None:
                out[q.symbol] = float(q.value)
                continue
            k = seen.get(q.domain, 0)
            seen[q.domain] = k + 1
            out[q.symbol] = q.point() + k * spacing(q.domain)
        return out

    def constant_point(self) -> dict[sp.Symbol, float]:
        """The constants' values in :meth:`point`."""
        point = self.point()
        return {q.symbol: point[q.symbol] for q in self.constants}

    def support_at(self, point: Mapping[sp.Symbol, float]) -> tuple[float, float]:
        """The numeric support at ``point``."""
        return tuple(_to_float(e.subs(point)) for e in self.support)  # type: ignore[return-value]

    def depends_on_support(self, symbol: sp.Symbol) -> bool:
        """Whether the support's ends involve ``symbol`` (a non-regular parameter)."""
        return any(symbol in e.free_symbols for e in self.support)

    def with_constants(self, values: Mapping[str, Any]) -> Model:
        """A copy with known values for some constants (``{name: number or text}``).

        Raises
        ------
        SpecError
            If a name is not a declared constant or a value is outside its domain.
        """
        known = {q.name: q for q in self.constants}
        # a name as Python reads it (NFKC: 'ｋ' is 'k'), without a byte-order mark before it
        given = {unicodedata.normalize("NFKC", strip_text(str(name))): raw for name, raw in values.items()}
        new = []
        for name, shown in zip(given, values):
            if name not in known:
                raise SpecError(
                    f"unknown constant '{brief(shown)}'; declared constants: {_names(self.constants)}"
                )
        for q in self.constants:
            if q.name in given:
                raw = given[q.name]
                if isinstance(raw, str):
                    value = parse_number(raw, what=f"constant {q.name}")
                else:
                    value = sp.nsimplify(raw)
                check_value(q.name, q.domain, value)
                q = replace(q, value=value)
            new.append(q)
        return replace(self, constants=tuple(new))

    def to_dict(self) -> dict[str, Any]:
        """The ``model`` object of the JSON output."""
        src = self.source
        return {
            "name": self.name,
            "density": src.get("density", str(self.density)),
            "variable": self.variable.name,
            "discrete": self.discrete,
            "support": list(src.get("support", [str(e) for e in self.support])),
            "parameters": {q.name: q.domain for q in self.parameters},
            "constants": {q.name: q.domain for q in self.constants},
        }


def _names(qs: tuple[Quantity, ...]) -> str:
    return ", ".join(q.name for q in qs) or "(none)"


def _to_float(e: sp.Expr) -> float:
    if e == sp.oo:
        return math.inf
    if e == -sp.oo:
        return -math.inf
    return float(e)
