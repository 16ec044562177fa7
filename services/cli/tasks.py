"""`taskstream tasks list|get|create|cancel|retry|run-now|logs|runs`, over taskstream_client."""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import datetime
from typing import Any

from infra.settings import Settings
from services.cli.flags import described
from services.cli.progress import with_progress
from services.cli.remote import (
    UsageError,
    connect,
    handled,
    read_json_file,
    remote_flags,
    show,
)

TASK_COLUMNS = ("id", "name", "status", "priority", "scheduled_at", "retry_count")


@handled
def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    filters = {"status": args.status, "tag": args.tag, "sort": args.sort, "order": args.order}
    with connect(args, settings) as client:
        found = list(itertools.islice(client.tasks.list(**filters), args.limit))
    return show(args, found, TASK_COLUMNS)


@handled
def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    with connect(args, settings) as client:
        return show(args, client.tasks.get(args.id), ())


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag}: {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise UsageError(f"{flag}: {value!r} needs a UTC offset, e.g. {value}+00:00")
    return when


def _body_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    if args.name is None:
        raise UsageError("--name: required unless -f gives the tasks")
    actions = [
        {"kind": "http", "url": args.call, "method": args.method} if args.call else None,
        {"kind": "handler", "name": args.handler} if args.handler else None,
        {"kind": "command", "command": args.command_line} if args.command_line else None,
    ]
    given = [a for a in actions if a is not None]
    if len(given) != 1:
        raise UsageError("--call, --handler, --command: give exactly one")
    body: dict[str, Any] = {"name": args.name, "action": given[0], "tags": args.tag or []}
    if args.cron:
        body["schedule"] = {"kind": "cron", "expr": args.cron, "timezone": args.timezone}
    if (at := _when(args.at, "--at")) is not None:
        body["scheduled_at"] = at
    if args.priority is not None:
        body["priority"] = args.priority
    if args.payload is not None:
        try:
            body["payload"] = json.loads(args.payload)
        except ValueError:
            raise UsageError("--payload: not JSON") from None
    return body


@handled
def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.file is None:
        bodies = [_body_from_flags(args)]
    else:
        loaded = read_json_file(args.file)
        bodies = loaded if isinstance(loaded, list) else [loaded]
        if not all(isinstance(b, dict) for b in bodies):
            raise UsageError(f"-f: {args.file} must hold a task object or a list of them")
    with connect(args, settings) as client:
        steps = with_progress(bodies, "creating tasks") if len(bodies) > 1 else bodies
        made = [client.tasks.create(**body) for body in steps]
    return show(args, made if args.file else made[0], TASK_COLUMNS)


def _one_action(name: str) -> Any:
    @handled
    def run(args: argparse.Namespace, settings: Settings) -> int:
        with connect(args, settings) as client:
            return show(args, getattr(client.tasks, name)(args.id), ())

    return run


@handled
def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    with connect(args, settings) as client:
        lines = list(client.tasks.logs(args.id, level=args.level))
    return show(args, lines, ("timestamp", "level", "message"))


@handled
def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    with connect(args, settings) as client:
        runs = list(itertools.islice(client.tasks.runs(args.id), args.limit))
    columns = ("run_id", "attempt", "status", "started_at", "finished_at", "worker_id", "error")
    return show(args, runs, columns)


def _limit_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--limit",
        type=int,
        default=50,
        help=described(f"show at most this many {what}", default=50),
    )


def add_commands(sub: Any) -> None:
    """Register `tasks …`."""
    tasks = sub.add_parser("tasks", help="list, create and act on tasks over the API")
    group = tasks.add_subparsers(dest="tasks_command", required=True)

    p = group.add_parser("list", help="list tasks, newest first")
    p.add_argument("--status", help=described("only tasks with this status", default="any"))
    p.add_argument("--tag", help=described("only tasks with this tag", default="any"))
    p.add_argument(
        "--sort", default="created_at", help=described("sort field", default="created_at")
    )
    p.add_argument(
        "--order",
        default="desc",
        choices=("asc", "desc"),
        help=described("sort order", default="desc"),
    )
    _limit_flag(p, "tasks")
    remote_flags(p)
    p.set_defaults(run=cmd_list)

    p = group.add_parser("get", help="one task, every field")
    p.add_argument("id")
    remote_flags(p)
    p.set_defaults(run=cmd_get)

    p = group.add_parser("create", help="create a task from flags, or many from a file (-f)")
    p.add_argument(
        "-f",
        "--file",
        help=described(
            "JSON object, array or JSON lines of task bodies ('-': stdin)", default="none"
        ),
    )
    p.add_argument("--name", help=described("the task's name", default="none"))
    p.add_argument(
        "--call", metavar="URL", help=described("call this URL (an http action)", default="none")
    )
    p.add_argument(
        "--method", default="POST", help=described("HTTP method for --call", default="POST")
    )
    p.add_argument("--handler", help=described("run this registered handler", default="none"))
    p.add_argument(
        "--command", dest="command_line", help=described("run this command", default="none")
    )
    p.add_argument(
        "--at", help=described("run once at this ISO 8601 time with offset", default="now")
    )
    p.add_argument("--cron", help=described("run on this cron expression", default="none"))
    p.add_argument("--timezone", default="UTC", help=described("timezone of --cron", default="UTC"))
    p.add_argument("--priority", type=int, help=described("1-10, higher first", default=5))
    p.add_argument("--payload", help=described("JSON handed to the action", default="null"))
    p.add_argument("--tag", action="append", help=described("a tag (repeatable)", default="none"))
    remote_flags(p)
    p.set_defaults(run=cmd_create)

    for name, method, text in (
        ("cancel", "cancel", "cancel a task for good"),
        ("retry", "retry", "retry a failed task"),
        ("run-now", "run_now", "run a task once now (its schedule stays)"),
    ):
        p = group.add_parser(name, help=text)
        p.add_argument("id")
        remote_flags(p)
        p.set_defaults(run=_one_action(method))

    p = group.add_parser("logs", help="a task's log lines")
    p.add_argument("id")
    p.add_argument(
        "--level",
        choices=("debug", "info", "warn", "error"),
        help=described("only this level", default="all"),
    )
    remote_flags(p)
    p.set_defaults(run=cmd_logs)

    p = group.add_parser("runs", help="a task's runs (attempts), newest first")
    p.add_argument("id")
    _limit_flag(p, "runs")
    remote_flags(p)
    p.set_defaults(run=cmd_runs)
