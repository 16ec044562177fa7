"""Following the log from a named checkpoint, with the reader's output in the same transaction.

`advance` locks reader `name`'s checkpoint (infra/checkpoints.py), reads the next batch of the
feed, lets the reader write what the batch means, and moves the checkpoint, all in the caller's
transaction: a reader killed anywhere leaves either the batch's output and its new checkpoint,
or neither, so no event is handled twice or skipped. The row lock also makes two copies of one
reader take turns instead of both handling the same batch. The webhook pump and the projector's
views follow the log this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from infra.checkpoints import load_checkpoint, save_checkpoint
from infra.event_store import RecordedEvent, read_feed

HandleBatch = Callable[[asyncpg.Connection, list[RecordedEvent]], Awaitable[None]]


async def advance(conn: asyncpg.Connection, name: str, limit: int, handle: HandleBatch) -> int:
    """Handle the next batch after checkpoint `name` inside the caller's transaction.

    Returns how many events were handled (0: caught up).
    """
    mark = await load_checkpoint(conn, name, for_update=True)
    events = await read_feed(conn, mark, limit)
    if not events:
        return 0
    await handle(conn, events)
    await save_checkpoint(conn, name, events[-1].checkpoint)
    return len(events)


async def consume(pool: asyncpg.Pool, name: str, limit: int, handle: HandleBatch) -> int:
    """One batch after checkpoint `name` in a transaction of its own; returns how many events."""
    async with pool.acquire() as conn, conn.transaction():
        return await advance(conn, name, limit, handle)


class FeedLag(msgspec.Struct, frozen=True, kw_only=True):
    """How far a reader is behind: events not yet read (counted up to a cap), the oldest's age."""

    events: int
    seconds: float


# The count stops at a cap (an index range read); the age is the first unread event's.
# The checkpoint is read into scalars first: compared with a joined row, `(txid, position) >`
# is no index condition and the planner walks the whole log (seconds on a long one).
_AFTER_MARK = """
  FROM events e
 WHERE (e.txid, e.position) > ((SELECT txid FROM checkpoints WHERE name = $1),
                               (SELECT position FROM checkpoints WHERE name = $1))
   AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY e.txid, e.position
"""
_LAG = f"""
SELECT (SELECT count(*) FROM (SELECT 1 {_AFTER_MARK} LIMIT $2) unread) AS events,
       COALESCE(EXTRACT(EPOCH FROM now() - (SELECT e.recorded_at {_AFTER_MARK} LIMIT 1)),
                0)::float8 AS seconds
  FROM checkpoints WHERE name = $1
"""


async def feed_lag(
    db: asyncpg.Connection | asyncpg.Pool, name: str, *, cap: int = 100_000
) -> FeedLag | None:
    """How far reader `name` is behind the visible log, or None if it never ran."""
    row = await db.fetchrow(_LAG, name, cap)
    return None if row is None else FeedLag(**dict(row))
