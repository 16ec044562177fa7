"""The worker registry: who is out there, how loaded, and what each is doing for a project.

A worker process keeps one row of `workers` up to date with a heartbeat (last_heartbeat and its
resource use). Heartbeats are not events: they would flood the log with nothing anyone replays.
Registration and going offline are events, `worker.registered` / `worker.offline` on the stream
`worker-<worker_id>` of project `_system`, appended after the row changes.

Every change of a worker's online state (register, revive, stop, sweep) happens under a session
advisory lock per worker, held until its event is appended: the row is the claim (`UPDATE …
WHERE offline_at IS NULL … RETURNING`, so two schedulers sweeping at once append one
`worker.offline`), and the lock keeps a worker's events in the order its row changed, e.g. a
heartbeat reviving a worker a sweep has just marked offline appends `worker.registered` only
after that sweep's `worker.offline`. The lock key differs from `ts_append`'s stream lock, which
the append takes on another connection while this one is held.

The reads at the bottom serve GET /api/workers: workers are shared infrastructure, visible to
every project, but every task id, task list and count they return is the caller project's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec
import psutil

from infra.event_store import EventStore, NewEvent
from infra.json_codec import encode
from services.metrics.catalog import WORKER_HEARTBEATS

log = logging.getLogger(__name__)

SYSTEM_PROJECT = "_system"
REGISTERED = "worker.registered"
OFFLINE = "worker.offline"


def stream_of(worker_id: str) -> str:
    return f"worker-{worker_id}"


class WorkerEventData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The data of worker.registered / worker.offline (`reason` only on worker.offline)."""

    worker_id: str
    hostname: str
    version: str
    at: datetime
    reason: str | None = None


class Resources(msgspec.Struct, frozen=True):
    cpu_usage: float
    memory_usage: float
    disk_usage: float


def sample_resources() -> Resources:
    """This machine's CPU (since the previous call), memory and root-disk use, as 0 to 1."""
    return Resources(
        psutil.cpu_percent() / 100,
        psutil.virtual_memory().percent / 100,
        psutil.disk_usage("/").percent / 100,
    )


_REGISTER = """
INSERT INTO workers (worker_id, hostname, version, tags, registered_at, last_heartbeat,
                     offline_at, cpu_usage, memory_usage, disk_usage)
VALUES ($1, $2, $3, $4, now(), now(), NULL, $5, $6, $7)
ON CONFLICT (worker_id) DO UPDATE SET
    hostname = EXCLUDED.hostname, version = EXCLUDED.version, tags = EXCLUDED.tags,
    registered_at = now(), last_heartbeat = now(), offline_at = NULL,
    cpu_usage = EXCLUDED.cpu_usage, memory_usage = EXCLUDED.memory_usage,
    disk_usage = EXCLUDED.disk_usage
RETURNING registered_at AS at
"""

# A heartbeat also revives a worker a sweep marked offline (a long pause, a partition): it
# reports the offline_at it overwrote so the caller can record the re-registration.
_HEARTBEAT = """
WITH prev AS (SELECT offline_at FROM workers WHERE worker_id = $1 FOR UPDATE)
UPDATE workers w
   SET last_heartbeat = now(), offline_at = NULL,
       cpu_usage = $2, memory_usage = $3, disk_usage = $4
  FROM prev
 WHERE w.worker_id = $1
RETURNING prev.offline_at AS was_offline_at, w.hostname, w.version, now() AS at
"""

_STOP = """
UPDATE workers SET offline_at = now()
 WHERE worker_id = $1 AND offline_at IS NULL
RETURNING hostname, version, offline_at AS at
"""

_STALE = """
SELECT worker_id FROM workers
 WHERE offline_at IS NULL AND last_heartbeat < now() - make_interval(secs => $1)
 ORDER BY worker_id
"""

_CLAIM_STALE = """
UPDATE workers SET offline_at = now()
 WHERE worker_id = $1 AND offline_at IS NULL
   AND last_heartbeat < now() - make_interval(secs => $2)
RETURNING hostname, version, offline_at AS at
"""

_REOFFLINE = "UPDATE workers SET offline_at = $2 WHERE worker_id = $1 AND offline_at IS NULL"

_UNCLAIM = "UPDATE workers SET offline_at = NULL WHERE worker_id = $1 AND offline_at = $2"


@contextlib.asynccontextmanager
async def _worker_lock(pool: asyncpg.Pool, worker_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding this worker's registry lock (not the stream's append lock)."""
    async with pool.acquire() as conn:
        key = "registry:" + stream_of(worker_id)
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
        try:
            yield conn
        finally:
            # If this fails the connection is broken; the pool's reset unlocks all anyway.
            with contextlib.suppress(Exception):
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)


async def _append(
    pool: asyncpg.Pool, event_type: str, data: WorkerEventData, *, actor: str
) -> None:
    await EventStore(pool).append(
        stream_of(data.worker_id),
        None,  # a worker registers again after going offline: any version
        [NewEvent(type=event_type, data=msgspec.Raw(encode(data)), metadata={"actor": actor})],
        project_id=SYSTEM_PROJECT,
    )


async def _go_offline(
    pool: asyncpg.Pool,
    worker_id: str,
    claim_sql: str,
    args: Sequence[object],
    *,
    reason: str,
    actor: str,
) -> bool:
    """Claim the row with `claim_sql` and append worker.offline once; False if not claimed."""
    async with _worker_lock(pool, worker_id) as conn:
        row = await conn.fetchrow(claim_sql, worker_id, *args)
        if row is None:
            return False
        data = WorkerEventData(
            worker_id=worker_id,
            hostname=row["hostname"],
            version=row["version"],
            at=row["at"],
            reason=reason,
        )
        try:
            await _append(pool, OFFLINE, data, actor=actor)
        except Exception:
            # Give the claim back so a later sweep records it, rather than a silent offline row.
            with contextlib.suppress(Exception):
                await conn.execute(_UNCLAIM, worker_id, row["at"])
            raise
        return True


async def sweep_offline(
    pool: asyncpg.Pool, *, after_seconds: float, actor: str = "system:worker-sweep"
) -> list[str]:
    """Mark workers silent for more than `after_seconds` offline; returns the ids this call did.

    Safe with any number of concurrent sweepers: each worker's row is claimed by one of them,
    and only the claimant appends `worker.offline`.
    """
    stale = await pool.fetch(_STALE, after_seconds)
    swept = []
    for row in stale:
        worker_id = row["worker_id"]
        claimed = await _go_offline(
            pool, worker_id, _CLAIM_STALE, [after_seconds], reason="heartbeat_timeout", actor=actor
        )
        if claimed:
            log.warning("worker %s missed its heartbeats; marked offline", worker_id)
            swept.append(worker_id)
    return swept


class WorkerRegistry:
    """One worker process's registration, heartbeat and sign-off."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        worker_id: str,
        hostname: str,
        version: str,
        tags: Sequence[str] = (),
        heartbeat_seconds: float = 5.0,
    ) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self.hostname = hostname
        self.version = version
        self.tags = list(tags)
        self.heartbeat_seconds = heartbeat_seconds
        self.actor = f"worker:{worker_id}"
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Upsert the row, append worker.registered, start the heartbeat."""
        psutil.cpu_percent()  # the first reading only sets the baseline
        await self._register()
        self._heartbeat = asyncio.create_task(
            self._beat_forever(), name=f"worker-heartbeat-{self.worker_id}"
        )

    async def stop(self) -> None:
        """Stop the heartbeat, mark the row offline, append worker.offline (unless swept)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        try:
            await _go_offline(
                self.pool, self.worker_id, _STOP, [], reason="stopped", actor=self.actor
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Shutting down anyway: the schedulers' sweep marks it offline once it goes quiet.
            log.warning("worker %s could not sign off: %s", self.worker_id, exc)

    async def heartbeat(self) -> None:
        """One heartbeat: last_heartbeat and resources; re-registers a worker marked offline."""
        r = await asyncio.to_thread(sample_resources)
        async with _worker_lock(self.pool, self.worker_id) as conn:
            row = await conn.fetchrow(
                _HEARTBEAT, self.worker_id, r.cpu_usage, r.memory_usage, r.disk_usage
            )
            if row is None:  # the row is gone: register afresh
                await self._register_locked(conn, r)
            elif row["was_offline_at"] is not None:
                log.warning(
                    "worker %s was marked offline while alive; re-registered", self.worker_id
                )
                try:
                    await self._append_registered(row["at"])
                except Exception:
                    # Stay offline in the row, so the next heartbeat records the return.
                    with contextlib.suppress(Exception):
                        await conn.execute(_REOFFLINE, self.worker_id, row["was_offline_at"])
                    raise

    async def _register(self) -> None:
        r = await asyncio.to_thread(sample_resources)
        async with _worker_lock(self.pool, self.worker_id) as conn:
            await self._register_locked(conn, r)

    async def _register_locked(self, conn: asyncpg.Connection, r: Resources) -> None:
        at = await conn.fetchval(
            _REGISTER,
            self.worker_id,
            self.hostname,
            self.version,
            self.tags,
            r.cpu_usage,
            r.memory_usage,
            r.disk_usage,
        )
        await self._append_registered(at)

    async def _append_registered(self, at: datetime) -> None:
        data = WorkerEventData(
            worker_id=self.worker_id, hostname=self.hostname, version=self.version, at=at
        )
        await _append(self.pool, REGISTERED, data, actor=self.actor)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.heartbeat()
            except Exception:  # a lost heartbeat must not end the beating
                WORKER_HEARTBEATS.labels("failed").inc()
                log.exception("worker %s heartbeat failed, will retry", self.worker_id)
            else:
                WORKER_HEARTBEATS.labels("ok").inc()


# Reads for the API. A worker is `offline` once offline_at is set, else `active` while any task
# (of any project: it is the worker's state) is running on it, else `idle`. Status and current
# runs come from the inline task view (exact at every commit); the finished-run counts from the
# projector's worker view (projections/worker_view.py), a moment behind the log.

_STATUS = """
CASE WHEN w.offline_at IS NOT NULL THEN 'offline'
     WHEN EXISTS (SELECT 1 FROM task_view v
                   WHERE v.status = 'running' AND v.state->>'worker_id' = w.worker_id)
     THEN 'active'
     ELSE 'idle' END
"""

# $1 is always the caller's project: counts and ids never cross it.
_PROJECT_FIGURES = """
(SELECT count(*) FROM task_view v
  WHERE v.status = 'running' AND v.state->>'worker_id' = w.worker_id
    AND v.project_id = $1 AND v.lifecycle <> 'deleted') AS current_tasks,
COALESCE((SELECT c.tasks_completed FROM worker_view c
            WHERE c.worker_id = w.worker_id AND c.project_id = $1), 0) AS tasks_completed,
COALESCE((SELECT c.tasks_failed FROM worker_view c
            WHERE c.worker_id = w.worker_id AND c.project_id = $1), 0) AS tasks_failed
"""

_CURRENT_IDS = """
(SELECT COALESCE(array_agg(v.task_id ORDER BY v.state->>'started_at', v.task_id), '{}')
   FROM task_view v
  WHERE v.status = 'running' AND v.state->>'worker_id' = w.worker_id
    AND v.project_id = $1 AND v.lifecycle <> 'deleted') AS current_task_ids
"""

_COLUMNS = f"""w.worker_id, w.hostname, w.version, w.tags, w.registered_at, w.last_heartbeat,
               w.cpu_usage, w.memory_usage, w.disk_usage, {_STATUS} AS status"""


WorkerStatus = Literal["active", "idle", "offline"]


class WorkerRow(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str
    hostname: str
    version: str
    tags: list[str]
    registered_at: datetime
    last_heartbeat: datetime
    status: WorkerStatus
    tasks_completed: int
    tasks_failed: int
    current_tasks: int
    cpu_usage: float
    memory_usage: float
    disk_usage: float
    current_task_ids: list[str] = []


class WorkerTaskRow(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    name: str
    status: str
    started_at: datetime | None
    priority: int


def _row(record: asyncpg.Record) -> WorkerRow:
    return WorkerRow(**dict(record))


async def list_workers(
    pool: asyncpg.Pool, project_id: str, *, status: str | None, limit: int, offset: int
) -> tuple[list[WorkerRow], int]:
    """One page of workers (newest registration first) and how many match `status`."""
    workers = f"(SELECT {_COLUMNS} FROM workers w) w"
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            f"SELECT count(*) FROM {workers} WHERE ($1::text IS NULL OR w.status = $1)", status
        )
        rows = await conn.fetch(
            f"""SELECT w.*, {_PROJECT_FIGURES}
                  FROM {workers}
                 WHERE ($2::text IS NULL OR w.status = $2)
                 ORDER BY w.registered_at DESC, w.worker_id
                 LIMIT {int(limit)} OFFSET {int(offset)}""",
            project_id,
            status,
        )
    return [_row(r) for r in rows], int(total)


async def worker_status_counts(db: asyncpg.Pool | asyncpg.Connection) -> dict[WorkerStatus, int]:
    """How many workers are active, idle and offline (every status present, 0 if none)."""
    rows = await db.fetch(
        f"SELECT s.status, count(*) AS n FROM (SELECT {_STATUS} AS status FROM workers w) s"
        " GROUP BY s.status"
    )
    counts: dict[WorkerStatus, int] = {"active": 0, "idle": 0, "offline": 0}
    counts.update({r["status"]: int(r["n"]) for r in rows})
    return counts


async def get_worker(pool: asyncpg.Pool, project_id: str, worker_id: str) -> WorkerRow | None:
    """One worker with the caller project's current task ids, or None."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS}, {_PROJECT_FIGURES}, {_CURRENT_IDS} FROM workers w"
        " WHERE w.worker_id = $2",
        project_id,
        worker_id,
    )
    return None if row is None else _row(row)


# The tasks of the caller's project whose latest run was started by this worker: running ones
# and those it ran last (a task retried on another worker moves to that worker's list).
_MINE = """
WITH starts AS (
    SELECT DISTINCT ON (e.stream_id) e.stream_id, e.version,
           (e.data->>'at')::timestamptz AS started_at
      FROM events e
     WHERE e.project_id = $1 AND e.type = 'task.started' AND e.data->>'worker_id' = $2
     ORDER BY e.stream_id, e.version DESC
)
SELECT v.task_id, v.name, v.status, s.started_at, v.priority
  FROM starts s
  JOIN task_view v ON v.task_id = substr(s.stream_id, 6) AND v.project_id = $1
 WHERE v.lifecycle <> 'deleted'
   AND ($3::text IS NULL OR v.status = $3)
   AND NOT EXISTS (SELECT 1 FROM events l
                    WHERE l.stream_id = s.stream_id AND l.version > s.version
                      AND l.type = 'task.started')
"""


async def worker_tasks(
    pool: asyncpg.Pool,
    project_id: str,
    worker_id: str,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[WorkerTaskRow], int]:
    """One page of the caller project's tasks on this worker (latest start first), and total."""
    args = (project_id, worker_id, status)
    async with pool.acquire() as conn:
        total = await conn.fetchval(f"SELECT count(*) FROM ({_MINE}) m", *args)
        rows = await conn.fetch(
            f"SELECT * FROM ({_MINE}) m ORDER BY m.started_at DESC, m.task_id"
            f" LIMIT {int(limit)} OFFSET {int(offset)}",
            *args,
        )
    return [WorkerTaskRow(**dict(r)) for r in rows], int(total)
