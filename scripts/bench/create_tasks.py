"""Benchmark POST /api/tasks against a real `taskstream dev` process on loopback.

Runs, in one go and against the same PostgreSQL:
  1. the ceiling: raw asyncpg single-row INSERTs (one autocommit transaction each), flat out;
  2. creates at fixed open-loop rates (latency measured from the intended send time, so a
     slow server cannot hide queueing: no coordinated omission);
  3. creates flat out with N concurrent clients.
Each measurement is repeated `--runs` times and the median reported.

    python scripts/bench/create_tasks.py [--rates 1000,2000] [--duration 10] [--runs 3]

With TASKSTREAM_DATABASE_URL set it uses that server, otherwise an embedded one in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.dev_server import dev_server  # noqa: E402
from services.cli import event_loop_factory  # noqa: E402

TASK = {
    "name": "bench",
    "action": {"kind": "http", "url": "https://example.com/hook", "method": "POST"},
    "scheduled_at": "2099-01-01T00:00:00Z",
    "tags": ["bench"],
    "payload": {"n": 1},
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def raw_insert_ceiling(dsn: str, seconds: float, concurrency: int) -> float:
    """Rows/s of single-row autocommit INSERTs from `concurrency` connections."""
    setup = await asyncpg.connect(dsn)
    await setup.execute(
        "CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, body jsonb)"
    )
    await setup.close()
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    count = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        async with pool.acquire() as conn:
            while time.perf_counter() < stop:
                await conn.execute(
                    "INSERT INTO bench_rows (body) VALUES ($1::jsonb)", json.dumps(TASK)
                )
                count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.execute("TRUNCATE bench_rows")
    await pool.close()
    return count / elapsed


async def open_loop(base: str, key: str, rate: float, seconds: float) -> dict[str, float]:
    """Send at a fixed rate whatever the answers; latency counts from the planned send time."""
    headers = {"Authorization": f"ApiKey {key}"}
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(planned: float) -> None:
            nonlocal errors
            try:
                async with session.post(base + "/api/tasks", json=TASK, headers=headers) as r:
                    await r.read()
                    if r.status != 201:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(time.perf_counter() - planned)

        total = int(rate * seconds)
        start = time.perf_counter()
        pending = []
        for i in range(total):
            planned = start + i / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(planned)))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - start
    return summary(latencies, errors, elapsed)


# The same create with callback headers, whose values are sealed into task_secrets in the
# create's transaction (docs/secrets.md): the cost of keeping them out of the log.
TASK_WITH_HEADERS = {
    **TASK,
    "action": {
        **TASK["action"],  # type: ignore[dict-item]
        "headers": {"Authorization": "Bearer bench-token", "X-Api-Key": "k" * 32, "X-Trace": "t"},
    },
}


async def flat_out(
    base: str, key: str, concurrency: int, seconds: float, task: dict[str, object] = TASK
) -> dict[str, float]:
    """`concurrency` clients each sending the next request as soon as the last is answered."""
    headers = {"Authorization": f"ApiKey {key}"}
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                sent = time.perf_counter()
                async with session.post(base + "/api/tasks", json=task, headers=headers) as r:
                    await r.read()
                    if r.status != 201:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - sent)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return summary(latencies, errors, elapsed)


def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    return {
        "ok": len(latencies),
        "errors": errors,
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main_async(
    args: argparse.Namespace, base: str, key: str, dsn: str, server_pid: int
) -> None:
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"postgres: {await server_version(dsn)}")
    ceiling = [await raw_insert_ceiling(dsn, args.duration, 16) for _ in range(args.runs)]
    print(
        f"ceiling  raw asyncpg single-row insert, 16 conns: "
        f"median {statistics.median(ceiling):,.0f} rows/s "
        f"(runs: {', '.join(f'{c:,.0f}' for c in ceiling)})"
    )
    for rate in args.rates:
        runs = [await open_loop(base, key, rate, args.duration) for _ in range(args.runs)]
        m = median_of(runs)
        print(
            f"open loop {rate:>6,.0f}/s: achieved {m['per_s']:,.0f}/s  p50 {m['p50_ms']:.1f} ms  "
            f"p95 {m['p95_ms']:.1f} ms  p99 {m['p99_ms']:.1f} ms  errors {m['errors']:.0f}"
        )
    runs, cpu_per_create, sealed_runs, sealed_cpu = [], [], [], []
    for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
        before = cpu_seconds(server_pid)
        runs.append(await flat_out(base, key, args.concurrency, args.duration))
        cpu_per_create.append((cpu_seconds(server_pid) - before) / runs[-1]["ok"] * 1000)
        before = cpu_seconds(server_pid)
        sealed_runs.append(
            await flat_out(base, key, args.concurrency, args.duration, TASK_WITH_HEADERS)
        )
        sealed_cpu.append((cpu_seconds(server_pid) - before) / sealed_runs[-1]["ok"] * 1000)
    m, sealed = median_of(runs), median_of(sealed_runs)
    print(
        f"flat out ({args.concurrency} clients): {m['per_s']:,.0f} creates/s  "
        f"p50 {m['p50_ms']:.1f} ms  "
        f"p95 {m['p95_ms']:.1f} ms  p99 {m['p99_ms']:.1f} ms  errors {m['errors']:.0f}  "
        f"= {m['per_s'] / statistics.median(ceiling):.2f}x the raw-insert ceiling; "
        f"gateway CPU {statistics.median(cpu_per_create):.2f} ms per create"
    )
    print(
        f"flat out with 3 sealed headers: {sealed['per_s']:,.0f} creates/s  "
        f"p50 {sealed['p50_ms']:.1f} ms  p99 {sealed['p99_ms']:.1f} ms  "
        f"errors {sealed['errors']:.0f}  = {sealed['per_s'] / m['per_s']:.2f}x without headers; "
        f"gateway CPU {statistics.median(sealed_cpu):.2f} ms per create"
    )


async def server_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", default="1000,2000,3000", help="open-loop rates, comma-separated"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r]
    # The generator is held to the server's standard: GC pauses here would count as latency.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 50)

    with dev_server() as server, asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main_async(args, server.base, server.api_key, server.dsn, server.pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
