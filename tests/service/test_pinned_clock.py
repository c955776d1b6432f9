"""The suite's pinned clock (tests/clock.py) holds in the test process and in its children."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tests.clock import PINNED_NOW, pinned_env

CHILD_NOW = "from datetime import datetime, UTC; print(datetime.now(UTC).isoformat())"


def _child_now(env: dict[str, str]) -> datetime:
    output = subprocess.run(  # noqa: S603 (this interpreter, a fixed one-liner)
        [sys.executable, "-c", CHILD_NOW], env=env, capture_output=True, text=True, check=True
    )
    return datetime.fromisoformat(output.stdout.strip())


def test_the_test_process_runs_on_the_pinned_day():
    assert PINNED_NOW <= datetime.now(UTC) < PINNED_NOW + timedelta(days=1)


def test_a_child_started_later_from_an_old_env_is_where_the_test_clock_is_now():
    # Given an env made now, and the test's clock moving on before the child starts
    env = pinned_env({"PATH": "/usr/bin:/bin"})
    time.sleep(1.5)
    before_the_child = datetime.now(UTC)
    # When a child starts from that env (as a server restarted after a kill does)
    child_now = _child_now(env)
    # Then its clock is not behind the test's (it once restarted at the env's instant, 1.5 s
    # back, and refused the test's fresh tokens as issued in its future)
    assert before_the_child <= child_now < before_the_child + timedelta(minutes=1)
    assert child_now.date() == PINNED_NOW.date()
