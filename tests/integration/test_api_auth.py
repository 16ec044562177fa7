"""Authentication and tenant isolation on /api."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import jwt
import pytest

from infra.project_store import revoke_key
from tests.integration.api_harness import JWT_SECRET, Api, running_api
from tests.integration.test_api_tasks import create, http_task


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, auth_cache_seconds=0.0) as a:
        yield a


def token(project_id: str, **overrides: Any) -> str:
    claims = {
        "project_id": project_id,
        "sub": "user-1",
        "aud": "taskstream",
        "exp": int(time.time()) + 300,
    }
    claims.update(overrides)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, JWT_SECRET, algorithm="HS256"
    )


async def status_with(api: Api, authorization: str | None) -> tuple[int, Any, Any]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with api.session.get(api.base + "/api/tasks", headers=headers) as r:
        return r.status, await r.json(), r.headers


async def test_every_accepted_credential_form(api: Api) -> None:
    for header in (
        f"ApiKey {api.key_a}",
        f"Bearer {api.key_a}",
        f"apikey {api.key_a}",
        f"Bearer {token(api.project_a)}",
    ):
        status, body, _ = await status_with(api, header)
        assert status == 200, (header[:12], body)


@pytest.mark.parametrize(
    "make_header",
    [
        lambda api: None,
        lambda api: "",
        lambda api: "Bearer",
        lambda api: "Bearer ",
        lambda api: "Basic dXNlcjpwYXNz",
        lambda api: f"ApiKey {api.key_a[:-1]}{'0' if api.key_a[-1] != '0' else '1'}",
        lambda api: f"ApiKey {api.key_a}extra",
        lambda api: "ApiKey ts_000000000000_" + "0" * 64,
        lambda api: "Bearer not.a.jwt",
        lambda api: "Bearer " + token(api.project_a, exp=int(time.time()) - 120),
        lambda api: "Bearer " + token(api.project_a, nbf=int(time.time()) + 600),
        lambda api: "Bearer " + token(api.project_a, aud="someone-else"),
        lambda api: "Bearer " + token(api.project_a, aud=None),
        lambda api: "Bearer " + token(api.project_a, exp=None),
        lambda api: "Bearer " + token(None),  # type: ignore[arg-type]
        lambda api: (
            "Bearer "
            + jwt.encode(
                {"project_id": api.project_a, "aud": "taskstream", "exp": int(time.time()) + 60},
                "wrong-secret-of-enough-length-123456",
                algorithm="HS256",
            )
        ),
        lambda api: (
            "Bearer "
            + jwt.encode(
                {"project_id": api.project_a, "aud": "taskstream", "exp": int(time.time()) + 60},
                None,
                algorithm="none",
            )
        ),
        lambda api: (
            "Bearer "
            + jwt.encode(
                {"project_id": api.project_a, "aud": "taskstream", "exp": int(time.time()) + 60},
                JWT_SECRET,
                algorithm="HS512",
            )
        ),
        lambda api: "Bearer " + "a" * 5000,
    ],
)
async def test_bad_credentials_get_a_uniform_401(api: Api, make_header: Any) -> None:
    status, body, headers = await status_with(api, make_header(api))
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert "WWW-Authenticate" in headers


async def test_jwt_refused_when_no_secret_is_configured(pool: asyncpg.Pool) -> None:
    async with running_api(pool, jwt_secret=None) as api:
        status, body, _ = await status_with(api, f"Bearer {token(api.project_a)}")
        assert status == 401 and "not enabled" in body["error"]["message"]


async def test_revoked_key_stops_working(api: Api) -> None:
    assert (await status_with(api, f"ApiKey {api.key_a}"))[0] == 200
    async with api.pool.acquire() as conn:
        await revoke_key(conn, api.key_a.split("_")[1])
    assert (await status_with(api, f"ApiKey {api.key_a}"))[0] == 401


async def test_keys_are_stored_only_as_digests(api: Api) -> None:
    rows = await api.pool.fetch("SELECT * FROM api_keys")
    dump = repr([dict(r) for r in rows])
    for key in (api.key_a, api.key_b):
        assert key not in dump and key.split("_")[2] not in dump


async def test_another_projects_task_is_not_found_everywhere(api: Api) -> None:
    task = await create(api, http_task(checkpoint_enabled=True))
    tid = task["id"]
    b = api.key_b
    probes = [
        ("GET", f"/api/tasks/{tid}", None),
        ("PUT", f"/api/tasks/{tid}", {"name": "stolen"}),
        ("PATCH", f"/api/tasks/{tid}", {"name": "stolen"}),
        ("DELETE", f"/api/tasks/{tid}", None),
        ("POST", f"/api/tasks/{tid}/cancel", None),
        ("POST", f"/api/tasks/{tid}/retry", None),
        ("GET", f"/api/tasks/{tid}/logs", None),
        ("POST", f"/api/tasks/{tid}/checkpoint", {"checkpoint_data": {"x": 1}}),
    ]
    before = await api.event_count()
    for method, path, body in probes:
        status, payload, _ = await api.call(method, path, key=b, json=body)
        assert status == 404, (method, path, payload)
    # A JWT naming project B is held to the same wall.
    status, _, _ = await api.call(
        "GET", f"/api/tasks/{tid}", headers={"Authorization": f"Bearer {token(api.project_b)}"}
    )
    assert status == 404
    assert await api.event_count() == before
    _, listing, _ = await api.call("GET", "/api/tasks", key=b)
    assert listing["data"] == [] and listing["meta"]["total"] == 0
    _, mine, _ = await api.call("GET", f"/api/tasks/{tid}")
    assert mine["data"]["name"] == "Example Task" and mine["data"]["status"] == "pending"
