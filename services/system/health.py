"""The components part of `GET /api/system/status`: each probed with a deadline, at once.

Health words: `healthy`; `degraded` (up, but behind or with no capacity); `down` (did not
answer); `disabled` (not running here by configuration, e.g. no Kafka relay has ever run);
`unknown` (nothing to ask, e.g. the embedded broker inside `taskstream dev`). Log readers are
judged by their checkpoint: the scheduler by its webhook pump's (it runs in every scheduler
tick), the projector by its slowest view's, the relay by its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

import asyncpg

from infra.broker_probe import broker_kind, broker_reachable
from infra.checkpointed_feed import FeedLag, feed_lag
from infra.settings import Settings
from projections.views import VIEWS
from services.fleet.registry import worker_status_counts
from services.streaming.relay import CHECKPOINT as RELAY_CHECKPOINT
from services.system import schemas as ss
from services.webhooks.pump import CHECKPOINT as PUMP_CHECKPOINT

T = TypeVar("T")
R = TypeVar("R", bound=ss.LogReaderOut)

# A reader whose oldest unread event is older than this is behind.
BEHIND_SECONDS = 60.0
PROBE_SECONDS = 2.0
# InternalClientError: what asyncpg raises when the server drops a connection mid-query.
_DB_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


async def _bounded(probe: Awaitable[T]) -> T:
    return await asyncio.wait_for(probe, PROBE_SECONDS)


async def database(pool: asyncpg.Pool) -> ss.DatabaseOut:
    """Up if it answers; how many connections this database has."""
    try:
        count = await _bounded(
            pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
        )
    except _DB_ERRORS:
        return ss.DatabaseOut(status="down")
    return ss.DatabaseOut(status="healthy", connection_count=int(count))


async def broker(url: str | None) -> ss.BrokerOut:
    """The dramatiq broker named by TASKSTREAM_BROKER_URL, probed without logging in."""
    reachable = await broker_reachable(url, within=PROBE_SECONDS)
    status: ss.Health = "unknown" if reachable is None else "healthy" if reachable else "down"
    return ss.BrokerOut(status=status, kind=broker_kind(url))


async def log_reader(
    pool: asyncpg.Pool, names: Sequence[str], out: type[R], *, missing: ss.Health
) -> R:
    """The slowest of the readers `names`; `missing` if any of them never ran."""
    try:
        lags: list[FeedLag | None] = [await _bounded(feed_lag(pool, name)) for name in names]
    except _DB_ERRORS:
        return out(status="down")
    known = [lag for lag in lags if lag is not None]
    if not names or len(known) < len(names):
        return out(status=missing)
    worst = max(known, key=lambda lag: lag.seconds)
    return out(
        status="degraded" if worst.seconds > BEHIND_SECONDS else "healthy",
        lag_events=worst.events,
        lag_seconds=round(worst.seconds, 3),
    )


async def workers(pool: asyncpg.Pool) -> ss.WorkersOut:
    """Worker counts by status; degraded when no worker is online."""
    try:
        counts = await _bounded(worker_status_counts(pool))
    except _DB_ERRORS:
        return ss.WorkersOut(status="unknown", active_count=0, idle_count=0, offline_count=0)
    online = counts["active"] + counts["idle"]
    return ss.WorkersOut(
        status="healthy" if online else "degraded",
        active_count=counts["active"],
        idle_count=counts["idle"],
        offline_count=counts["offline"],
    )


async def components(pool: asyncpg.Pool, settings: Settings) -> ss.ComponentsOut:
    """Every component's health, probed concurrently, each within PROBE_SECONDS."""
    db, brk, scheduler, projector, relay, fleet = await asyncio.gather(
        database(pool),
        broker(settings.broker_url),
        log_reader(pool, [PUMP_CHECKPOINT], ss.SchedulerOut, missing="unknown"),
        log_reader(pool, sorted(VIEWS), ss.LogReaderOut, missing="unknown"),
        log_reader(pool, [RELAY_CHECKPOINT], ss.LogReaderOut, missing="disabled"),
        workers(pool),
    )
    return ss.ComponentsOut(
        api_server=ss.ApiServerOut(status="healthy"),
        scheduler=scheduler,
        workers=fleet,
        database=db,
        broker=brk,
        kafka_relay=relay,
        projector=projector,
    )


def overall(c: ss.ComponentsOut) -> ss.Overall:
    """unhealthy without the database; degraded if any other part is degraded or down."""
    if c.database.status == "down":
        return "unhealthy"
    parts = (c.scheduler, c.workers, c.broker, c.kafka_relay, c.projector)
    return "degraded" if any(p.status in ("degraded", "down") for p in parts) else "healthy"
