"""The runtime's fast paths give the same numbers as the plain ones.

- a discrete sample is tabulated (distinct values and counts) for the sums
  over the data in a numeric solve;
- many data sets are estimated at once (``estimate_rows``);
- polygamma is evaluated as ufuncs (``psi``, Hurwitz ``zeta``);
- an optimum that runs off towards the domain's edge is refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy import special

import symmle
from symmle.base import _runtime
from symmle.base.errors import DataError
from symmle.base.numeric import to_function

NBINOM = ("gamma(x+r)/(gamma(r)*factorial(x))*p**r*(1-p)**x", "x", "0,oo", ["r:positive", "p:unit"])


@pytest.fixture(scope="module")
def nbinom():
    return symmle.derive(symmle.inline_model(*NBINOM, discrete=True)).compile()


def test_tabulated_solve_equals_the_plain_one(nbinom, monkeypatch):
    x = np.random.default_rng(4).negative_binomial(3.5, 0.4, 20_000).astype(float)
    assert isinstance(_runtime.tabulate(x), _runtime.Tabulated)
    fast = nbinom.estimate_with_stderr(x)
    monkeypatch.setattr(_runtime, "TABLE", 0)  # no table: sums over every observation
    assert not isinstance(_runtime.tabulate(x), _runtime.Tabulated)
    slow = nbinom.estimate_with_stderr(x)
    for p in ("r", "p"):
        assert fast[0][p] == pytest.approx(slow[0][p], rel=1e-12)
        assert fast[1][p] == pytest.approx(slow[1][p], rel=1e-9)


def test_tabulate_refuses_non_integers_and_wide_ranges():
    rng = np.random.default_rng(0)
    assert not isinstance(
        _runtime.tabulate(rng.poisson(3.0, 1000) + rng.uniform(0, 0.5, 1000)), _runtime.Tabulated
    )
    # a shifted lattice is tabulated exactly: every value is min + an integer
    shifted = _runtime.tabulate(rng.poisson(3.0, 1000) + 0.5)
    assert np.all(shifted.values % 1 == 0.5)
    assert not isinstance(_runtime.tabulate(rng.integers(0, 10**9, 1000).astype(float)), _runtime.Tabulated)
    t = _runtime.tabulate(np.array([2.0, 5.0, 2.0, 7.0] * 100))
    assert list(t.values) == [2.0, 5.0, 7.0] and list(t.counts) == [200.0, 100.0, 100.0] and t.shape == (400,)
    assert _runtime.sum_over(lambda v: v**2, t) == pytest.approx(200 * 4 + 100 * 25 + 100 * 49)


@pytest.mark.parametrize("name", ["normal", "poisson", "uniform", "lognormal", "gamma", "weibull"])
def test_estimate_rows_equals_one_estimate_per_row(name, derivation, families):
    est = derivation(name).compile()
    rows = np.stack([np.asarray(families.sample(name, 300, seed)) for seed in range(4)])
    many = est.estimate_rows(rows)
    for r in range(rows.shape[0]):
        one = est(rows[r])
        for p, v in one.items():
            assert many[p][r] == pytest.approx(v, rel=1e-12), (p, r)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_polygamma_as_ufuncs(n):
    a = sp.Symbol("a", positive=True)
    z = np.array([0.01, 0.3, 2.5, 40.0, 1e6])
    assert np.allclose(to_function([a], sp.polygamma(n, a))(z), special.polygamma(n, z), rtol=1e-14, atol=0)


def test_optimum_running_off_to_the_edge_is_refused():
    # a constant sample: the beta likelihood grows without bound as a, b -> oo
    with pytest.raises(DataError, match="does not exist|did not converge"):
        symmle.derive("beta").compile()(np.full(10, 0.3))
