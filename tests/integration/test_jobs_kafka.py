"""Job and execution events go to the `taskstream.job` topic, keyed by their stream."""

from __future__ import annotations

import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer

from tests.integration.api_harness import running_api
from tests.integration.kafka_harness import relaying


async def test_job_events_are_on_the_job_topic_keyed_by_stream(
    pool: asyncpg.Pool, fresh_dsn: str, kafka: str
) -> None:
    async with running_api(pool) as api, relaying(fresh_dsn, kafka):
        task = {"id": "a", "name": "a", "action": {"kind": "http", "url": "https://example.com"}}
        status, body, _ = await api.call("POST", "/jobs", json={"name": "j", "tasks": [task]})
        assert status == 201
        job_id = body["id"]
        status, body, _ = await api.call("POST", f"/jobs/{job_id}/trigger")
        execution_id = body["executionId"]
        wanted = {
            (f"job-{job_id}".encode(), b"job.created"),
            (f"job-{job_id}".encode(), b"job.triggered"),
            (f"execution-{execution_id}".encode(), b"job.execution.created"),
            (f"execution-{execution_id}".encode(), b"job.execution.started"),
            (f"execution-{execution_id}".encode(), b"job.task.queued"),
        }
        consumer = AIOKafkaConsumer(
            "taskstream.job",
            bootstrap_servers=kafka,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        seen: set[tuple[bytes, bytes]] = set()
        try:
            deadline = time.monotonic() + 30
            while not wanted <= seen and time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    seen |= {(m.key or b"", dict(m.headers)["type"]) for m in messages}
        finally:
            await consumer.stop()
    assert wanted <= seen, wanted - seen
    # The node's core task is an ordinary task: its events stay on the task topic.
    assert not any(t.startswith(b"task.") for _, t in seen)
