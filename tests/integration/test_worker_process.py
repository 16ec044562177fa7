"""Real processes over a real broker: `taskstream worker` killed with SIGKILL mid-call.

The scheduler runs in the test process; workers are `taskstream worker` subprocesses sharing the
embedded Redis broker through the data directory. The receiver holds the first call open, so
the kill lands while the HTTP call is in flight.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from domain.actions import HttpAction
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.task_definition import TaskDefinition
from infra.broker import make_broker
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from services.scheduler.dispatcher import Scheduler, SchedulerConfig
from services.tasks.service import Actor, TaskService
from services.worker.main import run_sender
from tests.integration.api_harness import SECRETS_KEY, session_secret_store
from tests.integration.processes import Process, loopback_env, taskstream
from tests.integration.receiver import running_receiver


def start_worker(data_dir: Path, dsn: str) -> Process:
    env = loopback_env(
        dsn,
        TASKSTREAM_LEASE_SECONDS="2",
        TASKSTREAM_WORKER_THREADS="2",
        # The worker opens what the test's TaskService sealed.
        TASKSTREAM_SECRETS_KEY=SECRETS_KEY,
    )
    proc = Process(taskstream("worker", "--data-dir", str(data_dir)), env)
    proc.wait_for("worker running: ", timeout=60)
    return proc


async def test_kill_9_of_a_worker_mid_call_is_retried_and_completed_once(
    fresh_dsn: str, tmp_path: Path
) -> None:
    broker_dir = tmp_path / "data"
    broker, stop_broker = make_broker(None, broker_dir)
    pool = await asyncpg.create_pool(fresh_dsn, min_size=2, max_size=6)
    committer = GroupCommitter(pool, flushers=1)
    tasks = TaskService(
        pool,
        committer,
        secrets=session_secret_store(pool),
        egress_allow=parse_allow_list("127.0.0.0/8"),
    )
    workers: list[Process] = []
    stop = asyncio.Event()
    try:
        async with running_receiver() as receiver:
            receiver.behaviour["/slow-once"] = lambda n: (200, 30.0 if n == 1 else 0.0)
            workers.append(await asyncio.to_thread(start_worker, broker_dir, fresh_dsn))
            scheduler = Scheduler(
                pool, tasks, run_sender(broker), config=SchedulerConfig(dispatch_lease_seconds=10)
            )
            loop = asyncio.create_task(scheduler.run(stop))
            task = await tasks.create(
                "p",
                TaskDefinition(
                    name="kill me",
                    action=HttpAction(url=receiver.url + "/slow-once"),
                    schedule=Schedule(kind="once", expr=datetime.now(UTC).isoformat()),
                    retry=RetryPolicy(max_retries=2, backoff="fixed", base_seconds=0.2),
                ),
                actor=Actor("test", "t"),
            )
            (first,) = await receiver.wait_for("/slow-once", 1, timeout=30)
            workers[0].popen.send_signal(signal.SIGKILL)
            workers[0].popen.wait(10)
            workers.append(await asyncio.to_thread(start_worker, broker_dir, fresh_dsn))
            first, second = await receiver.wait_for("/slow-once", 2, timeout=30)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                status = await pool.fetchval(
                    "SELECT status FROM task_view WHERE task_id = $1", task.task_id
                )
                if status == "completed":
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await loop
        rows = await pool.fetch(
            "SELECT type, data->>'reason' AS reason FROM events"
            " WHERE stream_id = $1 ORDER BY version",
            f"task-{task.task_id}",
        )
        types = [r["type"] for r in rows]
        assert types.count("task.completed") == 1, types
        assert [r["reason"] for r in rows if r["type"] == "task.failed"] == ["worker_lost"]
        assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
        assert len(receiver.calls("/slow-once")) == 2
    finally:
        stop.set()
        for worker in workers:
            if worker.popen.poll() is None:
                worker.stop()
        await committer.close()
        await pool.close()
        broker.close()
        stop_broker()
