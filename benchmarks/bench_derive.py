"""Wall time of ``symmle.derive(name)`` for every catalogue family.

Usage::

    python benchmarks/bench_derive.py [--repeat R] [--json OUT] [--family NAME ...]

Each measurement runs in a fresh subprocess, so SymPy's cache (and any other
per-process memo) never flatters a later measurement.  The child imports
symmle, SymPy and the derivation pipeline (``symmle.symbolic.derivation``, which pulls
in NumPy and SciPy) *before* starting the clock, so import time is excluded;
what is timed is ``symmle.derive(name)`` alone, numerical verification
included.  SymPy also imports a few of its own modules lazily on the first
``simplify()``/``lambdify()`` of a process (``sympy.physics.units``,
``sympy.codegen.ast``, ...; about 0.15 s); these are pre-imported as well
unless ``--lazy-imports-in-timing`` is given.

After the per-family runs, the whole catalogue is derived sequentially in ONE
process (imports excluded the same way) and that total is reported too: it is
what a user deriving many models in one session sees, with SymPy's cache warm
from the earlier families.

Targets:

* at most 2 s median per family (every family's median must meet it);
* at most 30 s for the whole catalogue (the sum of the per-family medians).

Exit status 0 if both targets are met and every derivation succeeded, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import add_family_option, add_json_option, environment, environment_line
from _common import revision as git_revision

ROOT = Path(__file__).resolve().parent.parent

PER_FAMILY_TARGET = 2.0  # seconds, median per family
CATALOGUE_TARGET = 30.0  # seconds, whole catalogue

# SymPy modules that SymPy itself imports lazily on the first simplify() or
# code printing (lambdify) of a process: about 0.15 s, paid once by the first
# derive() of a process.  They are imports, so by default they are imported
# before the clock starts too (--lazy-imports-in-timing keeps them in).
SYMPY_LAZY = (
    "sympy.physics.units",
    "sympy.codegen.ast",
    "sympy.tensor.tensor",
    "sympy.combinatorics",
    "sympy.sets.setexpr",
    "sympy.assumptions.wrapper",
)

# Imports happen before the clock starts; only derive() is timed.
_PRELUDE = """
import importlib, json, os, sys, time
t0 = time.perf_counter()
import sympy
import symmle
import symmle.symbolic.derivation
import_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
for _mod in os.environ.get("SYMMLE_BENCH_PREIMPORT", "").split():
    try:
        importlib.import_module(_mod)
    except ImportError:
        pass
lazy_import_seconds = time.perf_counter() - t0
import_seconds += lazy_import_seconds
"""

_CHILD_ONE = (
    _PRELUDE
    + """
name = sys.argv[1]
error = None
t0 = time.perf_counter()
try:
    symmle.derive(name)
except BaseException as exc:  # report, never hide
    error = f"{type(exc).__name__}: {exc}"
seconds = time.perf_counter() - t0
print(json.dumps({"name": name, "seconds": seconds, "import_seconds": import_seconds,
                  "lazy_import_seconds": lazy_import_seconds, "error": error}))
"""
)

_CHILD_ALL = (
    _PRELUDE
    + """
names = sys.argv[1:]
rows = []
t_all = time.perf_counter()
for name in names:
    error = None
    t0 = time.perf_counter()
    try:
        symmle.derive(name)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    rows.append({"name": name, "seconds": time.perf_counter() - t0, "error": error})
total = time.perf_counter() - t_all
print(json.dumps({"rows": rows, "total": total, "import_seconds": import_seconds}))
"""
)


def _env(preimport: bool) -> dict[str, str]:
    """Environment of the children: the source checkout importable."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    env["SYMMLE_BENCH_PREIMPORT"] = " ".join(SYMPY_LAZY) if preimport else ""
    env["SYMMLE_NO_CACHE"] = "1"  # the time to derive, not to read back the cache of derivations
    return env


def _run_child(code: str, args: list[str], timeout: float, preimport: bool = True) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env=_env(preimport),
        cwd=ROOT,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"child exited with {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def family_names() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from symmle.model.catalogue import family_names as names

    return names("scalar")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("sympy", "numpy", "scipy", "mpmath"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _fmt(seconds: float | None) -> str:
    return "   -   " if seconds is None else f"{seconds:7.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="fresh-process runs per family (default 3)",
    )
    add_json_option(ap)
    add_family_option(ap)
    ap.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="kill a child after this many seconds (default 600)",
    )
    ap.add_argument(
        "--lazy-imports-in-timing",
        action="store_true",
        help="do not pre-import the SymPy modules SymPy loads lazily on first use; "
        "their ~0.15 s then counts in each fresh-process timing",
    )
    ap.add_argument(
        "--no-sequential",
        action="store_true",
        help="skip the one-process run of the whole catalogue",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    names = family_names("scalar")
    if args.family:
        unknown = sorted(set(args.family) - set(names))
        if unknown:
            ap.error(f"unknown families: {', '.join(unknown)}")
        names = [n for n in names if n in args.family]

    print(f"symmle derive benchmark: {len(names)} families, {args.repeat} fresh process(es) each")
    versions = _versions()
    revision = git_revision()
    print(environment_line(revision, **versions))
    print()

    results: dict[str, dict] = {}
    width = max(len(n) for n in names)
    print(f"{'family':<{width}}  {'median':>7}  {'max':>7}  {'import':>7}  runs")
    print(f"{'-' * width}  -------  -------  -------  ----")
    for name in names:
        samples, imports, lazies, errors = [], [], [], []
        for _ in range(args.repeat):
            try:
                out = _run_child(_CHILD_ONE, [name], args.timeout, not args.lazy_imports_in_timing)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc).splitlines()[0])
                continue
            if out["error"]:
                errors.append(out["error"])
            samples.append(out["seconds"])
            imports.append(out["import_seconds"])
            lazies.append(out["lazy_import_seconds"])
        med = statistics.median(samples) if samples else None
        mx = max(samples) if samples else None
        imp = statistics.median(imports) if imports else None
        results[name] = {
            "samples": samples,
            "median": med,
            "max": mx,
            "import_median": imp,
            "lazy_import_median": statistics.median(lazies) if lazies else None,
            "errors": errors,
        }
        runs = " ".join(f"{s:.2f}" for s in samples)
        flag = ""
        if errors:
            flag = f"  ERROR: {errors[0][:100]}"
        elif med is not None and med > PER_FAMILY_TARGET:
            flag = "  > target"
        print(
            f"{name:<{width}}  {_fmt(med)}  {_fmt(mx)}  {_fmt(imp)}  {runs}{flag}",
            flush=True,
        )

    medians = {n: r["median"] for n, r in results.items() if r["median"] is not None}
    failed = sorted(n for n, r in results.items() if r["errors"] or r["median"] is None)
    over = sorted(
        (n for n, m in medians.items() if m > PER_FAMILY_TARGET),
        key=lambda n: -medians[n],
    )
    median_over_families = statistics.median(medians.values()) if medians else None
    total_of_medians = sum(medians.values())
    slowest = max(medians, key=medians.get) if medians else None

    sequential = None
    if not args.no_sequential:
        print()
        print("whole catalogue, sequentially in one process ...", flush=True)
        try:
            sequential = _run_child(
                _CHILD_ALL,
                names,
                args.timeout * max(1, len(names)),
                not args.lazy_imports_in_timing,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            sequential = {"error": str(exc).splitlines()[0]}

    print()
    print("summary")
    print(f"  median over families        {_fmt(median_over_families)} s")
    if slowest:
        print(f"  slowest family (median)     {_fmt(medians[slowest])} s  ({slowest})")
    print(f"  total of medians            {_fmt(total_of_medians)} s  ({len(medians)} families)")
    imps = [r["import_median"] for r in results.values() if r["import_median"] is not None]
    lazy = [r["lazy_import_median"] for r in results.values() if r["lazy_import_median"] is not None]
    if imps:
        lazy_note = (
            ", none pre-imported: they are IN the timings"
            if args.lazy_imports_in_timing
            else ", pre-imported"
        )
        print(
            f"  imports per fresh process   {_fmt(statistics.median(imps))} s  "
            f"(excluded; of which SymPy's lazy imports {statistics.median(lazy):.3f} s{lazy_note})"
        )
    if sequential is not None:
        if "error" in sequential:
            print(f"  one-process total           FAILED: {sequential['error']}")
        else:
            seq_errors = [r for r in sequential["rows"] if r["error"]]
            slow = max(sequential["rows"], key=lambda r: r["seconds"])
            print(
                f"  one-process total           {_fmt(sequential['total'])} s"
                f"  (slowest {slow['name']} {slow['seconds']:.3f} s; "
                f"imports {sequential['import_seconds']:.2f} s excluded)"
            )
            for r in seq_errors:
                print(f"    ERROR in one-process run: {r['name']}: {r['error'][:100]}")
    print()

    per_family_ok = not over and not failed
    catalogue_ok = total_of_medians <= CATALOGUE_TARGET and not failed
    print(
        f"  [{'PASS' if per_family_ok else 'FAIL'}] every family's median <= {PER_FAMILY_TARGET:g} s"
        + (f"  (over: {', '.join(f'{n} {medians[n]:.2f} s' for n in over)})" if over else "")
        + (f"  (errors: {', '.join(failed)})" if failed else "")
    )
    median_ok = median_over_families is not None and median_over_families <= PER_FAMILY_TARGET
    print(
        f"  [{'PASS' if median_ok else 'FAIL'}]"
        f" median over families <= {PER_FAMILY_TARGET:g} s (informational)"
    )
    print(
        f"  [{'PASS' if catalogue_ok else 'FAIL'}] whole catalogue (total of medians) "
        f"<= {CATALOGUE_TARGET:g} s"
    )
    if sequential is not None and "error" not in sequential:
        seq_ok = sequential["total"] <= CATALOGUE_TARGET and not any(r["error"] for r in sequential["rows"])
        print(
            f"  [{'PASS' if seq_ok else 'FAIL'}] whole catalogue in one process <= {CATALOGUE_TARGET:g} s "
            "(informational)"
        )

    if args.json_out:
        payload = {
            "schema": 1,
            "date": time.strftime("%Y-%m-%d"),
            **environment(revision),
            "versions": versions,
            "repeat": args.repeat,
            "targets": {
                "per_family_median_s": PER_FAMILY_TARGET,
                "catalogue_s": CATALOGUE_TARGET,
            },
            "families": results,
            "median_over_families": median_over_families,
            "total_of_medians": total_of_medians,
            "slowest": slowest,
            "sequential": sequential,
            "pass": {"per_family": per_family_ok, "catalogue": catalogue_ok},
        }
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")

    return 0 if per_family_ok and catalogue_ok else 1


if __name__ == "__main__":
    sys.exit(main())
