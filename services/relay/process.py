"""Wiring the relay into processes: which broker, which producer, and the `events` commands."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import msgspec

from infra.embedded_kafka import start_embedded_kafka
from infra.event_envelope import EventEnvelope
from infra.json_codec import encode
from infra.kafka_publisher import KafkaPublisher
from infra.settings import Settings
from services.streaming.relay import Relay
from services.streaming.replay import replay
from services.streaming.subscriber import subscribe


def kafka_for_dev(settings: Settings) -> tuple[Settings, str | None, Callable[[], None]]:
    """`taskstream dev`'s Kafka: the configured cluster, else an embedded tansu, else none.

    With the embedded broker the producer's idempotence is turned off (tansu refuses it).
    Returns the settings to use, the bootstrap address (None: Kafka is off) and a stop hook.
    """
    if not settings.kafka_enabled:
        return settings, None, lambda: None
    if settings.kafka_bootstrap:
        return settings, settings.kafka_bootstrap, lambda: None
    bootstrap, stop = start_embedded_kafka()
    print(f"embedded Kafka (tansu) on {bootstrap}", flush=True)
    return msgspec.structs.replace(settings, kafka_idempotence=False), bootstrap, stop


def required_bootstrap(settings: Settings) -> str:
    """TASKSTREAM_KAFKA_BOOTSTRAP for the production commands; exits 2 naming it when unset."""
    if not settings.kafka_bootstrap:
        print("error: TASKSTREAM_KAFKA_BOOTSTRAP must name the Kafka cluster", file=sys.stderr)
        raise SystemExit(2)
    return settings.kafka_bootstrap


def new_publisher(settings: Settings, bootstrap: str, role: str) -> KafkaPublisher:
    """A publisher whose client id names this host, process and role."""
    client_id = f"taskstream-{role}-{socket.gethostname()}-{os.getpid()}"
    return KafkaPublisher(settings, bootstrap, client_id=client_id)


def new_relay(settings: Settings, dsn: str, bootstrap: str) -> Relay:
    """The relay of this process, configured from settings."""
    return Relay(
        dsn,
        lambda: new_publisher(settings, bootstrap, "relay"),
        batch=settings.relay_batch,
        poll_seconds=settings.relay_poll_ms / 1000,
    )


def parse_since(value: str) -> datetime:
    """An ISO 8601 time for `--since`; a time without an offset is UTC."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since must be an ISO 8601 time, got {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def replay_since(
    settings: Settings,
    dsn: str,
    bootstrap: str,
    since: datetime,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Republish the log from `since` to its head; returns how many events. `on_progress`
    hears (published so far, events recorded since `since` when it started)."""
    publisher = new_publisher(settings, bootstrap, "replay")
    conn = await asyncpg.connect(dsn)
    try:
        await publisher.start()
        total = await conn.fetchval("SELECT count(*) FROM events WHERE recorded_at >= $1", since)
        return await replay(
            conn,
            publisher,
            since,
            batch=settings.relay_batch,
            on_progress=lambda done: on_progress(done, total),
        )
    finally:
        await publisher.close()
        await conn.close()


async def tail(bootstrap: str, group: str) -> None:
    """Print every event once, as a JSON line, until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def show(envelope: EventEnvelope) -> None:
        sys.stdout.write(encode(envelope).decode() + "\n")
        sys.stdout.flush()

    await subscribe(bootstrap, group, show, stop)
