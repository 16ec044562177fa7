"""Request and response bodies of the canonical API (seed 002), as msgspec structs.

The OpenAPI document is generated from these, so they are the contract.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from domain.actions import Action
from domain.task_definition import MisfirePolicy, OverlapPolicy
from services.surfaces.kit.paging import Offset, PageNumber
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import Body

BackoffName = Literal["exponential_jitter", "linear", "fixed"]
PageSize = Annotated[int, msgspec.Meta(ge=1, le=100, description="items per page")]
TaskStatusWord = Literal[
    "pending", "dispatched", "running", "completed", "failed", "retrying", "paused", "cancelled"
]


class ScheduleIn(Body):
    kind: Literal["once", "cron", "rrule", "interval", "event"]
    expr: str
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None


class RetryPolicyIn(Body):
    max_retries: int | None = None
    backoff: BackoffName = "exponential_jitter"
    base_seconds: float = 1.0
    cap_seconds: float = 3600.0


class TaskCreate(Body):
    name: str
    command: str | None = None
    action: Action | None = None
    description: str | None = None
    priority: int = 5
    max_retries: int = 3
    retry_policy: RetryPolicyIn | None = None
    scheduled_at: datetime | None = None
    schedule: ScheduleIn | None = None
    timeout_seconds: int = 3600
    tags: list[str] = []
    dependencies: list[str] = []
    checkpoint_enabled: bool = False
    payload: Any = None
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    created_by: str | None = None
    misfire_policy: MisfirePolicy = "run_once"
    overlap_policy: OverlapPolicy = "skip"
    notify_url: str | None = None


# The document's example of a create (and the schema fuzzer's successful one).
CREATE_EXAMPLE = {
    "name": "Nightly report",
    "description": "Build yesterday's report",
    "action": {"kind": "http", "url": "https://example.com/hooks/report", "method": "POST"},
    "scheduled_at": "2099-01-01T02:00:00Z",
    "priority": 7,
    "max_retries": 3,
    "tags": ["reports"],
}


class TaskUpdate(Body):
    name: str | UnsetType = UNSET
    command: str | UnsetType = UNSET
    action: Action | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    priority: int | UnsetType = UNSET
    max_retries: int | UnsetType = UNSET
    retry_policy: RetryPolicyIn | UnsetType = UNSET
    scheduled_at: datetime | UnsetType = UNSET
    schedule: ScheduleIn | UnsetType = UNSET
    timeout_seconds: int | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    dependencies: list[str] | UnsetType = UNSET
    checkpoint_enabled: bool | UnsetType = UNSET
    payload: Any | UnsetType = UNSET
    dedupe_key: str | UnsetType | None = UNSET
    dedupe_window_seconds: int | UnsetType | None = UNSET
    concurrency_key: str | UnsetType | None = UNSET
    concurrency_limit: int | UnsetType = UNSET
    misfire_policy: MisfirePolicy | UnsetType = UNSET
    overlap_policy: OverlapPolicy | UnsetType = UNSET
    notify_url: str | UnsetType | None = UNSET


class CheckpointIn(Body):
    checkpoint_data: Any


class ScheduleOut(msgspec.Struct, kw_only=True):
    kind: str
    expr: str
    timezone: str
    start_at: datetime | None
    end_at: datetime | None


class TaskOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str | None
    command: str | None
    action: Action | None
    status: str
    priority: int
    retry_count: int
    max_retries: int
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    timeout_seconds: int
    tags: list[str]
    dependencies: list[str]
    worker_id: str | None
    result: Any
    error: str | None
    checkpoint_data: Any
    checkpoint_enabled: bool
    schedule: ScheduleOut
    payload: Any
    dedupe_key: str | None
    dedupe_window_seconds: int | None
    concurrency_key: str | None
    concurrency_limit: int
    created_by: str | None
    misfire_policy: str
    overlap_policy: str
    notify_url: str | None
    version: int


class PageMeta(msgspec.Struct, kw_only=True):
    page: int
    limit: int
    total: int
    pages: int


def check_page(page: int, limit: int) -> int:
    """The offset of seed 002's `page` of `limit` rows; a 422 naming the parameter if out of
    range."""
    if not 1 <= limit <= 100:
        raise HttpProblem(422, "validation_error", "limit must be between 1 and 100", field="limit")
    if page < 1:
        raise HttpProblem(422, "validation_error", "page must be 1 or more", field="page")
    return (page - 1) * limit


def page_meta(page: int, limit: int, total: int) -> PageMeta:
    """Seed 002's pagination block."""
    return PageMeta(page=page, limit=limit, total=total, pages=math.ceil(total / limit))


class OffsetMeta(msgspec.Struct, kw_only=True):
    limit: int
    offset: int
    total: int


class TaskEnvelope(msgspec.Struct, kw_only=True):
    data: TaskOut


class TaskListEnvelope(msgspec.Struct, kw_only=True):
    data: list[TaskOut]
    meta: PageMeta


class Deleted(msgspec.Struct, kw_only=True):
    success: bool
    message: str


class DeletedEnvelope(msgspec.Struct, kw_only=True):
    data: Deleted


class StatusChange(msgspec.Struct, kw_only=True):
    id: str
    status: str
    updated_at: datetime


class StatusChangeEnvelope(msgspec.Struct, kw_only=True):
    data: StatusChange


class RetryOut(msgspec.Struct, kw_only=True):
    id: str
    status: str
    retry_count: int
    updated_at: datetime


class RetryEnvelope(msgspec.Struct, kw_only=True):
    data: RetryOut


class CheckpointOut(msgspec.Struct, kw_only=True):
    id: str
    checkpoint_data: Any
    updated_at: datetime


class CheckpointEnvelope(msgspec.Struct, kw_only=True):
    data: CheckpointOut


class LogLineOut(msgspec.Struct, kw_only=True):
    timestamp: datetime
    level: str
    message: str


class LogsEnvelope(msgspec.Struct, kw_only=True):
    data: list[LogLineOut]
    meta: OffsetMeta


class RunOut(msgspec.Struct, kw_only=True):
    """One attempt of a task: dispatched, started on a worker, then completed or failed."""

    run_id: str
    attempt: int
    status: Literal["dispatched", "running", "completed", "failed", "cancelled"]
    due_at: datetime
    dispatched_at: datetime
    lateness_ms: float
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    duration_ms: float | None
    error: str | None
    reason: str | None
    http_status: int | None
    final: bool | None


class RunsEnvelope(msgspec.Struct, kw_only=True):
    data: list[RunOut]
    meta: PageMeta


class RunsQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    page: int = 1
    limit: int = 20


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    error: ErrorBody


class ListTasksQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: TaskStatusWord | None = None
    tag: str | None = None
    created_by: str | None = None
    page: PageNumber = 1
    limit: PageSize = 20
    sort: Literal[
        "created_at", "updated_at", "priority", "name", "status", "scheduled_at", "next_run_at"
    ] = "created_at"
    order: Literal["asc", "desc"] = "desc"


class LogsQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    offset: Offset = 0
    level: Literal["info", "error", "warn", "debug"] | None = None


# Workers (seed 002). Workers are shared; every task id and count in these is the caller's own.

WorkerStatus = Literal["active", "idle", "offline"]


class ListWorkersQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: WorkerStatus | None = None
    page: PageNumber = 1
    limit: PageSize = 20


class WorkerTasksQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: TaskStatusWord | None = None
    page: PageNumber = 1
    limit: PageSize = 20


class WorkerOut(msgspec.Struct, kw_only=True):
    id: str
    hostname: str
    status: WorkerStatus
    tasks_completed: int
    tasks_failed: int
    current_tasks: int
    last_heartbeat: datetime
    registered_at: datetime
    version: str
    tags: list[str]


class WorkerResourcesOut(msgspec.Struct, kw_only=True):
    cpu_usage: float
    memory_usage: float
    disk_usage: float


class WorkerDetailOut(WorkerOut, kw_only=True):
    """A worker with the ids it runs (the caller's tasks only) and its resource use."""

    current_task_ids: list[str]
    resources: WorkerResourcesOut


class WorkerListEnvelope(msgspec.Struct, kw_only=True):
    data: list[WorkerOut]
    meta: PageMeta


class WorkerEnvelope(msgspec.Struct, kw_only=True):
    data: WorkerDetailOut


class WorkerTaskOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    started_at: datetime | None
    priority: int


class WorkerTaskListEnvelope(msgspec.Struct, kw_only=True):
    data: list[WorkerTaskOut]
    meta: PageMeta
