"""A run's log lines (GET /api/tasks/{id}/logs): collected while the run goes, written with it.

Lines are not events: they are many and need no replay. They go in the same transaction as the
run's outcome (an inline write of the group commit), or on their own when no outcome is
recorded (a stopped run). Nothing here may log a header value: those carry credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from infra.group_commit import InlineWrite
from infra.json_codec import encode
from services.runs.handlers import LOG_LEVELS

MAX_MESSAGE_CHARS = 10_000

INSERT_LINES_SQL = """
INSERT INTO task_logs (project_id, task_id, run_id, level, message)
SELECT r.project_id, r.task_id, r.run_id, r.level, r.message
  FROM jsonb_to_recordset($1::jsonb)
       AS r(project_id text, task_id text, run_id text, level text, message text)
"""


class LogLine(msgspec.Struct, frozen=True):
    project_id: str
    task_id: str
    run_id: str | None
    level: str
    message: str


class RunLog:
    """The lines one run has written so far."""

    def __init__(self, project_id: str, task_id: str, run_id: str | None) -> None:
        self._key = (project_id, task_id, run_id)
        self.lines: list[LogLine] = []

    def add(self, level: str, message: str) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        self.lines.append(LogLine(*self._key, level, message[:MAX_MESSAGE_CHARS]))

    def inline_writes(self) -> list[InlineWrite]:
        """The lines as writes to commit with the run's outcome (kept: a conflict retries)."""
        return [InlineWrite(INSERT_LINES_SQL, line) for line in self.lines]

    async def write(self, pool: asyncpg.Pool) -> None:
        """Write the lines on their own (no outcome to commit them with)."""
        lines, self.lines = self.lines, []
        await write_lines(pool, lines)


async def write_lines(pool: asyncpg.Pool, lines: Sequence[LogLine]) -> None:
    if lines:
        await pool.execute(INSERT_LINES_SQL, encode(list(lines)).decode())


def request_line(method: str, url: str) -> str:
    """`METHOD scheme://host/path`: the query is left out, since URLs often carry tokens."""
    parts = urlsplit(url)
    query = "?…" if parts.query else ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{method} {urlunsplit((parts.scheme, host, parts.path, '', ''))}{query}"
