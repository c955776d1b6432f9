"""Calendar arithmetic shared by the scalar and the vectorised paths.

Dates live in the columns as int32 day numbers (days since 1970-01-01), so an age test is one
integer comparison. "Has reached N months of age on day D" is decided once per evaluation date
as a scalar cutoff birth date (`reached_cutoff`), and then `birth <= cutoff` over the whole
column: no per-person calendar work.

Month arithmetic clamps to the end of the month (31 Aug + 6 months = 28/29 Feb); a person born
on 29 February reaches a full year on 28 February (our model). `add_months` and
`add_months_days` implement the same rule, and `reached_cutoff` is derived from `add_months`,
so an age condition and the period end computed from the birth date always agree.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Sentinels for a missing date in an int32 day column: "never happened" sorts before every real
# day, "not dead" after every real day, so plain comparisons give the right answer without masks.
NO_DATE = int(np.iinfo(np.int32).min)
NEVER = int(np.iinfo(np.int32).max)


def to_day(d: date) -> int:
    """Day number of a date (days since 1970-01-01)."""
    return d.toordinal() - EPOCH_ORDINAL


def from_day(day: int) -> date | None:
    """The date of a day number; None for a sentinel."""
    if day in (NO_DATE, NEVER):
        return None
    return date.fromordinal(int(day) + EPOCH_ORDINAL)


def add_months(d: date, months: int) -> date:
    """`d` moved by whole months, clamped to the last day of the target month."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@lru_cache(maxsize=4096)
def reached_cutoff(on: date, months: int) -> int:
    """Latest birth day number of a person who has reached `months` months of age on `on`.

    `add_months(b, months) <= on` is monotone in b, so the set of such births is everything up
    to one cutoff; start from `on - months` and step over the (at most three) month-end days
    that clamping folds onto the same anniversary.
    """
    b = add_months(on, -months)
    while add_months(b + timedelta(days=1), months) <= on:
        b += timedelta(days=1)
    return to_day(b)


# Below this many elements the vectorised path is mostly numpy call overhead (~17 us for a
# handful of days), so small inputs go through the scalar `add_months` instead, memoised per
# (day, months). Same rule, same answer (a test compares both paths on the same inputs).
SMALL = 16


def add_months_days(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Vectorised `add_months` over int32 day numbers; returns int32 day numbers."""
    days = np.asarray(days)
    if days.ndim == 1 and len(days) <= SMALL:
        try:
            if isinstance(months, np.ndarray):
                pairs = zip(
                    days.tolist(), np.broadcast_to(months, days.shape).tolist(), strict=True
                )
                return np.array([_add_months_day(d, m) for d, m in pairs], dtype=np.int32)
            months = int(months)
            return np.array([_add_months_day(d, months) for d in days.tolist()], dtype=np.int32)
        except (ValueError, OverflowError):
            pass  # outside the calendar of `date` (a sentinel): the vectorised path decides
    return add_months_days_vectorised(days, months)


@lru_cache(maxsize=65536)
def _add_months_day(day: int, months: int) -> int:
    return to_day(add_months(date.fromordinal(day + EPOCH_ORDINAL), months))


def add_months_days_vectorised(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """`add_months_days` with numpy datetime64 arithmetic, whatever the size of the input."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day_of_month = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    month_length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    result = target.astype("datetime64[D]") + np.minimum(day_of_month, month_length - 1)
    day_numbers: np.ndarray = result.astype(np.int64).astype(np.int32)
    return day_numbers


def month_start(on: date) -> date:
    """First day of the month of `on`."""
    return on.replace(day=1)


def month_end(on: date) -> date:
    """Last day of the month of `on`."""
    return on.replace(day=calendar.monthrange(on.year, on.month)[1])


def quarter_bounds(on: date) -> tuple[date, date]:
    """First and last day of the calendar quarter of `on`."""
    first_month = 3 * ((on.month - 1) // 3) + 1
    start = date(on.year, first_month, 1)
    return start, month_end(add_months(start, 2))


def school_year_bounds(on: date) -> tuple[date, date]:
    """1 September .. 31 May of the school year in force on `on` (summer points to the next one)."""
    year = on.year if on.month >= 6 else on.year - 1
    return date(year, 9, 1), date(year + 1, 5, 31)
