"""Bringing the projector's views up to the end of the log in tests, with a deadline.

A transaction open anywhere on the PostgreSQL server holds the feed back (docs/event-store.md),
and tests share one server, so "caught up" is waited for, never assumed after one pass.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from infra.checkpoints import load_checkpoint
from infra.event_store import Checkpoint
from projections.views import VIEWS
from services.projector.projector import Projector


async def log_end(pool: asyncpg.Pool) -> Checkpoint:
    """The feed's last event, once every append made so far has committed."""
    row = await pool.fetchrow(
        "SELECT txid::text::bigint AS txid, position FROM events"
        " ORDER BY txid DESC, position DESC LIMIT 1"
    )
    return Checkpoint() if row is None else Checkpoint(row["txid"], row["position"])


async def checkpoint_of(pool: asyncpg.Pool, name: str) -> Checkpoint:
    async with pool.acquire() as conn:
        return await load_checkpoint(conn, name)


async def views_at_end(pool: asyncpg.Pool) -> bool:
    """Has every view's checkpoint reached the last event of the log?"""
    end = await log_end(pool)
    return all([await checkpoint_of(pool, table) == end for table in VIEWS])


async def project_everything(pool: asyncpg.Pool, *, batch: int = 5000, timeout: float = 30) -> int:
    """Run the projector until every view has the whole log; returns events projected."""
    projector = Projector(pool, batch=batch)
    projected = 0
    deadline = time.monotonic() + timeout
    while True:
        projected += await projector.catch_up()
        if await views_at_end(pool):
            return projected
        if time.monotonic() > deadline:
            raise AssertionError("the projector did not reach the end of the log in time")
        await asyncio.sleep(0.02)
