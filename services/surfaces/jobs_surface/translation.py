"""Seed 003's bodies ⇄ the core's job definition and the states of jobs and executions."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from domain.job import JobPatch, JobState
from domain.job_definition import Backoff, JobDefinition, JobRetryPolicy, JobTask, dependents_of
from domain.job_execution import ExecutionState
from services.surfaces.jobs_surface import schemas as s


def retry_in(body: s.RetryPolicyBody) -> JobRetryPolicy:
    b = body.backoff
    return JobRetryPolicy(
        type=body.type,
        max_retries=body.max_retries,
        backoff=Backoff(
            strategy=b.strategy,
            delay_seconds=b.delay_seconds,
            max_delay_seconds=b.max_delay_seconds,
        ),
    )


def retry_out(policy: JobRetryPolicy) -> s.RetryPolicyBody:
    b = policy.backoff
    return s.RetryPolicyBody(
        type=policy.type,
        max_retries=policy.max_retries,
        backoff=s.BackoffBody(
            strategy=b.strategy,
            delay_seconds=b.delay_seconds,
            max_delay_seconds=b.max_delay_seconds,
        ),
    )


def task_in(body: s.TaskIn) -> JobTask:
    return JobTask(
        id=body.id,
        name=body.name,
        action=body.action,
        dependencies=tuple(body.dependencies),
        retry_policy=None if body.retry_policy is None else retry_in(body.retry_policy),
        timeout_seconds=body.timeout_seconds,
        trigger_rule=body.trigger_rule,
    )


def task_merged(current: JobTask, body: s.TaskUpdate) -> JobTask:
    """`current` with the fields `body` gives (an explicit null retryPolicy: the job's)."""
    retry: Any = current.retry_policy
    if body.retry_policy is not UNSET:
        retry = None if body.retry_policy is None else retry_in(body.retry_policy)
    return JobTask(
        id=current.id,
        name=current.name if body.name is UNSET else body.name,
        action=current.action if body.action is UNSET else body.action,
        dependencies=current.dependencies
        if body.dependencies is UNSET
        else tuple(body.dependencies),
        retry_policy=retry,
        timeout_seconds=current.timeout_seconds
        if body.timeout_seconds is UNSET
        else body.timeout_seconds,
        trigger_rule=current.trigger_rule if body.trigger_rule is UNSET else body.trigger_rule,
    )


def definition_in(body: s.JobCreate) -> JobDefinition:
    return JobDefinition(
        name=body.name,
        description=body.description,
        tasks=tuple(task_in(t) for t in body.tasks),
        schedule=body.schedule,
        timezone=body.timezone,
        retry_policy=JobRetryPolicy() if body.retry_policy is None else retry_in(body.retry_policy),
        max_active_runs=body.max_active_runs,
        overlap_policy=body.overlap_policy,
        misfire_policy=body.misfire_policy,
    )


def patch_in(body: s.JobUpdate) -> JobPatch:
    return JobPatch(
        name=body.name,
        description=body.description,
        tasks=UNSET if body.tasks is UNSET else tuple(task_in(t) for t in body.tasks),
        schedule=body.schedule,
        timezone=body.timezone,
        retry_policy=UNSET if body.retry_policy is UNSET else retry_in(body.retry_policy),
        max_active_runs=body.max_active_runs,
        overlap_policy=body.overlap_policy,
        misfire_policy=body.misfire_policy,
    )


def task_out(task: JobTask, tasks: tuple[JobTask, ...]) -> s.TaskOut:
    return s.TaskOut(
        id=task.id,
        name=task.name,
        action=task.action,
        dependencies=list(task.dependencies),
        dependents=dependents_of(tasks, task.id),
        retry_policy=None if task.retry_policy is None else retry_out(task.retry_policy),
        timeout_seconds=task.timeout_seconds,
        trigger_rule=task.trigger_rule,
    )


def summary_out(job: JobState) -> s.JobSummary:
    d = job.definition
    return s.JobSummary(
        id=job.job_id,
        name=d.name,
        description=d.description,
        schedule=d.schedule,
        timezone=d.timezone,
        paused=job.paused,
        version=job.definition_version,
        task_count=len(d.tasks),
        next_fire_at=job.next_fire_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def job_out(job: JobState) -> s.JobOut:
    d = job.definition
    return s.JobOut(
        id=job.job_id,
        name=d.name,
        description=d.description,
        tasks=[task_out(t, d.tasks) for t in d.tasks],
        dag=s.Dag(
            nodes=[t.id for t in d.tasks],
            edges=[(dep, t.id) for t in d.tasks for dep in t.dependencies],
        ),
        schedule=d.schedule,
        timezone=d.timezone,
        retry_policy=retry_out(d.retry_policy),
        max_active_runs=d.max_active_runs,
        overlap_policy=d.overlap_policy,
        misfire_policy=d.misfire_policy,
        paused=job.paused,
        version=job.definition_version,
        next_fire_at=job.next_fire_at,
        running_executions=list(job.running),
        queued_executions=list(job.queued),
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def execution_out(state: ExecutionState) -> s.ExecutionOut:
    return s.ExecutionOut(
        execution_id=state.execution_id,
        job_id=state.job_id,
        status=state.status,
        trigger=state.trigger,
        definition_version=state.definition_version,
        params=state.params,
        scheduled_for=state.scheduled_for,
        created_at=state.created_at,
        started_at=state.started_at,
        finished_at=state.finished_at,
        tasks=[
            s.TaskStatus(
                id=t.id,
                status=(n := state.nodes[t.id]).status,
                attempts=n.attempts,
                started_at=n.started_at,
                finished_at=n.finished_at,
                error=n.error,
            )
            for t in state.tasks
        ],
    )


def record_out(state: ExecutionState) -> s.ExecutionRecord:
    return s.ExecutionRecord(
        execution_id=state.execution_id,
        status=state.status,
        trigger=state.trigger,
        definition_version=state.definition_version,
        scheduled_for=state.scheduled_for,
        created_at=state.created_at,
        started_at=state.started_at,
        finished_at=state.finished_at,
    )
