"""``symmle compile``: a standalone Python module of a model's estimators.

The module prints the formulas of :func:`symmle.compile.plan_formulas` as
NumPy code (SciPy's special functions only where a formula needs them) and
carries a verbatim copy of :mod:`symmle._runtime`, so it runs without SymPy
or symmle and gives the same numbers as :meth:`Derivation.compile`.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter, SciPyPrinter

from symmle import _runtime
from symmle.compile import Formula, plan_formulas
from symmle.errors import DerivationError
from symmle.numeric import _stable

if TYPE_CHECKING:
    from symmle.derivation import Derivation

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
        for printer in (NumPyPrinter({"fully_qualified_modules": True}), SciPyPrinter({"fully_qualified_modules": True})):
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
            f"def {name}(v, _chunk):\n    v_{variable.name} = _chunk\n{body}    return {self.expr(e.subs(ren))}\n"
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
            lines.append(f'    """{doc}"""')
        lines.append(_locals(f.outer, exclude=sums | {var}, extra=used))
        for n, summand in f.sums:
            lines.append(f"    v_{n} = sum_over(lambda v_{var}: {self.expr(summand.subs(_renamed(summand)))}, _data)\n")
        lines.append(f"    return real_value({self.expr(f.outer.subs(_renamed(f.outer)))})\n")
        self.functions.append("\n".join(line.rstrip("\n") for line in lines if line) + "\n")
        return name


def _renamed(e: sp.Expr) -> dict[sp.Symbol, sp.Symbol]:
    # v_ prefix: no generated name can shadow a builtin or a module
    return {s: sp.Symbol(f"v_{s.name}") for s in e.free_symbols}


def _locals(e: sp.Expr, exclude: set[str], extra: set[sp.Symbol] = frozenset()) -> str:  # type: ignore[assignment]
    names = sorted({s.name for s in (*e.free_symbols, *extra)} - set(exclude))
    return "".join(f'    v_{n} = v["{n}"]\n' for n in names)


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
    f = plan_formulas(d, timeout=timeout)
    w = _Writer()
    var = f["variable"]
    model = d.model
    stats = {name: w.pointwise(g, var) for name, g in f["stats"].items()}
    centred = [(w.pointwise(h, var, "h"), powers, pilot) for h, powers, pilot in f["centred"]]
    residual = [(pilot, {name: w.pointwise(q, var, "r") for name, q in sums.items()}) for pilot, sums in f["residual"]]
    closed = {name: w.formula(fm, f"{name} = {sp.sstr(f['display'][name])}") for name, fm in f["closed"].items()}
    profile = [(name, w.formula(fm, f"{name} given the reduced parameters")) for name, fm in f["profile"]]
    observed = None if f["observed"] is None else [[w.formula(fm, prefix="obs") for fm in row] for row in f["observed"]]
    fisher = None if f["fisher"] is None else [[w.formula(fm, prefix="fisher") for fm in row] for row in f["fisher"]]
    logf = w.pointwise(f["logf"], var, "logf")
    score = [w.formula(fm, prefix="score") for fm in f["score"]]
    bounds = {name: b and f"({w.formula(b[0], prefix='loss')}, {w.formula(b[1], prefix='cond')})"
              for name, b in f["rounding"].items()}
    numeric = {}
    if f["reduced"]:
        numeric["objective"] = w.formula(f["objective"], "profile log-likelihood", "objective")
        numeric["gradient"] = "[" + ", ".join(w.formula(fm, prefix="grad") for fm in f["gradient"]) + "]"
        numeric["hessian"] = "[" + ", ".join("[" + ", ".join(w.formula(fm, prefix="hess") for fm in row) + "]" for row in f["hessian"]) + "]"

    def grid(rows):
        return "None" if rows is None else "[" + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]"

    plan = [
        f'"parameters": {f["parameters"]!r}',
        f'"constants": {f["constants"]!r}',
        f'"known": {f["known"]!r}',
        f'"domains": {f["domains"]!r}',
        '"stats": {' + ", ".join(f'"{k}": {v}' for k, v in stats.items()) + "}",
        f'"raw": {f["raw"]!r}',
        '"centred": [' + ", ".join(f"({h}, {powers!r}, {pilot!r})" for h, powers, pilot in centred) + "]",
        '"residual": [' + ", ".join(f"({pilot!r}, {{" + ", ".join(f'"{k}": {v}' for k, v in sums.items()) + "})" for pilot, sums in residual) + "]",
        '"closed": {' + ", ".join(f'"{k}": {v}' for k, v in closed.items()) + "}",
        f'"reduced": {f["reduced"]!r}',
        '"profile": [' + ", ".join(f'("{k}", {v})' for k, v in profile) + "]",
        f'"regular": {f["regular"]!r}',
        '"score": [' + ", ".join(score) + "]",
        '"rounding": {' + ", ".join(f'"{k}": {v}' for k, v in bounds.items()) + "}",
        f'"observed": {grid(observed)}',
        f'"fisher": {grid(fisher)}',
        f'"logf": {logf}',
        f'"needed": {sorted(f["needed"])!r}',
        f'"vectorised": {f["vectorised"]!r}',
        f'"rowwise": {f["rowwise"]!r}',
        f'"discrete": {f["discrete"]!r}',
        f'"sums": {f["sums"]!r}',
        *[f'"{k}": {v}' for k, v in numeric.items()],
    ]
    formulas = _formula_doc(d, f)
    imports = sorted(m for m in w.imports if m not in ("numpy", "math"))
    header = f'''"""{model.title}: maximum-likelihood estimators generated by symmle.

Model ({model.name}): f({var}) = {sp.sstr(model.density)} for {var} in [{sp.sstr(model.support[0])}, {sp.sstr(model.support[1])}]{" (integers)" if model.discrete else ""}.

{formulas}
Use::

    import numpy as np
    estimate(x{_const_args(f)})        # {{{", ".join(repr(p) + ": ..." for p in f["parameters"])}}}
    stderr(x{_const_args(f)})          # asymptotic standard errors
    log_likelihood(x, **values)        # sum of log f(x_i)

Generated code: imports NumPy{" and SciPy" if imports or f["reduced"] else ""} only, and runs without SymPy or symmle.
"""

import math
import warnings

import numpy
import numpy as np
''' + "".join(f"import {m}\n" for m in imports)
    plan_text = textwrap.indent(",\n".join(plan), "    ")
    api = f'''

PARAMETERS = {tuple(f["parameters"])!r}
CONSTANTS = {tuple(f["constants"])!r}

PLAN = {{
{plan_text},
}}


def estimate(x, **constants):
    """Maximum-likelihood estimates of {", ".join(f["parameters"])} from data ``x``.

{textwrap.indent(formulas, "    ")}
    """
    return run_estimate(PLAN, x, constants)


def stderr(x, **constants):
    """Asymptotic standard errors at the estimate, from the {"expected" if f["fisher"] is not None else "observed"} information (None where none exists)."""
    return run_stderr(PLAN, x, constants)


def log_likelihood(x, **params_and_constants):
    """Log-likelihood sum_i log f(x_i) at the given values.

    log f({var}) = {sp.sstr(f["logf"])}
    """
    return run_log_likelihood(PLAN, x, params_and_constants)
'''
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
        lines.append(f"    {ks}: sums of ({sp.sstr(h)} - {pilot})**k, {pilot} the mean of the first values (for stability)")
    lines.append("Estimators:")
    for name, e in d.solutions.items():
        if name in f["display"]:
            lines.append(f"    {name} = {sp.sstr(f['display'][name])}    [{e.kind}]")
        elif e.equation is not None:
            lines.append(f"    {name} solves {sp.sstr(e.equation.lhs)} = {sp.sstr(e.equation.rhs)}    [numeric]")
    return "\n".join(lines) + "\n"
