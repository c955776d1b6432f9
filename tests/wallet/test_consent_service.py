"""wallet.consent_service: answering an offer and registering an IBAN in the app, once per
idempotency key, audited, and a request that lost a race under its key answered with the
winner's result."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from familymap.audit import Caller
from familymap.audit_tables import AuditRecord
from familymap.clock import utc_now
from tests.wallet.offer_builders import FATHER_IIN, IBAN, evaluate, newborn_household
from wallet import consent_service, idempotency
from wallet.idempotency import IdempotencyKeyReused
from wallet.offer_tables import Offer
from wallet.offers import offer_new_entitlements

FATHER = Caller(key=b"k" * 32, actor=FATHER_IIN, role="CITIZEN", operation="t", request_id=None)


@pytest.fixture
async def birth_offer(session) -> Offer:
    household = await newborn_household(session)
    run_id = await evaluate(session, household)
    await offer_new_entitlements(session=session, run_id=run_id, now=utc_now())
    offer = await session.scalar(
        select(Offer).where(
            Offer.family_id == household.family.id, Offer.programme == "BIRTH_BENEFIT"
        )
    )
    await session.commit()
    return offer


def accept(session_factory, offer: Offer, key: str = "k-1", caller: Caller = FATHER):
    return consent_service.answer_in_app(
        sessions=session_factory, caller=caller, key=key, offer_ref=str(offer.id),
        offer_id=offer.id, accept=True, reason=None, now=utc_now(), offer_days=30,
    )  # fmt: skip


async def test_an_answer_is_made_once_per_key_and_audited(session, session_factory, birth_offer):
    first = await accept(session_factory, birth_offer)
    again = await accept(session_factory, birth_offer)
    assert first.replayed is False and first.offer["state"] == "assigned"
    assert again.replayed is True and again.offer == first.offer
    whats = list(
        await session.scalars(select(AuditRecord.what).where(AuditRecord.role == "CITIZEN"))
    )
    assert whats == [f"offer {birth_offer.id} BIRTH_BENEFIT assigned"]
    # The same key for another offer is refused
    with pytest.raises(IdempotencyKeyReused):
        await consent_service.answer_in_app(
            sessions=session_factory, caller=FATHER, key="k-1", offer_ref="999",
            offer_id=999, accept=True, reason=None, now=utc_now(), offer_days=30,
        )  # fmt: skip


async def test_a_caller_not_in_the_registry_is_refused(session_factory, birth_offer):
    stranger = Caller(
        key=b"k" * 32, actor="900101300126", role="CITIZEN", operation="t", request_id=None
    )
    with pytest.raises(consent_service.NotInRegistry):
        await accept(session_factory, birth_offer, caller=stranger)


def lose_the_first_look(monkeypatch) -> None:
    """The request looks for its key before the concurrent winner committed it: its first
    look finds nothing (as it would have a moment earlier); the later ones see the record."""
    real = idempotency.replayed  # what consent_service calls, by its own name
    looks = []

    async def late(**kwargs):
        looks.append(kwargs["key"])
        return None if len(looks) == 1 else await real(**kwargs)

    monkeypatch.setattr(consent_service, "replayed", late)


async def test_an_answer_that_lost_the_race_returns_the_winners(
    session_factory, birth_offer, monkeypatch
):
    winner = await accept(session_factory, birth_offer)
    lose_the_first_look(monkeypatch)
    loser = await accept(session_factory, birth_offer)
    assert loser.replayed is True and loser.offer == winner.offer


async def test_a_bank_account_registration_that_lost_the_race_returns_the_winners(
    session_factory, birth_offer, monkeypatch
):
    def register():
        return consent_service.register_bank_account_in_app(
            sessions=session_factory, caller=FATHER, key="b-1", iban=IBAN, now=utc_now()
        )

    winner = await register()
    assert winner.replayed is False and winner.iban_masked == "KZ86************0100"
    lose_the_first_look(monkeypatch)
    loser = await register()
    assert loser.replayed is True
    assert (loser.iban_masked, loser.paid_offers) == (winner.iban_masked, winner.paid_offers)
