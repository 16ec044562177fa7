"""Due → dispatched → started → completed/failed over real PostgreSQL and a real HTTP receiver.

Here the scheduler hands runs straight to the executor; the broker transport is tested with
the worker (a lost message is simulated by a send that drops it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from domain.actions import HandlerAction, HttpAction
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.task import TaskState
from domain.task_definition import TaskDefinition
from infra.egress_client import EgressClient
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from services.jobs.sweep import JobSweeper
from services.runs.executor import RunExecutor
from services.runs.handlers import load_handler_modules
from services.scheduler.dispatcher import RunMessage, Scheduler, SchedulerConfig
from services.tasks.service import Actor, TaskService
from tests.integration.api_harness import session_secret_store
from tests.integration.receiver import Receiver, running_receiver

USER = Actor("test", "t")


@dataclass
class Rig:
    pool: asyncpg.Pool
    tasks: TaskService
    executor: RunExecutor
    receiver: Receiver
    project: str = "p1"

    async def create(self, path: str, **overrides: object) -> TaskState:
        fields: dict[str, object] = {
            "name": path,
            "action": HttpAction(
                url=self.receiver.url + path,
                method="POST",
                body='{"hello": 1}',
                headers={"X-Custom": "yes"},
            ),
            "schedule": Schedule(kind="once", expr=datetime.now(UTC).isoformat()),
            "retry": RetryPolicy(max_retries=0),
        }
        fields.update(overrides)
        return await self.tasks.create(self.project, TaskDefinition(**fields), actor=USER)  # type: ignore[arg-type]

    async def types(self, task_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"task-{task_id}"
        )
        return [r["type"] for r in rows]

    async def wait_status(self, task_id: str, *statuses: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = await self.pool.fetchval(
                "SELECT status FROM task_view WHERE task_id = $1", task_id
            )
            if status in statuses:
                return str(status)
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{task_id} never reached {statuses}; events: {await self.types(task_id)}"
        )


@pytest.fixture
async def rig(pool: asyncpg.Pool) -> AsyncIterator[Rig]:
    committer = GroupCommitter(pool, max_batch=64, flushers=2)
    tasks = TaskService(
        pool,
        committer,
        secrets=session_secret_store(pool),
        egress_allow=parse_allow_list("127.0.0.0/8"),
    )
    async with running_receiver() as receiver, EgressClient("127.0.0.0/8") as egress:
        executor = RunExecutor(pool, tasks, egress, worker_id="w-test", lease_seconds=3.0,
                               random_unit=lambda: 0.0)  # fmt: skip
        yield Rig(pool, tasks, executor, receiver)
    await committer.close()


async def run_schedulers(
    rig: Rig,
    count: int = 1,
    send: Callable | None = None,
    config: SchedulerConfig | None = None,
    jobs: Callable[[], JobSweeper] | None = None,
) -> tuple[list[Scheduler], asyncio.Event, list[asyncio.Task]]:
    stop = asyncio.Event()
    running: list[asyncio.Task] = []

    async def direct(task_id: str, run_id: str, attempt: int) -> None:
        running.append(asyncio.create_task(rig.executor.execute(task_id, run_id, attempt)))

    each = send or direct

    async def send_runs(runs: list[RunMessage]) -> None:
        for run in runs:
            await each(*run)

    schedulers = [
        Scheduler(
            rig.pool,
            rig.tasks,
            send_runs,
            config=config or SchedulerConfig(dispatch_lease_seconds=2.0),
            jobs=None if jobs is None else jobs(),
        )
        for _ in range(count)
    ]
    loops = [asyncio.create_task(s.run(stop)) for s in schedulers]
    return schedulers, stop, loops + running


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task]) -> None:
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_shot_due_in_one_second_is_called_on_time(rig: Rig) -> None:
    _, stop, loops = await run_schedulers(rig)
    due = datetime.now(UTC) + timedelta(seconds=1)
    task = await rig.create("/once", schedule=Schedule(kind="once", expr=due.isoformat()))
    (call,) = await rig.receiver.wait_for("/once", 1, timeout=5)
    lateness = call.at - due.timestamp()
    assert -0.01 <= lateness < 0.5, f"called {lateness:.3f} s after due"
    assert call.method == "POST" and call.body == b'{"hello": 1}'
    assert call.headers["X-Custom"] == "yes" and call.headers["Idempotency-Key"].startswith(
        task.task_id
    )
    await rig.wait_status(task.task_id, "completed")
    await stop_all(stop, loops)
    assert await rig.types(task.task_id) == [
        "task.created",
        "task.dispatched",
        "task.started",
        "task.completed",
    ]
    state = await rig.tasks.get(rig.project, task.task_id)
    assert state.result == {"status": 200, "body": "call 1"}


async def test_500_then_200_is_retried_with_backoff_and_completed_once(rig: Rig) -> None:
    rig.receiver.behaviour["/flaky"] = lambda n: (500 if n == 1 else 200, 0.0)
    _, stop, loops = await run_schedulers(rig)
    task = await rig.create(
        "/flaky", retry=RetryPolicy(max_retries=3, backoff="fixed", base_seconds=1.0)
    )
    first, second = await rig.receiver.wait_for("/flaky", 2, timeout=8)
    await rig.wait_status(task.task_id, "completed")
    await stop_all(stop, loops)
    assert second.at - first.at >= 0.99, "the retry must wait out the fixed 1 s backoff"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert await rig.types(task.task_id) == [
        "task.created", "task.dispatched", "task.started", "task.failed", "task.retrying",
        "task.dispatched", "task.started", "task.completed",
    ]  # fmt: skip
    assert len(rig.receiver.calls("/flaky")) == 2


async def test_two_replicas_never_dispatch_the_same_occurrence_twice(rig: Rig) -> None:
    schedulers, stop, loops = await run_schedulers(rig, count=2)
    created = [await rig.create(f"/many/{i}") for i in range(60)]
    for t in created:
        await rig.wait_status(t.task_id, "completed")
    await stop_all(stop, loops)
    dispatched = await rig.pool.fetch(
        "SELECT stream_id, count(*) FROM events WHERE type = 'task.dispatched' GROUP BY 1"
    )
    assert len(dispatched) == 60 and all(r["count"] == 1 for r in dispatched)
    assert sum(1 for s in rig.receiver.seen if s.path.startswith("/many/")) == 60
    assert all(s.dispatched > 0 for s in schedulers), "both replicas should have taken a share"


async def test_a_lost_broker_message_is_recovered_through_the_lease(rig: Rig) -> None:
    sent: list[str] = []
    running: list[asyncio.Task] = []

    async def lossy(task_id: str, run_id: str, attempt: int) -> None:
        sent.append(run_id)
        if len(sent) > 1:  # the first message vanishes, as if the broker lost it
            running.append(asyncio.create_task(rig.executor.execute(task_id, run_id, attempt)))

    _, stop, loops = await run_schedulers(
        rig, send=lossy, config=SchedulerConfig(dispatch_lease_seconds=1.0)
    )
    task = await rig.create(
        "/lost", retry=RetryPolicy(max_retries=2, backoff="fixed", base_seconds=0.1)
    )
    await rig.wait_status(task.task_id, "completed", timeout=10)
    await stop_all(stop, loops + running)
    types = await rig.types(task.task_id)
    assert types.count("task.completed") == 1 and "task.failed" in types
    failed = await rig.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE stream_id = $1 AND type = 'task.failed'",
        f"task-{task.task_id}",
    )
    assert failed == "worker_lost"
    assert len(rig.receiver.calls("/lost")) == 1


async def test_duplicate_delivery_completes_once(rig: Rig) -> None:
    deliveries: list[tuple[str, str, int]] = []

    async def capture(task_id: str, run_id: str, attempt: int) -> None:
        deliveries.append((task_id, run_id, attempt))

    _, stop, loops = await run_schedulers(rig, send=capture)
    task = await rig.create("/dup")
    deadline = time.monotonic() + 5
    while not deliveries and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await stop_all(stop, loops)
    outcomes = await asyncio.gather(*(rig.executor.execute(*deliveries[0]) for _ in range(3)))
    assert sorted(outcomes) == ["completed", "stale", "stale"]
    assert len(rig.receiver.calls("/dup")) == 1
    assert (await rig.types(task.task_id)).count("task.completed") == 1


async def test_timeout_fails_the_run_with_reason_timeout(rig: Rig) -> None:
    rig.receiver.behaviour["/slow"] = lambda n: (200, 3.0)
    _, stop, loops = await run_schedulers(rig)
    task = await rig.create("/slow", timeout_seconds=1)
    await rig.wait_status(task.task_id, "failed", timeout=6)
    await stop_all(stop, loops)
    reason = await rig.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE stream_id = $1 AND type = 'task.failed'",
        f"task-{task.task_id}",
    )
    assert reason == "timeout"


async def test_recurring_schedule_skips_occurrences_that_overlap_a_running_run(rig: Rig) -> None:
    rig.receiver.behaviour["/tick"] = lambda n: (200, 2.5 if n == 1 else 0.0)
    _, stop, loops = await run_schedulers(rig)
    task = await rig.create(
        "/tick", schedule=Schedule(kind="interval", expr="1"), timeout_seconds=10
    )
    await rig.receiver.wait_for("/tick", 2, timeout=8)
    await stop_all(stop, loops)
    types = await rig.types(task.task_id)
    assert "task.occurrence_skipped" in types
    assert types.count("task.dispatched") >= 2


async def test_dependencies_wait_for_completion_and_failures_cancel_dependents(rig: Rig) -> None:
    rig.receiver.behaviour["/dep-fails"] = lambda n: (500, 0.0)
    rig.receiver.behaviour["/dep-slow"] = lambda n: (200, 1.0)
    _, stop, loops = await run_schedulers(rig)
    slow = await rig.create("/dep-slow")
    after_slow = await rig.create("/after-slow", dependencies=(slow.task_id,))
    failing = await rig.create("/dep-fails")
    doomed = await rig.create("/never", dependencies=(failing.task_id,))
    await rig.wait_status(after_slow.task_id, "completed")
    await rig.wait_status(doomed.task_id, "cancelled")
    await stop_all(stop, loops)
    (dependency_call,) = rig.receiver.calls("/dep-slow")
    (dependent_call,) = rig.receiver.calls("/after-slow")
    assert dependent_call.at >= dependency_call.at + 1.0, (
        "the dependent ran before its dependency finished"
    )
    assert rig.receiver.calls("/never") == []
    reason = await rig.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE stream_id = $1 AND type = 'task.cancelled'",
        f"task-{doomed.task_id}",
    )
    assert reason == f"dependency {failing.task_id} failed"


async def test_concurrency_key_limit_holds_across_two_replicas(rig: Rig) -> None:
    for i in range(8):
        rig.receiver.behaviour[f"/limited/{i}"] = lambda n: (200, 0.4)
    _, stop, loops = await run_schedulers(rig, count=2)
    limited = [
        await rig.create(f"/limited/{i}", concurrency_key="crm-sync", concurrency_limit=2)
        for i in range(8)
    ]
    for t in limited:
        await rig.wait_status(t.task_id, "completed", timeout=15)
    await stop_all(stop, loops)
    assert rig.receiver.max_in_flight == 2, f"saw {rig.receiver.max_in_flight} at once"


async def test_handler_gets_payload_saves_checkpoints_logs_and_resumes(rig: Rig) -> None:
    assert "resumable-steps" in load_handler_modules(["tests.integration.sample_handlers"])
    _, stop, loops = await run_schedulers(rig)
    task = await rig.create(
        "/unused",
        action=HandlerAction(name="resumable-steps"),
        payload={"to": "ops"},
        retry=RetryPolicy(max_retries=1, backoff="fixed", base_seconds=0.1),
    )
    missing = await rig.create("/unused2", action=HandlerAction(name="not-registered"))
    await rig.wait_status(task.task_id, "completed")
    await rig.wait_status(missing.task_id, "failed")
    await stop_all(stop, loops)
    state = await rig.tasks.get(rig.project, task.task_id)
    assert state.result == {"resumed_from": 1, "payload": {"to": "ops"}}
    assert state.checkpoint_data == {"step": 1}
    lines = await rig.pool.fetch(
        "SELECT level, message FROM task_logs WHERE task_id = $1 ORDER BY id", task.task_id
    )
    assert [(r["level"], r["message"]) for r in lines] == [
        ("info", "starting with {'to': 'ops'}"),
        ("error", "RuntimeError: crashed after step 1"),
        ("info", "resuming from step 1"),
    ]
    reason = await rig.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE stream_id = $1 AND type = 'task.failed'",
        f"task-{missing.task_id}",
    )
    assert reason == "unknown_handler"


async def test_due_tasks_are_dispatched_highest_priority_first(rig: Rig) -> None:
    due = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    made = {
        p: await rig.create(f"/p{p}", priority=p, schedule=Schedule(kind="once", expr=due))
        for p in (1, 10, 5)
    }
    order: list[str] = []

    async def capture(task_id: str, run_id: str, attempt: int) -> None:
        order.append(task_id)

    _, stop, loops = await run_schedulers(rig, send=capture)
    deadline = time.monotonic() + 5
    while len(order) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await stop_all(stop, loops)
    assert order == [made[10].task_id, made[5].task_id, made[1].task_id]
