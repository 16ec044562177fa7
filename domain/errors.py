"""Errors the domain raises; adapters translate them into each surface's error shape."""


class DomainError(Exception):
    """A command that the domain refuses."""

    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DomainError):
    """Input that can never be valid, naming the field (a dotted path such as 'schedule.expr')."""

    code = "validation_error"


class NotFound(DomainError):
    """The thing a command names does not exist (or is not visible to the caller)."""

    code = "not_found"


class InvalidState(DomainError):
    """A command that is well-formed but conflicts with the current state."""

    code = "invalid_state"
