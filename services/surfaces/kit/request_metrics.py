"""The gateway's request duration histogram, labelled by route template, never the raw path."""

from __future__ import annotations

import time

from aiohttp import web

from services.metrics.catalog import HTTP_REQUEST_DURATION
from services.surfaces.kit.route_table import Handler

# Any other method (aiohttp's parser accepts any token) is counted as "other": a label value
# a client could invent is an unbounded series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def route_label(request: web.Request) -> str:
    """The matched route's template (e.g. /api/tasks/{id}), or "unmatched" (404, 405)."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request, sub-applications' too, by method, route template and status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUEST_DURATION.labels(method, route_label(request), str(status)).observe(
            time.perf_counter() - started
        )
