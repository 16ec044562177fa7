"""The query strings the dashboard's pages accept (a bad one is a 422 page naming it)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

import msgspec

from services.surfaces.kit.problems import HttpProblem
from services.tasks.queries import Keyset, TaskSearch, keyset_from

StatusWord = Literal[
    "", "pending", "dispatched", "running", "completed", "failed", "retrying", "paused", "cancelled"
]
KindWord = Literal["", "once", "cron", "rrule", "interval", "event"]
Part = Literal["", "live"]


class TasksQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: StatusWord = ""
    tag: str = ""
    kind: KindWord = ""
    q: str = ""
    cursor: str = ""
    part: Part = ""
    retried: int | None = None

    def search(self) -> TaskSearch:
        if len(self.q) > 200 or len(self.tag) > 100:
            field = "q" if len(self.q) > 200 else "tag"
            raise HttpProblem(422, "validation_error", f"{field} is too long", field=field)
        return TaskSearch(
            status=self.status or None,
            tag=self.tag or None,
            schedule_kind=self.kind or None,
            text=self.q or None,
        )

    def after(self) -> Keyset | None:
        if not self.cursor:
            return None
        try:
            return keyset_from(self.cursor)
        except ValueError as exc:
            raise HttpProblem(422, "validation_error", f"cursor: {exc}", field="cursor") from None

    def link(self, **changes: str) -> str:
        """This page's query with `changes`, for pagination links (empty values left out)."""
        values = {"status": self.status, "tag": self.tag, "kind": self.kind, "q": self.q}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})


class PartQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    part: Part = ""
    done: Literal["", "run-now", "pause", "resume", "cancel", "retry"] = ""


class WebhooksQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    endpoint: str = ""
    part: Part = ""
    redelivered: int | None = None
