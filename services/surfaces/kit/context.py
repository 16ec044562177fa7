"""What every surface's handlers reach through the app: settings, pool, services, auth."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from infra.secret_store import Keyring
from infra.settings import Settings
from services.jobs.service import JobService
from services.surfaces.kit.auth import Authenticator
from services.surfaces.kit.rate_limit import RateLimiter
from services.tasks.service import TaskService


@dataclass(frozen=True)
class GatewayContext:
    settings: Settings
    pool: asyncpg.Pool
    tasks: TaskService
    keyring: Keyring
    jobs: JobService
    auth: Authenticator
    rate_limiter: RateLimiter
    # Failed authentications per client address (issue 10 §4): guessing keys costs time.
    auth_failures: RateLimiter


CONTEXT = web.AppKey("taskstream_context", GatewayContext)


def context_of(request: web.Request) -> GatewayContext:
    """The gateway context, from the root app (sub-apps share it)."""
    return request.config_dict[CONTEXT]
