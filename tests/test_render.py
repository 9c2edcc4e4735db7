"""The derivation as a lecture note: golden checks of its mathematics, and its notation.

The golden checks compare the SymPy objects behind each step with textbook
results written here (independently of symmle), as mathematics: sums over the
sample are split by linearity and then compared with ``simplify``, never as
strings.  The notation tests look at the LaTeX and Markdown a reader sees.
"""

from __future__ import annotations

import re

import pytest
import sympy as sp
from sympy.core.function import AppliedUndef

import symmle
from symmle.model.catalogue import family_names
from symmle.report.json_doc import to_dict
from symmle.report.printer import latex

# --------------------------------------------------------------------------
# helpers: textbook expressions in the derivation's own symbols
# --------------------------------------------------------------------------


def symbols(d):
    """``(N, x_i, sum)`` of a derivation: ``sum(e)`` is the sum of ``e`` over the sample."""
    lik = d.likelihood
    xi = lik.sample[lik.index]
    return lik.N, xi, lambda e: sp.Sum(e, (lik.index, 1, lik.N))


def split(expr):
    """Sums over the sample split by linearity: ``sum(a x_i + b) -> a sum(x_i) + N b``."""

    def one(s):
        ((i, lo, hi),) = s.limits
        out = sp.S.Zero
        for t in sp.Add.make_args(sp.expand(s.function)):
            c, g = sp.factor_terms(t).as_independent(i, as_Add=False)
            out += c * (hi - lo + 1) if g == 1 else c * sp.Sum(g, (i, lo, hi))
        return out

    return sp.expand(sp.sympify(expr)).replace(lambda e: isinstance(e, sp.Sum), one)


def same(a, b) -> bool:
    """``a == b`` as mathematics, sums over the sample treated as unknown numbers."""
    if isinstance(a, sp.MatrixBase) or isinstance(b, sp.MatrixBase):
        a, b = sp.Matrix(a), sp.Matrix(b)
        return a.shape == b.shape and all(same(u, v) for u, v in zip(a, b))
    u, v = split(a), split(b)
    sums = {s: sp.Dummy() for s in (u.atoms(sp.Sum) | v.atoms(sp.Sum))}
    return sp.simplify(sp.expand_log((u - v).xreplace(sums), force=True)) == 0


def steps(d, kind, parameter=None):
    return [s for s in d.steps if s.kind == kind and (parameter is None or s.parameter == parameter)]


def rhs_values(step):
    """The right-hand sides of a step that are SymPy objects free of the named functions (f, L, ell, J)."""
    out = []
    for _, rhs in step.lines:
        if isinstance(rhs, str) or not isinstance(rhs, (sp.Basic, sp.MatrixBase)):
            continue
        if isinstance(rhs, sp.Basic) and rhs.atoms(AppliedUndef) - {
            a for a in rhs.atoms(AppliedUndef) if str(a.func) in ("Min", "Max")
        }:
            continue
        out.append(rhs)
    return out


def estimators(d):
    """``{name: displayed estimator}``, with the hats of the other estimators substituted."""
    (step,) = steps(d, "estimators")
    shown = {lhs.name[4:]: rhs for lhs, rhs in step.lines}
    for _ in range(len(shown)):
        values = {sp.Symbol(f"hat_{n}"): v for n, v in shown.items()}
        shown = {
            n: v.xreplace(
                {h: values[sp.Symbol(h.name)] for h in v.free_symbols if sp.Symbol(h.name) in values}
            )
            for n, v in shown.items()
        }
    return shown


@pytest.fixture(scope="module")
def normal(derivation):
    return derivation("normal")


# --------------------------------------------------------------------------
# golden: normal (the seed's derivation, its empty lines filled in)
# --------------------------------------------------------------------------


def test_normal_likelihood_is_the_product_of_densities(normal):
    N, xi, _ = symbols(normal)
    mu, s2 = normal.model.parameter_symbols
    (step,) = steps(normal, "likelihood")
    product = step.lines[-1][1]
    assert isinstance(product, sp.Product)
    textbook = sp.exp(-((xi - mu) ** 2) / (2 * s2)) / sp.sqrt(2 * sp.pi * s2)
    assert sp.simplify(product.function - textbook) == 0
    assert product.limits[0][1:] == (1, N)


def test_normal_log_likelihood_and_nll(normal):
    N, xi, S = symbols(normal)
    mu, s2 = normal.model.parameter_symbols
    ell = -N / 2 * sp.log(2 * sp.pi * s2) - S((xi - mu) ** 2) / (2 * s2)
    (log_step,) = steps(normal, "log_likelihood")
    values = rhs_values(log_step)
    assert len(values) >= 2  # the sum of log-densities and the gathered form
    for v in values:
        assert same(v, ell), v
    (nll_step,) = steps(normal, "nll")
    values = rhs_values(nll_step)
    assert values
    for v in values:
        assert same(v, -ell), v
    # the seed's form: N/2 log(2 pi sigma^2) + 1/(2 sigma^2) sum (x_i - mu)^2, with the sum kept whole
    assert any(S((xi - mu) ** 2) in v.atoms(sp.Sum) for v in values)


def test_normal_score_equations(normal):
    N, xi, S = symbols(normal)
    mu, s2 = normal.model.parameter_symbols
    textbook = {mu: -S(xi - mu) / s2, s2: N / (2 * s2) - S((xi - mu) ** 2) / (2 * s2**2)}
    for p, dJ in textbook.items():
        (step,) = steps(normal, "derivative", p.name)
        assert step.lines[0][0] == sp.Derivative(sp.Function("J")(mu, s2), p)
        for v in rhs_values(step):
            assert same(v, dJ), (p, v)


def test_normal_stationary_points(normal):
    N, xi, S = symbols(normal)
    mu, _ = normal.model.parameter_symbols
    (step,) = steps(normal, "stationary", "mu")
    assert step.lines == ((mu, step.lines[0][1]),) and same(step.lines[0][1], S(xi) / N)
    (step,) = steps(normal, "stationary", "sigma2")
    # solved for sigma^2 given mu: the mean squared deviation from mu
    assert same(step.lines[0][1], S((xi - mu) ** 2) / N)


def test_normal_estimators_in_the_seed_form(normal):
    N, xi, S = symbols(normal)
    (step,) = steps(normal, "estimators")
    shown = {lhs.name: rhs for lhs, rhs in step.lines}
    hat_mu = next(s for s in shown["hat_sigma2"].free_symbols if s.name == "hat_mu")
    assert same(shown["hat_mu"], S(xi) / N)
    # sigma2 in centred form around mu-hat: (1/N) sum (x_i - mu_hat)^2, not power sums
    assert same(shown["hat_sigma2"], S((xi - hat_mu) ** 2) / N)
    assert shown["hat_sigma2"].atoms(sp.Sum) == {S((xi - hat_mu) ** 2)}
    # ... which is the textbook estimator once mu-hat is substituted
    full = estimators(normal)
    assert same(full["sigma2"], S(xi**2) / N - (S(xi) / N) ** 2)


def test_normal_hessian_at_the_estimate(normal):
    N = normal.likelihood.N
    (step,) = steps(normal, "hessian")
    at = step.lines[-1][1]
    hat = {s.name: s for s in at.free_symbols}
    assert same(at, sp.diag(-N / hat["hat_sigma2"], -N / (2 * hat["hat_sigma2"] ** 2)))
    assert "negative definite" in step.after


def test_normal_fisher_and_crlb(normal):
    N = normal.likelihood.N
    _, s2 = normal.model.parameter_symbols
    (fisher,) = steps(normal, "fisher")
    assert same(fisher.lines[-1][1], sp.diag(1 / s2, 1 / (2 * s2**2)))
    # the definition is shown, then the expectation of minus the second derivatives
    assert r"\mathrm{E}" in fisher.lines[0][1] and r"\partial^{2}" in fisher.lines[0][1]
    (crlb,) = steps(normal, "crlb")
    assert same(crlb.lines[-1][1], sp.diag(s2 / N, 2 * s2**2 / N))
    assert crlb.relations[0] == "\\succeq"


# --------------------------------------------------------------------------
# golden: Poisson, Bernoulli, exponential
# --------------------------------------------------------------------------

ONE_PARAMETER = {
    # family: (estimator(N, sum of x_i), Fisher information(theta))
    "poisson": (lambda N, T: T / N, lambda lam: 1 / lam),
    "bernoulli": (lambda N, T: T / N, lambda p: 1 / (p * (1 - p))),
    "exponential": (lambda N, T: N / T, lambda lam: 1 / lam**2),
}


@pytest.mark.parametrize("family", sorted(ONE_PARAMETER))
def test_one_parameter_families(derivation, family):
    d = derivation(family)
    N, xi, S = symbols(d)
    (theta,) = d.model.parameter_symbols
    estimator, information = ONE_PARAMETER[family]
    T = S(xi)
    # the stationary point, the estimator
    (step,) = steps(d, "stationary", theta.name)
    assert step.lines[0][0] == theta and same(step.lines[0][1], estimator(N, T))
    assert same(estimators(d)[theta.name], estimator(N, T))
    # the derivative set to zero vanishes at the estimator
    (deriv,) = steps(d, "derivative", theta.name)
    for v in rhs_values(deriv):
        assert same(sp.together(v.subs(theta, estimator(N, T))), 0)
    # Fisher information and the Cramer-Rao bound
    (fisher,) = steps(d, "fisher")
    assert same(fisher.lines[-1][1], information(theta))
    (crlb,) = steps(d, "crlb")
    assert same(crlb.lines[-1][1], 1 / (N * information(theta)))
    assert crlb.relations[0] == "\\ge"


def test_steps_are_equal_to_what_the_pipeline_derived(derivation):
    """Every form shown equals the pipeline's own result (catalogue-wide, closed forms)."""
    for name in family_names("scalar"):
        d = derivation(name)
        lik = d.likelihood
        for s in steps(d, "log_likelihood") + steps(d, "nll"):
            target = lik.explicit(d.log_likelihood if s.kind == "log_likelihood" else d.nll)
            for v in rhs_values(s):
                assert same(v, target), (name, s.kind, v)
        full = estimators(d) if steps(d, "estimators") and steps(d, "estimators")[0].lines else {}
        for pname, e in d.solutions.items():
            if e.kind in ("closed_form", "boundary") and pname in full:
                assert same(full[pname], lik.explicit(e.expr)), (name, pname)
        st = d.stationarity
        if not st.boundary:
            for p, score in zip(st.parameters, st.score):
                (deriv,) = steps(d, "derivative", p.name)
                for v in rhs_values(deriv):
                    assert same(v, -lik.explicit(score)), (name, p, v)
            for h in steps(d, "hessian"):
                shown = h.lines[0][1]
                shown = shown if isinstance(shown, sp.MatrixBase) else sp.Matrix([[shown]])
                assert same(shown, lik.explicit(st.hessian)), name
        fisher = steps(d, "fisher")
        if fisher and fisher[0].lines:
            shown = fisher[0].lines[-1][1]
            shown = shown if isinstance(shown, sp.MatrixBase) else sp.Matrix([[shown]])
            assert all((a is sp.nan and b is sp.nan) or same(a, b) for a, b in zip(shown, d.fisher)), name


def test_lognormal_variance_is_centred_on_log_x(derivation):
    d = derivation("lognormal")
    N, xi, S = symbols(d)
    (step,) = steps(d, "estimators")
    shown = {lhs.name: rhs for lhs, rhs in step.lines}
    hat_mu = next(s for s in shown["hat_sigma2"].free_symbols if s.name == "hat_mu")
    assert same(shown["hat_sigma2"], S((sp.log(xi) - hat_mu) ** 2) / N)
    assert r"\left(\log(x_{i}) - \hat{\mu}\right)^{2}" in d.to_latex()


def test_numeric_kind_shows_the_reduced_equation_and_the_method(derivation):
    d = derivation("gamma")
    (step,) = steps(d, "reduced")
    lik = d.likelihood
    for (lhs, rhs), eq in zip(step.lines, d.stationarity.equations):
        assert same(lhs - rhs, lik.explicit(eq.lhs - eq.rhs))
    assert "Brent" in step.after and "Newton" in step.after and "coarse search" in step.after
    # psi is defined where it is first used, which is before the reduced equation
    before = d.steps[: d.steps.index(step) + 1]
    assert sum("is the digamma function" in s.after for s in before) == 1
    # the profiled parameter: b-hat in terms of a-hat
    N, xi, S = symbols(d)
    (est,) = steps(d, "estimators")
    (line,) = est.lines
    hat_a = next(s for s in line[1].free_symbols if s.name == "hat_a")
    assert line[0].name == "hat_b" and same(line[1], N * hat_a / S(xi))


def test_several_numeric_parameters_use_a_trust_region(derivation):
    d = derivation("beta")
    (step,) = steps(d, "reduced")
    assert "trust region" in step.after and len(step.lines) == 2


def test_boundary_kind_explains_the_binding_constraint(derivation):
    d = derivation("uniform")
    (theta,) = d.model.parameter_symbols
    (step,) = steps(d, "boundary")
    assert same(step.lines[0][1], -d.likelihood.N / theta)  # d ell / d theta < 0: decreasing
    assert "largest observation" in step.after and "negative" in step.after
    assert r"\theta \ge \max_{i} x_{i}" in step.text
    assert estimators(d)["theta"] == d.likelihood.order_statistics[1]
    tex = d.to_latex()
    assert r"\hat{\theta} &= \max_{i} x_{i}" in tex
    assert "does not exist" in tex


def test_boundary_and_closed_form_together():
    m = symmle.inline_model("lam*exp(-lam*(x-th))", "x", "th,oo", ["lam:positive", "th:real"], [])
    d = symmle.derive(m)
    N, xi, S = symbols(d)
    lo = d.likelihood.order_statistics[0]
    shown = {lhs.name: rhs for lhs, rhs in steps(d, "estimators")[0].lines}
    assert shown["hat_th"] == lo
    hat_th = next(s for s in shown["hat_lam"].free_symbols if s.name == "hat_th")
    assert same(shown["hat_lam"], N / S(xi - hat_th))
    tex = d.to_latex()
    assert r"\min_{i} x_{i}" in tex and "smallest observation" in tex
    # the Fisher information of th does not exist: marked, and explained
    assert r"\text{--}" in tex and "do not exist" in tex


# --------------------------------------------------------------------------
# notation
# --------------------------------------------------------------------------


def test_normal_notation(normal):
    tex = normal.to_latex()
    assert r"\sum_{i=1}^{N}" in tex
    assert r"\hat{\mu}" in tex and r"\hat{\sigma}^{2}" in tex
    assert r"\hat{\sigma}^{2} &= \frac{1}{N} \sum_{i=1}^{N} \left(x_{i} - \hat{\mu}\right)^{2}" in tex
    assert r"\hat{\mu} &= \frac{1}{N} \sum_{i=1}^{N} x_{i}" in tex
    assert r"\frac{1}{\sqrt{2 \pi \sigma^{2}}}" in tex
    assert r"\prod_{i=1}^{N}" in tex
    assert r"\frac{\partial J}{\partial \sigma^{2}}" in tex
    assert r"\begin{pmatrix}" in tex
    assert r"\sigma^{4}" in tex  # (sigma^2)^2 written as a power of sigma
    maths = re.sub(r"\\(label|eqref)\{[^}]*\}", "", tex)  # labels may spell names as they are
    for bad in ("T_{", "sigma2", r"\ln", r"\mathrm{T", "{x}_{i}", r"\left(\sigma^{2}\right)^{2}"):
        assert bad not in maths, bad


def test_poisson_markdown(derivation):
    md = derivation("poisson").to_markdown()
    assert md.startswith("# Poisson")
    assert "$$\n\\begin{aligned}" in md and re.search(r"\\end\{aligned\} \\tag\{\d+\}\n\$\$", md)
    assert r"\hat{\lambda} &= \frac{1}{N} \sum_{i=1}^{N} x_{i}" in md
    assert "\\notag" not in md and "{align}" not in md
    assert "$\\sum_{i=1}^{N} x_{i}$" in md  # inline maths


FLOAT = re.compile(r"(?<![\w.])\d+\.\d+")


@pytest.mark.parametrize("name", family_names("scalar"))
def test_every_family_reads_as_a_lecture_note(derivation, name):
    d = derivation(name)
    tex, md = d.to_latex(), d.to_markdown()
    for doc in (tex, md):
        assert "T_{" not in doc and "Sum(" not in doc and "NaN" not in doc and "polygamma" not in doc
        assert not FLOAT.search(doc), FLOAT.search(doc)
        assert r"\sum_{i=1}^{N}" in doc or not d.likelihood.statistics
    assert tex.count(r"\begin{align}") == tex.count(r"\end{align}") >= 4
    # every display is introduced by a sentence
    for block in re.split(r"\\end\{align\}", tex)[:-1]:
        before = block.rsplit(r"\begin{align}", 1)[0].rstrip().splitlines()[-1]
        assert re.search(r"[A-Za-z]", before) and not before.startswith("\\begin"), (name, before)
    # Markdown: balanced inline maths on every line of text
    for line in md.splitlines():
        if not line.startswith(("$$", "\\", " ", "&")):
            assert len(re.findall(r"(?<!\\)\$", line)) % 2 == 0, line
    for s in d.steps:
        assert s.title and (s.text or s.lines)
    for p in d.model.parameters:
        assert f"hat_{p.name}" not in tex and f"{p.name}_hat" not in tex


def test_known_constants_and_no_floats():
    m = symmle.inline_model(
        "k/lam*(x/lam)**(k-1)*exp(-(x/lam)**k)", "x", "0,oo", ["lam:positive"], ["k:positive=1.8"]
    )
    tex = symmle.derive(m).to_latex()
    assert "known constant" in tex and r"k = \frac{9}{5}" in tex
    assert not FLOAT.search(tex)
    assert latex(sp.Float(1.0) * sp.Symbol("x") + sp.Float(0.25)) == r"x + \frac{1}{4}"


def test_symbol_names():
    assert latex(sp.Symbol("sigma2")) == r"\sigma^{2}"
    assert latex(sp.Symbol("sigma2") ** 2) == r"\sigma^{4}"
    assert latex(sp.sqrt(sp.Symbol("sigma2", positive=True))) == r"\sigma"
    assert latex(sp.Symbol("hat_sigma2")) == r"\hat{\sigma}^{2}"
    assert latex(sp.Symbol("lam")) == r"\lambda"
    assert latex(sp.Symbol("theta1")) == r"\theta_{1}"
    assert latex(sp.Symbol("xm")) == r"x_{m}"
    assert latex(sp.polygamma(0, sp.Symbol("a"))) == r"\psi(a)"
    assert latex(sp.polygamma(1, sp.Symbol("a"))) == r"\psi'(a)"
    assert latex(sp.log(sp.Symbol("x"))) == r"\log(x)"
    p = sp.Symbol("p", positive=True)
    assert latex(-1 / (p * (p - 1))) == r"\frac{1}{p \left(1 - p\right)}"


def test_text_is_escaped_for_latex():
    m = symmle.inline_model("lam*exp(-lam*x)", "x", "0,oo", ["lam:positive"], [])
    d = symmle.derive(m)
    from symmle.report.escape import tex_text as _tex_text

    assert _tex_text("50% of a_b & $x_i$") == r"50\% of a\_b \& $x_i$"
    assert "_" not in re.sub(r"\$[^$]*\$", "", _tex_text(d.steps[0].text)).replace(r"\_", "")


def test_json_steps_carry_the_new_latex(normal):
    doc = to_dict(normal)
    assert {"title", "latex"} <= set(doc["steps"][0])
    assert any(r"\hat{\sigma}^{2} &= \frac{1}{N}" in s["latex"] for s in doc["steps"])
    assert r"\hat{\mu}" in doc["estimators"]["sigma2"]["latex"]
    assert doc["estimators"]["sigma2"]["expr"] == "(N*T2 - T1**2)/N**2"  # the schema-1 string is unchanged


def test_jupyter_reprs(normal):
    assert r"\begin{align}" in normal._repr_latex_()
    md = normal._repr_markdown_()
    assert "$$" in md and r"\begin{aligned}" in md
