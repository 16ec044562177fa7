"""One pooled connection LISTENing on a PostgreSQL channel, re-established when it drops.

A NOTIFY sent inside a transaction is delivered at commit, to every listening session, within
milliseconds; what was sent while no session listened is lost. Callers that must not miss a
signal pair this with a slower check of their own (the run executor's lease heartbeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)


class ChannelListener:
    """Calls `on_payload(payload)` on the event loop for each notification on `channel`."""

    def __init__(self, pool: asyncpg.Pool, channel: str, on_payload: Callable[[str], None]) -> None:
        self._pool = pool
        self._channel = channel
        self._on_payload = on_payload
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def ensure(self) -> bool:
        """Listen if not already listening; False when the database cannot be reached now."""
        if self.listening:
            return True
        async with self._lock:
            if self.listening:
                return True
            await self._drop()
            try:
                conn = await self._pool.acquire()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen on %s now: %s", self._channel, exc)
                return False
            try:
                await conn.add_listener(self._channel, self._notified)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen on %s now: %s", self._channel, exc)
                await self._pool.release(conn)
                return False
            self._conn = conn
            return True

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_payload(str(payload))

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(self._channel, self._notified)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
