"""Schedule validation, fire times, and the DST rule, checked against a brute-force oracle."""

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter  # type: ignore[import-untyped, unused-ignore]
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationError
from domain.schedule import (
    Schedule,
    first_occurrence,
    next_occurrence,
    occurrences_between,
    validate_schedule,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
LORD_HOWE = "Australia/Lord_Howe"
KOLKATA = "Asia/Kolkata"
ZONES = (NEW_YORK, BERLIN, LORD_HOWE, KOLKATA, "UTC")


def cron(expr: str, timezone: str = "UTC", **bounds: datetime) -> Schedule:
    return validate_schedule(Schedule(kind="cron", expr=expr, timezone=timezone, **bounds), now=NOW)


def rrule(expr: str, timezone: str = "UTC", **bounds: datetime) -> Schedule:
    schedule = Schedule(kind="rrule", expr=expr, timezone=timezone, **bounds)
    return validate_schedule(schedule, now=NOW)


def refused(schedule: Schedule, now: datetime = NOW) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_schedule(schedule, now=now)
    return caught.value


def local_day(timezone: str, day: date) -> tuple[datetime, datetime]:
    """(start, end] bounds, in UTC, of one local calendar day."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    tick = timedelta(microseconds=1)
    return start - tick, end - tick


def fires_on(schedule: Schedule, day: date) -> list[datetime]:
    """Fire instants on one local day, as aware local times."""
    tz = ZoneInfo(schedule.timezone)
    start, end = local_day(schedule.timezone, day)
    return [instant.astimezone(tz) for instant in occurrences_between(schedule, start, end)]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"),
        ("", "got 0"),
        ("60 * * * *", "minute 60 out of range 0-59"),
        ("0 24 * * *", "hour 24 out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 out of range 1-31"),
        ("0 0 * 13 *", "month 13 out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 out of range 0-7"),
        ("*/0 * * * *", "minute step 0 out of range 1-59"),
        ("*/60 * * * *", "minute step 60 out of range 1-59"),
        ("0 5-1 * * *", "hour range 5-1 is reversed"),
        ("x * * * *", "minute value 'x' is not a number"),
        ("1,,2 * * * *", "minute value '' is not a number"),
        ("0 0 L * *", "day-of-month value 'L' is not a number"),
        ("H * * * *", "minute value 'H' is not a number"),
        ("@reboot", "unsupported alias '@reboot'"),
        ("0 0 * * * *", "got 6"),
        ("0 0 * * * * 2026", "got 7"),
        ("0 0 30 2 *", "never fires within 5 years"),
        ("0 0 31 4,6,9,11 *", "never fires within 5 years"),
    ],
)
def test_bad_cron_is_refused_naming_the_problem(expr: str, fragment: str) -> None:
    error = refused(Schedule(kind="cron", expr=expr))
    assert error.field == "schedule.expr"
    assert fragment in error.message
    assert error.code == "validation_error"


def test_cron_error_message_quotes_the_expression() -> None:
    error = refused(Schedule(kind="cron", expr="61 * * * *"))
    assert error.message == "invalid cron expression '61 * * * *': minute 61 out of range 0-59"


@pytest.mark.parametrize(
    ("expr", "normal"),
    [
        ("0  9 * *   mon-fri", "0 9 * * mon-fri"),
        ("@DAILY", "@daily"),
        ("@hourly", "@hourly"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("15/20 * * JAN-mar 7", "15/20 * * JAN-mar 7"),
    ],
)
def test_good_cron_is_normalised(expr: str, normal: str) -> None:
    assert cron(expr).expr == normal


def test_cron_names_steps_and_sunday_as_seven() -> None:
    schedule = cron("15/20 9 * jan-mar 7")  # minutes 15, 35, 55 on January-March Sundays
    fires = occurrences_between(schedule, NOW, utc(2026, 1, 5))
    assert fires == [utc(2026, 1, 4, 9, m) for m in (15, 35, 55)]


def test_day_of_month_and_day_of_week_follow_vixie_cron() -> None:
    # Both restricted: either matches (the 13th, or any Friday).
    both = cron("0 0 13 * 5")
    either = {d.date() for d in occurrences_between(both, NOW, utc(2026, 2, 1))}
    assert either == {
        date(2026, 1, 2),
        date(2026, 1, 9),
        date(2026, 1, 13),
        date(2026, 1, 16),
        date(2026, 1, 23),
        date(2026, 1, 30),
    }
    # A day field starting with '*' turns the OR into an AND (croniter alone would OR these).
    star = cron("0 0 */2 * 1")
    odd_mondays = {d.date() for d in occurrences_between(star, NOW, utc(2026, 3, 1))}
    assert odd_mondays == {date(2026, 1, 5), date(2026, 1, 19), date(2026, 2, 9), date(2026, 2, 23)}


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus", "../../etc/passwd", "UTC ", "", "+05:30", "utc", "localtime"]
)
def test_unknown_timezone_is_refused(timezone: str) -> None:
    error = refused(Schedule(kind="cron", expr="0 9 * * *", timezone=timezone))
    assert error.field == "schedule.timezone"
    assert error.message == f"unknown timezone {timezone!r}"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("FREQ=SECONDLY", "FREQ=SECONDLY is not supported: the minimum period is 60 seconds"),
        ("FREQ=MINUTELY;INTERVAL=0", "INTERVAL must be at least 1"),
        ("FREQ=MINUTELY;BYSECOND=0,30", "BYSECOND may hold one value"),
        ("FREQ=DAILY;COUNT=1000000000", "COUNT 1000000000 out of range 1-100000"),
        ("FREQ=DAILY;COUNT=0", "COUNT 0 out of range"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20270101T000000Z", "COUNT and UNTIL cannot both be given"),
        ("DTSTART:20260601T090000\nRRULE:FREQ=DAILY;UNTIL=20260501T000000Z", "is before DTSTART"),
        ("this is not a rule", "invalid rrule"),
        ("FREQ=FORTNIGHTLY", "FREQ must be one of"),
        ("BYHOUR=9", "FREQ must be one of"),
        ("FREQ=DAILY;BYHOUR=25", "hour must be in 0..23"),
        ("FREQ=DAILY;BYDAY=XX", "invalid RRULE"),
        ("FREQ=DAILY;BYMONTH=13", "BYMONTH value '13' out of range 1-12"),
        ("FREQ=YEARLY;BYEASTER=0", "BYEASTER is not supported"),
        ("FREQ=DAILY;FOO=1", "unknown parameter"),
        ("RDATE:20260101T000000Z", "unsupported line"),
        ("DTSTART:2026-01-01\nRRULE:FREQ=DAILY", "invalid DTSTART value"),
        ("DTSTART;TZID=Mars/Olympus:20260101T090000\nRRULE:FREQ=DAILY", "unknown TZID"),
        ("DTSTART:20200101T090000Z\nRRULE:FREQ=DAILY;COUNT=3", "never fires within 5 years"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "never fires within 5 years"),
    ],
)
def test_bad_rrule_is_refused_naming_the_problem(expr: str, fragment: str) -> None:
    error = refused(Schedule(kind="rrule", expr=expr))
    assert error.field == "schedule.expr"
    assert fragment in error.message


def test_rrule_accepts_prefix_multiline_and_folded_lines() -> None:
    plain = rrule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", NEW_YORK)
    prefixed = rrule("RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0", NEW_YORK)
    multi = rrule(
        "DTSTART;TZID=America/New_York:20260101T090000\nRRULE:FREQ=DAILY;BYHOUR=9;\n BYMINUTE=0",
        NEW_YORK,
    )
    expected = [utc(2026, 1, 1, 14), utc(2026, 1, 2, 14), utc(2026, 1, 3, 14)]
    for schedule in (plain, prefixed, multi):
        assert occurrences_between(schedule, NOW, utc(2026, 1, 3, 23)) == expected


def test_rrule_dtstart_defaults_to_now_truncated_to_the_minute() -> None:
    now = datetime(2026, 1, 1, 12, 34, 56, 789, tzinfo=UTC)
    schedule = validate_schedule(Schedule(kind="rrule", expr="FREQ=DAILY"), now=now)
    assert schedule.start_at == utc(2026, 1, 1, 12, 34)
    assert first_occurrence(schedule, now=now) == utc(2026, 1, 2, 12, 34)


def test_rrule_until_is_inclusive_and_exhausts() -> None:
    schedule = rrule("DTSTART:20260105T090000Z\nRRULE:FREQ=DAILY;UNTIL=20260107T090000Z")
    assert occurrences_between(schedule, NOW, utc(2027, 1, 1)) == [
        utc(2026, 1, 5, 9),
        utc(2026, 1, 6, 9),
        utc(2026, 1, 7, 9),
    ]
    assert next_occurrence(schedule, utc(2026, 1, 7, 9)) is None


def test_rrule_count_exhausts() -> None:
    schedule = rrule("DTSTART:20260105T090000Z\nRRULE:FREQ=WEEKLY;COUNT=2")
    assert occurrences_between(schedule, NOW, utc(2027, 1, 1)) == [
        utc(2026, 1, 5, 9),
        utc(2026, 1, 12, 9),
    ]


def test_rrule_exdate_skips_listed_occurrences() -> None:
    schedule = rrule(
        "DTSTART:20260105T093000\n"
        "RRULE:FREQ=DAILY\n"
        "EXDATE:20260106T093000,20260108T143000Z",  # local wall time, then the same in UTC
        NEW_YORK,
    )
    fires = occurrences_between(schedule, NOW, utc(2026, 1, 9, 23))
    assert [f.day for f in fires] == [5, 7, 9]
    assert all(f.hour == 14 and f.minute == 30 for f in fires)


def test_rrule_started_long_ago_is_still_fast_and_in_phase() -> None:
    schedule = rrule("DTSTART:20260101T000700Z\nRRULE:FREQ=MINUTELY;INTERVAL=15")
    assert next_occurrence(schedule, utc(2030, 6, 1, 10, 0)) == utc(2030, 6, 1, 10, 7)
    monthly = rrule("DTSTART:20260131T080000Z\nRRULE:FREQ=MONTHLY;INTERVAL=2")
    assert next_occurrence(monthly, utc(2028, 1, 1)) == utc(2028, 1, 31, 8)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("2026-06-01T09:00:00", "naive datetime: include a UTC offset, e.g. 2026-01-01T09:00:00Z"),
        ("2026-06-01", "naive datetime"),
        ("9999-01-01T00:00:00Z", "year must be at most 9998"),
        ("9998-12-31T23:00:00-05:00", "year must be at most 9998"),
        ("tomorrow", "expected an ISO-8601 datetime with a UTC offset"),
    ],
)
def test_bad_once_is_refused(expr: str, fragment: str) -> None:
    error = refused(Schedule(kind="once", expr=expr))
    assert error.field == "schedule.expr"
    assert fragment in error.message


def test_once_is_normalised_to_utc_with_z() -> None:
    schedule = validate_schedule(Schedule(kind="once", expr="2026-06-01T12:00:00+02:00"), now=NOW)
    assert schedule.expr == "2026-06-01T10:00:00Z"
    assert first_occurrence(schedule, now=NOW) == utc(2026, 6, 1, 10)


@pytest.mark.parametrize(
    "expr", ["2026-01-01T11:55:00Z", "2025-12-31T12:00:00Z", "2001-01-01T00:00:00Z"]
)
def test_once_in_the_past_is_accepted_and_due_now_as_written(expr: str) -> None:
    # Seed 002's own create example is in the past: it runs at once, its lateness on record.
    schedule = validate_schedule(Schedule(kind="once", expr=expr), now=NOW)
    assert schedule.expr == expr
    due = first_occurrence(schedule, now=NOW)
    assert due is not None and due < NOW
    assert next_occurrence(schedule, NOW) is None


def test_once_fires_once() -> None:
    schedule = validate_schedule(Schedule(kind="once", expr="2026-03-01T00:00:00Z"), now=NOW)
    assert next_occurrence(schedule, NOW) == utc(2026, 3, 1)
    assert next_occurrence(schedule, utc(2026, 3, 1)) is None
    assert occurrences_between(schedule, NOW, utc(2027, 1, 1)) == [utc(2026, 3, 1)]


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0", "too short: the minimum is 1 second"),
        ("0m", "too short"),
        ("-5", "invalid interval '-5'"),
        ("abc", "invalid interval 'abc'"),
        ("1.5h", "invalid interval"),
        ("5 m", "invalid interval"),
        ("400d", "too long: the maximum is 366 days"),
        ("31622401", "too long"),
    ],
)
def test_bad_interval_is_refused(expr: str, fragment: str) -> None:
    error = refused(Schedule(kind="interval", expr=expr))
    assert error.field == "schedule.expr"
    assert fragment in error.message


@pytest.mark.parametrize(
    ("expr", "seconds"),
    [
        ("300", 300),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86400),
        ("366d", 366 * 86400),
        ("1", 1),
    ],
)
def test_interval_is_normalised_to_seconds(expr: str, seconds: int) -> None:
    schedule = validate_schedule(Schedule(kind="interval", expr=expr), now=NOW)
    assert schedule.expr == str(seconds)
    assert schedule.start_at == NOW


def test_interval_counts_elapsed_time_across_dst() -> None:
    anchor = datetime(2026, 3, 7, 12, 0, tzinfo=ZoneInfo(NEW_YORK)).astimezone(UTC)
    schedule = validate_schedule(
        Schedule(kind="interval", expr="1d", timezone=NEW_YORK, start_at=anchor), now=NOW
    )
    fires = occurrences_between(schedule, anchor - timedelta(seconds=1), anchor + timedelta(days=2))
    # 24 elapsed hours, so the wall time moves by the DST hour.
    assert [f.astimezone(ZoneInfo(NEW_YORK)).hour for f in fires] == [12, 13, 13]
    assert first_occurrence(schedule, now=anchor) == anchor
    assert next_occurrence(schedule, anchor) == anchor + timedelta(days=1)


def test_event_never_fires_on_a_clock() -> None:
    schedule = validate_schedule(Schedule(kind="event", expr="order.created:v1"), now=NOW)
    assert schedule.expr == "order.created:v1"
    assert next_occurrence(schedule, NOW) is None
    assert first_occurrence(schedule, now=NOW) is None


@pytest.mark.parametrize("expr", ["", "bad name", "x" * 201, "naïve", "a/b"])
def test_bad_event_name_is_refused(expr: str) -> None:
    error = refused(Schedule(kind="event", expr=expr))
    assert error.field == "schedule.expr"
    assert "invalid event name" in error.message


def test_unknown_kind_is_refused() -> None:
    error = refused(Schedule(kind="weekly", expr="x"))  # type: ignore[arg-type]
    assert error.field == "schedule.kind"


@pytest.mark.parametrize("field", ["start_at", "end_at"])
def test_naive_bounds_are_refused(field: str) -> None:
    naive = datetime(2026, 6, 1, 9, 0)
    start_at, end_at = (naive, None) if field == "start_at" else (None, naive)
    error = refused(Schedule(kind="cron", expr="0 9 * * *", start_at=start_at, end_at=end_at))
    assert error.field == f"schedule.{field}"
    assert error.message == "naive datetime: include a UTC offset, e.g. 2026-01-01T09:00:00Z"


def test_end_at_must_follow_start_at() -> None:
    error = refused(
        Schedule(kind="cron", expr="0 9 * * *", start_at=utc(2026, 6, 1), end_at=utc(2026, 5, 1))
    )
    assert error.field == "schedule.end_at"
    assert "must be after start_at" in error.message


def test_end_at_before_the_first_occurrence_is_refused() -> None:
    error = refused(Schedule(kind="cron", expr="0 0 1 6 *", end_at=utc(2026, 3, 1)))
    assert error.field == "schedule.end_at"
    assert "no occurrence before end_at 2026-03-01T00:00:00Z" in error.message


def test_once_before_start_at_is_refused() -> None:
    error = refused(Schedule(kind="once", expr="2026-02-01T00:00:00Z", start_at=utc(2026, 3, 1)))
    assert error.field == "schedule.start_at"


# --- fire times -------------------------------------------------------------------------


def test_next_occurrence_is_strictly_after_and_utc() -> None:
    schedule = cron("0 9 * * *", BERLIN)
    fire = next_occurrence(schedule, utc(2026, 1, 2, 8))
    assert fire == utc(2026, 1, 2, 8) + timedelta(days=1)
    assert fire is not None and fire.tzinfo is UTC
    assert next_occurrence(schedule, utc(2026, 1, 2, 7, 59, 59)) == utc(2026, 1, 2, 8)


def test_first_occurrence_counts_an_occurrence_exactly_at_now() -> None:
    schedule = cron("0 9 * * *")
    assert first_occurrence(schedule, now=utc(2026, 1, 2, 9)) == utc(2026, 1, 2, 9)
    assert next_occurrence(schedule, utc(2026, 1, 2, 9)) == utc(2026, 1, 3, 9)


def test_start_at_and_end_at_bound_fire_times_inclusively() -> None:
    schedule = cron("0 9 * * *", start_at=utc(2026, 2, 1, 9), end_at=utc(2026, 2, 3, 9))
    assert occurrences_between(schedule, NOW, utc(2027, 1, 1)) == [
        utc(2026, 2, 1, 9),
        utc(2026, 2, 2, 9),
        utc(2026, 2, 3, 9),
    ]
    assert next_occurrence(schedule, utc(2026, 2, 3, 9)) is None


def test_sparse_cron_is_found_years_ahead() -> None:
    assert next_occurrence(cron("0 0 29 2 *"), NOW) == utc(2028, 2, 29)


def test_next_occurrence_looks_five_years_ahead_but_listing_has_no_such_limit() -> None:
    # Feb 29 on a Monday: 2016, then 2044.
    rare = Schedule(
        kind="rrule",
        expr="DTSTART:20160229T000000Z\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        start_at=utc(2016, 1, 1),
    )
    assert next_occurrence(rare, NOW) is None
    assert next_occurrence(rare, utc(2040, 1, 1)) == utc(2044, 2, 29)
    assert occurrences_between(rare, NOW, utc(2045, 1, 1)) == [utc(2044, 2, 29)]
    leap_days = occurrences_between(cron("0 0 29 2 *"), NOW, utc(2041, 1, 1))
    assert [d.year for d in leap_days] == [2028, 2032, 2036, 2040]


def test_naive_arguments_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrence(cron("0 9 * * *"), datetime(2026, 1, 1))


def test_occurrences_between_respects_limit() -> None:
    assert len(occurrences_between(cron("* * * * *"), NOW, utc(2026, 1, 2), limit=7)) == 7


def test_next_occurrence_is_fast() -> None:
    import time as clock

    schedules = [
        cron("*/5 * * * *", NEW_YORK),
        cron("30 2 * * *", NEW_YORK),
        cron("0 9 * * 1-5", BERLIN),
        rrule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0", LORD_HOWE),
        rrule("FREQ=HOURLY", KOLKATA),
    ]
    started = clock.perf_counter()
    calls = 0
    for schedule in schedules:
        for i in range(40):
            next_occurrence(schedule, utc(2027, 3, 1) + timedelta(hours=7 * i))
            calls += 1
    # Typically well under 1 ms a call; the bound leaves room for slow CI machines.
    assert (clock.perf_counter() - started) / calls < 0.005


# --- the DST rule -----------------------------------------------------------------------


def test_2026_transition_dates_are_as_the_tests_assume() -> None:
    def offsets(timezone: str, day: date) -> tuple[timedelta | None, timedelta | None]:
        tz = ZoneInfo(timezone)
        start, end = local_day(timezone, day)
        return start.astimezone(tz).utcoffset(), end.astimezone(tz).utcoffset()

    hour = timedelta(hours=1)
    assert offsets(NEW_YORK, date(2026, 3, 8)) == (-5 * hour, -4 * hour)
    assert offsets(NEW_YORK, date(2026, 11, 1)) == (-4 * hour, -5 * hour)
    assert offsets(BERLIN, date(2026, 3, 29)) == (hour, 2 * hour)
    assert offsets(BERLIN, date(2026, 10, 25)) == (2 * hour, hour)
    assert offsets(LORD_HOWE, date(2026, 10, 4)) == (10.5 * hour, 11 * hour)
    assert offsets(LORD_HOWE, date(2026, 4, 5)) == (11 * hour, 10.5 * hour)


def test_croniter_alone_fires_a_daily_job_twice_on_fall_back_day() -> None:
    # Why croniter only steps naive wall times here: given an aware start it fires both
    # 01:30s. If this starts failing, croniter changed; the rule below must still hold.
    tz = ZoneInfo(NEW_YORK)
    stepper = croniter("30 1 * * *", datetime(2026, 10, 31, 12, 0, tzinfo=tz))
    fires = [stepper.get_next(datetime) for _ in range(3)]
    assert [f.isoformat() for f in fires] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-02T01:30:00-05:00",
    ]


@pytest.mark.parametrize(
    ("timezone", "day", "expr", "expected"),
    [
        (NEW_YORK, date(2026, 11, 1), "30 1 * * *", "01:30-04:00"),
        (BERLIN, date(2026, 10, 25), "30 2 * * *", "02:30+02:00"),
        (LORD_HOWE, date(2026, 4, 5), "45 1 * * *", "01:45+11:00"),
    ],
)
def test_wall_clock_cron_fires_once_at_first_fold_on_fall_back_day(
    timezone: str, day: date, expr: str, expected: str
) -> None:
    fires = fires_on(cron(expr, timezone), day)
    assert [f.isoformat()[11:16] + f.isoformat()[19:] for f in fires] == [expected]
    for neighbour in (day - timedelta(days=1), day + timedelta(days=1)):
        assert len(fires_on(cron(expr, timezone), neighbour)) == 1


@pytest.mark.parametrize(
    ("timezone", "day", "expr", "expected_utc"),
    [
        (NEW_YORK, date(2026, 3, 8), "30 2 * * *", utc(2026, 3, 8, 7)),  # 03:00 EDT
        (NEW_YORK, date(2026, 3, 8), "0,15,30,45 2 * * *", utc(2026, 3, 8, 7)),  # collapse
        (NEW_YORK, date(2026, 3, 8), "30 2,3 * * *", None),  # 02:30 -> 03:00, then 03:30
        (BERLIN, date(2026, 3, 29), "30 2 * * *", utc(2026, 3, 29, 1)),  # 03:00 CEST
        (LORD_HOWE, date(2026, 10, 4), "15 2 * * *", utc(2026, 10, 3, 15, 30)),  # 02:30 +11
    ],
)
def test_wall_clock_cron_in_a_gap_fires_at_the_transition(
    timezone: str, day: date, expr: str, expected_utc: datetime | None
) -> None:
    fires = [f.astimezone(UTC) for f in fires_on(cron(expr, timezone), day)]
    if expected_utc is None:
        assert fires == [utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30)]
    else:
        assert fires == [expected_utc]


@pytest.mark.parametrize(
    ("timezone", "day", "expr", "count"),
    [
        (NEW_YORK, date(2026, 11, 1), "0 * * * *", 25),
        (NEW_YORK, date(2026, 3, 8), "0 * * * *", 23),
        (BERLIN, date(2026, 10, 25), "0 * * * *", 25),
        (BERLIN, date(2026, 3, 29), "0 * * * *", 23),
        (NEW_YORK, date(2026, 11, 1), "*/15 */2 * * *", 48),  # 01:xx is odd: no repeat
        (NEW_YORK, date(2026, 11, 1), "*/15 * * * *", 100),
        (NEW_YORK, date(2026, 3, 8), "*/15 * * * *", 92),
        # Lord Howe moves by 30 minutes: the repeated/skipped half hour is 01:30-02:00 in
        # April and 02:00-02:30 in October, so only one of :00 and :30 is affected.
        (LORD_HOWE, date(2026, 4, 5), "0 * * * *", 24),
        (LORD_HOWE, date(2026, 4, 5), "30 * * * *", 25),
        (LORD_HOWE, date(2026, 10, 4), "0 * * * *", 23),
        (LORD_HOWE, date(2026, 10, 4), "30 * * * *", 24),
        (LORD_HOWE, date(2026, 4, 5), "45 1 * * *", 1),
        (LORD_HOWE, date(2026, 10, 4), "45 1 * * *", 1),
        (LORD_HOWE, date(2026, 10, 4), "15 2 * * *", 1),
    ],
)
def test_fires_per_transition_day(timezone: str, day: date, expr: str, count: int) -> None:
    assert len(fires_on(cron(expr, timezone), day)) == count


@pytest.mark.parametrize("timezone", [KOLKATA, "UTC"])
def test_zones_without_dst_fire_24_hourly_jobs_every_day(timezone: str) -> None:
    schedule = cron("0 * * * *", timezone)
    tz = ZoneInfo(timezone)
    start, end = local_day(timezone, date(2026, 1, 1))
    _, end = local_day(timezone, date(2026, 12, 31))
    per_day = Counter(f.astimezone(tz).date() for f in occurrences_between(schedule, start, end))
    assert len(per_day) == 365
    assert set(per_day.values()) == {24}


@pytest.mark.parametrize(
    ("timezone", "expr"),
    [
        (NEW_YORK, "30 2 * * 0"),  # Sundays 02:30: inside the March gap
        (NEW_YORK, "30 1 * * sun"),  # Sundays 01:30: repeated in November
        (BERLIN, "30 2 * * 0"),
        (LORD_HOWE, "45 1 * * 0"),
        (NEW_YORK, "@weekly"),
    ],
)
def test_weekly_cron_fires_once_a_week_across_transitions(timezone: str, expr: str) -> None:
    schedule = cron(expr, timezone)
    fires = occurrences_between(schedule, utc(2026, 3, 1), utc(2026, 12, 1))
    weeks = Counter(f.astimezone(ZoneInfo(timezone)).isocalendar()[:2] for f in fires)
    assert set(weeks.values()) == {1}
    assert len(weeks) >= 38


def test_rrule_daily_fires_once_on_fall_back_day_at_first_fold() -> None:
    schedule = rrule("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", NEW_YORK)
    fires = fires_on(schedule, date(2026, 11, 1))
    assert [f.isoformat() for f in fires] == ["2026-11-01T01:30:00-04:00"]


def test_rrule_daily_in_a_gap_fires_at_the_transition() -> None:
    schedule = rrule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", NEW_YORK)
    assert [f.astimezone(UTC) for f in fires_on(schedule, date(2026, 3, 8))] == [utc(2026, 3, 8, 7)]


def test_rrule_hourly_is_elapsed_time_like() -> None:
    schedule = rrule("FREQ=HOURLY;BYMINUTE=0", NEW_YORK)
    assert len(fires_on(schedule, date(2026, 11, 1))) == 25
    assert len(fires_on(schedule, date(2026, 3, 8))) == 23


def test_rrule_exdate_skips_an_occurrence_on_fall_back_day() -> None:
    schedule = rrule("DTSTART:20261030T013000\nRRULE:FREQ=DAILY\nEXDATE:20261101T013000", NEW_YORK)
    fires = occurrences_between(schedule, utc(2026, 10, 30), utc(2026, 11, 3))
    assert [f.astimezone(ZoneInfo(NEW_YORK)).day for f in fires] == [30, 31, 2]


# --- property: occurrences agree with a brute-force oracle of the written rule ----------

_FIELD_SPECS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@st.composite
def cron_field(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    """One field's text and the values it selects, built independently of the code under test."""
    low, high = _FIELD_SPECS[index]
    items: list[str] = []
    values: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        shape = draw(st.sampled_from(["*", "*/s", "a", "a-b", "a-b/s"]))
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        s = draw(st.integers(1, max(1, (high - low) // 2)))
        if shape == "*":
            items.append("*")
            values |= set(range(low, high + 1))
        elif shape == "*/s":
            items.append(f"*/{s}")
            values |= set(range(low, high + 1, s))
        elif shape == "a":
            items.append(str(a))
            values.add(a)
        elif shape == "a-b":
            items.append(f"{a}-{b}")
            values |= set(range(a, b + 1))
        else:
            items.append(f"{a}-{b}/{s}")
            values |= set(range(a, b + 1, s))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return ",".join(items), values


@st.composite
def crons(draw: st.DrawFn) -> tuple[str, list[set[int]], bool, bool]:
    """(expression, value sets, hour field starts with '*', days are OR-ed)."""
    fields = [draw(cron_field(i)) for i in range(5)]
    # Bias towards the hours where transitions happen, so the interesting cases come up.
    if draw(st.booleans()):
        hours = draw(st.sets(st.integers(0, 4), min_size=1, max_size=3))
        fields[1] = (",".join(map(str, sorted(hours))), hours)
    if draw(st.booleans()):
        fields[2], fields[3], fields[4] = (
            ("*", set(range(1, 32))),
            ("*", set(range(1, 13))),
            (
                "*",
                set(range(7)),
            ),
        )
    texts = [text for text, _ in fields]
    day_or = not (texts[2].startswith("*") or texts[4].startswith("*"))
    return " ".join(texts), [values for _, values in fields], texts[1].startswith("*"), day_or


def _matches(wall: datetime, sets: list[set[int]], day_or: bool) -> bool:
    minutes, hours, days, months, weekdays = sets
    if wall.minute not in minutes or wall.hour not in hours or wall.month not in months:
        return False
    day_ok, weekday_ok = wall.day in days, wall.isoweekday() % 7 in weekdays
    return (day_ok or weekday_ok) if day_or else (day_ok and weekday_ok)


def oracle(
    sets: list[set[int]], elapsed: bool, day_or: bool, tz: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Walk every UTC minute in (start, end] and apply the DST rule as written."""
    minute = timedelta(minutes=1)
    fires = []
    instant = start.replace(second=0, microsecond=0)
    previous = (instant).astimezone(tz).replace(tzinfo=None)
    while instant + minute <= end:
        instant += minute
        local = instant.astimezone(tz)
        wall = local.replace(tzinfo=None)
        if elapsed:
            fire = _matches(wall, sets, day_or)
        else:
            fire = local.fold == 0 and _matches(wall, sets, day_or)
            skipped = previous + minute
            while not fire and skipped < wall:
                fire = _matches(skipped, sets, day_or)
                skipped += minute
        if fire:
            fires.append(instant)
        previous = wall
    return fires


@cache
def transitions(timezone: str) -> tuple[datetime, ...]:
    """UTC instants in 2026-2028 at which the zone's offset changes."""
    tz = ZoneInfo(timezone)
    found = []
    instant = utc(2026, 1, 1)
    step = timedelta(minutes=30)
    while instant < utc(2029, 1, 1):
        if (instant + step).astimezone(tz).utcoffset() != instant.astimezone(tz).utcoffset():
            found.append(instant + step)
        instant += step
    return tuple(found)


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, datetime, datetime]:
    timezone = draw(st.sampled_from(ZONES))
    changes = transitions(timezone)
    if changes and draw(st.integers(0, 4)) > 0:
        around = draw(st.sampled_from(changes))
        start = around - timedelta(minutes=draw(st.integers(0, 30 * 60)))
    else:
        start = utc(2026, 1, 1) + timedelta(minutes=draw(st.integers(0, 3 * 365 * 24 * 60)))
    return timezone, start, start + timedelta(hours=36)


@settings(max_examples=60, deadline=None)
@given(spec=crons(), window=windows())
def test_cron_matches_brute_force_oracle(
    spec: tuple[str, list[set[int]], bool, bool], window: tuple[str, datetime, datetime]
) -> None:
    expr, sets, elapsed, day_or = spec
    timezone, start, end = window
    schedule = Schedule(kind="cron", expr=expr, timezone=timezone)
    expected = oracle(sets, elapsed, day_or, ZoneInfo(timezone), start, end)
    assert occurrences_between(schedule, start, end) == expected


@settings(max_examples=30, deadline=None)
@given(
    hour=st.integers(0, 4),
    minute=st.sampled_from([0, 15, 30, 45]),
    window=windows(),
)
def test_rrule_daily_and_hourly_agree_with_equivalent_cron(
    hour: int, minute: int, window: tuple[str, datetime, datetime]
) -> None:
    timezone, start, end = window
    anchor = utc(2025, 12, 1)
    daily = Schedule(
        kind="rrule",
        expr=f"FREQ=DAILY;BYHOUR={hour};BYMINUTE={minute}",
        timezone=timezone,
        start_at=anchor,
    )
    hourly = Schedule(
        kind="rrule", expr=f"FREQ=HOURLY;BYMINUTE={minute}", timezone=timezone, start_at=anchor
    )
    as_cron = Schedule(kind="cron", expr=f"{minute} {hour} * * *", timezone=timezone)
    hourly_cron = Schedule(kind="cron", expr=f"{minute} * * * *", timezone=timezone)
    assert occurrences_between(daily, start, end) == occurrences_between(as_cron, start, end)
    assert occurrences_between(hourly, start, end) == occurrences_between(hourly_cron, start, end)


@st.composite
def plain_rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 5))}"]
    weekdays = st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"])
    month_days = st.sampled_from([1, 13, 29, 30, 31, -1])
    if draw(st.booleans()):
        chosen = draw(st.lists(weekdays, min_size=1, max_size=3, unique=True))
        parts.append("BYDAY=" + ",".join(chosen))
    if draw(st.booleans()):
        days = draw(st.lists(month_days, min_size=1, max_size=3, unique=True))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
    if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        # Not 2: a rule with one match per period would then never fire, and dateutil
        # itself (computing the expected answer) would scan to year 9999.
        parts.append(f"BYSETPOS={draw(st.sampled_from([1, -1]))}")
    if draw(st.integers(0, 4)) == 0:
        parts.append(f"COUNT={draw(st.integers(1, 2000))}")
    return ";".join(parts)


# How far back DTSTART may lie: dateutil itself (the reference here) walks every
# occurrence from DTSTART, which for a minutely rule started years ago takes seconds.
_LOOKBACK_DAYS = {"MINUTELY": 10, "HOURLY": 365}


@settings(max_examples=25, deadline=None)
@given(
    rule=plain_rules(),
    query=st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31)),
    back=st.floats(0.0, 1.0),
    hours=st.integers(1, 24 * 100),
)
def test_rrule_shortcuts_keep_dateutils_occurrences(
    rule: str, query: datetime, back: float, hours: int
) -> None:
    # In UTC wall time is real time, so our answer must be exactly dateutil's own, even
    # though we move DTSTART forward and shift the calendar to keep the search short.
    from dateutil.rrule import rrulestr  # type: ignore[import-untyped, unused-ignore]

    lookback = timedelta(days=_LOOKBACK_DAYS.get(rule.split(";")[0][5:], 7 * 365))
    dtstart = (query - back * lookback).replace(microsecond=0)
    schedule = Schedule(kind="rrule", expr=f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{rule}")
    start, end = query.replace(tzinfo=UTC), query.replace(tzinfo=UTC) + timedelta(hours=hours)
    expected: list[datetime] = []
    for wall in rrulestr(f"RRULE:{rule};WKST=MO", dtstart=dtstart).xafter(query):
        if wall > end.replace(tzinfo=None) or len(expected) == 200:
            break
        expected.append(wall.replace(tzinfo=UTC))
    assert occurrences_between(schedule, start, end, limit=200) == expected
