"""Carrying out one run: fence it with `task.started`, run the action, record the outcome.

The broker only says "run X of task T, attempt N". Everything else comes from the log: a
delivery for a run the task has moved past is dropped (StaleDelivery or a version conflict), so
a duplicate or late message never starts or completes a run twice. While the action runs, a
heartbeat pushes the run's lease forward; if this process dies, the lease runs out and the
scheduler's sweep fails the run as `worker_lost` and retries it.

A cancel or delete of the task stops the run within a second: the log's trigger NOTIFYs
`ts_run_stopped` at commit and the action's coroutine is cancelled (docs/execution.md,
"Stopping a run"); a heartbeat that finds the run no longer running does the same when a
notification was missed.
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
from domain.execution import EGRESS_REFUSED, StaleDelivery, decide_finish, decide_start
from domain.task import TaskState
from infra.command_runner import CommandRun
from infra.egress_client import EgressClient, EgressConnectionError, EgressTimeout
from infra.egress_guard import EgressRefused
from infra.event_store import WrongExpectedVersion
from infra.json_codec import decode_state
from infra.pg_listener import ChannelListener
from infra.secret_store import SecretUnreadable
from services.metrics.catalog import RUN_DURATION
from services.runs.handlers import find_handler
from services.runs.run_log import RunLog, request_line
from services.tasks.service import Actor, TaskService

log = logging.getLogger(__name__)

RESULT_BODY_BYTES = 1024
ERROR_BODY_CHARS = 200
STOP_CHANNEL = "ts_run_stopped"
# The run must still be running (not merely the task's status: a paused task's run goes on).
_HEARTBEAT = """
UPDATE task_view SET lease_until = now() + make_interval(secs => $4)
 WHERE task_id = $1 AND state->>'run_status' = 'running'
   AND state->>'run_id' = $2 AND (state->>'attempt')::int = $3
"""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    result: Any = None
    error: str = ""
    reason: str = "error"
    retry_after: float | None = None  # seconds a 429/503 asked to wait


class _Running:
    """A run this process is executing, as the stop signal finds it."""

    def __init__(self) -> None:
        self.action: asyncio.Task[Outcome] | None = None
        self.stop_requested = False

    def stop(self) -> None:
        self.stop_requested = True
        if self.action is not None:
            self.action.cancel()


class RunExecutor:
    """Executes runs for one worker process.

    Used as an async context manager (or `listen()` … `close()`), it listens for stop signals
    on one pooled connection; without it, only the heartbeat notices a cancel.
    """

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
        self._running: dict[str, list[_Running]] = {}
        self._stops = ChannelListener(pool, STOP_CHANNEL, self._stop_requested)
        self._listening = False

    async def listen(self) -> None:
        self._listening = True
        await self._stops.ensure()

    async def close(self) -> None:
        self._listening = False
        await self._stops.close()

    async def __aenter__(self) -> RunExecutor:
        await self.listen()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _stop_requested(self, task_id: str) -> None:
        for run in self._running.get(task_id, ()):
            run.stop()

    async def execute(self, task_id: str, run_id: str, attempt: int) -> str:
        """Run one delivery; returns what happened ('completed', 'failed', 'cancelled',
        'stale')."""
        if self._listening:
            await self._stops.ensure()
        state = await self._load(task_id)
        if state is None:
            return "stale"
        # Registered before `task.started` is appended: a stop committed after it finds us.
        run = _Running()
        self._running.setdefault(task_id, []).append(run)
        try:
            return await self._execute(state, run, run_id, attempt)
        finally:
            runs = self._running[task_id]
            runs.remove(run)
            if not runs:
                del self._running[task_id]

    async def _execute(self, state: TaskState, run: _Running, run_id: str, attempt: int) -> str:
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
        lines = RunLog(state.project_id, state.task_id, run_id)
        started = time.perf_counter()
        action = asyncio.create_task(self._run_action(state, lines))
        run.action = action
        if run.stop_requested:
            action.cancel()
        heartbeat = asyncio.create_task(self._heartbeat(state.task_id, run_id, attempt, run))
        try:
            await asyncio.wait({action})
        finally:
            action.cancel()  # only has an effect when this delivery itself is being cancelled
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        duration_ms = (time.perf_counter() - started) * 1000
        if action.cancelled():
            RUN_DURATION.labels("cancelled").observe(duration_ms / 1000)
            lines.add("warn", f"run cancelled after {duration_ms:.0f} ms: the task was stopped")
            await lines.write(self.pool)
            return "cancelled"
        outcome = action.result()
        RUN_DURATION.labels("completed" if outcome.ok else "failed").observe(duration_ms / 1000)
        return await self._finish(state, run_id, attempt, outcome, duration_ms, lines)

    async def _load(self, task_id: str) -> TaskState | None:
        raw = await self.pool.fetchval(
            "SELECT state::text FROM task_view WHERE task_id = $1", task_id
        )
        return None if raw is None else decode_state(raw)

    async def _finish(
        self,
        started: TaskState,
        run_id: str,
        attempt: int,
        outcome: Outcome,
        duration_ms: float,
        lines: RunLog,
    ) -> str:
        state: TaskState | None = started
        for _ in range(5):
            if state is None:
                await lines.write(self.pool)
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
                await self.tasks.record(state, events, actor=self.actor, also=lines.inline_writes())
            except StaleDelivery as exc:
                # Given up on, cancelled or deleted meanwhile: the outcome is not recorded.
                log.warning("run %s finished after it was given up on: %s", run_id, exc)
                lines.add("warn", f"outcome not recorded: {exc}")
                await lines.write(self.pool)
                return "stale"
            except WrongExpectedVersion:
                # A user checkpointed or edited the task meanwhile: re-decide on fresh state.
                state = await self._load(started.task_id)
                continue
            return "completed" if outcome.ok else "failed"
        raise RuntimeError(f"could not record the outcome of run {run_id}")

    async def _heartbeat(self, task_id: str, run_id: str, attempt: int, run: _Running) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                updated = await self.pool.execute(
                    _HEARTBEAT, task_id, run_id, attempt, self.lease_seconds
                )
                if updated == "UPDATE 0":
                    # No longer running: stopped while no stop signal reached this process.
                    run.stop()
                    return

    async def _run_action(self, state: TaskState, lines: RunLog) -> Outcome:
        action = state.definition.action
        timeout = float(state.definition.timeout_seconds)
        try:
            return await asyncio.wait_for(self._dispatch_action(state, action, lines), timeout)
        except TimeoutError:
            lines.add("error", f"timed out after {timeout:g} s")
            return Outcome(ok=False, error=f"timed out after {timeout:g} s", reason="timeout")

    async def _dispatch_action(
        self, state: TaskState, action: Action | None, lines: RunLog
    ) -> Outcome:
        if isinstance(action, HttpAction):
            return await self._http(state, action, lines)
        if isinstance(action, CommandAction):
            return await self._command(action, float(state.definition.timeout_seconds), lines)
        if isinstance(action, HandlerAction):
            return await self._handler(state, action, lines)
        return Outcome(ok=True, result={"action": None})

    async def _http(self, state: TaskState, action: HttpAction, lines: RunLog) -> Outcome:
        try:
            headers = await self._header_values(state, action)
        except SecretUnreadable as exc:
            headers = None
            log.warning("task %s: header values do not open: %s", state.task_id, exc)
        if headers is None:
            lines.add("error", "secret_unavailable: the task's header values cannot be opened")
            return Outcome(
                ok=False,
                error="the task's header values were replaced, deleted or cannot be opened",
                reason="secret_unavailable",
            )
        # The same key on every attempt of one run lets receivers drop repeats.
        headers.setdefault("Idempotency-Key", f"{state.task_id}:{state.run_id}")
        lines.add("info", request_line(action.method, action.url))
        began = time.perf_counter()
        failure: Outcome | None = None
        try:
            response = await self.egress.request(
                action.method, action.url, headers=headers, body=action.body,
                timeout=min(action.timeout_seconds, float(state.definition.timeout_seconds)),
                tenant=state.project_id,
            )  # fmt: skip
        except EgressTimeout as exc:
            failure = Outcome(ok=False, error=str(exc), reason="timeout")
        except EgressRefused as exc:
            failure = Outcome(ok=False, error=exc.message, reason=EGRESS_REFUSED)
        except EgressConnectionError as exc:
            failure = Outcome(ok=False, error=str(exc), reason="connection_error")
        took = f"{(time.perf_counter() - began) * 1000:.0f} ms"
        if failure is not None:
            lines.add("error", f"{failure.reason} after {took}: {failure.error}")
            return failure
        body = response.body[:RESULT_BODY_BYTES].decode("utf-8", "replace")
        result = {"status": response.status, "body": body}
        if 200 <= response.status < 300:
            lines.add("info", f"HTTP {response.status} in {took}")
            return Outcome(ok=True, result=result)
        lines.add("error", f"HTTP {response.status} in {took}: {body[:ERROR_BODY_CHARS]}")
        return Outcome(
            ok=False,
            result=result,
            error=f"HTTP {response.status}",
            reason="http_status",
            retry_after=_retry_after(response.status, response.headers.get("retry-after")),
        )

    async def _header_values(self, state: TaskState, action: HttpAction) -> dict[str, str] | None:
        """The headers to send: the stored values under the action's names (None: gone)."""
        if action.secret_ref is None:  # no headers, or a task stored before sealing
            return dict(action.headers)
        values = await self.tasks.secrets.values(state.project_id, state.task_id, action.secret_ref)
        if values is None:
            return None
        return {name: values.get(name, value) for name, value in action.headers.items()}

    async def _handler(self, state: TaskState, action: HandlerAction, lines: RunLog) -> Outcome:
        fn = find_handler(action.name)
        if fn is None:
            message = f"no handler named {action.name!r} is registered on this worker"
            lines.add("error", message)
            return Outcome(ok=False, error=message, reason="unknown_handler")
        context = _RunContext(self, state)
        try:
            result = await fn(context)
        except Exception as exc:  # the handler's failure is the run's failure
            lines.add("error", f"{type(exc).__name__}: {exc}")
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}", reason="exception")
        return Outcome(ok=True, result=result)

    async def _command(self, action: CommandAction, limit_seconds: float, lines: RunLog) -> Outcome:
        if not self.allow_commands:
            lines.add("error", "command actions are disabled on this worker")
            return Outcome(ok=False, error="command actions are disabled on this worker",
                           reason="commands_disabled")  # fmt: skip
        run = CommandRun(action.command, tail_bytes=RESULT_BODY_BYTES)
        try:
            await run.run(limit_seconds)
        except asyncio.CancelledError:
            _log_output(run, lines)
            lines.add("warn", f"command stopped with {run.stopped_with or 'no signal'}")
            raise
        _log_output(run, lines)
        if run.timed_out:
            lines.add("error", f"command timed out after {limit_seconds:g} s"
                               f" (stopped with {run.stopped_with})")  # fmt: skip
            return Outcome(
                ok=False, error=f"command timed out after {limit_seconds:g} s", reason="timeout"
            )
        code = run.exit_code
        lines.add("info" if code == 0 else "error", f"exit code {code}")
        result = {"exit_code": code, "output": run.output}
        if code == 0:
            return Outcome(ok=True, result=result)
        return Outcome(ok=False, result=result, error=f"exit code {code}",
                       reason="exit_code")  # fmt: skip


def _log_output(run: CommandRun, lines: RunLog) -> None:
    for stream, text in run.lines:
        lines.add("info" if stream == "stdout" else "warn", f"{stream}: {text}")
    if run.lines_not_kept:
        lines.add(
            "info", f"… {run.lines_not_kept} lines not logged (at most {run.max_lines} per stream)"
        )
    run.lines.clear()
    run.lines_not_kept = 0


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
        """Write a log line to the task's logs (GET /api/tasks/{id}/logs) now."""
        line = RunLog(self.project_id, self.task_id, self.run_id)
        line.add(level, message)
        await line.write(self._executor.pool)
