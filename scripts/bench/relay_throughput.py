"""Relay throughput: events/s from the PostgreSQL log into Kafka (tansu), acks included.

Seeds a fresh database once with `--events` valid log events (whole task lifecycles, COPYed by
`scripts/bench/seed_log.py`), then for each of `--runs` runs starts an empty embedded tansu,
rewinds the relay's checkpoint to the start of the log and times the production relay
(`services.streaming.relay.Relay`, batch `--batch`) until its checkpoint reaches the last event.
Prints every run and the median.

    python scripts/bench/relay_throughput.py [--events 1000000] [--runs 3] [--batch 5000]

PostgreSQL: TASKSTREAM_DATABASE_URL (an admin DSN; default postgresql://postgres@127.0.0.1:5432/
postgres); the benchmark database is created and dropped.
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

import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from infra.embedded_kafka import EmbeddedKafka  # noqa: E402
from infra.migrations import migrate  # noqa: E402
from infra.project_store import create_project  # noqa: E402
from infra.settings import Settings  # noqa: E402
from scripts.bench.burst import admin  # noqa: E402
from scripts.bench.seed_log import seed_log  # noqa: E402
from services.relay.process import new_publisher  # noqa: E402
from services.streaming.relay import CHECKPOINT, Relay  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def seed(dsn: str, events: int) -> int:
    """Migrate and fill the benchmark database; returns how many events it holds."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        project = (await create_project(conn, "relay-bench")).project_id
        started = time.monotonic()
        written = await seed_log(conn, events=events, projects=[project])
        print(f"seeded {written:,} events in {time.monotonic() - started:.1f} s", flush=True)
        await conn.execute("VACUUM ANALYZE events")
        return written
    finally:
        await conn.close()


async def one_run(dsn: str, total: int, batch: int) -> float:
    """Relay the whole log into an empty broker; returns events per second."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("DELETE FROM checkpoints WHERE name = $1", CHECKPOINT)
    broker = EmbeddedKafka()
    broker.start()
    settings = Settings(kafka_idempotence=False, relay_batch=batch)
    relay = Relay(dsn, lambda: new_publisher(settings, broker.bootstrap, "bench"), batch=batch)
    stop = asyncio.Event()
    try:
        started = time.monotonic()
        running = asyncio.create_task(relay.run(stop))
        while relay.relayed < total:
            if running.done():
                running.result()
                raise RuntimeError("relay stopped early")
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        stop.set()
        await running
        done = await conn.fetchval("SELECT position FROM checkpoints WHERE name = $1", CHECKPOINT)
        assert done == await conn.fetchval("SELECT max(position) FROM events"), "not at the head"
        return total / elapsed
    finally:
        broker.stop()
        await conn.close()


async def main_async(args: argparse.Namespace) -> None:
    server = os.environ.get("TASKSTREAM_DATABASE_URL") or DEFAULT_DSN
    db = f"ts_relay_bench_{uuid.uuid4().hex[:8]}"
    dsn = server.rsplit("/", 1)[0] + f"/{db}"
    await admin(server, f'CREATE DATABASE "{db}"')
    try:
        total = await seed(dsn, args.events)
        rates = []
        for n in range(1, args.runs + 1):
            rates.append(await one_run(dsn, total, args.batch))
            print(f"run {n}: {rates[-1]:,.0f} events/s", flush=True)
        print(
            f"median of {args.runs}: {statistics.median(rates):,.0f} events/s "
            f"({total:,} events, batch {args.batch})"
        )
    finally:
        await admin(server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=5000)
    asyncio.run(main_async(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
