"""A task's runs folded from its events (domain/task_runs.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain import events as ev
from domain.task_runs import runs_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_each_attempt_is_one_run_with_its_outcome() -> None:
    lease = _at(60)
    runs = runs_of(
        [
            ev.TaskDispatched(at=_at(0), run_id="r1", attempt=1, due_at=_at(0), lease_until=lease),
            ev.TaskStarted(at=_at(1), run_id="r1", attempt=1, worker_id="w", lease_until=lease),
            ev.TaskFailed(at=_at(2), run_id="r1", attempt=1, error="boom", final=False,
                          duration_ms=900.0),
            ev.TaskDispatched(at=_at(5), run_id="r1", attempt=2, due_at=_at(5), lease_until=lease),
            ev.TaskStarted(at=_at(6), run_id="r1", attempt=2, worker_id="w2", lease_until=lease),
            ev.TaskCompleted(at=_at(7), run_id="r1", attempt=2, duration_ms=1000.0),
            ev.TaskDispatched(at=_at(9), run_id="r2", attempt=1, due_at=_at(9), lease_until=lease),
        ]
    )  # fmt: skip
    assert [(r.run_id, r.attempt, r.status) for r in runs] == [
        ("r1", 1, "failed"),
        ("r1", 2, "completed"),
        ("r2", 1, "dispatched"),
    ]
    failed, done, waiting = runs
    assert (failed.error, failed.reason, failed.worker_id) == ("boom", "error", "w")
    assert (done.started_at, done.finished_at, done.duration_ms) == (_at(6), _at(7), 1000.0)
    assert waiting.started_at is None and waiting.finished_at is None


def test_an_outcome_without_its_dispatch_is_ignored() -> None:
    assert runs_of([ev.TaskCompleted(at=T0, run_id="x", attempt=1)]) == []
