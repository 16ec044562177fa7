"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
`taskstream dev` (gateway, scheduler, worker, projector) and a real HTTP receiver.

Set TASKSTREAM_SCREENSHOT_DIR (e.g. docs/images) to keep a screenshot of every page there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import APIRequestContext, Browser, Page, expect, sync_playwright

from tests.browser.rig import ThreadedReceiver, dev_for_browser

CHROMIUM = "/usr/bin/chromium"
# The flags that work as root on a machine without network (research wave2.md B.3).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
XSS = "<img src=x onerror=alert(1)>"
# The machine is shared with other test runs: waits are generous, and each ends as soon as the
# page shows what it waits for.
WAIT_MS = 45_000
# Below the pages' 30 s fallback poll: what appears within it came through the live stream.
LIVE_MS = 20_000
SHOTS = os.environ.get("TASKSTREAM_SCREENSHOT_DIR")


class Dashboard:
    def __init__(self, base: str, key: str, other_key: str, receiver: ThreadedReceiver,
                 api: APIRequestContext, browser: Browser) -> None:  # fmt: skip
        self.base, self.key, self.other_key = base, key, other_key
        self.receiver, self.api, self.browser = receiver, api, browser

    def create(self, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        r = self.api.post(f"{self.base}/api/tasks", data=body,
                          headers={"Authorization": f"ApiKey {key or self.key}"})  # fmt: skip
        assert r.status == 201, r.text()
        return dict(r.json()["data"])

    def later(self, name: str, path: str = "/work", **extra: Any) -> dict[str, Any]:
        due = datetime.now(UTC) + timedelta(days=1)
        return {"name": name, "scheduled_at": due.isoformat(),
                "action": {"kind": "http", "url": self.receiver.url + path}, **extra}  # fmt: skip

    def page(self, key: str | None = None) -> Page:
        """A new browser context (its own cookies), signed in with `key`."""
        context = self.browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
        page.goto(self.base + "/ui/")
        page.fill("input[name=api_key]", key or self.key)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        return page


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def dash(server_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Dashboard]:  # fmt: skip
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    expect.set_options(timeout=WAIT_MS)
    with (
        ThreadedReceiver() as receiver,
        dev_for_browser(server_dsn, template_db, tmp_path_factory.mktemp("dash")) as dev,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        api = p.request.new_context()
        try:
            yield Dashboard(dev.base, dev.key, dev.other_key, receiver, api, browser)
        finally:
            api.dispose()
            browser.close()


def test_login_form_then_overview(dash: Dashboard) -> None:
    context = dash.browser.new_context()
    page = context.new_page()
    page.goto(dash.base + "/ui/")
    assert page.locator("form input").evaluate_all("els => els.map(e => e.name)") == [
        "csrf_token", "api_key",
    ]  # fmt: skip
    shot(page, "login")
    page.fill("input[name=api_key]", "ts_wrong_key")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.fill("input[name=api_key]", dash.key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    cookie = next(c for c in context.cookies() if c["name"] == "ts_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("text=Log out")
    expect(page.locator("input[name=api_key]")).to_be_visible()
    page.goto(dash.base + "/ui/tasks")
    expect(page.locator("input[name=api_key]")).to_be_visible()
    context.close()


def test_a_task_created_through_the_api_appears_without_a_reload(dash: Dashboard) -> None:
    page = dash.page()
    page.goto(dash.base + "/ui/tasks")
    marker = page.evaluate("() => { window.notReloaded = true; return true; }")
    assert marker
    name = f"appears live {datetime.now(UTC):%H%M%S%f}"
    task = dash.create(dash.later(name))
    expect(page.locator(f"#task-{task['id']}")).to_contain_text(name, timeout=LIVE_MS)
    assert page.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    shot(page, "tasks")
    page.context.close()


def test_run_now_shows_the_run_with_the_receiver_hit(dash: Dashboard) -> None:
    action = {"kind": "http", "url": dash.receiver.url + "/run-now",
              "headers": {"Authorization": "Bearer sk-hidden"}}  # fmt: skip
    task = dash.create(dash.later("run me now", action=action))
    page = dash.page()
    page.goto(f"{dash.base}/ui/tasks/{task['id']}")
    expect(page.locator("#no-runs")).to_be_visible()
    page.click("#action-run-now")
    expect(page.get_by_role("status")).to_contain_text("a run was requested")
    row = page.locator("#runs tr.run").first
    expect(row).to_contain_text("completed", timeout=LIVE_MS)
    expect(row.locator("td.http")).to_have_text("200")
    assert len(dash.receiver.calls("/run-now")) == 1
    expect(page.locator("#decisions")).to_contain_text("triggered")
    assert "sk-hidden" not in page.content()
    shot(page, "task")
    page.context.close()


def test_pause_and_resume(dash: Dashboard) -> None:
    task = dash.create(dash.later("pause me", schedule={"kind": "cron", "expr": "*/5 * * * *"},
                                  scheduled_at=None))  # fmt: skip
    page = dash.page()
    page.goto(f"{dash.base}/ui/tasks/{task['id']}")
    page.click("#action-pause")
    expect(page.locator("#task-status")).to_have_text("paused")
    expect(page.locator("#decisions")).to_contain_text("paused")
    page.click("#action-resume")
    expect(page.locator("#task-status")).to_have_text("pending")
    expect(page.locator("#decisions")).to_contain_text("resumed")
    r = dash.api.get(f"{dash.base}/api/tasks/{task['id']}",
                     headers={"Authorization": f"ApiKey {dash.key}"})  # fmt: skip
    assert r.json()["data"]["status"] == "pending"
    page.context.close()


def test_the_xss_name_shows_as_text(dash: Dashboard) -> None:
    task = dash.create(dash.later(XSS, tags=["<b>bold</b>"]))
    page = dash.page()
    for path in ("/ui/tasks", f"/ui/tasks/{task['id']}"):
        page.goto(dash.base + path)
        expect(page.get_by_text(XSS).first).to_be_visible()
        assert page.locator("img").count() == 0
        assert page.locator("b").count() == 0
    expect(page.locator("h1.task-title")).to_have_text(XSS)
    page.context.close()


def test_a_form_post_without_the_csrf_token_is_refused(dash: Dashboard) -> None:
    task = dash.create(dash.later("csrf target"))
    page = dash.page()
    page.goto(f"{dash.base}/ui/tasks/{task['id']}")
    page.eval_on_selector_all("input[name=csrf_token]", "els => els.forEach(e => e.remove())")
    page.click("#action-pause")
    expect(page.locator("h1")).to_contain_text("403")
    expect(page.get_by_role("alert")).to_contain_text("CSRF")
    r = dash.api.get(f"{dash.base}/api/tasks/{task['id']}",
                     headers={"Authorization": f"ApiKey {dash.key}"})  # fmt: skip
    assert r.json()["data"]["status"] == "pending", "the refused post changed nothing"
    page.context.close()


def test_a_second_projects_session_sees_nothing_of_the_first(dash: Dashboard) -> None:
    mine = dash.create(dash.later("first project's secret task"))
    page = dash.page(dash.other_key)
    page.goto(dash.base + "/ui/tasks")
    expect(page.locator("#no-tasks")).to_be_visible()
    assert "first project" not in page.content()
    page.goto(f"{dash.base}/ui/tasks/{mine['id']}")
    expect(page.locator("h1")).to_contain_text("404")
    page.goto(dash.base + "/ui/dead-letters")
    expect(page.locator("#no-dead")).to_be_visible()
    page.context.close()


def test_every_page_renders_without_console_errors(dash: Dashboard) -> None:
    """Screenshots of each page; a CSP violation or script error would show in the console."""
    dash.receiver.behaviour("/down", 503)
    failing = dash.create({**dash.later("billing sync", path="/down", max_retries=0,
                                        tags=["billing"]),
                           "scheduled_at": datetime.now(UTC).isoformat()})  # fmt: skip
    hook = dash.api.post(f"{dash.base}/api/webhooks", data={"url": dash.receiver.url + "/hooks"},
                         headers={"Authorization": f"ApiKey {dash.key}"})  # fmt: skip
    assert hook.status == 201
    page = dash.page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(dash.base + "/ui/dead-letters")
    expect(page.locator("#dead-live")).to_contain_text("billing sync", timeout=WAIT_MS)
    shot(page, "dead-letters")
    page.locator(f"input.pick[value='{failing['id']}']").check()
    dash.receiver.behaviour("/down", 200)
    page.click("#retry-selected")
    expect(page.get_by_role("status")).to_contain_text("Retried 1 task(s)")
    page.goto(dash.base + "/ui/webhooks")
    page.click("table a >> nth=0")
    expect(page.locator("#deliveries")).to_be_visible(timeout=WAIT_MS)
    page.locator("#deliveries button").first.click()
    expect(page.get_by_role("status")).to_contain_text("Queued for redelivery")
    shot(page, "webhooks")
    page.goto(dash.base + "/ui/workers")
    expect(page.locator("#workers-live")).to_contain_text("worker", timeout=WAIT_MS)
    shot(page, "workers")
    page.goto(dash.base + "/ui/")
    expect(page.locator("#count-due")).to_be_visible()
    shot(page, "overview")
    page.goto(dash.base + "/ui/tasks")
    assert not [p for p in problems if re.search(r"Content.Security|Refused|Error", p)], problems
    page.context.close()
