"""GET /health: can the service take and run messages right now? No authentication."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import respond
from services.surfaces.messages_surface.schemas import Health
from services.system import health as system_health

# The system-status probes' health words, in this document's words.
_WORDS = {"healthy": "connected", "degraded": "connected", "down": "disconnected"}


async def health_handler(request: web.Request) -> web.Response:
    """200 `healthy` when the database and the broker answer; 503 `unhealthy` when one does not.

    The embedded broker of `taskstream dev` has no address to probe: it is `unknown`, not down.
    """
    ctx = context_of(request)
    database, broker = await asyncio.gather(
        system_health.database(ctx.pool), system_health.broker(ctx.settings.broker_url)
    )
    healthy = database.status != "down" and broker.status != "down"
    word = _WORDS.get(broker.status, "unknown")
    return respond(
        Health(
            status="healthy" if healthy else "unhealthy",
            database=_WORDS.get(database.status, "unknown"),
            broker=word,
            # The embedded broker of `taskstream dev` is a Redis too.
            redis=word if broker.kind in ("redis", "embedded") else msgspec.UNSET,
        ),
        status=200 if healthy else 503,
    )
