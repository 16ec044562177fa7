"""Application layer for tasks: load state, decide, append with the inline view, retry conflicts.

Every API surface calls this; none of them touches the log or the view on its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from msgspec import UNSET

from domain.action_secrets import seal_events
from domain.actions import HttpAction
from domain.commands import CreateTask, TaskCommand, TaskPatch, TriggerTask, UpdateTask
from domain.errors import DomainError, InvalidState, NotFound, ValidationError
from domain.events import SCHEMA_VERSION, TaskDispatched, TaskEvent, event_type
from domain.execution import decide_dispatch
from domain.http_headers import REDACTED, with_kept_values
from domain.task import TaskState, decide, fold
from domain.task_definition import TaskDefinition
from infra.egress_guard import IPNetwork, check_destination
from infra.event_store import (
    AppendItem,
    DedupeClaim,
    DuplicateKey,
    NewEvent,
    Slot,
    WrongExpectedVersion,
)
from infra.group_commit import GroupCommitter, InlineWrite
from infra.json_codec import decode_state, encode
from infra.secret_store import TaskSecretStore, new_ref
from projections.task_view import UPSERT_SQL, task_view_row
from services.tasks.metrics import count_appended
from services.tasks.queries import event_listeners

CONFLICT_RETRIES = 3
FIRE_EVENT_CONCURRENCY = 8


DEFAULT_DEDUPE_WINDOW_SECONDS = 86_400


class Created(msgspec.Struct, frozen=True):
    """A create's answer: the task, and whether it is new (False: a dedupe key matched)."""

    state: TaskState
    created: bool


class FiredEvent(msgspec.Struct, frozen=True):
    """What an incoming event did: the tasks it triggered and those that could not run now."""

    triggered: list[str]
    skipped: list[str]


class Actor(msgspec.Struct, frozen=True):
    """Who asked, for the event metadata."""

    kind: str
    id: str
    correlation_id: str | None = None


AppendObserver = Callable[[TaskState, list[TaskEvent]], Awaitable[None]]


def new_events(
    events: Sequence[Any], type_of: Callable[[Any], str], actor: Actor, schema: int
) -> list[NewEvent]:
    """Decided events as log rows, each carrying who acted (and the request's correlation id)."""
    metadata = {"actor": f"{actor.kind}:{actor.id}"}
    if actor.correlation_id:
        metadata["correlation_id"] = actor.correlation_id
    return [
        NewEvent(type=type_of(e), data=msgspec.Raw(encode(e)), schema=schema, metadata=metadata)
        for e in events
    ]


def utcnow() -> datetime:
    return datetime.now(UTC)


def stream_of(task_id: str) -> str:
    return f"task-{task_id}"


class TaskService:
    """Runs task commands for one project at a time; tenant checks happen on every load."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        committer: GroupCommitter,
        *,
        secrets: TaskSecretStore,
        allow_commands: bool = False,
        egress_allow: Sequence[IPNetwork] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pool = pool
        self.committer = committer
        self.secrets = secrets
        self.allow_commands = allow_commands
        # The operator's TASKSTREAM_EGRESS_ALLOW_CIDRS: the create-time destination rule must
        # open exactly what the workers' egress client will open at call time.
        self.egress_allow = tuple(egress_allow)
        self.clock = clock
        # Called after each committed append with the new state and its events: how other
        # capabilities (jobs) follow their tasks without polling. They must not raise.
        self.observers: list[AppendObserver] = []

    async def get(self, project_id: str, task_id: str) -> TaskState:
        """The task as the view holds it; NotFound for another project's or a deleted task."""
        row = await self.pool.fetchrow(
            "SELECT state::text FROM task_view WHERE task_id = $1 AND project_id = $2",
            task_id,
            project_id,
        )
        if row is None:
            raise NotFound(f"task {task_id} not found")
        state = decode_state(row[0])
        if state.lifecycle == "deleted":
            raise NotFound(f"task {task_id} not found")
        return state

    async def create(
        self,
        project_id: str,
        definition: TaskDefinition,
        *,
        actor: Actor,
        task_id: str | None = None,
    ) -> TaskState:
        """Create a task; returns its state as stored (see `create_or_match` for dedupe keys)."""
        return (
            await self.create_or_match(project_id, definition, actor=actor, task_id=task_id)
        ).state

    async def create_or_match(
        self,
        project_id: str,
        definition: TaskDefinition,
        *,
        actor: Actor,
        task_id: str | None = None,
        dedupe_until: datetime | None = None,
    ) -> Created:
        """Create a task, or return the one holding its dedupe key within the key's window.

        `dedupe_until` replaces the window with an end instant, for callers whose keys are held
        until a given time or until they free them (`release_dedupe_key`).
        """
        now = self.clock()
        command = CreateTask(
            task_id=task_id or str(uuid.uuid4()), project_id=project_id, definition=definition
        )
        await self._check_dependencies(project_id, definition.dependencies)
        events = decide(None, command, now=now, allow_commands=self.allow_commands)
        # After `decide`, so its own refusals (a metadata host, a malformed URL) speak first.
        self._check_destinations(definition.action, definition.notify_url)
        dedupe = None
        if definition.dedupe_key is not None:
            window = definition.dedupe_window_seconds or DEFAULT_DEDUPE_WINDOW_SECONDS
            until = dedupe_until or now + timedelta(seconds=window)
            dedupe = DedupeClaim(definition.dedupe_key, command.task_id, until)
        for _ in range(CONFLICT_RETRIES):
            try:
                state = await self._append(None, command.task_id, project_id, events, actor, dedupe)
            except WrongExpectedVersion:
                raise InvalidState(f"task {command.task_id} already exists") from None
            except DuplicateKey as duplicate:
                try:
                    return Created(await self.get(project_id, duplicate.holder), created=False)
                except NotFound:
                    # The holder was deleted: nothing left to match, so its key is free.
                    assert definition.dedupe_key is not None
                    await self.release_dedupe_key(
                        project_id, definition.dedupe_key, duplicate.holder
                    )
                    continue
            return Created(state, created=True)
        raise InvalidState(f"dedupe key {definition.dedupe_key!r} is changing too fast; try again")

    async def create_dispatched(
        self,
        project_id: str,
        definition: TaskDefinition,
        *,
        actor: Actor,
        task_id: str,
        lease_seconds: float,
    ) -> tuple[TaskState, TaskDispatched | None]:
        """Create a task that is due now with its first run dispatched, in one append.

        For a caller that hands the run to the broker itself (a job's next node): it saves the
        scheduler's wake-up and claim. The run is an ordinary dispatch with a lease, so a lost
        message is recovered by the lease sweep like any other.
        """
        now = self.clock()
        command = CreateTask(task_id=task_id, project_id=project_id, definition=definition)
        events = decide(None, command, now=now, allow_commands=self.allow_commands)
        created = fold(events)
        assert created is not None
        dispatch = decide_dispatch(
            created, now=now, run_id=str(uuid.uuid4()), lease_seconds=lease_seconds
        )
        try:
            state = await self._append(None, task_id, project_id, [*events, *dispatch], actor)
        except WrongExpectedVersion:
            raise InvalidState(f"task {task_id} already exists") from None
        return state, next((e for e in dispatch if isinstance(e, TaskDispatched)), None)

    async def release_dedupe_key(self, project_id: str, key: str, task_id: str) -> None:
        """Free `key` if `task_id` still holds it, so the next create may claim it.

        A compare-and-delete: a claim another create took in the meantime is left alone.
        """
        await self.pool.execute(
            "DELETE FROM dedupe_keys WHERE project_id = $1 AND dedupe_key = $2 AND task_id = $3",
            project_id,
            key,
            task_id,
        )

    def _check_destinations(self, action: object, notify_url: str | None) -> None:
        """Every URL a task stores for later calls meets the egress rule now (issue 10 §3)."""
        if isinstance(action, HttpAction):
            check_destination(action.url, self.egress_allow, field="action.url")
        if notify_url is not None:
            check_destination(notify_url, self.egress_allow, field="notify_url")

    async def _check_dependencies(self, project_id: str, dependencies: tuple[str, ...]) -> None:
        if not dependencies:
            return
        found = await self.pool.fetch(
            "SELECT task_id FROM task_view WHERE project_id = $1 AND task_id = ANY($2::text[])"
            " AND lifecycle <> 'deleted'",
            project_id,
            list(dependencies),
        )
        missing = sorted(set(dependencies) - {r["task_id"] for r in found})
        if missing:
            raise ValidationError(
                f"unknown dependencies: {', '.join(missing)}", field="dependencies"
            )

    async def execute(
        self, project_id: str, task_id: str, command: TaskCommand, *, actor: Actor
    ) -> TaskState:
        """Apply `command` to an existing task, re-deciding if another writer got there first."""
        if isinstance(command, UpdateTask) and isinstance(command.patch.dependencies, tuple):
            await self._check_dependencies(project_id, command.patch.dependencies)
        given = command
        for _ in range(CONFLICT_RETRIES):
            state = await self.get(project_id, task_id)
            if isinstance(given, UpdateTask):
                command = UpdateTask(patch=await self._with_stored_values(state, given.patch))
            events = decide(state, command, now=self.clock(), allow_commands=self.allow_commands)
            if isinstance(command, UpdateTask):
                patch = command.patch
                self._check_destinations(
                    None if patch.action is UNSET else patch.action,
                    None if patch.notify_url is UNSET else patch.notify_url,
                )
            if not events:
                return state
            try:
                return await self._append(state, task_id, project_id, events, actor)
            except WrongExpectedVersion:
                continue
        raise InvalidState(f"task {task_id} is changing too fast; try again")

    async def _with_stored_values(self, state: TaskState, patch: TaskPatch) -> TaskPatch:
        """`patch` with each `***` header value replaced by the value stored under its name.

        A patch that restores exactly the stored action becomes the stored action itself, so
        sending back what a GET showed changes nothing (and writes nothing).
        """
        given, current = patch.action, state.definition.action
        if not (isinstance(given, HttpAction) and isinstance(current, HttpAction)):
            return patch
        if REDACTED not in given.headers.values():
            return patch
        if current.secret_ref is None:  # written before sealing: the values are still inline
            stored: dict[str, str] | None = dict(current.headers)
        else:
            stored = await self.secrets.values(state.project_id, state.task_id, current.secret_ref)
        if stored is None:
            return patch
        restored = msgspec.structs.replace(
            given, headers=with_kept_values(given.headers, stored), secret_ref=None
        )
        unchanged = msgspec.structs.replace(current, headers=stored, secret_ref=None)
        return msgspec.structs.replace(
            patch, action=current if restored == unchanged else restored
        )

    async def fire_event(
        self, project_id: str, name: str, payload: object, *, actor: Actor
    ) -> FiredEvent:
        """Trigger every active `event` task of the project that waits for `name`.

        A task with a run already in flight (or one paused or deleted since the lookup) is
        skipped rather than queued: a task holds one run at a time.
        """
        command = TriggerTask(event=name, event_payload=payload)
        # Bounded, so one popular event cannot take every pooled connection at once.
        slots = asyncio.Semaphore(FIRE_EVENT_CONCURRENCY)

        async def trigger(task_id: str) -> bool:
            async with slots:
                try:
                    await self.execute(project_id, task_id, command, actor=actor)
                except DomainError:
                    return False
                return True

        task_ids = await event_listeners(self.pool, project_id, name)
        outcomes = await asyncio.gather(*(trigger(t) for t in task_ids))
        return FiredEvent(
            triggered=[t for t, ok in zip(task_ids, outcomes, strict=True) if ok],
            skipped=[t for t, ok in zip(task_ids, outcomes, strict=True) if not ok],
        )

    async def _append(
        self,
        state: TaskState | None,
        task_id: str,
        project_id: str,
        events: list[TaskEvent],
        actor: Actor,
        dedupe: DedupeClaim | None = None,
        slot: Slot | None = None,
        also: Sequence[InlineWrite] = (),
    ) -> TaskState:
        # Header values leave the events here, on every path: they go to the secret store in
        # the same transaction (docs/secrets.md).
        events, secret_change = seal_events(events, new_ref())
        new_state = fold(events, state)
        assert new_state is not None
        item = AppendItem(
            stream_id=stream_of(task_id),
            project_id=project_id,
            expected=-1 if state is None else state.version,
            events=new_events(events, event_type, actor, SCHEMA_VERSION),
            dedupe=dedupe,
            slot=slot,
        )
        writes = [InlineWrite(UPSERT_SQL, task_view_row(new_state, encode(new_state)))]
        if secret_change is not None:
            writes.insert(0, self.secrets.write(project_id, task_id, secret_change))
        await self.committer.submit(item, [*writes, *also])
        count_appended(state, events)
        for observer in self.observers:
            await observer(new_state, events)
        return new_state

    async def record(
        self,
        state: TaskState,
        events: list[TaskEvent],
        *,
        actor: Actor,
        slot: Slot | None = None,
        also: Sequence[InlineWrite] = (),
    ) -> TaskState:
        """Append events already decided against `state` (execution paths decide their own);
        `also` are rows to write in the same transaction (a run's log lines)."""
        return await self._append(
            state, state.task_id, state.project_id, events, actor, slot=slot, also=also
        )
