"""Seed 001's promise: a message scheduled before a restart of the service fires once after it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

from tests.integration.processes import free_port, loopback_env, start_dev
from tests.integration.receiver import running_receiver

TOKEN = "restart-drill-token"


async def test_a_message_scheduled_before_a_restart_fires_once_after_it(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = loopback_env(
        fresh_dsn,
        TASKSTREAM_API_TOKEN=TOKEN,
        TASKSTREAM_KAFKA_ENABLED="false",
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with running_receiver() as receiver, aiohttp.ClientSession(headers=auth) as http:
        server = await start_dev(data_dir, port, env)
        try:
            due = datetime.now(UTC) + timedelta(seconds=5)
            body = {
                "id": "survives-restart",
                "scheduleTo": due.isoformat(),
                "payload": {"n": 1},
                "webhookUrl": receiver.url + "/hook",
            }
            async with http.post(f"{base}/messages", json=body) as r:
                assert r.status == 200, await r.text()
        finally:
            server.stop()
        assert time.time() < due.timestamp(), "the drill stopped the service too late to count"
        assert receiver.calls("/hook") == []
        server = await start_dev(data_dir, port, env)
        try:
            async with http.get(f"{base}/messages") as r:
                listed = [j["messageId"] for j in (await r.json())["scheduledJobs"]]
            assert listed == ["survives-restart"]
            try:
                (hook,) = await receiver.wait_for("/hook", 1, timeout=30)
            except TimeoutError:
                raise AssertionError("never fired; output:\n" + "\n".join(server.drain())) from None
            assert hook.at >= due.timestamp() - 0.01 and hook.body == b'{"n":1}'
            conn = await asyncpg.connect(fresh_dsn)
            try:
                deadline = time.monotonic() + 15
                while await conn.fetchval("SELECT status FROM task_view") != "completed":
                    assert time.monotonic() < deadline, "the run never completed"
                    await asyncio.sleep(0.1)
                started = await conn.fetchval(
                    "SELECT count(*) FROM events WHERE type = 'task.started'"
                )
            finally:
                await conn.close()
            assert started == 1 and len(receiver.calls("/hook")) == 1
            async with http.get(f"{base}/messages") as r:
                assert await r.json() == {"scheduledJobs": [], "count": 0}
        finally:
            server.stop()
