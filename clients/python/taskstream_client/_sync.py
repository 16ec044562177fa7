"""`Client`: the blocking client. `_async.py` mirrors it method for method."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
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
    def __init__(self, client: Client) -> None:
        self._client = client

    def _one(self, call: Call[T]) -> T:
        return self._client._page(call).items[0]

    def _all(self, call: Call[T]) -> Iterator[T]:
        next_call: Call[T] | None = call
        while next_call is not None:
            page = self._client._page(next_call)
            yield from page.items
            next_call = page.next


class Tasks(_Namespace):
    def create(
        self, *, idempotency_key: str | None = None, **fields: Unpack[p.TaskCreate]
    ) -> m.Task:
        return self._one(op.TASKS_CREATE.call(body=fields, idempotency_key=idempotency_key))

    def create_many(self, tasks: Iterable[p.TaskCreate]) -> Iterator[m.Task]:
        """Create each task in turn (the API has no batch endpoint yet), yielding each."""
        for fields in tasks:
            yield self.create(**fields)

    def get(self, task_id: str) -> m.Task:
        return self._one(op.TASKS_GET.call(task_id))

    def list(self, **query: Any) -> Iterator[m.Task]:
        """Every task matching `status`, `tag`, `created_by`, ordered by `sort` and `order`;
        `limit` is the page size (default 100). Follows every page."""
        return self._all(op.TASKS_LIST.call(params={"limit": 100, **query}))

    def update(self, task_id: str, **fields: Unpack[p.TaskUpdate]) -> m.Task:
        return self._one(op.TASKS_UPDATE.call(task_id, body=fields))

    def delete(self, task_id: str) -> m.Deleted:
        return self._one(op.TASKS_DELETE.call(task_id))

    def cancel(self, task_id: str) -> m.StatusChange:
        return self._one(op.TASKS_CANCEL.call(task_id))

    def retry(self, task_id: str) -> m.Retried:
        return self._one(op.TASKS_RETRY.call(task_id))

    def run_now(self, task_id: str) -> m.Task:
        """One extra run now; the task's schedule stays as it is."""
        return self._one(op.TASKS_RUN_NOW.call(task_id))

    def runs(self, task_id: str, *, limit: int = 100) -> Iterator[m.Run]:
        """The task's runs (attempts), newest first."""
        return self._all(op.TASKS_RUNS.call(task_id, params={"limit": limit}))

    def logs(
        self, task_id: str, *, level: str | None = None, limit: int = 1000
    ) -> Iterator[m.LogLine]:
        return self._all(op.TASKS_LOGS.call(task_id, params={"level": level, "limit": limit}))

    def checkpoint(self, task_id: str, checkpoint_data: Any) -> m.Checkpoint:
        body = {"checkpoint_data": checkpoint_data}
        return self._one(op.TASKS_CHECKPOINT.call(task_id, body=body))


class Webhooks(_Namespace):
    def create(self, **fields: Unpack[p.WebhookCreate]) -> m.WebhookCreated:
        return self._one(op.WEBHOOKS_CREATE.call(body=fields))

    def list(self, *, limit: int = 100) -> Iterator[m.Webhook]:
        return self._all(op.WEBHOOKS_LIST.call(params={"limit": limit}))

    def delete(self, webhook_id: str) -> m.Deleted:
        return self._one(op.WEBHOOKS_DELETE.call(webhook_id))

    def deliveries(self, webhook_id: str, *, limit: int = 100) -> Iterator[m.DeliveryAttempt]:
        return self._all(op.WEBHOOKS_DELIVERIES.call(webhook_id, params={"limit": limit}))

    def notify_secret(self) -> m.NotifySecret:
        return self._one(op.WEBHOOKS_NOTIFY_SECRET.call())

    def rotate_notify_secret(self) -> m.NotifySecret:
        return self._one(op.WEBHOOKS_ROTATE_NOTIFY_SECRET.call())


class Workers(_Namespace):
    def list(self, *, status: str | None = None, limit: int = 100) -> Iterator[m.Worker]:
        return self._all(op.WORKERS_LIST.call(params={"status": status, "limit": limit}))

    def get(self, worker_id: str) -> m.WorkerDetail:
        return self._one(op.WORKERS_GET.call(worker_id))

    def tasks(
        self, worker_id: str, *, status: str | None = None, limit: int = 100
    ) -> Iterator[m.WorkerTask]:
        params = {"status": status, "limit": limit}
        return self._all(op.WORKERS_TASKS.call(worker_id, params=params))


class System(_Namespace):
    def status(self) -> m.SystemStatus:
        return self._one(op.SYSTEM_STATUS.call())

    def metrics(self, *, period: str = "hour", metrics: Iterable[str] = ()) -> m.Metrics:
        params = {"period": period, "metrics": ",".join(metrics) or None}
        return self._one(op.SYSTEM_METRICS.call(params=params))


class Jobs(_Namespace):
    def create(
        self, *, idempotency_key: str | None = None, **fields: Unpack[p.JobCreate]
    ) -> m.JobCreated:
        return self._one(op.JOBS_CREATE.call(body=fields, idempotency_key=idempotency_key))

    def list(self) -> Iterator[m.Job]:
        return self._all(op.JOBS_LIST.call())

    def get(self, job_id: str) -> m.Job:
        return self._one(op.JOBS_GET.call(job_id))

    def update(self, job_id: str, **fields: Unpack[p.JobUpdate]) -> m.JobChanged:
        return self._one(op.JOBS_UPDATE.call(job_id, body=fields))

    def delete(self, job_id: str) -> m.JobChanged:
        return self._one(op.JOBS_DELETE.call(job_id))

    def add_task(self, job_id: str, **task: Unpack[p.JobTaskIn]) -> m.JobCreated:
        return self._one(op.JOBS_TASKS_ADD.call(job_id, body=task))

    def tasks(self, job_id: str) -> Iterator[m.JobTask]:
        return self._all(op.JOBS_TASKS_LIST.call(job_id))

    def update_task(self, job_id: str, task_id: str, **task: Unpack[p.JobTaskIn]) -> m.JobChanged:
        return self._one(op.JOBS_TASKS_UPDATE.call(job_id, task_id, body=task))

    def delete_task(self, job_id: str, task_id: str) -> m.JobChanged:
        return self._one(op.JOBS_TASKS_DELETE.call(job_id, task_id))

    def trigger(
        self,
        job_id: str,
        *,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> m.Triggered:
        body = {} if params is None else {"params": params}
        call = op.JOBS_TRIGGER.call(job_id, body=body, idempotency_key=idempotency_key)
        return self._one(call)

    def status(self, job_id: str) -> m.JobStatus:
        return self._one(op.JOBS_STATUS.call(job_id))

    def history(self, job_id: str) -> Iterator[m.Execution]:
        return self._all(op.JOBS_HISTORY.call(job_id))

    def pause(self, job_id: str) -> m.JobPaused:
        return self._one(op.JOBS_PAUSE.call(job_id))

    def resume(self, job_id: str) -> m.JobPaused:
        return self._one(op.JOBS_RESUME.call(job_id))

    def execution(self, job_id: str, execution_id: str) -> m.JobStatus:
        return self._one(op.JOBS_EXECUTION_GET.call(job_id, execution_id))

    def cancel_execution(self, job_id: str, execution_id: str) -> m.JobStatus:
        return self._one(op.JOBS_EXECUTION_CANCEL.call(job_id, execution_id))

    def retry_execution(self, job_id: str, execution_id: str) -> m.JobStatus:
        return self._one(op.JOBS_EXECUTION_RETRY.call(job_id, execution_id))


class Client:
    """`Client(base_url=…, api_key=…)`; both default to TASKSTREAM_URL / TASKSTREAM_API_KEY,
    then to the local `taskstream dev` (http://127.0.0.1:8080). Use as a context manager or
    call `close()`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        url, key = credentials(base_url, api_key)
        self._transport = Transport(url, key, RetryConfig(max_retries=max_retries))
        self._http = http_client or httpx.Client(timeout=timeout)
        self.tasks = Tasks(self)
        self.jobs = Jobs(self)
        self.webhooks = Webhooks(self)
        self.workers = Workers(self)
        self.system = System(self)

    def _page(self, call: Call[T]) -> Page[T]:
        request = self._transport.prepare(call)
        attempt = 0
        while True:
            try:
                response: httpx.Response | None = self._http.send(request)
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
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
