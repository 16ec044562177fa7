"""Progress bars with an ETA on stderr for the long commands (rich; hidden when not a TTY)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

T = TypeVar("T")


Update = Callable[[int, int | None], None]


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Update]:
    """A bar for `total` steps; the block calls what it gets with (steps done, new total or
    None)."""
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "ETA",
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        bar = progress.add_task(label, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            if new_total is not None:
                progress.update(bar, total=new_total)
            progress.update(bar, completed=done)

        yield update


def with_progress(items: Sequence[T], label: str) -> Iterable[T]:
    """`items`, one by one, under a progress bar."""
    with progress_bar(label, len(items)) as done:
        for n, item in enumerate(items, 1):
            yield item
            done(n, None)
