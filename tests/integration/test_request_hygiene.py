"""No 500 from any request (issue 10 §4): NUL bytes, huge pages, unknown words, odd ids, JWTs
for projects that do not exist, credential guessing, unknown paths.

Each refusal is a 4xx in the surface's own error shape, before anything is queried or written.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import jwt
import pytest

from tests.integration.api_harness import JWT_SECRET, Api, running_api
from tests.integration.test_api_tasks import http_task

NUL = "a%00b"


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, api_token="static-token") as a:
        yield a


async def operations(api: Api) -> list[tuple[str, str]]:
    """(method, path template) of every operation the server documents."""
    async with api.session.get(api.base + "/openapi.json") as r:
        assert r.status == 200
        document = await r.json()
    return [(m.upper(), p) for p, item in document["paths"].items() for m in item]


def field_of(body: Any) -> str | None:
    """The field an error names, whichever surface's shape it has."""
    if isinstance(body.get("error"), dict):
        error = body["error"]
        return error.get("field") or error.get("details", {}).get("field")
    if "detail" in body:
        detail = body["detail"]
        # Seed 001 names the field only in a 422's list; other answers say it in the message.
        return detail[0]["loc"][-1] if isinstance(detail, list) else detail.partition(":")[0]
    return body.get("field")


async def test_nul_in_a_path_segment_or_query_value_is_a_400_on_every_route(api: Api) -> None:
    probed = 0
    for method, template in await operations(api):
        if "{" in template:
            path = re.sub(r"\{(?!id\})\w+\}", "x", template).replace("{id}", NUL)
            status, body, _ = await api.call(method, path)
            assert status == 400, (method, path, status, body)
            assert field_of(body) == "id", (method, path, body)
            probed += 1
        plain = re.sub(r"\{\w+\}", "x", template)
        status, body, _ = await api.call(method, plain + f"?q={NUL}")
        assert status == 400, (method, template, status, body)
        assert field_of(body) == "q", (method, template, body)
        probed += 1
    assert probed > 40
    assert await api.event_count() == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/tasks?page=999999999999999999&limit=100", "page"),
        ("/api/tasks?page=10001", "page"),
        ("/api/tasks?limit=1000000000000000000000", "limit"),
        ("/api/workers?page=999999999999999999", "page"),
        ("/api/workers/w-1/tasks?page=999999999999999999", "page"),
        ("/api/webhooks?page=999999999999999999", "page"),
        ("/api/webhooks/wh_x/deliveries?page=999999999999999999", "page"),
        ("/api/tasks/t-1/logs?offset=9223372036854775808", "offset"),
        ("/tasks?offset=99999999999999999999", "offset"),
        ("/tasks?offset=9223372036854775807&limit=200", "offset"),
        ("/tasks?offset=1000001", "offset"),
        ("/tasks?offset=-1", "offset"),
    ],
)
async def test_page_limit_and_offset_are_bounded(api: Api, path: str, field: str) -> None:
    status, body, _ = await api.call("GET", path)
    assert status == 422, body
    assert field_of(body) == field


async def test_the_largest_allowed_page_and_offset_answer(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/tasks?page=10000&limit=100")
    assert (status, body["data"]) == (200, [])
    status, body, _ = await api.call("GET", "/tasks?offset=1000000&limit=200")
    assert (status, body["tasks"]) == (200, [])


async def test_an_unknown_status_word_is_a_422(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/tasks?status=bogus")
    assert status == 422, body
    assert field_of(body) == "status" and "pending" in body["error"]["message"]
    status, body, _ = await api.call("GET", "/api/tasks?status=completed")
    assert status == 200, body


def message(message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "scheduleTo": "2099-01-01T00:00:00Z",
        "payload": {},
        "webhookUrl": "https://example.com/hook",
    }


@pytest.mark.parametrize("message_id", ["..", ".", ".hidden", "a b", "a\\b", "é", "a?b", "x" * 129])
async def test_message_ids_outside_the_documented_charset_are_refused(
    api: Api, message_id: str
) -> None:
    status, body, _ = await api.call("POST", "/messages", json=message(message_id))
    assert status == 422, body
    assert body["detail"][0]["loc"] == ["body", "id"]
    assert await api.event_count() == 0


async def test_message_ids_inside_the_charset_are_accepted(api: Api) -> None:
    for message_id in ["unique-message-id", "a.b_c~1", "A" * 128, "2026-12-01T10:00"]:
        status, body, _ = await api.call("POST", "/messages", json=message(message_id))
        assert status == 200, (message_id, body)
    status, body, _ = await api.call("DELETE", "/messages/.hidden")
    assert (status, body) == (404, {"detail": "Message not found"})


def token(project_id: str) -> str:
    claims = {"project_id": project_id, "aud": "taskstream", "exp": int(time.time()) + 300}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def test_a_jwt_naming_a_project_that_does_not_exist_is_a_401(api: Api) -> None:
    for method, path, body in [
        ("GET", "/api/tasks", None),
        ("POST", "/api/tasks", http_task()),
        ("POST", "/tasks", None),
    ]:
        status, answer, _ = await api.call(
            method,
            path,
            json=body,
            headers={"Authorization": f"Bearer {token('no-such-project')}"},
        )
        assert status == 401, (path, answer)
    status, answer, _ = await api.call(
        "GET", "/api/tasks", headers={"Authorization": f"Bearer {token(api.project_a)}"}
    )
    assert status == 200, answer
    assert await api.event_count() == 0


async def test_failed_authentication_is_throttled_per_client_address(pool: asyncpg.Pool) -> None:
    async with running_api(pool, auth_failure_burst=5, auth_failure_per_second=0.1) as api:
        for _ in range(5):
            status, _, _ = await api.call("GET", "/api/tasks", key="ts_0000_guess")
            assert status == 401
        status, body, response = await api.call("GET", "/api/tasks", key="ts_0000_guess")
        assert status == 429, body
        assert body["error"]["code"] == "too_many_failed_authentications"
        assert int(response.headers["Retry-After"]) >= 1
        # The address is throttled on every surface, even with a valid key, until it cools down.
        assert (await api.call("GET", "/api/tasks"))[0] == 429
        status, body, _ = await api.call("GET", "/tasks")
        assert (status, body["error"]) == (429, "too_many_failed_authentications")


async def test_successful_authentication_is_not_throttled(pool: asyncpg.Pool) -> None:
    async with running_api(pool, auth_failure_burst=2, auth_failure_per_second=0.1) as api:
        for _ in range(20):
            assert (await api.call("GET", "/api/tasks"))[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/api/nope", 404, "not_found"),
        ("GET", "/tasks/x/nope", 404, "not_found"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("PATCH", "/messages", 405, "method_not_allowed"),
    ],
)
async def test_unknown_paths_answer_json_in_the_canonical_shape(
    api: Api, method: str, path: str, status: int, code: str
) -> None:
    async with api.session.request(method, api.base + path) as r:
        assert r.status == status
        assert r.content_type == "application/json"
        body = await r.json()
    assert body["error"]["code"] == code and body["error"]["message"]
