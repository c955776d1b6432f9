"""Demo data for `make run`: a few named story families, and the demo callers' tokens.

The issue on the family map replaces the hand-made rows with its synthetic population
generator; the story families and the demo identities below stay stable so that the README's
examples keep working.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import DevIssuer, Role
from familymap.iin import complete_iin
from familymap.tables import Family, Person

# Fixed ids, so tokens printed yesterday still name the same demo merchant today.
DEMO_SCHOOL_ID = uuid.UUID("5c0001a0-0000-4000-8000-000000000001")
DEMO_PHARMACY_ID = uuid.UUID("9a0001a0-0000-4000-8000-000000000002")
DEMO_OPERATOR = "operator-demo"


def demo_iin(serial: int, *, birth: date, sex: str) -> str:
    """A valid, deterministic IIN for a demo person (century/sex digit as commonly issued)."""
    century_sex = {(19, "M"): 3, (19, "F"): 4, (20, "M"): 5, (20, "F"): 6}[(birth.year // 100, sex)]
    for bump in range(100):
        first_eleven = f"{birth:%y%m%d}{century_sex}{(serial * 100 + bump) % 10_000:04d}"
        iin = complete_iin(first_eleven)
        if iin is not None:
            return iin
    raise AssertionError("no valid IIN in 100 tries")  # cannot happen: ~1 in 11 is invalid


@dataclass(frozen=True)
class DemoPerson:
    role: str
    last_name: str
    first_name: str
    patronymic: str | None
    birth: date
    sex: str
    language: str = "kk"


def _story_families(today: date) -> list[tuple[str, str, list[DemoPerson]]]:
    """(story, region, members). Ages are relative to today so the stories stay true."""

    def years_ago(years: float) -> date:
        return today - timedelta(days=round(years * 365.25))

    return [
        (
            "newborn",
            "astana",
            [
                DemoPerson("head", "Сейтқали", "Айгерім", "Болатқызы", years_ago(29), "F"),
                DemoPerson("spouse", "Сейтқали", "Нұрлан", "Ерланұлы", years_ago(31), "M"),
                DemoPerson(
                    "child", "Сейтқали", "Әли", "Нұрланұлы", today - timedelta(days=20), "M"
                ),
            ],
        ),
        (
            "large family with school-age children",
            "shymkent",
            [
                DemoPerson("head", "Жұмабаева", "Гүлнар", "Серікқызы", years_ago(38), "F"),
                DemoPerson("spouse", "Жұмабаев", "Серік", "Асқарұлы", years_ago(41), "M"),
                *[
                    DemoPerson("child", "Жұмабаев", name, "Серікұлы", years_ago(age), sex)
                    for name, age, sex in [
                        ("Данияр", 15, "M"),
                        ("Аружан", 12, "F"),
                        ("Ержан", 9, "M"),
                        ("Мадина", 7, "F"),
                        ("Алихан", 3, "M"),
                    ]
                ],
            ],
        ),
        (
            "pensioner with a chronic illness",
            "karaganda",
            [
                DemoPerson("head", "Иванова", "Валентина", "Петровна", years_ago(68), "F", "ru"),
            ],
        ),
        (
            "low-income family",
            "turkistan",
            [
                DemoPerson("head", "Омаров", "Бауыржан", "Қайратұлы", years_ago(34), "M"),
                DemoPerson("spouse", "Омарова", "Динара", "Маратқызы", years_ago(30), "F"),
                DemoPerson("child", "Омаров", "Темірлан", "Бауыржанұлы", years_ago(6), "M"),
            ],
        ),
        (
            "family that just lost its breadwinner",
            "almaty_city",
            [
                DemoPerson("head", "Ким", "Елена", "Викторовна", years_ago(36), "F", "ru"),
                DemoPerson("child", "Ким", "Артём", None, years_ago(10), "M", "ru"),
            ],
        ),
    ]


async def database_is_empty(session: AsyncSession) -> bool:
    """True if the registry holds no family yet."""
    return (await session.scalar(select(func.count()).select_from(Family))) == 0


async def seed_demo(session: AsyncSession, *, today: date) -> int:
    """Insert the story families; returns how many persons were added."""
    serial = 0
    added = 0
    for _story, region, members in _story_families(today):
        family = Family(region=region)
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
                )
            )
            added += 1
    await session.flush()
    return added


async def demo_citizen_iin(session: AsyncSession) -> str | None:
    """The IIN of the first story family's head, the demo citizen."""
    return await session.scalar(
        select(Person.iin).where(Person.role == "head").order_by(Person.created_at).limit(1)
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
