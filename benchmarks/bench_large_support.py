"""Wall time and peak memory of commands whose discrete support is huge (issue 16).

Usage::

    python benchmarks/bench_large_support.py [--timeout S] [--json OUT]

Each command runs in its own subprocess (``python -m symmle ...`` with the
checkout on ``PYTHONPATH``), its peak resident set size taken from
``resource.getrusage(RUSAGE_CHILDREN)`` in a fresh intermediate process::

    symmle derive binomial --const n=1e8 / n=1e9 --format json
    symmle derive --pdf "lam**x*exp(-lam)/factorial(x)" --var x --discrete --support 0,n
                  --param lam:positive --const n:positive_integer=1000000000 --format json
    symmle derive --pdf "w*(1-q)*q**x + (1-w)/(n+1)" ...  (mass spread over all of 0..1e9)

A sum over a finite support used to be an array of all its terms: 74 s and
4.9 GB for n = 1e8, and the OOM killer for n = 1e9.

Target: every command finishes with peak RSS below 500 MB.  Exit status 0 if
it does, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ROOT, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

TARGET_MB = 500
BIG = "1000000000"

COMMANDS = {
    "binomial n=1e8": ["derive", "binomial", "--const", "n=100000000"],
    "binomial n=1e9": ["derive", "binomial", "--const", f"n={BIG}"],
    "inline Poisson on 0..1e9": [
        "derive",
        "--pdf",
        "lam**x*exp(-lam)/factorial(x)",
        "--var",
        "x",
        "--discrete",
        "--support",
        "0,n",
        "--param",
        "lam:positive",
        "--const",
        f"n:positive_integer={BIG}",
    ],
    "flat mixture on 0..1e9": [
        "derive",
        "--pdf",
        "w*(1-q)*q**x + (1-w)/(n+1)",
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
    ],
}

# run in a fresh intermediate process so that RUSAGE_CHILDREN is this command's alone
_CHILD = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": r.returncode, "wall_s": wall, "peak_mb": peak, "stderr": r.stderr[-300:]}))
"""


def run(args: list[str], timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable,
        "-c",
        _CHILD,
        str(timeout),
        sys.executable,
        "-m",
        "symmle",
        *args,
        "--format",
        "json",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout + 30)
        return json.loads(out.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return {"rc": None, "wall_s": None, "peak_mb": None, "stderr": type(exc).__name__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed to each command")
    add_json_option(ap)
    args = ap.parse_args(argv)
    rev = git_revision()
    print(environment_line(rev))
    results, ok = {}, True
    for name, cmd in COMMANDS.items():
        started = time.strftime("%H:%M:%S")
        r = run(cmd, args.timeout)
        results[name] = r
        good = r["rc"] == 0 and r["peak_mb"] is not None and r["peak_mb"] < TARGET_MB
        ok = ok and good
        wall = f"{r['wall_s']:.1f} s" if r["wall_s"] is not None else "-"
        peak = f"{r['peak_mb']:.0f} MB" if r["peak_mb"] is not None else "-"
        print(
            f"{started}  {name:<26} exit {r['rc']}  {wall:>8}  peak {peak:>8}  "
            f"{'ok' if good else 'FAIL ' + r['stderr']}"
        )
    if args.json_out:
        write_json(
            args.json_out, {"environment": environment(rev), "target_mb": TARGET_MB, "results": results}
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
