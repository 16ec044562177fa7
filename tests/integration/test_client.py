"""taskstream_client against a real `taskstream dev`: every namespace, paging, typed errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from taskstream_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    Conflict,
    NotFound,
    ValidationError,
    models,
    webhooks,
)

from tests.integration.dev_harness import Dev, dev_fixture
from tests.integration.receiver import running_receiver
from tests.integration.test_workers import eventually

FAR = datetime(2099, 1, 1, tzinfo=UTC)
HOOK = {"kind": "http", "url": "https://example.com/hook"}


dev = dev_fixture(
    "--handlers",
    "tests.integration.sample_handlers",
    TASKSTREAM_RATE_LIMIT_PER_SECOND="0",
    TASKSTREAM_EGRESS_ALLOW_CIDRS="127.0.0.0/8",
    TASKSTREAM_WEBHOOK_RETRY_SCHEDULE="0.2,0.2",
)


@pytest.fixture
def client(dev: Dev) -> Iterator[Client]:
    with Client(base_url=dev.base_url, api_key=dev.api_key) as c:
        yield c


def test_tasks_round_trip_with_the_apis_own_field_names(client: Client) -> None:
    task = client.tasks.create(
        name="report", action=HOOK, scheduled_at=FAR, tags=["sdk"], payload={"n": 1}, priority=7
    )
    assert isinstance(task, models.Task) and isinstance(task.action, models.HttpAction)
    assert (task.name, task.status, task.priority) == ("report", "pending", 7)
    assert task.payload == {"n": 1}
    assert task.scheduled_at == FAR
    updated = client.tasks.update(task.id, description="nightly", priority=3)
    assert (updated.description, updated.priority) == ("nightly", 3)
    assert updated.version > task.version
    assert client.tasks.get(task.id) == updated
    cancelled = client.tasks.cancel(task.id)
    assert (cancelled.id, cancelled.status) == (task.id, "cancelled")
    assert client.tasks.delete(task.id).success
    with pytest.raises(NotFound) as missing:
        client.tasks.get(task.id)
    assert missing.value.status == 404 and missing.value.request_id.startswith("req_")


def test_list_follows_every_page(client: Client) -> None:
    tag = f"page-{uuid.uuid4().hex[:8]}"
    made = {
        client.tasks.create(name=f"p{i}", action=HOOK, scheduled_at=FAR, tags=[tag]).id
        for i in range(5)
    }
    listed = [t.id for t in client.tasks.list(tag=tag, limit=2, sort="name", order="asc")]
    assert sorted(listed) == sorted(made) and len(listed) == 5
    assert [client.tasks.get(i).name for i in listed] == ["p0", "p1", "p2", "p3", "p4"]
    assert list(client.tasks.list(tag="no-such-tag")) == []


def test_errors_are_typed_and_name_the_field(client: Client, dev: Dev) -> None:
    with pytest.raises(ValidationError) as bad_url:
        client.tasks.create(name="x", action={"kind": "http", "url": "ftp://nowhere"})
    assert bad_url.value.field == "action.url" and bad_url.value.status == 422
    assert bad_url.value.code == "validation_error" and bad_url.value.request_id
    with pytest.raises(ValidationError) as bad_limit:
        list(client.tasks.list(limit=1000))
    assert bad_limit.value.field == "limit"
    task = client.tasks.create(name="r", action=HOOK, scheduled_at=FAR)
    with pytest.raises(Conflict):
        client.tasks.retry(task.id)  # only a failed task may be retried
    with Client(base_url=dev.base_url, api_key="ts_wrong") as stranger, pytest.raises(
        AuthenticationError
    ):
        stranger.system.status()


async def test_run_now_runs_a_future_task_once(dev: Dev) -> None:
    async with (
        running_receiver() as receiver,
        AsyncClient(base_url=dev.base_url, api_key=dev.api_key) as client,
    ):
        task = await client.tasks.create(
            name="later", action={"kind": "http", "url": receiver.url + "/now"}, scheduled_at=FAR
        )
        assert (await client.tasks.run_now(task.id)).id == task.id
        await receiver.wait_for("/now", 1, timeout=15)

        async def recorded() -> bool:
            return [r.status async for r in client.tasks.runs(task.id)] == ["completed"]

        await eventually(recorded, timeout=15)
        assert (await client.tasks.get(task.id)).scheduled_at == FAR  # the schedule stays
        with pytest.raises(NotFound):
            await client.tasks.run_now("no-such-task")


def test_checkpoint(client: Client) -> None:
    task = client.tasks.create(
        name="cp", action=HOOK, scheduled_at=FAR, checkpoint_enabled=True
    )
    saved = client.tasks.checkpoint(task.id, {"offset": 42})
    assert (saved.id, saved.checkpoint_data) == (task.id, {"offset": 42})
    assert client.tasks.get(task.id).checkpoint_data == {"offset": 42}


def test_webhooks_workers_and_system(client: Client) -> None:
    created = client.webhooks.create(url="https://example.com/h", events=["task.completed"])
    assert created.secret.startswith("whsec_")
    assert created.id in [w.id for w in client.webhooks.list(limit=1)]
    assert list(client.webhooks.deliveries(created.id)) == []
    assert client.webhooks.delete(created.id).success
    with pytest.raises(NotFound):
        client.webhooks.delete(created.id)
    first = client.webhooks.notify_secret().secret
    assert client.webhooks.rotate_notify_secret().secret != first
    status = client.system.status()
    assert status.status in ("healthy", "degraded") and status.components.database.status
    metrics = client.system.metrics(period="day", metrics=["error_rate"])
    assert set(metrics.data) == {"error_rate"} and metrics.meta.period == "day"
    with pytest.raises(ValidationError) as bad:
        client.system.metrics(metrics=["nope"])
    assert bad.value.field == "metrics"
    workers = list(client.workers.list())
    assert len(workers) == 1
    assert client.workers.get(workers[0].id).hostname == workers[0].hostname
    assert isinstance(list(client.workers.tasks(workers[0].id)), list)


async def test_async_client_runs_a_task_and_verifies_its_webhooks(dev: Dev) -> None:
    async with (
        running_receiver() as receiver,
        AsyncClient(base_url=dev.base_url, api_key=dev.api_key) as client,
    ):
        hook = await client.webhooks.create(url=receiver.url + "/hooks", events=["task.completed"])
        # This handler logs a line, fails once, and logs another on its retry.
        task = await client.tasks.create(
            name="async-e2e",
            action={"kind": "handler", "name": "resumable-steps"},
            retry_policy={"base_seconds": 0.1, "backoff": "fixed"},
            payload={"p": 1},
            scheduled_at=datetime.now(UTC) + timedelta(milliseconds=200),
        )

        async def completed() -> bool:
            return (await client.tasks.get(task.id)).status == "completed"

        await eventually(completed, timeout=20)
        lines = [line.message async for line in client.tasks.logs(task.id, limit=1)]
        assert lines == [
            "starting with {'p': 1}",
            "RuntimeError: crashed after step 1",
            "resuming from step 1",
        ]
        runs = [r async for r in client.tasks.runs(task.id, limit=1)]  # two pages
        assert [(r.attempt, r.status) for r in runs] == [(2, "completed"), (1, "failed")]
        assert runs[1].error and runs[0].worker_id and runs[0].finished_at
        (delivery,) = await receiver.wait_for("/hooks", 1, timeout=15)
        # A rotation in progress: the receiver knows the next secret and the current one.
        upcoming = "whsec_" + "A" * 32
        event = webhooks.verify(delivery.body, delivery.headers, [upcoming, hook.secret])
        assert event["event"] == "task.completed" and event["task"]["id"] == task.id

        async def attempt_recorded() -> bool:  # written after the receiver answered
            return [d.status_code async for d in client.webhooks.deliveries(hook.id)] == [200]

        await eventually(attempt_recorded, timeout=15)
        pending = [t.id async for t in client.tasks.list(status="completed")]
        assert task.id in pending
        many = await client.tasks.create_many(
            [{"name": f"m{i}", "action": HOOK, "scheduled_at": FAR} for i in range(4)]
        )
        assert [t.name for t in many] == ["m0", "m1", "m2", "m3"]


def test_the_client_installs_without_the_server(tmp_path: Path) -> None:
    """The distribution declares httpx and msgspec only, and imports nothing of the server."""
    import tomllib

    root = Path(__file__).resolve().parents[2] / "clients" / "python"
    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "taskstream-client"
    assert sorted(d.split(">")[0] for d in meta["dependencies"]) == ["httpx", "msgspec"]
    for source in (root / "taskstream_client").glob("*.py"):
        text = source.read_text()
        for server_package in ("domain", "infra", "services", "projections", "aiohttp"):
            assert f"from {server_package}" not in text and f"import {server_package}" not in text
