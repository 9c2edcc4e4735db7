"""The moments of a multivariate Gaussian fit: symmle's one pass against ``x.mean(0)`` + ``np.cov``.

Usage::

    python benchmarks/bench_mvnormal_moments.py [--rows N] [--dim D] [--rounds R] [--inner K]
                                                [--threads T] [--dir DIR] [--json OUT]

An (N, D) = (10**6, 20) float64 array of seeded correlated Gaussian rows (mean 1000 in every
coordinate; 160 MB) is written to a ``.npy`` file in a fresh temporary directory (in DIR, default
the system temp dir; deleted afterwards).  Then, each in a fresh process, ``--rounds`` times (default
3) in turn::

    symmle   n, mean, scatter = symmle.base._runtime.vector_moments(x);  Sigma = scatter / n
    numpy    mean = x.mean(0);  Sigma = np.cov(x, rowvar=False, bias=True)

where ``x`` is the array **in memory** (``np.load(path)``, before the clock starts) or **memory-mapped**
(``np.load(path, mmap_mode="r")``: the pages come from the page cache as the computation reads
them; the file has just been written, so the times are warm-cache times).  Each process times
``--inner`` (default 3) calls in a row, in wall time and in CPU time (of all the process's
threads); the table gives the medians over all calls of a configuration, and the ratio symmle /
numpy of the wall times (target: at most 1, "no slower than NumPy's pair").

Threads: both sides spend their time in BLAS (``X^T X``).  By default the children run OpenBLAS
with one thread (``--threads 1`` sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS``): on a machine shared with other work, OpenBLAS's threads wait for each other
and both sides' times vary tenfold from run to run.  ``--threads 0`` leaves the libraries'
defaults (all cores), as a user would have them.

Memory: each process reports its peak resident set size (``VmHWM`` of ``/proc/self/status``, which
counts the resident pages of a memory-mapped file; Linux only), the part of it added by the timed
calls (above what the process held before them: the interpreter, NumPy, and for the in-memory case
the 160 MB array), and the peak of what one call allocated (``tracemalloc``, which NumPy reports
its buffers to), measured in a separate, untimed call.

The results are checked to agree: mean and covariance to 1e-10 relative (to the covariance's
scale, ``sqrt(S_jj S_kk)``).  Exit status 0 when symmle's median is at most NumPy's in both modes
and the results agree, else 1.

Accuracy (informational): on 10**5 rows of 5 columns of mean 1e9 and unit variance, both sides'
covariance against NumPy's extended precision (``np.longdouble``, 64-bit mantissa on x86-64; skipped
where it is no wider than float64), relative to the covariance's scale.
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
from pathlib import Path

from _common import ROOT, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

TARGET = 1.0
WHO = ("symmle", "numpy")
MODES = ("memory", "mmap")

_CHILD = """
import json, sys, time, tracemalloc
import numpy as np

def hwm():
    # this process's peak RSS (VmHWM, in MB): getrusage's ru_maxrss also counts the parent's,
    # which it inherits across exec
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024

sys.path.insert(0, sys.argv[1])
from symmle.base import _runtime
path, mode, who, inner = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
x = np.load(path, mmap_mode="r") if mode == "mmap" else np.load(path)

def symmle(x):
    n, mean, scatter = _runtime.vector_moments(x)
    return mean, scatter / n

def numpy(x):
    return x.mean(0), np.cov(x, rowvar=False, bias=True)

f = symmle if who == "symmle" else numpy
before = hwm()
times, cpu = [], []
for _ in range(inner):
    t0, c0 = time.perf_counter(), time.process_time()
    mean, cov = f(x)
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
peak = hwm()
tracemalloc.start()
f(x)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"times": times, "cpu": cpu, "rss_before_mb": before, "rss_peak_mb": peak,
                  "traced_peak_mb": traced / 2**20, "mean": mean.tolist(), "cov": cov.tolist()}))
"""


def write_data(path: Path, rows: int, dim: int, seed: int) -> None:
    """Seeded correlated Gaussian rows, written a block at a time through ``open_memmap``."""
    import numpy as np
    from numpy.lib.format import open_memmap

    rng = np.random.default_rng(seed)
    mix = np.eye(dim) + 0.3 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
    out = open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, dim))
    block = 1 << 16
    for start in range(0, rows, block):
        m = min(rows, start + block) - start
        out[start : start + m] = 1000.0 + rng.normal(size=(m, dim)) @ mix
    out.flush()
    del out


def accuracy(seed: int) -> dict | None:
    """Relative errors of both covariances at mean 1e9 against an extended-precision reference."""
    import numpy as np

    from symmle.base import _runtime

    if np.finfo(np.longdouble).eps >= 1e-17:
        return None
    rng = np.random.default_rng(seed)
    x = 1e9 + rng.normal(size=(100_000, 5)) @ (np.eye(5) + 0.3 * rng.normal(size=(5, 5)))
    wide = x.astype(np.longdouble)
    centred = wide - wide.mean(axis=0)
    exact = centred.T @ centred / x.shape[0]
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact))).astype(float)
    n, _, scatter = _runtime.vector_moments(x)
    mine = scatter / n
    theirs = np.cov(x, rowvar=False, bias=True)
    return {
        "symmle": float(np.max(np.abs((mine - exact).astype(float)) / scale)),
        "numpy": float(np.max(np.abs((theirs - exact).astype(float)) / scale)),
    }


def run_child(path: Path, mode: str, who: str, inner: int, threads: int) -> dict:
    env = dict(os.environ)
    if threads:
        env.update(
            dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), str(threads))
        )
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), str(path), mode, who, str(inner)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-600:]}
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows N (default 1,000,000)")
    ap.add_argument("--dim", type=int, default=20, help="columns D (default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per configuration (default 3)")
    ap.add_argument("--inner", type=int, default=3, help="timed calls per process (default 3)")
    ap.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (default 1; 0: the libraries' default)"
    )
    ap.add_argument("--dir", default=None, help="where to create the temporary directory")
    ap.add_argument("--seed", type=int, default=20261212)
    add_json_option(ap)
    args = ap.parse_args(argv)

    import numpy as np

    revision = git_revision()
    print("vector_moments (one pass, pilot-centred blocks) against x.mean(0) + np.cov(bias=True)")
    print(environment_line(revision, numpy=np.__version__))
    print(f"BLAS threads: {args.threads or 'default'}")
    tmp = Path(tempfile.mkdtemp(prefix="symmle-bench-mvn-", dir=args.dir))
    path = tmp / "x.npy"
    runs: dict[tuple[str, str], list[dict]] = {(m, w): [] for m in MODES for w in WHO}
    try:
        write_data(path, args.rows, args.dim, args.seed)
        print(f"wrote {args.rows:,} x {args.dim} rows ({path.stat().st_size / 1e6:.0f} MB)")
        for _ in range(args.rounds):
            for mode in MODES:
                for who in WHO:
                    runs[mode, who].append(run_child(path, mode, who, args.inner, args.threads))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    errors = [r["error"] for rs in runs.values() for r in rs if "error" in r]
    if errors:
        print(f"ERROR: {errors[0]}")
        return 1
    ok = True
    results = {}
    print()
    print(
        f"{'mode':<7} {'who':<7} {'wall (s)':>8} {'min (s)':>8} {'CPU (s)':>8} {'peak RSS':>9} "
        f"{'RSS added':>10} {'allocated':>10}   {'ratio':>6}  result"
    )
    for mode in MODES:
        row = {}
        for who in WHO:
            rs = runs[mode, who]
            times = [t for r in rs for t in r["times"]]
            row[who] = {
                "median_s": statistics.median(times),
                "min_s": min(times),
                "cpu_s": statistics.median(t for r in rs for t in r["cpu"]),
                "rss_peak_mb": statistics.median(r["rss_peak_mb"] for r in rs),
                "rss_added_mb": statistics.median(r["rss_peak_mb"] - r["rss_before_mb"] for r in rs),
                "traced_peak_mb": statistics.median(r["traced_peak_mb"] for r in rs),
                "times": times,
            }
        mine, ref = runs[mode, "symmle"][0], runs[mode, "numpy"][0]
        cov_ref = np.array(ref["cov"])
        scale = np.sqrt(np.outer(np.diag(cov_ref), np.diag(cov_ref)))
        cov_diff = float(np.max(np.abs(np.array(mine["cov"]) - cov_ref) / scale))
        mean_diff = float(
            np.max(np.abs(np.array(mine["mean"]) - np.array(ref["mean"])) / np.sqrt(np.diag(cov_ref)))
        )
        agree = cov_diff <= 1e-10 and mean_diff <= 1e-10
        ratio = row["symmle"]["median_s"] / row["numpy"]["median_s"]
        passed = agree and ratio <= TARGET
        ok &= passed
        results[mode] = {**row, "ratio": ratio, "cov_difference": cov_diff, "mean_difference": mean_diff}
        results[mode]["passed"] = passed
        for who in WHO:
            r = row[who]
            line = (
                f"{mode if who == 'symmle' else '':<7} {who:<7} {r['median_s']:>8.3f} {r['min_s']:>8.3f} "
                f"{r['cpu_s']:>8.3f} "
                f"{r['rss_peak_mb']:>6.0f} MB {r['rss_added_mb']:>7.0f} MB {r['traced_peak_mb']:>7.1f} MB"
            )
            if who == "symmle":
                line += f"   {ratio:>6.2f}  " + ("PASS" if passed else "FAIL") + f" (target <= {TARGET})"
                line += (
                    f"; results agree to {max(cov_diff, mean_diff):.1e}" if agree else "; RESULTS DISAGREE"
                )
            print(line, flush=True)
    sys.path.insert(0, str(ROOT))
    errors_1e9 = accuracy(args.seed)
    if errors_1e9 is not None:
        print(
            f"\naccuracy at mean 1e9 (10**5 x 5, against np.longdouble): covariance relative error "
            f"symmle {errors_1e9['symmle']:.1e}, numpy {errors_1e9['numpy']:.1e}"
        )
    if args.json_out:
        write_json(
            args.json_out,
            {
                "benchmark": "bench_mvnormal_moments",
                "environment": environment(revision),
                "rows": args.rows,
                "dim": args.dim,
                "rounds": args.rounds,
                "inner": args.inner,
                "threads": args.threads,
                "target_ratio": TARGET,
                "results": results,
                "accuracy_at_1e9": errors_1e9,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
