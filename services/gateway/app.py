"""The gateway: one aiohttp application serving every API surface over the same core."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from infra.group_commit import GroupCommitter
from infra.settings import Settings
from services.gateway.api.surface import MOUNT, build_api_app
from services.gateway.auth import Authenticator
from services.gateway.context import CONTEXT, GatewayContext
from services.gateway.rate_limit import RateLimiter
from services.task_service import TaskService


def build_app(settings: Settings, pool: asyncpg.Pool) -> web.Application:
    """The root application; the caller owns `pool`, the app owns its group committer."""
    app = web.Application(client_max_size=settings.max_body_bytes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        committer = GroupCommitter(
            pool, max_batch=settings.group_commit_max, flushers=settings.group_commit_flushers
        )
        app[CONTEXT] = GatewayContext(
            settings=settings,
            pool=pool,
            tasks=TaskService(pool, committer, allow_commands=settings.allow_commands),
            auth=Authenticator(pool, settings),
            rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        )
        yield
        await committer.close()

    app.cleanup_ctx.append(lifecycle)
    app.add_subapp(MOUNT, build_api_app())
    return app
