"""The documents of a regression's derivation: lecture notes (LaTeX, Markdown), text and JSON.

A regression is derived per observation, in the linear predictor; its documents must show the
regression (the model, the log-likelihood as a sum over the observations, the score ``X^T s`` by the
chain rule, the Hessian and the information ``X^T W X``, the normal equations or Newton's method), never
the per-observation derivation as if it were an IID model.  Every per-observation formula the lecture
shows is compared with the :class:`~symmle.symbolic.regression.Regression` at random points (here, with
SymPy's own evaluation, independently of the lecture's checks); the matrix formulas are evaluated on
explicit matrices and compared with NumPy; the bias of the profiled variance is compared with a
simulation; the LaTeX documents compile with pdflatex.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.model.build import inline_model, load_model
from symmle.model.catalogue import family_names
from symmle.report.lecture.steps import builder_for

REGRESSIONS = family_names("regression")
#: families with a link given on the command line (a closed form with z(y) != y, a shared shape, a log link)
LINKED = [("lognormal", "mu", "identity"), ("weibull", "lam", "log"), ("bernoulli", "p", "cloglog")]
PDFLATEX = shutil.which("pdflatex")


@functools.cache
def linked(family: str, parameter: str, link: str):
    return symmle.derive(load_model(family).with_link({parameter: link}))


@pytest.fixture(scope="module", params=[*REGRESSIONS, *(":".join(t) for t in LINKED)])
def case(request, derivation):
    name = request.param
    return derivation(name) if ":" not in name else linked(*name.split(":"))


# --------------------------------------------------------------------------
# independent evaluation
# --------------------------------------------------------------------------


def _point(reg, rng) -> dict:
    """Random values of the response (in its support), eta, the shared parameters and the constants."""
    m = reg.model
    lo, hi = (float(e.subs(m.constant_point())) for e in m.support)
    if m.discrete:
        y = float(rng.integers(int(lo), int(min(hi, lo + 5)) + 1))
    elif math.isinf(lo):
        y = float(rng.uniform(-2, 2))
    else:
        y = lo + float(rng.uniform(0.2, 3.0))
    domain = {q.symbol: q.domain for q in m.parameters}
    at = {reg.response: y, reg.eta: float(rng.uniform(-1, 1)) if reg.eta_domain == "real" else 1.3}
    for s in reg.shared:
        at[s] = float(rng.uniform(0.2, 0.8)) if domain[s] == "unit" else float(rng.uniform(0.5, 2.5))
    at.update(m.constant_point())
    return at


def plain(expr, d):
    """A displayed per-observation formula back in the derivation's symbols (no index, theta as g^-1(eta))."""
    reg = d.regression
    expr = sp.sympify(expr)
    back = {}
    for a in expr.atoms(sp.Indexed):
        name = str(a.base.label)
        back[a] = {reg.eta.name: reg.eta, reg.parameter.name: reg.link.inverse(reg.eta)}.get(
            name, reg.response
        )
    for s in expr.free_symbols:
        if isinstance(s, sp.Symbol) and s.name in ("y", reg.response.name) and s != reg.response:
            back[s] = reg.response
    expr = expr.xreplace(back)
    return expr.subs(reg.parameter.symbol, reg.link.inverse(reg.eta))


def agree(a, b, d, points: int = 6) -> bool:
    """``a`` and ``b`` (in the derivation's symbols) at random points, by SymPy's evaluation in 30 digits."""
    rng = np.random.default_rng(7)
    good = 0
    for _ in range(points):
        at = _point(d.regression, rng)
        u, v = (complex(sp.N(sp.sympify(e).subs(at), 30)) for e in (a, b))
        if not all(math.isfinite(t) for t in (u.real, u.imag, v.real, v.imag)):
            continue
        assert abs(u - v) <= 1e-15 * (1 + abs(u) + abs(v)), (a, b, at, u, v)
        good += 1
    return good >= 3


def lines(d, kind=None):
    return [(s, lhs, rhs) for s in d.steps if kind is None or s.kind == kind for lhs, rhs in s.lines]


def head(lhs) -> str:
    return (
        type(lhs).__name__
        if isinstance(lhs, sp.Function) or isinstance(lhs, sp.core.function.AppliedUndef)
        else ""
    )


# --------------------------------------------------------------------------
# the lecture: what is shown is what was derived
# --------------------------------------------------------------------------


def test_regressions_have_their_own_builder():
    from symmle.report.lecture.regression import RegressionLecture

    assert builder_for(load_model("logistic_regression")) is RegressionLecture
    assert builder_for(load_model("bernoulli").with_link({"p": "logit"})) is RegressionLecture
    assert builder_for(load_model("bernoulli")) is not RegressionLecture


def test_per_observation_formulas_are_the_derivation(case):
    """Each line of s, s', w and l, and the parameter g^-1(eta_i), equals the Regression's expression."""
    d = case
    reg = d.regression
    targets = {"s": reg.score, "s_prime": reg.curvature, "w": reg.weight, "l": reg.log_density}
    found = set()
    previous = None
    for step, lhs, rhs in lines(d):
        lhs = previous if lhs is None else lhs
        previous = lhs
        name = head(lhs)
        if name in targets and targets[name] is not None and isinstance(rhs, sp.Expr):
            assert agree(plain(rhs, d), targets[name], d), (step.title, lhs, rhs)
            found.add(name)
        if isinstance(lhs, sp.Indexed) and str(lhs.base.label) == reg.parameter.name:
            assert agree(plain(rhs, d), reg.link.inverse(reg.eta), d)
            found.add("theta")
    assert {"s", "s_prime", "theta"} <= found, found
    assert reg.weight is None or "w" in found


def test_log_likelihood_is_the_sum_of_the_per_observation_terms(case):
    """The summand shown is log f at theta_i; the gathered form is the same sum (checked at N = 3)."""
    d = case
    reg = d.regression
    (step,) = [s for s in d.steps if s.kind == "log_likelihood"]
    sums = [rhs for lhs, rhs in step.lines if isinstance(lhs, sp.Function) and str(lhs.func) == "ell"]
    summand = sums[1].function
    assert agree(plain(summand, d), reg.log_density, d)
    rng = np.random.default_rng(3)
    N, i = d.likelihood.N, d.likelihood.index
    for form in sums[2:]:
        values = [_point(reg, rng) for _ in range(3)]
        total = []
        for expr in (sums[1], form):
            e = expr.subs(N, 3).doit()
            sub = {}
            for a in e.atoms(sp.Indexed):
                k = int(a.indices[0]) - 1
                name = str(a.base.label)
                if name == reg.eta.name:
                    sub[a] = values[k][reg.eta]
                elif name == reg.parameter.name:
                    sub[a] = reg.link.inverse(reg.eta).subs(reg.eta, values[k][reg.eta])
                else:
                    sub[a] = values[k][reg.response]
            shared = {s: values[0][s] for s in reg.shared}
            total.append(complex(sp.N(e.xreplace(sub).subs(shared).subs(d.model.constant_point()), 30)))
        assert abs(total[0] - total[1]) < 1e-12 * (1 + abs(total[0]))
    assert i not in sums[-1].free_symbols


def test_information_per_observation_is_the_derivation(case):
    d = case
    reg = d.regression
    matrices = [rhs for _, _, rhs in lines(d, "fisher") if isinstance(rhs, sp.MatrixBase)]
    if not reg.shared:
        return
    (shown,) = matrices
    for k in range(shown.rows):
        for j in range(shown.cols):
            if reg.information[k, j] is sp.nan:
                assert shown[k, j] is sp.nan
            else:
                assert agree(plain(shown[k, j], d), reg.information[k, j], d)


def test_linear_regression_lecture():
    """The seed's linear regression: normal equations, beta_hat, sigma2_hat = RSS/N and its bias."""
    d = symmle.derive("linear_regression")
    reg = d.regression
    text = d.to_latex()
    for piece in (
        r"\mathbf{X}^{\top} \mathbf{X} \boldsymbol{\beta} &= \mathbf{X}^{\top} \mathbf{y}",
        r"\hat{\boldsymbol{\beta}} &= \left(\mathbf{X}^{\top} \mathbf{X}\right)^{-1} "
        r"\mathbf{X}^{\top} \mathbf{y}",
        "residual sum of squares",
        r"\tilde{\sigma}^{2} = \frac{R_{1}}{N - p}",
    ):
        assert piece in text, piece
    (est,) = [s for s in d.steps if s.kind == "estimators"]
    values = dict(est.lines)
    sigma2 = next(v for k, v in values.items() if getattr(k, "name", "") == "hat_sigma2")
    assert sp.simplify(sigma2 - reg.profile["sigma2"]) == 0
    beta = next(v for k, v in values.items() if getattr(k, "name", "") == "hat_beta")
    X, y = sorted(beta.atoms(sp.MatrixSymbol), key=lambda m: m.name)
    rng = np.random.default_rng(11)
    Xv, yv = rng.normal(size=(7, 3)), rng.normal(size=(7, 1))
    value = np.array(
        beta.xreplace({X: sp.ImmutableMatrix(Xv), y: sp.ImmutableMatrix(yv)}).doit(), dtype=float
    )
    assert np.allclose(value, np.linalg.lstsq(Xv, yv, rcond=None)[0], rtol=1e-10)
    # the Regression's own score vanishes at it: X^T s(y, X beta_hat) = 0
    score = sp.lambdify((reg.response, reg.eta, *reg.shared), reg.score)
    assert np.allclose(Xv.T @ score(yv, Xv @ value, 1.3), 0, atol=1e-10)
    assert "Newton" not in text


def test_logistic_regression_lecture():
    """The seed's logistic regression: the score X^T (y - p), the information X^T W X, no closed form."""
    d = symmle.derive("logistic_regression")
    reg = d.regression
    tex = d.to_latex()
    assert r"\mathbf{X}^{\top} \left(\mathbf{y} - \mathbf{p}\right)" in tex
    assert r"\mathbf{X}^{\top} \mathbf{W} \mathbf{X}" in tex
    assert (
        r"\boldsymbol{\beta}^{(t+1)} &= \boldsymbol{\beta}^{(t)} + \left(\mathbf{X}^{\top} \mathbf{W}" in tex
    )
    assert "no closed form" in tex and "least-squares fit" not in tex
    # the gradient's last form, on explicit matrices, is sum_i s(y_i, eta_i) x_i with the derived s
    (gradient,) = [s for s in d.steps if s.kind == "derivative" and s.parameter == "beta"]
    last = gradient.lines[-1][1]
    mats = {m.name: m for m in last.atoms(sp.MatrixSymbol)}
    rng = np.random.default_rng(5)
    Xv, beta = rng.normal(size=(6, 2)), rng.normal(size=(2, 1))
    yv = rng.integers(0, 2, size=(6, 1)).astype(float)
    eta = Xv @ beta
    p = 1 / (1 + np.exp(-eta))
    value = last.xreplace(
        {
            mats["X"]: sp.ImmutableMatrix(Xv),
            mats["y"]: sp.ImmutableMatrix(yv),
            mats["p"]: sp.ImmutableMatrix(p),
        }
    ).doit()
    score = sp.lambdify((reg.response, reg.eta), reg.score)
    assert np.allclose(np.array(value, dtype=float), Xv.T @ score(yv, eta), atol=1e-12)
    # the weight shown is p(1 - p) in the linked parameter
    (w,) = [rhs for _, lhs, rhs in lines(d, "fisher") if head(lhs) == "w"]
    p_sym = reg.parameter.symbol
    assert sp.simplify(plain(w, d).subs(reg.eta, sp.log(p_sym / (1 - p_sym))) - p_sym * (1 - p_sym)) == 0


@pytest.mark.parametrize("family,parameter", [("linear_regression", "sigma2"), ("lognormal", "sigma2")])
def test_bias_of_the_profiled_variance_matches_a_simulation(family, parameter, rng):
    """E[sigma2_hat] = (N - p)/N sigma2 and R1/(N - p) unbiased, as the JSON says, against a simulation."""
    d = symmle.derive(family) if family.endswith("regression") else linked(family, "mu", "identity")
    doc = d.to_dict()
    reg = doc["regression"]
    est = doc["estimators"][parameter]
    N_, p_, sigma2 = 8, 3, 1.7
    X = np.column_stack([np.ones(N_), rng.normal(size=(N_, p_ - 1))])
    beta = np.array([0.3, -0.4, 0.8])
    eps = rng.normal(scale=math.sqrt(sigma2), size=(40000, N_))
    y = X @ beta + eps
    if family == "lognormal":
        y = np.exp(y)
    ysym = sp.Symbol(reg["response"], positive=family == "lognormal")
    z = sp.lambdify(
        ysym, sp.sympify(doc["estimators"]["beta"]["working_response"], locals={ysym.name: ysym})
    )(y)
    resid = z - z @ np.linalg.pinv(X).T @ X.T
    R = (resid**2).sum(axis=1)
    names = {
        "N": sp.Symbol("N"),
        reg["dimension"]: sp.Symbol(reg["dimension"]),
        parameter: sp.Symbol(parameter),
    }
    stat = next(iter(est["statistics"]))
    names[stat] = sp.Symbol(stat)
    at = {names["N"]: N_, names[reg["dimension"]]: p_, names[parameter]: sigma2}
    hat = sp.lambdify(names[stat], sp.sympify(est["expr"], locals=names).subs(at))(R)
    expected = float(sp.sympify(est["bias"]["expectation"], locals=names).subs(at))
    se = hat.std() / math.sqrt(hat.size)
    assert abs(hat.mean() - expected) < 4 * se, (hat.mean(), expected)
    assert abs(hat.mean() - sigma2) > 20 * se  # the bias is real
    unbiased = sp.lambdify(names[stat], sp.sympify(est["bias"]["unbiased"], locals=names).subs(at))(R)
    assert abs(unbiased.mean() - sigma2) < 4 * unbiased.std() / math.sqrt(R.size)
    assert est["bias"]["biased"] is True


def test_no_bias_claim_without_its_argument():
    """A profiled parameter whose bias is not derived gets no expectation (the Newton families get none)."""
    for name in ("logistic_regression", "gamma_regression"):
        doc = symmle.derive(name).to_dict()
        assert all("bias" not in e for e in doc["estimators"].values())


# --------------------------------------------------------------------------
# text and JSON
# --------------------------------------------------------------------------


def test_text_is_the_regression():
    text = symmle.derive("logistic_regression").to_text()
    assert "dl/dbeta = X^T s = X^T (y - p)" in text
    assert "X^T W X" in text and "no closed form" in text
    assert not re.search(r"\beta_hat", text) and "T1" not in text  # not the per-observation IID derivation
    linear = symmle.derive("linear_regression").to_text()
    assert "beta_hat = (X^T X)^-1 X^T y" in linear
    assert "sigma2_hat = R1/N" in linear and "R1/(N - p) is unbiased" in linear


def test_json_document(case):
    d = case
    reg = d.regression
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["schema"] == 1 and doc["model"]["link"] == dict(d.model.link)
    r = doc["regression"]
    assert doc["linear_predictor"] == f"{r['rows']}^T {r['coefficients']}"
    names = {**{k: v for k, v in d.model.symbols.items()}, reg.eta.name: reg.eta}
    names[r["response"]] = reg.response
    assert agree(sp.sympify(doc["log_likelihood"], locals=names), reg.log_density, d)
    assert agree(sp.sympify(doc["score"], locals=names), reg.score, d)
    if reg.weight is not None:
        assert agree(sp.sympify(doc["weight"], locals=names), reg.weight, d)
    N = sp.Symbol(r["observations"], integer=True, positive=True)
    p = sp.Symbol(r["dimension"], integer=True, positive=True)
    X = sp.MatrixSymbol(r["design"], N, p)
    mats = {
        r["design"]: X,
        r["coefficients"]: sp.MatrixSymbol(r["coefficients"], p, 1),
        r["scores"]: sp.MatrixSymbol(r["scores"], N, 1),
        r["weights"]: sp.MatrixSymbol(r["weights"], N, N),
        r["observations"]: N,
        r["dimension"]: p,
    }
    beta = doc["estimators"]["beta"]
    assert beta["kind"] == reg.kind
    info = sp.sympify(doc["fisher_information"]["beta"]["expr"], locals=mats)
    assert info == X.T * mats[r["weights"]] * X
    if reg.kind == "closed_form":
        z = sp.MatrixSymbol(beta["working_vector"], N, 1)
        expr = sp.sympify(beta["expr"], locals={**mats, z.name: z})
        rng = np.random.default_rng(2)
        Xv, zv = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
        value = expr.xreplace({X: sp.ImmutableMatrix(Xv), z: sp.ImmutableMatrix(zv)}).doit()
        assert np.allclose(np.array(value, dtype=float), np.linalg.lstsq(Xv, zv, rcond=None)[0])
        assert beta["verified"] is True
        for s in reg.shared:
            assert doc["estimators"][s.name]["kind"] == "closed_form"
    else:
        assert beta["expr"] is None and beta["latex"] is None
        update = sp.sympify(beta["update"], locals=mats)
        W, s = mats[r["weights"]], mats[r["scores"]]
        assert update == mats[r["coefficients"]] + sp.Inverse(X.T * W * X) * X.T * s
    assert [st["title"] for st in doc["steps"]] == [s.title for s in d.steps]


def test_json_of_an_iid_model_is_unchanged():
    doc = symmle.derive("poisson").to_dict()
    assert "regression" not in doc and doc["estimators"]["lam"]["expr"] == "T1/N"


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------


def test_cli_derive_with_a_link():
    result = CliRunner().invoke(cli, ["derive", "bernoulli", "--link", "p=logit"])
    assert result.exit_code == 0, result.output
    assert "X^T (y - p)" in result.output and "(the family's variable x)" in result.output
    result = CliRunner().invoke(cli, ["derive", "bernoulli", "--link", "p=logit", "--format", "json"])
    assert json.loads(result.output)["estimators"]["beta"]["kind"] == "newton"


def test_cli_derive_inline_with_a_link():
    args = ["derive", "--pdf", "th*exp(-th*y)", "--var", "y", "--support", "0,oo", "--param", "th:positive"]
    result = CliRunner().invoke(cli, [*args, "--link", "th=log", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert r"\mathbf{X}^{\top} \mathbf{W} \mathbf{X}" in result.output


@pytest.mark.parametrize(
    "link,message",
    [("p=foo", "unknown link 'foo'"), ("q=logit", "'q' is not a parameter"), ("p", "PARAM=LINK")],
)
def test_cli_derive_bad_link_is_one_line(link, message):
    result = CliRunner().invoke(cli, ["derive", "bernoulli", "--link", link])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------
# LaTeX documents and hostile names
# --------------------------------------------------------------------------


def _compile(tex: str, tmp_path, name: str) -> str:
    source = tmp_path / f"{name}.tex"
    source.write_text(tex, encoding="utf-8")
    for _ in range(2):
        run = subprocess.run(
            [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", source.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    log = (tmp_path / f"{name}.log").read_text(encoding="latin-1")
    assert run.returncode == 0 and "Undefined control sequence" not in log, run.stdout[-2000:]
    assert not re.search(r"LaTeX (Error|Warning: .*undefined)", log)
    over = [float(v) for v in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert max(over, default=0.0) <= 10.0, over
    return log


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression"])
def test_cli_standalone_latex_compiles(name, tmp_path):
    result = CliRunner().invoke(cli, ["derive", name, "--format", "latex", "--standalone"])
    assert result.exit_code == 0, result.output
    _compile(result.output, tmp_path, name)


HOSTILE_TITLE = "$\\input{/etc/passwd}$ }\\end{document} 50% & #1 ~ ^ _ {x}"


def _hostile_model():
    m = inline_model(
        "p_q**x*(1-p_q)**(1-x)", "x", "0,1", ["p_q:unit"], [], discrete=True, title=HOSTILE_TITLE
    )
    m = m.with_link({"p_q": "logit"})
    return dataclasses.replace(m, name="bern%_&#{}$\\", latex=(("p_q", "\\input{/etc/passwd}"),))


def test_hostile_names_are_escaped(tmp_path):
    d = symmle.derive(_hostile_model())
    tex = d.to_latex(standalone=True)
    assert "\\input" not in tex and "/etc/passwd" not in tex.split("\\maketitle")[1]
    assert "p_{q}" in tex  # the parameter's name as a subscript, its refused [latex] name ignored
    md = d.to_markdown()
    assert not re.search(r"(?<!\\)\$", md.splitlines()[0])
    text = d.to_text()
    assert text.isprintable() or all(c.isprintable() or c == "\n" for c in text)
    doc = d.to_dict()
    assert doc["model"]["name"] == "bern%_&#{}$\\" and json.loads(json.dumps(doc)) == doc
    if PDFLATEX is not None:
        _compile(tex, tmp_path, "hostile")
