"""The asynchronous views' folds (projections/worker_view.py, metrics_view.py), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from domain import events as ev
from infra.json_codec import encode
from projections.metrics_view import MetricsRow, metrics_rows
from projections.worker_view import WorkerViewRow, worker_rows

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


class Logged(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    project_id: str
    data: str
    metadata: str
    recorded_at: datetime


def logged(event: Any, *, actor: str, project: str = "p1", at: datetime = T0) -> Logged:
    return Logged(
        type=event.__struct_config__.tag,
        project_id=project,
        data=encode(event).decode(),
        metadata=encode({"actor": actor}).decode(),
        recorded_at=at,
    )


def completed(ms: float = 0.0) -> ev.TaskCompleted:
    return ev.TaskCompleted(at=T0, run_id="r", attempt=1, duration_ms=ms)


def failed(*, final: bool = True, ms: float = 0.0) -> ev.TaskFailed:
    return ev.TaskFailed(at=T0, run_id="r", attempt=1, error="x", final=final, duration_ms=ms)


def test_worker_rows_count_outcomes_by_the_worker_that_appended_them() -> None:
    rows = worker_rows(
        [
            logged(completed(), actor="worker:w1"),
            logged(completed(), actor="worker:w1"),
            logged(completed(), actor="worker:w1", project="p2"),
            logged(failed(), actor="worker:w1"),
            logged(failed(final=False), actor="worker:w2"),  # will be retried: not a failure
            logged(failed(), actor="scheduler:s1"),  # lost with its worker: nobody's
            logged(completed(), actor="user:u"),
        ]
    )
    assert rows == [
        WorkerViewRow(worker_id="w1", project_id="p1", tasks_completed=2, tasks_failed=1),
        WorkerViewRow(worker_id="w1", project_id="p2", tasks_completed=1, tasks_failed=0),
    ]


def test_metrics_rows_bucket_by_project_and_minute() -> None:
    due = T0 - timedelta(seconds=2)
    dispatch = ev.TaskDispatched(at=T0, run_id="r", attempt=1, due_at=due, lease_until=T0)
    early = ev.TaskDispatched(
        at=T0, run_id="r", attempt=1, due_at=T0 + timedelta(1), lease_until=T0
    )
    start = ev.TaskStarted(at=T0, run_id="r", attempt=1, worker_id="w", lease_until=T0)
    retry = ev.TaskRetrying(at=T0, run_id="r", attempt=2, next_attempt_at=T0)
    next_minute = T0 + timedelta(seconds=40)
    rows = metrics_rows(
        [
            logged(dispatch, actor="s"),
            logged(early, actor="s"),  # run before its time (a manual trigger): 0 late
            logged(start, actor="w"),
            logged(completed(1.5), actor="w"),
            logged(failed(final=False, ms=0.25), actor="w"),
            logged(retry, actor="s"),
            logged(failed(), actor="s"),  # lost: counted failed, never measured
            logged(completed(2.0), actor="w", at=next_minute),
            logged(completed(3.0), actor="w", project="p2"),
            logged(ev.TaskPaused(at=T0), actor="u"),  # not measured
        ]
    )
    minute = T0.replace(second=0)
    assert rows == [
        MetricsRow(
            project_id="p1", minute=minute, started=1, completed=1, failed=1, retried=1,
            exec_us_sum=1750, exec_count=2, lateness_us_sum=2_000_000, lateness_count=2,
            lateness_us_max=2_000_000,
        ),
        MetricsRow(
            project_id="p1", minute=minute + timedelta(minutes=1), completed=1,
            exec_us_sum=2000, exec_count=1,
        ),
        MetricsRow(project_id="p2", minute=minute, completed=1, exec_us_sum=3000, exec_count=1),
    ]  # fmt: skip
