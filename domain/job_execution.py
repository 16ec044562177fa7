"""The execution aggregate (stream `execution-<id>`): one run of a job's pinned definition.

Its status is explicit, never read off the leaves: FAILED as soon as a task has failed for good
(no retry left), SUCCEEDED only when every task is finished and none failed, was
upstream-failed or was cancelled; CANCELLED when a user cancelled it. `finished_at` is set when
the last task is settled, which may be after FAILED while branches whose trigger rules still
allow them (all_done, one_failed, ...) finish.

Each task runs as one core task per round (`node_task_id`), through the same scheduler,
workers, leases and retries as any task; the execution records what the core reports about it
(`Observation`), so replaying the core's outcome twice records nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from domain import job_events as ev
from domain.errors import InvalidState
from domain.job_definition import JobRetryPolicy, JobTask, descendants
from domain.task import TaskState
from domain.trigger_rules import FAILED_LIKE, FINAL, verdict

ExecutionStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
NodeStatus = Literal[
    "PENDING", "QUEUED", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "UPSTREAM_FAILED",
    "SKIPPED", "CANCELLED",
]  # fmt: skip
IN_FLIGHT = ("QUEUED", "RUNNING", "RETRYING")
_NODE_NAMESPACE = uuid.UUID("0b8f6a3e-55d2-4c8e-8f0e-6c2b9d1e4a77")


class NodeState(msgspec.Struct, frozen=True, kw_only=True):
    status: NodeStatus = "PENDING"
    attempts: int = 0  # over every round
    base_attempts: int = 0  # attempts made in earlier rounds
    round: int = 0
    core_task_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class ExecutionState(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: str
    job_id: str
    project_id: str
    job_name: str
    definition_version: int
    tasks: tuple[JobTask, ...]
    retry_policy: JobRetryPolicy
    params: Any
    trigger: str
    scheduled_for: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    status: ExecutionStatus = "PENDING"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    round: int = 0
    nodes: dict[str, NodeState] = {}

    @property
    def settled(self) -> bool:
        """Nothing of it runs or can still run (finished, failed for good, or cancelled)."""
        return self.finished_at is not None

    def task(self, task_id: str) -> JobTask:
        return next(t for t in self.tasks if t.id == task_id)


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """What the core says about a task's current core task."""

    status: Literal["QUEUED", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED"]
    attempt: int
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None


def node_task_id(execution_id: str, task_id: str, round: int) -> str:
    """The core task that runs `task_id` in round `round` of an execution (deterministic, so a
    crashed creator and its retry create the same one)."""
    return str(uuid.uuid5(_NODE_NAMESPACE, f"{execution_id}:{task_id}:{round}"))


def observe(task: TaskState) -> Observation:
    """The core task's state in the execution's words."""
    if task.lifecycle == "deleted":
        return Observation(status="FAILED", attempt=task.attempt, error="its core task was deleted",
                           finished_at=task.updated_at)  # fmt: skip
    if task.lifecycle == "cancelled":
        return Observation(status="CANCELLED", attempt=task.attempt, finished_at=task.updated_at)
    status, attempt, started = task.run_status, task.attempt, task.started_at
    if status == "running":
        return Observation(status="RUNNING", attempt=attempt, started_at=started)
    if status == "retrying":
        return Observation(status="RETRYING", attempt=attempt, started_at=started,
                           error=task.error, next_attempt_at=task.next_run_at,
                           finished_at=task.completed_at)  # fmt: skip
    if status == "completed":
        return Observation(status="SUCCEEDED", attempt=attempt, started_at=started,
                           finished_at=task.completed_at)  # fmt: skip
    if status == "failed":
        return Observation(status="FAILED", attempt=attempt, started_at=started,
                           error=task.error, finished_at=task.completed_at)  # fmt: skip
    # Pending or dispatched: waiting for a worker; a dispatched attempt has not started yet.
    begun = attempt - 1 if status == "dispatched" else attempt
    return Observation(status="QUEUED", attempt=max(begun, 0))


def effective_retry(state: ExecutionState, task: JobTask) -> JobRetryPolicy:
    return task.retry_policy or state.retry_policy


def decide_start(state: ExecutionState, *, now: datetime) -> list[ev.ExecutionEvent]:
    """Start an admitted execution: its root tasks become queued."""
    if state.status != "PENDING":
        return []
    started = ev.ExecutionStarted(at=now)
    return [started, *_settle(evolve(state, started), now)]


def decide_advance(
    state: ExecutionState, observations: Mapping[str, Observation], *, now: datetime
) -> list[ev.ExecutionEvent]:
    """Record what the core reports for in-flight tasks, then queue or skip what that decides."""
    if state.status == "PENDING" or state.settled:
        return []
    events: list[ev.ExecutionEvent] = []
    current = state
    for task_id, observation in observations.items():
        node = current.nodes.get(task_id)
        if node is None or node.status not in IN_FLIGHT:
            continue
        for event in _transitions(task_id, node, observation, now):
            events.append(event)
            current = evolve(current, event)
    return events + _settle(current, now)


def _transitions(
    task_id: str, node: NodeState, seen: Observation, now: datetime
) -> list[ev.ExecutionEvent]:
    attempt = node.base_attempts + seen.attempt
    out: list[ev.ExecutionEvent] = []
    running = node.status == "RUNNING"
    if seen.attempt > 0 and attempt > node.attempts:
        out.append(ev.NodeStarted(at=seen.started_at or now, task_id=task_id, attempt=attempt))
        running = True
    finished_at = seen.finished_at or now
    error = seen.error or ""
    if seen.status == "CANCELLED":
        out.append(ev.NodeCancelled(at=finished_at, task_id=task_id))
    elif seen.status == "FAILED" and (running or seen.attempt == 0):
        out.append(ev.NodeFailed(at=finished_at, task_id=task_id, attempt=attempt, error=error))
    elif not running:
        pass
    elif seen.status == "RETRYING":
        out.append(ev.NodeRetrying(at=finished_at, task_id=task_id, attempt=attempt, error=error,
                                   next_attempt_at=seen.next_attempt_at))  # fmt: skip
    elif seen.status == "SUCCEEDED":
        out.append(ev.NodeSucceeded(at=finished_at, task_id=task_id, attempt=attempt))
    return out


def _settle(state: ExecutionState, now: datetime) -> list[ev.ExecutionEvent]:
    """Queue or skip every pending task whose trigger rule is now decided, until nothing moves;
    then the execution's own status."""
    events: list[ev.ExecutionEvent] = []
    moved = True
    while moved:
        moved = False
        for task in state.tasks:
            if state.nodes[task.id].status != "PENDING":
                continue
            upstream = [state.nodes[d].status for d in task.dependencies]
            decision = verdict(task.trigger_rule, upstream)
            event: ev.ExecutionEvent
            if decision == "run":
                core = node_task_id(state.execution_id, task.id, state.round)
                event = ev.NodeQueued(at=now, task_id=task.id, core_task_id=core)
            elif decision == "wait":
                continue
            else:
                status = "UPSTREAM_FAILED" if decision == "upstream_failed" else "SKIPPED"
                event = ev.NodeSkipped(at=now, task_id=task.id, status=status,
                                       reason=_skip_reason(task, upstream))  # fmt: skip
            events.append(event)
            state = evolve(state, event)
            moved = True
    failed = tuple(t.id for t in state.tasks if state.nodes[t.id].status == "FAILED")
    if state.status == "RUNNING" and failed:
        events.append(ev.ExecutionFailed(at=now, failed_tasks=failed))
    elif state.status == "RUNNING" and all(n.status in FINAL for n in state.nodes.values()):
        if any(n.status in FAILED_LIKE for n in state.nodes.values()):
            events.append(ev.ExecutionFailed(at=now, failed_tasks=()))
        else:
            events.append(ev.ExecutionSucceeded(at=now))
    return events


def _skip_reason(task: JobTask, upstream: Sequence[str]) -> str:
    states = ", ".join(f"{d}={s}" for d, s in zip(task.dependencies, upstream, strict=True))
    return f"trigger rule {task.trigger_rule} cannot be met ({states})"


def decide_cancel(
    state: ExecutionState, *, now: datetime, reason: str | None = None
) -> list[ev.ExecutionEvent]:
    """Cancel whatever has not finished; the caller stops their core tasks."""
    if state.status == "CANCELLED":
        return []
    if state.settled:
        raise InvalidState(f"execution has already finished ({state.status}); nothing to cancel")
    events: list[ev.ExecutionEvent] = [ev.ExecutionCancelled(at=now, reason=reason)]
    events += [
        ev.NodeCancelled(at=now, task_id=t.id)
        for t in state.tasks
        if state.nodes[t.id].status not in FINAL
    ]
    return events


def decide_retry(state: ExecutionState, *, now: datetime) -> list[ev.ExecutionEvent]:
    """A new round for the failed, upstream-failed and cancelled tasks and what depends on them;
    what succeeded is kept."""
    if not state.settled or state.status not in ("FAILED", "CANCELLED"):
        raise InvalidState(
            f"only a finished FAILED or CANCELLED execution can be retried; this one is"
            f" {state.status}{'' if state.settled else ' and still running'}"
        )
    failed = {t for t, n in state.nodes.items() if n.status in FAILED_LIKE}
    again = failed | {
        t for t in descendants(state.tasks, failed) if state.nodes[t].status != "SUCCEEDED"
    }
    order = tuple(t.id for t in state.tasks if t.id in again)
    retried = ev.ExecutionRetried(at=now, tasks=order, round=state.round + 1)
    return [retried, *_settle(evolve(state, retried), now)]


def in_flight(state: ExecutionState) -> dict[str, str]:
    """task id → core task id of every task queued or running on the core."""
    return {
        t: n.core_task_id
        for t, n in state.nodes.items()
        if n.status in IN_FLIGHT and n.core_task_id is not None
    }


def evolve(state: ExecutionState | None, event: ev.ExecutionEvent) -> ExecutionState:
    if isinstance(event, ev.ExecutionCreated):
        return ExecutionState(
            execution_id=event.execution_id,
            job_id=event.job_id,
            project_id=event.project_id,
            job_name=event.job_name,
            definition_version=event.definition_version,
            tasks=event.tasks,
            retry_policy=event.retry_policy,
            params=event.params,
            trigger=event.trigger,
            scheduled_for=event.scheduled_for,
            created_at=event.at,
            updated_at=event.at,
            version=0,
            nodes={t.id: NodeState() for t in event.tasks},
        )
    if state is None:
        raise ValueError(f"{ev.type_of(event)} before job.execution.created")
    replace = msgspec.structs.replace
    s = replace(state, version=state.version + 1, updated_at=max(state.updated_at, event.at))
    if isinstance(event, ev.ExecutionStarted):
        return _settled_check(replace(s, status="RUNNING", started_at=event.at), event.at)
    if isinstance(event, ev.ExecutionSucceeded):
        return replace(s, status="SUCCEEDED")
    if isinstance(event, ev.ExecutionFailed):
        return replace(s, status="FAILED")
    if isinstance(event, ev.ExecutionCancelled):
        return replace(s, status="CANCELLED")
    if isinstance(event, ev.ExecutionRetried):
        nodes = dict(s.nodes)
        for task_id in event.tasks:
            old = nodes[task_id]
            nodes[task_id] = NodeState(
                attempts=old.attempts, base_attempts=old.attempts, round=event.round
            )
        return replace(s, status="RUNNING", finished_at=None, round=event.round, nodes=nodes)
    node = s.nodes[event.task_id]
    if isinstance(event, ev.NodeQueued):
        node = replace(node, status="QUEUED", core_task_id=event.core_task_id)
    elif isinstance(event, ev.NodeStarted):
        node = replace(node, status="RUNNING", attempts=event.attempt,
                       started_at=node.started_at or event.at, error=None)  # fmt: skip
    elif isinstance(event, ev.NodeRetrying):
        node = replace(node, status="RETRYING", error=event.error)
    elif isinstance(event, ev.NodeSucceeded):
        node = replace(node, status="SUCCEEDED", finished_at=event.at)
    elif isinstance(event, ev.NodeFailed):
        node = replace(node, status="FAILED", finished_at=event.at, error=event.error)
    elif isinstance(event, ev.NodeSkipped):
        node = replace(node, status=event.status, error=event.reason)
    elif isinstance(event, ev.NodeCancelled):
        node = replace(node, status="CANCELLED", finished_at=event.at)
    else:  # pragma: no cover
        raise TypeError(f"unknown event {event!r}")
    return _settled_check(replace(s, nodes={**s.nodes, event.task_id: node}), event.at)


def _settled_check(state: ExecutionState, at: datetime) -> ExecutionState:
    if state.status == "PENDING" or state.finished_at is not None:
        return state
    if all(n.status in FINAL for n in state.nodes.values()):
        return msgspec.structs.replace(state, finished_at=at)
    return state


def fold(
    events: Iterable[ev.ExecutionEvent], state: ExecutionState | None = None
) -> ExecutionState | None:
    for event in events:
        state = evolve(state, event)
    return state
