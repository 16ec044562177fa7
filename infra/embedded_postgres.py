"""A PostgreSQL server from the `pgserver` wheel, for machines that have none."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded_postgres(folder: Path) -> tuple[str, Callable[[], None]]:
    """Start (or join) the server whose data lives in `folder`; returns its DSN and a stop hook.

    The data folder survives restarts; a server left running by a killed process is reused.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        folder.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(folder, cleanup_mode="stop")
    log.info("embedded PostgreSQL running from %s", folder)
    return server.get_uri(), server.cleanup
