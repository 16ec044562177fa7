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


SERVICES = REPO / "services"
# Packages that run a process: they compose application packages and run loops, nothing else
# may depend on them. `cli` starts processes, `gateway` composes the surfaces.
PROCESS_PACKAGES = {"gateway", "scheduler", "worker", "relay", "projector", "cli"}
SURFACES = SERVICES / "surfaces"


def services_imports_of(path: Path) -> set[tuple[str, ...]]:
    """The `services.…` modules a file imports, as dotted parts after `services`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[tuple[str, ...]] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(tuple(n.split(".")[1:]) for n in names if n.startswith("services."))
    return found


def test_application_packages_never_import_process_packages() -> None:
    for path in SERVICES.rglob("*.py"):
        package = path.relative_to(SERVICES).parts[0]
        if package in PROCESS_PACKAGES or path.parent == SERVICES:
            continue
        bad = {m for m in services_imports_of(path) if m and m[0] in PROCESS_PACKAGES}
        assert not bad, f"{path.relative_to(REPO)} imports process packages {sorted(bad)}"


def test_surfaces_import_only_the_kit_and_application_packages() -> None:
    surfaces = {p.name for p in SURFACES.iterdir() if p.is_dir() and p.name.endswith("_surface")}
    assert {"api_surface", "publish_surface", "messages_surface", "agent_tasks_surface"} <= surfaces
    for path in SURFACES.rglob("*.py"):
        own = path.relative_to(SURFACES).parts[0]
        for module in services_imports_of(path):
            if module[:1] == ("surfaces",) and len(module) > 1:
                assert module[1] in {"kit", own}, (
                    f"{path.relative_to(REPO)} imports services.{'.'.join(module)}: "
                    "a surface imports only the kit and application packages"
                )
            assert not module or module[0] not in PROCESS_PACKAGES, (
                f"{path.relative_to(REPO)} imports process package services.{'.'.join(module)}"
            )


def test_the_kit_imports_no_surface() -> None:
    for path in (SURFACES / "kit").rglob("*.py"):
        imported = services_imports_of(path)
        bad = {m for m in imported if m[:1] == ("surfaces",) and m[1:2] != ("kit",)}
        assert not bad, f"{path.relative_to(REPO)} imports surfaces {sorted(bad)}"
