"""Log lines a client cannot forge: control characters in messages are escaped."""

from __future__ import annotations

import logging

from infra.log_format import LOG_FORMAT, EscapingFormatter, escape_controls


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_a_decoded_line_break_cannot_start_a_log_entry() -> None:
    path = "/tasks/\x00\n2026-12-01 10:00:00,000 ERROR auth admin logged in\r\x1b[2J\u2028"
    line = EscapingFormatter(LOG_FORMAT).format(record("unhandled error on GET %s", path))
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\x1b" not in line
    assert "\u2028" not in line
    assert line.endswith(
        "unhandled error on GET /tasks/\\x00\\n2026-12-01 10:00:00,000 ERROR auth admin logged in"
        "\\r\\x1b[2J\\u2028"
    )


def test_the_traceback_we_append_keeps_its_lines() -> None:
    text = EscapingFormatter(LOG_FORMAT).format(record("failed %s", "a\nb", exc=True))
    first, *rest = text.splitlines()
    assert first.endswith("failed a\\nb")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"


def test_plain_text_is_unchanged() -> None:
    assert escape_controls("GET /api/tasks?limit=5 é ✓") == "GET /api/tasks?limit=5 é ✓"
