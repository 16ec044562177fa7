"""The command runner with real processes: output lines bounded, stops that reach the group."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from infra.command_runner import CommandRun


async def test_lines_of_each_stream_are_kept_bounded_with_the_exit_code() -> None:
    run = CommandRun("echo one; echo two >&2; seq 1 500; printf 'no-newline'; exit 4", max_lines=50)
    await run.run(10)
    assert run.exit_code == 4 and not run.timed_out and run.stopped_with is None
    assert ("stdout", "one") in run.lines and ("stderr", "two") in run.lines
    # At most 50 per stream: stdout's flood does not crowd out stderr's one line.
    assert len(run.lines) == 51 and run.lines_not_kept == 502 - 50
    # The two pipes are read side by side, so only each stream's own order is fixed.
    assert run.output.replace("two\n", "").endswith("500\nno-newline")
    assert len(run.tail) <= 1024


async def test_a_long_line_is_cut() -> None:
    run = CommandRun("head -c 100000 /dev/zero | tr '\\0' x", max_line_chars=100)
    await run.run(10)
    assert run.lines and all(len(text) <= 100 for _, text in run.lines)


@pytest.mark.parametrize(
    ("script", "signal_name"),
    [("", "SIGTERM"), ("trap '' TERM; ", "SIGKILL")],
)
async def test_a_cancel_stops_the_process_group_within_the_grace(
    tmp_path: Path, script: str, signal_name: str
) -> None:
    marker = tmp_path / "started"
    run = CommandRun(f"{script}touch {marker}; sleep 30; sleep 30", grace_seconds=0.3)
    task = asyncio.create_task(run.run(60))
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    assert run.stopped_with == signal_name and run.exit_code is not None


async def test_a_timeout_stops_the_command_and_says_so() -> None:
    run = CommandRun("sleep 30", grace_seconds=0.3)
    started = time.monotonic()
    await run.run(0.2)
    assert run.timed_out and run.stopped_with == "SIGTERM"
    assert time.monotonic() - started < 2
