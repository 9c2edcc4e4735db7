"""``symmle compile``: a standalone Python module of a model's estimators.

The module prints the formulas of :func:`symmle.numbers.compiled.plan_formulas` as
NumPy code (SciPy's special functions only where a formula needs them) and
carries a verbatim copy of :mod:`symmle.base._runtime`, so it runs without SymPy
or symmle and gives the same numbers as :meth:`Derivation.compile`.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter, SciPyPrinter

from symmle.base import _runtime
from symmle.base.errors import DerivationError, SpecError
from symmle.base.numeric import _stable
from symmle.numbers.compiled import Formula, plan_formulas

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["module_source"]


class _Writer:
    """Prints expressions and collects the imports they need."""

    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.functions: list[str] = []
        self._count = 0

    def expr(self, e: sp.Expr) -> str:
        e = _stable(e)
        # NumPy alone where it suffices; SciPy for special functions
        for printer in (
            NumPyPrinter({"fully_qualified_modules": True}),
            SciPyPrinter({"fully_qualified_modules": True}),
        ):
            try:
                text = printer.doprint(e)
            except PrintMethodNotImplementedError:
                continue
            if "math" in printer.module_imports:
                continue  # scalar-only functions (math.lgamma): not for arrays
            self.imports.update(printer.module_imports)
            return text
        raise DerivationError(f"cannot write {e} as NumPy/SciPy code")

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"_{prefix}{self._count}"

    def pointwise(self, e: sp.Expr, variable: sp.Symbol, prefix: str = "g") -> str:
        """A function ``fn(v, chunk)`` of the model variable."""
        name = self._name(prefix)
        body = _locals(e, exclude={variable.name})
        ren = _renamed(e)
        self.functions.append(
            f"def {name}(v, _chunk):\n    {_local(variable.name)} = _chunk\n"
            f"{body}    return {self.expr(e.subs(ren))}\n"
        )
        return name

    def formula(self, f: Formula, doc: str = "", prefix: str = "f") -> str:
        """A function ``fn(v, data)``: sums over the data, then the outer expression."""
        name = self._name(prefix)
        var = f.variable.name
        sums = {n for n, _ in f.sums}
        used = set().union(*(s.free_symbols for _, s in f.sums)) if f.sums else set()
        lines = [f"def {name}(v, _data):"]
        if doc:
            lines.append("    " + _docstring(doc))
        lines.append(_locals(f.outer, exclude=sums | {var}, extra=used))
        for n, summand in f.sums:
            term = self.expr(summand.subs(_renamed(summand)))
            lines.append(f"    {_local(n)} = sum_over(lambda {_local(var)}: {term}, _data)\n")
        lines.append(f"    return real_value({self.expr(f.outer.subs(_renamed(f.outer)))})\n")
        self.functions.append("\n".join(line.rstrip("\n") for line in lines if line) + "\n")
        return name


def _renamed(e: sp.Expr) -> dict[sp.Symbol, sp.Symbol]:
    return {s: sp.Symbol(_local(s.name)) for s in e.free_symbols}


def _locals(e: sp.Expr, exclude: set[str], extra: set[sp.Symbol] = frozenset()) -> str:  # type: ignore[assignment]
    names = sorted({s.name for s in (*e.free_symbols, *extra)} - set(exclude))
    return "".join(f"    {_local(n)} = v[{_literal(n)}]\n" for n in names)


# --------------------------------------------------------------------------
# untrusted text -> Python source: the only doors
# --------------------------------------------------------------------------


def _local(name: str) -> str:
    """The Python name of a model symbol: ``v_`` and its name, which must be an identifier.

    A spec admits identifiers only, but a Model can be built by hand: a symbol
    named ``a) or os.system("...") or (b`` must never reach the code.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"symbol name {name!r} is not an identifier and cannot be written as Python")
    # the prefix: no generated name can shadow a builtin, a module or a keyword
    return f"v_{name}"


def _literal(value: Any) -> str:
    """Python source of a literal that :func:`ast.literal_eval` reads back as ``value``.

    Every name or text of the model that reaches the generated module goes
    through here or :func:`_docstring`, never straight into an f-string.
    Takes str, bool, None, int, float (``1e999`` for infinity), and lists,
    tuples and dicts of these; anything else is refused.

    Examples
    --------
    >>> print(_literal({"lam": [1.5, float("inf")], "T1": (None, True)}))
    {"lam": [1.5, 1e999], "T1": (None, True)}
    """
    if isinstance(value, str):
        text = repr(value)  # escapes backslashes, quotes and every character that is not printable
        if text[0] == "'" and '"' not in value:
            text = '"' + text[1:-1] + '"'  # the same literal in double quotes, the house style
    elif isinstance(value, (bool, int)) or value is None:
        text = repr(value)
    elif isinstance(value, float):
        if math.isnan(value):
            raise DerivationError("cannot write NaN into the generated module")
        text = repr(value) if math.isfinite(value) else ("1e999" if value > 0 else "-1e999")
    elif isinstance(value, list):
        text = "[" + ", ".join(_literal(v) for v in value) + "]"
    elif isinstance(value, tuple):
        text = "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    else:
        raise TypeError(f"no literal for {type(value).__name__} in the generated module")
    return _checked(text, value)


def _docstring(text: str) -> str:
    r'''A triple-quoted literal of ``text`` for a docstring: line breaks kept, the rest escaped.

    Backslashes and double quotes are escaped, so no ``"""`` closes the literal
    early and no ``\N{...}`` is read as an escape; every character that is not
    printable (NUL, carriage return, ANSI escapes, line separators, bidi
    overrides, lone surrogates) is written as a ``\x``, ``\u`` or ``\U`` escape.

    Examples
    --------
    >>> print(_docstring('X"""\n\x1b[31m C:\\N{x}'))
    """X\"\"\"
    \x1b[31m C:\\N{x}"""
    '''
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append(ch)
        elif ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return _checked('"""' + "".join(out) + '"""', text)


def _checked(literal: str, value: Any) -> str:
    # proof rather than hope: the literal parses on its own and means exactly the value
    read = ast.literal_eval(literal)
    if read != value or type(read) is not type(value):
        raise AssertionError(f"unsafe literal for the generated module: {literal[:80]!r}")
    return literal


def _table(items: list[str], indent: int = 4) -> str:
    pad = " " * indent
    return "[\n" + "".join(f"{pad}    {i},\n" for i in items) + f"{pad}]"


def _runtime_source() -> str:
    src = inspect.getsource(_runtime)
    # drop the runtime's own docstring and imports: the module header provides them
    head, body = src.split("\nimport numpy as np\n", 1)
    assert "import math\nimport warnings\n" in head, "the module header must import what the runtime imports"
    return body.strip() + "\n"


def module_source(d: Derivation, *, timeout: float | None = None) -> str:
    """Source of a standalone module with ``PARAMETERS``, ``estimate``, ``stderr`` and ``log_likelihood``.

    Examples
    --------
    >>> import symmle
    >>> src = module_source(symmle.derive("exponential"))
    >>> "def estimate(x, **constants):" in src
    True
    """
    if getattr(d, "mixture", None) is not None:
        raise SpecError(
            f"compile: '{d.model.name}' is a mixture of {d.mixture.K} components; "
            "compile does not support mixtures yet"
        )
    if d.regression is not None:  # a response and a design: see symmle.numbers.regression_codegen
        from symmle.numbers.regression_codegen import regression_module_source

        return regression_module_source(d, timeout=timeout)
    if d.model.is_vector:  # rows of D numbers: see symmle.numbers.vector_codegen
        from symmle.numbers.vector_codegen import vector_module_source

        return vector_module_source(d, timeout=timeout)
    f = plan_formulas(d, timeout=timeout)
    w = _Writer()
    var = f["variable"]
    model = d.model
    stats = {name: w.pointwise(g, var) for name, g in f["stats"].items()}
    centred = [(w.pointwise(h, var, "h"), powers, pilot) for h, powers, pilot in f["centred"]]
    residual = [
        (pilot, {name: w.pointwise(q, var, "r") for name, q in sums.items()}) for pilot, sums in f["residual"]
    ]
    closed = {
        name: w.formula(fm, f"{name} = {sp.sstr(f['display'][name])}") for name, fm in f["closed"].items()
    }
    quantiles = [
        f"({_literal(name)}, {w.pointwise(u, var, 'u')}, {w.pointwise(level, var, 'q')}, {_literal(p)})"
        for name, u, level, p in f["quantiles"]
    ]
    profile = [(name, w.formula(fm, f"{name} given the reduced parameters")) for name, fm in f["profile"]]
    observed = (
        None
        if f["observed"] is None
        else [[w.formula(fm, prefix="obs") for fm in row] for row in f["observed"]]
    )
    fisher = (
        None
        if f["fisher"] is None
        else [[w.formula(fm, prefix="fisher") for fm in row] for row in f["fisher"]]
    )
    logf = w.pointwise(f["logf"], var, "logf")
    # the support's ends that involve no parameter, checked against the data before estimating
    parameters = set(model.parameter_symbols)
    support = [None if e.free_symbols & parameters else w.pointwise(e, var, "support") for e in model.support]
    score = [w.formula(fm, prefix="score") for fm in f["score"]]
    bounds = {
        name: b and f"({w.formula(b[0], prefix='loss')}, {w.formula(b[1], prefix='cond')})"
        for name, b in f["rounding"].items()
    }
    numeric = {}
    if f["reduced"]:
        numeric["objective"] = w.formula(f["objective"], "profile log-likelihood", "objective")
        numeric["gradient"] = "[" + ", ".join(w.formula(fm, prefix="grad") for fm in f["gradient"]) + "]"
        numeric["hessian"] = (
            "["
            + ", ".join(
                "[" + ", ".join(w.formula(fm, prefix="hess") for fm in row) + "]" for row in f["hessian"]
            )
            + "]"
        )

    def grid(rows):
        return "None" if rows is None else "[" + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]"

    def functions(table):  # a dict literal of names to generated functions
        return "{" + ", ".join(f"{_literal(k)}: {v}" for k, v in table.items()) + "}"

    lit = {
        k: _literal(f[k])
        for k in (
            "parameters",
            "constants",
            "known",
            "domains",
            "raw",
            "reduced",
            "regular",
            "vectorised",
            "rowwise",
            "discrete",
            "sums",
        )
    }
    plan = [
        *[f'"{k}": {lit[k]}' for k in ("parameters", "constants", "known", "domains")],
        f'"stats": {functions(stats)}',
        f'"raw": {lit["raw"]}',
        '"centred": ['
        + ", ".join(f"({h}, {_literal(powers)}, {_literal(pilot)})" for h, powers, pilot in centred)
        + "]",
        '"residual": ['
        + ", ".join(f"({_literal(pilot)}, {functions(sums)})" for pilot, sums in residual)
        + "]",
        f'"closed": {functions(closed)}',
        '"quantiles": [' + ", ".join(quantiles) + "]",
        f'"reduced": {lit["reduced"]}',
        '"profile": [' + ", ".join(f"({_literal(k)}, {v})" for k, v in profile) + "]",
        f'"regular": {lit["regular"]}',
        '"score": [' + ", ".join(score) + "]",
        f'"rounding": {functions(bounds)}',
        f'"observed": {grid(observed)}',
        f'"fisher": {grid(fisher)}',
        f'"logf": {logf}',
        f'"support": ({support[0]}, {support[1]})',
        f'"variable": {_literal(var.name)}',
        f'"needed": {_literal(sorted(f["needed"]))}',
        *[f'"{k}": {lit[k]}' for k in ("vectorised", "rowwise", "discrete", "sums")],
        *[f'"{k}": {v}' for k, v in numeric.items()],
    ]
    formulas = _formula_doc(d, f)
    # a model with priors: the estimates are maximum a posteriori (MAP)
    priors = getattr(d, "prior", None)
    kind = "maximum a posteriori (MAP)" if priors is not None else "maximum-likelihood"
    if priors is not None:
        formulas = "Priors: " + "; ".join(p.describe() for p in priors.priors) + "\n\n" + formulas
    imports = sorted(m for m in w.imports if m not in ("numpy", "math"))
    lo, hi = (sp.sstr(e) for e in model.support)
    header = (
        _docstring(
            f"{model.title}: {kind} estimators generated by symmle.\n\n"
            f"Model ({model.name}): f({var}) = {sp.sstr(model.density)} for {var} in [{lo}, {hi}]"
            f"{' (integers)' if model.discrete else ''}.\n\n"
            f"{formulas}\n"
            "Use::\n\n"
            "    import numpy as np\n"
            f"    estimate(x{_const_args(f)})        "
            f"# {{{', '.join(f'{p!r}: ...' for p in f['parameters'])}}}\n"
            f"    stderr(x{_const_args(f)})          # asymptotic standard errors\n"
            "    log_likelihood(x, **values)        # sum of log f(x_i)\n\n"
            "The data are checked first: empty data, a value that is not a finite number, outside the "
            "support or (for a discrete model) not an integer raise a ValueError naming the first one, "
            f"{var}[i]; so does a value where the log-density is finite for no parameter value, when "
            "the estimation finds no MLE.\n\n"
            f"Generated code: imports NumPy{' and SciPy' if imports or f['reduced'] else ''} only, "
            "and runs without SymPy or symmle.\n"
        )
        + """

import math
import warnings

import numpy
import numpy as np
"""
        + "".join(f"import {m}\n" for m in imports)
    )
    plan_text = textwrap.indent(",\n".join(plan), "    ")
    information = "expected" if f["fisher"] is not None else "observed"
    if priors is not None:
        information = "observed"
    estimate_doc = _docstring(
        f"{kind[0].upper()}{kind[1:]} estimates of {', '.join(f['parameters'])} "
        f"from data ``x``.\n\n{textwrap.indent(formulas, '    ')}\n    "
    )
    stderr_doc = _docstring(
        f"Asymptotic standard errors at the estimate, from the {information} information "
        "(None where none exists)."
        if priors is None
        else "Standard errors at the MAP, from the curvature of the log-posterior (None where none exists)."
    )
    loglik_doc = _docstring(
        "Log-likelihood sum_i log f(x_i) at the given values.\n\n"
        f"    log f({var}) = {sp.sstr(f['logf'])}\n    "
    )
    api = f"""

PARAMETERS = {_literal(tuple(f["parameters"]))}
CONSTANTS = {_literal(tuple(f["constants"]))}

PLAN = {{
{plan_text},
}}


def estimate(x, **constants):
    {estimate_doc}
    return run_checked(run_estimate, PLAN, x, constants)


def stderr(x, **constants):
    {stderr_doc}
    return run_checked(run_stderr, PLAN, x, constants)


def log_likelihood(x, **params_and_constants):
    {loglik_doc}
    x = as_data(x)
    check_data(PLAN, x, dict(PLAN["known"], **params_and_constants))
    return run_log_likelihood(PLAN, x, params_and_constants)
"""
    return header + "\n\n" + _runtime_source() + "\n\n" + "\n\n".join(w.functions) + api


def _const_args(f: dict[str, Any]) -> str:
    missing = [c for c in f["constants"] if c not in f["known"]]
    return "".join(f", {c}=..." for c in missing)


def _formula_doc(d: Derivation, f: dict[str, Any]) -> str:
    lik = d.likelihood
    lines = ["Sufficient statistics (sums over the N observations):"]
    lines += [f"    {s.symbol} = sum_i {sp.sstr(s.expr)}" for s in lik.statistics]
    for h, powers, pilot in f["centred"]:
        ks = ", ".join(powers.values())
        lines.append(
            f"    {ks}: sums of ({sp.sstr(h)} - {pilot})**k, "
            f"{pilot} the mean of the first values (for stability)"
        )
    lines.append("Estimators:")
    for name, e in d.solutions.items():
        if name in f["display"]:
            lines.append(f"    {name} = {sp.sstr(f['display'][name])}    [{e.kind}]")
        elif e.equation is not None:
            lines.append(
                f"    {name} solves {sp.sstr(e.equation.lhs)} = {sp.sstr(e.equation.rhs)}    [numeric]"
            )
    return "\n".join(lines) + "\n"
