"""Seed 003's `/jobs` endpoints: thin translations onto JobService and the job views."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from aiohttp import web

from domain.errors import DomainError
from domain.job import AddTask, DeleteJob, PauseJob, RemoveTask, ReplaceTask, ResumeJob, UpdateJob
from services.jobs.queries import history, latest_execution, list_jobs
from services.jobs.service import JobService
from services.surfaces.jobs_surface import schemas as s
from services.surfaces.jobs_surface.translation import (
    definition_in,
    execution_out,
    job_out,
    patch_in,
    record_out,
    summary_out,
    task_in,
    task_merged,
    task_out,
)
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import check_page, read_query, respond
from services.surfaces.kit.openapi import openapi_document
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Handler, Route
from services.surfaces.kit.surface import Surface, actor_of, project_of

_TASK_PREFIX = re.compile(r"^tasks\[\d+\]\.")


def render(problem: HttpProblem) -> web.Response:
    """The surface's error shape: `{"error": {"code", "message", "field"}}`."""
    body = s.JobsError(
        error=s.ErrorBody(code=problem.code, message=problem.message, field=problem.field)
    )
    return respond(body, status=problem.status, headers=problem.headers)


def _jobs(request: web.Request) -> JobService:
    return context_of(request).jobs


@contextmanager
def _task_fields() -> Iterator[None]:
    """On the single-task endpoints, a field is named as the body spells it (`name`, not
    `tasks[3].name`)."""
    try:
        yield
    except DomainError as exc:
        if exc.field is not None:
            exc.field = _TASK_PREFIX.sub("", exc.field)
        raise


def _page(request: web.Request) -> s.PageQuery:
    q = read_query(request, s.PageQuery)
    if q.page is not None:
        if q.page < 1:
            raise HttpProblem(422, "validation_error", "page counts from 1", field="page")
        q = msgspec.structs.replace(q, offset=(q.page - 1) * q.limit)
    check_page(q.limit, q.offset, s.MAX_LIMIT)
    return q


def _paged(body: object, total: int, q: s.PageQuery) -> web.Response:
    headers = {"X-Total-Count": str(total), "X-Limit": str(q.limit), "X-Offset": str(q.offset)}
    return respond(body, headers=headers)


async def create_job(request: web.Request) -> web.Response:
    body = await read_json(request, s.JobCreate)
    job = await _jobs(request).create(
        project_of(request), definition_in(body), actor=actor_of(request)
    )
    return respond(
        s.Created(id=job.job_id, message=f"job {job.definition.name!r} created"), status=201
    )


async def list_jobs_handler(request: web.Request) -> web.Response:
    q = _page(request)
    jobs, total = await list_jobs(
        context_of(request).pool, project_of(request), limit=q.limit, offset=q.offset
    )
    return _paged([summary_out(j) for j in jobs], total, q)


async def get_job(request: web.Request) -> web.Response:
    return respond(job_out(await _jobs(request).get(project_of(request), _id(request))))


async def update_job(request: web.Request) -> web.Response:
    body = await read_json(request, s.JobUpdate)
    job = await _execute(request, UpdateJob(patch=patch_in(body)))
    return respond(s.Message(message="job updated", version=job.definition_version))


async def delete_job(request: web.Request) -> web.Response:
    await _execute(request, DeleteJob())
    return respond(s.Message(message="job deleted"))


async def add_task(request: web.Request) -> web.Response:
    body = await read_json(request, s.TaskIn)
    with _task_fields():
        job = await _execute(request, AddTask(task=task_in(body)))
    return respond(
        s.Created(id=body.id.strip(), message=f"task added (job version {job.definition_version})"),
        status=201,
    )


async def list_tasks(request: web.Request) -> web.Response:
    job = await _jobs(request).get(project_of(request), _id(request))
    return respond([task_out(t, job.definition.tasks) for t in job.definition.tasks])


async def update_task(request: web.Request) -> web.Response:
    body = await read_json(request, s.TaskUpdate)
    task_id = request.match_info["taskId"]
    job = await _jobs(request).get(project_of(request), _id(request))
    current = job.definition.task(task_id)
    if current is None:
        raise HttpProblem(404, "not_found", f"task {task_id} not found in this job")
    if body.id is not s.UNSET and body.id != task_id:
        raise HttpProblem(
            422,
            "validation_error",
            "id cannot change; delete the task and add a new one",
            field="id",
        )
    with _task_fields():
        job = await _execute(request, ReplaceTask(task_id=task_id, task=task_merged(current, body)))
    return respond(s.Message(message="task updated", version=job.definition_version))


async def delete_task(request: web.Request) -> web.Response:
    job = await _execute(request, RemoveTask(task_id=request.match_info["taskId"]))
    return respond(s.Message(message="task deleted", version=job.definition_version))


async def trigger(request: web.Request) -> web.Response:
    params = None
    if request.can_read_body and (await request.read()).strip():
        params = (await read_json(request, s.TriggerIn)).params
    outcome = await _jobs(request).trigger(
        project_of(request),
        _id(request),
        params=params,
        idempotency_key=request.headers.get("Idempotency-Key"),
        actor=actor_of(request),
    )
    execution = outcome.execution
    message = "execution triggered" if outcome.created else "execution already triggered"
    return respond(
        s.TriggerOut(execution_id=execution.execution_id, message=message, status=execution.status),
        status=202,
    )


async def status(request: web.Request) -> web.Response:
    project, job_id = project_of(request), _id(request)
    await _jobs(request).get(project, job_id)
    latest = await latest_execution(context_of(request).pool, project, job_id)
    if latest is None:
        raise HttpProblem(404, "no_executions", f"job {job_id} has not been triggered yet")
    return respond(execution_out(latest))


async def history_handler(request: web.Request) -> web.Response:
    q = _page(request)
    project, job_id = project_of(request), _id(request)
    await _jobs(request).get(project, job_id)
    page, total = await history(
        context_of(request).pool, project, job_id, limit=q.limit, offset=q.offset
    )
    return _paged([record_out(e) for e in page], total, q)


async def pause(request: web.Request) -> web.Response:
    job = await _execute(request, PauseJob())
    return respond(
        s.PauseOut(
            message="job paused: no new executions start; running ones finish",
            paused=True,
            next_fire_at=job.next_fire_at,
        )
    )


async def resume(request: web.Request) -> web.Response:
    job = await _execute(request, ResumeJob())
    return respond(
        s.PauseOut(message="job resumed", paused=job.paused, next_fire_at=job.next_fire_at)
    )


async def get_execution(request: web.Request) -> web.Response:
    jobs = _jobs(request)
    state = await jobs.store.execution(
        project_of(request), _id(request), request.match_info["executionId"]
    )
    return respond(execution_out(state))


def _on_execution(act: str, status: int) -> Handler:
    """A handler calling JobService.`act` (cancel, retry) on the execution in the path."""

    async def handler(request: web.Request) -> web.Response:
        state = await getattr(_jobs(request), act)(
            project_of(request), _id(request), request.match_info["executionId"],
            actor=actor_of(request),
        )  # fmt: skip
        return respond(execution_out(state), status=status)

    return handler


async def _execute(request: web.Request, command: object) -> object:
    return await _jobs(request).execute(
        project_of(request),
        _id(request),
        command,  # type: ignore[arg-type]
        actor=actor_of(request),
    )


def _id(request: web.Request) -> str:
    return request.match_info["id"]


async def openapi(_: web.Request) -> web.Response:
    return respond(DOCUMENT)


_JOB = "/jobs/{id}"
_TASK = _JOB + "/tasks/{taskId}"
_EXECUTION = _JOB + "/executions/{executionId}"
_BODY_ERRORS = (400, 401, 404, 409, 413, 415, 422)
_STATE_ERRORS = (401, 404, 409)
ROUTES = [
    Route(
        "GET",
        "/jobs/openapi.json",
        openapi,
        "This OpenAPI document",
        dict,
        auth=False,
        tags=("jobs",),
    ),
    Route(
        "POST",
        "/jobs",
        create_job,
        "Create a job (with its tasks)",
        s.Created,
        status=201,
        body=s.JobCreate,
        errors=(400, 401, 413, 415, 422),
    ),
    Route(
        "GET",
        "/jobs",
        list_jobs_handler,
        "List job summaries (newest first; X-Total-Count)",
        list[s.JobSummary],
        query=s.PageQuery,
        errors=(401, 422),
    ),
    Route(
        "GET",
        _JOB,
        get_job,
        "A job with its tasks, DAG, schedule and metadata",
        s.JobOut,
        errors=(401, 404),
    ),
    Route(
        "PUT",
        _JOB,
        update_job,
        "Update a job (partial or full): a new version",
        s.Message,
        body=s.JobUpdate,
        errors=_BODY_ERRORS,
    ),
    Route("DELETE", _JOB, delete_job, "Delete a job", s.Message, errors=(401, 404)),
    Route(
        "POST",
        _JOB + "/tasks",
        add_task,
        "Add a task",
        s.Created,
        status=201,
        body=s.TaskIn,
        errors=_BODY_ERRORS,
    ),
    Route(
        "GET",
        _JOB + "/tasks",
        list_tasks,
        "The job's tasks with dependency info",
        list[s.TaskOut],
        errors=(401, 404),
    ),
    Route(
        "PUT",
        _TASK,
        update_task,
        "Update a task (partial or full)",
        s.Message,
        body=s.TaskUpdate,
        errors=_BODY_ERRORS,
    ),
    Route(
        "DELETE",
        _TASK,
        delete_task,
        "Delete a task no other task depends on",
        s.Message,
        errors=_STATE_ERRORS,
    ),
    Route(
        "POST",
        _JOB + "/trigger",
        trigger,
        "Trigger an execution (Idempotency-Key honoured)",
        s.TriggerOut,
        status=202,
        body=s.TriggerIn,
        errors=_BODY_ERRORS,
    ),
    Route(
        "GET",
        _JOB + "/status",
        status,
        "The latest execution and its tasks",
        s.ExecutionOut,
        errors=(401, 404),
    ),
    Route(
        "GET",
        _JOB + "/history",
        history_handler,
        "Executions, newest first (X-Total-Count)",
        list[s.ExecutionRecord],
        query=s.PageQuery,
        errors=(401, 404, 422),
    ),
    Route(
        "POST", _JOB + "/pause", pause, "Pause: no new executions", s.PauseOut, errors=_STATE_ERRORS
    ),
    Route("POST", _JOB + "/resume", resume, "Resume", s.PauseOut, errors=_STATE_ERRORS),
    Route(
        "GET",
        _EXECUTION,
        get_execution,
        "One execution and its tasks",
        s.ExecutionOut,
        errors=(401, 404),
    ),
    Route(
        "POST",
        _EXECUTION + "/cancel",
        _on_execution("cancel", 200),
        "Cancel an execution",
        s.ExecutionOut,
        errors=_STATE_ERRORS,
    ),
    Route(
        "POST",
        _EXECUTION + "/retry",
        _on_execution("retry", 202),
        "Re-run failed tasks and what depends on them",
        s.ExecutionOut,
        status=202,
        errors=_STATE_ERRORS,
    ),
]
SURFACE = Surface("jobs", ROUTES, render, s.JobsError)
# Its own document leaves out the route that serves it.
DOCUMENT = openapi_document(
    [Surface("jobs", ROUTES[1:], render, s.JobsError)],
    title="taskstream jobs (seed 003)",
    version="1.0.0",
)
