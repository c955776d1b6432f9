"""How much the state spent on a family: read from the ledger, so it always adds up.

Every transfer that spends value on a family names it (`ledger_transfers.family_id`, and
`person_id` for the member): cash benefits paid out, meals served, medicines dispensed. The
category comes from the account the value went to:

    credit account kind bank_payout                 -> CASH_BENEFITS
    credit account kind merchant, school_meals      -> SCHOOL_MEALS
    credit account kind merchant, medicines         -> MEDICINES
    credit account kind merchant, another purpose   -> OTHER_IN_KIND

A reversal (`reverses_transfer_id` set, family and member copied from the original) moves
the value back, so its credit account is the original's debit account; it is classified by
the account it takes value *from* (its debit, the original's credit) and subtracts. Transfers
into a family's own purpose wallet (VOUCHER_FUNDING) are not spending yet: value is spent
when a merchant serves the child, so only flows to a payout or a merchant count.

Every total (by category, by member, by month) is a sum over the same signed lines, which is
why the four always agree. Periods are calendar years or months in UTC, the server's time:
a transfer posted at 23:30 in Astana on the 31st (18:30 UTC) counts in that month, one
posted at 00:30 Astana time on the 1st counts in the month before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from wallet.offer_tables import Payment as PaymentOrder
from wallet.tables import LedgerAccount, LedgerTransfer

CASH_BENEFITS, SCHOOL_MEALS, MEDICINES, OTHER_IN_KIND = (
    "CASH_BENEFITS",
    "SCHOOL_MEALS",
    "MEDICINES",
    "OTHER_IN_KIND",
)
CATEGORIES = (CASH_BENEFITS, SCHOOL_MEALS, MEDICINES, OTHER_IN_KIND)
# Reason codes that count as one service rendered (net of their reversals).
SERVICE_REASONS = ("MEAL_SERVED", "MEDICINE_DISPENSED")
BENEFIT_PAYMENT = "BENEFIT_PAYMENT"
_SPENDING_KINDS = ("bank_payout", "merchant")


@dataclass(frozen=True, slots=True)
class SpendingLine:
    """One transfer as spending: signed amount (a reversal is negative), where and on whom."""

    family_id: int
    person_id: int | None
    created_at: datetime
    category: str
    amount_tiyn: int
    reason: str  # the original's reason for a reversal, so services net out
    sign: int  # +1 posted, -1 reversed


@dataclass(frozen=True, slots=True)
class Total:
    """A total of spending under one key (a category, a member id or a month)."""

    key: str | int | None
    amount_tiyn: int


@dataclass(frozen=True, slots=True)
class Spending:
    """State spending on one family in one period, with its breakdowns and service counts."""

    family_id: int
    year: int
    month: int | None
    total_tiyn: int
    by_category: tuple[Total, ...]  # every category, zero included, in CATEGORIES order
    by_member: tuple[Total, ...]  # person id, None for spending not on one member
    by_month: tuple[Total, ...]  # month number 1..12, only months with transfers
    services: tuple[Total, ...]  # reason code -> net count, every SERVICE_REASONS entry


def period_bounds(*, year: int, month: int | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a calendar year or month in UTC."""
    if month is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    if not 1 <= month <= 12:
        raise ValueError("month must be within 1..12")
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if month == 12
        else datetime(year, month + 1, 1, tzinfo=UTC)
    )
    return datetime(year, month, 1, tzinfo=UTC), end


def category_of(*, kind: str, purpose: str | None) -> str | None:
    """The spending category of value arriving on an account of `kind`; None if not spending."""
    if kind == "bank_payout":
        return CASH_BENEFITS
    if kind == "merchant":
        if purpose == "school_meals":
            return SCHOOL_MEALS
        if purpose == "medicines":
            return MEDICINES
        return OTHER_IN_KIND
    return None


# Statements are built once: building a SELECT with aliases costs more than running it.
_credit, _debit = aliased(LedgerAccount), aliased(LedgerAccount)
_original = aliased(LedgerTransfer)
_SPENDING_LINES = (
    select(
        LedgerTransfer.family_id,
        LedgerTransfer.person_id,
        LedgerTransfer.created_at,
        LedgerTransfer.amount,
        LedgerTransfer.reason,
        LedgerTransfer.reverses_transfer_id,
        _credit.kind,
        _credit.purpose,
        _debit.kind,
        _debit.purpose,
        _original.reason,
    )
    .join(_credit, _credit.id == LedgerTransfer.credit_account_id)
    .join(_debit, _debit.id == LedgerTransfer.debit_account_id)
    .outerjoin(_original, _original.id == LedgerTransfer.reverses_transfer_id)
    .where(
        LedgerTransfer.family_id.in_(bindparam("family_ids", expanding=True)),
        LedgerTransfer.created_at >= bindparam("start"),
        LedgerTransfer.created_at < bindparam("end"),
    )
    .order_by(LedgerTransfer.family_id, LedgerTransfer.created_at, LedgerTransfer.id)
)


async def spending_lines(
    *, session: AsyncSession, family_ids: Sequence[int], start: datetime, end: datetime
) -> list[SpendingLine]:
    """Every spending line of the given families in [start, end), in one statement."""
    rows = await session.execute(
        _SPENDING_LINES,
        {"family_ids": list(family_ids), "start": start, "end": end},
    )
    lines = []
    for family, person, at, amount, reason, reverses, ck, cp, dk, dp, original_reason in rows:
        reversal = reverses is not None
        # A reversal's debit is the original's credit: the account the value comes back from.
        category = (
            category_of(kind=dk, purpose=dp) if reversal else category_of(kind=ck, purpose=cp)
        )
        if category is None:
            continue
        sign = -1 if reversal else 1
        assert family is not None  # the statement selects transfers by family
        lines.append(
            SpendingLine(
                family, person, at, category, sign * amount, original_reason or reason, sign
            )
        )
    return lines


def summarise(
    *, family_id: int, year: int, month: int | None, lines: Iterable[SpendingLine]
) -> Spending:
    """Totals of one family's lines by category, member and month, and service counts."""
    by_category = dict.fromkeys(CATEGORIES, 0)
    by_member: dict[int | None, int] = {}
    by_month: dict[int, int] = {}
    services = dict.fromkeys(SERVICE_REASONS, 0)
    total = 0
    for line in lines:
        total += line.amount_tiyn
        by_category[line.category] += line.amount_tiyn
        by_member[line.person_id] = by_member.get(line.person_id, 0) + line.amount_tiyn
        by_month[line.created_at.month] = by_month.get(line.created_at.month, 0) + line.amount_tiyn
        if line.reason in services:
            services[line.reason] += line.sign
    return Spending(
        family_id=family_id,
        year=year,
        month=month,
        total_tiyn=total,
        by_category=tuple(Total(k, v) for k, v in by_category.items()),
        # Members in id order, spending on no one member (None) last.
        by_member=tuple(
            Total(k, by_member[k]) for k in sorted(by_member, key=lambda k: (k is None, k or 0))
        ),
        by_month=tuple(Total(k, v) for k, v in sorted(by_month.items())),
        services=tuple(Total(k, v) for k, v in services.items()),
    )


async def family_spending(
    *, session: AsyncSession, family_id: int, year: int, month: int | None = None
) -> Spending:
    """State spending on one family in a calendar year or month (UTC)."""
    start, end = period_bounds(year=year, month=month)
    lines = await spending_lines(session=session, family_ids=[family_id], start=start, end=end)
    return summarise(family_id=family_id, year=year, month=month, lines=lines)


@dataclass(frozen=True, slots=True)
class Payment:
    """A cash benefit paid to a family member (a BENEFIT_PAYMENT transfer).

    `paid_at` is when the money left the programme (the order); whether it arrived is the
    bank's word: `status` (ordered, sent, paid, returned, failed) and `confirmed_at`, when
    the bank's statement booked it paid or returned.
    """

    transfer_id: str
    family_id: int
    person_id: int | None
    programme: str | None  # from the debited programme account's code
    amount_tiyn: int
    paid_at: datetime
    reversed: bool
    for_month: date | None = None  # the month the payment covers (wallet.payments)
    status: str | None = None
    confirmed_at: datetime | None = None


_reversal = aliased(LedgerTransfer)
_PAYMENTS = (
    select(
        LedgerTransfer.transfer_id,
        LedgerTransfer.family_id,
        LedgerTransfer.person_id,
        _debit.code,
        LedgerTransfer.amount,
        LedgerTransfer.created_at,
        _reversal.id,
        # The month the payment covers, as the payment's own ledger transfer records it.
        LedgerTransfer.details["for_month"].as_string(),
        PaymentOrder.state,
        PaymentOrder.settled_at,
    )
    .join(_debit, _debit.id == LedgerTransfer.debit_account_id)
    .outerjoin(_reversal, _reversal.reverses_transfer_id == LedgerTransfer.id)
    .outerjoin(PaymentOrder, PaymentOrder.transfer_id == LedgerTransfer.transfer_id)
    .where(
        LedgerTransfer.family_id.in_(bindparam("family_ids", expanding=True)),
        LedgerTransfer.reason == BENEFIT_PAYMENT,
    )
    .order_by(LedgerTransfer.created_at.desc(), LedgerTransfer.id.desc())
)


async def family_payments(*, session: AsyncSession, family_ids: Sequence[int]) -> list[Payment]:
    """Benefit payments of the given families, newest first, in one statement."""
    rows = await session.execute(_PAYMENTS, {"family_ids": list(family_ids)})
    return [
        Payment(
            transfer_id=tid,
            family_id=family,
            person_id=person,
            programme=code.removeprefix("programme:") if code.startswith("programme:") else None,
            amount_tiyn=amount,
            paid_at=at,
            reversed=reversed_by is not None,
            for_month=date.fromisoformat(f"{for_month}-01") if for_month else None,
            status=state,
            # Only the bank's statement confirms; a refused order (failed) never arrived.
            confirmed_at=settled_at if state in ("paid", "returned") else None,
        )
        for tid, family, person, code, amount, at, reversed_by, for_month, state, settled_at in rows
    ]


def for_caller(*, spending: Spending, visible_person_ids: frozenset[int]) -> Spending:
    """The spending view with members the caller may not see one by one merged into the
    'not on one member' line (person None), so the breakdown still adds up to the total."""
    merged: dict[int | None, int] = {}
    for line in spending.by_member:
        key = line.key if line.key in visible_person_ids else None
        merged[key] = merged.get(key, 0) + line.amount_tiyn
    by_member = tuple(
        Total(k, merged[k]) for k in sorted(merged, key=lambda k: (k is None, k or 0))
    )
    return Spending(
        spending.family_id, spending.year, spending.month, spending.total_tiyn,
        spending.by_category, by_member, spending.by_month, spending.services,
    )  # fmt: skip
