"""Seed 002's system endpoints under /api: the service's health and the caller's task metrics.

Components (database, broker, scheduler, workers, Kafka relay, projector) are shared
infrastructure and look the same to every project; every task number is the caller project's
own (system_figures.py).
"""

from __future__ import annotations

import time
from importlib import metadata

import psutil
from aiohttp import web

from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import read_query, respond
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import project_of
from services.system import figures as system_figures
from services.system import health as system_health
from services.system import schemas as ss


def _version() -> str:
    try:
        return metadata.version("taskstream")
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version()


def _uptime() -> int:
    """Seconds since this gateway process started."""
    return int(time.time() - psutil.Process().create_time())


async def status_handler(request: web.Request) -> web.Response:
    ctx = context_of(request)
    components = await system_health.components(ctx.pool, ctx.settings)
    stats, queues = await system_figures.task_figures(ctx.pool, project_of(request))
    return respond(
        ss.SystemStatusEnvelope(
            data=ss.SystemStatusOut(
                status=system_health.overall(components),
                version=VERSION,
                uptime=_uptime(),
                components=components,
                task_stats=stats,
                queue_depths=queues,
            )
        )
    )


def metric_names(raw: str | None) -> list[ss.MetricName]:
    """The series the comma-separated `metrics` parameter names (empty: all), in seed order."""
    given = [n.strip() for n in (raw or "").split(",") if n.strip()]
    unknown = [n for n in given if n not in ss.METRIC_NAMES]
    if unknown:
        raise HttpProblem(
            422,
            "validation_error",
            f"unknown metric {unknown[0]!r}; expected any of {', '.join(ss.METRIC_NAMES)}",
            field="metrics",
        )
    return [n for n in ss.METRIC_NAMES if n in given or not given]


async def metrics_handler(request: web.Request) -> web.Response:
    q = read_query(request, ss.MetricsQuery)
    names = metric_names(q.metrics)
    body = await system_figures.metric_series(
        context_of(request).pool, project_of(request), q.period, names
    )
    return respond(body)


SYSTEM_ROUTES = [
    Route(
        "GET",
        "/system/status",
        status_handler,
        "Health of the service's components and the caller's task figures",
        ss.SystemStatusEnvelope,
        errors=(401,),
        tags=("system",),
    ),
    Route(
        "GET",
        "/system/metrics",
        metrics_handler,
        "The caller's completion rate, error rate and execution time over time",
        ss.MetricsEnvelope,
        query=ss.MetricsQuery,
        errors=(401, 422),
        tags=("system",),
    ),
]
