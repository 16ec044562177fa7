"""Run one baseline alone through the burst harness (`scripts/bench/burst.py`), once.

Used by `python scripts/bench/baseline_<system>.py [--n 2000] [burst.py options]`: a scratch
database on TASKSTREAM_DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432/
postgres), the loopback receiver, and the harness's own figures (drain time, callbacks/s,
lateness p50/p95/p99).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# A Redis db of its own, so a self-check never flushes the one the harness's default run uses.
SELF_CHECK_REDIS = "redis://127.0.0.1:6379/7"


def self_check(system: str) -> int:
    """Run the harness on `system` alone; later command-line options override these defaults."""
    from scripts.bench import burst

    defaults = ["--n", "2000", "--lead", "15", "--runs", "1", "--redis", SELF_CHECK_REDIS]
    sys.argv = [sys.argv[0], *defaults, *sys.argv[1:], "--systems", system]
    return burst.main()
