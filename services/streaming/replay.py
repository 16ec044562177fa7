"""`taskstream events replay --since T`: publish a range of the log to Kafka again.

Replay does not touch the relay's checkpoint and needs no lock: subscribers dedupe by `id`, so
republishing is always safe.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from infra.event_store import Checkpoint, read_feed
from infra.kafka_publisher import KafkaPublisher


async def replay_start(conn: asyncpg.Connection, since: datetime) -> Checkpoint | None:
    """The checkpoint just before the first event (in feed order) recorded at or after `since`."""
    row = await conn.fetchrow(
        """SELECT txid::text::bigint AS txid, position FROM events
            WHERE recorded_at >= $1 ORDER BY events.txid, events.position LIMIT 1""",
        since,
    )
    if row is None:
        return None
    # Checkpoints are exclusive; nothing sorts between (txid, position - 1) and the first event.
    return Checkpoint(row["txid"], row["position"] - 1)


async def replay(
    conn: asyncpg.Connection,
    publisher: KafkaPublisher,
    since: datetime,
    *,
    batch: int = 5000,
    on_progress: Callable[[int], None] = lambda _: None,
) -> int:
    """Publish every event from the first one recorded at or after `since` up to the head.

    Returns how many were published. The head is where the feed stood when replay started, so
    a busy log does not keep it going for ever.
    """
    start = await replay_start(conn, since)
    if start is None:
        return 0
    head = await conn.fetchrow(
        """SELECT txid::text::bigint AS txid, position FROM events
            WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY events.txid DESC, events.position DESC LIMIT 1"""
    )
    if head is None:  # everything after `since` is still being committed
        return 0
    end = Checkpoint(head["txid"], head["position"])
    published = 0
    checkpoint = start
    while checkpoint < end:
        events = [e for e in await read_feed(conn, checkpoint, batch) if e.checkpoint <= end]
        if not events:
            break
        await publisher.publish(events)
        published += len(events)
        on_progress(published)
        checkpoint = events[-1].checkpoint
    return published
