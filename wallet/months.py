"""Amounts per month: what a benefit pays for each month of its period, and as of which day.

The rule (docs/money.md, "Amounts per month"): each month is paid at the amount of the family
as it was in that month. A month that ended before the day the amount is decided (a backpay
month, e.g. the first months of a quarterly ASP assignment accepted late) is priced by the
programme's own rule evaluated on the month's last day (or the period's, if earlier): the
registry's facts as of that day and the parameters in force then (familymap.amounts). The
month of the decision and the months after it are paid at the amount decided that day: the
family as it is now is the best knowledge of those months.

A one-off benefit is one month (the month of its event) with the whole sum; a voucher has no
months (it is funded, not paid). The offer quotes these months, the assignment keeps them,
and each payment names its month and pays that month's amount (wallet.payments).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from familymap.amounts import AsOf, amounts_as_of

BENEFIT = "benefit"
# A benefit's days and months are Kazakhstan's (familymap.clock.local_day): a month falls due
# at midnight in Astana, not five hours later at midnight UTC.


def month_of(day: date) -> date:
    """The first day of the month of `day`."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after `month`."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def last_day(month: date) -> date:
    """The last day of the month of `month`."""
    return next_month(month_of(month)) - timedelta(days=1)


def months_between(start: date, end: date) -> list[date]:
    """The first days of the months from `start`'s to `end`'s, both included."""
    return list(_months_of(start, end))


# A campaign quotes hundreds of thousands of periods, but few distinct ones (a benefit's
# periods start on a handful of days): each period's months are counted once.
@lru_cache(maxsize=8192)
def _months_of(start: date, end: date) -> tuple[date, ...]:
    months, month, last = [], month_of(start), month_of(end)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return tuple(months)


# Plain named tuples rather than frozen dataclasses: a campaign makes a quote per offer and
# a dozen months per quote, and a frozen dataclass costs a Python call per field to build and
# to hash; a tuple costs neither.
class MonthAmount(NamedTuple):
    """One month of a benefit: what it pays and the day the family was taken as of."""

    month: date
    amount_tiyn: int
    as_of: date

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month.isoformat(),
            "amount_tiyn": self.amount_tiyn,
            "as_of": self.as_of.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MonthAmount:
        return cls(
            date.fromisoformat(data["month"]),
            int(data["amount_tiyn"]),
            date.fromisoformat(data["as_of"]),
        )


class Quote(NamedTuple):
    """A benefit as decided on `decided_on`: its amount then and its period."""

    programme: str
    kind: str
    family_id: int
    person_id: int | None
    amount_tiyn: int
    start: date | None
    end: date | None
    decided_on: date


def is_one_off(start: date | None, end: date | None) -> bool:
    """A benefit whose period is one day is paid once, for the month of that day."""
    return start is not None and start == end


async def month_amounts(
    *, connection: AsyncConnection, quotes: Sequence[Quote]
) -> list[tuple[MonthAmount, ...]]:
    """For each quote, the amount of every month of its period (see the module's rule)."""
    # Each quote's backpay months, found once (the question list and the schedules use them).
    backpays = [_backpay_months(quote) for quote in quotes]
    backpay = [
        AsOf(quote.programme, quote.family_id, quote.person_id, _as_of(month, quote))
        for quote, months in zip(quotes, backpays, strict=True)
        for month in months
    ]
    earlier = await amounts_as_of(connection=connection, questions=backpay) if backpay else {}
    schedules: list[tuple[MonthAmount, ...]] = []
    for quote, months in zip(quotes, backpays, strict=True):
        if quote.kind != BENEFIT or quote.start is None or quote.end is None:
            schedules.append(())
            continue
        if is_one_off(quote.start, quote.end):
            schedules.append((MonthAmount(month_of(quote.start), quote.amount_tiyn, quote.start),))
            continue
        # The months from the decision's on are paid at the amount decided: the same for
        # every quote of that period, amount and day, so built once (and shared as is by the
        # quotes without backpay, most of a campaign's).
        decided = _decided_months(quote.start, quote.end, quote.decided_on, quote.amount_tiyn)
        if not months:
            schedules.append(decided)
            continue
        paid_before = []
        for month in months:
            day = _as_of(month, quote)
            amount = earlier[AsOf(quote.programme, quote.family_id, quote.person_id, day)]
            paid_before.append(MonthAmount(month, amount, day))
        schedules.append((*paid_before, *decided))
    return schedules


def _backpay_months(quote: Quote) -> tuple[date, ...]:
    """The months of the quote's period that ended before the month it was decided in."""
    if quote.kind != BENEFIT or quote.start is None or quote.end is None:
        return ()
    if is_one_off(quote.start, quote.end):
        return ()
    return _months_before(quote.start, quote.end, month_of(quote.decided_on))


@lru_cache(maxsize=8192)
def _months_before(start: date, end: date, decided_month: date) -> tuple[date, ...]:
    return tuple(m for m in _months_of(start, end) if m < decided_month)


@lru_cache(maxsize=16384)
def _decided_months(
    start: date, end: date, decided_on: date, amount_tiyn: int
) -> tuple[MonthAmount, ...]:
    decided_month = month_of(decided_on)
    return tuple(
        MonthAmount(month, amount_tiyn, decided_on)
        for month in _months_of(start, end)
        if month >= decided_month
    )


def _as_of(month: date, quote: Quote) -> date:
    assert quote.end is not None
    return min(last_day(month), quote.end)


def to_json(schedule: Sequence[MonthAmount]) -> list[dict[str, Any]]:
    """A schedule as stored on offers and assignments."""
    return [m.to_json() for m in schedule]


@lru_cache(maxsize=16384)
def schedule_json(schedule: tuple[MonthAmount, ...]) -> str:
    """A schedule as the JSON text stored on offers (what `to_json` gives, serialised): a
    campaign's schedules repeat (one period, one amount), so each is written once."""
    return json.dumps(to_json(schedule))


def from_json(data: Sequence[dict[str, Any]] | None) -> list[MonthAmount]:
    """A stored schedule; empty for rows made before schedules were kept."""
    return [MonthAmount.from_json(m) for m in data or ()]


def amount_for(schedule: Sequence[MonthAmount], month: date, *, otherwise: int) -> int:
    """What `month` pays by the schedule; `otherwise` for a month the schedule does not list."""
    for entry in schedule:
        if entry.month == month:
            return entry.amount_tiyn
    return otherwise
