"""Prometheus /metrics of real processes, scraped after tasks ran and parsed by prometheus_client.

`taskstream dev` serves every metric on its gateway port; split up, the gateway serves its own
and each other process serves its own on TASKSTREAM_METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from infra.checkpoints import load_checkpoint, save_checkpoint
from infra.embedded_kafka import start_embedded_kafka
from infra.event_store import Checkpoint, EventStore, NewEvent
from infra.settings import Settings
from services.metrics.http import (
    StateCache,
    dsn_connect,
    exposition,
    pool_connect,
    start_metrics_server,
)
from services.metrics.state import RELAY_CHECKPOINT
from tests.integration.api_harness import SECRETS_KEY
from tests.integration.metrics_scrape import (
    PROCESS_FAMILIES,
    STATE_FAMILIES,
    Scrape,
    scrape,
    scrape_until,
)
from tests.integration.processes import Process, cli_env, dev_server, free_port, taskstream
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_workers import add_worker

ROUTES = {"/api/tasks", "/api/tasks/{id}", "/api/webhooks", "/metrics", "unmatched"}


async def run_tasks(base: str, key: str, receiver: Receiver) -> list[str]:
    """Through the API: a webhook endpoint, a task that succeeds, one that fails twice."""
    receiver.behaviour["/fail"] = lambda _: (500, 0.0)
    now = datetime.now(UTC).isoformat()
    succeeds = {"name": "ok", "action": {"kind": "http", "url": receiver.url + "/work"}}
    fails = {
        "name": "fails",
        "action": {"kind": "http", "url": receiver.url + "/fail"},
        "max_retries": 1,
        "retry_policy": {"max_retries": 1, "backoff": "fixed", "base_seconds": 0.2},
    }
    async with aiohttp.ClientSession(headers={"Authorization": f"ApiKey {key}"}) as http:
        async with http.post(f"{base}/api/webhooks", json={"url": receiver.url + "/hooks"}) as r:
            assert r.status == 201
        ids = []
        for body in (succeeds, fails):
            async with http.post(f"{base}/api/tasks", json={**body, "scheduled_at": now}) as r:
                assert r.status == 201, await r.text()
                ids.append((await r.json())["data"]["id"])
        async with http.get(f"{base}/api/tasks/{ids[0]}") as r:
            assert r.status == 200
        async with http.get(f"{base}/no/such/path") as r:
            assert r.status == 404
    await receiver.wait_for("/work", 1, timeout=30)
    await receiver.wait_for("/fail", 2, timeout=30)
    return ids


def tasks_done(s: Scrape) -> bool:
    return (
        s.value("taskstream_tasks_completed_total") >= 1
        and s.value("taskstream_tasks_failed_total", final="true") >= 1
        and s.value("taskstream_webhook_delivery_attempts_total", outcome="succeeded") >= 1
    )


def check_run_counters(s: Scrape) -> None:
    """Two tasks: one run that succeeded, one that failed, was retried and failed for good."""
    assert s.value("taskstream_tasks_started_total") == 3
    assert s.value("taskstream_tasks_completed_total") == 1
    assert s.value("taskstream_tasks_failed_total", final="false") == 1
    assert s.value("taskstream_tasks_failed_total", final="true") == 1
    assert s.value("taskstream_tasks_retried_total") == 1
    assert s.value("taskstream_task_start_lateness_seconds_count") == 3
    assert s.value("taskstream_run_duration_seconds_count", outcome="completed") == 1
    assert s.value("taskstream_run_duration_seconds_count", outcome="failed") == 2


def check_bounded_labels(s: Scrape, secret_values: set[str]) -> None:
    """Route templates, never paths; no id of a task, project or worker in any label."""
    assert s.label_values("taskstream_http_request_duration_seconds", "route") <= ROUTES
    values = s.taskstream_label_values()
    assert not {v for v in values for secret in secret_values if secret in v}


async def test_dev_process_exports_every_metric_after_tasks_ran(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    with dev_server(data_dir, port, _env(fresh_dsn, TASKSTREAM_KAFKA_IDEMPOTENCE="false")):
        creds = json.loads((data_dir / "credentials.json").read_text())
        async with running_receiver() as receiver:
            task_ids = await run_tasks(base, creds["api_key"], receiver)
            await scrape_until(f"{base}/metrics", tasks_done)
            # Heartbeats come every 5 s; the relay catches up with the log shortly after.
            s = await scrape_until(
                f"{base}/metrics",
                lambda s: (
                    s.value("taskstream_worker_heartbeats_total", result="ok") >= 1
                    and s.value("taskstream_relay_lag_events") == 0
                    and "taskstream_relay_lag_events" in s.families
                ),
            )
        s.check_shapes({**PROCESS_FAMILIES, **STATE_FAMILIES})
        assert s.value("taskstream_tasks_created_total") == 2
        assert s.value("taskstream_tasks_dispatched_total") == 3
        check_run_counters(s)
        created = s.value(
            "taskstream_http_request_duration_seconds_count",
            method="POST",
            route="/api/tasks",
            status="201",
        )
        assert created == 2
        one = {"method": "GET", "route": "/api/tasks/{id}", "status": "200"}
        assert s.value("taskstream_http_request_duration_seconds_count", **one) == 1
        assert s.value("taskstream_http_request_duration_seconds_count", route="unmatched") == 1
        assert s.label_values("taskstream_queue_depth", "queue") == {
            "due", "dispatched", "running", "webhooks",
        }  # fmt: skip
        assert s.value("taskstream_workers", state="online") == 1
        assert "webhooks" in s.label_values("taskstream_projection_lag_events", "projection")
        check_bounded_labels(s, {*task_ids, creds["project_id"], socket.gethostname() + "-"})


def test_a_taken_metrics_port_is_logged_and_the_process_runs_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(metrics_port=taken.getsockname()[1])
        assert start_metrics_server(settings, "worker") is None
    assert "TASKSTREAM_METRICS_PORT" in caplog.text


def test_metrics_port_zero_turns_the_server_off() -> None:
    assert start_metrics_server(Settings(metrics_port=0), "scheduler") is None


async def test_without_the_database_a_scrape_still_serves_the_process_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dsn = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/postgres"
    s = Scrape((await exposition(StateCache(dsn_connect(dsn)))).decode())
    s.check_shapes(PROCESS_FAMILIES)
    assert not set(STATE_FAMILIES) & set(s.families)
    assert "could not read the state gauges" in caplog.text


def _env(dsn: str, metrics_port: int | None = None, **extra: Any) -> dict[str, str]:
    return cli_env(
        TASKSTREAM_DATABASE_URL=dsn,
        TASKSTREAM_EGRESS_ALLOW_CIDRS="127.0.0.0/8",
        TASKSTREAM_WEBHOOK_RETRY_SCHEDULE="0.2",
        TASKSTREAM_SECRETS_KEY=SECRETS_KEY,
        TASKSTREAM_METRICS_PORT=None if metrics_port is None else str(metrics_port),
        **extra,
    )


def _start(args: list[str], env: dict[str, str], ready: str) -> Process:
    process = Process(taskstream(*args), env)
    process.wait_for(ready, timeout=90)
    return process


async def test_each_split_process_serves_its_own_metrics(tmp_path: Path, fresh_dsn: str) -> None:
    data_dir, port = str(tmp_path / "data"), free_port()
    ports = {role: free_port() for role in ("scheduler", "worker", "relay", "projector")}
    bootstrap, stop_kafka = start_embedded_kafka()
    kafka = {"TASKSTREAM_KAFKA_BOOTSTRAP": bootstrap, "TASKSTREAM_KAFKA_IDEMPOTENCE": "false"}
    plan = [
        (["gateway", "--port", str(port)], _env(fresh_dsn), "serving on"),
        (["scheduler"], _env(fresh_dsn, ports["scheduler"]), "scheduler "),
        (["worker"], _env(fresh_dsn, ports["worker"]), "worker running: "),
        (["relay"], _env(fresh_dsn, ports["relay"], **kafka), "relay to Kafka"),
        (["projector"], _env(fresh_dsn, ports["projector"]), "projector running"),
    ]
    processes: list[Process] = []
    try:
        for args, env, ready in plan:
            cmd = [*args, "--data-dir", data_dir]
            processes.append(await asyncio.to_thread(_start, cmd, env, ready))
        base = f"http://127.0.0.1:{port}"
        key = json.loads((Path(data_dir) / "credentials.json").read_text())["api_key"]
        urls = {role: f"http://127.0.0.1:{p}/metrics" for role, p in ports.items()}
        async with running_receiver() as receiver:
            await run_tasks(base, key, receiver)
            worker = await scrape_until(
                urls["worker"],
                lambda s: (
                    tasks_done(s)
                    and s.value("taskstream_worker_heartbeats_total", result="ok") >= 1
                ),
            )
        gateway, scheduler = await scrape(f"{base}/metrics"), await scrape(urls["scheduler"])
        for s in (gateway, scheduler, worker):
            s.check_shapes(PROCESS_FAMILIES)
        gateway.check_shapes(STATE_FAMILIES)
        scheduler.check_shapes(STATE_FAMILIES)
        # Each process counts what it appended itself.
        assert gateway.value("taskstream_tasks_created_total") == 2
        assert gateway.value("taskstream_tasks_dispatched_total") == 0
        assert scheduler.value("taskstream_tasks_dispatched_total") == 3
        assert scheduler.value("taskstream_tasks_created_total") == 0
        check_run_counters(worker)
        for role in ("worker", "relay", "projector"):
            scraped = await scrape(urls[role])
            scraped.check_shapes(PROCESS_FAMILIES)
            assert not set(STATE_FAMILIES) & set(scraped.families), role
    finally:
        for process in processes:
            process.stop()
        stop_kafka()


async def test_state_gauges_read_the_database_at_most_once_per_max_age(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool)
    for n in range(3):
        event = NewEvent(type="test.happened", data=msgspec.Raw(b"{}"), metadata={})
        await store.append(f"test-{n}", None, [event], project_id="p")
    await add_worker(pool, "w-live", heartbeat_seconds_ago=7)
    await add_worker(pool, "w-gone", offline=True)
    async with pool.acquire() as conn:
        await load_checkpoint(conn, "behind")  # a new reader: at the start of the log
        head = await conn.fetchrow(
            "SELECT txid::text::bigint AS txid, position FROM events"
            " ORDER BY txid DESC, position DESC LIMIT 1"
        )
        await save_checkpoint(conn, RELAY_CHECKPOINT, Checkpoint(head["txid"], head["position"]))
    cached = StateCache(pool_connect(pool), max_age=60)
    s = Scrape((await exposition(cached)).decode())
    assert s.value("taskstream_workers", state="online") == 1
    assert s.value("taskstream_workers", state="offline") == 1
    assert 7 <= s.value("taskstream_worker_heartbeat_age_seconds") < 30
    assert s.value("taskstream_relay_lag_events") == 0
    assert s.value("taskstream_relay_lag_seconds") == 0
    assert s.value("taskstream_projection_lag_events", projection="behind") == head["position"]
    assert s.value("taskstream_projection_lag_seconds", projection="behind") > 0
    await add_worker(pool, "w-new")
    again = Scrape((await exposition(cached)).decode())
    assert again.value("taskstream_workers", state="online") == 1, "read again within max_age"
    fresh = Scrape((await exposition(StateCache(pool_connect(pool), max_age=0))).decode())
    assert fresh.value("taskstream_workers", state="online") == 2
