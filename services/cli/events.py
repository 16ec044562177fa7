"""`taskstream events replay|tail`: the event stream in Kafka."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from infra.settings import Settings
from services.cli.data_dir import KAFKA_FILE, data_dir_flag, database, recorded_kafka
from services.cli.flags import described
from services.cli.progress import progress_bar
from services.relay.process import parse_since, replay_since, tail


def cmd_events_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Publish the log again from `--since` to its head (subscribers dedupe by id)."""
    kafka = bootstrap_for(args, settings)
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with database(args, settings) as (_, dsn), progress_bar("republishing", None) as bar:
        count = asyncio.run(replay_since(settings, dsn, kafka, since, bar))
    print(f"republished {count} events")
    return 0


def bootstrap_for(args: argparse.Namespace, settings: Settings) -> str:
    """TASKSTREAM_KAFKA_BOOTSTRAP, else what a running `taskstream dev` recorded in its data
    directory; exits 2 naming both when neither is there."""
    data_dir = Path(args.data_dir or settings.data_dir).expanduser()
    bootstrap = settings.kafka_bootstrap or recorded_kafka(data_dir)
    if bootstrap is None:
        print(
            "error: TASKSTREAM_KAFKA_BOOTSTRAP is unset and no `taskstream dev` recorded its"
            f" Kafka in {data_dir / KAFKA_FILE}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return bootstrap


def cmd_events_tail(args: argparse.Namespace, settings: Settings) -> int:
    """Print every event from Kafka once, as JSON lines (a subscriber example)."""
    asyncio.run(tail(bootstrap_for(args, settings), args.group))
    return 0


def add_commands(sub: Any) -> None:
    """Register `events replay` and `events tail`."""
    events = sub.add_parser("events", help="the event stream in Kafka").add_subparsers(
        dest="events_command", required=True
    )
    replay = events.add_parser("replay", help="publish the log again from a time on")
    replay.add_argument(
        "--since",
        required=True,
        help=described("ISO 8601 time (UTC unless it says)", default="required"),
    )
    data_dir_flag(replay)
    replay.set_defaults(run=cmd_events_replay)
    tail_cmd = events.add_parser("tail", help="print every event once (consumer group)")
    tail_cmd.add_argument(
        "--group",
        default="taskstream-tail",
        help=described("consumer group id", default="taskstream-tail"),
    )
    data_dir_flag(tail_cmd)
    tail_cmd.set_defaults(run=cmd_events_tail)
