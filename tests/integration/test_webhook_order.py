"""Issue 10 §5 for webhooks: one task's deliveries reach an endpoint in log order even when the
workers send them concurrently and one fails; a deleted task's notify_url deliveries stop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.integration.test_api_tasks import http_task
from tests.integration.test_webhooks import Hooks, run_task_to_completion, running_hooks, verified

ORDER = ["task.created", "task.started", "task.completed"]


@pytest.fixture
async def concurrent_hooks(pool: asyncpg.Pool) -> AsyncIterator[Hooks]:
    async with running_hooks(pool, concurrent=True) as hooks:
        yield hooks


def event_of(body: bytes) -> str:
    return str(json.loads(body)["event"])


async def test_one_tasks_deliveries_arrive_in_log_order_despite_a_failed_attempt(
    concurrent_hooks: Hooks,
) -> None:
    hooks = concurrent_hooks
    endpoint = await hooks.endpoint("/ordered")
    receiver = hooks.receiver

    def first_created_fails(n: int) -> tuple[int, float]:
        # The first attempt at task.created fails; the retry comes 0.2 s later.
        calls = receiver.calls("/ordered")[:n]
        created = [c for c in calls if event_of(c.body) == "task.created"]
        if event_of(calls[-1].body) == "task.created" and len(created) == 1:
            return 500, 0.0
        return 200, 0.05  # slow enough that concurrent sends overlap

    receiver.behaviour["/ordered"] = first_created_fails
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task())
    await run_task_to_completion(hooks.api, task["data"]["id"])
    deadline = time.monotonic() + 10
    while hooks.results.count("succeeded") < 3:
        assert time.monotonic() < deadline, f"deliveries stuck: {hooks.results}"
        await hooks.pump_once()
        await asyncio.sleep(0.02)
    calls = receiver.calls("/ordered")
    failed = next(i for i, c in enumerate(calls) if event_of(c.body) == "task.created")
    delivered = [verified(endpoint["secret"], c) for i, c in enumerate(calls) if i != failed]
    assert [p["event"] for p in delivered] == ORDER
    versions = [p["stream_version"] for p in delivered]
    assert versions == sorted(versions) and versions[0] == 0
    assert all(p["event_id"] for p in delivered)
    ids = await hooks.api.pool.fetch(
        "SELECT event_id::text FROM events WHERE stream_id = $1 AND type = ANY($2::text[])"
        " ORDER BY version",
        f"task-{task['data']['id']}",
        ORDER,
    )
    assert [p["event_id"] for p in delivered] == [r[0] for r in ids]


async def test_deleting_a_task_drops_its_queued_notify_deliveries(concurrent_hooks: Hooks) -> None:
    hooks = concurrent_hooks
    hooks.receiver.behaviour["/down"] = lambda n: (503, 0.0)
    url = hooks.receiver.url + "/down"
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=url))
    task_id = task["data"]["id"]
    await hooks.pump_once()
    await hooks.receiver.wait_for("/down", 1)
    deadline = time.monotonic() + 5
    while "retry" not in hooks.results:
        assert time.monotonic() < deadline, hooks.results
        await asyncio.sleep(0.02)
    status, _, _ = await hooks.api.call("DELETE", f"/api/tasks/{task_id}")
    assert status in (200, 204)
    pool = hooks.api.pool
    statuses = await pool.fetch(
        "SELECT status FROM webhook_deliveries WHERE endpoint_id = $1", f"wht_{task_id}"
    )
    assert statuses and {r["status"] for r in statuses} == {"dropped"}
    # Even once their retry time has come, and after the task.deleted event is fanned out,
    # nothing more is sent to the deleted task's notify_url.
    await pool.execute("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 s'")
    calls = len(hooks.receiver.calls("/down"))
    await hooks.pump_once()
    assert await hooks.pump.send_due() == 0
    assert len(hooks.receiver.calls("/down")) == calls
    pending = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'",
        f"wht_{task_id}",
    )
    assert pending == 0
