"""The demo data tells the product's stories: each story family gets what it should."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from app.demo import SYNTHETIC_FAMILIES, demo_citizen_iin, seed_demo
from familymap.iin import is_valid_iin
from familymap.tables import Entitlement, Family, Person

TODAY = date(2026, 11, 22)


async def test_story_families_get_their_entitlements(session):
    # Given an empty registry, when the demo data is loaded
    await seed_demo(session, today=TODAY)
    # Then the stories are there, first, with the synthetic population after them
    assert await session.scalar(select(func.count()).select_from(Family)) == 5 + SYNTHETIC_FAMILIES
    # (ids are not 1..5 on PostgreSQL, whose sequences do not roll back with earlier tests)
    stories = (await session.scalars(select(Family.id).order_by(Family.id).limit(5))).all()
    rows = await session.execute(
        select(Entitlement.family_id, Entitlement.programme).where(
            Entitlement.family_id.in_(stories)
        )
    )
    by_family: dict[int, set[str]] = {}
    for family_id, programme in rows:
        by_family.setdefault(stories.index(family_id), set()).add(programme)
    assert {"BIRTH_BENEFIT", "CHILDCARE_TO_1_5"} <= by_family[0]  # the newborn
    assert {"LARGE_FAMILY", "SCHOOL_MEALS"} <= by_family[1]  # five children, four at school
    assert "MEDICINES" in by_family[2]  # the pensioner with a chronic illness
    assert {"ASP", "EMPLOYMENT_MEASURES_NOTICE"} <= by_family[3]  # the low-income family
    assert "LOSS_OF_BREADWINNER" in by_family[4]  # the family that lost its breadwinner
    # and the demo citizen is the newborn's mother, with a valid IIN
    citizen = await demo_citizen_iin(session)
    mother = await session.scalar(select(Person).where(Person.iin == citizen))
    assert is_valid_iin(citizen) and mother.family_id == stories[0] and mother.sex == "F"


async def test_the_demo_school_serves_its_pupils_at_once(session):
    from app.demo import DEMO_PHARMACY_ID, DEMO_SCHOOL_ID
    from vouchers.tables import MealVoucher, Merchant

    # Given the demo data, then the demo school and pharmacy exist and the large family's
    # entitled pupils hold this school year's meal vouchers
    await seed_demo(session, today=TODAY)
    school = await session.get(Merchant, DEMO_SCHOOL_ID)
    assert school.external_code == "shymkent-school-014" and school.category == "school_meals"
    assert (await session.get(Merchant, DEMO_PHARMACY_ID)).category == "medicines"
    vouchers = await session.scalar(
        select(func.count())
        .select_from(MealVoucher)
        .join(Person, Person.id == MealVoucher.person_id)
        .where(Person.school_id == "shymkent-school-014")
    )
    assert vouchers == 4
