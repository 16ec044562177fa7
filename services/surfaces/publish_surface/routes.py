"""Seed 000's routes: bearer project key, and the body's projectId must be that key's project."""

from __future__ import annotations

from aiohttp import web

from domain.commands import DeleteTask
from services.surfaces.kit.auth import unauthorized
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import respond
from services.surfaces.kit.one_shot_callback import create_callback
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import Surface, actor_of, project_of
from services.surfaces.publish_surface import schemas as s
from services.surfaces.publish_surface.translation import FIELD_NAMES, callback_from


def render(problem: HttpProblem) -> web.Response:
    """Seed 000's error shape; its users know 400 for bad input, so a 422 is answered as 400."""
    status = 400 if problem.status == 422 else problem.status
    return respond(
        s.ErrorOut(message=problem.message, field=problem.field), status=status,
        headers=problem.headers,
    )  # fmt: skip


def _own_project(request: web.Request, project_id: str) -> None:
    # The seed authenticates a (projectId, secret) pair: a key for another project is a 401.
    if project_id != project_of(request):
        raise unauthorized("projectId does not match the credentials")


async def publish_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.PublishIn)
    _own_project(request, body.projectId)
    outcome = await create_callback(request, callback_from(body), FIELD_NAMES)
    return respond(s.PublishOut(message="Task scheduled", taskId=outcome.state.task_id))


async def delete_handler(request: web.Request) -> web.Response:
    body = await read_json(request, s.DeleteIn)
    _own_project(request, body.projectId)
    await context_of(request).tasks.execute(
        project_of(request), body.taskId, DeleteTask(), actor=actor_of(request)
    )
    return respond(s.PublishOut(message="Task deleted successfully", taskId=body.taskId))


ROUTES = [
    Route(
        "POST",
        "/publish",
        publish_handler,
        "Schedule an HTTP callback at a timestamp",
        s.PublishOut,
        body=s.PublishIn,
        errors=(400, 401, 413, 415),
        # projectId must be the caller's own; the fuzzer puts its project's id in.
        example={
            "timestamp": "2099-01-01T00:00:00Z",
            "projectId": "your-project-id",
            "body": {
                "callbackUrl": "https://example.com/callback",
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": '{"hello": "world"}',
                "taskTag": "greeting",
            },
        },
        tags=("publish",),
    ),
    Route(
        "DELETE",
        "/delete",
        delete_handler,
        "Delete a scheduled callback",
        s.PublishOut,
        body=s.DeleteIn,
        errors=(400, 401, 404, 415),
        tags=("publish",),
    ),
]
# Seed 000's clients know 400 for every bad input: render answers a 422 as 400.
SURFACE = Surface("publish", ROUTES, render, s.ErrorOut, validation_status=400)
