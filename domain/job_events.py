"""Job and execution events. Every type starts with `job.`, so the relay puts them all on the
`taskstream.job` topic; a job's stream is `job-<id>`, an execution's `execution-<id>`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from domain.job_definition import JobDefinition, JobRetryPolicy, JobTask


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    at: datetime


# --- the job's stream ---------------------------------------------------------------------


class JobCreated(_Event, frozen=True, tag="job.created"):
    job_id: str
    project_id: str
    definition: JobDefinition
    next_fire_at: datetime | None = None


class JobUpdated(_Event, frozen=True, tag="job.updated"):
    """A new definition version (the version is the count of created + updated events)."""

    definition: JobDefinition
    changed: tuple[str, ...]
    next_fire_at: datetime | None = None


class JobPaused(_Event, frozen=True, tag="job.paused"):
    pass


class JobResumed(_Event, frozen=True, tag="job.resumed"):
    next_fire_at: datetime | None = None


class JobDeleted(_Event, frozen=True, tag="job.deleted"):
    pass


class JobTriggered(_Event, frozen=True, tag="job.triggered"):
    """An execution was asked for; `admitted` says whether it may start now or waits."""

    execution_id: str
    trigger: str  # manual | schedule
    admitted: bool
    scheduled_for: datetime | None = None
    missed: int = 0  # earlier fire times folded into this one by the misfire policy
    next_fire_at: datetime | None = None


class JobFireSkipped(_Event, frozen=True, tag="job.fire_skipped"):
    """A fire time that did not run, and why (paused, max_active_runs, queue_full, misfire)."""

    scheduled_for: datetime
    reason: str
    missed: int = 0
    next_fire_at: datetime | None = None


class JobExecutionAdmitted(_Event, frozen=True, tag="job.execution_admitted"):
    """A waiting execution got one of the job's maxActiveRuns places."""

    execution_id: str


class JobExecutionEnded(_Event, frozen=True, tag="job.execution_ended"):
    execution_id: str


JobEvent = (
    JobCreated
    | JobUpdated
    | JobPaused
    | JobResumed
    | JobDeleted
    | JobTriggered
    | JobFireSkipped
    | JobExecutionAdmitted
    | JobExecutionEnded
)


# --- an execution's stream ---------------------------------------------------------------


class ExecutionCreated(_Event, frozen=True, tag="job.execution.created"):
    execution_id: str
    job_id: str
    project_id: str
    job_name: str
    definition_version: int
    tasks: tuple[JobTask, ...]
    retry_policy: JobRetryPolicy
    params: Any = None
    trigger: str = "manual"
    scheduled_for: datetime | None = None


class ExecutionStarted(_Event, frozen=True, tag="job.execution.started"):
    pass


class ExecutionSucceeded(_Event, frozen=True, tag="job.execution.succeeded"):
    pass


class ExecutionFailed(_Event, frozen=True, tag="job.execution.failed"):
    failed_tasks: tuple[str, ...]


class ExecutionCancelled(_Event, frozen=True, tag="job.execution.cancelled"):
    reason: str | None = None


class ExecutionRetried(_Event, frozen=True, tag="job.execution.retried"):
    """A new round for `tasks` (failed, upstream-failed, cancelled and what depends on them)."""

    tasks: tuple[str, ...]
    round: int


class NodeQueued(_Event, frozen=True, tag="job.task.queued"):
    """The task's trigger rule is met; its run on the core is `core_task_id`."""

    task_id: str
    core_task_id: str


class NodeStarted(_Event, frozen=True, tag="job.task.started"):
    task_id: str
    attempt: int


class NodeRetrying(_Event, frozen=True, tag="job.task.retrying"):
    task_id: str
    attempt: int  # the attempt that failed
    error: str
    next_attempt_at: datetime | None = None


class NodeSucceeded(_Event, frozen=True, tag="job.task.succeeded"):
    task_id: str
    attempt: int


class NodeFailed(_Event, frozen=True, tag="job.task.failed"):
    """Failed for good: no retry is left under its retryPolicy."""

    task_id: str
    attempt: int
    error: str


class NodeSkipped(_Event, frozen=True, tag="job.task.skipped"):
    """Never runs: its trigger rule can no longer be met (UPSTREAM_FAILED or SKIPPED)."""

    task_id: str
    status: str
    reason: str


class NodeCancelled(_Event, frozen=True, tag="job.task.cancelled"):
    task_id: str


ExecutionEvent = (
    ExecutionCreated
    | ExecutionStarted
    | ExecutionSucceeded
    | ExecutionFailed
    | ExecutionCancelled
    | ExecutionRetried
    | NodeQueued
    | NodeStarted
    | NodeRetrying
    | NodeSucceeded
    | NodeFailed
    | NodeSkipped
    | NodeCancelled
)


def type_of(event: JobEvent | ExecutionEvent) -> str:
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag
