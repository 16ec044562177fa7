"""A baseline's consumer processes: started together, awaited until ready, stopped and tallied."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.baseline_callback import READY, Tally, parse_summary  # noqa: E402
from tests.integration.processes import Process, cli_env  # noqa: E402


class ConsumerFleet:
    """`count` copies of one consumer command, each a separate OS process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.processes: list[Process] = []
        self.tally = Tally()

    async def start(
        self, module: str, args: list[str], count: int, env: dict[str, str], timeout: float = 60.0
    ) -> None:
        """Start `python -m module *args` `count` times with `env` added (connection URLs go
        there, not in argv, so they stay out of process listings); return once each process
        has printed the ready line. If one never does, all are stopped and the error raised."""
        command, env = [sys.executable, "-m", module, *args], cli_env(**env)
        self.processes = [Process(command, env) for _ in range(count)]
        try:
            await asyncio.gather(
                *(asyncio.to_thread(p.wait_for, READY, timeout) for p in self.processes)
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self, grace_seconds: float = 5.0) -> Tally:
        """SIGTERM every process, SIGKILL those still alive after the grace; print the tally."""
        stopping = self.processes
        self.processes = []
        for process in stopping:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        await asyncio.gather(*(asyncio.to_thread(_reap, p, grace_seconds) for p in stopping))
        tally, unreported = Tally(), 0
        for process in stopping:
            reported = [(t, line) for line in process.drain() if (t := parse_summary(line))]
            if not reported:
                unreported += 1
                continue
            last, line = reported[-1]
            tally += last
            if last.failed:
                print(f"  {self.name}: {line}", flush=True)
        self.tally = tally
        print(
            f"  {self.name}: consumers made {tally.ok + tally.failed} callbacks,"
            f" {tally.failed} failed"
            + (f"; {unreported} process(es) printed no tally" if unreported else ""),
            flush=True,
        )
        return tally


def _reap(process: Process, grace_seconds: float) -> None:
    """Wait for a signalled process, killing it after the grace; then collect its last lines."""
    try:
        process.popen.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        process.popen.kill()
        process.popen.wait()
    # The summary is the process's last line: wait for the pump to hand it over.
    try:
        process.wait_for("callbacks ok=", timeout=1.0)
    except AssertionError:
        pass


class FleetBurst:
    """What the baselines share: the harness's constructor, and their consumer processes."""

    name = "baseline"

    def __init__(
        self, *, dsn: str, redis_url: str, processes: int = 2, concurrency: int = 64
    ) -> None:
        self.dsn = dsn
        self.redis_url = redis_url
        self.processes = processes
        self.concurrency = concurrency
        self.fleet = ConsumerFleet(self.name)
