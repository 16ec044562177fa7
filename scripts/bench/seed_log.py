"""Write a valid synthetic event log fast: whole task lifecycles, COPYed straight into `events`.

Each task is created, dispatched and started, then ends one of five ways: completed; failed for
good; failed and retried, then completed on the next attempt; lost with its worker (failed by
the scheduler) and retried, then completed; or still running. Every event's data is a domain
event struct encoded by the one codec, so the log decodes and folds like a real one. Appends
skip `ts_append` (one COPY instead), which is what makes a million events take seconds; the
`streams` rows are written too, so the log stays consistent for later appends.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from domain import events as ev
from domain.actions import HttpAction
from domain.schedule import Schedule
from domain.task_definition import TaskDefinition
from infra.json_codec import encode

_COLUMNS = ("stream_id", "version", "event_id", "type", "project_id", "data", "metadata",
            "recorded_at")  # fmt: skip
_OUTCOMES = ("completed", "failed", "retried", "lost", "running")


def _definition(due: datetime) -> TaskDefinition:
    return TaskDefinition(
        name="synthetic",
        action=HttpAction(url="https://example.com/hook"),
        schedule=Schedule(kind="once", expr=due.isoformat()),
        tags=("bench",),
    )


def _lifecycle(
    rng: random.Random, project_id: str, worker: str, due: datetime
) -> Iterator[tuple[Any, str]]:
    """(event, actor) of one task from creation to its outcome, `at` times around `due`."""
    task_id = str(uuid.UUID(int=rng.getrandbits(128)))
    yield (
        ev.TaskCreated(
            at=due - timedelta(seconds=5),
            task_id=task_id,
            project_id=project_id,
            definition=_definition(due),
            next_run_at=due,
        ),
        "user:seed",
    )
    outcome = rng.choice(_OUTCOMES)
    attempts = 2 if outcome in ("retried", "lost") else 1
    at = due
    for attempt in range(1, attempts + 1):
        at += timedelta(milliseconds=rng.randint(1, 400))
        lease = at + timedelta(seconds=30)
        yield (
            ev.TaskDispatched(at=at, run_id="r1", attempt=attempt, due_at=due, lease_until=lease),
            "scheduler:seed",
        )
        at += timedelta(milliseconds=rng.randint(1, 50))
        yield (
            ev.TaskStarted(
                at=at, run_id="r1", attempt=attempt, worker_id=worker, lease_until=lease
            ),
            f"worker:{worker}",
        )
        if outcome == "running":
            return
        took = rng.randint(5, 5000) / 10
        at += timedelta(milliseconds=took)
        if attempt == attempts and outcome != "failed":
            yield (
                ev.TaskCompleted(at=at, run_id="r1", attempt=attempt, duration_ms=took),
                f"worker:{worker}",
            )
            return
        if outcome == "lost":
            yield ev.TaskFailed(
                at=at, run_id="r1", attempt=attempt, error="worker lost", reason="worker_lost",
                final=False,
            ), "scheduler:seed"  # fmt: skip
        else:
            yield ev.TaskFailed(
                at=at, run_id="r1", attempt=attempt, error="boom", duration_ms=took,
                final=outcome == "failed",
            ), f"worker:{worker}"  # fmt: skip
        if outcome == "failed":
            return
        yield (
            ev.TaskRetrying(at=at, run_id="r1", attempt=attempt + 1, next_attempt_at=at),
            "scheduler:seed",
        )


async def seed_log(
    conn: asyncpg.Connection,
    *,
    events: int,
    projects: list[str],
    workers: int = 8,
    start: datetime | None = None,
    per_second: float = 50.0,
    seed: int = 7,
) -> int:
    """Append whole task lifecycles until at least `events` events; returns how many written.

    Tasks fall due `per_second` apart from `start` (default: that much time before now), so
    they spread over many minutes of metrics; each COPY of about 50,000 events is one
    transaction.
    """
    rng = random.Random(seed)
    tasks_needed = int(events / 4.3) + 1
    start = start or datetime.now(UTC) - timedelta(seconds=tasks_needed / per_second)
    written, rows, streams = 0, [], []
    k = 0
    while written < events:
        due = start + timedelta(seconds=k / per_second)
        stream = None
        for version, (event, actor) in enumerate(
            _lifecycle(rng, projects[k % len(projects)], f"w-{k % workers}", due)
        ):
            if stream is None:
                stream = f"task-{event.task_id}"
            rows.append(
                (stream, version, uuid.UUID(int=rng.getrandbits(128)), event.__struct_config__.tag,
                 projects[k % len(projects)], encode(event).decode(),
                 encode({"actor": actor}).decode(), event.at)
            )  # fmt: skip
        streams.append((stream, projects[k % len(projects)], version))
        written += version + 1
        k += 1
        if len(rows) >= 50_000 or written >= events:
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=rows, columns=_COLUMNS)
                await conn.copy_records_to_table(
                    "streams", records=streams, columns=("stream_id", "project_id", "version")
                )
            rows, streams = [], []
    return written
