"""Reading a table and fitting it: ``symmle fit`` against pandas (pyarrow engine) plus SciPy.

Usage::

    python benchmarks/bench_read.py [--rows N] [--repeats R] [--format csv|csv.gz|parquet ...]
                                    [--dir DIR] [--keep] [--json OUT]

A table of N = 2,000,000 seeded rows, ``id,x,y`` (``x`` normal with mean 3 and variance 4,
written with ``repr`` so text holds it exactly; ``y`` exponential, ``%.6g``; about 72 MB as
CSV), is written to a fresh temporary directory (in DIR, default the system temp dir) as
``.csv``, ``.csv.gz`` (gzip level 6, as ``gzip`` writes by default) and ``.parquet`` (pyarrow's
defaults: snappy), in chunks.  Then, for each format, each command in its own subprocess::

    symmle fit normal FILE --column x --json
    python -c "df = pandas.read_csv(FILE, engine='pyarrow')   # read_parquet(FILE) for Parquet
               mu, sd = scipy.stats.norm.fit(df['x'].to_numpy())"

that is, what a user would otherwise write: pandas reads the whole table (all its columns) with
its pyarrow engine, and SciPy fits the normal distribution by maximum likelihood, the same
estimates (``sigma2 = sd**2``), which are checked to agree to 1e-12 relative.

Each command runs ``--repeats`` times (default 3), symmle and pandas alternating, under a small
Python wrapper that reports the wall time of the child and, from
``resource.getrusage(RUSAGE_CHILDREN)``, its CPU time (user + system) and peak resident set
size (RSS); the medians are compared.  Ratio = symmle / pandas.  Both include the start of the
interpreter and the imports (symmle: SymPy and the derivation of the normal model; pandas:
pandas, pyarrow and SciPy), so the fixed cost of ``symmle fit`` on a 1000-row CSV is printed
too.  The files have just been written, so the times are warm-cache times.  On a busy machine
wall times vary more than CPU times: both are printed.

Target: symmle within 1.5x of pandas (ratio <= 1.5) in wall time and in peak RSS, for each
format.  Exit status 0 if the targets are met, else 1.  Needs pandas (not a dependency of
symmle): without it the benchmark is skipped (exit status 0, with a message).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

TARGET = 1.5
FORMATS = ("csv", "csv.gz", "parquet")
CHUNK_ROWS = 1 << 18

# Runs the command and prints, on its last line of stderr, the child's wall time, CPU time and peak RSS.
_WRAPPER = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
u = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
sys.stderr.write(f"\\n@@ {wall} {u.ru_utime + u.ru_stime} {u.ru_maxrss}\\n")
sys.exit(p.returncode)
"""

# What a user would write with pandas and SciPy; prints the estimates as JSON.
_PANDAS = """
import json, sys
import pandas as pd
import scipy.stats
path, kind = sys.argv[1], sys.argv[2]
df = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, engine="pyarrow")
mu, sd = scipy.stats.norm.fit(df["x"].to_numpy())
print(json.dumps({"mu": float(mu), "sigma2": float(sd) ** 2, "n": len(df)}))
"""


def write_tables(base: Path, rows: int, seed: int, formats: tuple[str, ...]) -> dict[str, Path]:
    """The table as each of ``formats``, written in chunks; returns the paths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    paths = {kind: base / f"table.{kind}" for kind in formats}
    csv = open(paths["csv"], "w") if "csv" in paths else None  # noqa: SIM115
    gz = gzip.open(paths["csv.gz"], "wt", compresslevel=6) if "csv.gz" in paths else None
    parquet = None
    try:
        for fh in (csv, gz):
            if fh is not None:
                fh.write("id,x,y\n")
        for start in range(0, rows, CHUNK_ROWS):
            m = min(rows, start + CHUNK_ROWS) - start
            ids = np.arange(start, start + m)
            x = rng.normal(3.0, 2.0, m)
            y = rng.exponential(1 / 1.7, m)
            text = "".join(f"{i},{v!r},{w:.6g}\n" for i, v, w in zip(ids.tolist(), x.tolist(), y.tolist()))
            for fh in (csv, gz):
                if fh is not None:
                    fh.write(text)
            if "parquet" in paths:
                table = pa.table({"id": ids, "x": x, "y": y})
                if parquet is None:
                    parquet = pq.ParquetWriter(paths["parquet"], table.schema)
                parquet.write_table(table)
    finally:
        for fh in (csv, gz, parquet):
            if fh is not None:
                fh.close()
    return paths


def run(cmd: list[str]) -> dict:
    """Wall time, CPU time (s), peak RSS (MB) and stdout of ``cmd`` in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT, check=False
    )
    tail = proc.stderr.rstrip().rsplit("\n", 1)[-1].split()
    wall, cpu, rss_kb = float(tail[1]), float(tail[2]), int(tail[3])
    out = {"returncode": proc.returncode, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss_kb / 1024}
    if proc.returncode != 0:
        out["error"] = proc.stderr.rstrip().rsplit("\n@@", 1)[0][-600:]
    else:
        out["stdout"] = proc.stdout
    return out


def symmle_cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", "symmle", "fit", "normal", str(path), "--column", "x", "--json"]


def pandas_cmd(path: Path, kind: str) -> list[str]:
    return [sys.executable, "-c", _PANDAS, str(path), kind]


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the table (default 2,000,000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each command (default 3); medians")
    ap.add_argument("--format", action="append", choices=FORMATS, help="only this format (repeatable)")
    ap.add_argument("--dir", default=None, help="where to create the temporary directory")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--keep", action="store_true", help="do not delete the files")
    add_json_option(ap)
    args = ap.parse_args(argv)
    formats = tuple(args.format or FORMATS)

    try:
        import pandas
        import pyarrow
        import scipy
    except ImportError as exc:
        print(f"SKIPPED: {exc.name} is not installed (pip install pandas pyarrow scipy)")
        return 0

    revision = git_revision()
    print("symmle fit normal --column x against pandas.read_csv(engine='pyarrow') + scipy.stats.norm.fit")
    print(
        environment_line(
            revision, pandas=pandas.__version__, pyarrow=pyarrow.__version__, scipy=scipy.__version__
        )
    )
    tmp = Path(tempfile.mkdtemp(prefix="symmle-bench-read-", dir=args.dir))
    results: dict[str, dict] = {}
    fixed: list[dict] = []
    ok = True
    try:
        t0 = time.perf_counter()
        paths = write_tables(tmp, args.rows, args.seed, tuple(dict.fromkeys(("csv", *formats))))
        sizes = ", ".join(f"{k} {p.stat().st_size / 1e6:.0f} MB" for k, p in paths.items())
        print(f"wrote {args.rows:,} rows ({sizes}) in {time.perf_counter() - t0:.1f} s")
        (tmp / "small").mkdir()
        small = write_tables(tmp / "small", 1000, args.seed, ("csv",))
        fixed = [run(symmle_cmd(small["csv"])) for _ in range(args.repeats)]
        print(
            f"fixed cost of symmle fit (1000-row CSV): {median_of(fixed, 'wall_s'):.2f} s wall, "
            f"{median_of(fixed, 'cpu_s'):.2f} s CPU, {median_of(fixed, 'peak_rss_mb'):.0f} MB"
        )
        print()
        head = (
            f"{'format':<8} {'':<7} {'wall (s)':>9} {'CPU (s)':>8} {'peak RSS (MB)':>14}   "
            f"{'ratio wall':>10} {'ratio CPU':>9} {'ratio RSS':>9}  result"
        )
        print(head)
        for kind in formats:
            mine, theirs = [], []
            for _ in range(args.repeats):
                mine.append(run(symmle_cmd(paths[kind])))
                theirs.append(run(pandas_cmd(paths[kind], kind)))
            failed = [r for r in mine + theirs if r["returncode"] != 0]
            if failed:
                print(f"{kind:<8} ERROR: {failed[0]['error']}")
                results[kind] = {"error": failed[0]["error"]}
                ok = False
                continue
            got = json.loads(mine[0]["stdout"])
            ref = json.loads(theirs[0]["stdout"])
            agree = got["n"] == ref["n"] and all(
                abs(got["estimates"][k] - ref[k]) <= 1e-12 * abs(ref[k]) for k in ("mu", "sigma2")
            )
            row = {}
            for who, runs in (("symmle", mine), ("pandas", theirs)):
                row[who] = {k: median_of(runs, k) for k in ("wall_s", "cpu_s", "peak_rss_mb")}
                row[who]["runs"] = [{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")} for r in runs]
            ratio = {k: row["symmle"][k] / row["pandas"][k] for k in ("wall_s", "cpu_s", "peak_rss_mb")}
            passed = agree and ratio["wall_s"] <= TARGET and ratio["peak_rss_mb"] <= TARGET
            ok &= passed
            row.update(ratio=ratio, estimates_agree=agree, passed=passed, estimates=got["estimates"])
            results[kind] = row
            for who in ("symmle", "pandas"):
                r = row[who]
                line = f"{kind if who == 'symmle' else '':<8} {who:<7} {r['wall_s']:>9.2f} {r['cpu_s']:>8.2f}"
                line += f" {r['peak_rss_mb']:>14.0f}"
                if who == "symmle":
                    line += (
                        f"   {ratio['wall_s']:>10.2f} {ratio['cpu_s']:>9.2f} {ratio['peak_rss_mb']:>9.2f}  "
                    )
                    line += ("PASS" if passed else "FAIL") + f" (target <= {TARGET} in wall time and RSS)"
                    line += "" if agree else "; ESTIMATES DISAGREE"
                print(line, flush=True)
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json_out:
        write_json(
            args.json_out,
            {
                "benchmark": "bench_read",
                "environment": environment(revision),
                "rows": args.rows,
                "repeats": args.repeats,
                "target_ratio": TARGET,
                "fixed_cost": {k: median_of(fixed, k) for k in ("wall_s", "cpu_s", "peak_rss_mb")}
                if fixed
                else None,
                "results": results,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
