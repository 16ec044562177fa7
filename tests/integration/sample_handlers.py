"""Handlers the tests register, loaded the way a worker loads `--handlers` modules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from services.runs.handlers import HandlerContext, handler


@handler("resumable-steps")
async def resumable_steps(ctx: HandlerContext) -> Any:
    if ctx.checkpoint is None:
        await ctx.log("info", f"starting with {ctx.payload}")
        await ctx.save_checkpoint({"step": 1})
        raise RuntimeError("crashed after step 1")
    await ctx.log("info", f"resuming from step {ctx.checkpoint['step']}")
    return {"resumed_from": ctx.checkpoint["step"], "payload": ctx.payload}


# Runs of "waits-until-stopped" that have started, and when each one was cancelled.
STOPPED_AT: dict[str, float] = {}
STARTED: set[str] = set()


@handler("waits-until-stopped")
async def waits_until_stopped(ctx: HandlerContext) -> Any:
    STARTED.add(ctx.task_id)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        STOPPED_AT[ctx.task_id] = time.monotonic()
        raise
    return {"finished": True}
