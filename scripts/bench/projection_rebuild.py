"""Projection rebuild rate: `rebuild_view` (what `taskstream projections rebuild NAME` runs)
over a synthetic log, per view, median of several runs.

Creates a scratch database on the server named by `--dsn` (default TASKSTREAM_DATABASE_URL),
seeds `--events` events of whole task lifecycles (scripts/bench/seed_log.py, COPY, not timed),
then rebuilds each view `--runs` times from the whole log into a fresh table and swaps it in,
printing events/s per run and the median. The scratch database is dropped at the end.

    python scripts/bench/projection_rebuild.py [--events 1000000] [--runs 3] [--batch 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from infra.db import create_pool  # noqa: E402
from infra.migrations import migrate  # noqa: E402
from infra.view_store import rebuild_view  # noqa: E402
from projections.views import VIEWS  # noqa: E402
from scripts.bench.seed_log import seed_log  # noqa: E402


def _database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def bench(dsn: str, events: int, runs: int, batch: int) -> dict[str, list[float]]:
    name = f"ts_rebuild_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await create_pool(_database(dsn, name), size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            started = time.monotonic()
            written = await seed_log(conn, events=events, projects=[f"p{i}" for i in range(20)])
            await conn.execute("VACUUM ANALYZE events")
            print(f"seeded {written:,} events in {time.monotonic() - started:.1f} s", flush=True)
        rates: dict[str, list[float]] = {table: [] for table in VIEWS}
        for run in range(1, runs + 1):
            for table, view in VIEWS.items():
                started = time.monotonic()
                count = await rebuild_view(pool, view, batch=batch)
                seconds = time.monotonic() - started
                rates[table].append(count / seconds)
                print(
                    f"run {run} {table}: {count:,} events in {seconds:.1f} s"
                    f" = {count / seconds:,.0f} events/s",
                    flush=True,
                )
        return rates
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("TASKSTREAM_DATABASE_URL"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TASKSTREAM_DATABASE_URL")
    rates = asyncio.run(bench(args.dsn, args.events, args.runs, args.batch))
    for table, values in rates.items():
        print(f"median {table}: {statistics.median(values):,.0f} events/s over {len(values)} runs")


if __name__ == "__main__":
    main()
