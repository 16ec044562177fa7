"""Writing asynchronous views (projections/) from the log, and rebuilding one beside the live one.

`catch_up_view` moves a view forward batch by batch: each batch's rows are one set-based upsert
in the same transaction as the view's checkpoint (named after its table), so a projector killed
mid-batch leaves nothing half-counted. `rebuild_view` replays the whole log into a fresh table
while the old one keeps serving and the live projector keeps writing to it, then, holding the
live checkpoint's lock, catches the fresh table up to the same place and swaps the tables in
one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg

from infra.checkpointed_feed import HandleBatch, advance, consume
from infra.checkpoints import load_checkpoint, save_checkpoint
from infra.event_store import RecordedEvent
from infra.json_codec import encode
from projections.view_projection import ViewProjection

log = logging.getLogger(__name__)


async def write_rows(
    conn: asyncpg.Connection, view: ViewProjection, table: str, events: list[RecordedEvent]
) -> None:
    """Upsert what `events` mean for `view` into `table`, in one statement."""
    rows = view.rows(events)
    if rows:
        await conn.execute(view.upsert_sql.format(table=table), encode(rows).decode())


def _writer(view: ViewProjection, table: str) -> HandleBatch:
    async def handle(conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        await write_rows(conn, view, table, events)

    return handle


async def catch_up_view(pool: asyncpg.Pool, view: ViewProjection, *, batch: int) -> int:
    """Project every visible event past the view's checkpoint; returns how many."""
    total = 0
    while (n := await consume(pool, view.table, batch, _writer(view, view.table))) > 0:
        total += n
    return total


async def rebuild_view(
    pool: asyncpg.Pool,
    view: ViewProjection,
    *,
    batch: int,
    on_progress: Callable[[int], None] = lambda _: None,
) -> int:
    """Rebuild `view` from the whole log into a fresh table and swap it in; returns events read.

    Readers are served by the old table until the swap, which takes an exclusive lock on it
    only for the rename.
    """
    async with pool.acquire() as guard:
        # One rebuild per view at a time: a second would drop the first one's fresh table.
        key = f"rebuild:{view.table}"
        if not await guard.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
            raise RebuildRunning(f"a rebuild of {view.table} is already running")
        try:
            return await _rebuild(pool, view, batch, on_progress)
        finally:
            await guard.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)


class RebuildRunning(Exception):
    """Another process is rebuilding this view right now."""


async def _rebuild(
    pool: asyncpg.Pool, view: ViewProjection, batch: int, on_progress: Callable[[int], None]
) -> int:
    fresh, mark = f"{view.table}_rebuild", f"{view.table}:rebuild"
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {fresh}")
        await conn.execute(f"CREATE TABLE {fresh} (LIKE {view.table} INCLUDING ALL)")
        await conn.execute("DELETE FROM checkpoints WHERE name = $1", mark)
    total = 0
    while (n := await consume(pool, mark, batch, _writer(view, fresh))) > 0:
        total += n
        on_progress(total)
        log.info("rebuilding %s: %d events", view.table, total)
    async with pool.acquire() as conn, conn.transaction():
        # The live projector waits here; the rest of the log goes into the fresh table first.
        await load_checkpoint(conn, view.table, for_update=True)
        while (n := await advance(conn, mark, batch, _writer(view, fresh))) > 0:
            total += n
        caught_up = await load_checkpoint(conn, mark)
        retired = f"{view.table}_retired"
        await conn.execute(f"ALTER TABLE {view.table} RENAME TO {retired}")
        await conn.execute(f"ALTER TABLE {fresh} RENAME TO {view.table}")
        await conn.execute(f"DROP TABLE {retired}")
        pkey = await conn.fetchval(
            "SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'",
            view.table,
        )
        await conn.execute(
            f"ALTER TABLE {view.table} RENAME CONSTRAINT {pkey} TO {view.table}_pkey"
        )
        await save_checkpoint(conn, view.table, caught_up)
        await conn.execute("DELETE FROM checkpoints WHERE name = $1", mark)
    return total
