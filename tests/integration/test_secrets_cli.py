"""`taskstream secrets …` and the key a process needs, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec

from domain import events as ev
from domain.actions import HttpAction
from domain.schedule import Schedule
from domain.task_definition import TaskDefinition
from infra.db import create_pool
from infra.event_store import EventStore, NewEvent
from infra.json_codec import encode
from infra.secret_store import parse_key
from tests.integration.processes import cli_env, free_port, taskstream


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(taskstream(*args), env=env, capture_output=True, text=True, timeout=120)


def test_a_split_process_without_a_key_refuses_to_start_naming_the_variable(
    tmp_path: Path, fresh_dsn: str
) -> None:
    env = cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn)
    done = _run("gateway", "--port", str(free_port()), "--data-dir", str(tmp_path), env=env)
    assert done.returncode == 2, done
    assert "TASKSTREAM_SECRETS_KEY is not set" in done.stderr
    env["TASKSTREAM_SECRETS_KEY"] = "not-a-key"
    done = _run("worker", "--data-dir", str(tmp_path), env=env)
    assert done.returncode == 2 and "TASKSTREAM_SECRETS_KEY" in done.stderr, done


def test_scrub_command_redacts_a_legacy_log_and_reports_json(
    tmp_path: Path, fresh_dsn: str
) -> None:
    key = _run("secrets", "generate-key", env=cli_env()).stdout.strip()
    assert len(parse_key(key)) == 32
    definition = TaskDefinition(
        name="legacy",
        schedule=Schedule(kind="once", expr="2027-01-01T00:00:00+00:00"),
        action=HttpAction(url="https://example.com/h", headers={"Authorization": "LEGACY-9"}),
    )
    created = ev.TaskCreated(
        at=datetime.now(UTC), task_id="t1", project_id="p1", definition=definition,
        next_run_at=None,
    )  # fmt: skip

    async def seed() -> None:
        pool = await create_pool(fresh_dsn, size=1)
        try:
            event = NewEvent(type="task.created", data=msgspec.Raw(encode(created)))
            await EventStore(pool).append("task-t1", -1, [event], project_id="p1")
        finally:
            await pool.close()

    asyncio.run(seed())
    env = cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn, TASKSTREAM_SECRETS_KEY=key)
    done = _run("secrets", "scrub", "--data-dir", str(tmp_path), env=env)
    assert done.returncode == 0, done
    report = json.loads(done.stdout)
    assert (report["streams"], report["events_redacted"]) == (1, 1)

    async def logged() -> str:
        conn = await asyncpg.connect(fresh_dsn)
        try:
            return str(await conn.fetchval("SELECT data::text FROM events"))
        finally:
            await conn.close()

    assert "LEGACY-9" not in asyncio.run(logged())
