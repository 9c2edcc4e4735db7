"""The package's shape: stages import one way, without cycles, and the library imports without click.

Every module's imports are read with ``ast``.  An import at module level (outside functions, and outside
``if TYPE_CHECKING:``) runs when the module is imported, so those are the ones that must flow one way:
each stage may import only itself and the stages above it in ``STAGES``.  Imports inside functions are
the lazy conveniences (``Derivation.to_latex()`` reaching ``report/``) and are free.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "symmle"
#: The pipeline, top to bottom (see docs/architecture.md); the package's own modules come last.
STAGES = ("base", "model", "symbolic", "report", "numbers", "simulate", "")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else ""


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """symmle modules imported when ``module`` is imported (relative imports resolved)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "symmle")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.split(".")[0] != "symmle":
                    continue
                for a in node.names:
                    candidate = f"{base}.{a.name}"
                    found.add(candidate if candidate in MODULES else base)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With,)):
                visit(node.body)

    visit(tree.body)
    found.discard(module)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {_module_name(p): p for p in FILES}
GRAPH = {
    name: _module_level_imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
    for name, path in MODULES.items()
}


def test_every_stage_folder_exists():
    for stage in STAGES[:-1]:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_down_the_stages(module):
    rank = STAGES.index(_stage(module))
    for imported in sorted(GRAPH[module]):
        if imported == "symmle":
            continue  # the package's own __init__ (errors re-exported) is light
        assert STAGES.index(_stage(imported)) <= rank, (
            f"{module} ({_stage(module) or 'package'}) imports {imported} ({_stage(imported) or 'package'}) "
            "at module level: a stage may import only the stages above it"
        )


def test_module_level_imports_have_no_cycle():
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in GRAPH or nxt == "symmle":
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module)


def test_symbolic_stage_never_imports_report_numbers_or_simulate_at_module_level():
    for module, imported in GRAPH.items():
        if _stage(module) == "symbolic":
            bad = {i for i in imported if _stage(i) in ("report", "numbers", "simulate")}
            assert not bad, f"{module} imports {sorted(bad)}"


def test_runtime_is_self_contained():
    """The runtime is copied verbatim into generated modules: it imports no symmle module."""
    assert GRAPH["symmle.base._runtime"] == set()
    tree = ast.parse((PACKAGE / "base" / "_runtime.py").read_text())
    top = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert top - set(sys.stdlib_module_names) <= {"numpy", "scipy"}, top


def test_the_library_imports_without_click():
    names = sorted(m for m in MODULES if not m.endswith(("cli", "__main__")))
    code = "import sys\n" + "".join(f"import {m}\n" for m in names) + "print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_graph_is_read():
    """The test reads real imports: the command line reaches the pipeline lazily, the stages directly."""
    assert "symmle.base.errors" in GRAPH["symmle.model.spec"]
    assert "symmle.symbolic.likelihood" in GRAPH["symmle.symbolic.derivation"]
    assert not any(_stage(i) == "report" for i in GRAPH["symmle.symbolic.derivation"])


def test_every_subpackage_is_installed():
    """pyproject.toml lists every package of the tree: an installed symmle lacks none of its modules."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"]
    )
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "symmle").rglob("__init__.py")}
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
