"""Declared routes: what aiohttp serves and what the OpenAPI document describes, from one list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    response: Any
    status: int = 200
    body: Any = None
    query: Any = None
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    auth: bool = True
    # A request body the OpenAPI document shows (and the schema fuzzer sends): one that succeeds.
    example: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def add_routes(app: web.Application, routes: Sequence[Route]) -> None:
    """Register every declared route on `app`."""
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
