"""Registry families and ledger spending for wallet tests, posted the conventional way:
account codes `programme:<CODE>`, `person:<id>:<purpose>`, `merchant:<uuid>`, `payout:bank`,
and reason codes BENEFIT_PAYMENT, VOUCHER_FUNDING, MEAL_SERVED, MEDICINE_DISPENSED."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from familymap.iin import complete_iin
from familymap.tables import Family, Person
from wallet import ledger

SCHOOL = "merchant:5c0001a0-0000-4000-8000-00000000aa01"
PHARMACY = "merchant:9a000000-0000-4000-8000-00000000bb02"
AIDS_SUPPLIER = "merchant:7e000000-0000-4000-8000-00000000cc03"
_serial = itertools.count(1)


def fresh_iin(birth: date, sex: str) -> str:
    """A valid IIN not used by another builder call in this process."""
    century = {("M", 19): 3, ("F", 19): 4, ("M", 20): 5, ("F", 20): 6}[(sex, birth.year // 100)]
    while True:
        serial = next(_serial)
        first_eleven = f"{birth:%y%m%d}{century}{serial:04d}"
        iin = complete_iin(first_eleven)
        if iin is not None:
            return iin


@dataclass
class Member:
    role: str
    first_name: str
    birth: date
    sex: str
    facts: dict


async def add_family(
    session: AsyncSession, members: list[Member], *, region: str = "astana"
) -> tuple[Family, list[Person]]:
    """A family with the given members, flushed (ids assigned), in member order."""
    family = Family(region=region, housing_owned=True, area_m2=70, rooms=3)
    session.add(family)
    await session.flush()
    rows = []
    for m in members:
        row = Person(
            family_id=family.id, iin=fresh_iin(m.birth, m.sex), role=m.role, last_name="Әбенов",
            first_name=m.first_name, birth_date=m.birth, sex=m.sex, **m.facts,
        )  # fmt: skip
        session.add(row)
        rows.append(row)
    await session.flush()
    return family, rows


def household(children: int) -> list[Member]:
    """Two parents and `children` pupils: the first child in grade 2, the rest older."""
    earner = {"employment": "employed", "monthly_income_tiyn": 25_000_000,
              "contribution_months": 24, "insured": True, "polyclinic_attached": True}  # fmt: skip
    members = [
        Member("head", "Ерлан", date(1985, 3, 1), "M", earner),
        Member("spouse", "Сәуле", date(1987, 5, 2), "F", earner),
    ]
    for n in range(children):
        members.append(
            Member("child", f"Бала{n}", date(2018 - n, 1, 10), "M" if n % 2 else "F",
                   {"school_grade": min(2 + n, 11), "insured": True})
        )  # fmt: skip
    return members


async def open_books(session: AsyncSession) -> None:
    """The programme, payout and merchant accounts the spending examples use."""
    for code, kind, purpose in [
        ("programme:ASP", "budget_programme", None),
        ("programme:SCHOOL_MEALS", "budget_programme", "school_meals"),
        ("programme:MEDICINES", "budget_programme", "medicines"),
        ("programme:TECHNICAL_AIDS", "budget_programme", "technical_aids"),
        ("payout:bank", "bank_payout", None),
        (SCHOOL, "merchant", "school_meals"),
        (PHARMACY, "merchant", "medicines"),
        (AIDS_SUPPLIER, "merchant", "technical_aids"),
    ]:
        await ledger.open_account(session=session, code=code, kind=kind, purpose=purpose)


async def pay_benefit(session, *, tid: str, person: Person, amount: int, programme: str = "ASP"):
    return await ledger.transfer(
        session=session, transfer_id=tid, debit=f"programme:{programme}", credit="payout:bank",
        amount=amount, reason="BENEFIT_PAYMENT", family_id=person.family_id, person_id=person.id,
    )  # fmt: skip


async def fund_wallet(session, *, tid: str, person: Person, purpose: str, amount: int) -> str:
    code = f"person:{person.id}:{purpose}"
    await ledger.open_account(
        session=session, code=code, kind="purpose_wallet", purpose=purpose,
        family_id=person.family_id, person_id=person.id,
    )  # fmt: skip
    programme = {"school_meals": "SCHOOL_MEALS", "medicines": "MEDICINES",
                 "technical_aids": "TECHNICAL_AIDS"}[purpose]  # fmt: skip
    await ledger.transfer(
        session=session, transfer_id=tid, debit=f"programme:{programme}", credit=code,
        amount=amount, reason="VOUCHER_FUNDING", family_id=person.family_id, person_id=person.id,
    )  # fmt: skip
    return code


async def spend(session, *, tid: str, person: Person, purpose: str, amount: int, reason: str):
    merchant = {"school_meals": SCHOOL, "medicines": PHARMACY, "technical_aids": AIDS_SUPPLIER}
    return await ledger.transfer(
        session=session, transfer_id=tid, debit=f"person:{person.id}:{purpose}",
        credit=merchant[purpose], amount=amount, reason=reason,
        family_id=person.family_id, person_id=person.id,
    )  # fmt: skip
