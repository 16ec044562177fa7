"""kill -9 in the middle of a DAG: of a `taskstream worker` process, and of `taskstream dev`.

The execution must finish, and every task must be completed exactly once in the log: the
killed call is retried through the core's lease (retryPolicy ALWAYS), and the execution is
advanced by whichever process sees the outcome, or by the scheduler's sweep.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from domain.actions import HttpAction
from domain.job_definition import Backoff, JobDefinition, JobRetryPolicy, JobTask
from infra.broker import make_broker
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from services.jobs.service import JobService
from services.jobs.sweep import JobSweeper, SweepConfig
from services.scheduler.dispatcher import Scheduler, SchedulerConfig
from services.tasks.service import Actor, TaskService
from services.worker.main import run_sender
from tests.integration.api_harness import session_secret_store
from tests.integration.processes import Process, cli_env, dev_server, free_port
from tests.integration.receiver import running_receiver
from tests.integration.test_worker_process import start_worker

ALWAYS = {"type": "ALWAYS", "maxRetries": 3,
          "backoff": {"strategy": "fixed", "delaySeconds": 0.2, "maxDelaySeconds": 1}}  # fmt: skip


async def completed_once(pool: asyncpg.Pool, execution_id: str, count: int) -> None:
    """Every core task of the execution has exactly one task.completed."""
    rows = await pool.fetch(
        "SELECT t.task_id, count(*) FILTER (WHERE e.type = 'task.completed') AS done"
        "  FROM task_view t JOIN events e ON e.stream_id = 'task-' || t.task_id"
        " WHERE $1 = ANY(t.tags) GROUP BY t.task_id",
        f"execution:{execution_id}",
    )
    assert len(rows) == count
    assert all(r["done"] == 1 for r in rows), [dict(r) for r in rows]


@pytest.mark.slow
async def test_kill_9_of_a_worker_mid_dag_finishes_with_each_task_completed_once(
    fresh_dsn: str, tmp_path: Path
) -> None:
    broker_dir = tmp_path / "data"
    broker, stop_broker = make_broker(None, broker_dir)
    pool = await asyncpg.create_pool(fresh_dsn, min_size=2, max_size=8)
    committer = GroupCommitter(pool, flushers=1)
    tasks = TaskService(
        pool,
        committer,
        secrets=session_secret_store(pool),
        egress_allow=parse_allow_list("127.0.0.0/8"),
    )
    jobs = JobService(tasks)
    workers: list[Process] = []
    stop = asyncio.Event()
    try:
        async with running_receiver() as receiver:
            receiver.behaviour["/m2"] = lambda n: (200, 30.0 if n == 1 else 0.0)
            workers.append(await asyncio.to_thread(start_worker, broker_dir, fresh_dsn))
            scheduler = Scheduler(
                pool, tasks, run_sender(broker),
                config=SchedulerConfig(dispatch_lease_seconds=10),
                jobs=JobSweeper(pool, jobs, config=SweepConfig(quiet_seconds=1.0)),
            )  # fmt: skip
            loop = asyncio.create_task(scheduler.run(stop))

            def node(task_id: str, *deps: str) -> JobTask:
                return JobTask(id=task_id, name=task_id, dependencies=deps,
                               action=HttpAction(url=f"{receiver.url}/{task_id}"))  # fmt: skip

            middle = [node(f"m{i}", "root") for i in range(5)]
            definition = JobDefinition(
                name="drill",
                tasks=(node("root"), *middle, node("join", *(m.id for m in middle))),
                retry_policy=JobRetryPolicy(type="ALWAYS", max_retries=3,
                                            backoff=Backoff(strategy="fixed", delay_seconds=0.2)),
            )  # fmt: skip
            actor = Actor("test", "t")
            job = await jobs.create("p", definition, actor=actor)
            triggered = await jobs.trigger("p", job.job_id, params=None, idempotency_key=None,
                                           actor=actor)  # fmt: skip
            execution_id = triggered.execution.execution_id
            (first,) = await receiver.wait_for("/m2", 1, timeout=30)
            workers[0].popen.send_signal(signal.SIGKILL)
            workers[0].popen.wait(10)
            workers.append(await asyncio.to_thread(start_worker, broker_dir, fresh_dsn))
            deadline = time.monotonic() + 60
            state = None
            while time.monotonic() < deadline:
                state = await jobs.store.execution_any(execution_id)
                if state is not None and state.settled:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await loop
        assert state is not None and state.status == "SUCCEEDED", state
        assert state.nodes["m2"].attempts == 2
        second = receiver.calls("/m2")[1]
        assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
        for other in ("root", "m0", "m1", "m3", "m4", "join"):
            # A call in flight on the killed worker is made again (at least once), always with
            # the same key, so the receiver can tell; the log still completes it once.
            calls = receiver.calls(f"/{other}")
            assert len({c.headers["Idempotency-Key"] for c in calls}) == 1, other
        await completed_once(pool, execution_id, 7)
    finally:
        stop.set()
        for worker in workers:
            if worker.popen.poll() is None:
                worker.stop()
        await committer.close()
        await pool.close()
        broker.close()
        stop_broker()


@pytest.mark.slow
def test_kill_9_of_taskstream_dev_mid_dag_finishes_after_restart(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env(
        TASKSTREAM_DATABASE_URL=fresh_dsn,
        TASKSTREAM_EGRESS_ALLOW_CIDRS="127.0.0.0/8",
        TASKSTREAM_LEASE_SECONDS="2",
        TASKSTREAM_RATE_LIMIT_PER_SECOND="0",
    )
    base = f"http://127.0.0.1:{port}"

    async def drill() -> None:
        async with running_receiver() as receiver:
            receiver.behaviour["/n2"] = lambda n: (200, 30.0 if n == 1 else 0.0)
            tasks = [
                {"id": f"n{i}", "name": f"n{i}", "dependencies": [f"n{i - 1}"] if i else [],
                 "action": {"kind": "http", "url": f"{receiver.url}/n{i}"}}
                for i in range(5)
            ]  # fmt: skip
            with dev_server(data_dir, port, env) as proc:
                key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
                auth = {"Authorization": f"ApiKey {key}"}
                async with aiohttp.ClientSession(headers=auth) as http:
                    body = {"name": "chain", "tasks": tasks, "retryPolicy": ALWAYS}
                    async with http.post(f"{base}/jobs", json=body) as r:
                        assert r.status == 201, await r.text()
                        job_id = (await r.json())["id"]
                    async with http.post(f"{base}/jobs/{job_id}/trigger") as r:
                        assert r.status == 202, await r.text()
                        execution_id = (await r.json())["executionId"]
                await receiver.wait_for("/n2", 1, timeout=30)
                proc.popen.send_signal(signal.SIGKILL)
                proc.popen.wait(10)
            with dev_server(data_dir, port, env):
                async with aiohttp.ClientSession(headers=auth) as http:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        async with http.get(f"{base}/jobs/{job_id}/status") as r:
                            status = await r.json()
                        if status["finishedAt"] is not None:
                            break
                        await asyncio.sleep(0.2)
            assert status["status"] == "SUCCEEDED", status
            assert [len(receiver.calls(f"/n{i}")) for i in range(5)] == [1, 1, 2, 1, 1]
        pool = await asyncpg.create_pool(fresh_dsn, min_size=1, max_size=2)
        try:
            await completed_once(pool, execution_id, 5)
        finally:
            await pool.close()

    asyncio.run(drill())
