"""Likelihoods with several local maxima: the global one is the estimate, and the others are reported.

Every reference here is independent of symmle: the log-likelihood is written
with NumPy/SciPy, maximised over a dense grid whose spacing is far below the
width of any peak the model can make, then polished with ``scipy.optimize``.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import optimize, stats

import symmle
from symmle.cli import cli
from symmle.numbers.codegen import module_source

__all__: list[str] = []

CAUCHY = "1/(pi*(1+(x-m)**2))"
CAUCHY_LS = "s/(pi*(s**2+(x-m)**2))"
T_LOCATION = "(1+(x-m)**2/k)**(-(k+1)/2)*gamma((k+1)/2)/(sqrt(k*pi)*gamma(k/2))"
SEVEN = np.array([-20, -19, 1, 1.5, 30, 30.5, 31], dtype=float)
CAUTION = "several local maxima"


@functools.cache
def _derivation(pdf: str, params: tuple[str, ...]):
    return symmle.derive(symmle.inline_model(pdf, "x", "-oo,oo", list(params)))


def cauchy() -> object:
    return _derivation(CAUCHY, ("m:real",))


def cauchy_ll(m, x: np.ndarray) -> np.ndarray:
    """Log-likelihood of the Cauchy location (scale 1) at each value of ``m``."""
    m = np.atleast_1d(np.asarray(m, dtype=float))
    return -np.sum(np.log1p((x[:, None] - m[None, :]) ** 2), axis=0) - x.size * np.log(np.pi)


def cauchy_reference(x: np.ndarray, spacing: float = 0.01) -> tuple[float, float]:
    """``(m, log-likelihood)`` of the global maximum: a dense grid over [min x, max x], then a bounded polish.

    Every peak of this likelihood lies between the extreme observations and
    is at least ``1/sqrt(2 n)`` wide (the curvature of one term is at most 2),
    so a spacing of 0.01 cannot miss one for n <= 50.
    """
    grid = np.arange(x.min(), x.max() + spacing, spacing)
    step = max(1, 2_000_000 // x.size)
    values = np.concatenate([cauchy_ll(grid[i : i + step], x) for i in range(0, grid.size, step)])
    m0 = grid[int(np.argmax(values))]
    m = optimize.brentq(lambda t: cauchy_score(t, x), m0 - spacing, m0 + spacing, xtol=1e-14, rtol=1e-15)
    return m, float(cauchy_ll(m, x)[0])


def cauchy_score(m: float, x: np.ndarray) -> float:
    """Derivative of :func:`cauchy_ll` in ``m``."""
    d = x - m
    return float(np.sum(2 * d / (1 + d**2)))


def cautions(caught) -> list[str]:
    return [str(w.message) for w in caught if type(w.message).__name__ == "EstimateWarning"]


def test_seven_points_give_the_global_maximum_and_a_caution():
    r = symmle.fit(cauchy(), SEVEN)
    ref_m, ref_ll = cauchy_reference(SEVEN)
    assert ref_m == pytest.approx(30.44461, abs=1e-5) and ref_ll == pytest.approx(-37.608, abs=1e-3)
    assert r.estimates["m"] == pytest.approx(ref_m, abs=1e-7)
    assert r.log_likelihood == pytest.approx(ref_ll, abs=1e-9)
    caution = [w for w in r.warnings if CAUTION in w]
    assert len(caution) == 1
    # the runner-up (m = 1.25378, log-likelihood -40.526) and the gap between the two
    assert "m = 1.25378" in caution[0] and "lower by 2.918" in caution[0]
    assert cauchy_ll(1.25378, SEVEN)[0] == pytest.approx(-40.526, abs=1e-3)


def test_seven_points_on_the_command_line(tmp_path):
    data = tmp_path / "c.txt"
    data.write_text("\n".join(str(v) for v in SEVEN) + "\n")
    args = ["fit", "--pdf", CAUCHY, "--support=-oo,oo", "--param", "m:real", str(data)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "30.4446" in result.output and CAUTION in result.output and "m = 1.25378" in result.output


def test_natural_cauchy_sample():
    x = np.random.default_rng(43).standard_cauchy(50) * 3
    ref_m, ref_ll = cauchy_reference(x)
    assert ref_m == pytest.approx(-1.8695, abs=1e-4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = cauchy().compile()(x)["m"]
    assert m == pytest.approx(ref_m, abs=1e-6)
    # the peak near -0.0633 is 0.71 lower: said so
    assert any(CAUTION in c and "m = -0.0633" in c for c in cautions(caught))


def test_random_cauchy_samples_against_a_dense_grid():
    est = cauchy().compile()
    wrong = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for i in range(25):
            # data spread ten times wider than the density: many peaks
            x = rng.standard_cauchy(int(rng.integers(5, 51))) * 10
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = est(x)["m"]
            ref_m, ref_ll = cauchy_reference(x)
            if not (cauchy_ll(m, x)[0] >= ref_ll - 1e-7 and abs(m - ref_m) <= 1e-5 * max(1.0, abs(ref_m))):
                wrong.append((seed, i, x.size, m, ref_m))
    assert wrong == []


def test_sorted_data_confirm_the_subsample_on_all_the_data():
    # more than PILOT observations, sorted: the first ones are all in the lower cluster, the
    # larger cluster (the global maximum) comes last
    rng = np.random.default_rng(5)
    x = np.sort(np.r_[rng.normal(0.0, 0.3, 5000), rng.normal(40.0, 0.3, 6000)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cauchy().compile()(x)["m"]
    grid = np.arange(-2.0, 42.0, 0.002)  # every peak lies near a cluster
    values = np.concatenate([cauchy_ll(grid[i : i + 200], x) for i in range(0, grid.size, 200)])
    m0 = grid[int(np.argmax(values))]
    ref = optimize.brentq(lambda t: cauchy_score(t, x), m0 - 0.002, m0 + 0.002, xtol=1e-14, rtol=1e-15)
    assert ref == pytest.approx(40.0, abs=0.1)
    assert m == pytest.approx(ref, abs=1e-6)


def test_generated_module_gives_the_same_answer(tmp_path):
    path = tmp_path / "cauchy_location.py"
    path.write_text(module_source(cauchy()))
    spec = importlib.util.spec_from_file_location("cauchy_location_generated", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seven = mod.estimate(SEVEN)["m"]
            natural = mod.estimate(np.random.default_rng(43).standard_cauchy(50) * 3)["m"]
    finally:
        del sys.modules[spec.name]
    assert seven == pytest.approx(cauchy_reference(SEVEN)[0], abs=1e-7)
    assert natural == pytest.approx(-1.8695272, abs=1e-6)
    assert sum(w.category is mod.EstimateWarning and CAUTION in str(w.message) for w in caught) == 2


def _cauchy_ls_reference(x: np.ndarray) -> np.ndarray:
    """``(m, s)``: the best of scipy.stats.cauchy.fit and a dense grid over (m, log s), each polished.

    Polished by BFGS on the negative log-likelihood in ``(m, log s)``, then by
    solving the score equations (written here) with ``scipy.optimize.root``.
    """

    def nll(t):
        m, s = t[0], np.exp(t[1])
        return -float(np.sum(np.log(s) - np.log(s**2 + (x - m) ** 2)))

    def score(t):  # d log L / d(m, s)
        m, s = t
        q = s**2 + (x - m) ** 2
        return np.array([np.sum(2 * (x - m) / q), np.sum(1 / s - 2 * s / q)])

    def jac(t):
        return -score([t[0], np.exp(t[1])]) * np.array([1.0, np.exp(t[1])])

    span = float(x.max() - x.min())
    ms = np.linspace(x.min(), x.max(), 300)
    m, ls = np.meshgrid(ms, np.linspace(np.log(span) - 10, np.log(span), 120), indexing="ij")
    s = np.exp(ls)
    ll = sum(np.log(s) - np.log(s**2 + (xi - m) ** 2) for xi in x)
    k = np.unravel_index(np.argmax(ll), ll.shape)
    m0, s0 = stats.cauchy.fit(x)
    best = None
    for start in ([m[k], ls[k]], [m0, np.log(s0)]):
        t = optimize.minimize(nll, start, jac=jac, method="BFGS", options={"gtol": 1e-10}).x
        root = optimize.root(score, [t[0], np.exp(t[1])], method="hybr", options={"xtol": 1e-14}).x
        if root[1] > 0 and nll([root[0], np.log(root[1])]) <= nll(t) + 1e-9:
            t = [root[0], np.log(root[1])]
        best = t if best is None or nll(t) < nll(best) else best
    return np.array([best[0], np.exp(best[1])])


def test_location_scale_cauchy_against_scipy_and_a_dense_grid():
    est = _derivation(CAUCHY_LS, ("m:real", "s:positive")).compile()
    rng = np.random.default_rng(11)
    samples = [SEVEN, np.random.default_rng(43).standard_cauchy(50) * 3]
    samples += [rng.standard_cauchy(int(n)) * 2.5 + 7 for n in (5, 12, 40, 150)]
    samples += [np.r_[rng.normal(-30, 0.5, 20), rng.normal(25, 0.5, 23)]]
    for x in samples:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = est(x)
        ref = _cauchy_ls_reference(x)
        assert [r["m"], r["s"]] == pytest.approx(list(ref), rel=1e-8, abs=1e-10)


def _t_location_reference(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """``((m, k), heights of the local maxima)``: Student-t location, unknown degrees of freedom."""

    def nll(t):
        return -float(np.sum(stats.t.logpdf(x, np.exp(t[1]), loc=t[0])))

    ms = np.arange(x.min(), x.max() + 0.01, 0.01)
    lks = np.linspace(np.log(0.02), np.log(50.0), 120)
    m, lk = np.meshgrid(ms, lks, indexing="ij")
    ll = np.sum(stats.t.logpdf(x[:, None, None], np.exp(lk)[None], loc=m[None]), axis=0)
    # every local maximum of the grid, polished
    pad = np.pad(ll, 1, constant_values=-np.inf)
    peak = np.ones(ll.shape, dtype=bool)
    for i in range(3):
        for j in range(3):
            if (i, j) != (1, 1):
                peak &= ll >= pad[i : i + ll.shape[0], j : j + ll.shape[1]]
    maxima = []
    for a, b in zip(*np.nonzero(peak)):
        t = optimize.minimize(
            nll, [m[a, b], lk[a, b]], method="Nelder-Mead", options={"xatol": 1e-11, "fatol": 1e-13}
        ).x
        maxima.append((-nll(t), t))
    maxima.sort(key=lambda r: -r[0])
    return np.array([maxima[0][1][0], np.exp(maxima[0][1][1])]), [v for v, _ in maxima]


def test_several_parameters_find_the_global_maximum_and_report_the_next():
    est = _derivation(T_LOCATION, ("m:real", "k:positive")).compile()
    ref, heights = _t_location_reference(SEVEN)
    assert ref[0] == pytest.approx(30.4694, abs=1e-3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = est(SEVEN)
    assert [r["m"], r["k"]] == pytest.approx(list(ref), rel=1e-5)
    message = [c for c in cautions(caught) if CAUTION in c]
    assert len(message) == 1 and "m = 1.2517" in message[0]
    gap = heights[0] - max(h for h in heights if h < heights[0] - 1e-6)
    assert f"lower by {gap:.4g}" in message[0]


@pytest.mark.parametrize("name", ["normal", "gamma", "weibull", "beta"])
def test_unimodal_fits_carry_no_such_caution(name, families):
    r = symmle.fit(name, families.sample(name, 500))
    assert not any(CAUTION in w for w in r.warnings)
