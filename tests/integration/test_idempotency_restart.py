"""kill -9 of `taskstream dev` during keyed creates: after a restart every key still names one
task, and retrying every key creates nothing twice."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from taskstream_client import APIConnectionError, AsyncClient, TaskstreamError

from tests.integration.processes import cli_env, dev_server, free_port

TASK = {
    "name": "keyed",
    "action": {"kind": "http", "url": "https://example.com/hook"},
    "scheduled_at": datetime(2099, 1, 1, tzinfo=UTC),
}
KEYS = [f"order-{i}" for i in range(120)]


# The default run covers a request dying between reserving the id and appending in-process
# (test_api_idempotency.py::test_a_died_request_is_completed_by_its_retry); this is the drill.
@pytest.mark.slow
async def test_kill_9_mid_creates_then_every_key_retried_makes_one_task_each(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env(
        TASKSTREAM_DATABASE_URL=fresh_dsn,
        TASKSTREAM_RATE_LIMIT_PER_SECOND="0",
        TASKSTREAM_KAFKA_ENABLED="false",
    )
    base = f"http://127.0.0.1:{port}"
    acknowledged: dict[str, str] = {}
    with dev_server(data_dir, port, env) as proc:
        key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
        async with AsyncClient(base_url=base, api_key=key, max_retries=0) as client:
            queue = list(KEYS)

            async def worker() -> None:
                while queue:
                    k = queue.pop()
                    try:
                        task = await client.tasks.create(idempotency_key=k, **TASK)  # type: ignore[arg-type]
                    except (APIConnectionError, TaskstreamError):
                        return
                    acknowledged[k] = task.id
                    if len(acknowledged) == 40:
                        proc.popen.send_signal(signal.SIGKILL)

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(8))), 120)
        proc.popen.wait(10)
    assert 40 <= len(acknowledged) < len(KEYS)

    with dev_server(data_dir, port, env):
        async with AsyncClient(base_url=base, api_key=key) as client:
            answers = await asyncio.gather(
                *(client.tasks.create(idempotency_key=k, **TASK) for k in KEYS)  # type: ignore[arg-type]
            )
    by_key = {k: t.id for k, t in zip(KEYS, answers, strict=True)}
    assert all(by_key[k] == task_id for k, task_id in acknowledged.items())
    assert len(set(by_key.values())) == len(KEYS)
    conn = await asyncpg.connect(fresh_dsn)
    try:
        created = await conn.fetchval("SELECT count(*) FROM events WHERE type = 'task.created'")
        reserved = await conn.fetchval("SELECT count(*) FROM idempotency_keys")
    finally:
        await conn.close()
    assert created == len(KEYS) and reserved == len(KEYS)
