"""A compiled mvnormal module: compile time, and fit time against ``x.mean(0)`` + ``np.cov``.

Usage::

    python benchmarks/bench_vector_compile.py [--rows N] [--dim D] [--inner K] [--threads T] [--json OUT]

First the compile: ``symmle.derive(mvnormal)`` and the generated module's source
(:func:`symmle.numbers.codegen.module_source`), each timed once in this process (a cold start: the
derivation is not cached for vector models).  Then an (N, D) = (10**6, 20) float64 array of
seeded correlated Gaussian rows (mean 1000 in every coordinate; 160 MB) is written to a ``.npy``
file in a fresh temporary directory, and, each in a fresh process that imports the generated
module (SymPy and symmle made unimportable), ``--inner`` calls (default 5) in a row of::

    module      est = mod.estimate(x)                       # mu, Sigma: validation, one BLAS pass
    module+se   est, se = mod.estimate_with_stderr(x)       # and the standard errors (a 230 x 230 inverse)
    numpy       mean = x.mean(0);  Sigma = np.cov(x, rowvar=False, bias=True)

on ``x`` in memory (``np.load``, before the clock) and memory-mapped.  The table gives the median
wall time of each, and the ratio module / numpy.  The estimates are checked against NumPy's to
1e-10 relative (to the covariance's scale).  BLAS runs with ``--threads`` threads (default 1: on a
shared machine, more threads make both sides' times vary tenfold).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

_CHILD = """
import json, sys, time
sys.modules["sympy"] = None
sys.modules["symmle"] = None
import numpy as np
sys.path.insert(0, sys.argv[1])
import mvnormal_mle as mod
path, mode, who, inner = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
x = np.load(path, mmap_mode="r") if mode == "mmap" else np.load(path)

def numpy_pair(x):
    return {"mu": x.mean(0), "Sigma": np.cov(x, rowvar=False, bias=True)}

def with_se(x):
    return mod.estimate_with_stderr(x)[0]

run = {"module": mod.estimate, "module+se": with_se, "numpy": numpy_pair}[who]
times = []
for _ in range(inner):
    t = time.perf_counter()
    out = run(x)
    times.append(time.perf_counter() - t)
ref = numpy_pair(x)
scale = np.sqrt(np.outer(np.diag(ref["Sigma"]), np.diag(ref["Sigma"])))
err = float(np.max(np.abs(out["Sigma"] - ref["Sigma"]) / scale))
print(json.dumps({"times": times, "error": err}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10**6)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import symmle
    from symmle.numbers.codegen import module_source

    spec = "mvnormal"
    t = time.perf_counter()
    d = symmle.derive(spec, cache=False)
    derive_s = time.perf_counter() - t
    t = time.perf_counter()
    source = module_source(d)
    source_s = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="symmle-bench-"))
    try:
        (tmp / "mvnormal_mle.py").write_text(source, encoding="utf-8")
        rng = np.random.default_rng(20)
        a = rng.normal(size=(args.dim, args.dim)) / np.sqrt(args.dim)
        x = 1000.0 + rng.standard_normal((args.rows, args.dim)) @ (a + np.eye(args.dim))
        np.save(tmp / "x.npy", x)
        del x
        env = dict(os.environ)
        if args.threads:
            for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[k] = str(args.threads)
        results: dict[str, dict[str, object]] = {}
        for mode in ("memory", "mmap"):
            for who in ("module", "module+se", "numpy"):
                run = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(tmp), str(tmp / "x.npy"), mode, who, str(args.inner)],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                )
                out = json.loads(run.stdout)
                results[f"{who} {mode}"] = {
                    "median_s": statistics.median(out["times"]),
                    "error": out["error"],
                }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rev = git_revision()
    print(environment_line(rev, numpy=np.__version__))
    print(
        f"derive mvnormal: {derive_s:.2f} s; generate the module: {source_s:.2f} s "
        f"({len(source):,} characters)"
    )
    print(
        f"fit of ({args.rows:,}, {args.dim}) rows, median of {args.inner} calls, "
        f"{args.threads or 'default'} BLAS thread(s)"
    )
    print(f"  {'':<18}{'seconds':>9}{'vs numpy':>10}{'Sigma error':>13}")
    ok = True
    for mode in ("memory", "mmap"):
        base = results[f"numpy {mode}"]["median_s"]
        for who in ("module", "module+se", "numpy"):
            r = results[f"{who} {mode}"]
            ratio = r["median_s"] / base  # type: ignore[operator]
            ok &= r["error"] < 1e-10  # type: ignore[operator]
            print(f"  {who + ' ' + mode:<18}{r['median_s']:>9.3f}{ratio:>10.2f}{r['error']:>13.1e}")
    if args.json_out:
        write_json(
            args.json_out,
            {
                "benchmark": "vector_compile",
                "environment": environment(rev),
                "rows": args.rows,
                "dim": args.dim,
                "derive_s": derive_s,
                "module_source_s": source_s,
                "results": results,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
