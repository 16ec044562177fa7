"""Schedules: what each kind means, how it is validated, and when it fires.

Everything here is pure: the current time is always passed in, never read.

Kinds
-----
* ``once``: ``expr`` is an ISO-8601 instant with a UTC offset, normalised to UTC with a
  trailing ``Z`` (``2026-01-01T09:00:00Z``). An instant already past is kept as written and
  is due at once: the run starts as soon as possible and its dispatch records how late it was
  (``due_at`` is the instant asked for), the same on every surface.
* ``cron``: five fields (minute hour day-of-month month day-of-week), Vixie syntax: ``*``,
  values, ranges, steps, lists, month and weekday names, weekday 7 = Sunday; or one of
  ``@hourly @daily @midnight @weekly @monthly @yearly @annually``. Day-of-month and
  day-of-week are OR-ed when both are restricted and neither starts with ``*``.
* ``rrule``: RFC 5545 RRULE text, with or without ``RRULE:``, optionally as several lines
  holding DTSTART, RRULE and EXDATE. DTSTART defaults to ``start_at``, else to ``now``
  truncated to the minute, read as wall time in ``timezone``.
* ``interval``: whole seconds (``300``) or a whole number with unit s/m/h/d (``5m``),
  normalised to seconds. Fires at ``start_at + k * interval`` for k >= 0, counting elapsed
  time (DST does not move it); ``start_at`` defaults to ``now``.
* ``event``: fires only when the named event arrives, never on a clock.

``start_at`` and ``end_at`` are inclusive bounds on fire times. ``next_occurrence`` looks
at most 5 years ahead for cron and rrule; ``occurrences_between`` has no such limit.

DST rule
--------
Cron and RRULE schedules are evaluated on local wall-clock time in the schedule's timezone
(Vixie-cron semantics):

* A cron whose hour field starts with ``*`` (``* * * * *``, ``0 * * * *``,
  ``*/15 */2 * * *``, ``@hourly``) is elapsed-time like. A wall time that occurs twice
  (fall-back) fires at both real instants; a wall time inside a spring-forward gap does
  not exist and is skipped. So ``0 * * * *`` fires 25 times on New York's fall-back day
  and 23 times on its spring-forward day.
* Every other cron (specific hours: ``30 2 * * *``, ``0 9 * * 1-5``, ``@daily``,
  ``@weekly``, ...) is wall-clock like. A wall time that occurs twice fires once, at its
  first occurrence (fold=0, the earlier UTC instant). A matching wall time inside a
  spring-forward gap fires once, at the first valid instant after the gap (the
  transition itself: ``30 2 * * *`` fires at 03:00 local in New York on 2026-03-08);
  several matching wall times inside one gap collapse into that single firing.
* RRULE follows the wall-clock-like rule for every frequency except HOURLY and MINUTELY,
  which follow the elapsed-time-like rule (a set of several RRULEs only if all of them are
  HOURLY or MINUTELY).
* ``interval`` counts elapsed time and ``once`` is an absolute instant; DST never moves
  either.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

import msgspec

from domain.cron_schedule import cron_walls, parse_cron
from domain.errors import ValidationError
from domain.rrule_schedule import parse_rrule, rrule_lines, rrule_walls
from domain.simple_schedules import (
    EXAMPLE_INSTANT,
    check_event_name,
    interval_instants,
    parse_interval,
    parse_once,
)
from domain.wall_clock import wall_instants, wall_time, zone

ScheduleKind = Literal["once", "cron", "rrule", "interval", "event"]


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """When a task fires; the module docstring gives each kind's meaning."""

    kind: ScheduleKind
    expr: str
    timezone: str = "UTC"
    start_at: datetime | None = None  # aware; lower bound, interval anchor, default DTSTART
    end_at: datetime | None = None  # aware; no occurrence after it


HORIZON_YEARS = 5
_HORIZON = timedelta(days=366 * HORIZON_YEARS)
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Searches stop here so that stepping a few years on never leaves datetime's range.
_SEARCH_LIMIT = datetime(9990, 1, 1, tzinfo=UTC)

_KINDS = ("once", "cron", "rrule", "interval", "event")


def validate_schedule(schedule: Schedule, *, now: datetime) -> Schedule:
    """The schedule normalised, or ValidationError naming the field at fault."""
    now = _aware(now, "now")
    if schedule.kind not in _KINDS:
        raise ValidationError(
            f"unknown schedule kind {schedule.kind!r}; expected one of {', '.join(_KINDS)}",
            field="schedule.kind",
        )
    tz = zone(schedule.timezone)
    start_at = _bound(schedule.start_at, "schedule.start_at")
    end_at = _bound(schedule.end_at, "schedule.end_at")
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise ValidationError(
            f"end_at {_iso(end_at)} must be after start_at {_iso(start_at)}",
            field="schedule.end_at",
        )
    expr = schedule.expr
    if schedule.kind == "once":
        instant = parse_once(expr)
        if start_at is not None and instant < start_at:
            raise ValidationError(
                f"once time {_iso(instant)} is before start_at {_iso(start_at)}",
                field="schedule.start_at",
            )
        expr = _iso(instant)
    elif schedule.kind == "cron":
        expr = parse_cron(expr).text
    elif schedule.kind == "rrule":
        expr = "\n".join(rrule_lines(expr))
        if start_at is None:
            start_at = now.replace(second=0, microsecond=0)
        parse_rrule(expr, schedule.timezone, wall_time(start_at, tz))
    elif schedule.kind == "interval":
        expr = str(parse_interval(expr))
        if start_at is None:
            start_at = now
    else:
        check_event_name(expr)
    normal = msgspec.structs.replace(schedule, expr=expr, start_at=start_at, end_at=end_at)
    _check_fires(normal, now)
    return normal


def next_occurrence(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire instant strictly after `after` (aware, UTC), or None if there is none."""
    return next(_instants_after(schedule, _aware(after, "after")), None)


def first_occurrence(schedule: Schedule, *, now: datetime) -> datetime | None:
    """The first fire instant at or after `now`; a `once` in the past is returned as is."""
    now = _aware(now, "now")
    if schedule.kind == "once":
        instant = parse_once(schedule.expr)
        if schedule.start_at is not None and instant < schedule.start_at:
            return None
        if schedule.end_at is not None and instant > schedule.end_at:
            return None
        return instant
    return next_occurrence(schedule, now - _TICK)


def occurrences_between(
    schedule: Schedule, start: datetime, end: datetime, limit: int = 10000
) -> list[datetime]:
    """Every fire instant in (start, end], ascending, at most `limit` of them."""
    cursor, end = _aware(start, "start"), _aware(end, "end")
    found: list[datetime] = []
    # One search window at a time, since each search looks only so far ahead.
    while cursor < end and len(found) < limit:
        window_end = min(end, cursor + _HORIZON)
        for instant in _instants_after(schedule, cursor):
            if instant > window_end or len(found) >= limit:
                break
            found.append(instant)
        cursor = window_end
    return found


# --- validation helpers ---------------------------------------------------------------


def _check_fires(schedule: Schedule, now: datetime) -> None:
    """Refuse a schedule that can never fire, naming the bound or expression to blame."""
    if schedule.kind == "event":
        return
    label = {"once": "once time", "cron": "cron expression", "rrule": "rrule"}.get(
        schedule.kind, schedule.kind
    )
    try:
        first = first_occurrence(msgspec.structs.replace(schedule, end_at=None), now=now)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        if schedule.kind != "rrule":
            raise
        # dateutil reports some impossible rules only once it is asked to iterate them.
        raise ValidationError(f"invalid rrule: {exc}", field="schedule.expr") from exc
    if first is None:
        raise ValidationError(
            f"{label} {schedule.expr!r} never fires within {HORIZON_YEARS} years",
            field="schedule.expr",
        )
    if schedule.end_at is not None and first > schedule.end_at:
        raise ValidationError(
            f"no occurrence before end_at {_iso(schedule.end_at)}: the first is {_iso(first)}",
            field="schedule.end_at",
        )


def _aware(moment: datetime, name: str) -> datetime:
    """`moment` in UTC; a naive datetime here is a caller bug, not bad input."""
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _bound(moment: datetime | None, field: str) -> datetime | None:
    """A start_at/end_at value in UTC, refusing naive datetimes."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise ValidationError(
            f"naive datetime: include a UTC offset, e.g. {EXAMPLE_INSTANT}", field=field
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"{moment.isoformat()} is out of range", field=field) from None


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a trailing Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- fire instants ----------------------------------------------------------------------


def _instants_after(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Fire instants strictly after `after`, ascending, honouring start_at and end_at."""
    if schedule.start_at is not None:
        after = max(after, schedule.start_at.astimezone(UTC) - _TICK)
    end = schedule.end_at.astimezone(UTC) if schedule.end_at is not None else None
    if schedule.kind == "once":
        instant = parse_once(schedule.expr)
        if after < instant and (end is None or instant <= end):
            yield instant
    elif schedule.kind == "interval":
        # validate_schedule always sets start_at; the epoch only keeps raw schedules usable.
        anchor = (schedule.start_at or _EPOCH).astimezone(UTC)
        yield from interval_instants(anchor, parse_interval(schedule.expr), after, end)
    elif schedule.kind in ("cron", "rrule"):
        if after >= _SEARCH_LIMIT:
            return
        until = min(after + _HORIZON, _SEARCH_LIMIT)
        if end is not None:
            until = min(until, end)
        tz = zone(schedule.timezone)
        walls: Callable[[datetime, datetime], Iterator[datetime]]
        if schedule.kind == "cron":
            cron = parse_cron(schedule.expr)
            walls = partial(cron_walls, cron, give_up_years=HORIZON_YEARS + 1)
            elapsed = cron.elapsed
        else:
            anchor = wall_time(schedule.start_at or _EPOCH, tz)
            recurrence = parse_rrule(schedule.expr, schedule.timezone, anchor)
            walls, elapsed = partial(rrule_walls, recurrence), recurrence.elapsed
        yield from wall_instants(walls, tz, after, until, elapsed)
