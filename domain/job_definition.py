"""What a job's owner writes: a DAG of tasks, their policies, an optional cron schedule.

Validation is here and pure, so every surface gets the same messages: a cycle is named as
the path it closes (`a → b → c → a`), unknown dependencies and duplicate ids are listed.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import msgspec

from domain.actions import Action, validate_action
from domain.cron_schedule import parse_cron
from domain.errors import ValidationError
from domain.retry_policy import MAX_CAP_SECONDS, MAX_RETRIES, RetryPolicy
from domain.wall_clock import zone

RetryType = Literal["NONE", "ON_FAILURE", "ALWAYS"]
BackoffStrategy = Literal["fixed", "linear", "exponential"]
TriggerRule = Literal["all_success", "all_done", "one_success", "one_failed", "none_failed"]
OverlapPolicy = Literal["skip", "queue_one", "allow"]
MisfirePolicy = Literal["skip", "run_once"]

MAX_TASKS = 500
MAX_TASK_ID = 100
MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_TASK_TIMEOUT = 7 * 86400
MAX_ACTIVE_RUNS = 100
TRIGGER_RULES = ("all_success", "all_done", "one_success", "one_failed", "none_failed")
_RETRY_TYPES = ("NONE", "ON_FAILURE", "ALWAYS")
_STRATEGIES = ("fixed", "linear", "exponential")
_OVERLAPS = ("skip", "queue_one", "allow")
_MISFIRES = ("skip", "run_once")


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    strategy: BackoffStrategy = "exponential"
    delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0


class JobRetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """NONE never retries; ON_FAILURE retries the action's own failures; ALWAYS also
    timeouts and lost workers. `max_retries` excludes the first attempt."""

    type: RetryType = "ON_FAILURE"
    max_retries: int = 3
    backoff: Backoff = Backoff()


class JobTask(msgspec.Struct, frozen=True, kw_only=True):
    """One node of the DAG; `retry_policy` None means the job's default."""

    id: str
    name: str
    action: Action
    dependencies: tuple[str, ...] = ()
    retry_policy: JobRetryPolicy | None = None
    timeout_seconds: int = 3600
    trigger_rule: TriggerRule = "all_success"


class JobDefinition(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    tasks: tuple[JobTask, ...] = ()
    description: str | None = None
    schedule: str | None = None  # cron, read in `timezone`
    timezone: str = "UTC"
    retry_policy: JobRetryPolicy = JobRetryPolicy()
    max_active_runs: int = 1
    overlap_policy: OverlapPolicy = "skip"
    misfire_policy: MisfirePolicy = "run_once"

    def task(self, task_id: str) -> JobTask | None:
        return next((t for t in self.tasks if t.id == task_id), None)


def validate_job_definition(definition: JobDefinition, *, allow_commands: bool) -> JobDefinition:
    """The definition with names trimmed and the cron normalised, or ValidationError."""
    name = definition.name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError(f"name must be 1-{MAX_NAME} characters", field="name")
    if definition.description is not None and len(definition.description) > MAX_DESCRIPTION:
        raise ValidationError(
            f"description exceeds {MAX_DESCRIPTION} characters", field="description"
        )
    schedule = definition.schedule
    try:
        zone(definition.timezone)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="timezone") from None
    if schedule is not None:
        try:
            schedule = parse_cron(schedule).text
        except ValidationError as exc:
            raise ValidationError(exc.message, field="schedule") from None
    if not 1 <= definition.max_active_runs <= MAX_ACTIVE_RUNS:
        raise ValidationError(
            f"maxActiveRuns must be between 1 and {MAX_ACTIVE_RUNS}", field="maxActiveRuns"
        )
    if definition.overlap_policy not in _OVERLAPS:
        raise ValidationError(
            f"overlapPolicy must be one of {', '.join(_OVERLAPS)}", field="overlapPolicy"
        )
    if definition.misfire_policy not in _MISFIRES:
        raise ValidationError(
            f"misfirePolicy must be one of {', '.join(_MISFIRES)}", field="misfirePolicy"
        )
    validate_retry(definition.retry_policy, "retryPolicy")
    tasks = tuple(
        validate_task(t, f"tasks[{i}]", allow_commands=allow_commands)
        for i, t in enumerate(definition.tasks)
    )
    validate_graph(tasks)
    return msgspec.structs.replace(definition, name=name, schedule=schedule, tasks=tasks)


def validate_task(task: JobTask, field: str, *, allow_commands: bool) -> JobTask:
    """One task's own fields (the graph is checked by validate_graph)."""
    task_id = task.id.strip()
    if not task_id or len(task_id) > MAX_TASK_ID:
        raise ValidationError(f"task id must be 1-{MAX_TASK_ID} characters", field=f"{field}.id")
    name = task.name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError(f"task name must be 1-{MAX_NAME} characters", field=f"{field}.name")
    validate_action(task.action, allow_commands=allow_commands, field=f"{field}.action")
    if not 1 <= task.timeout_seconds <= MAX_TASK_TIMEOUT:
        raise ValidationError(
            f"timeoutSeconds must be between 1 and {MAX_TASK_TIMEOUT}",
            field=f"{field}.timeoutSeconds",
        )
    if task.trigger_rule not in TRIGGER_RULES:
        raise ValidationError(
            f"triggerRule must be one of {', '.join(TRIGGER_RULES)}", field=f"{field}.triggerRule"
        )
    if task.retry_policy is not None:
        validate_retry(task.retry_policy, f"{field}.retryPolicy")
    if task_id in task.dependencies:
        raise ValidationError(f"task {task_id} depends on itself", field=f"{field}.dependencies")
    if len(set(task.dependencies)) != len(task.dependencies):
        raise ValidationError("dependencies repeat an id", field=f"{field}.dependencies")
    return msgspec.structs.replace(task, id=task_id, name=name)


def validate_retry(policy: JobRetryPolicy, field: str) -> None:
    if policy.type not in _RETRY_TYPES:
        raise ValidationError(
            f"type must be one of {', '.join(_RETRY_TYPES)}", field=f"{field}.type"
        )
    retries = policy.max_retries
    if isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
        raise ValidationError(
            f"maxRetries must be a whole number from 0 to {MAX_RETRIES}",
            field=f"{field}.maxRetries",
        )
    backoff = policy.backoff
    if backoff.strategy not in _STRATEGIES:
        raise ValidationError(
            f"strategy must be one of {', '.join(_STRATEGIES)}", field=f"{field}.backoff.strategy"
        )
    if not 0 < backoff.delay_seconds <= 86_400:
        raise ValidationError(
            "delaySeconds must be above 0 and at most 86400",
            field=f"{field}.backoff.delaySeconds",
        )
    if not backoff.delay_seconds <= backoff.max_delay_seconds <= MAX_CAP_SECONDS:
        raise ValidationError(
            f"maxDelaySeconds must be at least delaySeconds and at most {MAX_CAP_SECONDS:g}",
            field=f"{field}.backoff.maxDelaySeconds",
        )


def validate_graph(tasks: tuple[JobTask, ...]) -> None:
    """At most MAX_TASKS, unique ids, known dependencies, no cycle."""
    if len(tasks) > MAX_TASKS:
        raise ValidationError(
            f"a job has at most {MAX_TASKS} tasks; this one has {len(tasks)}", field="tasks"
        )
    counts = Counter(t.id for t in tasks)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    seen = set(counts)
    if duplicates:
        raise ValidationError(f"duplicate task ids: {', '.join(duplicates)}", field="tasks")
    for task in tasks:
        unknown = [d for d in task.dependencies if d not in seen]
        if unknown:
            raise ValidationError(
                f"task {task.id} depends on unknown tasks: {', '.join(unknown)}",
                field="dependencies",
            )
    cycle = find_cycle({t.id: t.dependencies for t in tasks})
    if cycle:
        raise ValidationError(f"dependency cycle: {' → '.join(cycle)}", field="dependencies")


def find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle as the path that closes it, `[a, b, c, a]` meaning a → b → c → a, or None.

    An edge a → b means "a depends on b" is not what users read, so the path follows the
    direction work flows: from a dependency to the task that waits for it.
    """
    dependents: dict[str, list[str]] = {node: [] for node in graph}
    for node, deps in graph.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(node)
    colour: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(dependents):
        if colour.get(root):
            continue
        path = [root]
        stack = [iter(sorted(dependents[root]))]
        colour[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
                continue
            state = colour.get(nxt)
            if state == 1:
                return [*path[path.index(nxt) :], nxt]
            if state is None:
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(dependents.get(nxt, []))))
    return None


def dependents_of(tasks: tuple[JobTask, ...], task_id: str) -> list[str]:
    """Ids of the tasks that list `task_id` among their dependencies."""
    return [t.id for t in tasks if task_id in t.dependencies]


def descendants(tasks: tuple[JobTask, ...], roots: set[str]) -> set[str]:
    """Every task downstream of `roots` (not including them)."""
    found: set[str] = set()
    frontier = set(roots)
    while frontier:
        nxt = {t.id for t in tasks if frontier & set(t.dependencies)} - found
        found |= nxt
        frontier = nxt
    return found - roots


def core_retry_policy(policy: JobRetryPolicy) -> RetryPolicy:
    """The core run path's policy for a job task's policy."""
    backoff = policy.backoff
    return RetryPolicy(
        max_retries=0 if policy.type == "NONE" else policy.max_retries,
        backoff=backoff.strategy,
        base_seconds=float(backoff.delay_seconds),
        cap_seconds=float(backoff.max_delay_seconds),
        retry_on="any" if policy.type == "ALWAYS" else "action_failure",
    )
