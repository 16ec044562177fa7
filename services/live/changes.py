"""Change signals for live pages: the log feed read on a timer, coalesced per project.

One reader per process follows the events table (never a NOTIFY per event: NOTIFY serialises
every committing transaction that sends one) from where the log ended when the first watcher
arrived, and only while somebody watches. Each watcher gets the set of topics that changed
since it last looked, so a burst of a thousand events is one signal, not a thousand:

- `tasks`: any task of the watcher's project changed (lists, counts, dead letters);
- `task_<id>` (`task_topic`): that task changed (its detail page);
- `workers`: a worker registered, went offline (workers are shared: every project hears it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable

import asyncpg

from infra.event_store import Checkpoint, FeedHead, feed_end, feed_heads

log = logging.getLogger(__name__)

TASK_STREAM = "task-"
WORKER_STREAM = "worker-"
BATCH = 5000


_NOT_SYMBOL = re.compile(r"[^A-Za-z0-9_]")


def task_topic(task_id: str) -> str:
    """The topic of one task: letters, digits and `_` only, as htmx's trigger syntax needs."""
    return "task_" + _NOT_SYMBOL.sub("_", task_id)


def topics_of(head: FeedHead) -> tuple[str, ...]:
    """The topics one logged event touches."""
    if head.stream_id.startswith(TASK_STREAM):
        return ("tasks", task_topic(head.stream_id.removeprefix(TASK_STREAM)))
    if head.stream_id.startswith(WORKER_STREAM):
        return ("workers",)
    return ()


class Watcher:
    """One live page's inbox: the topics changed since it last took them."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.pending: set[str] = set()
        self.wake = asyncio.Event()

    def offer(self, topics: Iterable[str]) -> None:
        before = len(self.pending)
        self.pending.update(topics)
        if len(self.pending) > before:
            self.wake.set()

    async def next(self, within: float) -> set[str]:
        """The changed topics, waiting up to `within` seconds for one (empty: none came)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), within)
        self.wake.clear()
        taken, self.pending = self.pending, set()
        return taken


class ChangeFeed:
    """Follows the log for every watcher of this process; started by the first watcher."""

    def __init__(self, *, interval: float = 0.5) -> None:
        self.interval = interval
        self._watchers: set[Watcher] = set()
        self._reader: asyncio.Task[None] | None = None
        self._after: Checkpoint | None = None
        self.closed = False

    @contextlib.asynccontextmanager
    async def watch(self, pool: asyncpg.Pool, project_id: str) -> AsyncIterator[Watcher]:
        watcher = Watcher(project_id)
        self._watchers.add(watcher)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._follow(pool))
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)

    async def close(self) -> None:
        self.closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for watcher in self._watchers:
            watcher.wake.set()

    async def _follow(self, pool: asyncpg.Pool) -> None:
        while self._watchers:
            try:
                if self._after is None:
                    self._after = await feed_end(pool)
                heads, self._after = await feed_heads(pool, self._after, BATCH)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("change feed: %s", exc)
                heads = []
            if heads:
                self.publish(heads)
            if len(heads) < BATCH:
                await asyncio.sleep(self.interval)
        # Nobody watches: the next watcher starts from where the log ends then.
        self._after = None

    def publish(self, heads: Iterable[FeedHead]) -> None:
        """Hand each watcher the topics of its project (and the shared ones)."""
        by_project: dict[str, set[str]] = {}
        shared: set[str] = set()
        for head in heads:
            topics = topics_of(head)
            if topics == ("workers",):
                shared.add("workers")
            elif topics:
                by_project.setdefault(head.project_id, set()).update(topics)
        for watcher in self._watchers:
            watcher.offer(by_project.get(watcher.project_id, set()) | shared)
