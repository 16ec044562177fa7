"""The canonical API (seed 002) at /api: `{data, meta, error}` envelope, auth, versioning."""

from __future__ import annotations

import re

from aiohttp import web

from services.surfaces.api_surface import schemas as s
from services.surfaces.api_surface.history import HISTORY_ROUTES
from services.surfaces.api_surface.system import SYSTEM_ROUTES
from services.surfaces.api_surface.tasks import ROUTES
from services.surfaces.api_surface.webhooks import WEBHOOK_ROUTES
from services.surfaces.api_surface.workers import WORKER_ROUTES
from services.surfaces.kit.http_json import respond
from services.surfaces.kit.openapi import add_docs_routes, openapi_document
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.route_table import Handler, add_routes
from services.surfaces.kit.surface import Surface, authenticate, problem_pages

MOUNT = "/api"
API_VERSION = "1.0"
_PUBLIC = frozenset({"/api/openapi.json", "/api/docs"})
_VERSION = re.compile(r"version=([0-9.]+)")


def render(problem: HttpProblem) -> web.Response:
    """Seed 002's error shape."""
    body = s.ErrorEnvelope(
        error=s.ErrorBody(code=problem.code, message=problem.message, details=problem.details)
    )
    return respond(body, status=problem.status, headers=problem.headers)


errors = problem_pages(lambda _request, problem: render(problem))


@web.middleware
async def authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in _PUBLIC or request.path.startswith("/api/docs/"):
        return await handler(request)
    accept = request.headers.get("Accept", "")
    if (m := _VERSION.search(accept)) and m.group(1) not in ("1", "1.0"):
        raise HttpProblem(
            406, "unsupported_version", f"API version {m.group(1)} is not served; use 1.0"
        )
    limit_headers = await authenticate(request)
    try:
        response = await handler(request)
    except HttpProblem as problem:
        problem.headers.update(limit_headers)
        raise
    response.headers.update(limit_headers)
    return response


API_ROUTES = ROUTES + HISTORY_ROUTES + WEBHOOK_ROUTES + WORKER_ROUTES + SYSTEM_ROUTES
SURFACE = Surface("api", API_ROUTES, render, s.ErrorEnvelope, prefix=MOUNT)


def build_api_app() -> web.Application:
    """The /api sub-application; its own document (this surface only) at /api/openapi.json."""
    app = web.Application(middlewares=[errors, authenticated])
    add_routes(app, API_ROUTES)
    document = openapi_document([SURFACE], title="taskstream API", version=API_VERSION)
    add_docs_routes(app, document, mount=MOUNT)
    return app
