"""A gateway, schedulers (with the jobs sweep) and an executor over a fresh database, with a
real receiver: jobs created through the API run on the core while the block lasts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from infra.egress_client import EgressClient
from services.jobs.service import JobService
from services.jobs.sweep import JobSweeper, SweepConfig
from services.runs.executor import RunExecutor
from services.surfaces.kit.context import CONTEXT
from tests.integration.api_harness import Api, running_api
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_execution_path import Rig, run_schedulers, stop_all


@dataclass
class JobsRig:
    api: Api
    receiver: Receiver
    executor: RunExecutor

    def dispatch_directly(self) -> list[asyncio.Task]:
        """Let the runner hand new nodes' runs to the executor itself, as workers do."""
        started: list[asyncio.Task] = []

        async def send(runs: list[tuple[str, str, int]]) -> None:
            started.extend(asyncio.create_task(self.executor.execute(*run)) for run in runs)

        self.jobs.runner.send_runs = send
        return started

    @property
    def jobs(self) -> JobService:
        return self.api.app[CONTEXT].jobs

    def task(self, task_id: str, *deps: str, path: str | None = None, **extra: Any) -> dict:
        url = self.receiver.url + (path or f"/{task_id}")
        return {
            "id": task_id,
            "name": f"task {task_id}",
            "action": {"kind": "http", "url": url, "method": "POST"},
            "dependencies": list(deps),
            **extra,
        }

    async def create(self, *tasks: dict, key: str | None = None, **fields: Any) -> str:
        status, body, _ = await self.api.call(
            "POST", "/jobs", key=key, json={"name": "job", "tasks": list(tasks), **fields}
        )
        assert status == 201, body
        return str(body["id"])

    async def trigger(self, job_id: str, **kwargs: Any) -> str:
        status, body, _ = await self.api.call("POST", f"/jobs/{job_id}/trigger", **kwargs)
        assert status == 202, body
        return str(body["executionId"])

    async def execution(self, job_id: str, execution_id: str) -> dict:
        status, body, _ = await self.api.call("GET", f"/jobs/{job_id}/executions/{execution_id}")
        assert status == 200, body
        return dict(body)

    async def finished(self, job_id: str, execution_id: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = await self.execution(job_id, execution_id)
            if body["finishedAt"] is not None:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"execution never finished: {body}")

    async def types(self, execution_id: str) -> list[str]:
        rows = await self.api.pool.fetch(
            "SELECT type FROM events WHERE stream_id = $1 ORDER BY version",
            f"execution-{execution_id}",
        )
        return [r["type"] for r in rows]


def statuses(execution: dict) -> dict[str, str]:
    return {t["id"]: t["status"] for t in execution["tasks"]}


@asynccontextmanager
async def jobs_running(
    pool: asyncpg.Pool, *, schedulers: int = 1, **settings: Any
) -> AsyncIterator[JobsRig]:
    """Yield a rig; `schedulers` replicas dispatch and sweep, one executor runs the calls."""
    settings.setdefault("egress_allow_cidrs", "127.0.0.0/8")  # the receiver is on loopback
    async with running_api(pool, **settings) as api:
        tasks = api.app[CONTEXT].tasks
        jobs = api.app[CONTEXT].jobs
        async with running_receiver() as receiver, EgressClient("127.0.0.0/8") as egress:
            executor = RunExecutor(pool, tasks, egress, worker_id="w-test", lease_seconds=3.0,
                                   random_unit=lambda: 0.0)  # fmt: skip
            _, stop, loops = await run_schedulers(
                Rig(pool, tasks, executor, receiver),
                count=schedulers,
                jobs=lambda: JobSweeper(pool, jobs, config=SweepConfig(quiet_seconds=1.0)),
            )
            try:
                yield JobsRig(api, receiver, executor)
            finally:
                await stop_all(stop, loops)
