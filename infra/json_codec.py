"""The one JSON codec: msgspec, for API bodies, events in the log, and view state."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from domain.events import TaskEvent
from domain.task import TaskState

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(TaskEvent)
_state_decoder = msgspec.json.Decoder(TaskState)


def encode(obj: Any) -> bytes:
    """Serialise any msgspec-supported value to JSON bytes."""
    return _encoder.encode(obj)


def decode(data: bytes | str, type: type[T]) -> T:
    """Parse JSON into `type`; raises msgspec.ValidationError / DecodeError."""
    return msgspec.json.decode(data, type=type)


def decode_event(data: bytes | str) -> TaskEvent:
    """Parse an event's `data` column back into its struct."""
    return _event_decoder.decode(data)


def decode_state(data: bytes | str) -> TaskState:
    """Parse a view's `state` column back into a TaskState."""
    return _state_decoder.decode(data)
