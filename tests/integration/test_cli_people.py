"""`taskstream tasks …` and `taskstream jobs …` against a real `taskstream dev`.

Most calls run `services.cli.main` in this process (a real HTTP round trip each, without a
second interpreter start); the exit status and the default credentials are checked through
real subprocesses.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from services.cli import main
from services.cli.remote import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from tests.integration.dev_harness import Dev, dev_fixture
from tests.integration.processes import cli_env, free_port, taskstream

dev = dev_fixture(TASKSTREAM_RATE_LIMIT_PER_SECOND="0")


def run(
    dev: Dev, capsys: pytest.CaptureFixture[str], *args: str, url: str | None = None
) -> tuple[int, str, str]:
    code = main([*args, "--url", url or dev.base_url, "--api-key", dev.api_key])
    out, err = capsys.readouterr()
    return code, out, err


FAR = "2099-01-01T00:00:00+00:00"


def test_create_get_list_cancel_as_json_and_tables(
    dev: Dev, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        dev, capsys, "tasks", "create", "--name", "cli-made", "--call", "https://example.com/h",
        "--at", FAR, "--tag", "cli", "--payload", '{"n": 1}', "--json",
    )  # fmt: skip
    assert code == 0
    task = json.loads(out)
    assert (task["name"], task["payload"], task["tags"]) == ("cli-made", {"n": 1}, ["cli"])
    code, out, _ = run(dev, capsys, "tasks", "get", task["id"], "--json")
    assert code == 0 and json.loads(out)["id"] == task["id"]
    code, out, _ = run(dev, capsys, "tasks", "list", "--tag", "cli")
    assert code == 0 and "cli-made" in out and task["id"] in out and "1 shown" in out
    code, out, _ = run(dev, capsys, "tasks", "cancel", task["id"], "--json")
    assert code == 0 and json.loads(out)["status"] == "cancelled"
    code, out, _ = run(dev, capsys, "tasks", "runs", task["id"], "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(dev, capsys, "tasks", "logs", task["id"], "--json")
    assert code == 0 and json.loads(out) == []


def test_create_many_from_a_file(
    dev: Dev, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bodies = [
        {"name": f"batch-{i}", "action": {"kind": "http", "url": "https://example.com/b"},
         "scheduled_at": FAR, "tags": ["from-file"]}
        for i in range(3)
    ]  # fmt: skip
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bodies))
    code, out, _ = run(dev, capsys, "tasks", "create", "-f", str(path), "--json")
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["batch-0", "batch-1", "batch-2"]
    code, out, _ = run(dev, capsys, "tasks", "list", "--tag", "from-file", "--json")
    assert len(json.loads(out)) == 3


def test_run_now_then_runs(dev: Dev, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        dev, capsys, "tasks", "create", "--name", "soon", "--call", "https://example.com/x",
        "--at", FAR, "--json",
    )  # fmt: skip
    task_id = json.loads(out)["id"]
    code, out, _ = run(dev, capsys, "tasks", "run-now", task_id, "--json")
    assert code == 0 and json.loads(out)["id"] == task_id


def test_errors_are_one_line_naming_the_field_with_an_exit_code(
    dev: Dev, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(dev, capsys, "tasks", "create", "--name", "x", "--call", "ftp://nope")
    assert code == EXIT_INVALID
    assert err.count("\n") == 1 and err.startswith("error: action.url") and "422" in err
    code, _, err = run(dev, capsys, "tasks", "get", "no-such-task")
    assert code == EXIT_NOT_FOUND and "404" in err
    _, out, _ = run(dev, capsys, "tasks", "create", "--name", "p", "--handler", "h", "--at", FAR,
                    "--json")  # fmt: skip
    code, _, err = run(dev, capsys, "tasks", "retry", json.loads(out)["id"])
    assert code == EXIT_CONFLICT and err.startswith("error: ")
    code, _, err = run(dev, capsys, "tasks", "create", "--name", "x", "--handler", "h",
                       "--at", "tomorrow")  # fmt: skip
    assert code == EXIT_USAGE and err.startswith("error: --at")
    code, _, err = run(dev, capsys, "tasks", "create", "--name", "x")
    assert code == EXIT_USAGE and "--call, --handler, --command" in err
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(dev, capsys, "tasks", "list", url=dead)
    assert code == EXIT_UNREACHABLE and err.startswith("error: ")


def test_jobs_commands_against_the_jobs_surface(
    dev: Dev, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job = tmp_path / "job.json"
    job.write_text('{"name": "etl", "tasks": []}')
    code, out, _ = run(dev, capsys, "jobs", "create", "-f", str(job))
    assert code == 0 and "etl" in out
    code, out, _ = run(dev, capsys, "jobs", "list")
    assert code == 0 and "etl" in out
    code, _, err = run(dev, capsys, "jobs", "get", "nope")
    assert code == EXIT_NOT_FOUND and err.startswith("error: ") and err.count("\n") == 1
    job.write_text("[1, 2]")
    code, _, err = run(dev, capsys, "jobs", "create", "-f", str(job))
    assert code == EXIT_USAGE and err.startswith("error: -f")


def test_a_real_process_defaults_to_the_dev_data_dir_and_exits_with_the_code(dev: Dev) -> None:
    port = dev.base_url.rsplit(":", 1)[1]
    env = cli_env(TASKSTREAM_PORT=port)  # no --url, no --api-key: credentials.json of dev
    listed = subprocess.run(
        taskstream("tasks", "list", "--json", "--data-dir", str(dev.data_dir)),
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    missing = subprocess.run(
        taskstream("tasks", "get", "nope", "--data-dir", str(dev.data_dir)),
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == EXIT_NOT_FOUND and missing.stderr.startswith("error: ")
    no_key = subprocess.run(
        taskstream("tasks", "list", "--data-dir", str(dev.data_dir / "elsewhere")),
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert no_key.returncode == EXIT_USAGE and "--api-key" in no_key.stderr
