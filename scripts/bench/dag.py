"""Job DAGs through a real `taskstream dev` process: hop latency and fan-out make-span.

- chain: a job of `--chain` tasks, each depending on the one before. The hop is a task's
  `job.task.started` minus its upstream's `job.task.succeeded` (the core's own start and finish
  instants); p50 / p99 over the hops of one execution.
- fan: one root, `--fan` tasks depending on it, one task depending on all of them. The
  make-span is the execution's finishedAt minus its startedAt.

Tasks are `http` calls to a receiver on loopback answering 200 at once. Median of `--runs`.

    python scripts/bench/dag.py [--chain 100] [--fan 498] [--runs 3] [--worker-poll-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from domain.job_execution import node_task_id  # noqa: E402
from scripts.bench.dev_server import dev_server  # noqa: E402
from tests.integration.receiver import running_receiver  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def task(task_id: str, url: str, deps: list[str]) -> dict[str, Any]:
    return {"id": task_id, "name": task_id, "dependencies": deps,
            "action": {"kind": "http", "url": url, "method": "POST"},
            "retryPolicy": {"type": "ALWAYS", "maxRetries": 3}}  # fmt: skip


async def run_job(http: aiohttp.ClientSession, base: str, tasks: list[dict[str, Any]]) -> str:
    async with http.post(f"{base}/jobs", json={"name": "bench", "tasks": tasks}) as r:
        assert r.status == 201, await r.text()
        job_id = (await r.json())["id"]
    async with http.post(f"{base}/jobs/{job_id}/trigger") as r:
        assert r.status == 202, await r.text()
        execution_id = (await r.json())["executionId"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        async with http.get(f"{base}/jobs/{job_id}/executions/{execution_id}") as r:
            body = await r.json()
        if body["finishedAt"] is not None:
            assert body["status"] == "SUCCEEDED", body["status"]
            return execution_id
        await asyncio.sleep(0.05)
    raise TimeoutError("execution did not finish")


async def node_times(dsn: str, execution_id: str) -> dict[tuple[str, str], datetime]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT type, data->>'task_id' AS task_id, data->>'at' AS at FROM events"
            " WHERE stream_id = $1 AND type IN ('job.task.started', 'job.task.succeeded')",
            f"execution-{execution_id}",
        )
    finally:
        await conn.close()
    return {(r["type"], r["task_id"]): datetime.fromisoformat(r["at"]) for r in rows}


async def task_times(
    dsn: str, task_ids: Iterable[str], types: list[str]
) -> dict[tuple[str, str], datetime]:
    """(task id, event type) → the event's own `at`, for the core tasks named."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT stream_id, type, data->>'at' AS at FROM events"
            " WHERE stream_id = ANY($1) AND type = ANY($2)",
            [f"task-{t}" for t in task_ids],
            types,
        )
    finally:
        await conn.close()
    return {
        (r["stream_id"].removeprefix("task-"), r["type"]): datetime.fromisoformat(r["at"])
        for r in rows
    }


async def stages(dsn: str, execution_id: str, n: int) -> dict[str, float]:
    """Where a hop's time goes, from the core tasks' own events: the upstream's completion →
    the dependent's core task created → dispatched → started (medians, ms)."""
    ids = {node_task_id(execution_id, f"n{i}", 0): i for i in range(n)}
    types = ["task.created", "task.dispatched", "task.started", "task.completed"]
    at = {
        (ids[t], kind): moment for (t, kind), moment in (await task_times(dsn, ids, types)).items()
    }
    steps = [("task.completed", "task.created"), ("task.created", "task.dispatched"),
             ("task.dispatched", "task.started")]  # fmt: skip
    out = {}
    for before, after in steps:
        gaps = [
            (at[(i, after)] - at[(i - 1 if before == "task.completed" else i, before)])
            .total_seconds() * 1000
            for i in range(1, n)
        ]  # fmt: skip
        out[f"{before.split('.')[1]}->{after.split('.')[1]}_p50_ms"] = statistics.median(gaps)
    return out


async def chain(base: str, http: aiohttp.ClientSession, dsn: str, url: str, n: int) -> dict:
    tasks = [task(f"n{i}", url, [f"n{i - 1}"] if i else []) for i in range(n)]
    execution_id = await run_job(http, base, tasks)
    times = await node_times(dsn, execution_id)
    hops = [
        (times[("job.task.started", f"n{i}")] - times[("job.task.succeeded", f"n{i - 1}")])
        .total_seconds() * 1000
        for i in range(1, n)
    ]  # fmt: skip
    return {"hop_p50_ms": pct(hops, 50), "hop_p99_ms": pct(hops, 99), "hop_max_ms": max(hops),
            **await stages(dsn, execution_id, n)}  # fmt: skip


async def fan(base: str, http: aiohttp.ClientSession, dsn: str, url: str, n: int) -> dict:
    middle = [f"m{i}" for i in range(n)]
    tasks = [task("root", url, []), *(task(m, url, ["root"]) for m in middle),
             task("join", url, middle)]  # fmt: skip
    execution_id = await run_job(http, base, tasks)
    times = await node_times(dsn, execution_id)
    span = times[("job.task.succeeded", "join")] - times[("job.task.started", "root")]
    return {"makespan_s": span.total_seconds()}


async def core_baseline(
    base: str, http: aiohttp.ClientSession, dsn: str, url: str, n: int = 30
) -> dict:
    """The same server's plain task, one at a time: `/api` create (due now) → started, the
    latency a scheduler-dispatched node pays; the hop is compared with it in the same run."""
    ids = []
    for _ in range(n):
        body = {"name": "baseline", "action": {"kind": "http", "url": url, "method": "POST"}}
        async with http.post(f"{base}/api/tasks", json=body) as r:
            assert r.status == 201, await r.text()
            task_id = (await r.json())["data"]["id"]
        ids.append(task_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with http.get(f"{base}/api/tasks/{task_id}") as r:
                if (await r.json())["data"]["status"] == "completed":
                    break
            await asyncio.sleep(0.02)
    at = await task_times(dsn, ids, ["task.created", "task.started"])
    waits = [
        (at[(t, "task.started")] - at[(t, "task.created")]).total_seconds() * 1000 for t in ids
    ]
    return {"core_created_to_started_p50_ms": statistics.median(waits)}


async def main_async(args: argparse.Namespace, base: str, key: str, dsn: str) -> None:
    results: list[dict] = []
    async with (
        running_receiver() as receiver,
        aiohttp.ClientSession(headers={"Authorization": f"ApiKey {key}"}) as http,
    ):
        url = f"{receiver.url}/node"
        for _ in range(args.runs):
            one = await chain(base, http, dsn, url, args.chain)
            one |= await core_baseline(base, http, dsn, url)
            print(one, flush=True)
            one |= await fan(base, http, dsn, url, args.fan)
            print(one, flush=True)
            results.append(one)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{args.runs} runs (median); worker poll {args.worker_poll_ms} ms")  # fmt: skip
    print(f"chain of {args.chain}: hop p50 {med['hop_p50_ms']:.1f} ms, "
          f"p99 {med['hop_p99_ms']:.1f} ms, max {med['hop_max_ms']:.1f} ms")  # fmt: skip
    print(f"fan-out {args.fan} + fan-in: make-span {med['makespan_s']:.2f} s")
    base_ms = med["core_created_to_started_p50_ms"]
    print(f"baseline, a plain /api task due now: created -> started p50 {base_ms:.1f} ms; "
          f"hop p50 / baseline = {med['hop_p50_ms'] / base_ms:.2f}x")  # fmt: skip
    for key in (k for k in med if k.endswith("_p50_ms") and "->" in k):
        print(f"  hop stage {key}: {med[key]:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chain", type=int, default=100)
    # 498 in the middle: with the root and the join, the job has 500 tasks, the most it may.
    parser.add_argument("--fan", type=int, default=498)
    parser.add_argument("--runs", type=int, default=3)
    # The worker's idle broker poll (TASKSTREAM_WORKER_POLL_MS, default 100) is paid on every
    # hop of a chain, where the worker is idle between nodes.
    parser.add_argument("--worker-poll-ms", type=int, default=10)
    args = parser.parse_args()
    # A job of 502 tasks is ~90 KB of JSON: above the default 64 KB body limit.
    settings = {"egress_allow_cidrs": "127.0.0.0/8", "max_body_bytes": str(1 << 20),
                "worker_poll_ms": str(args.worker_poll_ms)}  # fmt: skip
    with dev_server(**settings) as server:
        asyncio.run(main_async(args, server.base, server.api_key, server.dsn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
