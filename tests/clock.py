"""The tests' one clock: every test runs at a pinned instant, never at the real date.

Tests once read the real calendar to decide what they expected (a pension date "40 days
after the 1st of this month" failed on days 1-10 of every month). Now the whole test
process runs on a timeline that starts at PINNED_NOW and ticks from there (time-machine
moves `datetime.now`, `date.today` and `time.time`; the event loop's monotonic clock is
untouched), and every child process a test starts (servers, the CLI) joins the same
timeline through `pinned_env`.

PINNED_NOW is a Wednesday in term time, 09:30 in Astana, away from month ends and holidays:
the school day the voucher tests serve meals on (tests/vouchers/vouchers_builders.py).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

PINNED_NOW = datetime(2026, 11, 18, 4, 30, tzinfo=UTC)
PINNED_TODAY = PINNED_NOW.date()

# Read by tests/clock_pin/sitecustomize.py in a child process.
CHILD_NOW_VARIABLE = "SOCIALWALLET_TEST_CHILD_NOW"
_SITECUSTOMIZE_DIR = Path(__file__).resolve().parent / "clock_pin"


def pinned_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process that starts at the test's current (pinned) instant."""
    path = [str(_SITECUSTOMIZE_DIR), *filter(None, [env.get("PYTHONPATH")])]
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(path),
        CHILD_NOW_VARIABLE: datetime.now(UTC).isoformat(),
    }
