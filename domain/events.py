"""Task events: past-tense facts, the only thing the log stores.

The tag of each struct is its `type` in the log and on Kafka. Payloads evolve under msgspec's
rules (new fields get defaults, existing fields never change type); `SCHEMA_VERSION` is bumped
when an upcaster is needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from domain.task_definition import TaskDefinition

SCHEMA_VERSION = 1


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    at: datetime


class TaskCreated(_Event, frozen=True, tag="task.created"):
    task_id: str
    project_id: str
    definition: TaskDefinition
    next_run_at: datetime | None


class TaskUpdated(_Event, frozen=True, tag="task.updated"):
    definition: TaskDefinition
    changed: tuple[str, ...]
    next_run_at: datetime | None


class TaskPaused(_Event, frozen=True, tag="task.paused"):
    pass


class TaskResumed(_Event, frozen=True, tag="task.resumed"):
    next_run_at: datetime | None


class TaskCancelled(_Event, frozen=True, tag="task.cancelled"):
    reason: str | None = None
    run_id: str | None = None  # the run this stopped, if one was under way


class TaskDeleted(_Event, frozen=True, tag="task.deleted"):
    run_id: str | None = None  # the run this stopped, if one was under way


class TaskCheckpointed(_Event, frozen=True, tag="task.checkpointed"):
    data: Any
    run_id: str | None = None


class TaskTriggered(_Event, frozen=True, tag="task.triggered"):
    """One extra run requested now; the schedule is untouched."""

    due_at: datetime
    event: str | None = None  # the event that fired it; None for a caller's run-now
    event_payload: Any = None


class TaskSnoozed(_Event, frozen=True, tag="task.snoozed"):
    next_run_at: datetime
    reason: str | None = None


class TaskMisfired(_Event, frozen=True, tag="task.misfired"):
    """Occurrences missed while nothing was running, and what the misfire policy did with them."""

    missed: int
    policy: str
    first_missed_at: datetime
    last_missed_at: datetime
    next_run_at: datetime | None = None


class TaskOccurrenceSkipped(_Event, frozen=True, tag="task.occurrence_skipped"):
    """An occurrence came due while the last run was still going; the overlap policy skipped it."""

    due_at: datetime
    reason: str
    next_run_at: datetime | None


class TaskDispatched(_Event, frozen=True, tag="task.dispatched"):
    run_id: str
    attempt: int
    due_at: datetime
    lease_until: datetime
    next_run_at: datetime | None = None


class TaskStarted(_Event, frozen=True, tag="task.started"):
    run_id: str
    attempt: int
    worker_id: str
    lease_until: datetime


class TaskCompleted(_Event, frozen=True, tag="task.completed"):
    run_id: str
    attempt: int
    result: Any = None
    duration_ms: float = 0.0


class TaskFailed(_Event, frozen=True, tag="task.failed"):
    run_id: str
    attempt: int
    error: str
    reason: str = "error"
    duration_ms: float = 0.0
    final: bool = True
    http_status: int | None = None  # an HTTP action's answer, when there was one


class TaskRetrying(_Event, frozen=True, tag="task.retrying"):
    """A new attempt is due at `next_attempt_at`; `manual` marks a retry a user asked for."""

    run_id: str
    attempt: int
    next_attempt_at: datetime
    reason: str = "policy"
    manual: bool = False


TaskEvent = (
    TaskCreated
    | TaskUpdated
    | TaskPaused
    | TaskResumed
    | TaskCancelled
    | TaskDeleted
    | TaskCheckpointed
    | TaskTriggered
    | TaskSnoozed
    | TaskMisfired
    | TaskOccurrenceSkipped
    | TaskDispatched
    | TaskStarted
    | TaskCompleted
    | TaskFailed
    | TaskRetrying
)


def event_type(event: TaskEvent) -> str:
    """The dotted type name the log stores for `event`."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag
