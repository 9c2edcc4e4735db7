"""Compiled estimators (``Derivation.compile()``) against the symbolic derivation and the density.

Every family of the catalogue: the compiled estimate equals the symbolic
estimator evaluated by :class:`symmle.symbolic.evaluate.SampleEvaluator` (or, for
numeric kinds, satisfies the stationarity equations); the compiled
log-likelihood equals ``sum(log f(x_i))`` built here from the density; the
statistics take one chunked pass over the data, and a memory-mapped file,
or small chunks, give the same numbers as an array in memory.  Then the
numerical-stability cases: a variance of data far from the origin, checked
against the exact variance of the same floats.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from sympy.core.function import AppliedUndef

import symmle
import symmle.numbers.compiled
from symmle.model.catalogue import family_names
from symmle.symbolic.evaluate import SampleEvaluator

FAMILIES = family_names("scalar")
N_SAMPLE = 2000


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def setup(name, derivation, families, n=N_SAMPLE):
    d = derivation(name)
    model = d.model
    data = families.sample(name, n)
    consts = families.constants(model)
    consts_sym = {q.symbol: consts[q.name] for q in model.constants}
    return d, model, data, consts, consts_sym


# --------------------------------------------------------------------------
# compiled == symbolic
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_compiled_equals_symbolic(name, derivation, families, tools):
    d, model, data, consts, consts_sym = setup(name, derivation, families)
    est = families.compiled(name)
    got = est(data, **consts)
    assert list(got) == [q.name for q in model.parameters]
    assert est.kinds == {p: e.kind for p, e in d.solutions.items()}
    ev = SampleEvaluator(d.likelihood, data, consts_sym)
    at = {model.symbols[p]: v for p, v in got.items()}
    for p, e in d.solutions.items():
        assert math.isfinite(got[p]), (p, got[p])
        if e.kind == "boundary":
            assert got[p] == ev(e.expr, {}), (p, got[p])
        elif e.kind == "closed_form":
            assert rel(got[p], ev(e.expr, {})) <= 1e-12, (p, got[p], ev(e.expr, {}))
        else:
            assert e.kind == "numeric"
            residual, scale = tools.equation_residual(ev, e.equation, at)
            assert np.isfinite(residual) and scale > 0
            assert residual <= 1e-10 * scale, (p, e.equation, residual, scale)
            # the check has teeth: a relative move of 1e-6 in this parameter breaks the equation
            moved = {**at, model.symbols[p]: at[model.symbols[p]] * (1 + 1e-6)}
            residual, scale = tools.equation_residual(ev, e.equation, moved)
            assert residual > 1e-9 * scale, (p, e.equation)


@pytest.mark.parametrize("name", FAMILIES)
def test_formulas_are_what_runs(name, derivation, families):
    """``est.formulas`` (possibly in centred statistics) on ``est.statistics`` give the estimate."""
    d, _model, data, consts, _ = setup(name, derivation, families)
    est = families.compiled(name)
    got = est(data, **consts)
    stats = est.statistics(data, **consts)
    closed = [p for p, e in d.solutions.items() if e.kind in ("closed_form", "boundary")]
    assert set(est.formulas) == set(closed)
    order = {"Min": stats["_xmin"], "Max": stats["_xmax"]}
    for p, f in est.formulas.items():
        if f.has(sp.Sum):
            continue  # sums over the data are not among the statistics
        f = f.replace(
            lambda a: isinstance(a, AppliedUndef) and a.func.__name__ in order,
            lambda a: sp.Float(order[a.func.__name__], 17),
        )
        values = {**stats, **consts}
        missing = {s.name for s in f.free_symbols} - set(values)
        assert not missing, (p, f, missing)
        syms = sorted(f.free_symbols, key=lambda s: s.name)
        value = float(sp.lambdify(syms, f, modules=["scipy", "numpy"])(*[values[s.name] for s in syms]))
        assert rel(value, got[p]) <= 1e-13, (p, f, value, got[p])


# --------------------------------------------------------------------------
# log-likelihood
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_log_likelihood_equals_density_sum(name, derivation, families, tools):
    _d, model, data, consts, consts_sym = setup(name, derivation, families)
    est = families.compiled(name)
    truth = model.point()
    fitted = {model.symbols[p]: v for p, v in est(data, **consts).items()}
    points = [
        truth,
        {**tools.perturbed(truth, model.parameter_symbols), **consts_sym},
        {**fitted, **consts_sym},
    ]
    for point in points:
        f = tools.density_function(model, point)
        with np.errstate(all="ignore"):
            expected = math.fsum(np.log(f(data)).tolist())
        assert math.isfinite(expected)
        got = est.log_likelihood(data, **{s.name: v for s, v in point.items()})
        assert rel(got, expected) <= 1e-10, (point, got, expected)


# --------------------------------------------------------------------------
# statistics: independent sums, one chunked pass, memory maps
# --------------------------------------------------------------------------


class CountingMemmap(np.memmap):
    """A memory map that records the slices read from it (as ``(start, stop)``)."""

    reads: list[tuple[int, int]] | None = None

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(key, slice) and CountingMemmap.reads is not None and self.ndim == 1:
            start, stop, _ = key.indices(self.shape[0])
            CountingMemmap.reads.append((start, stop))
        return out


def reads_of(fn):
    CountingMemmap.reads = []
    try:
        fn()
        return list(CountingMemmap.reads)
    finally:
        CountingMemmap.reads = None


@pytest.mark.parametrize("name", FAMILIES)
def test_statistics_match_independent_sums(name, derivation, families, tools):
    d, model, data, consts, consts_sym = setup(name, derivation, families)
    stats = families.compiled(name).statistics(data, **consts)
    assert stats["N"] == data.size
    assert stats["_xmin"] == data.min() and stats["_xmax"] == data.max()
    ours = tools.statistics(d, data, consts_sym)
    for sym, v in ours.items():
        if sym == d.likelihood.N:
            continue
        g = sp.lambdify(
            [model.variable],
            sp.sympify(d.sufficient_statistics[sym.name]).subs(consts_sym),
            modules=tools.MODULES,
        )
        scale = float(np.sum(np.abs(np.asarray(g(data), dtype=float) * np.ones_like(data))))
        assert abs(stats[sym.name] - v) <= 1e-12 * scale, (sym, stats[sym.name], v)


@pytest.mark.parametrize("name", FAMILIES)
def test_statistics_one_chunked_pass(name, derivation, families, tmp_path, monkeypatch):
    d, _model, _, consts, _ = setup(name, derivation, families)
    n, chunk = 5000, 1000
    data = families.sample(name, n)
    np.save(tmp_path / "x.npy", data)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r").view(CountingMemmap)
    monkeypatch.setattr(symmle.numbers.compiled, "CHUNK", chunk)
    est = families.compiled(name)
    reads = reads_of(lambda: est.statistics(mm, **consts))
    # consecutive chunks of at most CHUNK elements, covering the data exactly once
    assert reads == [(k, min(k + chunk, n)) for k in range(0, n, chunk)], reads
    if all(e.kind != "numeric" for e in d.solutions.values()):
        # closed-form and order-statistic estimators need nothing beyond that one pass
        reads = reads_of(lambda: est(mm, **consts))
        assert sum(b - a for a, b in reads) == n, reads
        assert all(b - a <= chunk for a, b in reads)


@pytest.mark.parametrize("name", FAMILIES)
def test_memmap_and_chunks_agree(name, derivation, families, tmp_path, monkeypatch):
    _d, _model, _, consts, _ = setup(name, derivation, families)
    data = families.sample(name, 5000)
    est = families.compiled(name)
    np.save(tmp_path / "x.npy", data)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(mm, np.memmap)
    reference = est(data, **consts)
    ref_ll = est.log_likelihood(data, **reference, **consts)
    ref_se = est.stderr(data, **consts)
    results = [est(mm, **consts)]
    monkeypatch.setattr(symmle.numbers.compiled, "CHUNK", 1000)
    results += [est(mm, **consts), est(np.array(data), **consts)]
    for got in results:
        assert list(got) == list(reference)
        for p, v in reference.items():
            assert rel(got[p], v) <= 1e-12, (p, got[p], v)
    assert rel(est.log_likelihood(mm, **reference, **consts), ref_ll) <= 1e-12
    for p, v in est.stderr(mm, **consts).items():
        assert (v is None) == (ref_se[p] is None)
        if v is not None:
            assert rel(v, ref_se[p]) <= 1e-10, p


# --------------------------------------------------------------------------
# numerical stability: data far from the origin
# --------------------------------------------------------------------------


def exact_mean_and_variance(values: np.ndarray) -> tuple[Fraction, Fraction]:
    """Exact mean and biased variance of the given floats (rational arithmetic on their integer mantissas)."""
    values = np.asarray(values, dtype=float)
    mant, ex = np.frexp(values)
    m = (mant * 2.0**53).astype(np.int64)  # exact: |mant| in [0.5, 1)
    shift = ex.astype(np.int64) - 53
    e0 = int(shift.min())
    rel_shift = shift - e0
    ints = m.tolist() if not rel_shift.any() else [a << b for a, b in zip(m.tolist(), rel_shift.tolist())]
    n = len(ints)
    s1 = sum(ints)
    s2 = sum(i * i for i in ints)
    unit = Fraction(2) ** e0
    return Fraction(s1, n) * unit, Fraction(n * s2 - s1 * s1, n * n) * unit * unit


def test_exact_variance_helper():
    x = np.array([0.1, 2.5, -3.75, 1e-3, 7.0])
    mean, var = exact_mean_and_variance(x)
    fr = [Fraction(v) for v in x.tolist()]
    m = sum(fr) / len(fr)
    assert mean == m
    assert var == sum((v - m) ** 2 for v in fr) / len(fr)


def test_normal_variance_far_from_origin(derivation):
    """N = 10**6 draws with mean 1e9 and sd 1: the naive (N T2 - T1**2)/N**2 loses every digit."""
    x = np.random.default_rng(20240611).normal(1e9, 1.0, 10**6)
    mean, var = exact_mean_and_variance(x)
    # the naive formula is useless on these data (that is what the test is about)
    naive = float(np.sum(x * x)) / x.size - (float(np.sum(x)) / x.size) ** 2
    assert rel(naive, float(var)) > 1e-3
    est = derivation("normal").compile()
    got = est(x)
    assert rel(got["sigma2"], float(var)) <= 1e-10, (got["sigma2"], float(var))
    assert rel(got["mu"], float(mean)) <= 1e-15
    # and through fit
    r = symmle.fit(derivation("normal"), x)
    assert rel(r.estimates["sigma2"], float(var)) <= 1e-10


def test_lognormal_variance_far_from_origin(derivation):
    """log x with mean 700 and sd 1e-4 (a log-mean of 1e6 overflows exp in double precision)."""
    z = np.random.default_rng(7).normal(700.0, 1e-4, 10**5)
    x = np.exp(z)
    assert np.all(np.isfinite(x))
    logs = np.log(x)
    mean, var = exact_mean_and_variance(logs)
    naive = float(np.sum(logs * logs)) / x.size - (float(np.sum(logs)) / x.size) ** 2
    assert rel(naive, float(var)) > 1e-6
    got = derivation("lognormal").compile()(x)
    assert rel(got["sigma2"], float(var)) <= 1e-10, (got["sigma2"], float(var))
    assert rel(got["mu"], float(mean)) <= 1e-15


def test_inverse_gaussian_lam_keeps_its_digits_at_a_tiny_spread(derivation):
    """lam_hat = N / sum(1/x_i - 1/mean) mixes sums of x and 1/x.

    Centring cannot help; the pilot rewrite must.

    At lam = 1e10 (coefficient of variation 1e-5) the plain formula
    N T1 / (T1 T2 - N**2) loses about 10 digits; the rewrite keeps all but two.
    """
    from fractions import Fraction

    est = derivation("inverse_gaussian").compile()
    assert est.plan["residual"], "no pilot rewrite was made"
    x = np.random.default_rng(7).wald(1.0, 1e10, 5000)
    exact = [Fraction(v) for v in x]
    mean = sum(exact) / len(exact)
    ref = float(len(exact) / sum(1 / v - 1 / mean for v in exact))
    assert abs(est(x)["lam"] - ref) <= 1e-12 * ref
    assert abs(est.estimate_rows(np.stack([x, x]))["lam"][1] - ref) <= 1e-12 * ref
    # the plain formula, for contrast: the test data really are hard
    t1, t2, n = float(np.sum(x)), float(np.sum(1 / x)), x.size
    assert abs(n * t1 / (t1 * t2 - n**2) - ref) > 1e-8 * ref
