"""A real receiver plus the scheduler and executor running a test gateway's tasks.

The worker's path without a broker (as in test_execution_path): due tasks are dispatched and
their HTTP actions called through the SSRF-guarded client, loopback allowed. The executor
listens for stop signals, as a worker process does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from infra.egress_client import EgressClient
from services.runs.executor import RunExecutor
from services.surfaces.kit.context import CONTEXT
from tests.integration.api_harness import Api
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_execution_path import Rig, run_schedulers, stop_all


@asynccontextmanager
async def callbacks_running(api: Api, *, allow_commands: bool = False) -> AsyncIterator[Receiver]:
    """Yield a receiver; tasks created through `api` run while the block lasts."""
    tasks = api.app[CONTEXT].tasks
    async with (
        running_receiver() as receiver,
        EgressClient("127.0.0.0/8") as egress,
        RunExecutor(
            api.pool, tasks, egress, worker_id="w-test", lease_seconds=3.0,
            random_unit=lambda: 0.0, allow_commands=allow_commands,
        ) as executor,
    ):  # fmt: skip
        _, stop, loops = await run_schedulers(Rig(api.pool, tasks, executor, receiver))
        try:
            yield receiver
        finally:
            await stop_all(stop, loops)
