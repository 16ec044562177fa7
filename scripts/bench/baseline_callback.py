"""The callback both baseline consumers make, and the lines they print about it.

A consumer process prints `READY` once it can take work and, when it stops, one summary line
(`summary_line`) that the parent reads back with `parse_summary`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp
import msgspec

READY = "consumer ready"
_SUMMARY = re.compile(r"callbacks ok=(\d+) failed=(\d+)")


class Callback(msgspec.Struct, frozen=True):
    """One job's payload: where to POST, and the number that goes in the body."""

    url: str
    i: int


@dataclass
class Tally:
    """Callbacks made by one or more consumers, and how many of them failed."""

    ok: int = 0
    failed: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.ok + other.ok, self.failed + other.failed)


def summary_line(tally: Tally) -> str:
    """The line a consumer prints on exit."""
    return f"callbacks ok={tally.ok} failed={tally.failed}"


def parse_summary(line: str) -> Tally | None:
    """Read back a `summary_line`; None when `line` is not one."""
    found = _SUMMARY.search(line)
    return Tally(int(found[1]), int(found[2])) if found else None


class CallbackClient:
    """POSTs `{"i": i}` over one reused session per process; counts 2xx and everything else.

    The session is opened lazily, on the first call, so that it belongs to the event loop the
    calls run on (dramatiq runs async actors on a loop thread of its own).
    """

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.session: aiohttp.ClientSession | None = None
        self.tally = Tally()
        self.first_error = ""

    async def post(self, url: str, i: int) -> None:
        """Make one callback; never raises (no retries: a failure is only counted)."""
        if self.session is None:
            # limit=0: the job system's own concurrency setting is the only bound.
            connector = aiohttp.TCPConnector(limit=0)
            self.session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        try:
            async with self.session.post(url, json={"i": i}) as response:
                await response.read()
                succeeded = 200 <= response.status < 300
                error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            succeeded, error = False, repr(exc)
        if succeeded:
            self.tally.ok += 1
        else:
            self.tally.failed += 1
            self.first_error = self.first_error or f"{url}: {error}"

    async def close(self) -> None:
        """Close the session, if one was opened."""
        if self.session is not None:
            await self.session.close()
            self.session = None

    def summary(self) -> str:
        """The summary line, plus the first failure when there was one."""
        first = f" first failure: {self.first_error}" if self.first_error else ""
        return summary_line(self.tally) + first
