"""What the API answers with, as msgspec structs (field names as the API spells them).

Unknown fields are ignored when decoding, so a newer server does not break an older client;
tests/integration/test_client_contract.py fails when the server documents a field missing here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec


class Model(msgspec.Struct, kw_only=True):
    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-ready builtins (datetimes as ISO strings)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class HttpAction(msgspec.Struct, frozen=True, kw_only=True, tag="http", tag_field="kind"):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    headers: dict[str, str] = {}
    body: str | None = None
    timeout_seconds: float = 30.0
    # Answers show every header value as "***" and this opaque reference to the encrypted
    # values; the server ignores it on input (docs/secrets.md).
    secret_ref: str | None = None


class HandlerAction(msgspec.Struct, frozen=True, kw_only=True, tag="handler", tag_field="kind"):
    name: str


class CommandAction(msgspec.Struct, frozen=True, kw_only=True, tag="command", tag_field="kind"):
    command: str


Action = HttpAction | HandlerAction | CommandAction


class Schedule(Model, kw_only=True):
    kind: str
    expr: str
    timezone: str
    start_at: datetime | None = None
    end_at: datetime | None = None


class Task(Model, kw_only=True):
    id: str
    name: str
    description: str | None = None
    command: str | None = None
    action: Action | None = None
    status: str
    priority: int
    retry_count: int
    max_retries: int
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    timeout_seconds: int
    tags: list[str] = []
    dependencies: list[str] = []
    worker_id: str | None = None
    result: Any = None
    error: str | None = None
    checkpoint_data: Any = None
    checkpoint_enabled: bool = False
    schedule: Schedule
    payload: Any = None
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    created_by: str | None = None
    misfire_policy: str
    overlap_policy: str
    notify_url: str | None = None
    version: int


class Deleted(Model, kw_only=True):
    success: bool
    message: str


class StatusChange(Model, kw_only=True):
    id: str
    status: str
    updated_at: datetime


class Retried(Model, kw_only=True):
    id: str
    status: str
    retry_count: int
    updated_at: datetime


class Checkpoint(Model, kw_only=True):
    id: str
    checkpoint_data: Any
    updated_at: datetime


class Run(Model, kw_only=True):
    """One attempt of a task."""

    run_id: str
    attempt: int
    status: str
    due_at: datetime
    dispatched_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    reason: str | None = None
    lateness_ms: float = 0.0  # due -> dispatched
    http_status: int | None = None  # an HTTP action's answer
    final: bool | None = None  # for a failure: whether the task gave up


class LogLine(Model, kw_only=True):
    timestamp: datetime
    level: str
    message: str


class Webhook(Model, kw_only=True):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    created_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class WebhookCreated(Webhook, kw_only=True):
    """A new endpoint with its signing secret: shown once, here."""

    secret: str


class DeliveryAttempt(Model, kw_only=True):
    delivery_id: str
    event_id: str
    event_type: str
    status: str
    attempt: int
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: float


class NotifySecret(Model, kw_only=True):
    secret: str


class Worker(Model, kw_only=True):
    id: str
    hostname: str
    status: str
    tasks_completed: int
    tasks_failed: int
    current_tasks: int
    last_heartbeat: datetime
    registered_at: datetime
    version: str
    tags: list[str] = []


class WorkerResources(Model, kw_only=True):
    cpu_usage: float
    memory_usage: float
    disk_usage: float


class WorkerDetail(Worker, kw_only=True):
    current_task_ids: list[str] = []
    resources: WorkerResources


class WorkerTask(Model, kw_only=True):
    id: str
    name: str
    status: str
    started_at: datetime | None = None
    priority: int


class ApiServer(Model, kw_only=True):
    status: str
    instance_count: int | None = None


class LogReader(Model, kw_only=True):
    status: str
    lag_events: int | None = None
    lag_seconds: float | None = None


class SchedulerHealth(LogReader, kw_only=True):
    leader_id: str | None = None


class WorkersHealth(Model, kw_only=True):
    status: str
    active_count: int
    idle_count: int
    offline_count: int


class DatabaseHealth(Model, kw_only=True):
    status: str
    connection_count: int | None = None


class BrokerHealth(Model, kw_only=True):
    status: str
    kind: str


class Components(Model, kw_only=True):
    api_server: ApiServer
    scheduler: SchedulerHealth
    workers: WorkersHealth
    database: DatabaseHealth
    broker: BrokerHealth
    kafka_relay: LogReader
    projector: LogReader


class TaskStats(Model, kw_only=True):
    pending: int
    running: int
    completed_today: int
    failed_today: int


class QueueDepths(Model, kw_only=True):
    high_priority: int
    normal_priority: int
    low_priority: int


class SystemStatus(Model, kw_only=True):
    status: str
    version: str
    uptime: int
    components: Components
    task_stats: TaskStats
    queue_depths: QueueDepths


class MetricPoint(Model, kw_only=True):
    timestamp: datetime
    value: int | float


class MetricsMeta(Model, kw_only=True):
    period: str
    start_time: datetime
    end_time: datetime


class Metrics(Model, kw_only=True):
    """`GET /api/system/metrics`: series by name, and the window they cover."""

    data: dict[str, list[MetricPoint]]
    meta: MetricsMeta


# Jobs (seed 003 at /jobs): the shapes issue 13 fixes; camelCase on the wire.


class Camel(Model, kw_only=True, rename="camel"):
    pass


class JobCreated(Camel, kw_only=True):
    id: str
    message: str = ""


class Message(Camel, kw_only=True):
    message: str = ""


class Triggered(Camel, kw_only=True):
    execution_id: str
    message: str = ""
    status: str | None = None


class JobChanged(Camel, kw_only=True):
    """An edit of a job or of its tasks: the definition version it made."""

    message: str = ""
    version: int | None = None


class JobPaused(Camel, kw_only=True):
    message: str = ""
    paused: bool = False
    next_fire_at: datetime | None = None


class JobTaskStatus(Camel, kw_only=True):
    id: str
    status: str
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class JobStatus(Camel, kw_only=True):
    """One execution and its tasks (`status`, an execution's detail, cancel and retry)."""

    execution_id: str
    status: str
    tasks: list[JobTaskStatus] = []
    job_id: str | None = None
    trigger: str | None = None
    definition_version: int | None = None
    params: dict[str, Any] | None = None
    scheduled_for: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobTask(Camel, kw_only=True):
    id: str
    name: str
    action: dict[str, Any] | None = None
    dependencies: list[str] = []
    retry_policy: dict[str, Any] | None = None
    timeout_seconds: int | None = None
    trigger_rule: str | None = None
    dependents: list[str] = []


class Job(Camel, kw_only=True):
    id: str
    name: str
    description: str | None = None
    tasks: list[JobTask] = []
    schedule: str | None = None
    timezone: str | None = None
    retry_policy: dict[str, Any] | None = None
    paused: bool = False
    version: int | None = None
    # GET /jobs answers summaries (taskCount), GET /jobs/{id} the whole job (tasks, dag, ...).
    task_count: int | None = None
    dag: dict[str, Any] | None = None
    max_active_runs: int | None = None
    overlap_policy: str | None = None
    misfire_policy: str | None = None
    next_fire_at: datetime | None = None
    running_executions: list[str] = []
    queued_executions: list[str] = []
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Execution(Camel, kw_only=True):
    execution_id: str
    status: str
    trigger: str | None = None
    version: int | None = None
    definition_version: int | None = None
    scheduled_for: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
