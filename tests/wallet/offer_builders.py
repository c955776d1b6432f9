"""A registry family that the family map finds newly eligible, for the offer flow's tests.

A couple with a daughter born ten days ago: the birth benefit (one-off) and the childcare
benefit (monthly) are new entitlements of the child, offered to the father (the head). And a
poor family entitled to ASP quarter after quarter (`asp_family`), for renewals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from familymap.batch import reevaluate_family
from familymap.iin import complete_iin
from familymap.orm import utcnow
from familymap.tables import Family, Person
from wallet.offer_tables import WalletCursor
from wallet.offers import IssueSummary, issue_pending_offers

FATHER_IIN = "880412300011"
MOTHER_IIN = "900605400013"
CHILD_IIN = "250901500011"
FATHER_PHONE = "+77011234567"
MOTHER_PHONE = "+77017654321"
# A valid Kazakh IBAN (ISO 13616 check digits 86).
IBAN = "KZ86125KZT5004100100"
ASP_PHONE = "+77015550101"


@dataclass
class Household:
    family: Family
    father: Person
    mother: Person
    child: Person


async def newborn_household(
    session: AsyncSession,
    *,
    iban: str | None = IBAN,
    language: str = "ru",
    born_days_ago: int = 10,
    iins: tuple[str, str, str] = (FATHER_IIN, MOTHER_IIN, CHILD_IIN),
    phones: tuple[str | None, str | None] = (FATHER_PHONE, MOTHER_PHONE),
) -> Household:
    """Insert the household (flushed, not evaluated)."""
    family = Family(region="astana", housing_owned=True, area_m2=80, rooms=3)
    session.add(family)
    await session.flush()
    earner = {
        "employment": "employed", "monthly_income_tiyn": 30_000_000, "contribution_months": 24,
        "insured": True, "polyclinic_attached": True, "language": language,
    }  # fmt: skip
    father = Person(
        family_id=family.id, iin=iins[0], role="head", last_name="Серікбаев", first_name="Асқар",
        birth_date=date(1988, 4, 12), sex="M", phone=phones[0], iban=iban, **earner,
    )  # fmt: skip
    mother = Person(
        family_id=family.id, iin=iins[1], role="spouse", last_name="Серікбаева",
        first_name="Айгүл", birth_date=date(1990, 6, 5), sex="F", phone=phones[1], **earner,
    )  # fmt: skip
    child = Person(
        family_id=family.id, iin=iins[2], role="child", last_name="Серікбаева",
        first_name="Аружан", birth_date=date.today() - timedelta(days=born_days_ago), sex="F",
        insured=True, polyclinic_attached=True,
    )  # fmt: skip
    session.add_all([father, mother, child])
    await session.flush()
    return Household(family, father, mother, child)


@dataclass
class AspHousehold:
    family: Family
    mother: Person


def iin(first_eleven: str) -> str:
    """A valid IIN from its first eleven digits (the next serial if these cannot be one)."""
    serial = int(first_eleven)
    while (made := complete_iin(f"{serial:011d}")) is None:
        serial += 1
    return made


async def asp_family(session) -> AspHousehold:
    """A mother earning 60,000 tenge (phone, IBAN), her husband registered unemployed and
    their son: entitled to ASP in both quarters."""
    family = Family(region="shymkent", housing_owned=False, area_m2=40, rooms=2)
    session.add(family)
    await session.flush()
    mother = Person(
        family_id=family.id, iin=iin("90010140001"), role="head", last_name="Renewal",
        first_name="Saule", birth_date=date(1990, 1, 1), sex="F", phone=ASP_PHONE, iban=IBAN,
        employment="employed", monthly_income_tiyn=6_000_000, contribution_months=24,
        language="ru",
    )  # fmt: skip
    father = Person(
        family_id=family.id, iin=iin("88020230001"), role="spouse", last_name="Renewal",
        first_name="Erlan", birth_date=date(1988, 2, 2), sex="M", employment="unemployed",
        registered_unemployed=True, language="ru",
    )  # fmt: skip
    son = Person(
        family_id=family.id, iin=iin("18030350001"), role="child", last_name="Renewal",
        first_name="Nurlan", birth_date=date(2018, 3, 3), sex="M",
    )  # fmt: skip
    session.add_all([mother, father, son])
    await session.flush()
    return AspHousehold(family, mother)


async def evaluate(session: AsyncSession, household: Household, on: date | None = None) -> int:
    """Re-evaluate the household's family as the family map does; the run's id."""
    summary, _ = await reevaluate_family(
        await session.connection(), family_id=household.family.id, on=on or date.today()
    )
    return summary.run_id


def later(days: int = 0, *, seconds: int = 0) -> datetime:
    return utcnow() + timedelta(days=days, seconds=seconds)


async def offer_job_from_the_start(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    copy: bool,
) -> IssueSummary:
    """The batch offer job rerun over every change there is (its cursor put back to the
    start): COPY on PostgreSQL when `copy`, else INSERT."""
    cursor = await session.get(WalletCursor, "offers")
    if cursor is not None:
        cursor.position = 0
    await session.commit()
    return await issue_pending_offers(session_factory=session_factory, now=now, copy=copy)
