"""Compiled closed-form estimators against hand-written NumPy, at N = 10**7.

Usage::

    python benchmarks/bench_compiled.py [--n N] [--runs R] [--seed S] [--json OUT]

For each closed-form family (normal, poisson, exponential, lognormal,
gamma_rate with known shape ``a``), seeded float64 data are drawn with NumPy,
``symmle.derive(name).compile()`` is built *outside* the timed region, and the
compiled estimator ``est(x, **constants)`` is timed against the same estimator
written by hand in NumPy:

* normal:      ``mu = x.mean(); sigma2 = ((x - mu)**2).mean()``
* poisson:     ``x.mean()``
* exponential: ``1 / x.mean()``
* lognormal:   ``l = np.log(x); l.mean(), l.var()``
* gamma_rate:  ``a / x.mean()``

Both sides run in this one process on the same array: one discarded warm-up
call each, then R timed calls each (default 5), alternating compiled and
hand-written so that drift in machine load hits both alike.  The median of
each is reported, with ratio = compiled / hand-written.

Targets: ratio <= 1.0 (compiled no slower than hand-written) for every family,
and every estimate equal to the hand-written one to 1e-10 relative.

Exit status 0 if every target is met, else 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from _common import ROOT, add_family_option, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

sys.path.insert(0, str(ROOT))  # the checkout's symmle, installed or not

import symmle

RATIO_TARGET = 1.0
REL_TARGET = 1e-10


def _normal(x):
    mu = x.mean()
    return {"mu": mu, "sigma2": ((x - mu) ** 2).mean()}


def _poisson(x):
    return {"lam": x.mean()}


def _exponential(x):
    return {"lam": 1 / x.mean()}


def _lognormal(x):
    lx = np.log(x)
    return {"mu": lx.mean(), "sigma2": lx.var()}


A_KNOWN = 2.5


def _gamma_rate(x):
    return {"b": A_KNOWN / x.mean()}


# name -> (data(rng, n), hand-written estimator, constants)
CASES = {
    "normal": (lambda rng, n: rng.normal(3.0, 2.0, n), _normal, {}),
    "poisson": (lambda rng, n: rng.poisson(4.5, n).astype(np.float64), _poisson, {}),
    "exponential": (lambda rng, n: rng.exponential(1 / 1.7, n), _exponential, {}),
    "lognormal": (lambda rng, n: rng.lognormal(0.5, 0.8, n), _lognormal, {}),
    "gamma_rate": (
        lambda rng, n: rng.gamma(A_KNOWN, 1 / 1.7, n),
        _gamma_rate,
        {"a": A_KNOWN},
    ),
}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench(name: str, n: int, runs: int, seed: int) -> dict:
    make, hand, constants = CASES[name]
    x = make(np.random.default_rng(seed), n)
    est = symmle.derive(name).compile()  # outside the timed region

    def compiled():
        return est(x, **constants)

    def written():
        return hand(x)

    compiled()  # warm-up (first-call effects: page faults, lazy imports)
    written()
    t_comp, t_hand = [], []
    got = want = None
    for _ in range(runs):
        t, got = _timed(compiled)
        t_comp.append(t)
        t, want = _timed(written)
        t_hand.append(t)
    rel = {k: abs(float(got[k]) - float(want[k])) / max(abs(float(want[k])), 1e-300) for k in want}
    m_comp, m_hand = statistics.median(t_comp), statistics.median(t_hand)
    return {
        "n": n,
        "compiled_s": t_comp,
        "handwritten_s": t_hand,
        "compiled_median": m_comp,
        "handwritten_median": m_hand,
        "ratio": m_comp / m_hand,
        "compiled": {k: float(v) for k, v in got.items()},
        "handwritten": {k: float(v) for k, v in want.items()},
        "rel_diff": rel,
        "max_rel_diff": max(rel.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10**7, help="sample size (default 10**7)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side (default 5)")
    ap.add_argument("--seed", type=int, default=20261124)
    add_family_option(ap, sorted(CASES))
    add_json_option(ap)
    args = ap.parse_args(argv)
    names = [n for n in CASES if not args.family or n in args.family]

    revision = git_revision()
    print(
        f"compiled vs hand-written NumPy: N = {args.n:,}, median of {args.runs} runs each (after 1 warm-up)"
    )
    print(environment_line(revision, numpy=np.__version__))
    print()
    print(f"{'family':<12} {'compiled (s)':>12} {'NumPy (s)':>10} {'ratio':>7} {'max rel diff':>13}  result")
    results = {}
    ok = True
    for name in names:
        r = bench(name, args.n, args.runs, args.seed)
        results[name] = r
        passed_t = r["ratio"] <= RATIO_TARGET
        passed_v = r["max_rel_diff"] <= REL_TARGET
        ok &= passed_t and passed_v
        verdict = (
            "PASS"
            if passed_t and passed_v
            else "FAIL ("
            + ", ".join(s for s, p in (("slower", passed_t), ("values differ", passed_v)) if not p)
            + ")"
        )
        print(
            f"{name:<12} {r['compiled_median']:>12.4f} {r['handwritten_median']:>10.4f} "
            f"{r['ratio']:>7.2f} {r['max_rel_diff']:>13.1e}  {verdict}",
            flush=True,
        )
    print()
    print(
        f"targets: ratio <= {RATIO_TARGET} and relative difference <= {REL_TARGET:g}: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    if args.json_out:
        payload = {
            **environment(revision),
            "numpy": np.__version__,
            "n": args.n,
            "runs": args.runs,
            "seed": args.seed,
            "targets": {"ratio": RATIO_TARGET, "rel_diff": REL_TARGET},
            "results": results,
            "pass": ok,
        }
        write_json(args.json_out, payload)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
