"""Puts a child process of the test suite on the suite's pinned timeline (tests/clock.py).

Python imports `sitecustomize` at start-up from the path; tests/clock.py's `pinned_env`
puts this folder first on PYTHONPATH and names the instant the child starts at.
"""

import os

_now = os.environ.get("SOCIALWALLET_TEST_CHILD_NOW")
if _now:
    import time_machine

    time_machine.travel(_now, tick=True).start()
