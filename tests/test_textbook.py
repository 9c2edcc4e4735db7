"""Derived estimators and Fisher information against textbook answers.

The textbook answers below are written independently of symmle: estimators
as NumPy functions of the data (and the known constants, by name), Fisher
informations as SymPy expressions in the parameter names.  Both are
compared with the derivations of the catalogue: estimators numerically on a
fixed data set, informations symbolically.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy import optimize, special

from symmle.symbolic.evaluate import SampleEvaluator


def _mean(x):
    return float(np.mean(x))


#: family -> (data x, constants {name: value}) -> {parameter: textbook MLE}
TEXTBOOK_MLE = {
    "normal": lambda x, c: {"mu": _mean(x), "sigma2": _mean((x - _mean(x)) ** 2)},
    "normal_mean": lambda x, c: {"mu": _mean(x)},
    "normal_variance": lambda x, c: {"sigma2": _mean((x - c["mu"]) ** 2)},
    "bernoulli": lambda x, c: {"p": _mean(x)},
    "binomial": lambda x, c: {"p": _mean(x) / c["n"]},
    "geometric": lambda x, c: {"p": 1 / _mean(x)},
    "poisson": lambda x, c: {"lam": _mean(x)},
    "negative_binomial": lambda x, c: {"p": c["r"] / (c["r"] + _mean(x))},
    "exponential": lambda x, c: {"lam": 1 / _mean(x)},
    "exponential_scale": lambda x, c: {"theta": _mean(x)},
    "gamma_rate": lambda x, c: {"b": c["a"] / _mean(x)},
    "lognormal": lambda x, c: {"mu": _mean(np.log(x)), "sigma2": _mean((np.log(x) - _mean(np.log(x))) ** 2)},
    "weibull_scale": lambda x, c: {"lam": _mean(x ** c["k"]) ** (1 / c["k"])},
    "rayleigh": lambda x, c: {"sigma": np.sqrt(np.sum(x**2) / (2 * x.size))},
    "maxwell": lambda x, c: {"a": np.sqrt(np.sum(x**2) / (3 * x.size))},
    "half_normal": lambda x, c: {"sigma": np.sqrt(_mean(x**2))},
    "inverse_gaussian": lambda x, c: {"mu": _mean(x), "lam": 1 / _mean(1 / x - 1 / _mean(x))},
    "laplace_scale": lambda x, c: {"b": _mean(np.abs(x - c["mu"]))},
    "pareto": lambda x, c: {"alpha": x.size / np.sum(np.log(x / c["xm"]))},
    "inverse_gamma_scale": lambda x, c: {"b": c["a"] * x.size / np.sum(1 / x)},
    "levy": lambda x, c: {"c": x.size / np.sum(1 / (x - c["mu"]))},
    "power_function": lambda x, c: {"a": -x.size / np.sum(np.log(x))},
    "erlang_rate": lambda x, c: {"lam": c["k"] / _mean(x)},
}

_s = sp.Symbol
mu, sigma2, p, lam, theta, b, a, k, n, r, sigma, alpha, c_, xm = (
    _s(v) for v in "mu sigma2 p lam theta b a k n r sigma alpha c xm".split()
)
trigamma = lambda z: sp.polygamma(1, z)  # noqa: E731

#: family -> per-observation Fisher information, in the order of the parameters
TEXTBOOK_FISHER = {
    "normal": sp.Matrix([[1 / sigma2, 0], [0, 1 / (2 * sigma2**2)]]),
    "normal_mean": sp.Matrix([[1 / sigma2]]),
    "normal_variance": sp.Matrix([[1 / (2 * sigma2**2)]]),
    "bernoulli": sp.Matrix([[1 / (p * (1 - p))]]),
    "binomial": sp.Matrix([[n / (p * (1 - p))]]),
    "geometric": sp.Matrix([[1 / (p**2 * (1 - p))]]),
    "poisson": sp.Matrix([[1 / lam]]),
    "negative_binomial": sp.Matrix([[r / (p**2 * (1 - p))]]),
    "exponential": sp.Matrix([[1 / lam**2]]),
    "exponential_scale": sp.Matrix([[1 / theta**2]]),
    "gamma_rate": sp.Matrix([[a / b**2]]),
    "lognormal": sp.Matrix([[1 / sigma2, 0], [0, 1 / (2 * sigma2**2)]]),
    "weibull_scale": sp.Matrix([[k**2 / lam**2]]),
    "rayleigh": sp.Matrix([[4 / sigma**2]]),
    "maxwell": sp.Matrix([[6 / a**2]]),
    "half_normal": sp.Matrix([[2 / sigma**2]]),
    "inverse_gaussian": sp.Matrix([[lam / mu**3, 0], [0, 1 / (2 * lam**2)]]),
    "laplace_scale": sp.Matrix([[1 / b**2]]),
    "pareto": sp.Matrix([[1 / alpha**2]]),
    "inverse_gamma_scale": sp.Matrix([[a / b**2]]),
    "levy": sp.Matrix([[1 / (2 * c_**2)]]),
    "power_function": sp.Matrix([[1 / a**2]]),
    "erlang_rate": sp.Matrix([[k / lam**2]]),
    "gamma": sp.Matrix([[trigamma(a), -1 / b], [-1 / b, a / b**2]]),
    "beta": sp.Matrix(
        [
            [trigamma(a) - trigamma(a + b), -trigamma(a + b)],
            [-trigamma(a + b), trigamma(b) - trigamma(a + b)],
        ]
    ),
}


def fixed_data(tools, model, n=60):
    """A fixed data set: 60 seeded draws at the model's point."""
    return tools.sample(model, model.point(), n, np.random.default_rng(12345))


def by_name(model, table):
    return {q.symbol: table[q.name] for q in model.parameters}


def to_model_symbols(expr, model):
    return expr.subs({_s(name): sym for name, sym in model.symbols.items()}, simultaneous=True)


def test_textbook_tables_cover_the_brief():
    assert set(TEXTBOOK_MLE) <= set(TEXTBOOK_FISHER)


@pytest.mark.parametrize("name", sorted(TEXTBOOK_MLE))
def test_estimator_is_textbook(name, derivation, tools):
    d = derivation(name)
    model = d.model
    consts = tools.constant_values(model)
    data = fixed_data(tools, model)
    expected = TEXTBOOK_MLE[name](data, {s.name: v for s, v in consts.items()})
    assert set(expected) == {q.name for q in model.parameters}
    got = tools.closed_form_estimates(d, data, consts)
    ev = SampleEvaluator(d.likelihood, data, consts)
    for q in model.parameters:
        assert tools.rel_err(got[q.symbol], expected[q.name]) < 1e-10, (
            q.name,
            d.estimators[q.name],
            got[q.symbol],
            expected[q.name],
        )
        assert tools.rel_err(ev(d.estimators[q.name], {}), expected[q.name]) < 1e-10


@pytest.mark.parametrize("name", sorted(TEXTBOOK_FISHER))
def test_fisher_is_textbook(name, derivation):
    d = derivation(name)
    textbook = to_model_symbols(TEXTBOOK_FISHER[name], d.model)
    assert d.fisher.shape == textbook.shape
    for i in range(textbook.rows):
        for j in range(textbook.cols):
            derived = d.fisher[i, j]
            assert derived != sp.nan, f"I[{i},{j}] missing"
            diff = sp.simplify(sp.expand_func(derived - textbook[i, j]))
            assert diff == 0, (i, j, derived, textbook[i, j])


@pytest.mark.parametrize("name", sorted(TEXTBOOK_FISHER))
def test_crlb_is_textbook(name, derivation):
    d = derivation(name)
    textbook = to_model_symbols(TEXTBOOK_FISHER[name], d.model)
    N = d.likelihood.N
    assert d.crlb is not None
    diff = (d.crlb - (N * textbook).inv()).applyfunc(lambda e: sp.simplify(sp.expand_func(e)))
    assert diff == sp.zeros(*textbook.shape)


def _gamma_textbook_mle(x):
    """Shape and rate of the gamma MLE: log(a) - digamma(a) = log(mean x) - mean(log x), b = a / mean x."""
    s = np.log(np.mean(x)) - np.mean(np.log(x))
    a_hat = optimize.brentq(lambda a: np.log(a) - special.digamma(a) - s, 1e-6, 1e6, xtol=1e-15, rtol=1e-15)
    return a_hat, a_hat / np.mean(x)


def test_gamma_reduced_equation_is_textbook(derivation, tools):
    d = derivation("gamma")
    model = d.model
    a_sym, b_sym = model.symbols["a"], model.symbols["b"]
    data = fixed_data(tools, model, n=200)
    a_hat, b_hat = _gamma_textbook_mle(data)
    ev = SampleEvaluator(d.likelihood, data, {})
    at_mle = {a_sym: a_hat, b_sym: b_hat}
    assert {e.kind for e in d.solutions.values()} == {"numeric"}
    for e in d.solutions.values():
        lhs, rhs = ev(e.equation.lhs, at_mle), ev(e.equation.rhs, at_mle)
        assert abs(lhs - rhs) <= 1e-9 * (abs(lhs) + abs(rhs)), e.equation
    # the shape's own equation, with the rate profiled out, is the textbook one:
    # its residual changes sign at the textbook root, as the textbook residual does
    eq_a = d.solutions["a"].equation
    signs = []
    for factor in (0.9, 1.1):
        a_off = a_hat * factor
        values = {a_sym: a_off, b_sym: a_off / np.mean(data)}
        residual = ev(eq_a.lhs - eq_a.rhs, values)
        textbook = np.log(a_off) - special.digamma(a_off) - (np.log(np.mean(data)) - np.mean(np.log(data)))
        assert abs(residual) > 1e-6
        signs.append(np.sign(residual) * np.sign(textbook))
    assert signs[0] == signs[1]


def test_beta_equations_hold_at_textbook_mle(derivation, tools):
    d = derivation("beta")
    model = d.model
    data = fixed_data(tools, model, n=200)
    s1, s2 = np.mean(np.log(data)), np.mean(np.log1p(-data))

    def eqs(u):
        a_, b_ = np.exp(u)
        return [
            special.digamma(a_) - special.digamma(a_ + b_) - s1,
            special.digamma(b_) - special.digamma(a_ + b_) - s2,
        ]

    sol = optimize.root(eqs, [0.0, 0.0], tol=1e-14)
    # judged by the residual: hybr may report "xtol too small" once it has converged
    assert np.max(np.abs(eqs(sol.x))) < 1e-12, sol.message
    a_hat, b_hat = np.exp(sol.x)
    ev = SampleEvaluator(d.likelihood, data, {})
    at_mle = {model.symbols["a"]: a_hat, model.symbols["b"]: b_hat}
    for e in d.solutions.values():
        assert e.kind == "numeric"
        lhs, rhs = ev(e.equation.lhs, at_mle), ev(e.equation.rhs, at_mle)
        assert abs(lhs - rhs) <= 1e-9 * (abs(lhs) + abs(rhs)), e.equation
