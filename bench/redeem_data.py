"""Data for `socialwallet bench redeem`, and the check of its outcome against the ledger.

The benchmark's population is made directly in bulk (not measured): schools, one family per
pupil with a SCHOOL_MEALS entitlement, and a funded voucher per pupil, written as the ledger
would write them (accounts with their posted totals and one VOUCHER_FUNDING transfer each),
so that `accounts_disagreeing_with_transfers` holds afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from familymap.orm import utcnow
from familymap.tables import Entitlement, Family, Person
from vouchers.calendar import claim_window, school_days_after, school_year
from vouchers.meals import PROGRAMME_ACCOUNT, PURPOSE, wallet_code
from vouchers.merchants import register_merchant
from vouchers.tables import MealRedemption, MealVoucher
from wallet.ledger import accounts_disagreeing_with_transfers, open_account
from wallet.tables import LedgerAccount, LedgerTransfer

REGION = "astana"
VOUCHER_TIYN = 100_000_000  # plenty for every meal the benchmark serves


class NotASchoolDayToday(RuntimeError):
    """The benchmark serves today's meals, and there are none today."""

    def __init__(self, today: date) -> None:
        super().__init__(
            f"{today.isoformat()} (Kazakhstan) is not a school day: a QR meal is served only on "
            "the day its code was issued, so the redemption benchmark runs on school days"
        )


@dataclass(frozen=True, slots=True)
class Pupil:
    person_id: int
    voucher_id: int
    school_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class BenchData:
    schools: list[uuid.UUID]
    pupils: list[Pupil]
    school_days: list[date]


async def make_bench_data(
    *, session: AsyncSession, schools: int, pupils: int, today: date
) -> BenchData:
    """Schools and pupils with funded vouchers, and the days a canteen may claim meals for on
    `today`: today itself (the only day a QR code serves) and the school days of the claim
    window before it (list and offline meals), oldest first."""
    year = school_year(today)
    if year is None or not year.is_school_day(today):
        raise NotASchoolDayToday(today)
    window = claim_window(today)
    days = [
        day
        for day in (today - timedelta(n) for n in range(3 * window + 7, 0, -1))
        if year.is_school_day(day) and school_days_after(day, through=today) <= window
    ] + [today]
    school_ids = []
    for n in range(schools):
        merchant, _ = await register_merchant(
            session=session,
            external_code=f"bench-school-{n:04d}",
            name=f"Bench school {n}",
            category=PURPOSE,
            region=REGION,
        )
        school_ids.append(merchant.id)
    family_ids = list(
        await session.scalars(
            insert(Family).returning(Family.id, sort_by_parameter_order=True),
            [{"region": REGION, "created_at": utcnow(), "updated_at": utcnow()}] * pupils,
        )
    )
    birth = date(2016, 1, 1)
    person_ids = list(
        await session.scalars(
            insert(Person).returning(Person.id, sort_by_parameter_order=True),
            [
                {
                    "family_id": family_id,
                    "iin": f"99{n:010d}",
                    "role": "child",
                    "last_name": "Bench",
                    "first_name": f"Pupil {n}",
                    "birth_date": birth,
                    "sex": "F",
                    "school_grade": 3,
                    "school_id": f"bench-school-{n % schools:04d}",
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
                for n, family_id in enumerate(family_ids)
            ],
        )
    )
    await session.execute(
        insert(Entitlement),
        [
            {
                "family_id": f,
                "person_id": p,
                "beneficiary_key": p,
                "programme": "SCHOOL_MEALS",
                "amount_tiyn": VOUCHER_TIYN,
                "period_start": year.start,
                "period_end": year.end,
                "run_id": 0,
            }
            for f, p in zip(family_ids, person_ids, strict=True)
        ],
    )
    voucher_ids = list(
        await session.scalars(
            insert(MealVoucher).returning(MealVoucher.id, sort_by_parameter_order=True),
            [
                {
                    "family_id": f,
                    "person_id": p,
                    "school_year_start": year.start,
                    "school_year_end": year.end,
                    "amount_tiyn": VOUCHER_TIYN,
                    "channel": "bench",
                    "created_at": utcnow(),
                }
                for f, p in zip(family_ids, person_ids, strict=True)
            ],
        )
    )
    programme = await open_account(
        session=session, code=PROGRAMME_ACCOUNT, kind="budget_programme", purpose=PURPOSE
    )
    wallet_ids = list(
        await session.scalars(
            insert(LedgerAccount).returning(LedgerAccount.id, sort_by_parameter_order=True),
            [
                {
                    "code": wallet_code(p),
                    "kind": "purpose_wallet",
                    "purpose": PURPOSE,
                    "family_id": f,
                    "person_id": p,
                    "may_go_negative": False,
                    "debits_posted": 0,
                    "credits_posted": VOUCHER_TIYN,
                    "created_at": utcnow(),
                }
                for f, p in zip(family_ids, person_ids, strict=True)
            ],
        )
    )
    await session.execute(
        insert(LedgerTransfer),
        [
            {
                "transfer_id": f"voucher-funding:{PURPOSE}:{p}:{year.start.isoformat()}",
                "debit_account_id": programme.id,
                "credit_account_id": w,
                "amount": VOUCHER_TIYN,
                "reason": "VOUCHER_FUNDING",
                "details": {},
                "created_at": utcnow(),
            }
            for p, w in zip(person_ids, wallet_ids, strict=True)
        ],
    )
    await session.execute(
        cast(Table, LedgerAccount.__table__)  # declarative classes type it as a FromClause
        .update()
        .where(LedgerAccount.id == programme.id)
        .values(debits_posted=LedgerAccount.debits_posted + VOUCHER_TIYN * pupils)
    )
    return BenchData(
        schools=school_ids,
        pupils=[
            Pupil(p, v, school_ids[n % schools])
            for n, (p, v) in enumerate(zip(person_ids, voucher_ids, strict=True))
        ],
        school_days=days,
    )


async def count_double_spends(*, connection: AsyncConnection) -> dict[str, int]:
    """Meals paid more than once, checked against the ledger; every figure must be 0 but
    `meals` and `meal_transfers`, which must be equal."""
    session = AsyncSession(bind=connection)
    meals = await connection.scalar(select(func.count()).select_from(MealRedemption))
    transfers = await connection.scalar(
        select(func.count())
        .select_from(LedgerTransfer)
        .where(LedgerTransfer.reason == "MEAL_SERVED")
    )
    # The same (child, day, meal type) paid twice in the ledger: its transfer ids name them.
    repeated = await connection.scalar(
        text(
            "SELECT count(*) FROM (SELECT person_id, transfer_id FROM ledger_transfers "
            "WHERE reason = 'MEAL_SERVED' GROUP BY person_id, transfer_id HAVING count(*) > 1) t"
        )
    )
    unpaid = await connection.scalar(
        select(func.count())
        .select_from(MealRedemption)
        .outerjoin(LedgerTransfer, LedgerTransfer.transfer_id == MealRedemption.transfer_id)
        .where(LedgerTransfer.id.is_(None))
    )
    overpaid = await connection.scalar(
        select(func.count())
        .select_from(MealRedemption)
        .join(LedgerTransfer, LedgerTransfer.transfer_id == MealRedemption.transfer_id)
        .where(LedgerTransfer.amount != MealRedemption.price_tiyn)
    )
    negative = await connection.scalar(
        select(func.count())
        .select_from(LedgerAccount)
        .where(
            LedgerAccount.kind == "purpose_wallet",
            LedgerAccount.credits_posted < LedgerAccount.debits_posted,
        )
    )
    disagreeing = len(await accounts_disagreeing_with_transfers(session=session))
    return {
        "meals": int(meals or 0),
        "meal_transfers": int(transfers or 0),
        "double_spends": int(repeated or 0) + abs(int(meals or 0) - int(transfers or 0)),
        "unpaid_meals": int(unpaid or 0),
        "wrong_amounts": int(overpaid or 0),
        "negative_wallets": int(negative or 0),
        "accounts_disagreeing": disagreeing,
    }
