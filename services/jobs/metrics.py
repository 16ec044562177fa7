"""Counting job events that were just appended (the metrics are in services/metrics/catalog.py)."""

from __future__ import annotations

from collections.abc import Sequence

from domain import job_events as ev
from domain.job_execution import ExecutionState
from services.metrics.catalog import JOB_EXECUTIONS, JOB_HOP_SECONDS

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
