"""Lecture notes a lecturer can paste (issue 17, part 5).

Names with digits print as indices unless they name a variance; a spec may name its symbols in LaTeX
(a safe subset only); the likelihood of a model whose support moves carries its indicator, and the
sentence on how the data enter is true of the model at hand; the Cramér–Rao bound is stated for unbiased
estimators, with the bias of an estimator where it follows cheaply; special functions are defined where
they are first used; every display is labelled and referred to; long formulas fit the page; an inline
model takes a --title.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.cli import cli
from symmle.model.build import model_from_dict
from symmle.report.equations import _width, step_latex
from symmle.report.lecture.steps import builder_for
from symmle.report.printer import latex


def notation(d):
    """The notation of a derivation's documents (imported here: main has none, and must fail, not error)."""
    from symmle.report.printer import notation as of

    return of(d)


def model_notation(m):
    from symmle.report.printer import model_notation as of

    return of(m)


MIXTURE = "0.5*exp(-(x-m1)**2/2)/sqrt(2*pi)+0.5*exp(-(x-m2)**2/2)/sqrt(2*pi)"


@pytest.fixture(scope="module")
def mixture():
    """The two-component normal mixture of the issue, derived once."""
    return symmle.derive(symmle.inline_model(MIXTURE, "x", "-oo,oo", ["m1:real", "m2:real"]))


def _spec(**extra):
    spec = {
        "variable": "x",
        "support": ["-oo", "oo"],
        "density": "exp(-(x-s1)**2/(2*s2))/sqrt(2*pi*s2)",
        "parameters": {"s1": "real", "s2": "positive"},
    }
    spec.update(extra)
    return spec


def _step(d, kind):
    (step,) = [s for s in d.steps if s.kind == kind]
    return step


# --------------------------------------------------------------------------- names


def test_a_digit_beside_a_numbered_sibling_is_an_index():
    """``s2`` beside ``s1`` is s_2, not a square; ``sigma2`` alone is still sigma^2."""
    m = model_from_dict(_spec(), validate=False)
    s1, s2 = m.parameter_symbols
    tex = latex(s1 + s2, model_notation(m))
    assert "s_{2}" in tex and "s^{2}" not in tex
    d = symmle.derive(m)
    doc = d.to_latex()
    assert "s^{2}" not in doc and "s_{2}" in doc
    # the square of s2 is the square of s_2, not s^4
    assert "s^{4}" not in latex(s2**2, model_notation(m))
    # the names of variances keep their square when nothing reads the digit as an index
    sigma2, tau2 = sp.symbols("sigma2 tau2", positive=True)
    assert latex(sigma2 + tau2) == r"\sigma^{2} + \tau^{2}"
    sigma1 = sp.Symbol("sigma1", positive=True)
    assert latex(sigma1 + sigma2) == r"\sigma_{1} + \sigma_{2}"


def test_a_spec_names_its_symbols_in_latex():
    m = model_from_dict(_spec(latex={"s1": r"\mu_{1}", "s2": r"\varsigma^{2}"}), validate=False)
    d = symmle.derive(m)
    doc = d.to_latex(standalone=True)
    assert r"\varsigma^{2}" in doc and r"\mu_{1}" in doc
    assert r"\hat{\mu}_{1}" in doc  # the estimate's hat on the head of the name
    assert "s_{1}" not in doc and "s^{2}" not in doc
    # the JSON's LaTeX follows the notation too
    assert r"\mu_{1}" in d.to_dict()["steps"][0]["latex"]


@pytest.mark.parametrize(
    "name, reason",
    [
        (r"\input{/etc/passwd}", r"\input is not allowed"),
        (r"\write18{rm -rf x}", r"\write is not allowed"),
        (r"\immediate\write18{x}", r"\immediate is not allowed"),
        ("^^5cinput", "'^' needs something before it"),
        (r"s^^5c", "'^' needs an argument"),
        (r"\def\x{y}", r"\def is not allowed"),
        ("s_2$", "not allowed"),
        ("s%2", "not allowed"),
        ("{s_2", "unbalanced braces"),
        ("s_1_2", "twice"),
        (r"\mathbb{R}", r"\mathbb is not allowed"),  # needs amssymb: would not compile
        ("x" * 81, "at most 80"),
        ("", "empty"),
    ],
)
def test_an_unsafe_latex_name_is_refused(name, reason):
    with pytest.raises(symmle.SpecError) as err:
        model_from_dict(_spec(latex={"s2": name}), validate=False)
    message = str(err.value)
    assert "[latex] name of 's2' is refused" in message and reason in message
    assert "\n" not in message


def test_the_latex_table_names_declared_symbols_once():
    with pytest.raises(symmle.SpecError, match="not a declared name"):
        model_from_dict(_spec(latex={"zz": "z"}), validate=False)
    with pytest.raises(symmle.SpecError, match="the same name"):
        model_from_dict(_spec(latex={"s1": "s", "s2": "s"}), validate=False)


def test_the_printer_ignores_an_unsafe_name_in_a_hand_made_model():
    m = model_from_dict(_spec(), validate=False)
    bad = dataclasses.replace(m, latex=(("s2", r"\input{secret}"), ("s1", r"\mu")))
    tex = latex(sp.Add(*bad.parameter_symbols), model_notation(bad))
    assert r"\input" not in tex and r"\mu" in tex and "s_{2}" in tex


def test_the_spec_file_takes_a_latex_table(tmp_path):
    spec = tmp_path / "model.toml"
    spec.write_text(
        'variable = "x"\nsupport = ["0", "oo"]\ndensity = "lam2*exp(-lam2*x)"\n'
        '[parameters]\nlam2 = "positive"\n[latex]\nlam2 = "\\\\lambda_{2}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["derive", str(spec), "--format", "latex"])
    assert result.exit_code == 0, result.output
    assert r"\hat{\lambda}_{2} &= \frac{N}{\sum_{i=1}^{N} x_{i}}" in result.output


# --------------------------------------------------------------------------- the likelihood


def test_the_uniform_likelihood_carries_its_indicator(derivation):
    d = derivation("uniform")
    lik = step_latex(_step(d, "likelihood"), notation(d))
    assert r"\mathbf{1}\left\{x_{i} \leq \theta\right\}" in lik
    assert r"\mathbf{1}\left\{\theta \geq \max_{i} x_{i}\right\}" in lik
    after = _step(d, "log_likelihood").after
    assert "The data do not enter the log-likelihood at all" not in after
    assert r"\theta \ge \max_{i} x_{i}" in after and r"\ell = -\infty" in after


def test_the_data_enter_a_mixture_likelihood(mixture):
    after = _step(mixture, "log_likelihood").after
    assert "do not enter" not in after
    assert "The data enter through sums that involve the parameters" in after
    assert r"\mathbf{1}" not in step_latex(_step(mixture, "likelihood"), notation(mixture))


def test_sufficiency_is_claimed_only_without_an_indicator(derivation):
    """The shifted exponential's sum is not sufficient alone (the minimum is needed too)."""
    d = symmle.derive(symmle.inline_model("lam*exp(-lam*(x-th))", "x", "th,oo", ["lam:positive", "th:real"]))
    after = _step(d, "log_likelihood").after
    assert "sufficient" not in after and "Apart from the indicator" in after
    assert "sufficient" in _step(derivation("exponential"), "log_likelihood").after


# --------------------------------------------------------------------------- the Cramér–Rao bound


def test_the_bound_is_stated_for_unbiased_estimators(derivation):
    d = derivation("normal")
    crlb = _step(d, "crlb")
    assert r"\tilde{\mu}" in crlb.text and "unbiased" in crlb.text
    assert r"\operatorname{Cov}(\tilde{\mu}, \tilde{\sigma}^{2})" in step_latex(crlb, notation(d))
    assert "need not be one" in crlb.after and "asymptotically unbiased" in crlb.after
    # the means of the estimators, as mathematics
    lecture = builder_for(d.model)(d.model, d.likelihood, d.stationarity, d.information)
    mu, sigma2 = d.model.parameter_symbols
    N = d.likelihood.N
    assert sp.simplify(lecture.estimator_mean(mu) - mu) == 0
    assert sp.simplify(lecture.estimator_mean(sigma2) - (N - 1) * sigma2 / N) == 0
    assert r"\hat{\mu}$ is unbiased" in crlb.after and r"\hat{\sigma}^{2}$ is biased" in crlb.after


def test_no_bias_is_claimed_where_it_does_not_follow_cheaply(derivation):
    d = derivation("exponential")  # N / sum x_i: its mean is not a moment of the data
    lecture = builder_for(d.model)(d.model, d.likelihood, d.stationarity, d.information)
    assert lecture.estimator_mean(d.model.parameter_symbols[0]) is None
    after = _step(d, "crlb").after
    assert "biased" not in after.replace("unbiased", "") and "need not be one" in after


# --------------------------------------------------------------------------- special functions


@pytest.mark.parametrize(
    "pattern, name",
    [
        (r"\\Gamma(\(|\\left\()", "gamma function"),
        (r"\\psi(\(|\\left\()", "digamma function"),
        (r"\\psi'", "trigamma function"),
    ],
)
def test_special_functions_are_defined_at_first_use(derivation, pattern, name):
    d = derivation("gamma")
    data = notation(d)
    uses = [k for k, s in enumerate(d.steps) if re.search(pattern, s.text + step_latex(s, data) + s.after)]
    assert uses, pattern
    first = d.steps[uses[0]]
    assert " is the " + name in first.after, (first.title, first.after)
    assert sum(" is the " + name in s.after for s in d.steps) == 1  # defined once
    # the definition is a formula, not only a name
    assert re.search(r"\$[^$]*=[^$]*\$ is the " + name, first.after)


# --------------------------------------------------------------------------- labels and references


def _labels_and_references(tex: str) -> tuple[list[str], list[str]]:
    return re.findall(r"\\label\{([^}]*)\}", tex), re.findall(r"\\eqref\{([^}]*)\}", tex)


@pytest.mark.parametrize("family", ["normal", "gamma", "uniform", "poisson"])
def test_every_display_is_labelled_and_referred_to(derivation, family):
    tex = derivation(family).to_latex(standalone=True)
    blocks = re.findall(r"\\begin\{align\}(.*?)\\end\{align\}", tex, re.DOTALL)
    labels, refs = _labels_and_references(tex)
    assert len(labels) == len(blocks) and all(b.count(r"\label{") == 1 for b in blocks)
    assert len(set(labels)) == len(labels)
    assert all(re.fullmatch(r"eq:[A-Za-z0-9.:-]+", label) for label in labels)
    assert refs and set(refs) <= set(labels)
    # a reference points back, to an equation shown earlier
    for ref in refs:
        assert tex.index(r"\label{" + ref + "}") < tex.index(r"\eqref{" + ref + "}")


def test_labels_of_odd_parameter_names_are_safe_and_unique():
    d = symmle.derive(symmle.inline_model("λ*exp(-λ*x)", "x", "0,oo", ["λ:positive"]))
    labels, refs = _labels_and_references(d.to_latex())
    assert labels and refs
    assert all(label.isascii() and re.fullmatch(r"eq:[A-Za-z0-9.:-]+", label) for label in labels)
    assert len(set(labels)) == len(labels) and set(refs) <= set(labels)


def test_markdown_numbers_its_displays(derivation):
    md = derivation("normal").to_markdown()
    tags = [int(t) for t in re.findall(r"\\tag\{(\d+)\}", md)]
    assert tags == list(range(1, len(tags) + 1)) and len(tags) == md.count("$$") // 2
    assert r"\eqref" not in md
    assert "Differentiate the NLL (4) with respect to" in md


# --------------------------------------------------------------------------- long formulas


def test_the_mixture_rows_fit_the_line(mixture):
    """Every row of the mixture's notes is at most about a line wide (the estimate of equations.py)."""
    tex = mixture.to_latex()
    reduced = step_latex(_step(mixture, "reduced"), notation(mixture))
    assert re.search(r"\\\\\n&\\quad", reduced)  # broken over several lines
    for block in re.findall(r"\\begin\{align\}\n(.*?)\n\\end\{align\}", tex, re.DOTALL):
        for row in block.split(" \\\\\n"):
            row = re.sub(r"\\(label\{[^}]*\}|notag)", "", row)
            width = sum(_width(part) for part in row.split("&"))
            assert width <= 56, (width, row[:200])


def test_abbreviations_stand_for_what_they_replace():
    from symmle.report.equations import Abbreviations

    x, i, N = sp.IndexedBase("x"), sp.Symbol("i", integer=True), sp.Symbol("N", integer=True)
    m1, m2 = sp.symbols("m1 m2", real=True)
    den = sp.exp((x[i] - m1) ** 2 / 2) + sp.exp((x[i] - m2) ** 2 / 2)
    expr = sp.Sum((x[i] - m1) / den, (i, 1, N)) + sp.Sum(x[i] ** 2 / den, (i, 1, N))
    names = Abbreviations({"x", "m1", "m2", "A"})
    named = names.apply(expr.xreplace({den: names.name(den, i)}))
    ((name, sub),) = names.definitions()
    assert str(name) == "B[i]"  # A is taken
    assert named != expr and names.restore(named) == expr


PDFLATEX = shutil.which("pdflatex")


def test_the_mixture_document_fits_the_page(mixture, tmp_path: Path):
    """pdflatex finds no line more than 10 pt too wide (skipped without pdflatex, unless CI requires it)."""
    if PDFLATEX is None:
        if os.environ.get("SYMMLE_REQUIRE_LATEX"):
            pytest.fail("SYMMLE_REQUIRE_LATEX is set but pdflatex is not installed")
        pytest.skip("pdflatex is not installed")
    (tmp_path / "mixture.tex").write_text(mixture.to_latex(standalone=True), encoding="utf-8")
    for _ in range(2):
        run = subprocess.run(
            [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "mixture.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "mixture.log").read_text(encoding="latin-1")
    overfull = [float(v) for v in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert max(overfull, default=0.0) <= 10.0, overfull
    assert "undefined" not in log


# --------------------------------------------------------------------------- --title


INLINE = ["derive", "--pdf", "lam*exp(-lam*x)", "--support", "0,oo", "--param", "lam:positive"]


def test_an_inline_model_takes_a_title():
    hostile = r"Rates & 100% $x$ \input{/etc/passwd} <script>alert(1)</script> #1 {a}"
    runner = CliRunner()
    tex = runner.invoke(cli, [*INLINE, "--title", hostile, "--format", "latex", "--standalone"])
    assert tex.exit_code == 0, tex.output
    (title,) = [line for line in tex.output.splitlines() if line.startswith(r"\title{")]
    assert r"Rates \& 100\% \$x\$ \textbackslash{}input\{/etc/passwd\}" in title
    assert r"\input" not in title.replace(r"\textbackslash{}input", "")
    md = runner.invoke(cli, [*INLINE, "--title", hostile, "--format", "markdown"])
    assert md.output.splitlines()[0] == (
        r"# Rates & 100% \$x\$ \\input\{/etc/passwd\} &lt;script&gt;alert(1)&lt;/script&gt; \#1 \{a\}"
    ).replace("& 100", "&amp; 100")
    assert symmle.inline_model("lam*exp(-lam*x)", "x", "0,oo", ["lam:positive"], title="T").title == "T"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--title", "two\nlines"], "one line of printable text"),
        (["--title", "x" * 301], "at most 300"),
        (["--title", "  "], "--title must not be empty"),
    ],
)
def test_a_bad_title_is_refused(args, message):
    result = CliRunner().invoke(cli, [*INLINE, *args])
    assert result.exit_code == 2 and message in result.output


def test_a_title_goes_with_an_inline_model_only():
    result = CliRunner().invoke(cli, ["derive", "exponential", "--title", "Mine"])
    assert result.exit_code == 2 and "--title goes with an inline --pdf model only" in result.output
