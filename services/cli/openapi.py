"""`taskstream openapi`: the OpenAPI document of every surface, as the gateway serves it.

`taskstream openapi --output openapi.yaml` regenerates the copy committed at the repository root
(tests/unit/test_openapi_file.py fails while the two differ).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.settings import Settings
from services.cli.flags import described
from services.gateway.app import gateway_document


def document_yaml() -> str:
    """The document as YAML, keys in the generator's order."""
    plain = json.loads(json.dumps(gateway_document()))
    return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, width=100))


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    text = document_yaml()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub: Any) -> None:
    """Register `openapi`."""
    openapi = sub.add_parser("openapi", help="print (or --output) the OpenAPI document as YAML")
    openapi.add_argument(
        "--output",
        help=described("write to this file (e.g. openapi.yaml)", default="standard output"),
    )
    openapi.set_defaults(run=cmd_openapi)
