"""``symmle compile`` of a vector model: a standalone module of its estimators.

The formulas of :func:`symmle.numbers.vector_plan.vector_formulas` are printed as NumPy code
on stacks of matrices (:mod:`symmle.numbers.matrix_code`), and the module carries verbatim
copies of the scalar runtime (:mod:`symmle.base._runtime`: the chunked, pilot-centred
moments) and of the vector runtime (:mod:`symmle.numbers._vector_runtime`).  It runs without
SymPy or symmle; :class:`symmle.numbers.vector_compiled.CompiledVectorModel` runs the same
source in-process.

Untrusted text (the model's name, title, density) reaches the module only through
:func:`symmle.numbers.codegen._docstring` and :func:`~symmle.numbers.codegen._literal`, and
symbol names only through :func:`~symmle.numbers.codegen._local`, which admits identifiers only.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import TYPE_CHECKING

import sympy as sp

from symmle.numbers import _vector_runtime
from symmle.numbers.codegen import _docstring, _literal, _local, _runtime_source
from symmle.numbers.matrix_code import print_matrix_code
from symmle.numbers.vector_plan import VectorFormulas, vector_formulas

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["vector_module_source"]

_MARKER = "# ---- copied into generated modules from here ----\n"


def _vector_runtime_source() -> str:
    src = inspect.getsource(_vector_runtime)
    head, sep, body = src.partition(_MARKER)
    assert sep, "the vector runtime must mark where the copied part starts"
    return body.strip() + "\n"


class _Writer:
    """Prints the plan's formulas as functions and collects the modules they import."""

    def __init__(self, f: VectorFormulas) -> None:
        self.f = f
        self.imports: set[str] = set()
        self.functions: list[str] = []
        self._count = 0
        self.names: dict[sp.Basic, str] = {}
        for name, s in f.symbols.items():
            if name != s.name:
                raise AssertionError(f"symbol {s} filed as {name!r}")
            self.names[s] = _local(name)  # refuses anything but an identifier

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"_{prefix}{self._count}"

    def _code(self, expr: sp.Basic, names: dict[sp.Basic, str]) -> str:
        code, modules = print_matrix_code(expr, names)
        self.imports |= modules
        return code

    def _reads(self, expr: sp.Basic) -> list[sp.Basic]:
        """The plan's values ``expr`` reads (symbols and matrix symbols, and the dimension)."""
        atoms = {a for a in expr.atoms(sp.Symbol, sp.MatrixSymbol) if not isinstance(a, sp.Dummy)}
        atoms.add(self.f.derivation.model.dimension)
        for a in atoms:
            if a not in self.names or self.f.symbols.get(a.name) != a:
                raise AssertionError(f"the formula reads {a}, which is not a value of the plan")
        return sorted(atoms, key=lambda a: a.name)

    def formula(self, expr: sp.Basic, prefix: str = "f") -> str:
        """A function ``fn(v)`` of the plan's values ``v`` (by name)."""
        name = self._name(prefix)
        lines = [f"def {name}(v):"]
        lines += [f"    {self.names[a]} = v[{_literal(a.name)}]" for a in self._reads(expr)]
        lines.append(f"    return {self._code(expr, self.names)}")
        self.functions.append("\n".join(lines) + "\n")
        return name

    def rowwise(self, expr: sp.Basic, prefix: str = "h") -> str:
        """A function ``fn(v, _rows)`` of the variable's rows (a ``(b, D, 1)`` stack) and the values."""
        x = self.f.derivation.model.variable
        name = self._name(prefix)
        lines = [f"def {name}(v, _rows):"]
        lines += [f"    {self.names[a]} = v[{_literal(a.name)}]" for a in self._reads(expr) if a != x]
        lines.append(f"    return {self._code(expr, {**self.names, x: '_rows'})}")
        self.functions.append("\n".join(lines) + "\n")
        return name

    def entrywise(self, expr: sp.Basic) -> str:
        """A function ``fn(_block)`` applying the entrywise function of ``expr`` to an array."""
        x = self.f.derivation.model.variable
        name = self._name("g")
        self.functions.append(f"def {name}(_block):\n    return {self._code(expr, {x: '_block'})}\n")
        return name


def _label(expr: sp.Basic, x: sp.Basic) -> str:
    fn = expr.function
    return (
        sp.sstr(fn.expr.xreplace({fn.variables[0]: sp.Symbol(x.name)}))
        if isinstance(fn, sp.Lambda)
        else str(fn)
    )


def vector_module_source(d: Derivation, *, timeout: float | None = None) -> str:
    """Source of a standalone module with ``PARAMETERS``, ``estimate``, ``stderr`` and ``log_likelihood``."""
    f = vector_formulas(d, timeout=timeout)
    m = d.model
    w = _Writer(f)
    closed = [(name, w.formula(e, "closed")) for name, e in f.closed]
    entrywise = [(t.name, w.entrywise(e), _label(e, m.variable)) for t, e in f.entrywise]
    free = [(t.name, w.rowwise(e, "free")) for t, e in f.free]
    informative = w.formula(f.informative, "loglik")
    objective = informative if f.numeric else "None"
    score = {name: w.formula(e, "score") for name, e in f.score.items()}
    fisher = w.formula(f.fisher, "fisher") if f.fisher is not None else "None"
    known = {}
    for q in m.constants:
        if q.value is not None:
            known[q.name] = (
                [[float(v) for v in row] for row in q.value.tolist()] if q.is_matrix else float(q.value)
            )
            if q.is_matrix and q.domain != "spd":
                known[q.name] = [row[0] for row in known[q.name]]

    def table(pairs):  # a list literal of (name literal, function, ...) tuples
        return "[" + ", ".join("(" + ", ".join(p) + ")" for p in pairs) + "]"

    plan = [
        f'"parameters": {_literal([q.name for q in m.parameters])}',
        f'"domains": {_literal({q.name: q.domain for q in m.parameters})}',
        f'"kinds": {_literal({q.name: d.solutions[q.name].kind for q in m.parameters})}',
        f'"constants": {_literal([q.name for q in m.constants])}',
        f'"constant_domains": {_literal({q.name: q.domain for q in m.constants})}',
        f'"known": {_literal(known)}',
        f'"dimension": {_literal(m.dimension.name)}',
        f'"support": {_literal(m.support_set or "real")}',
        f'"names": {_literal({"N": f.N.name, "mean": f.mean.name, "scatter": f.scatter.name})}',
        f'"moments": {_literal({k: t.name for k, t in f.moments.items()})}',
        f'"spd": {_literal(any(q.domain == "spd" for q in m.parameters))}',
        f'"entrywise": {table((_literal(n), fn, _literal(label)) for n, fn, label in entrywise)}',
        f'"free": {table((_literal(n), fn) for n, fn in free)}',
        f'"closed": {table((_literal(n), fn) for n, fn in closed)}',
        f'"numeric": {_literal(f.numeric)}',
        f'"objective": {objective}',
        '"score": {' + ", ".join(f"{_literal(k)}: {v}" for k, v in score.items()) + "}",
        f'"informative": {informative}',
        f'"fisher": {fisher}',
        f'"coordinates": {_literal([list(c) for c in f.coordinates])}',
    ]
    formulas = _formula_doc(f)
    uses_scipy = bool(f.numeric) or any(mod.startswith("scipy") for mod in w.imports)
    imports = sorted(mod for mod in w.imports if mod not in ("numpy", "math"))
    var = m.variable.name
    params = ", ".join(f"{q.name!r}: ..." for q in m.parameters)
    const_args = "".join(f", {q.name}=..." for q in m.constants if q.value is None)
    header = (
        _docstring(
            f"{m.title}: maximum-likelihood estimators generated by symmle.\n\n"
            f"Model ({m.name}): f({var}) = {sp.sstr(m.density)}, {var} a row of "
            f"{m.dimension.name} numbers in the set '{m.support_set or 'real'}'.\n\n"
            f"{formulas}\n"
            "Use::\n\n"
            "    import numpy as np\n"
            f"    estimate(x{const_args})        # {{{params}}}; x an (N, {m.dimension.name}) array\n"
            f"    stderr(x{const_args})          # asymptotic standard errors, same shapes\n"
            "    log_likelihood(x, **values)        # sum of log f(x_i); vectors and matrices as lists\n\n"
            "The rows are checked first: a cell that is not a finite number, a row outside the model's "
            "set, too few rows or collinear columns for a covariance raise a ValueError naming the "
            "first one.  Vectors are returned as 1-D arrays, matrices as 2-D arrays.\n\n"
            f"Generated code: imports NumPy{' and SciPy' if uses_scipy else ''} only, "
            "and runs without SymPy or symmle.\n"
        )
        + "\n\nimport math\nimport warnings\n\nimport numpy\nimport numpy as np\n"
        + "".join(f"import {mod}\n" for mod in imports)
    )
    plan_text = textwrap.indent(",\n".join(plan), "    ")
    estimate_doc = _docstring(
        f"Maximum-likelihood estimates of {', '.join(q.name for q in m.parameters)} from rows ``x``.\n\n"
        f"{textwrap.indent(formulas, '    ')}\n    "
    )
    info = "the expected (Fisher) information, inverted once for all coordinates"
    api = f"""

PARAMETERS = {_literal(tuple(q.name for q in m.parameters))}
CONSTANTS = {_literal(tuple(q.name for q in m.constants))}
DIMENSION = {_literal(m.dimension.name)}

PLAN = {{
{plan_text},
}}


def estimate(x, **constants):
    {estimate_doc}
    return run_vector_estimate(PLAN, x, constants)


def stderr(x, **constants):
    {_docstring(f"Asymptotic standard errors at the estimates, from {info} (None where none exists).")}
    return run_vector_stderr(PLAN, x, constants)


def estimate_with_stderr(x, **constants):
    {_docstring("(estimates, standard errors) from one reduction of the data.")}
    return run_vector_fit(PLAN, x, constants)


def log_likelihood(x, **params_and_constants):
    {
        _docstring(
            f"Log-likelihood sum_i log f(x_i) at the given values.{chr(10)}{chr(10)}    log f({var}) = "
            f"{sp.sstr(d.likelihood.log_density)}{chr(10)}    "
        )
    }
    return run_vector_log_likelihood(PLAN, x, params_and_constants)


def estimate_rows(samples, **constants):
    {_docstring("Estimates of R data sets at once (an (R, n, D) array): arrays with a leading axis R.")}
    return run_vector_estimate_rows(PLAN, samples, constants)


def fisher_information(dim, **params_and_constants):
    {_docstring("The per-observation Fisher information at the given values, in coordinates(dim).")}
    return run_vector_fisher(PLAN, params_and_constants, dim)


def coordinates(dim):
    {_docstring("The names of the coordinates of the information matrix at dimension dim.")}
    return coordinate_names(PLAN, dim)
"""
    return (
        header
        + "\n\n"
        + _runtime_source()
        + "\n\n"
        + _vector_runtime_source()
        + "\n\n"
        + "\n\n".join(w.functions)
        + api
    )


def _formula_doc(f: VectorFormulas) -> str:
    d = f.derivation
    lik = d.likelihood
    lines = ["Sufficient statistics (sums over the N rows):"]
    lines += [f"    {s.symbol} = sum_i {sp.sstr(s.expr)}" for s in lik.statistics]
    if f.moments:
        lines.append(
            f"    {f.mean.name}, {f.scatter.name}: the mean of the rows and sum_i (x_i - {f.mean.name})"
            f"(x_i - {f.mean.name})^T, one pass over blocks centred at a pilot (for stability)"
        )
    lines.append("Estimators:")
    shown = dict(f.closed)
    for q in d.model.parameters:
        e = d.solutions[q.name]
        if q.name in shown:
            lines.append(f"    {q.name} = {sp.sstr(e.expr)}    [closed_form]")
            if shown[q.name] != e.expr:
                lines.append(f"        = {sp.sstr(shown[q.name])}")
        elif e.equation is not None:
            lines.append(f"    {q.name} solves {sp.sstr(e.equation.lhs)} = 0    [numeric]")
    return "\n".join(lines) + "\n"
