"""Every flag of every `taskstream` command says its default and its environment variable."""

from __future__ import annotations

import argparse
import re

from infra.settings import Settings
from services.cli import parser

STATED = re.compile(r"\(default: [^;]+; (env: TASKSTREAM_[A-Z_]+|no env variable)\)$")


Commands = list[tuple[str, argparse.ArgumentParser]]


def _commands(p: argparse.ArgumentParser, path: str = "taskstream") -> Commands:
    found = [(path, p)]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{path} {name}")
    return found


def test_every_flag_states_its_default_and_env_variable() -> None:
    unstated = []
    for path, command in _commands(parser()):
        for action in command._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            text = " ".join((action.help or "").split())
            if not STATED.search(text):
                unstated.append(f"{path} {action.option_strings[0]}: {text!r}")
    assert unstated == []


def test_the_env_variables_named_are_real_settings() -> None:
    known = {f"TASKSTREAM_{name.upper()}" for name in Settings.__struct_fields__}
    known |= {"TASKSTREAM_URL", "TASKSTREAM_API_KEY"}  # read by the client commands themselves
    named = set()
    for _, command in _commands(parser()):
        for action in command._actions:
            named |= set(re.findall(r"env: (TASKSTREAM_[A-Z_]+)", action.help or ""))
    assert named and named <= known, named - known
