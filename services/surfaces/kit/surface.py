"""What every API surface shares: turning failures into problems, authenticating, mounting.

Each surface (seed 002 at /api, the seed 000/001/004 surfaces at the root) differs only in its
error shape (`render`) and its auth words; the rest lives here so no surface copies it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from domain.errors import DomainError
from infra.settings import Settings
from services.surfaces.kit.auth import Principal
from services.surfaces.kit.context import context_of
from services.surfaces.kit.problems import HttpProblem, from_domain
from services.surfaces.kit.rate_limit import Verdict
from services.surfaces.kit.request_guard import SURFACE_RENDERS
from services.surfaces.kit.route_table import Handler, Route
from services.tasks.service import Actor

log = logging.getLogger(__name__)

PRINCIPAL = web.RequestKey("principal", Principal)
Render = Callable[[HttpProblem], web.StreamResponse]


def actor_of(request: web.Request) -> Actor:
    """Who is acting, for the events this request appends."""
    p = request[PRINCIPAL]
    return Actor(p.actor_kind, p.actor_id, request.headers.get("X-Request-Id"))


def project_of(request: web.Request) -> str:
    """The authenticated caller's project."""
    return request[PRINCIPAL].project_id


def problem_of(request: web.Request, exc: Exception) -> HttpProblem:
    """Any failure as an HttpProblem; unexpected ones are logged and become a bare 500."""
    if isinstance(exc, HttpProblem):
        return exc
    if isinstance(exc, DomainError):
        return from_domain(exc)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return HttpProblem(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    log.error("unhandled error on %s %s", request.method, request.rel_url.path, exc_info=exc)
    return HttpProblem(500, "internal_error", "internal server error")


async def authenticate(request: web.Request, authorization: str | None = None) -> dict[str, str]:
    """Resolve the caller into request[PRINCIPAL] and charge its rate limit.

    Returns the rate-limit headers for the answer; over the limit raises a 429 problem.
    """
    header = request.headers.get("Authorization") if authorization is None else authorization
    ctx = context_of(request)
    address = request.remote or "unknown"
    failures = ctx.auth_failures
    if failures.enabled and not failures.has_token(address):
        raise _throttled(failures.take(address))
    try:
        principal = await ctx.auth.principal(header)
    except HttpProblem as problem:
        if problem.status == 401 and failures.enabled:
            failures.take(address)
        raise
    return admit(request, principal)


def _throttled(verdict: Verdict) -> HttpProblem:
    return HttpProblem(
        429,
        "too_many_failed_authentications",
        f"too many failed authentications from this address; retry in {verdict.retry_after} s",
        headers={"Retry-After": str(verdict.retry_after)},
    )


def admit(request: web.Request, principal: Principal) -> dict[str, str]:
    """Record an already authenticated `principal` and charge its project's rate limit.

    Returns the rate-limit headers for the answer; over the limit raises a 429 problem.
    """
    ctx = context_of(request)
    request[PRINCIPAL] = principal
    if not ctx.rate_limiter.enabled:
        return {}
    verdict = ctx.rate_limiter.take(principal.project_id)
    if not verdict.allowed:
        raise HttpProblem(
            429,
            "rate_limited",
            f"rate limit exceeded; retry in {verdict.retry_after} s",
            headers=verdict.headers(),
        )
    return verdict.headers()


def problem_pages(
    render: Callable[[web.Request, HttpProblem], web.StreamResponse],
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware answering every failure below it with `render` (redirects pass through)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return render(request, problem_of(request, exc))
        except Exception as exc:  # every failure takes the surface's shape
            return render(request, problem_of(request, exc))

    return middleware


Authenticate = Callable[[web.Request], Awaitable[dict[str, str]]]


def guarded(handler: Handler, render: Render, auth: Authenticate | None) -> Handler:
    """`handler` with the surface's auth in front and its error shape on every failure."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        headers: dict[str, str] = {}
        try:
            if auth is not None:
                headers = await auth(request)
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = render(problem_of(request, exc))
        except Exception as exc:  # every failure takes the surface's shape
            problem = problem_of(request, exc)
            problem.headers.update(headers)
            return render(problem)
        response.headers.update(headers)
        return response

    return wrapped


def _default_auth(_: Settings) -> Authenticate:
    return authenticate


@dataclass(frozen=True)
class Surface:
    """One API surface as the gateway composes it and the OpenAPI document describes it.

    Its route table is the one place its paths, bodies, queries, examples and refusals are
    declared: a surface joins the gateway and the document by being in the gateway's list.
    """

    name: str
    routes: Sequence[Route]
    render: Render
    # The body of its error answers, for the document.
    error_type: Any
    prefix: str = ""
    # A surface whose clients know 400 for every bad input (seed 000) answers no 422.
    validation_status: int = 422
    # Builds the surface's authenticator from the settings (seed 001 has its own token).
    authenticator: Callable[[Settings], Authenticate] = _default_auth


def mount_surface(app: web.Application, surface: Surface, settings: Settings) -> None:
    """Register a root-level surface's routes; routes with `auth=False` skip its auth.

    The request guard answers refusals that precede the handler in the same `render` shape.
    """
    auth = surface.authenticator(settings)
    renders = app.setdefault(SURFACE_RENDERS, {})
    for route in surface.routes:
        handler = guarded(route.handler, surface.render, auth if route.auth else None)
        resource = app.router.add_route(route.method, route.path, handler).resource
        renders[resource] = surface.render
