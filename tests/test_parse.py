"""Tests of :mod:`symmle.model.parse`: correct parses, and refusal of hostile text.

Parsed expressions are compared symbolically with expressions built
directly with SymPy.  The hostile suite checks that every refusal is a
one-line :class:`SpecError` naming the ``what`` label, and that it comes
back quickly (resource bombs must be refused, not computed).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import secrets
import time

import pytest
import sympy as sp

from symmle.base.errors import SpecError
from symmle.model import parse as parse_module
from symmle.model.parse import CONSTANTS, FUNCTIONS, MAX_DEPTH, MAX_LENGTH, parse_expression, parse_number

WHAT = "density"
TIME_LIMIT = 2.0  # seconds; every refusal must come back well inside this

x = sp.Symbol("x", real=True)
mu = sp.Symbol("mu", real=True)
sigma2 = sp.Symbol("sigma2", positive=True)
alpha, beta_, lam, k, theta = sp.symbols("alpha beta_ lam k theta", positive=True)
p = sp.Symbol("p", positive=True)
n = sp.Symbol("n", integer=True, nonnegative=True)
NAMES = {
    "x": x,
    "mu": mu,
    "sigma2": sigma2,
    "alpha": alpha,
    "b": beta_,
    "lam": lam,
    "k": k,
    "theta": theta,
    "p": p,
    "n": n,
}


def parse(text: str) -> sp.Expr:
    return parse_expression(text, NAMES, what=WHAT)


def same(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.simplify(a - b) == 0


# ---------------------------------------------------------------------------
# correct parses
# ---------------------------------------------------------------------------

CATALOGUE = [
    (
        "exp(-(x - mu)**2/(2*sigma2))/sqrt(2*pi*sigma2)",
        sp.exp(-((x - mu) ** 2) / (2 * sigma2)) / sp.sqrt(2 * sp.pi * sigma2),
    ),
    (
        "lam**alpha/gamma(alpha)*x**(alpha - 1)*exp(-lam*x)",
        lam**alpha / sp.gamma(alpha) * x ** (alpha - 1) * sp.exp(-lam * x),
    ),
    (
        "gamma(alpha + b)/(gamma(alpha)*gamma(b))*x**(alpha - 1)*(1 - x)**(b - 1)",
        sp.gamma(alpha + beta_)
        / (sp.gamma(alpha) * sp.gamma(beta_))
        * x ** (alpha - 1)
        * (1 - x) ** (beta_ - 1),
    ),
    ("binomial(n, x)*p**x*(1 - p)**(n - x)", sp.binomial(n, x) * p**x * (1 - p) ** (n - x)),
    ("k/lam*(x/lam)**(k - 1)*exp(-(x/lam)**k)", k / lam * (x / lam) ** (k - 1) * sp.exp(-((x / lam) ** k))),
    ("lam^x*exp(-lam)/factorial(x)", lam**x * sp.exp(-lam) / sp.factorial(x)),
    ("1/(pi*(1 + (x - mu)^2))", 1 / (sp.pi * (1 + (x - mu) ** 2))),
    ("exp(-Abs(x - mu)/lam)/(2*lam)", sp.exp(-sp.Abs(x - mu) / lam) / (2 * lam)),
]


@pytest.mark.parametrize("text, expected", CATALOGUE, ids=[t for t, _ in CATALOGUE])
def test_catalogue_densities(text, expected):
    assert same(parse(text), expected)


def test_piecewise_uniform():
    got = parse("Piecewise((1/theta, x < theta), (0, True))")
    assert got == sp.Piecewise((1 / theta, x < theta), (0, True))


def test_piecewise_chained_and_boolean_conditions():
    got = parse("Piecewise((1, 0 <= x < theta), (2, x >= theta and x < 2*theta or x > 9), (0, True))")
    want = sp.Piecewise(
        (1, sp.And(x >= 0, x < theta)), (2, sp.Or(sp.And(x >= theta, x < 2 * theta), x > 9)), (0, True)
    )
    assert got == want


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x^2", x**2),
        ("x^2 + 1", x**2 + 1),
        ("-x^2", -(x**2)),
        ("2^3^2", sp.Integer(512)),
        ("x^-1", 1 / x),
        ("x**(-3/2)", x ** sp.Rational(-3, 2)),
        ("exp(-x**2)", sp.exp(-(x**2))),
        ("2**10", sp.Integer(1024)),
        ("+x - -mu", x + mu),
        ("log(x, 2)", sp.log(x) / sp.log(2)),
        ("Min(x, mu) + Max(x, 0, mu)", sp.Min(x, mu) + sp.Max(x, 0, mu)),
        (
            "polygamma(1, x) + digamma(x) + loggamma(x) + beta(x, mu)",
            sp.polygamma(1, x) + sp.digamma(x) + sp.loggamma(x) + sp.beta(x, mu),
        ),
        (
            "erf(x) + atan(x) + tanh(x) + sinh(x)*cosh(x) + sin(x)*cos(x)/tan(x)",
            sp.erf(x) + sp.atan(x) + sp.tanh(x) + sp.sinh(x) * sp.cosh(x) + sp.sin(x) * sp.cos(x) / sp.tan(x),
        ),
        ("E**x + oo", sp.exp(x) + sp.oo),
        ("-oo", -sp.oo),
        ("(x\n + 1)", x + 1),
        ("  x  ", x),
    ],
)
def test_operators_and_functions(text, expected):
    got = parse(text)
    assert got == expected or same(got, expected)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.1", sp.Rational(1, 10)),
        ("1.8", sp.Rational(9, 5)),
        ("1e-3", sp.Rational(1, 1000)),
        ("2.5e2", sp.Integer(250)),
        (".5", sp.Rational(1, 2)),
        ("1_000.25", sp.Rational(4001, 4)),
        ("0.3989422804014327", sp.Rational(3989422804014327, 10**16)),
    ],
)
def test_float_literals_become_exact_rationals(text, expected):
    got = parse(text)
    assert got == expected and got.is_Rational
    assert not parse(f"{text}*x").atoms(sp.Float)


def test_returned_symbols_are_the_callers_objects():
    pos = sp.Symbol("s", positive=True)
    got = parse_expression("s**2 + 1", {"s": pos})
    (sym,) = got.free_symbols
    # equal with the caller's assumptions (SymPy's LRU expression cache may hand back an equal,
    # older object inside a compound expression; a bare name is the caller's object itself)
    assert sym == pos and sym.assumptions0 == pos.assumptions0 and sym.is_positive
    assert parse_expression("s", {"s": pos}) is pos
    # the assumption is used: sqrt(s^2) = s only because s is positive
    assert parse_expression("sqrt(s^2)", {"s": pos}) == pos
    plain = sp.Symbol("s")
    assert parse_expression("sqrt(s^2)", {"s": plain}) != plain
    assert all(any(s == v for v in NAMES.values()) for s in parse(CATALOGUE[2][0]).free_symbols)


def test_identifiers_match_after_unicode_normalisation():
    # Python NFKC-normalises identifiers: the micro sign becomes Greek mu.
    micro = sp.Symbol("\u00b5")
    assert parse_expression("\u00b5 + 1", {"\u00b5": micro}) == micro + 1
    assert parse_expression("\uff58^2", {"x": x}) == x**2  # fullwidth x


def test_public_tables():
    assert set(FUNCTIONS) == {
        "exp",
        "log",
        "sqrt",
        "Abs",
        "gamma",
        "loggamma",
        "factorial",
        "binomial",
        "beta",
        "digamma",
        "polygamma",
        "erf",
        "sin",
        "cos",
        "tan",
        "sinh",
        "cosh",
        "tanh",
        "atan",
        "Min",
        "Max",
        "Piecewise",
        # functions of matrices (vector models)
        "transpose",
        "inverse",
        "det",
        "logdet",
        "trace",
        "sum",
        "diag",
    }
    assert dict(CONSTANTS) == {"pi": sp.pi, "E": sp.E, "oo": sp.oo}
    assert (MAX_LENGTH, MAX_DEPTH) == (2000, 40)
    with pytest.raises(TypeError):
        FUNCTIONS["eval"] = eval  # read-only


def test_limits_are_inclusive_for_ordinary_input():
    assert parse("x**1000") == x**1000
    assert parse("x**-1000") == x**-1000
    assert parse("1" * 30) == sp.Integer(int("1" * 30))
    assert parse("factorial(1000)") == sp.factorial(1000)
    assert parse("(" * 30 + "x" + ")" * 30) == x
    assert parse("+".join(["x"] * 40)) == 40 * x
    assert parse("x" + " " * (MAX_LENGTH - 1)) == x


# ---------------------------------------------------------------------------
# hostile input
# ---------------------------------------------------------------------------

HOSTILE = [
    "x.__class__",
    "__import__('os').system('echo pwned')",
    "eval('1')",
    "exec('1')",
    "open('/etc/passwd')",
    "Symbol('z')",
    "sympify('x')",
    "lambda: 1",
    "[x for x in range(9)]",
    "(x for x in range(9))",
    "x[0]",
    "'abc'",
    "b'abc'",
    "f'{x}'",
    "exp(x=1)",
    "exp(*[x])",
    "x if x else 1",
    "(y:=1)",
    "x**(9**9**9)",
    "9**9**9",
    "factorial(10**9)",
    "gamma(10**6)",
    "polygamma(0, 10**5)",
    "(2**1000)**1000",
    "2**2**2**2**2",
    "(x*2**1000)**1000",
    "exp(exp(exp(100)))",
    "Abs(exp(exp(exp(100))) - 5)",
    "sqrt(10**200 + 7)",
    "x**1001",
    "x**oo",
    "x+" * 50000,
    "(" * 500 + "x" + ")" * 500,
    "-" * 5000 + "x",
    "-" * 1990 + "x",
    "exp(" * 100 + "x" + ")" * 100,
    "unknownfunc(x)",
    "y + x",
    "y(2)",
    "x(2)",
    "(x)(2)",
    "exp",
    "1j*x",
    "True",
    "None",
    "x < 1",
    "x == 1",
    "x and 1",
    "not x",
    "x % 2",
    "x // 2",
    "~x",
    "x & 1",
    "{}",
    "{1, 2}",
    "[x]",
    "(x, 1)",
    "...",
    "exp()",
    "exp(x, x)",
    "log(x, 2, 3)",
    "Min(x)",
    "Max(" + ", ".join(f"x**{i}" for i in range(12)) + ")",
    "Piecewise(x)",
    "Piecewise((x, x))",
    "Piecewise((x, x < 1, 2))",
    "",
    "   ",
    "1e999",
    "1e-999",
    "1" + "0" * 40,
    "0.1234567890123456789012345678901234",
    "x +",
    "x )",
    "x\0",
    "x\n+ 1",
    "1/0",
    "x/0",
    "oo - oo",
]


def refusal(call, *args, what: str = WHAT, **kwargs) -> str:
    """Run a call that must be refused; return its message after the shared checks."""
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        call(*args, what=what, **kwargs)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < TIME_LIMIT, f"took {elapsed:.2f} s"
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{what}: ") and len(message) > len(what) + 4
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t[:40]) for t in HOSTILE])
def test_hostile_text_is_refused(text):
    refusal(parse_expression, text, NAMES)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("x.__class__", "attribute access is not allowed"),
        ("x[0]", "subscripts"),
        ("'abc'", "strings"),
        ("f'{x}'", "f-strings"),
        ("lambda: 1", "lambda"),
        ("exp(x=1)", "keyword arguments"),
        ("(y:=1)", ":="),
        ("y + x", "unknown symbol 'y'; declared names: x, mu, sigma2"),
        ("unknownfunc(x)", "unknown function 'unknownfunc'"),
        ("x < 1", "comparisons are only allowed in Piecewise conditions"),
        ("x and 1", "boolean operators"),
        ("1j*x", "complex"),
        ("exp(x, x)", "exp() takes 1 argument"),
        ("x +", "invalid syntax"),
        ("9**9**9", "exponent is too large"),
        ("(2**1000)**1000", "too large"),
        ("factorial(10**9)", "factorial() constant argument is too large"),
        ("x+" * 50000, "too long"),
        ("exp(" * 100 + "x" + ")" * 100, "nested too deeply"),
        ("(" * 500 + "x" + ")" * 500, "nested too deeply"),
        ("1" + "0" * 40, "more than 30 digits"),
        ("", "empty"),
        ("x/0", "undefined"),
    ],
)
def test_refusal_messages_name_the_problem(text, fragment):
    assert fragment in refusal(parse_expression, text, NAMES)


def test_label_is_used():
    message = refusal(parse_expression, "x.y", NAMES, what="support upper end")
    assert message == "support upper end: attribute access is not allowed"


def test_non_string_is_refused():
    refusal(parse_expression, 3, NAMES)
    refusal(parse_number, None)


def _balanced(items: list[str], op: str) -> str:
    # Shallow trees of many nodes: they pass the depth limit, so only the
    # per-operation limits and the time budget stand between them and SymPy.
    while len(items) > 1:
        items = [f"({a}{op}{b})" for a, b in zip(items[::2], items[1::2])] + items[len(items) // 2 * 2 :]
    return items[0]


COST_BOMBS = [
    _balanced([f"sqrt({10**29 + 2 * i + 1})" for i in range(48)], "*"),
    _balanced([f"({i + 2}*x)^1000" for i in range(120)], "*"),
    _balanced([f"factorial({1000 - i})" for i in range(110)], "*"),
    _balanced([f"exp({9000 - i})" for i in range(120)], "*"),
    _balanced([f"polygamma({3 + i % 2}, {900 - i})" for i in range(80)], "+"),
    _balanced(
        [
            f"Max(x^{i},x^{i + 1},x^{i + 2},x^{i + 3},x^{i + 4},x^{i + 5},x^{i + 6},x^{i + 7})"
            for i in range(28)
        ],
        "+",
    ),
    "Min(" + ",".join("Max(" + ",".join(f"x**{i * 6 + j}" for j in range(6)) + ")" for i in range(6)) + ")",
]


@pytest.mark.parametrize("text", COST_BOMBS, ids=[f"bomb{i}" for i in range(len(COST_BOMBS))])
def test_cost_bombs_finish_quickly(text):
    assert len(text) <= MAX_LENGTH
    start = time.perf_counter()
    try:
        parse(text)
    except SpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{WHAT}: ")
    assert time.perf_counter() - start < TIME_LIMIT


def test_nothing_is_executed(tmp_path):
    target = tmp_path / f"symmle_pwned_{secrets.token_hex(8)}"
    for text in (
        f"__import__('os').system('touch {target}')",
        f"exp(__import__('os').system('touch {target}'))",
        f"Piecewise((1, __import__('os').system('touch {target}') < 1))",
    ):
        refusal(parse_expression, text, NAMES)
    assert not target.exists()


def test_no_eval_or_sympify_on_text(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("text reached an evaluator")

    real_compile = builtins.compile

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to a tree only; anything else would be code.
        if not flags & ast.PyCF_ONLY_AST:
            forbidden()
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    import sympy.parsing.sympy_parser as sympy_parser

    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    monkeypatch.setattr(sympy_parser, "eval_expr", forbidden)
    for text, _ in CATALOGUE:
        parse(text)
    parse_number("sqrt(2)/3 + 1.5")


def test_module_source_has_no_evaluators():
    tree = ast.parse(inspect.getsource(parse_module))
    called = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert not called & {"eval", "exec", "compile", "sympify", "parse_expr", "S", "__import__"}


# ---------------------------------------------------------------------------
# parse_number
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.8", sp.Rational(9, 5)),
        ("sqrt(2)", sp.sqrt(2)),
        ("-3/4", sp.Rational(-3, 4)),
        ("pi", sp.pi),
        ("2^0.5", sp.sqrt(2)),
        ("1e-3", sp.Rational(1, 1000)),
        ("exp(1)", sp.E),
        ("42", sp.Integer(42)),
    ],
)
def test_parse_number(text, expected):
    got = parse_number(text)
    assert got == expected
    assert not got.free_symbols and not got.atoms(sp.Float)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("x", "unknown symbol 'x'"),
        ("1/0", "not a finite number"),
        ("oo", "not a finite number"),
        ("-oo", "not a finite number"),
        ("oo - oo", "not a finite number"),
        ("sqrt(-1)", "not a real number"),
        ("9**9**9", "exponent is too large"),
        ("__import__('os')", "unknown function"),
        ("", "empty"),
    ],
)
def test_parse_number_refusals(text, fragment):
    assert fragment in refusal(parse_number, text, what="constant n")
