"""Job definitions: every validation error names the problem; retry policies map onto the core."""

from __future__ import annotations

import pytest

from domain.actions import CommandAction, HttpAction
from domain.errors import ValidationError
from domain.job_definition import (
    Backoff,
    JobDefinition,
    JobRetryPolicy,
    JobTask,
    core_retry_policy,
    descendants,
    find_cycle,
    validate_job_definition,
)
from domain.retry_policy import retries_reason, retry_delay, should_retry

URL = HttpAction(url="https://example.com/hook")


def node(task_id: str, *deps: str, **extra: object) -> JobTask:
    return JobTask(id=task_id, name=task_id.upper(), action=URL, dependencies=deps, **extra)  # type: ignore[arg-type]


def job(*tasks: JobTask, **extra: object) -> JobDefinition:
    return JobDefinition(name="nightly", tasks=tasks, **extra)  # type: ignore[arg-type]


def rejected(definition: JobDefinition, *, allow_commands: bool = False) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_job_definition(definition, allow_commands=allow_commands)
    return caught.value


def test_a_valid_dag_is_normalised() -> None:
    out = validate_job_definition(
        job(node("a"), node("b", "a"), node("c", "a", "b"), schedule="0  9 * * 1-5"),
        allow_commands=False,
    )
    assert out.schedule == "0 9 * * 1-5"
    assert [t.id for t in out.tasks] == ["a", "b", "c"]


def test_a_cycle_is_named_as_the_path_it_closes() -> None:
    error = rejected(job(node("a", "c"), node("b", "a"), node("c", "b"), node("d")))
    assert error.message == "dependency cycle: a → b → c → a"
    assert error.field == "dependencies"


def test_find_cycle_returns_none_for_a_dag_and_the_loop_for_a_self_cycle() -> None:
    assert find_cycle({"a": (), "b": ("a",), "c": ("a", "b")}) is None
    assert find_cycle({"x": ("y",), "y": ("x",)}) == ["x", "y", "x"]


def test_an_unknown_dependency_is_named() -> None:
    error = rejected(job(node("a"), node("b", "a", "ghost")))
    assert "b depends on unknown tasks: ghost" in error.message


def test_duplicate_task_ids_are_listed() -> None:
    error = rejected(job(node("a"), node("b"), node("a"), node("b")))
    assert error.message == "duplicate task ids: a, b"


def test_more_than_500_tasks_is_refused() -> None:
    error = rejected(job(*(node(f"t{i}") for i in range(501))))
    assert "at most 500 tasks" in error.message and error.field == "tasks"
    validate_job_definition(job(*(node(f"t{i}") for i in range(500))), allow_commands=False)


def test_an_invalid_action_names_the_task_field() -> None:
    bad = JobTask(id="a", name="A", action=HttpAction(url="ftp://example.com"))
    assert rejected(job(bad)).field == "tasks[0].action.url"
    cmd = JobTask(id="a", name="A", action=CommandAction(command="echo hi"))
    assert rejected(job(cmd)).field == "tasks[0].action"
    validate_job_definition(job(cmd), allow_commands=True)


def test_invalid_cron_and_timezone() -> None:
    error = rejected(job(node("a"), schedule="61 * * * *"))
    assert error.field == "schedule" and "minute 61 out of range" in error.message
    error = rejected(job(node("a"), schedule="0 9 * * *", timezone="Mars/Olympus"))
    assert error.field == "timezone" and "Mars/Olympus" in error.message


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (JobRetryPolicy(type="SOMETIMES"), "retryPolicy.type"),  # type: ignore[arg-type]
        (JobRetryPolicy(max_retries=-1), "retryPolicy.maxRetries"),
        (JobRetryPolicy(backoff=Backoff(strategy="random")), "retryPolicy.backoff.strategy"),  # type: ignore[arg-type]
        (JobRetryPolicy(backoff=Backoff(delay_seconds=0)), "retryPolicy.backoff.delaySeconds"),
        (
            JobRetryPolicy(backoff=Backoff(delay_seconds=10, max_delay_seconds=5)),
            "retryPolicy.backoff.maxDelaySeconds",
        ),
    ],
)
def test_invalid_retry_policies(policy: JobRetryPolicy, field: str) -> None:
    assert rejected(job(node("a"), retry_policy=policy)).field == field
    assert rejected(job(node("a", retry_policy=policy))).field == f"tasks[0].{field}"


def test_other_task_fields() -> None:
    assert rejected(job(node("a", "a"))).message == "task a depends on itself"
    assert rejected(job(node("a", timeout_seconds=0))).field == "tasks[0].timeoutSeconds"
    assert rejected(job(node("a", trigger_rule="sometimes"))).field == "tasks[0].triggerRule"
    assert rejected(job(node(" "))).field == "tasks[0].id"
    assert rejected(JobDefinition(name=" ")).field == "name"
    assert rejected(job(max_active_runs=0)).field == "maxActiveRuns"


def test_descendants() -> None:
    tasks = (node("a"), node("b", "a"), node("c", "b"), node("d"))
    assert descendants(tasks, {"a"}) == {"b", "c"}


def test_retry_types_map_onto_the_core_policy() -> None:
    none = core_retry_policy(JobRetryPolicy(type="NONE", max_retries=5))
    assert not should_retry(none, 0)
    on_failure = core_retry_policy(JobRetryPolicy(type="ON_FAILURE", max_retries=2))
    assert should_retry(on_failure, 1) and not should_retry(on_failure, 2)
    assert retries_reason(on_failure, "http_status")
    assert not retries_reason(on_failure, "timeout")
    assert not retries_reason(on_failure, "worker_lost")
    always = core_retry_policy(JobRetryPolicy(type="ALWAYS"))
    assert retries_reason(always, "timeout") and retries_reason(always, "worker_lost")


@pytest.mark.parametrize(
    ("strategy", "delays"),
    [("fixed", [2, 2, 2, 2]), ("linear", [2, 4, 6, 8]), ("exponential", [2, 4, 8, 10])],
)
def test_backoff_strategies(strategy: str, delays: list[float]) -> None:
    policy = core_retry_policy(
        JobRetryPolicy(backoff=Backoff(strategy=strategy, delay_seconds=2, max_delay_seconds=10))  # type: ignore[arg-type]
    )
    assert [retry_delay(policy, n, 0.5) for n in (1, 2, 3, 4)] == delays
