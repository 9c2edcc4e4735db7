"""``symmle gof``: parametric-bootstrap goodness of fit against ``scipy.stats.goodness_of_fit``.

Usage::

    python benchmarks/bench_gof.py [--n N] [--boot B] [--runs R] [--family NAME] [--workers T] [--json OUT]

The target (issue 18): ``gof`` of a closed-form family with 1,000 bootstrap replicates at
N = 10^4 at least **20x** faster than ``scipy.stats.goodness_of_fit`` with the same number of
resamples (``n_mc_samples``).

What is timed, in this one process, after one discarded warm-up run of each:

* ``symmle``: ``symmle.simulate.bootstrap.gof(d, x, boot=B, seed=...)`` on a Derivation derived
  beforehand (its distribution function cached): the fit, KS, CvM and AD at the estimates, and the
  bootstrap -- B data sets drawn, refitted by the compiled estimator, the three statistics
  recomputed at each replicate's estimates.  All three p-values come from one bootstrap.
* ``scipy``: ``scipy.stats.goodness_of_fit(dist, x, statistic=S, n_mc_samples=B, ...)`` for each of
  ``ks``, ``cvm`` and ``ad`` (one call gives one statistic's p-value); the figure is the sum of the
  three, the same work as one ``symmle`` run.  Parameters the symmle family does not have are
  ``known_params`` (the exponential's ``loc = 0``), so both fit the same model by maximum
  likelihood.  The normal is shown too, but SciPy fits its scale with ``ddof = 1`` there, not the
  MLE: the same work, a slightly different statistic.
* The speed-up is scipy / symmle (median of R runs, default 3) in wall-clock time (the target's
  measure); the ratio of CPU times (all threads) is printed too, as it moves less when the machine
  is shared.
* symmle draws each replicate's order statistics directly (uniform order statistics from
  exponential spacings, mapped through the model's closed-form quantile function, derived by SymPy
  and checked numerically): no sort.  Families without a closed-form inverse use the sampler and a
  sort (``draw`` says which).

Exit status 0 if every closed-form family meets the target, else 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from _common import ROOT, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

sys.path.insert(0, str(ROOT))  # the checkout's symmle, installed or not

from scipy import stats  # noqa: E402

import symmle  # noqa: E402
from symmle.simulate import bootstrap  # noqa: E402
from symmle.simulate.bootstrap import gof  # noqa: E402

TARGET = 20.0
#: family -> (sampler of the data, SciPy distribution, SciPy's known parameters)
CASES = {
    "exponential": (lambda rng, n: rng.exponential(2.0, n), stats.expon, {"loc": 0.0}),
    "normal": (lambda rng, n: rng.normal(3.0, 2.0, n), stats.norm, {}),
    # a numeric family, for the record (not a target; only with --family gamma): both fit numerically
    "gamma": (lambda rng, n: rng.gamma(2.5, 1 / 1.5, n), stats.gamma, {"loc": 0.0}),
}
DEFAULT = ("exponential", "normal")


def _timed(fn):
    """``(wall seconds, CPU seconds of all threads, result)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--family", action="append", choices=sorted(CASES))
    ap.add_argument("--workers", type=int, default=None, help="bootstrap threads (default: symmle's own)")
    add_json_option(ap)
    args = ap.parse_args()
    if args.workers:
        bootstrap.WORKERS = args.workers
    env = environment(git_revision())
    print(environment_line(env["revision"]))
    rows, ok = [], True
    for name in args.family or DEFAULT:
        draw, dist, known = CASES[name]
        x = draw(np.random.default_rng(1), args.n)
        d = symmle.derive(name)
        gof(d, x, boot=10, seed=0)  # warm-up: compiles, caches the distribution function
        ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
        for run in range(args.runs):
            t, c, r = _timed(lambda run=run, d=d, x=x: gof(d, x, boot=args.boot, seed=run))
            ours.append(t)
            ours_cpu.append(c)
            total = total_cpu = 0.0
            for st in ("ks", "cvm", "ad"):
                t2, c2, ref = _timed(
                    lambda st=st, run=run, dist=dist, x=x, known=known: stats.goodness_of_fit(
                        dist,
                        x,
                        known_params=known,
                        statistic=st,
                        n_mc_samples=args.boot,
                        rng=np.random.default_rng(run),
                    )
                )
                total += t2
                total_cpu += c2
            theirs.append(total)
            theirs_cpu.append(total_cpu)
        a, b = statistics.median(ours), statistics.median(theirs)
        speedup = b / a
        cpu_speedup = statistics.median(theirs_cpu) / statistics.median(ours_cpu)
        closed = all(k == "closed_form" for k in d.compile().kinds.values())
        met = speedup >= TARGET
        ok &= met or not closed
        rows.append(
            {
                "family": name,
                "n": args.n,
                "boot": args.boot,
                "symmle_s": a,
                "scipy_s": b,
                "speedup": speedup,
                "symmle_cpu_s": statistics.median(ours_cpu),
                "scipy_cpu_s": statistics.median(theirs_cpu),
                "cpu_speedup": cpu_speedup,
                "draw": r.draw,
                "workers": bootstrap.WORKERS,
                "target": TARGET,
                "met": met,
                "p_values": {k: s.p_value for k, s in r.statistics.items()},
            }
        )
        print(
            f"{name:12s} n={args.n} B={args.boot}: symmle {a:7.3f} s (3 statistics)  "
            f"scipy {b:7.3f} s (3 calls)  speed-up {speedup:5.1f}x  "
            f"{'meets' if met else 'MISSES'} the {TARGET:g}x target  "
            f"[CPU time: {cpu_speedup:.1f}x; replicates drawn by {r.draw}]"
        )
    if args.json_out:
        write_json(args.json_out, {"environment": env, "results": rows})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
