"""History endpoints under /api: a task's events and schedule decisions; dead letters (a task's
runs are GET /api/tasks/{id}/runs, in tasks.py)."""

from __future__ import annotations

from aiohttp import web

from domain.run_history import next_fires
from services.surfaces.api_surface import history_schemas as h
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import read_query, respond
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import actor_of, project_of
from services.tasks.dead_letters import MAX_BULK, dead_letters, retry_dead_letters
from services.tasks.history import task_events, task_history
from services.tasks.queries import TaskSearch, keyset_from, keyset_token

MAX_EVENTS_PAGE = 500
MAX_FIRES = 100
MAX_DECISIONS = 1000


def _within(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise HttpProblem(
            422, "validation_error", f"{name} must be between {low} and {high}", field=name
        )
    return value


async def events_handler(request: web.Request) -> web.Response:
    q = read_query(request, h.EventsQuery)
    _within("limit", q.limit, 1, MAX_EVENTS_PAGE)
    _within("after_version", q.after_version, -1, 2**62)
    if q.before_version is not None:
        _within("before_version", q.before_version, 0, 2**62)
    newest_first = q.order == "desc"
    ctx = context_of(request)
    task_id = request.match_info["id"]
    await ctx.tasks.get(project_of(request), task_id)
    events = await task_events(
        ctx.pool,
        project_of(request),
        task_id,
        after_version=q.after_version,
        before_version=(2**62 if q.before_version is None else q.before_version)
        if newest_first
        else None,
        limit=q.limit,
    )
    more = len(events) == q.limit and not (newest_first and events[-1].version == 0)
    return respond(
        h.EventsEnvelope(
            data=[
                h.TaskEventOut(
                    version=e.version, type=e.type, at=e.recorded_at, actor=e.actor, data=e.data
                )
                for e in events
            ],
            meta=h.EventsMeta(
                limit=q.limit, next_version=events[-1].version if more else None
            ),
        )
    )


async def schedule_handler(request: web.Request) -> web.Response:
    q = read_query(request, h.ScheduleQuery)
    _within("count", q.count, 1, MAX_FIRES)
    _within("decisions", q.decisions, 1, MAX_DECISIONS)
    ctx = context_of(request)
    task_id = request.match_info["id"]
    state = await ctx.tasks.get(project_of(request), task_id)
    history = await task_history(ctx.pool, project_of(request), task_id)
    schedule = state.definition.schedule
    return respond(
        h.ScheduleEnvelope(
            data=h.ScheduleViewOut(
                kind=schedule.kind,
                expr=schedule.expr,
                timezone=schedule.timezone,
                lifecycle=state.lifecycle,
                next_run_at=state.next_run_at,
                next_fires=next_fires(schedule, after=ctx.tasks.clock(), count=q.count),
                decisions=history.decisions[-q.decisions :],
            )
        )
    )


def _search(tag: str | None, schedule_kind: str | None, text: str | None) -> TaskSearch:
    return TaskSearch(tag=tag, schedule_kind=schedule_kind, text=text or None)


async def dead_letters_handler(request: web.Request) -> web.Response:
    q = read_query(request, h.DeadLettersQuery)
    _within("limit", q.limit, 1, 100)
    try:
        after = None if q.cursor is None else keyset_from(q.cursor)
    except ValueError as exc:
        raise HttpProblem(422, "validation_error", f"cursor: {exc}", field="cursor") from None
    rows, key = await dead_letters(
        context_of(request).pool,
        project_of(request),
        _search(q.tag, q.schedule_kind, q.q),
        after=after,
        limit=q.limit,
    )
    return respond(
        h.DeadLettersEnvelope(
            data=[
                h.DeadLetterOut(
                    id=r.task_id,
                    name=r.name,
                    tags=list(r.tags),
                    schedule_kind=r.schedule_kind,
                    failed_at=r.updated_at,
                    error=r.error,
                    retry_count=r.retry_count,
                )
                for r in rows
            ],
            meta=h.CursorMeta(
                limit=q.limit, next_cursor=None if key is None else keyset_token(key)
            ),
        )
    )


async def retry_dead_letters_handler(request: web.Request) -> web.Response:
    body = await read_json(request, h.DeadLetterRetry)
    if (body.ids is None) == (body.filter is None):
        raise HttpProblem(
            422, "validation_error", "give exactly one of ids and filter", field="ids"
        )
    if body.ids is not None and not 1 <= len(body.ids) <= MAX_BULK:
        raise HttpProblem(
            422, "validation_error", f"ids must hold 1 to {MAX_BULK} task ids", field="ids"
        )
    f = body.filter
    outcome = await retry_dead_letters(
        context_of(request).tasks,
        project_of(request),
        ids=body.ids,
        search=None if f is None else _search(f.tag, f.schedule_kind, f.q),
        dry_run=body.dry_run,
        actor=actor_of(request),
    )
    return respond(
        h.BulkRetryEnvelope(
            data=h.BulkRetryOut(
                dry_run=body.dry_run,
                matched=outcome.matched,
                retried=outcome.retried,
                refused=outcome.refused,
            )
        )
    )


_TASK = "/tasks/{id}"
HISTORY_ROUTES = [
    Route("GET", _TASK + "/events", events_handler,
          "A task's own event stream, paged by version (header values redacted)",
          h.EventsEnvelope, query=h.EventsQuery, errors=(401, 404, 422), tags=("history",)),
    Route("GET", _TASK + "/schedule", schedule_handler,
          "The next fire instants (DST rule applied) and the past schedule decisions",
          h.ScheduleEnvelope, query=h.ScheduleQuery, errors=(401, 404, 422), tags=("history",)),
    Route("GET", "/dead-letters", dead_letters_handler,
          "Tasks whose last run failed for good, most recently failed first",
          h.DeadLettersEnvelope, query=h.DeadLettersQuery, errors=(401, 422), tags=("history",)),
    Route("POST", "/dead-letters/retry", retry_dead_letters_handler,
          "Retry dead letters by ids or by filter; dry_run gives the count first",
          h.BulkRetryEnvelope, body=h.DeadLetterRetry, errors=(400, 401, 415, 422),
          tags=("history",)),
]  # fmt: skip
