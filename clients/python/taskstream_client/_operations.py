"""Every API operation the client speaks, declared once for both clients and the contract test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from taskstream_client import models as m
from taskstream_client import params as p

T = TypeVar("T")
Paging = Literal["page", "offset", "auto"] | None
NO_BODY: Any = object()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to make and the type its answer decodes to."""

    method: str
    path: str
    model: type[T]
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = NO_BODY
    # /api wraps every answer in {"data": ..., "meta": ...}; the /jobs surface answers bare.
    envelope: bool = True
    paging: Paging = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Operation(Generic[T]):
    method: str
    path: str
    model: type[T]
    body: type | None = None
    query: tuple[str, ...] = ()
    envelope: bool = True
    paging: Paging = None

    def call(
        self,
        *ids: str,
        params: Mapping[str, Any] | None = None,
        body: Any = NO_BODY,
        idempotency_key: str | None = None,
    ) -> Call[T]:
        path = self.path
        for value in ids:
            start = path.index("{")
            path = path[:start] + quote(value, safe="") + path[path.index("}", start) + 1 :]
        return Call(
            self.method,
            path,
            self.model,
            {k: v for k, v in (params or {}).items() if v is not None},
            body,
            self.envelope,
            self.paging,
            idempotency_key,
        )


# Keyed by (method, path as the OpenAPI document writes it): the contract test walks this.
OPERATIONS: dict[tuple[str, str], Operation[Any]] = {}


def _op(method: str, path: str, model: type[T], **kw: Any) -> Operation[T]:
    operation = Operation(method, path, model, **kw)
    OPERATIONS[(method, path)] = operation
    return operation


_TASK = "/api/tasks/{id}"
TASKS_LIST = _op("GET", "/api/tasks", m.Task, paging="page",
                 query=("status", "tag", "created_by", "sort", "order", "page", "limit"))
TASKS_CREATE = _op("POST", "/api/tasks", m.Task, body=p.TaskCreate)
TASKS_GET = _op("GET", _TASK, m.Task)
TASKS_UPDATE = _op("PATCH", _TASK, m.Task, body=p.TaskUpdate)
TASKS_DELETE = _op("DELETE", _TASK, m.Deleted)
TASKS_CANCEL = _op("POST", _TASK + "/cancel", m.StatusChange)
TASKS_RETRY = _op("POST", _TASK + "/retry", m.Retried)
TASKS_RUN_NOW = _op("POST", _TASK + "/run-now", m.Task)
TASKS_RUNS = _op("GET", _TASK + "/runs", m.Run, paging="page", query=("page", "limit"))
TASKS_LOGS = _op("GET", _TASK + "/logs", m.LogLine, paging="offset",
                 query=("level", "limit", "offset"))
TASKS_CHECKPOINT = _op("POST", _TASK + "/checkpoint", m.Checkpoint, body=p.CheckpointIn)

WEBHOOKS_CREATE = _op("POST", "/api/webhooks", m.WebhookCreated, body=p.WebhookCreate)
WEBHOOKS_LIST = _op("GET", "/api/webhooks", m.Webhook, paging="page", query=("page", "limit"))
WEBHOOKS_DELETE = _op("DELETE", "/api/webhooks/{id}", m.Deleted)
WEBHOOKS_DELIVERIES = _op("GET", "/api/webhooks/{id}/deliveries", m.DeliveryAttempt,
                          paging="page", query=("page", "limit"))
WEBHOOKS_NOTIFY_SECRET = _op("GET", "/api/webhooks/notify-secret", m.NotifySecret)
WEBHOOKS_ROTATE_NOTIFY_SECRET = _op("POST", "/api/webhooks/notify-secret/rotate", m.NotifySecret)

WORKERS_LIST = _op("GET", "/api/workers", m.Worker, paging="page",
                   query=("status", "page", "limit"))
WORKERS_GET = _op("GET", "/api/workers/{id}", m.WorkerDetail)
WORKERS_TASKS = _op("GET", "/api/workers/{id}/tasks", m.WorkerTask, paging="page",
                    query=("status", "page", "limit"))

SYSTEM_STATUS = _op("GET", "/api/system/status", m.SystemStatus)
SYSTEM_METRICS = _op("GET", "/api/system/metrics", m.Metrics, envelope=False,
                     query=("period", "metrics"))

_JOB = "/jobs/{id}"
JOBS_CREATE = _op("POST", "/jobs", m.JobCreated, body=p.JobCreate, envelope=False)
JOBS_LIST = _op("GET", "/jobs", m.Job, envelope=False, paging="auto",
                query=("page", "limit", "offset"))
JOBS_GET = _op("GET", _JOB, m.Job, envelope=False)
JOBS_UPDATE = _op("PUT", _JOB, m.JobChanged, body=p.JobUpdate, envelope=False)
JOBS_DELETE = _op("DELETE", _JOB, m.JobChanged, envelope=False)
JOBS_TASKS_ADD = _op("POST", _JOB + "/tasks", m.JobCreated, body=p.JobTaskIn, envelope=False)
JOBS_TASKS_LIST = _op("GET", _JOB + "/tasks", m.JobTask, envelope=False, paging="auto")
JOBS_TASKS_UPDATE = _op("PUT", _JOB + "/tasks/{taskId}", m.JobChanged, body=p.JobTaskIn,
                        envelope=False)
JOBS_TASKS_DELETE = _op("DELETE", _JOB + "/tasks/{taskId}", m.JobChanged, envelope=False)
JOBS_TRIGGER = _op("POST", _JOB + "/trigger", m.Triggered, body=p.JobTrigger, envelope=False)
JOBS_STATUS = _op("GET", _JOB + "/status", m.JobStatus, envelope=False)
JOBS_HISTORY = _op("GET", _JOB + "/history", m.Execution, envelope=False, paging="auto",
                   query=("page", "limit", "offset"))
JOBS_PAUSE = _op("POST", _JOB + "/pause", m.JobPaused, envelope=False)
JOBS_RESUME = _op("POST", _JOB + "/resume", m.JobPaused, envelope=False)
JOBS_EXECUTION_GET = _op("GET", _JOB + "/executions/{executionId}", m.JobStatus, envelope=False)
JOBS_EXECUTION_CANCEL = _op("POST", _JOB + "/executions/{executionId}/cancel", m.JobStatus,
                            envelope=False)
JOBS_EXECUTION_RETRY = _op("POST", _JOB + "/executions/{executionId}/retry", m.JobStatus,
                           envelope=False)
