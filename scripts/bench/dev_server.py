"""A real `taskstream dev` process for the benchmarks, on a fresh data directory."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.integration.processes import Process, cli_env, free_port, taskstream  # noqa: E402


@dataclass(frozen=True)
class DevServer:
    base: str
    api_key: str
    dsn: str
    pid: int


@contextmanager
def dev_server(**settings: str) -> Iterator[DevServer]:
    """Start `taskstream dev` with TASKSTREAM_* `settings`; stop it afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        dsn = os.environ.get("TASKSTREAM_DATABASE_URL")
        env = cli_env(
            TASKSTREAM_DATABASE_URL=dsn,
            TASKSTREAM_LOG_LEVEL="WARNING",
            TASKSTREAM_RATE_LIMIT_PER_SECOND="0",  # measure the system, not the limiter
            **{f"TASKSTREAM_{k.upper()}": v for k, v in settings.items()},
        )
        server = Process(taskstream("dev", "--port", str(port), "--data-dir", str(data_dir)), env)
        try:
            server.wait_for("scheduler ", timeout=120)
            key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
            if dsn is None:
                # The embedded server's socket folder is the fifth line of its pid file.
                pid_lines = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
                dsn = f"postgresql://postgres:@/postgres?host={pid_lines[4]}"
            yield DevServer(f"http://127.0.0.1:{port}", key, dsn, server.popen.pid)
        finally:
            server.stop()
