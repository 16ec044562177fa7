"""Executions: which tasks become ready, what the core's reports record, explicit status,
cancel and retry of an execution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import job_events as ev
from domain.actions import HttpAction
from domain.errors import InvalidState
from domain.job_definition import JobRetryPolicy, JobTask
from domain.job_execution import (
    ExecutionState,
    Observation,
    decide_advance,
    decide_cancel,
    decide_retry,
    decide_start,
    fold,
    in_flight,
    node_task_id,
    observe,
)
from domain.schedule import Schedule
from tests.unit.test_execution import task as core_task

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
URL = HttpAction(url="https://example.com/hook")


def node(task_id: str, *deps: str, rule: str = "all_success") -> JobTask:
    return JobTask(id=task_id, name=task_id, action=URL, dependencies=deps, trigger_rule=rule)  # type: ignore[arg-type]


def execution(*tasks: JobTask) -> ExecutionState:
    created = ev.ExecutionCreated(
        at=T0, execution_id="x", job_id="j", project_id="p", job_name="j",
        definition_version=3, tasks=tasks, retry_policy=JobRetryPolicy(), params={"k": 1},
    )  # fmt: skip
    state = fold([created])
    assert state is not None and state.status == "PENDING"
    return state


def run(state: ExecutionState, events: list[ev.ExecutionEvent]) -> ExecutionState:
    out = fold(events, state)
    assert out is not None
    return out


def report(state: ExecutionState, **outcomes: str) -> ExecutionState:
    """Let the core report `status` (with attempt 1) for each named task."""
    seen = {t: Observation(status=s, attempt=1, error="boom" if s == "FAILED" else None)  # type: ignore[arg-type]
            for t, s in outcomes.items()}  # fmt: skip
    return run(state, decide_advance(state, seen, now=T0))


def statuses(state: ExecutionState) -> dict[str, str]:
    return {t: n.status for t, n in state.nodes.items()}


def test_start_queues_the_roots_with_deterministic_core_tasks() -> None:
    state = execution(node("a"), node("b"), node("c", "a", "b"))
    state = run(state, decide_start(state, now=T0))
    assert state.status == "RUNNING"
    assert statuses(state) == {"a": "QUEUED", "b": "QUEUED", "c": "PENDING"}
    assert in_flight(state)["a"] == node_task_id("x", "a", 0)
    assert decide_start(state, now=T0) == []


def test_a_chain_succeeds_and_records_each_step_once() -> None:
    state = execution(node("a"), node("b", "a"))
    state = run(state, decide_start(state, now=T0))
    state = report(state, a="RUNNING")
    assert statuses(state)["a"] == "RUNNING"
    assert decide_advance(state, {"a": Observation(status="RUNNING", attempt=1)}, now=T0) == []
    state = report(state, a="SUCCEEDED")
    assert statuses(state) == {"a": "SUCCEEDED", "b": "QUEUED"}
    events = decide_advance(state, {"b": Observation(status="SUCCEEDED", attempt=1)}, now=T0)
    # A start the reconciler never saw is recorded before the outcome.
    assert [ev.type_of(e) for e in events] == [
        "job.task.started", "job.task.succeeded", "job.execution.succeeded",
    ]  # fmt: skip
    state = run(state, events)
    assert state.status == "SUCCEEDED" and state.settled
    assert state.nodes["b"].attempts == 1


def test_failure_marks_downstream_upstream_failed_and_the_execution_failed_at_once() -> None:
    state = execution(node("a"), node("b", "a"), node("c", "b"), node("side"))
    state = run(state, decide_start(state, now=T0))
    state = report(state, a="FAILED")
    assert statuses(state) == {
        "a": "FAILED", "b": "UPSTREAM_FAILED", "c": "UPSTREAM_FAILED", "side": "QUEUED",
    }  # fmt: skip
    assert state.status == "FAILED" and not state.settled  # `side` is still going
    state = report(state, side="SUCCEEDED")
    assert state.status == "FAILED" and state.settled


def test_retrying_is_recorded_per_attempt() -> None:
    state = execution(node("a"))
    state = run(state, decide_start(state, now=T0))
    state = report(state, a="RETRYING")
    assert statuses(state)["a"] == "RETRYING" and state.nodes["a"].attempts == 1
    events = decide_advance(state, {"a": Observation(status="SUCCEEDED", attempt=2)}, now=T0)
    assert [ev.type_of(e) for e in events][:2] == ["job.task.started", "job.task.succeeded"]
    state = run(state, events)
    assert state.nodes["a"].attempts == 2 and state.status == "SUCCEEDED"


@pytest.mark.parametrize(
    ("rule", "upstream", "expected"),
    [
        ("all_done", "FAILED", "QUEUED"),
        ("one_failed", "FAILED", "QUEUED"),
        ("one_failed", "SUCCEEDED", "SKIPPED"),
        ("none_failed", "FAILED", "UPSTREAM_FAILED"),
        ("one_success", "SUCCEEDED", "QUEUED"),
        ("all_success", "SUCCEEDED", "QUEUED"),
    ],
)
def test_trigger_rules_decide_the_downstream_task(rule: str, upstream: str, expected: str) -> None:
    state = execution(node("a"), node("b", "a", rule=rule))
    state = run(state, decide_start(state, now=T0))
    state = report(state, a=upstream)
    assert statuses(state)["b"] == expected


def test_skipped_cascades_and_a_skip_is_not_a_failure() -> None:
    state = execution(node("a"), node("cleanup", "a", rule="one_failed"), node("after", "cleanup"))
    state = run(state, decide_start(state, now=T0))
    state = report(state, a="SUCCEEDED")
    assert statuses(state) == {"a": "SUCCEEDED", "cleanup": "SKIPPED", "after": "SKIPPED"}
    assert state.status == "SUCCEEDED"


def test_an_execution_with_no_tasks_succeeds_on_start() -> None:
    state = execution()
    state = run(state, decide_start(state, now=T0))
    assert state.status == "SUCCEEDED" and state.settled


def test_cancel_cancels_what_has_not_finished() -> None:
    state = execution(node("a"), node("b", "a"), node("c"))
    state = run(state, decide_start(state, now=T0))
    state = report(state, c="SUCCEEDED")
    state = run(state, decide_cancel(state, now=T0, reason="user"))
    assert state.status == "CANCELLED" and state.settled
    assert statuses(state) == {"a": "CANCELLED", "b": "CANCELLED", "c": "SUCCEEDED"}
    assert decide_cancel(state, now=T0) == []
    done = execution(node("a"))
    done = report(run(done, decide_start(done, now=T0)), a="SUCCEEDED")
    with pytest.raises(InvalidState, match="already finished"):
        decide_cancel(done, now=T0)


def test_retry_reruns_failed_and_downstream_and_keeps_what_succeeded() -> None:
    state = execution(node("ok"), node("a"), node("b", "a"), node("c", "ok"))
    state = run(state, decide_start(state, now=T0))
    with pytest.raises(InvalidState, match="still running"):
        decide_retry(report(state, a="FAILED"), now=T0)
    state = report(state, ok="SUCCEEDED", a="FAILED")
    state = report(state, c="SUCCEEDED")
    assert state.status == "FAILED" and state.settled
    state = run(state, decide_retry(state, now=T0))
    assert state.status == "RUNNING" and state.round == 1
    assert statuses(state) == {"ok": "SUCCEEDED", "a": "QUEUED", "b": "PENDING", "c": "SUCCEEDED"}
    assert in_flight(state)["a"] == node_task_id("x", "a", 1) != node_task_id("x", "a", 0)
    state = report(state, a="SUCCEEDED")  # attempt 1 of the new round
    assert state.nodes["a"].attempts == 2
    state = report(state, b="SUCCEEDED")
    assert state.status == "SUCCEEDED"


def test_observe_maps_core_states() -> None:
    core = core_task(Schedule(kind="once", expr="2026-06-01T10:00:00Z"))
    assert observe(core).status == "QUEUED"
    assert observe(core).attempt == 0
    import msgspec

    running = msgspec.structs.replace(core, run_status="running", attempt=2, started_at=T0)
    assert observe(running) == Observation(status="RUNNING", attempt=2, started_at=T0)
    dispatched = msgspec.structs.replace(core, run_status="dispatched", attempt=2)
    assert observe(dispatched).attempt == 1
    assert observe(msgspec.structs.replace(core, lifecycle="cancelled")).status == "CANCELLED"
    assert observe(msgspec.structs.replace(core, lifecycle="deleted")).status == "FAILED"
