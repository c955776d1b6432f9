"""A family's vouchers as its wallet lists them: school meals and medicines, with what is
left in each purpose wallet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vouchers.tables import MealVoucher, MedicineVoucher
from wallet.tables import LedgerAccount


@dataclass(frozen=True, slots=True)
class VoucherSummary:
    programme: str  # SCHOOL_MEALS | MEDICINES
    voucher_id: int
    family_id: int
    person_id: int
    period_start: date
    period_end: date
    funded_tiyn: int
    balance_tiyn: int  # what the person's purpose wallet holds now (all its vouchers)


def _of(
    table: type[MealVoucher | MedicineVoucher],
    programme: str,
    purpose: str,
    start: InstrumentedAttribute[date],
    end: InstrumentedAttribute[date],
    family_ids: Sequence[int],
) -> Select[*tuple[Any, ...]]:
    return (
        select(
            literal(programme).label("programme"),
            table.id.label("voucher_id"),
            table.family_id,
            table.person_id,
            start.label("period_start"),
            end.label("period_end"),
            table.amount_tiyn.label("funded_tiyn"),
            (LedgerAccount.credits_posted - LedgerAccount.debits_posted).label("balance_tiyn"),
        )
        .outerjoin(
            LedgerAccount,
            and_(
                LedgerAccount.person_id == table.person_id,
                LedgerAccount.kind == "purpose_wallet",
                LedgerAccount.purpose == purpose,
            ),
        )
        .where(table.family_id.in_(family_ids))
    )


async def family_vouchers(
    *, session: AsyncSession, family_ids: Sequence[int]
) -> list[VoucherSummary]:
    """Every voucher issued to these families' members, newest period first, in one statement."""
    meals = _of(
        MealVoucher, "SCHOOL_MEALS", "school_meals",
        MealVoucher.school_year_start, MealVoucher.school_year_end, family_ids,
    )  # fmt: skip
    medicines = _of(
        MedicineVoucher, "MEDICINES", "medicines",
        MedicineVoucher.period_start, MedicineVoucher.period_end, family_ids,
    )  # fmt: skip
    both = union_all(meals, medicines).subquery()
    rows = await session.execute(
        select(both).order_by(both.c.period_start.desc(), both.c.programme, both.c.voucher_id)
    )
    return [
        VoucherSummary(**{**row._mapping, "balance_tiyn": row.balance_tiyn or 0}) for row in rows
    ]
