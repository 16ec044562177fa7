"""`taskstream jobs list|get|create -f FILE|trigger|status|history|pause|resume` (seed 003)."""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

from infra.settings import Settings
from services.cli.flags import described
from services.cli.remote import UsageError, connect, handled, read_json_file, remote_flags, show


@handled
def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with connect(args, settings) as client:
        jobs = list(itertools.islice(client.jobs.list(), args.limit))
    return show(args, jobs, ("id", "name", "schedule", "paused", "version"))


@handled
def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    job = read_json_file(args.file)
    if not isinstance(job, dict):
        raise UsageError(f"-f: {args.file} must hold one job object")
    with connect(args, settings) as client:
        return show(args, client.jobs.create(**job), ())


@handled
def cmd_trigger(args: argparse.Namespace, settings: Settings) -> int:
    try:
        params = None if args.params is None else json.loads(args.params)
    except ValueError:
        raise UsageError("--params: not JSON") from None
    with connect(args, settings) as client:
        return show(args, client.jobs.trigger(args.id, params=params), ())


@handled
def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    with connect(args, settings) as client:
        status = client.jobs.status(args.id)
    if args.json:
        return show(args, status, ())
    print(f"execution {status.execution_id}: {status.status}")
    return show(
        args, status.tasks, ("id", "status", "attempts", "started_at", "finished_at", "error")
    )


@handled
def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    with connect(args, settings) as client:
        runs = list(itertools.islice(client.jobs.history(args.id), args.limit))
    columns = ("execution_id", "status", "trigger", "version", "started_at", "finished_at")
    return show(args, runs, columns)


def _on_job(name: str) -> Any:
    @handled
    def run(args: argparse.Namespace, settings: Settings) -> int:
        with connect(args, settings) as client:
            return show(args, getattr(client.jobs, name)(args.id), ())

    return run


def add_commands(sub: Any) -> None:
    """Register `jobs …`."""
    jobs = sub.add_parser("jobs", help="DAG jobs (seed 003, /jobs) over the API")
    group = jobs.add_subparsers(dest="jobs_command", required=True)
    limit = described("show at most this many", default=50)

    p = group.add_parser("list", help="list jobs")
    p.add_argument("--limit", type=int, default=50, help=limit)
    remote_flags(p)
    p.set_defaults(run=cmd_list)

    p = group.add_parser("create", help="create a job from a JSON file")
    p.add_argument(
        "-f",
        "--file",
        required=True,
        help=described("the job as JSON ('-': stdin)", default="required"),
    )
    remote_flags(p)
    p.set_defaults(run=cmd_create)

    p = group.add_parser("trigger", help="start an execution now")
    p.add_argument("id")
    p.add_argument("--params", help=described("JSON object handed to every task", default="none"))
    remote_flags(p)
    p.set_defaults(run=cmd_trigger)

    p = group.add_parser("status", help="the latest execution and its tasks")
    p.add_argument("id")
    remote_flags(p)
    p.set_defaults(run=cmd_status)

    p = group.add_parser("history", help="executions, newest first")
    p.add_argument("id")
    p.add_argument("--limit", type=int, default=50, help=limit)
    remote_flags(p)
    p.set_defaults(run=cmd_history)

    for name, text in (("get", "one job"), ("pause", "pause a job"), ("resume", "resume a job")):
        p = group.add_parser(name, help=text)
        p.add_argument("id")
        remote_flags(p)
        p.set_defaults(run=_on_job(name))
