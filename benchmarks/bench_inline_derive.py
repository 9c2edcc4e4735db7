"""Wall time of ``symmle derive --pdf ...`` for two-parameter inline models (issue 17).

Usage::

    python benchmarks/bench_inline_derive.py [--repeat R] [--json OUT] [--family NAME ...]

A user who types an inline density (``symmle derive --pdf ... --var x
--support ... --param ...``) waits for the whole derivation: likelihood,
score equations, Fisher information (with its numerical cross-check) and the
text report.  Each measurement is one fresh Python process that imports
symmle, SymPy, NumPy and SciPy (and the modules SymPy loads lazily on its
first ``simplify``) *before* the clock starts, then runs the ``derive``
command in-process through click's ``CliRunner`` with the default budget
(``--timeout 20``) and text output.  What is timed is that command alone.

Beside it, for reference, the time ``scipy.stats`` takes to *fit* the same
family to 1000 seeded samples (``dist.fit`` with the location or scale fixed
as in the inline model; ``scipy.stats.fit`` with bounds for the Zipf law).
SciPy has no derivation to do, so the ratio only says how long a user waits
for symmle's formulas compared with the tool they would otherwise use.

Target: every model's median derive time at most 5 s.  The table also gives
how many Fisher information entries were found in closed form and how many
warnings were issued.  Exit status 0 if every model meets the target and no
derivation fails, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import ROOT, add_family_option, add_json_option, environment, environment_line, write_json
from _common import revision as git_revision

TARGET = 5.0  # seconds, median derive time per model

_ZIPF_NORM = "+".join(f"{j}**(-s)" for j in range(1, 11))

#: name -> (symmle derive arguments, SciPy reference: (distribution, true parameters, fit keywords))
MODELS: dict[str, tuple[list[str], tuple[str, dict, dict] | None]] = {
    "normal": (
        ["--pdf", "exp(-(x-mu)**2/(2*s**2))/(sqrt(2*pi)*s)", "--support=-oo,oo"]
        + ["--param", "mu:real", "--param", "s:positive"],
        ("norm", {"loc": 1.0, "scale": 2.0}, {}),
    ),
    "gumbel": (
        ["--pdf", "exp(-(x-m)/b - exp(-(x-m)/b))/b", "--support=-oo,oo"]
        + ["--param", "m:real", "--param", "b:positive"],
        ("gumbel_r", {"loc": 1.0, "scale": 2.0}, {}),
    ),
    "logistic": (
        ["--pdf", "exp(-(x-m)/s)/(s*(1+exp(-(x-m)/s))**2)", "--support=-oo,oo"]
        + ["--param", "m:real", "--param", "s:positive"],
        ("logistic", {"loc": 1.0, "scale": 2.0}, {}),
    ),
    "log-logistic": (
        ["--pdf", "(b/a)*(x/a)**(b-1)/(1+(x/a)**b)**2", "--support", "0,oo"]
        + ["--param", "a:positive", "--param", "b:positive"],
        ("fisk", {"c": 3.0, "scale": 2.0}, {"floc": 0}),
    ),
    "burr12 (c, k)": (
        ["--pdf", "c*k*x**(c-1)/(1+x**c)**(k+1)", "--support", "0,oo"]
        + ["--param", "c:positive", "--param", "k:positive"],
        ("burr12", {"c": 2.0, "d": 3.0}, {"floc": 0, "fscale": 1}),
    ),
    "burr12 (scale, c; k=2)": (
        ["--pdf", "c*k/lam*(x/lam)**(c-1)/(1+(x/lam)**c)**(k+1)", "--support", "0,oo"]
        + ["--param", "lam:positive", "--param", "c:positive", "--const", "k:positive=2"],
        ("burr12", {"c": 2.0, "d": 2.0, "scale": 1.5}, {"fd": 2, "floc": 0}),
    ),
    "kumaraswamy": (
        ["--pdf", "a*b*x**(a-1)*(1-x**a)**(b-1)", "--support", "0,1"]
        + ["--param", "a:positive", "--param", "b:positive"],
        None,
    ),
    "skew-normal (scale, shape)": (
        ["--pdf", "exp(-x**2/(2*w**2))/(w*sqrt(2*pi))*(1+erf(a*x/(w*sqrt(2))))", "--support=-oo,oo"]
        + ["--param", "w:positive", "--param", "a:real"],
        ("skewnorm", {"a": 3.0, "scale": 2.0}, {"floc": 0}),
    ),
    "student-t (loc, scale; nu known)": (
        [
            "--pdf",
            "gamma((nu+1)/2)/(sqrt(nu*pi)*s*gamma(nu/2))*(1+((x-m)/s)**2/nu)**(-(nu+1)/2)",
            "--support=-oo,oo",
        ]
        + ["--param", "m:real", "--param", "s:positive", "--const", "nu:positive=5"],
        ("t", {"df": 5.0, "loc": 1.0, "scale": 2.0}, {"fdf": 5}),
    ),
    "weibull": (
        ["--pdf", "k/lam*(x/lam)**(k-1)*exp(-(x/lam)**k)", "--support", "0,oo"]
        + ["--param", "lam:positive", "--param", "k:positive"],
        ("weibull_min", {"c": 1.5, "scale": 2.0}, {"floc": 0}),
    ),
    "gamma": (
        ["--pdf", "b**a*x**(a-1)*exp(-b*x)/gamma(a)", "--support", "0,oo"]
        + ["--param", "a:positive", "--param", "b:positive"],
        ("gamma", {"a": 2.5, "scale": 0.5}, {"floc": 0}),
    ),
    "lognormal": (
        ["--pdf", "exp(-(log(x)-mu)**2/(2*s**2))/(x*s*sqrt(2*pi))", "--support", "0,oo"]
        + ["--param", "mu:real", "--param", "s:positive"],
        ("lognorm", {"s": 0.5, "scale": 2.0}, {"floc": 0}),
    ),
    "cauchy": (
        ["--pdf", "1/(pi*g*(1+((x-m)/g)**2))", "--support=-oo,oo"]
        + ["--param", "m:real", "--param", "g:positive"],
        ("cauchy", {"loc": 1.0, "scale": 2.0}, {}),
    ),
    "laplace": (
        ["--pdf", "exp(-Abs(x-m)/b)/(2*b)", "--support=-oo,oo"]
        + ["--param", "m:real", "--param", "b:positive"],
        ("laplace", {"loc": 1.0, "scale": 2.0}, {}),
    ),
    "zipf on 1..10": (
        ["--pdf", f"k**(-s)/({_ZIPF_NORM})", "--var", "k", "--discrete", "--support", "1,10"]
        + ["--param", "s:positive"],
        ("zipfian", {"a": 1.3, "n": 10}, {}),
    ),
}

# SymPy modules SymPy imports lazily on the first simplify()/lambdify() of a
# process; imported before the clock starts, as in bench_derive.py.
SYMPY_LAZY = (
    "sympy.physics.units",
    "sympy.codegen.ast",
    "sympy.tensor.tensor",
    "sympy.combinatorics",
    "sympy.sets.setexpr",
    "sympy.assumptions.wrapper",
)

_CHILD = """
import importlib, json, math, sys, time
import numpy, scipy.integrate, scipy.special, sympy
from click.testing import CliRunner
import symmle.cli
import symmle.symbolic.derivation as derivation
for _mod in sys.argv[2].split():
    importlib.import_module(_mod)
found = []
_derive = derivation.derive
def _recording(*a, **k):
    d = _derive(*a, **k)
    found.append(d)
    return d
derivation.derive = _recording
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
result = CliRunner().invoke(symmle.cli.cli, ["derive", *args])
seconds = time.perf_counter() - t0
row = {"seconds": seconds, "exit_code": result.exit_code,
       "error": None if result.exit_code == 0 else (result.output.strip().splitlines() or ["?"])[-1]}
if found:
    d = found[-1]
    entries = list(d.fisher)
    row["fisher_entries"] = len(entries)
    row["fisher_found"] = sum(1 for e in entries if e != sympy.nan)
    row["fisher"] = str(d.fisher.tolist())
    row["warnings"] = list(d.warnings)
print(json.dumps(row))
"""

_SCIPY = """
import json, sys, time
import numpy as np
from scipy import stats
name, true, kw = json.loads(sys.argv[1])
dist = getattr(stats, name)
x = dist(**true).rvs(size=1000, random_state=np.random.default_rng(1))
if name == "zipfian":
    fit = lambda: stats.fit(dist, x, bounds={"a": (0.01, 10), "n": (10, 10)})
else:
    fit = lambda: dist.fit(x, **kw)
fit()
times = []
for _ in range(3):
    t0 = time.perf_counter(); fit(); times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": sorted(times)[1]}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    # deriving is measured, not reading back a cache of derivations (where symmle has one)
    env["SYMMLE_NO_CACHE"] = "1"
    return env


def _child(code: str, args: list[str], timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
        cwd=ROOT,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"child exited with {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("sympy", "numpy", "scipy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh-process runs per model (default 3)")
    ap.add_argument("--timeout", type=float, default=600.0, help="kill a child after this many seconds")
    ap.add_argument("--no-scipy", action="store_true", help="skip the SciPy reference fits")
    add_json_option(ap)
    add_family_option(ap, choices=list(MODELS))
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    names = [n for n in MODELS if not args.family or n in args.family]

    versions = _versions()
    revision = git_revision()
    print(f"symmle derive --pdf benchmark: {len(names)} inline models, {args.repeat} fresh process(es) each")
    print(environment_line(revision, **versions))
    print()
    width = max(len(n) for n in names)
    head = f"{'model':<{width}}  {'median':>7}  {'max':>7}  {'scipy ms':>9}  {'ratio':>7}  closed  warn  runs"
    print(head)
    print("-" * len(head))

    results: dict[str, dict] = {}
    for name in names:
        cli_args, reference = MODELS[name]
        samples, errors, last = [], [], {}
        for _ in range(args.repeat):
            try:
                out = _child(_CHILD, [json.dumps(cli_args), " ".join(SYMPY_LAZY)], args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc).splitlines()[0])
                continue
            if out["error"]:
                errors.append(out["error"])
            samples.append(out["seconds"])
            last = out
        scipy_s = None
        if reference is not None and not args.no_scipy:
            try:
                scipy_s = _child(_SCIPY, [json.dumps(list(reference))], args.timeout)["seconds"]
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(f"scipy reference: {str(exc).splitlines()[0]}")
        med = statistics.median(samples) if samples else None
        mx = max(samples) if samples else None
        results[name] = {
            "args": cli_args,
            "samples": samples,
            "median": med,
            "max": mx,
            "scipy_fit_s": scipy_s,
            "ratio_to_scipy": (med / scipy_s) if med is not None and scipy_s else None,
            "fisher_found": last.get("fisher_found"),
            "fisher_entries": last.get("fisher_entries"),
            "fisher": last.get("fisher"),
            "warnings": last.get("warnings", []),
            "errors": errors,
        }
        r = results[name]
        flag = f"  ERROR: {errors[0][:90]}" if errors else ("  > target" if med and med > TARGET else "")
        closed = f"{r['fisher_found']}/{r['fisher_entries']}" if r["fisher_entries"] else "  -"
        print(
            f"{name:<{width}}  {med if med is not None else float('nan'):7.2f}  "
            f"{mx if mx is not None else float('nan'):7.2f}  "
            + (f"{1e3 * scipy_s:9.2f}  {r['ratio_to_scipy']:7.0f}" if scipy_s else f"{'-':>9}  {'-':>7}")
            + f"  {closed:>6}  {len(r['warnings']):>4}  "
            + " ".join(f"{s:.2f}" for s in samples)
            + flag,
            flush=True,
        )

    failed = sorted(n for n, r in results.items() if r["errors"] or r["median"] is None)
    over = sorted(n for n, r in results.items() if r["median"] is not None and r["median"] > TARGET)
    ok = not failed and not over
    print()
    print(
        f"  [{'PASS' if ok else 'FAIL'}] every model's median derive time <= {TARGET:g} s"
        + ("  (over: " + ", ".join(f"{n} {results[n]['median']:.1f} s" for n in over) + ")" if over else "")
        + (f"  (errors: {', '.join(failed)})" if failed else "")
    )
    if args.json_out:
        write_json(
            args.json_out,
            {
                "schema": 1,
                "date": time.strftime("%Y-%m-%d"),
                **environment(revision),
                "versions": versions,
                "repeat": args.repeat,
                "targets": {"median_derive_s": TARGET},
                "models": results,
                "pass": ok,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
