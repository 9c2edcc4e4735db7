r"""The mixture modifier: K components of one family, with weights on the simplex.

``--mixture K`` (or a spec's ``[mixture]`` table, ``components = K``) turns a scalar family
:math:`f(x; \theta)` into the finite mixture

.. math::

    p(x) = \sum_{k=1}^{K} w_k f(x; \theta_k), \qquad w_k > 0, \quad \sum_k w_k = 1.

The symbols of the mixture belong to the model's one symbol table: :func:`mixture_symbols` makes
them from the model, each with the assumptions of what it stands for, so that every stage (the
derivation, the lecture, the JSON) uses the same objects.  The component index is ``k`` (another
letter if the model declares ``k``, as the Weibull's shape constant); the component copy of a
parameter ``mu`` is ``mu_k``, the weights ``w_k``, the expected counts
:math:`N_k = \sum_i r_{ik}` are ``N_k`` and the weighted statistics
:math:`S_{kj} = \sum_i r_{ik} g_j(x_i)` are ``S_k1, S_k2, ...``.  For display the lecture writes
them as indexed objects (``mu[k]``, ``S[k, 1]``), which print as :math:`\mu_{k}`, :math:`S_{k,1}`.

Examples
--------
>>> from symmle.model.build import load_model
>>> m = load_model("normal").with_mixture(2)
>>> m.mixture
2
>>> sy = mixture_symbols(m)
>>> sy.component["mu"], sy.component["sigma2"].is_positive, sy.weight, sy.count
(mu_k, True, w_k, N_k)
>>> sy.statistic(1, sp.Symbol("T1", real=True))
S_k1
>>> mixture_symbols(load_model("weibull_scale").with_mixture(2)).index   # k is the Weibull's shape
c
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.parse import brief

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = ["MAX_COMPONENTS", "MixtureSymbols", "check_components", "mixture_symbols", "parse_mixture_table"]

#: the most components a mixture may have (as :mod:`symmle.numbers.mixture_em`)
MAX_COMPONENTS = 50

# candidate letters of each role, first free one wins (a declared name, or one that prints the same)
_INDEX = ("k", "c", "m", "h", "q")
_INNER = ("l", "m", "h", "q", "c")
_WEIGHT = ("w", "omega", "v")
_STAT = ("S", "G", "V")
_RESP = ("r", "tau", "u")
_INDICATOR = ("z", "delta", "v")
_MULTIPLIER = ("lamda", "nu", "kappa")
#: names that print as the same Greek letter
_ALIASES = {
    "lambda": {"lam", "lamda", "lambda", "\u03bb"},
    "theta": {"th", "theta", "\u03b8"},
    "epsilon": {"eps", "epsilon", "\u03b5"},
    "nu": {"nu", "\u03bd"},
    "kappa": {"kappa", "\u03ba"},
    "omega": {"omega", "\u03c9"},
}


def check_components(value: Any, origin: str = "--mixture") -> int:
    """The number of components K, checked: a whole number in ``1..MAX_COMPONENTS``.

    >>> check_components("3")
    3
    >>> check_components("two")
    Traceback (most recent call last):
        ...
    symmle.SpecError: --mixture: the number of components must be a whole number, not 'two'
    """
    if isinstance(value, bool):
        raise SpecError(f"{origin}: the number of components must be a whole number, not {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise SpecError(f"{origin}: the number of components must be a whole number, not {value!r}")
        value = int(value)
    text = str(value).strip()
    try:
        k = int(text)
    except ValueError:
        raise SpecError(
            f"{origin}: the number of components must be a whole number, not {brief(repr(text[:40]))}"
        ) from None
    if k < 1:
        raise SpecError(f"{origin}: the number of components must be at least 1, not {k}")
    if k > MAX_COMPONENTS:
        raise SpecError(f"{origin}: at most {MAX_COMPONENTS} components, not {k}")
    return k


def parse_mixture_table(table: Any, origin: str) -> int:
    """The K of a spec's ``[mixture]`` table (``components = K``), checked."""
    if not isinstance(table, Mapping):
        raise SpecError(f"{origin}: [mixture] must be a table with components = K")
    unknown = [str(key) for key in table if key != "components"]
    if unknown:
        raise SpecError(
            f"{origin}: [mixture] has the unknown key {brief(repr(unknown[0]))}; it takes components = K"
        )
    if "components" not in table:
        raise SpecError(f"{origin}: [mixture] needs components = K")
    return check_components(table["components"], f"{origin}: [mixture] components")


@dataclass(frozen=True)
class MixtureSymbols:
    """The symbols of a K-component mixture of a model (made by :func:`mixture_symbols`).

    Attributes
    ----------
    K : int
    index, inner : Symbol
        The component index (``k``) and a second one for the sum in a denominator (``l``).
    component : mapping of str to Symbol
        Each parameter's component copy (``mu_k``), with the parameter's assumptions.
    weight, count : Symbol
        ``w_k`` (positive) and ``N_k = sum_i r_ik`` (positive).
    multiplier : Symbol
        The Lagrange multiplier of the simplex constraint.
    names : mapping of str to str
        The base letters of each role: ``weight``, ``statistic``, ``responsibility``, ``indicator``.
    """

    K: int
    index: sp.Symbol
    inner: sp.Symbol
    component: Mapping[str, sp.Symbol]
    weight: sp.Symbol
    count: sp.Symbol
    multiplier: sp.Symbol
    names: Mapping[str, str]
    assumptions: Mapping[str, Mapping[str, bool]]

    def statistic(self, j: int, like: sp.Symbol) -> sp.Symbol:
        """``S_kj``, the weighted version of the statistic ``like`` (``T_j``), with its sign."""
        keys = ("positive", "nonnegative", "real")
        kw = {key: True for key in keys if like.assumptions0.get(key)}
        return sp.Symbol(f"{self.names['statistic']}_{self.index}{j}", **(kw or {"real": True}))

    def at(self, symbol: sp.Symbol, index: sp.Symbol | int) -> sp.Symbol:
        """The symbol of the component ``index`` (``mu_l``, ``mu_1``) for a component symbol (``mu_k``)."""
        head = symbol.name[: -len(self.index.name) - 1]
        keys = ("positive", "nonnegative", "real", "integer")
        kw = {key: v for key, v in symbol.assumptions0.items() if key in keys and v is not None}
        return sp.Symbol(f"{head}_{index}", **kw)

    def indexed(self, symbol: sp.Symbol, *index: Any) -> sp.Indexed:
        """The indexed object for display: ``mu[k]`` for ``mu_k`` (printed :math:`\\mu_{k}`)."""
        head = symbol.name[: -len(self.index.name) - 1]
        keys = ("positive", "nonnegative", "real", "integer")
        kw = {key: v for key, v in symbol.assumptions0.items() if key in keys and v is not None}
        return sp.IndexedBase(head, **kw)[index if index else (self.index,)]

    def display(self, statistics: Mapping[int, sp.Symbol] | None = None) -> dict[sp.Symbol, sp.Indexed]:
        """``{mu_k: mu[k], N_k: N[k], w_k: w[k], S_kj: S[k, j]}``: the record's symbols as displayed."""
        k = self.index
        out: dict[sp.Symbol, sp.Indexed] = {s: self.indexed(s) for s in (*self.component.values(),)}
        out[self.weight] = self.indexed(self.weight)
        out[self.count] = self.indexed(self.count)
        for j, s in (statistics or {}).items():
            out[s] = sp.IndexedBase(self.names["statistic"], **_sign(s))[k, j]
        return out


def _sign(s: sp.Symbol) -> dict[str, bool]:
    keys = ("positive", "nonnegative", "real")
    return {key: True for key in keys if s.assumptions0.get(key)}


def _taken(model: Model) -> set[str]:
    names = set(model.symbols) | {"N", "i", "x", "T", "Q", "L", "f", "p", "ell", "pi", "E", "I"}
    for group in _ALIASES.values():
        if names & group:
            names |= group
    return names


def _first(candidates: tuple[str, ...], taken: set[str], role: str) -> str:
    for c in candidates:
        if c not in taken:
            return c
    raise SpecError(f"--mixture: every name for the {role} of a mixture is a name of the model")


def mixture_symbols(model: Model, K: int | None = None) -> MixtureSymbols:
    """The symbols of the mixture of ``model`` (its ``mixture`` K unless ``K`` is given)."""
    K = int(K if K is not None else model.mixture)
    taken = _taken(model)
    params = [q for q in model.parameters]
    index = None
    for c in _INDEX:
        if c in taken:
            continue
        names = {f"{q.name}_{c}" for q in params}
        if not names & taken:
            index = c
            break
    if index is None:
        raise SpecError("--mixture: every letter for the component index is a name of the model")
    taken.add(index)
    inner = _first(tuple(c for c in _INNER if c != index), taken, "second index")
    taken.add(inner)
    roles = {}
    for role, candidates in (
        ("weight", _WEIGHT),
        ("statistic", _STAT),
        ("responsibility", _RESP),
        ("indicator", _INDICATOR),
        ("multiplier", _MULTIPLIER),
    ):
        roles[role] = _first(tuple(c for c in candidates if c not in roles.values()), taken, role)
    assumptions = {}
    component = {}
    keys = ("positive", "nonnegative", "real", "integer")
    for q in params:
        kw = {key: v for key, v in q.symbol.assumptions0.items() if key in keys and v is not None}
        assumptions[q.name] = kw
        component[q.name] = sp.Symbol(f"{q.name}_{index}", **kw)
    return MixtureSymbols(
        K=K,
        index=sp.Symbol(index, positive=True, integer=True),
        inner=sp.Symbol(inner, positive=True, integer=True),
        component=component,
        weight=sp.Symbol(f"{roles['weight']}_{index}", positive=True),
        count=sp.Symbol(f"N_{index}", positive=True),
        multiplier=sp.Symbol(roles["multiplier"], real=True),
        names=roles,
        assumptions=assumptions,
    )
