"""School days and meal prices for the vouchers package, and the canteen's day.

The calendar and prices are defined once, in familymap.school_calendar, because the
school-meals eligibility rule prices the voucher with the same calendar and prices as the
funding does.

Days are Kazakhstan's (familymap.clock: Asia/Almaty): a canteen's "today" is the school's local day, whatever
the server's clock says. A meal taken by QR code is for the day the code was issued; one
picked from the list (or sent offline) may be claimed on its day or up to
`school_meals.claim_window_school_days` school days later, and is then a late claim.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from familymap.clock import KAZAKHSTAN, local_day
from familymap.parameters import ParameterError, ParameterSet, default_parameters
from familymap.school_calendar import (
    MONDAY_TO_FRIDAY,
    SchoolYear,
    is_school_day,
    meal_price,
    meal_types,
    meal_voucher_amount,
    school_year,
)

__all__ = [
    "KAZAKHSTAN",
    "MONDAY_TO_FRIDAY",
    "SchoolYear",
    "claim_window",
    "is_school_day",
    "local_day",
    "meal_price",
    "meal_types",
    "meal_voucher_amount",
    "school_days_after",
    "school_year",
]

# A claim further back than this is closed whatever the calendar says (and the walk stops).
_LONGEST_WALK = timedelta(days=400)


def school_days_after(day: date, *, through: date, parameters: ParameterSet | None = None) -> int:
    """How many school days fall after `day`, up to and including `through` (a day more than
    a year later counts as too many to claim: the window is a few days)."""
    if parameters is None:
        return _school_days_after_in_force(day, through)
    return _count_school_days_after(day, through, parameters)


@lru_cache(maxsize=4096)
def _school_days_after_in_force(day: date, through: date) -> int:
    # Every list meal and batch item asks this of the same few days; the parameters in
    # force do not change while the process runs.
    return _count_school_days_after(day, through, None)


def _count_school_days_after(day: date, through: date, parameters: ParameterSet | None) -> int:
    if through - day > _LONGEST_WALK:
        return 10**6
    count = 0
    current = day + timedelta(days=1)
    while current <= through:
        count += is_school_day(current, parameters=parameters)
        current += timedelta(days=1)
    return count


def claim_window(on: date, *, parameters: ParameterSet | None = None) -> int:
    """How many school days after a meal's day it may still be claimed from the list."""
    ps = parameters or default_parameters()
    days = ps.get("school_meals.claim_window_school_days", on)
    if not isinstance(days, int | float):
        raise ParameterError("PARAMETER_INVALID", "claim_window_school_days must be a number")
    return int(days)
