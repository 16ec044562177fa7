"""Seed 004's run_now, snooze and events drive real runs: gateway → log → scheduler → executor.

The gateway, the scheduler and the run executor share one PostgreSQL; the HTTP actions call a
real receiver on loopback (allowed through the SSRF guard for 127.0.0.0/8 only).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from infra.egress_client import EgressClient
from services.runs.executor import RunExecutor
from services.surfaces.kit.context import CONTEXT
from tests.integration.api_harness import Api, running_api
from tests.integration.receiver import running_receiver
from tests.integration.test_agent_tasks import agent_task
from tests.integration.test_execution_path import Rig, run_schedulers, stop_all

RUN = ["task.dispatched", "task.started", "task.completed"]


@dataclass
class Agents:
    api: Api
    rig: Rig

    def calling(self, path: str, **extra: Any) -> dict[str, Any]:
        """A task body whose run POSTs to the receiver at `path`."""
        action = {"kind": "http", "url": self.rig.receiver.url + path, "method": "POST"}
        return agent_task(payload={"action": action}, max_retries=0, **extra)

    async def create(self, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        status, task, _ = await self.api.call("POST", "/tasks", json=body, key=key)
        assert status == 201, task
        return dict(task)


@pytest.fixture
async def agents(pool: asyncpg.Pool) -> AsyncIterator[Agents]:
    async with (
        running_api(pool, egress_allow_cidrs="127.0.0.0/8") as api,
        running_receiver() as receiver,
        EgressClient("127.0.0.0/8") as egress,
    ):
        tasks = api.app[CONTEXT].tasks
        executor = RunExecutor(pool, tasks, egress, worker_id="w-agents", lease_seconds=3.0)
        rig = Rig(pool, tasks, executor, receiver, project=api.project_a)
        _, stop, loops = await run_schedulers(rig)
        try:
            yield Agents(api, rig)
        finally:
            await stop_all(stop, loops)


async def test_run_now_runs_at_once_and_leaves_the_schedule_alone(agents: Agents) -> None:
    task = await agents.create(agents.calling("/digest", schedule_expr="0 0 1 1 *"))
    asked = time.time()
    status, _, _ = await agents.api.call("POST", f"/tasks/{task['id']}/run_now")
    assert status == 202
    (call,) = await agents.rig.receiver.wait_for("/digest", 1, timeout=5)
    assert call.at - asked < 1.0, f"run_now took {call.at - asked:.3f} s to reach the receiver"
    await agents.rig.wait_status(task["id"], "pending")  # completed, next occurrence waiting
    _, after, _ = await agents.api.call("GET", f"/tasks/{task['id']}")
    assert after["next_run_at"] == task["next_run_at"], "run_now must not move the schedule"
    assert (after["runs_completed"], after["last_result"]["status"]) == (1, 200)
    assert await agents.rig.types(task["id"]) == ["task.created", "task.triggered", *RUN]


async def test_a_snoozed_one_shot_runs_later_by_the_delay(agents: Agents) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1)
    task = await agents.create(
        agents.calling("/later", schedule_kind="once", schedule_expr=due.isoformat())
    )
    status, snoozed, _ = await agents.api.call(
        "POST", f"/tasks/{task['id']}/snooze", json={"delay_seconds": 2}
    )
    assert status == 200, snoozed
    (call,) = await agents.rig.receiver.wait_for("/later", 1, timeout=8)
    lateness = call.at - (due.timestamp() + 2)
    assert 0 <= lateness < 0.5, f"called {lateness:.3f} s after the snoozed time"
    await agents.rig.wait_status(task["id"], "completed")
    assert await agents.rig.types(task["id"]) == ["task.created", "task.snoozed", *RUN]


async def test_an_event_runs_every_active_listener_of_the_project_and_no_other(
    agents: Agents,
) -> None:
    api = agents.api
    listen = {"schedule_kind": "event", "schedule_expr": "invoice.paid"}
    calls = await agents.create(agents.calling("/paid", **listen))
    # No action: the run only announces itself, and is still a recorded run.
    silent = await agents.create(agent_task(**listen))
    other_name = await agents.create(
        agents.calling("/other", schedule_kind="event", schedule_expr="invoice.void")
    )
    paused = await agents.create(agents.calling("/paused", **listen))
    await api.call("POST", f"/tasks/{paused['id']}/pause")
    other_project = await agents.create(agents.calling("/theirs", **listen), key=api.key_b)

    asked = time.time()
    status, fired, _ = await api.call(
        "POST", "/events", json={"name": "invoice.paid", "payload": {"invoice": 42}}
    )
    assert status == 202, fired
    assert sorted(fired["triggered"]) == sorted([calls["id"], silent["id"]])
    (call,) = await agents.rig.receiver.wait_for("/paid", 1, timeout=5)
    assert call.at - asked < 1.0
    for task in (calls, silent):
        await agents.rig.wait_status(task["id"], "completed")
        assert await agents.rig.types(task["id"]) == ["task.created", "task.triggered", *RUN]
    _, shown, _ = await api.call("GET", f"/tasks/{silent['id']}")
    assert (shown["run_status"], shown["last_result"]) == ("completed", {"action": None})
    # The others were never triggered, so nothing of theirs can run: the log says so.
    assert await agents.rig.types(other_name["id"]) == ["task.created"]
    assert await agents.rig.types(paused["id"]) == ["task.created", "task.paused"]
    assert await agents.rig.types(other_project["id"]) == ["task.created"]
