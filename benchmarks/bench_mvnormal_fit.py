"""Fitting a multivariate Gaussian: ``symmle.fit`` against ``x.mean(0)`` + ``np.cov(bias=True)``.

Usage::

    python benchmarks/bench_mvnormal_fit.py [--rows N] [--dim D] [--repeat R] [--threads T] [--json OUT]

Seeded correlated Gaussian rows, (N, D) = (10**6, 20) by default, mean 1000 in every coordinate, in
memory.  Timed in one process after a warm-up call, the median of ``--repeat`` (default 5) calls:

    numpy      mean = x.mean(0);  Sigma = np.cov(x, rowvar=False, bias=True)
    estimates  symmle's estimates alone (``symmle.numbers.vector_fit.estimate_vector``): the data
               checked, the one-pass pilot-centred moments of the runtime, and the derived
               estimators rewritten through the mean and scatter and evaluated on them
    fit        ``symmle.fit``: the estimates, the standard error of every entry of mu and Sigma (the
               Fisher information at the estimates, (D + D(D+1)/2) square, inverted) and the
               log-likelihood, summed row by row (``x_i - mu`` formed first, so that it keeps its
               digits far from 0)

The derivation (``symmle.derive``) is done once before the clock starts; its own time is printed.
The ratios are symmle / numpy; the issue's target is at most 1 for the estimates.  The estimates are
checked against NumPy's (1e-10 relative to the covariance's scale).  ``--threads`` sets
``OPENBLAS_NUM_THREADS`` (default 1: on a shared machine BLAS threads make both sides' times vary).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import ROOT, add_json_option, environment, environment_line, revision, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10**6)
    ap.add_argument("--dim", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    add_json_option(ap)
    args = ap.parse_args()
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import symmle
    from symmle.numbers.matrix_eval import evaluate
    from symmle.numbers.vector_fit import estimate_vector

    rng = np.random.default_rng(0)
    a = rng.normal(size=(args.dim, args.dim))
    x = rng.multivariate_normal(np.full(args.dim, 1000.0), a @ a.T + np.eye(args.dim), size=args.rows)
    spec = "mvnormal"
    started = time.perf_counter()
    d = symmle.derive(spec, cache=False)
    derive_s = time.perf_counter() - started
    lik, m = d.likelihood, d.model
    t1, t2 = (s.symbol for s in lik.statistics[:2])

    def numpy_pair():
        return x.mean(0), np.cov(x, rowvar=False, bias=True)

    def estimates():
        return estimate_vector(d, x)[2]

    def full_fit():
        return symmle.fit(d, x)

    rows = {}
    for name, fn in (("numpy", numpy_pair), ("estimates", estimates), ("fit", full_fit)):
        fn()
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rows[name] = statistics.median(times)
    mean, cov = numpy_pair()
    r = full_fit()
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    agree = bool(
        np.allclose(r.estimates["mu"], mean, rtol=1e-12)
        and np.max(np.abs(r.estimates["Sigma"] - cov) / scale) < 1e-10
    )
    # the derived estimator evaluated symbolically, once, to show it is what estimates() computes
    sigma_hat = evaluate(
        d.estimators["Sigma"],
        {m.dimension: x.shape[1], lik.N: float(len(x)), t1: x.sum(0)[:, None], t2: x.T @ x},
    )
    rev = revision()
    print(environment_line(rev, numpy=np.__version__))
    print(f"N = {args.rows:,}, D = {args.dim}; derive mvnormal: {derive_s:.2f} s (no cache)")
    print(f"{'':10s} {'median s':>9s} {'ratio':>6s}")
    for name, t in rows.items():
        print(f"{name:10s} {t:9.3f} {t / rows['numpy']:6.2f}")
    naive = np.max(np.abs(sigma_hat - cov) / scale)
    print(f"estimates agree with NumPy: {agree}; the raw-sum formula's error at mean 1000: {naive:.1e}")
    if args.json_out:
        write_json(
            args.json_out,
            {
                "environment": environment(rev),
                "rows": args.rows,
                "dim": args.dim,
                "derive_seconds": derive_s,
                "median_seconds": rows,
                "ratios": {k: v / rows["numpy"] for k, v in rows.items()},
                "agree": agree,
            },
        )
    return 0 if agree and rows["estimates"] <= rows["numpy"] else 1


if __name__ == "__main__":
    sys.exit(main())
