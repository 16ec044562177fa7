"""The dashboard's forms: log in and out, task buttons, bulk retry, redeliver.

Each answers 303 to the page it came from (post/redirect/get: a reload never posts twice). The
CSRF token was checked before any of these runs (guard.session).
"""

from __future__ import annotations

from aiohttp import web

from domain.commands import CancelTask, PauseTask, ResumeTask, RetryTask, TaskCommand, TriggerTask
from services.sessions.store import SessionOwner, close_session, open_session
from services.surfaces.kit.context import context_of
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.surface import actor_of, project_of
from services.surfaces.ui_surface.guard import (
    LOGIN_COOKIE,
    MOUNT,
    SESSION_COOKIE,
    SESSION_ID,
    page_context,
    session_key,
    set_cookie,
)
from services.surfaces.ui_surface.rendering import render
from services.surfaces.ui_surface.signing import sign
from services.tasks.dead_letters import MAX_BULK, retry_dead_letters
from services.webhooks.queries import redeliver

SESSION_SECONDS = 12 * 3600
MAX_KEY_LENGTH = 512


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    api_key = form.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip() or len(api_key) > MAX_KEY_LENGTH:
        raise HttpProblem(422, "validation_error", "api_key: enter a project API key",
                          field="api_key")  # fmt: skip
    ctx = context_of(request)
    try:
        principal = await ctx.auth.principal(f"ApiKey {api_key.strip()}")
    except HttpProblem:
        return render("login.html", page_context(request, failed=True), status=401)
    owner = SessionOwner(principal.project_id, principal.actor_id)
    session_id = await open_session(ctx.pool, owner)
    response = web.HTTPSeeOther(MOUNT + "/")
    set_cookie(response, request, SESSION_COOKIE, sign(session_key(request), session_id),
               SESSION_SECONDS)  # fmt: skip
    response.del_cookie(LOGIN_COOKIE, path=MOUNT)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await close_session(context_of(request).pool, request[SESSION_ID])
    response = web.HTTPSeeOther(MOUNT + "/")
    response.del_cookie(SESSION_COOKIE, path=MOUNT)
    raise response


_COMMANDS: dict[str, type[TaskCommand]] = {
    "run-now": TriggerTask,
    "pause": PauseTask,
    "resume": ResumeTask,
    "cancel": CancelTask,
    "retry": RetryTask,
}


async def task_action(request: web.Request) -> web.StreamResponse:
    task_id, verb = request.match_info["id"], request.match_info["action"]
    command = _COMMANDS.get(verb)
    if command is None:
        raise HttpProblem(404, "not_found", f"no task action {verb!r}")
    await context_of(request).tasks.execute(
        project_of(request), task_id, command(), actor=actor_of(request)
    )
    raise web.HTTPSeeOther(f"{MOUNT}/tasks/{task_id}?done={verb}")


async def retry_selected(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    ids = [v for v in form.getall("ids", []) if isinstance(v, str) and v]
    if any("\x00" in v or len(v) > 200 for v in ids):
        raise HttpProblem(422, "validation_error", "ids: not a task id", field="ids")
    if not 1 <= len(ids) <= MAX_BULK:
        raise HttpProblem(422, "validation_error", f"ids: select 1 to {MAX_BULK} tasks",
                          field="ids")  # fmt: skip
    outcome = await retry_dead_letters(
        context_of(request).tasks, project_of(request), ids=ids, search=None, dry_run=False,
        actor=actor_of(request),
    )  # fmt: skip
    raise web.HTTPSeeOther(f"{MOUNT}/dead-letters?retried={len(outcome.retried)}")


async def redeliver_one(request: web.Request) -> web.StreamResponse:
    endpoint_id = request.match_info["id"]
    queued = await redeliver(
        context_of(request).pool, project_of(request), endpoint_id,
        request.match_info["delivery_id"],
    )  # fmt: skip
    if queued is None:
        raise HttpProblem(404, "not_found", "webhook delivery not found")
    raise web.HTTPSeeOther(f"{MOUNT}/webhooks?endpoint={endpoint_id}&redelivered=1")
