"""A parent's pupils: the children of the family who go to school, with this school year's
meal voucher of each (the `myPupils` list of the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Person
from vouchers.calendar import school_year
from vouchers.tables import MealVoucher


@dataclass(frozen=True, slots=True)
class Pupil:
    child: Person
    voucher: MealVoucher | None  # this school year's, if the family consented


async def family_pupils(*, session: AsyncSession, parent_iin: str, today: date) -> list[Pupil]:
    """The children (role `child`) with a school grade in the family of `parent_iin`, eldest
    first, each with the meal voucher of the school year `today` falls in (none outside a
    school year). Empty when the IIN is not in the family map."""
    family_id = await session.scalar(select(Person.family_id).where(Person.iin == parent_iin))
    if family_id is None:
        return []
    children = list(
        await session.scalars(
            select(Person)
            .where(
                Person.family_id == family_id,
                Person.role == "child",
                Person.school_grade.is_not(None),
            )
            .order_by(Person.birth_date)
        )
    )
    vouchers: dict[int, MealVoucher] = {}
    year = school_year(today)
    if children and year is not None:
        rows = await session.scalars(
            select(MealVoucher).where(
                MealVoucher.person_id.in_([child.id for child in children]),
                MealVoucher.school_year_start == year.start,
            )
        )
        vouchers = {row.person_id: row for row in rows}
    return [Pupil(child=child, voucher=vouchers.get(child.id)) for child in children]
