"""derive --mixture K: EM derived from the component's derivation (symmle.symbolic.mixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

import symmle
from symmle.base.errors import SpecError
from symmle.base.numeric import to_function
from symmle.model.build import load_model
from symmle.model.mixture import mixture_symbols
from symmle.symbolic import mixture as mixture_module


@pytest.fixture(scope="module")
def normal2():
    return symmle.derive("normal", mixture=2)


@pytest.fixture(scope="module")
def gamma2():
    return symmle.derive("gamma", mixture=2)


def _symbols(d):
    """The record's symbols, made afresh from the model's symbol table (they must be the same objects)."""
    sy = mixture_symbols(d.model)
    stats = {j: sy.statistic(j, s.symbol) for j, s in enumerate(d.likelihood.statistics, start=1)}
    return sy, stats


def test_normal_m_step_symbolic(normal2):
    mix = normal2.mixture
    sy, S = _symbols(normal2)
    Nk = sy.count
    assert sp.simplify(mix.update("mu") - S[1] / Nk) == 0
    assert sp.simplify(mix.update("sigma2") - (S[2] / Nk - (S[1] / Nk) ** 2)) == 0
    assert mix.verified and all(s.verified and s.kind == "closed_form" for s in mix.m_step)


def test_exponential_and_poisson_updates():
    for family, expected in (("exponential", lambda N, S: N / S), ("poisson", lambda N, S: S / N)):
        d = symmle.derive(family, mixture=3)
        sy, S = _symbols(d)
        assert d.mixture.K == 3
        assert sp.simplify(d.mixture.update("lam") - expected(sy.count, S[1])) == 0
        assert d.mixture.check("m_step:lam")


def test_gamma_shape_numeric_scale_profile(gamma2):
    mix = gamma2.mixture
    sy, S = _symbols(gamma2)
    a, b = (next(s for s in mix.m_step if s.parameter == p) for p in ("a", "b"))
    assert a.kind == "numeric" and a.expr is None and a.verified
    # the weighted equation: log a_k - digamma(a_k) = log(S_k1/N_k) - S_k2/N_k
    ak = sy.component["a"]
    lhs = a.equation.lhs - a.equation.rhs
    assert (
        sp.simplify(lhs - (sp.log(ak) - sp.polygamma(0, ak) - sp.log(S[1] / sy.count) + S[2] / sy.count)) == 0
    )
    assert b.kind == "profile" and sp.simplify(b.expr - sy.count * ak / S[1]) == 0
    assert "numerically with exact derivatives" in gamma2.to_text()


def test_weights_and_lagrangian(normal2):
    mix = normal2.mixture
    sy = mix.symbols
    N = sp.Symbol("N", positive=True, integer=True)
    assert sp.simplify(mix.weights - sy.count / N) == 0
    assert mix.check("weights")
    # the stationary point of the Lagrangian at K = 2 is w_j = N_j / (N_1 + N_2)
    w1, w2 = (sy.at(sy.weight, j) for j in (1, 2))
    n1, n2 = (sy.at(sy.count, j) for j in (1, 2))
    grad = [sp.diff(mix.lagrangian, v) for v in (w1, w2)]
    at = {w1: n1 / (n1 + n2), w2: n2 / (n1 + n2), sy.multiplier: n1 + n2}
    assert all(sp.simplify(g.xreplace(at)) == 0 for g in grad)


def test_q_and_score_are_the_substituted_component(normal2):
    mix = normal2.mixture
    comp = mix.component
    sub = mix.substitution
    assert (
        sp.simplify(
            mix.q_component
            - sp.log(mix.symbols.weight) * mix.symbols.count
            - comp.log_likelihood.xreplace(sub)
        )
        == 0
    )
    for (name, s), p in zip(mix.score, comp.stationarity.parameters):
        assert name == p.name
        assert sp.simplify(s - sp.diff(mix.q_component, sub[p])) == 0


def test_responsibilities_sum_to_one():
    d = symmle.derive("poisson", mixture=3)
    rs = d.mixture.responsibilities
    assert len(rs) == 3
    sy = d.mixture.symbols
    vals = {
        sy.at(sy.weight, 1): 0.2,
        sy.at(sy.weight, 2): 0.5,
        sy.at(sy.weight, 3): 0.3,
        sy.at(sy.component["lam"], 1): 0.7,
        sy.at(sy.component["lam"], 2): 3.0,
        sy.at(sy.component["lam"], 3): 9.0,
        d.model.variable: 4,
    }
    values = [float(r.subs(vals)) for r in rs]
    assert abs(sum(values) - 1) < 1e-12 and all(0 < v < 1 for v in values)


def test_a_wrong_update_fails_the_check(normal2):
    """The numerical check can fail: a wrong M-step (the unweighted N) is caught."""
    mix = normal2.mixture
    m = normal2.model
    sy = mix.symbols
    wrong = [
        replace(s, expr=s.expr * sy.count / (sy.count + 1)) if s.parameter == "mu" else s for s in mix.m_step
    ]
    checks = dict(
        mixture_module._verify(
            m, mix.component, sy, mix.statistics, mix.substitution, mix.q_component, list(mix.score), wrong
        )
    )
    assert checks["m_step:mu"] is False and checks["Q"] is True
    bad_q = mix.q_component + sy.count * 0.01
    checks = dict(
        mixture_module._verify(
            m, mix.component, sy, mix.statistics, mix.substitution, bad_q, list(mix.score), list(mix.m_step)
        )
    )
    assert checks["Q"] is False


def test_json_section(normal2):
    doc = json.loads(json.dumps(normal2.to_dict()))
    assert doc["schema"] == 1 and doc["model"]["mixture"] == 2
    mix = doc["mixture"]
    assert {
        "K",
        "responsibilities",
        "m_step",
        "weights",
        "density",
        "weighted_statistics",
        "Q",
        "score",
        "checks",
    } <= set(mix)
    assert mix["K"] == 2 and set(mix["responsibilities"]) == {"r_1", "r_2"}
    names = {n: sp.Symbol(n, positive=True) for n in ("N_k", "S_k2", "N")}
    names["S_k1"] = sp.Symbol("S_k1", real=True)
    mu = sp.sympify(mix["m_step"]["mu"]["expr"], locals=names)
    assert sp.simplify(mu - names["S_k1"] / names["N_k"]) == 0
    assert sp.simplify(sp.sympify(mix["weights"]["expr"], locals=names) - names["N_k"] / names["N"]) == 0
    assert all(mix["checks"].values()) and mix["m_step"]["mu"]["verified"] is True
    sp.sympify(mix["weights"]["lagrangian"])  # a SymPy string (no reserved word such as lambda)
    # the responsibility strings: at a point they sum to 1
    loc = {n: sp.Symbol(n) for n in ("w_1", "w_2", "mu_1", "mu_2", "sigma2_1", "sigma2_2", "x")}
    at = {
        loc["w_1"]: 0.3,
        loc["w_2"]: 0.7,
        loc["mu_1"]: -1,
        loc["mu_2"]: 2,
        loc["sigma2_1"]: 1,
        loc["sigma2_2"]: 2.25,
        loc["x"]: 0.4,
    }
    total = sum(float(sp.sympify(mix["responsibilities"][r], locals=loc).subs(at)) for r in ("r_1", "r_2"))
    assert abs(total - 1) < 1e-12


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(gamma2, tmp_path):
    tex = gamma2.to_latex(standalone=True)
    assert r"\label{eq:m-step}" in tex and "Lagrangian" in tex
    (tmp_path / "doc.tex").write_text(tex)
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]


def test_markdown_has_the_sections(normal2):
    md = normal2.to_markdown()
    for heading in ("## Finite mixture", "## EM: the E-step", "## EM: the M-step"):
        assert heading in md


@pytest.mark.parametrize(
    "argv, message",
    [
        (["derive", "normal", "--mixture", "0"], "at least 1"),
        (["derive", "normal", "--mixture", "two"], "whole number"),
        (["derive", "normal", "--mixture", "51"], "at most 50"),
        (["derive", "mvnormal", "--mixture", "2"], "vector families"),
        (["derive", "uniform", "--mixture", "2"], "support"),
    ],
)
def test_bad_mixture_is_one_line(argv, message):
    run = subprocess.run([sys.executable, "-m", "symmle", *argv], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in run.stderr


def test_cli_derive_mixture_text_and_inline():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "symmle",
            "derive",
            "--pdf",
            "lam*exp(-lam*x)",
            "--var",
            "x",
            "--support",
            "0,oo",
            "--param",
            "lam:positive",
            "--mixture",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "lam_k = N_k/S_k1    [closed form, verified]" in run.stdout
    assert "w_k = N_k/N    [verified]" in run.stdout


def test_spec_mixture_table(tmp_path):
    spec = tmp_path / "mix.toml"
    spec.write_text(
        'name = "expmix"\nvariable = "x"\nsupport = ["0", "oo"]\ndensity = "lam*exp(-lam*x)"\n'
        '[parameters]\nlam = "positive"\n[mixture]\ncomponents = 3\n'
    )
    m = load_model(spec)
    assert m.mixture == 3
    d = symmle.derive(m)
    assert d.mixture is not None and d.mixture.K == 3
    spec.write_text(spec.read_text().replace("components = 3", "components = 2\nextra = 1"))
    with pytest.raises(SpecError, match="unknown key"):
        load_model(spec)


def test_weibull_index_avoids_declared_k():
    d = symmle.derive("weibull_scale", mixture=2)
    sy = d.mixture.symbols
    assert sy.index.name != "k" and sy.component["lam"].name == f"lam_{sy.index}"
    assert d.mixture.verified


def test_m_step_agrees_with_numbers_em():
    """One EM iteration both ways: the derived updates on the weighted sums vs mixture_em's M-step."""
    from symmle.numbers import mixture_em

    rng = np.random.default_rng(5)
    for family, x, theta in (
        (
            "normal",
            np.r_[rng.normal(-2, 1, 150), rng.normal(3, 1.5, 250)],
            np.array([[-1.0, 2.0], [1.0, 2.0]]),
        ),
        (
            "gamma",
            np.r_[rng.gamma(2.0, 1.0, 200), rng.gamma(9.0, 0.5, 200)],
            np.array([[1.5, 6.0], [1.0, 1.0]]),
        ),
        ("exponential", np.r_[rng.exponential(1.0, 200), rng.exponential(8.0, 200)], np.array([[2.0, 0.2]])),
    ):
        d = symmle.derive(family, mixture=2)
        mix = d.mixture
        comp = mixture_em._Component(mix.component, {})
        w = np.array([0.4, 0.6])
        r, _, _ = mixture_em._e_step(comp, x, w, theta)
        G = comp.statistics(x)
        nk, S = r.sum(axis=0), G.T @ r
        names = [q.name for q in d.model.parameters]
        stats = [s for _, s, _ in mix.statistics]
        args = [mix.symbols.count, *stats, *[mix.symbols.component[n] for n in names]]
        for k in range(2):
            em = comp.m_step(float(nk[k]), S[:, k], None)
            values = dict(zip(names, em))
            for st in mix.m_step:
                if st.expr is not None:  # closed forms (and the gamma scale given the EM's shape)
                    ours = float(to_function(args, st.expr)(nk[k], *S[:, k], *[values[n] for n in names]))
                else:  # the numeric shape: the derived weighted equation holds at the EM's value
                    eq = st.equation.lhs - st.equation.rhs
                    resid = float(to_function(args, eq)(nk[k], *S[:, k], *[values[n] for n in names]))
                    assert abs(resid) < 1e-7, (family, st.parameter, resid)
                    continue
                assert ours == pytest.approx(values[st.parameter], rel=1e-9), (family, st.parameter)
            # and the weights
            assert float(nk[k] / x.size) == pytest.approx(
                float(
                    to_function(
                        [mix.symbols.count, sp.Symbol("N", positive=True, integer=True)], mix.weights
                    )(nk[k], x.size)
                ),
                rel=1e-12,
            )


def test_spec_mixture_is_fitted_compiled_and_checked(tmp_path):
    from symmle.numbers.codegen import module_source

    spec = tmp_path / "mix.toml"
    spec.write_text(
        'name = "expmix"\nvariable = "x"\nsupport = ["0", "oo"]\ndensity = "lam*exp(-lam*x)"\n'
        '[parameters]\nlam = "positive"\n[mixture]\ncomponents = 2\n'
    )
    rng = np.random.default_rng(3)
    x = np.r_[rng.exponential(1.0, 300), rng.exponential(10.0, 300)]
    r = symmle.fit(str(spec), x)
    assert r.components == 2 and len(r.estimates["w"]) == 2
    assert sorted(r.estimates["lam"])[0] < 0.2 < 0.6 < sorted(r.estimates["lam"])[1]
    d = symmle.derive(str(spec))
    with pytest.raises(SpecError, match="compile does not support mixtures"):
        module_source(d)  # the single-model writer; the mixture's is mixture_module_source
    from symmle.cli import main

    with pytest.raises(SystemExit) as exit_info:  # the CLI takes K from the spec
        main(["compile", str(spec), "-o", str(tmp_path / "em.py")])
    assert exit_info.value.code in (0, None)
    assert "def fit(" in (tmp_path / "em.py").read_text()
    with pytest.raises(SpecError, match="missing true value of 'w'"):  # check takes K from the spec too
        symmle.check(str(spec), {"lam": 1.0}, n=50, reps=5)
