"""Schedules: what each kind means, how it is validated, and when it fires.

Everything here is pure: the current time is always passed in, never read.

Kinds
-----
* ``once``: ``expr`` is an ISO-8601 instant with a UTC offset, normalised to UTC with a
  trailing ``Z`` (``2026-01-01T09:00:00Z``). Up to 300 s in the past is accepted and runs
  immediately (clock-skew tolerance).
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

import calendar
import heapq
import math
import re
from collections.abc import Callable, Iterator
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from functools import cache, lru_cache, partial
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, available_timezones

import msgspec
from croniter import (  # type: ignore[import-untyped, unused-ignore]
    CroniterBadDateError,
    croniter,
)
from dateutil.relativedelta import (  # type: ignore[import-untyped, unused-ignore]
    relativedelta,
)
from dateutil.rrule import rruleset, rrulestr  # type: ignore[import-untyped, unused-ignore]

from domain.errors import ValidationError

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
_ONCE_SKEW = timedelta(seconds=300)
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Searches stop here so that stepping a few years on never leaves datetime's range.
_SEARCH_LIMIT = datetime(9990, 1, 1, tzinfo=UTC)
# Larger than any single UTC-offset change a zone will make (the largest DST shift is 2 h,
# Antarctica/Troll), and shorter than the time between two changes.
_MAX_SHIFT = timedelta(hours=3)
# A wall time and the instant it names are never a day apart.
_WALL_SLACK = timedelta(days=1)

_KINDS = ("once", "cron", "rrule", "interval", "event")
_EXAMPLE_INSTANT = "2026-01-01T09:00:00Z"


def validate_schedule(schedule: Schedule, *, now: datetime) -> Schedule:
    """The schedule normalised, or ValidationError naming the field at fault."""
    now = _aware(now, "now")
    if schedule.kind not in _KINDS:
        raise ValidationError(
            f"unknown schedule kind {schedule.kind!r}; expected one of {', '.join(_KINDS)}",
            field="schedule.kind",
        )
    tz = _zone(schedule.timezone)
    start_at = _bound(schedule.start_at, "schedule.start_at")
    end_at = _bound(schedule.end_at, "schedule.end_at")
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise ValidationError(
            f"end_at {_iso(end_at)} must be after start_at {_iso(start_at)}",
            field="schedule.end_at",
        )
    expr = schedule.expr
    if schedule.kind == "once":
        instant = _parse_once(expr)
        if instant < now - _ONCE_SKEW:
            raise ValidationError(
                f"once time {_iso(instant)} is in the past (now is {_iso(now)})",
                field="schedule.expr",
            )
        if start_at is not None and instant < start_at:
            raise ValidationError(
                f"once time {_iso(instant)} is before start_at {_iso(start_at)}",
                field="schedule.start_at",
            )
        expr = _iso(instant)
    elif schedule.kind == "cron":
        expr = _parse_cron(expr).text
    elif schedule.kind == "rrule":
        expr = "\n".join(_rrule_lines(expr))
        if start_at is None:
            start_at = now.replace(second=0, microsecond=0)
        _parse_rrule(expr, schedule.timezone, _wall(start_at, tz))
    elif schedule.kind == "interval":
        expr = str(_parse_interval(expr))
        if start_at is None:
            start_at = now
    else:
        _check_event_name(expr)
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
        instant = _parse_once(schedule.expr)
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
            f"naive datetime: include a UTC offset, e.g. {_EXAMPLE_INSTANT}", field=field
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"{moment.isoformat()} is out of range", field=field) from None


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a trailing Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@cache
def _known_zones() -> frozenset[str]:
    # "localtime" is the host's own zone: the same schedule would differ between machines.
    return frozenset(available_timezones() - {"localtime"})


def _zone(name: str) -> ZoneInfo:
    """The named IANA zone, or ValidationError for anything else (paths, offsets, blanks)."""
    if name not in _known_zones():
        raise ValidationError(f"unknown timezone {name!r}", field="schedule.timezone")
    return ZoneInfo(name)


def _parse_once(expr: str) -> datetime:
    """The instant a `once` expression names, in UTC."""
    try:
        parsed = datetime.fromisoformat(expr.strip())
    except ValueError:
        raise ValidationError(
            f"invalid once time {expr!r}: expected an ISO-8601 datetime with a UTC offset,"
            f" e.g. {_EXAMPLE_INSTANT}",
            field="schedule.expr",
        ) from None
    if parsed.utcoffset() is None:
        raise ValidationError(
            f"naive datetime: include a UTC offset, e.g. {_EXAMPLE_INSTANT}",
            field="schedule.expr",
        )
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        instant = datetime.max.replace(tzinfo=UTC)
    if parsed.year > 9998 or instant.year > 9998:
        raise ValidationError(
            f"once time {expr!r} is out of range: the year must be at most 9998",
            field="schedule.expr",
        )
    return instant


_INTERVAL_RE = re.compile(r"([0-9]{1,12})([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_INTERVAL_SECONDS = 366 * 86400


def _parse_interval(expr: str) -> int:
    """The interval in whole seconds."""
    match = _INTERVAL_RE.fullmatch(expr.strip())
    if match is None:
        raise ValidationError(
            f"invalid interval {expr!r}: expected whole seconds ('300') or a whole number"
            " with unit s, m, h or d ('30s', '5m', '1h', '1d')",
            field="schedule.expr",
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds < 1:
        raise ValidationError(
            f"interval {expr!r} is too short: the minimum is 1 second", field="schedule.expr"
        )
    if seconds > _MAX_INTERVAL_SECONDS:
        raise ValidationError(
            f"interval {expr!r} is too long: the maximum is 366 days", field="schedule.expr"
        )
    return seconds


_EVENT_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def _check_event_name(expr: str) -> None:
    if _EVENT_RE.fullmatch(expr) is None:
        raise ValidationError(
            f"invalid event name {expr!r}: use 1-200 characters from letters, digits"
            " and . _ : -",
            field="schedule.expr",
        )


# --- cron -------------------------------------------------------------------------------


class _Cron(NamedTuple):
    text: str  # what the user wrote, whitespace normalised
    explicit: str  # the same schedule as plain value lists, which croniter cannot misread
    day_or: bool
    elapsed: bool  # hour field starts with '*': see the DST rule


_CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Spelled out: calendar.month_abbr follows the process locale.
_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),
)


@lru_cache(maxsize=1024)
def _parse_cron(expr: str) -> _Cron:
    """A cron expression checked field by field, so that errors name the exact problem."""
    text = " ".join(expr.split())
    if text.startswith("@"):
        text = text.lower()
        if text not in _CRON_ALIASES:
            raise _cron_error(
                expr, f"unsupported alias {text!r}; use one of {', '.join(_CRON_ALIASES)}"
            )
    fields = _CRON_ALIASES.get(text, text).split(" ") if text else []
    if len(fields) != 5:
        raise _cron_error(
            expr,
            "expected 5 fields (minute hour day-of-month month day-of-week),"
            f" got {len(fields)}",
        )
    explicit = []
    for field, spec in zip(fields, _CRON_FIELDS, strict=True):
        values = _cron_field(expr, field, *spec)
        explicit.append("*" if field == "*" else ",".join(map(str, sorted(values))))
    day_of_month, day_of_week = fields[2], fields[4]
    return _Cron(
        text=text,
        explicit=" ".join(explicit),
        day_or=not (day_of_month.startswith("*") or day_of_week.startswith("*")),
        elapsed=fields[1].startswith("*"),
    )


def _cron_field(
    expr: str, field: str, name: str, low: int, high: int, names: dict[str, int]
) -> set[int]:
    """The values one cron field selects."""

    def number(token: str) -> int:
        value = names.get(token.lower())
        if value is None:
            if not token.isascii() or not token.isdigit():
                raise _cron_error(expr, f"{name} value {token!r} is not a number")
            value = int(token)
        if not low <= value <= high:
            raise _cron_error(expr, f"{name} {value} out of range {low}-{high}")
        return value

    values: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit():
                raise _cron_error(expr, f"{name} step {step_text!r} is not a number")
            step = int(step_text)
            if not 1 <= step <= high:
                raise _cron_error(expr, f"{name} step {step} out of range 1-{high}")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = number(first_text), number(last_text)
            if first > last:
                raise _cron_error(expr, f"{name} range {base} is reversed")
        else:
            # croniter reads 'N/S' as 'N-max/S'; so do we.
            first = number(base)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    if name == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return values


def _cron_error(expr: str, problem: str) -> ValidationError:
    return ValidationError(f"invalid cron expression {expr!r}: {problem}", field="schedule.expr")


def _cron_walls(cron: _Cron, after: datetime, until: datetime) -> Iterator[datetime]:
    """Naive wall times matching `cron` strictly after naive `after`, ascending.

    The only use of croniter. It only ever sees naive times, so its own DST handling (wrong
    around transitions) never runs; mapping wall times to instants is done here instead.
    `until` is not needed: croniter gives up after HORIZON_YEARS + 1 years without a match.
    """
    # Whole seconds, because croniter goes through float timestamps that may round
    # microseconds up; croniter steps from the next whole minute anyway.
    stepper = croniter(
        cron.explicit,
        after.replace(microsecond=0),
        day_or=cron.day_or,
        max_years_between_matches=HORIZON_YEARS + 1,
    )
    while True:
        try:
            wall: datetime = stepper.get_next(datetime)
        except CroniterBadDateError:
            return
        yield wall


# --- rrule ------------------------------------------------------------------------------


class _Rule(NamedTuple):
    rule: Any  # dateutil.rrule.rrule over naive wall times
    dtstart: datetime
    until: datetime | None
    freq: str
    interval: int
    counted: bool


class _Recurrence(NamedTuple):
    rules: tuple[_Rule, ...]
    exdates: tuple[datetime, ...]  # naive wall times
    elapsed: bool  # every rule HOURLY or MINUTELY: see the DST rule


_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY")
_MAX_COUNT = 100_000
# Largest magnitude of each BY part dateutil does not check itself; only BYMONTH is unsigned.
_BY_LIMITS = {"BYMONTH": 12, "BYMONTHDAY": 31, "BYYEARDAY": 366, "BYWEEKNO": 53}
_BY_VALUE_RE = re.compile(r"[+-]?[0-9]{1,3}")
_ICAL_TIME_RE = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")


def _rrule_lines(expr: str) -> list[str]:
    """Content lines, with RFC 5545 folded lines joined back."""
    lines: list[str] = []
    for raw in expr.splitlines():
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw.strip())
    return lines


@lru_cache(maxsize=1024)
def _parse_rrule(expr: str, timezone: str, default_start: datetime) -> _Recurrence:
    """The recurrence an rrule expression describes, on naive wall times in `timezone`."""
    tz = _zone(timezone)
    dtstart = default_start
    rule_values: list[str] = []
    exdates: list[datetime] = []
    for line in _rrule_lines(expr):
        head, colon, value = line.partition(":")
        if not colon:
            head, value = "RRULE", line
        name, *params = head.split(";")
        name = name.strip().upper()
        if name == "RRULE" and not params:
            rule_values.append(value)
        elif name == "DTSTART":
            starts = _ical_times(value, params, tz, "DTSTART")
            if len(starts) != 1:
                raise _rrule_error(f"DTSTART must hold one value, got {value!r}")
            dtstart = starts[0]
        elif name == "EXDATE":
            exdates.extend(_ical_times(value, params, tz, "EXDATE"))
        else:
            raise _rrule_error(f"unsupported line {line!r}; use RRULE, DTSTART and EXDATE")
    if not rule_values:
        raise _rrule_error("no RRULE given, e.g. FREQ=DAILY;BYHOUR=9;BYMINUTE=0")
    dtstart = dtstart.replace(microsecond=0)
    rules = tuple(_rrule(value, dtstart, tz) for value in rule_values)
    return _Recurrence(
        rules=rules,
        exdates=tuple(sorted(exdates)),
        elapsed=all(rule.freq in ("HOURLY", "MINUTELY") for rule in rules),
    )


def _rrule(value: str, dtstart: datetime, tz: ZoneInfo) -> _Rule:
    """One RRULE value checked and built, with UNTIL converted to wall time."""
    parts: dict[str, str] = {}
    for pair in value.split(";"):
        if not pair.strip():
            continue
        key, equals, part = pair.partition("=")
        key = key.strip().upper()
        if not equals or key in parts:
            raise _rrule_error(f"malformed RRULE part {pair!r} in {value!r}")
        parts[key] = part.strip().upper()
    freq = parts.get("FREQ", "")
    if freq == "SECONDLY":
        raise _rrule_error("FREQ=SECONDLY is not supported: the minimum period is 60 seconds")
    if freq not in _FREQS:
        raise _rrule_error(f"FREQ must be one of {', '.join(_FREQS)}, got {freq or 'nothing'}")
    interval = _rrule_int(parts, "INTERVAL", "1")
    if interval < 1:
        raise _rrule_error("INTERVAL must be at least 1")
    if "BYEASTER" in parts:
        raise _rrule_error("BYEASTER is not supported")
    if len(parts.get("BYSECOND", "").split(",")) > 1:
        raise _rrule_error("BYSECOND may hold one value: the minimum period is 60 seconds")
    # dateutil accepts these out of range and then scans for matches that never come.
    for key, limit in _BY_LIMITS.items():
        for item in parts[key].split(",") if key in parts else ():
            signed_ok = key != "BYMONTH" or item[:1].isdigit()
            if not (_BY_VALUE_RE.fullmatch(item) and signed_ok and 1 <= abs(int(item)) <= limit):
                raise _rrule_error(f"{key} value {item!r} out of range 1-{limit}")
    counted = "COUNT" in parts
    if counted:
        count = _rrule_int(parts, "COUNT", "")
        if not 1 <= count <= _MAX_COUNT:
            raise _rrule_error(f"COUNT {count} out of range 1-{_MAX_COUNT}")
        if "UNTIL" in parts:
            raise _rrule_error("COUNT and UNTIL cannot both be given")
    until = None
    if "UNTIL" in parts:
        until_text = parts.pop("UNTIL")
        until = _ical_times(until_text, [], tz, "UNTIL")[0]
        if "T" not in until_text:
            # A date-only UNTIL means the whole of that day.
            until += timedelta(days=1, seconds=-1)
        if until < dtstart:
            raise _rrule_error(f"UNTIL {until} is before DTSTART {dtstart}")
    # RFC 5545's default week start; dateutil would otherwise ask the calendar module.
    parts.setdefault("WKST", "MO")
    text = "RRULE:" + ";".join(f"{key}={part}" for key, part in parts.items())
    try:
        rule = rrulestr(text, dtstart=dtstart)
        if until is not None:
            rule = rule.replace(until=until)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise _rrule_error(f"invalid RRULE {value!r}: {exc}") from None
    return _Rule(
        rule=rule, dtstart=dtstart, until=until, freq=freq, interval=interval, counted=counted
    )


def _rrule_int(parts: dict[str, str], key: str, default: str) -> int:
    text = parts.get(key, default)
    if not text.isascii() or not text.isdigit():
        raise _rrule_error(f"{key} must be a whole number, got {text!r}")
    return int(text)


def _ical_times(value: str, params: list[str], tz: ZoneInfo, what: str) -> list[datetime]:
    """DATE or DATE-TIME values (floating, UTC 'Z' or TZID=) as naive wall times in `tz`."""
    source: ZoneInfo | None = None
    for param in params:
        key, _, param_value = param.partition("=")
        if key.upper() == "TZID":
            param_value = param_value.strip('"')
            if param_value not in _known_zones():
                raise _rrule_error(f"{what} has unknown TZID {param_value!r}")
            source = ZoneInfo(param_value)
        elif param.upper() not in ("VALUE=DATE", "VALUE=DATE-TIME"):
            raise _rrule_error(f"{what} has unsupported parameter {param!r}")
    times = []
    for item in value.split(","):
        match = _ICAL_TIME_RE.fullmatch(item.strip().upper())
        try:
            if match is None:
                raise ValueError(item)
            day, clock, utc = match.groups()
            moment = datetime.strptime(day + (clock or "000000"), "%Y%m%d%H%M%S")
        except ValueError:
            raise _rrule_error(
                f"invalid {what} value {item!r}: expected YYYYMMDD or YYYYMMDDTHHMMSS[Z]"
            ) from None
        if utc:
            moment = _wall(moment.replace(tzinfo=UTC), tz)
        elif source is not None:
            moment = _wall(moment.replace(tzinfo=source), tz)
        times.append(moment)
    return times


def _rrule_error(problem: str) -> ValidationError:
    return ValidationError(f"invalid rrule: {problem}", field="schedule.expr")


def _rrule_walls(recurrence: _Recurrence, after: datetime, until: datetime) -> Iterator[datetime]:
    """Naive wall times of the recurrence strictly after naive `after`, ascending."""
    starts = [_fast_forward(rule, after) for rule in recurrence.rules]
    first_year = min(start.year for start in starts)
    shift = _calendar_shift(first_year, until.year)
    moved = rruleset()
    for rule, start in zip(recurrence.rules, starts, strict=True):
        # An UNTIL beyond the window changes nothing in it, and might not survive the shift.
        rule_until = rule.until
        if rule_until is not None:
            rule_until = None if rule_until.year > until.year else _add_years(rule_until, shift)
        moved.rrule(rule.rule.replace(dtstart=_add_years(start, shift), until=rule_until))
    for exdate in recurrence.exdates:
        if first_year <= exdate.year <= until.year:
            moved.exdate(_add_years(exdate, shift))
    last = _add_years(until, shift)
    for wall in moved.xafter(_add_years(after, shift), inc=False):
        # Beyond `until` the shifted calendar may differ from the real one (a Feb 29 that
        # does not exist), and nothing there can fire anyway.
        if wall > last:
            return
        yield _add_years(wall, -shift)


def _fast_forward(rule: _Rule, target: datetime) -> datetime:
    """A DTSTART for the rule close below `target`, whole periods after the real one.

    dateutil always iterates from DTSTART, so a frequent rule started long ago would
    otherwise cost one step per past occurrence. Moving by whole periods keeps the
    occurrence set (defaults taken from DTSTART stay the same); a COUNT needs every
    occurrence from the real DTSTART, so counted rules stay put.
    """
    start = rule.dtstart
    if rule.counted or target <= start:
        return start
    step = {
        "MINUTELY": timedelta(minutes=rule.interval),
        "HOURLY": timedelta(hours=rule.interval),
        "DAILY": timedelta(days=rule.interval),
        "WEEKLY": timedelta(weeks=rule.interval),
    }.get(rule.freq)
    if step is not None:
        periods = (target - start) // step - 1
        return start + max(periods, 0) * step
    if rule.freq == "MONTHLY" and start.day <= 28:
        months = (target.year - start.year) * 12 + target.month - start.month
        periods = months // rule.interval - 1
        moved: datetime = start + relativedelta(months=max(periods, 0) * rule.interval)
        return moved
    if rule.freq == "YEARLY" and (start.month, start.day) != (2, 29):
        periods = (target.year - start.year) // rule.interval - 1
        return start.replace(year=start.year + max(periods, 0) * rule.interval)
    return start


@lru_cache(maxsize=256)
def _calendar_shift(first_year: int, last_year: int) -> int:
    """Years to move a search window by so that it ends just before year 9999.

    A rule that matches nothing (say Feb 30) makes dateutil scan every period up to year
    9999, which takes seconds from today; near 9999 that scan is short. Moving every year
    onto one of the same type (leap or not, weekday of 1 January) keeps each date's weekday,
    week number and distance from DTSTART, and the Gregorian calendar repeats every 400
    years, so a shift always exists.
    """

    def kind(year: int) -> tuple[bool, int]:
        return calendar.isleap(year), date(year, 1, 1).weekday()

    # One spare year at each end: dateutil looks at the year after the one it scans.
    top = MAXYEAR - 2 - last_year
    for shift in range(top, max(top - 400, 0), -1):
        if all(kind(year) == kind(year + shift) for year in range(first_year, last_year + 2)):
            return shift
    return 0


def _add_years(moment: datetime, years: int) -> datetime:
    return moment.replace(year=moment.year + years)


# --- fire instants ----------------------------------------------------------------------


def _instants_after(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Fire instants strictly after `after`, ascending, honouring start_at and end_at."""
    if schedule.start_at is not None:
        after = max(after, schedule.start_at.astimezone(UTC) - _TICK)
    end = schedule.end_at.astimezone(UTC) if schedule.end_at is not None else None
    if schedule.kind == "once":
        instant = _parse_once(schedule.expr)
        if after < instant and (end is None or instant <= end):
            yield instant
    elif schedule.kind == "interval":
        yield from _interval_instants(schedule, after, end)
    elif schedule.kind in ("cron", "rrule"):
        if after >= _SEARCH_LIMIT:
            return
        until = min(after + _HORIZON, _SEARCH_LIMIT)
        if end is not None:
            until = min(until, end)
        tz = _zone(schedule.timezone)
        walls: Callable[[datetime, datetime], Iterator[datetime]]
        if schedule.kind == "cron":
            cron = _parse_cron(schedule.expr)
            walls, elapsed = partial(_cron_walls, cron), cron.elapsed
        else:
            anchor = _wall(schedule.start_at or _EPOCH, tz)
            recurrence = _parse_rrule(schedule.expr, schedule.timezone, anchor)
            walls, elapsed = partial(_rrule_walls, recurrence), recurrence.elapsed
        yield from _wall_instants(walls, tz, after, until, elapsed)


def _interval_instants(
    schedule: Schedule, after: datetime, end: datetime | None
) -> Iterator[datetime]:
    # validate_schedule always sets start_at; the epoch only keeps raw schedules usable.
    anchor = (schedule.start_at or _EPOCH).astimezone(UTC)
    step = timedelta(seconds=_parse_interval(schedule.expr))
    try:
        instant = anchor if after < anchor else anchor + ((after - anchor) // step + 1) * step
        while end is None or instant <= end:
            yield instant
            instant += step
    except OverflowError:
        return  # past year 9999: nothing more to fire


def _wall_instants(
    walls: Callable[[datetime, datetime], Iterator[datetime]],
    tz: ZoneInfo,
    after: datetime,
    until: datetime,
    elapsed: bool,
) -> Iterator[datetime]:
    """Fire instants in (after, until], ascending, of the wall times `walls` produces.

    Wall times ascend but their instants need not (a fall-back hour repeats earlier wall
    times later), so instants wait in a heap until no later wall time can undercut them.
    """
    # A wall time at or below this bound only names instants at or before `after`.
    lowest = _naive(after) + min(_offset(tz, after), _offset(tz, after + _MAX_SHIFT))
    pending: list[datetime] = []
    last: datetime | None = None
    for wall in walls(lowest, _naive(until) + _WALL_SLACK):
        settled = _settled_before(wall, tz)
        while pending and pending[0] <= settled:
            instant = heapq.heappop(pending)
            if instant != last:
                last = instant
                yield instant
        if settled > until:
            break
        for instant in _fire_instants(wall, tz, elapsed):
            if after < instant <= until:
                heapq.heappush(pending, instant)
    while pending:
        instant = heapq.heappop(pending)
        if instant != last:
            last = instant
            yield instant


def _fire_instants(wall: datetime, tz: ZoneInfo, elapsed: bool) -> tuple[datetime, ...]:
    """The instants a matching naive wall time fires at, per the DST rule."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) != wall:
        # Inside a spring-forward gap: the wall time never happens.
        return () if elapsed else (_gap_end(wall, tz),)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if elapsed and second != first:
        return (first, second)
    return (first,)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The transition instant ending the spring-forward gap that `wall` falls in."""
    # In a gap, fold=1 reads the wall time with the later offset, landing before the
    # transition, and fold=0 with the earlier offset, landing after it.
    before = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = math.ceil(wall.replace(tzinfo=tz, fold=0).timestamp())
    new_offset = _offset(tz, datetime.fromtimestamp(after, UTC))
    while after - before > 1:
        middle = (before + after) // 2
        if _offset(tz, datetime.fromtimestamp(middle, UTC)) == new_offset:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _settled_before(wall: datetime, tz: ZoneInfo) -> datetime:
    """An instant that neither `wall` nor any later wall time can name one before."""
    near = wall.replace(tzinfo=tz).astimezone(UTC)
    highest = max(_offset(tz, near - _MAX_SHIFT), _offset(tz, near + _MAX_SHIFT))
    return wall.replace(tzinfo=UTC) - highest


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall time in `tz` at `instant`."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _naive(instant: datetime) -> datetime:
    """A UTC instant as a naive datetime, to add offsets to."""
    return instant.astimezone(UTC).replace(tzinfo=None)
