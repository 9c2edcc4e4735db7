"""Building a :class:`~symmle.model.spec.Model` from a spec table, the inline flags or a file.

This is where a spec is validated: its keys, the names it declares (valid
identifiers, not reserved, declared once), its names and titles (one line of
printable text), the domains of its quantities, its support, its density and
its ``[sampler]`` table.  A vector model (``dimension = "D"``) gets its
MatrixSymbols here, and is refused what it cannot have (a support that is not
a named set of vectors, a density that is not a scalar, a sampler transform);
a scalar model is refused the matrix domains.  Each problem is a :class:`~symmle.base.errors.SpecError`
with a one-line message.  A model is then checked numerically to be a density
(:func:`symmle.model.density.check_density`).

Expression text is untrusted and is only ever read by
:func:`symmle.model.parse.parse_expression`.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model import catalogue
from symmle.model.density import check_density
from symmle.model.domains import (
    DOMAINS,
    MATRIX_DOMAINS,
    VECTOR_SUPPORTS,
    all_domains,
    check_value,
    matrix_symbol,
)
from symmle.model.latex_names import latex_name_error
from symmle.model.matrices import is_matrix, shape_text
from symmle.model.parse import CONSTANTS, FUNCTIONS, brief, parse_expression, parse_number, strip_text
from symmle.model.sampler_table import sampler_table, vector_sampler_table
from symmle.model.spec import Model, Quantity

__all__ = ["model_from_dict", "inline_model", "load_model"]

#: Longest name of a variable, parameter or constant.
MAX_NAME = 64
# Names that symmle itself gives a meaning in derived expressions, JSON strings and generated code:
# a declared quantity of that name would be read as it.
_RESERVED = {
    "N": "the sample size",
    "i": "the index of the observations",
    "x_i": "an observation",
    **dict.fromkeys(
        ("I", "S", "Q", "O", "nan", "zoo", "true", "false"), "a name SymPy gives its own meaning"
    ),
}
# Internal symbols of the derivation and of the compiled estimators (symmle/numbers/compiled.py):
# statistics T1, pilots c0 and r0, centred sums U0_2, Q0_1 and D0_T1.  A constant named c0 would be
# overwritten by a pilot in the generated code, silently.
_INTERNAL = re.compile(r"(?:[Tcr]\d+|[UQ]\d+_\d+|D\d+_T\d+)")
# Positional arguments of the functions that take parameters and constants by keyword: estimate(x,
# **constants) and log_likelihood(x, **values) of a generated module and of CompiledModel (with
# estimate_rows(rows, ...) and covariance(x, estimates, ...)); a quantity of that name could not be passed.
_ARGUMENTS = {
    "x": "the data argument of fit and of the generated module's estimate(x, **constants)",
    "rows": "the data argument of estimate_rows(rows, **constants)",
    "estimates": "an argument of covariance(x, estimates, **constants)",
    "self": "the instance argument of the compiled model's methods",
}
_TOP_KEYS = {
    "name",
    "title",
    "variable",
    "discrete",
    "support",
    "density",
    "parameters",
    "constants",
    "sampler",
    "latex",
    "dimension",
    "link",
    "mixture",
}


def _check_label(text: str, key: str, origin: str, limit: int) -> None:
    # defence in depth: every output escapes names and titles, and they are one line of printable text
    bad = next((k for k, ch in enumerate(text) if not ch.isprintable()), None)
    if bad is not None:
        raise SpecError(
            f"{origin}: '{key}' must be one line of printable text; "
            f"it has {text[bad]!r} at position {bad + 1}"
        )
    if len(text) > limit:
        raise SpecError(f"{origin}: '{key}' has {len(text)} characters; at most {limit} are allowed")


def _reserved(name: str, role: str) -> str | None:
    """Why ``name`` may not name a quantity of ``role``, or ``None``."""
    if keyword.iskeyword(name):
        return "it is a Python keyword" + (" (write lam)" if name == "lambda" else "")
    if name.startswith("_"):
        return "names starting with '_' are symmle's own"
    if name in FUNCTIONS:
        return f"it is the function {name}()"
    if name in CONSTANTS:
        return f"it is the constant {name}"
    if name in _RESERVED:
        return f"it is {_RESERVED[name]}"
    if _INTERNAL.fullmatch(name):
        return "it is the name of one of symmle's own symbols (statistics T1, T2, ...; sums in compiled code)"
    if role != "variable" and name in _ARGUMENTS:
        return f"it is {_ARGUMENTS[name]}"
    return None


def _check_name(name: Any, role: str, taken: dict[str, tuple[str, str]]) -> str:
    """Check a declared name; return it as Python reads it (NFKC-normalised: 'ｌａｍ' is 'lam').

    ``taken`` maps the names declared so far (as read) to their role and spelling.
    """
    if not isinstance(name, str) or not name.isidentifier():
        hidden = next((c for c in name if not c.isprintable()), None) if isinstance(name, str) else None
        detail = f" (it holds the invisible character U+{ord(hidden):04X})" if hidden else ""
        raise SpecError(f"{role} name {brief(repr(name))} is not a valid identifier{detail}")
    if len(name) > MAX_NAME:
        raise SpecError(
            f"{role} name {brief(repr(name))} has {len(name)} characters; at most {MAX_NAME} are allowed"
        )
    read = unicodedata.normalize("NFKC", name)
    as_read = "" if read == name else f" (read by Python as '{read}')"
    why = _reserved(read, role)
    if why is not None:
        raise SpecError(f"{role} name '{name}'{as_read} is reserved: {why}")
    if read in taken:
        other_role, spelled = taken[read]
        if spelled == name:
            raise SpecError(f"{role} name '{name}' is already declared as the {other_role}")
        raise SpecError(
            f"{role} name '{name}' collides with the {other_role} '{spelled}': Python reads both as "
            f"'{read}' (Unicode NFKC normalisation)"
        )
    taken[read] = (role, name)
    return read


def _quantities(
    table: Any, role: str, taken: dict[str, tuple[str, str]]
) -> list[tuple[str, str, str | None]]:
    if table is None:
        return []
    if not isinstance(table, Mapping):
        raise SpecError(f'[{role}s] must be a table of name = "domain"')
    out = []
    for declared, spec in table.items():
        name = _check_name(declared, role, taken)
        if not isinstance(spec, str):
            raise SpecError(f"domain of {role} '{name}' must be a string, one of {', '.join(all_domains())}")
        domain, _, value = spec.partition("=")
        domain = domain.strip()
        if domain not in DOMAINS and domain not in MATRIX_DOMAINS:
            raise SpecError(
                f"unknown domain '{brief(domain)}' for {role} '{name}'; use one of {', '.join(all_domains())}"
            )
        out.append((name, domain, value.strip() or None))
    return out


def model_from_dict(data: Mapping[str, Any], *, origin: str = "spec", validate: bool = True) -> Model:
    """Build and validate a :class:`Model` from a parsed spec table.

    Parameters
    ----------
    data : mapping
        The spec as a table (a parsed TOML file; see the README's "Spec
        files"): ``variable``, ``support``, ``density`` and ``parameters``
        are required; ``name``, ``title``, ``discrete``, ``constants``,
        ``sampler``, ``latex`` and ``dimension`` are optional.  With
        ``dimension = "D"`` the model is a vector model: its variable is a
        ``D x 1`` vector, its support one of the named sets of
        :data:`~symmle.model.domains.VECTOR_SUPPORTS` (``"real"`` if left
        out), ``discrete`` follows from that set, and its quantities may take
        the matrix domains (``vector``, ``positive_vector``, ``simplex``, ``spd``).
    origin : str, optional
        Where the spec comes from, at the start of error messages.
    validate : bool, optional
        Check numerically that the density is a density
        (:func:`~symmle.model.density.check_density`).

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
        if key not in data and not (key == "support" and "dimension" in data):
            raise SpecError(f"{origin}: missing '{key}'")
    name = data.get("name", "model")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{origin}: 'name' must be a non-empty string")
    _check_label(name, "name", origin, 100)
    title = str(data.get("title", name))
    _check_label(title, "title", origin, 300)
    taken: dict[str, tuple[str, str]] = {}
    var_name = _check_name(data["variable"], "variable", taken)
    dimension = None
    if "dimension" in data:
        if isinstance(data["dimension"], (int, float)):
            raise SpecError(
                f'{origin}: dimension must be a name such as "D" (its value comes from the data), '
                f"not the number {brief(data['dimension'])}"
            )
        dimension = sp.Symbol(_check_name(data["dimension"], "dimension", taken), integer=True, positive=True)
    params = _quantities(data["parameters"], "parameter", taken)
    consts = _quantities(data.get("constants"), "constant", taken)
    if not params:
        raise SpecError(f"{origin}: no parameter to estimate")
    discrete = data.get("discrete", False)
    if not isinstance(discrete, bool):
        raise SpecError(f"{origin}: 'discrete' must be true or false")
    _check_matrix_domains(params, consts, dimension, origin)

    symbols: dict[str, sp.Basic] = {}
    for qname, domain, _ in (*params, *consts):
        if domain in MATRIX_DOMAINS:
            symbols[qname] = matrix_symbol(qname, domain, dimension)
        else:
            symbols[qname] = sp.Symbol(qname, **DOMAINS[domain][0])
    if dimension is not None:
        if "link" in data:
            raise SpecError(f"{origin}: a vector model cannot take a [link] (its parameters are vectors)")
        if "mixture" in data:
            raise SpecError(f"{origin}: [mixture]: mixtures of vector families are not supported yet")
        symbols[dimension.name] = dimension
        return _vector_model(
            data, origin, name, title, var_name, dimension, params, consts, symbols, validate
        )
    support_text = data["support"]
    if isinstance(support_text, str) and strip_text(support_text) in VECTOR_SUPPORTS:
        raise SpecError(
            f"{origin}: support '{strip_text(support_text)}' is a set of vectors: "
            'declare the dimension of a vector model (dimension = "D", or --dim D)'
        )
    if not (
        isinstance(support_text, (list, tuple))
        and len(support_text) == 2
        and all(isinstance(s, (str, int, float)) for s in support_text)
    ):
        raise SpecError(f"{origin}: support must be two expressions [lo, hi]")
    support_text = [str(s) for s in support_text]
    lo, hi = (
        parse_expression(s, symbols, what=f"support {end}")
        for s, end in zip(support_text, ("lower end", "upper end"))
    )
    if lo in (sp.oo, sp.zoo) or hi in (-sp.oo, sp.zoo) or lo == hi:
        shown = ", ".join(brief(t) for t in support_text)
        raise SpecError(f"{origin}: support [{shown}] is empty or reversed")

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
            check_value(qname, domain, value)
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
        sampler=sampler_table(data.get("sampler"), symbols, variable, origin),
        source={"density": density_text, "support": support_text},
        latex=_latex_names(data.get("latex"), names, origin),
    )
    used = density.free_symbols | lo.free_symbols | hi.free_symbols
    unused = [q.name for q in model.parameters if q.symbol not in used]
    if unused:
        raise SpecError(
            f"{origin}: parameter '{unused[0]}' appears neither in the density nor in the support"
        )
    if "link" in data:
        from symmle.model.link import parse_links

        if not isinstance(data["link"], Mapping):
            raise SpecError(f'{origin}: [link] must be a table of PARAM = "LINK"')
        model = model.with_link(parse_links(data["link"], f"{origin}: [link]"), origin)
    if "mixture" in data:
        from symmle.model.mixture import parse_mixture_table

        model = model.with_mixture(parse_mixture_table(data["mixture"], origin), f"{origin}: [mixture]")
    if validate:
        check_density(model)
    return model


def _check_matrix_domains(params: list, consts: list, dimension: sp.Symbol | None, origin: str) -> None:
    """A matrix domain needs a vector model; a matrix constant's value is given at fit or check time."""
    for role, items in (("parameter", params), ("constant", consts)):
        for qname, domain, value in items:
            if domain not in MATRIX_DOMAINS:
                continue
            if dimension is None:
                raise SpecError(
                    f"{origin}: {role} '{qname}' has domain '{domain}' ({MATRIX_DOMAINS[domain].meaning}), "
                    'which needs a vector model: declare its dimension (dimension = "D", or --dim D)'
                )
            if value is not None:
                raise SpecError(
                    f"{origin}: constant '{qname}' of domain '{domain}' takes its value at fit or check "
                    f"time (e.g. --const {qname}=[...]), not in the spec"
                )


def _vector_model(
    data: Mapping[str, Any],
    origin: str,
    name: str,
    title: str,
    var_name: str,
    dimension: sp.Symbol,
    params: list,
    consts: list,
    symbols: dict[str, sp.Basic],
    validate: bool,
) -> Model:
    """The rest of :func:`model_from_dict` for a vector model (a ``dimension`` is declared)."""
    support_text = data.get("support", "real")
    support_set = strip_text(support_text) if isinstance(support_text, str) else None
    if support_set not in VECTOR_SUPPORTS:
        raise SpecError(
            f"{origin}: the support of a vector model is one of {', '.join(VECTOR_SUPPORTS)} "
            f"(got {brief(repr(support_text))})"
        )
    info = VECTOR_SUPPORTS[support_set]
    if "discrete" in data and data["discrete"] != info.discrete:
        kind = "a probability mass function" if info.discrete else "a continuous density"
        raise SpecError(
            f"{origin}: on the support '{support_set}' the density is {kind}: "
            f"discrete must be {str(info.discrete).lower()} (or left out)"
        )
    variable = sp.MatrixSymbol(var_name, dimension, 1)
    names = {**symbols, var_name: variable}
    density_text = data["density"]
    if not isinstance(density_text, str):
        raise SpecError(f"{origin}: density must be a string")
    density = parse_expression(density_text, names, what="density")
    if is_matrix(density):
        if density.shape != (1, 1):
            raise SpecError(f"density: must be a scalar, got a {shape_text(density)} matrix")
        density = sp.Trace(density)
    if variable not in density.free_symbols:
        raise SpecError(f"{origin}: the density does not depend on the variable '{var_name}'")
    model = Model(
        name=name,
        title=title,
        variable=variable,
        discrete=info.discrete,
        support=info.bounds,
        density=density,
        parameters=tuple(Quantity(n, d, symbols[n]) for n, d, _ in params),
        constants=tuple(Quantity(n, d, symbols[n]) for n, d, _ in consts),
        sampler=vector_sampler_table(data.get("sampler"), symbols, dimension, origin),
        source={"density": density_text, "support": support_set},
        latex=_latex_names(data.get("latex"), names, origin),
        dimension=dimension,
        support_set=support_set,
    )
    unused = [q.name for q in model.parameters if q.symbol not in density.free_symbols]
    if unused:
        raise SpecError(f"{origin}: parameter '{unused[0]}' does not appear in the density")
    if validate:
        check_density(model)
    return model


def _latex_names(table: Any, names: Mapping[str, sp.Symbol], origin: str) -> tuple[tuple[str, str], ...]:
    """The ``[latex]`` table: declared names to distinct LaTeX names of the safe subset."""
    if table is None:
        return ()
    if not isinstance(table, Mapping):
        raise SpecError(f'{origin}: [latex] must be a table of name = "LaTeX"')
    out: dict[str, str] = {}
    for name, text in table.items():
        if name not in names:
            raise SpecError(f"{origin}: [latex] names '{name}', which is not a declared name")
        fault = latex_name_error(text)
        if fault is not None:
            raise SpecError(f"{origin}: [latex] name of '{name}' is refused: {fault}")
        twin = next((other for other, t in out.items() if t == text), None)
        if twin is not None:
            raise SpecError(f"{origin}: [latex] gives '{name}' and '{twin}' the same name {text!r}")
        out[name] = text
    return tuple(out.items())


def inline_model(
    pdf: str,
    var: str,
    support: str | None,
    params: list[str],
    consts: list[str] = (),  # type: ignore[assignment]
    *,
    discrete: bool = False,
    validate: bool = True,
    title: str = "Inline model",
    dimension: str | None = None,
) -> Model:
    """Build a model from the inline command-line form.

    Parameters
    ----------
    pdf : str
        Density text, e.g. ``"lam*exp(-lam*x)"``.
    var : str
        Variable name.
    support : str or None
        ``"LO,HI"``, e.g. ``"0,oo"``; for a vector model the name of its set
        (``real``, ``simplex``, ``onehot``, ``counts``), ``None`` or empty
        meaning ``real``.
    params : list of str
        ``NAME:DOMAIN`` items.
    consts : list of str
        ``NAME:DOMAIN`` or ``NAME:DOMAIN=VALUE`` items.
    discrete : bool, optional
        The density is a probability mass function.
    validate : bool, optional
        Check numerically that the density is a density.
    title : str, optional
        The title of the documents (``--title``): untrusted, checked like a
        spec's ``title`` (one line of printable text, at most 300 characters).
    dimension : str, optional
        The name of the dimension of a vector model (``--dim D``); the
        spec key ``dimension``.  ``discrete`` then follows from the support
        (``--discrete`` with a continuous set is refused).

    Examples
    --------
    >>> m = inline_model("lam*exp(-lam*x)", "x", "0,oo", ["lam:positive"])
    >>> m.parameters[0].symbol.is_positive
    True
    >>> v = inline_model("exp(transpose(x) @ log(p))", "x", "onehot", ["p:simplex"], dimension="K")
    >>> v.variable.shape, v.discrete
    ((K, 1), True)
    """
    if dimension is not None:
        parts: Any = strip_text(support) if isinstance(support, str) and strip_text(support) else "real"
    else:
        if not isinstance(support, str):
            raise SpecError("a scalar model needs --support LO,HI")
        parts = [strip_text(p) for p in strip_text(support).split(",")]
        if len(parts) != 2 or not all(parts):
            raise SpecError(f"--support must be LO,HI (got {brief(repr(support))})")

    def table(items: list[str], role: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in items:
            name, sep, rest = strip_text(item).partition(":")
            name, rest = strip_text(name), strip_text(rest)
            if not sep or not name or not rest:
                raise SpecError(f"--{role} must be NAME:DOMAIN (got {brief(repr(item))})")
            if name in out:
                raise SpecError(f"{role} name '{brief(name)}' is declared twice")
            out[name] = rest
        return out

    data = {
        "name": "inline",
        "title": title,
        "variable": strip_text(var) if isinstance(var, str) else var,
        "discrete": discrete,
        "support": parts,
        "density": pdf,
        "parameters": table(list(params), "param"),
        "constants": table(list(consts), "const"),
    }
    if dimension is not None:
        data["dimension"] = strip_text(dimension) if isinstance(dimension, str) else dimension
        if not discrete:  # a vector model's support says whether it is discrete
            del data["discrete"]
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
        raise SpecError(
            f"unknown model '{brief(text)}': not a catalogue family (see 'symmle list') nor a spec file"
        )
    data = catalogue.read_spec_file(path)
    return model_from_dict(data, origin=path.name, validate=validate)
