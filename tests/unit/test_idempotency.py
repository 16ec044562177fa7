"""Idempotency-Key rules (domain/idempotency.py)."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from domain.idempotency import HEADER, check_key, check_repeat


@pytest.mark.parametrize("key", ["a", "idem_0f3c", "x" * 255, "~!key-with:punctuation"])
def test_visible_ascii_keys_up_to_255_characters_are_accepted(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "naïve", "line\n"])
def test_other_keys_are_refused_naming_the_header(key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_key(key)
    assert refused.value.field == HEADER


def test_a_repeat_must_carry_the_same_body() -> None:
    check_repeat(b"digest", b"digest")
    with pytest.raises(ValidationError, match="different request body") as refused:
        check_repeat(b"digest", b"other")
    assert refused.value.field == HEADER
