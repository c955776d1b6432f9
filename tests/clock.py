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
import time
from datetime import UTC, datetime
from pathlib import Path

import time_machine

PINNED_NOW = datetime(2026, 11, 18, 4, 30, tzinfo=UTC)
PINNED_TODAY = PINNED_NOW.date()

# Read by tests/clock_pin/sitecustomize.py in a child process: "<pinned instant>@<real epoch>",
# a point of the test's timeline and the real time it was taken at.
CHILD_NOW_VARIABLE = "SOCIALWALLET_TEST_CHILD_NOW"
_SITECUSTOMIZE_DIR = Path(__file__).resolve().parent / "clock_pin"


def pinned_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process that runs on the test's (pinned) timeline.

    The variable names a point of the timeline and the real time it was taken at, so a child
    started from this env at any later moment (a server restarted after a kill, a worker that
    joins late) lands where the test's clock then is, not where it was when the env was made:
    a restarted server once started minutes in the test's past and refused the test's tokens
    as not yet valid.
    """
    path = [str(_SITECUSTOMIZE_DIR), *filter(None, [env.get("PYTHONPATH")])]
    # The pin's own mechanism, not a test's expectation: `datetime.now` here is the pinned
    # timeline (time-machine runs in this process), and the machine's clock only anchors it,
    # so a child can tell how far the timeline has moved when it starts.
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
        CHILD_NOW_VARIABLE: f"{datetime.now(UTC).isoformat()}@{_real_time()!r}",
    }


def _real_time() -> float:
    """The machine's clock, whatever time-machine has done to `time.time`: the anchor of the
    pinned timeline (never what a test expects; tests read PINNED_NOW or the pinned clock)."""
    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.time.time()
    return time.time()
