"""The core task that runs one job task in one round of an execution.

It is an ordinary task (a `once` schedule due now), so it takes the same path as any other:
scheduler claim, dispatch, worker, lease, retries. Its id is derived from (execution, task,
round), its HTTP calls carry `Idempotency-Key: <executionId>:<taskId>` on every attempt, and its
tags name the execution so a finished run can advance it at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from domain.actions import Action, HttpAction
from domain.job_definition import JobTask, core_retry_policy
from domain.job_execution import ExecutionState, effective_retry
from domain.schedule import Schedule
from domain.task import TaskState
from domain.task_definition import TaskDefinition
from infra.json_codec import encode

EXECUTION_TAG = "execution:"
JOB_TAG = "job:"


def execution_of(task: TaskState) -> str | None:
    """The execution a core task runs a node of, or None for an ordinary task."""
    for tag in task.definition.tags:
        if tag.startswith(EXECUTION_TAG):
            return tag[len(EXECUTION_TAG) :]
    return None


def node_definition(execution: ExecutionState, task: JobTask, *, now: datetime) -> TaskDefinition:
    return TaskDefinition(
        name=f"{execution.job_name} / {task.name}"[:200],
        schedule=Schedule(kind="once", expr=now.astimezone(UTC).isoformat()),
        action=_with_context(task.action, execution, task),
        payload={
            "jobId": execution.job_id,
            "executionId": execution.execution_id,
            "taskId": task.id,
            "params": execution.params,
        },
        retry=core_retry_policy(effective_retry(execution, task)),
        timeout_seconds=task.timeout_seconds,
        tags=(JOB_TAG + execution.job_id, EXECUTION_TAG + execution.execution_id),
        created_by=JOB_TAG + execution.job_id,
    )


def _with_context(action: Action, execution: ExecutionState, task: JobTask) -> Action:
    if not isinstance(action, HttpAction):
        return action  # a handler reads the params from its payload; a command gets none
    headers = {
        **action.headers,
        "Idempotency-Key": f"{execution.execution_id}:{task.id}",
        "X-Taskstream-Job-Id": execution.job_id,
        "X-Taskstream-Execution-Id": execution.execution_id,
        "X-Taskstream-Task-Id": task.id,
    }
    body = action.body
    if body is None and action.method not in ("GET", "HEAD") and execution.params is not None:
        body = encode(execution.params).decode()
        headers.setdefault("Content-Type", "application/json")
    return msgspec.structs.replace(action, headers=headers, body=body)
