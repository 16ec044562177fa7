"""Prometheus figures of jobs: executions reaching each status, and the DAG hop latency."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from domain import job_events as ev
from domain.job_execution import ExecutionState

# A hop on an idle machine takes milliseconds; a backlog, seconds.
_HOP_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)

JOB_EXECUTIONS = Counter(
    "taskstream_job_executions",
    "Job executions reaching each status (PENDING when created).",
    ["status"],
)
JOB_HOP_SECONDS = Histogram(
    "taskstream_job_hop_seconds",
    "From the last upstream task of a job task finishing to that task starting.",
    buckets=_HOP_BUCKETS,
)

_STATUS_OF: dict[type, str] = {
    ev.ExecutionCreated: "PENDING",
    ev.ExecutionStarted: "RUNNING",
    ev.ExecutionSucceeded: "SUCCEEDED",
    ev.ExecutionFailed: "FAILED",
    ev.ExecutionCancelled: "CANCELLED",
}


def count_execution(after: ExecutionState, events: Sequence[ev.ExecutionEvent]) -> None:
    """Count appended events; called once per committed append."""
    for event in events:
        status = _STATUS_OF.get(type(event))
        if status is not None:
            JOB_EXECUTIONS.labels(status).inc()
        elif isinstance(event, ev.NodeStarted):
            hop = hop_seconds(after, event)
            if hop is not None:
                JOB_HOP_SECONDS.observe(hop)


def hop_seconds(state: ExecutionState, started: ev.NodeStarted) -> float | None:
    """Seconds from the last upstream finish to this first attempt's start (None for roots
    and retries)."""
    task = state.task(started.task_id)
    node = state.nodes[started.task_id]
    if not task.dependencies or started.attempt != node.base_attempts + 1:
        return None
    finishes = [state.nodes[d].finished_at for d in task.dependencies]
    if any(f is None for f in finishes):
        return None
    last = max(f for f in finishes if f is not None)
    return max(0.0, (started.at - last).total_seconds())
