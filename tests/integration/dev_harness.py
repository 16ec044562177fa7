"""A real `taskstream dev` process on its own database, for tests that talk to it over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _admin, _with_database
from tests.integration.processes import Process, cli_env, dev_server, free_port


@dataclass(frozen=True)
class Dev:
    base_url: str
    api_key: str
    project_id: str
    data_dir: Path
    dsn: str
    process: Process


@contextmanager
def running_dev(
    server_dsn: str, template_db: str, tmp: Path, *args: str, **env: str
) -> Iterator[Dev]:
    """`taskstream dev ARGS` over a clone of the migrated template; Kafka off unless `env` says
    so."""
    name = f"ts_dev_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    dsn = _with_database(server_dsn, name)
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


def dev_fixture(*args: str, **env: str) -> Callable[..., Any]:
    """A module-scoped `dev` fixture: one `taskstream dev ARGS` (with `env`) per test module."""

    @pytest.fixture(scope="module")
    def dev(
        server_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Dev]:
        tmp = tmp_path_factory.mktemp("dev")
        with running_dev(server_dsn, template_db, tmp, *args, **env) as running:
            yield running

    return dev
