r"""``symmle compile`` of a regression: a standalone module that fits it.

The per-observation functions of the :class:`~symmle.symbolic.regression.Regression` (the
log-density :math:`l(y, \eta, \phi)`, its gradient and Hessian in :math:`(\eta, \phi)` with their
common subexpressions computed once, the working response and profiled closed forms where
:math:`\hat\beta` is least squares) are printed as NumPy code by the printers of
:mod:`symmle.numbers.codegen`.  The fit itself is not printed: the module carries verbatim copies
of the code symmle fits with (:data:`PARTS`: the regression runtime's sums and Newton's method,
the least squares, the search for separation, and the driver
:mod:`symmle.numbers._regression_driver`), everything after each file's imports, so the module
and :mod:`symmle.numbers.regression_fit` keep one source.  Their ``from symmle...`` imports are
checked to name what an earlier copy defines, or one of the stand-in error classes the module
defines itself; their other imports (NumPy, SciPy, the standard library only) go to its header.

Untrusted text (the model's name, title, density) reaches the module only through
:func:`~symmle.numbers.codegen._docstring` and :func:`~symmle.numbers.codegen._literal`, and
symbol names only through :func:`~symmle.numbers.codegen._local`, which admits identifiers only;
every printed function is parsed back and may read only its arguments, its locals, NumPy and
SciPy.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import sympy as sp

from symmle.base.errors import DerivationError, SpecError
from symmle.base.numeric import _stable
from symmle.numbers.codegen import _docstring, _literal, _local, _Writer

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation
    from symmle.symbolic.regression import Regression

__all__ = ["regression_module_source", "PARTS", "API"]

#: The modules copied into a generated regression module, in order, each with the names copied
#: from it (``None``: everything after its imports).
PARTS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("symmle.base._runtime", ("in_domain",)),
    ("symmle.numbers._regression_runtime", None),
    ("symmle.numbers.least_squares", None),
    ("symmle.numbers.separation", None),
    ("symmle.numbers._regression_driver", None),
)

#: The names the generated module defines for its users.
API = ("PARAMETERS", "CONSTANTS", "PLAN", "estimate", "stderr", "estimate_with_stderr", "log_likelihood")

#: symmle's error classes as the module defines them (the copies raise them by these names).
_STAND_INS = '''
class SymmleError(Exception):
    """An error of this module (symmle's error classes, stood in for)."""


class SpecError(SymmleError, ValueError):
    """A value or name given to a function of this module that it cannot take."""


class DataError(SymmleError, ValueError):
    """Data this model cannot take, or data for which the maximum-likelihood estimate does not exist."""
'''
_STAND_IN_NAMES = frozenset({"SymmleError", "SpecError", "DataError"})

#: Modules a copied part may import: the standard library, NumPy and SciPy.
_STANDARD = frozenset(sys.stdlib_module_names | {"__future__", "numpy", "scipy"})

#: Names the model's symbols would shadow in the module's functions.
_ARGUMENTS = frozenset({"y", "X", "offset", "beta", "constants", "params_and_constants"})


# --------------------------------------------------------------------------------- the copied parts


class _Part(NamedTuple):
    module: str
    source: str
    imports: tuple[str, ...]  #: import statements for the module's header
    needs: tuple[tuple[str, str], ...]  #: (symmle module, name) pairs the part imports
    defines: frozenset[str]


def _root(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [(node.module or "").split(".")[0]]
    return [a.name.split(".")[0] for a in node.names]


def _bindings(node: ast.stmt) -> list[tuple[str, tuple[str, ...]]]:
    """The names an import statement binds, each with what it binds it to."""
    if isinstance(node, ast.ImportFrom):
        return [(a.asname or a.name, ("from", node.module or "", a.name)) for a in node.names]
    if isinstance(node, ast.Import):
        return [
            (a.asname, ("module", a.name))
            if a.asname
            else (a.name.split(".")[0], ("module", a.name.split(".")[0]))
            for a in node.names
        ]
    return []


def _top_names(nodes: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _copied(module: ModuleType, names: tuple[str, ...] | None) -> _Part:
    """Everything after a module's docstring, imports and ``__all__``, or only the named functions.

    A whole module may import only the standard library, NumPy, SciPy and (names that earlier parts
    copy) symmle; named functions may come from any module, but read only names that those imports
    bind, and none of the module's other top-level names.
    """
    src = inspect.getsource(module)
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    k, end = 0, 0
    header: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and k == 0
        is_all = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        )
        if not (is_doc or is_all or isinstance(node, (ast.Import, ast.ImportFrom))):
            break
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            header.append(node)
        k += 1
        end = node.end_lineno or end
    rest = tree.body[k:]
    chosen = rest if names is None else [n for n in rest if getattr(n, "name", None) in names]
    if names is not None and {getattr(n, "name", None) for n in chosen} != set(names):
        raise AssertionError(f"{module.__name__} does not define {sorted(names)}")
    read = {n.id for node in chosen for n in ast.walk(node) if isinstance(n, ast.Name)}
    imports: list[str] = []
    needs: list[tuple[str, str]] = []
    for node in header:
        bound = {name for name, _ in _bindings(node)}
        if names is not None and not bound & read:
            continue  # an import the named functions do not use
        roots = _root(node)
        if roots == ["symmle"] and isinstance(node, ast.ImportFrom):
            if any(a.asname not in (None, a.name) for a in node.names):
                raise AssertionError(f"{module.__name__}: a renamed symmle import cannot be copied")
            needs += [(node.module or "", a.name) for a in node.names if names is None or a.name in read]
        elif set(roots) <= _STANDARD:
            imports.append(ast.unparse(node))
        else:
            raise AssertionError(f"{module.__name__}: what is copied reads an import of {roots}")
    for node in chosen:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)) and not set(_root(sub)) <= _STANDARD:
                raise AssertionError(f"{module.__name__}: an import of {_root(sub)} after its header")
        if "__all__" in _top_names([node]):
            raise AssertionError(f"{module.__name__}: __all__ after its code")
    if names is None:
        text = "".join(lines[end:]).strip() + "\n"
        return _Part(module.__name__, text, tuple(imports), tuple(needs), frozenset(_top_names(rest)))
    others = _top_names(rest) - set(names)
    if read & others:
        raise AssertionError(f"{module.__name__}: {sorted(names)} read {sorted(read & others)}, not copied")
    text = "\n\n".join(
        "".join(lines[min([n.lineno for n in node.decorator_list] + [node.lineno]) - 1 : node.end_lineno])
        for node in chosen
    )
    return _Part(module.__name__, text.strip() + "\n", tuple(imports), tuple(needs), frozenset(names))


def _runtime_parts() -> tuple[list[str], str, frozenset[str]]:
    """The header's imports, the copied source (stand-ins first), and every name it defines."""
    import importlib

    parts = [_copied(importlib.import_module(name), names) for name, names in PARTS]
    defined: dict[str, str] = {n: "stand-ins" for n in _STAND_IN_NAMES}
    by_module: dict[str, frozenset[str]] = {}
    for part in parts:
        for mod, name in part.needs:
            if not (
                name in by_module.get(mod, ()) or (mod == "symmle.base.errors" and name in _STAND_IN_NAMES)
            ):
                raise AssertionError(f"{part.module} imports {name} from {mod}, which no earlier part copies")
        clash = part.defines & set(defined)
        if clash:
            raise AssertionError(f"{part.module} and {defined[min(clash)]} both define {sorted(clash)}")
        defined.update(dict.fromkeys(part.defines, part.module))
        by_module[part.module] = by_module.get(part.module, frozenset()) | part.defines
    imports = list(dict.fromkeys(i for part in parts for i in part.imports))
    bound: dict[str, tuple[str, ...]] = {}
    for statement in imports:
        for name, meaning in _bindings(ast.parse(statement).body[0]):
            if bound.setdefault(name, meaning) != meaning or name in defined:
                raise AssertionError(f"the copied parts' imports bind {name} to two things")
    body = _STAND_INS.strip() + "\n\n\n" + "\n\n".join(part.source for part in parts)
    return imports, body, frozenset(defined)


# --------------------------------------------------------------------------------- printed functions


class _Erfinv(sp.Function):
    """``erfinv`` (the probit link's g), printed as the ufunc ``scipy.special.erfinv``.

    SymPy's SciPy printer has no ``erfinv``; :func:`symmle.base.numeric._stable` prints
    ``polygamma`` through such a class too.
    """

    nargs = 1

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module_format('scipy.special.erfinv')}({printer._print(self.args[0])})"

    _scipycode = _numpycode


def _printable(e: sp.Expr) -> sp.Expr:
    return e.replace(lambda a: isinstance(a, sp.erfinv), lambda a: _Erfinv(a.args[0]))


class _Functions:
    """Prints the per-observation functions; each is parsed back and may read only its own names."""

    def __init__(self) -> None:
        self.writer = _Writer()
        self.sources: list[str] = []
        self.names: list[str] = []

    def add(
        self,
        name: str,
        params: tuple[str, ...],
        bindings: dict[sp.Symbol, str],
        exprs: list[sp.Expr],
        *,
        many: bool = False,
        cse: bool = False,
    ) -> str:
        """``def name(*params)`` returning ``exprs`` (a list when ``many``), symbols read by ``bindings``."""
        exprs = [_printable(_stable(sp.sympify(e))) for e in exprs]
        free = set().union(*(e.free_symbols for e in exprs))
        unbound = free - set(bindings)
        if unbound:
            raise DerivationError(f"{name} reads {sorted(map(str, unbound))}, which are not its arguments")
        rename: dict[sp.Symbol, sp.Symbol] = {}
        taken: dict[str, sp.Symbol] = {}
        for s in sorted(free, key=lambda s: s.name):
            local = _local(s.name)  # refuses anything but an identifier
            if local in taken:
                raise SpecError(f"two different symbols are named {s.name}: rename one of them")
            taken[local] = s
            rename[s] = sp.Symbol(local, **s.assumptions0)
        exprs = [e.xreplace(rename) for e in exprs]
        lines = [f"def {name}({', '.join(params)}):"]
        lines += [f"    {rename[s].name} = {bindings[s]}" for s in sorted(free, key=lambda s: s.name)]
        if cse:
            pairs, exprs = sp.cse(exprs, symbols=sp.numbered_symbols("_s"), order="none")
            lines += [f"    {s.name} = {self.writer.expr(e)}" for s, e in pairs]
        printed = [self.writer.expr(e) for e in exprs]
        lines.append(f"    return [{', '.join(printed)}]" if many else f"    return {printed[0]}")
        source = "\n".join(lines) + "\n"
        _vet(source, set(params))
        self.sources.append(source)
        self.names.append(name)
        return name


def _vet(source: str, params: set[str]) -> None:
    """The printed function reads only its arguments, its own locals, NumPy and SciPy."""
    tree = ast.parse(source)
    (fn,) = tree.body
    assigned = {
        t.id
        for node in ast.walk(fn)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    allowed = params | assigned | {"numpy", "scipy"}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise DerivationError(
                f"the printed code reads {node.id!r}, which is not an argument or NumPy/SciPy"
            )
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Lambda, ast.FunctionDef)) and node is not fn:
            raise DerivationError("the printed code defines or imports something")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            raise DerivationError(f"the printed code reads the attribute {node.attr!r}")


# --------------------------------------------------------------------------------- formulas in the docstrings


def _text(e: sp.Expr) -> str:
    return sp.sstr(e)


def _wrap(text: str, width: int = 100) -> str:
    """Prose lines wrapped at ``width``; indented lines (formulas) kept whole."""
    out = []
    for line in text.split("\n"):
        if line[:1].isspace() or len(line) <= width:
            out.append(line)
        else:
            out += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)


def _model_doc(reg: Regression) -> str:
    m = reg.model
    y, eta = reg.response.name, reg.eta.name
    lo, hi = (_text(e) for e in m.support)
    theta = reg.parameter.name
    shared = ", ".join(s.name for s in reg.shared)
    args = ", ".join([y, eta, *(s.name for s in reg.shared)])
    lines = [
        f"Model ({m.name}): f({y}) = {_text(m.density)} for {y} in [{lo}, {hi}]"
        f"{' (integers)' if m.discrete else ''}.",
        f"Regression: {theta}_i = g^-1({eta}_i) with the {reg.link.name} link, {theta} = "
        f"{_text(reg.link.inverse(reg.eta))}, and the linear predictor {eta}_i = x_i^T beta + offset_i "
        "(x_i the i-th row of X, offset_i = 0 without an offset)"
        + (f"; {shared} shared by every row." if shared else "."),
        "",
        f"Per observation, l({args}) = log f({y}) with {theta} = g^-1({eta}):",
        f"    l = {_text(reg.log_density)}",
        f"    s = dl/d{eta} = {_text(reg.score)}",
    ]
    for s, g in zip(reg.shared, reg.shared_score):
        lines.append(f"    dl/d{s.name} = {_text(g)}")
    w = "not derived" if reg.weight is None else _text(reg.weight)
    lines += [
        f"    w = -E[d2l/d{eta}2] = {w}",
        f"Log-likelihood ell(beta{', ' + shared if shared else ''}) = sum_i l({y}_i, {eta}_i"
        f"{', ' + shared if shared else ''}); score d ell/d beta = X^T s (s the vector of s_i), "
        "Fisher information in beta X^T W X with W = diag(w_i).",
    ]
    return "\n".join(lines) + "\n"


def _estimation_doc(reg: Regression, cells: int) -> str:
    eta = reg.eta.name
    if reg.closed_form:
        lines = [
            f"Estimation (closed form): s = b (eta - z) with b = {_text(reg.slope)} and the working response "
            f"z = {_text(reg.working_response)}, so the score equations X^T s = 0 are the normal equations",
            "    X^T X beta = X^T (z - offset)",
            "whatever the shared parameters are.  beta_hat is their least-squares solution by Householder QR "
            "of X with one refinement step (X^T X is never formed or inverted).",
        ]
        if reg.shared:
            stats = ", ".join(
                f"{st.symbol} = sum_i {_text(st.expr)} at {eta}_i = x_i^T beta_hat + offset_i"
                for st in reg.residual_statistics
            )
            lines.append(f"Then the shared parameters, profiled at beta_hat ({stats}; N the number of rows):")
            lines += [f"    {s.name}_hat = {_text(reg.profile[s.name])}" for s in reg.shared]
        return "\n".join(lines) + "\n"
    lines = [
        "Estimation (no closed form): the score equations",
        f"    X^T s = 0,  s = dl/d{eta} = {_text(reg.score)}",
        *(
            f"    sum_i dl/d{s.name} = 0,  dl/d{s.name} = {_text(g)}"
            for s, g in zip(reg.shared, reg.shared_score)
        ),
        "solved by Newton's method with the exact Hessian",
        f"    d2 ell/d beta2 = X^T diag(d2l/d{eta}2) X,  d2l/d{eta}2 = {_text(reg.curvature)},",
        "on column-scaled coefficients, halving a step until ell does not decrease, until the Newton "
        "decrement is below 1e-10.  Starting values: the null model (every eta_i one number c plus the "
        "offset), searched on a subsample over the link of the response's mean and quantiles and a grid "
        "of eta's domain (the shared parameters over grids of theirs) and maximised by the same Newton's "
        "method; the coefficients start on the least-squares line through eta = c.",
    ]
    if reg.eta_domain == "real":
        lines.append(
            "First the design is searched for (quasi-)complete separation by linear programming (rows "
            "whose l never decreases, or never increases, as eta grows): a direction along which ell "
            "increases for ever means that the MLE does not exist, and is an error naming it (a design "
            f"in memory of at most {cells} cells; a larger one is left to Newton's method)."
        )
    return "\n".join(lines) + "\n"


def _stderr_doc(reg: Regression) -> str:
    if reg.closed_form:
        text = (
            "Standard errors: cov(beta_hat) = (X^T X)^-1 / (-b), (X^T X)^-1 = R^-1 R^-T from the "
            "triangular factor R of X"
        )
        if reg.shared:
            text += (
                ", times N/(N - p) (the unbiased residual variance: the t inference of least squares); "
                "the shared parameters' from the observed information in them at the estimate"
            )
        return text + ".\n"
    return (
        "Standard errors: the inverse of the observed information (minus the exact Hessian of ell in "
        "beta and the shared parameters) at the estimate.\n"
    )


# --------------------------------------------------------------------------------- the module


def regression_module_source(d: Derivation, *, timeout: float | None = None) -> str:
    """Source of a standalone module with ``PARAMETERS``, ``estimate``, ``stderr`` and ``log_likelihood``.

    ``estimate(y, X, offset=None, **constants)`` fits the regression of ``d`` to the response
    ``y`` and the design ``X`` (coefficients in ``X``'s column order); see the module's docstring.

    Examples
    --------
    >>> import symmle
    >>> src = regression_module_source(symmle.derive("logistic_regression"))
    >>> "def estimate(y, X, offset=None, **constants):" in src
    True
    """
    from symmle.numbers import regression_fit

    del timeout  # nothing is derived here: the Regression holds every expression printed
    reg = d.regression
    if reg is None:
        raise DerivationError(f"{d.model.name} is not a regression (it has no link)")
    m = reg.model
    clash = sorted({s.name for s in reg.shared} | {q.name for q in m.constants} & _ARGUMENTS)
    clash = [c for c in clash if c in _ARGUMENTS]
    if clash:
        raise SpecError(
            f"the parameter or constant '{clash[0]}' of {m.name} has the name of an argument of the "
            "generated functions (y, X, offset, beta): rename it to compile this regression"
        )
    f = _Functions()
    per = {reg.response: "_y", reg.eta: "_eta"}
    per.update({s: f"_phi[{j}]" for j, s in enumerate(reg.shared)})
    consts = {c: f"_c[{i}]" for i, c in enumerate(m.constant_symbols)}
    per.update(consts)
    k = len(reg.shared)
    flat = [reg.log_density, reg.hessian_score, *reg.shared_score]
    flat += [reg.hessian[i, j] for i in range(1 + k) for j in range(1 + k)]
    args = ("_y", "_eta", "_phi", "_c")
    derivatives = f.add("_reg_derivatives", args, per, flat, many=True, cse=True)
    logf = f.add("_reg_logf", args, per, [reg.log_density])
    # the simplified score for the signs of the search for separation: the form as differentiated
    # can be 0/0 where eta is far out (1 - 1/(1 + exp(-eta)) with exp(-eta) below rounding)
    score = f.add("_reg_score", args, per, [reg.score])
    theta = reg.parameter.symbol
    link = f.add("_reg_link", ("_theta", "_c"), {theta: "_theta", **consts}, [reg.link.forward(theta)])
    support = f.add("_reg_support", ("_c",), consts, list(m.support), many=True)
    closed = "None"
    if reg.closed_form:
        z = f.add("_reg_working", ("_y", "_c"), {reg.response: "_y", **consts}, [reg.working_response])
        yc = {reg.response: "_y", reg.eta: "_eta", **consts}
        stats = [
            f.add(f"_reg_statistic{j}", ("_y", "_eta", "_c"), yc, [st.expr])
            for j, st in enumerate(reg.residual_statistics, 1)
        ]
        n_symbol = sp.Symbol("N", integer=True, positive=True)
        pc = {
            n_symbol: "_n",
            **{st.symbol: f"_r[{j}]" for j, st in enumerate(reg.residual_statistics)},
            **consts,
        }
        profile = [
            f.add(f"_reg_profile{j}", ("_n", "_r", "_c"), pc, [reg.profile[s.name]])
            for j, s in enumerate(reg.shared, 1)
        ]
        slope = f.add("_reg_slope", ("_phi", "_c"), {**per, **consts}, [reg.slope])
        closed = (
            f'{{"z": {z}, "stats": [{", ".join(stats)}], "profile": [{", ".join(profile)}], '
            f'"slope": {slope}}}'
        )
    imports, runtime, defined = _runtime_parts()
    clash = (set(f.names) | set(API)) & defined
    if clash:
        raise AssertionError(f"the generated module would define {sorted(clash)} twice")
    known = {q.name: float(q.value) for q in m.constants if q.value is not None}
    plan = [
        f'"parameters": {_literal(("beta", *(s.name for s in reg.shared)))}',
        f'"shared": {_literal([s.name for s in reg.shared])}',
        f'"domains": {_literal([q.domain for s in reg.shared for q in m.parameters if q.symbol == s])}',
        f'"constants": {_literal([q.name for q in m.constants])}',
        f'"constant_domains": {_literal({q.name: q.domain for q in m.constants})}',
        f'"known": {_literal(known)}',
        f'"variable": {_literal(reg.response.name)}',
        f'"discrete": {_literal(bool(m.discrete))}',
        f'"support": {support}',
        f'"linked": {_literal(reg.parameter.name)}',
        f'"link_name": {_literal(reg.link.name)}',
        f'"eta_domain": {_literal(reg.eta_domain)}',
        f'"derivatives": {derivatives}',
        f'"logf": {logf}',
        f'"score": {score}',
        f'"link": {link}',
        f'"closed": {closed}',
        f'"rows": {_literal(regression_fit.CHUNK_ROWS)}',
        f'"max_iterations": {_literal(regression_fit.MAX_ITERATIONS)}',
        f'"separation_cells": {_literal(regression_fit.SEPARATION_CELLS)}',
    ]
    model_doc = _wrap(_model_doc(reg))
    estimation = _wrap(_estimation_doc(reg, regression_fit.SEPARATION_CELLS), 96)
    errors = _wrap(_stderr_doc(reg), 96)
    y = reg.response.name
    shared_values = "".join(f", {s.name}=..." for s in reg.shared)
    const_args = "".join(f", {q.name}=..." for q in m.constants if q.value is None)
    result = ", ".join(["'beta': array (p,)", *(f"{s.name!r}: float" for s in reg.shared)])
    header = _docstring(
        _wrap(
            f"{d.model.title}: a maximum-likelihood regression generated by symmle.\n\n"
            f"{model_doc}\n{estimation}{errors}\n"
            "Use::\n\n"
            "    import numpy as np\n"
            f"    estimate({y}, X{const_args})              # {{{result}}}, beta in X's column order\n"
            f"    estimate({y}, X, offset=o{const_args})    # o: a known term added to every eta_i\n"
            f"    stderr({y}, X{const_args})                # standard errors, same shapes\n"
            f"    log_likelihood({y}, X, beta=b{shared_values}{const_args})\n\n"
            f"{y} is a vector of N responses, X an (N, p) array (a pandas DataFrame names the "
            "coefficients in messages by its columns; a numpy.memmap is read a block of rows at a time).  "
            "The data are checked first: a value that is not a finite number, a response outside the "
            "support (or not an integer, for a discrete family), a rank-deficient design (naming the "
            "collinear columns), no more rows than columns, or data for which the MLE does not exist "
            "raise a DataError (a ValueError) naming the first one; a bad constant or value a SpecError "
            "(a ValueError too).\n\n"
            "Generated code: imports NumPy and SciPy only, and runs without SymPy or symmle.\n"
        )
    )
    future = [i for i in imports if i.startswith("from __future__")]
    others = [i for i in imports if not i.startswith("from __future__")]
    printer_imports = sorted(mod for mod in f.writer.imports if mod not in ("numpy", "math"))
    head = (
        header
        + "\n\n"
        + "".join(i + "\n" for i in future)
        + "\nimport numpy\n"
        + "".join(f"import {mod}\n" for mod in printer_imports)
        + "".join(i + "\n" for i in others)
    )
    values = "" if y == "y" else f" (the values of {y})"
    estimate_doc = _docstring(
        f"Maximum-likelihood estimates from the responses ``y``{values} and the design ``X`` "
        "(plus ``offset``).\n\n"
        f"{textwrap.indent(estimation, '    ')}\n"
        f"    Returns {{{result}}}.\n    "
    )
    stderr_doc = _docstring(
        f"Asymptotic standard errors at the estimates (None where none exists).\n\n"
        f"{textwrap.indent(errors, '    ')}    "
    )
    loglik_doc = _docstring(
        f"Log-likelihood ell = sum_i l({y}_i, eta_i{', ' if reg.shared else ''}"
        f"{', '.join(s.name for s in reg.shared)}) at the given values, eta_i = x_i^T beta + offset_i.\n\n"
        f"    l = {_text(reg.log_density)}\n    "
    )
    plan_text = textwrap.indent(",\n".join(plan), "    ")
    api = f"""

PARAMETERS = {_literal(("beta", *(s.name for s in reg.shared)))}
CONSTANTS = {_literal(tuple(q.name for q in m.constants))}

PLAN = {{
{plan_text},
}}


def estimate(y, X, offset=None, **constants):
    {estimate_doc}
    return regression_estimates(PLAN, regression_fit(PLAN, y, X, offset, constants))


def stderr(y, X, offset=None, **constants):
    {stderr_doc}
    return regression_stderr(PLAN, regression_fit(PLAN, y, X, offset, constants))


def estimate_with_stderr(y, X, offset=None, **constants):
    {_docstring("(estimates, standard errors) from one fit.")}
    fit = regression_fit(PLAN, y, X, offset, constants)
    return regression_estimates(PLAN, fit), regression_stderr(PLAN, fit)


def log_likelihood(y, X, offset=None, **params_and_constants):
    {loglik_doc}
    return regression_log_likelihood(PLAN, y, X, offset, params_and_constants)
"""
    return head + "\n\n" + runtime + "\n\n" + "\n\n".join(f.sources) + api
