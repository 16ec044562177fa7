"""The gateway: one aiohttp application serving every API surface over the same core."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from infra.group_commit import GroupCommitter
from infra.settings import Settings
from services.jobs.service import JobService
from services.metrics.http import add_metrics_route, pool_connect
from services.surfaces.agent_tasks_surface import routes as agent_tasks
from services.surfaces.api_surface.surface import MOUNT, build_api_app
from services.surfaces.jobs_surface import routes as jobs
from services.surfaces.kit.auth import Authenticator
from services.surfaces.kit.context import CONTEXT, GatewayContext
from services.surfaces.kit.rate_limit import RateLimiter
from services.surfaces.kit.request_metrics import observe_requests
from services.surfaces.kit.surface import authenticate, mount_surface
from services.surfaces.messages_surface import routes as messages
from services.surfaces.messages_surface.static_token import StaticTokenAuth
from services.surfaces.publish_surface import routes as publish
from services.tasks.service import TaskService


def build_app(settings: Settings, pool: asyncpg.Pool) -> web.Application:
    """The root application; the caller owns `pool`, the app owns its group committer."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[observe_requests])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        committer = GroupCommitter(
            pool, max_batch=settings.group_commit_max, flushers=settings.group_commit_flushers
        )
        tasks = TaskService(pool, committer, allow_commands=settings.allow_commands)
        app[CONTEXT] = GatewayContext(
            settings=settings,
            pool=pool,
            tasks=tasks,
            jobs=JobService(tasks, allow_commands=settings.allow_commands),
            auth=Authenticator(pool, settings),
            rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        )
        yield
        await committer.close()

    app.cleanup_ctx.append(lifecycle)
    app.add_subapp(MOUNT, build_api_app())
    add_metrics_route(app, pool_connect(pool))
    mount_surface(app, agent_tasks.ROUTES, render=agent_tasks.render, auth=authenticate)
    mount_surface(app, jobs.ROUTES, render=jobs.render, auth=authenticate)
    mount_surface(app, publish.ROUTES, render=publish.render, auth=authenticate)
    mount_surface(
        app, messages.ROUTES, render=messages.render, auth=StaticTokenAuth(settings.api_token)
    )
    return app
