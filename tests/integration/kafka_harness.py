"""A relay and a subscriber running in the test's loop, against a real broker and database."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from infra.event_envelope import EventEnvelope
from infra.settings import Settings
from services.relay.process import new_publisher
from services.streaming.relay import Relay
from services.streaming.subscriber import subscribe
from tests.integration.test_workers import eventually

# tansu refuses the idempotent-producer handshake.
TEST_SETTINGS = Settings(kafka_idempotence=False)


@dataclass
class Received:
    """What a subscriber handled (each id once), in arrival order, for the given projects."""

    projects: set[str]
    envelopes: list[EventEnvelope] = field(default_factory=list)

    async def add(self, envelope: EventEnvelope) -> None:
        if envelope.project_id in self.projects:
            self.envelopes.append(envelope)

    def ids(self) -> set[uuid.UUID]:
        return {e.id for e in self.envelopes}

    async def wait_for(self, ids: set[uuid.UUID], timeout: float = 30.0) -> None:
        """Until every id in `ids` has arrived; fails naming how many are missing."""

        async def arrived() -> bool:
            return ids <= self.ids()

        try:
            await eventually(arrived, timeout)
        except AssertionError:
            missing = len(ids - self.ids())
            raise AssertionError(f"{missing} of {len(ids)} events never arrived") from None

    def assert_stream_order(self) -> None:
        """Each stream's versions arrived contiguous and ascending from the first one seen."""
        versions: dict[str, list[int]] = defaultdict(list)
        for e in self.envelopes:
            versions[e.stream_id].append(e.stream_version)
        for stream, seen in versions.items():
            assert seen == list(range(seen[0], seen[0] + len(seen))), (stream, seen)


@asynccontextmanager
async def subscribed(bootstrap: str, projects: set[str]) -> AsyncIterator[Received]:
    """A subscriber in a consumer group of its own, reading from the beginning of the topics."""
    received = Received(projects)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        subscribe(
            bootstrap,
            f"test-{uuid.uuid4().hex}",
            received.add,
            stop,
            session_timeout_ms=2000,  # joins the group in about 1 s on tansu
            ready=ready,
        )
    )
    await asyncio.wait_for(ready.wait(), 30)
    try:
        yield received
    finally:
        stop.set()
        await task


@asynccontextmanager
async def relaying(dsn: str, bootstrap: str) -> AsyncIterator[Relay]:
    """A relay following `dsn`'s log into `bootstrap` until the block ends."""
    relay = Relay(
        dsn,
        lambda: new_publisher(TEST_SETTINGS, bootstrap, "test"),
        batch=TEST_SETTINGS.relay_batch,
        poll_seconds=0.05,
        retry_seconds=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def logged_ids(pool: asyncpg.Pool, projects: set[str]) -> set[uuid.UUID]:
    """Ids of every event of `projects` in the log."""
    rows = await pool.fetch(
        "SELECT event_id FROM events WHERE project_id = ANY($1::text[])", sorted(projects)
    )
    return {r["event_id"] for r in rows}
