"""The scheduler: claims due tasks, records each decision, hands runs to the broker.

Any number of replicas may run. Each claims a batch of due tasks with
`FOR UPDATE SKIP LOCKED` in a short transaction of its own, then records `task.dispatched`
through the normal append path with the version it read, so a task another replica (or a
user's cancel) touched in between is a harmless conflict. The broker message goes out only
after the append commits; if it is lost, or the process dies first, the run's lease expires and
the sweep below fails it as `worker_lost` and retries it from the log.

It sleeps until the earliest due time (a timer) or until PostgreSQL notifies `ts_due`, whichever
comes first, so there is no fixed polling period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import NamedTuple

import asyncpg
import msgspec

from domain.errors import DomainError
from domain.events import TaskCancelled, TaskDispatched, TaskEvent
from domain.execution import decide_dispatch, decide_lease_expired, dependency_verdict
from domain.task import TaskState
from infra import idempotency_store
from infra.event_store import ConcurrencyLimited, Slot, WrongExpectedVersion
from infra.json_codec import decode_state
from services.fleet.registry import sweep_offline
from services.jobs.sweep import JobSweeper
from services.tasks.service import Actor, TaskService
from services.webhooks.pump import WebhookPump

log = logging.getLogger(__name__)


class RunMessage(NamedTuple):
    """A dispatched run to hand to the workers."""

    task_id: str
    run_id: str
    attempt: int


SendRuns = Callable[[list[RunMessage]], Awaitable[None]]

_CLAIM_DUE = """
WITH due AS (
    SELECT task_id FROM task_view
     WHERE lifecycle = 'active' AND next_run_at <= now()
       AND (claimed_until IS NULL OR claimed_until < now())
     ORDER BY priority DESC, next_run_at
     LIMIT $1
     FOR UPDATE SKIP LOCKED
)
UPDATE task_view t SET claimed_until = now() + make_interval(secs => $2), claimed_by = $3
  FROM due WHERE t.task_id = due.task_id
RETURNING t.state::text, t.lease_until, now() AS db_now
"""

_CLAIM_EXPIRED = """
WITH lost AS (
    SELECT task_id FROM task_view
     WHERE status IN ('dispatched', 'running') AND lease_until < now()
       AND (claimed_until IS NULL OR claimed_until < now())
     LIMIT $1
     FOR UPDATE SKIP LOCKED
)
UPDATE task_view t SET claimed_until = now() + make_interval(secs => $2), claimed_by = $3
  FROM lost WHERE t.task_id = lost.task_id
RETURNING t.state::text, t.lease_until, now() AS db_now
"""

_RECHECK_SOON = """
UPDATE task_view SET claimed_until = now() + make_interval(secs => $2) WHERE task_id = $1
"""

_DEPENDENCY_STATUSES = """
SELECT task_id, status FROM task_view
 WHERE project_id = $1 AND task_id = ANY($2::text[]) AND lifecycle <> 'deleted'
"""

_NEXT_WAKE = """
SELECT GREATEST(0, EXTRACT(EPOCH FROM min(next_run_at) - now()))::float8
  FROM task_view
 WHERE lifecycle = 'active' AND next_run_at IS NOT NULL
   AND (claimed_until IS NULL OR claimed_until < now())
"""


class SchedulerConfig(msgspec.Struct, frozen=True, kw_only=True):
    batch: int = 200
    # Claim loops per replica: while one batch's events are being committed, the next batch is
    # claimed (claims skip each other's rows, as between replicas).
    dispatchers: int = 4
    claim_seconds: float = 10.0
    # How long a dispatched run may wait for a worker before it counts as lost.
    dispatch_lease_seconds: float = 60.0
    # The lease sweep runs at least this often...
    sweep_seconds: float = 1.0
    # ...and, with the webhook pump, at most this often however often the scheduler is woken.
    housekeeping_seconds: float = 0.1
    # How soon a task waiting for its dependencies or a concurrency slot is looked at again.
    dependency_recheck_seconds: float = 0.5
    # A worker whose heartbeat is older than this is marked offline (worker.offline).
    worker_offline_seconds: float = 30.0
    # How often expired Idempotency-Key reservations (older than 24 h) are deleted.
    idempotency_sweep_seconds: float = 60.0


class Scheduler:
    """One scheduler replica."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tasks: TaskService,
        send_runs: SendRuns,
        *,
        config: SchedulerConfig = SchedulerConfig(),
        scheduler_id: str | None = None,
        webhooks: WebhookPump | None = None,
        jobs: JobSweeper | None = None,
    ) -> None:
        self.pool = pool
        self.tasks = tasks
        self.send_runs = send_runs
        self.config = config
        self.id = scheduler_id or f"scheduler-{uuid.uuid4().hex[:8]}"
        self.actor = Actor("scheduler", self.id)
        self.webhooks = webhooks
        self.jobs = jobs
        self._wake = asyncio.Event()
        self.dispatched = 0
        self._housekept = -math.inf
        self._keys_swept = -math.inf

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set."""
        listener = await self.pool.acquire()

        def on_notify(*_: object) -> None:
            self._wake.set()

        try:
            await listener.add_listener("ts_due", on_notify)
            while not stop.is_set():
                try:
                    wait = await self.tick()
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("scheduler tick failed, retrying: %s", exc)
                    wait = 1.0
                self._wake.clear()
                await _wait_any(self._wake, stop, seconds=wait)
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener("ts_due", on_notify)
            await self.pool.release(listener)

    async def tick(self) -> float:
        """Dispatch what is due and, at most every `housekeeping_seconds`, sweep lost leases and
        silent workers, fire due jobs and pump webhooks; returns seconds until there may be more
        to do."""
        await asyncio.gather(*(self._drain() for _ in range(self.config.dispatchers)))
        wake_in = await self.pool.fetchval(_NEXT_WAKE)
        waits = [self.config.sweep_seconds, wake_in if wake_in is not None else 3600.0]
        since = time.monotonic() - self._housekept
        if since < self.config.housekeeping_seconds:
            # Every append of a run's events wakes us (the task view's notify): housekeeping
            # at each of those wakes cost more CPU than the dispatching during a burst.
            waits.append(self.config.housekeeping_seconds - since)
            return min(waits)
        self._housekept = time.monotonic()
        await self.sweep_leases()
        await sweep_offline(
            self.pool,
            after_seconds=self.config.worker_offline_seconds,
            actor=f"scheduler:{self.id}",
        )
        if self._housekept - self._keys_swept >= self.config.idempotency_sweep_seconds:
            self._keys_swept = self._housekept
            await idempotency_store.sweep(self.pool)
        if self.jobs is not None:
            await self.jobs.tick()
        if self.webhooks is not None:
            hook_wait = await self.webhooks.tick()
            if hook_wait is not None:
                waits.append(hook_wait)
        return min(waits)

    async def _drain(self) -> None:
        while await self.dispatch_due() >= self.config.batch:
            pass

    async def dispatch_due(self) -> int:
        """Claim one batch of due tasks and dispatch them; returns how many were claimed."""
        rows = await self.pool.fetch(
            _CLAIM_DUE, self.config.batch, self.config.claim_seconds, self.id
        )
        runs = await asyncio.gather(
            *(self._dispatch(decode_state(r[0]), r["db_now"]) for r in rows)
        )
        await self._send([run for batch in runs for run in batch])
        return len(rows)

    async def _dispatch(self, state: TaskState, now: datetime) -> list[RunMessage]:
        if state.definition.dependencies and state.run_status not in ("dispatched", "running"):
            verdict, reason = dependency_verdict(state, await self._statuses(state))
            if verdict == "wait":
                # Look again soon: a dependency finishing does not touch this task's row.
                await self.pool.execute(
                    _RECHECK_SOON, state.task_id, self.config.dependency_recheck_seconds
                )
                return []
            if verdict == "cancel":
                return await self._record(state, [TaskCancelled(at=now, reason=reason)])
        try:
            events = decide_dispatch(
                state,
                now=now,
                run_id=str(uuid.uuid4()),
                lease_seconds=self.config.dispatch_lease_seconds,
            )
        except DomainError as exc:  # a schedule that can no longer be evaluated
            log.error("task %s cannot be dispatched: %s", state.task_id, exc)
            return []
        return await self._record(state, events)

    async def _statuses(self, state: TaskState) -> dict[str, str]:
        rows = await self.pool.fetch(
            _DEPENDENCY_STATUSES, state.project_id, list(state.definition.dependencies)
        )
        return {r["task_id"]: r["status"] for r in rows}

    async def sweep_leases(self) -> int:
        """Fail runs whose lease ran out (worker died, message lost); returns how many."""
        rows = await self.pool.fetch(
            _CLAIM_EXPIRED, self.config.batch, self.config.claim_seconds, self.id
        )
        runs: list[RunMessage] = []
        for row in rows:
            state = msgspec.structs.replace(decode_state(row[0]), lease_until=row["lease_until"])
            events = decide_lease_expired(state, now=row["db_now"], random_unit=random.random())
            runs += await self._record(state, events)
        await self._send(runs)
        return len(rows)

    async def _record(self, state: TaskState, events: list[TaskEvent]) -> list[RunMessage]:
        """Append the decided events; returns the runs they dispatched, to be sent."""
        if not events:
            return []
        key = state.definition.concurrency_key
        dispatching = any(isinstance(e, TaskDispatched) for e in events)
        slot = Slot(key, state.definition.concurrency_limit) if key and dispatching else None
        try:
            await self.tasks.record(state, events, actor=self.actor, slot=slot)
        except WrongExpectedVersion:
            return []  # someone changed the task meanwhile; it is re-claimed if still due
        except ConcurrencyLimited:
            # Stays due; look again shortly (a finishing run does not touch this task's row).
            await self.pool.execute(
                _RECHECK_SOON, state.task_id, self.config.dependency_recheck_seconds
            )
            return []
        return [
            RunMessage(state.task_id, e.run_id, e.attempt)
            for e in events
            if isinstance(e, TaskDispatched)
        ]

    async def _send(self, runs: list[RunMessage]) -> None:
        """Hand runs to the workers in one go; a run whose message is lost is re-run by lease."""
        if not runs:
            return
        self.dispatched += len(runs)
        try:
            await self.send_runs(runs)
        except Exception as exc:  # the lease sweep recovers every run not sent
            log.warning("could not send %d runs: %s", len(runs), exc)


async def _wait_any(*events: asyncio.Event, seconds: float) -> None:
    """Return when any event is set or `seconds` pass."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
