"""Running a shell command for a task: bounded output lines, and a stop that really stops it.

The command gets its own process group, so a stop (cancel, timeout) reaches whatever the shell
started: SIGTERM first, SIGKILL after `grace_seconds`. Its stdout and stderr are read line by
line as they come; the first `max_lines` lines of each stream (each cut at `max_line_chars`;
per stream, so a noisy stdout cannot crowd out the stderr that explains a failure) are kept for
the task's logs, and the last `tail_bytes` of the combined output for the run's result.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import Literal

Stream = Literal["stdout", "stderr"]

MAX_LINES = 100  # per stream
MAX_LINE_CHARS = 1000
TAIL_BYTES = 1024
GRACE_SECONDS = 0.5
# Output still arriving after the shell exited (a background child holding the pipe) is not
# waited for longer than this.
_DRAIN_SECONDS = 1.0


@dataclass
class CommandRun:
    """One command's run; its fields stay readable after a timeout or a cancel."""

    command: str
    max_lines: int = MAX_LINES
    max_line_chars: int = MAX_LINE_CHARS
    tail_bytes: int = TAIL_BYTES
    grace_seconds: float = GRACE_SECONDS
    lines: list[tuple[Stream, str]] = field(default_factory=list)
    lines_not_kept: int = 0
    _kept: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    tail: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None
    stopped_with: str | None = None  # the signal a stop needed: SIGTERM or SIGKILL
    timed_out: bool = False

    async def run(self, limit_seconds: float) -> None:
        """Run to the end or to `limit_seconds` (then stopped, `timed_out`); a cancel of the
        caller stops the process group before the CancelledError goes on."""
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_shell(
                self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        )
        try:
            process = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Stopped while starting: the process may already run, so wait for it and stop it.
            with contextlib.suppress(OSError):
                await self._stop(await spawn)
            raise
        assert process.stdout is not None and process.stderr is not None
        readers = [
            asyncio.create_task(self._read(process.stdout, "stdout")),
            asyncio.create_task(self._read(process.stderr, "stderr")),
        ]
        try:
            try:
                self.exit_code = await asyncio.wait_for(process.wait(), limit_seconds)
            except TimeoutError:
                self.timed_out = True
                await self._stop(process)
            _, late = await asyncio.wait(readers, timeout=_DRAIN_SECONDS)
            for reader in late:
                reader.cancel()
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(process))
            raise
        finally:
            for reader in readers:
                reader.cancel()

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.stopped_with = sig.name
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                self.exit_code = await asyncio.wait_for(process.wait(), self.grace_seconds)
            except TimeoutError:
                continue
            # The shell is gone; children that ignored SIGTERM go with the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return

    async def _read(self, reader: asyncio.StreamReader, stream: Stream) -> None:
        pending = b""
        while chunk := await reader.read(65536):
            self._keep_tail(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                self._keep_line(stream, line)
            if len(pending) > self.max_line_chars * 4:  # a line without end: cut it here
                self._keep_line(stream, pending)
                pending = b""
        if pending:
            self._keep_line(stream, pending)

    def _keep_tail(self, chunk: bytes) -> None:
        self.tail += chunk
        del self.tail[: max(0, len(self.tail) - self.tail_bytes)]

    def _keep_line(self, stream: Stream, raw: bytes) -> None:
        if self._kept[stream] >= self.max_lines:
            self.lines_not_kept += 1
            return
        self._kept[stream] += 1
        text = raw.decode("utf-8", "replace").rstrip("\r")[: self.max_line_chars]
        self.lines.append((stream, text))

    @property
    def output(self) -> str:
        return bytes(self.tail).decode("utf-8", "replace")
