"""Lifecycle webhooks over real PostgreSQL and a real receiver, verified with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook

from domain import events as ev
from infra.egress_client import EgressClient
from services.surfaces.kit.context import CONTEXT
from services.tasks.service import Actor
from services.webhooks.delivery import WebhookDeliverer
from services.webhooks.pump import WebhookPump
from tests.integration.api_harness import Api, running_api, session_keyring
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_api_tasks import http_task


@dataclass
class Hooks:
    api: Api
    receiver: Receiver
    pump: WebhookPump
    deliverer: WebhookDeliverer
    results: list[str]

    async def endpoint(self, path: str, *, key: str | None = None, **body: object) -> dict:
        status, created, _ = await self.api.call(
            "POST", "/api/webhooks", json={"url": self.receiver.url + path, **body}, key=key
        )
        assert status == 201, created
        return dict(created["data"])

    async def pump_once(self) -> None:
        """Fan out everything new and deliver whatever is due right now (a task's deliveries
        one after another: each becomes due when the one before it is delivered)."""
        while await self.pump.fan_out():
            pass
        while await self.pump.send_due():
            pass


@asynccontextmanager
async def running_hooks(pool: asyncpg.Pool, *, concurrent: bool = False) -> AsyncIterator[Hooks]:
    """A gateway, a receiver and a pump whose sends deliver at once: awaited one by one, or
    (`concurrent`) each in its own coroutine, as a pool of worker threads does."""
    async with (
        running_api(pool, egress_allow_cidrs="127.0.0.0/8") as api,
        running_receiver() as receiver,
        EgressClient("127.0.0.0/8") as egress,
    ):
        deliverer = WebhookDeliverer(
            pool, egress, keyring=session_keyring(), schedule=(0.2, 0.2, 0.2)
        )
        results: list[str] = []
        in_flight: set[asyncio.Task[None]] = set()

        async def deliver(delivery_id: str, attempts: int) -> None:
            results.append(await deliverer.deliver(delivery_id, attempts))

        async def send(delivery_id: str, attempts: int) -> None:
            if not concurrent:
                return await deliver(delivery_id, attempts)
            task = asyncio.create_task(deliver(delivery_id, attempts))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

        pump = WebhookPump(pool, send, keyring=session_keyring())
        yield Hooks(api, receiver, pump, deliverer, results)
        await asyncio.gather(*in_flight, return_exceptions=True)


@pytest.fixture
async def hooks(pool: asyncpg.Pool) -> AsyncIterator[Hooks]:
    async with running_hooks(pool) as h:
        yield h


def verified(secret: str, seen: object) -> dict:
    """The payload, after the reference implementation accepted the signature."""
    body = seen.body  # type: ignore[attr-defined]
    headers = {k.lower(): v for k, v in seen.headers.items()}  # type: ignore[attr-defined]
    return dict(Webhook(secret).verify(body, headers))


async def run_task_to_completion(api: Api, task_id: str) -> None:
    service = api.app[CONTEXT].tasks
    state = await service.get(api.project_a, task_id)
    now = datetime.now(UTC)
    await service.record(
        state,
        [
            ev.TaskDispatched(at=now, run_id="r1", attempt=1, due_at=now, lease_until=now),
            ev.TaskStarted(at=now, run_id="r1", attempt=1, worker_id="w1", lease_until=now),
            ev.TaskCompleted(at=now, run_id="r1", attempt=1, result={"ok": True}),
        ],
        actor=Actor("worker", "w1"),
    )


async def test_signed_lifecycle_webhooks_arrive_in_order_with_task_snapshots(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint("/all")
    assert endpoint["secret"].startswith("whsec_")
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task())
    task_id = task["data"]["id"]
    await run_task_to_completion(hooks.api, task_id)
    await hooks.pump_once()
    calls = await hooks.receiver.wait_for("/all", 3)
    payloads = [verified(endpoint["secret"], c) for c in calls]
    assert [p["event"] for p in payloads] == ["task.created", "task.started", "task.completed"]
    assert [p["task"]["status"] for p in payloads] == ["pending", "running", "completed"]
    assert all(p["task"]["id"] == task_id for p in payloads)
    assert payloads[2]["task"]["result"] == {"ok": True}
    assert len({c.headers["webhook-id"] for c in calls}) == 3
    assert hooks.results == ["succeeded"] * 3
    # The dispatched event is internal: no fourth delivery.
    await hooks.pump_once()
    assert len(hooks.receiver.calls("/all")) == 3


async def test_secret_is_shown_once_and_filters_apply(hooks: Hooks) -> None:
    completed_only = await hooks.endpoint("/done", events=["task.completed"])
    _, listing, _ = await hooks.api.call("GET", "/api/webhooks")
    assert listing["meta"]["total"] == 1
    assert "secret" not in listing["data"][0] and listing["data"][0]["events"] == ["task.completed"]
    _, task, _ = await hooks.api.call("POST", "/api/tasks", json=http_task())
    await run_task_to_completion(hooks.api, task["data"]["id"])
    await hooks.pump_once()
    (call,) = await hooks.receiver.wait_for("/done", 1)
    assert verified(completed_only["secret"], call)["event"] == "task.completed"


async def test_failed_attempts_retry_with_the_same_id_and_are_listed(hooks: Hooks) -> None:
    hooks.receiver.behaviour["/flaky"] = lambda n: (500 if n == 1 else 200, 0.0)
    endpoint = await hooks.endpoint("/flaky", events=["task.created"])
    await hooks.api.call("POST", "/api/tasks", json=http_task())
    await hooks.pump_once()
    (first,) = await hooks.receiver.wait_for("/flaky", 1)
    assert hooks.results == ["retry"]
    await hooks.pump.send_due()
    assert len(hooks.receiver.calls("/flaky")) == 1, "the retry must wait for its backoff"
    await hooks.api.pool.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
    await hooks.pump.send_due()
    first, second = await hooks.receiver.wait_for("/flaky", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verified(endpoint["secret"], second)
    status, attempts, _ = await hooks.api.call("GET", f"/api/webhooks/{endpoint['id']}/deliveries")
    assert status == 200
    assert [(a["attempt"], a["status_code"]) for a in attempts["data"]] == [(2, 200), (1, 500)]
    assert attempts["data"][0]["status"] == "succeeded"


async def test_429_honours_retry_after_and_410_disables_the_endpoint(hooks: Hooks) -> None:
    hooks.receiver.behaviour["/busy"] = lambda n: (429, 0.0)
    hooks.receiver.behaviour["/gone"] = lambda n: (410, 0.0)
    await hooks.endpoint("/busy", events=["task.created"])
    gone = await hooks.endpoint("/gone", events=["task.created"])
    await hooks.api.call("POST", "/api/tasks", json=http_task())
    await hooks.pump_once()
    await hooks.receiver.wait_for("/busy", 1)
    await hooks.receiver.wait_for("/gone", 1)
    wait = await hooks.api.pool.fetchval(
        "SELECT EXTRACT(EPOCH FROM next_attempt_at - now()) FROM webhook_deliveries d"
        " JOIN webhook_endpoints e USING (endpoint_id) WHERE e.url LIKE '%/busy'"
    )
    assert wait is None or wait < 1.0  # no Retry-After header: the schedule's 0.2 s applies
    _, listing, _ = await hooks.api.call("GET", "/api/webhooks")
    disabled = next(e for e in listing["data"] if e["id"] == gone["id"])
    assert disabled["disabled_at"] is not None and "410" in disabled["disabled_reason"]
    await hooks.api.call("POST", "/api/tasks", json=http_task())
    await hooks.pump_once()
    assert len(hooks.receiver.calls("/gone")) == 1, "a disabled endpoint gets nothing more"


async def test_retry_after_header_sets_the_next_attempt(hooks: Hooks) -> None:
    hooks.receiver.behaviour["/slowdown"] = lambda n: (429, 0.0, {"Retry-After": "30"})
    await hooks.endpoint("/slowdown", events=["task.created"])
    await hooks.api.call("POST", "/api/tasks", json=http_task())
    await hooks.pump_once()
    await hooks.receiver.wait_for("/slowdown", 1)
    assert hooks.results == ["retry"]
    wait = await hooks.api.pool.fetchval(
        "SELECT EXTRACT(EPOCH FROM next_attempt_at - now())::float8 FROM webhook_deliveries"
    )
    assert 28 < wait <= 30, f"next attempt in {wait} s, not after Retry-After"


async def test_tenants_never_see_each_others_endpoints_or_events(hooks: Hooks) -> None:
    mine = await hooks.endpoint("/a")
    theirs = await hooks.endpoint("/b", key=hooks.api.key_b)
    status, _, _ = await hooks.api.call(
        "DELETE", f"/api/webhooks/{mine['id']}", key=hooks.api.key_b
    )
    assert status == 404
    status, _, _ = await hooks.api.call(
        "GET", f"/api/webhooks/{mine['id']}/deliveries", key=hooks.api.key_b
    )
    assert status == 404
    _, listing, _ = await hooks.api.call("GET", "/api/webhooks", key=hooks.api.key_b)
    assert [e["id"] for e in listing["data"]] == [theirs["id"]]
    await hooks.api.call("POST", "/api/tasks", json=http_task())
    await hooks.pump_once()
    await hooks.receiver.wait_for("/a", 1)
    assert hooks.receiver.calls("/b") == []
    status, body, _ = await hooks.api.call("DELETE", f"/api/webhooks/{mine['id']}")
    assert status == 200 and body["data"]["success"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/x", "events": ["task.exploded"]}, "events"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"events": ["task.created"]}, "url"),
    ],
)
async def test_bad_endpoints_are_refused(hooks: Hooks, body: dict, field: str) -> None:
    status, payload, _ = await hooks.api.call("POST", "/api/webhooks", json=body)
    assert status == 422 and payload["error"]["details"]["field"] == field
    assert await hooks.api.pool.fetchval("SELECT count(*) FROM webhook_endpoints") == 0


async def test_private_receivers_are_refused_without_an_operator_allow_list(
    pool: asyncpg.Pool,
) -> None:
    async with running_api(pool) as api:
        status, payload, _ = await api.call(
            "POST", "/api/webhooks", json={"url": "http://127.0.0.1:8080/hook"}
        )
    assert status == 422 and payload["error"]["details"]["field"] == "url"
    assert json.dumps(payload).count("blocked") + json.dumps(payload).count("not") >= 1


async def test_a_delivery_whose_worker_died_mid_attempt_is_sent_again(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint("/after-crash", events=["task.created"])
    await hooks.api.call("POST", "/api/tasks", json=http_task())
    while await hooks.pump.fan_out():
        pass
    # A worker takes the message and claims the attempt, then dies before sending anything.
    (claimed,) = await hooks.api.pool.fetch(
        "UPDATE webhook_deliveries SET attempts = attempts + 1,"
        " claimed_until = now() + interval '60 seconds' RETURNING delivery_id, attempts"
    )
    await hooks.pump.send_due()
    assert hooks.receiver.calls("/after-crash") == [], "still claimed: nothing is sent yet"
    await hooks.api.pool.execute("UPDATE webhook_deliveries SET claimed_until = now()")
    await hooks.pump.send_due()
    (call,) = await hooks.receiver.wait_for("/after-crash", 1)
    assert call.headers["webhook-id"] == claimed["delivery_id"]
    verified(endpoint["secret"], call)
    assert hooks.results == ["succeeded"]


async def test_concurrent_pumps_lose_no_event_and_deliver_none_twice(hooks: Hooks) -> None:
    await hooks.endpoint("/once", events=["task.created"])
    for _ in range(20):
        await hooks.api.call("POST", "/api/tasks", json=http_task())
    other = WebhookPump(hooks.api.pool, hooks.pump.send, keyring=session_keyring(), batch=3)
    small = WebhookPump(hooks.api.pool, hooks.pump.send, keyring=session_keyring(), batch=4)

    async def drain(pump: WebhookPump) -> None:
        while await pump.fan_out():
            pass

    await asyncio.gather(drain(other), drain(small), drain(hooks.pump))
    count = await hooks.api.pool.fetchval("SELECT count(*) FROM webhook_deliveries")
    assert count == 20
