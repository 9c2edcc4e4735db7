"""The records of a model: :class:`Model`, its :class:`Quantity` objects and its :class:`Sampler`.

A :class:`Model` is immutable.  It owns the one symbol table of a model: the
variable, the parameters and the constants are created once, with the SymPy
assumptions their domains imply (:mod:`symmle.model.domains`), and every
later stage uses these very objects.  (A ``mu`` created elsewhere with other
assumptions would be a different symbol, and a derivative with respect to it
silently zero.)

A vector model (spec key ``dimension = "D"``) has a dimension Symbol ``D``;
its variable is a ``MatrixSymbol(x, D, 1)`` and the quantities of the matrix
domains (:data:`~symmle.model.domains.MATRIX_DOMAINS`) are MatrixSymbols of
shape ``D x 1`` or ``D x D``, in the same one symbol table.

Models are made from spec tables, the inline flags or files by
:mod:`symmle.model.build`, which validates them; their density is checked
numerically by :mod:`symmle.model.density`.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.domains import DOMAINS, MATRIX_DOMAINS, check_matrix_value, check_value, spacing
from symmle.model.parse import brief, parse_array, parse_number, strip_text

__all__ = ["Quantity", "Sampler", "Model", "SAMPLER_METHODS", "VECTOR_SAMPLER_ARGS", "matrix_value"]

#: The numpy.random.Generator methods that draw a vector, and the shape of each of their arguments
#: (``"vector"`` D x 1, ``"matrix"`` D x D, ``"scalar"``): vector models only.  ``multinomial``
#: draws counts with the given total ``n`` (1 for one-hot vectors).
VECTOR_SAMPLER_ARGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "multivariate_normal": {"mean": "vector", "cov": "matrix"},
        "dirichlet": {"alpha": "vector"},
        "multinomial": {"n": "scalar", "pvals": "vector"},
    }
)
#: numpy.random.Generator methods a ``[sampler]`` may name.
SAMPLER_METHODS = frozenset(
    "normal standard_normal gamma standard_gamma beta exponential standard_exponential poisson "
    "binomial negative_binomial geometric lognormal weibull rayleigh wald laplace pareto uniform "
    "chisquare logistic gumbel vonmises standard_cauchy standard_t f logseries hypergeometric "
    "zipf power triangular noncentral_chisquare".split()
) | frozenset(VECTOR_SAMPLER_ARGS)


@dataclass(frozen=True)
class Quantity:
    """A parameter (estimated) or constant (known) of a model.

    Attributes
    ----------
    name : str
        The name declared in the spec.
    domain : str
        One of :data:`~symmle.model.domains.DOMAINS`: ``real``, ``positive``, ``nonnegative``,
        ``unit``, ``integer`` or ``positive_integer``; or, in a vector model, one of
        :data:`~symmle.model.domains.MATRIX_DOMAINS`: ``vector``, ``positive_vector``,
        ``simplex`` or ``spd``.
    symbol : sympy.Symbol or sympy.MatrixSymbol
        The model's one Symbol of this name, with the assumptions of its
        domain (``positive=True``...); a ``MatrixSymbol`` of shape ``D x 1``
        (``D x D`` for ``spd``) for a matrix domain.
    value : sympy.Expr or sympy.ImmutableMatrix, optional
        The known value of a constant, if given: an explicit ``n x 1`` or
        ``n x n`` matrix of numbers for a matrix domain.

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
    symbol: sp.Symbol | sp.MatrixSymbol
    value: sp.Expr | sp.ImmutableMatrix | None = None  #: known value of a constant, if given

    @property
    def is_matrix(self) -> bool:
        """Whether the quantity is a vector or a matrix (a matrix domain of a vector model)."""
        return self.domain in MATRIX_DOMAINS

    @property
    def shape(self) -> tuple:
        """``()`` for a scalar, ``(D, 1)`` for a vector domain, ``(D, D)`` for ``spd``."""
        return tuple(self.symbol.shape) if self.is_matrix else ()

    def point(self) -> float:
        """A value for numerical checks: the given value, else the domain's point.

        A matrix quantity has none here: its values depend on a concrete dimension
        (:func:`symmle.model.explicit.model_point`).
        """
        if self.is_matrix:
            raise TypeError(
                f"'{self.name}' is a {self.domain}: its point needs a concrete dimension "
                "(symmle.model.explicit.model_point)"
            )
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
        In a vector model: for the vector methods of :data:`VECTOR_SAMPLER_ARGS`
        (``multivariate_normal``, ``dirichlet``, ``multinomial``) exactly their arguments,
        of the shapes listed there (vectors ``D x 1``, matrices ``D x D``); for a scalar
        method, scalars or ``D x 1`` vectors: each of the D entries is drawn
        independently, the arguments broadcast over the entries (``size=(n, D)``).
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
    variable : Symbol or MatrixSymbol
        The observed variable (``integer=True`` for discrete models); a
        ``MatrixSymbol(x, D, 1)`` for a vector model.
    discrete : bool
        Whether ``density`` is a probability mass function.
    support : (Expr, Expr)
        Lower and upper end of the support (inclusive for discrete models);
        they may involve parameters and constants.  For a vector model, the
        range of each entry of the variable (its set is ``support_set``).
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
    dimension : Symbol or None
        The dimension ``D`` of a vector model (``Symbol(name, integer=True,
        positive=True)``); ``None`` for a scalar model.
    support_set : str or None
        The named set of a vector model's variable, one of
        :data:`~symmle.model.domains.VECTOR_SUPPORTS` (``real``, ``simplex``,
        ``onehot``, ``counts``); ``support`` then holds the range of each entry.
    link : tuple of (str, str)
        The ``[link]`` modifier (``--link PARAM=LINK``): ``(parameter, link)``
        for the parameter tied to a linear predictor, which makes the model a
        regression (:mod:`symmle.model.link`); empty otherwise.

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
    dimension: sp.Symbol | None = None
    support_set: str | None = None
    link: tuple[tuple[str, str], ...] = ()
    #: the prior modifier (``--prior``, ``--prior-pdf``): :class:`~symmle.model.prior.Prior` factors
    prior: tuple = ()
    #: the mixture modifier (``--mixture K``, ``[mixture] components = K``): K components, 0 for none
    #: (:mod:`symmle.model.mixture`)
    mixture: int = 0

    def with_mixture(self, components: Any, origin: str = "--mixture") -> Model:
        """A copy that is a mixture of ``components`` (K) copies of this family, weights on the simplex.

        K = 1 is the family itself.  Mixtures are of scalar families without a link or a prior, with
        a support that does not depend on the parameters.

        Examples
        --------
        >>> from symmle.model.build import load_model
        >>> load_model("exponential").with_mixture("3").mixture
        3
        >>> load_model("mvnormal").with_mixture(2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        symmle.SpecError: --mixture: mixtures of vector families (mvnormal) are not supported yet...
        """
        from symmle.model.mixture import check_components

        k = check_components(components, origin)
        if self.is_vector:
            raise SpecError(
                f"{origin}: mixtures of vector families ({brief(self.name)}) are not supported yet; "
                "mix a scalar family"
            )
        if self.is_regression:
            raise SpecError(f"{origin}: a mixture of regressions is not supported: drop the link")
        if self.prior:
            raise SpecError(f"{origin}: a mixture cannot take a prior (MAP) yet: drop --prior")
        moving = [q.name for q in self.parameters if self.depends_on_support(q.symbol)]
        if moving and k > 1:
            raise SpecError(
                f"{origin}: the support of '{brief(self.name)}' depends on {moving[0]}; "
                "mixtures need a support that does not move with the parameters"
            )
        return replace(self, mixture=0 if k == 1 else k)

    def with_prior(
        self,
        priors: Mapping[str, str] | Any = (),
        pdf: Any = (),
        origin: str = "--prior",
    ) -> Model:
        """A copy with prior densities: ``{PARAM: "FAMILY(args)"}`` or ``["PARAM ~ FAMILY(args)"]``,
        and ``pdf`` (inline densities in the parameter names); estimation becomes MAP.

        Examples
        --------
        >>> from symmle.model.build import load_model
        >>> load_model("poisson").with_prior({"lam": "gamma(a=2, b=1)"}).prior[0].density
        lam*exp(-lam)
        """
        from symmle.model.prior import parse_priors, prior_pdf

        if self.is_vector or self.is_regression:
            raise SpecError(f"{origin}: a prior applies to a scalar model without a link")
        if self.mixture:
            raise SpecError(f"{origin}: a mixture cannot take a prior (MAP) yet")
        new = list(parse_priors(priors, self.parameters, origin)) if priors else []
        for text in [pdf] if isinstance(pdf, str) else list(pdf or ()):
            new.append(prior_pdf(text, self.parameters))
        covered: set[str] = set()
        for p in (*self.prior, *new):
            twice = covered & set(p.parameters)
            if twice:
                raise SpecError(f"{origin}: '{sorted(twice)[0]}' has more than one prior")
            covered |= set(p.parameters)
        for q in self.parameters:
            if q.name in covered and self.depends_on_support(q.symbol):
                raise SpecError(f"{origin}: '{q.name}' sets the support of the model; it cannot take a prior")
        return replace(self, prior=(*self.prior, *new))

    @property
    def is_regression(self) -> bool:
        """Whether a parameter is linked to a linear predictor (``[link]``, ``--link``)."""
        return bool(self.link)

    def with_link(self, links: Mapping[str, str], origin: str = "--link") -> Model:
        """A copy whose parameters in ``links`` (``{name: link}``) are tied to a linear predictor.

        Examples
        --------
        >>> from symmle.model.build import load_model
        >>> load_model("bernoulli").with_link({"p": "logit"}).link
        (('p', 'logit'),)
        """
        from symmle.model.link import check_links

        if self.is_vector:
            raise SpecError(f"{origin}: a vector model cannot take a link (its parameters are vectors)")
        if self.mixture:
            raise SpecError(f"{origin}: a mixture of regressions is not supported: drop the mixture")
        merged = {**dict(self.link), **links}
        check_links(merged, self.parameters, self.depends_on_support, origin)
        return replace(self, link=tuple(merged.items()))

    @property
    def is_vector(self) -> bool:
        """Whether the variable is a vector (the model has a ``dimension``)."""
        return self.dimension is not None

    def shapes(self) -> dict[str, tuple]:
        """The shape of every declared name: ``()`` for scalars, ``(D, 1)``, ``(D, D)``.

        Examples
        --------
        >>> from symmle.model.build import load_model
        >>> load_model("normal").shapes()
        {'x': (), 'mu': (), 'sigma2': ()}
        """
        return {name: tuple(s.shape) if s.is_Matrix else () for name, s in self.symbols.items()}

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
        if self.dimension is not None:
            table[self.dimension.name] = self.dimension
        table.update({q.name: q.symbol for q in (*self.parameters, *self.constants)})
        return table

    def point(self) -> dict[sp.Symbol, float]:
        """Parameter and constant values used for numerical verification.

        Given constant values are used as they are; otherwise each quantity
        gets its domain's point, shifted for each earlier quantity of the same
        domain, so that two parameters never coincide (a support ``[a, b]``
        stays non-empty, a symmetric formula does not hide an error).

        A vector model has no such point: its values need a concrete dimension
        (:func:`symmle.model.explicit.model_point`); it raises ``TypeError``.
        """
        if self.is_vector:
            raise TypeError(
                f"model '{self.name}' has vectors: its point needs a concrete dimension "
                "(symmle.model.explicit.model_point)"
            )
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

        A constant of a matrix domain takes a list (``[1, 2]``; rows ``[[2, 0.5],
        [0.5, 1]]``), an array, or such text; its value is then an explicit matrix of
        that size (the dimension stays a symbol; every matrix constant given must
        have the same size).

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
            if q.name in given and q.is_matrix:
                q = replace(q, value=matrix_value(q, given[q.name]))
            elif q.name in given:
                raw = given[q.name]
                if isinstance(raw, str):
                    value = parse_number(raw, what=f"constant {q.name}")
                else:
                    value = sp.nsimplify(raw)
                check_value(q.name, q.domain, value)
                q = replace(q, value=value)
            new.append(q)
        sizes = {q.name: q.value.shape[0] for q in new if q.is_matrix and q.value is not None}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{name} {size}" for name, size in sizes.items())
            raise SpecError(f"the matrix constants have different dimensions ({shown})")
        return replace(self, constants=tuple(new))

    def to_dict(self) -> dict[str, Any]:
        """The ``model`` object of the JSON output."""
        src = self.source
        return {
            "name": self.name,
            "density": src.get("density", str(self.density)),
            "variable": self.variable.name,
            "discrete": self.discrete,
            # a vector model's support is the name of its set (as in its spec)
            "support": self.support_set
            if self.support_set is not None
            else list(src.get("support", [str(e) for e in self.support])),
            "parameters": {q.name: q.domain for q in self.parameters},
            "constants": {q.name: q.domain for q in self.constants},
            # vector models only: a scalar model's JSON is unchanged
            **({"dimension": self.dimension.name} if self.dimension is not None else {}),
            # regressions only
            **({"link": dict(self.link)} if self.link else {}),
            # MAP models only
            **({"prior": [p.to_dict() for p in self.prior]} if self.prior else {}),
            # mixtures only: the number of components
            **({"mixture": self.mixture} if self.mixture else {}),
        }


def matrix_value(q: Quantity, raw: Any, what: str | None = None) -> sp.ImmutableMatrix:
    """The value of the matrix quantity ``q`` from text, a nested list or an array, checked.

    Text is read by :func:`~symmle.model.parse.parse_array` (never ``eval``); ``what`` names the
    value in messages (default ``constant NAME``).
    """
    what = what or f"constant {q.name}"
    if isinstance(raw, str):
        value = parse_array(raw, what=what)
    else:
        try:
            a = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            raise SpecError(f"{what}: expected a list or an array of numbers") from None
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.size == 0:
            raise SpecError(f"{what}: expected a vector or a matrix, got an array of shape {a.shape}")
        value = sp.ImmutableMatrix(a.tolist())
    check_matrix_value(q.name, q.domain, value)
    return value


def _names(qs: tuple[Quantity, ...]) -> str:
    return ", ".join(q.name for q in qs) or "(none)"


def _to_float(e: sp.Expr) -> float:
    if e == sp.oo:
        return math.inf
    if e == -sp.oo:
        return -math.inf
    return float(e)
