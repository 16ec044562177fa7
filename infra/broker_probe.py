"""Is the dramatiq broker reachable? A bounded, side-effect-free probe for the status endpoint.

Redis answers `PING`; RabbitMQ is asked for the start of an AMQP 0-9-1 handshake (the server
speaks first with Connection.Start, a method frame), without logging in, so no credentials are
sent and nothing is declared. The embedded broker lives inside `taskstream dev` and has no
address to probe: it is reported as unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal
from urllib.parse import urlsplit

import redis.asyncio

BrokerKind = Literal["redis", "rabbitmq", "embedded"]
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_METHOD_FRAME = 1


def broker_kind(url: str | None) -> BrokerKind:
    """Which broker TASKSTREAM_BROKER_URL names."""
    if not url:
        return "embedded"
    return "rabbitmq" if urlsplit(url).scheme.lower().startswith("amqp") else "redis"


async def _redis_ok(url: str) -> bool:
    client = redis.asyncio.from_url(url)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def _amqp_ok(url: str) -> bool:
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "amqps"
    port = parts.port or (5671 if secure else 5672)
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=secure or None)
    try:
        writer.write(_AMQP_HEADER)
        await writer.drain()
        first = await reader.readexactly(1)
        return first[0] == _METHOD_FRAME
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def broker_reachable(url: str | None, *, within: float = 2.0) -> bool | None:
    """True if the broker answered within `within` s, False if not, None if it cannot be asked."""
    kind = broker_kind(url)
    if kind == "embedded" or url is None:
        return None
    probe = _amqp_ok(url) if kind == "rabbitmq" else _redis_ok(url)
    try:
        return await asyncio.wait_for(probe, within)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, redis.RedisError):
        return False
