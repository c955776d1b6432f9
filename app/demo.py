"""Demo data for `make run`: named story families, a synthetic population, demo tokens.

The five story families are the ones the product is explained with (a newborn, a large family
with school-age children, a pensioner with a chronic illness, a low-income family, a family
that just lost its breadwinner); 500 more families come from the synthetic generator. The
story families go in first, so the demo citizen (the newborn's mother) is the first head.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import DevIssuer, Role
from familymap.batch import run_batch
from familymap.iin import complete_iin
from familymap.registry_load import load_synthetic_registry
from familymap.tables import Family, Person

# Fixed ids, so tokens printed yesterday still name the same demo merchant today.
DEMO_SCHOOL_ID = uuid.UUID("5c0001a0-0000-4000-8000-000000000001")
DEMO_PHARMACY_ID = uuid.UUID("9a0001a0-0000-4000-8000-000000000002")
DEMO_OPERATOR = "operator-demo"


def demo_iin(serial: int, *, birth: date, sex: str) -> str:
    """A valid, deterministic IIN for a story person.

    Serials 9000-9999 are kept for hand-made persons; the generator never issues them
    (familymap.generator.MAX_GENERATED_RANK), so stories and synthetic families never collide.
    """
    century_sex = {(19, "M"): 3, (19, "F"): 4, (20, "M"): 5, (20, "F"): 6}[(birth.year // 100, sex)]
    for bump in range(10):
        iin = complete_iin(f"{birth:%y%m%d}{century_sex}{9000 + serial * 10 + bump:04d}")
        if iin is not None:
            return iin
    raise AssertionError("no valid IIN in 10 tries")  # cannot happen: 1 in 121 has none


@dataclass(frozen=True)
class DemoPerson:
    role: str
    last_name: str
    first_name: str
    patronymic: str | None
    birth: date
    sex: str
    language: str = "kk"
    facts: dict[str, Any] = field(default_factory=dict)


def _story_families(today: date) -> list[tuple[str, str, dict[str, Any], list[DemoPerson]]]:
    """(story, region, housing, members). Dates are relative to today so the stories stay true."""

    def years_ago(years: float) -> date:
        return today - timedelta(days=round(years * 365.25))

    employed = {
        "employment": "employed", "monthly_income_tiyn": 32_000_000, "contribution_months": 24,
        "insured": True, "polyclinic_attached": True, "iban": "KZ756017000000000001",
    }  # fmt: skip
    insured = {"insured": True, "polyclinic_attached": True}
    return [
        ("newborn", "astana", {"area_m2": 62, "rooms": 2}, [
            DemoPerson("head", "Сейтқали", "Айгерім", "Болатқызы", years_ago(29), "F", facts={
                **employed, "monthly_income_tiyn": 28_000_000, "iban": "KZ536017000000000002"}),
            DemoPerson("spouse", "Сейтқали", "Нұрлан", "Ерланұлы", years_ago(31), "M", facts=employed),
            DemoPerson("child", "Сейтқали", "Әли", "Нұрланұлы", today - timedelta(days=20), "M", facts=insured),
        ]),
        ("large family with school-age children", "shymkent", {"area_m2": 70, "rooms": 3}, [
            DemoPerson("head", "Жұмабаева", "Гүлнар", "Серікқызы", years_ago(38), "F", facts=insured),
            DemoPerson("spouse", "Жұмабаев", "Серік", "Асқарұлы", years_ago(41), "M", facts={
                **employed, "monthly_income_tiyn": 26_000_000}),
            *[
                DemoPerson("child", "Жұмабаев", name, "Серікұлы", years_ago(age), sex, facts={
                    **insured, **({"school_grade": grade, "school_id": "shymkent-school-014"} if grade else {}),
                    **({"kindergarten": True} if age < 6 else {})})
                for name, age, sex, grade in [
                    ("Данияр", 15.5, "M", 9), ("Аружан", 12.5, "F", 6), ("Ержан", 9.5, "M", 3),
                    ("Мадина", 7.5, "F", 1), ("Алихан", 3, "M", None),
                ]
            ],
        ]),
        ("pensioner with a chronic illness", "karaganda", {"area_m2": 38, "rooms": 1}, [
            DemoPerson("head", "Иванова", "Валентина", "Петровна", years_ago(68), "F", "ru", facts={
                **insured, "monthly_income_tiyn": 11_000_000, "chronic_conditions": ["I10", "E11"]}),
        ]),
        ("low-income family", "turkistan", {"area_m2": 35, "rooms": 2, "housing_owned": False}, [
            DemoPerson("head", "Омаров", "Бауыржан", "Қайратұлы", years_ago(34), "M", facts={
                **insured, "employment": "unemployed", "registered_unemployed": True}),
            DemoPerson("spouse", "Омарова", "Динара", "Маратқызы", years_ago(30), "F", facts={
                **insured, "employment": "employed", "monthly_income_tiyn": 6_000_000, "contribution_months": 12}),
            DemoPerson("child", "Омаров", "Темірлан", "Бауыржанұлы", years_ago(6.5), "M", facts={
                **insured, "school_grade": 1, "school_id": "turkistan-school-003"}),
        ]),
        ("family that just lost its breadwinner", "almaty_city", {"area_m2": 48, "rooms": 2}, [
            DemoPerson("head", "Ким", "Елена", "Викторовна", years_ago(36), "F", "ru", facts=insured),
            DemoPerson("spouse", "Ким", "Виктор", "Андреевич", years_ago(39), "M", "ru", facts={
                **employed, "date_of_death": today - timedelta(days=20)}),
            DemoPerson("child", "Ким", "Артём", "Викторович", years_ago(10.5), "M", "ru", facts={
                **insured, "school_grade": 4, "school_id": "almaty_city-school-101"}),
        ]),
    ]  # fmt: skip


async def database_is_empty(session: AsyncSession) -> bool:
    """True if the registry holds no family yet."""
    return (await session.scalar(select(func.count()).select_from(Family))) == 0


SYNTHETIC_FAMILIES = 500
SYNTHETIC_SEED = 2026


async def seed_demo(session: AsyncSession, *, today: date) -> int:
    """Insert the story families and a synthetic population, then run eligibility.

    Returns how many persons were added.
    """
    serial = 0
    added = 0
    for _story, region, housing, members in _story_families(today):
        family = Family(region=region, **housing)
        session.add(family)
        await session.flush()
        for member in members:
            serial += 1
            session.add(
                Person(
                    family_id=family.id,
                    iin=demo_iin(serial, birth=member.birth, sex=member.sex),
                    role=member.role,
                    last_name=member.last_name,
                    first_name=member.first_name,
                    patronymic=member.patronymic,
                    birth_date=member.birth,
                    sex=member.sex,
                    language=member.language,
                    phone=f"+7701{serial:07d}",
                    **member.facts,
                )
            )
            added += 1
    await session.flush()
    connection = await session.connection()
    _, synthetic = await load_synthetic_registry(
        connection, families=SYNTHETIC_FAMILIES, seed=SYNTHETIC_SEED, as_of=today
    )
    await run_batch(connection, on=today)
    await seed_demo_merchants(session)
    await seed_demo_meal_vouchers(session, today=today)
    await seed_demo_prescription(session, today=today)
    return added + synthetic


# The demo school is the one the large family's pupils attend; the demo pharmacy serves the
# pensioner's city. The other story schools get registered too, with ids derived from codes.
DEMO_MERCHANTS = (
    (DEMO_SCHOOL_ID, "shymkent-school-014", "School No. 14, Shymkent", "school_meals", "shymkent"),
    (DEMO_PHARMACY_ID, "karaganda-pharmacy-001", "Polyclinic No. 1 pharmacy, Karaganda",
     "medicines", "karaganda"),
    (None, "turkistan-school-003", "School No. 3, Turkistan", "school_meals", "turkistan"),
    (None, "almaty_city-school-101", "School No. 101, Almaty", "school_meals", "almaty_city"),
)  # fmt: skip


async def seed_demo_merchants(session: AsyncSession) -> None:
    """Register the demo school canteens and pharmacy (idempotent)."""
    from vouchers.merchants import register_merchant

    for merchant_id, code, name, category, region in DEMO_MERCHANTS:
        await register_merchant(
            session=session,
            external_code=code,
            name=name,
            category=category,
            region=region,
            merchant_id=merchant_id or uuid.uuid5(DEMO_SCHOOL_ID, code),
        )


async def demo_citizen_iin(session: AsyncSession) -> str | None:
    """The IIN of the first story family's head, the demo citizen."""
    return await session.scalar(
        select(Person.iin).where(Person.role == "head").order_by(Person.id).limit(1)
    )


def demo_tokens(issuer: DevIssuer, *, citizen_iin: str | None) -> dict[str, str]:
    """Ready-to-paste tokens for the demo callers."""
    tokens = {
        "school": issuer.mint(roles=[Role.SCHOOL], subject=str(DEMO_SCHOOL_ID)),
        "pharmacy": issuer.mint(roles=[Role.PHARMACY], subject=str(DEMO_PHARMACY_ID)),
        "operator": issuer.mint(roles=[Role.OPERATOR], subject=DEMO_OPERATOR),
        "source_system": issuer.mint(roles=[Role.SOURCE_SYSTEM], subject="demo-source-system"),
    }
    if citizen_iin is not None:
        tokens = {"citizen": issuer.mint(roles=[Role.CITIZEN], subject=citizen_iin), **tokens}
    return tokens


async def seed_demo_meal_vouchers(session: AsyncSession, *, today: date) -> int:
    """Issue this school year's meal vouchers to the story families' entitled pupils at the
    demo schools, as if their parents had consented, so the school token works at once."""
    from familymap.tables import Entitlement
    from vouchers.errors import VoucherError
    from vouchers.meals import issue_meal_voucher

    codes = [code for _, code, _, category, _ in DEMO_MERCHANTS if category == "school_meals"]
    pupils = await session.execute(
        select(Person.id, Person.family_id)
        .join(Entitlement, Entitlement.person_id == Person.id)
        .where(Entitlement.programme == "SCHOOL_MEALS", Person.school_id.in_(codes))
        .order_by(Person.id)
    )
    issued = 0
    for child_id, family_id in pupils.all():
        head = await session.scalar(
            select(Person.id).where(Person.family_id == family_id, Person.role == "head")
        )
        try:
            await issue_meal_voucher(
                session=session, child_person_id=child_id, school_year=today,
                consented_by=head, channel="demo",
            )  # fmt: skip
        except VoucherError:
            continue  # no school year on that day (summer beyond the calendar): no voucher
        issued += 1
    return issued


# The e-prescription the pharmacy screen finds in the demo: the pensioner's metformin (E11),
# at the demo pharmacy's city, with her medicines voucher funded as if she had consented.
DEMO_PRESCRIPTION_ID = "RX-DEMO-0001"


async def seed_demo_prescription(session: AsyncSession, *, today: date) -> str | None:
    """Fund the pensioner's medicines voucher and record her demo e-prescription (idempotent)."""
    from vouchers.errors import VoucherError
    from vouchers.medicines import PrescriptionInput, issue_medicine_voucher, record_prescription

    pensioner = await session.scalar(
        select(Person).where(Person.first_name == "Валентина", Person.last_name == "Иванова")
    )
    if pensioner is None:
        return None
    # With no medicines entitlement today there is no voucher, but still a prescription to find.
    with contextlib.suppress(VoucherError):
        await issue_medicine_voucher(
            session=session, person_id=pensioner.id, consented_by=pensioner.id, channel="demo"
        )
    await record_prescription(
        session=session,
        prescription=PrescriptionInput(
            external_id=DEMO_PRESCRIPTION_ID,
            patient_iin=pensioner.iin,
            drug_code="A10BA02",
            quantity=3,
            unit_price_tiyn=150_000,
            valid_until=today + timedelta(days=30),
            prescribing_org="Polyclinic No. 1, Karaganda",
        ),
        source="demo",
    )
    return DEMO_PRESCRIPTION_ID
