"""RRULE expressions (RFC 5545): parsing with precise error messages, and naive wall times.

An rrule expression (RRULE lines, optionally with DTSTART and EXDATE) is checked and built
into dateutil rules over naive local wall times; ``domain.wall_clock`` turns those into
instants under the DST rule. dateutil always iterates from DTSTART and scans to year 9999
for rules that never match, so ``rrule_walls`` fast-forwards DTSTART and moves the search
window onto an equivalent calendar near year 9999 to keep every search short.
"""

import calendar
import re
from collections.abc import Iterator
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from dateutil.relativedelta import (  # type: ignore[import-untyped, unused-ignore]
    relativedelta,
)
from dateutil.rrule import rruleset, rrulestr  # type: ignore[import-untyped, unused-ignore]

from domain.errors import ValidationError
from domain.wall_clock import known_zones, wall_time, zone


class _Rule(NamedTuple):
    rule: Any  # dateutil.rrule.rrule over naive wall times
    dtstart: datetime
    until: datetime | None
    freq: str
    interval: int
    counted: bool


class Recurrence(NamedTuple):
    rules: tuple[_Rule, ...]
    exdates: tuple[datetime, ...]  # naive wall times
    elapsed: bool  # every rule HOURLY or MINUTELY: see the DST rule


_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY")
_MAX_COUNT = 100_000
# Largest magnitude of each BY part dateutil does not check itself; only BYMONTH is unsigned.
_BY_LIMITS = {"BYMONTH": 12, "BYMONTHDAY": 31, "BYYEARDAY": 366, "BYWEEKNO": 53}
_BY_VALUE_RE = re.compile(r"[+-]?[0-9]{1,3}")
_ICAL_TIME_RE = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")


def rrule_lines(expr: str) -> list[str]:
    """Content lines, with RFC 5545 folded lines joined back."""
    lines: list[str] = []
    for raw in expr.splitlines():
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw.strip())
    return lines


@lru_cache(maxsize=1024)
def parse_rrule(expr: str, timezone: str, default_start: datetime) -> Recurrence:
    """The recurrence an rrule expression describes, on naive wall times in `timezone`."""
    tz = zone(timezone)
    dtstart = default_start
    rule_values: list[str] = []
    exdates: list[datetime] = []
    for line in rrule_lines(expr):
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
    return Recurrence(
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
            if param_value not in known_zones():
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
            moment = wall_time(moment.replace(tzinfo=UTC), tz)
        elif source is not None:
            moment = wall_time(moment.replace(tzinfo=source), tz)
        times.append(moment)
    return times


def _rrule_error(problem: str) -> ValidationError:
    return ValidationError(f"invalid rrule: {problem}", field="schedule.expr")


def rrule_walls(recurrence: Recurrence, after: datetime, until: datetime) -> Iterator[datetime]:
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
