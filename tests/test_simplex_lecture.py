"""The documents of a simplex parameter (categorical, multinomial): the Lagrangian, the free coordinates.

Each shown expression is compared as mathematics (exact values at K = 2, 3), never as a string.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symmle
from symmle.symbolic.matrix_explicit import explicit

PDFLATEX = shutil.which("pdflatex")
FAMILIES = ["categorical", "multinomial"]


@functools.cache
def _derive(name: str):
    return symmle.derive(name)


def _step(d, title: str):
    return next(s for s in d.steps if s.title == title)


def _point(d, k: int, seed: int = 0) -> dict:
    """Exact values at K = k: a point p of the simplex, counts T1 (one-hot rows for the categorical)."""
    rng = np.random.default_rng(seed + k)
    p = d.model.parameter_symbols[0]
    w = [sp.Rational(int(rng.integers(1, 9))) for _ in range(k)]
    pv = sp.Matrix(k, 1, [v / sum(w) for v in w])
    counts = sp.Matrix(k, 1, [int(rng.integers(1, 7)) for _ in range(k)])
    t1 = next(s.symbol for s in d.likelihood.statistics if s.informative)
    values = {d.model.dimension: k, p: pv, t1: counts, sp.Symbol("N", positive=True): sum(counts)}
    si = d.information.blocks
    values[si.free] = pv[: k - 1, :]
    values[si.last] = pv[k - 1, 0]
    return values


def _value(e, values):
    # N in the record is the sample size symbol of the likelihood
    return explicit(
        e, {**values, **{s: values[sp.Symbol("N", positive=True)] for s in e.free_symbols if s.name == "N"}}
    )


def _same(d, a, b, lam) -> bool:
    """``a == b`` exactly at K = 2, 3 (the multiplier at a rational value)."""
    for k in (2, 3):
        values = {**_point(d, k), lam: sp.Rational(7, 3)}
        va, vb = _value(a, values), _value(b, values)
        if sp.simplify(sp.Matrix(va) - sp.Matrix(vb) if hasattr(va, "shape") else va - vb) not in (
            0,
            sp.zeros(*getattr(va, "shape", (1, 1))),
        ):
            return False
    return True


@pytest.mark.parametrize("name", FAMILIES)
def test_lecture_shows_the_lagrangian(name):
    d = _derive(name)
    record = dict(d.stationarity.constrained)[d.model.parameter_symbols[0]]
    lag = _step(d, "Lagrangian of p")
    lam = record.multiplier
    assert r"\lambda" in lag.text and _same(d, lag.lines[-1][1], record.lagrangian.value, lam)
    assert not _same(d, lag.lines[-1][1], record.lagrangian.value + lam, lam)  # the comparison can fail
    grad = _step(d, "Stationarity in p")
    assert _same(d, grad.lines[0][1], record.gradient.value, lam)
    mult = _step(d, "Multiplier of p")
    assert any(lhs == lam and _same(d, rhs, record.multiplier_solution.value, lam) for lhs, rhs in mult.lines)
    if name == "categorical":
        assert r"\mathbf{1}^{\top} \mathbf{T}_{1} = N" in mult.after
    estimate = _step(d, "Estimate of p")
    assert "differs" not in estimate.after
    assert "Lagrange multiplier is needed" not in " ".join(s.text for s in d.steps)
    assert "restricted to the directions along the simplex" in _step(d, "Second-order check").text


def test_categorical_estimate_is_t1_over_n():
    """The shown p_hat equals T1/N as mathematics (exactly, at K = 2, 3)."""
    d = _derive("categorical")
    shown = _step(d, "Estimate of p").lines[0][1]
    t1 = next(s.symbol for s in d.likelihood.statistics if s.informative)
    for k in (2, 3):
        values = _point(d, k)
        n = values[sp.Symbol("N", positive=True)]
        assert sp.simplify(_value(shown, values) - values[t1] / n) == sp.zeros(k, 1)


@pytest.mark.parametrize("name", FAMILIES)
def test_information_and_bound_on_free_coordinates(name):
    """I = diag(1/q) + 1/p_K 1 1^T per observation/count; the bound is (diag(q) - q q^T)/M."""
    d = _derive(name)
    info = _step(d, "Fisher information")
    bound = _step(d, "Cramér–Rao bound")
    si = d.information.blocks
    for k in (2, 3):
        values = _point(d, k)
        q, last = values[si.free], values[si.last]
        total = _value(si.total, values)
        want = sp.diag(*[1 / v for v in q]) + sp.ones(k - 1, k - 1) / last
        assert _value(info.lines[0][1], values) == want
        assert _value(info.lines[1][1], values) == total * want
        closed = bound.lines[1][1]
        assert _value(closed, values) == (sp.diag(*q) - q * q.T) / total
        assert _value(closed, values) == (total * want).inv()
    assert (" one count" in info.text) == (name == "multinomial")


def test_the_bound_is_not_shown_when_it_does_not_check():
    """A wrong inverse is refused by the exact check (the check can fail)."""
    from symmle.report.lecture.vector import VectorLecture

    d = _derive("categorical")
    lecture = VectorLecture(d.model, d.likelihood, d.stationarity, d.information)
    si = d.information.blocks
    q = si.free
    wrong = sp.MatMul(1 / si.total, sp.DiagMatrix(q))
    right = sp.MatMul(1 / si.total, sp.MatAdd(sp.DiagMatrix(q), -sp.MatMul(q, q.T)))
    assert not lecture.free_equal(si, wrong, d.information.crlb)
    assert lecture.free_equal(si, right, d.information.crlb)


@pytest.mark.parametrize("name", FAMILIES)
def test_text_and_json(name):
    d = _derive(name)
    text = d.to_text()
    assert "free coordinates" in text and "Cramer-Rao bound" in text and "p_hat = " in text
    from symmle.report.json_doc import to_json

    doc = json.loads(to_json(d))
    (block,) = doc["fisher_information"]["blocks"]
    assert block["coordinates"] == ["free", "free"]
    (bound,) = doc["crlb"]["blocks"]
    k = sp.Symbol("K", integer=True, positive=True)
    names = {
        "K": k,
        "N": sp.Symbol("N", positive=True),
        "T1": sp.MatrixSymbol("T1", k, 1),
        block["free"]: sp.MatrixSymbol(block["free"], k - 1, 1),
        block["last"]: sp.Symbol(block["last"], positive=True),
    }
    fisher = sp.sympify(block["expr"], locals=names)
    crlb = sp.sympify(bound["expr"], locals=names)
    total = sp.sympify(block["total"], locals=names)
    for kk in (2, 3):
        qv = sp.Matrix(kk - 1, 1, [sp.Rational(1, kk + 1)] * (kk - 1))
        lv = 1 - sum(qv)
        t1 = sp.Matrix(kk, 1, list(range(1, kk + 1)))
        values = {k: kk, names[block["free"]]: qv, names[block["last"]]: lv, names["T1"]: t1, names["N"]: 7}
        want = sp.diag(*[1 / v for v in qv]) + sp.ones(kk - 1, kk - 1) / lv
        assert explicit(fisher, values) == want
        assert explicit(crlb, values) == (explicit(total, values) * want).inv()
    assert block["per"] == ("count" if name == "multinomial" else "observation")


@pytest.mark.parametrize("name", FAMILIES)
def test_markdown(name):
    md = _derive(name).to_markdown()
    assert md.count("$$") % 2 == 0 and r"\lambda" in md and "1:K - 1" in md


def _compile(tex: str, tmp_path: Path, name: str):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_latex import compile_tex

    return compile_tex(PDFLATEX, tex, tmp_path, name)


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name", FAMILIES)
def test_latex_standalone_compiles(tmp_path, name):
    """Compiled twice, no error, no line more than 10 pt too wide."""
    tex = _derive(name).to_latex(standalone=True)
    assert r"L(\mathbf{p}, \lambda)" in tex
    _compile(tex, tmp_path, name)
