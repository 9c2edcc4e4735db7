"""Linear least squares: symmle's TSQR + refinement against statsmodels' OLS and NumPy's lstsq.

Usage::

    python benchmarks/bench_least_squares.py [--rows N] [--cols P] [--rounds R] [--inner K]
                                             [--mmap-rows M] [--no-mmap] [--threads T]
                                             [--dir DIR] [--json OUT]

**Speed.**  An (N, P) = (10**6, 10) seeded design (an intercept and P - 1 standard normal columns,
some shifted and scaled so the columns differ in size) and ``y = X beta + e`` (``beta = 1..P``) are
written to ``.npy`` files in a fresh temporary directory (in DIR, default the system temp dir;
deleted afterwards).  Then, each in a fresh process that loads the arrays into memory before the
clock starts, ``--rounds`` times (default 3) in turn, ``--inner`` (default 3) timed calls of::

    symmle       fit = least_squares(lambda: [(X, y)], terms); covariance_factor(fit.r) -> beta, SEs
    statsmodels  res = sm.OLS(y, X).fit(); res.bse                                     -> beta, SEs
    lstsq        np.linalg.lstsq(X, y, rcond=None)                                      -> beta only

The table gives the medians over all calls (wall and CPU time) and the ratio of statsmodels' (and
lstsq's) median to symmle's.  Target: statsmodels / symmle >= 3, with coefficients and standard
errors agreeing with statsmodels' to 1e-8 relative.  symmle's time includes the second pass over
the data (the refinement step) and the covariance factor.

**Memory.**  A (10**7, 10) float64 ``.npy`` file (800 MB: ``y`` and 9 covariates, written a block
at a time) is fitted from ``np.load(path, mmap_mode="r")`` in a fresh process, chunk by chunk
(``symmle.base._runtime.row_chunks``, which releases each chunk's pages of the map once it has
been read), the intercept column added per chunk as ``symmle.numbers.design`` does: the design
``[1 | x1..x9]`` has p = 10 columns.  The process reports its peak resident set size (``VmHWM``
of ``/proc/self/status``, which counts the resident pages of the map, and ``ru_maxrss`` of
``resource.getrusage`` for reference: on Linux that one also carries the parent's peak across
``exec``) and the peak that ``tracemalloc`` saw NumPy allocate.  Target: peak RSS < 500 MB.  The
coefficients are checked against normal equations accumulated in ``np.longdouble`` (the design is
well conditioned, so these are accurate to about 1e-13).

**Separation** (informational): ``find_separation`` on N = 10**5 rows of 10 columns, median of 3,
for data that are not separated, completely separated by a plane, quasi-completely separated (a
three-level covariate), and a Poisson design with ``y = 0`` in every row of one category.

BLAS threads: one by default (``--threads 1`` sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` in the children), as in ``bench_mvnormal_moments.py``; ``--threads 0`` leaves the
libraries' defaults.  Exit status 0 when every target is met, else 1.
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

SPEED_TARGET = 3.0
AGREE = 1e-8
RSS_TARGET_MB = 500.0
WHO = ("symmle", "statsmodels", "lstsq")

_CHILD_FIT = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
xpath, ypath, who, inner = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
X, y = np.load(xpath), np.load(ypath)
n, p = X.shape
terms = [f"x{j}" for j in range(p)]

def symmle():
    from symmle.numbers.least_squares import covariance_factor, least_squares
    fit = least_squares(lambda: [(X, y)], terms)
    se = np.sqrt(fit.rss / (n - p) * np.diag(covariance_factor(fit.r)))
    return fit.beta, se

def statsmodels():
    import statsmodels.api as sm
    res = sm.OLS(y, X).fit()
    return res.params, res.bse

def lstsq():
    return np.linalg.lstsq(X, y, rcond=None)[0], None

f = {"symmle": symmle, "statsmodels": statsmodels, "lstsq": lstsq}[who]
f()  # warm-up: imports, first-touch of the pages
times, cpu = [], []
for _ in range(inner):
    t0, c0 = time.perf_counter(), time.process_time()
    beta, se = f()
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({"times": times, "cpu": cpu, "beta": list(map(float, beta)),
                  "se": None if se is None else list(map(float, se))}))
"""

_CHILD_MMAP = """
import json, resource, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, sys.argv[1])
from symmle.base._runtime import row_chunks
from symmle.numbers.least_squares import least_squares

def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024

path, rows = sys.argv[2], int(sys.argv[3])
mm = np.load(path, mmap_mode="r")
n, k = mm.shape
terms = ["Intercept"] + [f"x{j}" for j in range(1, k)]

def chunks():
    for _, block in row_chunks(mm, rows):
        X = np.empty((block.shape[0], k))
        X[:, 0] = 1.0
        X[:, 1:] = block[:, 1:]
        yield X, block[:, 0]

before = hwm()
t0, c0 = time.perf_counter(), time.process_time()
fit = least_squares(chunks, terms)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak, maxrss = hwm(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tracemalloc.start()
least_squares(chunks, terms)
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
# reference: normal equations accumulated in extended precision
xtx, xty = np.zeros((k, k), np.longdouble), np.zeros(k, np.longdouble)
for X, z in chunks():
    w = X.astype(np.longdouble)
    xtx += w.T @ w
    xty += w.T @ z.astype(np.longdouble)
ref = np.linalg.solve(xtx.astype(float), xty.astype(float))
print(json.dumps({"wall": wall, "cpu": cpu, "rss_before_mb": before, "rss_peak_mb": peak,
                  "ru_maxrss_mb": maxrss, "traced_peak_mb": traced, "beta": fit.beta.tolist(),
                  "reference": ref.tolist(), "n": n, "p": k}))
"""


def write_speed_data(tmp: Path, rows: int, cols: int, seed: int) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(seed)
    X = np.empty((rows, cols))
    X[:, 0] = 1.0
    X[:, 1:] = rng.normal(size=(rows, cols - 1)) * np.geomspace(1e-2, 1e3, cols - 1) + np.linspace(
        0, 50, cols - 1
    )
    y = X @ np.arange(1.0, cols + 1) + rng.normal(size=rows)
    np.save(tmp / "X.npy", X)
    np.save(tmp / "y.npy", y)
    return tmp / "X.npy", tmp / "y.npy"


def write_mmap_data(path: Path, rows: int, cols: int, seed: int) -> None:
    """(rows, cols): y, then cols - 1 covariates, written a block at a time with ``tofile``.

    Not through a memory map: the pages it wrote would count in this process's peak RSS, which a
    child's ``ru_maxrss`` inherits.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    beta = np.arange(1.0, cols + 1)
    block = 1 << 17
    with open(path, "wb") as fh:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(float)), "fortran_order": False}
        np.lib.format.write_array_header_1_0(fh, {**header, "shape": (rows, cols)})
        for start in range(0, rows, block):
            m = min(rows, start + block) - start
            out = np.empty((m, cols))
            out[:, 1:] = rng.normal(size=(m, cols - 1)) + 3.0
            out[:, 0] = beta[0] + out[:, 1:] @ beta[1:] + rng.normal(size=m)
            out.tofile(fh)


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    if threads:
        env.update(
            dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), str(threads))
        )
    return env


def run_child(code: str, args: list[str], threads: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), *args],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(threads),
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-800:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def separation_timings(seed: int, repeat: int = 3) -> dict:
    """find_separation on 10**5 x 10 designs: seconds (median of ``repeat``) and the verdict."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from symmle.numbers.separation import find_separation

    rng = np.random.default_rng(seed)
    n = 100_000
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 9))])
    level = rng.integers(-1, 2, n).astype(float)
    Xq = X.copy()
    Xq[:, 1] = level
    g = rng.integers(0, 3, n)
    Xp = X.copy()
    Xp[:, 1], Xp[:, 2] = g == 1, g == 2
    yp = rng.poisson(np.array([2.0, 3.0, 0.0])[g])
    cases = {
        "not separated": (X, np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-X[:, 1] + X[:, 2])), 1, -1)),
        "complete": (X, np.where(X[:, 1] + 0.5 * X[:, 2] > 0.3, 1, -1)),
        "quasi-complete": (Xq, np.where(level > 0, 1, np.where(level < 0, -1, rng.choice([-1, 1], n)))),
        "poisson, y = 0 in one category": (Xp, np.where(yp == 0, -1, 0)),
    }
    out = {}
    terms = [f"x{j}" for j in range(10)]
    for name, (design, sign) in cases.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            sep = find_separation(design, sign, terms)
            times.append(time.perf_counter() - t0)
        out[name] = {"median_s": statistics.median(times), "verdict": sep.kind if sep else "none"}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows N of the speed test (default 10**6)")
    ap.add_argument("--cols", type=int, default=10, help="columns P, intercept included (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per tool (default 3)")
    ap.add_argument("--inner", type=int, default=3, help="timed calls per process (default 3)")
    ap.add_argument(
        "--mmap-rows", type=int, default=10_000_000, help="rows of the mapped file (default 10**7)"
    )
    ap.add_argument(
        "--chunk-rows", type=int, default=1 << 16, help="rows per chunk of the map (default 65536)"
    )
    ap.add_argument("--no-mmap", action="store_true", help="skip the memory test (it writes 800 MB)")
    ap.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (default 1; 0: the libraries' default)"
    )
    ap.add_argument("--dir", default=None, help="where to create the temporary directory")
    ap.add_argument("--seed", type=int, default=20261213)
    add_json_option(ap)
    args = ap.parse_args(argv)

    import numpy as np

    revision = git_revision()
    print("least_squares (TSQR + one refinement step) against statsmodels OLS and numpy.linalg.lstsq")
    print(environment_line(revision, numpy=np.__version__))
    print(f"BLAS threads: {args.threads or 'default'}")
    tmp = Path(tempfile.mkdtemp(prefix="symmle-bench-lsq-", dir=args.dir))
    runs: dict[str, list[dict]] = {w: [] for w in WHO}
    mapped = None
    try:
        xpath, ypath = write_speed_data(tmp, args.rows, args.cols, args.seed)
        for _ in range(args.rounds):
            for who in WHO:
                runs[who].append(
                    run_child(_CHILD_FIT, [str(xpath), str(ypath), who, str(args.inner)], args.threads)
                )
        xpath.unlink()
        ypath.unlink()
        if not args.no_mmap:
            need = args.mmap_rows * args.cols * 8 + 10**9
            if shutil.disk_usage(tmp).free < need:
                print(f"memory test skipped: less than {need / 1e9:.1f} GB free in {tmp}")
            else:
                path = tmp / "design.npy"
                write_mmap_data(path, args.mmap_rows, args.cols, args.seed)
                print(f"wrote {args.mmap_rows:,} x {args.cols} ({path.stat().st_size / 1e6:.0f} MB)")
                mapped = run_child(_CHILD_MMAP, [str(path), str(args.chunk_rows)], args.threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    errors = [r["error"] for rs in runs.values() for r in rs if "error" in r]
    if mapped and "error" in mapped:
        errors.append(mapped["error"])
    if errors:
        print(f"ERROR: {errors[0]}")
        return 1
    ok = True
    results: dict = {}
    print(f"\nN = {args.rows:,}, p = {args.cols}; median of {args.rounds} processes x {args.inner} calls")
    print(f"{'tool':<12} {'wall (s)':>9} {'min (s)':>8} {'CPU (s)':>8} {'ratio to symmle':>16}")
    med = {}
    for who in WHO:
        times = [t for r in runs[who] for t in r["times"]]
        med[who] = statistics.median(times)
        results[who] = {
            "median_s": med[who],
            "min_s": min(times),
            "cpu_s": statistics.median(t for r in runs[who] for t in r["cpu"]),
            "times": times,
        }
    for who in WHO:
        r = results[who]
        times = f"{r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['cpu_s']:>8.3f}"
        print(f"{who:<12} {times} {med[who] / med['symmle']:>15.2f}x")
    mine, ref = runs["symmle"][0], runs["statsmodels"][0]
    beta_diff = float(np.max(np.abs(np.subtract(mine["beta"], ref["beta"])) / np.abs(ref["beta"])))
    se_diff = float(np.max(np.abs(np.subtract(mine["se"], ref["se"])) / np.abs(ref["se"])))
    lstsq_diff = float(
        np.max(np.abs(np.subtract(mine["beta"], runs["lstsq"][0]["beta"])) / np.abs(runs["lstsq"][0]["beta"]))
    )
    ratio = med["statsmodels"] / med["symmle"]
    speed_ok = ratio >= SPEED_TARGET and beta_diff <= AGREE and se_diff <= AGREE
    ok &= speed_ok
    print(
        f"statsmodels / symmle = {ratio:.2f} (target >= {SPEED_TARGET}); agreement with statsmodels: beta "
        f"{beta_diff:.1e}, SE {se_diff:.1e} relative (lstsq beta {lstsq_diff:.1e}; target <= {AGREE:g}): "
        + ("PASS" if speed_ok else "FAIL")
    )
    results.update(ratio=ratio, beta_difference=beta_diff, se_difference=se_diff, lstsq_difference=lstsq_diff)

    if mapped:
        diff = float(
            np.max(np.abs(np.subtract(mapped["beta"], mapped["reference"])) / np.abs(mapped["reference"]))
        )
        mem_ok = mapped["rss_peak_mb"] < RSS_TARGET_MB and diff <= AGREE
        ok &= mem_ok
        print(
            f"\nmemory-mapped {mapped['n']:,} x {mapped['p']} design, chunks of {args.chunk_rows:,} rows: "
            f"{mapped['wall']:.2f} s wall ({mapped['cpu']:.2f} s CPU); "
            f"peak RSS {mapped['rss_peak_mb']:.0f} MB (before the fit {mapped['rss_before_mb']:.0f} MB; "
            f"ru_maxrss {mapped['ru_maxrss_mb']:.0f} MB; tracemalloc {mapped['traced_peak_mb']:.1f} MB); "
            f"target < {RSS_TARGET_MB:.0f} MB; beta against extended-precision normal equations {diff:.1e}: "
            + ("PASS" if mem_ok else "FAIL")
        )
        results["mmap"] = {**mapped, "difference": diff, "passed": mem_ok}

    sep = separation_timings(args.seed)
    print("\nfind_separation, N = 100,000, p = 10 (median of 3):")
    for name, r in sep.items():
        print(f"  {name:<32} {r['median_s']:.2f} s  -> {r['verdict']}")
    results["separation"] = sep
    if args.json_out:
        write_json(
            args.json_out,
            {
                "benchmark": "bench_least_squares",
                "environment": environment(revision),
                "rows": args.rows,
                "cols": args.cols,
                "threads": args.threads,
                "targets": {"ratio": SPEED_TARGET, "agree": AGREE, "rss_mb": RSS_TARGET_MB},
                "results": results,
                "passed": ok,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
