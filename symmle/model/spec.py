"""Model specifications: the symbol table, domains, loading and validation.

A :class:`Model` is immutable.  It owns the one symbol table of a model: the
variable, the parameters and the constants are created here, once, with the
SymPy assumptions their domains imply, and every later stage uses these very
objects.  (A ``mu`` created elsewhere with other assumptions would be a
different symbol, and a derivative with respect to it silently zero.)

Expression text is untrusted and is only ever read by
:func:`symmle.model.parse.parse_expression`.
"""

from __future__ import annotations

import keyword
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import sympy as sp

from symmle.model import catalogue
from symmle.base._runtime import EstimateWarning, in_domain  # one definition, shared with generated modules
from symmle.base.errors import SpecError
from symmle.base.numeric import to_function
from symmle.model.parse import CONSTANTS, FUNCTIONS, parse_expression, parse_number
from symmle.base.quadrature import integrate_support, interior_points, probe_points, sum_support

__all__ = [
    "DOMAINS",
    "Quantity",
    "Sampler",
    "Model",
    "model_from_dict",
    "inline_model",
    "load_model",
    "SAMPLER_METHODS",
]

#: Domain name -> (SymPy assumptions, representative interior point).
DOMAINS: dict[str, tuple[dict[str, bool], float]] = {
    "real": ({"real": True}, 0.3),
    "positive": ({"positive": True}, 1.7),
    "nonnegative": ({"nonnegative": True}, 1.7),
    "unit": ({"positive": True}, 0.35),  # (0, 1): the upper bound is checked numerically
    "integer": ({"integer": True}, 3.0),
    "positive_integer": ({"integer": True, "positive": True}, 6.0),
}

#: numpy.random.Generator methods a ``[sampler]`` may name.
SAMPLER_METHODS = frozenset(
    "normal standard_normal gamma standard_gamma beta exponential standard_exponential poisson "
    "binomial negative_binomial geometric lognormal weibull rayleigh wald laplace pareto uniform "
    "chisquare logistic gumbel vonmises standard_cauchy standard_t f logseries hypergeometric "
    "zipf power triangular noncentral_chisquare".split()
)

# Names used by symmle itself in derived expressions.
_RESERVED = {"N", "i", "x_i", "I", "S", "Q", "O", "nan", "zoo", "true", "false"}
_TOP_KEYS = {"name", "title", "variable", "discrete", "support", "density", "parameters", "constants", "sampler"}


@dataclass(frozen=True)
class Quantity:
    """A parameter (estimated) or constant (known) of a model.

    Attributes
    ----------
    name : str
        The name declared in the spec.
    domain : str
        One of :data:`DOMAINS`: ``real``, ``positive``, ``nonnegative``,
        ``unit``, ``integer`` or ``positive_integer``.
    symbol : sympy.Symbol
        The model's one Symbol of this name, with the assumptions of its
        domain (``positive=True``...).
    value : sympy.Expr, optional
        The known value of a constant, if given.

    Examples
    --------
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

    Made by :func:`load_model`, :func:`inline_model` or
    :func:`model_from_dict`; every later stage uses its symbols.

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

    Examples
    --------
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
            step = 0.1 if q.domain == "unit" else 0.5 if q.domain in ("positive", "nonnegative") else 1.0
            out[q.symbol] = q.point() + k * step
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
        new = []
        for name in values:
            if name not in known:
                raise SpecError(f"unknown constant '{name}'; declared constants: {_names(self.constants)}")
        for q in self.constants:
            if q.name in values:
                raw = values[q.name]
                value = parse_number(raw, what=f"constant {q.name}") if isinstance(raw, str) else sp.nsimplify(raw)
                _check_value(q.name, q.domain, value)
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


def _check_value(name: str, domain: str, value: sp.Expr) -> None:
    if not value.is_number or not in_domain(float(value), domain):
        raise SpecError(f"value {value} of '{name}' is not in its domain '{domain}'")


def _check_label(text: str, key: str, origin: str, limit: int) -> None:
    # defence in depth: every output escapes names and titles, and they are one line of printable text
    bad = next((k for k, ch in enumerate(text) if not ch.isprintable()), None)
    if bad is not None:
        raise SpecError(f"{origin}: '{key}' must be one line of printable text; "
                        f"it has {text[bad]!r} at position {bad + 1}")
    if len(text) > limit:
        raise SpecError(f"{origin}: '{key}' has {len(text)} characters; at most {limit} are allowed")


def _check_name(name: Any, role: str, taken: dict[str, str]) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise SpecError(f"{role} name {name!r} is not a valid identifier")
    if name in FUNCTIONS or name in CONSTANTS or name in _RESERVED or (name[0] == "T" and name[1:].isdigit()):
        raise SpecError(f"{role} name '{name}' is reserved (a function, constant or symmle's own symbol)")
    if name in taken:
        raise SpecError(f"{role} name '{name}' is already declared as the {taken[name]}")
    taken[name] = role
    return name


def _quantities(table: Any, role: str, taken: dict[str, str]) -> list[tuple[str, str, str | None]]:
    if table is None:
        return []
    if not isinstance(table, Mapping):
        raise SpecError(f"[{role}s] must be a table of name = \"domain\"")
    out = []
    for name, spec in table.items():
        _check_name(name, role, taken)
        if not isinstance(spec, str):
            raise SpecError(f"domain of {role} '{name}' must be a string, one of {', '.join(DOMAINS)}")
        domain, _, value = spec.partition("=")
        domain = domain.strip()
        if domain not in DOMAINS:
            raise SpecError(f"unknown domain '{domain}' for {role} '{name}'; use one of {', '.join(DOMAINS)}")
        out.append((name, domain, value.strip() or None))
    return out


def model_from_dict(data: Mapping[str, Any], *, origin: str = "spec", validate: bool = True) -> Model:
    """Build and validate a :class:`Model` from a parsed spec table.

    Parameters
    ----------
    data : mapping
        The spec as a table (a parsed TOML file; see the README's "Spec
        files"): ``variable``, ``support``, ``density`` and ``parameters``
        are required; ``name``, ``title``, ``discrete``, ``constants`` and
        ``sampler`` are optional.
    origin : str, optional
        Where the spec comes from, at the start of error messages.
    validate : bool, optional
        Check numerically that the density is a density (:func:`check_density`).

    Returns
    -------
    Model

    Raises
    ------
    SpecError
        On any problem with the spec, with a one-line message.

    Examples
    --------
    >>> spec = {"variable": "x", "support": ["0", "oo"], "density": "lam*exp(-lam*x)",
    ...         "parameters": {"lam": "positive"}}
    >>> model_from_dict(spec).density
    lam*exp(-lam*x)
    >>> model_from_dict({"variable": "x", "density": "lam*exp(-lam*x)"}, origin="my.toml")
    Traceback (most recent call last):
        ...
    symmle.SpecError: my.toml: missing 'support'
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"{origin}: a spec must be a table")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SpecError(f"{origin}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("variable", "support", "density", "parameters"):
        if key not in data:
            raise SpecError(f"{origin}: missing '{key}'")
    name = data.get("name", "model")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{origin}: 'name' must be a non-empty string")
    _check_label(name, "name", origin, 100)
    title = str(data.get("title", name))
    _check_label(title, "title", origin, 300)
    taken: dict[str, str] = {}
    var_name = _check_name(data["variable"], "variable", taken)
    params = _quantities(data["parameters"], "parameter", taken)
    consts = _quantities(data.get("constants"), "constant", taken)
    if not params:
        raise SpecError(f"{origin}: no parameter to estimate")
    discrete = data.get("discrete", False)
    if not isinstance(discrete, bool):
        raise SpecError(f"{origin}: 'discrete' must be true or false")

    symbols = {}
    for qname, domain, _ in (*params, *consts):
        symbols[qname] = sp.Symbol(qname, **DOMAINS[domain][0])
    support_text = data["support"]
    if not (isinstance(support_text, (list, tuple)) and len(support_text) == 2 and all(isinstance(s, (str, int, float)) for s in support_text)):
        raise SpecError(f"{origin}: support must be two expressions [lo, hi]")
    support_text = [str(s) for s in support_text]
    lo, hi = (parse_expression(s, symbols, what=f"support {end}") for s, end in zip(support_text, ("lower end", "upper end")))
    if lo in (sp.oo, sp.zoo) or hi in (-sp.oo, sp.zoo) or lo == hi:
        raise SpecError(f"{origin}: support [{support_text[0]}, {support_text[1]}] is empty or reversed")

    assumptions: dict[str, bool] = {"integer": True} if discrete else {"real": True}
    if lo.is_nonnegative:
        assumptions["nonnegative" if discrete else "positive"] = True
    variable = sp.Symbol(var_name, **assumptions)
    names = dict(symbols)
    names[var_name] = variable
    density_text = data["density"]
    if not isinstance(density_text, str):
        raise SpecError(f"{origin}: density must be a string")
    density = parse_expression(density_text, names, what="density")

    const_q = []
    for qname, domain, value_text in consts:
        value = parse_number(value_text, what=f"constant {qname}") if value_text else None
        if value is not None:
            _check_value(qname, domain, value)
        const_q.append(Quantity(qname, domain, symbols[qname], value))
    model = Model(
        name=name,
        title=title,
        variable=variable,
        discrete=discrete,
        support=(lo, hi),
        density=density,
        parameters=tuple(Quantity(n, d, symbols[n]) for n, d, _ in params),
        constants=tuple(const_q),
        sampler=_sampler(data.get("sampler"), symbols, variable, origin),
        source={"density": density_text, "support": support_text},
    )
    unused = [q.name for q in model.parameters if q.symbol not in density.free_symbols | lo.free_symbols | hi.free_symbols]
    if unused:
        raise SpecError(f"{origin}: parameter '{unused[0]}' appears neither in the density nor in the support")
    if validate:
        check_density(model)
    return model


def _sampler(table: Any, symbols: Mapping[str, sp.Symbol], variable: sp.Symbol, origin: str) -> Sampler | None:
    if table is None:
        return None
    if not isinstance(table, Mapping) or set(table) - {"method", "args", "transform"}:
        raise SpecError(f"{origin}: [sampler] takes only method, args and transform")
    method = table.get("method")
    if method not in SAMPLER_METHODS:
        raise SpecError(f"{origin}: sampler method {method!r} is not an allowed numpy.random.Generator method")
    args_table = table.get("args", {})
    if not isinstance(args_table, Mapping):
        raise SpecError(f"{origin}: sampler args must be a table")
    args = []
    for key, text in args_table.items():
        if not isinstance(key, str) or not key.isidentifier() or not isinstance(text, (str, int, float)):
            raise SpecError(f"{origin}: sampler argument {key!r} must be name = \"expression\"")
        args.append((key, parse_expression(str(text), symbols, what=f"sampler argument {key}")))
    transform = table.get("transform")
    if transform is not None:
        if not isinstance(transform, str):
            raise SpecError(f"{origin}: sampler transform must be a string")
        draw = sp.Symbol(variable.name, real=True)
        return Sampler(method, tuple(args), parse_expression(transform, {**symbols, variable.name: draw}, what="sampler transform"), draw)
    return Sampler(method, tuple(args))


def inline_model(
    pdf: str,
    var: str,
    support: str,
    params: list[str],
    consts: list[str] = (),  # type: ignore[assignment]
    *,
    discrete: bool = False,
    validate: bool = True,
) -> Model:
    """Build a model from the inline command-line form.

    Parameters
    ----------
    pdf : str
        Density text, e.g. ``"lam*exp(-lam*x)"``.
    var : str
        Variable name.
    support : str
        ``"LO,HI"``, e.g. ``"0,oo"``.
    params : list of str
        ``NAME:DOMAIN`` items.
    consts : list of str
        ``NAME:DOMAIN`` or ``NAME:DOMAIN=VALUE`` items.

    Examples
    --------
    >>> m = inline_model("lam*exp(-lam*x)", "x", "0,oo", ["lam:positive"])
    >>> m.parameters[0].symbol.is_positive
    True
    """
    parts = [p.strip() for p in support.split(",")]
    if len(parts) != 2 or not all(parts):
        raise SpecError(f"--support must be LO,HI (got {support!r})")

    def table(items: list[str], role: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in items:
            name, sep, rest = item.partition(":")
            if not sep or not name.strip() or not rest.strip():
                raise SpecError(f"--{role} must be NAME:DOMAIN (got {item!r})")
            if name.strip() in out:
                raise SpecError(f"{role} name '{name.strip()}' is declared twice")
            out[name.strip()] = rest.strip()
        return out

    data = {
        "name": "inline",
        "title": "Inline model",
        "variable": var,
        "discrete": discrete,
        "support": parts,
        "density": pdf,
        "parameters": table(list(params), "param"),
        "constants": table(list(consts), "const"),
    }
    return model_from_dict(data, origin="inline model", validate=validate)


def load_model(ref: str | Path | Model, *, validate: bool = True) -> Model:
    """Resolve a catalogue name, a spec file path, or a :class:`Model`.

    Parameters
    ----------
    ref : str, Path or Model
        A catalogue family (see :func:`symmle.model.catalogue.family_names`), the
        path of a TOML spec file, or a Model (returned as it is).
    validate : bool, optional
        Check numerically that the density is a density.

    Returns
    -------
    Model

    Raises
    ------
    SpecError
        If ``ref`` is neither a family nor a file, or the spec is invalid.

    Examples
    --------
    >>> load_model("exponential").parameters[0].name
    'lam'
    """
    if isinstance(ref, Model):
        return ref
    text = str(ref)
    path = catalogue.family_path(text)
    if path is None:
        candidate = Path(text)
        if candidate.suffix == ".toml" or candidate.is_file():
            path = candidate
    if path is None:
        raise SpecError(f"unknown model '{text}': not a catalogue family (see 'symmle list') nor a spec file")
    data = catalogue.read_spec_file(path)
    return model_from_dict(data, origin=path.name, validate=validate)


def density_function(model: Model, point: Mapping[sp.Symbol, float]):
    """The density at ``point`` as a NumPy function of the variable.

    Where the direct form over- or underflows (``gamma(k + r)/factorial(k)``
    at large ``k``), the value comes from the expanded log-density instead.

    Parameters
    ----------
    model : Model
    point : mapping of Symbol to float
        Values of every parameter and constant (e.g. :meth:`Model.point`).

    Returns
    -------
    callable
        ``f(x)``: a float for a scalar ``x``, an array of the shape of ``x``
        otherwise.  Its attribute ``f.log(x)`` is the log-density (real,
        for arrays), and ``f.rounding(x)`` the relative rounding error to
        expect in ``f(x)``: ``eps`` times the size of the terms that cancel
        in ``log f`` (``loggamma(n + 1) - loggamma(x + 1) - ...`` at large ``n``).

    Examples
    --------
    >>> m = load_model("exponential")
    >>> f = density_function(m, {m.parameters[0].symbol: 2.0})
    >>> round(f(0.5), 12)   # 2 exp(-1)
    0.735758882343
    >>> f(np.array([0.0, 1.0, 2.0])).shape
    (3,)
    """
    f_expr = model.density.subs(point)
    direct = to_function([model.variable], f_expr)
    log_expr = sp.expand_log(sp.log(f_expr), force=True)
    via_log = to_function([model.variable], log_expr)

    def f(x):
        with np.errstate(all="ignore"):
            x = np.asarray(x, dtype=float)
            # a real array even for a scalar x (0-d products give NumPy scalars)
            value = np.array(np.broadcast_to(np.asarray(direct(x), dtype=float), x.shape), dtype=float)
            # overflow (inf, nan) or underflow of a factor (0.35**3.5e6 * binomial(1e7, 3.5e6) = 0)
            bad = ~np.isfinite(value) | (value == 0)
            if np.any(bad):
                alt = np.exp(np.real(np.asarray(via_log(x[bad]), dtype=complex)) * np.ones_like(x[bad]))
                value[bad] = alt
            return value if value.ndim else float(value)

    def log_f(x):
        with np.errstate(all="ignore"):
            x = np.asarray(x, dtype=float)
            return np.real(np.asarray(via_log(x), dtype=complex)) * np.ones_like(x)

    size = []

    def rounding(x):
        if not size:  # compiled on first use: only a check that failed needs it
            t = sp.Dummy("t", real=True)  # not an integer: SymPy would fold loggamma(k + 1) back into a log
            logged = sp.expand_log(sp.log(f_expr.subs(model.variable, t).rewrite(sp.gamma)), force=True)
            size.append(to_function([t], sp.Add(*(sp.Abs(term) for term in sp.Add.make_args(logged)))))
        with np.errstate(all="ignore"):
            x = np.asarray(x, dtype=float)
            s = np.abs(np.real(np.asarray(size[0](x), dtype=complex))) * np.ones_like(x)
        return np.finfo(float).eps * np.where(np.isfinite(s), np.maximum(s, 1.0), 1.0)

    # the log-density locates the bulk of a sum where the density itself underflows
    f.log = log_f
    f.rounding = rounding
    return f


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def check_density(model: Model) -> None:
    """Verify numerically that the density is a density at a parameter point.

    Checks that it is finite and non-negative inside the support and that it
    integrates (or sums) to one, at the point of :meth:`Model.point`.

    Parameters
    ----------
    model : Model

    Raises
    ------
    SpecError
        Naming the failed property and the point used.

    Examples
    --------
    >>> check_density(load_model("poisson"))   # passes: returns None
    >>> bad = inline_model("exp(-lam*x)", "x", "0,oo", ["lam:positive"], validate=False)
    >>> check_density(bad)   # the factor lam is missing: 1/1.7
    Traceback (most recent call last):
        ...
    symmle.SpecError: density does not integrate to 1 over its support: got 0.588235 at lam=1.7
    """
    point = model.point()
    where = ", ".join(f"{s}={v:g}" for s, v in point.items())
    try:
        lo, hi = model.support_at(point)
    except (TypeError, ValueError):
        raise SpecError("support does not evaluate to numbers at the check point " + where) from None
    if not lo < hi:
        raise SpecError(f"support [{lo:g}, {hi:g}] is empty or reversed at {where}")
    if model.discrete and not ((math.isinf(lo) or float(lo).is_integer()) and (math.isinf(hi) or float(hi).is_integer())):
        raise SpecError(f"support ends of a discrete model must be integers (got [{lo:g}, {hi:g}] at {where})")
    try:
        f = density_function(model, point)
    except Exception as exc:  # lambdify of an unsupported construct
        raise SpecError(f"density cannot be evaluated numerically: {_one_line(exc)}") from None
    if model.discrete:
        if math.isinf(lo):
            raise SpecError("a discrete support must have a finite lower end")
        probe = np.arange(lo, min(hi, lo + 200) + 1)
        if math.isfinite(hi) and hi > lo + 200:  # and across a long support, up to its top
            probe = np.union1d(probe, probe_points(int(lo), int(hi)))
    else:
        probe = np.asarray(interior_points(lo, hi, 41))
    with np.errstate(all="ignore"):
        raw = np.asarray(to_function([model.variable], model.density.subs(point))(probe)) * np.ones(probe.shape)
    complex_at = np.flatnonzero(np.iscomplex(raw)) if np.iscomplexobj(raw) else ()
    if len(complex_at):
        k = complex_at[0]
        raise SpecError(f"density is not real: {raw[k]:.6g} at {model.variable}={probe[k]:g} ({where})")
    values = np.asarray(f(probe), dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < -1e-12))
    if bad.size:
        k = bad[0]
        kind = "negative" if np.isfinite(values[k]) else "not finite"
        raise SpecError(f"density is {kind} at {model.variable}={probe[k]:g} ({where})")
    if model.discrete:
        total, ok = sum_support(f, lo, hi, log_weight=f.log)
        if not ok and math.isfinite(hi):
            # a finite sum that could not be bounded is unverified, not wrong
            warnings.warn(f"the pmf could not be checked to sum to 1 over {model.variable}={lo:g}..{hi:g} "
                          f"({where}): its sum over so wide a support did not settle", EstimateWarning, stacklevel=2)
            return
        if not ok:
            raise SpecError(f"density does not sum to 1 ({where}): the series does not converge")
    else:
        total, _ = integrate_support(f, lo, hi)
    if not abs(total - 1.0) < 1e-6 and model.discrete:
        # the terms may be computed to fewer digits than that (log f cancelling terms of size 1e10):
        # the sum is then only as good as its terms
        precision, _ = sum_support(lambda k: f(k) * f.rounding(k), lo, hi, log_weight=f.log)
        if abs(total - 1.0) < 8 * precision:
            return
    if not abs(total - 1.0) < 1e-6:
        verb = "sum" if model.discrete else "integrate"
        digits = 6 if abs(total - 1.0) > 1e-5 else 12  # never "got 1"
        raise SpecError(f"density does not {verb} to 1 over its support: got {total:.{digits}g} at {where}")
