"""Starting and stopping real `taskstream` processes for tests."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process whose output lines are collected as they arrive."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, fragment: str, timeout: float = 60.0) -> str:
        """Block until an output line contains `fragment`; fail with the output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.popen.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if fragment in line:
                return line
        raise AssertionError(f"{fragment!r} never appeared; output:\n" + "\n".join(self.lines))

    def drain(self) -> list[str]:
        while not self._queue.empty():
            self.lines.append(self._queue.get_nowait())
        return self.lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout)


def cli_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSTREAM_")}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is not None:
            env[key] = value
    return env


def loopback_env(dsn: str, **overrides: str | None) -> dict[str, str]:
    """cli_env for a service over `dsn` whose callbacks may reach receivers on loopback."""
    return cli_env(
        TASKSTREAM_DATABASE_URL=dsn, TASKSTREAM_EGRESS_ALLOW_CIDRS="127.0.0.0/8", **overrides
    )


def taskstream(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


async def start_dev(data_dir: Path, port: int, env: dict[str, str]) -> Process:
    """`taskstream dev`, once its scheduler runs (the last part to start), from an async test."""
    server = Process(taskstream("dev", "--port", str(port), "--data-dir", str(data_dir)), env)
    await asyncio.to_thread(server.wait_for, "scheduler ", 90)
    return server


@contextmanager
def dev_server(data_dir: Path, port: int, env: dict[str, str], *extra: str) -> Iterator[Process]:
    args = taskstream("dev", "--port", str(port), "--data-dir", str(data_dir), *extra)
    proc = Process(args, env)
    try:
        proc.wait_for("serving on", timeout=90)
        yield proc
    finally:
        if proc.popen.poll() is None:
            proc.stop()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id still exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
