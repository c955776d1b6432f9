"""The proactive flow through the API: answering offers in the app (idempotent, own offers
only), adding a bank account, the operators' funnel, and replies to 1414 by webhook."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from app.auth import Role
from app.settings import DEV_SMS_INBOUND_SECRET
from familymap.orm import utcnow
from tests.clock import PINNED_TODAY
from tests.wallet.offer_builders import (
    FATHER_IIN,
    FATHER_PHONE,
    MOTHER_IIN,
    MOTHER_PHONE,
    evaluate,
    newborn_household,
)
from wallet.inbound import parse_reply, sign
from wallet.months import months_between
from wallet.offer_tables import InboundSms, Offer, Payment
from wallet.offers import offer_new_entitlements
from wallet.outbox_tables import OutboxMessage

OFFER_FIELDS = "id programme title state amountTiyn answerChannel"
ACCEPT = f"""
mutation Accept($id: ID!, $key: String!) {{
  acceptOffer(offerId: $id, idempotencyKey: $key) {{
    __typename
    ... on OfferAnswered {{ replayed offer {{ {OFFER_FIELDS} }} }}
    ... on OfferRefused {{ code message }}
  }}
}}
"""
DECLINE = ACCEPT.replace("acceptOffer", "declineOffer").replace("Accept(", "Decline(")
MY_OFFERS = f"query {{ me {{ offers {{ edges {{ node {{ {OFFER_FIELDS} }} }} }} }} }}"


def my_offers(body: dict) -> list[dict]:
    return [edge["node"] for edge in body["data"]["me"]["offers"]["edges"]]


REGISTER_IBAN = """
mutation Iban($iban: String!, $key: String!) {
  registerBankAccount(iban: $iban, idempotencyKey: $key) {
    __typename
    ... on BankAccountRegistered { ibanMasked replayed paidOffers { programme state } }
    ... on BankAccountRefused { code message }
  }
}
"""
FUNNEL = """
query Funnel($since: Date!, $until: Date!) {
  offerFunnel(since: $since, until: $until) {
    programme region sent delivered accepted declined expired paid takeUpRate medianHoursToPayment
  }
}
"""


@pytest.fixture
async def household(session):
    household = await newborn_household(session)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    await session.commit()
    return household


async def birth_offer(session, household) -> Offer:
    return await session.scalar(
        select(Offer).where(
            Offer.family_id == household.family.id, Offer.programme == "BIRTH_BENEFIT"
        )
    )


async def test_a_citizen_sees_their_offers_in_their_language(gql, token_for, household, client):
    # The offers are in the wallet (`me`), and the entitlements they offer say OFFERED
    father = token_for(Role.CITIZEN, FATHER_IIN)
    body = await gql(MY_OFFERS, token=father)
    titles = {o["programme"]: o["title"] for o in my_offers(body)}
    assert titles["BIRTH_BENEFIT"] == "единовременное пособие на рождение ребёнка"
    response = await client.post(
        "/graphql", json={"query": MY_OFFERS},
        headers={"authorization": f"Bearer {father}", "accept-language": "kk-KZ,kk;q=0.9"},
    )  # fmt: skip
    kk = {o["programme"]: o["title"] for o in my_offers(response.json())}
    assert kk["BIRTH_BENEFIT"] == "бала тууына байланысты біржолғы жәрдемақы"
    # The mother is not the recipient: she sees none of them
    assert my_offers(await gql(MY_OFFERS, token=token_for(Role.CITIZEN, MOTHER_IIN))) == []


async def test_accept_is_idempotent_and_a_replay_returns_the_first_result(
    gql, token_for, household, session
):
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offer = await birth_offer(session, household)
    variables = {"id": str(offer.id), "key": "tap-1"}
    # When the father accepts, then the app retries the same request
    first = (await gql(ACCEPT, variables, token=father))["data"]["acceptOffer"]
    replay = (await gql(ACCEPT, variables, token=father))["data"]["acceptOffer"]
    # Then the first did the work, the replay returns the same offer and changes nothing
    assert first["__typename"] == "OfferAnswered" and first["replayed"] is False
    assert first["offer"]["state"] == "ASSIGNED" and first["offer"]["answerChannel"] == "app"
    assert replay == {**first, "replayed": True}
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1
    # The same key for another offer is refused
    other = await session.scalar(
        select(Offer).where(
            Offer.family_id == household.family.id, Offer.programme == "CHILDCARE_TO_1_5"
        )
    )
    reused = (await gql(ACCEPT, {"id": str(other.id), "key": "tap-1"}, token=father))["data"][
        "acceptOffer"
    ]
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"
    # and a second accept under a new key is a double accept
    again = (await gql(ACCEPT, {**variables, "key": "tap-2"}, token=father))["data"]["acceptOffer"]
    assert again["code"] == "OFFER_ALREADY_ANSWERED"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1


MONTHS = """{ me {
  offers { edges { node {
    programme amountTiyn periodStart periodEnd months { month amountTiyn asOf }
  } } }
  payments { edges { node { programme amountTiyn forMonth } } }
} }"""


async def test_the_app_shows_what_each_month_pays_and_which_month_a_payment_covers(
    gql, token_for, household, session
):
    # Given the father's offers: the birth benefit (one-off) and childcare (monthly)
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offer = await birth_offer(session, household)
    # When he accepts the birth benefit and looks at his wallet
    await gql(ACCEPT, {"id": str(offer.id), "key": "m-1"}, token=father)
    me = (await gql(MONTHS, token=father))["data"]["me"]
    offers = {o["node"]["programme"]: o["node"] for o in me["offers"]["edges"]}
    # Then a monthly offer lists each month of its period with its amount
    childcare = offers["CHILDCARE_TO_1_5"]
    period = months_between(
        date.fromisoformat(childcare["periodStart"]), date.fromisoformat(childcare["periodEnd"])
    )
    assert childcare["months"] == [
        {"month": str(m), "amountTiyn": childcare["amountTiyn"], "asOf": str(PINNED_TODAY)}
        for m in period
    ]
    # and the one-off is one month, the month of the birth, paid in that month's payment
    birth = offers["BIRTH_BENEFIT"]
    (month,) = birth["months"]
    assert month["amountTiyn"] == birth["amountTiyn"]
    (payment,) = [p["node"] for p in me["payments"]["edges"]]
    assert (payment["programme"], payment["amountTiyn"], payment["forMonth"]) == (
        "BIRTH_BENEFIT", birth["amountTiyn"], month["month"],
    )  # fmt: skip


async def test_a_declined_offer_can_be_accepted_in_the_app_and_replays_stay_idempotent(
    gql, token_for, household, session
):
    # Given the father declined the birth benefit in the app
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offer = await birth_offer(session, household)
    declined = (await gql(DECLINE, {"id": str(offer.id), "key": "no-1"}, token=father))["data"][
        "declineOffer"
    ]
    assert declined["offer"]["state"] == "DECLINED"
    # When he changes his mind, and the app retries that request
    accept = {"id": str(offer.id), "key": "yes-1"}
    first = (await gql(ACCEPT, accept, token=father))["data"]["acceptOffer"]
    replay = (await gql(ACCEPT, accept, token=father))["data"]["acceptOffer"]
    # Then the consent is taken once and the replay returns its first result
    assert first["__typename"] == "OfferAnswered" and first["offer"]["state"] == "ASSIGNED"
    assert replay == {**first, "replayed": True}
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1
    # and the old decline, replayed, still answers what it answered, changing nothing
    again = (await gql(DECLINE, {"id": str(offer.id), "key": "no-1"}, token=father))["data"][
        "declineOffer"
    ]
    assert again == {**declined, "replayed": True}
    # while a new decline of the accepted offer is refused
    late = (await gql(DECLINE, {"id": str(offer.id), "key": "no-2"}, token=father))["data"][
        "declineOffer"
    ]
    assert late["code"] == "OFFER_ALREADY_ANSWERED"
    await session.refresh(offer)
    assert offer.state == "assigned"


@pytest.mark.parametrize(
    ("who", "offer_id", "code"),
    [
        ("mother", None, "OFFER_NOT_FOUND"),  # someone else's offer
        ("father", "999999999", "OFFER_NOT_FOUND"),
        ("father", "not-a-number", "OFFER_NOT_FOUND"),
        ("stranger", None, "NOT_IN_REGISTRY"),
    ],
)
async def test_refusals_are_data_with_stable_codes(
    gql, token_for, household, session, who, offer_id, code
):
    iin = {"father": FATHER_IIN, "mother": MOTHER_IIN, "stranger": "880412300021"}[who]
    offer = await birth_offer(session, household)
    variables = {"id": offer_id or str(offer.id), "key": "k"}
    result = (await gql(DECLINE, variables, token=token_for(Role.CITIZEN, iin)))["data"][
        "declineOffer"
    ]
    assert result["code"] == code
    await session.refresh(offer)
    assert offer.state == "offered"


async def test_only_citizens_answer_offers(gql, token_for, household, session):
    offer = await birth_offer(session, household)
    body = await gql(
        ACCEPT, {"id": str(offer.id), "key": "k"}, token=token_for(Role.OPERATOR, "op-1")
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(ACCEPT, {"id": str(offer.id), "key": "k"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_blank_idempotency_key_is_refused(gql, token_for, household, session):
    offer = await birth_offer(session, household)
    result = await gql(
        ACCEPT, {"id": str(offer.id), "key": " "}, token=token_for(Role.CITIZEN, FATHER_IIN)
    )
    assert result["data"]["acceptOffer"]["code"] == "INVALID_IDEMPOTENCY_KEY"


async def test_register_bank_account_pays_waiting_offers(gql, token_for, session):
    household = await newborn_household(session, iban=None)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    await session.commit()
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offer = await birth_offer(session, household)
    accepted = (await gql(ACCEPT, {"id": str(offer.id), "key": "a"}, token=father))["data"][
        "acceptOffer"
    ]
    assert accepted["offer"]["state"] == "NEEDS_BANK_ACCOUNT"
    bad = await gql(REGISTER_IBAN, {"iban": "KZ00125KZT5004100100", "key": "i0"}, token=father)
    assert bad["data"]["registerBankAccount"]["code"] == "INVALID_IBAN"
    ok = await gql(REGISTER_IBAN, {"iban": "KZ86125KZT5004100100", "key": "i1"}, token=father)
    registered = ok["data"]["registerBankAccount"]
    assert registered["ibanMasked"] == "KZ86************0100"
    assert registered["paidOffers"] == [{"programme": "BIRTH_BENEFIT", "state": "ASSIGNED"}]
    replay = await gql(REGISTER_IBAN, {"iban": "KZ86125KZT5004100100", "key": "i1"}, token=father)
    assert replay["data"]["registerBankAccount"]["replayed"] is True
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_the_funnel_counts_each_stage_for_operators(gql, token_for, household, session):
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offer = await birth_offer(session, household)
    await gql(ACCEPT, {"id": str(offer.id), "key": "a"}, token=father)
    today = utcnow().date().isoformat()
    rows = await gql(
        FUNNEL, {"since": today, "until": today}, token=token_for(Role.OPERATOR, "op-1")
    )
    by_programme = {row["programme"]: row for row in rows["data"]["offerFunnel"]}
    birth = by_programme["BIRTH_BENEFIT"]
    assert (birth["sent"], birth["accepted"], birth["declined"], birth["paid"]) == (1, 1, 0, 0)
    assert birth["takeUpRate"] == 1.0 and birth["region"] == "astana"
    assert by_programme["CHILDCARE_TO_1_5"]["takeUpRate"] == 0.0
    # Citizens may not read it; a backwards period is refused
    refused = await gql(FUNNEL, {"since": today, "until": today}, token=father)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    backwards = await gql(
        FUNNEL, {"since": today, "until": "2020-01-01"}, token=token_for(Role.OPERATOR, "op-1")
    )
    assert backwards["errors"][0]["extensions"]["code"] == "INVALID_PERIOD"


# --- Replies to 1414 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), (" да ", True), ("ДА", True), ("Иә", True), ("иә.", True), ("2", False),
     ("Нет", False), ("ЖОҚ", False), ("жоқ!", False), ("yes", None), ("12", None), ("", None)],
)  # fmt: skip
def test_replies_are_read_in_kazakh_and_russian_in_any_case(text, expected):
    assert parse_reply(text) is expected


def signed(body: dict, *, secret: str = DEV_SMS_INBOUND_SECRET, at: int | None = None):
    raw = json.dumps(body).encode()
    timestamp = str(at if at is not None else int(time.time()))
    return raw, {
        "x-sms-timestamp": timestamp,
        "x-sms-signature": sign(secret, timestamp, raw),
        "content-type": "application/json",
    }


async def inbound(client, body: dict, **kwargs):
    raw, headers = signed(body, **kwargs)
    return await client.post("/sms/inbound", content=raw, headers=headers)


async def father_offers(session, household) -> dict[str, Offer]:
    rows = await session.scalars(select(Offer).where(Offer.family_id == household.family.id))
    return {offer.programme: offer for offer in rows}


async def test_a_reply_with_the_offers_code_answers_that_offer_and_no_other(
    client, household, session
):
    # Given the father was sent two offers, the birth benefit and childcare, each with a code
    offers = await father_offers(session, household)
    birth, childcare = offers["BIRTH_BENEFIT"], offers["CHILDCARE_TO_1_5"]
    assert birth.reply_code != childcare.reply_code
    # When he replies "Да" with the birth benefit's code
    response = await inbound(
        client, {"message_id": "gw-1", "from": FATHER_PHONE, "text": f"Да {birth.reply_code}"}
    )
    # Then the birth benefit is assigned, and childcare still waits for its own answer
    assert response.status_code == 200
    body = response.json()
    assert body["offerId"] == birth.id
    for offer in (birth, childcare):
        await session.refresh(offer)
    assert (body["outcome"], birth.state, birth.answer_channel) == ("assigned", "assigned", "sms")
    assert childcare.state == "offered"
    # A repeated delivery of the same message changes nothing and says so
    again = await inbound(
        client, {"message_id": "gw-1", "from": FATHER_PHONE, "text": f"Да {birth.reply_code}"}
    )
    assert again.json() == {**body, "replayed": True}
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_a_reply_without_a_code_to_two_offers_changes_nothing_and_lists_the_codes(
    client, household, session
):
    # Given the father was sent two offers (the birth benefit, then childcare)
    offers = await father_offers(session, household)
    # When he replies a bare "1"
    response = await inbound(client, {"message_id": "gw-bare", "from": FATHER_PHONE, "text": "1"})
    # Then no offer changes, and the answer asks again with each open offer's code
    assert response.json()["outcome"] == "ambiguous" and response.json()["offerId"] is None
    assert (
        await session.scalar(
            select(func.count()).select_from(Offer).where(Offer.state != "offered")
        )
        == 0
    )
    answer = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == "inbound:gw-bare:answer")
    )
    assert answer.recipient == FATHER_PHONE
    for offer in offers.values():
        assert f"{offer.reply_code} (" in answer.body


@pytest.mark.parametrize(
    ("sender", "text", "outcome"),
    [
        (MOTHER_PHONE, "1", "unknown_number"),  # the offer went to the father's phone
        ("+77770000000", "1", "unknown_number"),
        (FATHER_PHONE, "maybe", "unparseable"),
        ("12345", "1", "invalid_sender"),
    ],
)
async def test_other_replies_change_nothing_and_get_a_helpful_answer(
    client, household, session, sender, text, outcome
):
    response = await inbound(client, {"message_id": f"gw-{outcome}", "from": sender, "text": text})
    assert response.status_code == 200 and response.json()["outcome"] == outcome
    assert (
        await session.scalar(
            select(func.count()).select_from(Offer).where(Offer.state != "offered")
        )
        == 0
    )
    stored = await session.scalar(
        select(InboundSms).where(InboundSms.gateway_message_id == f"gw-{outcome}")
    )
    assert stored.outcome == outcome and sender not in stored.sender_masked
    answer = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"inbound:gw-{outcome}:answer")
    )
    if outcome == "invalid_sender":
        assert answer is None  # nowhere to send it
    else:
        assert answer is not None and "1414" in answer.body and answer.recipient == sender


async def test_a_reply_with_no_open_offer_is_told_so(client, household, session):
    # Given the father declined each of his offers by its code
    for n, offer in enumerate((await father_offers(session, household)).values()):
        sent = {"message_id": f"gw-{n}", "from": FATHER_PHONE, "text": f"2 {offer.reply_code}"}
        assert (await inbound(client, sent)).json()["outcome"] == "declined"
    # When he replies again, without a code
    last = await inbound(client, {"message_id": "gw-last", "from": FATHER_PHONE, "text": "1"})
    # Then he is told nothing waits for his answer
    assert last.json()["outcome"] == "no_open_offer"


@pytest.mark.parametrize("forgery", ["wrong secret", "no signature", "stale", "tampered body"])
async def test_a_forged_or_replayed_webhook_is_refused(client, household, session, forgery):
    body = {"message_id": "gw-x", "from": FATHER_PHONE, "text": "1"}
    if forgery == "wrong secret":
        raw, headers = signed(body, secret="guess")
    elif forgery == "stale":
        raw, headers = signed(body, at=int(time.time()) - 3600)
    else:
        raw, headers = signed(body)
    if forgery == "no signature":
        headers.pop("x-sms-signature")
    if forgery == "tampered body":
        raw = raw.replace(b'"1"', b'"2"')
    response = await client.post("/sms/inbound", content=raw, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == (
        "STALE_SIGNATURE" if forgery == "stale" else "INVALID_SIGNATURE"
    )
    assert await session.scalar(select(func.count()).select_from(InboundSms)) == 0
    assert (
        await session.scalar(
            select(func.count()).select_from(Offer).where(Offer.state != "offered")
        )
        == 0
    )


async def test_a_malformed_body_is_refused(client):
    raw = b"[1, 2]"
    timestamp = str(int(time.time()))
    headers = {
        "x-sms-timestamp": timestamp,
        "x-sms-signature": sign(DEV_SMS_INBOUND_SECRET, timestamp, raw),
    }
    response = await client.post("/sms/inbound", content=raw, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_INBOUND"


STATUSES = "{ me { entitlements(first: 100) { edges { node { programme personId status } } } } }"


async def test_an_offer_shows_in_the_entitlement_status_and_consent_makes_it_receiving(
    gql, token_for, household, session
):
    father = token_for(Role.CITIZEN, FATHER_IIN)

    async def birth_status() -> str:
        body = await gql(STATUSES, token=father)
        edges = body["data"]["me"]["entitlements"]["edges"]
        return next(e["node"]["status"] for e in edges if e["node"]["programme"] == "BIRTH_BENEFIT")

    assert await birth_status() == "OFFERED"
    offer = await birth_offer(session, household)
    # The mutation also takes the offer's Relay global id, as the wallet lists it
    global_id = (await gql(MY_OFFERS, token=father))["data"]["me"]["offers"]["edges"]
    node = next(e["node"] for e in global_id if e["node"]["programme"] == "BIRTH_BENEFIT")
    answered = (await gql(ACCEPT, {"id": node["id"], "key": "g"}, token=father))["data"][
        "acceptOffer"
    ]
    assert answered["offer"]["state"] == "ASSIGNED" and answered["offer"]["id"] == node["id"]
    assert await birth_status() == "RECEIVING"
    await session.refresh(offer)
    assert offer.state == "assigned"


AUDIT = "query($iin: IIN!) { auditRecords(subjectIin: $iin) { edges { node { actorRole action what operation } } } }"  # fmt: skip
MY_DATA_ACCESS = "{ myDataAccess { edges { node { actorRole actorId action what operation } } } }"


async def test_answers_are_in_the_audit_trail_whichever_channel(
    gql, token_for, household, client, session
):
    # Given the father answers one offer in the app and another by SMS
    father = token_for(Role.CITIZEN, FATHER_IIN)
    offer = await birth_offer(session, household)
    await gql(DECLINE, {"id": str(offer.id), "key": "d"}, token=father)
    childcare = (await father_offers(session, household))["CHILDCARE_TO_1_5"]
    reply = {"message_id": "gw-audit", "from": FATHER_PHONE, "text": f"1 {childcare.reply_code}"}
    await inbound(client, reply)
    # Then an operator finds both writes about him
    trail = await gql(AUDIT, {"iin": FATHER_IIN}, token=token_for(Role.OPERATOR, "op-1"))
    records = [edge["node"] for edge in trail["data"]["auditRecords"]["edges"]]
    writes = [r for r in records if r["action"] == "write"]
    assert any(
        r["actorRole"] == "CITIZEN" and "BIRTH_BENEFIT declined" in r["what"] for r in writes
    )
    assert any(
        r["actorRole"] == "SMS_GATEWAY" and r["operation"] == "POST /sms/inbound" for r in writes
    )
    # and the father sees the gateway's change to his family's data (his own requests aside)
    edges = (await gql(MY_DATA_ACCESS, token=father))["data"]["myDataAccess"]["edges"]
    seen = [edge["node"] for edge in edges]
    assert [r["actorRole"] for r in seen if r["action"] == "write"] == ["SMS_GATEWAY"]
