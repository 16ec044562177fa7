"""Seed 000's `POST /publish` and `DELETE /delete` on a real gateway, PostgreSQL and receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.api_harness import Api, running_api
from tests.integration.callback_rig import callbacks_running

ERROR_FIELDS = {"message", "field"}


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, egress_allow_cidrs="127.0.0.0/8") as a:
        yield a


def bearer(key: str) -> dict[str, str]:
    """The seed's header: `Authorization: Bearer <PROJECT_SECRET>`."""
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def publish_body(api: Api, **callback: Any) -> dict[str, Any]:
    """The document's example request (its // comments are not JSON and are left out)."""
    body = {
        "taskTag": "optional-task-identifier",
        "callbackUrl": "https://your-endpoint.com/webhook",
        "method": "POST",
        "headers": {
            "Authorization": "Bearer your-callback-auth-token",
            "Content-Type": "application/json",
        },
        "body": '{"key": "value"}',
        **callback,
    }
    return {
        "timestamp": "2024-03-20T12:00:00Z",
        "projectId": api.project_a,
        "body": {k: v for k, v in body.items() if v is not None},
    }


async def publish(api: Api, body: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
    status, answer, _ = await api.call(
        "POST", "/publish", json=body, headers=bearer(key or api.key_a)
    )
    return status, answer


async def test_example_publish_request_as_written(api: Api) -> None:
    status, answer = await publish(api, publish_body(api))
    assert status == 200, answer
    assert set(answer) == {"message", "taskId"} and answer["message"] == "Task scheduled"
    # The core holds the callback as written, header values write-only (docs/secrets.md); a
    # time already past is due at once.
    status, task, _ = await api.call("GET", f"/api/tasks/{answer['taskId']}")
    assert status == 200 and task["data"]["name"] == "optional-task-identifier"
    secret_ref = task["data"]["action"].pop("secret_ref")
    assert secret_ref.startswith("sec_")
    assert task["data"]["action"] == {
        "kind": "http",
        "url": "https://your-endpoint.com/webhook",
        "method": "POST",
        "headers": {"Authorization": "***", "Content-Type": "***"},
        "body": '{"key": "value"}',
        "timeout_seconds": 30.0,
    }
    # Past, so due at once; kept as written, so the run is recorded as late.
    assert task["data"]["scheduled_at"] == "2024-03-20T12:00:00Z"


async def test_callback_fires_at_its_timestamp_with_method_headers_and_body(api: Api) -> None:
    async with callbacks_running(api) as receiver:
        due = datetime.now(UTC) + timedelta(seconds=1)
        body = publish_body(
            api,
            callbackUrl=receiver.url + "/hook",
            method="PUT",
            headers={"Authorization": "Bearer cb-token", "Content-Type": "text/plain", "X-A": "1"},
            body="hello 000",
        )
        body["timestamp"] = due.isoformat().replace("+00:00", "Z")
        status, answer = await publish(api, body)
        assert status == 200, answer
        (call,) = await receiver.wait_for("/hook", 1, timeout=10)
    assert call.at >= due.timestamp() - 0.01, "called before its timestamp"
    assert call.at - due.timestamp() < 2.0, "called far too late"
    assert call.method == "PUT" and call.body == b"hello 000"
    assert call.headers["Authorization"] == "Bearer cb-token"
    assert call.headers["Content-Type"] == "text/plain" and call.headers["X-A"] == "1"


async def test_delete_example_as_written_and_the_task_never_fires(api: Api) -> None:
    async with callbacks_running(api) as receiver:
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        doomed = {**publish_body(api, callbackUrl=receiver.url + "/deleted"), "timestamp": soon}
        _, created = await publish(api, doomed)
        status, answer, _ = await api.call(
            "DELETE",
            "/delete",
            json={"taskId": created["taskId"], "projectId": api.project_a},
            headers=bearer(api.key_a),
        )
        assert status == 200, answer
        assert answer == {"message": "Task deleted successfully", "taskId": created["taskId"]}
        # A marker due after the deleted one: once it has arrived, the deleted one would have.
        marker = {**publish_body(api, callbackUrl=receiver.url + "/marker"), "timestamp": soon}
        marker["timestamp"] = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
        assert (await publish(api, marker))[0] == 200
        await receiver.wait_for("/marker", 1, timeout=10)
    assert receiver.calls("/deleted") == []
    status, _, _ = await api.call("GET", f"/api/tasks/{created['taskId']}")
    assert status == 404


async def delete(api: Api, task_id: str, project_id: str, key: str) -> tuple[int, Any]:
    body = {"taskId": task_id, "projectId": project_id}
    status, answer, _ = await api.call("DELETE", "/delete", json=body, headers=bearer(key))
    return status, answer


async def test_delete_of_an_unknown_task_is_404(api: Api) -> None:
    before = await api.event_count()
    status, answer = await delete(
        api, "8d6c1f0e-0000-4000-8000-000000000000", api.project_a, api.key_a
    )
    assert status == 404 and set(answer) <= ERROR_FIELDS and "not found" in answer["message"]
    assert await api.event_count() == before


@pytest.mark.parametrize(
    ("project", "key", "status"),
    [("project_b", "key_b", 404), ("project_b", "key_a", 401)],
    ids=["another-projects-task", "projectId-not-the-keys"],
)
async def test_another_projects_task_cannot_be_deleted(
    api: Api, project: str, key: str, status: int
) -> None:
    _, created = await publish(api, publish_body(api))
    before = await api.event_count()
    answer = await delete(api, created["taskId"], getattr(api, project), getattr(api, key))
    assert answer[0] == status
    assert await api.event_count() == before
    assert (await api.call("GET", f"/api/tasks/{created['taskId']}"))[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Authorization": "Bearer ts_nope_nope", "Content-Type": "application/json"},
        {"Authorization": "Basic dXNlcjpwYXNz", "Content-Type": "application/json"},
    ],
    ids=["missing", "unknown-key", "wrong-scheme"],
)
async def test_publish_without_valid_credentials_is_401(api: Api, headers: dict[str, str]) -> None:
    before = await api.event_count()
    async with api.session.post(
        api.base + "/publish", json=publish_body(api), headers=headers
    ) as r:
        assert r.status == 401
        assert set(await r.json()) <= ERROR_FIELDS
    assert await api.event_count() == before


async def test_publish_for_another_project_than_the_key_is_401(api: Api) -> None:
    before = await api.event_count()
    body = {**publish_body(api), "projectId": api.project_b}
    status, answer = await publish(api, body, key=api.key_a)
    assert status == 401 and "projectId" in answer["message"]
    assert await api.event_count() == before


def _with(path: str, value: Any) -> Any:
    """A mutation of the example: set (or, with None, drop) one dotted field."""

    def mutate(body: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_with("body.body", "x" * (10 * 1024 + 1)), "body.body"),
        (_with("timestamp", "next tuesday"), "timestamp"),
        (_with("timestamp", "2030-01-01T12:00:00"), "timestamp"),
        (_with("timestamp", "10000-01-01T00:00:00Z"), "timestamp"),
        (_with("projectId", None), "projectId"),
        (_with("body.callbackUrl", None), "body.callbackUrl"),
        (_with("body.callbackUrl", "ftp://example.com/x"), "body.callbackUrl"),
        (_with("body.callbackUrl", "not a url"), "body.callbackUrl"),
        (_with("body.callbackUrl", "http://10.0.0.5/hook"), "body.callbackUrl"),
        (_with("body.callbackUrl", "http://169.254.169.254/latest"), "body.callbackUrl"),
        (_with("body.callbackUrl", "http://localhost/hook"), "body.callbackUrl"),
        (_with("body.callbackUrl", "https://user:pw@example.com/"), "body.callbackUrl"),
        (_with("body.method", "FETCH"), "body.method"),
        (_with("body.headers", {"Bad Name": "x"}), "body.headers"),
        (_with("body.body", {"key": "value"}), "body.body"),
        (_with("body.taskTag", ""), "body.taskTag"),
        (_with("body.delay", 5), "body.delay"),
    ],
    ids=[
        "body-over-10KB",
        "timestamp-not-a-time",
        "timestamp-without-offset",
        "timestamp-out-of-range",
        "projectId-missing",
        "callbackUrl-missing",
        "callbackUrl-ftp",
        "callbackUrl-garbage",
        "callbackUrl-private-address",
        "callbackUrl-metadata",
        "callbackUrl-localhost",
        "callbackUrl-credentials",
        "method-unknown",
        "header-name-invalid",
        "body-not-a-string",
        "taskTag-empty",
        "unknown-field",
    ],
)
async def test_bad_publish_is_400_naming_the_field_and_writes_nothing(
    pool: asyncpg.Pool, mutate: Any, field: str
) -> None:
    # No loopback allowance here: the SSRF guard's defaults apply.
    async with running_api(pool) as api:
        body = publish_body(api)
        mutate(body)
        before = await api.event_count()
        status, answer = await publish(api, body)
        assert status == 400, answer
        assert answer["field"] == field and answer["message"], answer
        assert await api.event_count() == before


async def test_malformed_json_is_400(api: Api) -> None:
    async with api.session.post(
        api.base + "/publish", data=b'{"timestamp": ', headers=bearer(api.key_a)
    ) as r:
        assert r.status == 400
        assert "malformed JSON" in (await r.json())["message"]


async def test_concurrent_publishes_each_get_their_own_task(api: Api) -> None:
    answers = await asyncio.gather(*(publish(api, publish_body(api)) for _ in range(10)))
    assert {s for s, _ in answers} == {200}
    assert len({a["taskId"] for _, a in answers}) == 10
