r"""The prior modifier: a prior density on the parameters, for maximum a posteriori (MAP) estimation.

``--prior "PARAM ~ FAMILY(NAME=VALUE, ...)"`` takes any scalar catalogue family as the prior of one
parameter: the family's variable becomes the parameter, and the arguments give values to *all* of the
family's parameters and constants, by name.  The family's own symbols are replaced by these numbers
before its variable is replaced by the parameter, so a prior ``mu ~ normal(mu=0, sigma2=10)`` on a
model's ``mu`` means what it says.  ``--prior-pdf EXPR`` gives an inline prior density in the
parameter names (read by the safe parser, never ``eval``).  Several priors may be given, one per
parameter; a parameter without one has a flat prior.

Examples
--------
>>> from symmle.model.build import load_model
>>> m = load_model("bernoulli").with_prior({"p": "beta(a=2, b=2)"})
>>> m.prior[0].family, m.prior[0].density
('beta', 6*p*(1 - p))
>>> load_model("poisson").with_prior(["lam ~ beta(a=2, b=2)"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
symmle.SpecError: --prior: the support of beta, [0, 1], does not cover the domain of lam (positive: (0, oo))
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.domains import DOMAINS, check_value
from symmle.model.parse import brief, parse_expression, parse_number, strip_text

__all__ = ["Prior", "parse_priors", "prior_pdf", "DOMAIN_INTERVALS"]

#: The interval of each scalar domain (ends as SymPy numbers), for the check that a prior covers it.
DOMAIN_INTERVALS: Mapping[str, tuple[sp.Expr, sp.Expr]] = {
    "real": (-sp.oo, sp.oo),
    "positive": (sp.S.Zero, sp.oo),
    "nonnegative": (sp.S.Zero, sp.oo),
    "unit": (sp.S.Zero, sp.S.One),
    "integer": (-sp.oo, sp.oo),
    "positive_integer": (sp.S.One, sp.oo),
}

_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)$", re.S)
_LIMIT = 2000


@dataclass(frozen=True)
class Prior:
    """One prior factor of a model: a density in some of its parameters.

    Attributes
    ----------
    parameters : tuple of str
        The parameters the density is a function of (one for a catalogue family).
    density : sympy.Expr
        The prior density, in the model's parameter symbols (up to a constant factor for
        ``--prior-pdf``).
    family : str or None
        The catalogue family of a ``PARAM ~ FAMILY(...)`` prior; ``None`` for ``--prior-pdf``.
    args : tuple of (str, sympy.Expr)
        The values given to the family's parameters and constants.
    text : str
        The prior as the user wrote it (for reports).
    """

    parameters: tuple[str, ...]
    density: sp.Expr
    family: str | None = None
    args: tuple[tuple[str, sp.Expr], ...] = ()
    text: str = ""

    @property
    def log_density(self) -> sp.Expr:
        """``log`` of the density, expanded (constants free of the parameters are kept)."""
        return sp.expand_log(sp.log(self.density), force=True)

    def describe(self) -> str:
        """``p ~ beta(a=2, b=2)`` or ``pdf: EXPR``."""
        if self.family is None:
            return f"pdf: {self.density}"
        args = ", ".join(f"{k}={v}" for k, v in self.args)
        return f"{self.parameters[0]} ~ {self.family}({args})"

    def to_dict(self) -> dict:
        """The ``prior`` entry of a JSON document."""
        return {
            "parameters": list(self.parameters),
            "family": self.family,
            "args": {k: str(v) for k, v in self.args},
            "density": str(self.density),
        }


def _split_args(text: str, origin: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not text.strip():
        return out
    depth, start, parts = 0, 0, []
    for k, c in enumerate(text):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    for part in parts:
        name, eq, value = part.partition("=")
        name = strip_text(name)
        if not eq or not name.isidentifier():
            raise SpecError(f"{origin}: each argument must be NAME=VALUE (got {brief(repr(part.strip()))})")
        out.append((name, value))
    return out


def _family_prior(parameter, text: str, origin: str) -> Prior:
    """The prior ``FAMILY(args)`` of the model parameter ``parameter`` (a Quantity)."""
    from symmle.model.build import load_model
    from symmle.model.catalogue import family_names, family_path

    match = _CALL.match(text)
    if match is None:
        raise SpecError(f"{origin}: expected FAMILY(NAME=VALUE, ...) after '~' (got {brief(repr(text))})")
    family, inside = match.group(1), match.group(2)
    path = family_path(family)
    if path is None:
        raise SpecError(
            f"{origin}: unknown prior family '{brief(family)}'; families: {', '.join(family_names())}"
        )
    fam = load_model(path)
    if fam.is_vector or fam.is_regression:
        raise SpecError(f"{origin}: the prior family {family} is not a scalar family")
    if fam.discrete and parameter.domain not in ("integer", "positive_integer"):
        raise SpecError(
            f"{origin}: {family} is discrete, and '{parameter.name}' is {parameter.domain}: "
            "a prior on it must be a continuous family"
        )
    declared = {q.name: q for q in (*fam.parameters, *fam.constants)}
    given: dict[str, sp.Expr] = {}
    for name, raw in _split_args(inside, origin):
        if name not in declared:
            raise SpecError(
                f"{origin}: {family} has no parameter '{brief(name)}'; its arguments: {', '.join(declared)}"
            )
        if name in given:
            raise SpecError(f"{origin}: '{name}' is given twice")
        value = parse_number(raw, what=f"{origin}: {name}")
        try:
            check_value(name, declared[name].domain, value)
        except SpecError as exc:
            raise SpecError(f"{origin}: {exc}") from None
        given[name] = value
    missing = [n for n in declared if n not in given]
    if missing:
        raise SpecError(
            f"{origin}: {family} needs a value for {', '.join(missing)} "
            f"(give all of {', '.join(declared)}, e.g. {family}({', '.join(f'{n}=1' for n in declared)}))"
        )
    values = {declared[n].symbol: v for n, v in given.items()}
    lo, hi = (sp.sympify(e).xreplace(values) for e in fam.support)
    dlo, dhi = DOMAIN_INTERVALS[parameter.domain]
    if not (lo.is_number and hi.is_number and bool(lo <= dlo) and bool(hi >= dhi)):
        raise SpecError(
            f"{origin}: the support of {family}, [{lo}, {hi}], does not cover the domain of "
            f"{parameter.name} ({parameter.domain}: ({dlo}, {dhi}))"
        )
    # the family's own symbols first (a name may be the model's too), then its variable
    density = fam.density.xreplace(values).xreplace({fam.variable: parameter.symbol})
    if density.free_symbols - {parameter.symbol}:
        raise SpecError(f"{origin}: the prior density keeps unknown names after substitution")
    args = tuple((n, given[n]) for n in declared)
    return Prior((parameter.name,), density, family, args, f"{parameter.name} ~ {text}")


def parse_priors(
    items: Mapping[str, str] | Sequence[str], parameters, origin: str = "--prior"
) -> list[Prior]:
    """Read ``{PARAM: "FAMILY(args)"}`` or ``["PARAM ~ FAMILY(args)", ...]`` against ``parameters``.

    ``parameters`` are the model's :class:`~symmle.model.spec.Quantity` objects.
    """
    if isinstance(items, str):
        items = [items]
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        for name, text in items.items():
            if not isinstance(text, str):
                raise SpecError(
                    f'{origin}: the prior of {brief(repr(name))} must be text such as "beta(a=2, b=2)"'
                )
            pairs.append((strip_text(str(name)), strip_text(text)))
    else:
        for item in items:
            item = str(item)
            if len(item) > _LIMIT:
                raise SpecError(f"{origin}: the prior is too long")
            name, tilde, rest = item.partition("~")
            if not tilde:
                raise SpecError(f"{origin} must be PARAM ~ FAMILY(NAME=VALUE, ...) (got {brief(repr(item))})")
            pairs.append((strip_text(name), strip_text(rest)))
    known = {q.name: q for q in parameters}
    out: list[Prior] = []
    for name, text in pairs:
        if len(text) > _LIMIT:
            raise SpecError(f"{origin}: the prior is too long")
        if name not in known:
            raise SpecError(
                f"{origin}: '{brief(name)}' is not a parameter of the model; its parameters: "
                f"{', '.join(known) or '(none)'}"
            )
        q = known[name]
        if q.is_matrix:
            raise SpecError(f"{origin}: '{name}' is a {q.domain}; a prior applies to a scalar parameter")
        out.append(_family_prior(q, text, origin))
    return out


def prior_pdf(text: str, parameters, origin: str = "--prior-pdf") -> Prior:
    """An inline prior density in the parameter names, read by the safe parser and checked to be positive."""
    from symmle.base.numeric import to_function

    scalar = [q for q in parameters if not q.is_matrix]
    names = {q.name: q.symbol for q in scalar}
    density = parse_expression(str(text), names, what=origin)
    used = [q for q in scalar if q.symbol in density.free_symbols]
    if not used:
        raise SpecError(
            f"{origin}: the prior density must involve a parameter ({', '.join(names) or '(none)'})"
        )
    f = to_function([q.symbol for q in used], density)
    # positive and finite at a few points of the domains (a density, not a log-density)
    for scale in (0.5, 1.0, 1.7):
        at = []
        for q in used:
            base = DOMAINS[q.domain][1]
            at.append(min(base * scale, 0.95) if q.domain == "unit" else base * scale)
        try:
            v = complex(f(*at))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            v = complex("nan")
        if not (math.isfinite(v.real) and abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)) and v.real > 0):
            raise SpecError(
                f"{origin}: the prior density is not positive and finite at "
                + ", ".join(f"{q.name} = {a:g}" for q, a in zip(used, at))
                + " (give the density, not its logarithm)"
            )
    return Prior(tuple(q.name for q in used), density, None, (), strip_text(str(text)))
