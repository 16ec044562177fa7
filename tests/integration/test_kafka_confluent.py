"""Reading the log through confluent-kafka (librdkafka) from the real tansu broker."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from scripts.subscribers.confluent_tail import run
from tests.integration.api_harness import Api, running_api
from tests.integration.kafka_harness import logged_ids, relaying
from tests.integration.test_api_tasks import create, http_task
from tests.integration.test_workers import eventually


class Collected:
    def __init__(self, project: str) -> None:
        self.project = project
        self.envelopes: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, envelope: dict[str, Any]) -> None:
        if envelope["project_id"] == self.project:
            with self.lock:
                self.envelopes.append(envelope)

    def ids(self) -> set[uuid.UUID]:
        with self.lock:
            return {uuid.UUID(e["id"]) for e in self.envelopes}

    async def wait_for(self, ids: set[uuid.UUID]) -> None:
        async def arrived() -> bool:
            return ids <= self.ids()

        await eventually(arrived, timeout=30)


@asynccontextmanager
async def tailing(bootstrap: str, group: str, project: str) -> AsyncIterator[Collected]:
    collected, stop = Collected(project), threading.Event()
    thread = threading.Thread(
        target=run, args=(bootstrap, group, collected.add, stop), kwargs={"refresh_seconds": 0.5}
    )
    thread.start()
    try:
        yield collected
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
        assert not thread.is_alive()


async def _tasks(api: Api, n: int) -> None:
    await asyncio.gather(*(create(api, http_task()) for _ in range(n)))


async def test_confluent_kafka_reads_every_event_and_resumes_from_its_offsets(
    pool: asyncpg.Pool, fresh_dsn: str, kafka: str
) -> None:
    group = f"confluent-{uuid.uuid4().hex[:8]}"
    async with running_api(pool) as api, relaying(fresh_dsn, kafka):
        await _tasks(api, 20)
        first = await logged_ids(pool, {api.project_a})
        async with tailing(kafka, group, api.project_a) as got:
            await got.wait_for(first)
        assert len(got.envelopes) == len(first) == 20
        assert {e["type"] for e in got.envelopes} == {"task.created"}
        await _tasks(api, 5)
        second = await logged_ids(pool, {api.project_a}) - first
        async with tailing(kafka, group, api.project_a) as again:
            await again.wait_for(second)
        # Offsets were committed under the group: a restart reads only what is new.
        assert again.ids() == second and len(again.envelopes) == 5
