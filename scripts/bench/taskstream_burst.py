"""taskstream as a burst-benchmark system: one scheduler process, `processes` worker processes.

Tasks are created through `TaskService` with group commit (the gateway's own path, minus
HTTP), so the measured part is only the burst: due → dispatched → started → called →
completed, every step appended to the log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from domain.actions import HttpAction  # noqa: E402
from domain.schedule import Schedule  # noqa: E402
from domain.task_definition import TaskDefinition  # noqa: E402
from infra.db import create_pool  # noqa: E402
from infra.egress_guard import parse_allow_list  # noqa: E402
from infra.group_commit import GroupCommitter  # noqa: E402
from infra.migrations import migrate  # noqa: E402
from infra.project_store import create_project  # noqa: E402
from infra.secret_store import Keyring, TaskSecretStore, generate_key, parse_key  # noqa: E402
from services.tasks.service import Actor, TaskService  # noqa: E402
from tests.integration.processes import Process, cli_env, taskstream  # noqa: E402


class TaskstreamBurst:
    name = "taskstream"

    def __init__(
        self, *, dsn: str, redis_url: str, processes: int = 2, concurrency: int = 64
    ) -> None:
        self.dsn = dsn
        self.redis_url = redis_url
        self.processes = processes
        self.concurrency = concurrency
        self.running: list[Process] = []
        self.spies: list[subprocess.Popen[bytes]] = []
        # The scheduler and workers must open what this process seals.
        self.secrets_key = generate_key()
        self.keyring = Keyring(parse_key(self.secrets_key))

    async def schedule(self, n: int, due_at: datetime, receiver_url: str) -> None:
        """Create n one-shot HTTP tasks due at `due_at`."""
        self.due_at = due_at
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate(conn)
            self.project = (await create_project(conn, "burst")).project_id
        finally:
            await conn.close()
        pool = await create_pool(self.dsn, size=8)
        committer = GroupCommitter(pool, max_batch=512, flushers=2)
        service = TaskService(
            pool,
            committer,
            secrets=TaskSecretStore(pool, self.keyring),
            egress_allow=parse_allow_list("127.0.0.0/8"),
        )
        actor = Actor("bench", "burst")
        schedule = Schedule(kind="once", expr=due_at.isoformat())
        gate = asyncio.Semaphore(512)

        async def create(i: int) -> None:
            definition = TaskDefinition(
                name=f"burst-{i}",
                schedule=schedule,
                action=HttpAction(
                    url=f"{receiver_url}/hit/{i}",
                    method="POST",
                    headers={"Content-Type": "application/json"},
                    body=f'{{"i": {i}}}',
                    timeout_seconds=10,
                ),
            )
            async with gate:
                await service.create(self.project, definition, actor=actor)

        try:
            await asyncio.gather(*(create(i) for i in range(n)))
        finally:
            await committer.close()
            await pool.close()

    async def start(self) -> None:
        """Start the scheduler and the worker processes; return when each says it runs."""
        env = cli_env(
            TASKSTREAM_DATABASE_URL=self.dsn,
            TASKSTREAM_BROKER_URL=self.redis_url,
            TASKSTREAM_EGRESS_ALLOW_CIDRS="127.0.0.0/8",
            TASKSTREAM_WORKER_THREADS=str(self.concurrency),
            TASKSTREAM_METRICS_PORT="0",
            TASKSTREAM_LOG_LEVEL="WARNING",
            TASKSTREAM_SECRETS_KEY=self.secrets_key,
        )
        roles = ["scheduler"] + ["worker"] * self.processes
        self.running += [Process(taskstream(role), env) for role in roles]
        await asyncio.gather(*(asyncio.to_thread(p.wait_for, "running", 120) for p in self.running))
        if folder := os.environ.get("BURST_PROFILE_DIR"):
            # Sample only the thread holding the GIL: where each process spends its CPU.
            spy = str(Path(sys.executable).parent / "py-spy")
            for i, p in enumerate(self.running):
                out = Path(folder) / f"{p.popen.args[-1]}-{i}.txt"
                command = [spy, "record", "--nonblocking", "--gil", "--format", "raw", "-r", "200"]
                self.spies.append(
                    subprocess.Popen(
                        [*command, "-o", str(out), "-p", str(p.popen.pid)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )

    async def stop(self) -> None:
        """Stop every process; keep what the log says happened in `log_counts`."""
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its stacks on SIGINT
            spy.wait(30)
        self.spies.clear()
        ticks = os.sysconf("SC_CLK_TCK")
        for process in self.running:
            fields = Path(f"/proc/{process.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / ticks
            print(f"  taskstream {process.popen.args[-1]} pid {process.popen.pid}: {cpu:.1f} s CPU")
            process.stop()
            problems = [line for line in process.drain() if "Error" in line or "error" in line]
            for line in problems[:5]:
                print(f"  taskstream process said: {line}")
        self.running.clear()
        conn = await asyncpg.connect(self.dsn)
        try:
            spans = {
                r["type"]: (r["last"] - self.due_at).total_seconds()
                for r in await conn.fetch(
                    "SELECT type, max((data->>'at')::timestamptz) AS last FROM events"
                    " WHERE type IN ('task.dispatched', 'task.started') GROUP BY type"
                )
            }
            counts = dict(
                await conn.fetch(
                    "SELECT type, count(*) FROM events WHERE type IN"
                    " ('task.dispatched', 'task.started', 'task.completed', 'task.failed')"
                    " GROUP BY type"
                )
            )
        finally:
            await conn.close()
        self.log_counts = counts
        dispatched, started = spans["task.dispatched"], spans["task.started"]
        print(f"  taskstream log: last dispatch +{dispatched:.2f} s, last start +{started:.2f} s")
