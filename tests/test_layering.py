"""Imports flow one way (DESIGN.md): kb/ imports none of ingest/, service/, eval/, except the CLI composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "kb": {"ingest", "service", "eval"},
    "ingest": {"service", "eval"},
    "eval": {"ingest", "service"},
    "service": {"eval"},
}
COMPOSITION_ROOT = {"kb/cli.py", "kb/cli_progress.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    for path in sorted((REPO / package).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in COMPOSITION_ROOT:
            continue
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{rel} imports {bad}"


def test_core_does_not_import_faces() -> None:
    for path in sorted((REPO / "kb").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in COMPOSITION_ROOT:
            continue
        assert not _imports(path) & {"rich", "typer", "fastapi"}, rel
