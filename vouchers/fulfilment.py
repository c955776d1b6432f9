"""Consent to a voucher programme through the offer flow (SMS or app) issues the voucher.

The wallet's offer flow knows nothing of vouchers (the dependency points the other way): it
calls the fulfiller registered for the programme, in the consenting transaction. The app
registers these at start (`register_voucher_fulfillers`). A voucher refusal (no school year
today, no current entitlement) keeps its own code and undoes the consent.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from vouchers.errors import VoucherError
from vouchers.meals import issue_meal_voucher
from vouchers.medicines import issue_medicine_voucher
from wallet.offer_tables import Offer
from wallet.offers import FulfilmentRefused, register_fulfiller


async def fulfil_school_meals(
    session: AsyncSession, offer: Offer, amount: int, start: date, end: date
) -> None:
    """Issue and fund the child's meal voucher for the school year the offer is for."""
    assert offer.beneficiary_person_id is not None  # a person programme names its pupil
    try:
        await issue_meal_voucher(
            session=session,
            child_person_id=offer.beneficiary_person_id,
            school_year=start,
            consented_by=offer.recipient_person_id,
            channel=offer.answer_channel or "app",
        )
    except VoucherError as refused:
        raise FulfilmentRefused(refused.code, str(refused)) from refused


async def fulfil_medicines(
    session: AsyncSession, offer: Offer, amount: int, start: date, end: date
) -> None:
    """Fund the person's medicines wallet for the current entitlement period."""
    assert offer.beneficiary_person_id is not None  # a person programme names its person
    try:
        await issue_medicine_voucher(
            session=session,
            person_id=offer.beneficiary_person_id,
            consented_by=offer.recipient_person_id,
            channel=offer.answer_channel or "app",
        )
    except VoucherError as refused:
        raise FulfilmentRefused(refused.code, str(refused)) from refused


def register_voucher_fulfillers() -> None:
    """Let consent to SCHOOL_MEALS and MEDICINES offers issue their vouchers."""
    register_fulfiller("SCHOOL_MEALS", fulfil_school_meals)
    register_fulfiller("MEDICINES", fulfil_medicines)
