"""Settings come from TASKSTREAM_* variables, typed, with errors that name the variable."""

from __future__ import annotations

import pytest

from infra.settings import Settings, load_settings


def test_defaults_without_environment() -> None:
    assert load_settings({}) == Settings()


def test_values_are_typed() -> None:
    s = load_settings(
        {
            "TASKSTREAM_PORT": "9000",
            "TASKSTREAM_ALLOW_COMMANDS": "true",
            "TASKSTREAM_AUTH_CACHE_SECONDS": "0.5",
            "TASKSTREAM_DATABASE_URL": "postgresql://x@h/db",
            "OTHER_PORT": "1",
        }
    )
    assert (s.port, s.allow_commands, s.auth_cache_seconds) == (9000, True, 0.5)
    assert s.database_url == "postgresql://x@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [("TASKSTREAM_PORT", "eighty"), ("TASKSTREAM_ALLOW_COMMANDS", "maybe")],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({name: value})
