"""Seed 003's request and response bodies. Field names as the document spells them (`id`,
`name`, `dependencies`, `retryPolicy`, `schedule`), camelCase for the ones added here; a task's
`action` is the core's action object, spelt as everywhere else (`kind`, `timeout_seconds`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from domain.actions import Action

MAX_LIMIT = 100


class _In(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


class _Out(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    pass


class BackoffBody(msgspec.Struct, frozen=True, kw_only=True, rename="camel",
                  forbid_unknown_fields=True):  # fmt: skip
    strategy: Literal["fixed", "linear", "exponential"] = "exponential"
    delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0


class RetryPolicyBody(msgspec.Struct, frozen=True, kw_only=True, rename="camel",
                      forbid_unknown_fields=True):  # fmt: skip
    type: Literal["NONE", "ON_FAILURE", "ALWAYS"] = "ON_FAILURE"
    max_retries: int = 3
    backoff: BackoffBody = BackoffBody()


TriggerRuleName = Literal["all_success", "all_done", "one_success", "one_failed", "none_failed"]


class TaskIn(_In, frozen=True):
    id: str
    name: str
    action: Action
    dependencies: list[str] = []
    retry_policy: RetryPolicyBody | None = None
    timeout_seconds: int = 3600
    trigger_rule: TriggerRuleName = "all_success"


class TaskUpdate(_In, frozen=True):
    """A partial or full task; an `id`, if given, must be the one in the path."""

    id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    action: Action | UnsetType = UNSET
    dependencies: list[str] | UnsetType = UNSET
    retry_policy: RetryPolicyBody | UnsetType | None = UNSET
    timeout_seconds: int | UnsetType = UNSET
    trigger_rule: TriggerRuleName | UnsetType = UNSET


Overlap = Literal["skip", "queue_one", "allow"]
Misfire = Literal["skip", "run_once"]


class JobCreate(_In, frozen=True):
    name: str
    description: str | None = None
    tasks: list[TaskIn] = []
    schedule: str | None = None  # cron, in `timezone`
    timezone: str = "UTC"
    retry_policy: RetryPolicyBody | None = None
    max_active_runs: int = 1
    overlap_policy: Overlap = "skip"
    misfire_policy: Misfire = "run_once"


class JobUpdate(_In, frozen=True):
    """Partial or full job: only the fields given change (`tasks` replaces the whole list)."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    tasks: list[TaskIn] | UnsetType = UNSET
    schedule: str | UnsetType | None = UNSET
    timezone: str | UnsetType = UNSET
    retry_policy: RetryPolicyBody | UnsetType = UNSET
    max_active_runs: int | UnsetType = UNSET
    overlap_policy: Overlap | UnsetType = UNSET
    misfire_policy: Misfire | UnsetType = UNSET


class TriggerIn(_In, frozen=True):
    params: dict[str, Any] | None = None


class PageQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`limit` with `offset`, or with `page` (from 1) for clients that count pages."""

    limit: int = 20
    offset: int = 0
    page: int | None = None


class TaskOut(_Out, frozen=True):
    id: str
    name: str
    action: Action
    dependencies: list[str]
    dependents: list[str]
    retry_policy: RetryPolicyBody | None  # null: the job's retryPolicy applies
    timeout_seconds: int
    trigger_rule: str


class Dag(_Out, frozen=True):
    nodes: list[str]
    edges: list[tuple[str, str]]  # [upstream, downstream]


class JobSummary(_Out, frozen=True):
    id: str
    name: str
    description: str | None
    schedule: str | None
    timezone: str
    paused: bool
    version: int
    task_count: int
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime


class JobOut(_Out, frozen=True):
    id: str
    name: str
    description: str | None
    tasks: list[TaskOut]
    dag: Dag
    schedule: str | None
    timezone: str
    retry_policy: RetryPolicyBody
    max_active_runs: int
    overlap_policy: str
    misfire_policy: str
    paused: bool
    version: int
    next_fire_at: datetime | None
    running_executions: list[str]
    queued_executions: list[str]
    created_at: datetime
    updated_at: datetime


class Created(_Out, frozen=True):
    id: str
    message: str


class Message(_Out, frozen=True):
    message: str
    version: int | None = None


class PauseOut(_Out, frozen=True):
    message: str
    paused: bool
    next_fire_at: datetime | None


class TriggerOut(_Out, frozen=True):
    execution_id: str
    message: str
    status: str


class TaskStatus(_Out, frozen=True):
    id: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class ExecutionOut(_Out, frozen=True):
    execution_id: str
    job_id: str
    status: str
    trigger: str
    definition_version: int
    params: dict[str, Any] | None
    scheduled_for: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tasks: list[TaskStatus]


class ExecutionRecord(_Out, frozen=True):
    execution_id: str
    status: str
    trigger: str
    definition_version: int
    scheduled_for: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str
    field: str | None = None


class JobsError(msgspec.Struct, frozen=True, kw_only=True):
    """The one error shape of /jobs: `{"error": {"code", "message", "field"}}`."""

    error: ErrorBody
