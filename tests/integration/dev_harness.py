"""A real `taskstream dev` process on its own database, for tests that talk to it over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.integration.processes import Process, cli_env, dev_server, free_port


@dataclass(frozen=True)
class Dev:
    base_url: str
    api_key: str
    project_id: str
    data_dir: Path
    dsn: str
    process: Process


async def _admin(server_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def running_dev(
    server_dsn: str, template_db: str, tmp: Path, *args: str, **env: str
) -> Iterator[Dev]:
    """`taskstream dev ARGS` over a clone of the migrated template; Kafka off unless `env` says
    so."""
    name = f"ts_dev_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    dsn = urlunsplit(urlsplit(server_dsn)._replace(path=f"/{name}"))
    settings = {"TASKSTREAM_DATABASE_URL": dsn, "TASKSTREAM_KAFKA_ENABLED": "false", **env}
    data_dir, port = tmp / "data", free_port()
    try:
        with dev_server(data_dir, port, cli_env(**settings), *args) as proc:
            creds = json.loads((data_dir / "credentials.json").read_text())
            yield Dev(
                f"http://127.0.0.1:{port}",
                creds["api_key"],
                creds["project_id"],
                data_dir,
                dsn,
                proc,
            )
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
