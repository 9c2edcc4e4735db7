"""A finite discrete support is never materialised (issue 16).

``symmle derive binomial --const n=100000000`` took 74 s and 4.9 GB, and
``n=1000000000`` was killed by the OOM killer: every sum over a finite support
was an array of all its terms.  Each case here runs in a subprocess whose
address space is capped at :data:`LIMIT` (a run that materialised 1e8 or 1e9
terms fails with "out of memory"); none asserts a time.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp

#: Address space of each subprocess: some 2.5 times what a run needs; an array of 1e8 floats takes 0.8 GB.
LIMIT = 1_500_000_000
BIG = 1_000_000_000


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, preexec_fn=_limit, timeout=900, **kwargs)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "symmle", *args])


def _python(code: str):
    """Run ``code`` in a bounded subprocess; it prints one JSON document, returned here."""
    r = _run([sys.executable, "-c", textwrap.dedent(code)])
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def _derive(*args: str) -> dict:
    r = _cli("derive", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _same(text: str, expected: str, names: dict[str, sp.Symbol]) -> bool:
    return sp.simplify(sp.sympify(text, locals=names) - sp.sympify(expected, locals=names)) == 0


@pytest.mark.parametrize("n", [100_000_000, BIG])
def test_derive_binomial_with_huge_n(n):
    d = _derive("binomial", "--const", f"n={n}")
    names = {"n": sp.Symbol("n", positive=True, integer=True), "p": sp.Symbol("p", positive=True)}
    assert d["warnings"] == []
    assert d["estimators"]["p"]["verified"] and _same(
        d["estimators"]["p"]["expr"], "T1/(N*n)", {**names, "T1": sp.Symbol("T1"), "N": sp.Symbol("N")}
    )
    assert _same(d["fisher_information"][0][0], "n/(p*(1 - p))", names)


def test_fisher_information_of_binomial_with_n_1e9_by_summation():
    """Sum f, x f and the observed information over 0..1e9: the pmf's mass sits at 0.35n, and at 0.999n."""
    out = _python(f"""
        import json, numpy as np
        from symmle.base.quadrature import sum_support
        from symmle.model.build import load_model
        from symmle.model.density import density_function
        n = {BIG}
        m = load_model("binomial").with_constants({{"n": str(n)}})
        res = []
        for p in (0.35, 0.999):
            f = density_function(m, {{m.symbols["p"]: p, m.symbols["n"]: float(n)}})
            row = []
            for h in (lambda k: 1.0, lambda k: k, lambda k: k / p**2 + (n - k) / (1 - p) ** 2):
                row.append(sum_support(lambda k: f(k) * h(k), 0, n, log_weight=f.log))
            res.append(row)
        print(json.dumps(res))
    """)
    for p, ((mass, ok0), (mean, ok1), (info, ok2)) in zip((0.35, 0.999), out):
        assert ok0 and ok1 and ok2
        # the pmf itself holds ~6 digits at n = 1e9 (log f cancels loggamma(n + 1) ~ 2e10)
        assert mass == pytest.approx(1.0, abs=2e-5)
        assert mean == pytest.approx(BIG * p, rel=2e-5)
        assert info == pytest.approx(BIG / (p * (1 - p)), rel=2e-5)


def test_fit_binomial_with_n_1e9(tmp_path):
    x = np.random.default_rng(16).binomial(BIG, 0.999, size=2000).astype(float)
    path = tmp_path / "draws.npy"
    np.save(path, x)
    r = _cli("fit", "binomial", str(path), "--const", f"n={BIG}", "--json")
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout)
    p = x.mean() / BIG
    assert fit["estimates"]["p"] == pytest.approx(p, rel=1e-12)
    assert fit["stderr"]["p"] == pytest.approx(math.sqrt(p * (1 - p) / (x.size * BIG)), rel=1e-6)


def test_check_inline_binomial_with_n_1e9_samples_the_bulk_only():
    r = _cli(
        "check",
        "--pdf",
        "binomial(n, k)*p**k*(1-p)**(n-k)",
        "--var",
        "k",
        "--discrete",
        "--support",
        "0,n",
        "--param",
        "p:unit",
        "--const",
        f"n:positive_integer={BIG}",
        "--true",
        "p=0.999",
        "--n",
        "200",
        "--reps",
        "100",
        "--seed",
        "3",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sampler"] == "generic"
    assert out["parameters"]["p"]["mean"] == pytest.approx(0.999, abs=1e-6)


@pytest.mark.parametrize(
    "pdf, estimator",
    [
        # the mass beyond n is negligible: a truncated Poisson that normalises
        ("lam**x*exp(-lam)/factorial(x)", "T1/N"),
        # all of its mass within a few values of the top, n = 1e9
        ("lam**(n-x)*exp(-lam)/factorial(n-x)", "n - T1/N"),
    ],
)
def test_derive_inline_poisson_on_0_to_1e9(pdf, estimator):
    d = _derive(
        "--pdf",
        pdf,
        "--var",
        "x",
        "--discrete",
        "--support",
        "0,n",
        "--param",
        "lam:positive",
        "--const",
        f"n:positive_integer={BIG}",
    )
    names = {s: sp.Symbol(s) for s in ("T1", "N", "n")} | {"lam": sp.Symbol("lam", positive=True)}
    assert d["warnings"] == []
    assert d["estimators"]["lam"]["verified"] and _same(d["estimators"]["lam"]["expr"], estimator, names)
    assert _same(d["fisher_information"][0][0], "1/lam", names)


def test_flat_pmf_on_0_to_1e9_is_summed_term_for_term():
    """Every one of the 1e9 terms matters.

    Summed by panels, exact for a polynomial, and a wrong weight shows.
    """
    out = _python(f"""
        import json, numpy as np
        from symmle.base.quadrature import sum_support
        n = {BIG}
        flat = sum_support(lambda k: np.full(np.shape(k), 1.0 / (n + 1)), 0, n)
        ramp = sum_support(lambda k: 2.0 * (k + 1) / ((n + 1) * (n + 2)), 0, n)
        # a lattice: no panel rule holds
        even = sum_support(lambda k: np.where(k % 2 == 0, 2.0 / (n + 2), 0.0), 0, n)
        print(json.dumps([flat, ramp, even]))
    """)
    (flat, ok_flat), (ramp, ok_ramp), (_, ok_even) = out
    assert ok_flat and flat == pytest.approx(1.0, abs=1e-12)
    assert ok_ramp and ramp == pytest.approx(1.0, abs=1e-12)
    assert not ok_even  # not a wrong "converged"


def test_flat_part_of_a_mixture_on_0_to_1e9_counts():
    """A pmf whose mass is spread over all of 0..1e9 is checked to sum to 1: and refused when it does not."""
    common = [
        "--var",
        "x",
        "--discrete",
        "--support",
        "0,n",
        "--param",
        "w:unit",
        "--const",
        "q:unit=0.5",
        "--const",
        f"n:positive_integer={BIG}",
        "--format",
        "json",
    ]
    good = _cli("derive", "--pdf", "w*(1-q)*q**x + (1-w)/(n+1)", *common)
    assert good.returncode == 0, good.stderr
    bad = _cli("derive", "--pdf", "w*(1-q)*q**x + 2*(1-w)/(n+1)", *common)
    assert bad.returncode == 2 and "does not sum to 1" in bad.stderr and "1.65" in bad.stderr, bad.stderr


def test_standard_error_of_a_discrete_maximum_on_0_to_1e9(tmp_path):
    """The sd of the sample maximum was cut at 1e6 terms: 359035 where it is 997031."""
    x = np.random.default_rng(16).integers(0, BIG + 1, size=1000)
    path = tmp_path / "flat.txt"
    np.savetxt(path, x, fmt="%d")
    r = _cli(
        "fit",
        "--pdf",
        "1/(n+1)",
        "--var",
        "x",
        "--discrete",
        "--support",
        "0,n",
        "--param",
        "n:positive_integer",
        str(path),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout)
    top, size = float(x.max()), x.size
    assert fit["estimates"]["n"] == top

    def powers(p):  # sum_{j=1}^{L-1} (j/L)**p by Euler-Maclaurin, exact to O(p**3/L**3)
        L = top + 1
        return L / (p + 1) - 0.5 + p / (12 * L) - p * (p - 1) * (p - 2) / (720 * L**3)

    # D = n - max: P(D >= k) = (1 - k/(n+1))**N, E[D] = sum_k P, E[D**2] = sum_k (2k - 1) P
    mean = powers(size)
    second = (2 * (top + 1) - 1) * powers(size) - 2 * (top + 1) * powers(size + 1)
    assert fit["stderr"]["n"] == pytest.approx(math.sqrt(second - mean**2), rel=1e-8)


def test_separate_bulks_of_a_long_support_are_all_found():
    out = _python(f"""
        import json, numpy as np
        from scipy import stats
        from symmle.base.quadrature import sum_support
        n = {BIG}
        two = lambda k: 0.5 * stats.binom.pmf(k, n, 0.2) + 0.5 * stats.poisson.pmf(k, 5e8)
        log_two = lambda k: (np.logaddexp(stats.binom.logpmf(k, n, 0.2), stats.poisson.logpmf(k, 5e8))
                             + np.log(0.5))
        far = lambda k: stats.poisson.pmf(k, 1e9)
        log_far = lambda k: stats.poisson.logpmf(k, 1e9)
        near_far = lambda k: 0.5 * stats.poisson.pmf(k, 1.0) + 0.5 * far(k)
        log_near_far = lambda k: (np.logaddexp(stats.poisson.logpmf(k, 1.0), stats.poisson.logpmf(k, 1e9))
                                  + np.log(0.5))
        print(json.dumps([sum_support(two, 0, n, log_weight=log_two),
                          sum_support(far, 0, float("inf"), log_weight=log_far),
                          sum_support(far, 0, float("inf")),
                          sum_support(near_far, 0, float("inf"), log_weight=log_near_far)]))
    """)
    (two, ok_two), (far, ok_far), (blind, ok_blind), (near_far, ok_near_far) = out
    assert ok_two and two == pytest.approx(1.0, abs=1e-5)
    assert ok_near_far and near_far == pytest.approx(1.0, abs=1e-5)  # not 0.5: the far bulk is found
    # an infinite support whose mass is far from its lower end: it summed blocks of zeros and stopped at
    # a "converged" 0; without a log-weight the bulk cannot be found where the pmf underflows: said so
    assert ok_far and far == pytest.approx(1.0, abs=1e-5)
    assert ok_blind is False or blind == pytest.approx(1.0, abs=1e-5)
