"""The glue between executions and the core: what makes a DAG run.

`reconcile(execution_id)` looks at an execution and the core tasks of its in-flight nodes, and
does whatever is due: admit it with its job, start it, record what the core reports, create the
core tasks of nodes that became ready, and, once it is settled, free its place with the job and
start the next queued execution. It is idempotent and safe to run anywhere at any time (every
write is an expected-version append or the create of a deterministic core task id), so:

- a worker calls it right after recording a node's outcome (the fast path: a finished node
  starts its dependents without waiting for any poll);
- the scheduler's sweep calls it for open executions nobody touched lately (the safety net for
  a process killed between the core append and this one).

`poke` coalesces calls for one execution within a process: while a pass runs, further calls
only ask for one more pass, so a fan-in of 500 finishing nodes costs a few passes, not 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from domain.commands import CancelTask
from domain.errors import DomainError, InvalidState, NotFound
from domain.job import EndExecution, TriggerJob
from domain.job import decide as decide_job
from domain.job_execution import (
    ExecutionState,
    decide_advance,
    decide_cancel,
    decide_start,
    in_flight,
    observe,
)
from domain.job_execution import fold as fold_execution
from domain.task import TaskState
from infra.event_store import WrongExpectedVersion
from infra.json_codec import decode_state
from services.jobs.node_tasks import node_definition
from services.jobs.store import JobStore
from services.tasks.service import Actor, TaskService

log = logging.getLogger(__name__)

SendRuns = Callable[[list[tuple[str, str, int]]], Awaitable[None]]
PASSES = 20
CREATE_CONCURRENCY = 64
_CORE_STATES = "SELECT task_id, state::text FROM task_view WHERE task_id = ANY($1::text[])"


class ExecutionRunner:
    def __init__(
        self,
        store: JobStore,
        tasks: TaskService,
        *,
        clock: Callable[[], datetime],
        actor: Actor | None = None,
        send_runs: SendRuns | None = None,
        dispatch_lease_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.tasks = tasks
        self.clock = clock
        # With a way to the workers, a ready node's core task is created already dispatched
        # and sent at once; without, the schedulers pick it up (woken by its insert).
        self.send_runs = send_runs
        self.dispatch_lease_seconds = dispatch_lease_seconds
        self.actor = actor or Actor("jobs", "runner")
        self._active: set[str] = set()
        self._again: set[str] = set()

    async def poke(self, execution_id: str) -> None:
        """Reconcile, coalescing concurrent calls; errors are logged (the sweep retries)."""
        if execution_id in self._active:
            self._again.add(execution_id)
            return
        self._active.add(execution_id)
        try:
            while True:
                self._again.discard(execution_id)
                try:
                    await self.reconcile(execution_id)
                except (DomainError, OSError, asyncpg.PostgresError) as exc:
                    log.warning(
                        "execution %s not advanced (the sweep retries): %s", execution_id, exc
                    )
                if execution_id not in self._again:
                    return
        finally:
            self._active.discard(execution_id)

    async def reconcile(self, execution_id: str) -> ExecutionState | None:
        """Bring one execution up to date with its job and the core; returns its state."""
        follow_up: list[str] = []
        state = None
        for _ in range(PASSES):
            state = await self.store.execution_any(execution_id)
            if state is None:
                return None
            try:
                state, done = await self._step(state, follow_up)
            except WrongExpectedVersion:
                continue  # someone else moved it: look again
            if done:
                break
        for other in follow_up:
            await self.poke(other)
        return state

    async def _step(
        self, state: ExecutionState, follow_up: list[str]
    ) -> tuple[ExecutionState, bool]:
        """One move; True when nothing more is to be done now."""
        now = self.clock()
        if state.status == "PENDING":
            job = await self.store.job_any(state.job_id)
            if job is None or job.deleted:
                events = decide_cancel(state, now=now, reason="the job was deleted")
                return await self._append(state, events), True
            if state.execution_id in job.running:
                return await self._append(state, decide_start(state, now=now)), False
            if state.execution_id in job.queued:
                return state, True
            await self._trigger(state)
            return state, False
        if not state.settled:
            flights = in_flight(state)
            cores = await self._core_states(list(flights.values()))
            seen = {t: observe(cores[c]) for t, c in flights.items() if c in cores}
            events = decide_advance(state, seen, now=now)
            after = fold_execution(events, state) or state
            missing = [t for t, c in in_flight(after).items() if c not in cores]
            # Both at once (they usually share one group commit): a core task created for an
            # append that then loses a conflict is found again by the next pass, whose same
            # decision names the same deterministic core task id.
            appended, created = await asyncio.gather(
                self._append(state, events),
                self._create_core_tasks(after, missing),
                return_exceptions=True,
            )
            if isinstance(created, BaseException):
                raise created
            if isinstance(appended, BaseException):
                if isinstance(appended, WrongExpectedVersion) and missing:
                    await self._drop_orphans(after, missing)
                raise appended
            state = appended
            if not state.settled:
                return state, True
        follow_up += await self._end(state)
        return state, True

    async def _append(self, state: ExecutionState, events: list) -> ExecutionState:  # type: ignore[type-arg]
        if not events:
            return state
        return await self.store.append_execution(
            state, state.execution_id, state.project_id, events, self.actor
        )

    async def _trigger(self, state: ExecutionState) -> None:
        """Tell the job about an execution it has not heard of (admitted or queued)."""
        command = TriggerJob(
            execution_id=state.execution_id,
            trigger=state.trigger,
            scheduled_for=state.scheduled_for,
        )
        await self._on_job(state.job_id, command)

    async def readmit(self, execution_id: str) -> None:
        """Give a retried execution its place with the job again, then run it."""
        state = await self.store.execution_any(execution_id)
        if state is not None:
            await self._on_job(state.job_id, TriggerJob(execution_id=execution_id, trigger="retry"))
            await self.poke(execution_id)

    async def _end(self, state: ExecutionState) -> list[str]:
        """Free the execution's place; returns the executions the job admitted instead."""
        admitted = await self._on_job(state.job_id, EndExecution(execution_id=state.execution_id))
        return admitted

    async def _on_job(self, job_id: str, command: TriggerJob | EndExecution) -> list[str]:
        for _ in range(PASSES):
            job = await self.store.job_any(job_id)
            if job is None:
                return []
            try:
                events = decide_job(job, command, now=self.clock())
            except NotFound:
                return []
            if not events:
                return []
            try:
                new = await self.store.append_job(job, job_id, job.project_id, events, self.actor)
            except WrongExpectedVersion:
                continue
            return [e for e in new.running if e not in job.running]
        raise InvalidState(f"job {job_id} is changing too fast")

    async def _core_states(self, ids: list[str]) -> dict[str, TaskState]:
        if not ids:
            return {}
        rows = await self.store.pool.fetch(_CORE_STATES, ids)
        return {r["task_id"]: decode_state(r["state"]) for r in rows}

    async def _create_core_tasks(self, state: ExecutionState, task_ids: list[str]) -> None:
        if not task_ids:
            return
        flights = in_flight(state)
        slots = asyncio.Semaphore(CREATE_CONCURRENCY)
        runs: list[tuple[str, str, int]] = []

        async def create(task_id: str) -> None:
            definition = node_definition(state, state.task(task_id), now=self.tasks.clock())
            core_id = flights[task_id]
            async with slots:
                try:
                    if self.send_runs is None:
                        await self.tasks.create(
                            state.project_id, definition, actor=self.actor, task_id=core_id
                        )
                        return
                    _, dispatched = await self.tasks.create_dispatched(
                        state.project_id, definition, actor=self.actor, task_id=core_id,
                        lease_seconds=self.dispatch_lease_seconds,
                    )  # fmt: skip
                except InvalidState:
                    return  # created by another pass already
            if dispatched is not None:
                runs.append((core_id, dispatched.run_id, dispatched.attempt))

        await asyncio.gather(*(create(t) for t in task_ids))
        if runs and self.send_runs is not None:
            try:
                await self.send_runs(runs)
            except Exception as exc:  # the lease sweep re-runs every run not sent
                log.warning("could not send %d job runs: %s", len(runs), exc)

    async def _drop_orphans(self, decided: ExecutionState, task_ids: list[str]) -> None:
        """Cancel core tasks created for a decision that lost to another writer, unless the
        winner's state runs them too (it usually does: the same decision)."""
        now = await self.store.execution_any(decided.execution_id)
        keep = set(in_flight(now).values()) if now is not None else set()
        pending = {t for t, n in (now.nodes.items() if now else ()) if n.status == "PENDING"}
        flights = in_flight(decided)
        orphans = [flights[t] for t in task_ids if flights[t] not in keep and t not in pending]
        await self.cancel_core_tasks(decided.project_id, orphans)

    async def cancel_core_tasks(self, project_id: str, core_ids: list[str]) -> None:
        """Stop the core tasks of a cancelled execution's in-flight nodes."""
        for core_id in core_ids:
            try:
                await self.tasks.execute(
                    project_id, core_id, CancelTask(reason="execution cancelled"), actor=self.actor
                )
            except (NotFound, InvalidState):
                continue
