"""What the HTTP server logs when a request cannot even be parsed: one WARNING line.

aiohttp logs a malformed request (an over-long URL or header, a broken header line, a bad
Content-Length) with `logger.exception`, a traceback per probe; a client owns that noise.
Here it becomes one WARNING naming the client and the start of the parser's complaint.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

MAX_QUOTED = 200


class RequestErrorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to aiohttp's request handler (`AppRunner(..., logger=…)`)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            remote = args[0] if args else "?"
            detail = " ".join(str(exc_info.message).split())[:MAX_QUOTED]
            self.logger.warning("malformed request from %s: %s %s", remote, exc_info.code, detail)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def request_error_log() -> RequestErrorLog:
    return RequestErrorLog(logging.getLogger("aiohttp.server"))
