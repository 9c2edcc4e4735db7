"""The documentation in ``docs/``: gallery up to date, links, runnable examples, MkDocs build.

* The gallery is regenerated in memory (with the session's cached
  derivations) and compared with the files in ``docs/gallery/`` and the
  gallery block of ``mkdocs.yml``; a stale file is named, with the command
  that regenerates it.
* Every relative link of every page points to an existing page, and every
  ``#anchor`` to a heading of that page.
* The ``>>>`` examples of the pages run as doctests, page by page.
* ``mkdocs build --strict`` succeeds.  It is skipped only when MkDocs (or the
  ``pymdownx`` extensions that ``mkdocs.yml`` uses) cannot be imported and
  ``SYMMLE_REQUIRE_DOCS`` is unset; with ``SYMMLE_REQUIRE_DOCS`` set, a missing
  MkDocs is a failure.
"""

from __future__ import annotations

import doctest
import functools
import importlib.util
import io
import os
import re
import subprocess
import sys
import tomllib
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
REGENERATE = "python docs/gen_gallery.py"


@functools.cache
def gen_gallery():
    """``docs/gen_gallery.py`` as a module (``docs/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_gallery", DOCS / "gen_gallery.py")
    module = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in docs/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --------------------------------------------------------------------------
# the gallery
# --------------------------------------------------------------------------


def test_gallery_is_up_to_date(derivation):
    gen = gen_gallery()
    files = gen.expected_files(derivation)
    problems = []
    for path, text in files.items():
        if not path.is_file():
            problems.append(f"{rel(path)} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel(path)} is stale")
    problems += [
        f"{rel(p)} is left over (no such family)"
        for p in sorted((DOCS / "gallery").glob("*.md"))
        if p not in files
    ]
    assert not problems, "; ".join(problems) + f". Regenerate the gallery with: {REGENERATE}"


def test_gallery_covers_the_catalogue():
    from symmle.model.catalogue import family_names

    names = family_names()
    index = (DOCS / "gallery" / "index.md").read_text(encoding="utf-8")
    missing = [n for n in names if not (DOCS / "gallery" / f"{n}.md").is_file() or f"]({n}.md)" not in index]
    assert not missing, (
        f"no gallery page or index entry for {', '.join(missing)}; regenerate with: {REGENERATE}"
    )
    for n in names:
        page = (DOCS / "gallery" / f"{n}.md").read_text(encoding="utf-8")
        assert f"symmle derive {n} --format latex --standalone" in page


# --------------------------------------------------------------------------
# links
# --------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (links there are not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slugify(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, title in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = slugify(title)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}_{n}")
    return out


def links_in(text: str) -> list[str]:
    """Link targets of Markdown ``text``, outside code."""
    text = prose(text)
    return _LINK.findall(text) + _REF_DEF.findall(text)


def links(page: Path) -> list[str]:
    return links_in(page.read_text(encoding="utf-8"))


def test_pages_found():
    assert DOCS / "index.md" in PAGES and len(PAGES) >= 9


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if _SCHEME.match(target):
            continue  # http:, https:, mailto: ...
        path, _, anchor = target.partition("#")
        if path.startswith("/"):
            broken.append(f"{target} (absolute; links between pages must be relative)")
            continue
        dest = (page.parent / path).resolve() if path else page
        if path.endswith("/") or dest.is_dir():
            dest = dest / "index.md"
        if not dest.is_file() or DOCS not in dest.parents:
            broken.append(f"{target} (no such page)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading '#{anchor}' in {dest.relative_to(DOCS)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken link(s): " + "; ".join(broken)


def test_link_checker_finds_links():
    text = "[a](missing.md) `[b](x.md)`\n```\n[c](y.md)\n```\n[d](https://example.org) [e](#here)\n"
    assert links_in(text) == ["missing.md", "https://example.org", "#here"]
    assert slugify("`symmle derive --format json`") == "symmle-derive-format-json"
    assert slugify("How results are verified") == "how-results-are-verified"


# --------------------------------------------------------------------------
# examples
# --------------------------------------------------------------------------

_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXAMPLE_PAGES = [
    p
    for p in PAGES
    if "gallery" not in p.parts
    and any(">>>" in b for b in _PYTHON_BLOCK.findall(p.read_text(encoding="utf-8")))
]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=[str(p.relative_to(DOCS)) for p in EXAMPLE_PAGES])
def test_python_examples_run(page):
    """The ``>>>`` examples of a page, run in order in one namespace, print what the page shows."""
    text = page.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs: dict = {"__name__": "docs_example"}
    out = io.StringIO()
    for match in _PYTHON_BLOCK.finditer(text):
        block = match.group(1)
        if ">>>" not in block:
            continue
        line = text.count("\n", 0, match.start()) + 1
        test = parser.get_doctest(block, globs, f"{page.relative_to(ROOT)}:{line}", str(page), line)
        runner.run(test, out=out.write, clear_globs=False)
        globs.update(test.globs)  # a DocTest runs in a copy: carry names over to the next block
    assert runner.failures == 0, (
        f"{runner.failures} example(s) of {page.relative_to(ROOT)} failed:\n{out.getvalue()}"
    )
    assert runner.tries > 0


# --------------------------------------------------------------------------
# the MkDocs build
# --------------------------------------------------------------------------


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_mkdocs_build_strict(tmp_path):
    missing = [m for m in ("mkdocs", "pymdownx") if not _importable(m)]
    if missing:
        if os.environ.get("SYMMLE_REQUIRE_DOCS"):
            pytest.fail(
                f"SYMMLE_REQUIRE_DOCS is set but {', '.join(missing)} cannot be imported: "
                "pip install '.[docs]'"
            )
        pytest.skip(f"{', '.join(missing)} not installed (pip install '.[docs]')")
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (site / "index.html").is_file()
    assert not (site / "gen_gallery.py").exists()
    normal = (site / "gallery" / "normal" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in normal  # the $$ maths reached MathJax's markers


def test_extras_install_the_docs_toolchain():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for extra in ("test", "docs"):
        names = {re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower() for req in extras[extra]}
        assert {"mkdocs", "pymdown-extensions"} <= names, (extra, extras[extra])


def test_install_page_lists_every_extra():
    """The extras table of docs/install.md names every extra of pyproject.toml, and each one's packages."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"]
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([\w-]+)` \| ([^|]+) \|", (DOCS / "install.md").read_text("utf-8"), re.M)
    }
    assert set(rows) == set(extras)
    for extra, requirements in extras.items():
        for req in requirements:
            package = re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0]
            assert package in rows[extra], (extra, package)
