"""Running dramatiq workers inside a taskstream process, with loop-bound resources.

Why this module exists: `taskstream worker` runs dramatiq's Worker in-process (one process,
N threads, no forking CLI), so it has to do the few things dramatiq's own CLI would do: run
the process-boot hooks, stop gracefully on SIGTERM/SIGINT, close the broker.

Our actors are `async def` and talk to Postgres through asyncpg, whose pools belong to one
event loop. dramatiq's AsyncIO middleware runs every async actor on a single event-loop
thread; `LoopResources` builds the shared resources (an asyncpg pool, an HTTP session) on that
same loop when the worker boots and closes them when it has stopped, so actors can use them.
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, Generic, TypeVar

import dramatiq
import dramatiq.asyncio
from dramatiq.middleware import AsyncIO, Middleware, MiddlewareError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: dramatiq keeps one event-loop thread per process (a module global), so one Worker at a time.
_one_worker = threading.Lock()
#: Brokers whose `process_boot` hooks have run (TimeLimit starts its watchdog thread there).
_booted: weakref.WeakSet[dramatiq.Broker] = weakref.WeakSet()


class LoopResourcesError(MiddlewareError):
    """Worker resources could not be built; the worker does not start."""


class LoopResources(Middleware, Generic[T]):
    """Builds resources on dramatiq's event loop when a worker boots, closes them after it stops.

    `factory` is awaited on the AsyncIO middleware's loop thread, so whatever it creates (an
    asyncpg pool) is bound to the loop that runs the async actors. Add it to the broker *after*
    `AsyncIO` (make_broker adds AsyncIO): boot hooks run in middleware order, so the loop exists
    when we build, and shutdown hooks run in reverse order, so it still runs when we close.

    The build happens in `before_worker_boot`, not `after_worker_boot`: by the time the latter
    runs, dramatiq has already started consumer and worker threads (actors could run before
    their pool exists), and dramatiq logs-and-ignores exceptions from `after_*` hooks, while
    a `MiddlewareError` from a `before_*` hook stops `Worker.start()`. Likewise the close runs
    in `after_worker_shutdown`, once every worker thread has finished its message, rather than
    in `before_worker_shutdown`, when actors may still be using the resources.
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]] | None = None,
    ) -> None:
        self._factory = factory
        self._close = close
        self._value: T | None = None
        self._built = False

    @classmethod
    def of(cls, broker: dramatiq.Broker) -> LoopResources[Any]:
        """The LoopResources on `broker`: `LoopResources.of(get_broker()).resources()`."""
        for middleware in broker.middleware:
            if isinstance(middleware, cls):
                return middleware
        raise LookupError("no LoopResources middleware on this broker")

    def resources(self) -> T:
        """The built resources; only valid while a worker is running."""
        if not self._built:
            raise RuntimeError("worker resources are not built: no worker is running")
        return self._value  # type: ignore[return-value]  # T may itself be None-able

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = dramatiq.asyncio.get_event_loop_thread()
        if loop_thread is None or not _asyncio_precedes(broker, self):
            raise LoopResourcesError("LoopResources must be added to the broker after AsyncIO")
        try:
            self._value = loop_thread.run_coroutine(self._build())
        except Exception as exc:
            raise LoopResourcesError(f"building worker resources failed: {exc!r}") from exc
        self._built = True

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not self._built:
            return
        value, self._value, self._built = self._value, None, False
        if self._close is None:
            return
        loop_thread = dramatiq.asyncio.get_event_loop_thread()
        if loop_thread is None:
            log.error("event loop already gone: worker resources were not closed")
            return
        try:
            loop_thread.run_coroutine(self._close(value))  # type: ignore[arg-type]
        except Exception:
            log.exception("closing worker resources failed")

    async def _build(self) -> T:
        return await self._factory()


def _asyncio_precedes(broker: dramatiq.Broker, middleware: Middleware) -> bool:
    for m in broker.middleware:
        if m is middleware:
            return False
        if isinstance(m, AsyncIO):
            return True
    return False


def run_worker(
    broker: dramatiq.Broker,
    *,
    queues: set[str] | None,
    threads: int,
    stop: threading.Event,
    worker_timeout_ms: int = 1000,
    shutdown_timeout_ms: int = 600_000,
) -> None:
    """Run a dramatiq Worker in this process until `stop` is set, then stop it and the broker.

    `queues=None` consumes every queue declared on the broker (i.e. every declared actor's).
    Called from the main thread, SIGTERM and SIGINT set `stop`; the first signal starts a
    graceful stop (in-flight messages finish, prefetched ones go back to the broker), and
    a second one gets the signal's usual effect. `worker_timeout_ms` bounds how long idle
    threads take to notice the stop (and how often an idle Redis queue is polled).
    `shutdown_timeout_ms` bounds the wait for in-flight messages.

    The broker is closed on return. Raises `LoopResourcesError` if resources can't be built.
    """
    if queues is not None and not queues:
        # dramatiq reads an empty whitelist as "every queue".
        raise ValueError("queues must be None (all declared queues) or a non-empty set")
    if not any(isinstance(m, AsyncIO) for m in broker.middleware):
        raise ValueError("the broker has no AsyncIO middleware: build it with make_broker()")
    if not _one_worker.acquire(blocking=False):
        raise RuntimeError("a dramatiq Worker is already running in this process")
    try:
        _run(broker, queues, threads, stop, worker_timeout_ms, shutdown_timeout_ms)
    finally:
        _one_worker.release()


def _run(
    broker: dramatiq.Broker,
    queues: set[str] | None,
    threads: int,
    stop: threading.Event,
    worker_timeout_ms: int,
    shutdown_timeout_ms: int,
) -> None:
    if broker not in _booted:
        # dramatiq's CLI emits this in each worker process; an in-process Worker never does,
        # and without it TimeLimit's watchdog thread is never started.
        broker.emit_after("process_boot")
        _booted.add(broker)
    restore_signals = _handle_signals(stop)
    own_middleware = list(broker.middleware)
    worker = dramatiq.Worker(
        broker, queues=queues, worker_threads=threads, worker_timeout=worker_timeout_ms
    )
    try:
        worker.start()
        log.info("worker running: %d thread(s), queues %s", threads, sorted(queues or ["*"]))
        while not stop.wait(1.0):
            pass
        log.info("worker stopping")
        restore_signals()  # a second signal now acts as usual (e.g. Ctrl-C interrupts)
    finally:
        restore_signals()
        # Also after a failed start: AsyncIO's shutdown hook stops the event-loop thread.
        worker.stop(timeout=shutdown_timeout_ms)
        # Worker.start() leaves its own middleware on the broker; it would keep adding
        # consumers for this stopped worker whenever a queue is declared later.
        broker.middleware = [m for m in broker.middleware if m in own_middleware]
        broker.close()
        log.info("worker stopped")


def _handle_signals(stop: threading.Event) -> Callable[[], None]:
    """Let SIGTERM/SIGINT set `stop` (main thread only); returns an idempotent restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    previous = {
        signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)
    }

    def restore() -> None:
        while previous:
            signum, handler = previous.popitem()
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    return restore
