"""`taskstream`: run the service, migrate, manage projects, and work with tasks and jobs."""

from __future__ import annotations

import argparse
import logging
import sys

from infra.log_format import configure_logging
from infra.secret_store import SecretsKeyError
from infra.settings import load_settings
from services.cli import events, jobs, openapi, projections, projects, secrets, serve, tasks
from services.cli.serve import event_loop_factory

__all__ = ["event_loop_factory", "main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The whole command line: one group of subcommands per module of this package."""
    p = argparse.ArgumentParser(prog="taskstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for group in (serve, tasks, jobs, events, projections, projects, secrets, openapi):
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `taskstream` command."""
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    args = parser().parse_args(argv)
    try:
        return int(args.run(args, settings))
    except SecretsKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
