"""A task's runs, folded from its events: one entry per (run id, attempt), newest last."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import msgspec

from domain.events import TaskCompleted, TaskDispatched, TaskEvent, TaskFailed, TaskStarted

RunStatus = Literal["dispatched", "running", "completed", "failed"]


class Run(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    attempt: int
    status: RunStatus
    due_at: datetime
    dispatched_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    # Why a failed run failed: "error", "timeout", "worker_lost", ... (TaskFailed.reason).
    reason: str | None = None


def runs_of(events: Iterable[TaskEvent]) -> list[Run]:
    """Every run the events record, in dispatch order. Events of other kinds are ignored."""
    runs: dict[tuple[str, int], Run] = {}
    for e in events:
        if isinstance(e, TaskDispatched):
            runs[(e.run_id, e.attempt)] = Run(
                run_id=e.run_id,
                attempt=e.attempt,
                status="dispatched",
                due_at=e.due_at,
                dispatched_at=e.at,
            )
            continue
        if not isinstance(e, TaskStarted | TaskCompleted | TaskFailed):
            continue
        run = runs.get((e.run_id, e.attempt))
        if run is None:  # a start or outcome without its dispatch cannot be placed
            continue
        if isinstance(e, TaskStarted):
            run = msgspec.structs.replace(
                run, status="running", started_at=e.at, worker_id=e.worker_id
            )
        elif isinstance(e, TaskCompleted):
            run = msgspec.structs.replace(
                run, status="completed", finished_at=e.at, duration_ms=e.duration_ms
            )
        else:
            run = msgspec.structs.replace(
                run,
                status="failed",
                finished_at=e.at,
                duration_ms=e.duration_ms,
                error=e.error,
                reason=e.reason,
            )
        runs[(e.run_id, e.attempt)] = run
    return list(runs.values())
