"""Trigger rules: whether a job task runs, given its upstream tasks' states (Airflow's meanings).

A task with no upstream always runs. Otherwise, as soon as the upstream states decide it:
- all_success (default): runs when every upstream succeeded; UPSTREAM_FAILED as soon as one
  failed (or was upstream-failed or cancelled); SKIPPED as soon as one was skipped.
- all_done: runs when every upstream is finished, whatever the outcome.
- one_success: runs as soon as one upstream succeeded; once all are finished without a
  success: SKIPPED if all were skipped, else UPSTREAM_FAILED.
- one_failed: runs as soon as one upstream failed (or was upstream-failed); once all are
  finished without a failure: SKIPPED.
- none_failed: runs when every upstream is finished and none failed (skipped is fine);
  UPSTREAM_FAILED as soon as one failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Verdict = Literal["run", "wait", "upstream_failed", "skipped"]

FINAL = frozenset({"SUCCEEDED", "FAILED", "UPSTREAM_FAILED", "SKIPPED", "CANCELLED"})
FAILED_LIKE = frozenset({"FAILED", "UPSTREAM_FAILED", "CANCELLED"})


def verdict(rule: str, upstream: Sequence[str]) -> Verdict:
    """What the task should do now, given each upstream task's status."""
    if not upstream:
        return "run"
    done = all(s in FINAL for s in upstream)
    failed = any(s in FAILED_LIKE for s in upstream)
    succeeded = any(s == "SUCCEEDED" for s in upstream)
    if rule == "all_success":
        if failed:
            return "upstream_failed"
        if "SKIPPED" in upstream:
            return "skipped"
        return "run" if done else "wait"
    if rule == "all_done":
        return "run" if done else "wait"
    if rule == "one_success":
        if succeeded:
            return "run"
        if not done:
            return "wait"
        return "skipped" if all(s == "SKIPPED" for s in upstream) else "upstream_failed"
    if rule == "one_failed":
        if failed:
            return "run"
        return "skipped" if done else "wait"
    if rule == "none_failed":
        if failed:
            return "upstream_failed"
        return "run" if done else "wait"
    raise ValueError(f"unknown trigger rule {rule!r}")
