"""Bounds of every list's paging parameters, as types: the query decoder enforces them and
the OpenAPI document states them.

Offsets stop at a million: past that a list is a scan no client should page through (filter
instead), and an unbounded page * limit overflowed PostgreSQL's bigint into a 500.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_OFFSET = 1_000_000
MAX_PAGE = 10_000

PageNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE, description="1-based page number")]
Offset = Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET, description="items to skip")]
