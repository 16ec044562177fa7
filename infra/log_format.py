"""Log lines a request cannot forge: control characters in a message are escaped.

Messages often carry text a client chose (a path, a header, a parse error quoting the request
line). Written raw, a decoded `%0a` there starts a new line that a log reader takes for an entry
of its own. Escaping happens in the formatter, once, so no call site has to remember it; the
traceback a formatter appends is ours and keeps its line breaks.
"""

from __future__ import annotations

import logging
import re

# C0 controls (line feed, carriage return, escape, NUL, …), DEL and C1 controls, and the
# Unicode line and paragraph separators, which some viewers also break lines on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def escape_controls(text: str) -> str:
    r"""`text` with every control character spelled as an escape (`\n`, `\x00`, `\u2028`)."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


class EscapingFormatter(logging.Formatter):
    """A Formatter whose message part never holds a control character."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    """Root logging for every taskstream process: one line per message, controls escaped."""
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
