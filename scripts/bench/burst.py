"""A burst of N one-shot HTTP callbacks all due in the same second, through each system.

In one run and on one PostgreSQL server, each system gets a fresh database, schedules the
same N callbacks (POST `{"i": i}` to a loopback receiver) due at the same instant, starts its
consumers as separate processes, and drains. Reported per system: drain time (last arrival -
due), callbacks/s over the drain, lateness (arrival - due) p50/p95/p99, and for taskstream
the completions its log holds. Median of `--runs` runs; systems alternate within each run.

    python scripts/bench/burst.py [--n 20000] [--runs 3] [--systems taskstream,pgqueuer,dramatiq]

PostgreSQL: TASKSTREAM_DATABASE_URL (an admin DSN; default postgresql://postgres@127.0.0.1:5432/
postgres). Redis: --redis (default redis://127.0.0.1:6379/5; flushed between systems).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.integration.receiver import Receiver, running_receiver  # noqa: E402


def system_class(name: str) -> Any:
    if name == "taskstream":
        from scripts.bench.taskstream_burst import TaskstreamBurst

        return TaskstreamBurst
    if name == "pgqueuer":
        from scripts.bench.baseline_pgqueuer import PgQueuerBurst

        return PgQueuerBurst
    if name == "dramatiq":
        from scripts.bench.baseline_dramatiq import DramatiqBurst

        return DramatiqBurst
    raise SystemExit(f"unknown system {name!r}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def wait_arrivals(receiver: Receiver, n: int, timeout: float) -> None:
    async def enough() -> None:
        async with receiver.arrived:
            await receiver.arrived.wait_for(lambda: len(receiver.seen) >= n)

    try:
        await asyncio.wait_for(enough(), timeout)
    except TimeoutError:
        pass


async def one_burst(
    name: str, args: argparse.Namespace, receiver: Receiver, server_dsn: str
) -> dict[str, float]:
    db = f"ts_burst_{uuid.uuid4().hex[:8]}"
    await admin(server_dsn, f'CREATE DATABASE "{db}"')
    dsn = urlunsplit(urlsplit(server_dsn)._replace(path=f"/{db}"))
    system = system_class(name)(
        dsn=dsn, redis_url=args.redis, processes=args.processes, concurrency=args.concurrency
    )
    receiver.clear()
    try:
        due_at = datetime.now(UTC) + timedelta(seconds=args.lead)
        began = time.monotonic()
        await system.schedule(args.n, due_at, receiver.url)
        scheduled = time.monotonic() - began
        await system.start()
        ready = datetime.now(UTC)
        if ready >= due_at:
            print(f"  warning: {name} was ready {(ready - due_at).total_seconds():.1f} s after due")
        wait = (due_at - datetime.now(UTC)).total_seconds() + args.timeout
        await wait_arrivals(receiver, args.n, wait)
        due = due_at.timestamp()
        late = [s.at - due for s in receiver.seen]
        distinct = len({s.path for s in receiver.seen})
        drain = max(late) if late else float("nan")
        result = {
            "received": float(distinct),
            "duplicates": float(len(receiver.seen) - distinct),
            "drain_s": drain,
            "per_s": distinct / drain if drain > 0 else float("nan"),
            "p50_ms": pct(late, 50) * 1000,
            "p95_ms": pct(late, 95) * 1000,
            "p99_ms": pct(late, 99) * 1000,
            "schedule_s": scheduled,
        }
    finally:
        await system.stop()
        await admin(server_dsn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    log_counts = getattr(system, "log_counts", None)
    completed = None if log_counts is None else log_counts.get("task.completed", 0)
    if completed is not None:
        result["log_completed"] = float(completed)
    print(
        f"  {name:<10} received {distinct}/{args.n} (dup {result['duplicates']:.0f})"
        f"  drain {drain:.2f} s  {result['per_s']:.0f}/s  p50 {result['p50_ms']:.0f} ms"
        f"  p99 {result['p99_ms']:.0f} ms  (scheduling took {scheduled:.1f} s)"
        + (f"  log {log_counts}" if log_counts is not None else ""),
        flush=True,
    )
    return result


async def main_async(args: argparse.Namespace) -> None:
    server_dsn = os.environ.get(
        "TASKSTREAM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    systems = args.systems.split(",")
    results: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
    async with running_receiver() as receiver:
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", flush=True)
            # Alternate the order so no system always goes first on a cold machine.
            order = systems if run % 2 == 0 else list(reversed(systems))
            for name in order:
                results[name].append(await one_burst(name, args, receiver, server_dsn))
    print(
        f"\nmachine: {os.cpu_count()} cores; {args.n} callbacks due at once; "
        f"{args.processes} consumer processes x {args.concurrency}; median of {args.runs} runs"
    )
    print(f"{'system':<11}{'drain s':>9}{'calls/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    for name, m in medians.items():
        print(
            f"{name:<11}{m['drain_s']:>9.2f}{m['per_s']:>9.0f}{m['p50_ms']:>9.0f}"
            f"{m['p95_ms']:>9.0f}{m['p99_ms']:>9.0f}"
            + (f"   log completions {m['log_completed']:.0f}" if "log_completed" in m else "")
        )
    if "taskstream" in medians:
        base = medians["taskstream"]
        for name, m in medians.items():
            if name != "taskstream":
                print(
                    f"taskstream / {name}: throughput {base['per_s'] / m['per_s']:.2f}x, "
                    f"p99 lateness {base['p99_ms'] / m['p99_ms']:.2f}x"
                )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--systems", default="taskstream,pgqueuer,dramatiq")
    parser.add_argument("--processes", type=int, default=2, help="consumer processes")
    parser.add_argument("--concurrency", type=int, default=64, help="callbacks in flight each")
    parser.add_argument("--lead", type=float, default=40.0, help="seconds from now to due")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds after due")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
