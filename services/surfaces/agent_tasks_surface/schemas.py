"""Bodies of seed 004's `/tasks` surface (tasks for agents), as msgspec structs.

Field names and defaults are the document's: `title`, `schedule_kind`/`schedule_expr`, priority
1-9 with 1 highest, `backoff_strategy`, and the status words `active | paused | canceled`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from domain.retry_policy import Backoff
from domain.schedule import ScheduleKind
from services.surfaces.kit.paging import Offset
from services.surfaces.kit.request_body import Body

AgentScheduleKind = Literal["cron", "rrule", "once", "event"]
AgentStatus = Literal["active", "paused", "canceled"]
AgentRunStatus = Literal[
    "pending", "dispatched", "running", "completed", "failed", "retrying", "canceled"
]
AgentOutcome = Literal["completed", "failed", "canceled"]
AgentPriority = Annotated[int, msgspec.Meta(ge=1, le=9)]
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class AgentTaskCreate(Body):
    title: str
    description: str
    schedule_kind: AgentScheduleKind
    payload: dict[str, Any]
    created_by: uuid.UUID
    schedule_expr: str | None = None
    timezone: str = "UTC"
    priority: AgentPriority = 5
    max_retries: int = 3
    backoff_strategy: Backoff = "exponential_jitter"
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    concurrency_key: str | None = None


# The document's task-definition.json example (the schema fuzzer's successful create).
CREATE_EXAMPLE = {
    "title": "Daily digest",
    "description": "Summarise yesterday's tickets for the team",
    "schedule_kind": "cron",
    "schedule_expr": "0 9 * * *",
    "timezone": "Europe/Chisinau",
    "payload": {"steps": ["fetch", "summarise", "post"]},
    "created_by": "6f1c2a9e-3b7d-4c8e-9a41-2d5e8f7b0c13",
    "priority": 2,
}


class AgentTaskUpdate(Body):
    """Every create field, all optional: only the ones given change."""

    title: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    schedule_kind: AgentScheduleKind | UnsetType = UNSET
    schedule_expr: str | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    payload: dict[str, Any] | UnsetType = UNSET
    created_by: uuid.UUID | UnsetType = UNSET
    priority: AgentPriority | UnsetType = UNSET
    max_retries: int | UnsetType = UNSET
    backoff_strategy: Backoff | UnsetType = UNSET
    dedupe_key: str | UnsetType | None = UNSET
    dedupe_window_seconds: int | UnsetType | None = UNSET
    concurrency_key: str | UnsetType | None = UNSET


class SnoozeIn(Body):
    delay_seconds: int
    reason: str | None = None


class EventIn(Body):
    name: str
    payload: Any = None


class AgentTasksQuery(Body):
    status: AgentStatus | None = None
    created_by: uuid.UUID | None = None
    schedule_kind: ScheduleKind | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    offset: Offset = 0


class AgentTaskOut(msgspec.Struct, kw_only=True):
    """A task as this surface shows it: `status` is the definition's, `run_status` its run's."""

    id: str
    title: str
    description: str | None
    schedule_kind: ScheduleKind
    schedule_expr: str
    timezone: str
    payload: Any
    created_by: str | None
    priority: int
    max_retries: int
    backoff_strategy: Backoff
    dedupe_key: str | None
    dedupe_window_seconds: int | None
    concurrency_key: str | None
    status: AgentStatus
    run_status: AgentRunStatus
    # How the latest run ended (null before one has): a finished `once` task reads
    # `status: active`, `next_run_at: null` and this.
    last_outcome: AgentOutcome | None
    next_run_at: datetime | None
    last_started_at: datetime | None
    last_completed_at: datetime | None
    last_result: Any
    last_error: str | None
    runs_completed: int
    runs_failed: int
    created_at: datetime
    updated_at: datetime


class AgentTaskList(msgspec.Struct, kw_only=True):
    tasks: list[AgentTaskOut]
    total: int
    limit: int
    offset: int


class AgentError(msgspec.Struct, kw_only=True):
    """Seed 004's error shape: a machine code, a message, and the field to blame (or null)."""

    error: str
    message: str
    field: str | None = None
