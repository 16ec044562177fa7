"""Every Prometheus metric taskstream exports, in one place (docs/observability.md lists them).

Two kinds:

- Process metrics (counters and histograms) live in prometheus_client's default registry and
  count what *this* process did: the gateway its requests and created tasks, the scheduler its
  dispatches, a worker its starts, finishes, heartbeats and webhook attempts. Prometheus sums
  them over the processes.
- State gauges (`STATE_GAUGES`) describe the whole system (queue depths, workers, reader lag).
  They are read from PostgreSQL when /metrics is scraped (services/metrics/state.py), only by
  the gateway and the scheduler, so a worker never reports a stale or zero copy of them.

Label values come from small fixed sets (outcomes, route templates, status codes, checkpoint
names): never task, run, worker or project ids, and never raw paths.
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import Counter, Histogram

# Seconds; from a fast API call up to a slow one that hit a timeout.
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Due → started: a healthy system starts within tens of milliseconds; a backlog, minutes.
_LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                     300.0, 900.0)  # fmt: skip
# A run: a handler returning at once up to the longest task timeout (a day).
_RUN_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                21600.0, 86400.0)  # fmt: skip

HTTP_REQUEST_DURATION = Histogram(
    "taskstream_http_request_duration_seconds",
    "Time the gateway took to answer a request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=_HTTP_BUCKETS,
)

TASKS_CREATED = Counter("taskstream_tasks_created", "Tasks created (task.created appended).")
TASKS_DISPATCHED = Counter(
    "taskstream_tasks_dispatched", "Runs handed to the workers (task.dispatched appended)."
)
TASKS_STARTED = Counter(
    "taskstream_tasks_started", "Run attempts a worker started (task.started appended)."
)
TASKS_COMPLETED = Counter(
    "taskstream_tasks_completed", "Runs that succeeded (task.completed appended)."
)
TASKS_FAILED = Counter(
    "taskstream_tasks_failed",
    "Run attempts that failed (task.failed appended); final=true when no retry follows.",
    ["final"],
)
TASKS_RETRIED = Counter(
    "taskstream_tasks_retried",
    "Retries scheduled, by policy or by a user (task.retrying appended).",
)

TASK_START_LATENESS = Histogram(
    "taskstream_task_start_lateness_seconds",
    "From the time a run was due to the time a worker started it.",
    buckets=_LATENESS_BUCKETS,
)
RUN_DURATION = Histogram(
    "taskstream_run_duration_seconds",
    "How long a run attempt's action took on the worker, by outcome (completed, failed).",
    ["outcome"],
    buckets=_RUN_BUCKETS,
)

WEBHOOK_ATTEMPTS = Counter(
    "taskstream_webhook_delivery_attempts",
    "Webhook delivery attempts by outcome: succeeded, retry (another attempt is planned),"
    " failed (given up), disabled (410 Gone), stale (a duplicate message, nothing sent).",
    ["outcome"],
)
WORKER_HEARTBEATS = Counter(
    "taskstream_worker_heartbeats",
    "Worker heartbeats written to the registry, by result (ok, failed).",
    ["result"],
)


class StateGauge(NamedTuple):
    """A gauge read from PostgreSQL at scrape time (see services/metrics/state.py)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()


QUEUE_DEPTH = StateGauge(
    "taskstream_queue_depth",
    "Work waiting or in progress, by queue: due (waiting for a scheduler), dispatched (waiting"
    " for a worker), running (on a worker), webhooks (deliveries due to be sent).",
    ("queue",),
)
WORKERS = StateGauge(
    "taskstream_workers", "Registered worker processes by state (online, offline).", ("state",)
)
WORKER_HEARTBEAT_AGE = StateGauge(
    "taskstream_worker_heartbeat_age_seconds",
    "Seconds since the stalest online worker's last heartbeat (0 with no worker online).",
)
RELAY_LAG_EVENTS = StateGauge(
    "taskstream_relay_lag_events",
    "Events appended after the Kafka relay's checkpoint (approximate: by global position).",
)
RELAY_LAG_SECONDS = StateGauge(
    "taskstream_relay_lag_seconds",
    "Age of the oldest event the Kafka relay has not published yet (0 when caught up).",
)
PROJECTION_LAG_EVENTS = StateGauge(
    "taskstream_projection_lag_events",
    "Events appended after each log reader's checkpoint (projections and the webhook fan-out).",
    ("projection",),
)
PROJECTION_LAG_SECONDS = StateGauge(
    "taskstream_projection_lag_seconds",
    "Age of the oldest event each log reader has not processed yet (0 when caught up).",
    ("projection",),
)

STATE_GAUGES = (
    QUEUE_DEPTH,
    WORKERS,
    WORKER_HEARTBEAT_AGE,
    RELAY_LAG_EVENTS,
    RELAY_LAG_SECONDS,
    PROJECTION_LAG_EVENTS,
    PROJECTION_LAG_SECONDS,
)

PROCESS_METRICS = (
    HTTP_REQUEST_DURATION,
    TASKS_CREATED,
    TASKS_DISPATCHED,
    TASKS_STARTED,
    TASKS_COMPLETED,
    TASKS_FAILED,
    TASKS_RETRIED,
    TASK_START_LATENESS,
    RUN_DURATION,
    WEBHOOK_ATTEMPTS,
    WORKER_HEARTBEATS,
)

# A DAG hop on an idle machine takes milliseconds; behind a backlog, seconds.
_HOP_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)

JOB_EXECUTIONS = Counter(
    "taskstream_job_executions",
    "Job executions reaching each status (PENDING when created), by status.",
    ["status"],
)
JOB_HOP_SECONDS = Histogram(
    "taskstream_job_hop_seconds",
    "From the last upstream task of a job task finishing to that task's first start.",
    buckets=_HOP_BUCKETS,
)
