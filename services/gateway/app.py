"""The gateway: one aiohttp application serving every API surface over the same core."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from infra.secret_store import TaskSecretStore, load_keyring
from infra.settings import Settings
from services.jobs.service import JobService
from services.metrics.http import add_metrics_route, pool_connect
from services.surfaces.agent_tasks_surface import routes as agent_tasks
from services.surfaces.api_surface.surface import API_VERSION, MOUNT, build_api_app
from services.surfaces.api_surface.surface import SURFACE as API_SURFACE
from services.surfaces.api_surface.surface import render as api_render
from services.surfaces.jobs_surface import routes as jobs
from services.surfaces.kit.auth import Authenticator
from services.surfaces.kit.context import CONTEXT, GatewayContext
from services.surfaces.kit.openapi import add_docs_routes, openapi_document
from services.surfaces.kit.rate_limit import RateLimiter
from services.surfaces.kit.request_guard import request_guard
from services.surfaces.kit.request_metrics import observe_requests
from services.surfaces.kit.surface import Surface, mount_surface
from services.surfaces.messages_surface import routes as messages
from services.surfaces.publish_surface import routes as publish
from services.surfaces.ui_surface.surface import MOUNT as UI_MOUNT
from services.surfaces.ui_surface.surface import build_ui_app
from services.tasks.service import TaskService

# The surfaces at the root, beside /api (a sub-application of its own). A new surface joins
# the gateway and the OpenAPI document by being listed here with its route table.
ROOT_SURFACES: tuple[Surface, ...] = (
    agent_tasks.SURFACE,
    jobs.SURFACE,
    publish.SURFACE,
    messages.SURFACE,
)


def build_app(settings: Settings, pool: asyncpg.Pool) -> web.Application:
    """The root application; the caller owns `pool`, the app owns its group committer.

    Raises SecretsKeyError when the settings give no secrets key (docs/secrets.md).
    """
    keyring = load_keyring(settings)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[observe_requests, request_guard(api_render)],
    )

    allow = parse_allow_list(settings.egress_allow_cidrs)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        committer = GroupCommitter(
            pool, max_batch=settings.group_commit_max, flushers=settings.group_commit_flushers
        )
        tasks = TaskService(
            pool,
            committer,
            secrets=TaskSecretStore(pool, keyring),
            allow_commands=settings.allow_commands,
            egress_allow=allow,
        )
        app[CONTEXT] = GatewayContext(
            settings=settings,
            pool=pool,
            tasks=tasks,
            jobs=JobService(tasks, allow_commands=settings.allow_commands),
            keyring=keyring,
            auth=Authenticator(pool, settings),
            rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            auth_failures=RateLimiter(
                settings.auth_failure_per_second, settings.auth_failure_burst
            ),
        )
        yield
        await committer.close()

    app.cleanup_ctx.append(lifecycle)
    app.add_subapp(MOUNT, build_api_app())
    ui_key = settings.ui_session_key or secrets.token_urlsafe(32)
    app.add_subapp(UI_MOUNT, build_ui_app(ui_key.encode()))
    add_metrics_route(app, pool_connect(pool))
    for surface in ROOT_SURFACES:
        mount_surface(app, surface, settings)
    add_docs_routes(app, gateway_document(), mount="")
    return app


def gateway_document() -> dict[str, Any]:
    """The OpenAPI document of every surface, as served at /openapi.json and in openapi.yaml."""
    return openapi_document([API_SURFACE, *ROOT_SURFACES], title="taskstream", version=API_VERSION)
