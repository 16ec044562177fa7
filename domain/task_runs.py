"""A task's runs, folded from its events: one entry per (run id, attempt), newest last.

`status`: `dispatched` (handed to the broker, not started), `running`, `completed`, `failed`
(this attempt failed; `final` says whether the task gave up), `cancelled` (the task was
cancelled while the attempt was in flight). `lateness_ms` is due -> dispatched; `http_status`
the receiver's answer, for HTTP actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import msgspec

from domain.actions import HttpAction, http_status_of
from domain.events import (
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskDispatched,
    TaskEvent,
    TaskFailed,
    TaskStarted,
    TaskUpdated,
)

RunStatus = Literal["dispatched", "running", "completed", "failed", "cancelled"]
# The event types a fold of runs needs (readers may fetch only these).
RUN_EVENT_TYPES = (
    "task.created", "task.updated", "task.cancelled", "task.dispatched", "task.started",
    "task.completed", "task.failed",
)  # fmt: skip


class Run(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    attempt: int
    status: RunStatus
    due_at: datetime
    dispatched_at: datetime
    lateness_ms: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    # Why a failed run failed: "error", "timeout", "worker_lost", ... (TaskFailed.reason).
    reason: str | None = None
    http_status: int | None = None
    final: bool | None = None


def runs_of(events: Iterable[TaskEvent]) -> list[Run]:
    """Every run the events record, in dispatch order. Events of other kinds are ignored."""
    runs: dict[tuple[str, int], Run] = {}
    in_flight: set[tuple[str, int]] = set()
    http = False
    for e in events:
        if isinstance(e, TaskCreated | TaskUpdated):
            http = isinstance(e.definition.action, HttpAction)
            continue
        if isinstance(e, TaskCancelled):
            for key in in_flight:
                runs[key] = msgspec.structs.replace(runs[key], status="cancelled", finished_at=e.at)
            in_flight.clear()
            continue
        if isinstance(e, TaskDispatched):
            key = (e.run_id, e.attempt)
            lateness = round((e.at - e.due_at).total_seconds() * 1000, 3)
            runs[key] = Run(run_id=e.run_id, attempt=e.attempt, status="dispatched",
                            due_at=e.due_at, dispatched_at=e.at, lateness_ms=lateness)  # fmt: skip
            in_flight.add(key)
            continue
        if not isinstance(e, TaskStarted | TaskCompleted | TaskFailed):
            continue
        key = (e.run_id, e.attempt)
        run = runs.get(key)
        if run is None:  # a start or outcome without its dispatch cannot be placed
            continue
        if isinstance(e, TaskStarted):
            run = msgspec.structs.replace(
                run, status="running", started_at=e.at, worker_id=e.worker_id
            )
        elif isinstance(e, TaskCompleted):
            run = msgspec.structs.replace(
                run, status="completed", finished_at=e.at, duration_ms=e.duration_ms,
                http_status=http_status_of(e.result) if http else None, final=True,
            )  # fmt: skip
            in_flight.discard(key)
        else:
            run = msgspec.structs.replace(
                run,
                status="failed",
                finished_at=e.at,
                # An attempt that never started (its worker was lost first) took no time.
                duration_ms=e.duration_ms if run.started_at is not None else None,
                error=e.error,
                reason=e.reason,
                http_status=e.http_status,
                final=e.final,
            )
            in_flight.discard(key)
        runs[key] = run
    return list(runs.values())
