"""The metrics view: per-minute buckets per project of what happened to its tasks.

Counted per event, in the minute it was recorded (UTC): `created` (task.created), `started`
(task.started), `completed` (task.completed), `failed` (final task.failed), `retried`
(task.retrying); execution time, the duration of every finished attempt that ran
(task.completed, and task.failed with a duration: a run lost with its worker never measured
one); lateness, due -> dispatched of each task.dispatched (how far the scheduler ran behind).
Times are whole microseconds, so sums are exact whatever the batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from projections.view_projection import LoggedEvent, ViewProjection


class _Duration(msgspec.Struct):
    duration_ms: float = 0.0
    final: bool = True


class _Dispatch(msgspec.Struct):
    at: datetime
    due_at: datetime


class MetricsRow(msgspec.Struct, kw_only=True):
    """Increments of one project's minute (lateness_us_max is a maximum, not a sum)."""

    project_id: str
    minute: datetime
    created: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    exec_us_sum: int = 0
    exec_count: int = 0
    lateness_us_sum: int = 0
    lateness_count: int = 0
    lateness_us_max: int = 0


_MICROSECOND = timedelta(microseconds=1)
_duration = msgspec.json.Decoder(_Duration)
_dispatch = msgspec.json.Decoder(_Dispatch)
_COUNTED = {"task.created": "created", "task.started": "started", "task.retrying": "retried"}


def _ran(row: MetricsRow, duration_ms: float) -> None:
    row.exec_us_sum += round(duration_ms * 1000)
    row.exec_count += 1


def _apply(row: MetricsRow, e: LoggedEvent) -> None:
    if e.type in _COUNTED:
        name = _COUNTED[e.type]
        setattr(row, name, getattr(row, name) + 1)
    elif e.type == "task.completed":
        row.completed += 1
        _ran(row, _duration.decode(e.data).duration_ms)
    elif e.type == "task.failed":
        outcome = _duration.decode(e.data)
        row.failed += outcome.final
        if outcome.duration_ms > 0:
            _ran(row, outcome.duration_ms)
    elif e.type == "task.dispatched":
        d = _dispatch.decode(e.data)
        late = max(0, (d.at - d.due_at) // _MICROSECOND)
        row.lateness_us_sum += late
        row.lateness_count += 1
        row.lateness_us_max = max(row.lateness_us_max, late)


_MEASURED = {*_COUNTED, "task.completed", "task.failed", "task.dispatched"}


def metrics_rows(events: Sequence[LoggedEvent]) -> list[MetricsRow]:
    """The bucket increments `events` make, one row per (project, minute) they touch."""
    buckets: dict[tuple[str, datetime], MetricsRow] = {}
    for e in events:
        if e.type not in _MEASURED:
            continue
        minute = e.recorded_at.replace(second=0, microsecond=0)
        key = (e.project_id, minute)
        row = buckets.get(key)
        if row is None:
            row = buckets[key] = MetricsRow(project_id=e.project_id, minute=minute)
        _apply(row, e)
    return [buckets[k] for k in sorted(buckets)]


_SUMMED = ("created", "started", "completed", "failed", "retried", "exec_us_sum", "exec_count",
           "lateness_us_sum", "lateness_count")  # fmt: skip
_COLUMNS = (*_SUMMED, "lateness_us_max")

UPSERT_SQL = f"""
INSERT INTO {{table}} AS m (project_id, minute, {", ".join(_COLUMNS)})
SELECT r.project_id, r.minute, {", ".join("r." + c for c in _COLUMNS)}
  FROM jsonb_to_recordset($1::jsonb) AS r(
       project_id text, minute timestamptz, {", ".join(c + " bigint" for c in _COLUMNS)})
ON CONFLICT (project_id, minute) DO UPDATE SET
    {", ".join(f"{c} = m.{c} + EXCLUDED.{c}" for c in _SUMMED)},
    lateness_us_max = GREATEST(m.lateness_us_max, EXCLUDED.lateness_us_max)
"""

METRICS_VIEW = ViewProjection(table="metrics_view", rows=metrics_rows, upsert_sql=UPSERT_SQL)
