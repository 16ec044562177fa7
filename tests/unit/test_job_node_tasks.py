"""A job task's core task: its action carries the execution's key, ids and params."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from domain import job_events as ev
from domain.actions import HandlerAction, HttpAction
from domain.job_definition import JobRetryPolicy, JobTask
from domain.job_execution import ExecutionState, fold
from services.jobs.metrics import hop_seconds
from services.jobs.node_tasks import node_definition

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def execution(*tasks: JobTask, params: object = None) -> ExecutionState:
    state = fold([ev.ExecutionCreated(
        at=T0, execution_id="x1", job_id="j1", project_id="p", job_name="nightly",
        definition_version=1, tasks=tasks, retry_policy=JobRetryPolicy(type="NONE"),
        params=params,
    )])  # fmt: skip
    assert state is not None
    return state


def test_http_calls_carry_the_key_the_ids_and_the_params_as_body() -> None:
    task = JobTask(
        id="load", name="Load", action=HttpAction(url="https://e.com/x", headers={"A": "1"})
    )
    definition = node_definition(execution(task, params={"day": 1}), task, now=T0)
    action = definition.action
    assert isinstance(action, HttpAction)
    assert action.headers["Idempotency-Key"] == "x1:load"
    assert action.headers["X-Taskstream-Execution-Id"] == "x1" and action.headers["A"] == "1"
    assert json.loads(action.body or "") == {"day": 1}
    assert definition.tags == ("job:j1", "execution:x1")
    assert definition.name == "nightly / Load"
    assert definition.retry.max_retries == 0  # the job's NONE applies


def test_a_body_of_its_own_or_a_get_is_left_alone_and_handlers_get_a_payload() -> None:
    own = JobTask(id="a", name="a", action=HttpAction(url="https://e.com", body="mine"))
    get = JobTask(id="b", name="b", action=HttpAction(url="https://e.com", method="GET"))
    handler = JobTask(id="c", name="c", action=HandlerAction(name="h"))
    state = execution(own, get, handler, params={"k": "v"})
    assert node_definition(state, own, now=T0).action.body == "mine"  # type: ignore[union-attr]
    assert node_definition(state, get, now=T0).action.body is None  # type: ignore[union-attr]
    assert node_definition(state, handler, now=T0).payload == {
        "jobId": "j1", "executionId": "x1", "taskId": "c", "params": {"k": "v"},
    }  # fmt: skip


def test_hop_is_from_the_last_upstream_finish_to_the_first_start() -> None:
    a = JobTask(id="a", name="a", action=HandlerAction(name="h"))
    b = JobTask(id="b", name="b", action=HandlerAction(name="h"), dependencies=("a",))
    state = fold(
        [
            ev.ExecutionStarted(at=T0),
            ev.NodeQueued(at=T0, task_id="a", core_task_id="c-a"),
            ev.NodeStarted(at=T0, task_id="a", attempt=1),
            ev.NodeSucceeded(at=T0 + timedelta(seconds=1), task_id="a", attempt=1),
            ev.NodeQueued(at=T0, task_id="b", core_task_id="c-b"),
        ],
        execution(a, b),
    )
    assert state is not None
    started = ev.NodeStarted(at=T0 + timedelta(seconds=1, milliseconds=15), task_id="b", attempt=1)
    assert hop_seconds(state, started) == 0.015
    root = ev.NodeStarted(at=T0, task_id="a", attempt=2)
    assert hop_seconds(state, root) is None
