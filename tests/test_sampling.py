"""Sampling: declared samplers against their densities, the generic sampler against the declared ones.

The generic sampler (numerical inverse CDF from the pdf, or the tabulated
pmf) must reproduce every catalogue family's declared NumPy sampler: a
two-sample Kolmogorov-Smirnov test for continuous families, a chi-square
test of homogeneity for discrete ones, each at a fixed seed and at
p > 1e-3.  The declared samplers are checked in turn against means of the
density computed here by quadrature (``tools.expectation``), and inline
densities without a sampler against means known in closed form.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import symmle
from symmle.base.errors import SpecError, SymmleError
from symmle.model.build import model_from_dict
from symmle.model.catalogue import family_names
from symmle.simulate import inversion
from symmle.simulate.sampling import ModelSampler, draw, sampler

FAMILIES = family_names("scalar")
N = 50_000
P_MIN = 1e-3


def by_name(point):
    return {s.name: float(v) for s, v in point.items()}


def seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def assert_in_support(model, x, support):
    lo, hi = support
    assert np.all(np.isfinite(x))
    if model.discrete:
        assert np.all((x >= lo) & (x <= hi))
        assert np.all(x == np.round(x))
    else:
        assert np.all((x > lo) & (x < hi))


def homogeneity_p(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square test that two integer samples share one pmf; sparse values pooled with their neighbours."""
    values = np.union1d(a, b)
    ca = np.searchsorted(values, a)
    cb = np.searchsorted(values, b)
    na = np.bincount(ca, minlength=values.size)
    nb = np.bincount(cb, minlength=values.size)
    rows, acc = [], np.zeros(2)
    for pair in zip(na, nb):
        acc += pair
        if acc.sum() >= 20:
            rows.append(acc)
            acc = np.zeros(2)
    if rows:
        rows[-1] = rows[-1] + acc
    else:
        rows.append(acc)
    table = np.array(rows).T
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table)[1])


def agreement_p(model, a, b) -> float:
    return homogeneity_p(a, b) if model.discrete else float(stats.ks_2samp(a, b).pvalue)


# --------------------------------------------------------------------------
# generic against declared, every catalogue family
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_generic_matches_declared(name):
    model = symmle.load_model(name)
    if model.sampler is None:
        pytest.skip("no declared sampler")
    values = by_name(model.point())
    declared = sampler(model, values)
    generic = sampler(model, values, generic=True)
    assert (declared.kind, generic.kind) == ("declared", "generic")
    # independent streams: with one stream, inversion samplers would see the very same uniforms
    a = declared(N, np.random.default_rng(seed(name, "declared")))
    b = generic(N, np.random.default_rng(seed(name, "generic")))
    for x in (a, b):
        assert x.shape == (N,) and x.dtype == np.float64
        assert_in_support(model, x, model.support_at(model.point()))
    p = agreement_p(model, a, b)
    assert p > P_MIN, (name, generic.method, p)


@pytest.mark.parametrize(
    "name, values",
    [
        ("beta", {"a": 0.3, "b": 0.5}),  # poles at both ends
        ("beta", {"a": 0.1, "b": 0.02}),  # 40 % of the mass within 1e-16 of 1: rounds onto the float below 1
        ("beta", {"a": 1e5, "b": 2.0}),  # a narrow peak next to an end
        ("gamma", {"a": 0.05, "b": 3.0}),  # a strong pole at 0
        ("weibull", {"lam": 2.0, "k": 0.4}),
        ("pareto", {"alpha": 0.6, "xm": 2.0}),  # no mean
        ("levy", {"c": 0.5, "mu": -1.0}),
        ("lognormal", {"mu": 1.0, "sigma2": 6.0}),
        ("normal", {"mu": 1e6, "sigma2": 1e-6}),  # narrow, far from 0
        ("uniform", {"theta": 1e-9}),
        ("poisson", {"lam": 1e6}),
        ("poisson", {"lam": 1e-3}),
        ("negative_binomial", {"p": 0.01, "r": 0.5}),
        ("binomial", {"p": 0.3, "n": 1e7}),
        ("geometric", {"p": 1e-4}),
    ],
)
def test_generic_matches_declared_at_hard_values(name, values):
    model = symmle.load_model(name)
    generic = sampler(model, values, generic=True)
    a = sampler(model, values)(N, np.random.default_rng(seed(name, "d")))
    b = generic(N, np.random.default_rng(seed(name, "g")))
    for x in (a, b):
        assert_in_support(model, x, generic.support)
    assert agreement_p(model, a, b) > P_MIN, generic.method


def test_generic_set_up_is_fast():
    """Building a generic sampler takes well under a second for every family (all of them: a few seconds)."""
    import time

    worst = 0.0
    for name in FAMILIES:
        model = symmle.load_model(name)
        start = time.perf_counter()
        sampler(model, by_name(model.point()), generic=True)
        worst = max(worst, time.perf_counter() - start)
    assert worst < 1.0


# --------------------------------------------------------------------------
# declared samplers against the density
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "gamma",
        "beta",
        "lognormal",
        "inverse_gaussian",
        "weibull",
        "half_normal",
        "poisson",
        "negative_binomial",
        "binomial",
    ],
)
def test_declared_mean_matches_density(name, tools):
    model = symmle.load_model(name)
    point = model.point()
    x = model.variable
    mean = tools.expectation(model, point, x)
    var = tools.expectation(model, point, x**2) - mean**2
    n = 200_000
    data = draw(model, by_name(point), n, np.random.default_rng(seed(name, "mean")))
    assert abs(data.mean() - mean) < 5 * math.sqrt(var / n), (data.mean(), mean)


def test_declared_draws_are_the_numpy_call():
    """A declared sampler is exactly its NumPy call, transform applied."""
    model = symmle.load_model("weibull")
    got = sampler(model, {"lam": 2.5, "k": 1.3})(1000, np.random.default_rng(9))
    expected = 2.5 * np.random.default_rng(9).weibull(1.3, size=1000)
    assert np.array_equal(got, expected)


# --------------------------------------------------------------------------
# inline densities: only the generic sampler
# --------------------------------------------------------------------------

INLINE = [
    # id, pdf, support, params, discrete, values, mean
    (
        "lindley",
        "th**2/(1+th)*(1+x)*exp(-th*x)",
        "0,oo",
        ["th:positive"],
        False,
        {"th": 1.3},
        lambda v: (v["th"] + 2) / (v["th"] * (v["th"] + 1)),
    ),
    (
        "rayleigh_s2",
        "x/s2*exp(-x**2/(2*s2))",
        "0,oo",
        ["s2:positive"],
        False,
        {"s2": 2.5},
        lambda v: math.sqrt(math.pi * v["s2"] / 2),
    ),
    ("power_pole", "a*x**(a-1)", "0,1", ["a:positive"], False, {"a": 0.3}, lambda v: v["a"] / (v["a"] + 1)),
    (
        "triangular",
        "Piecewise((2*x/c, x < c), (2*(1-x)/(1-c), True))",
        "0,1",
        ["c:unit"],
        False,
        {"c": 0.3},
        lambda v: (1 + v["c"]) / 3,
    ),
    (
        "shifted_exponential",
        "lam*exp(-lam*(x-c))",
        "c,oo",
        ["lam:positive", "c:real"],
        False,
        {"lam": 2.0, "c": -3.0},
        lambda v: v["c"] + 1 / v["lam"],
    ),
    (
        "zero_truncated_poisson",
        "lam**x*exp(-lam)/(factorial(x)*(1-exp(-lam)))",
        "1,oo",
        ["lam:positive"],
        True,
        {"lam": 2.5},
        lambda v: v["lam"] / (1 - math.exp(-v["lam"])),
    ),
    ("discrete_uniform", "1/m", "1,m", ["m:positive_integer"], True, {"m": 9.0}, lambda v: (v["m"] + 1) / 2),
]


def inline(case):
    _, pdf, support, params, discrete, _, _ = case
    return symmle.inline_model(pdf, "x", support, params[:1], params[1:], discrete=discrete)


@pytest.mark.parametrize("case", INLINE, ids=[c[0] for c in INLINE])
def test_inline_density_draws_its_mean(case, tools):
    name, *_, values, mean = case
    model = inline(case)
    assert model.sampler is None
    s = sampler(model, values)
    assert s.kind == "generic"
    n = 100_000
    data = s(n, np.random.default_rng(seed(name)))
    assert_in_support(model, data, s.support)
    point = {model.symbols[k]: v for k, v in values.items()}
    exact = mean(values)
    # the closed-form mean agrees with the density's own (quadrature or summation), then the draws with both
    assert abs(tools.expectation(model, point, model.variable) - exact) < 1e-6 * max(1.0, abs(exact))
    sd = math.sqrt(tools.expectation(model, point, (model.variable - exact) ** 2))
    assert abs(data.mean() - exact) < 5 * sd / math.sqrt(n), (data.mean(), exact, s.method)


def test_heavy_tailed_inline_density_draws_its_median():
    """A Cauchy has no mean: its sample median and quartiles are checked instead."""
    model = symmle.inline_model("1/(pi*g*(1+((x-m)/g)**2))", "x", "-oo,oo", ["m:real", "g:positive"])
    data = draw(model, {"m": 3.0, "g": 0.5}, N, np.random.default_rng(4))
    assert stats.kstest(data, stats.cauchy(3.0, 0.5).cdf).pvalue > P_MIN


def test_tabulated_fallback(monkeypatch):
    """Where PINV cannot be set up, the tabulated CDF takes over and still matches the declared sampler."""
    monkeypatch.setattr(inversion, "_pinv", lambda *args: (None, "switched off"))
    model = symmle.load_model("gamma")
    values = {"a": 0.4, "b": 2.0}
    generic = sampler(model, values, generic=True)
    assert generic.method.startswith("tabulated CDF")
    a = generic(N, np.random.default_rng(1))
    b = sampler(model, values)(N, np.random.default_rng(2))
    assert_in_support(model, a, generic.support)
    assert stats.ks_2samp(a, b).pvalue > P_MIN


def test_no_generic_sampler_says_why(monkeypatch):
    monkeypatch.setattr(inversion, "_pinv", lambda *args: (None, "switched off"))
    monkeypatch.setattr(inversion, "_tabulated", lambda *args: (None, "switched off too"))
    with pytest.raises(SymmleError) as err:
        sampler(symmle.load_model("gamma"), {"a": 2.0, "b": 1.0}, generic=True)
    message = str(err.value)
    assert "\n" not in message and "switched off" in message and "switched off too" in message


def test_heavy_discrete_tail_is_refused():
    """P(X > k) ~ k**-0.5: no table holds all but 1e-14 of the mass."""
    model = symmle.inline_model(
        "1/x**a - 1/(x+1)**a", "x", "1,oo", ["a:positive"], discrete=True, validate=False
    )
    with pytest.raises(SymmleError, match="tail is too heavy"):
        sampler(model, {"a": 0.5})
    assert sampler(model, {"a": 3.0})(10, np.random.default_rng(0)).min() >= 1


def test_unnormalised_pmf_is_refused():
    model = symmle.inline_model(
        "2*lam**x*exp(-lam)/factorial(x)", "x", "0,oo", ["lam:positive"], discrete=True, validate=False
    )
    with pytest.raises(SymmleError, match="sums to 2"):
        sampler(model, {"lam": 1.7})


# --------------------------------------------------------------------------
# shapes, determinism, bad values
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, generic",
    [("gamma", False), ("gamma", True), ("poisson", False), ("poisson", True), ("normal", True)],
)
def test_shape_reps_by_n(name, generic):
    model = symmle.load_model(name)
    s = sampler(model, by_name(model.point()), generic=generic)
    assert isinstance(s, ModelSampler)
    x = s((7, 300), np.random.default_rng(3))
    assert x.shape == (7, 300) and x.dtype == np.float64
    assert_in_support(model, x, s.support)
    assert s(0, np.random.default_rng(3)).shape == (0,)
    # one seed, one sample
    assert np.array_equal(x, s((7, 300), np.random.default_rng(3)))


@pytest.mark.parametrize(
    "name, values, match",
    [
        ("normal", {"mu": 0.0}, "no value given for parameter 'sigma2'"),
        ("normal", {"mu": 0.0, "sigma2": -1.0}, "sigma2"),
        ("normal", {"mu": 0.0, "sigma2": 1.0, "tau": 2.0}, "unknown name 'tau'"),
        ("normal", {"mu": 0.0, "sigma2": float("nan")}, "sigma2"),
        ("normal", {"mu": "0", "sigma2": 1.0}, "must be a number"),
        ("bernoulli", {"p": 1.5}, "not in its domain 'unit'"),
        ("binomial", {"p": 0.5, "n": 2.5}, "not in its domain 'positive_integer'"),
        ("binomial", {"p": 0.5}, "no value given for constant 'n'"),
    ],
)
@pytest.mark.parametrize("generic", [False, True])
def test_bad_values_are_spec_errors(name, values, match, generic):
    with pytest.raises(SpecError, match=match) as err:
        sampler(symmle.load_model(name), values, generic=generic)
    assert "\n" not in str(err.value)


def test_invalid_declared_arguments_are_spec_errors():
    """Values inside their domains for which the declared NumPy call is invalid (a spec bug) say so."""
    model = model_from_dict(
        {
            "name": "odd",
            "variable": "x",
            "support": ["-oo", "oo"],
            "density": "exp(-x**2/(2*s**2))/sqrt(2*pi*s**2)",
            "parameters": {"s": "real"},
            "sampler": {"method": "normal", "args": {"loc": "0", "scale": "s"}},
        },
        validate=False,
    )
    assert sampler(model, {"s": 2.0})(3, np.random.default_rng(0)).shape == (3,)
    with pytest.raises(SpecError, match="scale") as err:
        sampler(model, {"s": -2.0})
    assert "\n" not in str(err.value)


def test_declared_sampler_outside_support_is_caught():
    """A declared sampler that draws outside the support is a spec bug, reported at the draw."""
    model = model_from_dict(
        {
            "name": "wrong",
            "variable": "x",
            "support": ["0", "oo"],
            "density": "lam*exp(-lam*x)",
            "parameters": {"lam": "positive"},
            "sampler": {"method": "normal", "args": {"loc": "1/lam", "scale": "1"}},
        }
    )
    s = sampler(model, {"lam": 1.0})
    with pytest.raises(SymmleError, match="outside the support"):
        s(1000, np.random.default_rng(0))


def test_symbols_as_keys_and_fixed_constants():
    """Values may be keyed by the model's symbols; a constant fixed in the model may be left out."""
    model = symmle.inline_model(
        "k/lam*(x/lam)**(k-1)*exp(-(x/lam)**k)", "x", "0,oo", ["lam:positive"], ["k:positive=1.8"]
    )
    lam = model.symbols["lam"]
    s = sampler(model, {lam: 2.0})
    assert s.values == {"lam": 2.0, "k": 1.8}
    with pytest.raises(SpecError, match="fixed at 1.8"):
        sampler(model, {"lam": 2.0, "k": 2.0})


def test_support_values_come_from_the_caller():
    """A support that moves with a parameter is evaluated at the given values."""
    model = symmle.load_model("uniform")
    for generic in (False, True):
        x = draw(model, {"theta": 7.0}, 5000, np.random.default_rng(1), generic=generic)
        assert 0 < x.min() and x.max() < 7.0 and x.max() > 6.9
    assert sp.Symbol("theta", positive=True) in model.support[1].free_symbols
