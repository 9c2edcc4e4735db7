"""Safe parsing of untrusted expression text into SymPy objects.

Densities, support bounds, sampler arguments and constant values arrive as
text from command-line flags and spec files.  That text never reaches
``eval``, ``exec``, :func:`sympy.sympify` or :func:`sympy.parse_expr`: it is
parsed with :func:`ast.parse` and the tree is walked against a whitelist,
building SymPy objects directly.  SymPy evaluates numbers eagerly
(``9**9**9`` would run for ever), so every operation that can grow a number
is sized *before* SymPy is asked to do it.

Names may stand for matrices (the MatrixSymbols of a vector model): the
shape rules of the matrix syntax (``@``, ``transpose``, ``inverse``, ``det``,
``logdet``, ``trace``, ``sum``, ``diag``, entrywise functions, a 1 x 1 as a
scalar) live in :mod:`symmle.model.matrices`, which every operation here
consults.  :func:`parse_array` reads a vector or a matrix of numbers (the
value of a matrix constant).

The module is one concept, some 700 lines: the whitelist, the cost guards
that must sit next to each construct they guard (the array reader shares
them), and the helpers that show untrusted text back in messages
(:func:`brief`, :func:`strip_text`).
"""

from __future__ import annotations

import ast
import math
import time
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import NoReturn

import sympy as sp

from symmle.base.errors import SpecError
from symmle.model import matrices

__all__ = [
    "FUNCTIONS",
    "CONSTANTS",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "parse_expression",
    "parse_number",
    "parse_array",
    "brief",
    "strip_text",
]

MAX_LENGTH = 2000
MAX_DEPTH = 40

# Internal limits, chosen from measured SymPy costs (each guarded step stays
# well under 0.2 s).  4000 digits is below Python's 4300-digit int->str limit,
# so every accepted constant can still be printed.
_MAX_DIGITS = 4000
_MAX_LITERAL_DIGITS = 30
_MAX_EXPONENT = 1000
_MAX_SPECIAL_ARG = 1000  # polygamma(0, 10**4) alone takes > 1 s (exact harmonic sums)
_MAX_ROOT_DIGITS = 100  # SymPy trial-factors radicands: a 2000-digit sqrt takes ~1 s
_MAX_MINMAX_ARGS = 8  # Min/Max compare arguments pairwise; 60 take > 1 s
_MAX_SECONDS = 1.0  # safety net for costs that add up over many small nodes
_LOG10_E = math.log10(math.e)

FUNCTIONS: Mapping[str, Callable] = MappingProxyType(
    {
        "exp": sp.exp,
        "log": sp.log,
        "sqrt": sp.sqrt,
        "Abs": sp.Abs,
        "gamma": sp.gamma,
        "loggamma": sp.loggamma,
        "factorial": sp.factorial,
        "binomial": sp.binomial,
        "beta": sp.beta,
        "digamma": sp.digamma,
        "polygamma": sp.polygamma,
        "erf": sp.erf,
        "sin": sp.sin,
        "cos": sp.cos,
        "tan": sp.tan,
        "sinh": sp.sinh,
        "cosh": sp.cosh,
        "tanh": sp.tanh,
        "atan": sp.atan,
        "Min": sp.Min,
        "Max": sp.Max,
        "Piecewise": sp.Piecewise,
        # functions of matrices (symmle.model.matrices): vector models only
        **matrices.MATRIX_FUNCTIONS,
    }
)
CONSTANTS: Mapping[str, sp.Basic] = MappingProxyType({"pi": sp.pi, "E": sp.E, "oo": sp.oo})

_ARITY = {
    "log": (1, 2),
    "binomial": (2, 2),
    "beta": (2, 2),
    "polygamma": (2, 2),
    "Min": (2, None),
    "Max": (2, None),
    "Piecewise": (1, None),
}  # others: exactly 1
_EXP_LIKE = ("exp", "sinh", "cosh")
_SPECIAL = ("gamma", "loggamma", "factorial", "binomial", "beta", "digamma", "polygamma")
_STIRLING = (sp.gamma, sp.loggamma, sp.factorial, sp.binomial, sp.beta, sp.polygamma)
# What a name or function from other notations is written as here.
_INFINITY = "write oo for infinity"
_NAME_HINTS = {
    **dict.fromkeys(("inf", "Inf", "INF", "infinity", "Infinity", "infty", "np_inf"), _INFINITY),
    "e": "write exp(x) for e**x; E is Euler's number",
    "lambda": "a Python keyword; name the parameter lam",
}
_FUNCTION_HINTS = {
    "ln": "write log",
    "abs": "write Abs",
    "min": "write Min",
    "max": "write Max",
    "Gamma": "write gamma",
    "lgamma": "write loggamma",
    "gammaln": "write loggamma",
    "arctan": "write atan",
    "psi": "write digamma",
    "e": "write exp(x) for e**x",
}
_COMPARE = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}
_OPERATORS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_REFUSED = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambda expressions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.List: "list literals are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.Tuple: "tuples are only allowed as Piecewise arguments (expression, condition)",
    ast.Compare: "comparisons are only allowed in Piecewise conditions",
    ast.BoolOp: "boolean operators are only allowed in Piecewise conditions",
}


def _error(what: str, message: str) -> SpecError:
    # One line, whatever the label or Python's own messages contain.
    return SpecError(" ".join(f"{what}: {message}".split()))


def _digits(n: int) -> int:
    return int(abs(n).bit_length() * 0.30103) + 1  # decimal digits, +-1, without str()


def _abs_bound(e: sp.Basic) -> float:
    """Cheap upper bound on ``|e|`` for a constant *e* (may be ``inf``)."""
    if e.is_Rational:
        try:
            return abs(e.p) / e.q
        except OverflowError:
            return math.inf
    if not e.args:
        if e.is_NumberSymbol:  # pi, E, EulerGamma, ...
            return float(e)
        return math.inf if e.is_infinite else 1.0  # oo, zoo; I
    if e.is_Add:
        return sum(_abs_bound(a) for a in e.args)
    if e.is_Mul:
        bound = math.prod(_abs_bound(a) for a in e.args)
        return math.inf if math.isnan(bound) else bound
    size = _size(e)
    return 10.0**size if size < 300 else math.inf


def _size(e: sp.Basic) -> float:
    """Upper bound on the decimal digits needed to hold constant *e* exactly or
    to write its magnitude (max of rational digit counts and ``|log10|e||``)."""
    if e.is_Rational:
        return float(max(_digits(e.p), _digits(e.q)))
    if not e.args:
        return 1.0
    if isinstance(e, (sp.exp, sp.sinh, sp.cosh)):
        return max(1.0, _LOG10_E * _abs_bound(e.args[0]))
    if e.is_Pow:
        size = _abs_bound(e.exp) * _size(e.base) + _size(e.exp)
    elif isinstance(e, _STIRLING):  # log10 gamma(a) <= a log10 a
        a = max(_abs_bound(x) for x in e.args)
        size = a * math.log10(a + 1.0) + 1.0
    else:
        sizes = [_size(a) for a in e.args]
        size = sum(sizes) if e.is_Mul else max(sizes) + 1.0
    return math.inf if math.isnan(size) else size


def _coefficient_size(e: sp.Basic) -> float:
    # Operands were checked when built, so new numbers can only appear where
    # SymPy merges them: the numeric factors of each top-level term.
    return max(sum(_size(f) for f in sp.Mul.make_args(t) if not f.free_symbols) for t in sp.Add.make_args(e))


def _radical_digits(e: sp.Basic) -> int:
    # SymPy merges numeric radicals in a product (sqrt(a)*sqrt(b) -> sqrt(a*b))
    # and then factors the merged radicand, so their sizes add up.
    return sum(
        max(_digits(f.base.p), _digits(f.base.q))
        for f in sp.Mul.make_args(e)
        if f.is_Pow and f.base.is_Rational and not f.exp.is_Integer
    )


#: Operators that chain without nesting: a + b - c is one sum of three terms, a * b / c one product,
#: A @ B @ C one matrix product.
_CHAINS = ((ast.Add, ast.Sub), (ast.Mult, ast.Div), (ast.MatMult,))


def _chain(node: ast.AST) -> tuple[type, ...] | None:
    if isinstance(node, ast.BinOp):
        return next((c for c in _CHAINS if isinstance(node.op, c)), None)
    return None


def _depth(node: ast.AST) -> int:
    """How deeply ``node`` nests: a flat sum or product of many terms is one level, not one per term.

    Python parses ``a + b + c`` as ``(a + b) + c``; the left operand of a
    chain of the same kind of operator is the same level, not a deeper one.
    Iterative, so hostile nesting cannot exhaust the Python stack here.
    """
    deepest, stack = 0, [(node, 1)]
    skip = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        kind = _chain(node)
        for c in ast.iter_child_nodes(node):
            if isinstance(c, skip):
                continue
            same = kind is not None and c is node.left and _chain(c) == kind
            stack.append((c, depth if same else depth + 1))
    return deepest


class _Builder:
    """Walks a whitelisted AST, building SymPy objects bottom-up."""

    def __init__(self, source: str, names: Mapping[str, sp.Symbol], what: str) -> None:
        self.source, self.what = source, what
        self.declared = list(names)
        # Python NFKC-normalises identifiers in source; match the caller's names the same way.
        self.names = {unicodedata.normalize("NFKC", k): v for k, v in names.items()}
        self.deadline = time.perf_counter() + _MAX_SECONDS

    def fail(self, message: str) -> NoReturn:
        raise _error(self.what, message)

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            self.fail("expression is too expensive to build")

    def expr(self, node: ast.AST) -> sp.Expr:
        self.tick()
        if isinstance(node, ast.Constant):
            result = self.literal(node)
        elif isinstance(node, ast.Name):
            result = self.name(node.id)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.expr(node.operand)
            result = -operand if isinstance(node.op, ast.USub) else operand
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.fail("boolean operators are only allowed in Piecewise conditions")
        elif isinstance(node, (ast.UnaryOp, ast.BinOp)) and type(node.op) in _OPERATORS:
            self.fail(f"operator '{_OPERATORS[type(node.op)]}' is not allowed")
        elif isinstance(node, ast.BinOp):
            result = self.binop(node)
        elif isinstance(node, ast.Call):
            result = self.call(node)
        else:
            self.fail(_REFUSED.get(type(node), f"{type(node).__name__} is not allowed"))
        if not _coefficient_size(result) <= _MAX_DIGITS:
            self.fail(f"constant is too large (more than {_MAX_DIGITS} digits)")
        return result

    def literal(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or value is None:
            self.fail(f"{value} is not allowed here (True only as a Piecewise condition)")
        if isinstance(value, int):
            if abs(value) >= 10**_MAX_LITERAL_DIGITS:
                self.fail(f"number literal has more than {_MAX_LITERAL_DIGITS} digits")
            return sp.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value) or abs(value) > 1e300:
                self.fail("number literal is too large or not finite")
            # Exact value of the decimal text as written: 0.1 -> 1/10, not the binary float.
            text = (ast.get_source_segment(self.source, node) or repr(value)).replace("_", "")
            try:
                dec = Decimal(text)
            except InvalidOperation:
                dec = Decimal(repr(value))
            significant = "".join(map(str, dec.as_tuple().digits)).strip("0")
            if len(significant) > _MAX_LITERAL_DIGITS or (significant and abs(dec.adjusted()) > 300):
                self.fail("number literal has too many digits or too large an exponent")
            return sp.Rational(*dec.as_integer_ratio())
        if isinstance(value, complex):
            self.fail("complex numbers are not allowed")
        if isinstance(value, (str, bytes)):
            self.fail("strings are not allowed")
        self.fail(f"literal {type(value).__name__} is not allowed")

    def name(self, ident: str) -> sp.Expr:
        if ident in self.names:
            return self.names[ident]
        if ident in CONSTANTS:
            return CONSTANTS[ident]
        if ident in FUNCTIONS:
            self.fail(f"function '{ident}' must be called, e.g. {ident}(x)")
        hint = f" ({_NAME_HINTS[ident]})" if ident in _NAME_HINTS else ""
        if self.declared:
            self.fail(f"unknown symbol '{ident}'{hint}; declared names: {', '.join(self.declared)}")
        allowed = f"only numbers, {', '.join(CONSTANTS)} and functions are allowed here"
        self.fail(f"unknown symbol '{ident}'{hint}; {allowed}")

    def binop(self, node: ast.BinOp) -> sp.Expr:
        kind = _chain(node)
        if kind is None:  # ast.Pow ('^' was rewritten to '**')
            return self.power(self.expr(node.left), self.expr(node.right))
        # a chain a + b - c + ... (or a * b / c ...) is built in one step, without recursion per term:
        # SymPy adds n terms one by one in O(n**2) (500 terms: seconds), all at once in O(n log n)
        ops = []
        while _chain(node) == kind:
            ops.append((node.op, node.right))
            node = node.left
        operands = [self.expr(node)]
        for op, right in reversed(ops):
            value = self.expr(right)
            if isinstance(op, ast.Sub):
                value = -value
            elif isinstance(op, ast.Div):
                value = matrices.reciprocal(value, self.fail, self.scalar_power)
            operands.append(value)
        if kind is _CHAINS[2]:
            return matrices.matmul(operands, self.fail)
        if kind is _CHAINS[0]:
            self.check_sum(operands)
            return matrices.add(operands, self.fail, self.sum)
        return matrices.multiply(operands, self.fail, self.product)

    def sum(self, terms: list[sp.Expr]) -> sp.Expr:
        self.check_sum(terms)
        return sp.Add(*terms)

    def check_sum(self, terms: list[sp.Basic]) -> None:
        # SymPy merges the rational coefficients of like terms: their denominators multiply, at worst
        # (so do MatAdd's: the terms of a sum of matrices are checked the same way)
        args = [a for t in terms for a in sp.Add.make_args(t)]
        coeffs = [a.as_coeff_Mul()[0] for a in args]
        rationals = [c for c in coeffs if c.is_Rational]
        bound = max((_digits(c.p) for c in rationals), default=0) + sum(_digits(c.q) for c in rationals)
        if bound > _MAX_DIGITS + _digits(len(args)):
            self.fail(f"constant is too large (more than {_MAX_DIGITS} digits)")

    def product(self, factors: list[sp.Expr]) -> sp.Expr:
        if sum(_radical_digits(f) for f in factors) > _MAX_ROOT_DIGITS:
            self.fail(f"product of roots of large numbers (more than {_MAX_ROOT_DIGITS} digits)")
        # the numeric factors multiply: their sizes add
        if sum(_coefficient_size(f) for f in factors) > _MAX_DIGITS:
            self.fail(f"constant is too large (more than {_MAX_DIGITS} digits)")
        return sp.Mul(*factors)

    def power(self, base: sp.Basic, exponent: sp.Basic) -> sp.Basic:
        return matrices.power(base, exponent, self.fail, self.scalar_power)

    def scalar_power(self, base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
        if not exponent.free_symbols:
            if not _abs_bound(exponent) <= _MAX_EXPONENT:
                self.fail(f"exponent is too large (limit {_MAX_EXPONENT} in magnitude)")
            # SymPy evaluates numeric powers and distributes over numeric factors
            # ((c*x)**n -> c**n * x**n), so size the constant part of the base.
            const = sp.Mul(*[f for f in sp.Mul.make_args(base) if not f.free_symbols])
            if not _abs_bound(exponent) * _size(const) <= _MAX_DIGITS:
                self.fail(f"power is too large (more than {_MAX_DIGITS} digits)")
            if exponent.is_integer is not True and _size(const) > _MAX_ROOT_DIGITS:
                self.fail(f"root of a number with more than {_MAX_ROOT_DIGITS} digits")
        return sp.Pow(base, exponent)

    def call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            self.fail(_REFUSED.get(type(node.func), "only the built-in functions can be called, by name"))
        fname = node.func.id
        if fname not in FUNCTIONS:
            if fname in self.names or fname in CONSTANTS:
                self.fail(f"'{fname}' is not a function")
            hint = f" ({_FUNCTION_HINTS[fname]})" if fname in _FUNCTION_HINTS else ""
            self.fail(f"unknown function '{fname}'{hint}; available: {', '.join(FUNCTIONS)}")
        if node.keywords:
            self.fail(f"keyword arguments are not allowed (in {fname}())")
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.fail(f"starred arguments are not allowed (in {fname}())")
        low, high = _ARITY.get(fname, (1, 1))
        if not low <= len(node.args) <= (high or len(node.args)):
            expected = f"{low}" if low == high else f"{low} or {high}" if high else f"at least {low}"
            self.fail(f"{fname}() takes {expected} argument(s), got {len(node.args)}")
        if fname == "Piecewise":
            return self.piecewise(node.args)
        args = [self.expr(a) for a in node.args]
        if fname in matrices.MATRIX_FUNCTIONS:
            return matrices.matrix_function(fname, args[0], self.fail)
        if fname == "sqrt":
            return self.power(args[0], sp.S.Half)
        if any(matrices.is_matrix(a) for a in args):  # entrywise on a vector, or of a 1 x 1 as a scalar
            return matrices.function_of_matrices(fname, args, self.fail, lambda a: self.scalar_call(fname, a))
        return self.scalar_call(fname, args)

    def scalar_call(self, fname: str, args: list[sp.Expr]) -> sp.Expr:
        const = [a for a in args if not a.free_symbols]
        if fname in _EXP_LIKE and const and not _LOG10_E * _abs_bound(const[0]) <= _MAX_DIGITS:
            self.fail(f"{fname}() of a constant this large is too large to represent")
        if fname in _SPECIAL and not all(_abs_bound(a) <= _MAX_SPECIAL_ARG for a in const):
            self.fail(f"{fname}() constant argument is too large (limit {_MAX_SPECIAL_ARG} in magnitude)")
        if (
            fname == "polygamma"
            and len(const) == 2
            and not ((_abs_bound(args[0]) + 1) * max(1.0, _abs_bound(args[1])) <= _MAX_DIGITS)
        ):
            self.fail("polygamma() order times argument is too large to evaluate")
        if fname in ("Min", "Max"):
            cls = FUNCTIONS[fname]
            if sum(len(a.args) if isinstance(a, cls) else 1 for a in args) > _MAX_MINMAX_ARGS:
                self.fail(f"{fname}() of more than {_MAX_MINMAX_ARGS} arguments is not allowed")
        return FUNCTIONS[fname](*args)

    def array(self, node: ast.AST) -> sp.ImmutableMatrix:
        """A list of numbers (a column) or a list of rows (a matrix), each entry a finite real number."""
        shape = "a list of numbers [a, b, ...] or of rows [[a, b], [c, d]]"
        if not isinstance(node, (ast.List, ast.Tuple)) or not node.elts:
            self.fail(f"expected {shape}")
        nested = [isinstance(e, (ast.List, ast.Tuple)) for e in node.elts]
        if any(nested) and not all(nested):
            self.fail(f"expected {shape}, not a mix of numbers and lists")
        if not any(nested):
            return sp.ImmutableMatrix(len(node.elts), 1, [self.number(e) for e in node.elts])
        rows = [[self.number(e) for e in row.elts] for row in node.elts]
        if len({len(row) for row in rows}) != 1 or not rows[0]:
            self.fail("the rows of a matrix must be non-empty and of one length")
        return sp.ImmutableMatrix(rows)

    def number(self, node: ast.AST) -> sp.Expr:
        value = self.expr(node)
        if matrices.is_matrix(value) or value.free_symbols or value.has(sp.oo, -sp.oo, sp.zoo, sp.nan):
            self.fail(f"entry {brief(ast.get_source_segment(self.source, node))} is not a finite number")
        if value.is_extended_real is False:
            self.fail(f"entry {brief(ast.get_source_segment(self.source, node))} is not a real number")
        return value

    def piecewise(self, nodes: list[ast.expr]) -> sp.Expr:
        pieces = []
        for node in nodes:
            if not (isinstance(node, ast.Tuple) and len(node.elts) == 2):
                self.fail("Piecewise arguments must be (expression, condition) pairs")
            value = matrices.scalar(self.expr(node.elts[0]), self.fail, "a Piecewise value")
            pieces.append((value, self.condition(node.elts[1])))
        return sp.Piecewise(*pieces)

    def condition(self, node: ast.AST) -> sp.Basic:
        self.tick()
        if isinstance(node, ast.Constant) and node.value is True:
            return sp.true
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v) for v in node.values]
            return sp.And(*parts) if isinstance(node.op, ast.And) else sp.Or(*parts)
        if not isinstance(node, ast.Compare):
            self.fail("a Piecewise condition must be a comparison (<, <=, >, >=) or True")
        # Chained comparisons (0 < x < 1) become And of the pairwise relations.
        terms = [
            matrices.scalar(self.expr(t), self.fail, "a comparison") for t in (node.left, *node.comparators)
        ]
        relations = []
        for op, lhs, rhs in zip(node.ops, terms, terms[1:]):
            if type(op) not in _COMPARE:
                self.fail(f"comparison '{_OPERATORS.get(type(op), '?')}' is not allowed; use <, <=, > or >=")
            relations.append(_COMPARE[type(op)](lhs, rhs))
        return sp.And(*relations)


def _build(text: str, names: Mapping[str, sp.Basic], what: str, *, array: bool = False) -> sp.Basic:
    if not isinstance(text, str):
        raise _error(what, f"expected text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:  # before ast.parse: parsing cost grows with length
        raise _error(what, f"text is too long ({len(text)} characters; limit {MAX_LENGTH})")
    stripped = strip_text(text)
    if not stripped:
        raise _error(what, "empty expression")
    # '^' is textual power; rewriting gives it the precedence of '**' (Python's
    # '^' is XOR and binds looser than '+').  No string literal survives parsing.
    source = stripped.replace("^", "**")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "'abc'()"
            tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):
        raise _error(what, "expression is nested too deeply") from None
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if "too many nested" in message or "too complex" in message:
            raise _error(what, "expression is nested too deeply") from None
        where = ""
        if exc.offset and "^" not in stripped:  # '^' -> '**' shifts columns
            where = (
                f" at line {exc.lineno}, column {exc.offset}"
                if (exc.lineno or 1) > 1
                else f" at column {exc.offset}"
            )
        detail = "" if message == "invalid syntax" else f": {message}"
        raise _error(what, f"invalid syntax{where}{detail}") from None
    except ValueError as exc:  # e.g. null bytes on some Python versions
        raise _error(what, f"invalid syntax: {exc}") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise _error(what, f"expression is nested too deeply (limit {MAX_DEPTH} levels)")
    try:
        builder = _Builder(source, names, what)
        return builder.array(tree.body) if array else builder.expr(tree.body)
    except SpecError:
        raise
    except Exception as exc:  # SymPy rejecting a combination, e.g. comparing I < 1
        raise _error(what, f"cannot build expression ({type(exc).__name__}: {exc})") from None


def strip_text(text: str) -> str:
    r"""``text`` without surrounding white space, nor a byte-order mark (U+FEFF) at its start.

    A file saved "with BOM" starts with U+FEFF, and text copied from it
    keeps it: it is taken as the white space it looks like.

    Examples
    --------
    >>> strip_text("\ufeff lam*exp(-lam*x) ")
    'lam*exp(-lam*x)'
    """
    return text.strip().lstrip("\ufeff").strip()


def brief(value: object, limit: int = 60) -> str:
    r"""``value`` as one line of at most ``limit`` characters, for a message.

    A number too long to show is written in scientific notation
    (``factorial(1000)`` as ``4.02387e+2567``); other long text is cut
    with ``...``; characters that are not printable are escaped.

    Examples
    --------
    >>> brief(sp.factorial(1000)), brief(sp.Rational(9, 5))
    ('4.02387e+2567', '9/5')
    >>> brief("x" * 100, 10), brief("a\nb")
    ('xxxxxxx...', 'a\\nb')
    """
    text = str(value)
    if len(text) > limit and isinstance(value, sp.Basic) and value.is_number:
        try:
            text = str(sp.N(value, 6))
        except (TypeError, ValueError, ArithmeticError):
            pass
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_expression(text: str, names: Mapping[str, sp.Basic], *, what: str = "expression") -> sp.Basic:
    """Parse untrusted expression text into a SymPy expression.

    Parameters
    ----------
    text : str
        Expression in Python syntax; ``^`` means power.  Allowed: numbers,
        the identifiers in `names`, :data:`CONSTANTS`, calls of
        :data:`FUNCTIONS`, ``+ - * / ** ^``, and ``Piecewise((expr, cond), ...)``
        whose conditions are comparisons (chains allowed), ``and``/``or`` or ``True``.
    names : Mapping[str, sympy.Symbol or sympy.MatrixSymbol]
        Allowed identifiers and the caller's Symbols, returned as the same objects.
        A MatrixSymbol allows the matrix syntax of :mod:`symmle.model.matrices`
        (``A @ B``, ``transpose``, ``inverse``, ``det``, ``logdet``, ``trace``,
        ``sum``, ``diag``), its shapes checked.
    what : str
        Label used at the start of error messages, e.g. ``"density"``.

    Returns
    -------
    sympy.Expr or sympy.MatrixExpr
        The expression; float literals become exact Rationals.  A matrix
        expression if ``text`` denotes one (``x - mu``); a 1 x 1 matrix stays
        one unless used as a scalar (``exp(transpose(x) @ x)``).

    Raises
    ------
    SpecError
        With a one-line message, for any refused construct, unknown name,
        syntax error, oversized or too deeply nested text, resource bomb,
        shape mismatch, or an undefined result (division by zero).

    Examples
    --------
    >>> x, lam = sp.Symbol("x", positive=True), sp.Symbol("lam", positive=True)
    >>> f = parse_expression("lam*exp(-lam*x)", {"x": x, "lam": lam}, what="density")
    >>> f, f.diff(lam)
    (lam*exp(-lam*x), -lam*x*exp(-lam*x) + exp(-lam*x))
    >>> parse_expression("x^2 + 0.5", {"x": x})
    x**2 + 1/2
    >>> parse_expression("__import__('os')", {"x": x}, what="density")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    symmle.SpecError: density: unknown function '__import__'; available: exp, log, ...
    >>> parse_expression("9**9**9", {}, what="density")
    Traceback (most recent call last):
        ...
    symmle.SpecError: density: exponent is too large (limit 1000 in magnitude)
    """
    result = _build(text, names, what)
    if result.has(sp.nan, sp.zoo):
        raise _error(what, "expression is undefined (division by zero, or oo - oo)")
    return result


def parse_array(text: str, *, what: str = "value") -> sp.ImmutableMatrix:
    """Parse untrusted text that must denote a vector or a matrix of finite real numbers.

    Parameters
    ----------
    text : str
        ``[a, b, ...]`` (a column vector) or ``[[a, b], [c, d]]`` (a matrix, by rows);
        each entry is a constant expression as for :func:`parse_number`.
    what : str
        Label used at the start of error messages.

    Returns
    -------
    sympy.ImmutableMatrix
        ``n x 1`` for a list of numbers, ``rows x cols`` for a list of rows;
        exact entries where possible (``"0.5"`` -> ``1/2``).

    Raises
    ------
    SpecError
        As :func:`parse_expression`, and if the text is not such a list, its rows
        differ in length, or an entry is not a finite real number.

    Examples
    --------
    >>> parse_array("[[2, 0.5], [0.5, 1]]")
    Matrix([
    [  2, 1/2],
    [1/2,   1]])
    >>> parse_array("[0, sqrt(2)]").shape
    (2, 1)
    >>> parse_array("[[1, 2], [3]]", what="constant Sigma")
    Traceback (most recent call last):
        ...
    symmle.SpecError: constant Sigma: the rows of a matrix must be non-empty and of one length
    """
    return _build(text, {}, what, array=True)


def parse_number(text: str, *, what: str = "value") -> sp.Expr:
    """Parse untrusted text that must denote a finite real constant.

    Parameters
    ----------
    text : str
        A constant expression such as ``"1.8"``, ``"sqrt(2)"``, ``"-3/4"`` or ``"pi"``.
    what : str
        Label used at the start of error messages.

    Returns
    -------
    sympy.Expr
        An exact SymPy number where possible (``"1.8"`` -> ``Rational(9, 5)``).

    Raises
    ------
    SpecError
        As :func:`parse_expression`, and if the text contains a name or its
        value is infinite, undefined or not real.

    Examples
    --------
    >>> parse_number("1.8"), parse_number("-3/4"), parse_number("sqrt(2)")
    (9/5, -3/4, sqrt(2))
    >>> parse_number("oo", what="constant k")
    Traceback (most recent call last):
        ...
    symmle.SpecError: constant k: not a finite number
    >>> parse_number("x", what="constant k")
    Traceback (most recent call last):
        ...
    symmle.SpecError: constant k: unknown symbol 'x'; only numbers, pi, E, oo and functions are allowed here
    """
    result = _build(text, {}, what)
    if result.has(sp.oo, sp.zoo, sp.nan, -sp.oo):
        raise _error(what, "not a finite number")
    if result.is_extended_real is False:
        raise _error(what, "not a real number")
    return result
