"""The decline reason in the app (`declineOffer(reason:)`) and by SMS ("2 <code> <digit>"),
and the operators' funnel as the API shows it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth import Role
from familymap.orm import utcnow
from tests.api.test_offers_api import ACCEPT, DECLINE, OFFER_FIELDS, father_offers, inbound
from tests.wallet.offer_builders import FATHER_IIN, FATHER_PHONE, evaluate, newborn_household
from wallet.offer_tables import Offer, OfferTransition
from wallet.offers import offer_new_entitlements
from wallet.outbox_tables import OutboxMessage

DECLINE_WHY = f"""
mutation Decline($id: ID!, $key: String!, $reason: DeclineReason) {{
  declineOffer(offerId: $id, idempotencyKey: $key, reason: $reason) {{
    __typename
    ... on OfferAnswered {{ replayed offer {{ {OFFER_FIELDS} }} }}
    ... on OfferRefused {{ code message }}
  }}
}}
"""
FUNNEL = """
query Funnel($since: Date!, $until: Date!, $groupBy: [FunnelDimension!]) {
  offerFunnel(since: $since, until: $until, groupBy: $groupBy) {
    programme region month sent delivered answered accepted paid vouchersIssued received
    takeUpRate receivedRate steps { step count dropped }
    declined declinedFor { reason count } declinedWithoutReason expired open withdrawn
    needsBankAccount returned inPayment medianHoursToPayment
  }
}
"""


@pytest.fixture
async def household(session):
    """The newborn household, offered the birth benefit and childcare, committed for the app."""
    household = await newborn_household(session)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    await session.commit()
    return household


async def confirmation(session, offer: Offer) -> str:
    return await session.scalar(
        select(OutboxMessage.body).where(OutboxMessage.message_key == f"offer:{offer.id}:declined")
    )


async def test_declining_in_the_app_with_a_reason_records_it_and_the_funnel_counts_it(
    gql, token_for, household, session
):
    # Given the father's two offers
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offers = await father_offers(session, household)
    birth = offers["BIRTH_BENEFIT"]
    variables = {"id": str(birth.id), "key": "no-1", "reason": "WRONG_DATA"}
    # When he declines the birth benefit saying the data is wrong, and the app retries
    first = (await gql(DECLINE_WHY, variables, token=father))["data"]["declineOffer"]
    replay = (await gql(DECLINE_WHY, variables, token=father))["data"]["declineOffer"]
    other = {**variables, "reason": "OTHER"}
    reused = (await gql(DECLINE_WHY, other, token=father))["data"]["declineOffer"]
    # Then the offer is declined for that reason, once; the same key with another reason is
    # another request
    assert first["offer"]["state"] == "DECLINED" and replay == {**first, "replayed": True}
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"
    await session.refresh(birth)
    assert birth.decline_reason == "WRONG_DATA"
    # and the SMS that confirms it does not ask for a reason again
    assert "причину" not in await confirmation(session, birth)
    # When an operator reads today's funnel, in total
    today = utcnow().date().isoformat()
    operator = token_for(Role.OPERATOR, "op-1")
    body = await gql(FUNNEL, {"since": today, "until": today, "groupBy": []}, token=operator)
    (total,) = body["data"]["offerFunnel"]
    # Then the decline is counted with its reason, and the other offer is still open
    assert (total["programme"], total["region"], total["month"]) == ("all", "all", "all")
    assert (total["sent"], total["answered"], total["declined"], total["open"]) == (2, 1, 1, 1)
    assert {row["reason"]: row["count"] for row in total["declinedFor"]} == {
        "NOT_NEEDED": 0, "WRONG_DATA": 1, "DO_NOT_TRUST_SMS": 0, "OTHER": 0,
    }  # fmt: skip
    assert total["declinedWithoutReason"] == 0
    assert [step["step"] for step in total["steps"]] == [
        "sent", "delivered", "answered", "accepted", "received",
    ]  # fmt: skip
    assert (total["takeUpRate"], total["receivedRate"], total["received"]) == (0.0, 0.0, 0)


async def test_the_default_grouping_is_programme_and_region(gql, token_for, household, session):
    # When an operator reads today's funnel without saying how to group it
    today = utcnow().date().isoformat()
    operator = token_for(Role.OPERATOR, "op-1")
    body = await gql(FUNNEL, {"since": today, "until": today}, token=operator)
    # Then there is a row per programme in astana, across months
    rows = body["data"]["offerFunnel"]
    assert [(r["programme"], r["region"], r["month"], r["sent"]) for r in rows] == [
        ("BIRTH_BENEFIT", "astana", "all", 1),
        ("CHILDCARE_TO_1_5", "astana", "all", 1),
    ]


async def test_a_decline_without_a_reason_is_answered_with_the_reasons_numbers(
    gql, token_for, household, session
):
    # Given the father's birth benefit offer
    birth = (await father_offers(session, household))["BIRTH_BENEFIT"]
    # When he declines it in the app without a reason
    father = token_for(Role.CITIZEN, FATHER_IIN)
    declined = await gql(DECLINE, {"id": str(birth.id), "key": "d"}, token=father)
    assert declined["data"]["declineOffer"]["offer"]["state"] == "DECLINED"
    # Then the SMS confirming it says how to give one: 2, the offer's code and a digit
    body = await confirmation(session, birth)
    assert f"2 {birth.reply_code} и цифра: 1 не нужно, 2 неверные данные" in body


async def test_a_reason_by_sms_with_the_decline_or_after_it(client, household, session):
    # Given the father's two offers
    offers = await father_offers(session, household)
    birth, childcare = offers["BIRTH_BENEFIT"], offers["CHILDCARE_TO_1_5"]
    # When he declines childcare by SMS with reason 3
    text = f"2 {childcare.reply_code} 3"
    with_decline = await inbound(client, {"message_id": "r-1", "from": FATHER_PHONE, "text": text})
    # and declines the birth benefit bare, then gives reason 1 as its answer asked
    bare = f"2 {birth.reply_code}"
    await inbound(client, {"message_id": "r-2", "from": FATHER_PHONE, "text": bare})
    after = await inbound(client, {"message_id": "r-3", "from": FATHER_PHONE, "text": f"{bare} 1"})
    # and then, changing his mind, sends another reason
    again = await inbound(client, {"message_id": "r-4", "from": FATHER_PHONE, "text": f"{bare} 4"})
    # Then childcare was declined as not trusting SMS
    assert with_decline.json()["outcome"] == "declined"
    await session.refresh(childcare)
    assert (childcare.state, childcare.decline_reason) == ("declined", "DO_NOT_TRUST_SMS")
    # and the birth benefit's reason is the first one given after, with a thank-you
    assert after.json() == {**after.json(), "outcome": "decline_reason", "offerId": birth.id}
    await session.refresh(birth)
    assert (birth.state, birth.decline_reason) == ("declined", "NOT_NEEDED")
    thanks = await session.scalar(
        select(OutboxMessage.body).where(OutboxMessage.message_key == "inbound:r-3:answer")
    )
    assert "причина отказа записана" in thanks
    assert again.json()["outcome"] == "closed_offer"
    # and the history shows when each reason came
    details = (
        await session.scalars(
            select(OfferTransition.detail)
            .where(OfferTransition.offer_id.in_([birth.id, childcare.id]))
            .order_by(OfferTransition.id)
        )
    ).all()
    assert [d["reason"] for d in details if "reason" in d] == ["DO_NOT_TRUST_SMS", "NOT_NEEDED"]


async def test_a_consent_after_a_decline_clears_its_reason_and_counts_as_accepted(
    gql, token_for, household, session
):
    # Given the father declined the birth benefit because he did not need it
    father = token_for(Role.CITIZEN, FATHER_IIN)
    birth = (await father_offers(session, household))["BIRTH_BENEFIT"]
    declined = {"id": str(birth.id), "key": "d", "reason": "NOT_NEEDED"}
    await gql(DECLINE_WHY, declined, token=father)
    # When he changes his mind before the deadline and accepts it
    accepted = await gql(ACCEPT, {"id": str(birth.id), "key": "a"}, token=father)
    assert accepted["data"]["acceptOffer"]["offer"]["state"] == "ASSIGNED"
    # Then the offer no longer carries the reason, and the funnel counts it accepted
    await session.refresh(birth)
    assert birth.decline_reason is None
    today = utcnow().date().isoformat()
    operator = token_for(Role.OPERATOR, "op-1")
    body = await gql(FUNNEL, {"since": today, "until": today, "groupBy": []}, token=operator)
    (total,) = body["data"]["offerFunnel"]
    assert (total["accepted"], total["declined"], total["inPayment"]) == (1, 0, 1)
    assert all(row["count"] == 0 for row in total["declinedFor"])
