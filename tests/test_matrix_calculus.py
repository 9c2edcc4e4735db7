"""Matrix calculus by stated rules (issue 12), each result against the entrywise derivation.

The multivariate Gaussian at symbolic D, as the parser writes it: gradients in mu and Sigma,
the estimators of the first seed (mu_hat = T1/N, Sigma_hat = (T2 - T1 T1^T/N)/N, compared as
mathematics and against np.mean / np.cov(bias=True)), the Fisher blocks Sigma^-1 and
1/2 D^T (Sigma^-1 kron Sigma^-1) D, the isotropic covariance s2 I, entrywise functions (the
Dirichlet), refusals with reasons, and wrong candidates that the verifier must reject.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symmle.symbolic.matrix_calculus import RULES, differential, gradient, substitute
from symmle.symbolic.matrix_explicit import explicit, symbol_matrix
from symmle.symbolic.matrix_information import (
    DuplicationMatrix,
    FisherBlock,
    FisherInformation,
    fisher_information,
    second_differential,
    vech_pairs,
)
from symmle.symbolic.matrix_solve import solve_stationary, solve_stationary_system
from symmle.symbolic.matrix_verify import verify_fisher, verify_gradient, verify_stationary

D = sp.Symbol("D", integer=True, positive=True)
N = sp.Symbol("N", positive=True)
mu = sp.MatrixSymbol("mu", D, 1)
Sigma = sp.MatrixSymbol("Sigma", D, D)
T1 = sp.MatrixSymbol("T1", D, 1)
T2 = sp.MatrixSymbol("T2", D, D)
x = sp.MatrixSymbol("x", D, 1)
s2 = sp.Symbol("s2", positive=True)
half = sp.Rational(1, 2)

#: the log-likelihood of N observations in the statistics, as the parser and likelihood write it
ELL = (
    -N * D / 2 * sp.log(2 * sp.pi)
    - N / 2 * sp.log(sp.Determinant(Sigma))
    - half * sp.Trace(Sigma.I * T2)
    + sp.Trace(mu.T * Sigma.I * T1)
    - N / 2 * sp.Trace(mu.T * Sigma.I * mu)
)
#: the log-density of one observation, the quadratic form unexpanded
LOGP = (
    -D / 2 * sp.log(2 * sp.pi)
    - half * sp.log(sp.Determinant(Sigma))
    - half * sp.Trace((x - mu).T * Sigma.I * (x - mu))
)
SYM = [Sigma, T2]
KW = {"symmetric": SYM, "invertible": [Sigma]}
STATS = {T1: x, T2: x * x.T}
#: the isotropic covariance s2 I, written with an inverse as a user would
ISO = (
    -N * D / 2 * sp.log(2 * sp.pi * s2)
    - half * sp.Trace((s2 * sp.Identity(D)).I * T2)
    + sp.Trace(mu.T * (s2 * sp.Identity(D)).I * T1)
    - N / 2 * sp.Trace(mu.T * (s2 * sp.Identity(D)).I * mu)
)


def _entrywise_zero(expr: sp.Basic, n: int, symmetric=SYM) -> bool:
    """``expr`` vanishes identically at dimension ``n``: every entry simplifies to 0."""
    mapping = {D: n}
    for m in sp.sympify(expr).atoms(sp.MatrixSymbol):
        rows, cols = (int(sp.sympify(s).subs(D, n)) for s in m.shape)
        mapping[m] = symbol_matrix(m, rows, cols, m in symmetric)
    value = explicit(expr, mapping)
    entries = list(value) if isinstance(value, sp.MatrixBase) else [value]
    return all(sp.simplify(e) == 0 for e in entries)


@pytest.fixture(scope="module")
def gaussian():
    g_mu = gradient(ELL, mu, **KW)
    g_sigma = gradient(ELL, Sigma, **KW)
    assert g_mu.ok and g_sigma.ok, (g_mu.reason, g_sigma.reason)
    solved = solve_stationary_system({mu: g_mu.value, Sigma: g_sigma.value}, **KW)
    assert solved.ok, solved.reason
    info = fisher_information(ELL, [mu, Sigma], [T1, T2], n=N, **KW)
    assert info.ok, info.reason
    return {"mu": g_mu.value, "Sigma": g_sigma.value, "solution": solved.value, "info": info.value}


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("f", [ELL, LOGP], ids=["statistics", "one observation"])
@pytest.mark.parametrize("wrt", [mu, Sigma], ids=["mu", "Sigma"])
def test_gaussian_gradients_agree_with_entrywise_derivatives(f, wrt):
    g = gradient(f, wrt, **KW)
    assert g.ok, g.reason
    ok, detail = verify_gradient(f, wrt, g.value, symmetric=SYM)
    assert ok, detail
    assert "D=2, 3" in detail


def test_gradients_are_the_textbook_ones(gaussian):
    # d ell/d mu = Sigma^-1 (T1 - N mu); the symmetric gradient in Sigma is
    # -N/2 Sigma^-1 + 1/2 Sigma^-1 A Sigma^-1 with A = T2 - T1 mu^T - mu T1^T + N mu mu^T
    a = T2 - T1 * mu.T - mu * T1.T + N * mu * mu.T
    for n in (2, 3):
        assert _entrywise_zero(gaussian["mu"] - Sigma.I * (T1 - N * mu), n)
        # compared numerically: the explicit inverse makes a symbolic simplify slow
        expected = -N / 2 * Sigma.I + half * Sigma.I * a * Sigma.I
        ok, detail = verify_gradient(ELL, Sigma, expected, symmetric=SYM, dims=(n,))
        assert ok, detail
        rng = np.random.default_rng(n)
        mapping = {D: n, N: sp.Float(7)}
        for m in (mu, T1):
            mapping[m] = sp.Matrix(rng.normal(size=(n, 1)))
        for m in (Sigma, T2):
            q = rng.normal(size=(n, n))
            mapping[m] = sp.Matrix(q @ q.T + n * np.eye(n))
        diff = explicit(gaussian["Sigma"] - expected, mapping)
        assert max(abs(float(v)) for v in diff) < 1e-12


def test_log_determinant_and_differential_name_their_rules():
    out = differential(ELL, Sigma, **KW)
    assert out.ok, out.reason
    assert {"log_det", "inverse", "trace"} <= set(out.rules)
    g = gradient(sp.log(sp.Determinant(Sigma)), Sigma, symmetric=[Sigma])
    assert g.value == Sigma.I
    for result in (out, g, gradient(ISO, s2, symmetric=[T2])):
        assert set(result.rules) <= set(RULES)


def test_sympys_log_determinant_derivative_fails_the_verifier():
    # SymPy 1.14 answers 0 for d log|S| / dS (the reason for this module); 0 must be rejected
    f = sp.log(sp.Determinant(Sigma))
    ok, detail = verify_gradient(f, Sigma, sp.ZeroMatrix(D, D), symmetric=[Sigma])
    assert not ok
    assert "differs" in detail
    ok, _ = verify_gradient(f, Sigma, Sigma, symmetric=[Sigma])  # S instead of S^-1
    assert not ok


def test_gradients_through_scalar_functions_and_products():
    A = sp.MatrixSymbol("A", D, D)
    B = sp.MatrixSymbol("B", D, D)
    p = sp.MatrixSymbol("p", D, 1)
    cases = [
        (sp.exp(sp.Trace(p.T * A * p)), p, {}),
        (sp.log(sp.Determinant(A * Sigma * B)), Sigma, {}),
        (sp.Determinant(Sigma) ** 2 * sp.Trace(A * Sigma), Sigma, {Sigma: "spd"}),
        (sp.Trace(sp.Inverse(Sigma + A)), Sigma, {Sigma: "spd", A: "spd"}),
        (sp.sqrt(sp.Trace(p.T * p)) + sp.Trace(Sigma.T * A * Sigma), Sigma, {}),
    ]
    for f, wrt, domains in cases:
        g = gradient(f, wrt)
        assert g.ok, (f, g.reason)
        ok, detail = verify_gradient(f, wrt, g.value, domains=domains)
        assert ok, (f, detail)


# ---------------------------------------------------------------- entrywise functions


def test_dirichlet_terms_entrywise_functions_of_a_vector():
    a = sp.MatrixSymbol("a", D, 1)
    T3 = sp.MatrixSymbol("T3", D, 1)
    one_row, one = sp.OneMatrix(1, D), sp.OneMatrix(D, 1)
    dirichlet = (
        N * sp.loggamma(sp.Trace(one_row * a))
        - N * sp.Trace(one_row * a.applyfunc(sp.loggamma))
        + sp.Trace((a - one).T * T3)
    )
    terms = [
        (sp.Trace((a - one).T * x.applyfunc(sp.log)), {x: "positive"}),
        (sp.Trace(one_row * a.applyfunc(sp.loggamma)), {a: "positive"}),
        (dirichlet, {a: "positive"}),
    ]
    for f, domains in terms:
        g = gradient(f, a)
        assert g.ok, g.reason
        ok, detail = verify_gradient(f, a, g.value, domains=domains)
        assert ok, detail
    # d/da of transpose(a - 1) @ log.(x) is log.(x)
    g = gradient(terms[0][0], a).value
    assert _entrywise_zero(g - x.applyfunc(sp.log), 2)
    info = fisher_information(dirichlet, [a], [T3], n=N)
    assert info.ok, info.reason
    ok, detail = verify_fisher(dirichlet, info.value, statistics=[T3], n=N, domains={a: "positive"})
    assert ok, detail
    # no closed form: the score equation is not linear in a, and the solver says so
    refused = solve_stationary(gradient(dirichlet, a).value, a)
    assert not refused.ok and "not linear" in refused.reason


def test_categorical_term_log_of_a_simplex_vector():
    p = sp.MatrixSymbol("p", D, 1)
    counts = sp.MatrixSymbol("n", D, 1)
    f = sp.Trace(counts.T * p.applyfunc(sp.log))
    g = gradient(f, p)
    assert g.ok, g.reason
    ok, detail = verify_gradient(f, p, g.value, domains={p: "simplex"})
    assert ok, detail


# ---------------------------------------------------------------- stationary points


def test_estimators_are_the_seeds(gaussian):
    sol = gaussian["solution"]
    assert list(sol) == [mu, Sigma]  # mu first, then Sigma with mu substituted
    for n in (2, 3):
        assert _entrywise_zero(sol[mu] - T1 / N, n)
        assert _entrywise_zero(sol[Sigma] - (T2 - T1 * T1.T / N) / N, n)


def test_estimators_against_numpy(gaussian):
    sol = gaussian["solution"]
    rng = np.random.default_rng(12)
    data = rng.normal(size=(50, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 0.7]]) + 4.0
    mapping = {D: 3, N: sp.Integer(len(data)), T1: sp.Matrix(data.sum(0)), T2: sp.Matrix(data.T @ data)}
    mu_hat = np.array(explicit(sol[mu], mapping), dtype=float).ravel()
    sigma_hat = np.array(explicit(sol[Sigma], mapping), dtype=float)
    np.testing.assert_allclose(mu_hat, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma_hat, np.cov(data, rowvar=False, bias=True), rtol=1e-10)


def test_stationary_point_is_a_verified_maximum(gaussian):
    ok, detail = verify_stationary(
        ELL, gaussian["solution"], statistics=STATS, variable=x, n=N, symmetric=SYM
    )
    assert ok, detail


@pytest.mark.parametrize(
    "wrong",
    [
        {mu: T1 / N, Sigma: T2 / N},  # the second moment, not centred
        {mu: T1 / (N + 1), Sigma: (T2 - T1 * T1.T / N) / N},
        {mu: T1 / N, Sigma: (T2 - T1 * T1.T / N) / (N - 1)},  # unbiased, not the MLE
    ],
    ids=["uncentred", "mean", "unbiased"],
)
def test_wrong_estimators_fail_the_verifier(wrong):
    ok, detail = verify_stationary(ELL, wrong, statistics=STATS, variable=x, n=N, symmetric=SYM)
    assert not ok
    assert "score" in detail


def test_a_minimum_is_not_a_maximum(gaussian):
    # -ell has the same stationary point, but there its Hessian is positive definite
    ok, detail = verify_stationary(
        -ELL, gaussian["solution"], statistics=STATS, variable=x, n=N, symmetric=SYM
    )
    assert not ok
    assert "negative definite" in detail


def test_sigma_equation_by_multiplying_with_sigma():
    A = sp.MatrixSymbol("A", D, D)
    g = -N / 2 * Sigma.I + half * Sigma.I * A * Sigma.I
    out = solve_stationary(g, Sigma, symmetric=[Sigma, A], invertible=[Sigma])
    assert out.ok, out.reason
    assert "inverse_sandwich" in out.rules
    assert _entrywise_zero(out.value - A / N, 2, symmetric=[Sigma, A])


def test_isotropic_covariance(gaussian):
    kw = {"symmetric": [T2]}
    g_mu, g_s2 = gradient(ISO, mu, **kw), gradient(ISO, s2, **kw)
    for wrt, g in ((mu, g_mu), (s2, g_s2)):
        assert g.ok, g.reason
        ok, detail = verify_gradient(ISO, wrt, g.value, **kw)
        assert ok, detail
    solved = solve_stationary_system({mu: g_mu.value, s2: g_s2.value}, **kw)
    assert solved.ok, solved.reason
    expected = sp.Trace(T2 - T1 * T1.T / N) / (N * D)
    for n in (2, 3):
        assert _entrywise_zero(solved.value[s2] - expected, n)
    ok, detail = verify_stationary(ISO, solved.value, statistics=STATS, variable=x, n=N, **kw)
    assert ok, detail
    info = fisher_information(ISO, [mu, s2], [T1, T2], n=N, **kw)
    assert info.ok, info.reason
    assert sp.simplify(info.value.block(s2, s2) - D / (2 * s2**2)) == 0
    assert _entrywise_zero(info.value.block(mu, mu) - sp.Identity(D) / s2, 3)
    ok, detail = verify_fisher(ISO, info.value, statistics=[T1, T2], n=N, **kw)
    assert ok, detail


# ---------------------------------------------------------------- Fisher information


def test_duplication_matrix():
    for n in (2, 3):
        s = symbol_matrix(sp.MatrixSymbol("S", n, n), n, n, symmetric=True)
        vec = sp.Matrix([s[r, c] for c in range(n) for r in range(n)])
        vech = sp.Matrix([s[r, c] for r, c in vech_pairs(n)])
        assert DuplicationMatrix(n).as_explicit() * vech == vec
        assert DuplicationMatrix(D).shape == (D**2, D * (D + 1) / 2)


def test_fisher_blocks_are_the_textbook_ones(gaussian):
    info = gaussian["info"]
    assert info.per_observation
    dup = DuplicationMatrix(D)
    expected = {
        (mu, mu): Sigma.I,
        (Sigma, Sigma): half * dup.T * sp.KroneckerProduct(Sigma.I, Sigma.I) * dup,
    }
    for n in (2, 3):
        for key, want in expected.items():
            ok, detail = _same_numbers(info.blocks[key].matrix, want, n)
            assert ok, (key, detail)
        cross = explicit(info.block(mu, Sigma), {D: n, Sigma: sp.eye(n)})
        assert cross == sp.zeros(n, n * (n + 1) // 2)
    ok, detail = verify_fisher(ELL, info, statistics=[T1, T2], n=N, symmetric=SYM)
    assert ok, detail


def _same_numbers(a: sp.Basic, b: sp.Basic, n: int) -> tuple[bool, str]:
    rng = np.random.default_rng(n)
    q = rng.normal(size=(n, n))
    mapping = {D: n, Sigma: sp.Matrix(q @ q.T + n * np.eye(n))}
    diff = explicit(a - b, mapping)
    worst = max(abs(float(v)) for v in diff)
    return worst < 1e-12, f"largest difference {worst:g}"


def test_standard_errors_of_the_covariance(gaussian):
    # Var Sigma_hat_jk ~ (S_jj S_kk + S_jk^2)/N: the inverse of the vech block, per observation
    block = gaussian["info"].blocks[(Sigma, Sigma)].matrix
    s = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.3], [0.1, -0.3, 1.5]])
    cov = np.linalg.inv(np.array(explicit(block, {D: 3, Sigma: sp.Matrix(s)}), dtype=float))
    for i, (j, k) in enumerate(vech_pairs(3)):
        assert cov[i, i] == pytest.approx(s[j, j] * s[k, k] + s[j, k] ** 2, rel=1e-12)


def test_a_wrong_fisher_block_fails_the_verifier(gaussian):
    info = gaussian["info"]
    good = info.blocks[(Sigma, Sigma)]
    dup = DuplicationMatrix(D)
    bad = FisherBlock(
        Sigma, Sigma, "vech", "vech", dup.T * sp.KroneckerProduct(Sigma.I, Sigma.I) * dup, good.vec_form
    )
    wrong = FisherInformation(
        info.params, {**info.blocks, (Sigma, Sigma): bad}, info.expectations, info.forms, True
    )
    ok, detail = verify_fisher(ELL, wrong, statistics=[T1, T2], n=N, symmetric=SYM)
    assert not ok
    assert "differs" in detail


def test_second_differential_is_bilinear_in_two_directions():
    out = second_differential(ELL, Sigma, Sigma, **KW)
    assert out.ok, out.reason
    names = {m.name for m in out.value.atoms(sp.MatrixSymbol)}
    assert {"d(Sigma)", "d(Sigma)'"} <= names


# ---------------------------------------------------------------- refusals


def test_refusals_give_reasons_not_wrong_answers():
    A = sp.MatrixSymbol("A", D, D)
    B = sp.MatrixSymbol("B", D, D)
    X = sp.MatrixSymbol("X", D, D)
    refused = [
        (gradient(sp.Trace(Sigma.applyfunc(sp.log)), Sigma), "entrywise function of a matrix"),
        (gradient(Sigma[0, 0], Sigma), "matrix entry"),
        (gradient(sp.Trace(sp.Inverse(A + sp.Trace(Sigma) * B)), Sigma), "inside a matrix function"),
        (solve_stationary(A * X + X * B - Sigma, X), "Sylvester"),
        (solve_stationary(X * A * X - Sigma, X, invertible=[X]), "not linear"),
        (solve_stationary(A * X - Sigma, X), "not known to be invertible"),
        (solve_stationary(X + X.T - Sigma, X), "transpose"),
        (solve_stationary(-N / 2 * X.I + X.I * A * X.I / 2, X), "not declared invertible"),
    ]
    for outcome, words in refused:
        assert not outcome.ok
        assert outcome.value is None
        assert words in outcome.reason, outcome.reason


def test_expectation_not_determined_by_the_score_identity_is_refused():
    a, u, v = sp.symbols("a U V", real=True)
    out = fisher_information(a * u - N * sp.exp(a) + a**2 * v, [a], [u, v])
    assert not out.ok
    assert "not determined" in out.reason


def test_substitute_keeps_the_normal_form():
    g = substitute(-N * Sigma.I * mu + Sigma.I * T1, {mu: T1 / N}, **KW)
    assert g == sp.ZeroMatrix(D, 1)


def test_hostile_constructs_are_refused_not_expanded():
    A = sp.MatrixSymbol("A", D, D)
    v = sp.MatrixSymbol("v", D, 1)
    t = sp.Dummy("t")
    eaf = sp.matrices.expressions.applyfunc.ElementwiseApplyFunction
    tricky = eaf(sp.Lambda(t, sp.exp(t * sp.Trace(Sigma))), v)
    refused = [
        (gradient(sp.Trace(sp.MatPow(Sigma + A, 10**9)), Sigma), "not expanded"),
        (gradient(sp.Trace(sp.OneMatrix(1, D) * tricky), Sigma), "definition involves"),
    ]
    for outcome, words in refused:
        assert not outcome.ok
        assert words in outcome.reason, outcome.reason
    # a linear entrywise function is a scalar multiple: t -> t tr(Sigma) gives tr(Sigma) v, whose
    # gradient is right, not silently 0
    f = sp.Trace(sp.OneMatrix(1, D) * eaf(sp.Lambda(t, t * sp.Trace(Sigma)), v))
    g = gradient(f, Sigma)
    assert g.ok, g.reason
    ok, detail = verify_gradient(f, Sigma, g.value)
    assert ok, detail


def test_diagonal_covariance_gradient_and_information():
    from sympy.matrices.expressions.diagonal import DiagMatrix

    v = sp.MatrixSymbol("v", D, 1)  # the variances, a positive vector
    cov = DiagMatrix(v)
    ell = (
        -N * D / 2 * sp.log(2 * sp.pi)
        - N / 2 * sp.log(sp.Determinant(cov))
        - half * sp.Trace(cov.I * T2)
        + sp.Trace(mu.T * cov.I * T1)
        - N / 2 * sp.Trace(mu.T * cov.I * mu)
    )
    kw = {"symmetric": [T2]}
    for wrt in (mu, v):
        g = gradient(ell, wrt, **kw)
        assert g.ok, g.reason
        ok, detail = verify_gradient(ell, wrt, g.value, domains={v: "positive"}, **kw)
        assert ok, detail
    assert solve_stationary(gradient(ell, mu, **kw).value, mu, **kw).value == T1 / N
    info = fisher_information(ell, [mu, v], [T1, T2], n=N, **kw)
    assert info.ok, info.reason
    ok, detail = verify_fisher(ell, info.value, statistics=[T1, T2], n=N, domains={v: "positive"}, **kw)
    assert ok, detail
    # I(v) = diag(1 / (2 v^2)), per observation
    block = explicit(info.value.block(v, v), {D: 2, v: sp.Matrix([2, 3])})
    assert block == sp.diag(sp.Rational(1, 8), sp.Rational(1, 18))
