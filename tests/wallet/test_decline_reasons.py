"""The reason a person may give for declining: read from an SMS reply ("2 4821 3"), checked
by the domain, never given with a consent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from familymap.orm import utcnow
from tests.wallet.offer_builders import evaluate, newborn_household
from wallet.inbound import read_reply, split_decline_reason
from wallet.offer_tables import Offer
from wallet.offers import InvalidDeclineReason, answer_offer, offer_new_entitlements


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 4821 3", ("2 4821", "DO_NOT_TRUST_SMS")),
        ("нет 4821 1", ("нет 4821", "NOT_NEEDED")),
        ("Жоқ, 4821, 2", ("Жоқ 4821", "WRONG_DATA")),
        ("24821 4", ("24821", "OTHER")),
        ("2 3", ("2", "DO_NOT_TRUST_SMS")),  # without a code, as a bare decline
        ("2 4821 9", ("2 4821", None)),  # no such reason: the decline stands without one
        ("2 4821", ("2 4821", None)),
        ("4821 2", ("4821 2", None)),  # the code, then the answer: no reason
        ("1 4821 3", ("1 4821 3", None)),  # only a decline carries a reason
        ("2 482 3", ("2 482 3", None)),  # not a code
        ("2 4821 ٣", ("2 4821 ٣", None)),  # ASCII digits only
        ("2 4821 3 3", ("2 4821 3 3", None)),
    ],
)
def test_a_decline_reads_its_reason_digit(text, expected):
    assert split_decline_reason(text) == expected


def test_what_remains_is_read_as_before():
    # When a decline with a reason has its reason split off
    rest, reason = split_decline_reason("2 4821 3")
    # Then the rest is a decline of offer 4821
    assert (read_reply(rest), reason) == ((False, "4821"), "DO_NOT_TRUST_SMS")


@pytest.mark.parametrize(("accept", "reason"), [(True, "NOT_NEEDED"), (False, "BORED")])
async def test_a_reason_with_a_consent_or_off_the_list_is_refused(session, accept, reason):
    # Given an offer
    household = await newborn_household(session)
    run_id = await evaluate(session, household)
    await offer_new_entitlements(session=session, run_id=run_id, now=utcnow())
    offer = (await household_offers(session, household))[0]
    # When it is answered with a reason that cannot be
    # Then the answer is refused with a stable code, and the offer still waits
    with pytest.raises(InvalidDeclineReason) as refused:
        await answer_offer(
            session=session,
            offer_id=offer.id,
            recipient_person_id=household.father.id,
            accept=accept,
            channel="app",
            reason=reason,
        )
    assert refused.value.code == "INVALID_DECLINE_REASON"
    await session.refresh(offer)
    assert offer.state == "offered" and offer.decline_reason is None


async def household_offers(session, household):
    return (
        await session.scalars(select(Offer).where(Offer.family_id == household.family.id))
    ).all()
