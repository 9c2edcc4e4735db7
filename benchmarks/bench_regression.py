"""Regression fits: ``symmle.fit`` against statsmodels OLS and Logit, and a memory-mapped design.

Usage::

    python benchmarks/bench_regression.py [--rows N] [--cols P] [--repeat R] [--threads T]
                                          [--big-rows M] [--dir DIR] [--json OUT]

A seeded design of N = 10**6 rows and P = 10 columns (an intercept and standard normal
covariates), in memory, with a normal response (linear) and a Bernoulli one (logistic).
Timed in one process after a warm-up call, the median of ``--repeat`` (default 5) calls:

    statsmodels OLS     sm.OLS(y, X).fit() and its standard errors (.bse)
    symmle linear       symmle.fit("linear_regression", design): QR least squares with a
                        refinement step, sigma2_hat, standard errors, log-likelihood, AIC, BIC
    statsmodels Logit   sm.Logit(y, X).fit(disp=0) and .bse
    symmle logistic     symmle.fit("logistic_regression", design): the separation search is
                        skipped above 5e6 cells; Newton with the exact score and Hessian

The design object is built before the clock starts (as statsmodels is handed arrays). The
estimates must agree with statsmodels' to 1e-8 (relative to their standard errors). The issue's
targets: linear at least 3x faster than OLS, logistic at least 2x faster than Logit.

Then ``symmle fit linear_regression BIG.npy --y c1 --x c2,...`` and the same with
``logistic_regression`` run in a subprocess on a memory-mapped ``.npy`` file of ``--big-rows``
(default 10**7) rows and P + 1 columns (written in chunks, 880 MB): the peak resident memory of the
child (``VmHWM`` sampled from ``/proc``, falling back to ``ru_maxrss``) must stay under 500 MB.
Skipped with less than 3 GB free disk. ``--threads`` sets ``OPENBLAS_NUM_THREADS`` (default 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, add_json_option, environment, environment_line, revision, write_json


def _timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _peak_mb(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of a child process, VmHWM read from /proc as it runs."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.02)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        print(err.strip(), file=sys.stderr)
    return peak, time.perf_counter() - started, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10**6)
    ap.add_argument("--cols", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--big-rows", type=int, default=10**7)
    ap.add_argument("--dir", default=None)
    add_json_option(ap)
    args = ap.parse_args()
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np
    import statsmodels
    import statsmodels.api as sm

    sys.path.insert(0, str(ROOT))
    import symmle
    from symmle.numbers.design import load_design

    n, p = args.rows, args.cols
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))])
    beta = rng.normal(size=p) * 0.3
    y_lin = X @ beta + rng.standard_normal(n)
    y_bin = (rng.random(n) < 1 / (1 + np.exp(-(X @ beta)))).astype(float)
    names = [f"x{j}" for j in range(1, p)]
    designs = {}
    for label, y in (("linear", y_lin), ("logistic", y_bin)):
        table = {"y": y, **{name: X[:, j + 1] for j, name in enumerate(names)}}
        designs[label] = load_design(table, y="y", x=names)
    d_lin = symmle.derive("linear_regression")
    d_log = symmle.derive("logistic_regression")

    rows = {
        "statsmodels OLS": _timed(lambda: sm.OLS(y_lin, X).fit().bse, args.repeat),
        "symmle linear": _timed(lambda: symmle.fit(d_lin, designs["linear"]), args.repeat),
        "statsmodels Logit": _timed(lambda: sm.Logit(y_bin, X).fit(disp=0).bse, args.repeat),
        "symmle logistic": _timed(lambda: symmle.fit(d_log, designs["logistic"]), args.repeat),
    }
    ols, logit = sm.OLS(y_lin, X).fit(), sm.Logit(y_bin, X).fit(disp=0)
    r_lin, r_log = symmle.fit(d_lin, designs["linear"]), symmle.fit(d_log, designs["logistic"])
    agree = {
        "linear": float(np.max(np.abs(np.array(r_lin.estimates["beta"]) - ols.params) / ols.bse)),
        "logistic": float(np.max(np.abs(np.array(r_log.estimates["beta"]) - logit.params) / logit.bse)),
    }
    ratios = {
        "linear": rows["statsmodels OLS"] / rows["symmle linear"],
        "logistic": rows["statsmodels Logit"] / rows["symmle logistic"],
    }
    rev = revision()
    print(environment_line(rev, numpy=np.__version__, statsmodels=statsmodels.__version__))
    print(f"N = {n:,}, p = {p}; medians of {args.repeat} calls, {args.threads or 'default'} BLAS thread(s)")
    for name, t in rows.items():
        print(f"  {name:18s} {t:8.3f} s")
    for k in ratios:
        print(f"  {k}: statsmodels / symmle = {ratios[k]:.2f}; |difference| / se = {agree[k]:.1e}")

    memory: dict[str, object] = {}
    where = args.dir or tempfile.gettempdir()
    if args.big_rows and shutil.disk_usage(where).free > 3 * 10**9:
        tmp = Path(tempfile.mkdtemp(dir=where))
        try:
            path = tmp / "big.npy"
            big = np.lib.format.open_memmap(path, mode="w+", dtype=float, shape=(args.big_rows, p))
            step = 10**6
            for a in range(0, args.big_rows, step):
                m = min(step, args.big_rows - a)
                z = rng.standard_normal((m, p - 1))
                eta = beta[0] + z @ beta[1:]
                big[a : a + m, 1:] = z
                big[a : a + m, 0] = rng.random(m) < 1 / (1 + np.exp(-eta))
            big.flush()
            del big
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            cols = ",".join(f"c{j}" for j in range(2, p + 1))
            for model in ("linear_regression", "logistic_regression"):
                cmd = [
                    sys.executable,
                    "-m",
                    "symmle",
                    "fit",
                    model,
                    str(path),
                    "--y",
                    "c1",
                    "--x",
                    cols,
                    "--json",
                ]
                peak, secs, code = _peak_mb(cmd, env)
                memory[model] = {"peak_mb": peak, "seconds": secs, "exit": code}
                print(f"  {args.big_rows:,} x {p} memory-mapped, {model}: peak {peak:.0f} MB, {secs:.1f} s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("  memory-mapped design: skipped (--big-rows 0, or less than 3 GB free)")
    if args.json_out:
        write_json(
            args.json_out,
            {
                "environment": environment(rev),
                "rows": n,
                "cols": p,
                "median_seconds": rows,
                "ratios": ratios,
                "agreement_in_se": agree,
                "memory_mapped": memory,
            },
        )
    fine = all(v < 1e-8 for v in agree.values()) and all(
        m.get("exit") == 0 and m.get("peak_mb", 0) < 500
        for m in memory.values()  # type: ignore[union-attr]
    )
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
