"""The Task aggregate as pure functions: given events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import events as ev
from domain.actions import CommandAction, HttpAction
from domain.api_keys import issue_key, matches, parse_key
from domain.commands import (
    CancelTask,
    CheckpointTask,
    CreateTask,
    DeleteTask,
    PauseTask,
    ResumeTask,
    RetryTask,
    TaskPatch,
    UpdateTask,
)
from domain.errors import InvalidState, NotFound, ValidationError
from domain.schedule import Schedule
from domain.task import TaskState, decide, evolve, fold, public_status
from domain.task_definition import TaskDefinition

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def definition(**overrides: object) -> TaskDefinition:
    base = TaskDefinition(
        name="job",
        action=HttpAction(url="https://example.com/hook"),
        schedule=Schedule(kind="once", expr=LATER.isoformat()),
    )
    return TaskDefinition(**{**{f: getattr(base, f) for f in base.__struct_fields__}, **overrides})  # type: ignore[arg-type]


def created(**overrides: object) -> TaskState:
    events = decide(
        None, CreateTask(task_id="t1", project_id="p1", definition=definition(**overrides)), now=NOW
    )
    state = fold(events)
    assert state is not None
    return state


def apply(
    state: TaskState, command: object, *, at: datetime = NOW
) -> tuple[TaskState, list[ev.TaskEvent]]:
    events = decide(state, command, now=at)  # type: ignore[arg-type]
    new = fold(events, state)
    assert new is not None
    return new, events


def test_create_emits_created_with_first_run() -> None:
    (event,) = decide(
        None, CreateTask(task_id="t1", project_id="p1", definition=definition()), now=NOW
    )
    assert isinstance(event, ev.TaskCreated)
    assert event.next_run_at == LATER
    state = evolve(None, event)
    assert (state.version, public_status(state), state.created_at) == (0, "pending", NOW)


def test_create_twice_is_refused() -> None:
    with pytest.raises(InvalidState):
        decide(
            created(), CreateTask(task_id="t1", project_id="p1", definition=definition()), now=NOW
        )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "  "}, "name"),
        ({"priority": 0}, "priority"),
        ({"tags": ("",)}, "tags"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"action": CommandAction(command="ls")}, "action.command"),
        ({"action": HttpAction(url="http://169.254.169.254/")}, "action.url"),
        ({"schedule": Schedule(kind="cron", expr="bad")}, "schedule.expr"),
        ({"dedupe_window_seconds": 5}, "dedupe_window_seconds"),
        ({"concurrency_limit": 0}, "concurrency_limit"),
    ],
)
def test_create_validation_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        decide(
            None,
            CreateTask(task_id="t", project_id="p", definition=definition(**overrides)),
            now=NOW,
        )
    assert info.value.field == field


def test_commands_allowed_only_when_operator_allows() -> None:
    cmd = CreateTask(
        task_id="t", project_id="p", definition=definition(action=CommandAction(command="ls"))
    )
    (event,) = decide(None, cmd, now=NOW, allow_commands=True)
    assert isinstance(event, ev.TaskCreated)


def test_update_changes_only_given_fields_and_noop_emits_nothing() -> None:
    state = created(tags=("a",))
    new, events = apply(state, UpdateTask(patch=TaskPatch(name="renamed", priority=9)))
    (event,) = events
    assert isinstance(event, ev.TaskUpdated) and set(event.changed) == {"name", "priority"}
    assert (new.definition.name, new.definition.priority, new.definition.tags) == (
        "renamed",
        9,
        ("a",),
    )
    assert new.version == 1
    assert decide(new, UpdateTask(patch=TaskPatch(name="renamed")), now=NOW) == []


def test_update_of_schedule_recomputes_next_run() -> None:
    state = created()
    new, _ = apply(
        state, UpdateTask(patch=TaskPatch(schedule=Schedule(kind="cron", expr="0 15 * * *")))
    )
    assert new.next_run_at == datetime(2026, 6, 1, 15, 0, tzinfo=UTC)


def test_pause_resume_cancel_lifecycle() -> None:
    state = created()
    paused, events = apply(state, PauseTask())
    assert public_status(paused) == "paused" and len(events) == 1
    assert decide(paused, PauseTask(), now=NOW) == []
    resumed, _ = apply(paused, ResumeTask())
    assert public_status(resumed) == "pending" and resumed.next_run_at == LATER
    cancelled, _ = apply(resumed, CancelTask(reason="no longer needed"))
    assert public_status(cancelled) == "cancelled" and cancelled.next_run_at is None
    assert decide(cancelled, CancelTask(), now=NOW) == []
    for command in (PauseTask(), ResumeTask(), RetryTask(), UpdateTask(patch=TaskPatch(name="x"))):
        with pytest.raises(InvalidState):
            decide(cancelled, command, now=NOW)


def test_resume_of_recurring_task_skips_to_the_next_occurrence() -> None:
    state = created(schedule=Schedule(kind="cron", expr="0 * * * *"))
    paused, _ = apply(state, PauseTask())
    resumed, _ = apply(paused, ResumeTask(), at=NOW + timedelta(hours=5, minutes=10))
    assert resumed.next_run_at == datetime(2026, 6, 1, 18, 0, tzinfo=UTC)


def test_delete_makes_the_task_not_found() -> None:
    deleted, _ = apply(created(), DeleteTask())
    with pytest.raises(NotFound):
        decide(deleted, PauseTask(), now=NOW)
    with pytest.raises(NotFound):
        decide(None, PauseTask(), now=NOW)


def run_to_failure(state: TaskState) -> TaskState:
    events: list[ev.TaskEvent] = [
        ev.TaskDispatched(at=LATER, run_id="r1", attempt=1, due_at=LATER, lease_until=LATER),
        ev.TaskStarted(at=LATER, run_id="r1", attempt=1, worker_id="w", lease_until=LATER),
        ev.TaskFailed(at=LATER, run_id="r1", attempt=1, error="boom", final=True),
    ]
    new = fold(events, state)
    assert new is not None
    return new


def test_retry_only_after_a_final_failure() -> None:
    state = created()
    with pytest.raises(InvalidState):
        decide(state, RetryTask(), now=NOW)
    failed = run_to_failure(state)
    assert public_status(failed) == "failed" and failed.error == "boom" and failed.runs_failed == 1
    retried, events = apply(failed, RetryTask(), at=LATER)
    (event,) = events
    assert isinstance(event, ev.TaskRetrying) and event.manual and event.attempt == 2
    assert public_status(retried) == "pending" and retried.retry_count == 1
    assert retried.next_run_at == LATER


def test_cancel_of_a_finished_one_shot_is_a_conflict() -> None:
    state = run_to_failure(created())
    with pytest.raises(InvalidState):
        decide(state, CancelTask(), now=LATER)


def test_execution_events_drive_run_status() -> None:
    state = created()
    dispatched = evolve(
        state, ev.TaskDispatched(at=LATER, run_id="r", attempt=1, due_at=LATER, lease_until=LATER)
    )
    assert public_status(dispatched) == "dispatched" and dispatched.next_run_at is None
    running = evolve(
        dispatched,
        ev.TaskStarted(at=LATER, run_id="r", attempt=1, worker_id="w1", lease_until=LATER),
    )
    assert (public_status(running), running.worker_id, running.started_at) == (
        "running",
        "w1",
        LATER,
    )
    done = evolve(running, ev.TaskCompleted(at=LATER, run_id="r", attempt=1, result={"ok": True}))
    assert (public_status(done), done.result, done.runs_completed, done.worker_id) == (
        "completed",
        {"ok": True},
        1,
        "w1",  # the last worker stays on record
    )
    assert done.version == 3


def test_checkpoint_requires_opt_in() -> None:
    with pytest.raises(InvalidState):
        decide(created(), CheckpointTask(data={"step": 1}), now=NOW)
    state, _ = apply(created(checkpoint_enabled=True), CheckpointTask(data={"step": 1}))
    assert state.checkpoint_data == {"step": 1}


def test_api_keys_round_trip_and_compare() -> None:
    issued = issue_key(bytes(range(38)))
    parsed = parse_key(issued.api_key)
    assert parsed is not None and parsed.key_id == issued.key_id
    assert matches(issued.api_key, issued.digest)
    assert not matches(
        issued.api_key[:-1] + ("0" if issued.api_key[-1] != "0" else "1"), issued.digest
    )
    assert parse_key("ts_short_x") is None and parse_key(issued.api_key + "x") is None
