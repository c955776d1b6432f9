"""Puts a child process of the test suite on the suite's pinned timeline (tests/clock.py).

Python imports `sitecustomize` at start-up from the path; tests/clock.py's `pinned_env`
puts this folder first on PYTHONPATH and names a point of the test's timeline with the real
time it was taken at; the child starts as far along the timeline as real time has moved
since, so it is where the test's clock is whenever it starts.
"""

import os

_now = os.environ.get("SOCIALWALLET_TEST_CHILD_NOW")
if _now:
    import time
    from datetime import datetime, timedelta

    import time_machine

    _instant, _, _real_epoch = _now.partition("@")
    _elapsed = time.time() - float(_real_epoch) if _real_epoch else 0.0
    time_machine.travel(
        datetime.fromisoformat(_instant) + timedelta(seconds=_elapsed), tick=True
    ).start()
