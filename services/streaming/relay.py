"""Log → Kafka: one active relay follows the global feed and produces every event, in order.

Leadership is a PostgreSQL session advisory lock held on the relay's own connection: a second
relay polls for it and takes over the moment the first one's connection drops (the process
died, or lost its database). The checkpoint moves only after Kafka acknowledged every record of
a batch, and it is written on the lock's connection, so a relay that lost the lock cannot move
it. A batch that was not fully acknowledged is sent again whole: subscribers see each event at
least once and dedupe by its `id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiokafka.errors import KafkaError

from infra.checkpoints import load_checkpoint, save_checkpoint
from infra.event_store import read_feed
from infra.kafka_publisher import KafkaPublisher, PublishFailed

log = logging.getLogger(__name__)

CHECKPOINT = "kafka-relay"
# The two-int advisory lock space, apart from the bigint keys ts_append and migrations use.
LOCK_KEY = (0x7473, 1)
_KAFKA_ERRORS = (KafkaError, PublishFailed, OSError)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Relay:
    """Follows the log from checkpoint `kafka-relay` and produces it through a publisher."""

    def __init__(
        self,
        dsn: str,
        new_publisher: Callable[[], KafkaPublisher],
        *,
        batch: int = 5000,
        poll_seconds: float = 0.1,
        retry_seconds: float = 1.0,
    ) -> None:
        self.dsn = dsn
        self.new_publisher = new_publisher
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.relayed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for leadership, relay until `stop`; start over after losing the database."""
        while not stop.is_set():
            try:
                async with self._leadership(stop) as conn:
                    if conn is not None:
                        await self._follow(conn, stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay lost the database (%s); retrying", exc)
                await _wait(stop, self.retry_seconds)

    @contextlib.asynccontextmanager
    async def _leadership(self, stop: asyncio.Event) -> AsyncIterator[asyncpg.Connection | None]:
        """A connection holding the relay lock, or None if `stop` came first."""
        conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "relay"})
        try:
            waiting_said = False
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *LOCK_KEY):
                if not waiting_said:
                    print("relay standing by: another relay is active", flush=True)
                    waiting_said = True
                await _wait(stop, 0.5)
                if stop.is_set():
                    yield None
                    return
            print("relay active", flush=True)
            yield conn
        finally:
            # Closing the session releases the lock.
            await conn.close(timeout=5)

    async def _follow(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        checkpoint = await load_checkpoint(conn, CHECKPOINT)
        publisher: KafkaPublisher | None = None
        try:
            while not stop.is_set():
                events = await read_feed(conn, checkpoint, self.batch)
                if not events:
                    await _wait(stop, self.poll_seconds)
                    continue
                try:
                    if publisher is None:
                        publisher = self.new_publisher()
                        await publisher.start()
                    await publisher.publish(events)
                except _KAFKA_ERRORS as exc:
                    # Reconnect from scratch: the cluster may have restarted empty.
                    log.warning("relay could not produce to Kafka (%s); retrying", exc)
                    if publisher is not None:
                        await publisher.close()
                    publisher = None
                    await _wait(stop, self.retry_seconds)
                    continue
                checkpoint = events[-1].checkpoint
                await save_checkpoint(conn, CHECKPOINT, checkpoint)
                self.relayed += len(events)
        finally:
            if publisher is not None:
                await publisher.close()
