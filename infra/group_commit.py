"""Group commit: appends that arrive while a transaction is in flight share the next one.

Under load, one transaction carries many appends (one advisory-lock pass, one set-based
`ts_append` call, one statement per inline view, one WAL flush) instead of one each; when idle,
an append goes out at once with no added wait. Each unit's inline view rows are written in the
same transaction as its events, and only when its own append succeeded. A batch holds at most
one append per stream (a second one waits for the next batch), which keeps `ts_append`
set-based and the view upserts free of same-row conflicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from infra.event_store import AppendItem, AppendOutcome, AppendResult, append_items
from infra.json_codec import encode

log = logging.getLogger(__name__)


class InlineWrite(msgspec.Struct, frozen=True):
    """A view row to write with the append; `sql` takes all of a batch's rows as `$1::jsonb`."""

    sql: str
    row: Any


class _Unit(msgspec.Struct):
    item: AppendItem
    writes: Sequence[InlineWrite]
    future: asyncio.Future[AppendOutcome]


class GroupCommitter:
    """Batches concurrent appends; `flushers` transactions may be in flight at once."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 256, flushers: int = 4) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Unit] = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._flush_forever()) for _ in range(flushers)]

    async def submit(self, item: AppendItem, writes: Sequence[InlineWrite] = ()) -> AppendOutcome:
        """Append `item` and its view rows atomically; raises WrongExpectedVersion/DuplicateKey."""
        future: asyncio.Future[AppendOutcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Unit(item, writes, future))
        return await future

    async def close(self) -> None:
        """Stop the flushers once the queue is empty."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _flush_forever(self) -> None:
        carried: list[_Unit] = []
        while True:
            batch: list[_Unit] = []
            locked: set[str] = set()
            pending = carried or [await self._queue.get()]
            carried = []
            while pending or (
                len(batch) + len(carried) < self._max_batch and not self._queue.empty()
            ):
                unit = pending.pop(0) if pending else self._queue.get_nowait()
                keys = _lock_keys(unit.item)
                if keys & locked:
                    carried.append(unit)
                else:
                    locked |= keys
                    batch.append(unit)
            try:
                await self._flush(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _flush(self, batch: list[_Unit]) -> None:
        live = [u for u in batch if not u.future.done()]
        if not live:
            return
        try:
            outcomes = await self._commit(live)
        except Exception as exc:  # the whole transaction failed: every caller learns why
            for unit in live:
                if not unit.future.done():
                    unit.future.set_exception(exc)
            return
        for unit, outcome in zip(live, outcomes, strict=True):
            if unit.future.done():  # the caller gave up (e.g. its request was cancelled)
                continue
            if isinstance(outcome, Exception):
                unit.future.set_exception(outcome)
            else:
                unit.future.set_result(outcome)

    async def _commit(self, units: list[_Unit]) -> list[AppendResult]:
        async with self._pool.acquire() as conn, conn.transaction():
            outcomes = await append_items(conn, [u.item for u in units])
            by_sql: dict[str, list[Any]] = defaultdict(list)
            for unit, outcome in zip(units, outcomes, strict=True):
                if isinstance(outcome, AppendOutcome):
                    for write in unit.writes:
                        by_sql[write.sql].append(write.row)
            for sql, rows in by_sql.items():
                await conn.execute(sql, encode(rows).decode())
        return outcomes


def _lock_keys(item: AppendItem) -> set[str]:
    """What an append locks: its stream, and any dedupe key or concurrency slot it claims."""
    keys = {item.stream_id}
    if item.dedupe is not None:
        keys.add(f"dedupe:{item.project_id}:{item.dedupe.key}")
    if item.slot is not None:
        keys.add(f"slot:{item.project_id}:{item.slot.key}")
    return keys
