"""Callback headers on every surface: framing headers refused in each surface's own error shape
(issue 10 §2), values write-only, an update replacing them and a delete shredding them (§1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain.actions import HttpAction
from infra.json_codec import decode_state
from services.surfaces.kit.context import CONTEXT
from tests.integration.api_harness import Api, running_api
from tests.integration.callback_rig import callbacks_running
from tests.integration.test_agent_tasks import agent_task
from tests.integration.test_publish_surface import bearer, publish_body
from tests.integration.test_workers import eventually

FRAMING = [
    ({"Transfer-Encoding": "chunked"}, "'Transfer-Encoding'"),
    ({"Content-Length": "999999"}, "'Content-Length'"),
    ({"Host": "internal.example"}, "'Host'"),
    ({"Connection": "close"}, "'Connection'"),
    ({"Keep-Alive": "timeout=5"}, "'Keep-Alive'"),
    ({"Upgrade": "websocket"}, "'Upgrade'"),
    ({"TE": "trailers"}, "'TE'"),
    ({"Trailer": "X-Sum"}, "'Trailer'"),
    ({"Proxy-Authorization": "Basic x"}, "'Proxy-Authorization'"),
    ({"X Bad": "v"}, "'X Bad'"),
    ({"X-Split": "a\r\nX-Injected: 1"}, "'X-Split'"),
    ({"X-Nul": "a\u0000b"}, "'X-Nul'"),
    ({f"X-{i}": "v" for i in range(51)}, "at most 50"),
    ({"X-Big": "v" * 8200}, "8192"),
]
IDS = [next(iter(h))[:20] if len(h) == 1 else "51-headers" for h, _ in FRAMING]


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, egress_allow_cidrs="127.0.0.0/8") as a:
        yield a


def _http(url: str, headers: dict[str, str]) -> dict[str, Any]:
    return {"kind": "http", "url": url, "method": "POST", "headers": headers}


def _names(status: int, field: str, message: str, want: str, named: str) -> None:
    """A 4xx whose field is (under) the surface's headers field and whose message names it.

    The gateway's body reader refuses a NUL anywhere with 400 before validation; every other
    refusal comes from the one header rule (domain/http_headers.py) as the surface's 422/400.
    """
    assert 400 <= status < 500 and (field == want or field.startswith(want + ".")), field
    assert named.strip("'") in message, message


async def _refused_everywhere(api: Api, headers: dict[str, str], named: str) -> None:
    before = await api.event_count()
    url = "https://example.com/hook"
    status, body, _ = await api.call(
        "POST", "/api/tasks", json={"name": "t", "action": _http(url, headers)}
    )
    error = body["error"]
    _names(status, error["details"]["field"], error["message"], "action.headers", named)
    publish = publish_body(api, headers=headers)
    status, body, _ = await api.call("POST", "/publish", json=publish, headers=bearer(api.key_a))
    _names(status, body["field"], body["message"], "body.headers", named)
    agent = agent_task(payload={"action": _http(url, headers)})
    status, body, _ = await api.call("POST", "/tasks", json=agent)
    _names(status, body["field"], body["message"], "payload.action.headers", named)
    assert await api.event_count() == before


@pytest.mark.parametrize(("headers", "named"), FRAMING, ids=IDS)
async def test_headers_that_change_framing_are_refused_on_create_on_every_surface(
    api: Api, headers: dict[str, str], named: str
) -> None:
    await _refused_everywhere(api, headers, named)


@pytest.mark.parametrize(
    ("headers", "named"), FRAMING[:3] + FRAMING[10:12], ids=IDS[:3] + IDS[10:12]
)
async def test_and_on_update_on_every_surface(
    api: Api, headers: dict[str, str], named: str
) -> None:
    url = "https://example.com/hook"
    status, created, _ = await api.call(
        "POST", "/api/tasks", json={"name": "t", "action": _http(url, {})}
    )
    assert status == 201
    status, agent, _ = await api.call("POST", "/tasks", json=agent_task())
    assert status == 201
    before = await api.event_count()
    for method in ("PATCH", "PUT"):
        status, body, _ = await api.call(
            method, f"/api/tasks/{created['data']['id']}", json={"action": _http(url, headers)}
        )
        error = body["error"]
        _names(status, error["details"]["field"], error["message"], "action.headers", named)
    status, body, _ = await api.call(
        "PUT", f"/tasks/{agent['id']}", json={"payload": {"action": _http(url, headers)}}
    )
    _names(status, body["field"], body["message"], "payload.action.headers", named)
    assert await api.event_count() == before


async def _stored(api: Api) -> str:
    rows = await api.pool.fetch("SELECT data::text FROM events")
    views = await api.pool.fetch("SELECT state::text FROM task_view")
    return "\n".join(r[0] for r in [*rows, *views])


async def test_values_are_write_only_an_update_replaces_them_and_a_delete_shreds_them(
    api: Api,
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with callbacks_running(api) as receiver:
        headers = {"Authorization": "Bearer FIRST-1", "X-Trace": "TRACE-2"}
        status, body, _ = await api.call(
            "POST",
            "/api/tasks",
            json={
                "name": "t",
                "action": _http(receiver.url + "/cb", headers),
                "scheduled_at": later,
            },
        )
        assert status == 201, body
        task = body["data"]
        assert task["action"]["headers"] == {"Authorization": "***", "X-Trace": "***"}
        first_ref = task["action"]["secret_ref"]
        assert "FIRST-1" not in await _stored(api)

        # Sending back what GET showed changes nothing and writes nothing.
        events = await api.event_count()
        status, got, _ = await api.call("GET", f"/api/tasks/{task['id']}")
        status, same, _ = await api.call(
            "PATCH", f"/api/tasks/{task['id']}", json={"action": got["data"]["action"]}
        )
        assert status == 200 and await api.event_count() == events
        assert same["data"]["action"]["secret_ref"] == first_ref

        # A new value replaces; `***` keeps the stored one; a forged reference is ignored.
        new = {"Authorization": "Bearer SECOND-3", "X-Trace": "***"}
        action = {**_http(receiver.url + "/cb", new), "secret_ref": "sec_forged"}
        status, updated, _ = await api.call(
            "PATCH",
            f"/api/tasks/{task['id']}",
            json={"action": action, "scheduled_at": datetime.now(UTC).isoformat()},
        )
        assert status == 200, updated
        ref = updated["data"]["action"]["secret_ref"]
        assert ref not in (first_ref, "sec_forged")
        rows = await api.pool.fetch("SELECT ref FROM task_secrets WHERE task_id = $1", task["id"])
        assert [r["ref"] for r in rows] == [ref]  # the first values are destroyed
        (call,) = await receiver.wait_for("/cb", 1, timeout=15)
        assert call.headers["Authorization"] == "Bearer SECOND-3"
        assert call.headers["X-Trace"] == "TRACE-2"
        stored = await _stored(api)
        assert not any(v in stored for v in ("FIRST-1", "SECOND-3", "TRACE-2"))

        status, _, _ = await api.call("DELETE", f"/api/tasks/{task['id']}")
        assert status in (200, 204)
        assert await api.pool.fetchval("SELECT count(*) FROM task_secrets") == 0
        tokens = await api.pool.fetch("SELECT * FROM task_secrets")
        assert tokens == []


async def test_a_run_whose_values_were_destroyed_fails_without_sending_them(api: Api) -> None:
    async with callbacks_running(api) as receiver:
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        status, body, _ = await api.call(
            "POST",
            "/api/tasks",
            json={
                "name": "t",
                "action": _http(receiver.url + "/gone", {"Authorization": "Bearer X"}),
                "scheduled_at": soon,
                "max_retries": 0,
            },
        )
        assert status == 201
        task_id = body["data"]["id"]
        await api.pool.execute("DELETE FROM task_secrets WHERE task_id = $1", task_id)
        tasks = api.app[CONTEXT].tasks

        async def failed() -> bool:
            state = await tasks.get(api.project_a, task_id)
            return state.run_status == "failed"

        await eventually(failed, timeout=15)
        state = decode_state(
            await api.pool.fetchval("SELECT state::text FROM task_view WHERE task_id = $1", task_id)
        )
        assert isinstance(state.definition.action, HttpAction)
        assert state.error and "header values" in state.error
        assert receiver.calls("/gone") == []


async def test_webhook_and_notify_secrets_are_sealed_at_rest(api: Api) -> None:
    status, body, _ = await api.call("POST", "/api/webhooks", json={"url": "https://example.com/w"})
    assert status == 201, body
    shown = body["data"]["secret"]
    stored = await api.pool.fetchval("SELECT secret FROM webhook_endpoints")
    assert stored.startswith("ts1.") and shown not in stored
    status, body, _ = await api.call("GET", "/api/webhooks/notify-secret")
    assert status == 200
    notify = await api.pool.fetchval("SELECT secret FROM notify_secrets")
    assert notify.startswith("ts1.") and body["data"]["secret"] not in notify
