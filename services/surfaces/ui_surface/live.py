"""One server-sent-event stream per tab: which topics changed, never the data itself.

The page listens with htmx (`hx-trigger="sse:<topic>"`) and re-fetches only the fragment that
shows the topic; at most one signal per DEBOUNCE_SECONDS, so a burst costs one refresh. Pages
also poll slowly on their own, in case the stream is down.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.live.changes import ChangeFeed
from services.surfaces.kit.context import context_of
from services.surfaces.kit.surface import project_of

FEED = web.AppKey("ui_change_feed", ChangeFeed)
DEBOUNCE_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


async def events(request: web.Request) -> web.StreamResponse:
    feed = request.app[FEED]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                 "X-Accel-Buffering": "no"}
    )  # fmt: skip
    await response.prepare(request)
    await response.write(b"retry: 3000\n\n")
    async with feed.watch(context_of(request).pool, project_of(request)) as watcher:
        try:
            while not feed.closed:
                topics = await watcher.next(KEEPALIVE_SECONDS)
                if not topics:
                    await response.write(b": keep-alive\n\n")
                    continue
                message = "".join(f"event: {t}\ndata: {t}\n\n" for t in sorted(topics))
                await response.write(message.encode())
                await asyncio.sleep(DEBOUNCE_SECONDS)
        except (ConnectionResetError, ConnectionError):
            pass
    return response
