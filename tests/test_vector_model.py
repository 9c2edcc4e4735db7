"""The model layer of vector models (issue 12): matrix syntax, dimension, matrix domains, explicit forms.

Densities are compared as numbers, at a concrete dimension, with SciPy's own
(``scipy.stats.multivariate_normal``, ``dirichlet``, ``multinomial``): never as strings.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from symmle.base.errors import SpecError
from symmle.model.build import inline_model, load_model, model_from_dict
from symmle.model.catalogue import catalogue_dir
from symmle.model.density import check_density
from symmle.model.explicit import at_dimension, coordinates, entry_values, explicit_symbols, model_point
from symmle.model.parse import parse_array, parse_expression

SPECS = catalogue_dir()  # the vector families of the catalogue
NAMES = (
    "mvnormal",
    "mvnormal_known_cov",
    "mvnormal_diagonal",
    "mvnormal_isotropic",
    "categorical",
    "multinomial",
    "dirichlet",
)
MVN = "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))"

D = sp.Symbol("D", integer=True, positive=True)
x = sp.MatrixSymbol("x", D, 1)
mu = sp.MatrixSymbol("mu", D, 1)
Sigma = sp.MatrixSymbol("Sigma", D, D)
c = sp.Symbol("c", positive=True)
TABLE = {"x": x, "mu": mu, "Sigma": Sigma, "D": D, "c": c}


def parse(text: str):
    return parse_expression(text, TABLE, what="density")


@functools.cache
def spec(name: str):
    return load_model(SPECS / f"{name}.toml")


def mvn_model(**changes):
    data = {
        "variable": "x",
        "dimension": "D",
        "density": MVN,
        "parameters": {"mu": "vector", "Sigma": "spd"},
    }
    data.update(changes)
    return model_from_dict({k: v for k, v in data.items() if v is not None}, origin="t.toml")


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


# --------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------


def test_matrix_syntax_builds_the_sympy_objects():
    assert parse("transpose(x) @ x").shape == (1, 1)
    assert parse("x @ transpose(x)").shape == (D, D)
    assert parse("inverse(Sigma)") == sp.Inverse(Sigma)
    assert parse("det(Sigma)") == sp.Determinant(Sigma)
    assert parse("logdet(Sigma)") == sp.log(sp.Determinant(Sigma))
    assert parse("trace(Sigma)") == sp.Trace(Sigma)
    assert parse("sum(x)") == sp.MatMul(sp.OneMatrix(1, D), x)
    assert parse("diag(mu)").shape == (D, D)
    assert parse("transpose(x - mu)") == (x - mu).T


def test_a_1x1_in_scalar_context_is_its_trace():
    assert parse("exp(transpose(x) @ x)") == sp.exp(sp.Trace(x.T * x))
    assert parse("c + transpose(x) @ x") == c + sp.Trace(x.T * x)
    assert parse("(transpose(x) @ x)**2") == sp.Trace(x.T * x) ** 2
    # the density of a vector model is a scalar, with the same symbols it was given
    f = parse(MVN)
    assert not f.is_Matrix
    assert {s for s in f.free_symbols} == {x, mu, Sigma, D}


def test_scalar_functions_act_entrywise_and_scalars_broadcast():
    log_x = parse("log(x)")
    assert log_x.shape == (D, 1)
    assert log_x == parse("log(x)")  # one shared entry variable: equal expressions are equal
    assert parse("x + 1") == x + sp.OneMatrix(D, 1)
    assert parse("1 + x") == parse("x + 1")
    table = {D: 2, x: sp.ImmutableMatrix([sp.Symbol("a", positive=True), sp.Symbol("b", positive=True)])}
    a, b = table[x]
    assert at_dimension(parse("log(x)"), table) == sp.ImmutableMatrix([sp.log(a), sp.log(b)])
    assert at_dimension(parse("sqrt(x) + c"), table) == sp.ImmutableMatrix([sp.sqrt(a) + c, sp.sqrt(b) + c])
    assert at_dimension(parse("c/x"), table) == sp.ImmutableMatrix([c / a, c / b])
    assert at_dimension(parse("sum(loggamma(x + 1))"), table) == sp.ImmutableMatrix(
        [[sp.loggamma(a + 1) + sp.loggamma(b + 1)]]
    )


def test_scalar_expressions_are_unchanged():
    s = sp.Symbol("s", positive=True)
    assert parse_expression("exp(-s*2)/sqrt(2*pi)", {"s": s}) == sp.exp(-2 * s) / sp.sqrt(2 * sp.pi)
    assert parse_expression("s^2 + 0.5", {"s": s}) == s**2 + sp.Rational(1, 2)


BAD = {
    "x * x": "write A @ B",
    "x / x": "write A @ B",
    "x + Sigma": "shape mismatch in '+' or '-': D x 1 and D x D",
    "x - transpose(x)": "shape mismatch",
    "Sigma + 1": "cannot add a scalar to a D x D matrix",
    "x @ x": "shape mismatch in '@': D x 1 @ D x 1",
    "Sigma @ transpose(x)": "shape mismatch in '@': D x D @ 1 x D",
    "2 @ x": "'@' needs matrices",
    "inverse(x)": "inverse() needs a square matrix, got D x 1",
    "inverse(c)": "inverse() needs a square matrix, got a scalar",
    "det(x)": "det() needs a square matrix, got D x 1",
    "logdet(transpose(x))": "logdet() needs a square matrix, got 1 x D",
    "trace(c)": "trace() needs a square matrix, got a scalar",
    "sum(Sigma)": "sum() needs a vector (D x 1), got D x D",
    "diag(Sigma)": "diag() needs a vector",
    "transpose(c)": "transpose() needs a matrix",
    "exp(Sigma)": "exp() of a D x D matrix is not defined",
    "binomial(x, x)": "binomial() of two matrices",
    "Sigma**2": "'**' of a D x D matrix is not supported",
    "x**x": "'**' of two matrices",
    "c / Sigma": "division by a D x D matrix",
    "Piecewise((x, c > 1), (c, True))": "a Piecewise value needs a scalar, got a D x 1 matrix",
    "Piecewise((c, x > 1), (c, True))": "a comparison needs a scalar, got a D x 1 matrix",
    "det(Sigma, Sigma)": "det() takes 1 argument(s), got 2",
    "sum(x, 1)": "sum() takes 1 argument(s), got 2",
    "inverse": "function 'inverse' must be called",
    "x.T": "attribute access is not allowed",
    "transpose(x).T @ x": "attribute access is not allowed",
    "Sigma.inv()": "attribute access is not allowed",
    "x[0]": "subscripts are not allowed",
    "x.__class__.__bases__": "attribute access is not allowed",
    "__import__('os').system('true')": "attribute access is not allowed",
    "__import__('os')": "unknown function '__import__'",
    "transpose(x) @ (lambda: 1)()": "lambda expressions are not allowed",
    "transpose(x) @ (x)(1)": "'x' is not a function",
    "inverse(Sigma)(x)": "only the built-in functions can be called",
    "[x, x]": "list literals are not allowed",
    "x @ 9**9**9": "exponent is too large",
    "x @= x": "invalid syntax",
}


@pytest.mark.parametrize("text", BAD)
def test_bad_matrix_text_is_one_clear_line(text):
    message = one_line_error(parse, text)
    assert message.startswith("density: ")
    assert BAD[text] in message, message


def test_sympy_would_build_shape_errors_silently():
    # why the parser checks shapes itself: with a symbolic D, SymPy 1.14 builds all of these
    assert (x + Sigma).shape == (D, D) and (x * x).shape == (D, 1)
    assert one_line_error(parse, "x + Sigma") and one_line_error(parse, "x * x")


def test_parse_array():
    assert parse_array("[[2, 0.5], [0.5, 1]]") == sp.ImmutableMatrix([[2, sp.S.Half], [sp.S.Half, 1]])
    assert parse_array(" [0, sqrt(2), -1] ").shape == (3, 1)
    for text, fragment in {
        "[]": "expected a list",
        "1": "expected a list",
        "[[1, 2], [3]]": "of one length",
        "[1, [2]]": "a mix of numbers and lists",
        "[oo]": "not a finite number",
        "[sqrt(-1)]": "not a real number",
        "[x]": "unknown symbol 'x'",
        "[[[1]]]": "list literals are not allowed",
        "[1e999]": "too large",
        "[__import__('os')]": "unknown function",
    }.items():
        assert fragment in one_line_error(parse_array, text, what="constant Sigma"), text


# --------------------------------------------------------------------------
# the seven specs: they load, their densities are SciPy's
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_vector_specs_load_and_share_one_symbol_table(name):
    m = spec(name)  # checks the density numerically at D = 2 and 1
    assert m.name == name and m.is_vector
    assert m.dimension.is_integer and m.dimension.is_positive
    assert m.variable == sp.MatrixSymbol("x", m.dimension, 1)
    table = m.symbols
    # one object per name, the same the density and the sampler use
    for s in m.density.free_symbols | {s for _, e in m.sampler.args for s in e.free_symbols}:
        assert table[s.name] == s and type(table[s.name]) is type(s)
    assert m.density.atoms(sp.MatrixSymbol) <= set(table.values())
    for q in (*m.parameters, *m.constants):
        assert q.shape == m.shapes()[q.name]
        assert all(d in (1, m.dimension) for d in q.shape)
    assert m.to_dict()["dimension"] == m.dimension.name
    assert m.to_dict()["support"] == m.support_set


def test_shapes_and_to_dict_of_a_scalar_model_are_unchanged():
    m = load_model("normal")
    assert m.dimension is None and not m.is_vector
    assert "dimension" not in m.to_dict() and m.to_dict()["support"] == ["-oo", "oo"]
    assert set(m.shapes().values()) == {()}


def _density_at(m, n, rng, xs):
    """The spec's density at dimension n, at random admissible parameters, at the points xs."""
    table = explicit_symbols(m, n)
    point = model_point(m, n, rng)
    f = at_dimension(m.density, table).xreplace(entry_values(table, point))
    fn = sp.lambdify(list(table[m.variable]), f, modules=["scipy", "numpy"])
    return point, [float(fn(*row)) for row in xs]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_normal_specs_are_scipys_multivariate_normal(n):
    rng = np.random.default_rng(n)
    xs = rng.normal(size=(5, n))
    for name in ("mvnormal", "mvnormal_known_cov", "mvnormal_diagonal", "mvnormal_isotropic"):
        m = spec(name)
        point, got = _density_at(m, n, rng, xs)
        values = {s.name: v for s, v in point.items()}
        if "Sigma" in values:
            cov = values["Sigma"]
        elif np.ndim(values["s2"]):
            cov = np.diag(values["s2"][:, 0])
        else:
            cov = values["s2"] * np.eye(n)
        want = stats.multivariate_normal(values["mu"][:, 0], cov).pdf(xs)
        np.testing.assert_allclose(got, np.atleast_1d(want), rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("n", [2, 3])
def test_the_categorical_multinomial_and_dirichlet_specs_are_scipys(n):
    rng = np.random.default_rng(10 + n)
    onehot = np.eye(n)
    point, got = _density_at(spec("categorical"), n, rng, onehot)
    p = next(v for s, v in point.items() if s.name == "p")[:, 0]
    np.testing.assert_allclose(got, p, rtol=1e-12)

    counts = np.array([[3] + [1] * (n - 1), [0] * (n - 1) + [7], list(range(n))])
    point, got = _density_at(spec("multinomial"), n, rng, counts)
    p = next(v for s, v in point.items() if s.name == "p")[:, 0]
    want = [stats.multinomial(int(row.sum()), p).pmf(row) for row in counts]
    np.testing.assert_allclose(got, want, rtol=1e-10)

    shares = rng.dirichlet(np.ones(n), size=4)
    point, got = _density_at(spec("dirichlet"), n, rng, shares)
    a = next(v for s, v in point.items() if s.name == "a")[:, 0]
    np.testing.assert_allclose(got, [stats.dirichlet(a).pdf(s) for s in shares], rtol=1e-10)


def test_samplers_of_the_specs():
    m = spec("mvnormal")
    assert m.sampler.method == "multivariate_normal"
    assert dict(m.sampler.args) == {"mean": m.symbols["mu"], "cov": m.symbols["Sigma"]}
    assert dict(spec("categorical").sampler.args)["n"] == 1
    assert spec("dirichlet").sampler.method == "dirichlet"
    diagonal = dict(spec("mvnormal_diagonal").sampler.args)
    assert diagonal["scale"].shape == (spec("mvnormal_diagonal").dimension, 1)  # entrywise sqrt(s2)


# --------------------------------------------------------------------------
# what a vector model, and a scalar one, refuse
# --------------------------------------------------------------------------


def test_matrix_domains_need_a_dimension():
    data = {"variable": "x", "support": ["-oo", "oo"], "density": MVN, "parameters": {"mu": "vector"}}
    message = one_line_error(model_from_dict, data, origin="t.toml")
    assert "parameter 'mu' has domain 'vector'" in message and 'dimension = "D"' in message
    data.update(support="simplex", parameters={"p": "positive"}, density="p*exp(-p*x)")
    assert "support 'simplex' is a set of vectors" in one_line_error(model_from_dict, data)
    message = one_line_error(inline_model, "lam*exp(-lam*x)", "x", "0,oo", ["lam:positive", "S2:spd"])
    assert "needs a vector model" in message


VECTOR_REFUSALS = {
    "list support": ({"support": ["-oo", "oo"]}, "the support of a vector model is one of real, simplex"),
    "unknown support": ({"support": "sphere"}, "is one of real, simplex, onehot, counts"),
    "discrete on R^D": ({"discrete": True}, "discrete must be false"),
    "vector density": ({"density": "x - mu + 0*det(Sigma)"}, "density: must be a scalar, got a D x 1 matrix"),
    "unused parameter": ({"density": "exp(-transpose(x) @ x/2)/sqrt((2*pi)**D)"}, "parameter 'mu' does not"),
    "no variable": ({"density": "exp(-transpose(mu) @ mu/2)/sqrt((2*pi)**D*det(Sigma))"}, "does not depend"),
    "transform": ({"sampler": {"method": "normal", "args": {"loc": "0"}, "transform": "x"}}, "no transform"),
    "vector sampler args": (
        {"sampler": {"method": "multivariate_normal", "args": {"mean": "mu"}}},
        "takes the arguments mean, cov (got mean)",
    ),
    "sampler shape": (
        {"sampler": {"method": "multivariate_normal", "args": {"mean": "mu", "cov": "mu"}}},
        "sampler argument cov must be a D x D matrix, got D x 1",
    ),
    "scalar sampler of a matrix": (
        {"sampler": {"method": "normal", "args": {"loc": "Sigma"}}},
        "must be a scalar or a D x 1 vector",
    ),
    "dimension named like a parameter": (
        {"dimension": "mu"},
        "parameter name 'mu' is already declared as the dimension",
    ),
    "reserved dimension": ({"dimension": "N"}, "dimension name 'N' is reserved"),
    "numeric dimension": ({"dimension": 3}, 'dimension must be a name such as "D"'),
    "multinomial n": (
        {
            "density": "exp(loggamma(sum(x) + 1) - sum(loggamma(x + 1)) + transpose(x) @ log(p))",
            "support": "counts",
            "parameters": {"p": "simplex"},
            "sampler": {"method": "multinomial", "args": {"n": "2.5", "pvals": "p"}},
        },
        "sampler argument n must be a positive integer, got 5/2",
    ),
    "matrix constant value": (
        {"parameters": {"mu": "vector"}, "constants": {"Sigma": "spd=[[1, 0], [0, 1]]"}},
        "takes its value at fit or check time",
    ),
}


@pytest.mark.parametrize("case", VECTOR_REFUSALS)
def test_a_vector_model_refuses_what_it_cannot_have(case):
    changes, fragment = VECTOR_REFUSALS[case]
    message = one_line_error(mvn_model, **changes)
    assert fragment in message, message


def test_vector_samplers_need_a_vector_model():
    data = {
        "variable": "x",
        "support": ["0", "1"],
        "density": "a*x**(a - 1)",
        "parameters": {"a": "positive"},
        "sampler": {"method": "dirichlet", "args": {"alpha": "a"}},
    }
    assert "draws vectors" in one_line_error(model_from_dict, data)


def test_inline_vector_models():
    m = inline_model(MVN, "x", None, ["mu:vector", "Sigma:spd"], dimension="D")
    assert m.support_set == "real" and not m.discrete and m.variable.shape == (m.dimension, 1)
    k = inline_model("exp(transpose(x) @ log(p))", "x", "onehot", ["p:simplex"], dimension="K")
    assert k.discrete and k.dimension.name == "K"
    assert "discrete must be false" in one_line_error(
        inline_model, MVN, "x", "real", ["mu:vector", "Sigma:spd"], discrete=True, dimension="D"
    )
    assert "a scalar model needs --support" in one_line_error(
        inline_model, "lam*exp(-lam*x)", "x", None, ["lam:positive"]
    )


# --------------------------------------------------------------------------
# matrix constants
# --------------------------------------------------------------------------


def test_matrix_constants_take_lists_arrays_or_text():
    m = spec("mvnormal_known_cov")
    want = sp.ImmutableMatrix([[2, sp.S.Half], [sp.S.Half, 1]])
    assert m.with_constants({"Sigma": "[[2, 0.5], [0.5, 1]]"}).constants[0].value == want
    given = m.with_constants({"Sigma": np.array([[2, 0.5], [0.5, 1]])}).constants[0].value
    assert np.allclose(np.array(given, dtype=float), np.array(want, dtype=float))
    for value, fragment in {
        "[[1, 2], [2, 1]]": "not positive definite",
        "[[1, 0.5], [0.4, 1]]": "not symmetric",
        "[1, 2]": "must be a square matrix",
        "[[1, 0], [0, nan]]": "unknown symbol 'nan'",
    }.items():
        assert fragment in one_line_error(m.with_constants, {"Sigma": value}), value
    assert "not finite" in one_line_error(m.with_constants, {"Sigma": [[1.0, 0.0], [0.0, np.inf]]})
    # the check of the density sets the given matrix aside: it must hold for every admissible value
    check_density(m.with_constants({"Sigma": np.eye(5)}))


def test_matrix_constants_share_one_dimension():
    scaled = "exp(-transpose(x - mu) @ inverse(s2*Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(s2*Sigma))"
    m = mvn_model(parameters={"s2": "positive"}, constants={"mu": "vector", "Sigma": "spd"}, density=scaled)
    message = one_line_error(m.with_constants, {"mu": "[0, 1, 2]", "Sigma": "[[1, 0], [0, 1]]"})
    assert "the matrix constants have different dimensions (mu 3, Sigma 2)" in message
    assert m.with_constants({"mu": "[0, 1]", "Sigma": "[[1, 0], [0, 1]]"}).constants[0].value.shape == (2, 1)


def test_simplex_values():
    m = mvn_model(
        parameters={"mu": "vector"},
        constants={"Sigma": "spd", "p": "simplex"},
        density=MVN,
    )
    assert m.with_constants({"p": "[0.25, 0.75]"}).constants[1].value.shape == (2, 1)
    assert "sum to 1.1" in one_line_error(m.with_constants, {"p": "[0.5, 0.6]"})
    assert "not positive" in one_line_error(m.with_constants, {"p": "[1.5, -0.5]"})


# --------------------------------------------------------------------------
# a concrete dimension: explicit symbols and admissible points
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3])
def test_explicit_symbols(n):
    m = spec("mvnormal")
    table = explicit_symbols(m, n)
    assert table[m.dimension] == n
    X, M, S = table[m.variable], table[m.symbols["mu"]], table[m.symbols["Sigma"]]
    assert X.shape == M.shape == (n, 1) and S.shape == (n, n)
    assert S == S.T and S[0, 1].name == "Sigma_12" and S[1, 0] is S[0, 1]
    assert all(S[i, i].is_positive for i in range(n)) and M[0].name == "mu_1"
    names = [s.name for s in S.free_symbols | M.free_symbols | X.free_symbols]
    assert len(names) == len(set(names)) == n * (n + 1) // 2 + 2 * n
    coords = coordinates(m, n)["Sigma"]
    assert len(coords) == n * (n + 1) // 2 and coords[1] == S[1, 0]  # vech: down the first column
    assert explicit_symbols(m, n) == table


def test_explicit_names_stay_unambiguous():
    m = spec("mvnormal")
    S = explicit_symbols(m, 11)[m.symbols["Sigma"]]
    names = {s.name for s in S.free_symbols}
    assert len(names) == 66 and "Sigma_1_11" in names and "Sigma_11_1" not in names
    # an entry named like a declared scalar is another symbol
    clash = mvn_model(constants={"mu_1": "real"})
    entries = explicit_symbols(clash, 2)[clash.symbols["mu"]]
    assert clash.symbols["mu_1"] not in set(entries)


@pytest.mark.parametrize("n", [2, 3])
def test_model_point_is_admissible(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        point = {s.name: v for s, v in model_point(spec("mvnormal"), n, rng).items()}
        S = point["Sigma"]
        assert S.shape == (n, n) and np.array_equal(S, S.T)
        np.linalg.cholesky(S)
        assert np.linalg.cond(S) <= 4 + 1e-9
        p = {s.name: v for s, v in model_point(spec("categorical"), n, rng).items()}["p"]
        assert p.shape == (n, 1) and np.all(p > 0) and abs(p.sum() - 1) < 1e-12
        a = {s.name: v for s, v in model_point(spec("dirichlet"), n, rng).items()}["a"]
        assert np.all(a > 0)
        s2 = {s.name: v for s, v in model_point(spec("mvnormal_isotropic"), n, rng).items()}["s2"]
        assert s2 > 0


def test_model_point_uses_given_constants():
    m = spec("mvnormal_known_cov").with_constants({"Sigma": "[[2, 0.5], [0.5, 1]]"})
    point = model_point(m, 2, np.random.default_rng(0))
    assert np.array_equal(point[m.symbols["Sigma"]], [[2, 0.5], [0.5, 1]])
    assert "has dimension 2, not 3" in one_line_error(model_point, m, 3, np.random.default_rng(0))
    with pytest.raises(ValueError):
        explicit_symbols(load_model("normal"), 2)
    with pytest.raises(TypeError):
        m.point()  # a vector model has no point without a dimension


# --------------------------------------------------------------------------
# the density check
# --------------------------------------------------------------------------


DENSITY_FAILURES = {
    "mvnormal without sqrt(det(Sigma))": (
        "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D)",
        "real",
        ["mu:vector", "Sigma:spd"],
        "does not integrate to 1 over R^2",
    ),
    "Sigma in place of its inverse": (
        "exp(-transpose(x - mu) @ Sigma @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))",
        "real",
        ["mu:vector", "Sigma:spd"],
        "does not integrate to 1 over R^2",
    ),
    "right at D = 2 only": (
        "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**2*det(Sigma))",
        "real",
        ["mu:vector", "Sigma:spd"],
        "does not integrate to 1 over R^1",
    ),
    "isotropic without D": (
        "exp(-transpose(x - mu) @ (x - mu)/(2*s2))/sqrt(2*pi*s2)",
        "real",
        ["mu:vector", "s2:positive"],
        "does not integrate to 1 over R^2",
    ),
    "categorical without log": ("exp(transpose(x) @ p)", "onehot", ["p:simplex"], "the 2 one-hot vectors"),
    "multinomial without its coefficient": (
        "exp(transpose(x) @ log(p))",
        "counts",
        ["p:simplex"],
        "the vectors of 2 counts with total 2",
    ),
    "dirichlet without its normaliser": (
        "exp(transpose(a - 1) @ log(x))",
        "simplex",
        ["a:positive_vector"],
        "does not integrate to 1 over the simplex of dimension 2",
    ),
    "negative": (
        "-exp(-transpose(x - mu) @ (x - mu)/2)/sqrt((2*pi)**D)",
        "real",
        ["mu:vector"],
        "is negative",
    ),
}


@pytest.mark.parametrize("case", DENSITY_FAILURES)
def test_the_density_check_refuses_what_is_not_a_density(case):
    pdf, support, params, fragment = DENSITY_FAILURES[case]
    message = one_line_error(inline_model, pdf, "x", support, params, dimension="D")
    assert fragment in message, message
    assert "D=" in message  # the point is named


def test_the_density_check_passes_a_heavy_tail_and_a_kink():
    # the multivariate Cauchy, and the product of Laplace densities (not smooth at mu)
    inline_model(
        "gamma((D + 1)/2)/pi**((D + 1)/2)/(1 + transpose(x - mu) @ (x - mu))**((D + 1)/2)",
        "x",
        "real",
        ["mu:vector"],
        dimension="D",
    )
    inline_model("exp(-sum(Abs(x - mu)))/2**D", "x", "real", ["mu:vector"], dimension="D")


def test_a_density_that_cannot_be_evaluated_is_a_spec_error(monkeypatch):
    # SymPy refuses factorial() of this entry at D = 2: one line, exit 2
    message = one_line_error(
        inline_model,
        "exp(-sum(Abs(factorial(beta(x, sum(mu)**erf(s))))))",
        "x",
        "real",
        ["mu:vector", "s:positive"],
        dimension="D",
    )
    assert message.startswith("density cannot be evaluated at D=2")
    # whatever SymPy raises there (it raised NotImplementedError for loggamma of a 1 x 1 matrix)
    import symmle.model.density as density

    def broken(expr, table):
        raise NotImplementedError("no rule")

    model = spec("mvnormal")
    monkeypatch.setattr(density, "at_dimension", broken)
    message = one_line_error(check_density, model)
    assert message.startswith("density cannot be evaluated at D=2") and "no rule" in message
