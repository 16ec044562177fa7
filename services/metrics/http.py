"""Serving /metrics: on the gateway's own port, and on a port of its own in every other process.

Every process exposes its process metrics (services/metrics/catalog.py). The gateway and the
scheduler add the state gauges, read from PostgreSQL at scrape time (services/metrics/state.py).
A non-gateway process serves /metrics from a small aiohttp server on a thread of its own, so it
works the same in an asyncio process (scheduler, relay, projector) and in a dramatiq worker,
whose main thread is busy running the worker.

The endpoint answers without credentials, like any Prometheus exporter: it holds counts and
route templates only, never a task, project or worker id. Keep its ports off public networks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from infra.settings import Settings
from services.metrics.state import state_exposition

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# TASKSTREAM_METRICS_PORT overrides these; the gateway serves /metrics on its API port.
DEFAULT_PORTS = {"scheduler": 9101, "worker": 9102, "relay": 9103, "projector": 9104}
# The roles that add the state gauges (any replica reports the same values).
STATE_ROLES = frozenset({"gateway", "scheduler"})
# A scrape must not hang on a database that does not answer.
STATE_TIMEOUT_SECONDS = 5.0

Connect = Callable[[], contextlib.AbstractAsyncContextManager[asyncpg.Connection]]


class StateCache:
    """The state gauges as text, read at most once per `max_age` seconds.

    /metrics answers without credentials, so however often it is requested the database sees
    at most one read per process per `max_age`; concurrent scrapes share that read.
    """

    def __init__(self, connect: Connect, max_age: float = 1.0) -> None:
        self.connect = connect
        self.max_age = max_age
        self._text = b""
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    async def text(self) -> bytes:
        """The state gauges, or nothing while the database does not answer (logged)."""
        async with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                self._text = await self._read()
                self._read_at = time.monotonic()
            return self._text

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(STATE_TIMEOUT_SECONDS), self.connect() as conn:
                return await state_exposition(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("metrics: could not read the state gauges: %s", exc)
            return b""


async def exposition(state: StateCache | None) -> bytes:
    """This process's metrics, plus the state gauges when given them.

    Without the database the process metrics are still served: a scrape that fails as a whole
    would hide exactly the figures needed to see why.
    """
    body = generate_latest(REGISTRY)
    return body if state is None else body + await state.text()


def add_metrics_route(app: web.Application, connect: Connect | None) -> None:
    """GET /metrics on `app`: the process metrics, and the state gauges given `connect`."""
    state = None if connect is None else StateCache(connect)

    async def handle(_: web.Request) -> web.Response:
        body = await exposition(state)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get(METRICS_PATH, handle)


def pool_connect(pool: asyncpg.Pool) -> Connect:
    """A connection borrowed from `pool` (the gateway's)."""
    return lambda: pool.acquire()


def dsn_connect(dsn: str) -> Connect:
    """A connection of its own per scrape: the metrics thread's loop cannot share a pool."""

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[asyncpg.Connection]:
        conn = await asyncpg.connect(dsn, timeout=STATE_TIMEOUT_SECONDS)
        try:
            yield conn
        finally:
            await conn.close()

    return connect


def metrics_port(settings: Settings, role: str) -> int:
    """The /metrics port of a non-gateway process: TASKSTREAM_METRICS_PORT or the role's own."""
    return settings.metrics_port if settings.metrics_port is not None else DEFAULT_PORTS[role]


class MetricsServer:
    """/metrics on `host`:`port`, served by an event loop on a daemon thread."""

    def __init__(self, host: str, port: int, connect: Connect | None) -> None:
        self.host = host
        self.port = port
        self._connect = connect
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)

    def start(self) -> None:
        """Bind and serve; raises OSError if the port is taken."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop serving and wait for the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application()
        add_metrics_route(app, self._connect)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except Exception as exc:
            self._error = exc
            await runner.cleanup()
            return
        finally:
            self._ready.set()
        await self._stop.wait()
        await runner.cleanup()


def start_metrics_server(
    settings: Settings, role: str, *, dsn: str | None = None
) -> MetricsServer | None:
    """Serve /metrics for a `role` process (scheduler, worker, relay, projector).

    The port is TASKSTREAM_METRICS_PORT or the role's default (DEFAULT_PORTS; 0 turns it off),
    the address TASKSTREAM_METRICS_HOST. Roles in STATE_ROLES add the state gauges, read from
    `dsn` (default TASKSTREAM_DATABASE_URL). Returns the running server, or None when off or
    when the port is taken (logged).
    """
    port = metrics_port(settings, role)
    if port == 0:
        return None
    dsn = dsn or settings.database_url
    connect = dsn_connect(dsn) if dsn and role in STATE_ROLES else None
    server = MetricsServer(settings.metrics_host, port, connect)
    try:
        server.start()
    except OSError as exc:
        # A second process of a role on one host: it runs, unscraped, rather than not at all.
        log.warning(
            "%s: /metrics not served (%s); set TASKSTREAM_METRICS_PORT to a free port", role, exc
        )
        return None
    print(f"{role} metrics on http://{settings.metrics_host}:{port}{METRICS_PATH}")
    return server
