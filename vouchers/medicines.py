"""Medicines: e-prescriptions from the health system, dispensed by pharmacies.

A dispensing moves `quantity × unit price` from the patient's medicines wallet to the
pharmacy's account (MEDICINE_DISPENSED) in the same transaction as its row, and raises the
prescription's dispensed quantity by a conditional UPDATE that refuses to pass the prescribed
quantity, so two pharmacies racing for the last units cannot both have them.

A patient without a medicines voucher in force is refused NO_VOUCHER before anything moves,
and one whose voucher has too little left INSUFFICIENT_FUNDS, both in words a pharmacist
can read (never the ledger's account names). Idempotency keys are each pharmacy's own.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from familymap.i18n import Tiyn
from familymap.parameters import default_parameters
from familymap.tables import Entitlement, Person
from vouchers.errors import (
    DrugMismatch,
    IdempotencyKeyReused,
    IdentityCheckRequired,
    InvalidInput,
    NotEligible,
    NotFound,
    NoVoucher,
    PrescriptionExpired,
    QuantityExceeded,
    VoucherSpent,
)
from vouchers.merchants import get_merchant
from vouchers.tables import (
    FALLBACK_REASONS,
    IDENTITY_METHODS,
    Dispensing,
    MedicineVoucher,
    Merchant,
    Prescription,
)
from wallet.ledger import InsufficientFunds, Reason, balance, open_account, transfer

PURPOSE = "medicines"
PROGRAMME = "MEDICINES"
PROGRAMME_ACCOUNT = f"programme:{PROGRAMME}"
# A fallback's written account: at least this many words of two letters or more ("." or
# "ok" is not an account of why neither eGov QR nor Face-ID could be used).
FALLBACK_ACCOUNT_WORDS = 3
_WORD = re.compile(r"[^\W\d_]{2,}")
MAX_ACCOUNT_LENGTH = 500  # dispensings.identity_reason


def drug_name(*, drug_code: str, language: str, on: date) -> str | None:
    """The drug's name for screens in kk / ru / en, or None when its ATC code is not listed."""
    # ATC code -> {language: name}, by the parameter's schema.
    names = cast(
        Mapping[str, Mapping[str, str]], default_parameters().get("medicines.drug_names", on)
    )
    entry = names.get(drug_code.strip().upper())
    return None if entry is None else entry.get(language, entry["en"])


def wallet_code(person_id: int) -> str:
    """The person's medicines wallet in the ledger."""
    return f"person:{person_id}:{PURPOSE}"


async def issue_medicine_voucher(
    *,
    session: AsyncSession,
    person_id: int,
    consented_by: int | None,
    channel: str,
) -> tuple[MedicineVoucher, bool]:
    """Fund the person's medicines wallet for the period of their current MEDICINES
    entitlement; idempotent per period. Returns (voucher, created)."""
    entitlement = await session.scalar(
        select(Entitlement).where(
            Entitlement.person_id == person_id, Entitlement.programme == PROGRAMME
        )
    )
    if entitlement is None or entitlement.period_start is None or entitlement.period_end is None:
        raise NotEligible("refusal.no_medicines_entitlement")
    existing = await _voucher_for(session, person_id, entitlement.period_start)
    if existing is not None:
        return existing, False
    voucher = MedicineVoucher(
        family_id=entitlement.family_id,
        person_id=person_id,
        period_start=entitlement.period_start,
        period_end=entitlement.period_end,
        amount_tiyn=entitlement.amount_tiyn,
        consented_by_person_id=consented_by,
        channel=channel,
    )
    try:
        async with session.begin_nested():
            session.add(voucher)
    except IntegrityError:
        raced = await _voucher_for(session, person_id, entitlement.period_start)
        if raced is None:
            raise
        return raced, False
    await _open_wallet(session, person_id=person_id, family_id=entitlement.family_id)
    await transfer(
        session=session,
        transfer_id=f"voucher-funding:{PURPOSE}:{person_id}:{entitlement.period_start}",
        debit=PROGRAMME_ACCOUNT,
        credit=wallet_code(person_id),
        amount=voucher.amount_tiyn,
        reason=Reason.VOUCHER_FUNDING,
        metadata={"medicine_voucher_id": voucher.id},
    )
    return voucher, True


async def _open_wallet(session: AsyncSession, *, person_id: int, family_id: int) -> None:
    await open_account(
        session=session, code=PROGRAMME_ACCOUNT, kind="budget_programme", purpose=PURPOSE
    )
    await open_account(
        session=session,
        code=wallet_code(person_id),
        kind="purpose_wallet",
        purpose=PURPOSE,
        family_id=family_id,
        person_id=person_id,
    )


async def _voucher_for(
    session: AsyncSession, person_id: int, start: date
) -> MedicineVoucher | None:
    return await session.scalar(
        select(MedicineVoucher).where(
            MedicineVoucher.person_id == person_id, MedicineVoucher.period_start == start
        )
    )


@dataclass(frozen=True, slots=True)
class PrescriptionInput:
    """An e-prescription as the health system sends it."""

    external_id: str
    patient_iin: str
    drug_code: str
    quantity: int
    unit_price_tiyn: int
    valid_until: date
    prescribing_org: str


async def record_prescription(
    *, session: AsyncSession, prescription: PrescriptionInput, source: str
) -> tuple[Prescription, bool]:
    """Store an e-prescription; idempotent by its external id. Returns (row, created)."""
    p = prescription
    if p.quantity <= 0 or p.unit_price_tiyn <= 0 or not p.drug_code.strip():
        raise InvalidInput("refusal.prescription_incomplete")
    patient = await session.scalar(select(Person).where(Person.iin == p.patient_iin))
    if patient is None:
        raise NotFound("refusal.patient_not_in_family_map")
    content = {
        "person_id": patient.id,
        "drug_code": p.drug_code,
        "quantity": p.quantity,
        "unit_price_tiyn": p.unit_price_tiyn,
        "valid_until": p.valid_until,
        "prescribing_org": p.prescribing_org,
    }
    existing = await session.scalar(
        select(Prescription).where(Prescription.external_id == p.external_id)
    )
    if existing is not None:
        if any(getattr(existing, name) != value for name, value in content.items()):
            raise IdempotencyKeyReused(
                "refusal.prescription_sent_otherwise", id=repr(p.external_id)
            )
        return existing, False
    row = Prescription(
        external_id=p.external_id,
        family_id=patient.family_id,
        source=source,
        dispensed_quantity=0,
        **content,
    )
    session.add(row)
    await session.flush()
    return row, True


@dataclass(frozen=True, slots=True)
class DispenseRequest:
    """A pharmacy's dispensing against one prescription."""

    idempotency_key: str
    prescription_external_id: str
    drug_code: str
    quantity: int
    identity_method: str
    identity_reason: str | None = None
    identity_reason_code: str | None = None


async def dispense(
    *,
    session: AsyncSession,
    merchant_id: uuid.UUID | str,
    request: DispenseRequest,
    today: date,
) -> tuple[Dispensing, bool]:
    """Dispense against a prescription and pay the pharmacy from the patient's medicines
    wallet. Returns (dispensing, replayed)."""
    pharmacy = await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    prescription = await session.scalar(
        select(Prescription).where(Prescription.external_id == request.prescription_external_id)
    )
    if prescription is None:
        raise NotFound("refusal.no_such_prescription")
    first = await session.scalar(
        select(Dispensing).where(
            Dispensing.merchant_id == pharmacy.id,
            Dispensing.idempotency_key == request.idempotency_key,
        )
    )
    if first is not None:
        same = (
            first.prescription_id == prescription.id
            and first.merchant_id == pharmacy.id
            and first.drug_code == request.drug_code
            and first.quantity == request.quantity
            and first.identity_method == request.identity_method
        )
        if not same:
            raise IdempotencyKeyReused("refusal.dispensing_key_reused")
        return first, True
    _check_identity(request)
    if request.drug_code != prescription.drug_code:
        raise DrugMismatch("refusal.drug_mismatch")
    if today > prescription.valid_until:
        raise PrescriptionExpired(
            "refusal.prescription_expired", valid_until=prescription.valid_until
        )
    if request.quantity <= 0:
        raise InvalidInput("refusal.quantity_above_zero")
    await _voucher_in_force_or_refuse(session, prescription.person_id, today)
    taken = await session.execute(
        update(Prescription)
        .where(
            Prescription.id == prescription.id,
            Prescription.dispensed_quantity + request.quantity <= Prescription.quantity,
        )
        .values(dispensed_quantity=Prescription.dispensed_quantity + request.quantity)
        .returning(Prescription.dispensed_quantity)
        .execution_options(synchronize_session=False)
    )
    if taken.first() is None:
        raise QuantityExceeded("refusal.quantity_exceeded")
    amount = request.quantity * prescription.unit_price_tiyn
    row = Dispensing(
        idempotency_key=request.idempotency_key,
        prescription_id=prescription.id,
        family_id=prescription.family_id,
        person_id=prescription.person_id,
        merchant_id=pharmacy.id,
        drug_code=request.drug_code,
        quantity=request.quantity,
        amount_tiyn=amount,
        identity_method=request.identity_method,
        identity_reason=request.identity_reason,
        identity_reason_code=request.identity_reason_code,
        service_date=today,
        transfer_id=dispensing_transfer_id(pharmacy.id, request.idempotency_key),
    )
    session.add(row)
    await session.flush()
    try:
        await transfer(
            session=session,
            transfer_id=row.transfer_id,
            debit=wallet_code(prescription.person_id),
            credit=f"merchant:{pharmacy.id}",
            amount=amount,
            reason=Reason.MEDICINE_DISPENSED,
            family_id=prescription.family_id,
            person_id=prescription.person_id,
            metadata={"dispensing_id": row.id},
        )
    except InsufficientFunds:
        left = await balance(session=session, account=wallet_code(prescription.person_id))
        raise VoucherSpent(
            "refusal.medicines_voucher_spent", left=Tiyn(left), amount=Tiyn(amount)
        ) from None
    return row, False


def dispensing_transfer_id(pharmacy_id: uuid.UUID, idempotency_key: str) -> str:
    """The ledger id of a dispensing: one per pharmacy and key (a key is the pharmacy's own,
    so another pharmacy's same key is another transfer); hashed, so that it fits any key."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"dispensing:{pharmacy_id}:{digest}"


async def _voucher_in_force_or_refuse(session: AsyncSession, person_id: int, today: date) -> None:
    """NO_VOUCHER unless the patient holds a medicines voucher whose period covers `today`."""
    voucher = await session.scalar(
        select(MedicineVoucher.id).where(
            MedicineVoucher.person_id == person_id,
            MedicineVoucher.period_start <= today,
            MedicineVoucher.period_end >= today,
        )
    )
    if voucher is None:
        raise NoVoucher("refusal.no_medicines_voucher")


def _check_identity(request: DispenseRequest) -> None:
    if request.identity_method not in IDENTITY_METHODS:
        raise IdentityCheckRequired("refusal.identity_method", methods=", ".join(IDENTITY_METHODS))
    if request.identity_method != "fallback":
        return
    if request.identity_reason_code not in FALLBACK_REASONS:
        raise IdentityCheckRequired("refusal.fallback_reason", reasons=", ".join(FALLBACK_REASONS))
    if len(request.identity_reason or "") > MAX_ACCOUNT_LENGTH:
        raise InvalidInput("refusal.fallback_account_length", count=MAX_ACCOUNT_LENGTH)
    if len(_WORD.findall(request.identity_reason or "")) < FALLBACK_ACCOUNT_WORDS:
        raise IdentityCheckRequired("refusal.fallback_account_words", count=FALLBACK_ACCOUNT_WORDS)


@dataclass(frozen=True, slots=True)
class DispensingView:
    """What was dispensed, where and when, as a patient or pharmacy sees it."""

    dispensing_id: int
    drug_code: str
    quantity: int
    amount_tiyn: int
    pharmacy_name: str
    dispensed_on: date
    identity_method: str
    family_id: int  # whose data it is, for the audit trail of who read it
    person_id: int  # and whom it is about


async def prescription_for_pharmacy(
    *, session: AsyncSession, merchant_id: uuid.UUID | str, external_id: str, today: date
) -> tuple[Prescription, Person]:
    """The e-prescription a pharmacy is about to dispense against, and its patient.

    Any pharmacy may dispense any prescription (the patient chooses where), so any pharmacy
    may look one up by its id; NotFound otherwise.
    """
    await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    row = (
        await session.execute(
            select(Prescription, Person)
            .join(Person, Person.id == Prescription.person_id)
            .where(Prescription.external_id == external_id)
        )
    ).first()
    if row is None:
        raise NotFound("refusal.no_such_prescription")
    return row[0], row[1]


async def dispensings_of_person(*, session: AsyncSession, iin: str) -> list[DispensingView]:
    """Everything dispensed to the citizen with this IIN, newest first."""
    person = await session.scalar(select(Person.id).where(Person.iin == iin))
    if person is None:
        return []
    return await _views(session, Dispensing.person_id == person)


async def dispensings_of_pharmacy(
    *, session: AsyncSession, merchant_id: uuid.UUID | str
) -> list[DispensingView]:
    """Everything the pharmacy dispensed, newest first."""
    pharmacy = await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    return await _views(session, Dispensing.merchant_id == pharmacy.id)


async def _views(session: AsyncSession, where: ColumnElement[bool]) -> list[DispensingView]:
    rows = await session.execute(
        select(Dispensing, Merchant.name)
        .join(Merchant, Merchant.id == Dispensing.merchant_id)
        .where(where)
        .order_by(Dispensing.id.desc())
    )
    return [
        DispensingView(
            d.id,
            d.drug_code,
            d.quantity,
            d.amount_tiyn,
            name,
            d.service_date,
            d.identity_method,
            d.family_id,
            d.person_id,
        )
        for d, name in rows
    ]
