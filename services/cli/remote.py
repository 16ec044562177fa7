"""What the commands for people share: reaching the API through taskstream_client, printing
tables or JSON, and turning API errors into one line and an exit code scripts can test."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from taskstream_client import Client, errors

from infra.settings import Settings
from services.cli.flags import described

# Exit codes (docs/client.md, "The CLI"): one per kind of failure, so scripts can branch.
EXIT_OK = 0
EXIT_FAILED = 1  # an error answer not listed below, or a 5xx
EXIT_USAGE = 2  # bad flags or a bad file (argparse uses 2 as well)
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INVALID = 5  # 400 / 422: the message names the field
EXIT_AUTH = 6
EXIT_UNREACHABLE = 7
EXIT_RATE_LIMITED = 8
_EXIT_BY_ERROR: list[tuple[type[Exception], int]] = [
    (errors.NotFound, EXIT_NOT_FOUND),
    (errors.Conflict, EXIT_CONFLICT),
    (errors.ValidationError, EXIT_INVALID),
    (errors.BadRequest, EXIT_INVALID),
    (errors.AuthenticationError, EXIT_AUTH),
    (errors.PermissionDenied, EXIT_AUTH),
    (errors.RateLimited, EXIT_RATE_LIMITED),
    (errors.APIConnectionError, EXIT_UNREACHABLE),
]
Command = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """A flag or file the command cannot use; the message names it."""


def remote_flags(p: argparse.ArgumentParser) -> None:
    """--url, --api-key, --data-dir and --json, which every command over the API takes."""
    p.add_argument(
        "--url",
        help=described(
            "the API's base URL",
            default="http://<TASKSTREAM_HOST>:<TASKSTREAM_PORT>",
            env="TASKSTREAM_URL",
        ),
    )
    p.add_argument(
        "--api-key",
        help=described(
            "a project API key", default="api_key of <data-dir>/credentials.json",
            env="TASKSTREAM_API_KEY",
        ),
    )  # fmt: skip
    p.add_argument(
        "--data-dir",
        help=described(
            "the `taskstream dev` data directory to read credentials.json from",
            default=".taskstream", env="TASKSTREAM_DATA_DIR",
        ),
    )  # fmt: skip
    p.add_argument(
        "--json", action="store_true", help=described("print JSON for scripts", default="a table")
    )


def connect(args: argparse.Namespace, settings: Settings) -> Client:
    """A client for the flags, else TASKSTREAM_URL / TASKSTREAM_API_KEY, else the local
    `taskstream dev` and the key its data directory keeps."""
    url = args.url or os.environ.get("TASKSTREAM_URL") or f"http://{settings.host}:{settings.port}"
    key = args.api_key or os.environ.get("TASKSTREAM_API_KEY")
    if not key:
        creds = Path(args.data_dir or settings.data_dir).expanduser() / "credentials.json"
        try:
            key = json.loads(creds.read_text())["api_key"]
        except (OSError, ValueError, KeyError):
            raise UsageError(
                f"--api-key: not given, TASKSTREAM_API_KEY unset and no key in {creds}"
            ) from None
    return Client(base_url=url, api_key=key)


def one_line(error: Exception) -> str:
    """The error as one line naming the field, for stderr."""
    if isinstance(error, errors.APIError):
        text = error.message
        if error.field and error.field not in text:
            text = f"{error.field}: {text}"
        where = f"{error.status}" + (f" {error.code}" if error.code else "")
        request = f", request {error.request_id}" if error.request_id else ""
        return f"error: {text} ({where}{request})"
    return f"error: {error}"


def exit_code(error: Exception) -> int:
    if isinstance(error, UsageError):
        return EXIT_USAGE
    return next((code for cls, code in _EXIT_BY_ERROR if isinstance(error, cls)), EXIT_FAILED)


def handled(command: Command) -> Command:
    """`command` with every API or usage error printed as one line and mapped to its code."""

    @functools.wraps(command)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return command(args, settings)
        except (errors.TaskstreamError, UsageError) as exc:
            print(one_line(exc), file=sys.stderr)
            return exit_code(exc)

    return run


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


def show(args: argparse.Namespace, items: Any, columns: Sequence[str]) -> int:
    """Print one model (as field/value rows) or a list of models (as a table), or JSON."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=250)  # piped: keep ids whole rather than wrap to 80 columns
    if args.json:
        sys.stdout.write(json.dumps(_plain(items), default=str) + "\n")
        return EXIT_OK
    if isinstance(items, list):
        table = Table()
        for c in columns:
            table.add_column(c, no_wrap=c not in ("message", "error"))
        for item in items:
            row = _plain(item)
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
        console.print(f"{len(items)} shown")
        return EXIT_OK
    table = Table()
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    for name, value in _plain(items).items():
        table.add_row(name, _cell(value))
    console.print(table)
    return EXIT_OK


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def read_json_file(path: str, flag: str = "-f") -> Any:
    """The JSON in `path` ("-": stdin), or a UsageError naming the flag."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        # JSON lines: one object per line.
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            raise UsageError(f"{flag}: {path} is not JSON or JSON lines: {exc}") from None
