"""``symmle check``: the simulation check of a closed-form and of a numeric family.

Usage::

    python benchmarks/bench_check.py [--runs R] [--seed S] [--family NAME] [--json OUT]

Cases (the issue's examples):

===========  ==========================  ======  =====  ========
family       true values                 n       reps   target
===========  ==========================  ======  =====  ========
normal       mu = 3, sigma2 = 4          1000    2000   1 s
gamma        a = 2.5, b = 1.5            500     1000   10 s
===========  ==========================  ======  =====  ========

What is timed, in this one process, after one discarded warm-up run:

* ``check``: ``symmle.simulate.check.check(d, true, n=..., reps=..., seed=S)`` on a
  Derivation ``d`` derived beforehand -- compiling, drawing the replicates
  (also those of the two smaller consistency sizes, n/16 and n/4), estimating,
  coverage, and the independent optimiser on 50 replicates.  Median of R runs
  (default 3).  This is the time "beyond start-up" the target is about.
* ``no optimiser``: the same with ``agree=0``, to show what the 50
  optimiser runs cost.
* ``derive``: ``symmle.derive(name)`` once (SymPy; not part of the target,
  reported so the end-to-end figure adds up).
* ``CLI``: the wall time of ``python -m symmle check NAME --true ... --json``
  as a subprocess (interpreter start-up, imports, derivation, check), once,
  for the record.

Every run must also pass its check (a right estimator, a fixed seed).
Exit status 0 if every target is met and every check passes, else 1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
from _common import ROOT, add_family_option, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

sys.path.insert(0, str(ROOT))  # the checkout's symmle, installed or not

import symmle
from symmle.simulate.check import check

# name -> (true values, n, reps, target seconds)
CASES = {
    "normal": ({"mu": 3.0, "sigma2": 4.0}, 1000, 2000, 1.0),
    "gamma": ({"a": 2.5, "b": 1.5}, 500, 1000, 10.0),
}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _cli(name: str, true: dict, n: int, reps: int, seed: int) -> tuple[float, int]:
    args = [
        sys.executable,
        "-m",
        "symmle",
        "check",
        name,
        "--true",
        ",".join(f"{k}={v:g}" for k, v in true.items()),
        "--n",
        str(n),
        "--reps",
        str(reps),
        "--seed",
        str(seed),
        "--json",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, proc.returncode


def bench(name: str, runs: int, seed: int) -> dict:
    true, n, reps, target = CASES[name]
    t_derive, d = _timed(lambda: symmle.derive(name))
    check(d, true, n=n, reps=reps, seed=seed)  # warm-up: lazy imports, first-call effects
    times, result = [], None
    for _ in range(runs):
        t, result = _timed(lambda: check(d, true, n=n, reps=reps, seed=seed))
        times.append(t)
    t_noagree = [_timed(lambda: check(d, true, n=n, reps=reps, seed=seed, agree=0))[0] for _ in range(runs)]
    t_cli, code = _cli(name, true, n, reps, seed)
    median = statistics.median(times)
    return {
        "true": true,
        "n": n,
        "reps": reps,
        "sizes": list(result.sizes),
        "target_s": target,
        "check_s": times,
        "check_median": median,
        "no_optimiser_s": t_noagree,
        "no_optimiser_median": statistics.median(t_noagree),
        "derive_s": t_derive,
        "cli_s": t_cli,
        "cli_exit": code,
        "passed_check": result.passed,
        "estimates": {k: p.mean for k, p in result.parameters.items()},
        "pass": median <= target and result.passed and code == 0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    add_family_option(ap, sorted(CASES))
    add_json_option(ap)
    args = ap.parse_args(argv)
    names = [n for n in CASES if not args.family or n in args.family]

    revision = git_revision()
    print(f"symmle check: median of {args.runs} runs after 1 warm-up, seed {args.seed}")
    print(environment_line(revision, numpy=np.__version__))
    print()
    print(
        f"{'family':<8} {'n':>5} {'reps':>5} {'check (s)':>10} {'no optimiser (s)':>17} "
        f"{'derive (s)':>11} {'CLI (s)':>8} {'target':>7}  result"
    )
    results, ok = {}, True
    for name in names:
        r = bench(name, args.runs, args.seed)
        results[name] = r
        ok &= r["pass"]
        why = [] if r["passed_check"] and r["cli_exit"] == 0 else ["the check itself failed"]
        if r["check_median"] > r["target_s"]:
            why.append("too slow")
        verdict = "PASS" if r["pass"] else f"FAIL ({', '.join(why)})"
        print(
            f"{name:<8} {r['n']:>5} {r['reps']:>5} {r['check_median']:>10.3f} "
            f"{r['no_optimiser_median']:>17.3f} {r['derive_s']:>11.3f} {r['cli_s']:>8.2f} "
            f"{r['target_s']:>6g}s  {verdict}",
            flush=True,
        )
    print()
    print(f"targets: closed form <= 1 s, numeric <= 10 s beyond start-up: {'PASS' if ok else 'FAIL'}")
    if args.json_out:
        write_json(
            args.json_out,
            {
                **environment(revision),
                "numpy": np.__version__,
                "runs": args.runs,
                "seed": args.seed,
                "results": results,
                "pass": ok,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
