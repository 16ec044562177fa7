"""Seed 002 task endpoints under /api: thin translations onto TaskService and the task view."""

from __future__ import annotations

import msgspec
from aiohttp import web
from msgspec import UNSET

from domain import idempotency
from domain.commands import (
    CancelTask,
    CheckpointTask,
    DeleteTask,
    RetryTask,
    TriggerTask,
    UpdateTask,
)
from domain.errors import DomainError, ValidationError
from services.surfaces.api_surface import schemas as s
from services.surfaces.api_surface.task_translation import definition_from, patch_from, task_out
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import read_query, respond
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import actor_of, project_of
from services.tasks.idempotent_create import create_once, fingerprint
from services.tasks.queries import TaskFilter, list_tasks, task_logs, task_runs


async def list_handler(request: web.Request) -> web.Response:
    q = read_query(request, s.ListTasksQuery)
    offset = s.check_page(q.page, q.limit)
    ctx = context_of(request)
    states, total = await list_tasks(
        ctx.pool,
        project_of(request),
        TaskFilter(
            status=q.status,
            tag=q.tag,
            created_by=q.created_by,
            sort=q.sort,
            descending=q.order == "desc",
            limit=q.limit,
            offset=offset,
        ),
    )
    meta = s.page_meta(q.page, q.limit, total)
    return respond(s.TaskListEnvelope(data=[task_out(t) for t in states], meta=meta))


async def get_handler(request: web.Request) -> web.Response:
    state = await context_of(request).tasks.get(project_of(request), request.match_info["id"])
    return respond(s.TaskEnvelope(data=task_out(state)))


async def create_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.TaskCreate)
    ctx = context_of(request)
    key = request.headers.get(idempotency.HEADER)
    replayed = False
    try:
        definition = definition_from(body, now=ctx.tasks.clock())
        if key is None:
            outcome = await ctx.tasks.create_or_match(
                project_of(request), definition, actor=actor_of(request)
            )
        else:
            once = await create_once(
                ctx.tasks,
                project_of(request),
                definition,
                key=key,
                digest=fingerprint(body),
                scope="POST /api/tasks",
                actor=actor_of(request),
            )
            outcome, replayed = once.created, once.replayed
    except DomainError as exc:
        raise _renamed(exc, used_scheduled_at=body.scheduled_at is not None) from None
    # A dedupe key that matched answers with the existing task: 200, not 201.
    return respond(
        s.TaskEnvelope(data=task_out(outcome.state)),
        status=201 if outcome.created else 200,
        headers={"Idempotent-Replayed": "true"} if replayed else None,
    )


async def update_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.TaskUpdate)
    ctx = context_of(request)
    task_id = request.match_info["id"]
    current = await ctx.tasks.get(project_of(request), task_id)
    try:
        patch = patch_from(body, current.definition)
        state = await ctx.tasks.execute(
            project_of(request), task_id, UpdateTask(patch=patch), actor=actor_of(request)
        )
    except DomainError as exc:
        raise _renamed(exc, used_scheduled_at=body.scheduled_at is not UNSET) from None
    return respond(s.TaskEnvelope(data=task_out(state)))


def _renamed(exc: DomainError, *, used_scheduled_at: bool) -> DomainError:
    # The core validates a one-shot schedule; this surface's callers wrote `scheduled_at`.
    if used_scheduled_at and exc.field == "schedule.expr":
        return ValidationError(exc.message, field="scheduled_at")
    return exc


async def delete_handler(request: web.Request) -> web.Response:
    await context_of(request).tasks.execute(
        project_of(request), request.match_info["id"], DeleteTask(), actor=actor_of(request)
    )
    return respond(
        s.DeletedEnvelope(data=s.Deleted(success=True, message="Task deleted successfully"))
    )


async def cancel_handler(request: web.Request) -> web.Response:
    state = await context_of(request).tasks.execute(
        project_of(request), request.match_info["id"], CancelTask(), actor=actor_of(request)
    )
    return respond(
        s.StatusChangeEnvelope(
            data=s.StatusChange(id=state.task_id, status="cancelled", updated_at=state.updated_at)
        )
    )


async def retry_handler(request: web.Request) -> web.Response:
    state = await context_of(request).tasks.execute(
        project_of(request), request.match_info["id"], RetryTask(), actor=actor_of(request)
    )
    return respond(
        s.RetryEnvelope(
            data=s.RetryOut(
                id=state.task_id,
                status="pending",
                retry_count=state.retry_count,
                updated_at=state.updated_at,
            )
        )
    )


async def run_now_handler(request: web.Request) -> web.Response:
    """One extra run now (seed 004's run_now, here for /api callers); the schedule stays."""
    state = await context_of(request).tasks.execute(
        project_of(request), request.match_info["id"], TriggerTask(), actor=actor_of(request)
    )
    return respond(s.TaskEnvelope(data=task_out(state)), status=202)


async def runs_handler(request: web.Request) -> web.Response:
    q = read_query(request, s.RunsQuery)
    start = s.check_page(q.page, q.limit)
    ctx = context_of(request)
    task_id = request.match_info["id"]
    await ctx.tasks.get(project_of(request), task_id)
    newest_first = list(reversed(await task_runs(ctx.pool, project_of(request), task_id)))
    return respond(
        s.RunsEnvelope(
            data=[
                s.RunOut(**msgspec.structs.asdict(r)) for r in newest_first[start : start + q.limit]
            ],
            meta=s.page_meta(q.page, q.limit, len(newest_first)),
        )
    )


async def checkpoint_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.CheckpointIn)
    state = await context_of(request).tasks.execute(
        project_of(request),
        request.match_info["id"],
        CheckpointTask(data=body.checkpoint_data),
        actor=actor_of(request),
    )
    return respond(
        s.CheckpointEnvelope(
            data=s.CheckpointOut(
                id=state.task_id, checkpoint_data=state.checkpoint_data, updated_at=state.updated_at
            )
        )
    )


async def logs_handler(request: web.Request) -> web.Response:
    q = read_query(request, s.LogsQuery)
    ctx = context_of(request)
    task_id = request.match_info["id"]
    await ctx.tasks.get(project_of(request), task_id)
    lines, total = await task_logs(
        ctx.pool, project_of(request), task_id, level=q.level, limit=q.limit, offset=q.offset
    )
    return respond(
        s.LogsEnvelope(
            data=[
                s.LogLineOut(timestamp=x.timestamp, level=x.level, message=x.message) for x in lines
            ],
            meta=s.OffsetMeta(limit=q.limit, offset=q.offset, total=total),
        )
    )


_TASK = "/tasks/{id}"
_IDEMPOTENCY_KEY = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": "Repeat a create safely: within 24 h the same key with the same body answers"
    " with the task the first request created (header Idempotent-Replayed: true); with a"
    " different body it is a 422 naming this header. 1-255 visible ASCII characters.",
    "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH},
}
ROUTES = [
    Route(
        "GET",
        "/tasks",
        list_handler,
        "List tasks",
        s.TaskListEnvelope,
        query=s.ListTasksQuery,
        errors=(401, 422),
        tags=("tasks",),
    ),
    Route(
        "POST",
        "/tasks",
        create_handler,
        "Create a task",
        s.TaskEnvelope,
        status=201,
        body=s.TaskCreate,
        example=s.CREATE_EXAMPLE,
        errors=(400, 401, 409, 413, 415, 422),
        tags=("tasks",),
        extra={"parameters": [_IDEMPOTENCY_KEY]},
    ),
    Route(
        "GET", _TASK, get_handler, "Get a task", s.TaskEnvelope, errors=(401, 404), tags=("tasks",)
    ),
    Route(
        "PUT",
        _TASK,
        update_handler,
        "Update a task (partial)",
        s.TaskEnvelope,
        body=s.TaskUpdate,
        errors=(400, 401, 404, 409, 415, 422),
        tags=("tasks",),
    ),
    Route(
        "PATCH",
        _TASK,
        update_handler,
        "Update a task (partial)",
        s.TaskEnvelope,
        body=s.TaskUpdate,
        errors=(400, 401, 404, 409, 415, 422),
        tags=("tasks",),
    ),
    Route(
        "DELETE",
        _TASK,
        delete_handler,
        "Delete a task",
        s.DeletedEnvelope,
        errors=(401, 404),
        tags=("tasks",),
    ),
    Route(
        "POST",
        _TASK + "/cancel",
        cancel_handler,
        "Cancel a task",
        s.StatusChangeEnvelope,
        errors=(401, 404, 409),
        tags=("tasks",),
    ),
    Route(
        "POST",
        _TASK + "/retry",
        retry_handler,
        "Retry a failed task",
        s.RetryEnvelope,
        errors=(401, 404, 409),
        tags=("tasks",),
    ),
    Route(
        "POST",
        _TASK + "/run-now",
        run_now_handler,
        "Run a task once now (its schedule stays)",
        s.TaskEnvelope,
        status=202,
        errors=(401, 404, 409),
        tags=("tasks",),
    ),
    Route(
        "GET",
        _TASK + "/runs",
        runs_handler,
        "A task's runs (attempts), newest first",
        s.RunsEnvelope,
        query=s.RunsQuery,
        errors=(401, 404, 422),
        tags=("tasks",),
    ),
    Route(
        "GET",
        _TASK + "/logs",
        logs_handler,
        "Get a task's logs",
        s.LogsEnvelope,
        query=s.LogsQuery,
        errors=(401, 404, 422),
        tags=("tasks",),
    ),
    Route(
        "POST",
        _TASK + "/checkpoint",
        checkpoint_handler,
        "Update a task's checkpoint",
        s.CheckpointEnvelope,
        body=s.CheckpointIn,
        errors=(400, 401, 404, 409, 415, 422),
        tags=("tasks",),
    ),
]
