"""`AsyncClient`: the asyncio client, method for method the same as `Client` (`_sync.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar, Unpack

import httpx

from taskstream_client import _operations as op
from taskstream_client import models as m
from taskstream_client import params as p
from taskstream_client._operations import Call
from taskstream_client._transport import Page, RetryConfig, Transport, credentials
from taskstream_client.errors import APIConnectionError

T = TypeVar("T")


class _Namespace:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _one(self, call: Call[T]) -> T:
        return (await self._client._page(call)).items[0]

    async def _all(self, call: Call[T]) -> AsyncIterator[T]:
        next_call: Call[T] | None = call
        while next_call is not None:
            page = await self._client._page(next_call)
            for item in page.items:
                yield item
            next_call = page.next


class Tasks(_Namespace):
    async def create(
        self, *, idempotency_key: str | None = None, **fields: Unpack[p.TaskCreate]
    ) -> m.Task:
        return await self._one(op.TASKS_CREATE.call(body=fields, idempotency_key=idempotency_key))

    async def create_many(
        self, tasks: Iterable[p.TaskCreate], *, concurrency: int = 8
    ) -> list[m.Task]:
        """Create every task, `concurrency` at a time (the API has no batch endpoint yet);
        the answers in the order given."""
        gate = asyncio.Semaphore(concurrency)

        async def one(fields: p.TaskCreate) -> m.Task:
            async with gate:
                return await self.create(**fields)

        return list(await asyncio.gather(*(one(f) for f in tasks)))

    async def get(self, task_id: str) -> m.Task:
        return await self._one(op.TASKS_GET.call(task_id))

    def list(self, **query: Any) -> AsyncIterator[m.Task]:
        """Every task matching `status`, `tag`, `created_by`, ordered by `sort` and `order`;
        `limit` is the page size (default 100). Follows every page."""
        return self._all(op.TASKS_LIST.call(params={"limit": 100, **query}))

    async def update(self, task_id: str, **fields: Unpack[p.TaskUpdate]) -> m.Task:
        return await self._one(op.TASKS_UPDATE.call(task_id, body=fields))

    async def delete(self, task_id: str) -> m.Deleted:
        return await self._one(op.TASKS_DELETE.call(task_id))

    async def cancel(self, task_id: str) -> m.StatusChange:
        return await self._one(op.TASKS_CANCEL.call(task_id))

    async def retry(self, task_id: str) -> m.Retried:
        return await self._one(op.TASKS_RETRY.call(task_id))

    async def run_now(self, task_id: str) -> m.Task:
        """One extra run now; the task's schedule stays as it is."""
        return await self._one(op.TASKS_RUN_NOW.call(task_id))

    def runs(self, task_id: str, *, limit: int = 100) -> AsyncIterator[m.Run]:
        """The task's runs (attempts), newest first."""
        return self._all(op.TASKS_RUNS.call(task_id, params={"limit": limit}))

    def logs(
        self, task_id: str, *, level: str | None = None, limit: int = 1000
    ) -> AsyncIterator[m.LogLine]:
        return self._all(op.TASKS_LOGS.call(task_id, params={"level": level, "limit": limit}))

    async def checkpoint(self, task_id: str, checkpoint_data: Any) -> m.Checkpoint:
        body = {"checkpoint_data": checkpoint_data}
        return await self._one(op.TASKS_CHECKPOINT.call(task_id, body=body))


class Webhooks(_Namespace):
    async def create(self, **fields: Unpack[p.WebhookCreate]) -> m.WebhookCreated:
        return await self._one(op.WEBHOOKS_CREATE.call(body=fields))

    def list(self, *, limit: int = 100) -> AsyncIterator[m.Webhook]:
        return self._all(op.WEBHOOKS_LIST.call(params={"limit": limit}))

    async def delete(self, webhook_id: str) -> m.Deleted:
        return await self._one(op.WEBHOOKS_DELETE.call(webhook_id))

    def deliveries(
        self, webhook_id: str, *, limit: int = 100
    ) -> AsyncIterator[m.DeliveryAttempt]:
        return self._all(op.WEBHOOKS_DELIVERIES.call(webhook_id, params={"limit": limit}))

    async def notify_secret(self) -> m.NotifySecret:
        return await self._one(op.WEBHOOKS_NOTIFY_SECRET.call())

    async def rotate_notify_secret(self) -> m.NotifySecret:
        return await self._one(op.WEBHOOKS_ROTATE_NOTIFY_SECRET.call())


class Workers(_Namespace):
    def list(self, *, status: str | None = None, limit: int = 100) -> AsyncIterator[m.Worker]:
        return self._all(op.WORKERS_LIST.call(params={"status": status, "limit": limit}))

    async def get(self, worker_id: str) -> m.WorkerDetail:
        return await self._one(op.WORKERS_GET.call(worker_id))

    def tasks(
        self, worker_id: str, *, status: str | None = None, limit: int = 100
    ) -> AsyncIterator[m.WorkerTask]:
        params = {"status": status, "limit": limit}
        return self._all(op.WORKERS_TASKS.call(worker_id, params=params))


class System(_Namespace):
    async def status(self) -> m.SystemStatus:
        return await self._one(op.SYSTEM_STATUS.call())

    async def metrics(self, *, period: str = "hour", metrics: Iterable[str] = ()) -> m.Metrics:
        params = {"period": period, "metrics": ",".join(metrics) or None}
        return await self._one(op.SYSTEM_METRICS.call(params=params))


class Jobs(_Namespace):
    async def create(
        self, *, idempotency_key: str | None = None, **fields: Unpack[p.JobCreate]
    ) -> m.JobCreated:
        return await self._one(op.JOBS_CREATE.call(body=fields, idempotency_key=idempotency_key))

    def list(self) -> AsyncIterator[m.Job]:
        return self._all(op.JOBS_LIST.call())

    async def get(self, job_id: str) -> m.Job:
        return await self._one(op.JOBS_GET.call(job_id))

    async def update(self, job_id: str, **fields: Unpack[p.JobUpdate]) -> m.JobChanged:
        return await self._one(op.JOBS_UPDATE.call(job_id, body=fields))

    async def delete(self, job_id: str) -> m.JobChanged:
        return await self._one(op.JOBS_DELETE.call(job_id))

    async def add_task(self, job_id: str, **task: Unpack[p.JobTaskIn]) -> m.JobCreated:
        return await self._one(op.JOBS_TASKS_ADD.call(job_id, body=task))

    def tasks(self, job_id: str) -> AsyncIterator[m.JobTask]:
        return self._all(op.JOBS_TASKS_LIST.call(job_id))

    async def update_task(
        self, job_id: str, task_id: str, **task: Unpack[p.JobTaskIn]
    ) -> m.JobChanged:
        return await self._one(op.JOBS_TASKS_UPDATE.call(job_id, task_id, body=task))

    async def delete_task(self, job_id: str, task_id: str) -> m.JobChanged:
        return await self._one(op.JOBS_TASKS_DELETE.call(job_id, task_id))

    async def trigger(
        self,
        job_id: str,
        *,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Triggered:
        body = {} if params is None else {"params": params}
        call = op.JOBS_TRIGGER.call(job_id, body=body, idempotency_key=idempotency_key)
        return await self._one(call)

    async def status(self, job_id: str) -> m.JobStatus:
        return await self._one(op.JOBS_STATUS.call(job_id))

    def history(self, job_id: str) -> AsyncIterator[m.Execution]:
        return self._all(op.JOBS_HISTORY.call(job_id))

    async def pause(self, job_id: str) -> m.JobPaused:
        return await self._one(op.JOBS_PAUSE.call(job_id))

    async def resume(self, job_id: str) -> m.JobPaused:
        return await self._one(op.JOBS_RESUME.call(job_id))

    async def execution(self, job_id: str, execution_id: str) -> m.JobStatus:
        return await self._one(op.JOBS_EXECUTION_GET.call(job_id, execution_id))

    async def cancel_execution(self, job_id: str, execution_id: str) -> m.JobStatus:
        return await self._one(op.JOBS_EXECUTION_CANCEL.call(job_id, execution_id))

    async def retry_execution(self, job_id: str, execution_id: str) -> m.JobStatus:
        return await self._one(op.JOBS_EXECUTION_RETRY.call(job_id, execution_id))


class AsyncClient:
    """`AsyncClient(base_url=…, api_key=…)`; both default to TASKSTREAM_URL / TASKSTREAM_API_KEY,
    then to the local `taskstream dev` (http://127.0.0.1:8080). Use as an async context
    manager or await `close()`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        url, key = credentials(base_url, api_key)
        self._transport = Transport(url, key, RetryConfig(max_retries=max_retries))
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self.tasks = Tasks(self)
        self.jobs = Jobs(self)
        self.webhooks = Webhooks(self)
        self.workers = Workers(self)
        self.system = System(self)

    async def _page(self, call: Call[T]) -> Page[T]:
        request = self._transport.prepare(call)
        attempt = 0
        while True:
            try:
                response: httpx.Response | None = await self._http.send(request)
            except httpx.TransportError as exc:
                response, failure = None, exc
            delay = self._transport.retry_delay(attempt, response)
            if delay is None:
                if response is None:
                    raise APIConnectionError(
                        f"{call.method} {call.path}: {failure!r}",
                        request_id=request.headers["X-Request-Id"],
                    ) from failure
                return self._transport.read(call, request, response)
            await asyncio.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
