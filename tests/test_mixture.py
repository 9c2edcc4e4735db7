"""Finite mixtures fitted by EM (issue 14): ``symmle.fit(..., mixture=K)`` and ``symmle fit --mixture``.

The answers are checked against independent fits: scikit-learn's GaussianMixture for normal
components, and a direct optimisation of the mixture log-likelihood written here (softmax weights,
log parameters, SciPy's densities) for the other families.  The standard errors are checked against a
finite-difference Hessian of that same independent log-likelihood.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import optimize, stats
from scipy.special import logsumexp

import symmle
from symmle.base.errors import DataError, SpecError, VerificationError
from symmle.cli import cli
from symmle.numbers import mixture_em as me

# --------------------------------------------------------------------------
# an independent mixture log-likelihood (SciPy's densities) and its direct maximisation
# --------------------------------------------------------------------------

#: log f(x; params) per family, params in the model's order (exponential/gamma use rates)
LOGPDF = {
    "normal": lambda x, mu, s2: stats.norm.logpdf(x, mu, np.sqrt(s2)),
    "exponential": lambda x, lam: stats.expon.logpdf(x, scale=1 / lam),
    "poisson": lambda x, lam: stats.poisson.logpmf(x, lam),
    "gamma": lambda x, a, b: stats.gamma.logpdf(x, a, scale=1 / b),
}
#: which parameters are positive (optimised on the log scale)
POSITIVE = {"normal": [False, True], "exponential": [True], "poisson": [True], "gamma": [True, True]}


def loglik(family, x, w, theta):
    """sum_i log sum_k w_k f(x_i; theta_k), theta as P x K."""
    parts = [np.log(w[k]) + LOGPDF[family](x, *theta[:, k]) for k in range(len(w))]
    return float(np.sum(logsumexp(np.vstack(parts), axis=0)))


def _to_free(family, w, theta):
    lw = np.log(w[:-1]) - np.log(w[-1])
    t = [np.log(row) if pos else row for row, pos in zip(theta, POSITIVE[family])]
    return np.r_[lw, np.concatenate(t)]


def _from_free(family, z, K):
    lw = np.r_[z[: K - 1], 0.0]
    w = np.exp(lw - logsumexp(lw))
    P = len(POSITIVE[family])
    rows = z[K - 1 :].reshape(P, K)
    theta = np.array([np.exp(r) if pos else r for r, pos in zip(rows, POSITIVE[family])])
    return w, theta


def direct_fit(family, x, starts):
    """Maximise the mixture log-likelihood with BFGS from each start; the best, sorted by theta[0]."""
    best = None
    for w0, t0 in starts:
        K = len(w0)
        res = optimize.minimize(
            lambda z, K=K: -loglik(family, x, *_from_free(family, z, K)) / len(x),
            _to_free(family, np.asarray(w0, float), np.asarray(t0, float)),
            method="BFGS",
            options={"gtol": 1e-10, "maxiter": 5000},
        )
        if best is None or res.fun < best.fun:
            best = res
    w, theta = _from_free(family, best.x, len(starts[0][0]))
    order = np.argsort(theta[0])
    return w[order], theta[:, order], loglik(family, x, w, theta)


def estimates(result):
    names = [k for k in result.estimates if k != "w"]
    return np.asarray(result.estimates["w"]), np.array([result.estimates[k] for k in names])


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def normal_data(K, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    mus = [-6.0, 0.0, 5.0][:K] if K == 3 else [-3.0, 2.0]
    sds = [1.0, 0.7, 1.5][:K] if K == 3 else [1.0, 1.5]
    ws = np.full(K, 1.0 / K) if K == 3 else np.array([0.35, 0.65])
    z = rng.choice(K, size=n, p=ws)
    return rng.normal(np.array(mus)[z], np.array(sds)[z])


@pytest.fixture(scope="module")
def normal2():
    return normal_data(2)


# --------------------------------------------------------------------------
# against scikit-learn
# --------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 3])
def test_normal_mixture_matches_sklearn(derivation, K):
    from sklearn.mixture import GaussianMixture

    x = normal_data(K)
    r = symmle.fit(derivation("normal"), x, mixture=K, seed=0)
    gm = GaussianMixture(
        n_components=K,
        tol=1e-12,
        n_init=10,
        max_iter=10000,
        covariance_type="full",
        reg_covar=0.0,
        random_state=0,
    ).fit(x[:, None])
    # scikit-learn stops on the change of the mean log-likelihood, so its parameters are only good to
    # about sqrt(tol) (here ~1e-6 or worse); its own EM, continued from its answer, is run much further
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning if it never gets there
        gm = GaussianMixture(
            n_components=K,
            tol=1e-16,
            max_iter=3000,
            covariance_type="full",
            reg_covar=0.0,
            weights_init=gm.weights_,
            means_init=gm.means_,
            precisions_init=gm.precisions_,
        ).fit(x[:, None])
    order = np.argsort(gm.means_.ravel())
    assert r.converged and r.components == K
    np.testing.assert_allclose(r.estimates["w"], gm.weights_[order], rtol=1e-6)
    np.testing.assert_allclose(r.estimates["mu"], gm.means_.ravel()[order], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(r.estimates["sigma2"], gm.covariances_.ravel()[order], rtol=1e-6)
    ll_sklearn = float(gm.score(x[:, None])) * len(x)
    assert r.log_likelihood >= ll_sklearn - 1e-9 * abs(ll_sklearn)
    # the log-likelihood symmle reports is the mixture's, computed independently here
    assert r.log_likelihood == pytest.approx(loglik("normal", x, *estimates(r)), rel=1e-12)


# --------------------------------------------------------------------------
# against a direct optimisation (other families, and a numeric M-step)
# --------------------------------------------------------------------------

CASES = {
    "exponential-2": (
        "exponential",
        lambda rng: np.r_[rng.exponential(0.5, 600), rng.exponential(8.0, 900)],
        [([0.4, 0.6], [[2.0, 0.125]]), ([0.5, 0.5], [[1.0, 0.3]])],
    ),
    "exponential-3": (
        "exponential",
        lambda rng: np.r_[rng.exponential(0.1, 700), rng.exponential(2.0, 700), rng.exponential(40.0, 700)],
        [([1 / 3] * 3, [[10.0, 0.5, 0.025]]), ([0.2, 0.3, 0.5], [[5.0, 1.0, 0.05]])],
    ),
    "poisson-2": (
        "poisson",
        lambda rng: np.r_[rng.poisson(1.5, 500), rng.poisson(9.0, 700)].astype(float),
        [([0.4, 0.6], [[1.5, 9.0]]), ([0.5, 0.5], [[3.0, 6.0]])],
    ),
    "gamma-2": (
        "gamma",
        lambda rng: np.r_[rng.gamma(2.0, 1.0, 600), rng.gamma(12.0, 1.0 / 0.8, 600)],
        [([0.5, 0.5], [[2.0, 12.0], [1.0, 0.8]]), ([0.3, 0.7], [[1.0, 5.0], [0.5, 0.5]])],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mixture_matches_direct_optimisation(derivation, case):
    family, draw, starts = CASES[case]
    x = draw(np.random.default_rng(7))
    K = len(starts[0][0])
    r = symmle.fit(derivation(family), x, mixture=K, seed=0)
    w_direct, theta_direct, ll_direct = direct_fit(family, x, starts)
    w, theta = estimates(r)
    assert r.converged and r.components == K
    # symmle's optimum is at least as high as the direct optimiser's, and the same point
    assert r.log_likelihood >= ll_direct - 1e-9 * abs(ll_direct)
    assert r.log_likelihood == pytest.approx(loglik(family, x, w, theta), rel=1e-12)
    np.testing.assert_allclose(w, w_direct, rtol=1e-4)
    np.testing.assert_allclose(theta, theta_direct, rtol=1e-4)


def test_gamma_mixture_uses_the_numeric_m_step(derivation):
    """The gamma shape has no closed form: the component M-step is the weighted numeric profile."""
    comp = me._Component(derivation("gamma"), {})
    assert comp.reduced == ["a"]
    rng = np.random.default_rng(3)
    x = rng.gamma(3.0, 0.5, 800)
    G = comp.statistics(x)
    # the weighted M-step with unit weights is the plain gamma MLE (scipy's, independently)
    a, b = comp.m_step(float(len(x)), G.sum(axis=0), None)
    a_ref, _, scale_ref = stats.gamma.fit(x, floc=0)
    assert a == pytest.approx(a_ref, rel=1e-5)
    assert b == pytest.approx(1 / scale_ref, rel=1e-5)


# --------------------------------------------------------------------------
# the log-likelihood never decreases; the check is real
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family,case", [("normal", None), ("exponential", "exponential-3"), ("gamma", "gamma-2")]
)
def test_trace_never_decreases(derivation, normal2, family, case):
    x = normal2 if case is None else CASES[case][1](np.random.default_rng(7))
    K = 2 if case is None else len(CASES[case][2][0][0])
    r = symmle.fit(derivation(family), x, mixture=K, seed=1)
    trace = np.array(r.trace)
    assert len(trace) >= 3
    assert np.all(np.diff(trace) >= -me.MONOTONE_SLACK * abs(trace[-1]))
    assert trace[-1] == r.log_likelihood


def test_plain_and_accelerated_em_agree(derivation, normal2):
    comp = me._Component(derivation("normal"), {})
    data = me._Data(comp, normal2)
    ref = comp.m_step(float(data.n), data.totals(), None)
    w0, t0 = np.array([0.5, 0.5]), np.array([[-1.0, 1.0], [1.0, 1.0]])
    plain = me._run(comp, data, w0, t0, ref, accelerate=False)
    fast = me._run(comp, data, w0, t0, ref, accelerate=True)
    assert plain.converged and fast.converged
    assert fast.iterations < plain.iterations
    assert fast.loglik == pytest.approx(plain.loglik, rel=1e-11)
    np.testing.assert_allclose(fast.theta, plain.theta, rtol=1e-5)
    for run in (plain, fast):
        assert np.all(np.diff(run.trace) >= -me.MONOTONE_SLACK * abs(run.loglik))


def test_a_decreasing_step_is_an_internal_error(derivation, normal2, monkeypatch):
    """A (broken) M-step that lowers the log-likelihood is reported, never hidden."""
    comp = me._Component(derivation("normal"), {})
    data = me._Data(comp, normal2)
    ref = comp.m_step(float(data.n), data.totals(), None)
    good = comp.m_step_all
    calls = {"n": 0}

    def worse(nk, S, previous):
        calls["n"] += 1
        t = good(nk, S, previous)
        return t if calls["n"] < 6 else t * np.array([[1.0], [3.0]])  # inflate the variances

    monkeypatch.setattr(comp, "m_step_all", worse)
    with pytest.raises(VerificationError, match="decreased"):
        me._run(comp, data, np.array([0.5, 0.5]), np.array([[-1.0, 1.0], [1.0, 1.0]]), ref, accelerate=False)


# --------------------------------------------------------------------------
# the E-step: chunks, memory-mapped data, the natural-parameter form
# --------------------------------------------------------------------------


def test_chunked_and_uncached_passes_agree(derivation, normal2, monkeypatch):
    comp = me._Component(derivation("normal"), {})
    w, theta = np.array([0.3, 0.7]), np.array([[-2.0, 1.5], [1.2, 2.0]])
    whole = me._Data(comp, normal2, chunk=10**7).e_pass(w, theta)
    monkeypatch.setattr(me, "CACHE_BYTES", 0)
    chunked = me._Data(comp, normal2, chunk=97)
    assert chunked.GT is None
    parts = chunked.e_pass(w, theta)
    assert parts[0] == pytest.approx(whole[0], rel=1e-13)
    np.testing.assert_allclose(parts[1], whole[1], rtol=1e-12)
    np.testing.assert_allclose(parts[2], whole[2], rtol=1e-12)
    # and the log-likelihood is the mixture's (independently)
    assert whole[0] == pytest.approx(loglik("normal", normal2, w, theta), rel=1e-12)
    # the responsibilities sum to N_k
    np.testing.assert_allclose(chunked.responsibilities(w, theta).sum(axis=0), whole[1], rtol=1e-12)


@pytest.mark.parametrize("family", ["normal", "poisson", "gamma"])
def test_natural_parameter_e_step_equals_log_density(derivation, family):
    comp = me._Component(derivation(family), {})
    rng = np.random.default_rng(2)
    x = rng.poisson(4.0, 300).astype(float) if family == "poisson" else rng.gamma(2.0, 1.0, 300)
    theta = {"normal": [[0.5, 2.0], [1.0, 3.0]], "poisson": [[1.0, 6.0]], "gamma": [[1.5, 4.0], [0.5, 2.0]]}
    theta = np.array(theta[family])
    w = np.array([0.4, 0.6])
    slow = me._Data(comp, x).e_pass(w, theta)
    assert comp.check_linear(x, [theta])
    fast = me._Data(comp, x).e_pass(w, theta)
    assert fast[0] == pytest.approx(slow[0], rel=1e-12)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-12)


def test_memory_mapped_data(derivation, normal2, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, normal2)
    mapped = np.load(path, mmap_mode="r")
    a = symmle.fit(derivation("normal"), mapped, mixture=2, seed=0)
    b = symmle.fit(derivation("normal"), normal2, mixture=2, seed=0)
    assert a.log_likelihood == b.log_likelihood
    np.testing.assert_array_equal(a.estimates["mu"], b.estimates["mu"])


def test_large_data_screen_on_a_subsample(derivation, monkeypatch):
    """Above SCREEN_ROWS the starts are screened on a subsample, then converged on all the data."""
    monkeypatch.setattr(me, "SCREEN_ROWS", 500)
    x = normal_data(2, n=4000, seed=5)
    r = symmle.fit(derivation("normal"), x, mixture=2, seed=0)
    monkeypatch.setattr(me, "SCREEN_ROWS", 10**6)
    full = symmle.fit(derivation("normal"), x, mixture=2, seed=0)
    assert r.converged
    assert r.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-12)
    np.testing.assert_allclose(r.estimates["mu"], full.estimates["mu"], rtol=1e-7)


# --------------------------------------------------------------------------
# degeneracy, labels, seeds
# --------------------------------------------------------------------------


def test_collapse_onto_a_point_is_a_data_error(derivation):
    rng = np.random.default_rng(0)
    x = np.r_[np.full(400, 3.0), rng.normal(0.0, 2.0, 60)]
    with pytest.raises(DataError, match="collapses onto a point"):
        symmle.fit(derivation("normal"), x, mixture=2, seed=0)


def test_too_few_distinct_values_is_a_data_error(derivation):
    with pytest.raises(DataError, match="at least 6 distinct values"):
        symmle.fit(derivation("poisson"), [0, 1, 2, 0, 1, 2, 2, 1], mixture=3)


def test_degenerate_data_on_the_command_line(tmp_path):
    path = tmp_path / "x.txt"
    rng = np.random.default_rng(0)
    path.write_text("\n".join(str(v) for v in np.r_[np.full(400, 3.0), rng.normal(0.0, 2.0, 60)]))
    proc = subprocess.run(
        [sys.executable, "-m", "symmle", "fit", "normal", "--mixture", "2", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: ")
    assert "collapses onto a point" in lines[0] and "Traceback" not in proc.stderr


def test_labels_in_canonical_order(derivation):
    rng = np.random.default_rng(4)
    # the data list the high-mean component first: the labels are sorted by the first parameter
    x = np.r_[rng.normal(8.0, 1.0, 500), rng.normal(-4.0, 1.0, 300), rng.normal(2.0, 1.0, 400)]
    r = symmle.fit(derivation("normal"), x, mixture=3, seed=3)
    assert list(r.estimates["mu"]) == sorted(r.estimates["mu"])
    np.testing.assert_allclose(r.estimates["mu"], [-4.0, 2.0, 8.0], atol=0.3)
    np.testing.assert_allclose(r.estimates["w"], [0.25, 1 / 3, 5 / 12], atol=0.03)


def test_seed_determinism(derivation, normal2):
    a = symmle.fit(derivation("normal"), normal2, mixture=2, seed=11).to_dict()
    b = symmle.fit(derivation("normal"), normal2, mixture=2, seed=11).to_dict()
    assert a == b


def test_seed_determinism_on_the_command_line(tmp_path, normal2):
    path = tmp_path / "x.npy"
    np.save(path, normal2)
    args = ["fit", "normal", "--mixture", "2", "--seed", "4", "--json", str(path)]
    outs = [CliRunner().invoke(cli, args), CliRunner().invoke(cli, args)]
    assert all(o.exit_code == 0 for o in outs), outs[0].output
    assert outs[0].stdout == outs[1].stdout


# --------------------------------------------------------------------------
# JSON contract and standard errors
# --------------------------------------------------------------------------


def test_json_contract(tmp_path, normal2):
    path = tmp_path / "x.npy"
    np.save(path, normal2)
    out = CliRunner().invoke(cli, ["fit", "normal", "--mixture", "2", "--json", str(path)])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["schema"] == 1 and doc["mixture"] == 2 and doc["n"] == len(normal2)
    for key in ("estimates", "stderr"):
        assert list(doc[key]) == ["w", "mu", "sigma2"]
        assert all(isinstance(v, list) and len(v) == 2 for v in doc[key].values())
    assert sum(doc["estimates"]["w"]) == pytest.approx(1.0, abs=1e-14)
    for key in ("log_likelihood", "aic", "bic"):
        assert isinstance(doc[key], float)
    assert doc["aic"] == pytest.approx(2 * 5 - 2 * doc["log_likelihood"])
    assert doc["bic"] == pytest.approx(5 * np.log(len(normal2)) - 2 * doc["log_likelihood"])
    assert isinstance(doc["iterations"], int) and doc["iterations"] > 0
    assert doc["converged"] is True
    assert doc["starts"]["n"] == 10 and 1 <= doc["starts"]["distinct_optima"] <= 10
    assert doc["information"] == "observed"


@pytest.mark.parametrize(
    "family,case", [("normal", None), ("gamma", "gamma-2"), ("exponential", "exponential-3")]
)
def test_standard_errors_against_a_finite_difference_hessian(derivation, normal2, family, case):
    x = normal2 if case is None else CASES[case][1](np.random.default_rng(7))
    K = 2 if case is None else len(CASES[case][2][0][0])
    r = symmle.fit(derivation(family), x, mixture=K, seed=0)
    w, theta = estimates(r)
    P = theta.shape[0]
    # the log-likelihood in (w_1..w_{K-1}, theta by component), independently, and its Hessian
    phi0 = np.r_[w[:-1], theta.T.reshape(-1)]

    def ll(phi):
        ww = np.r_[phi[: K - 1], 1 - phi[: K - 1].sum()]
        return loglik(family, x, ww, phi[K - 1 :].reshape(K, P).T)

    h = 1e-4 * np.maximum(np.abs(phi0), 1e-2)
    D = phi0.size
    H = np.empty((D, D))
    for i in range(D):
        for j in range(D):
            ei, ej = np.eye(D)[i] * h[i], np.eye(D)[j] * h[j]
            H[i, j] = (ll(phi0 + ei + ej) - ll(phi0 + ei - ej) - ll(phi0 - ei + ej) + ll(phi0 - ei - ej)) / (
                4 * h[i] * h[j]
            )
    cov = np.linalg.inv(-(H + H.T) / 2)
    se = np.sqrt(np.diag(cov))
    se_w_last = np.sqrt(cov[: K - 1, : K - 1].sum())
    np.testing.assert_allclose(r.stderr["w"], np.r_[se[: K - 1], se_w_last], rtol=2e-3)
    names = [k for k in r.estimates if k != "w"]
    for p, name in enumerate(names):
        np.testing.assert_allclose(r.stderr[name], se[K - 1 :].reshape(K, P)[:, p], rtol=2e-3)


# --------------------------------------------------------------------------
# bad numbers of components
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "abc", "51"])
def test_bad_mixture_values_are_one_line_errors(value, tmp_path, normal2):
    path = tmp_path / "x.npy"
    np.save(path, normal2)
    out = CliRunner().invoke(cli, ["fit", "normal", f"--mixture={value}", str(path)])
    assert out.exit_code == 2, out.output
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: --mixture"), out.stderr
    assert "Traceback" not in out.output


@pytest.mark.parametrize("value", ["0..3", "3..1", "a..b", "1..51", "2,x"])
def test_bad_components_values_are_one_line_errors(value, tmp_path, normal2):
    path = tmp_path / "x.npy"
    np.save(path, normal2)
    out = CliRunner().invoke(cli, ["fit", "normal", f"--components={value}", str(path)])
    assert out.exit_code == 2, out.output
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: --components"), out.stderr


def test_bad_values_in_python():
    for value in (0, -1, 2.5, "abc", 51, True):
        with pytest.raises(SpecError):
            me.check_components(value)
    assert me.check_components(np.int64(3)) == 3
    assert me.parse_components("1..3") == [1, 2, 3]
    assert me.parse_components([3, 1, 3]) == [1, 3]


# --------------------------------------------------------------------------
# K chosen by BIC
# --------------------------------------------------------------------------


def test_components_chosen_by_bic(derivation):
    normal2 = normal_data(2, n=800, seed=1)
    r = symmle.fit(derivation("normal"), normal2, components=range(1, 4), seed=0)
    assert r.selection[2]["error"] is None and r.selection[2]["log_likelihood"] > r.log_likelihood
    rows = r.selection
    assert [row["k"] for row in rows] == [1, 2, 3]
    bics = {row["k"]: row["bic"] for row in rows}
    assert r.components == min(bics, key=bics.get) == 2
    # each row is the fit of that K
    for row in rows[:2]:
        single = symmle.fit(derivation("normal"), normal2, mixture=row["k"], seed=0)
        assert row["log_likelihood"] == pytest.approx(single.log_likelihood, rel=1e-12)
        assert row["bic"] == pytest.approx(single.bic, rel=1e-12)
    # one component is the plain MLE
    plain = symmle.fit(derivation("normal"), normal2)
    assert rows[0]["log_likelihood"] == pytest.approx(plain.log_likelihood, rel=1e-12)
    doc = r.to_dict()
    assert doc["chosen_by"] == "bic" and [row["k"] for row in doc["components_bic"]] == [1, 2, 3]
    with pytest.raises(SpecError):
        symmle.fit(derivation("normal"), normal2, components=range(1, 3), mixture=2)


def test_components_on_the_command_line(tmp_path, normal2):
    path = tmp_path / "x.npy"
    np.save(path, normal2)
    out = CliRunner().invoke(cli, ["fit", "normal", "--components", "1..2", str(path)])
    assert out.exit_code == 0, out.output
    assert "the number of components chosen by BIC" in out.stdout
    assert out.stdout.count("<- chosen") == 1
    out = CliRunner().invoke(cli, ["fit", "normal", "--components", "1,2", "--json", str(path)])
    doc = json.loads(out.stdout)
    assert doc["mixture"] == 2 and len(doc["components_bic"]) == 2


# --------------------------------------------------------------------------
# data far from 0: the same fit shifted, or a clear refusal
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [1e3, 1e5])
def test_shifted_data_give_the_shifted_fit(derivation, normal2, shift):
    a = symmle.fit(derivation("normal"), normal2, mixture=2, seed=0)
    b = symmle.fit(derivation("normal"), normal2 + shift, mixture=2, seed=0)
    np.testing.assert_allclose(b.estimates["w"], a.estimates["w"], rtol=1e-6)
    np.testing.assert_allclose(b.estimates["mu"] - shift, a.estimates["mu"], atol=1e-6)
    np.testing.assert_allclose(b.estimates["sigma2"], a.estimates["sigma2"], rtol=1e-5)
    # the standard errors too (the finite-difference check takes steps on each parameter's scale)
    assert b.information == "observed"
    np.testing.assert_allclose(b.stderr["mu"], a.stderr["mu"], rtol=1e-4)


def test_data_too_far_from_zero_are_refused(derivation, normal2):
    with pytest.raises(DataError, match="loses its precision"):
        symmle.fit(derivation("normal"), normal2 + 1e7, mixture=2, seed=0)


@pytest.mark.parametrize(
    "extra",
    [["--ci", "profile"], ["--derived", "s=sqrt(sigma2)"], ["--prior", "mu ~ normal(mu=0, sigma2=1)"]],
)
def test_mixture_refuses_what_it_does_not_support_in_one_line(tmp_path, extra):
    path = tmp_path / "x.npy"
    np.save(
        path, np.r_[np.random.default_rng(0).normal(-2, 1, 100), np.random.default_rng(1).normal(2, 1, 100)]
    )
    result = CliRunner().invoke(cli, ["fit", "normal", str(path), "--mixture", "2", *extra])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "no --prior, --derived or --ci profile" in result.output
    with pytest.raises(SpecError, match="no prior, derived or ci='profile'"):
        symmle.fit("normal", np.load(path), components="1..2", ci="profile")
