"""Carrying out one run: fence it with `task.started`, run the action, record the outcome.

The broker only says "run X of task T, attempt N". Everything else comes from the log: a
delivery for a run the task has moved past is dropped (StaleDelivery or a version conflict), so
a duplicate or late message never starts or completes a run twice. While the action runs, a
heartbeat pushes the run's lease forward; if this process dies, the lease runs out and the
scheduler's sweep fails the run as `worker_lost` and retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec

from domain.actions import Action, CommandAction, HandlerAction, HttpAction
from domain.events import TaskCheckpointed
from domain.execution import StaleDelivery, decide_finish, decide_start
from domain.task import TaskState
from infra.egress_client import EgressClient, EgressConnectionError, EgressTimeout
from infra.egress_guard import EgressRefused
from infra.event_store import WrongExpectedVersion
from infra.json_codec import decode_state
from services.metrics.catalog import RUN_DURATION
from services.runs.handlers import LOG_LEVELS, find_handler
from services.tasks.service import Actor, TaskService

log = logging.getLogger(__name__)

RESULT_BODY_BYTES = 1024
_HEARTBEAT = """
UPDATE task_view SET lease_until = now() + make_interval(secs => $4)
 WHERE task_id = $1 AND status = 'running'
   AND state->>'run_id' = $2 AND (state->>'attempt')::int = $3
"""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    result: Any = None
    error: str = ""
    reason: str = "error"
    retry_after: float | None = None  # seconds a 429/503 asked to wait


class RunExecutor:
    """Executes runs for one worker process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tasks: TaskService,
        egress: EgressClient,
        *,
        worker_id: str,
        lease_seconds: float = 30.0,
        allow_commands: bool = False,
        random_unit: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.tasks = tasks
        self.egress = egress
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.allow_commands = allow_commands
        self.random_unit = random_unit
        self.actor = Actor("worker", worker_id)

    async def execute(self, task_id: str, run_id: str, attempt: int) -> str:
        """Run one delivery; returns what happened ('completed', 'failed', 'stale')."""
        state = await self._load(task_id)
        if state is None:
            return "stale"
        try:
            events = decide_start(
                state,
                run_id=run_id,
                attempt=attempt,
                worker_id=self.worker_id,
                now=self.tasks.clock(),
                lease_seconds=self.lease_seconds,
            )
            state = await self.tasks.record(state, events, actor=self.actor)
        except (StaleDelivery, WrongExpectedVersion) as exc:
            log.info("dropping delivery of run %s attempt %s: %s", run_id, attempt, exc)
            return "stale"
        started = time.perf_counter()
        heartbeat = asyncio.create_task(self._heartbeat(task_id, run_id, attempt))
        try:
            outcome = await self._run_action(state)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        duration_ms = (time.perf_counter() - started) * 1000
        RUN_DURATION.labels("completed" if outcome.ok else "failed").observe(duration_ms / 1000)
        return await self._finish(state, run_id, attempt, outcome, duration_ms)

    async def _load(self, task_id: str) -> TaskState | None:
        raw = await self.pool.fetchval(
            "SELECT state::text FROM task_view WHERE task_id = $1", task_id
        )
        return None if raw is None else decode_state(raw)

    async def _finish(
        self, started: TaskState, run_id: str, attempt: int, outcome: Outcome, duration_ms: float
    ) -> str:
        state: TaskState | None = started
        for _ in range(5):
            if state is None:
                return "stale"
            try:
                events = decide_finish(
                    state,
                    run_id=run_id,
                    attempt=attempt,
                    ok=outcome.ok,
                    now=self.tasks.clock(),
                    random_unit=self.random_unit(),
                    result=outcome.result,
                    error=outcome.error,
                    reason=outcome.reason,
                    duration_ms=duration_ms,
                    retry_after=outcome.retry_after,
                )
                await self.tasks.record(state, events, actor=self.actor)
            except StaleDelivery as exc:
                log.warning("run %s finished after it was given up on: %s", run_id, exc)
                return "stale"
            except WrongExpectedVersion:
                # A user checkpointed or edited the task meanwhile: re-decide on fresh state.
                state = await self._load(started.task_id)
                continue
            return "completed" if outcome.ok else "failed"
        raise RuntimeError(f"could not record the outcome of run {run_id}")

    async def _heartbeat(self, task_id: str, run_id: str, attempt: int) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await self.pool.execute(_HEARTBEAT, task_id, run_id, attempt, self.lease_seconds)

    async def _run_action(self, state: TaskState) -> Outcome:
        action = state.definition.action
        timeout = float(state.definition.timeout_seconds)
        try:
            return await asyncio.wait_for(self._dispatch_action(state, action), timeout)
        except TimeoutError:
            return Outcome(ok=False, error=f"timed out after {timeout:g} s", reason="timeout")

    async def _dispatch_action(self, state: TaskState, action: Action | None) -> Outcome:
        if isinstance(action, HttpAction):
            return await self._http(state, action)
        if isinstance(action, CommandAction):
            return await self._command(action, float(state.definition.timeout_seconds))
        if isinstance(action, HandlerAction):
            return await self._handler(state, action)
        return Outcome(ok=True, result={"action": None})

    async def _http(self, state: TaskState, action: HttpAction) -> Outcome:
        headers = dict(action.headers)
        # The same key on every attempt of one run lets receivers drop repeats.
        headers.setdefault("Idempotency-Key", f"{state.task_id}:{state.run_id}")
        try:
            response = await self.egress.request(
                action.method, action.url, headers=headers, body=action.body,
                timeout=min(action.timeout_seconds, float(state.definition.timeout_seconds)),
            )  # fmt: skip
        except EgressTimeout as exc:
            return Outcome(ok=False, error=str(exc), reason="timeout")
        except EgressRefused as exc:
            return Outcome(ok=False, error=exc.message, reason="blocked_destination")
        except EgressConnectionError as exc:
            return Outcome(ok=False, error=str(exc), reason="connection_error")
        body = response.body[:RESULT_BODY_BYTES].decode("utf-8", "replace")
        result = {"status": response.status, "body": body}
        if 200 <= response.status < 300:
            return Outcome(ok=True, result=result)
        return Outcome(
            ok=False,
            result=result,
            error=f"HTTP {response.status}",
            reason="http_status",
            retry_after=_retry_after(response.status, response.headers.get("retry-after")),
        )

    async def _handler(self, state: TaskState, action: HandlerAction) -> Outcome:
        fn = find_handler(action.name)
        if fn is None:
            return Outcome(
                ok=False,
                error=f"no handler named {action.name!r} is registered on this worker",
                reason="unknown_handler",
            )
        context = _RunContext(self, state)
        try:
            result = await fn(context)
        except Exception as exc:  # the handler's failure is the run's failure
            await context.log("error", f"{type(exc).__name__}: {exc}")
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}", reason="exception")
        return Outcome(ok=True, result=result)

    async def _command(self, action: CommandAction, limit_seconds: float) -> Outcome:
        if not self.allow_commands:
            return Outcome(ok=False, error="command actions are disabled on this worker",
                           reason="commands_disabled")  # fmt: skip
        process = await asyncio.create_subprocess_shell(
            action.command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), limit_seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
            return Outcome(
                ok=False, error=f"command timed out after {limit_seconds:g} s", reason="timeout"
            )
        text = output[-RESULT_BODY_BYTES:].decode("utf-8", "replace")
        result = {"exit_code": process.returncode, "output": text}
        if process.returncode == 0:
            return Outcome(ok=True, result=result)
        return Outcome(ok=False, result=result, error=f"exit code {process.returncode}",
                       reason="exit_code")  # fmt: skip


def _retry_after(status: int, header: str | None) -> float | None:
    """The wait a 429 or 503 asked for in whole seconds (HTTP dates are not honoured)."""
    if status not in (429, 503) or header is None or not header.strip().isdigit():
        return None
    return float(header.strip())


class _RunContext:
    """What a handler sees of its run."""

    def __init__(self, executor: RunExecutor, state: TaskState) -> None:
        self._executor = executor
        self.task_id = state.task_id
        self.project_id = state.project_id
        self.run_id = state.run_id or ""
        self.attempt = state.attempt
        self.payload = state.definition.payload
        self.checkpoint = state.checkpoint_data

    async def save_checkpoint(self, data: Any) -> None:
        """Record `task.checkpointed`; a retry of this run starts from it."""
        executor = self._executor
        for _ in range(5):
            state = await executor._load(self.task_id)
            if state is None:
                return
            event = TaskCheckpointed(at=executor.tasks.clock(), data=data, run_id=self.run_id)
            try:
                await executor.tasks.record(state, [event], actor=executor.actor)
            except WrongExpectedVersion:
                continue
            self.checkpoint = data
            return
        raise RuntimeError("could not save the checkpoint: the task keeps changing")

    async def log(self, level: str, message: str) -> None:
        """Write a log line to the task's logs (GET /api/tasks/{id}/logs)."""
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        await self._executor.pool.execute(
            "INSERT INTO task_logs (project_id, task_id, run_id, level, message)"
            " VALUES ($1, $2, $3, $4, $5)",
            self.project_id,
            self.task_id,
            self.run_id,
            level,
            message[:10_000],
        )
