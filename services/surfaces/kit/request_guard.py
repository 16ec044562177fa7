"""Refusals that come before any surface's handler: NUL bytes, and paths nothing serves.

PostgreSQL cannot store a NUL, so a `%00` that reached a query was a 500; it is refused here,
for every route at once, as a 400 naming the parameter. A path or method nothing serves is
answered as JSON in the canonical (seed 002) error shape instead of aiohttp's plain text.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.route_table import Handler

Render = Callable[[HttpProblem], web.StreamResponse]
Middleware = Callable[[web.Request, Handler], object]
# The error shape of each root-level surface's routes; anything else speaks the canonical one.
SURFACE_RENDERS = web.AppKey("surface_renders", dict)


def _nul(name: str) -> HttpProblem:
    return HttpProblem(
        400, "invalid_request", f"{name}: NUL characters (%00) are not allowed", field=name
    )


def nul_problem(request: web.Request) -> HttpProblem | None:
    """A 400 naming the path parameter or query parameter holding a NUL byte, if any does."""
    for name, value in request.match_info.items():
        if "\x00" in value:
            return _nul(name)
    for key, value in request.query.items():
        if "\x00" in key:
            return _nul("query")
        if "\x00" in value:
            return _nul(key)
    if "\x00" in request.path:
        return _nul("path")
    return None


def unmatched_problem(request: web.Request) -> HttpProblem | None:
    """The 404/405 aiohttp would answer in plain text for a path or method nothing serves."""
    exc = request.match_info.http_exception
    if exc is None:
        return None
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
    code = exc.reason.lower().replace(" ", "_")
    return HttpProblem(exc.status, code, f"{exc.reason}: {request.method} {request.path}",
                       headers=headers)  # fmt: skip


def request_guard(canonical: Render) -> Callable[..., object]:
    """The root middleware: refuse NUL bytes and unknown paths, in the owning surface's shape."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        problem = unmatched_problem(request) or nul_problem(request)
        if problem is None:
            return await handler(request)
        renders = request.app.get(SURFACE_RENDERS, {})
        render = renders.get(request.match_info.route.resource, canonical)
        return render(problem)

    return guard
