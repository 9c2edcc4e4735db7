"""Start-up time of ``symmle --help`` and ``symmle list``.

Usage::

    python benchmarks/bench_cli_startup.py [--runs N] [--json OUT]

Each command is run as a subprocess N times (default 10) after one discarded
warm-up run, and the median wall time is compared with the target of 0.5 s.
Commands measured: ``python -m symmle --help`` and ``python -m symmle list``,
and the same through the installed ``symmle`` console script if one is on
PATH.

It also shows that these commands never import SymPy, NumPy or SciPy:

* the top entries of ``python -X importtime -c "import symmle.cli"``;
* a fresh interpreter that imports ``symmle.cli``, runs ``list`` and
  ``--help`` in-process through click's ``CliRunner`` and asserts that
  ``sympy`` (and ``numpy``, ``scipy``) are not in ``sys.modules``.

Exit status 0 if every check passes, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

ROOT = Path(__file__).resolve().parent.parent

TARGET = 0.5  # seconds, median wall time
HEAVY = ("sympy", "numpy", "scipy")

_IN_PROCESS_CHECK = """
import json, sys
import symmle.cli
after_import = sorted(m for m in HEAVY if m in sys.modules)
from click.testing import CliRunner
runner = CliRunner()
results = {}
for args in (["list"], ["--help"], ["list", "--json"]):
    r = runner.invoke(symmle.cli.cli, args)
    results[" ".join(args)] = {"exit_code": r.exit_code, "lines": len(r.output.splitlines()),
                               "exception": repr(r.exception) if r.exception else None}
after_run = sorted(m for m in HEAVY if m in sys.modules)
assert "sympy" not in sys.modules, "sympy imported"
print(json.dumps({"after_import": after_import, "after_run": after_run, "results": results}))
""".replace("HEAVY", repr(HEAVY))


def _env() -> dict[str, str]:
    """Environment of the children: the source checkout importable."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    return env


def time_command(cmd: list[str], runs: int, env: dict[str, str] | None) -> dict:
    """Median, min and max wall time of ``cmd`` over ``runs`` runs (one warm-up discarded)."""
    samples = []
    codes = set()
    lines = set()
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT, check=False)
        elapsed = time.perf_counter() - t0
        codes.add(proc.returncode)
        lines.add(len(proc.stdout.splitlines()))
        if i:
            samples.append(elapsed)
    return {
        "command": cmd,
        "samples": samples,
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "exit_codes": sorted(codes),
        "output_lines": sorted(lines),
    }


def import_time(top: int) -> dict:
    """Parse ``python -X importtime -c "import symmle.cli"``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import symmle.cli"],
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
        cwd=ROOT,
    )
    entries = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|", 2)
        entries.append(
            {
                "module": name.strip(),
                "self_us": int(self_us),
                "cumulative_us": int(cum_us),
            }
        )
    modules = {e["module"] for e in entries}
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    total_us = sum(e["self_us"] for e in entries)
    return {
        "returncode": proc.returncode,
        "modules": len(entries),
        "total_self_ms": total_us / 1000,
        "top": sorted(entries, key=lambda e: -e["cumulative_us"])[:top],
        "heavy_imported": heavy,
    }


def in_process_check() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS_CHECK],
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "error": f"exit {proc.returncode}: {tail}"}
    out = json.loads(lines[-1])
    out["ok"] = not out["after_run"] and all(r["exit_code"] == 0 for r in out["results"].values())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    ap.add_argument("--top", type=int, default=15, help="import-time entries to show (default 15)")
    add_json_option(ap)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    print(
        f"symmle CLI start-up benchmark: median of {args.runs} runs (1 warm-up discarded), "
        f"target < {TARGET:g} s"
    )
    revision = git_revision()
    print(environment_line(revision))
    print()

    # ``python -m symmle`` runs the source checkout (ROOT on PYTHONPATH); the
    # console script runs whatever package it was installed with, so it gets
    # the unmodified environment.
    sys.path.insert(0, str(ROOT))
    from symmle.model.catalogue import family_names

    n_families = len(family_names("scalar"))
    checkout, inherited = _env(), dict(os.environ)
    commands: list[tuple[str, list[str], dict[str, str], int]] = [
        (
            "python -m symmle --help",
            [sys.executable, "-m", "symmle", "--help"],
            checkout,
            1,
        ),
        (
            "python -m symmle list",
            [sys.executable, "-m", "symmle", "list"],
            checkout,
            n_families,
        ),
    ]
    script = shutil.which("symmle")
    if script:
        commands += [
            ("symmle --help", [script, "--help"], inherited, 1),
            ("symmle list", [script, "list"], inherited, n_families),
        ]
    baseline = (
        "python -c pass (baseline)",
        [sys.executable, "-c", "pass"],
        inherited,
        0,
    )

    ok = True
    timings = {}
    print(f"{'command':<28}  {'median':>7}  {'min':>7}  {'max':>7}  result")
    print(f"{'-' * 28}  -------  -------  -------  ------")
    for label, cmd, env, min_lines in [*commands, baseline]:
        t = time_command(cmd, args.runs, env)
        timings[label] = t
        if cmd is baseline[1]:
            verdict = "(reference)"
        else:
            short = min(t["output_lines"]) < min_lines
            passed = t["median"] < TARGET and t["exit_codes"] == [0] and not short
            ok &= passed
            verdict = "PASS" if passed else "FAIL"
            if t["exit_codes"] != [0]:
                verdict += f" (exit codes {t['exit_codes']})"
            if short:
                verdict += f" (printed {min(t['output_lines'])} lines, expected >= {min_lines})"
        print(
            f"{label:<28}  {t['median']:7.3f}  {t['min']:7.3f}  {t['max']:7.3f}  {verdict}",
            flush=True,
        )
    if script:
        print(f"(console script: {script})")
    else:
        print("(no 'symmle' console script on PATH; install with 'pip install .' to measure it)")

    print()
    imp = import_time(args.top)
    print(
        f'python -X importtime -c "import symmle.cli": {imp["modules"]} modules, '
        f"{imp['total_self_ms']:.1f} ms of import time in total; top {args.top} by cumulative time:"
    )
    print(f"  {'cumulative ms':>13}  {'self ms':>7}  module")
    for e in imp["top"]:
        print(f"  {e['cumulative_us'] / 1000:13.1f}  {e['self_us'] / 1000:7.1f}  {e['module']}")
    heavy_ok = imp["returncode"] == 0 and not imp["heavy_imported"]
    ok &= heavy_ok
    print(
        f"  [{'PASS' if heavy_ok else 'FAIL'}] none of {', '.join(HEAVY)} imported by 'import symmle.cli'"
        + (f" (imported: {', '.join(imp['heavy_imported'][:5])} ...)" if imp["heavy_imported"] else "")
    )

    print()
    chk = in_process_check()
    ok &= chk["ok"]
    if "error" in chk:
        print(f"  [FAIL] in-process CliRunner check: {chk['error']}")
    else:
        runs = ", ".join(f"'{k}' exit {v['exit_code']}" for k, v in chk["results"].items())
        print(f"  in-process CliRunner: {runs}")
        print(
            f"  heavy modules after 'import symmle.cli': {chk['after_import'] or 'none'}; "
            f"after running the commands: {chk['after_run'] or 'none'}"
        )
        print(
            f"  [{'PASS' if chk['ok'] else 'FAIL'}] 'sympy' not in sys.modules after list/--help in-process"
        )

    print()
    print(f"overall: {'PASS' if ok else 'FAIL'}")

    if args.json_out:
        payload = {
            "schema": 1,
            "date": time.strftime("%Y-%m-%d"),
            **environment(revision),
            "runs": args.runs,
            "target_s": TARGET,
            "timings": timings,
            "import_time": imp,
            "in_process": chk,
            "pass": ok,
        }
        write_json(args.json_out, payload)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
