"""Start-to-finish time of ``symmle fit normal x.npy``, cold and warm, against NumPy + SciPy.

Usage::

    python benchmarks/bench_fit_start.py [--rows N] [--runs N] [--json OUT]

What a user would otherwise run is ``python -c`` loading the same file with
NumPy and calling ``scipy.stats.norm.fit``.  Each command is a fresh process,
run ``--runs`` times (default 7) after one discarded warm-up, the commands
taking turns so that a change in the machine's load touches them all alike:

* ``reference``: ``python -c "import numpy as np, scipy.stats as st;
  st.norm.fit(np.load(PATH))"``;
* ``symmle warm``: ``python -m symmle fit normal PATH`` with the derivation
  in the cache (the cache directory is filled by the warm-up run);
* ``symmle cold``: the same with an empty cache directory at every run (it
  derives, and stores the derivation);
* ``symmle --no-cache``: derives at every run and stores nothing.

The table gives the median wall time and the median CPU time (user + system)
of each, and their ratios to the reference.  The target is a warm start
within **1.5x** the reference's median wall time.  The three symmle runs
must print the same thing.  Then the import time of the command line
(``python -X importtime -m symmle.cli``) and of the warm fit, by module.

Exit status 0 if the target is met and the outputs agree, else 1.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

TARGET = 1.5  # warm symmle / reference, median wall time


def _env(cache_dir: Path | None) -> dict[str, str]:
    """The children's environment: the checkout importable, the given cache directory."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    env.pop("SYMMLE_NO_CACHE", None)
    if cache_dir is not None:
        env["SYMMLE_CACHE_DIR"] = str(cache_dir)
    return env


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, int]:
    """``(wall s, cpu s, stdout, exit code)`` of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout, proc.returncode


def _import_times(cmd: list[str], env: dict[str, str], top: int) -> dict:
    """Total and top modules (by cumulative time) of ``python -X importtime`` running ``cmd``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, env=env, cwd=ROOT
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|", 2)
        rows.append(
            {"module": name.strip(), "self_ms": int(self_us) / 1e3, "cumulative_ms": int(cum_us) / 1e3}
        )
    return {
        "modules": len(rows),
        "total_ms": sum(r["self_ms"] for r in rows),
        "top": sorted(rows, key=lambda r: -r["cumulative_ms"])[:top],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10**6, help="rows of the data file (default 1e6)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per command (default 7)")
    ap.add_argument("--top", type=int, default=12, help="import-time entries to show (default 12)")
    add_json_option(ap)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.rows < 2:
        ap.error("--runs must be at least 1 and --rows at least 2")

    import scipy

    revision = git_revision()
    print(
        f"symmle fit start-up benchmark: {args.rows:,} rows, median of {args.runs} runs "
        f"(1 warm-up discarded), target: warm <= {TARGET:g}x NumPy + SciPy"
    )
    print(environment_line(revision, numpy=np.__version__, scipy=scipy.__version__))
    print()

    work = Path(tempfile.mkdtemp(prefix="symmle-bench-fit-"))
    try:
        data = work / "x.npy"
        np.save(data, np.random.default_rng(20240611).normal(2.0, 3.0, args.rows))
        warm_dir = work / "warm-cache"
        python = sys.executable
        symmle_fit = [python, "-m", "symmle", "fit", "normal", str(data)]
        reference = [
            python,
            "-c",
            f"import numpy as np, scipy.stats as st; print(st.norm.fit(np.load({str(data)!r})))",
        ]
        commands = {
            "reference (NumPy + SciPy)": (reference, lambda: _env(None)),
            "symmle warm": (symmle_fit, lambda: _env(warm_dir)),
            "symmle cold": (symmle_fit, lambda: _env(Path(tempfile.mkdtemp(dir=work)))),
            "symmle --no-cache": ([*symmle_fit, "--no-cache"], lambda: _env(work / "unused")),
        }
        samples: dict[str, dict[str, list]] = {k: {"wall": [], "cpu": [], "out": set()} for k in commands}
        failed: dict[str, int] = {}
        for i in range(args.runs + 1):
            for label, (cmd, env) in commands.items():
                wall, cpu, out, code = _run(cmd, env())
                if code:
                    failed[label] = code
                if i:  # the first round is the warm-up (and fills the warm cache)
                    samples[label]["wall"].append(wall)
                    samples[label]["cpu"].append(cpu)
                    samples[label]["out"].add(out)
            print(f"  round {i}/{args.runs} done", flush=True)
        print()

        ref = samples["reference (NumPy + SciPy)"]
        ref_wall, ref_cpu = statistics.median(ref["wall"]), statistics.median(ref["cpu"])
        results = {}
        print(f"{'command':<27}  {'wall s':>7}  {'ratio':>6}  {'cpu s':>7}  {'ratio':>6}  {'min wall':>8}")
        print(f"{'-' * 27}  -------  ------  -------  ------  --------")
        for label, s in samples.items():
            wall, cpu = statistics.median(s["wall"]), statistics.median(s["cpu"])
            results[label] = {
                "wall_median_s": wall,
                "cpu_median_s": cpu,
                "wall_ratio": wall / ref_wall,
                "cpu_ratio": cpu / ref_cpu,
                "wall_samples_s": s["wall"],
                "cpu_samples_s": s["cpu"],
            }
            print(
                f"{label:<27}  {wall:7.3f}  {wall / ref_wall:5.2f}x  {cpu:7.3f}  {cpu / ref_cpu:5.2f}x  "
                f"{min(s['wall']):8.3f}"
            )
        outs = set().union(*(samples[k]["out"] for k in commands if k.startswith("symmle")))
        same = len(outs) == 1
        met = results["symmle warm"]["wall_ratio"] <= TARGET
        ok = met and same and not failed
        print()
        print(
            f"[{'PASS' if met else 'FAIL'}] warm symmle fit: {results['symmle warm']['wall_ratio']:.2f}x the "
            f"reference's wall time (target <= {TARGET:g}x; CPU {results['symmle warm']['cpu_ratio']:.2f}x)"
        )
        print(f"[{'PASS' if same else 'FAIL'}] warm, cold and --no-cache print the same fit")
        if failed:
            print(f"[FAIL] non-zero exit codes: {failed}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"(load average at the end: {load:.2f} on {os.cpu_count()} CPUs)")

        print()
        imports = {}
        for label, cmd, env in (
            ("python -X importtime -m symmle.cli", ["-m", "symmle.cli", "--help"], _env(None)),
            ("python -X importtime -m symmle fit normal x.npy (warm)", symmle_fit[1:], _env(warm_dir)),
        ):
            imp = _import_times(cmd, env, args.top)
            imports[label] = imp
            print(f"{label}: {imp['modules']} modules, {imp['total_ms']:.0f} ms of import time")
            print(f"  {'cumulative ms':>13}  {'self ms':>7}  module")
            for r in imp["top"]:
                print(f"  {r['cumulative_ms']:13.1f}  {r['self_ms']:7.1f}  {r['module']}")
        print()
        print(f"overall: {'PASS' if ok else 'FAIL'}")
        if args.json_out:
            write_json(
                args.json_out,
                {
                    "schema": 1,
                    "date": time.strftime("%Y-%m-%d"),
                    **environment(revision),
                    "rows": args.rows,
                    "runs": args.runs,
                    "target_ratio": TARGET,
                    "results": results,
                    "same_output": same,
                    "exit_codes": failed,
                    "imports": imports,
                    "pass": ok,
                },
            )
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
