"""Imports flow one way (DESIGN.md), and no module of the project imports itself back through others.

kb/ imports none of ingest/, service/, eval/, except the CLI composition root, which nothing else may import.
Every import counts wherever it sits: at the top of a module, inside a function, or under `if TYPE_CHECKING:`
(the layering is about what a module depends on, not when). For cycles only imports that run count: an import
under `if TYPE_CHECKING:` never executes, so it cannot leave a module half-initialised; it is how a type-only
reference back is written.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("ingest", "kb", "service", "eval")
FORBIDDEN = {
    "kb": {"ingest", "service", "eval"},
    "ingest": {"service", "eval"},
    "eval": {"ingest", "service"},
    "service": {"eval"},
}
COMPOSITION_ROOT = {"kb/cli.py", "kb/cli_progress.py"}
COMPOSITION_ROOT_MODULES = {"kb.cli", "kb.cli_progress"}
# Cycles known and accepted for now; each entry must still exist, so it is dropped once the cycle goes. (The last
# one, ingest.pipeline <-> ingest.upload, went with the uploads package and ingest/writer.py.)
KNOWN_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Import:
    """One import statement's target: a dotted module name (or a name inside one), where, and whether it runs."""

    target: str
    line: int
    type_only: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(root: Path, path: Path) -> list[Import]:
    """Every import in the module, the whole tree walked (function bodies too); relative ones made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    type_only_lines = {
        node.lineno
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and _is_type_checking(branch.test)
        for statement in branch.body
        for node in ast.walk(statement)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    }
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(a.name, node.lineno, node.lineno in type_only_lines) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from kb import settings` imports the module kb.settings; `from kb.settings import X` imports kb.settings
            found += [Import(f"{module}.{a.name}", node.lineno, node.lineno in type_only_lines) for a in node.names]
            found.append(Import(module, node.lineno, node.lineno in type_only_lines))
    return found


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    return {_module_name(root, p): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Module -> the project modules it imports at run time (anywhere in it), each with the line of one import."""
    modules = _modules(root, packages)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for imp in _imports(root, path):
            if not imp.type_only and imp.target in modules and imp.target != name:
                edges.setdefault(imp.target, imp.line)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _describe(graph: dict[str, dict[str, int]], cycle: list[str], root: Path) -> str:
    members = set(cycle)
    modules = _modules(root, tuple(sorted({m.split(".")[0] for m in cycle})))
    return "; ".join(
        f"{modules[m].relative_to(root)}:{line} imports {target}"
        for m in cycle
        for target, line in sorted(graph[m].items())
        if target in members
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    for path in sorted((REPO / package).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in COMPOSITION_ROOT:
            continue
        for imp in _imports(REPO, path):
            top = imp.target.split(".")[0]
            assert top not in FORBIDDEN[package], f"{rel}:{imp.line} imports {imp.target}"
            assert imp.target not in COMPOSITION_ROOT_MODULES, (
                f"{rel}:{imp.line} imports the composition root {imp.target}: move what it needs to ingest/ or kb/"
            )


def test_core_does_not_import_faces() -> None:
    for path in sorted((REPO / "kb").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in COMPOSITION_ROOT:
            continue
        faces = {imp.target.split(".")[0] for imp in _imports(REPO, path)} & {"rich", "typer", "fastapi"}
        assert not faces, f"{rel} imports {faces}"


def test_no_import_cycles() -> None:
    graph = import_graph(REPO, PACKAGES)
    cycles = find_cycles(graph)
    new = [c for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not new, "import cycles: " + " | ".join(_describe(graph, c, REPO) for c in new)
    gone = KNOWN_CYCLES - {frozenset(c) for c in cycles}
    assert not gone, f"no longer a cycle, drop it from KNOWN_CYCLES: {[sorted(c) for c in gone]}"


def test_cycle_finder_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The finder itself: a cycle closed by a function-level relative import is found; a type-only one is not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import B\n")
    (pkg / "b.py").write_text("class B:\n    def f(self):\n        from .a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]
    assert graph["pkg.c"] == {} and graph["pkg.d"] == {"pkg.c": 1}
