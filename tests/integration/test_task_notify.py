"""Per-task notify_url deliveries: signed with the project's notify secret, real receiver."""

from __future__ import annotations

import pytest

from tests.integration.test_api_tasks import http_task
from tests.integration.test_webhooks import Hooks, hooks, run_task_to_completion, verified

__all__ = ["hooks"]  # the fixture, imported for pytest


async def notify_secret(hooks: Hooks, key: str | None = None) -> str:
    status, body, _ = await hooks.api.call("GET", "/api/webhooks/notify-secret", key=key)
    assert status == 200, body
    secret = body["data"]["secret"]
    assert secret.startswith("whsec_")
    return str(secret)


async def test_a_tasks_notify_url_gets_its_signed_lifecycle(hooks: Hooks) -> None:
    url = hooks.receiver.url + "/task-hook"
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=url))
    task_id = task["data"]["id"]
    assert task["data"]["notify_url"] == url
    await run_task_to_completion(hooks.api, task_id)
    await hooks.pump_once()
    calls = await hooks.receiver.wait_for("/task-hook", 3)
    payloads = [verified(await notify_secret(hooks), c) for c in calls]
    assert [p["event"] for p in payloads] == ["task.created", "task.started", "task.completed"]
    assert {p["task"]["id"] for p in payloads} == {task_id}
    # A task's endpoint is not one of the project's endpoints, but its attempts are listed.
    _, listing, _ = await hooks.api.call("GET", "/api/webhooks")
    assert listing["data"] == [] and listing["meta"]["total"] == 0
    status, attempts, _ = await hooks.api.call("GET", f"/api/webhooks/wht_{task_id}/deliveries")
    assert status == 200 and attempts["meta"]["total"] == 3
    # Another task without a notify_url sends nothing there.
    _, other, _ = await hooks.api.call("POST", "/api/tasks", json=http_task())
    await run_task_to_completion(hooks.api, other["data"]["id"])
    await hooks.pump_once()
    assert len(hooks.receiver.calls("/task-hook")) == 3


async def test_changing_the_notify_url_moves_later_deliveries(hooks: Hooks) -> None:
    first, second = hooks.receiver.url + "/first", hooks.receiver.url + "/second"
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=first))
    task_id = task["data"]["id"]
    await hooks.pump_once()
    await hooks.receiver.wait_for("/first", 1)
    status, _, _ = await hooks.api.call("PUT", f"/api/tasks/{task_id}", json={"notify_url": second})
    assert status == 200
    await run_task_to_completion(hooks.api, task_id)
    await hooks.pump_once()
    calls = await hooks.receiver.wait_for("/second", 2)
    assert [c.headers["webhook-id"] for c in calls]
    assert len(hooks.receiver.calls("/first")) == 1


async def test_rotating_the_secret_signs_later_deliveries_with_the_new_one(hooks: Hooks) -> None:
    old = await notify_secret(hooks)
    status, rotated, _ = await hooks.api.call("POST", "/api/webhooks/notify-secret/rotate")
    assert status == 200
    new = rotated["data"]["secret"]
    assert new != old and await notify_secret(hooks) == new
    url = hooks.receiver.url + "/rotated"
    await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=url))
    await hooks.pump_once()
    (call,) = await hooks.receiver.wait_for("/rotated", 1)
    assert verified(new, call)["event"] == "task.created"
    with pytest.raises(Exception, match=r"[Ss]ignature"):
        verified(old, call)


async def test_projects_have_their_own_secrets_and_cannot_see_each_others_tasks(
    hooks: Hooks,
) -> None:
    assert await notify_secret(hooks) != await notify_secret(hooks, key=hooks.api.key_b)
    url = hooks.receiver.url + "/mine"
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=url))
    await hooks.pump_once()
    await hooks.receiver.wait_for("/mine", 1)
    status, body, _ = await hooks.api.call(
        "GET", f"/api/webhooks/wht_{task['data']['id']}/deliveries", key=hooks.api.key_b
    )
    assert status == 404, body
    # Nor can a project delete a task's endpoint as if it were one of its own.
    status, _, _ = await hooks.api.call("DELETE", f"/api/webhooks/wht_{task['data']['id']}")
    assert status == 404


async def test_a_410_disables_only_that_tasks_endpoint(hooks: Hooks) -> None:
    hooks.receiver.behaviour["/gone"] = lambda n: (410, 0.0)
    gone = hooks.receiver.url + "/gone"
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=gone))
    _, other, _ = await hooks.api.call(
        "POST", "/api/tasks", json=http_task(notify_url=hooks.receiver.url + "/alive")
    )
    await hooks.pump_once()
    await hooks.receiver.wait_for("/gone", 1)
    await hooks.receiver.wait_for("/alive", 1)
    assert hooks.results.count("disabled") == 1
    await run_task_to_completion(hooks.api, task["data"]["id"])
    await run_task_to_completion(hooks.api, other["data"]["id"])
    await hooks.pump_once()
    await hooks.receiver.wait_for("/alive", 3)
    assert len(hooks.receiver.calls("/gone")) == 1, "a disabled task endpoint gets nothing more"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://user:pw@example.com/hook",
        "not a url",
    ],
)
async def test_bad_notify_urls_are_refused_and_change_nothing(hooks: Hooks, url: str) -> None:
    before = await hooks.api.event_count()
    status, body, _ = await hooks.api.call("POST", "/api/tasks", json=http_task(notify_url=url))
    assert status == 422, body
    assert body["error"]["details"]["field"] == "notify_url"
    assert await hooks.api.event_count() == before
