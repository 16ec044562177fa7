"""A real `taskstream gateway` process on a fresh database, with the default project's key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.api_harness import SECRETS_KEY
from tests.integration.processes import Process, cli_env, free_port, taskstream


@dataclass
class Gateway:
    base: str
    key: str
    project_id: str
    process: Process


@contextmanager
def running_gateway(data_dir: Path, dsn: str, **env: str) -> Iterator[Gateway]:
    port = free_port()
    process = Process(
        taskstream("gateway", "--port", str(port), "--data-dir", str(data_dir)),
        cli_env(TASKSTREAM_DATABASE_URL=dsn, **{"TASKSTREAM_SECRETS_KEY": SECRETS_KEY, **env}),
    )
    try:
        process.wait_for("serving on", timeout=90)
        credentials = json.loads((data_dir / "credentials.json").read_text())
        base = f"http://127.0.0.1:{port}"
        yield Gateway(base, credentials["api_key"], credentials["project_id"], process)
    finally:
        if process.popen.poll() is None:
            process.stop()
