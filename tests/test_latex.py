"""Every family's standalone LaTeX document compiles with pdflatex (amsmath only).

The test fails on any LaTeX error, on an undefined control sequence or
reference, and on a line more than ``OVERFULL_PT`` wider than the page.
Without ``pdflatex`` it is skipped, unless ``SYMMLE_REQUIRE_LATEX`` is set (as
``.ci/run`` does): then a missing engine is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import symmle
from symmle.model.catalogue import family_names

PDFLATEX = shutil.which("pdflatex")
REQUIRED = bool(os.environ.get("SYMMLE_REQUIRE_LATEX"))

#: the widest overfull box tolerated (pt): a display this much wider than the text would leave the margin
OVERFULL_PT = 10.0


@pytest.fixture(scope="module")
def engine() -> str:
    if PDFLATEX is None:
        if REQUIRED:
            pytest.fail("SYMMLE_REQUIRE_LATEX is set but pdflatex is not installed")
        pytest.skip("pdflatex is not installed (set SYMMLE_REQUIRE_LATEX to make this a failure)")
    return PDFLATEX


def overfull_points(log: str) -> list[float]:
    """How much each overfull line of a pdflatex log is too wide (pt)."""
    return [float(v) for v in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


def compile_tex(engine: str, tex: str, directory: Path, name: str) -> tuple[Path, str]:
    """Compile ``tex``; returns the PDF and the log, failing on errors and undefined commands."""
    source = directory / f"{name}.tex"
    source.write_text(tex, encoding="utf-8")
    for _ in range(2):  # the second run resolves the references (\eqref) to the equations' numbers
        run = subprocess.run(
            [engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", source.name],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if run.returncode != 0:
            break
    log = (directory / f"{name}.log").read_text(encoding="latin-1")
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert run.returncode == 0 and not errors, f"{name}: pdflatex failed: {errors or run.stdout[-2000:]}"
    assert "Undefined control sequence" not in log, name
    assert not re.search(r"LaTeX (Error|Warning: .*undefined)", log), name
    overfull = overfull_points(log)
    assert max(overfull, default=0.0) <= OVERFULL_PT, f"{name}: lines too wide by {overfull} pt"
    pdf = directory / f"{name}.pdf"
    assert pdf.is_file() and pdf.stat().st_size > 1000
    return pdf, log


@pytest.mark.parametrize("name", family_names())
def test_family_document_compiles(engine, derivation, tmp_path, name):
    compile_tex(engine, derivation(name).to_latex(standalone=True), tmp_path, name)


INLINE = {
    "shifted_exponential": ("lam*exp(-lam*(x-th))", "x", "th,oo", ["lam:positive", "th:real"], []),
    "weibull_known_shape": (
        "k/lam*(x/lam)**(k-1)*exp(-(x/lam)**k)",
        "x",
        "0,oo",
        ["lam:positive"],
        ["k:positive=1.8"],
    ),
}


@pytest.mark.parametrize("case", sorted(INLINE))
def test_inline_document_compiles(engine, tmp_path, case):
    pdf, var, support, params, consts = INLINE[case]
    d = symmle.derive(symmle.inline_model(pdf, var, support, params, consts))
    compile_tex(engine, d.to_latex(standalone=True), tmp_path, case)


def test_titles_are_escaped(engine, derivation, tmp_path):
    """A title with LaTeX's special characters still compiles."""
    import dataclasses

    d = derivation("exponential")
    odd = dataclasses.replace(d, model=dataclasses.replace(d.model, title="Rate_λ & 100% #1 {x} ~ $5"))
    compile_tex(engine, odd.to_latex(standalone=True), tmp_path, "escaped")


def test_normal_page_renders(engine, derivation, tmp_path):
    """The normal document's first page renders to an image (pdftoppm, where installed)."""
    pdf, _ = compile_tex(engine, derivation("normal").to_latex(standalone=True), tmp_path, "normal")
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm is not installed")
    subprocess.run(
        [pdftoppm, "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    (png,) = tmp_path.glob("page*.png")
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "pdf, var, support, param",
    [
        ("exp(-y_1/sigma_sq_2)/sigma_sq_2", "y_1", "0,oo", "sigma_sq_2:positive"),  # names with subscripts
        ("1/theta_1", "y_1", "0,theta_1", "theta_1:positive"),  # and a boundary estimator max_i y_1,i
        ("λ*exp(-λ*x)", "x", "0,oo", "λ:positive"),  # a Unicode Greek name, which the parser accepts
    ],
)
def test_unusual_names_compile(engine, tmp_path, pdf, var, support, param):
    """Subscripted and Unicode names render without double subscripts or raw Unicode."""
    d = symmle.derive(symmle.inline_model(pdf, var, support, [param]))
    compile_tex(engine, d.to_latex(standalone=True), tmp_path, "names")
