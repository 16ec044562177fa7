"""One HTTP call at one instant, as a core task: what the /publish and /messages surfaces share.

Seeds 000 and 001 both schedule a single callback at a client-given time; they differ only in
field names and error shapes. Here the core TaskDefinition is built (TaskService applies the
destination rule before anything is written), and core refusals are renamed to the surface's
own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import msgspec
from aiohttp import web

from domain.actions import HttpAction, HttpMethod
from domain.errors import DomainError, ValidationError
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.simple_schedules import EXAMPLE_INSTANT
from domain.task_definition import TaskDefinition
from services.surfaces.kit.context import context_of
from services.surfaces.kit.surface import actor_of, project_of
from services.tasks.service import Created


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """What to call and when, in the core's words."""

    name: str
    url: str
    at: datetime
    method: HttpMethod = "POST"
    headers: dict[str, str] = {}
    body: str | None = None
    retry: RetryPolicy = RetryPolicy()
    tags: tuple[str, ...] = ()
    dedupe_key: str | None = None


def due_at(instant: datetime, now: datetime) -> datetime:
    """When a callback asked for `instant` runs: then, or at once if it is already past.

    The task keeps `instant` as written (so a late run is recorded as late, as on every
    surface); this is only the time its dedupe claim is measured from.
    """
    if instant.utcoffset() is None:
        raise ValidationError(
            f"naive datetime: include a UTC offset, e.g. {EXAMPLE_INSTANT}", field="schedule.expr"
        )
    return max(instant, now)


def renamed(error: DomainError, names: Mapping[str, str]) -> DomainError:
    """`error` naming the surface's field instead of the core's (others stay as they are)."""
    field = names.get(error.field or "")
    if field is None:
        return error
    return type(error)(error.message, field=field)


def _later(instant: datetime, delta: timedelta) -> datetime:
    # Near year 9999 (which the core refuses anyway) the sum would overflow.
    try:
        return instant + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


async def create_callback(
    request: web.Request,
    callback: Callback,
    names: Mapping[str, str],
    *,
    key_held_after_due: timedelta = timedelta(0),
) -> Created:
    """Create the task for `callback` in the caller's project, or match its dedupe key.

    A dedupe key is claimed until `key_held_after_due` past the time the callback is due.
    """
    ctx = context_of(request)
    try:
        due = due_at(callback.at, ctx.tasks.clock())
        definition = TaskDefinition(
            name=callback.name,
            schedule=Schedule(kind="once", expr=callback.at.isoformat()),
            action=HttpAction(
                url=callback.url,
                method=callback.method,
                headers=callback.headers,
                body=callback.body,
            ),
            retry=callback.retry,
            tags=callback.tags,
            dedupe_key=callback.dedupe_key,
        )
        return await ctx.tasks.create_or_match(
            project_of(request),
            definition,
            actor=actor_of(request),
            dedupe_until=_later(due, key_held_after_due),
        )
    except DomainError as exc:
        raise renamed(exc, names) from None
