"""Local wall-clock times in a zone, and the UTC instants they fire at under the DST rule.

Cron and RRULE schedules are computed on naive wall times in the schedule's timezone (the
DST rule is in ``domain.schedule``'s docstring). This is the one place where those wall
times become real instants: a wall time inside a spring-forward gap is skipped or moved to
the end of the gap, and one that occurs twice fires once or twice, depending on whether the
schedule is elapsed-time like. Zone-name validation lives here too, so that every zone a
schedule uses is a known IANA zone.
"""

import heapq
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from domain.errors import ValidationError

# Larger than any single UTC-offset change a zone will make (the largest DST shift is 2 h,
# Antarctica/Troll), and shorter than the time between two changes.
_MAX_SHIFT = timedelta(hours=3)
# A wall time and the instant it names are never a day apart.
_WALL_SLACK = timedelta(days=1)


@cache
def known_zones() -> frozenset[str]:
    # "localtime" is the host's own zone: the same schedule would differ between machines.
    return frozenset(available_timezones() - {"localtime"})


def zone(name: str) -> ZoneInfo:
    """The named IANA zone, or ValidationError for anything else (paths, offsets, blanks)."""
    if name not in known_zones():
        raise ValidationError(f"unknown timezone {name!r}", field="schedule.timezone")
    return ZoneInfo(name)


def wall_instants(
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
    if wall_time(first, tz) != wall:
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


def wall_time(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall time in `tz` at `instant`."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _naive(instant: datetime) -> datetime:
    """A UTC instant as a naive datetime, to add offsets to."""
    return instant.astimezone(UTC).replace(tzinfo=None)
