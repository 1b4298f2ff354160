"""The layering rule: each layer imports only layers below it (see docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# For each package: the top-level modules it must never import.
FORBIDDEN = {
    "careflow": {
        "fastapi",
        "starlette",
        "uvicorn",
        "temporalio",
        "sqlalchemy",
        "alembic",
        "persistence",
        "backends",
        "infra",
        "api",
        "workflows",
        "activities",
        "worker",
        "cli",
    },
    "persistence": {"fastapi", "starlette", "temporalio", "api", "workflows", "activities"},
    # The temporal and awell backends start and describe workflows through the client
    # (temporalio), but define no workflow or activity and never import those layers.
    "backends": {"fastapi", "starlette", "api", "workflows", "activities"},
    "infra": {"fastapi", "starlette", "api", "workflows", "activities", "persistence"},
    "activities": {"fastapi", "starlette", "api", "workflows"},
    "workflows": {"fastapi", "starlette", "api", "persistence", "backends"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_layers_below(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }
    assert {k: v for k, v in offending.items() if v} == {}
