"""School days, meal prices and what a school-meals voucher is worth, from the dated
parameters (laws as data).

A school day is Monday..Friday inside the school year in force on that day, outside its
vacations and holidays (`school_calendar.year`). A meal's price is the regional meal price
(`school_meals.meal_price_tiyn`, priced at the start of the school year) times the meal
type's share (`school_meals.meal_type_share_pct`). A voucher is worth its school year's
school days times the meals it covers at the region's prices (`meal_voucher_amount`): the
eligibility rule (familymap.rules.vouchers) offers that amount and the vouchers package funds
it, from this one computation, so the offer and the funded voucher cannot disagree.

It lives in the family map, not in the vouchers package, because the rule needs it and the
family map imports no other package of ours; vouchers.calendar re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, cast

from familymap.parameters import ParameterError, ParameterSet, default_parameters

MONDAY_TO_FRIDAY = range(5)


@dataclass(frozen=True, slots=True)
class SchoolYear:
    """One school year's bounds and its days off."""

    start: date
    end: date
    days_off: frozenset[date]

    def is_school_day(self, day: date) -> bool:
        """Whether pupils eat at school on `day`."""
        return (
            self.start <= day <= self.end
            and day.weekday() in MONDAY_TO_FRIDAY
            and day not in self.days_off
        )

    def school_days(self) -> int:
        """How many school days the year has."""
        days = (self.end - self.start).days + 1
        return sum(self.is_school_day(self.start + timedelta(n)) for n in range(days))


def school_year(on: date, *, parameters: ParameterSet | None = None) -> SchoolYear | None:
    """The school year whose calendar is in force on `on`, or None if no calendar covers it."""
    if parameters is None:
        return _school_year_by_default(on)
    return _school_year_in(on, parameters)


@lru_cache(maxsize=1024)
def _school_year_by_default(on: date) -> SchoolYear | None:
    # The default parameters are read once per process; a canteen asks about the same few
    # days all day long.
    return _school_year_in(on, default_parameters())


def _school_year_in(on: date, ps: ParameterSet) -> SchoolYear | None:
    try:
        # The calendar parameter is a mapping (start, end, holidays, vacations) by its schema.
        raw = cast(Mapping[str, Any], ps.get("school_calendar.year", on))
    except ParameterError:
        return None
    return _school_year(raw["start"], raw["end"], _days_off(raw))


def _days_off(raw: Mapping[str, Any]) -> frozenset[date]:
    days = set(raw.get("holidays", []))
    for first, last in raw.get("vacations", []):
        days.update(first + timedelta(n) for n in range((last - first).days + 1))
    return frozenset(days)


@lru_cache(maxsize=16)
def _school_year(start: date, end: date, days_off: frozenset[date]) -> SchoolYear:
    return SchoolYear(start, end, days_off)


def is_school_day(day: date, *, parameters: ParameterSet | None = None) -> bool:
    """Whether `day` is a school day by the calendar in force."""
    year = school_year(day, parameters=parameters)
    return year is not None and year.is_school_day(day)


def meal_price(
    *, region: str, meal_type: str, school_year_start: date, parameters: ParameterSet | None = None
) -> int:
    """The price in tiyn of one meal of `meal_type` in `region` in the school year."""
    ps = parameters or default_parameters()
    # Both parameters are mappings by region and by meal type.
    prices = cast(Mapping[str, int], ps.get("school_meals.meal_price_tiyn", school_year_start))
    shares = cast(Mapping[str, int], ps.get("school_meals.meal_type_share_pct", school_year_start))
    regional = int(prices[region])
    share = int(shares[meal_type])
    # Integer tiyn: round half up on the share, never a float amount.
    return (regional * share + 50) // 100


def meal_types(*, on: date, parameters: ParameterSet | None = None) -> tuple[str, ...]:
    """The meal types a voucher pays for."""
    ps = parameters or default_parameters()
    return tuple(sorted(cast(Mapping[str, int], ps.get("school_meals.meal_type_share_pct", on))))


def meal_voucher_amount(
    *, region: str, on: date, parameters: ParameterSet | None = None
) -> int | None:
    """A pupil's school-meals voucher in tiyn for the school year whose calendar covers `on`:
    its school days x the meals the voucher covers at the region's prices; None when no
    published calendar covers `on`."""
    year = school_year(on, parameters=parameters)
    if year is None:
        return None
    per_day = sum(
        meal_price(
            region=region, meal_type=kind, school_year_start=year.start, parameters=parameters
        )
        for kind in meal_types(on=year.start, parameters=parameters)
    )
    return per_day * year.school_days()
