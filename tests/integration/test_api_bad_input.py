"""Bad input on /api: a 4xx error object naming the field, and nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.integration.api_harness import Api, running_api
from tests.integration.test_api_tasks import create, http_task


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, max_body_bytes=16 * 1024) as a:
        yield a


async def post_raw(
    api: Api, data: bytes, content_type: str = "application/json"
) -> tuple[int, Any]:
    headers = {**api.auth(), "Content-Type": content_type}
    async with api.session.post(api.base + "/api/tasks", data=data, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b'{"name": "x",', "application/json", 400, "invalid_json"),
        (b'{"name": "x",}', "application/json", 400, "invalid_json"),
        (b"[" * 10240, "application/json", 422, "validation_error"),
        (
            b'{"payload": ' + b"[" * 7000 + b"]" * 7000 + b"}",
            "application/json",
            400,
            "invalid_json",
        ),
        (b"", "application/json", 400, "invalid_json"),
        (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
        (b'{"name": "x", "priority": 1e309}', "application/json", 422, "validation_error"),
        (b'{"name": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b"name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"name": "' + b"x" * 20000 + b'"}', "application/json", 413, "payload_too_large"),
    ],
)
async def test_malformed_bodies(
    api: Api, data: bytes, content_type: str, status: int, code: str
) -> None:
    got_status, body = await post_raw(api, data, content_type)
    assert (got_status, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert await api.event_count() == 0


async def test_nul_character_is_refused_naming_the_field(api: Api) -> None:
    status, body = await post_raw(
        api, b'{"name": "a\\u0000b", "action": {"kind": "handler", "name": "h"}}'
    )
    assert status == 400 and body["error"]["details"]["field"] == "name"
    status, body = await post_raw(
        api,
        b'{"name": "ok", "action": {"kind": "handler", "name": "h"}, '
        b'"payload": {"deep": ["\\u0000"]}}',
    )
    assert status == 400 and body["error"]["details"]["field"] == "payload.deep[0]"
    assert await api.event_count() == 0


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"action": {"kind": "handler", "name": "h"}}, "name", "name"),
        (http_task(name=""), "name", "name"),
        (http_task(priority="high"), "priority", "int"),
        (http_task(priority=11), "priority", "between 1 and 10"),
        (http_task(priority=0), "priority", "between 1 and 10"),
        (http_task(sheduled_at="2099-01-01T00:00:00Z"), "sheduled_at", "unknown field"),
        (http_task(tags="a"), "tags", "array"),
        (http_task(timeout_seconds=0), "timeout_seconds", "timeout_seconds"),
        (http_task(max_retries=-1), "retry_policy.max_retries", "max_retries"),
        ({"name": "no action"}, "action", "action"),
        (http_task(command="ls"), "command", "either command or action"),
        (http_task(scheduled_at="2099-01-01T00:00:00"), "scheduled_at", "offset"),
        (http_task(scheduled_at="9999-01-01T00:00:00Z"), "scheduled_at", "9998"),
        (http_task(scheduled_at="not a date"), "scheduled_at", "datetime"),
        (
            http_task(
                scheduled_at="2099-01-01T00:00:00Z", schedule={"kind": "cron", "expr": "* * * * *"}
            ),
            "scheduled_at",
            "either",
        ),
        (http_task(schedule={"kind": "cron", "expr": "61 * * * *"}), "schedule.expr", "61"),
        (http_task(schedule={"kind": "cron", "expr": "* * *"}), "schedule.expr", "cron"),
        (http_task(schedule={"kind": "cron", "expr": "0 0 30 2 *"}), "schedule.expr", "never"),
        (
            http_task(schedule={"kind": "cron", "expr": "0 9 * * *", "timezone": "Mars/Olympus"}),
            "schedule.timezone",
            "Mars/Olympus",
        ),
        (
            http_task(schedule={"kind": "rrule", "expr": "FREQ=SECONDLY"}),
            "schedule.expr",
            "SECONDLY",
        ),
        (http_task(schedule={"kind": "rrule", "expr": "FREQ=NOPE"}), "schedule.expr", ""),
        (http_task(schedule={"kind": "interval", "expr": "0"}), "schedule.expr", ""),
        (http_task(schedule={"kind": "weekly", "expr": "x"}), "schedule.kind", ""),
        (
            http_task(action={"kind": "http", "url": "http://169.254.169.254/latest/meta-data"}),
            "action.url",
            "metadata",
        ),
        (http_task(action={"kind": "http", "url": "ftp://example.com/x"}), "action.url", "scheme"),
        (
            http_task(action={"kind": "http", "url": "https://example.com", "body": "x" * 10241}),
            "action.body",
            "10240",
        ),
        (
            http_task(action={"kind": "http", "url": "https://example.com", "method": "TRACE"}),
            "action.method",
            "",
        ),
        (http_task(action={"kind": "ftp"}), "action.kind", "ftp"),
        (http_task(dedupe_window_seconds=60), "dedupe_window_seconds", "dedupe_key"),
        (http_task(dependencies=["task-100"]), "dependencies", "unknown dependencies: task-100"),
    ],
)
async def test_validation_errors_name_the_field(
    api: Api, body: dict[str, Any], field: str, fragment: str
) -> None:
    status, payload, _ = await api.call("POST", "/api/tasks", json=body)
    assert status == 422, payload
    error = payload["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == field, error
    assert fragment.lower() in error["message"].lower(), error
    assert await api.event_count() == 0


async def test_bad_update_changes_nothing(api: Api) -> None:
    task = await create(api)
    before = await api.event_count()
    for body in ({"priority": 99}, {"schedule": {"kind": "cron", "expr": "nope"}}, {"id": "x"}):
        status, payload, _ = await api.call("PUT", f"/api/tasks/{task['id']}", json=body)
        assert status == 422, payload
    assert await api.event_count() == before
    _, got, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert got["data"] == task


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=101", "limit"), ("limit=0", "limit"), ("page=0", "page"), ("limit=abc", "limit"),
     ("sort=password", "sort"), ("order=sideways", "order"), ("bogus=1", "bogus")],
)  # fmt: skip
async def test_bad_list_queries(api: Api, query: str, field: str) -> None:
    status, payload, _ = await api.call("GET", f"/api/tasks?{query}")
    assert status == 422, payload
    assert payload["error"]["details"]["field"] == field
