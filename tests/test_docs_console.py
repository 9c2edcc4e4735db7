"""Every console example of the documentation runs and prints what the page shows.

A page's fenced blocks are replayed in order, in one fresh directory per page, as a reader would
type them:

* a ``console`` block holds commands (``$ `` lines) each followed by its expected output (stdout
  and stderr as a terminal shows them); ``...`` stands for any text, as in doctest's ``ELLIPSIS``,
  and a line that is only ``...`` for any number of lines;
* a ``python`` block without ``>>>`` is a script the reader runs first (it makes the data files
  that the next commands read);
* a block right after a line that is only a file name in backticks and a colon (`` `path`: ``)
  is that file's content, written to ``path``;
* a block right after ``<!-- docs-test: skip (why) -->`` is not run (it needs a repository
  checkout, say); every skip gives its reason.

Commands run under ``bash`` with this interpreter's ``bin`` directory first on ``PATH`` (so
``symmle`` and ``python`` are the ones under test) and a fresh derivation cache.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_FILE_LABEL = re.compile(r"^`([\w./-]+)`:\s*$")
_SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s*\((.+)\)\s*-->\s*$")
#: A command may take this long (a ``check`` or an inline derivation on a busy machine).
TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, text, line number and what precedes it."""

    lang: str
    text: str
    line: int
    file: str | None
    skip: str | None


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with the file label or skip marker just before each."""
    out = []
    for m in _BLOCK.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        label, skip = _FILE_LABEL.match(before), _SKIP.match(before)
        out.append(
            Block(
                m.group(1),
                m.group(2),
                text.count("\n", 0, m.start()) + 1,
                label.group(1) if label else None,
                skip.group(1) if skip else None,
            )
        )
    return out


def commands(block: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` pairs of a console block."""
    pairs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"console block starts with output, not a '$ ' command: {line!r}")
    return [(cmd, "\n".join(out)) for cmd, out in pairs]


def matches(expected: str, got: str) -> bool:
    """Whether ``got`` is what ``expected`` shows (trailing spaces ignored; ``...`` for any text)."""

    def norm(s: str) -> str:
        return "\n".join(line.rstrip() for line in s.splitlines()).strip("\n") + "\n"

    return doctest.OutputChecker().check_output(norm(expected), norm(got), doctest.ELLIPSIS)


def _pages() -> list[Path]:
    return [
        p
        for p in sorted([*DOCS.rglob("*.md"), ROOT / "README.md"])
        if "gallery" not in p.parts and any(b.lang == "console" for b in blocks(p.read_text("utf-8")))
    ]


PAGES = _pages()


def test_console_blocks_are_found():
    assert {p.name for p in PAGES} >= {"cli.md", "reference.md", "adding-a-family.md"}
    example = (
        "`a/b.toml`:\n\n```toml\nx = 1\n```\n<!-- docs-test: skip (needs git) -->\n```console\n$ ls\n```\n"
    )
    found = blocks(example)
    assert [(b.lang, b.file, b.skip) for b in found] == [
        ("toml", "a/b.toml", None),
        ("console", None, "needs git"),
    ]
    assert commands("$ a\nx\n...\n$ b\n") == [("a", "x\n..."), ("b", "")]
    assert matches("a\n...\nz", "a\nb\nc\nz\n") and not matches("a\nz", "a\nb\nz")
    assert matches("took ... s", "took 0.12 s") and not matches("x = 1", "x = 2")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_console_examples_run(page, tmp_path):
    """Replay the page's blocks in order; every command prints what the page shows."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "80",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "SYMMLE_CACHE_DIR": str(tmp_path / ".cache"),
        "PYTHONPATH": str(tmp_path),
    }
    work = tmp_path / "work"
    work.mkdir()
    failures = []
    ran = 0
    for block in blocks(page.read_text(encoding="utf-8")):
        where = f"{page.relative_to(ROOT)}:{block.line}"
        if block.skip:
            continue
        if block.file:
            target = work / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif block.lang == "python" and ">>>" not in block.text:
            done = subprocess.run(
                [sys.executable, "-c", block.text],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            assert done.returncode == 0, f"{where}: the script failed:\n{done.stderr}"
        elif block.lang == "console":
            for cmd, expected in commands(block.text):
                done = subprocess.run(
                    ["bash", "-c", "exec 2>&1\n" + cmd],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT,
                )
                ran += 1
                if not matches(expected, done.stdout):
                    failures.append(
                        f"{where}: $ {cmd}\n--- the page shows\n{expected}\n--- it printed\n{done.stdout}"
                    )
    assert ran > 0
    assert not failures, f"{len(failures)} console example(s) differ:\n\n" + "\n\n".join(failures)
