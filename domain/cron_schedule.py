"""Cron expressions: parsing with precise error messages, and their naive wall times.

A cron expression is checked field by field here, so that a mistake is reported with the
field and value at fault, and rewritten as plain value lists that croniter cannot misread.
``cron_walls`` is the only code that touches croniter, and it only ever yields naive local
wall times; ``domain.wall_clock`` turns those into instants under the DST rule.
"""

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from croniter import (  # type: ignore[import-untyped, unused-ignore]
    CroniterBadDateError,
    croniter,
)

from domain.errors import ValidationError


class Cron(NamedTuple):
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
def parse_cron(expr: str) -> Cron:
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
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}",
        )
    explicit = []
    for field, spec in zip(fields, _CRON_FIELDS, strict=True):
        values = _cron_field(expr, field, *spec)
        explicit.append("*" if field == "*" else ",".join(map(str, sorted(values))))
    day_of_month, day_of_week = fields[2], fields[4]
    return Cron(
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


def cron_walls(
    cron: Cron, after: datetime, until: datetime, *, give_up_years: int
) -> Iterator[datetime]:
    """Naive wall times matching `cron` strictly after naive `after`, ascending.

    The only use of croniter. It only ever sees naive times, so its own DST handling (wrong
    around transitions) never runs; domain.wall_clock maps wall times to instants instead.
    `until` is not needed: croniter gives up after `give_up_years` years without a match.
    """
    # Whole seconds, because croniter goes through float timestamps that may round
    # microseconds up; croniter steps from the next whole minute anyway.
    stepper = croniter(
        cron.explicit,
        after.replace(microsecond=0),
        day_or=cron.day_or,
        max_years_between_matches=give_up_years,
    )
    while True:
        try:
            wall: datetime = stepper.get_next(datetime)
        except CroniterBadDateError:
            return
        yield wall
