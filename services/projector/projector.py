"""The projector: follows the log and keeps every asynchronous view caught up.

Each view moves on its own checkpoint (infra/view_store.py), so views can be added, rebuilt or
lag independently, and several projector processes may run at once: the checkpoint's row lock
makes them take turns per batch. When every view is caught up it looks again after
`poll_seconds` (appends send no notification; a cheap indexed read is enough).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg

from infra.view_store import catch_up_view
from projections.view_projection import ViewProjection
from projections.views import VIEWS

log = logging.getLogger(__name__)


class Projector:
    """Catches every view up, then keeps it so until stopped."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        views: Sequence[ViewProjection] = tuple(VIEWS.values()),
        *,
        batch: int = 5000,
        poll_seconds: float = 0.2,
    ) -> None:
        self.pool = pool
        self.views = list(views)
        self.batch = batch
        self.poll_seconds = poll_seconds

    async def catch_up(self) -> int:
        """Project everything visible in the log into every view; returns events projected."""
        total = 0
        for view in self.views:
            total += await catch_up_view(self.pool, view, batch=self.batch)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up, wait, repeat, until `stop` is set; a failed round is logged and retried."""
        while not stop.is_set():
            try:
                await self.catch_up()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("projector round failed, will retry: %s", exc)
            except Exception:  # an event no view can fold must not end the projector silently
                log.exception("projector round failed, will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
