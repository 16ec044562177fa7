"""A subscriber to copy: a consumer group on every `taskstream.*` topic, deduplicated by `id`.

The relay publishes at least once (a batch that was not fully acknowledged is sent again, and
`taskstream events replay` republishes on purpose), so a subscriber drops ids it has handled.
Offsets are committed only after a poll's events were handled: a crash re-delivers, never skips.
`taskstream events tail` runs this and prints each envelope as a JSON line.

Here the handled ids are kept in memory (the most recent `remember` of them). A real subscriber
keeps them where its effects live — e.g. a table with the id as primary key, written in the same
transaction as the effect — so dedupe survives restarts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from infra.event_envelope import TOPIC_PREFIX, EventEnvelope
from infra.json_codec import decode

Handler = Callable[[EventEnvelope], Awaitable[None]]


class SeenIds:
    """The most recent `size` event ids, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[uuid.UUID, None] = OrderedDict()

    def first_time(self, event_id: uuid.UUID) -> bool:
        """Record `event_id`; False if it was already seen."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


async def subscribe(
    bootstrap: str,
    group: str,
    handle: Handler,
    stop: asyncio.Event,
    *,
    remember: int = 1_000_000,
    session_timeout_ms: int = 10_000,
    ready: asyncio.Event | None = None,
) -> None:
    """Hand each new event of every `taskstream.*` topic to `handle`, once, until `stop`.

    `session_timeout_ms` is how long a silent member keeps its partitions; tansu also makes a
    group join wait about half of it.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a new group starts at the beginning of the topics
        metadata_max_age_ms=2000,  # notice topics created after we started
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=session_timeout_ms // 4,
    )
    consumer.subscribe(pattern=f"^{TOPIC_PREFIX.replace('.', '[.]')}.*")
    await consumer.start()
    seen = SeenIds(remember)
    try:
        if ready is not None:
            ready.set()
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=200)
            for messages in polled.values():
                for message in messages:
                    envelope = decode(message.value or b"", EventEnvelope)
                    if seen.first_time(envelope.id):
                        await handle(envelope)
            if polled:
                await consumer.commit()
    finally:
        await consumer.stop()
