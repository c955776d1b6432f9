"""The one clock: which instant, and which day, the code means.

- `utc_now()`: the instant, in UTC. Stored times, expiries, audit records, offers.
- `astana_today()` / `local_day(moment)`: the calendar day in Kazakhstan (Asia/Almaty, UTC+5
  for the whole country since March 2024). A day the law or a citizen counts in is
  Kazakhstan's, never the server's UTC date: at 00:30 in Astana it is already tomorrow, while
  UTC still says today. So a school's meal day, a medicine catalogue in force, "not later
  than today" for a registry fact, and the family's entitlements as of today are Astana's.

Tests pin this clock (tests/clock.py moves `datetime.now` with time-machine); code reads the
time only through these functions, so a reader sees which of the two is meant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

KAZAKHSTAN = ZoneInfo("Asia/Almaty")


def utc_now() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


def local_day(moment: datetime) -> date:
    """The day in Kazakhstan at `moment` (a naive moment is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(KAZAKHSTAN).date()


def astana_today() -> date:
    """Today in Kazakhstan."""
    return local_day(utc_now())
