"""Dashboard pages and history APIs on a project of 100,000 tasks: server time per page.

Seeds a scratch database (scripts/bench/seed_log.py: whole task lifecycles COPYed into the log,
not timed), folds every task into the task view with the view's own upsert, rebuilds the
metrics view, then serves the real gateway in this process and asks each page `--requests`
times per run, `--runs` runs. Server time is the page's `Server-Timing` header (the /ui
middleware measures its handler); the /api endpoints, which carry no such header, are timed at
the client on loopback (an upper bound). Every figure is a median over runs of per-run medians,
with its ratio to a baseline measured in the same run: `GET /api/tasks?limit=50`, the existing
first page of the task list.

    python scripts/bench/ui_pages.py [--tasks 100000] [--runs 3] [--requests 20] [--dsn DSN]

Without --dsn (or TASKSTREAM_DATABASE_URL) an embedded PostgreSQL is started in a temp dir;
`--keep` keeps the seeded database (on a server you name with --dsn) for `--reuse NAME`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from domain.task import fold  # noqa: E402
from infra.db import create_pool  # noqa: E402
from infra.json_codec import decode_event, encode  # noqa: E402
from infra.migrations import migrate  # noqa: E402
from infra.project_store import add_key, create_project  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.view_store import rebuild_view  # noqa: E402
from projections.task_view import UPSERT_SQL, task_view_row  # noqa: E402
from projections.views import VIEWS  # noqa: E402
from scripts.bench.seed_log import seed_log  # noqa: E402
from services.gateway.app import build_app  # noqa: E402
from services.tasks.queries import Keyset, keyset_token  # noqa: E402

EVENTS_PER_TASK = 5.45  # what seed_log's mix of outcomes writes per task, on average
BIG_SHARE = 9 / 10  # of the tasks, the big project's; the rest a second project's
BASELINE = "GET /api/tasks?limit=50"
_TIMING = re.compile(r"app;dur=([0-9.]+)")


def _database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def fold_views(pool: asyncpg.Pool, batch: int = 2000) -> int:
    """Fill the task view from the log with the same row builder and upsert appends use."""
    done = 0
    last = ""
    while True:
        streams = await pool.fetch(
            "SELECT stream_id FROM streams WHERE stream_id > $1 ORDER BY stream_id LIMIT $2",
            last,
            batch,
        )
        if not streams:
            return done
        ids = [r[0] for r in streams]
        last = ids[-1]
        rows = await pool.fetch(
            "SELECT stream_id, data::text FROM events WHERE stream_id = ANY($1::text[])"
            " ORDER BY stream_id, version",
            ids,
        )
        by_stream: dict[str, list[str]] = {}
        for r in rows:
            by_stream.setdefault(r[0], []).append(r[1])
        view_rows = []
        for datas in by_stream.values():
            state = fold(decode_event(d) for d in datas)
            assert state is not None
            state = state.__class__(**{**{f: getattr(state, f) for f in state.__struct_fields__},
                                       "version": len(datas) - 1})  # fmt: skip
            view_rows.append(task_view_row(state, encode(state)))
        await pool.execute(UPSERT_SQL, encode(view_rows).decode())
        done += len(view_rows)


async def seed(pool: asyncpg.Pool, tasks: int) -> tuple[str, str, str]:
    """A project of `tasks` tasks (and a small second one); its id, API key and one task id."""
    async with pool.acquire() as conn:
        await migrate(conn)
        big = await create_project(conn, "bench-big")
        small = await create_project(conn, "bench-small")
        started = time.monotonic()
        # 50 tasks/s: the newest half hour of dispatches lands in the overview's last hour.
        written = await seed_log(
            conn, events=int(tasks / BIG_SHARE * EVENTS_PER_TASK), projects=[big.project_id] * 9 + [
                small.project_id], per_second=50.0,
        )  # fmt: skip
        print(f"seeded {written:,} events in {time.monotonic() - started:.1f} s", flush=True)
    started = time.monotonic()
    folded = await fold_views(pool)
    await rebuild_view(pool, VIEWS["metrics_view"], batch=5000)
    async with pool.acquire() as conn:
        await conn.execute("VACUUM ANALYZE")
        count = await conn.fetchval(
            "SELECT count(*) FROM task_view WHERE project_id = $1", big.project_id
        )
        task_id = await conn.fetchval(
            "SELECT task_id FROM task_view WHERE project_id = $1 AND status = 'completed'"
            " ORDER BY created_at DESC LIMIT 1",
            big.project_id,
        )
    print(f"folded {folded:,} tasks into the views in {time.monotonic() - started:.1f} s;"
          f" the big project has {count:,}", flush=True)  # fmt: skip
    return big.project_id, big.api_key, str(task_id)


async def reused(pool: asyncpg.Pool) -> tuple[str, str, str]:
    """The big project of a database an earlier `--keep` run seeded, with a fresh key."""
    async with pool.acquire() as conn:
        await migrate(conn)
        project = await conn.fetchval("SELECT project_id FROM projects WHERE name = 'bench-big'")
        key = await add_key(conn, project, label="bench")
        task_id = await conn.fetchval(
            "SELECT task_id FROM task_view WHERE project_id = $1 AND status = 'completed'"
            " ORDER BY created_at DESC LIMIT 1",
            project,
        )
        await conn.execute("VACUUM ANALYZE task_view")
    return str(project), key, str(task_id)


async def deep_cursor(pool: asyncpg.Pool, project_id: str, order: str, where: str) -> str:
    """The cursor of a page 90 % of the way down the list (what OFFSET would make slow)."""
    row = await pool.fetchrow(
        f"SELECT {order} AS at, task_id FROM task_view WHERE project_id = $1"
        f" AND lifecycle <> 'deleted' {where} ORDER BY {order} DESC, task_id DESC"
        f" OFFSET (SELECT (count(*) * 0.9)::int FROM task_view WHERE project_id = $1"
        f"         AND lifecycle <> 'deleted' {where}) LIMIT 1",
        project_id,
    )
    return keyset_token(Keyset(row["at"], row["task_id"]))


async def login(http: aiohttp.ClientSession, base: str, key: str) -> None:
    async with http.get(base + "/ui/") as r:
        page = await r.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no login form"
    async with http.post(base + "/ui/login", data={"api_key": key, "csrf_token": match.group(1)},
                         allow_redirects=False) as r:  # fmt: skip
        assert r.status == 303, await r.text()


async def timed(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with http.get(url, headers=headers, allow_redirects=False) as r:
        await r.read()
        elapsed = (time.perf_counter() - started) * 1000
        assert r.status == 200, (url, r.status)
        match = _TIMING.search(r.headers.get("Server-Timing", ""))
    return float(match.group(1)) if match else elapsed


async def bench(
    dsn: str, tasks: int, runs: int, requests: int, *, keep: bool = False,
    reuse: str | None = None,
) -> dict[str, list[float]]:  # fmt: skip
    name = reuse or f"ts_ui_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    if reuse is None:
        await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await create_pool(_database(dsn, name), size=10)
    runner = None
    try:
        if reuse is None:
            project, key, task_id = await seed(pool, tasks)
        else:
            project, key, task_id = await reused(pool)
        tasks_deep = await deep_cursor(pool, project, "created_at", "")
        dead_deep = await deep_cursor(pool, project, "updated_at", "AND status = 'failed'")
        settings = Settings(rate_limit_per_second=0, ui_session_key="bench-session-key")
        runner = web.AppRunner(build_app(settings, pool), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        api = {"Authorization": f"ApiKey {key}"}
        pages = {
            BASELINE: ("/api/tasks?limit=50", api),
            "GET /api/tasks?limit=50&page=1800 (OFFSET 89,950)": (
                "/api/tasks?limit=50&page=1800", api),
            "GET /ui/": ("/ui/", {}),
            "GET /ui/?part=live": ("/ui/?part=live", {}),
            "GET /ui/tasks": ("/ui/tasks", {}),
            "GET /ui/tasks (keyset page at 90 %)": (f"/ui/tasks?cursor={tasks_deep}", {}),
            "GET /ui/tasks?status=failed": ("/ui/tasks?status=failed", {}),
            "GET /ui/tasks?tag=bench&kind=once&q=synth": (
                "/ui/tasks?tag=bench&kind=once&q=synth", {}),
            "GET /ui/tasks?q=no-such-name (scans the project)": ("/ui/tasks?q=no-such-name", {}),
            "GET /ui/tasks/{id}": (f"/ui/tasks/{task_id}", {}),
            "GET /ui/tasks/{id}?part=live": (f"/ui/tasks/{task_id}?part=live", {}),
            "GET /ui/workers": ("/ui/workers", {}),
            "GET /ui/webhooks": ("/ui/webhooks", {}),
            "GET /ui/dead-letters": ("/ui/dead-letters", {}),
            "GET /ui/dead-letters (keyset page at 90 %)": (
                f"/ui/dead-letters?cursor={dead_deep}", {}),
            "GET /api/tasks/{id}/runs": (f"/api/tasks/{task_id}/runs", api),
            "GET /api/tasks/{id}/events": (f"/api/tasks/{task_id}/events", api),
            "GET /api/tasks/{id}/schedule?count=10": (f"/api/tasks/{task_id}/schedule?count=10",
                                                      api),
            "GET /api/dead-letters": ("/api/dead-letters", api),
        }  # fmt: skip
        results: dict[str, list[float]] = {label: [] for label in pages}
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await login(http, base, key)
            for run in range(1, runs + 1):
                for label, (path, headers) in pages.items():
                    for _ in range(3):  # warm the plan and statement caches
                        await timed(http, base + path, headers)
                    times = [await timed(http, base + path, headers) for _ in range(requests)]
                    results[label].append(statistics.median(times))
                print(f"run {run} done", flush=True)
        return results
    finally:
        if runner is not None:
            await runner.cleanup()
        await pool.close()
        if keep or reuse:
            print(f"kept database {name} (--reuse {name} measures it again)")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def report(results: dict[str, list[float]]) -> None:
    base = statistics.median(results[BASELINE])
    print("\n| page | median server time (ms) | runs | × baseline |\n|---|---:|---|---:|")
    for label, values in results.items():
        median = statistics.median(values)
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"| `{label}` | {median:.1f} | {each} | {median / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("TASKSTREAM_DATABASE_URL"))
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--reuse", metavar="DATABASE", help="measure a database --keep kept")
    args = parser.parse_args()
    stop = None
    dsn = args.dsn
    if not dsn:
        from infra.embedded_postgres import start_embedded_postgres

        dsn, stop = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="ts-ui-bench-")))
    try:
        report(asyncio.run(bench(dsn, args.tasks, args.runs, args.requests, keep=args.keep,
                                 reuse=args.reuse)))  # fmt: skip
    finally:
        if stop is not None:
            stop()


if __name__ == "__main__":
    main()
