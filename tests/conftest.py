"""Real servers for the tests: PostgreSQL from TASKSTREAM_DATABASE_URL, else an embedded one.

Each test session gets its own migrated template database; tests that need a clean log clone
it (`CREATE DATABASE … TEMPLATE`, tens of milliseconds) and drop the clone afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.db import create_pool
from infra.migrations import migrate

_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """A temp root of this session's own, unless --basetemp names one.

    pytest's default root is shared by every session of the same user and keeps only the newest
    three: two checkouts testing at once on one machine deleted each other's embedded
    PostgreSQL data directory mid-run.
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="taskstream-tests-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server's admin DSN."""
    configured = os.environ.get("TASKSTREAM_DATABASE_URL")
    if configured:
        yield configured
        return
    from infra.embedded_postgres import start_embedded_postgres

    dsn, stop = start_embedded_postgres(Path(tmp_path_factory.mktemp("pg")))
    yield dsn
    stop()


async def _admin(server_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(server_dsn: str) -> Iterator[str]:
    """Name of a migrated database to clone."""
    name = f"ts_template_{uuid.uuid4().hex[:8]}"

    async def setup() -> None:
        await _admin(server_dsn, f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(_with_database(server_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(setup())
    yield name
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_dsn(server_dsn: str, template_db: str) -> Iterator[str]:
    """A DSN of a brand-new migrated database, dropped after the test."""
    name = f"ts_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    yield _with_database(server_dsn, name)
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pool(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(fresh_dsn, size=12)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The bootstrap address of a real Kafka-protocol broker (tansu) for the whole session."""
    from infra.embedded_kafka import EmbeddedKafka

    broker = EmbeddedKafka()
    broker.start()
    yield broker.bootstrap
    broker.stop()
