"""The simplex by the Lagrangian, and the diagonal covariance entry by entry (issue 12).

The categorical and multinomial estimates are derived stage by stage (the Lagrangian, its gradient,
p in terms of the multiplier, the multiplier, p_hat), each stage compared as mathematics at K = 2, 3
and the estimates against the counts; the tangent-space second-order check passes for the
estimate and fails for wrong candidates; the Fisher information on the K - 1 free coordinates is
checked against the entrywise expected negative Hessian and the textbook diag(1/p) + 1/p_K 1 1^T;
the diagonal covariance of mvnormal_diagonal is solved entry by entry and checked against np.var.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

from symmle.symbolic.constrained import (
    FreeCoordinates,
    LastCoordinate,
    SimplexInformation,
    constraint_of,
    lagrange_simplex,
    multiplier_of,
    simplex_information,
)
from symmle.symbolic.constrained_verify import verify_lagrange, verify_simplex_information
from symmle.symbolic.matrix_calculus import RULES, gradient
from symmle.symbolic.matrix_explicit import explicit, symbol_matrix
from symmle.symbolic.matrix_solve import solve_stationary, solve_stationary_system
from symmle.symbolic.matrix_verify import verify_gradient, verify_root, verify_stationary

K = sp.Symbol("K", integer=True, positive=True)
N = sp.Symbol("N", positive=True)
p = sp.MatrixSymbol("p", K, 1)
T1 = sp.MatrixSymbol("T1", K, 1)
x = sp.MatrixSymbol("x", K, 1)
ONE_ROW = sp.OneMatrix(1, K)
#: the log-likelihood of N categorical or multinomial rows in T1 = sum x_i, as the parser writes it
#: (the multinomial's other terms do not hold p: a symbol stands for them)
H = sp.Symbol("H", real=True)
CATEGORICAL = sp.Trace(T1.T * p.applyfunc(sp.log))
MULTINOMIAL = H + sp.Trace(T1.T * p.applyfunc(sp.log))
ONE_HOT = {ONE_ROW * T1: N}
STATS = {T1: x}
LAM = multiplier_of(p)


def _onehot(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """One-hot rows; every category appears (an empty one puts the MLE on the boundary)."""
    labels = np.concatenate([np.arange(k), rng.integers(0, k, rows - k)])
    return np.eye(k)[labels]


def _counts(n: int):
    """Rows of ``n`` counts each (every category seen in some row)."""

    def sample(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
        labels = np.concatenate([np.arange(k), rng.integers(0, k, rows - k)])
        return np.eye(k, dtype=int)[labels] + rng.multinomial(n - 1, rng.dirichlet(np.ones(k)), size=rows)

    return sample


def _entrywise_zero(expr: sp.Basic, n: int, dim: sp.Symbol = K, symmetric: tuple = ()) -> bool:
    """``expr`` vanishes identically at dimension ``n``: every entry simplifies to 0."""
    mapping: dict = {dim: n}
    for m in sp.sympify(expr).atoms(sp.MatrixSymbol):
        rows, cols = (int(sp.sympify(s).subs(dim, n)) for s in m.shape)
        mapping[m] = symbol_matrix(m, rows, cols, m in symmetric)
    value = explicit(expr, mapping)
    entries = list(value) if isinstance(value, sp.MatrixBase) else [value]
    return all(sp.simplify(e) == 0 for e in entries)


@pytest.fixture(scope="module")
def categorical():
    out = lagrange_simplex(CATEGORICAL, p, known=ONE_HOT)
    assert out.ok, out.reason
    return out


@pytest.fixture(scope="module")
def multinomial():
    out = lagrange_simplex(MULTINOMIAL, p)
    assert out.ok, out.reason
    return out


# ---------------------------------------------------------------- the stages


@pytest.mark.parametrize("n", [2, 3])
def test_lagrangian_stages_are_the_textbook_ones(categorical, n):
    out = categorical
    tr_t1 = sp.Trace(ONE_ROW * T1)
    expected = {
        "lagrangian": CATEGORICAL + LAM * (1 - sp.Trace(ONE_ROW * p)),
        "gradient": DiagMatrix(p.applyfunc(lambda t: 1 / t)) * T1 - LAM * sp.OneMatrix(K, 1),
        "parameter_in_multiplier": T1 / LAM,
        "multiplier_equation": 1 - tr_t1 / LAM,
        "multiplier_solution": tr_t1,
        "multiplier_hat": N,
        "estimate": T1 / N,
    }
    for name, stage in out.stages:
        assert stage.ok, (name, stage.reason)
        assert _entrywise_zero(stage.value - expected[name], n), name
    assert out.constraint == constraint_of(p)
    assert out.multiplier == LAM
    assert out.identities == ((ONE_ROW * T1, N),)
    assert {"lagrangian", "gradient", "entrywise_solve", "constraint", "known_identity"} <= set(out.rules)
    assert set(out.rules) <= set(RULES)


def test_the_gradient_is_the_entrywise_quotient(categorical):
    # d tr(T1^T log.(p)) / dp = T1 ./ p, checked against sp.diff entry by entry
    g = gradient(CATEGORICAL, p)
    assert g.ok, g.reason
    ok, detail = verify_gradient(CATEGORICAL, p, g.value, domains={p: "simplex", T1: "positive"})
    assert ok, detail
    # and p(lambda) solves the Lagrangian's stationarity equation entrywise, for every lambda
    ok, detail = verify_root(
        categorical.gradient.value, p, categorical.parameter_in_multiplier.value, domains={T1: "positive"}
    )
    assert ok, detail
    ok, _ = verify_root(categorical.gradient.value, p, T1 * LAM, domains={T1: "positive"})
    assert not ok


def test_multinomial_keeps_the_total_count(multinomial):
    # without the one-hot identity, lambda is the total count 1^T T1 and p_hat = T1 / 1^T T1
    assert multinomial.identities == ()
    assert multinomial.multiplier_hat.value == multinomial.multiplier_solution.value
    for n in (2, 3):
        assert _entrywise_zero(multinomial.estimate.value - T1 / sp.Trace(ONE_ROW * T1), n)
    assert "known_identity" not in multinomial.rules


def test_an_identity_that_does_not_apply_is_not_reported():
    T2 = sp.MatrixSymbol("T2", K, 1)
    out = lagrange_simplex(CATEGORICAL, p, known={ONE_ROW * T2: N})
    assert out.ok, out.reason
    assert out.identities == ()
    assert out.multiplier_hat.value == sp.Trace(ONE_ROW * T1)


# ---------------------------------------------------------------- against the counts


def test_categorical_against_the_counts(categorical):
    rng = np.random.default_rng(5)
    for k in (2, 3, 7):
        data = _onehot(rng, 200, k)
        counts = data.sum(0)
        mapping = {K: k, N: sp.Integer(len(data)), T1: sp.Matrix(counts.astype(int))}
        p_hat = np.array(explicit(categorical.estimate.value, mapping), dtype=float).ravel()
        np.testing.assert_allclose(p_hat, counts / len(data), rtol=1e-15)
        assert p_hat.sum() == pytest.approx(1.0, rel=1e-15)


def test_multinomial_against_the_counts(multinomial):
    rng = np.random.default_rng(6)
    k = 4
    totals = rng.integers(1, 30, size=50)  # each row's count n_i varies
    data = np.array([rng.multinomial(t, [0.1, 0.2, 0.3, 0.4]) for t in totals])
    mapping = {K: k, N: sp.Integer(len(data)), H: 0, T1: sp.Matrix(data.sum(0))}
    p_hat = np.array(explicit(multinomial.estimate.value, mapping), dtype=float).ravel()
    np.testing.assert_allclose(p_hat, data.sum(0) / totals.sum(), rtol=1e-15)
    # the categorical formula T1 / N is not the multinomial MLE
    assert not np.allclose(data.sum(0) / len(data), p_hat)


# ---------------------------------------------------------------- second order


def test_the_estimates_are_verified_maxima(categorical, multinomial):
    ok, detail = verify_lagrange(
        CATEGORICAL,
        p,
        categorical.estimate.value,
        categorical.multiplier_hat.value,
        statistics=STATS,
        variable=x,
        n=N,
        sample=_onehot,
    )
    assert ok, detail
    assert "tangent space is negative definite" in detail and "K=2, 3" in detail
    ok, detail = verify_lagrange(
        MULTINOMIAL,
        p,
        multinomial.estimate.value,
        multinomial.multiplier_hat.value,
        statistics=STATS,
        variable=x,
        n=N,
        sample=_counts(5),
    )
    assert ok, detail


@pytest.mark.parametrize("lam", [N, 5 * N], ids=["lambda=N", "lambda=5N"])
def test_the_categorical_formula_fails_on_multinomial_rows(lam):
    # rows of n = 5 counts: 1^T T1 = 5N, so T1/N leaves the simplex; no multiplier rescues it
    ok, detail = verify_lagrange(
        MULTINOMIAL, p, T1 / N, lam, statistics=STATS, variable=x, n=N, sample=_counts(5)
    )
    assert not ok
    assert "does not vanish" in detail


def test_a_minimum_fails_the_second_order_check(categorical):
    # -ell has the same Lagrangian stationary point (multiplier negated), but it is a minimum there
    ok, detail = verify_lagrange(
        -CATEGORICAL,
        p,
        categorical.estimate.value,
        -categorical.multiplier_hat.value,
        statistics=STATS,
        variable=x,
        n=N,
        sample=_onehot,
    )
    assert not ok
    assert "not negative definite" in detail


def test_an_estimate_off_the_interior_is_refused():
    ok, detail = verify_lagrange(
        CATEGORICAL, p, T1 / N - sp.OneMatrix(K, 1), N, statistics=STATS, variable=x, n=N, sample=_onehot
    )
    assert not ok
    assert "interior" in detail


# ---------------------------------------------------------------- Fisher information


@pytest.fixture(scope="module")
def information():
    cat = simplex_information(CATEGORICAL, p, [T1], known=ONE_HOT)
    mult = simplex_information(MULTINOMIAL, p, [T1])
    assert cat.ok, cat.reason
    assert mult.ok, mult.reason
    return {"categorical": cat.value, "multinomial": mult.value}


def _textbook(k: int, shares: np.ndarray) -> np.ndarray:
    """diag(1/p_1..p_{K-1}) + 1/p_K 1 1^T: the information of one categorical draw."""
    return np.diag(1 / shares[:-1]) + np.ones((k - 1, k - 1)) / shares[-1]


def _at(info: SimplexInformation, expr: sp.Basic, k: int, shares: np.ndarray, extra: dict) -> np.ndarray:
    mapping = {K: k, info.free: sp.Matrix(shares[:-1]), info.last: sp.Float(shares[-1]), **extra}
    return np.array(explicit(expr, mapping), dtype=float)


@pytest.mark.parametrize("k", [2, 3])
def test_categorical_information_is_the_textbook_one(information, k):
    info = information["categorical"]
    assert isinstance(info.free, FreeCoordinates) and isinstance(info.last, LastCoordinate)
    assert info.free.shape == (K - 1, 1)
    assert info.total == N and info.identities == ((ONE_ROW * T1, N),)
    assert _entrywise_zero(info.expectations[T1] - N * p, k)
    shares = np.random.default_rng(k).dirichlet(np.ones(k) * 3)
    np.testing.assert_allclose(_at(info, info.per_count, k, shares, {}), _textbook(k, shares), rtol=1e-13)
    np.testing.assert_allclose(
        _at(info, info.matrix, k, shares, {N: 17}), 17 * _textbook(k, shares), rtol=1e-13
    )
    # the standard errors: the inverse is (diag(q) - q q^T) / N, the multinomial covariance
    cov = np.linalg.inv(_at(info, info.matrix, k, shares, {N: 17}))
    q = shares[:-1]
    np.testing.assert_allclose(cov, (np.diag(q) - np.outer(q, q)) / 17, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("k", [2, 3])
def test_multinomial_information_scales_with_the_total_count(information, k):
    info = information["multinomial"]
    assert info.identities == ()
    assert info.total == sp.Trace(ONE_ROW * T1)
    shares = np.random.default_rng(10 + k).dirichlet(np.ones(k) * 3)
    counts = sp.Matrix(np.arange(3, 3 + k))  # total 3k + k(k-1)/2
    total = int(sum(counts))
    np.testing.assert_allclose(_at(info, info.per_count, k, shares, {}), _textbook(k, shares), rtol=1e-13)
    np.testing.assert_allclose(
        _at(info, info.matrix, k, shares, {T1: counts}), total * _textbook(k, shares), rtol=1e-13
    )


def test_information_against_the_entrywise_expected_hessian(information):
    ok, detail = verify_simplex_information(
        CATEGORICAL, information["categorical"], statistics=[T1], n=N, total=N
    )
    assert ok, detail
    assert "K=2, 3" in detail
    ok, detail = verify_simplex_information(MULTINOMIAL, information["multinomial"], statistics=[T1], n=N)
    assert ok, detail


def test_coordinate_matrix_and_the_tangent_space(information):
    # -E[d^2 ell] = dp^T W dp' with W = N diag(1/p) in p's entries
    w = information["categorical"].coordinate_matrix
    shares = np.array([0.2, 0.3, 0.5])
    got = np.array(explicit(w, {K: 3, N: 11, p: sp.Matrix(shares)}), dtype=float)
    np.testing.assert_allclose(got, 11 * np.diag(1 / shares), rtol=1e-14)
    # a term c (1^T p - 1)^2 adds c 1 1^T to W, which vanishes on the tangent space (P^T 1 = 0):
    # the information on the free coordinates is the categorical one
    penalised = CATEGORICAL - N * (sp.Trace(ONE_ROW * p) - 1) ** 2
    out = simplex_information(penalised, p, [T1], known=ONE_HOT)
    assert out.ok, out.reason
    assert "tangent" in out.rules
    assert out.value.coordinate_matrix != w
    ok, detail = verify_simplex_information(penalised, out.value, statistics=[T1], n=N, total=N)
    assert ok, detail
    for k in (2, 3):
        shares = np.random.default_rng(k).dirichlet(np.ones(k) * 3)
        np.testing.assert_allclose(
            _at(out.value, out.value.per_count, k, shares, {}), _textbook(k, shares), rtol=1e-13
        )
    # its Lagrangian stage is refused with the reason: the scalar factor 1^T p couples the entries
    refused = lagrange_simplex(penalised, p)
    assert not refused.ok and "coupled" in refused.reason


def test_a_wrong_information_fails_the_verifier(information):
    info = information["categorical"]
    q, last = info.free, info.last
    wrong = [
        N * DiagMatrix(q.applyfunc(lambda t: 1 / t)),  # the free coordinates as if unconstrained
        N * (DiagMatrix(q.applyfunc(lambda t: 1 / t)) + sp.OneMatrix(K - 1, K - 1) / last) / 2,
    ]
    for matrix in wrong:
        bad = SimplexInformation(**{**info.__dict__, "matrix": matrix})
        ok, detail = verify_simplex_information(CATEGORICAL, bad, statistics=[T1], n=N, total=N)
        assert not ok
        assert "differs" in detail
    # the categorical information used for multinomial rows (total N instead of 1^T T1)
    ok, detail = verify_simplex_information(MULTINOMIAL, info, statistics=[T1], n=N)
    assert not ok


# ---------------------------------------------------------------- refusals


def test_a_refused_stage_refuses_the_stages_after_it():
    A = sp.MatrixSymbol("A", K, K)
    ell = sp.Trace(T1.T * (A * p).applyfunc(sp.log))  # A p mixes the entries: no entrywise rule
    out = lagrange_simplex(ell, p)
    assert out.lagrangian.ok and out.gradient.ok
    assert not out.parameter_in_multiplier.ok
    assert "mixes the entries" in out.parameter_in_multiplier.reason
    assert not out.ok and out.estimate.value is None
    assert "needs a stage that was refused" in out.estimate.reason
    assert out.reason == out.parameter_in_multiplier.reason


def test_refusals_of_the_entrywise_rule():
    v = sp.MatrixSymbol("v", K, 1)
    A = sp.MatrixSymbol("A", K, K)
    one = sp.OneMatrix(K, 1)
    refused = [
        (solve_stationary(A * v.applyfunc(sp.exp) - T1, v), "mixes the entries"),
        (solve_stationary(sp.Trace(ONE_ROW * v) * v.applyfunc(sp.exp) - T1, v), "coupled"),
        (solve_stationary(v.applyfunc(sp.sin) - one / 2, v), "admissible roots"),
    ]
    for outcome, words in refused:
        assert not outcome.ok
        assert words in outcome.reason, outcome.reason
    # an entrywise equation with one root: exp.(v) o T1 = 1 gives v = log.(1 ./ T1)
    out = solve_stationary(DiagMatrix(v.applyfunc(sp.exp)) * T1 - one, v)
    assert out.ok, out.reason
    ok, detail = verify_root(
        DiagMatrix(v.applyfunc(sp.exp)) * T1 - one, v, out.value, domains={T1: "positive"}
    )
    assert ok, detail


def test_budget_is_shared_by_the_stages():
    out = lagrange_simplex(CATEGORICAL, p, known=ONE_HOT, timeout=1e-9)
    assert not out.ok
    assert "time budget" in out.reason


# ---------------------------------------------------------------- the diagonal covariance

D = sp.Symbol("D", integer=True, positive=True)
mu = sp.MatrixSymbol("mu", D, 1)
s2 = sp.MatrixSymbol("s2", D, 1)  # the variances, a positive vector
U1 = sp.MatrixSymbol("T1", D, 1)
U2 = sp.MatrixSymbol("T2", D, D)
y = sp.MatrixSymbol("x", D, 1)
COV = DiagMatrix(s2)
DIAGONAL = (
    -N * D / 2 * sp.log(2 * sp.pi)
    - N / 2 * sp.log(sp.Determinant(COV))
    - sp.Trace(COV.I * U2) / 2
    + sp.Trace(mu.T * COV.I * U1)
    - N / 2 * sp.Trace(mu.T * COV.I * mu)
)
DKW = {"symmetric": [U2]}


@pytest.fixture(scope="module")
def diagonal():
    grads = {}
    for wrt in (mu, s2):
        g = gradient(DIAGONAL, wrt, **DKW)
        assert g.ok, g.reason
        grads[wrt] = g.value
    solved = solve_stationary_system(grads, positive=[s2], **DKW)
    assert solved.ok, solved.reason
    return {"gradients": grads, "solution": solved.value, "rules": solved.rules}


def test_diagonal_variances_entry_by_entry(diagonal):
    sol = diagonal["solution"]
    assert "entrywise_solve" in diagonal["rules"]
    expected = DiagonalOf(U2) / N - DiagMatrix(U1) * U1 / N**2  # dg(T2)/N - T1 o T1/N^2
    for n in (2, 3):
        assert _entrywise_zero(sol[mu] - U1 / N, n, dim=D)
        assert _entrywise_zero(sol[s2] - expected, n, dim=D, symmetric=(U2,))


def test_diagonal_variances_against_numpy(diagonal):
    sol = diagonal["solution"]
    rng = np.random.default_rng(3)
    data = rng.normal(size=(80, 3)) * np.array([0.5, 2.0, 7.0]) + np.array([1.0, -3.0, 1e3])
    mapping = {D: 3, N: sp.Integer(len(data)), U1: sp.Matrix(data.sum(0)), U2: sp.Matrix(data.T @ data)}
    np.testing.assert_allclose(np.array(explicit(sol[mu], mapping), dtype=float).ravel(), data.mean(0))
    variances = np.array(explicit(sol[s2], mapping), dtype=float).ravel()
    np.testing.assert_allclose(variances, np.var(data, axis=0), rtol=1e-9)


def test_diagonal_variances_are_verified(diagonal):
    sol = diagonal["solution"]
    at_mu = diagonal["gradients"][s2].xreplace({mu: sol[mu]})
    ok, detail = verify_root(at_mu, s2, sol[s2], symmetric=[U2], domains={s2: "positive"})
    assert ok, detail
    stats = {U1: y, U2: y * y.T}
    ok, detail = verify_stationary(
        DIAGONAL, sol, statistics=stats, variable=y, n=N, domains={s2: "positive"}, **DKW
    )
    assert ok, detail
    wrong = {mu: sol[mu], s2: DiagonalOf(U2) / N}  # the uncentred second moment
    ok, detail = verify_stationary(
        DIAGONAL, wrong, statistics=stats, variable=y, n=N, domains={s2: "positive"}, **DKW
    )
    assert not ok
    ok, _ = verify_root(at_mu, s2, wrong[s2], symmetric=[U2], domains={s2: "positive"})
    assert not ok
