r"""The link modifier: one parameter of a family tied to a linear predictor.

``[link] PARAM = "LINK"`` in a spec, or ``--link PARAM=LINK`` on the command
line, makes a regression of any scalar family: for observation ``i`` the
parameter is :math:`\theta_i = g^{-1}(\eta_i)` with :math:`\eta_i = x_i^\top
\beta`, and the family's other parameters stay shared scalars.

A link is a one-to-one map :math:`g` from the parameter's domain onto the
domain of :math:`\eta`; :data:`LINKS` holds the seven links, each with its
inverse as a SymPy expression in :math:`\eta`, the parameter domains it
applies to, and the domain of :math:`\eta` it gives.

Examples
--------
>>> import sympy as sp
>>> eta = sp.Symbol("eta", real=True)
>>> LINKS["logit"].inverse(eta)
1/(1 + exp(-eta))
>>> LINKS["log"].eta_domain("positive")
'real'
>>> LINKS["identity"].eta_domain("positive")
'positive'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symmle.base.errors import SpecError
from symmle.model.parse import brief, strip_text

__all__ = ["Link", "LINKS", "parse_links", "check_links"]


@dataclass(frozen=True)
class Link:
    """One link function :math:`g` and its inverse.

    Attributes
    ----------
    name : str
    inverse : callable
        :math:`\\eta \\mapsto g^{-1}(\\eta)` as a SymPy expression.
    forward : callable
        :math:`\\theta \\mapsto g(\\theta)` as a SymPy expression.
    numeric : callable
        :math:`g` on NumPy arrays (for starting values).
    domains : tuple of str
        The parameter domains that hold every value of :math:`g^{-1}` (the log
        link applies to a real parameter too: it keeps it positive).
    onto : str or None
        The domain of :math:`\\eta` (``None``: the parameter's own domain).
    latex : str
        :math:`g` in LaTeX, with ``{}`` where the argument goes.
    """

    name: str
    inverse: Callable[[sp.Expr], sp.Expr]
    forward: Callable[[sp.Expr], sp.Expr]
    numeric: Callable[[np.ndarray], np.ndarray]
    domains: tuple[str, ...]
    onto: str | None
    latex: str

    def eta_domain(self, domain: str) -> str:
        """The domain of :math:`\\eta` for a parameter of ``domain``."""
        return domain if self.onto is None else self.onto


def _probit(t: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(t)


def _logit(t: np.ndarray) -> np.ndarray:
    return np.log(t) - np.log1p(-t)


# the domains that hold every value of a positive, or a (0, 1)-valued, inverse link
_POSITIVE = ("positive", "nonnegative", "real")
_UNIT = ("unit", *_POSITIVE)

#: The links, by name.
LINKS: Mapping[str, Link] = {
    link.name: link
    for link in (
        Link(
            "identity",
            lambda e: e,
            lambda t: t,
            lambda t: np.asarray(t, dtype=float),
            ("real", "positive", "nonnegative", "unit"),
            None,
            "{}",
        ),
        Link("log", sp.exp, sp.log, np.log, _POSITIVE, "real", r"\log {}"),
        Link(
            "logit",
            lambda e: 1 / (1 + sp.exp(-e)),
            lambda t: sp.log(t / (1 - t)),
            _logit,
            _UNIT,
            "real",
            r"\operatorname{{logit}} {}",
        ),
        Link(
            "probit",
            lambda e: (1 + sp.erf(e / sp.sqrt(2))) / 2,
            lambda t: sp.sqrt(2) * sp.erfinv(2 * t - 1),
            _probit,
            _UNIT,
            "real",
            r"\Phi^{{-1}}({})",
        ),
        Link(
            "cloglog",
            lambda e: 1 - sp.exp(-sp.exp(e)),
            lambda t: sp.log(-sp.log(1 - t)),
            lambda t: np.log(-np.log1p(-np.asarray(t, dtype=float))),
            _UNIT,
            "real",
            r"\log(-\log(1 - {}))",
        ),
        Link(
            "inverse",
            lambda e: 1 / e,
            lambda t: 1 / t,
            lambda t: 1 / np.asarray(t, dtype=float),
            _POSITIVE,
            "positive",
            r"1/{}",
        ),
        Link(
            "sqrt",
            lambda e: e**2,
            sp.sqrt,
            np.sqrt,
            _POSITIVE,
            "positive",
            r"\sqrt{{{}}}",
        ),
    )
}


def parse_links(items: Mapping[str, object] | list[str] | tuple[str, ...], origin: str) -> dict[str, str]:
    """Read ``{PARAM: LINK}`` from a spec's ``[link]`` table or ``--link PARAM=LINK`` items.

    Only names are read (never evaluated); the parameter and the link are
    checked against the model by :func:`check_links`.

    Examples
    --------
    >>> parse_links(["p=logit"], "--link")
    {'p': 'logit'}
    >>> parse_links({"lam": "log"}, "spec")
    {'lam': 'log'}
    """
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            name, eq, link = str(item).partition("=")
            if not eq:
                raise SpecError(f"{origin} must be PARAM=LINK (got {brief(repr(item))})")
            pairs.append((name, link))
    out: dict[str, str] = {}
    for name, link in pairs:
        if not isinstance(link, str):
            raise SpecError(f'{origin}: the link of {brief(repr(name))} must be a string such as "log"')
        name, link = strip_text(str(name)), strip_text(link)
        if name in out:
            raise SpecError(f"{origin}: parameter '{brief(name)}' is linked twice")
        out[name] = link
    return out


def check_links(links: Mapping[str, str], parameters, depends_on_support, origin: str) -> None:
    """Check that each linked name is a scalar parameter whose domain the link maps from.

    ``parameters`` are the model's :class:`~symmle.model.spec.Quantity` objects;
    ``depends_on_support(symbol)`` says whether a parameter sets the support
    (such a parameter cannot vary from one observation to the next).

    Raises
    ------
    SpecError
        With one line naming the problem.
    """
    if len(links) > 1:
        raise SpecError(
            f"{origin}: one parameter may be linked to the linear predictor (got {', '.join(links)})"
        )
    known = {q.name: q for q in parameters}
    for name, link in links.items():
        if name not in known:
            raise SpecError(
                f"{origin}: '{brief(name)}' is not a parameter of the model; its parameters: "
                f"{', '.join(known) or '(none)'}"
            )
        if link not in LINKS:
            raise SpecError(f"{origin}: unknown link '{brief(link)}'; use one of {', '.join(LINKS)}")
        q = known[name]
        if q.is_matrix:
            raise SpecError(f"{origin}: '{name}' is a {q.domain}; only a scalar parameter can be linked")
        if q.domain not in LINKS[link].domains:
            fits = [k for k, v in LINKS.items() if q.domain in v.domains]
            raise SpecError(
                f"{origin}: the {link} link applies to {', '.join(LINKS[link].domains)} parameters, and "
                f"'{name}' is {q.domain}; links for it: {', '.join(fits) or '(none)'}"
            )
        if depends_on_support(q.symbol):
            raise SpecError(
                f"{origin}: '{name}' sets the support of the model, so it cannot vary with the covariates"
            )
