"""Bad input reaches a 4xx or a typed refusal, never a 500 (issue 14 item 8, issue 13 item 7).

Each case here was an INTERNAL_SERVER_ERROR or a 500 before: ids past int64, NUL in text, a
far date, a garbage cursor, digits that are not ASCII, JSON nested 20,000 deep. The fix is
general (graphql_schema/scalars.py and limits.py), so the cases are sent to the production
app with trusted documents off, where any document reaches the resolvers.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest

from app.auth import Role

HUGE = "99999999999999999999"  # past int64
CITIZEN_IIN = "900101300126"
PHARMACY = "9a0001a0-0000-4000-8000-000000000002"
SCHOOL = "5c0001a0-0000-4000-8000-000000000001"


def _global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


# (caller, document, variables): each must be refused with BAD_USER_INPUT.
REFUSED = {
    "acceptOffer, huge id": (
        Role.CITIZEN,
        'mutation { acceptOffer(offerId: "' + HUGE + '", idempotencyKey: "k-1") { __typename } }',
        None,
    ),
    "acceptOffer, huge id as a variable": (
        Role.CITIZEN,
        'mutation($o: ID!) { acceptOffer(offerId: $o, idempotencyKey: "k-1") { __typename } }',
        {"o": HUGE},
    ),
    "acceptOffer, huge int literal": (
        Role.CITIZEN,
        "mutation { acceptOffer(offerId: " + HUGE + ', idempotencyKey: "k-1") { __typename } }',
        None,
    ),
    "childMeals, huge id": (
        Role.CITIZEN,
        "query($c: ID!) { childMeals(childId: $c) { edges { node { id } } } }",
        {"c": HUGE},
    ),
    "childMeals, negative id": (
        Role.CITIZEN,
        "query($c: ID!) { childMeals(childId: $c) { edges { node { id } } } }",
        {"c": "-9223372036854775809"},
    ),
    "childMeals, full-width digits": (
        Role.CITIZEN,
        "query($c: ID!) { childMeals(childId: $c) { edges { node { id } } } }",
        {"c": "１２"},
    ),
    "mealQrToken, huge id": (
        Role.CITIZEN,
        "mutation($c: ID!) { mealQrToken(childId: $c) { __typename } }",
        {"c": HUGE},
    ),
    "redeemMeal, huge child id": (
        Role.SCHOOL,
        "mutation($i: RedeemMealInput!) { redeemMeal(input: $i) { __typename } }",
        {"i": {"idempotencyKey": "k-1", "mealType": "LUNCH", "childId": HUGE}},
    ),
    "leaveFeedback, huge event id": (
        Role.CITIZEN,
        "mutation($i: FeedbackInput!) { leaveFeedback(input: $i) { __typename } }",
        {"i": {"eventKind": "MEAL", "eventId": HUGE, "rating": 5}},
    ),
    "prescription, NUL in the id": (
        Role.PHARMACY,
        "query($e: String!) { prescription(externalId: $e) { externalId } }",
        {"e": "RX-1\u0000"},
    ),
    "prescription, NUL in a literal": (
        Role.PHARMACY,
        '{ prescription(externalId: "RX-1\\u0000") { externalId } }',
        None,
    ),
    "prescription, a lone surrogate": (
        Role.PHARMACY,
        "query($e: String!) { prescription(externalId: $e) { externalId } }",
        {"e": "RX-\ud800"},
    ),
    "offerFunnel, until 9999-12-31": (
        Role.OPERATOR,
        '{ offerFunnel(since: "9999-01-01", until: "9999-12-31") { programme } }',
        None,
    ),
    "offerFunnel, full-width year": (
        Role.OPERATOR,
        'query($s: Date!) { offerFunnel(since: $s, until: "2026-11-01") { programme } }',
        {"s": "２０２６-01-01"},
    ),
    "offers, a garbage cursor": (
        Role.CITIZEN,
        '{ me { offers(after: "garbage!") { edges { cursor } } } }',
        None,
    ),
    "offers, a cursor past int64": (
        Role.CITIZEN,
        "query($a: String) { me { offers(after: $a) { edges { cursor } } } }",
        {"a": base64.b64encode(f"arrayconnection:{HUGE}".encode()).decode()},
    ),
    "person, a full-width IIN": (
        Role.OPERATOR,
        "query($i: IIN!) { person(iin: $i) { lastName } }",
        {"i": "９００１０１３００１２６"},
    ),
}
SUBJECTS = {Role.CITIZEN: CITIZEN_IIN, Role.SCHOOL: SCHOOL, Role.PHARMACY: PHARMACY}


def _error_codes(body: dict) -> set[str | None]:
    return {(e.get("extensions") or {}).get("code") for e in body.get("errors", [])}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_bad_input_is_a_typed_refusal_not_a_500(prod_client_for, token_for, case, caplog):
    # given a production app and a caller with the right role
    role, document, variables = REFUSED[case]
    token = token_for(role, SUBJECTS.get(role, "op-1"))
    # when the bad value is sent
    with caplog.at_level(logging.WARNING):
        async with prod_client_for(trusted_documents_only=False) as client:
            # Encoded by us: httpx cannot encode a lone surrogate, JSON's "\ud800" can.
            response = await client.post(
                "/graphql",
                content=json.dumps({"query": document, "variables": variables or {}}),
                headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            )
    # then it is refused as the client's mistake, and logged at warning without a traceback
    body = response.json()
    codes = _error_codes(body)
    if case == "person, a full-width IIN":
        assert codes == {"INVALID_IIN"}
    else:
        assert codes == {"BAD_USER_INPUT"}, body
    assert response.status_code == 200
    refusals = [r for r in caplog.records if r.getMessage().find("graphql.refused") >= 0]
    assert refusals and all(r.levelno == logging.WARNING for r in refusals)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_an_offer_global_id_past_int64_is_not_found(prod_client_for, token_for):
    # given a Relay global id whose number no database column can hold
    offer_id = _global_id("Offer", HUGE)
    document = (
        'mutation($o: ID!) { acceptOffer(offerId: $o, idempotencyKey: "k-2") '
        "{ __typename ... on OfferRefused { code } } }"
    )
    # when a citizen accepts it
    async with prod_client_for(trusted_documents_only=False) as client:
        response = await client.post(
            "/graphql",
            json={"query": document, "variables": {"o": offer_id}},
            headers={"authorization": f"Bearer {token_for(Role.CITIZEN, CITIZEN_IIN)}"},
        )
    # then it is a typed refusal
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["acceptOffer"]["__typename"] == "OfferRefused"


async def test_good_ids_and_dates_still_pass(prod_client_for, token_for):
    # given well-formed values at the edges: the largest bigint, the last allowed date
    document = "query($c: ID!) { childMeals(childId: $c) { edges { node { id } } } }"
    async with prod_client_for(trusted_documents_only=False) as client:
        response = await client.post(
            "/graphql",
            json={"query": document, "variables": {"c": str(2**63 - 1)}},
            headers={"authorization": f"Bearer {token_for(Role.CITIZEN, CITIZEN_IIN)}"},
        )
        funnel = await client.post(
            "/graphql",
            json={
                "query": '{ offerFunnel(since: "2999-01-01", until: "2999-12-31") { programme } }'
            },
            headers={"authorization": f"Bearer {token_for(Role.OPERATOR, 'op-1')}"},
        )
    # then they reach the resolvers (no BAD_USER_INPUT)
    assert "BAD_USER_INPUT" not in _error_codes(response.json())
    assert funnel.json() == {"data": {"offerFunnel": []}}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 20_000 + b"]" * 20_000,
        b'{"query": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b"5",
        b'"x"',
    ],
    ids=["20,000 brackets", "deep query", "a number", "a string"],
)
async def test_a_body_that_is_no_request_is_400(prod_client_for, body, caplog):
    # given a body nested too deep for the JSON decoder, or JSON that is no object
    with caplog.at_level(logging.WARNING):
        async with prod_client_for(trusted_documents_only=False) as client:
            # when it is posted
            response = await client.post(
                "/graphql", content=body, headers={"content-type": "application/json"}
            )
    # then it is refused as the client's mistake, logged at warning without a traceback
    assert response.status_code == 400
    assert any("graphql.http_refused" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
