"""A real gateway on a loopback port over a fresh database, with two projects to probe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

from infra.project_store import create_project
from infra.secret_store import Keyring, TaskSecretStore, generate_key, parse_key
from infra.settings import Settings
from services.gateway.app import build_app

JWT_SECRET = "test-secret-at-least-32-bytes-long!!"
# One key for every in-process gateway, executor and deliverer of the test session.
SECRETS_KEY = generate_key()


def session_keyring() -> Keyring:
    return Keyring(parse_key(SECRETS_KEY))


def session_secret_store(pool: asyncpg.Pool) -> TaskSecretStore:
    return TaskSecretStore(pool, session_keyring())


@dataclass
class Api:
    base: str
    session: aiohttp.ClientSession
    pool: asyncpg.Pool
    app: Any
    project_a: str
    key_a: str
    project_b: str
    key_b: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"ApiKey {key or self.key_a}"}

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        all_headers = {**self.auth(key), **(headers or {})}
        async with self.session.request(
            method, self.base + path, headers=all_headers, **kwargs
        ) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, body, r

    async def event_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM events"))


@asynccontextmanager
async def running_api(pool: asyncpg.Pool, **settings: Any) -> AsyncIterator[Api]:
    defaults: dict[str, Any] = {
        "jwt_secret": JWT_SECRET,
        "max_body_bytes": 64 * 1024,
        "secrets_key": SECRETS_KEY,
    }
    app = build_app(Settings(**{**defaults, **settings}), pool)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with pool.acquire() as conn:
        a = await create_project(conn, "project-a")
        b = await create_project(conn, "project-b")
    async with aiohttp.ClientSession() as session:
        try:
            yield Api(
                base=str(server.make_url("")).rstrip("/"),
                session=session,
                pool=pool,
                app=app,
                project_a=a.project_id,
                key_a=a.api_key,
                project_b=b.project_id,
                key_b=b.api_key,
            )
        finally:
            await server.close()
