"""One destination rule at create/update time on every surface (issue 10 §3).

A loopback, private or metadata literal is refused with a 422 naming the field as the surface's
callers wrote it, before anything is written; TASKSTREAM_EGRESS_ALLOW_CIDRS lets an operator
open a range, the same for every surface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from domain.retry_policy import RetryPolicy
from infra.egress_client import EgressClient
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from services.runs.executor import RunExecutor
from services.tasks.service import TaskService
from tests.integration.api_harness import Api, running_api, session_secret_store
from tests.integration.receiver import running_receiver
from tests.integration.test_agent_tasks import agent_task
from tests.integration.test_api_tasks import http_task
from tests.integration.test_execution_path import Rig, run_schedulers, stop_all

FORBIDDEN = [
    "http://127.0.0.1:9/x",
    "http://2130706433/x",
    "http://10.1.2.3/x",
    "http://[::1]/x",
    "http://192.168.0.10:8080/x",
    "http://localhost/x",
]


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as a:
        yield a


def agent_http(url: str) -> dict[str, Any]:
    return agent_task(payload={"action": {"kind": "http", "url": url}})


@pytest.mark.parametrize("url", FORBIDDEN)
async def test_api_action_url_and_notify_url_are_refused_at_create(api: Api, url: str) -> None:
    cases = [
        (http_task(action={"kind": "http", "url": url}), "action.url"),
        (http_task(notify_url=url), "notify_url"),
    ]
    for body, field in cases:
        status, answer, _ = await api.call("POST", "/api/tasks", json=body)
        assert status == 422, answer
        assert answer["error"]["details"]["field"] == field
        assert "public" in answer["error"]["message"] or "local" in answer["error"]["message"]
    assert await api.event_count() == 0


@pytest.mark.parametrize("url", FORBIDDEN)
async def test_tasks_payload_action_url_is_refused_at_create(api: Api, url: str) -> None:
    status, answer, _ = await api.call("POST", "/tasks", json=agent_http(url))
    assert status == 422, answer
    assert answer["field"] == "payload.action.url"
    assert await api.event_count() == 0


async def test_the_rule_holds_on_update_too(api: Api) -> None:
    status, task, _ = await api.call("POST", "/api/tasks", json=http_task())
    assert status == 201, task
    task_id = task["data"]["id"]
    for body, field in [
        ({"action": {"kind": "http", "url": "http://127.0.0.1/x"}}, "action.url"),
        ({"notify_url": "http://172.16.0.1/x"}, "notify_url"),
    ]:
        status, answer, _ = await api.call("PATCH", f"/api/tasks/{task_id}", json=body)
        assert (status, answer["error"]["details"]["field"]) == (422, field), answer
    status, agent, _ = await api.call("POST", "/tasks", json=agent_task())
    assert status == 201, agent
    status, answer, _ = await api.call(
        "PUT",
        f"/tasks/{agent['id']}",
        json={"payload": {"action": {"kind": "http", "url": "http://10.0.0.1/"}}},
    )
    assert (status, answer["field"]) == (422, "payload.action.url"), answer
    assert await api.event_count() == 2  # the two creates, nothing else


async def test_every_surface_speaks_the_same_rule(api: Api) -> None:
    url = "http://0x7f.1/x"
    answers = [
        await api.call("POST", "/api/tasks", json=http_task(action={"kind": "http", "url": url})),
        await api.call("POST", "/tasks", json=agent_http(url)),
        await api.call("POST", "/api/webhooks", json={"url": url}),
        await api.call(
            "POST",
            "/publish",
            json={
                "timestamp": "2099-01-01T00:00:00Z",
                "projectId": api.project_a,
                "body": {"callbackUrl": url},
            },
            headers={"Authorization": f"Bearer {api.key_a}"},
        ),
        await api.call(
            "POST",
            "/messages",
            json={
                "id": "m1",
                "scheduleTo": "2099-01-01T00:00:00Z",
                "payload": {},
                "webhookUrl": url,
            },
        ),
    ]
    assert [status for status, _, _ in answers] == [422, 422, 422, 400, 422]
    messages = [str(body) for _, body, _ in answers]
    assert all("127.0.0.1 is not a public destination" in m for m in messages), messages


async def test_the_operators_allow_list_opens_a_range_on_every_surface(pool: asyncpg.Pool) -> None:
    async with running_api(pool, egress_allow_cidrs="127.0.0.0/8") as api:
        url = "http://127.0.0.1:9/x"
        status, answer, _ = await api.call(
            "POST",
            "/api/tasks",
            json=http_task(action={"kind": "http", "url": url}, notify_url=url),
        )
        assert status == 201, answer
        status, answer, _ = await api.call("POST", "/tasks", json=agent_http(url))
        assert status == 201, answer
        status, answer, _ = await api.call(
            "POST", "/api/tasks", json=http_task(action={"kind": "http", "url": "http://10.0.0.1/"})
        )
        assert (status, answer["error"]["details"]["field"]) == (422, "action.url")
        status, answer, _ = await api.call(
            "POST",
            "/api/tasks",
            json=http_task(action={"kind": "http", "url": "http://169.254.169.254/"}),
        )
        assert status == 422, "metadata addresses stay refused whatever the allow-list says"


async def test_a_destination_refused_at_call_time_fails_for_good_without_retries(
    pool: asyncpg.Pool,
) -> None:
    # The gateway's rule let the address in (its allow-list), the worker's guard does not: the
    # call is refused at connect time, once, and the run is not retried.
    committer = GroupCommitter(pool, max_batch=64, flushers=2)
    tasks = TaskService(
        pool,
        committer,
        secrets=session_secret_store(pool),
        egress_allow=parse_allow_list("127.0.0.0/8"),
    )
    try:
        async with running_receiver() as receiver, EgressClient("") as strict:
            executor = RunExecutor(pool, tasks, strict, worker_id="w-test", lease_seconds=3.0,
                                   random_unit=lambda: 0.0)  # fmt: skip
            rig = Rig(pool, tasks, executor, receiver)
            _, stop, loops = await run_schedulers(rig)
            task = await rig.create("/refused", retry=RetryPolicy(max_retries=3))
            await rig.wait_status(task.task_id, "failed")
            await stop_all(stop, loops)
            assert receiver.calls("/refused") == []
    finally:
        await committer.close()
    rows = await pool.fetch(
        "SELECT type, data->>'reason' AS reason, data->>'final' AS final FROM events"
        " WHERE stream_id = $1 AND type IN ('task.failed', 'task.retrying')",
        f"task-{task.task_id}",
    )
    assert [(r["type"], r["reason"], r["final"]) for r in rows] == [
        ("task.failed", "egress_refused", "true")
    ]
