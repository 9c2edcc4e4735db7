"""Peak memory and wall time of ``symmle fit`` on a 10**8-sample ``.npy`` file (800 MB) and on text.

Usage::

    python benchmarks/bench_fit_memory.py [--n N] [--text-n N] [--dir DIR] [--keep] [--json OUT]

A float64 ``.npy`` file of N = 10**8 seeded exponential samples (800 MB) is
written to a fresh temporary directory (in DIR, default the system temp
dir), in chunks through ``numpy.lib.format.open_memmap``, so this script
itself never holds the data in memory.  Free disk is checked first with
``shutil.disk_usage``; with less than 3 GB free the benchmark is skipped
(exit status 0, with a message).  The file is deleted afterwards unless
``--keep`` is given.

Then, each in its own subprocess (``python -m symmle ...`` with the checkout
on ``PYTHONPATH``)::

    symmle fit exponential FILE.npy --json     # closed form
    symmle fit gamma FILE.npy --json           # numeric (time limit 180 s)

The child's peak resident set size (RSS) comes from ``/usr/bin/time -v``
("Maximum resident set size") if that exists, else from
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the largest of all
children so far, so then each fit runs in a fresh intermediate process).
Peak RSS counts the pages of the memory-mapped file that are resident, as
well as the interpreter, SymPy, NumPy and SciPy.  For scale, the same
command is also run on a 1000-sample file: that is the fixed cost of the
process (imports, derivation), whatever the data size.  Wall time is that of
the whole command, start-up, derivation and standard errors included.

Peak RSS does not tell anonymous memory (what the process allocated) from
file-backed pages (the resident part of the memory-mapped file, which the
kernel can drop at any time), so ``/proc/PID/status`` of the child is also
sampled every 10 ms and the largest ``RssAnon`` and ``RssFile`` seen are
printed as "anon/file" (informational; sampling can miss a short peak).
The data file has just been written, so it is in the page cache: wall times
are warm-cache times.

Text data: ``--text-n`` rows (default 5,000,000) of the same seeded
exponential samples, written with ``%.6g`` in chunks, as a ``.txt`` file (one
number per line, about 45 MB) and as a ``.csv`` file (``id,value``, about
85 MB), then::

    symmle fit exponential FILE.txt --json
    symmle fit exponential FILE.csv --column value --json

Text is parsed, not mapped: its cost is what the parser holds beyond the
fixed cost, so the figure is the peak RSS above that of the 1000-sample run.

Targets: peak RSS below 300 MB for ``symmle fit exponential`` on the 800 MB
file; the gamma figure is reported (against the same 300 MB) when it finishes
within the time limit.  For text, at most ``TEXT_RSS_FACTOR`` (4) times the
float64 size of the column (8 bytes a row) above the fixed cost: about 153 MB at
5,000,000 rows.

Exit status 0 if the targets are met (or the benchmark was skipped), else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

ROOT = Path(__file__).resolve().parent.parent

RSS_TARGET_MB = 300.0
TEXT_RSS_FACTOR = 4.0
MIN_FREE_BYTES = 3 * 10**9
GAMMA_LIMIT_S = 180.0
TIME = Path("/usr/bin/time")

# Runs the command in a fresh child and prints that child's peak RSS (kB): the
# fallback when /usr/bin/time is missing (RUSAGE_CHILDREN is per process tree).
_RUSAGE_WRAPPER = """
import json, resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
sys.stderr.write("\\n@@MAXRSS_KB " + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n")
sys.exit(p.returncode)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    return env


def write_npy(path: Path, n: int, seed: int, chunk: int = 1 << 22) -> None:
    """``n`` float64 exponential samples (rate 1.7), written in chunks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n,))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = rng.exponential(1 / 1.7, stop - start)
    out.flush()
    del out


def write_text(txt: Path, csv: Path, n: int, seed: int, chunk: int = 1 << 20) -> None:
    """``n`` exponential samples (rate 1.7) as ``.txt`` (one a line) and ``.csv`` (``id,value``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(txt, "w") as ft, open(csv, "w") as fc:
        fc.write("id,value\n")
        for start in range(0, n, chunk):
            x = rng.exponential(1 / 1.7, min(n, start + chunk) - start)
            np.savetxt(ft, x, fmt="%.6g")
            ids = np.arange(start, start + x.size)
            np.savetxt(fc, np.column_stack([ids, x]), fmt=["%d", "%.6g"], delimiter=",")


def _sample_rss(pid: int, peaks: dict[str, int]) -> None:
    """Fold the current RssAnon/RssFile (kB) of the processes below ``pid`` (the wrapper) into ``peaks``."""
    try:
        todo = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return
    seen: set[int] = set()
    totals = dict.fromkeys(peaks, 0)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            status = Path(f"/proc/{p}/status").read_text()
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            continue
        for key in totals:
            m = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
            if m:
                totals[key] += int(m.group(1))
    for key, v in totals.items():
        peaks[key] = max(peaks[key], v)


def run_fit(model: str, data: Path, timeout: float, extra: tuple[str, ...] = ()) -> dict:
    """Wall time, peak RSS (MB) and parsed JSON of ``symmle fit MODEL DATA [EXTRA] --json``."""
    cmd = [sys.executable, "-m", "symmle", "fit", model, str(data), *extra, "--json"]
    if TIME.exists():
        full, how = [str(TIME), "-v", *cmd], "/usr/bin/time -v"
    else:
        full, how = (
            [sys.executable, "-c", _RUSAGE_WRAPPER, *cmd],
            "getrusage(RUSAGE_CHILDREN)",
        )
    t0 = time.perf_counter()
    peaks = {"RssAnon": 0, "RssFile": 0}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(full, stdout=out, stderr=err, text=True, env=_env(), cwd=ROOT)
        while proc.poll() is None:
            _sample_rss(proc.pid, peaks)
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                proc.wait()
                return {
                    "model": model,
                    "timeout": timeout,
                    "wall_s": time.perf_counter() - t0,
                    "rss_source": how,
                }
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(full, proc.returncode, out.read(), err.read())
    if TIME.exists():
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    else:
        m = re.search(r"@@MAXRSS_KB (\d+)", proc.stderr)
    rss_mb = int(m.group(1)) / 1024 if m else None
    result = None
    if proc.returncode == 0:
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError:
            pass
    err = None
    if proc.returncode != 0:
        err = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("\t"))[-600:]
    return {
        "model": model,
        "returncode": proc.returncode,
        "wall_s": wall,
        "peak_rss_mb": rss_mb,
        "rss_source": how,
        "sampled_peak_anon_mb": peaks["RssAnon"] / 1024 if peaks["RssAnon"] else None,
        "sampled_peak_file_mb": peaks["RssFile"] / 1024 if peaks["RssFile"] else None,
        "estimates": result.get("estimates") if result else None,
        "n": result.get("n") if result else None,
        "error": err,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--n",
        type=int,
        default=10**8,
        help="samples in the file (default 10**8, 800 MB)",
    )
    ap.add_argument(
        "--dir",
        default=None,
        help="where to create the temporary directory (default: system temp)",
    )
    ap.add_argument(
        "--text-n",
        type=int,
        default=5 * 10**6,
        help="rows of the .txt and .csv files (default 5,000,000; 0 skips text)",
    )
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--keep", action="store_true", help="do not delete the data file")
    ap.add_argument("--no-gamma", action="store_true", help="skip the numeric (gamma) fit")
    add_json_option(ap)
    args = ap.parse_args(argv)

    base = Path(args.dir or tempfile.gettempdir())
    revision = git_revision()
    print(f"symmle fit on a {args.n:,}-sample float64 .npy ({args.n * 8 / 1e6:,.0f} MB)")
    print(environment_line(revision))
    free = shutil.disk_usage(base).free
    print(f"free disk in {base}: {free / 1e9:.1f} GB")
    if free < MIN_FREE_BYTES:
        print(
            f"SKIPPED: less than {MIN_FREE_BYTES / 1e9:.0f} GB free in {base}; pass --dir to use another disk"
        )
        return 0
    meter = "/usr/bin/time -v" if TIME.exists() else "resource.getrusage(RUSAGE_CHILDREN)"
    print(f"peak RSS measured with {meter}")
    print()

    tmp = Path(tempfile.mkdtemp(prefix="symmle-bench-", dir=base))
    results: dict[str, dict] = {}
    try:
        small = tmp / "small.npy"
        write_npy(small, 1000, args.seed)
        big = tmp / "big.npy"
        t0 = time.perf_counter()
        write_npy(big, args.n, args.seed)
        print(
            f"wrote {big} ({big.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        texts = {}
        if args.text_n > 0:
            texts = {"txt": tmp / "big.txt", "csv": tmp / "big.csv"}
            t0 = time.perf_counter()
            write_text(texts["txt"], texts["csv"], args.text_n, args.seed)
            print(
                f"wrote {args.text_n:,} rows as {texts['txt'].name}"
                f" ({texts['txt'].stat().st_size / 1e6:,.0f} MB)"
                f" and {texts['csv'].name} ({texts['csv'].stat().st_size / 1e6:,.0f} MB)"
                f" in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        os.sync() if hasattr(os, "sync") else None

        runs = [
            (
                "exponential, 1000 samples (fixed cost)",
                "exponential",
                small,
                300.0,
                "baseline",
            )
        ]
        runs.append(("exponential, big file", "exponential", big, 600.0, "exponential"))
        if texts:
            runs.append(("exponential, .txt", "exponential", texts["txt"], 600.0, "text_txt"))
            runs.append(("exponential, .csv --column value", "exponential", texts["csv"], 600.0, "text_csv"))
        if not args.no_gamma:
            runs.append(
                (
                    "gamma, 1000 samples (fixed cost)",
                    "gamma",
                    small,
                    300.0,
                    "gamma_baseline",
                )
            )
            runs.append(("gamma, big file", "gamma", big, GAMMA_LIMIT_S, "gamma"))
        print()
        print(f"{'command':<40} {'wall (s)':>9} {'peak RSS (MB)':>14} {'anon/file (MB)':>15}  result")
        text_target_mb = TEXT_RSS_FACTOR * 8 * args.text_n / 2**20
        for label, model, path, limit, key in runs:
            extra = ("--column", "value") if key == "text_csv" else ()
            r = run_fit(model, path, limit, extra)
            results[key] = r
            if "timeout" in r:
                print(
                    f"{label:<40} {'> ' + format(limit, '.0f'):>9} {'-':>14} {'-':>15}  "
                    f"did not finish within {limit:.0f} s (killed)",
                    flush=True,
                )
                continue
            rss = "?" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
            if r["returncode"] != 0:
                verdict = f"ERROR (exit {r['returncode']}): {(r['error'] or '').strip()[-200:]}"
            elif key.startswith("text_"):
                base = results["baseline"].get("peak_rss_mb")
                r["rss_above_fixed_mb"] = (
                    None if base is None or r["peak_rss_mb"] is None else r["peak_rss_mb"] - base
                )
                ok_text = r["rss_above_fixed_mb"] is not None and r["rss_above_fixed_mb"] < text_target_mb
                verdict = (
                    ("PASS" if ok_text else "FAIL")
                    + f" (target < {text_target_mb:.0f} MB above the fixed cost:"
                    + f" {r['rss_above_fixed_mb']:.0f} MB); n = {r['n']:,}, "
                    + ", ".join(f"{k} = {v:.10g}" for k, v in (r["estimates"] or {}).items())
                )
            elif path is big:
                ok_rss = r["peak_rss_mb"] is not None and r["peak_rss_mb"] < RSS_TARGET_MB
                verdict = (
                    ("PASS" if ok_rss else "FAIL")
                    + f" (target < {RSS_TARGET_MB:.0f} MB); n = {r['n']:,}, "
                    + ", ".join(f"{k} = {v:.10g}" for k, v in (r["estimates"] or {}).items())
                )
            else:
                verdict = "(reference)"
            split = (
                "?"
                if r["sampled_peak_anon_mb"] is None
                else f"{r['sampled_peak_anon_mb']:.0f} / {r['sampled_peak_file_mb'] or 0:.0f}"
            )
            print(
                f"{label:<40} {r['wall_s']:>9.2f} {rss:>14} {split:>15}  {verdict}",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"\ndeleted {tmp}")

    e = results.get("exponential", {})
    ok = e.get("returncode") == 0 and e.get("peak_rss_mb") is not None and e["peak_rss_mb"] < RSS_TARGET_MB
    text_ok = all(
        results[k].get("returncode") == 0
        and results[k].get("rss_above_fixed_mb") is not None
        and results[k]["rss_above_fixed_mb"] < TEXT_RSS_FACTOR * 8 * args.text_n / 2**20
        for k in ("text_txt", "text_csv")
        if k in results
    )
    g = results.get("gamma")
    if g is not None:
        if "timeout" in g:
            print(f"gamma: did not finish within {GAMMA_LIMIT_S:.0f} s")
        elif g.get("returncode") == 0:
            print(
                f"gamma (numeric): {g['wall_s']:.1f} s, peak RSS {g['peak_rss_mb']:.0f} MB "
                f"({'below' if g['peak_rss_mb'] < RSS_TARGET_MB else 'ABOVE'} {RSS_TARGET_MB:.0f} MB)"
            )
    print(f"target (exponential peak RSS < {RSS_TARGET_MB:.0f} MB): {'PASS' if ok else 'FAIL'}")
    if args.text_n > 0:
        print(
            f"target (text: < {TEXT_RSS_FACTOR:g} x 8 bytes a row above the fixed cost): "
            f"{'PASS' if text_ok else 'FAIL'}"
        )
    if args.json_out:
        payload = {
            **environment(revision),
            "n": args.n,
            "seed": args.seed,
            "target_rss_mb": RSS_TARGET_MB,
            "gamma_limit_s": GAMMA_LIMIT_S,
            "text_n": args.text_n,
            "text_rss_factor": TEXT_RSS_FACTOR,
            "results": results,
            "pass": ok and text_ok,
        }
        write_json(args.json_out, payload)
    return 0 if ok and text_ok else 1


if __name__ == "__main__":
    sys.exit(main())
