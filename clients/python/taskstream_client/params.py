"""Keyword arguments of the write methods: the request bodies, field names as the API spells them.

Nested values may be plain dicts or the structs of `models` (an action, for instance).
Datetimes must carry a timezone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Required, TypedDict

from taskstream_client.models import Action

ActionIn = Action | dict[str, Any]


class ScheduleIn(TypedDict, total=False):
    kind: Required[Literal["once", "cron", "rrule", "interval", "event"]]
    expr: Required[str]
    timezone: str
    start_at: datetime | None
    end_at: datetime | None


class RetryPolicyIn(TypedDict, total=False):
    max_retries: int | None
    backoff: Literal["exponential_jitter", "linear", "fixed"]
    base_seconds: float
    cap_seconds: float


class TaskFields(TypedDict, total=False):
    """Every field of a task that create and update share."""

    command: str | None
    action: ActionIn | None
    description: str | None
    priority: int
    max_retries: int
    retry_policy: RetryPolicyIn | None
    scheduled_at: datetime | None
    schedule: ScheduleIn | None
    timeout_seconds: int
    tags: list[str]
    dependencies: list[str]
    checkpoint_enabled: bool
    payload: Any
    dedupe_key: str | None
    dedupe_window_seconds: int | None
    concurrency_key: str | None
    concurrency_limit: int
    misfire_policy: Literal["run_once", "skip", "run_all"]
    overlap_policy: Literal["skip", "queue_one", "allow"]
    notify_url: str | None


class TaskCreate(TaskFields, total=False):
    name: Required[str]
    created_by: str | None


class TaskUpdate(TaskFields, total=False):
    name: str


class CheckpointIn(TypedDict):
    checkpoint_data: Any


class WebhookCreate(TypedDict, total=False):
    url: Required[str]
    events: list[str]
    description: str | None


class JobTaskIn(TypedDict, total=False):
    """A node of a job's DAG (issue 13 §2)."""

    id: Required[str]
    name: Required[str]
    action: Required[ActionIn]
    dependencies: list[str]
    retryPolicy: dict[str, Any]
    timeoutSeconds: int
    triggerRule: Literal["all_success", "all_done", "one_success", "one_failed", "none_failed"]


class JobCreate(TypedDict, total=False):
    name: Required[str]
    description: str
    tasks: list[JobTaskIn]
    schedule: str
    timezone: str
    retryPolicy: dict[str, Any]
    maxActiveRuns: int
    overlapPolicy: Literal["skip", "queue_one", "allow"]
    misfirePolicy: str


class JobTrigger(TypedDict, total=False):
    params: dict[str, Any]


class JobUpdate(JobCreate, total=False):
    name: str  # type: ignore[misc]  # optional on update
