"""The Postgres event log: optimistic appends per stream and a gap-free global feed.

Global order for readers is `(txid, position)` where `txid` is the appending transaction's
`xid8`. `read_all` returns only events whose transaction is older than the oldest one still
running (`pg_snapshot_xmin`), so an append that commits after a later-numbered one is never
skipped: it simply becomes visible to the feed a moment later. Writers never wait on readers or
on each other across streams (the eugene-khyst/postgresql-event-sourcing approach), unlike a
global commit lock, which would cap appends at one commit latency each. The price: a long
writing transaction delays every reader, so no transaction that appends may wait on the network.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from infra.json_codec import encode


class WrongExpectedVersion(Exception):
    """The stream moved on since the caller read it."""

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        super().__init__(f"stream {stream_id}: expected version {expected}, actual {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended; `data` is its JSON."""

    type: str
    data: msgspec.Raw
    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    schema: int = 1
    metadata: dict[str, Any] = {}


class DuplicateKey(Exception):
    """The append named a dedupe key another task still holds."""

    def __init__(self, key: str, holder: str) -> None:
        super().__init__(f"dedupe key {key!r} is held by task {holder}")
        self.key = key
        self.holder = holder


class ConcurrencyLimited(Exception):
    """The append would start more runs of a concurrency key than its limit allows."""

    def __init__(self, key: str, limit: int) -> None:
        super().__init__(f"concurrency key {key!r} already has {limit} run(s) in flight")
        self.key = key
        self.limit = limit


class Slot(msgspec.Struct, frozen=True):
    """Take one of `limit` in-flight places of concurrency `key` (checked under a lock)."""

    key: str
    limit: int


class DedupeClaim(msgspec.Struct, frozen=True):
    """Hold `key` for `task_id` until `until`; appended atomically with the events."""

    key: str
    task_id: str
    until: datetime


class AppendItem(msgspec.Struct, frozen=True, kw_only=True):
    """Events for one stream; `expected` is the version last seen (-1: new stream, None: any)."""

    stream_id: str
    project_id: str
    expected: int | None
    events: Sequence[NewEvent]
    dedupe: DedupeClaim | None = None
    slot: Slot | None = None


class AppendOutcome(msgspec.Struct, frozen=True):
    stream_version: int
    first_position: int
    txid: int


class Checkpoint(msgspec.Struct, frozen=True, order=True):
    """A reader's place in the global feed."""

    txid: int = 0
    position: int = 0


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    txid: int
    stream_id: str
    version: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    project_id: str
    data: str
    metadata: str
    recorded_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.txid, self.position)


_COLUMNS = """position, txid::text::bigint AS txid, stream_id, version, event_id, type,
              schema_version, project_id, data::text AS data, metadata::text AS metadata,
              recorded_at"""


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(**dict(row))


AppendResult = AppendOutcome | WrongExpectedVersion | DuplicateKey | ConcurrencyLimited


async def append_items(conn: asyncpg.Connection, items: Sequence[AppendItem]) -> list[AppendResult]:
    """Append in the caller's transaction; it must be the transaction's first write."""
    rows = await conn.fetch("SELECT * FROM ts_append($1::jsonb)", encode(items).decode())
    out: list[AppendResult] = []
    for item, row in zip(items, rows, strict=True):
        if row["duplicate_of"] is not None and item.dedupe is not None:
            out.append(DuplicateKey(item.dedupe.key, row["duplicate_of"]))
        elif row["limited"] and item.slot is not None:
            out.append(ConcurrencyLimited(item.slot.key, item.slot.limit))
        elif row["ok"]:
            out.append(
                AppendOutcome(row["stream_version"], row["first_position"], int(row["txid"]))
            )
        else:
            out.append(WrongExpectedVersion(item.stream_id, item.expected, row["stream_version"]))
    return out


class EventStore:
    """Append to and read from the log through a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
        *,
        project_id: str,
    ) -> AppendOutcome:
        """Append `events` in a transaction of their own; raises WrongExpectedVersion."""
        item = AppendItem(
            stream_id=stream_id, project_id=project_id, expected=expected_version, events=events
        )
        async with self.pool.acquire() as conn, conn.transaction():
            (result,) = await append_items(conn, [item])
        if isinstance(result, Exception):
            raise result
        return result

    async def read_stream(self, stream_id: str, *, after_version: int = -1) -> list[RecordedEvent]:
        """Every event of one stream after `after_version`, in version order."""
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version",
            stream_id,
            after_version,
        )
        return [_recorded(r) for r in rows]

    async def read_all(
        self, *, after: Checkpoint = Checkpoint(), limit: int = 1000
    ) -> list[RecordedEvent]:
        """The next events of the global feed after `after`, never skipping a late commit."""
        return await read_feed(self.pool, after, limit)


async def read_feed(
    db: asyncpg.Connection | asyncpg.Pool, after: Checkpoint, limit: int
) -> list[RecordedEvent]:
    """The next `limit` events of the global feed after `after`, on a connection or a pool."""
    rows = await db.fetch(
        f"""SELECT {_COLUMNS} FROM events
             WHERE (txid, position) > ($1::text::xid8, $2)
               AND txid < pg_snapshot_xmin(pg_current_snapshot())
             -- Qualified: the bare name would sort by the output alias (txid::text::bigint),
             -- which no index serves, so every batch would sort the whole rest of the log.
             ORDER BY events.txid, events.position
             LIMIT $3""",
        str(after.txid),
        after.position,
        limit,
    )
    return [_recorded(r) for r in rows]


class FeedHead(msgspec.Struct, frozen=True):
    """Which stream of which project an event of the feed touched, and what it was."""

    project_id: str
    stream_id: str
    type: str


_VISIBLE = "txid < pg_snapshot_xmin(pg_current_snapshot())"


async def feed_end(db: asyncpg.Connection | asyncpg.Pool) -> Checkpoint:
    """The checkpoint of the newest event the feed shows now (the start: none yet)."""
    row = await db.fetchrow(
        f"SELECT txid::text::bigint AS txid, position FROM events WHERE {_VISIBLE}"
        " ORDER BY events.txid DESC, events.position DESC LIMIT 1"
    )
    return Checkpoint() if row is None else Checkpoint(row["txid"], row["position"])


async def feed_heads(
    db: asyncpg.Connection | asyncpg.Pool, after: Checkpoint, limit: int
) -> tuple[list[FeedHead], Checkpoint]:
    """What the next `limit` feed events after `after` touched (not their data), and the
    checkpoint after them: `read_feed`'s order and its rule for late commits."""
    rows = await db.fetch(
        f"""SELECT txid::text::bigint AS txid, position, project_id, stream_id, type
              FROM events
             WHERE (txid, position) > ($1::text::xid8, $2) AND {_VISIBLE}
             ORDER BY events.txid, events.position
             LIMIT $3""",
        str(after.txid),
        after.position,
        limit,
    )
    if not rows:
        return [], after
    last = rows[-1]
    heads = [FeedHead(r["project_id"], r["stream_id"], r["type"]) for r in rows]
    return heads, Checkpoint(last["txid"], last["position"])
