"""The dashboard's pages: each a read of the application packages, rendered whole or, for a
live refresh (`?part=live`), only the fragment that changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from domain.run_history import next_fires, redact_headers
from services.fleet.registry import list_workers
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import read_query
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.surface import project_of
from services.surfaces.ui_surface import queries as uq
from services.surfaces.ui_surface.guard import page_context, signed_in
from services.surfaces.ui_surface.rendering import bar_chart, render
from services.system import figures, health
from services.tasks.dead_letters import dead_letters
from services.tasks.history import task_events, task_history
from services.tasks.queries import Keyset, TaskRow, TaskSearch, keyset_token, task_page
from services.webhooks.queries import delivery_attempts, list_endpoints, owns_endpoint

PAGE_SIZE = 50
Pager = Callable[..., Awaitable[tuple[list[TaskRow], Keyset | None]]]
DETAIL_ROWS = 50
NEXT_FIRES = 10


def _page(request: web.Request, template: str, part: str, **values: object) -> web.Response:
    return render(template, page_context(request, **values), part=part or None)


async def overview(request: web.Request) -> web.Response:
    if not signed_in(request):
        return render("login.html", page_context(request, failed=False))
    q = read_query(request, uq.PartQuery)
    ctx = context_of(request)
    project = project_of(request)
    components, counts, lateness, minutes, (failures, _) = await asyncio.gather(
        health.components(ctx.pool, ctx.settings),
        figures.overview_counts(ctx.pool, project),
        figures.recent_lateness(ctx.pool, project),
        figures.throughput_minutes(ctx.pool, project),
        dead_letters(ctx.pool, project, TaskSearch(), limit=8),
    )
    chart = bar_chart([(m.minute, m.completed, m.failed) for m in minutes])
    return _page(
        request, "overview.html", q.part,
        components=msgspec.structs.asdict(components), overall=health.overall(components),
        counts=counts, lateness=lateness, chart=chart, failures=failures,
        relay=components.kafka_relay,
    )  # fmt: skip


async def _keyset_list(
    request: web.Request, template: str, pager: Pager, **values: object
) -> web.Response:
    """A filtered list in keyset pages: the rows, and links to the next page and to itself."""
    q = read_query(request, uq.TasksQuery)
    rows, key = await pager(
        context_of(request).pool, project_of(request), q.search(), after=q.after(),
        limit=PAGE_SIZE,
    )  # fmt: skip
    next_link = None if key is None else q.link(cursor=keyset_token(key))
    return _page(
        request, template, q.part, q=q, rows=rows, next_link=next_link,
        live_link=q.link(cursor=q.cursor, part="live"), kinds=uq.KindWord.__args__[1:], **values,
    )  # fmt: skip


async def tasks(request: web.Request) -> web.Response:
    return await _keyset_list(request, "tasks.html", task_page,
                              statuses=uq.StatusWord.__args__[1:])  # fmt: skip


async def task(request: web.Request) -> web.Response:
    q = read_query(request, uq.PartQuery)
    ctx = context_of(request)
    project, task_id = project_of(request), request.match_info["id"]
    state = await ctx.tasks.get(project, task_id)
    history, events = await asyncio.gather(
        task_history(ctx.pool, project, task_id),
        task_events(ctx.pool, project, task_id, before_version=2**62, limit=DETAIL_ROWS),
    )
    definition = redact_headers(msgspec.to_builtins(state.definition))
    fires = next_fires(state.definition.schedule, after=ctx.tasks.clock(), count=NEXT_FIRES)
    return _page(
        request, "task.html", q.part, state=state, definition=definition, fires=fires,
        attempts=list(reversed(history.runs[-DETAIL_ROWS:])),
        decisions=list(reversed(history.decisions[-DETAIL_ROWS:])), events=events, done=q.done,
        status=state.lifecycle if state.lifecycle in ("paused", "cancelled") else state.run_status,
    )  # fmt: skip


async def workers(request: web.Request) -> web.Response:
    q = read_query(request, uq.PartQuery)
    rows, total = await list_workers(
        context_of(request).pool, project_of(request), status=None, limit=100, offset=0
    )
    return _page(request, "workers.html", q.part, workers=rows, total=total)


async def webhooks(request: web.Request) -> web.Response:
    q = read_query(request, uq.WebhooksQuery)
    pool, project = context_of(request).pool, project_of(request)
    endpoints, _ = await list_endpoints(pool, project, limit=100)
    attempts = None
    if q.endpoint:
        if not await owns_endpoint(pool, project, q.endpoint):
            raise HttpProblem(404, "not_found", "webhook endpoint not found", field="endpoint")
        attempts, _ = await delivery_attempts(pool, q.endpoint, limit=DETAIL_ROWS)
    return _page(
        request, "webhooks.html", q.part, endpoints=endpoints, attempts=attempts, q=q,
    )  # fmt: skip


async def dead_letter_page(request: web.Request) -> web.Response:
    return await _keyset_list(request, "dead_letters.html", dead_letters)
