"""Migrations apply once, in order, even when several processes start at the same moment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from infra.migrations import migrate, migration_files
from tests.conftest import _admin, _with_database


@pytest.fixture
def empty_dsn(server_dsn: str) -> Iterator[str]:
    name = f"ts_empty_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    yield _with_database(server_dsn, name)
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_concurrent_starts_apply_each_migration_once(empty_dsn: str) -> None:
    connections = [await asyncpg.connect(empty_dsn) for _ in range(6)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in connections))
        names = [name for name, _ in migration_files()]
        applied = [name for ran in results for name in ran]
        assert sorted(applied) == sorted(names), "each file must run exactly once in total"
        recorded = await connections[0].fetch("SELECT name FROM schema_migrations ORDER BY name")
        assert [r["name"] for r in recorded] == names
        assert await migrate(connections[0]) == []
    finally:
        for c in connections:
            await c.close()
