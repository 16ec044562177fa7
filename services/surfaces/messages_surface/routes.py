"""Seed 001's routes over the core: schedule, list waiting, delete; /health is public."""

from __future__ import annotations

from aiohttp import web

from domain.commands import DeleteTask
from domain.errors import NotFound
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import respond
from services.surfaces.kit.one_shot_callback import create_callback
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import Surface, actor_of, project_of
from services.surfaces.messages_surface import schemas as s
from services.surfaces.messages_surface.health import health_handler
from services.surfaces.messages_surface.static_token import StaticTokenAuth
from services.surfaces.messages_surface.translation import (
    FIELD_NAMES,
    KEY_HELD_AFTER_DUE,
    TAG,
    callback_from,
    is_waiting,
    job_out,
    message_key,
)
from services.tasks.queries import TaskFilter, dedupe_holder, list_tasks

# GET /messages lists at most this many (the soonest); `count` is still the total.
MAX_LISTED = 1000
# Each round frees one holder that is no longer waiting; a live one ends the loop with a 409.
CLAIM_ROUNDS = 3


def render(problem: HttpProblem) -> web.Response:
    """Seed 001's error shape: FastAPI's `{"detail": …}`, a list naming the field for a 422."""
    detail: str | list[s.Issue] = problem.message
    if problem.status == 422:
        loc = ["body", *problem.field.split(".")] if problem.field else ["body"]
        detail = [s.Issue(loc=loc, msg=problem.message, type=problem.code)]
    return respond(s.ErrorOut(detail=detail), status=problem.status, headers=problem.headers)


def _exists(message_id: str) -> HttpProblem:
    return HttpProblem(409, "conflict", f"Message with ID {message_id} already exists")


def _not_found() -> HttpProblem:
    return HttpProblem(404, "not_found", "Message not found")


async def schedule_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.MessageIn)
    ctx = context_of(request)
    project, key = project_of(request), message_key(body.id)
    callback = callback_from(body)
    for _ in range(CLAIM_ROUNDS):
        try:
            outcome = await create_callback(
                request, callback, FIELD_NAMES, key_held_after_due=KEY_HELD_AFTER_DUE
            )
        except NotFound:
            # The id's holder was deleted outside this surface: free its claim and try again.
            holder = await dedupe_holder(ctx.pool, project, key)
            if holder is not None:
                await ctx.tasks.release_dedupe_key(project, key, holder)
            continue
        if outcome.created:
            return respond(s.MessageStatus(status="scheduled", messageId=body.id))
        if is_waiting(outcome.state):
            raise _exists(body.id)
        # The holder already ran (or was cancelled): the id is free again, as in the seed.
        await ctx.tasks.release_dedupe_key(project, key, outcome.state.task_id)
    raise _exists(body.id)


async def list_handler(request: web.Request) -> web.Response:
    states, total = await list_tasks(
        context_of(request).pool,
        project_of(request),
        TaskFilter(
            tag=TAG,
            status="pending",
            lifecycle="active",
            sort="next_run_at",
            descending=False,
            limit=MAX_LISTED,
        ),
    )
    return respond(s.ScheduledJobs(scheduledJobs=[job_out(t) for t in states], count=total))


async def delete_handler(request: web.Request) -> web.Response:
    message_id = request.match_info["id"]
    ctx = context_of(request)
    project, key = project_of(request), message_key(message_id)
    holder = await dedupe_holder(ctx.pool, project, key)
    if holder is None:
        raise _not_found()
    try:
        state = await ctx.tasks.get(project, holder)
    except NotFound:
        raise _not_found() from None
    if not is_waiting(state):
        raise _not_found()
    await ctx.tasks.execute(project, holder, DeleteTask(), actor=actor_of(request))
    await ctx.tasks.release_dedupe_key(project, key, holder)
    return respond(s.MessageStatus(status="deleted", messageId=message_id))


ROUTES = [
    Route(
        "POST",
        "/messages",
        schedule_handler,
        "Schedule a one-time webhook message",
        s.MessageStatus,
        body=s.MessageIn,
        errors=(400, 401, 409, 413, 415, 422),
        example={
            "id": "unique-message-id",
            "scheduleTo": "2099-01-01T00:00:00Z",
            "payload": {"hello": "world"},
            "webhookUrl": "https://example.com/webhook",
        },
        tags=("messages",),
    ),
    Route(
        "GET",
        "/messages",
        list_handler,
        "List the messages still waiting",
        s.ScheduledJobs,
        errors=(401,),
        tags=("messages",),
    ),
    Route(
        "DELETE",
        "/messages/{id}",
        delete_handler,
        "Delete a waiting message",
        s.MessageStatus,
        errors=(401, 404),
        tags=("messages",),
    ),
    Route(
        "GET",
        "/health",
        health_handler,
        "Database and broker health",
        s.Health,
        errors=(503,),
        tags=("messages",),
        auth=False,
    ),
]
SURFACE = Surface(
    "messages",
    ROUTES,
    render,
    s.ErrorOut,
    authenticator=lambda settings: StaticTokenAuth(settings.api_token),
)
