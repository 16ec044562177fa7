"""Seed 004's `/tasks` and `/events` endpoints: thin translations onto TaskService and the view."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from domain.commands import (
    CancelTask,
    PauseTask,
    ResumeTask,
    SnoozeTask,
    TaskCommand,
    TriggerTask,
    UpdateTask,
)
from domain.errors import DomainError, ValidationError
from domain.simple_schedules import check_event_name
from services.surfaces.agent_tasks_surface import schemas as s
from services.surfaces.agent_tasks_surface.translation import (
    LIFECYCLE_OF,
    definition_from,
    patch_from,
    renamed,
    task_out,
)
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import check_page, read_query, respond
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Handler, Route
from services.surfaces.kit.surface import actor_of, project_of
from services.tasks.queries import TaskFilter, list_tasks
from services.tasks.service import FiredEvent


def render(problem: HttpProblem) -> web.Response:
    """Seed 004's error shape: `{"error": code, "message": …, "field": … | null}`."""
    body = s.AgentError(error=problem.code, message=problem.message, field=problem.field)
    return respond(body, status=problem.status, headers=problem.headers)


@contextmanager
def surface_fields() -> Iterator[None]:
    """Core refusals inside the block name the field as this surface's callers wrote it."""
    try:
        yield
    except DomainError as exc:
        raise renamed(exc) from None


async def list_handler(request: web.Request) -> web.Response:
    q = read_query(request, s.AgentTasksQuery)
    check_page(q.limit, q.offset, s.MAX_LIMIT)
    states, total = await list_tasks(
        context_of(request).pool,
        project_of(request),
        TaskFilter(
            lifecycle=None if q.status is None else LIFECYCLE_OF[q.status],
            created_by=None if q.created_by is None else str(q.created_by),
            schedule_kind=q.schedule_kind,
            limit=q.limit,
            offset=q.offset,
        ),
    )
    return respond(
        s.AgentTaskList(
            tasks=[task_out(t) for t in states], total=total, limit=q.limit, offset=q.offset
        )
    )


async def create_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.AgentTaskCreate)
    tasks = context_of(request).tasks
    # The id is chosen here so that an `event` task without an expression can listen for it.
    task_id = str(uuid.uuid4())
    with surface_fields():
        outcome = await tasks.create_or_match(
            project_of(request),
            definition_from(body, task_id=task_id),
            actor=actor_of(request),
            task_id=task_id,
        )
    # A dedupe key held within its window answers with the holder: 200, not 201.
    return respond(task_out(outcome.state), status=201 if outcome.created else 200)


async def get_handler(request: web.Request) -> web.Response:
    state = await context_of(request).tasks.get(project_of(request), request.match_info["id"])
    return respond(task_out(state))


async def update_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.AgentTaskUpdate)
    tasks = context_of(request).tasks
    task_id = request.match_info["id"]
    current = await tasks.get(project_of(request), task_id)
    with surface_fields():
        command = UpdateTask(patch=patch_from(body, current))
        state = await tasks.execute(project_of(request), task_id, command, actor=actor_of(request))
    return respond(task_out(state))


async def _apply(request: web.Request, command: TaskCommand, status: int = 200) -> web.Response:
    state = await context_of(request).tasks.execute(
        project_of(request), request.match_info["id"], command, actor=actor_of(request)
    )
    return respond(task_out(state), status=status)


def _bodiless(command: Callable[[], TaskCommand], status: int = 200) -> Handler:
    """A handler that applies `command()` to the task in the path and answers with the task."""

    async def handler(request: web.Request) -> web.Response:
        return await _apply(request, command(), status)

    return handler


async def snooze_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.SnoozeIn)
    return await _apply(request, SnoozeTask(delay_seconds=body.delay_seconds, reason=body.reason))


async def events_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.EventIn)
    try:
        check_event_name(body.name)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="name") from None
    fired = await context_of(request).tasks.fire_event(
        project_of(request), body.name, body.payload, actor=actor_of(request)
    )
    return respond(fired, status=202)


_TASK = "/tasks/{id}"
_BAD_BODY = (400, 401, 404, 409, 413, 415, 422)
ROUTES = [
    Route("GET", "/tasks", list_handler, "List tasks", s.AgentTaskList, query=s.AgentTasksQuery,
          errors=(401, 422)),
    Route("POST", "/tasks", create_handler, "Create a task", s.AgentTaskOut, status=201,
          body=s.AgentTaskCreate, errors=(400, 401, 413, 415, 422)),
    Route("GET", _TASK, get_handler, "Get a task", s.AgentTaskOut, errors=(401, 404)),
    Route("PUT", _TASK, update_handler, "Update a task (partial)", s.AgentTaskOut,
          body=s.AgentTaskUpdate, errors=_BAD_BODY),
    Route("POST", _TASK + "/run_now", _bodiless(TriggerTask, 202), "Run once now",
          s.AgentTaskOut, status=202, errors=(401, 404, 409)),
    Route("POST", _TASK + "/snooze", snooze_handler, "Delay the next run", s.AgentTaskOut,
          body=s.SnoozeIn, errors=_BAD_BODY),
    Route("POST", _TASK + "/pause", _bodiless(PauseTask), "Pause", s.AgentTaskOut,
          errors=(401, 404, 409)),
    Route("POST", _TASK + "/resume", _bodiless(ResumeTask), "Resume", s.AgentTaskOut,
          errors=(401, 404, 409)),
    Route("POST", _TASK + "/cancel", _bodiless(CancelTask), "Cancel for good", s.AgentTaskOut,
          errors=(401, 404, 409)),
    Route("POST", "/events", events_handler, "Fire an event", FiredEvent, status=202,
          body=s.EventIn, errors=(400, 401, 413, 415, 422)),
]  # fmt: skip
