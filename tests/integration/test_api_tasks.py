"""Seed 002's task endpoints under /api, against a real gateway and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain import events as ev
from services.surfaces.kit.context import CONTEXT
from services.tasks.service import Actor
from tests.integration.api_harness import Api, running_api

SEED_TASK_FIELDS = {
    "id", "name", "description", "command", "status", "priority", "retry_count", "max_retries",
    "created_at", "updated_at", "scheduled_at", "started_at", "completed_at", "timeout_seconds",
    "tags", "dependencies", "worker_id", "result", "error", "checkpoint_data", "checkpoint_enabled",
}  # fmt: skip


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as a:
        yield a


def soon(seconds: int = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def http_task(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Example Task",
        "action": {"kind": "http", "url": "https://example.com/hook", "method": "POST"},
        **extra,
    }


async def create(
    api: Api, body: dict[str, Any] | None = None, key: str | None = None
) -> dict[str, Any]:
    status, payload, _ = await api.call("POST", "/api/tasks", json=body or http_task(), key=key)
    assert status == 201, payload
    return dict(payload["data"])


async def test_create_returns_seed_shape_and_get_sees_it_at_once(api: Api) -> None:
    dependency = await create(api, http_task(name="first"))
    body = http_task(
        description="This is an example task",
        priority=7,
        max_retries=4,
        scheduled_at="2099-06-15T12:00:00Z",
        timeout_seconds=600,
        tags=["example", "demo"],
        dependencies=[dependency["id"]],
        checkpoint_enabled=True,
        payload={"k": [1, 2]},
        created_by="2b0f8c1e-0000-4000-8000-000000000000",
    )
    task = await create(api, body)
    assert SEED_TASK_FIELDS <= set(task)
    assert task["status"] == "pending"
    assert task["priority"] == 7 and task["max_retries"] == 4 and task["retry_count"] == 0
    assert task["scheduled_at"].startswith("2099-06-15T12:00:00")
    assert task["tags"] == ["example", "demo"] and task["dependencies"] == [dependency["id"]]
    assert task["checkpoint_enabled"] is True and task["checkpoint_data"] is None
    assert task["action"]["kind"] == "http" and task["command"] is None
    assert task["schedule"] == {
        "kind": "once", "expr": task["schedule"]["expr"], "timezone": "UTC",
        "start_at": None, "end_at": None,
    }  # fmt: skip
    status, got, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert status == 200
    assert got["data"] == task


async def test_create_with_cron_schedule_and_defaults(api: Api) -> None:
    task = await create(
        api,
        http_task(schedule={"kind": "cron", "expr": "0 9 * * 1-5", "timezone": "Europe/Berlin"}),
    )
    assert task["priority"] == 5 and task["max_retries"] == 3 and task["timeout_seconds"] == 3600
    assert task["schedule"]["kind"] == "cron"
    assert task["scheduled_at"] is not None
    due = datetime.fromisoformat(task["scheduled_at"])
    assert due > datetime.now(UTC)
    assert due.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).hour == 9


async def test_list_filters_sorts_and_paginates(api: Api) -> None:
    for i in range(5):
        await create(
            api, http_task(name=f"t{i}", priority=i + 1, tags=["even" if i % 2 == 0 else "odd"])
        )
    other = await create(api, http_task(name="cancel-me"))
    await api.call("POST", f"/api/tasks/{other['id']}/cancel")

    status, page, _ = await api.call("GET", "/api/tasks?limit=2&page=2&sort=priority&order=asc")
    assert status == 200
    assert page["meta"] == {"page": 2, "limit": 2, "total": 6, "pages": 3}
    assert [t["name"] for t in page["data"]] == ["t2", "t3"]

    _, evens, _ = await api.call("GET", "/api/tasks?tag=even")
    assert sorted(t["name"] for t in evens["data"]) == ["t0", "t2", "t4"]
    _, cancelled, _ = await api.call("GET", "/api/tasks?status=cancelled")
    assert [t["id"] for t in cancelled["data"]] == [other["id"]]
    _, default, _ = await api.call("GET", "/api/tasks")
    assert default["meta"]["limit"] == 20 and default["meta"]["page"] == 1
    assert default["data"][0]["name"] == "cancel-me"  # created_at desc


async def test_partial_update_changes_only_given_fields(api: Api) -> None:
    task = await create(api, http_task(tags=["a"], description="keep me"))
    for method in ("PUT", "PATCH"):
        status, body, _ = await api.call(
            method,
            f"/api/tasks/{task['id']}",
            json={"name": f"Updated {method}", "priority": 8, "max_retries": 5},
        )
        assert status == 200, body
        updated = body["data"]
        assert updated["name"] == f"Updated {method}" and updated["priority"] == 8
        assert updated["max_retries"] == 5
        assert updated["description"] == "keep me" and updated["tags"] == ["a"]
        assert updated["updated_at"] > task["updated_at"]
    _, got, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert got["data"]["name"] == "Updated PATCH"


async def test_delete_then_gone(api: Api) -> None:
    task = await create(api)
    status, body, _ = await api.call("DELETE", f"/api/tasks/{task['id']}")
    assert status == 200
    assert body == {"data": {"success": True, "message": "Task deleted successfully"}}
    status, body, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert status == 404 and body["error"]["code"] == "not_found"
    _, listing, _ = await api.call("GET", "/api/tasks")
    assert task["id"] not in [t["id"] for t in listing["data"]]
    status, _, _ = await api.call("DELETE", f"/api/tasks/{task['id']}")
    assert status == 404


async def test_cancel_is_idempotent_and_blocks_updates(api: Api) -> None:
    task = await create(api)
    for _ in range(2):
        status, body, _ = await api.call("POST", f"/api/tasks/{task['id']}/cancel")
        assert status == 200
        assert body["data"]["id"] == task["id"] and body["data"]["status"] == "cancelled"
    status, body, _ = await api.call("PUT", f"/api/tasks/{task['id']}", json={"name": "x"})
    assert status == 409 and body["error"]["code"] == "invalid_state"


async def test_retry_only_a_failed_task(api: Api) -> None:
    task = await create(api)
    status, body, _ = await api.call("POST", f"/api/tasks/{task['id']}/retry")
    assert status == 409 and "failed" in body["error"]["message"]

    # Drive the task to a final failure the way the worker will: recorded execution events.
    service = api.app[CONTEXT].tasks
    state = await service.get(api.project_a, task["id"])
    now = datetime.now(UTC)
    await service.record(
        state,
        [
            ev.TaskDispatched(at=now, run_id="r1", attempt=1, due_at=now, lease_until=now),
            ev.TaskStarted(at=now, run_id="r1", attempt=1, worker_id="w1", lease_until=now),
            ev.TaskFailed(at=now, run_id="r1", attempt=1, error="boom", final=True),
        ],
        actor=Actor("worker", "w1"),
    )
    _, failed, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert failed["data"]["status"] == "failed" and failed["data"]["error"] == "boom"
    status, body, _ = await api.call("POST", f"/api/tasks/{task['id']}/retry")
    assert status == 200, body
    assert body["data"]["status"] == "pending" and body["data"]["retry_count"] == 1
    types = await api.pool.fetch(
        "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"task-{task['id']}"
    )
    assert [r["type"] for r in types][-1] == "task.retrying"


async def test_logs_are_empty_until_runs_write_them(api: Api) -> None:
    task = await create(api)
    status, body, _ = await api.call("GET", f"/api/tasks/{task['id']}/logs?limit=10&level=error")
    assert status == 200
    assert body == {"data": [], "meta": {"limit": 10, "offset": 0, "total": 0}}
    await api.pool.execute(
        "INSERT INTO task_logs (project_id, task_id, level, message) "
        "VALUES ($1, $2, 'error', 'x'), ($1, $2, 'info', 'y')",
        api.project_a, task["id"],
    )  # fmt: skip
    _, body, _ = await api.call("GET", f"/api/tasks/{task['id']}/logs?level=error")
    assert [line["message"] for line in body["data"]] == ["x"] and body["meta"]["total"] == 1
    status, body, _ = await api.call("GET", f"/api/tasks/{task['id']}/logs?level=loud")
    assert status == 422 and body["error"]["details"]["field"] == "level"


async def test_checkpoint(api: Api) -> None:
    plain = await create(api)
    status, body, _ = await api.call(
        "POST", f"/api/tasks/{plain['id']}/checkpoint", json={"checkpoint_data": {"s": 1}}
    )
    assert status == 409 and "checkpoint_enabled" in body["error"]["message"]
    task = await create(api, http_task(checkpoint_enabled=True))
    data = {"current_step": 3, "custom_data": {"key1": "value1"}}
    status, body, _ = await api.call(
        "POST", f"/api/tasks/{task['id']}/checkpoint", json={"checkpoint_data": data}
    )
    assert status == 200
    assert body["data"]["id"] == task["id"] and body["data"]["checkpoint_data"] == data
    _, got, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert got["data"]["checkpoint_data"] == data


async def test_command_needs_operator_permission(pool: asyncpg.Pool) -> None:
    seed_body = {"name": "Example Task", "command": "echo 'Hello World'"}
    async with running_api(pool) as api:
        status, body, _ = await api.call("POST", "/api/tasks", json=seed_body)
        assert status == 422 and body["error"]["details"]["field"] == "action.command"
        assert "--allow-commands" in body["error"]["message"]
        assert await api.event_count() == 0
    await pool.execute("DELETE FROM projects")
    async with running_api(pool, allow_commands=True) as api:
        task = await create(api, seed_body)
        assert task["command"] == "echo 'Hello World'"
        assert task["action"] == {"kind": "command", "command": "echo 'Hello World'"}


async def test_unversioned_and_v1_accept_headers_work_other_versions_do_not(api: Api) -> None:
    status, _, _ = await api.call(
        "GET", "/api/tasks", headers={"Accept": "application/json; version=1.0"}
    )
    assert status == 200
    status, body, _ = await api.call(
        "GET", "/api/tasks", headers={"Accept": "application/json; version=2.0"}
    )
    assert status == 406 and body["error"]["code"] == "unsupported_version"


async def test_unknown_route_answers_in_the_error_shape(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_rate_limit_headers_and_429(pool: asyncpg.Pool) -> None:
    async with running_api(pool, rate_limit_per_second=0.01, rate_limit_burst=3) as api:
        statuses = []
        for _ in range(4):
            status, body, response = await api.call("GET", "/api/tasks")
            statuses.append(status)
            assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
                response.headers
            )
        assert statuses == [200, 200, 200, 429]
        assert body["error"]["code"] == "rate_limited" and int(response.headers["Retry-After"]) >= 1
        status, _, _ = await api.call("GET", "/api/tasks", key=api.key_b)
        assert status == 200, "one project's limit must not throttle another"


async def test_dedupe_key_returns_the_existing_task_within_its_window(api: Api) -> None:
    body = http_task(dedupe_key="invoice-42", dedupe_window_seconds=3600)
    status, first, _ = await api.call("POST", "/api/tasks", json=body)
    assert status == 201
    before = await api.event_count()
    results = await asyncio.gather(*(api.call("POST", "/api/tasks", json=body) for _ in range(5)))
    assert [r[0] for r in results] == [200] * 5
    assert {r[1]["data"]["id"] for r in results} == {first["data"]["id"]}
    assert await api.event_count() == before, "a duplicate writes nothing"
    status, other_project, _ = await api.call("POST", "/api/tasks", json=body, key=api.key_b)
    assert status == 201 and other_project["data"]["id"] != first["data"]["id"]
    status, _, _ = await api.call("POST", "/api/tasks", json=http_task(dedupe_key="invoice-43"))
    assert status == 201


async def test_concurrent_creates_with_one_dedupe_key_make_one_task(api: Api) -> None:
    body = http_task(dedupe_key="race")
    results = await asyncio.gather(*(api.call("POST", "/api/tasks", json=body) for _ in range(20)))
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] * 19 + [201]
    assert len({r[1]["data"]["id"] for r in results}) == 1


async def test_expired_dedupe_key_allows_a_new_task(api: Api) -> None:
    body = http_task(dedupe_key="short", dedupe_window_seconds=1)
    _, first, _ = await api.call("POST", "/api/tasks", json=body)
    await api.pool.execute("UPDATE dedupe_keys SET expires_at = now() - interval '1 second'")
    status, second, _ = await api.call("POST", "/api/tasks", json=body)
    assert status == 201 and second["data"]["id"] != first["data"]["id"]


async def test_a_deleted_holder_frees_its_dedupe_key(api: Api) -> None:
    body = http_task(dedupe_key="gone-holder", dedupe_window_seconds=3600)
    _, first, _ = await api.call("POST", "/api/tasks", json=body)
    status, _, _ = await api.call("DELETE", f"/api/tasks/{first['data']['id']}")
    assert status in (200, 204)
    status, second, _ = await api.call("POST", "/api/tasks", json=body)
    assert status == 201, second
    assert second["data"]["id"] != first["data"]["id"]
    status, again, _ = await api.call("POST", "/api/tasks", json=body)
    assert status == 200 and again["data"]["id"] == second["data"]["id"]
