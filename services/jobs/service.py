"""Application layer for jobs: every surface calls this; none touches the log or views itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from domain import job_events as ev
from domain.errors import InvalidState, ValidationError
from domain.events import (
    TaskCancelled,
    TaskCompleted,
    TaskDeleted,
    TaskEvent,
    TaskFailed,
    TaskRetrying,
    TaskStarted,
)
from domain.job import CreateJob, JobCommand, JobState, decide, decide_fire, execution_id_for_key
from domain.job_definition import JobDefinition
from domain.job_execution import ExecutionState, decide_cancel, decide_retry, in_flight
from domain.task import TaskState
from infra.event_store import WrongExpectedVersion
from infra.json_codec import encode
from services.jobs.node_tasks import execution_of
from services.jobs.runner import ExecutionRunner, SendRuns
from services.jobs.store import JobStore
from services.tasks.service import Actor, TaskService, utcnow

CONFLICT_RETRIES = 5
MAX_KEY = 200
MAX_PARAMS_BYTES = 10 * 1024
START_RECORD_DELAY = 0.25
_OUTCOMES = (TaskCompleted, TaskFailed, TaskRetrying, TaskCancelled, TaskDeleted)


class Triggered(msgspec.Struct, frozen=True):
    """A trigger's answer; `created` is False when an Idempotency-Key matched an execution."""

    execution: ExecutionState
    created: bool


class JobService:
    """Runs job commands for one project at a time; tenant checks happen on every load."""

    def __init__(
        self,
        tasks: TaskService,
        *,
        allow_commands: bool = False,
        clock: Callable[[], datetime] = utcnow,
        send_runs: SendRuns | None = None,
        dispatch_lease_seconds: float = 60.0,
    ) -> None:
        self.tasks = tasks
        self.store = JobStore(tasks.pool, tasks.committer)
        self.allow_commands = allow_commands
        self.clock = clock
        self.runner = ExecutionRunner(
            self.store, tasks, clock=clock, send_runs=send_runs,
            dispatch_lease_seconds=dispatch_lease_seconds,
        )  # fmt: skip
        self._background: set[asyncio.Task[None]] = set()
        tasks.observers.append(self._follow_core_task)

    async def _follow_core_task(self, state: TaskState, events: list[TaskEvent]) -> None:
        """A node's core task changed: advance its execution (the fast path of every hop)."""
        execution_id = execution_of(state)
        if execution_id is None:
            return
        if any(isinstance(e, _OUTCOMES) for e in events):
            await self.runner.poke(execution_id)
        elif any(isinstance(e, TaskStarted) for e in events):
            # Recorded a moment later and in the background: it must not delay the action, and
            # a quick task's outcome records its start too (a pass for the start alone would
            # hold up the hop that follows it).
            task = asyncio.create_task(self._record_start(execution_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _record_start(self, execution_id: str) -> None:
        await asyncio.sleep(START_RECORD_DELAY)
        await self.runner.poke(execution_id)

    async def get(self, project_id: str, job_id: str) -> JobState:
        return await self.store.job(project_id, job_id)

    async def create(self, project_id: str, definition: JobDefinition, *, actor: Actor) -> JobState:
        job_id = str(uuid.uuid4())
        command = CreateJob(job_id=job_id, project_id=project_id, definition=definition)
        events = decide(None, command, now=self.clock(), allow_commands=self.allow_commands)
        return await self.store.append_job(None, job_id, project_id, events, actor)

    async def execute(
        self, project_id: str, job_id: str, command: JobCommand, *, actor: Actor
    ) -> JobState:
        """Apply `command`, re-deciding if another writer got there first."""
        admitted: list[str] = []
        state = None
        for _ in range(CONFLICT_RETRIES):
            state = await self.store.job(project_id, job_id)
            events = decide(state, command, now=self.clock(), allow_commands=self.allow_commands)
            if not events:
                return state
            try:
                new = await self.store.append_job(state, job_id, project_id, events, actor)
            except WrongExpectedVersion:
                continue
            admitted = [e.execution_id for e in events if isinstance(e, ev.JobExecutionAdmitted)]
            for execution_id in admitted:  # a resume or a larger maxActiveRuns freed places
                await self.runner.poke(execution_id)
            return new
        raise InvalidState(f"job {job_id} is changing too fast; try again")

    async def trigger(
        self,
        project_id: str,
        job_id: str,
        *,
        params: Any,
        idempotency_key: str | None,
        actor: Actor,
    ) -> Triggered:
        """Create an execution of the job's current version and start it if a place is free."""
        job = await self.store.job(project_id, job_id)
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY:
            raise ValidationError(
                f"Idempotency-Key must be 1-{MAX_KEY} characters", field="Idempotency-Key"
            )
        if params is not None:
            if not isinstance(params, dict):
                raise ValidationError("params must be a JSON object", field="params")
            size = len(encode(params))
            if size > MAX_PARAMS_BYTES:
                raise ValidationError(
                    f"params is {size} bytes; the limit is {MAX_PARAMS_BYTES}", field="params"
                )
        execution_id = (
            str(uuid.uuid4())
            if idempotency_key is None
            else execution_id_for_key(project_id, job_id, idempotency_key)
        )
        existing = await self.store.execution_any(execution_id)
        if existing is not None:
            await self.runner.poke(execution_id)  # finishes a trigger a crash interrupted
            return Triggered(existing, created=False)
        if job.paused:
            raise InvalidState(f"job {job_id} is paused; resume it to trigger an execution")
        created = execution_created(job, execution_id, params=params, now=self.clock())
        try:
            state = await self.store.append_execution(
                None, execution_id, project_id, [created], actor
            )
        except WrongExpectedVersion:  # the same key, concurrently
            again = await self.store.execution_any(execution_id)
            assert again is not None
            return Triggered(again, created=False)
        await self.runner.poke(execution_id)
        return Triggered(await self.store.execution_any(execution_id) or state, created=True)

    async def cancel(
        self, project_id: str, job_id: str, execution_id: str, *, actor: Actor
    ) -> ExecutionState:
        for _ in range(CONFLICT_RETRIES):
            state = await self.store.execution(project_id, job_id, execution_id)
            events = decide_cancel(state, now=self.clock(), reason=f"cancelled by {actor.kind}")
            if not events:
                return state
            stop = list(in_flight(state).values())
            try:
                new = await self.store.append_execution(
                    state, execution_id, project_id, events, actor
                )
            except WrongExpectedVersion:
                continue
            await self.runner.cancel_core_tasks(project_id, stop)
            await self.runner.poke(execution_id)  # frees its place with the job
            return new
        raise InvalidState(f"execution {execution_id} is changing too fast; try again")

    async def retry(
        self, project_id: str, job_id: str, execution_id: str, *, actor: Actor
    ) -> ExecutionState:
        for _ in range(CONFLICT_RETRIES):
            state = await self.store.execution(project_id, job_id, execution_id)
            events = decide_retry(state, now=self.clock())
            try:
                await self.store.append_execution(state, execution_id, project_id, events, actor)
            except WrongExpectedVersion:
                continue
            # Back in the job's places: re-admitted like a new trigger (or queued).
            await self.runner.readmit(execution_id)
            return await self.store.execution(project_id, job_id, execution_id)
        raise InvalidState(f"execution {execution_id} is changing too fast; try again")

    async def fire(self, job_id: str) -> str | None:
        """Decide a due fire time of one job; returns the execution it created, if any."""
        for _ in range(CONFLICT_RETRIES):
            job = await self.store.job_any(job_id)
            if job is None:
                return None
            fire = decide_fire(job, now=self.clock())
            if fire is None:
                return None
            if (
                fire.execution_id is not None
                and await self.store.execution_any(fire.execution_id) is None
            ):
                created = execution_created(
                    job,
                    fire.execution_id,
                    params=None,
                    now=self.clock(),
                    trigger="schedule",
                    scheduled_for=fire.scheduled_for,
                )
                try:
                    await self.store.append_execution(
                        None, fire.execution_id, job.project_id, [created], self.runner.actor
                    )
                except WrongExpectedVersion:
                    pass  # another replica created it a moment ago
            try:
                await self.store.append_job(
                    job, job_id, job.project_id, fire.events, self.runner.actor
                )
            except WrongExpectedVersion:
                continue
            if fire.execution_id is not None:
                await self.runner.poke(fire.execution_id)
            return fire.execution_id
        return None


def execution_created(
    job: JobState,
    execution_id: str,
    *,
    params: Any,
    now: datetime,
    trigger: str = "manual",
    scheduled_for: datetime | None = None,
) -> ev.ExecutionCreated:
    """An execution pinned to the job's current definition version."""
    return ev.ExecutionCreated(
        at=now,
        execution_id=execution_id,
        job_id=job.job_id,
        project_id=job.project_id,
        job_name=job.definition.name,
        definition_version=job.definition_version,
        tasks=job.definition.tasks,
        retry_policy=job.definition.retry_policy,
        params=params,
        trigger=trigger,
        scheduled_for=scheduled_for,
    )
