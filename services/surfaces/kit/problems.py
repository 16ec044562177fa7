"""HttpProblem: an error answer before it takes a surface's own shape."""

from __future__ import annotations

from typing import Any

from domain.errors import DomainError, InvalidState, NotFound, ValidationError


class HttpProblem(Exception):
    """A 4xx/5xx answer with a machine code, a message and, where one is to blame, the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)
        self.headers = headers or {}


_STATUS = {ValidationError: 422, NotFound: 404, InvalidState: 409}


def from_domain(error: DomainError) -> HttpProblem:
    """The HTTP form of a domain refusal."""
    status = next((s for cls, s in _STATUS.items() if isinstance(error, cls)), 400)
    message = error.message
    if error.field and error.field not in message:
        message = f"{error.field}: {message}"
    return HttpProblem(status, error.code, message, field=error.field)
