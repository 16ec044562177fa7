"""Seed 002 worker endpoints under /api, read from the worker registry and the task view.

Workers are shared infrastructure: every authenticated project sees the same workers, their
status and resources. Every task id, task list and task count in an answer is the caller
project's own, so no project learns another's task ids or how much work it runs.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from services.fleet.registry import WorkerRow, get_worker, list_workers, worker_tasks
from services.surfaces.api_surface import schemas as s
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import read_query, respond
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import project_of


def _not_found(worker_id: str) -> HttpProblem:
    return HttpProblem(404, "not_found", f"worker {worker_id!r} not found")


def worker_out(w: WorkerRow) -> s.WorkerOut:
    return s.WorkerOut(
        id=w.worker_id,
        hostname=w.hostname,
        status=w.status,
        tasks_completed=w.tasks_completed,
        tasks_failed=w.tasks_failed,
        current_tasks=w.current_tasks,
        last_heartbeat=w.last_heartbeat,
        registered_at=w.registered_at,
        version=w.version,
        tags=list(w.tags),
    )


def worker_detail_out(w: WorkerRow) -> s.WorkerDetailOut:
    return s.WorkerDetailOut(
        **msgspec.structs.asdict(worker_out(w)),
        current_task_ids=list(w.current_task_ids),
        resources=s.WorkerResourcesOut(
            cpu_usage=w.cpu_usage, memory_usage=w.memory_usage, disk_usage=w.disk_usage
        ),
    )


async def list_handler(request: web.Request) -> web.Response:
    q = read_query(request, s.ListWorkersQuery)
    offset = s.check_page(q.page, q.limit)
    rows, total = await list_workers(
        context_of(request).pool,
        project_of(request),
        status=q.status,
        limit=q.limit,
        offset=offset,
    )
    return respond(
        s.WorkerListEnvelope(
            data=[worker_out(w) for w in rows], meta=s.page_meta(q.page, q.limit, total)
        )
    )


async def get_handler(request: web.Request) -> web.Response:
    worker_id = request.match_info["id"]
    row = await get_worker(context_of(request).pool, project_of(request), worker_id)
    if row is None:
        raise _not_found(worker_id)
    return respond(s.WorkerEnvelope(data=worker_detail_out(row)))


async def tasks_handler(request: web.Request) -> web.Response:
    q = read_query(request, s.WorkerTasksQuery)
    offset = s.check_page(q.page, q.limit)
    worker_id = request.match_info["id"]
    pool = context_of(request).pool
    if not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM workers WHERE worker_id = $1)", worker_id
    ):
        raise _not_found(worker_id)
    rows, total = await worker_tasks(
        pool,
        project_of(request),
        worker_id,
        status=q.status,
        limit=q.limit,
        offset=offset,
    )
    return respond(
        s.WorkerTaskListEnvelope(
            data=[
                s.WorkerTaskOut(
                    id=t.task_id,
                    name=t.name,
                    status=t.status,
                    started_at=t.started_at,
                    priority=t.priority,
                )
                for t in rows
            ],
            meta=s.page_meta(q.page, q.limit, total),
        )
    )


_WORKER = "/workers/{id}"
WORKER_ROUTES = [
    Route(
        "GET",
        "/workers",
        list_handler,
        "List workers",
        s.WorkerListEnvelope,
        query=s.ListWorkersQuery,
        errors=(401, 422),
        tags=("workers",),
    ),
    Route(
        "GET",
        _WORKER,
        get_handler,
        "Get a worker",
        s.WorkerEnvelope,
        errors=(401, 404),
        tags=("workers",),
    ),
    Route(
        "GET",
        _WORKER + "/tasks",
        tasks_handler,
        "List the caller's tasks on a worker",
        s.WorkerTaskListEnvelope,
        query=s.WorkerTasksQuery,
        errors=(401, 404, 422),
        tags=("workers",),
    ),
]
