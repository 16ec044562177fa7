"""The worker view: runs each worker finished, per (worker, project).

A run counts for the worker that appended its outcome (`metadata.actor` = `worker:<id>`):
`task.completed`, and `task.failed` when final (an attempt that will be retried is not a failed
task). A run the scheduler fails because its worker vanished (`worker_lost`) is appended by the
scheduler and counts for no worker. Current runs, last heartbeat and resources are not here:
current runs are the inline task view's (exact at every commit) and heartbeats are not events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from projections.view_projection import LoggedEvent, ViewProjection

WORKER_ACTOR = "worker:"


class _Metadata(msgspec.Struct):
    actor: str | None = None


class _Outcome(msgspec.Struct):
    final: bool = True


class WorkerViewRow(msgspec.Struct, frozen=True, kw_only=True):
    """Increments of one worker's counts for one project."""

    worker_id: str
    project_id: str
    tasks_completed: int
    tasks_failed: int


_metadata = msgspec.json.Decoder(_Metadata)
_outcome = msgspec.json.Decoder(_Outcome)


def worker_rows(events: Sequence[LoggedEvent]) -> list[WorkerViewRow]:
    """The count increments `events` make, one row per (worker, project) they touch."""
    completed: Counter[tuple[str, str]] = Counter()
    failed: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e.type == "task.completed":
            target = completed
        elif e.type == "task.failed" and _outcome.decode(e.data).final:
            target = failed
        else:
            continue
        actor = _metadata.decode(e.metadata).actor or ""
        if actor.startswith(WORKER_ACTOR):
            target[(actor.removeprefix(WORKER_ACTOR), e.project_id)] += 1
    return [
        WorkerViewRow(
            worker_id=worker_id,
            project_id=project_id,
            tasks_completed=completed[key],
            tasks_failed=failed[key],
        )
        for key in sorted(completed.keys() | failed.keys())
        for worker_id, project_id in [key]
    ]


UPSERT_SQL = """
INSERT INTO {table} AS v (worker_id, project_id, tasks_completed, tasks_failed)
SELECT r.worker_id, r.project_id, r.tasks_completed, r.tasks_failed
  FROM jsonb_to_recordset($1::jsonb) AS r(
       worker_id text, project_id text, tasks_completed bigint, tasks_failed bigint)
ON CONFLICT (worker_id, project_id) DO UPDATE SET
    tasks_completed = v.tasks_completed + EXCLUDED.tasks_completed,
    tasks_failed = v.tasks_failed + EXCLUDED.tasks_failed
"""

WORKER_VIEW = ViewProjection(table="worker_view", rows=worker_rows, upsert_sql=UPSERT_SQL)
