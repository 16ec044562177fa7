"""The caller project's task figures for `/api/system/status` and `/api/system/metrics`.

Live counts (pending, running, queue depths) come from the inline task view; what happened
today and the metric series from the projector's metrics view (per-minute buckets, a moment
behind the log). Every query names the caller's project.

Words: `pending` counts tasks waiting to run or run again (pending, retrying, dispatched);
a queue holds the runs that are due and not yet running (dispatched to the broker, or due and
waiting for a scheduler), banded by priority: high 8-10, normal 4-7, low 1-3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from services.system import schemas as ss

HIGH_PRIORITY = 8
LOW_PRIORITY = 3

_LIVE = f"""
SELECT count(*) FILTER (WHERE status IN ('pending', 'retrying', 'dispatched')) AS pending,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE queued AND priority >= {HIGH_PRIORITY}) AS high_priority,
       count(*) FILTER (WHERE queued AND priority > {LOW_PRIORITY}
                                     AND priority < {HIGH_PRIORITY}) AS normal_priority,
       count(*) FILTER (WHERE queued AND priority <= {LOW_PRIORITY}) AS low_priority
  FROM (SELECT status, priority,
               status = 'dispatched'
               OR (status IN ('pending', 'retrying') AND lifecycle = 'active'
                   AND next_run_at <= now()) AS queued
          FROM task_view
         WHERE project_id = $1 AND lifecycle <> 'deleted'
           AND status IN ('pending', 'retrying', 'dispatched', 'running')) t
"""

_TODAY = """
SELECT COALESCE(sum(completed), 0) AS completed_today, COALESCE(sum(failed), 0) AS failed_today
  FROM metrics_view
 WHERE project_id = $1 AND minute >= date_trunc('day', now(), 'UTC')
"""


async def task_figures(
    pool: asyncpg.Pool, project_id: str
) -> tuple[ss.TaskStatsOut, ss.QueueDepthsOut]:
    """The project's task counts and queue depths."""
    async with pool.acquire() as conn:
        live = await conn.fetchrow(_LIVE, project_id)
        today = await conn.fetchrow(_TODAY, project_id)
    stats = ss.TaskStatsOut(
        pending=live["pending"],
        running=live["running"],
        completed_today=int(today["completed_today"]),
        failed_today=int(today["failed_today"]),
    )
    queues = ss.QueueDepthsOut(
        high_priority=live["high_priority"],
        normal_priority=live["normal_priority"],
        low_priority=live["low_priority"],
    )
    return stats, queues


# How many points each period's series has: a day of hours, a month of days, a quarter of
# weeks, a year of months, each ending with the current (partial) one.
POINTS: dict[ss.Period, int] = {"hour": 24, "day": 30, "week": 12, "month": 12}

# Buckets are computed in UTC timestamps, so months and weeks never meet a DST shift.
_SERIES = """
WITH span AS (
    SELECT date_trunc($2, now() AT TIME ZONE 'UTC') AS last,
           make_interval(hours => CASE $2 WHEN 'hour' THEN 1 ELSE 0 END,
                         days => CASE $2 WHEN 'day' THEN 1 WHEN 'week' THEN 7 ELSE 0 END,
                         months => CASE $2 WHEN 'month' THEN 1 ELSE 0 END) AS step
), buckets AS (
    SELECT b FROM span, generate_series(span.last - ($3 - 1) * span.step, span.last, span.step) b
), sums AS (
    SELECT date_trunc($2, m.minute AT TIME ZONE 'UTC') AS b, sum(m.completed) AS completed,
           sum(m.failed) AS failed, sum(m.exec_us_sum) AS exec_us, sum(m.exec_count) AS runs
      FROM metrics_view m
     WHERE m.project_id = $1
       AND m.minute >= (SELECT min(b) FROM buckets) AT TIME ZONE 'UTC'
     GROUP BY 1
)
SELECT buckets.b AT TIME ZONE 'UTC' AS at, COALESCE(s.completed, 0) AS completed,
       COALESCE(s.failed, 0) AS failed, COALESCE(s.exec_us, 0) AS exec_us,
       COALESCE(s.runs, 0) AS runs
  FROM buckets LEFT JOIN sums s USING (b)
 ORDER BY buckets.b
"""


def _value(name: ss.MetricName, row: Any) -> int | float:
    completed, failed, runs = int(row["completed"]), int(row["failed"]), int(row["runs"])
    if name == "task_completion_rate":
        return completed
    if name == "error_rate":
        return round(failed / (completed + failed), 4) if completed + failed else 0.0
    return round(int(row["exec_us"]) / runs / 1e6, 3) if runs else 0.0


async def metric_series(
    pool: asyncpg.Pool, project_id: str, period: ss.Period, names: list[ss.MetricName]
) -> ss.MetricsEnvelope:
    """The project's series `names`, one point per `period` (see POINTS), oldest first."""
    rows = await pool.fetch(_SERIES, project_id, period, POINTS[period])
    times: list[datetime] = [r["at"] for r in rows]
    return ss.MetricsEnvelope(
        data={
            name: [ss.PointOut(timestamp=r["at"], value=_value(name, r)) for r in rows]
            for name in names
        },
        meta=ss.MetricsMetaOut(period=period, start_time=times[0], end_time=times[-1]),
    )


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """The dashboard's headline counts of one project."""

    due: int
    running: int
    failed: int
    paused: int


# Counts by status from the (project_id, status) index alone (an index-only scan: no wide row
# is read); "due" from the due index, whose rows are only the active tasks with a next run.
_STATUS_COUNTS = """
SELECT status, count(*) AS n FROM task_view
 WHERE project_id = $1 AND lifecycle <> 'deleted' GROUP BY status
"""
_DUE = """
SELECT count(*) FROM task_view
 WHERE lifecycle = 'active' AND next_run_at IS NOT NULL AND next_run_at <= now()
   AND project_id = $1 AND status IN ('pending', 'retrying')
"""


async def overview_counts(pool: asyncpg.Pool, project_id: str) -> Overview:
    """Due now (waiting for a scheduler), in flight, failed for good, paused."""
    async with pool.acquire() as conn:
        counts = {r["status"]: int(r["n"]) for r in await conn.fetch(_STATUS_COUNTS, project_id)}
        due = int(await conn.fetchval(_DUE, project_id))
    return Overview(
        due=due,
        running=counts.get("dispatched", 0) + counts.get("running", 0),
        failed=counts.get("failed", 0),
        paused=counts.get("paused", 0),
    )


class Lateness(msgspec.Struct, frozen=True, kw_only=True):
    """Due -> dispatched of the recent dispatches, in milliseconds (None: there were none)."""

    p50_ms: float | None
    p99_ms: float | None
    samples: int


# The newest events of the project, read back along (project_id, position): bounded work however
# long the log is. A busy project's hour holds more than this; its percentiles are then those of
# its latest LATENESS_WINDOW events.
LATENESS_WINDOW = 5000

_LATENESS = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
       count(*) AS samples
  FROM (SELECT EXTRACT(EPOCH FROM (data->>'at')::timestamptz
                                  - (data->>'due_at')::timestamptz) * 1000 AS ms
          FROM (SELECT type, data, recorded_at FROM events WHERE project_id = $1
                 ORDER BY position DESC LIMIT $2) recent
         WHERE type = 'task.dispatched' AND recorded_at > now() - interval '1 hour') d
"""


async def recent_lateness(pool: asyncpg.Pool, project_id: str) -> Lateness:
    """Lateness p50/p99 of the last hour's dispatches (within the newest LATENESS_WINDOW events)."""
    row = await pool.fetchrow(_LATENESS, project_id, LATENESS_WINDOW)
    p50, p99 = row["p50"], row["p99"]
    return Lateness(
        p50_ms=None if p50 is None else round(float(p50), 1),
        p99_ms=None if p99 is None else round(float(p99), 1),
        samples=int(row["samples"]),
    )


class MinuteCount(msgspec.Struct, frozen=True, kw_only=True):
    minute: datetime
    completed: int
    failed: int


_MINUTES = """
SELECT g.minute, COALESCE(m.completed, 0) AS completed, COALESCE(m.failed, 0) AS failed
  FROM generate_series(date_trunc('minute', now()) - ($2 - 1) * interval '1 minute',
                       date_trunc('minute', now()), interval '1 minute') AS g(minute)
  LEFT JOIN metrics_view m ON m.project_id = $1 AND m.minute = g.minute
 ORDER BY g.minute
"""


async def throughput_minutes(
    pool: asyncpg.Pool, project_id: str, minutes: int = 60
) -> list[MinuteCount]:
    """Runs finished per minute over the last `minutes` (the projector's metrics view)."""
    rows = await pool.fetch(_MINUTES, project_id, minutes)
    return [MinuteCount(minute=r["minute"], completed=r["completed"], failed=r["failed"])
            for r in rows]  # fmt: skip
