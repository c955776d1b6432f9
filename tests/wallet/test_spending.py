"""The spending view: read from the ledger, it adds up every way, reversals included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.wallet.wallet_builders import (
    add_family,
    fund_wallet,
    household,
    open_books,
    pay_benefit,
    spend,
)
from wallet import ledger
from wallet.spending import (
    CATEGORIES,
    SpendingLine,
    family_payments,
    family_spending,
    for_caller,
    period_bounds,
    summarise,
)
from wallet.tables import LedgerTransfer

NOW = datetime.now(UTC)


def assert_adds_up(view) -> None:
    total = view.total_tiyn
    assert sum(t.amount_tiyn for t in view.by_category) == total
    assert sum(t.amount_tiyn for t in view.by_member) == total
    assert sum(t.amount_tiyn for t in view.by_month) == total


@pytest.fixture
async def family_with_spending(session):
    """Parents and two pupils: ASP paid to the head twice (one reversed), three meals for
    the first child (one reversed), medicines for the mother, a technical aid for the second
    child, and a voucher funding that is not spending yet."""
    await open_books(session)
    family, (head, mother, first, second) = await add_family(session, household(2))
    await pay_benefit(session, tid="asp-1", person=head, amount=5_000_000)
    await pay_benefit(session, tid="asp-2", person=head, amount=5_000_000)
    await ledger.reverse(session=session, transfer_id="asp-2-rev", original_transfer_id="asp-2")
    await fund_wallet(
        session, tid="fund-meals", person=first, purpose="school_meals", amount=500_000
    )
    for n in range(3):
        await spend(session, tid=f"meal-{n}", person=first, purpose="school_meals",
                    amount=98_000, reason="MEAL_SERVED")  # fmt: skip
    await ledger.reverse(session=session, transfer_id="meal-2-rev", original_transfer_id="meal-2")
    await fund_wallet(session, tid="fund-med", person=mother, purpose="medicines", amount=900_000)
    await spend(session, tid="med-1", person=mother, purpose="medicines", amount=450_000,
                reason="MEDICINE_DISPENSED")  # fmt: skip
    await fund_wallet(
        session, tid="fund-aid", person=second, purpose="technical_aids", amount=70_000
    )
    await spend(session, tid="aid-1", person=second, purpose="technical_aids", amount=70_000,
                reason="AID_DELIVERED")  # fmt: skip
    await session.flush()
    return family, head, mother, first, second


async def test_spending_adds_up_by_category_member_and_month_with_reversals(
    session, family_with_spending
):
    # given a family with payments, meals and medicines, some reversed
    family, head, mother, first, second = family_with_spending

    # when its spending this year is read
    view = await family_spending(session=session, family_id=family.id, year=NOW.year)

    # then reversals subtract and every breakdown sums to the total
    assert view.total_tiyn == 5_000_000 + 2 * 98_000 + 450_000 + 70_000
    assert {t.key: t.amount_tiyn for t in view.by_category} == {
        "CASH_BENEFITS": 5_000_000, "SCHOOL_MEALS": 196_000,
        "MEDICINES": 450_000, "OTHER_IN_KIND": 70_000,
    }  # fmt: skip
    assert {t.key: t.amount_tiyn for t in view.by_member} == {
        head.id: 5_000_000,
        first.id: 196_000,
        mother.id: 450_000,
        second.id: 70_000,
    }
    assert [(t.key, t.amount_tiyn) for t in view.by_month] == [(NOW.month, view.total_tiyn)]
    assert {t.key: t.amount_tiyn for t in view.services} == {
        "MEAL_SERVED": 2,
        "MEDICINE_DISPENSED": 1,
    }
    assert_adds_up(view)


async def test_a_month_without_transfers_and_another_family_spend_nothing(
    session, family_with_spending
):
    # given the family's spending, all posted now
    family = family_with_spending[0]
    other, _ = await add_family(session, household(1))
    earlier_month = 1 if NOW.month != 1 else 2

    # when another month and another family are read
    quiet = await family_spending(
        session=session, family_id=family.id, year=NOW.year, month=earlier_month
    )
    stranger = await family_spending(session=session, family_id=other.id, year=NOW.year)
    this_month = await family_spending(
        session=session, family_id=family.id, year=NOW.year, month=NOW.month
    )

    # then only the current month of the family itself holds its spending
    assert quiet.total_tiyn == 0 and stranger.total_tiyn == 0
    assert [t.amount_tiyn for t in quiet.by_category] == [0] * len(CATEGORIES)
    assert this_month.total_tiyn == 5_716_000
    assert_adds_up(this_month)


def test_summarise_adds_up_across_months_members_and_reversals():
    # given lines in three months, on two members and on none, one reversed
    def line(month, person, category, amount, reason="BENEFIT_PAYMENT", sign=1):
        at = datetime(2026, month, 15, 12)
        return SpendingLine(1, person, at, category, sign * amount, reason, sign)

    lines = [
        line(1, 10, "CASH_BENEFITS", 1_000),
        line(2, 11, "SCHOOL_MEALS", 300, "MEAL_SERVED"),
        line(2, 11, "SCHOOL_MEALS", 300, "MEAL_SERVED", sign=-1),
        line(3, None, "OTHER_IN_KIND", 50, "AID"),
        line(3, 10, "MEDICINES", 70, "MEDICINE_DISPENSED"),
    ]

    # when they are summarised
    view = summarise(family_id=1, year=2026, month=None, lines=lines)

    # then every breakdown agrees with the total, and the reversed meal counts zero
    assert view.total_tiyn == 1_120
    assert [(t.key, t.amount_tiyn) for t in view.by_month] == [(1, 1_000), (2, 0), (3, 120)]
    assert [(t.key, t.amount_tiyn) for t in view.by_member] == [(10, 1_070), (11, 0), (None, 50)]
    assert {t.key: t.amount_tiyn for t in view.services} == {
        "MEAL_SERVED": 0,
        "MEDICINE_DISPENSED": 1,
    }
    assert_adds_up(view)


def test_members_the_caller_does_not_see_merge_into_the_unattributed_line():
    # given spending on two members and on none
    view = summarise(
        family_id=1, year=2026, month=None,
        lines=[
            SpendingLine(1, 10, datetime(2026, 1, 1), "CASH_BENEFITS", 100, "BENEFIT_PAYMENT", 1),
            SpendingLine(1, 11, datetime(2026, 1, 1), "CASH_BENEFITS", 40, "BENEFIT_PAYMENT", 1),
            SpendingLine(1, None, datetime(2026, 1, 1), "OTHER_IN_KIND", 5, "AID", 1),
        ],
    )  # fmt: skip

    # when the caller sees member 10 only
    shown = for_caller(spending=view, visible_person_ids=frozenset({10}))

    # then member 11 is folded into the null line and the total still adds up
    assert [(t.key, t.amount_tiyn) for t in shown.by_member] == [(10, 100), (None, 45)]
    assert_adds_up(shown)


def test_periods_are_utc_calendar_years_and_months():
    assert period_bounds(year=2026) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds(year=2026, month=12) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(ValueError):
        period_bounds(year=2026, month=13)


async def test_payments_are_the_family_benefit_payments_with_their_reversal(
    session, family_with_spending
):
    # given two benefit payments, the second reversed
    family, head, *_ = family_with_spending

    # when the family's payments are read
    payments = await family_payments(session=session, family_ids=[family.id])

    # then both appear, with programme and reversal, and no meal or medicine
    assert sorted((p.transfer_id, p.programme, p.reversed) for p in payments) == [
        ("asp-1", "ASP", False),
        ("asp-2", "ASP", True),
    ]
    assert all(p.person_id == head.id for p in payments)


async def test_periods_cut_at_utc_midnight(session, family_with_spending):
    # given two payments either side of midnight UTC on New Year, written with their times
    # (ledger.transfer stamps the current time; only the view's reading is under test here)
    family, head, *_ = family_with_spending
    payout = await ledger.get_account(session=session, account="payout:bank")
    asp = await ledger.get_account(session=session, account="programme:ASP")
    for tid, at in [
        ("nye-before", datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("nye-after", datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)),
    ]:
        session.add(
            LedgerTransfer(
                transfer_id=tid, debit_account_id=asp.id, credit_account_id=payout.id,
                amount=100 if tid == "nye-before" else 200, reason="BENEFIT_PAYMENT",
                family_id=family.id, person_id=head.id, created_at=at, details={},
            )
        )  # fmt: skip
    await session.flush()

    # when 2024, December 2024, 2025 and January 2025 are read
    totals = [
        (await family_spending(session=session, family_id=family.id, year=y, month=m)).total_tiyn
        for y, m in [(2024, None), (2024, 12), (2025, None), (2025, 1)]
    ]

    # then each payment falls in its own UTC year and month
    assert totals == [100, 100, 200, 200]
