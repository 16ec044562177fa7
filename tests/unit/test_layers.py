"""Imports go one way: services → infra → projections → domain; domain imports no I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = ["domain", "projections", "infra", "services"]
DOMAIN_ALLOWED_THIRD_PARTY = {"msgspec", "croniter", "dateutil"}
IO_MODULES = {
    "asyncio",
    "socket",
    "asyncpg",
    "aiohttp",
    "aiokafka",
    "dramatiq",
    "os",
    "subprocess",
    "time",
    "random",
    "secrets",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_layers_below(layer: str) -> None:
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    for path in (REPO / layer).rglob("*.py"):
        bad = imports_of(path) & above
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)} from a layer above it"


def test_domain_does_no_io() -> None:
    for path in (REPO / "domain").rglob("*.py"):
        bad = imports_of(path) & IO_MODULES
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"
        text = path.read_text(encoding="utf-8")
        for clock in ("datetime.now(", ".utcnow(", "time.time(", "date.today("):
            assert clock not in text, f"{path.relative_to(REPO)} reads the clock ({clock})"
