"""The dashboard over HTTP (no browser): sessions, CSRF, headers, escaping, tenant isolation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from infra.project_store import revoke_key
from services.live.changes import task_topic
from tests.integration.api_harness import Api, running_api

XSS = "<img src=x onerror=alert(1)>"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A cookie-keeping HTTP client that reads CSRF tokens out of the pages like a browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.base + path, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r

    async def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]], *, csrf: bool = True
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            fields.append(("csrf_token", await self.csrf()))
        async with self.session.post(self.base + path, data=fields, allow_redirects=False) as r:
            return r.status, await r.text(), r

    async def csrf(self) -> str:
        _, page, _ = await self.get("/ui/")
        match = _CSRF.search(page)
        assert match, page
        return match.group(1)

    async def login(self, key: str) -> None:
        status, body, r = await self.post("/ui/login", {"api_key": key})
        assert status == 303, body
        assert r.headers["Location"] == "/ui/"

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as api:
        yield api


@pytest.fixture
async def browser(api: Api) -> AsyncIterator[Browser]:
    b = Browser(api.base)
    yield b
    await b.close()


def later(name: str = "nightly report", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": {"kind": "http", "url": "https://example.com/hook",
                   "headers": {"Authorization": "Bearer sk-live-123"}},
        "scheduled_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        **extra,
    }  # fmt: skip


async def create(api: Api, body: dict[str, Any], key: str | None = None) -> str:
    status, created, _ = await api.call("POST", "/api/tasks", json=body, key=key)
    assert status == 201, created
    return str(created["data"]["id"])


async def test_without_a_session_the_overview_is_a_login_form(browser: Browser) -> None:
    status, page, r = await browser.get("/ui/")
    assert status == 200
    assert re.findall(r'<input[^>]+name="([a-z_]+)"', page) == ["csrf_token", "api_key"]
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
    status, _, r = await browser.get("/ui/tasks")
    assert status == 303 and r.headers["Location"] == "/ui/"


async def test_login_sets_a_signed_strict_http_only_cookie_and_logout_ends_it(
    api: Api, browser: Browser
) -> None:
    status, body, r = await browser.post("/ui/login", {"api_key": api.key_a})
    assert status == 303, body
    cookie = r.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("ts_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/ui" in session
    value = session.split(";")[0].split("=", 1)[1]
    assert "." in value, "the cookie carries a signature"
    status, page, _ = await browser.get("/ui/tasks")
    assert status == 200 and "<h1>Tasks</h1>" in page
    status, _, _ = await browser.post("/ui/logout", {})
    assert status == 303
    # The session is gone on the server too: the old cookie no longer works.
    async with aiohttp.ClientSession() as other:
        async with other.get(
            api.base + "/ui/tasks", headers={"Cookie": f"ts_session={value}"},
            allow_redirects=False,
        ) as r:  # fmt: skip
            assert r.status == 303


async def test_a_forged_or_stale_session_is_refused(api: Api, browser: Browser) -> None:
    await browser.login(api.key_a)
    forged = "made-up-session.AAAA"
    async with aiohttp.ClientSession() as other:
        async with other.get(api.base + "/ui/tasks", headers={"Cookie": f"ts_session={forged}"},
                             allow_redirects=False) as r:  # fmt: skip
            assert r.status == 303
    async with api.pool.acquire() as conn:
        await revoke_key(conn, await conn.fetchval("SELECT key_id FROM ui_sessions"))
    status, _, _ = await browser.get("/ui/tasks")
    assert status == 303, "a revoked key ends its sessions"


async def test_a_wrong_key_shows_the_form_again_with_401(browser: Browser) -> None:
    status, page, _ = await browser.post("/ui/login", {"api_key": "ts_nope_nope"})
    assert status == 401 and "That key was not accepted" in page
    status, page, _ = await browser.post("/ui/login", {"api_key": ""})
    assert status == 422 and "api_key" in page


async def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    api: Api, browser: Browser
) -> None:
    task_id = await create(api, later())
    status, page, _ = await browser.post("/ui/login", {"api_key": api.key_a}, csrf=False)
    assert status == 403 and "CSRF" in page
    await browser.login(api.key_a)
    before = await api.event_count()
    for data in ({}, {"csrf_token": "forged"}):
        status, page, _ = await browser.post(f"/ui/tasks/{task_id}/pause", data, csrf=False)
        assert status == 403 and "csrf_token" in page
    assert await api.event_count() == before
    status, _, r = await browser.post(f"/ui/tasks/{task_id}/pause", {})
    assert status == 303 and r.headers["Location"] == f"/ui/tasks/{task_id}?done=pause"
    assert await api.event_count() == before + 1


async def test_a_token_from_another_session_is_refused(api: Api, browser: Browser) -> None:
    task_id = await create(api, later())
    await browser.login(api.key_a)
    stolen = await browser.csrf()
    second = Browser(api.base)
    try:
        await second.login(api.key_a)
        status, _, _ = await second.post(
            f"/ui/tasks/{task_id}/pause", {"csrf_token": stolen}, csrf=False
        )
        assert status == 403
    finally:
        await second.close()


async def test_task_buttons_drive_the_task(api: Api, browser: Browser) -> None:
    task_id = await create(api, later())
    await browser.login(api.key_a)
    for verb, status_word in (("pause", "paused"), ("resume", "pending"), ("cancel", "cancelled")):
        code, _, _ = await browser.post(f"/ui/tasks/{task_id}/{verb}", {})
        assert code == 303
        _, task, _ = await api.call("GET", f"/api/tasks/{task_id}")
        assert task["data"]["status"] == status_word, verb
    code, _, _ = await browser.post(f"/ui/tasks/{task_id}/resume", {})
    assert code == 409, "a cancelled task cannot resume"
    code, _, _ = await browser.post(f"/ui/tasks/{task_id}/explode", {})
    assert code == 404
    metadata = await api.pool.fetchval(
        "SELECT metadata->>'actor' FROM events WHERE stream_id = $1 AND type = 'task.paused'",
        f"task-{task_id}",
    )
    assert metadata.startswith("ui:")


async def test_user_text_is_escaped_and_header_values_redacted(api: Api, browser: Browser) -> None:
    task_id = await create(api, later(XSS, tags=["<b>x</b>"], description='"><script>x</script>'))
    await browser.login(api.key_a)
    for path in ("/ui/tasks", f"/ui/tasks/{task_id}", f"/ui/tasks?q={XSS}"):
        status, page, _ = await browser.get(path)
        assert status == 200
        assert XSS not in page and "<b>x</b>" not in page and "<script>x" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    _, page, _ = await browser.get(f"/ui/tasks/{task_id}")
    assert "sk-live-123" not in page and "[redacted]" in page
    assert "<script>" not in re.sub(r'<script src="/ui/static/[^"]+" defer></script>', "", page)


async def test_each_session_sees_its_own_project_only(api: Api, browser: Browser) -> None:
    mine = await create(api, later("project A task"))
    theirs = await create(api, later("project B task"), key=api.key_b)
    await browser.login(api.key_a)
    _, page, _ = await browser.get("/ui/tasks")
    assert "project A task" in page and "project B task" not in page
    status, _, _ = await browser.get(f"/ui/tasks/{theirs}")
    assert status == 404
    status, _, _ = await browser.post(f"/ui/tasks/{theirs}/pause", {})
    assert status == 404
    _, task, _ = await api.call("GET", f"/api/tasks/{theirs}", key=api.key_b)
    assert task["data"]["status"] == "pending"
    status, _, _ = await browser.post("/ui/dead-letters/retry", [("ids", theirs)])
    assert status == 303
    assert mine


async def test_every_page_renders_and_filters_page_by_keyset(api: Api, browser: Browser) -> None:
    ids = [await create(api, later(f"t{i}", tags=["even" if i % 2 else "odd"])) for i in range(55)]
    await browser.login(api.key_a)
    for path in ("/ui/", "/ui/workers", "/ui/webhooks", "/ui/dead-letters", "/ui/?part=live",
                 "/ui/tasks?part=live", f"/ui/tasks/{ids[0]}?part=live"):  # fmt: skip
        status, page, _ = await browser.get(path)
        assert status == 200, (path, page[:500])
    _, first, _ = await browser.get("/ui/tasks")
    assert first.count('class="task-name"') == 50
    next_link = re.search(r'href="/ui/tasks\?([^"]+)" id="next-page"', first)
    assert next_link
    _, second, _ = await browser.get("/ui/tasks?" + next_link.group(1).replace("&amp;", "&"))
    assert second.count('class="task-name"') == 5
    _, odd, _ = await browser.get("/ui/tasks?tag=odd&kind=once&status=pending&q=t")
    assert odd.count('class="task-name"') == 28


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ui/tasks?status=bogus", "status"),
        ("/ui/tasks?kind=weekly", "kind"),
        ("/ui/tasks?cursor=zzz", "cursor"),
        ("/ui/tasks?nope=1", "nope"),
        ("/ui/tasks?part=everything", "part"),
        ("/ui/webhooks?endpoint=wh_not_mine", "endpoint"),
    ],
)
async def test_bad_page_queries_are_4xx_naming_the_field(
    api: Api, browser: Browser, path: str, field: str
) -> None:
    await browser.login(api.key_a)
    status, page, _ = await browser.get(path)
    assert status in (404, 422), page
    assert f"<code>{field}</code>" in page


async def test_retry_selected_needs_a_selection(api: Api, browser: Browser) -> None:
    await browser.login(api.key_a)
    status, page, _ = await browser.post("/ui/dead-letters/retry", {})
    assert status == 422 and "<code>ids</code>" in page
    status, page, _ = await browser.post("/ui/dead-letters/retry", [("ids", "a\x00b")])
    assert status == 422 and "<code>ids</code>" in page


async def test_the_live_stream_signals_a_change_of_the_sessions_project_only(
    api: Api, browser: Browser
) -> None:
    await browser.login(api.key_a)
    async with browser.session.get(browser.base + "/ui/live") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert await stream.content.readline() == b"retry: 3000\n"
        await create(api, later("elsewhere"), key=api.key_b)
        task_id = await create(api, later("here"))

        async def signals() -> list[str]:
            seen: list[str] = []
            while not {"tasks", task_topic(task_id)} <= set(seen):
                line = (await stream.content.readline()).decode().strip()
                if line.startswith("event: "):
                    seen.append(line.removeprefix("event: "))
            return seen

        seen = await asyncio.wait_for(signals(), 10)
    assert set(seen) == {"tasks", task_topic(task_id)}, "project B's task is not signalled"
    assert len(seen) == 2, "one signal per topic for both events"
