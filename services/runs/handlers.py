"""Handler actions: Python callables registered by name in user modules.

    from services.runs.handlers import handler

    @handler("send-report")
    async def send_report(ctx):
        await ctx.log("info", f"sending to {ctx.payload['to']}")
        await ctx.save_checkpoint({"step": 2})
        return {"sent": True}

Workers import the modules named with `--handlers module.path` (several allowed). A handler
gets the task's payload and last checkpoint; what it returns (JSON-encodable) becomes the
run's result, and an exception fails the run (and retries it per the task's policy).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

LOG_LEVELS = ("debug", "info", "warn", "error")


class HandlerContext(Protocol):
    task_id: str
    run_id: str
    attempt: int
    payload: Any
    checkpoint: Any

    async def save_checkpoint(self, data: Any) -> None: ...

    async def log(self, level: str, message: str) -> None: ...


Handler = Callable[[HandlerContext], Awaitable[Any]]

_registry: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine function under `name`."""

    def register(fn: Handler) -> Handler:
        if name in _registry and _registry[name] is not fn:
            raise ValueError(f"handler {name!r} is already registered")
        _registry[name] = fn
        return fn

    return register


def load_handler_modules(modules: Iterable[str]) -> list[str]:
    """Import user modules so their @handler decorators run; returns the registered names."""
    for module in modules:
        importlib.import_module(module)
    return sorted(_registry)


def find_handler(name: str) -> Handler | None:
    return _registry.get(name)
