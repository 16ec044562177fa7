"""The schedule kinds that need no calendar: ``once``, ``interval`` and ``event``.

Parsing and validation of their expressions, and the fire instants of an interval. None of
them involves a timezone: ``once`` is an absolute instant, ``interval`` counts elapsed time
and ``event`` never fires on a clock (see ``domain.schedule`` for each kind's meaning).
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from domain.errors import ValidationError

EXAMPLE_INSTANT = "2026-01-01T09:00:00Z"


def parse_once(expr: str) -> datetime:
    """The instant a `once` expression names, in UTC."""
    try:
        parsed = datetime.fromisoformat(expr.strip())
    except ValueError:
        raise ValidationError(
            f"invalid once time {expr!r}: expected an ISO-8601 datetime with a UTC offset,"
            f" e.g. {EXAMPLE_INSTANT}",
            field="schedule.expr",
        ) from None
    if parsed.utcoffset() is None:
        raise ValidationError(
            f"naive datetime: include a UTC offset, e.g. {EXAMPLE_INSTANT}",
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


def parse_interval(expr: str) -> int:
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


def check_event_name(expr: str) -> None:
    if _EVENT_RE.fullmatch(expr) is None:
        raise ValidationError(
            f"invalid event name {expr!r}: use 1-200 characters from letters, digits and . _ : -",
            field="schedule.expr",
        )


def interval_instants(
    anchor: datetime, seconds: int, after: datetime, end: datetime | None
) -> Iterator[datetime]:
    """Instants `anchor + k * seconds` (k >= 0) strictly after `after` and not after `end`."""
    step = timedelta(seconds=seconds)
    try:
        instant = anchor if after < anchor else anchor + ((after - anchor) // step + 1) * step
        while end is None or instant <= end:
            yield instant
            instant += step
    except OverflowError:
        return  # past year 9999: nothing more to fire
