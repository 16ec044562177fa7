"""Seed 001's `/messages` and `/health` against a real gateway, PostgreSQL, receiver and brokers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.integration.api_harness import Api, running_api
from tests.integration.callback_rig import callbacks_running
from tests.integration.processes import free_port

# The document's .env value, set as TASKSTREAM_API_TOKEN.
TOKEN = "your-secret-token-here"
AS_WRITTEN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, api_token=TOKEN, egress_allow_cidrs="127.0.0.0/8") as a:
        yield a


def message(**fields: Any) -> dict[str, Any]:
    """The document's example body; None drops a field."""
    body = {
        "id": "unique-message-id",
        "scheduleTo": "2024-12-25T10:30:00Z",
        "payload": {"data": "your webhook payload"},
        "webhookUrl": "https://your-webhook-endpoint.com",
        **fields,
    }
    return {k: v for k, v in body.items() if v is not None}


async def call(
    api: Api, method: str, path: str, key: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    """A request with the static token, or with `key` as the Bearer project key."""
    headers = AS_WRITTEN if key is None else {"Authorization": f"Bearer {key}"}
    status, answer, _ = await api.call(method, path, headers=headers, **kwargs)
    return status, answer


async def test_example_requests_as_written(api: Api) -> None:
    status, answer = await call(api, "POST", "/messages", json=message())
    assert (status, answer) == (200, {"status": "scheduled", "messageId": "unique-message-id"})
    status, listing = await call(api, "GET", "/messages")
    assert status == 200 and listing["count"] == 1
    (job,) = listing["scheduledJobs"]
    assert job["messageId"] == "unique-message-id"
    assert job["webhookUrl"] == "https://your-webhook-endpoint.com"
    # Its time is past: it is due now, kept as written so the run is recorded as late.
    assert job["nextRun"] == "2024-12-25T10:30:00Z"
    status, answer = await call(api, "DELETE", "/messages/unique-message-id")
    assert (status, answer) == (200, {"status": "deleted", "messageId": "unique-message-id"})
    assert await call(api, "GET", "/messages") == (200, {"scheduledJobs": [], "count": 0})


async def test_health_as_written_needs_no_auth(api: Api) -> None:
    async with api.session.get(api.base + "/health") as r:
        assert r.status == 200
        # No broker URL: the embedded broker of `taskstream dev` has nothing to probe.
        # The embedded broker is a Redis: the document's key is there too.
        assert await r.json() == {
            "status": "healthy",
            "database": "connected",
            "broker": "unknown",
            "redis": "unknown",
        }


@pytest.mark.parametrize(
    "broker_url",
    ["redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672/%2F"],
    ids=["redis", "rabbitmq"],
)
async def test_health_probes_the_broker(pool: asyncpg.Pool, broker_url: str) -> None:
    async with running_api(pool, broker_url=broker_url) as api:
        async with api.session.get(api.base + "/health") as r:
            assert r.status == 200
            expected = {"status": "healthy", "database": "connected", "broker": "connected"}
            if broker_url.startswith("redis"):
                expected["redis"] = "connected"  # the document's own key
            assert await r.json() == expected


async def test_health_is_503_when_the_broker_is_down(pool: asyncpg.Pool) -> None:
    async with running_api(pool, broker_url=f"redis://127.0.0.1:{free_port()}/0") as api:
        async with api.session.get(api.base + "/health") as r:
            assert r.status == 503
            body = await r.json()
    assert body == {
        "status": "unhealthy",
        "database": "connected",
        "broker": "disconnected",
        "redis": "disconnected",
    }


async def test_health_is_503_when_the_database_is_down(
    pool: asyncpg.Pool, fresh_dsn: str, server_dsn: str
) -> None:
    database = urlsplit(fresh_dsn).path.lstrip("/")  # the socket DSN has a host query
    async with running_api(pool) as api:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
            async with api.session.get(api.base + "/health") as r:
                assert r.status == 503
                body = await r.json()
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            await admin.close()
    assert body == {
        "status": "unhealthy",
        "database": "disconnected",
        "broker": "unknown",
        "redis": "unknown",
    }


async def test_webhook_fires_once_at_schedule_to_and_leaves_the_list(api: Api) -> None:
    async with callbacks_running(api) as receiver:
        due = datetime.now(UTC) + timedelta(seconds=1)
        body = message(
            id="m-1", scheduleTo=due.isoformat(), webhookUrl=receiver.url + "/hook",
            payload={"data": [1, "two", None]},
        )  # fmt: skip
        assert (await call(api, "POST", "/messages", json=body))[0] == 200
        listed = (await call(api, "GET", "/messages"))[1]["scheduledJobs"]
        assert [j["messageId"] for j in listed] == ["m-1"]
        (hook,) = await receiver.wait_for("/hook", 1, timeout=10)
        task_id = await api.pool.fetchval("SELECT task_id FROM task_view WHERE name = 'm-1'")
        await wait_for_status(api, task_id, "completed")
    assert hook.at >= due.timestamp() - 0.01 and hook.at - due.timestamp() < 2.0
    assert hook.method == "POST" and hook.headers["Content-Type"] == "application/json"
    assert json.loads(hook.body) == {"data": [1, "two", None]}
    assert len(receiver.calls("/hook")) == 1
    types = await api.pool.fetch(
        "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"task-{task_id}"
    )
    assert [r["type"] for r in types].count("task.started") == 1
    assert await call(api, "GET", "/messages") == (200, {"scheduledJobs": [], "count": 0})
    # Executed, so gone: deleting is a 404, and the id may be used again.
    assert (await call(api, "DELETE", "/messages/m-1"))[0] == 404
    assert (await call(api, "POST", "/messages", json=body))[0] == 200


async def wait_for_status(api: Api, task_id: str, status: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await api.pool.fetchval("SELECT status FROM task_view WHERE task_id = $1", task_id) == (
            status
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {status}")


async def test_an_existing_id_is_409_and_writes_nothing(api: Api) -> None:
    assert (await call(api, "POST", "/messages", json=message()))[0] == 200
    before = await api.event_count()
    status, answer = await call(api, "POST", "/messages", json=message(payload={"other": 1}))
    assert status == 409 and "unique-message-id" in answer["detail"]
    assert await api.event_count() == before


async def test_concurrent_creates_of_one_id_give_one_message(api: Api) -> None:
    body = message(scheduleTo="2099-01-01T00:00:00Z")
    answers = await asyncio.gather(*(call(api, "POST", "/messages", json=body) for _ in range(8)))
    assert sorted(s for s, _ in answers) == [200] + [409] * 7
    assert await api.pool.fetchval("SELECT count(*) FROM task_view") == 1


async def test_a_deleted_id_can_be_scheduled_again(api: Api) -> None:
    body = message(scheduleTo="2099-01-01T00:00:00Z")
    assert (await call(api, "POST", "/messages", json=body))[0] == 200
    assert (await call(api, "DELETE", "/messages/unique-message-id"))[0] == 200
    assert (await call(api, "DELETE", "/messages/unique-message-id"))[0] == 404
    assert (await call(api, "POST", "/messages", json=body))[0] == 200
    assert (await call(api, "GET", "/messages"))[1]["count"] == 1


async def test_unknown_id_delete_is_404(api: Api) -> None:
    before = await api.event_count()
    assert await call(api, "DELETE", "/messages/nope") == (404, {"detail": "Message not found"})
    assert await api.event_count() == before


async def test_ids_are_per_project(api: Api) -> None:
    body = message(scheduleTo="2099-01-01T00:00:00Z")
    assert (await call(api, "POST", "/messages", key=api.key_a, json=body))[0] == 200
    # The same id in another project is another message; neither sees the other's.
    assert (await call(api, "GET", "/messages", key=api.key_b))[1]["count"] == 0
    assert (await call(api, "DELETE", "/messages/unique-message-id", key=api.key_b))[0] == 404
    assert (await call(api, "POST", "/messages", key=api.key_b, json=body))[0] == 200
    assert (await call(api, "DELETE", "/messages/unique-message-id", key=api.key_b))[0] == 200
    listing = (await call(api, "GET", "/messages", key=api.key_a))[1]
    assert [j["messageId"] for j in listing["scheduledJobs"]] == ["unique-message-id"]
    # The static token acts for the `default` project, a third one.
    assert (await call(api, "GET", "/messages"))[1]["count"] == 0


async def test_tasks_of_other_surfaces_are_not_messages(api: Api) -> None:
    task = {"name": "t", "action": {"kind": "http", "url": "https://example.com/"}}
    assert (await api.call("POST", "/api/tasks", json=task))[0] == 201
    assert (await call(api, "GET", "/messages", key=api.key_a))[1]["count"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer your-secret-token-herE"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong-token", "wrong-scheme", "empty-token"],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/messages"), ("POST", "/messages"),
                                              ("DELETE", "/messages/x")])  # fmt: skip
async def test_bad_credentials_are_401(
    api: Api, headers: dict[str, str], method: str, path: str
) -> None:
    before = await api.event_count()
    async with api.session.request(method, api.base + path, json=message(), headers=headers) as r:
        assert r.status == 401
        assert set(await r.json()) == {"detail"}
    assert await api.event_count() == before


async def test_without_a_configured_token_only_keys_work(pool: asyncpg.Pool) -> None:
    async with running_api(pool) as api:
        assert (await call(api, "GET", "/messages"))[0] == 401
        assert (await call(api, "GET", "/messages", key=api.key_a))[0] == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (message(id=None), "id"),
        (message(scheduleTo=None), "scheduleTo"),
        (message(payload=None), "payload"),
        (message(webhookUrl=None), "webhookUrl"),
        (message(id=""), "id"),
        (message(id="a/b"), "id"),
        (message(id="x" * 201), "id"),
        (message(scheduleTo="tomorrow at ten"), "scheduleTo"),
        (message(scheduleTo="2030-01-01T10:30:00"), "scheduleTo"),
        (message(scheduleTo=12345), "scheduleTo"),
        (message(scheduleTo="9999-12-31T00:00:00Z"), "scheduleTo"),
        (message(webhookUrl="not a url"), "webhookUrl"),
        (message(webhookUrl="file:///etc/passwd"), "webhookUrl"),
        (message(webhookUrl="http://192.168.1.1/hook"), "webhookUrl"),
        (message(webhookUrl="http://169.254.169.254/latest/meta-data"), "webhookUrl"),
        (message(webhookUrl="http://[::1]:8080/"), "webhookUrl"),
        (message(payload={"blob": "x" * 10240}), "payload"),
        (message(extra=True), "extra"),
    ],
    ids=[
        "id-missing",
        "scheduleTo-missing",
        "payload-missing",
        "webhookUrl-missing",
        "id-empty",
        "id-with-slash",
        "id-too-long",
        "scheduleTo-not-a-time",
        "scheduleTo-without-offset",
        "scheduleTo-a-number",
        "scheduleTo-year-9999",
        "webhookUrl-garbage",
        "webhookUrl-file",
        "webhookUrl-private-address",
        "webhookUrl-metadata",
        "webhookUrl-loopback",
        "payload-over-10KB",
        "unknown-field",
    ],
)
async def test_bad_message_is_422_naming_the_field_and_writes_nothing(
    pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    # No loopback allowance here: the SSRF guard's defaults apply.
    async with running_api(pool, api_token=TOKEN) as api:
        before = await api.event_count()
        status, answer = await call(api, "POST", "/messages", json=body)
        assert status == 422, answer
        (issue,) = answer["detail"]
        assert issue["loc"] == ["body", field] and issue["msg"], answer
        assert await api.event_count() == before


async def test_malformed_json_is_400(api: Api) -> None:
    headers = {**AS_WRITTEN, "Content-Type": "application/json"}
    async with api.session.post(api.base + "/messages", data=b"{", headers=headers) as r:
        assert r.status == 400
        assert "malformed JSON" in (await r.json())["detail"]


async def test_the_static_token_is_never_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    assert (await call(api, "POST", "/messages", json=message()))[0] == 200
    assert (await call(api, "POST", "/messages", json=message()))[0] == 409
    assert (await call(api, "GET", "/messages", key=TOKEN + "x"))[0] == 401
    assert caplog.records, "nothing was captured: the check would prove nothing"
    assert TOKEN not in caplog.text
