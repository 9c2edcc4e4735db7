"""Documents of vector models: lecture notes in the first seed's notation, text and JSON (issue 12, part 5).

Every formula is compared as mathematics: expressions are computed out at a concrete dimension on random
admissible values and random data (``symmle.symbolic.matrix_explicit.explicit``, no matrix calculus), and
the estimators a lecture shows are compared with NumPy's mean and biased covariance of the same data.
The lecture's display objects are imported where they are used, so that on a tree without them each
test fails on its own (text, JSON, Markdown and LaTeX crashed or were refused before).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symmle
from symmle.model.catalogue import catalogue_dir
from symmle.symbolic.matrix_calculus import RULES
from symmle.symbolic.matrix_explicit import explicit
from symmle.symbolic.matrix_information import DuplicationMatrix

SPECS = catalogue_dir()  # the vector families of the catalogue
MODELS = ["mvnormal", "mvnormal_isotropic", "mvnormal_known_cov", "dirichlet"]
PDFLATEX = shutil.which("pdflatex")


@functools.cache
def _derive(name: str):
    return symmle.derive(SPECS / f"{name}.toml")


@pytest.fixture(scope="module")
def vector():
    """``vector(name)``: the derivation of a vector family of the catalogue, derived once."""
    return _derive


# --------------------------------------------------------------------------
# independent evaluation at a concrete dimension
# --------------------------------------------------------------------------


def _matrix(rng: np.random.Generator, rows: int, cols: int, domain: str) -> sp.Matrix:
    if domain == "spd":
        a = rng.normal(size=(rows, rows))
        return sp.Matrix(a @ a.T + rows * np.eye(rows))
    if domain in ("positive_vector", "positive"):
        return sp.Matrix(rng.uniform(0.5, 2.0, (rows, cols)))
    return sp.Matrix(rng.normal(size=(rows, cols)))


def _data(d, rng: np.random.Generator, dim: int, rows: int) -> np.ndarray:
    if d.model.support_set == "simplex":
        return rng.dirichlet(np.full(dim, 2.0), size=rows)
    return rng.normal(1.0, 2.0, size=(rows, dim))


def _point(d, dim: int, seed: int = 7, rows: int = 6) -> tuple[dict, np.ndarray]:
    """Random values of every symbol of a derivation at dimension ``dim``, and the data behind them."""
    rng = np.random.default_rng(seed)
    m = d.model
    values: dict = {m.dimension: sp.Integer(dim), d.likelihood.N: sp.Integer(rows)}
    for q in (*m.parameters, *m.constants):
        if isinstance(q.symbol, sp.MatrixSymbol):
            cols = 1 if q.symbol.shape[1] == 1 else dim
            values[q.symbol] = _matrix(rng, dim, cols, q.domain)
        else:
            values[q.symbol] = sp.Float(rng.uniform(0.5, 2.0))
    x = _data(d, rng, dim, rows)
    for s in d.likelihood.statistics:
        total = None
        for row in x:
            v = explicit(s.expr, {**values, m.variable: sp.Matrix(row)})
            total = v if total is None else total + v
        values[s.symbol] = total
    return values, x


def _array(v) -> np.ndarray:
    if isinstance(v, sp.MatrixBase):
        return np.array(v.evalf(30).tolist(), dtype=float)
    if isinstance(v, np.ndarray):
        return v.astype(float).reshape(v.shape if v.ndim == 2 else (-1, 1))
    return np.array([[float(sp.N(v, 30))]])


def _close(a, b) -> bool:
    """Whether two values (SymPy matrices or scalars, NumPy arrays) agree entry by entry."""
    fa, fb = _array(a), _array(b)
    return fa.shape == fb.shape and np.allclose(fa, fb, rtol=1e-9, atol=1e-9)


def _shown_value(expr, d, values: dict, x: np.ndarray, hats: dict):
    """A displayed expression at the data ``x``: sums over the data written out, estimates from NumPy."""
    from symmle.report.lecture.vector_forms import DataSum, Observation

    n_rows = len(x)
    mapping = dict(values)
    for k, row in enumerate(x, start=1):
        mapping[Observation(d.model.variable, k)] = sp.Matrix(row)
    mapping.update(hats)

    def out(s):
        if isinstance(s, DataSum):
            return sp.MatAdd(*[s.summand.xreplace({s.index: k}) for k in range(1, n_rows + 1)])
        i = s.limits[0][0]
        return sp.Add(*[s.function.xreplace({i: k}) for k in range(1, n_rows + 1)])

    e = sp.sympify(expr).replace(lambda s: isinstance(s, (DataSum, sp.Sum)), out)
    return explicit(e, mapping)


def _step(d, kind: str, parameter: str = ""):
    found = [s for s in d.steps if s.kind == kind and (not parameter or s.parameter == parameter)]
    assert found, f"{d.model.name}: no step of kind {kind} {parameter}"
    return found[0]


def _estimator_lines(d, name: str) -> list:
    """The right-hand sides of the estimator step that belong to ``hat_name``."""
    step = _step(d, "estimators")
    out, current = [], None
    for lhs, rhs in step.lines:
        if lhs is not None:
            current = getattr(lhs, "name", None)
        if current == f"hat_{name}":
            out.append(rhs)
    return out


# --------------------------------------------------------------------------
# the lecture: the seed's formulas, as mathematics
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
def test_mvnormal_estimators_are_the_seeds_formulas(vector, dim):
    """mu_hat = (1/N) sum x^(n) and Sigma_hat = (1/N) sum (x^(n) - mu_hat)(x^(n) - mu_hat)^T, as shown."""
    from symmle.report.lecture.vector_forms import DataSum, Observation

    d = vector("mvnormal")
    values, x = _point(d, dim)
    mean, cov = x.mean(axis=0), np.cov(x, rowvar=False, bias=True)
    mu, Sigma = d.model.parameter_symbols
    hats = {sp.MatrixSymbol("hat_mu", *mu.shape): sp.Matrix(mean)}
    mu_lines, sigma_lines = _estimator_lines(d, "mu"), _estimator_lines(d, "Sigma")
    assert mu_lines and sigma_lines
    for rhs in mu_lines:
        assert _close(_shown_value(rhs, d, values, x, hats), sp.Matrix(mean))
    for rhs in sigma_lines:
        assert _close(_shown_value(rhs, d, values, x, hats), sp.Matrix(cov))
    # the seed's centred form is among them, built here on its own: (1/N) sum (x - mu_hat)(x - mu_hat)^T
    n = sp.Symbol("n", integer=True, positive=True)
    hat_mu = sp.MatrixSymbol("hat_mu", *mu.shape)
    u = Observation(d.model.variable, n) - hat_mu
    seed = sp.MatMul(1 / d.likelihood.N, DataSum(u * u.T, n, d.likelihood.N))
    assert _close(_shown_value(seed, d, values, x, hats), sp.Matrix(cov))
    first = sigma_lines[0]
    assert isinstance(first, sp.MatMul) and any(isinstance(f, DataSum) for f in first.args)
    assert not first.has(*[s.symbol for s in d.likelihood.statistics]), "the first form is in the data"


def test_isotropic_variance_is_shown_centred(vector):
    """s2_hat = (1/(N D)) sum (x^(n) - mu_hat)^T (x^(n) - mu_hat): the mean squared deviation per entry."""
    d = vector("mvnormal_isotropic")
    values, x = _point(d, 3)
    mean = x.mean(axis=0)
    hats = {sp.MatrixSymbol("hat_mu", *d.model.parameter_symbols[0].shape): sp.Matrix(mean)}
    want = ((x - mean) ** 2).sum() / x.size
    lines = _estimator_lines(d, "s2")
    assert lines
    for rhs in lines:
        assert _close(_shown_value(rhs, d, values, x, hats), want)
    assert any(rhs.has(sp.Sum) for rhs in lines), "the centred sum over the data is shown"


def test_every_displayed_form_equals_the_pipelines(vector):
    """Stationarity, gradients and information blocks shown are the pipeline's, as mathematics."""
    d = vector("mvnormal")
    values, x = _point(d, 2)
    mu, Sigma = d.model.parameter_symbols
    # the gradients: -(score), evaluated at the same point
    scores = dict(zip(d.stationarity.parameters, d.stationarity.score))
    for p in (mu, Sigma):
        step = _step(d, "derivative", p.name)
        shown = next(rhs for lhs, rhs in step.lines if isinstance(lhs, sp.Derivative))
        assert _close(_shown_value(shown, d, values, x, {}), explicit(-scores[p], values))
    # the stationary point of Sigma for any mu: at mu = mu_hat it is the estimator
    step = _step(d, "stationary", "Sigma")
    (_, root) = step.lines[0]
    at = {**values, mu: sp.Matrix(x.mean(axis=0))}
    assert _close(_shown_value(root, d, at, x, {}), np.cov(x, rowvar=False, bias=True))
    # the Fisher information blocks
    fisher = [s for s in d.steps if s.title == "Fisher information"][0]
    block = d.information.blocks.blocks[Sigma, Sigma].matrix
    shown = dict(fisher.lines)[r"I(\operatorname{vech}\boldsymbol{\Sigma})"]
    assert _close(explicit(shown, values), explicit(block, values))


def test_the_rules_of_matrix_calculus_are_stated(vector):
    d = vector("mvnormal")
    sigma = _step(d, "derivative", "Sigma")
    for rule in ("log_det", "inverse", "cyclic"):
        assert RULES[rule] in sigma.text, rule
    assert sigma.lines[0][0] == r"\mathrm{d}J", "the differential is shown (its check passed)"
    assert "symmetric part" in sigma.after
    assert RULES["inverse_sandwich"] in _step(d, "stationary", "Sigma").after
    fisher = [s for s in d.steps if s.title == "Fisher information"][0]
    assert RULES["duplication"] in fisher.text and RULES["vec_kron"] in fisher.text


def test_crlb_blocks_and_entry_variances(vector):
    """(N I(vech Sigma))^-1 = (2/N) D+ (Sigma kron Sigma) D+^T and Var(Sigma_jk) >= (S_jj S_kk + S_jk^2)/N."""
    d = vector("mvnormal")
    step = _step(d, "crlb")
    values, _ = _point(d, 3)
    mu, Sigma = d.model.parameter_symbols
    bound = d.information.crlb.diag[1]
    want = explicit(bound, values)
    dplus = [
        rhs for _, rhs in step.lines if isinstance(rhs, sp.Basic) and "DuplicationInverse" in sp.srepr(rhs)
    ]
    assert dplus, "the Moore-Penrose form of the bound is shown"
    written = dplus[0].replace(lambda e: type(e).__name__ == "DuplicationInverse", lambda e: e.written())
    assert _close(explicit(written, values), want)
    # the entries' variances: the diagonal of the bound, independently from Sigma itself
    S, n = values[Sigma], values[d.likelihood.N]
    pairs = [(r, c) for c in range(3) for r in range(c, 3)]
    diag = [float(want[k, k]) for k in range(len(pairs))]
    assert np.allclose(diag, [float((S[r, r] * S[c, c] + S[r, c] ** 2) / n) for r, c in pairs])
    assert any(isinstance(lhs, str) and "Var" in lhs for lhs, _ in step.lines)
    assert step.relations.count(r"\succeq") == 2


def test_checker_refuses_a_wrong_form(vector):
    """A rearrangement that is not an identity is caught: (1/(N-1)) instead of 1/N."""
    d = vector("mvnormal")
    mu, Sigma = d.model.parameter_symbols
    est = d.estimators["Sigma"]
    from symmle.report.lecture.vector import VectorLecture
    from symmle.report.lecture.vector_forms import Checker

    lecture = VectorLecture(d.model, d.likelihood, d.stationarity, d.information)
    check = lecture.check
    assert isinstance(check, Checker)
    assert check.equal(est, est)
    N = d.likelihood.N
    assert not check.equal(est * N / (N - 1), est)
    assert not check.equal(lecture.show.in_sums(d.estimators["mu"]), est)


def test_numeric_kind_shows_its_score_equation(vector):
    d = vector("dirichlet")
    step = _step(d, "reduced", "a")
    (lhs, rhs) = step.lines[0]
    score = d.stationarity.score[0]
    values, x = _point(d, 3)
    assert _close(_shown_value(lhs, d, values, x, {}), explicit(score, values))
    assert "numerically" in step.after
    assert not [s for s in d.steps if s.kind == "estimators"]


def test_constrained_parameter_by_the_lagrangian():
    """The categorical p (on the simplex): derived by the Lagrangian, information on free coordinates
    (tests/test_simplex_lecture.py checks each form)."""
    d = symmle.derive("categorical")
    titles = [s.title for s in d.steps]
    assert "Lagrangian of p" in titles and "Estimate of p" in titles
    assert all(s.lines for s in d.steps if s.kind in ("fisher", "crlb"))
    doc = d.to_dict()
    assert doc["fisher_information"]["blocks"][0]["coordinates"] == ["free", "free"]
    assert "n/a" not in d.to_text()


# --------------------------------------------------------------------------
# the documents
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_text(vector, name):
    d = vector(name)
    text = d.to_text()
    assert text.isprintable() or all(c.isprintable() or c == "\n" for c in text)
    dim = d.model.dimension.name
    assert re.search(rf"T1 = sum_i .*\({dim} x 1\)", text)
    assert "Fisher information (per observation), by block" in text
    for a, b in d.information.blocks.blocks:
        assert f"I({a}, {b})" in text
    assert "Cramer-Rao bound" in text
    if name == "mvnormal":
        assert re.search(r"T2 = sum_i x_i\*x_i\.T\s+\(D x D\)", text)
        assert "vech" in text and "Sigma_hat = " in text


def _names(d) -> dict:
    names = {**d.model.symbols, "N": d.likelihood.N, "DuplicationMatrix": DuplicationMatrix}
    names.update({s.symbol.name: s.symbol for s in d.likelihood.statistics})
    return names


@pytest.mark.parametrize("name", MODELS)
def test_json(vector, name):
    d = vector(name)
    doc = json.loads(json.dumps(d.to_dict()))
    assert {"schema", "model", "log_likelihood", "sufficient_statistics", "estimators"} <= set(doc)
    names = _names(d)
    values, _ = _point(d, 2)
    # the log-likelihood and the statistics parse back and are the derived ones
    assert _close(
        explicit(sp.sympify(doc["log_likelihood"], locals=names), values), explicit(d.log_likelihood, values)
    )
    for key, s in doc["sufficient_statistics"].items():
        derived = d.sufficient_statistics[key]
        x = sp.Matrix(np.linspace(0.1, 0.4, 2) / 1.0)
        back = sp.sympify(s, locals=names)
        assert _close(
            explicit(back, {**values, d.model.variable: x}),
            explicit(derived, {**values, d.model.variable: x}),
        )
    for pname, entry in doc["estimators"].items():
        e = d.solutions[pname]
        if e.kind == "closed_form":
            back = sp.sympify(entry["expr"], locals=names)
            assert _close(explicit(back, values), explicit(e.expr, values))
            assert entry["latex"]
        else:
            assert entry["expr"] is None and entry["equation"].startswith("Eq(")
            back = sp.sympify(entry["equation"], locals=names)
            assert _close(explicit(back.lhs, values), explicit(e.equation.lhs, values))
    blocks = doc["fisher_information"]["blocks"]
    derived = d.information.blocks.blocks
    assert len(blocks) == len(derived)
    for b in blocks:
        assert set(b) == {"rows", "cols", "coordinates", "expr"}
        key = next(k for k in derived if (str(k[0]), str(k[1])) == (b["rows"], b["cols"]))
        assert b["coordinates"] == [derived[key].row_coordinates, derived[key].col_coordinates]
        assert _close(
            explicit(sp.sympify(b["expr"], locals=names), values), explicit(derived[key].matrix, values)
        )
    crlb = doc["crlb"]["blocks"]
    params = d.model.parameter_symbols
    for b, p in zip(crlb, params):
        assert b["rows"] == b["cols"] == p.name
        nI = explicit(derived[p, p].matrix, values) * values[d.likelihood.N]
        nI = nI if isinstance(nI, sp.MatrixBase) else sp.Matrix([[nI]])
        assert _close(explicit(sp.sympify(b["expr"], locals=names), values), nI.inv())


def test_json_of_mvnormal_names_the_blocks(vector):
    doc = vector("mvnormal").to_dict()
    shapes = [(b["rows"], b["cols"], b["coordinates"]) for b in doc["fisher_information"]["blocks"]]
    assert shapes == [
        ("mu", "mu", ["vec", "vec"]),
        ("mu", "Sigma", ["vec", "vech"]),
        ("Sigma", "Sigma", ["vech", "vech"]),
    ]
    assert doc["estimators"]["Sigma"]["expr"] == "(-1/N**2)*T1*T1.T + 1/N*T2"
    assert r"\boldsymbol{\mu}" in doc["estimators"]["Sigma"]["latex"]


@pytest.mark.parametrize("name", MODELS)
def test_markdown(vector, name):
    d = vector(name)
    md = d.to_markdown()
    assert md.startswith(f"# {d.model.title}")
    assert "## Maximising the likelihood" in md and "## Fisher information and the Cramér–Rao bound" in md
    assert md.count("$$") % 2 == 0 and "\\tag{1}" in md
    assert "\\eqref" not in md, "references are numbers in Markdown"
    assert r"\mathbf{x}^{(n)}" in md and r"\mathbf{T}_{1}" in md


def _compile(tex: str, tmp_path: Path, name: str):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_latex import compile_tex

    return compile_tex(PDFLATEX, tex, tmp_path, name)


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name", [*MODELS, "categorical", "multinomial", "mvnormal_diagonal"])
def test_latex_standalone_compiles(vector, tmp_path, name):
    """Compiled twice (references resolved), no error, no line more than 10 pt too wide."""
    d = vector(name)
    tex = d.to_latex(standalone=True)
    assert r"\boldsymbol" in tex or r"\mathbf" in tex
    _compile(tex, tmp_path, name)


def test_latex_uses_the_seeds_notation(vector):
    tex = vector("mvnormal").to_latex()
    for piece in (
        r"\mathbf{x}^{(n)}",
        r"\boldsymbol{\Sigma}^{-1}",
        r"\left(\mathbf{x}^{(n)} - \hat{\boldsymbol{\mu}}\right)^{\top}",
        r"\left|\boldsymbol{\Sigma}\right|",
        r"\mathbf{D}_{D}^{\top} \left(\boldsymbol{\Sigma}^{-1} \otimes \boldsymbol{\Sigma}^{-1}\right)",
    ):
        assert piece in tex, piece


@pytest.mark.parametrize("name", ["mvnormal", "mvnormal_isotropic"])
def test_the_means_of_the_estimators(vector, name):
    """E[Sigma_hat] = (N - 1)/N Sigma (and E[s2_hat] likewise): stated, and confirmed by simulation."""
    from symmle.report.lecture.vector import VectorLecture

    d = vector(name)
    lecture = VectorLecture(d.model, d.likelihood, d.stationarity, d.information)
    mu, second = d.model.parameter_symbols
    assert _close(explicit(lecture.estimator_mean(mu), _point(d, 2)[0]), _point(d, 2)[0][mu])
    values, _ = _point(d, 2, rows=5)
    mean = explicit(lecture.estimator_mean(second), values)
    # simulation: the average of the estimates over many data sets of N = 5 observations
    rng = np.random.default_rng(3)
    m = np.array(values[mu].evalf(), dtype=float).ravel()
    cov = (
        np.array(values[second].evalf(), dtype=float)
        if isinstance(second, sp.MatrixSymbol)
        else float(values[second]) * np.eye(2)
    )
    x = rng.multivariate_normal(m, cov, size=(40000, 5))
    centred = x - x.mean(axis=1, keepdims=True)
    if isinstance(second, sp.MatrixSymbol):
        simulated = np.einsum("rni,rnj->ij", centred, centred) / (40000 * 5)
    else:
        simulated = (centred**2).sum() / (40000 * 5 * 2)
    assert np.allclose(_array(mean), _array(simulated), rtol=0.03, atol=0.02)
    step = _step(d, "crlb")
    assert "is biased" in step.after and "is unbiased" in step.after


def test_failures_of_the_pipeline_are_shown_with_their_reason(vector):
    """A parameter without a gradient or estimator, and an information that failed its check: the reasons."""
    import dataclasses

    from symmle.symbolic.estimator import Estimator

    d = vector("mvnormal")
    st = d.stationarity
    estimators = dict(st.estimators)
    estimators["Sigma"] = Estimator("Sigma", "none", note="the rules refused it (a test's reason)")
    score = (st.score[0], sp.nan)
    info = dataclasses.replace(
        d.information, blocks=None, warnings=("the Fisher information failed its entrywise check",)
    )
    broken = dataclasses.replace(
        d, stationarity=dataclasses.replace(st, estimators=estimators, score=score), information=info
    )
    steps = broken.steps
    gradient = next(s for s in steps if s.kind == "derivative" and s.parameter == "Sigma")
    assert "a test's reason" in gradient.text and not gradient.lines
    assert not [s for s in steps if s.kind == "stationary" and s.parameter == "Sigma"]
    fisher = next(s for s in steps if s.kind == "fisher")
    assert "failed its entrywise check" in fisher.text and not fisher.lines
    assert broken.to_markdown() and broken.to_latex(standalone=True)
