"""Due → started lateness at a steady rate, through a real `taskstream dev` process.

Creates one-shot HTTP tasks whose due times are spaced evenly at `--rate` per second (each
created ~`--lead` seconds before it is due), with a receiver on loopback. Reports, per run:
due → dispatched and due → started from the log (`task.dispatched.at`, `task.started.at`
against the task's due time), and due → the receiver's arrival. Median of `--runs` runs.

    python scripts/bench/lateness.py [--rate 200] [--duration 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.dev_server import dev_server  # noqa: E402
from tests.integration.receiver import running_receiver  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0


async def one_run(base: str, key: str, dsn: str, rate: float, duration: float, lead: float) -> dict:
    total = int(rate * duration)
    async with (
        running_receiver() as receiver,
        aiohttp.ClientSession(headers={"Authorization": f"ApiKey {key}"}) as http,
    ):
        first_due = datetime.now(UTC) + timedelta(seconds=lead)
        dues: dict[str, datetime] = {}
        tag = f"run-{time.time_ns()}"

        async def create(i: int) -> None:
            due = first_due + timedelta(seconds=i / rate)
            body = {
                "name": f"late-{i}",
                "tags": [tag],
                "action": {"kind": "http", "url": f"{receiver.url}/hit/{i}", "method": "POST"},
                "scheduled_at": due.isoformat(),
            }
            async with http.post(f"{base}/api/tasks", json=body) as r:
                assert r.status == 201, await r.text()
                dues[f"/hit/{i}"] = due

        start = time.monotonic()
        creating = []
        for i in range(total):
            # Create each task `lead` seconds before it is due, at the same steady rate.
            target = start + i / rate
            if (delay := target - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            creating.append(asyncio.ensure_future(create(i)))
        await asyncio.gather(*creating)
        deadline = time.monotonic() + lead + 30
        while len(receiver.seen) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        arrival = [s.at - dues[s.path].timestamp() for s in receiver.seen if s.path in dues]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT e.type, e.data->>'at' AS at, t.state->'definition'->'schedule'->>'expr' AS due
                 FROM events e JOIN task_view t ON e.stream_id = 'task-' || t.task_id
                WHERE $1 = ANY(t.tags) AND e.type IN ('task.dispatched', 'task.started')
                  AND (e.data->>'attempt')::int = 1""",
            tag,
        )
    finally:
        await conn.close()
    late: dict[str, list[float]] = {"task.dispatched": [], "task.started": []}
    for r in rows:
        at = datetime.fromisoformat(r["at"])
        late[r["type"]].append((at - datetime.fromisoformat(r["due"])).total_seconds())
    return {
        "tasks": total,
        "received": len(arrival),
        **{f"dispatched_p{p}": pct(late["task.dispatched"], p) for p in (50, 95, 99)},
        **{f"started_p{p}": pct(late["task.started"], p) for p in (50, 95, 99)},
        **{f"received_p{p}": pct(arrival, p) for p in (50, 95, 99)},
    }


async def main_async(args: argparse.Namespace, base: str, key: str, dsn: str) -> None:
    runs = [
        await one_run(base, key, dsn, args.rate, args.duration, args.lead) for _ in range(args.runs)
    ]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"machine: {os.cpu_count()} cores; rate {args.rate:.0f}/s for {args.duration:.0f} s, "
        f"{args.runs} runs (median)"
    )
    print(f"received {med['received']:.0f} of {med['tasks']:.0f}")
    for stage in ("dispatched", "started", "received"):
        print(
            f"due -> {stage:<10}: p50 {med[stage + '_p50']:.1f} ms  "
            f"p95 {med[stage + '_p95']:.1f} ms"
            f"  p99 {med[stage + '_p99']:.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--lead", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with dev_server(egress_allow_cidrs="127.0.0.0/8") as server:
        asyncio.run(main_async(args, server.base, server.api_key, server.dsn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
