"""The burst benchmark's baselines (scripts/bench/baseline_*.py) against real servers.

Why: their figures are only worth comparing if each baseline really delivers every callback
once, not before it is due, counts the ones that fail, and leaves nothing behind for the next
run. Each test starts the system's consumer processes, schedules a small burst due two seconds
later at a loopback receiver (one path answering 500), and checks the arrivals, the consumers'
own tally, and the clean-up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis

from scripts.bench.baseline_callback import Tally
from scripts.bench.burst import wait_arrivals
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_broker import _require_server

pytestmark = pytest.mark.timeout(90)

N = 40
FAILING = 7  # the one callback the receiver answers with 500
LEAD = timedelta(seconds=2)
# A Redis db no other test uses: the dramatiq baseline flushes its whole db.
REDIS_URL = "redis://127.0.0.1:6379/12"


async def run_burst(system: Any, receiver: Receiver) -> tuple[datetime, Tally]:
    """Start, schedule N callbacks due in LEAD, wait for them all, stop; due time and tally."""
    receiver.behaviour[f"/hit/{FAILING}"] = lambda _: (500, 0.0)
    await system.start()
    try:
        due_at = datetime.now(UTC) + LEAD
        await system.schedule(N, due_at, receiver.url)
        assert datetime.now(UTC) < due_at, "scheduling took longer than the lead"
        await wait_arrivals(receiver, N, timeout=LEAD.total_seconds() + 30)
    finally:
        await system.stop()
    return due_at, system.fleet.tally


def assert_each_callback_once_when_due(receiver: Receiver, due_at: datetime) -> None:
    paths = sorted(s.path for s in receiver.seen)
    assert paths == sorted(f"/hit/{i}" for i in range(N))
    assert all(s.method == "POST" for s in receiver.seen)
    assert {s.path: s.body for s in receiver.seen}["/hit/3"] == b'{"i": 3}'
    # A few ms of slack: due times are kept to the millisecond (dramatiq) or relative to the
    # server's clock at enqueue (PgQueuer).
    earliest = min(s.at for s in receiver.seen)
    assert earliest >= due_at.timestamp() - 0.005, f"{due_at.timestamp() - earliest:.3f} s early"


async def test_dramatiq_baseline_delivers_each_callback_once_when_due_and_flushes() -> None:
    _require_server(REDIS_URL, "Redis")
    from scripts.bench.baseline_dramatiq import DramatiqBurst

    system = DramatiqBurst(dsn="", redis_url=REDIS_URL, processes=2, concurrency=8)
    async with running_receiver() as receiver:
        due_at, tally = await run_burst(system, receiver)
    assert_each_callback_once_when_due(receiver, due_at)
    assert tally == Tally(ok=N - 1, failed=1)
    with redis.Redis.from_url(REDIS_URL) as client:
        assert client.dbsize() == 0


async def test_pgqueuer_baseline_delivers_each_callback_once_when_due_and_uninstalls(
    fresh_dsn: str,
) -> None:
    from scripts.bench.baseline_pgqueuer import PgQueuerBurst

    system = PgQueuerBurst(dsn=fresh_dsn, redis_url="", processes=2, concurrency=8)
    async with running_receiver() as receiver:
        due_at, tally = await run_burst(system, receiver)
    assert_each_callback_once_when_due(receiver, due_at)
    assert tally == Tally(ok=N - 1, failed=1)
    conn = await asyncpg.connect(fresh_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('pgqueuer') IS NULL")
    finally:
        await conn.close()
