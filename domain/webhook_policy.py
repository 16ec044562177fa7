"""Which events become webhooks, what they say, and when a failed delivery is tried again. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from domain.task import TaskState, public_status

# Seed 002's list. Worker events reach only endpoints that name them: workers are shared.
TASK_EVENTS = frozenset(
    {"task.created", "task.started", "task.completed", "task.failed", "task.cancelled",
     "task.retrying"}
)  # fmt: skip
WORKER_EVENTS = frozenset({"worker.registered", "worker.offline"})
# Job lifecycle (docs/jobs.md): only to endpoints that name them, and only of their own project.
JOB_EVENTS = frozenset(
    {"job.execution.started", "job.execution.succeeded", "job.execution.failed",
     "job.execution.cancelled", "job.task.started", "job.task.succeeded", "job.task.failed",
     "job.task.retrying", "job.task.skipped"}
)  # fmt: skip
SUPPORTED_EVENTS = TASK_EVENTS | WORKER_EVENTS | JOB_EVENTS

# Standard Webhooks' suggested schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_RETRY_AFTER_SECONDS = 86_400


class TaskSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    status: str
    result: Any
    error: str | None
    started_at: datetime | None
    completed_at: datetime | None


class TaskWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """Seed 002's webhook payload, plus where the event sits in the log.

    Deliveries about one task go out in log order per endpoint; `event_id` and `stream_version`
    let a receiver drop a repeat and check it has seen every earlier event of the task.
    """

    event: str
    timestamp: datetime
    task: TaskSnapshot
    event_id: str
    stream_version: int


class JobWebhook(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A job event's payload: which execution, and the event as the log holds it."""

    event: str
    timestamp: datetime
    job_id: str
    execution_id: str
    data: msgspec.Raw


def job_payload(
    event_type: str, at: datetime, stream_id: str, job_id: str, data: bytes
) -> JobWebhook:
    return JobWebhook(
        event=event_type,
        timestamp=at,
        job_id=job_id,
        execution_id=stream_id.removeprefix("execution-"),
        data=msgspec.Raw(data),
    )


def wants(endpoint_events: tuple[str, ...], event_type: str) -> bool:
    """Whether an endpoint with this filter (empty: every task event) gets `event_type`."""
    if event_type not in SUPPORTED_EVENTS:
        return False
    if not endpoint_events:
        return event_type in TASK_EVENTS
    return event_type in endpoint_events


def task_payload(event_type: str, at: datetime, state: TaskState, *, event_id: str) -> TaskWebhook:
    """The payload for a task event, from the task as that event left it."""
    return TaskWebhook(
        event=event_type,
        timestamp=at,
        event_id=event_id,
        stream_version=state.version,
        task=TaskSnapshot(
            id=state.task_id,
            name=state.definition.name,
            status=public_status(state),
            result=state.result,
            error=state.error,
            started_at=state.started_at,
            completed_at=state.completed_at,
        ),
    )


def next_attempt(
    attempts_made: int,
    *,
    now: datetime,
    status_code: int | None,
    retry_after: str | None,
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
) -> datetime | None:
    """When to try again after a failed attempt, or None when the schedule is used up."""
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1]
    if status_code == 429 and retry_after is not None and retry_after.strip().isdigit():
        delay = max(delay, min(float(retry_after.strip()), MAX_RETRY_AFTER_SECONDS))
    return now + timedelta(seconds=delay)
