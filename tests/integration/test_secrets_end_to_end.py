"""Header values given on every surface reach the receiver and nowhere else (issue 10 §1).

One real `taskstream dev` process (gateway, scheduler, worker, relay to the real Kafka broker,
projector) over a fresh database: values set through `/api` (create and update), `/publish` and
`/tasks` arrive at a real receiver, and appear in none of `events`, `task_view`, the Kafka
messages, the process's output (its stderr and stdout) or any API answer.
"""

from __future__ import annotations

import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer

from tests.integration.processes import free_port, loopback_env, start_dev
from tests.integration.receiver import running_receiver
from tests.integration.test_workers import eventually

SECRETS = {
    "api": "Bearer API-s3cret-7f1",
    "old": "Bearer OLD-s3cret-d40",
    "update": "Bearer UPD-s3cret-5e0",
    "kept": "TRACE-kept-s3cret-4b2",
    "publish": "Bearer PUB-s3cret-2c9",
    "tasks": "Bearer AGT-s3cret-81a",
}


def soon(seconds: float = 1.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def kafka_messages(bootstrap: str) -> list[bytes]:
    """Every message on every taskstream topic, raw (key, value and headers), from the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"secrets-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith("taskstream."))
        consumer.subscribe(topics)
        raw: list[bytes] = []
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    raw.append(
                        (r.key or b"")
                        + (r.value or b"")
                        + b"".join(v for _, v in (r.headers or ()))
                    )
        return raw
    finally:
        await consumer.stop()


async def test_header_values_reach_the_receiver_and_no_log_view_topic_or_answer(
    tmp_path: Path, fresh_dsn: str, kafka: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = loopback_env(
        fresh_dsn,
        TASKSTREAM_KAFKA_BOOTSTRAP=kafka,
        TASKSTREAM_KAFKA_IDEMPOTENCE="false",
        TASKSTREAM_RELAY_POLL_MS="50",
    )
    server = await start_dev(data_dir, port, env)
    answers: list[str] = []
    try:
        key_file = data_dir / "secrets.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        creds = json.loads((data_dir / "credentials.json").read_text())
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {creds['api_key']}"}
        async with running_receiver() as receiver, aiohttp.ClientSession(headers=auth) as http:

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with http.request(method, base + path, json=body) as r:
                    text = await r.text()
                    answers.append(text)
                    return r.status, json.loads(text) if text else None

            def action(path: str, headers: dict[str, str]) -> dict[str, Any]:
                return {"kind": "http", "url": receiver.url + path, "headers": headers}

            status, created = await call(
                "POST",
                "/api/tasks",
                {"name": "a", "action": action("/api", {"Authorization": SECRETS["api"]}),
                 "scheduled_at": soon()},
            )  # fmt: skip
            assert status == 201, created
            assert created["data"]["action"]["headers"] == {"Authorization": "***"}
            later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            old_headers = {"Authorization": SECRETS["old"], "X-Trace": SECRETS["kept"]}
            status, replaced = await call(
                "POST",
                "/api/tasks",
                {"name": "b", "action": action("/updated", old_headers), "scheduled_at": later},
            )
            assert status == 201, replaced
            replaced_id = replaced["data"]["id"]
            new_headers = {"Authorization": SECRETS["update"], "X-Trace": "***"}
            status, updated = await call(
                "PATCH",
                f"/api/tasks/{replaced_id}",
                {"action": action("/updated", new_headers), "scheduled_at": soon()},
            )
            assert status == 200, updated
            status, published = await call(
                "POST",
                "/publish",
                {"timestamp": soon(), "projectId": creds["project_id"],
                 "body": {"callbackUrl": receiver.url + "/publish", "body": "{}",
                          "headers": {"Authorization": SECRETS["publish"]}}},
            )  # fmt: skip
            assert status == 200, published
            status, agent = await call(
                "POST",
                "/tasks",
                {"title": "agent", "description": "d", "schedule_kind": "once",
                 "schedule_expr": soon(), "created_by": str(uuid.uuid4()),
                 "payload": {"action": action("/tasks", {"Authorization": SECRETS["tasks"]})}},
            )  # fmt: skip
            assert status == 201, agent
            assert agent["payload"]["action"]["headers"] == {"Authorization": "***"}

            arrived = {
                path: (await receiver.wait_for(path, 1, timeout=20))[0].headers
                for path in ("/api", "/updated", "/publish", "/tasks")
            }
            assert arrived["/api"]["Authorization"] == SECRETS["api"]
            assert arrived["/updated"]["Authorization"] == SECRETS["update"]
            assert arrived["/updated"]["X-Trace"] == SECRETS["kept"]
            assert arrived["/publish"]["Authorization"] == SECRETS["publish"]
            assert arrived["/tasks"]["Authorization"] == SECRETS["tasks"]

            for path in (
                f"/api/tasks/{created['data']['id']}",
                f"/api/tasks/{replaced_id}",
                f"/api/tasks/{published['taskId']}",
                "/api/tasks",
                f"/tasks/{agent['id']}",
                "/tasks",
            ):
                assert (await call("GET", path))[0] == 200

            conn = await asyncpg.connect(fresh_dsn)
            try:

                async def relayed() -> bool:
                    behind = await conn.fetchval(
                        "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM"
                        " checkpoints c WHERE c.name = 'kafka-relay'"
                        " AND (c.txid, c.position) >= (e.txid, e.position))"
                    )
                    return int(behind) == 0

                await eventually(relayed, timeout=30)
                stored = [r[0] for r in await conn.fetch("SELECT data::text FROM events")]
                stored += [r[0] for r in await conn.fetch("SELECT metadata::text FROM events")]
                stored += [r[0] for r in await conn.fetch("SELECT state::text FROM task_view")]
                tokens = [r[0] for r in await conn.fetch("SELECT token FROM task_secrets")]
            finally:
                await conn.close()
            messages = await kafka_messages(kafka)
    finally:
        server.stop()
    output = "\n".join(server.drain())
    assert any(agent["id"] in s for s in stored)  # the log does hold the tasks
    assert any(agent["id"].encode() in m for m in messages)  # and Kafka got them
    assert len(tokens) == 4  # the replaced values are gone, the four current ones sealed
    for name, value in SECRETS.items():
        for where, texts in (
            ("events/task_view", stored),
            ("task_secrets", tokens),
            ("API answers", answers),
            ("process output", [output]),
        ):
            assert not any(value in t for t in texts), f"{name} secret found in {where}"
        assert not any(value.encode() in m for m in messages), f"{name} secret on Kafka"
