"""Handlers the tests register, loaded the way a worker loads `--handlers` modules."""

from __future__ import annotations

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
