"""The database side of a model run: a small world of its own (schools, two pharmacies,
children with and without vouchers, patients with and without a medicines voucher, their
wallets, programmes and clearing accounts), committed into a throwaway database under names no
other run uses, and what the database says of it now."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from familymap.iin import complete_iin
from familymap.tables import Family, Person
from tests.model.rules import Account, Child, Meal, Prescription, School
from vouchers.meals import wallet_code
from vouchers.medicines import PrescriptionInput, record_prescription
from vouchers.medicines import wallet_code as medicines_wallet
from vouchers.merchants import register_merchant
from vouchers.tables import MealRedemption, MealVoucher, MedicineVoucher, Merchant
from vouchers.tables import Prescription as PrescriptionRow
from wallet import ledger
from wallet.tables import LedgerAccount

THIS_YEAR = date(2026, 9, 1)
LAST_YEAR = date(2025, 9, 1)
_YEAR_END = {THIS_YEAR: date(2027, 5, 25), LAST_YEAR: date(2026, 5, 25)}
# (name, school, the school years of their vouchers)
CHILDREN = (
    ("ana", "north", (THIS_YEAR, LAST_YEAR)),
    ("bek", "north", (THIS_YEAR,)),
    ("dana", "south", (THIS_YEAR,)),
    ("erik", "north", ()),  # enrolled, no voucher
)
SCHOOLS = (("north", "astana"), ("south", "shymkent"))
PHARMACY = "pharmacy"
PHARMACIES = (PHARMACY, "chemist")  # two pharmacies, whose idempotency keys are their own
# The patient's medicines voucher: this month's (it covers the tests' today, 2026-11-18).
MEDICINES_VOUCHER = (date(2026, 11, 1), date(2026, 11, 30))
# (name, drug, quantity, unit price, valid until, patient): one to dispense, one expired, and
# one of a patient with no medicines voucher.
PRESCRIPTIONS = (
    ("rx-ok", "C09AA05", 3, 100_000, date(2099, 1, 1), "patient"),
    ("rx-old", "A10BA02", 2, 50_000, date(2026, 11, 1), "patient"),
    ("rx-none", "C09AA05", 2, 100_000, date(2099, 1, 1), "nobody"),
)

_serials = itertools.count(random.randrange(10_000))


def _iin(birth: date) -> str:
    """A valid IIN for a man born on `birth`; serials run through 10,000 per birth day."""
    century = 5 if birth.year >= 2000 else 3
    while True:
        serial = next(_serials) % 10_000
        iin = complete_iin(f"{birth:%y%m%d}{century}{serial:04d}")
        if iin is not None:
            return iin


@dataclass
class World:
    """A run's accounts, schools and children, by the model's names and by the database's."""

    run: str
    accounts: list[Account]
    schools: list[School]
    children: list[Child]
    merchant_ids: dict[str, uuid.UUID]  # school (or pharmacy) name -> merchant id
    person_ids: dict[str, int]  # child name -> person id
    prescriptions: list[Prescription]
    patient_wallet: str

    @property
    def programme(self) -> str:
        return f"programme:model-{self.run}"

    @property
    def medicines_programme(self) -> str:
        return f"programme:model-{self.run}-medicines"

    def external_id(self, prescription: str) -> str:
        return f"model-{self.run}-{prescription}"

    def child_named(self, person_id: int) -> str:
        return next(name for name, pid in self.person_ids.items() if pid == person_id)

    def school_named(self, merchant_id: uuid.UUID) -> str:
        return next(name for name, mid in self.merchant_ids.items() if mid == merchant_id)


async def build_world(engine: AsyncEngine) -> World:
    """Make a fresh world in the database, every balance zero, and commit it."""
    run = uuid.uuid4().hex[:10]
    async with AsyncSession(engine, expire_on_commit=False) as session:
        accounts = [
            Account(f"programme:model-{run}", "budget_programme", "school_meals"),
            Account(f"programme:model-{run}-cash", "budget_programme", None),
            Account(f"programme:model-{run}-medicines", "budget_programme", "medicines"),
            Account(f"payout:model-{run}", "bank_payout", None),
            Account(f"settlement:model-{run}", "settlement", None),
        ]
        for account in accounts:
            await ledger.open_account(
                session=session, code=account.code, kind=account.kind, purpose=account.purpose
            )
        schools, merchant_ids = [], {}
        for name, region in SCHOOLS:
            merchant, _ = await register_merchant(
                session=session, external_code=f"model-{run}-{name}", name=f"School {name}",
                category="school_meals", region=region,
            )  # fmt: skip
            merchant_ids[name] = merchant.id
            schools.append(School(name, merchant.account_code, region))
            accounts.append(Account(merchant.account_code, "merchant", "school_meals"))
        for pharmacy in PHARMACIES:
            chemist, _ = await register_merchant(
                session=session, external_code=f"model-{run}-{pharmacy}", name=pharmacy,
                category="medicines", region="astana",
            )  # fmt: skip
            accounts.append(Account(chemist.account_code, "merchant", "medicines"))
            merchant_ids[pharmacy] = chemist.id
        patients, vouchers = {}, {}
        for name in ("patient", "nobody"):
            family = Family(region="astana", housing_owned=True, area_m2=60, rooms=2)
            session.add(family)
            await session.flush()
            birth = date(1970 + random.randrange(20), 6, 1 + random.randrange(28))
            patient = Person(
                family_id=family.id, iin=_iin(birth), role="head", last_name="Model",
                first_name=name, birth_date=birth, sex="M", insured=True,
            )  # fmt: skip
            session.add(patient)
            await session.flush()
            await ledger.open_account(
                session=session, code=medicines_wallet(patient.id), kind="purpose_wallet",
                purpose="medicines", family_id=family.id, person_id=patient.id,
            )  # fmt: skip
            accounts.append(Account(medicines_wallet(patient.id), "purpose_wallet", "medicines"))
            patients[name] = patient
            vouchers[name] = MEDICINES_VOUCHER if name == "patient" else None
            if name == "patient":
                session.add(
                    MedicineVoucher(
                        family_id=family.id, person_id=patient.id,
                        period_start=MEDICINES_VOUCHER[0], period_end=MEDICINES_VOUCHER[1],
                        amount_tiyn=0, channel="model",
                    )
                )  # fmt: skip
        patient_wallet = medicines_wallet(patients["patient"].id)
        prescriptions = []
        for name, drug, quantity, price, valid_until, holder in PRESCRIPTIONS:
            await record_prescription(
                session=session, source="model",
                prescription=PrescriptionInput(
                    external_id=f"model-{run}-{name}", patient_iin=patients[holder].iin,
                    drug_code=drug, quantity=quantity, unit_price_tiyn=price,
                    valid_until=valid_until, prescribing_org="Model polyclinic",
                ),
            )  # fmt: skip
            prescriptions.append(
                Prescription(
                    name, medicines_wallet(patients[holder].id), drug, quantity, price,
                    valid_until, vouchers[holder],
                )
            )  # fmt: skip
        children: list[Child] = []
        person_ids: dict[str, int] = {}
        for name, school, years in CHILDREN:
            family = Family(region="astana", housing_owned=True, area_m2=60, rooms=2)
            session.add(family)
            await session.flush()
            birth = date(2015 + len(children), 3, 1 + random.randrange(28))
            child = Person(
                family_id=family.id, iin=_iin(birth), role="child", last_name="Model",
                first_name=name, birth_date=birth, sex="M", school_grade=3,
                school_id=f"model-{run}-{school}", insured=True,
            )  # fmt: skip
            session.add(child)
            await session.flush()
            voucher_ids = {}
            for start in years:
                voucher = MealVoucher(
                    family_id=family.id, person_id=child.id, school_year_start=start,
                    school_year_end=_YEAR_END[start], amount_tiyn=0, channel="model",
                )  # fmt: skip
                session.add(voucher)
                await session.flush()
                voucher_ids[start] = voucher.id
            await ledger.open_account(
                session=session, code=wallet_code(child.id), kind="purpose_wallet",
                purpose="school_meals", family_id=family.id, person_id=child.id,
            )  # fmt: skip
            accounts.append(Account(wallet_code(child.id), "purpose_wallet", "school_meals"))
            person_ids[name] = child.id
            children.append(
                Child(name, school, wallet_code(child.id), frozenset(years), voucher_ids)
            )
        await session.commit()
    return World(
        run, accounts, schools, children, merchant_ids, person_ids, prescriptions, patient_wallet
    )


async def balances(engine: AsyncEngine, world: World) -> dict[str, int]:
    """Every account of the world with its balance as the database holds it."""
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(
                LedgerAccount.code, LedgerAccount.credits_posted - LedgerAccount.debits_posted
            ).where(LedgerAccount.code.in_([account.code for account in world.accounts]))
        )
        return {code: held for code, held in rows}


async def meals(engine: AsyncEngine, world: World) -> set[Meal]:
    """Every meal served to the world's children, as the database records them."""
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(MealRedemption, Merchant.id)
            .join(Merchant, Merchant.id == MealRedemption.merchant_id)
            .where(MealRedemption.person_id.in_(list(world.person_ids.values())))
        )
        return {
            Meal(
                world.child_named(meal.person_id),
                meal.service_date,
                meal.meal_type,
                world.school_named(merchant_id),
                meal.price_tiyn,
                meal.method,
                meal.qr_nonce,
                meal.claimed_on,
            )
            for meal, merchant_id in rows
        }


async def dispensed(engine: AsyncEngine, world: World) -> dict[str, int]:
    """How much has been dispensed against each of the world's prescriptions."""
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(PrescriptionRow.external_id, PrescriptionRow.dispensed_quantity).where(
                PrescriptionRow.external_id.in_(
                    [world.external_id(rx.name) for rx in world.prescriptions]
                )
            )
        )
        return {
            rx.name: quantity
            for external_id, quantity in rows
            for rx in world.prescriptions
            if world.external_id(rx.name) == external_id and quantity
        }
