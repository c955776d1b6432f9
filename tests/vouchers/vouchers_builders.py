"""Builders for voucher tests: a family with a pupil entitled to school meals, schools,
pharmacies. Everything goes through the domain's own functions where one exists."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from familymap.iin import complete_iin
from familymap.tables import Entitlement, Family, Person
from vouchers.merchants import register_merchant
from vouchers.tables import Merchant

# A Wednesday in the 2026-2027 school year, and the canteen's clock on it.
SCHOOL_DAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
SATURDAY = date(2026, 11, 21)
HOLIDAY = date(2026, 12, 16)  # Independence Day, a Wednesday
QR_KEY = b"k" * 32

_serial = itertools.count(1)


def fresh_iin(*, birth: date, sex: str = "F") -> str:
    """A valid IIN no other test uses (serials 8000-8999 are ours)."""
    century_sex = {(19, "M"): 3, (19, "F"): 4, (20, "M"): 5, (20, "F"): 6}[(birth.year // 100, sex)]
    while True:
        iin = complete_iin(f"{birth:%y%m%d}{century_sex}{8000 + next(_serial) % 1000:04d}")
        if iin is not None:
            return iin


async def school(
    session: AsyncSession, *, code: str = "astana-school-001", region: str = "astana"
) -> Merchant:
    merchant, _ = await register_merchant(
        session=session,
        external_code=code,
        name=f"School {code}",
        category="school_meals",
        region=region,
    )
    return merchant


async def pharmacy(session: AsyncSession, *, code: str = "astana-pharmacy-001") -> Merchant:
    merchant, _ = await register_merchant(
        session=session, external_code=code, name="Pharmacy", category="medicines", region="astana"
    )
    return merchant


async def family_with_pupil(
    session: AsyncSession,
    *,
    school_code: str = "astana-school-001",
    region: str = "astana",
    entitled: bool = True,
    chronic: bool = False,
) -> tuple[Family, Person, Person]:
    """(family, parent, child): the child is a 2nd-grader at `school_code`."""
    family = Family(region=region, housing_owned=True, area_m2=60, rooms=2)
    session.add(family)
    await session.flush()
    parent_birth, child_birth = date(1988, 3, 2), date(2018, 5, 6)
    parent = Person(
        family_id=family.id, iin=fresh_iin(birth=parent_birth), role="head",
        last_name="Ахметова", first_name="Сауле", birth_date=parent_birth, sex="F",
        insured=True, polyclinic_attached=True,
        chronic_conditions=["E11"] if chronic else [],
    )  # fmt: skip
    child = Person(
        family_id=family.id, iin=fresh_iin(birth=child_birth, sex="M"), role="child",
        last_name="Ахметов", first_name="Ерлан", birth_date=child_birth, sex="M",
        school_grade=2, school_id=school_code, insured=True,
    )  # fmt: skip
    session.add_all([parent, child])
    await session.flush()
    if entitled:
        session.add(
            Entitlement(
                family_id=family.id, person_id=child.id, beneficiary_key=child.id,
                programme="SCHOOL_MEALS", amount_tiyn=1, period_start=date(2026, 9, 1),
                period_end=date(2027, 5, 31), run_id=0,
            )
        )  # fmt: skip
    if chronic:
        session.add(
            Entitlement(
                family_id=family.id, person_id=parent.id, beneficiary_key=parent.id,
                programme="MEDICINES", amount_tiyn=1_297_500, period_start=date(2026, 11, 1),
                period_end=date(2026, 11, 30), run_id=0,
            )
        )  # fmt: skip
    await session.flush()
    return family, parent, child


def key() -> str:
    return uuid.uuid4().hex
