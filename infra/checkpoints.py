"""Where each asynchronous reader of the log (webhook pump, Kafka relay) has got to.

A checkpoint is the `(txid, position)` pair of the last event a reader finished with (see
docs/event-store.md: positions alone skip late commits).
"""

from __future__ import annotations

import asyncpg

from infra.event_store import Checkpoint


async def load_checkpoint(
    conn: asyncpg.Connection, name: str, *, for_update: bool = False
) -> Checkpoint:
    """Reader `name`'s checkpoint (the start of the log for a new reader).

    `for_update` locks the row to the caller's transaction, so readers sharing a name take turns.
    """
    await conn.execute("INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING", name)
    row = await conn.fetchrow(
        "SELECT txid::text::bigint AS txid, position FROM checkpoints WHERE name = $1"
        + (" FOR UPDATE" if for_update else ""),
        name,
    )
    assert row is not None
    return Checkpoint(row["txid"], row["position"])


async def save_checkpoint(conn: asyncpg.Connection, name: str, checkpoint: Checkpoint) -> None:
    """Move reader `name` to `checkpoint`."""
    await conn.execute(
        "UPDATE checkpoints SET txid = $2::text::xid8, position = $3, updated_at = now()"
        " WHERE name = $1",
        name,
        str(checkpoint.txid),
        checkpoint.position,
    )
