"""The job aggregate: versions, task edits, pause, admission under maxActiveRuns, fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import job_events as ev
from domain.actions import HttpAction
from domain.errors import InvalidState, NotFound
from domain.job import (
    AddTask,
    CreateJob,
    DeleteJob,
    EndExecution,
    JobPatch,
    JobState,
    PauseJob,
    RemoveTask,
    ReplaceTask,
    ResumeJob,
    TriggerJob,
    UpdateJob,
    decide,
    decide_fire,
    evolve,
    execution_id_for_fire,
    execution_id_for_key,
    fold,
)
from domain.job_definition import JobDefinition, JobTask

T0 = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
URL = HttpAction(url="https://example.com/hook")


def node(task_id: str, *deps: str) -> JobTask:
    return JobTask(id=task_id, name=task_id, action=URL, dependencies=deps)


def make(now: datetime = T0, **extra: object) -> JobState:
    definition = JobDefinition(name="j", tasks=(node("a"), node("b", "a")), **extra)  # type: ignore[arg-type]
    state = fold(
        decide(None, CreateJob(job_id="j1", project_id="p", definition=definition), now=now)
    )
    assert state is not None
    return state


def apply(state: JobState, command: object, now: datetime = T0) -> JobState:
    out = fold(decide(state, command, now=now), state)  # type: ignore[arg-type]
    assert out is not None
    return out


def test_each_change_is_a_new_definition_version() -> None:
    state = make()
    assert state.definition_version == 1
    state = apply(state, UpdateJob(patch=JobPatch(name="renamed")))
    assert (state.definition_version, state.definition.name) == (2, "renamed")
    state = apply(state, AddTask(task=node("c", "b")))
    state = apply(state, ReplaceTask(task_id="c", task=node("c", "a")))
    assert state.definition_version == 4
    assert state.definition.task("c") == node("c", "a")
    assert decide(state, UpdateJob(patch=JobPatch(name="renamed")), now=T0) == []


def test_task_edits_are_validated_against_the_whole_graph() -> None:
    state = make()
    with pytest.raises(InvalidState, match="already exists"):
        decide(state, AddTask(task=node("a")), now=T0)
    with pytest.raises(Exception, match="dependency cycle: a → b → a"):
        decide(state, ReplaceTask(task_id="a", task=node("a", "b")), now=T0)
    with pytest.raises(NotFound):
        decide(state, ReplaceTask(task_id="zz", task=node("zz")), now=T0)


def test_deleting_a_task_others_depend_on_names_them() -> None:
    state = apply(make(), AddTask(task=node("c", "a")))
    with pytest.raises(InvalidState) as caught:
        decide(state, RemoveTask(task_id="a"), now=T0)
    assert "a is a dependency of b, c" in caught.value.message
    state = apply(state, RemoveTask(task_id="c"))
    assert [t.id for t in state.definition.tasks] == ["a", "b"]


def test_admission_respects_max_active_runs_and_queues_the_rest() -> None:
    state = make(max_active_runs=1)
    state = apply(state, TriggerJob(execution_id="e1"))
    state = apply(state, TriggerJob(execution_id="e2"))
    assert (state.running, state.queued) == (("e1",), ("e2",))
    assert decide(state, TriggerJob(execution_id="e1"), now=T0) == []  # idempotent
    events = decide(state, EndExecution(execution_id="e1"), now=T0)
    assert [ev.type_of(e) for e in events] == ["job.execution_ended", "job.execution_admitted"]
    state = fold(events, state)  # type: ignore[assignment]
    assert (state.running, state.queued) == (("e2",), ())


def test_pause_queues_triggers_and_resume_admits_them() -> None:
    state = apply(make(), PauseJob())
    assert decide(state, PauseJob(), now=T0) == []
    state = apply(state, TriggerJob(execution_id="e1"))
    assert state.queued == ("e1",)
    state = apply(state, ResumeJob())
    assert state.running == ("e1",) and not state.paused


def test_deleted_job_is_not_found() -> None:
    state = apply(make(), DeleteJob())
    with pytest.raises(NotFound):
        decide(state, PauseJob(), now=T0)


def test_execution_ids_are_deterministic() -> None:
    assert execution_id_for_key("p", "j", "k") == execution_id_for_key("p", "j", "k")
    assert execution_id_for_key("p", "j", "k") != execution_id_for_key("p2", "j", "k")
    assert execution_id_for_fire("j", T0) == execution_id_for_fire("j", T0.astimezone())


def test_cron_fires_in_the_jobs_timezone() -> None:
    state = make(schedule="30 9 * * *", timezone="America/New_York")
    # 2026-03-07 is EST (UTC-5); the next day is after the spring-forward switch (UTC-4).
    assert state.next_fire_at == datetime(2026, 3, 7, 14, 30, tzinfo=UTC)
    fire = decide_fire(state, now=datetime(2026, 3, 7, 14, 30, 1, tzinfo=UTC))
    assert fire is not None and fire.execution_id is not None
    (triggered,) = fire.events
    assert isinstance(triggered, ev.JobTriggered) and triggered.admitted
    assert triggered.next_fire_at == datetime(2026, 3, 8, 13, 30, tzinfo=UTC)
    assert decide_fire(state, now=datetime(2026, 3, 7, 14, 29, tzinfo=UTC)) is None


def test_a_fire_while_paused_is_recorded_as_skipped() -> None:
    state = apply(make(schedule="0 * * * *"), PauseJob())
    fire = decide_fire(state, now=T0 + timedelta(hours=1, seconds=1))
    assert fire is not None and fire.execution_id is None
    (skipped,) = fire.events
    assert isinstance(skipped, ev.JobFireSkipped) and skipped.reason == "paused"
    resumed = decide(fold(fire.events, state), ResumeJob(), now=T0 + timedelta(hours=1, minutes=5))  # type: ignore[arg-type]
    assert resumed[0].next_fire_at == T0 + timedelta(hours=2)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overlap", "queued", "outcome"),
    [
        ("skip", (), "max_active_runs"),
        ("queue_one", (), "queued"),
        ("queue_one", ("old",), "queue_full"),
        ("allow", ("old",), "queued"),
    ],
)
def test_overlap_policies(overlap: str, queued: tuple[str, ...], outcome: str) -> None:
    import msgspec

    state = msgspec.structs.replace(
        make(schedule="0 * * * *", overlap_policy=overlap), running=("busy",), queued=queued
    )
    fire = decide_fire(state, now=T0 + timedelta(hours=1))
    assert fire is not None
    (event,) = fire.events
    if outcome == "queued":
        assert isinstance(event, ev.JobTriggered) and not event.admitted
        assert evolve(state, event).queued[-1] == fire.execution_id
    else:
        assert isinstance(event, ev.JobFireSkipped) and event.reason == outcome


@pytest.mark.parametrize(
    ("policy", "kind"), [("run_once", "job.triggered"), ("skip", "job.fire_skipped")]
)
def test_misfire_after_downtime(policy: str, kind: str) -> None:
    state = make(schedule="0 * * * *", misfire_policy=policy)
    fire = decide_fire(state, now=T0 + timedelta(hours=5, minutes=10))
    assert fire is not None
    (event,) = fire.events
    assert ev.type_of(event) == kind
    assert event.next_fire_at == T0 + timedelta(hours=6)
    if policy == "run_once":
        assert isinstance(event, ev.JobTriggered)
        assert (event.scheduled_for, event.missed) == (T0 + timedelta(hours=5), 4)


def test_a_retried_execution_takes_its_place_even_when_full_or_paused() -> None:
    state = apply(apply(make(), TriggerJob(execution_id="e1")), PauseJob())
    state = apply(state, TriggerJob(execution_id="e0", trigger="retry"))
    assert state.running == ("e1", "e0")
