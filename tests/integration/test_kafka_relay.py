"""The Kafka relay against a real tansu broker, real PostgreSQL and the real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from infra.embedded_kafka import EmbeddedKafka
from infra.event_envelope import EventEnvelope
from infra.json_codec import decode
from infra.settings import Settings
from services.relay.process import kafka_for_dev
from services.streaming.relay import CHECKPOINT, LOCK_KEY
from tests.integration.api_harness import Api, running_api
from tests.integration.kafka_harness import logged_ids, relaying, subscribed
from tests.integration.processes import Process, cli_env, free_port, taskstream
from tests.integration.test_api_tasks import create, http_task
from tests.integration.test_workers import eventually


@pytest.fixture
def own_kafka() -> Iterator[EmbeddedKafka]:
    """A broker of this test's own, for drills that pause or kill it."""
    broker = EmbeddedKafka()
    broker.start()
    yield broker
    broker.stop()


async def lifecycle(api: Api, key: str | None = None) -> str:
    """Create, update and cancel a task: one stream with three events. Returns its id."""
    task = await create(api, http_task(), key=key)
    status, body, _ = await api.call(
        "PATCH", f"/api/tasks/{task['id']}", json={"priority": 7}, key=key
    )
    assert status == 200, body
    status, body, _ = await api.call("POST", f"/api/tasks/{task['id']}/cancel", key=key)
    assert status == 200, body
    return str(task["id"])


def relay_env(dsn: str, bootstrap: str) -> dict[str, str]:
    return cli_env(
        TASKSTREAM_DATABASE_URL=dsn,
        TASKSTREAM_KAFKA_BOOTSTRAP=bootstrap,
        TASKSTREAM_KAFKA_IDEMPOTENCE="false",
        TASKSTREAM_RELAY_POLL_MS="50",
        TASKSTREAM_METRICS_PORT="0",  # two relays on one host would want the same port
    )


async def test_every_event_arrives_once_with_its_log_fields_in_stream_order(
    pool: asyncpg.Pool, fresh_dsn: str, kafka: str
) -> None:
    async with running_api(pool) as api:
        projects = {api.project_a, api.project_b}
        async with relaying(fresh_dsn, kafka), subscribed(kafka, projects) as got:
            await asyncio.gather(
                *(lifecycle(api, key) for key in [api.key_a, api.key_b] * 15 for _ in range(2))
            )
            ids = await logged_ids(pool, projects)
            await got.wait_for(ids)
    assert len(got.envelopes) == len(ids) == 180
    got.assert_stream_order()
    rows = await pool.fetch(
        "SELECT event_id, type, schema_version, stream_id, version, position, project_id,"
        " data, recorded_at FROM events WHERE project_id = ANY($1::text[])",
        sorted(projects),
    )
    by_id = {e.id: e for e in got.envelopes}
    for row in rows:
        e = by_id[row["event_id"]]
        assert (e.type, e.schema, e.stream_id, e.stream_version, e.position, e.project_id) == (
            row["type"],
            row["schema_version"],
            row["stream_id"],
            row["version"],
            row["position"],
            row["project_id"],
        )
        assert json.loads(bytes(e.data)) == json.loads(row["data"])
        assert e.time == row["recorded_at"]
    saved = await pool.fetchval("SELECT position FROM checkpoints WHERE name = $1", CHECKPOINT)
    assert saved > 0


async def test_records_are_keyed_by_stream_with_type_and_id_headers(
    pool: asyncpg.Pool, fresh_dsn: str, kafka: str
) -> None:
    async with running_api(pool) as api, relaying(fresh_dsn, kafka):
        task = await create(api)
        row = await pool.fetchrow("SELECT event_id, stream_id FROM events WHERE version = 0")
        consumer = AIOKafkaConsumer(
            "taskstream.task",
            bootstrap_servers=kafka,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            session_timeout_ms=2000,  # tansu makes a join wait half of it
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        try:
            found = None
            deadline = time.monotonic() + 30
            while found is None and time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for m in messages:
                        if dict(m.headers)["id"] == str(row["event_id"]).encode():
                            found = m
        finally:
            await consumer.stop()
    assert found is not None, "the task.created record never arrived"
    assert found.key == row["stream_id"].encode() == f"task-{task['id']}".encode()
    assert dict(found.headers) == {"type": b"task.created", "id": str(row["event_id"]).encode()}
    assert decode(found.value or b"", EventEnvelope).id == row["event_id"]


async def _behind_checkpoint(pool: asyncpg.Pool, ids: set[uuid.UUID]) -> int:
    """How many of `ids` the relay's checkpoint has already moved past."""
    return int(
        await pool.fetchval(
            """SELECT count(*) FROM events e, checkpoints c
                WHERE c.name = $1 AND e.event_id = ANY($2::uuid[])
                  AND (e.txid, e.position) <= (c.txid, c.position)""",
            CHECKPOINT,
            list(ids),
        )
    )


async def _pause_drill(pool: asyncpg.Pool, dsn: str, broker: EmbeddedKafka, pause: float) -> None:
    """Pause the broker while tasks are created: the API answers, the backlog drains after."""
    async with running_api(pool, rate_limit_per_second=0) as api:
        projects = {api.project_a}
        async with relaying(dsn, broker.bootstrap), subscribed(broker.bootstrap, projects) as got:
            await asyncio.gather(*(lifecycle(api) for _ in range(5)))
            before = await logged_ids(pool, projects)
            await got.wait_for(before)
            os.kill(broker.pid, signal.SIGSTOP)
            slowest, created = 0.0, 0
            try:
                end = time.monotonic() + pause
                while time.monotonic() < end:
                    started = time.monotonic()
                    await lifecycle(api)
                    slowest = max(slowest, time.monotonic() - started)
                    created += 1
                    await asyncio.sleep(0.05)  # pacing: about 20 tasks a second
                ids = await logged_ids(pool, projects)
                # Nothing the paused broker could not acknowledge is behind the checkpoint.
                assert await _behind_checkpoint(pool, ids - before) == 0
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await got.wait_for(ids, timeout=pause + 120)
    assert created >= 5 and slowest < 2.0, (created, slowest)
    assert got.ids() == ids
    got.assert_stream_order()


async def test_broker_paused_for_seconds_api_answers_and_backlog_drains(
    pool: asyncpg.Pool, fresh_dsn: str, own_kafka: EmbeddedKafka
) -> None:
    await _pause_drill(pool, fresh_dsn, own_kafka, pause=3)


@pytest.mark.slow
async def test_broker_paused_for_45s_api_answers_and_backlog_drains(
    pool: asyncpg.Pool, fresh_dsn: str, own_kafka: EmbeddedKafka
) -> None:
    await _pause_drill(pool, fresh_dsn, own_kafka, pause=45)


async def test_relay_keeps_going_after_the_broker_restarts_empty(
    pool: asyncpg.Pool, fresh_dsn: str, own_kafka: EmbeddedKafka
) -> None:
    async with running_api(pool) as api:
        projects = {api.project_a}
        async with relaying(fresh_dsn, own_kafka.bootstrap) as relay:
            async with subscribed(own_kafka.bootstrap, projects) as before:
                await asyncio.gather(*(lifecycle(api) for _ in range(5)))
                first = await logged_ids(pool, projects)
                await before.wait_for(first)
            own_kafka.kill()
            own_kafka.start()  # same port, nothing in it
            await asyncio.gather(*(lifecycle(api) for _ in range(5)))
            later = await logged_ids(pool, projects) - first
            async with subscribed(own_kafka.bootstrap, projects) as after:
                await after.wait_for(later, timeout=60)
            relayed = relay.relayed
    assert after.ids() == later
    after.assert_stream_order()
    assert relayed >= len(first) + len(later)


async def test_replay_republishes_the_log_from_a_time_on(
    pool: asyncpg.Pool, fresh_dsn: str, kafka: str
) -> None:
    async with running_api(pool) as api:
        projects = {api.project_a}
        for _ in range(3):
            await lifecycle(api)
        earlier = await logged_ids(pool, projects)
        since = await pool.fetchval("SELECT clock_timestamp()")
        for _ in range(4):
            await lifecycle(api)
        later = await logged_ids(pool, projects) - earlier
        async with subscribed(kafka, projects) as got:
            proc = await asyncio.create_subprocess_exec(
                *taskstream("events", "replay", "--since", since.isoformat()),
                env=relay_env(fresh_dsn, kafka),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, out.decode()
            await got.wait_for(later)
    assert f"republished {len(later)} events" in out.decode()
    assert not got.ids() & earlier
    got.assert_stream_order()


async def _lock_holders(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            """SELECT count(*) FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2
                  AND database = (SELECT oid FROM pg_database
                                   WHERE datname = current_database())""",
            *LOCK_KEY,
        )
    )


async def test_two_relays_one_produces_the_other_takes_over_when_it_dies(
    pool: asyncpg.Pool, fresh_dsn: str, kafka: str
) -> None:
    env = relay_env(fresh_dsn, kafka)
    first = Process(taskstream("relay"), env)
    second: Process | None = None
    try:
        await asyncio.to_thread(first.wait_for, "relay active", 60)
        second = Process(taskstream("relay"), env)
        await asyncio.to_thread(second.wait_for, "standing by", 60)
        async with running_api(pool) as api:
            projects = {api.project_a}
            async with subscribed(kafka, projects) as got:
                await asyncio.gather(*(lifecycle(api) for _ in range(5)))
                await got.wait_for(await logged_ids(pool, projects))
                assert await _lock_holders(pool) == 1
                assert not any("relay active" in line for line in second.drain())
                first.stop(signal.SIGKILL)
                await asyncio.to_thread(second.wait_for, "relay active", 30)
                await asyncio.gather(*(lifecycle(api) for _ in range(5)))
                ids = await logged_ids(pool, projects)
                await got.wait_for(ids)
        assert got.ids() == ids
        got.assert_stream_order()
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            assert second.stop() == 0, "\n".join(second.drain())


def test_replay_refuses_a_since_that_is_not_a_time(kafka: str) -> None:
    env = relay_env("postgresql://unused@127.0.0.1:1/none", kafka)
    done = subprocess.run(
        taskstream("events", "replay", "--since", "yesterday-ish"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--since must be an ISO 8601 time, got 'yesterday-ish'" in done.stderr


def test_relay_refuses_to_start_without_a_bootstrap() -> None:
    done = subprocess.run(taskstream("relay"), env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 2
    assert "TASKSTREAM_KAFKA_BOOTSTRAP" in done.stderr


def test_dev_kafka_is_off_or_the_given_cluster_without_starting_a_broker() -> None:
    off = Settings(kafka_enabled=False, kafka_bootstrap="127.0.0.1:1")
    assert kafka_for_dev(off)[1] is None
    given = Settings(kafka_bootstrap="kafka.example:9092")
    settings, bootstrap, _ = kafka_for_dev(given)
    assert bootstrap == "kafka.example:9092" and settings.kafka_idempotence


def test_embedded_broker_dies_with_the_process_that_started_it() -> None:
    code = (
        "from infra.embedded_kafka import EmbeddedKafka\n"
        "b = EmbeddedKafka(); b.start(); print(b.pid, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{broker_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{broker_pid}").exists(), "tansu outlived its parent"


async def test_dev_runs_the_relay_on_an_embedded_broker_and_tail_prints_events(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    server = Process(
        taskstream("dev", "--port", str(port), "--data-dir", str(data_dir)),
        cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn),
    )
    tail: Process | None = None
    try:
        line = await asyncio.to_thread(server.wait_for, "embedded Kafka (tansu) on", 90)
        bootstrap = line.rsplit(" ", 1)[1]
        await asyncio.to_thread(server.wait_for, "relay to Kafka", 90)
        key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"ApiKey {key}"}) as http,
            http.post(f"http://127.0.0.1:{port}/api/tasks", json=http_task()) as r,
        ):
            assert r.status == 201
            task_id = (await r.json())["data"]["id"]
        # No bootstrap given: tail finds the one dev recorded in its data directory.
        assert json.loads((data_dir / "kafka.json").read_text()) == {"bootstrap": bootstrap}
        tail = Process(taskstream("events", "tail", "--data-dir", str(data_dir)), cli_env())
        printed = await asyncio.to_thread(tail.wait_for, f'"stream_id":"task-{task_id}"', 60)
        assert decode(printed, EventEnvelope).type == "task.created"
    finally:
        if tail is not None:
            tail.stop()
        assert server.stop() == 0
    assert not (data_dir / "kafka.json").exists(), "a stopped dev's broker is gone: forget it"
    host, broker_port = bootstrap.split(":")

    async def broker_gone() -> bool:
        try:
            _, writer = await asyncio.open_connection(host, int(broker_port))
        except OSError:
            return True
        writer.close()
        return False

    await eventually(broker_gone, timeout=10)
