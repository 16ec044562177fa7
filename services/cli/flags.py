"""Help text that states every flag's default and its environment variable, in one format."""

from __future__ import annotations


def described(text: str, *, default: object, env: str | None = None) -> str:
    """`text (default: …; env: …)`; argparse's `%` is escaped so any default prints as is."""
    where = f"env: {env}" if env else "no env variable"
    return f"{text} (default: {default}; {where})".replace("%", "%%")
