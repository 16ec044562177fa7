"""What an asynchronous view is: a pure function from a batch of log events to rows, plus SQL.

The projector (services/projector) reads the log from the view's checkpoint, calls `rows` on
each batch and runs `upsert_sql` once with the rows as a JSON array, in the same transaction as
the checkpoint. Rows are *increments* keyed by the table's primary key: any split of the same
events into batches must add up to the same table (the rebuild test holds every view to it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class LoggedEvent(Protocol):
    """The fields of a recorded event a projection may read (infra's RecordedEvent has them)."""

    @property
    def type(self) -> str: ...

    @property
    def project_id(self) -> str: ...

    @property
    def data(self) -> str: ...

    @property
    def metadata(self) -> str: ...

    @property
    def recorded_at(self) -> datetime: ...


@dataclass(frozen=True)
class ViewProjection:
    """One view: its table (also its checkpoint name), its fold and its set-based upsert.

    `upsert_sql` has a `{table}` placeholder (a rebuild writes to a fresh table) and takes the
    rows as `$1`, a JSON array read with `jsonb_to_recordset`.
    """

    table: str
    rows: Callable[[Sequence[LoggedEvent]], Sequence[Any]]
    upsert_sql: str
