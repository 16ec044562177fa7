"""The projector over real PostgreSQL: catch-up, kill -9 mid-batch, rebuild-and-swap.

Every view is checked against an oracle written apart from the projection code: one SQL
aggregate over the whole `events` table per view.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import pytest

from infra.view_store import RebuildRunning, rebuild_view
from projections.views import VIEWS
from scripts.bench.seed_log import seed_log
from services.projector.projector import Projector
from tests.integration.processes import Process, cli_env, taskstream
from tests.integration.projector_harness import (
    checkpoint_of,
    log_end,
    project_everything,
    views_at_end,
)
from tests.integration.test_workers import eventually

ORDER = {"worker_view": "worker_id, project_id", "metrics_view": "project_id, minute"}

_RAN = "(type = 'task.completed' OR (type = 'task.failed' AND (data->>'duration_ms')::float8 > 0))"
_LATE = """GREATEST(0, EXTRACT(EPOCH FROM (data->>'at')::timestamptz
                                        - (data->>'due_at')::timestamptz) * 1000000)"""
_FINAL_FAILURE = "type = 'task.failed' AND COALESCE((data->>'final')::boolean, true)"

ORACLE = {
    "worker_view": f"""
        SELECT substr(metadata->>'actor', 8) AS worker_id, project_id,
               count(*) FILTER (WHERE type = 'task.completed') AS tasks_completed,
               count(*) FILTER (WHERE {_FINAL_FAILURE}) AS tasks_failed
          FROM events
         WHERE metadata->>'actor' LIKE 'worker:%' AND type IN ('task.completed', 'task.failed')
         GROUP BY 1, 2
        HAVING count(*) FILTER (WHERE type = 'task.completed' OR {_FINAL_FAILURE}) > 0""",
    "metrics_view": f"""
        SELECT project_id, date_trunc('minute', recorded_at) AS minute,
               count(*) FILTER (WHERE type = 'task.created') AS created,
               count(*) FILTER (WHERE type = 'task.started') AS started,
               count(*) FILTER (WHERE type = 'task.completed') AS completed,
               count(*) FILTER (WHERE {_FINAL_FAILURE}) AS failed,
               count(*) FILTER (WHERE type = 'task.retrying') AS retried,
               COALESCE(sum(round((data->>'duration_ms')::numeric * 1000)) FILTER (WHERE {_RAN}),
                        0)::bigint AS exec_us_sum,
               count(*) FILTER (WHERE {_RAN}) AS exec_count,
               COALESCE(sum({_LATE}) FILTER (WHERE type = 'task.dispatched'), 0)::bigint
                   AS lateness_us_sum,
               count(*) FILTER (WHERE type = 'task.dispatched') AS lateness_count,
               COALESCE(max({_LATE}) FILTER (WHERE type = 'task.dispatched'), 0)::bigint
                   AS lateness_us_max
          FROM events
         WHERE type IN ('task.created', 'task.started', 'task.completed', 'task.failed',
                        'task.retrying', 'task.dispatched')
         GROUP BY 1, 2""",
}


async def table_rows(db: asyncpg.Pool, table: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")]


async def oracle_rows(db: asyncpg.Pool, table: str) -> list[dict[str, Any]]:
    rows = await db.fetch(f"SELECT * FROM ({ORACLE[table]}) o ORDER BY {ORDER[table]}")
    return [dict(r) for r in rows]


async def assert_views_match_the_log(pool: asyncpg.Pool) -> None:
    for table in VIEWS:
        rows = await table_rows(pool, table)
        assert rows, table
        assert rows == await oracle_rows(pool, table), table


async def seed(pool: asyncpg.Pool, events: int, *, seed_no: int = 7) -> int:
    async with pool.acquire() as conn:
        return await seed_log(conn, events=events, projects=["p-a", "p-b"], seed=seed_no)


async def test_projector_catches_up_and_rows_match_the_log(pool: asyncpg.Pool) -> None:
    written = await seed(pool, 12_000)
    projected = await project_everything(pool, batch=700)
    assert projected == written * len(VIEWS)
    await assert_views_match_the_log(pool)
    assert await Projector(pool).catch_up() == 0  # nothing new: nothing counted again


async def test_running_projector_follows_new_events(pool: asyncpg.Pool) -> None:
    await seed(pool, 500)
    stop = asyncio.Event()
    running = asyncio.create_task(Projector(pool, batch=100, poll_seconds=0.05).run(stop))
    try:
        await eventually(lambda: views_at_end(pool), timeout=20)
        await seed(pool, 300, seed_no=8)  # appended while it runs
        await eventually(lambda: views_at_end(pool), timeout=20)
    finally:
        stop.set()
        await running
    await assert_views_match_the_log(pool)


async def test_projector_killed_mid_batch_resumes_without_double_counting(
    pool: asyncpg.Pool, fresh_dsn: str
) -> None:
    await seed(pool, 60_000)
    env = cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn, TASKSTREAM_PROJECTOR_BATCH="300")
    first = Process(taskstream("projector"), env)
    try:
        first.wait_for("projector running")

        async def started() -> bool:
            return (await checkpoint_of(pool, "worker_view")).position > 0

        await eventually(started, timeout=30)
    finally:
        first.stop(signal.SIGKILL)
    killed_at = await checkpoint_of(pool, "worker_view")
    assert killed_at < await log_end(pool), "killed after it finished: the drill proved nothing"

    second = Process(taskstream("projector"), env)
    try:
        second.wait_for("projector running")
        await eventually(lambda: views_at_end(pool), timeout=120)
    finally:
        assert second.stop() == 0
    await assert_views_match_the_log(pool)


async def test_rebuild_yields_exactly_the_same_rows(pool: asyncpg.Pool) -> None:
    await seed(pool, 8_000)
    await project_everything(pool, batch=1000)
    before = {table: await table_rows(pool, table) for table in VIEWS}
    end = await log_end(pool)
    for table, view in VIEWS.items():
        assert await rebuild_view(pool, view, batch=333) == await pool.fetchval(
            "SELECT count(*) FROM events"
        )
        assert await table_rows(pool, table) == before[table]
        assert await checkpoint_of(pool, table) == end
    assert not await pool.fetchval(
        "SELECT count(*) FROM checkpoints WHERE name LIKE '%:rebuild'"
    )  # no leftovers
    assert not await pool.fetchval(
        "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%view_rebuild'"
        " OR tablename LIKE '%view_retired'"
    )


async def test_rebuild_while_events_arrive_and_the_live_projector_runs(pool: asyncpg.Pool) -> None:
    await seed(pool, 20_000)
    stop = asyncio.Event()
    live = asyncio.create_task(Projector(pool, batch=500, poll_seconds=0.02).run(stop))
    served: list[int] = []

    async def read_while_rebuilding(done: asyncio.Event) -> None:
        while not done.is_set():  # the old table answers until the swap
            served.append(await pool.fetchval("SELECT count(*) FROM metrics_view"))
            await asyncio.sleep(0.01)

    try:
        await eventually(lambda: views_at_end(pool), timeout=30)
        done = asyncio.Event()
        reader = asyncio.create_task(read_while_rebuilding(done))
        more = asyncio.create_task(seed(pool, 10_000, seed_no=9))
        await asyncio.gather(*(rebuild_view(pool, view, batch=400) for view in VIEWS.values()))
        done.set()
        await asyncio.gather(more, reader)
        await eventually(lambda: views_at_end(pool), timeout=30)
    finally:
        stop.set()
        await live
    assert served and all(n > 0 for n in served)
    await assert_views_match_the_log(pool)


async def test_cli_rebuild_swaps_in_the_same_rows(pool: asyncpg.Pool, fresh_dsn: str) -> None:
    written = await seed(pool, 3_000)
    await project_everything(pool)
    before = await table_rows(pool, "metrics_view")
    proc = Process(
        taskstream("projections", "rebuild", "metrics_view"),
        cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn),
    )
    line = await asyncio.to_thread(proc.wait_for, "rebuilt metrics_view from")
    assert await asyncio.to_thread(proc.popen.wait, 30) == 0
    assert f"from {written} events" in line
    assert await table_rows(pool, "metrics_view") == before


async def test_a_second_rebuild_of_a_view_is_refused_while_one_runs(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as other:  # what a running rebuild holds
        await other.execute("SELECT pg_advisory_lock(hashtextextended('rebuild:metrics_view', 0))")
        with pytest.raises(RebuildRunning):
            await rebuild_view(pool, VIEWS["metrics_view"], batch=100)
        await other.execute("SELECT pg_advisory_unlock_all()")
    assert await rebuild_view(pool, VIEWS["metrics_view"], batch=100) == 0  # an empty log


@pytest.mark.parametrize("name", ["metrics", "task_view"])
def test_cli_rebuild_of_an_unknown_view_is_refused(name: str) -> None:
    proc = Process(taskstream("projections", "rebuild", name), cli_env())
    proc.wait_for("invalid choice")
    assert proc.popen.wait(30) == 2
