"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def revision() -> str:
    """``git describe`` of the checkout, ``+dirty`` if symmle/ or derivations/ has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "symmle", "derivations"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def environment(revision: str) -> dict[str, object]:
    """Where a measurement was made: revision, Python, platform, CPU count."""
    return {
        "revision": revision,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def environment_line(revision: str, **versions: str) -> str:
    """The line each benchmark prints about where it ran.

    ``symmle REV; python X on PLATFORM, N CPUs; numpy V``
    """
    line = (
        f"symmle {revision}; python {platform.python_version()} on {platform.platform()}, "
        f"{os.cpu_count()} CPUs"
    )
    return line + ("; " + ", ".join(f"{k} {v}" for k, v in versions.items()) if versions else "")


def write_json(path: str, payload: dict) -> None:
    """Write a benchmark's measurements as indented JSON and say so."""
    Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def add_json_option(ap) -> None:
    """``--json OUT``: write all measurements to OUT (read back as ``args.json_out``)."""
    ap.add_argument("--json", dest="json_out", metavar="OUT", help="write all measurements to OUT as JSON")


def add_family_option(ap, choices=None) -> None:
    """``--family NAME`` (repeatable): measure only these families."""
    ap.add_argument("--family", action="append", choices=choices, help="only this family (repeatable)")
