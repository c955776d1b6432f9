"""Relay: `node(id:)` refetches every Node type, for those who may see it and no one else."""

from __future__ import annotations

import base64

import pytest

from app.auth import Role
from familymap.orm import utcnow
from graphql_schema.queries.node import FINDERS
from tests.vouchers.vouchers_builders import family_with_pupil, school
from tests.wallet.offer_builders import FATHER_IIN, MOTHER_IIN, evaluate, newborn_household
from tests.wallet.wallet_builders import open_books, pay_benefit
from wallet.offer_tables import Notification
from wallet.offers import offer_new_entitlements

WALLET_IDS = """
{ me {
  entitlements(first: 100) { edges { node { __typename id } } }
  offers(first: 100) { edges { node { __typename id } } }
  notifications(first: 100) { edges { node { __typename id } } }
  payments(first: 100) { edges { node { __typename id } } }
  vouchers(first: 100) { edges { node { __typename id } } }
} }
"""
NODE = """
query Node($id: ID!) { node(id: $id) {
  __typename id
  ... on Entitlement { programme status }
  ... on Offer { programme state }
  ... on Notification { programme body }
  ... on BenefitPayment { amountTiyn }
  ... on WalletVoucher { programme fundedTiyn }
} }
"""
CONSENT = """
mutation($child: ID!) { consentToMealVoucher(childId: $child) { __typename } }
"""


def global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


async def listed_nodes(gql, token: str) -> list[dict]:
    body = await gql(WALLET_IDS, token=token)
    assert "errors" not in body, body
    return [edge["node"] for page in body["data"]["me"].values() for edge in page["edges"]]


async def refetch(gql, token: str, node_id: str) -> dict:
    return await gql(NODE, {"id": node_id}, token=token)


@pytest.fixture
async def father_family(session):
    """A newborn's family: offers to the father, a notice to him, a benefit paid to him."""
    household = await newborn_household(session)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    session.add(
        Notification(
            fact_key="relay-notice", family_id=household.family.id,
            person_id=household.father.id, programme="PENSION_AGE", language="ru",
            body="Notice body",
        )
    )  # fmt: skip
    await open_books(session)
    await pay_benefit(session, tid="relay-asp-1", person=household.father, amount=4_000_000)
    await session.commit()
    return household


async def test_node_refetches_every_node_the_wallet_lists(gql, token_for, father_family, session):
    # given the father's wallet lists entitlements, offers, a notice and a payment
    father = token_for(Role.CITIZEN, FATHER_IIN)
    listed = await listed_nodes(gql, father)
    # and a parent whose child holds a meal voucher
    _, parent, child = await family_with_pupil(session)
    await school(session)
    await session.commit()
    citizen = token_for(Role.CITIZEN, parent.iin)
    consented = await gql(CONSENT, {"child": str(child.id)}, token=citizen)
    assert consented["data"]["consentToMealVoucher"]["__typename"] == "MealVoucherIssued"
    vouchers = [n for n in await listed_nodes(gql, citizen) if n["__typename"] == "WalletVoucher"]

    # when each listed node is refetched by its id
    seen = {}
    for token, nodes in ((father, listed), (citizen, vouchers)):
        for node in nodes:
            body = await refetch(gql, token, node["id"])
            assert "errors" not in body, body
            seen[node["id"]] = body["data"]["node"]

    # then every Node type comes back, each as the same object it was listed as
    assert {n["__typename"] for n in seen.values()} == set(FINDERS)
    for node in [*listed, *vouchers]:
        assert seen[node["id"]]["__typename"] == node["__typename"]
        assert seen[node["id"]]["id"] == node["id"]


async def test_node_is_not_found_for_what_the_caller_may_not_see(gql, token_for, father_family):
    # given the offers, notice and payment of the father
    father = token_for(Role.CITIZEN, FATHER_IIN)
    own = [
        n
        for n in await listed_nodes(gql, father)
        if n["__typename"] in {"Offer", "Notification", "BenefitPayment"}
    ]
    assert {n["__typename"] for n in own} == {"Offer", "Notification", "BenefitPayment"}
    callers = {
        "the mother (offers and notices are the addressee's)": token_for(Role.CITIZEN, MOTHER_IIN),
        "an operator": token_for(Role.OPERATOR, "staff-1"),
        "a school": token_for(Role.SCHOOL, "7d8f6a3c-0000-4000-8000-000000000001"),
    }
    for who, token in callers.items():
        for node in own:
            # when someone else asks for it by id
            body = await refetch(gql, token, node["id"])
            # then it is NOT_FOUND, as if it did not exist
            assert body["data"] is None, (who, body)
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", (who, body)


@pytest.mark.parametrize(
    "made_up",
    [
        global_id("Offer", "999999999"),
        global_id("Query", "1"),
        global_id("RegistryPerson", "1"),
        global_id("NoSuchType", "1"),
        "not-base64!",
        base64.b64encode(b"no colon").decode(),
    ],
)
async def test_a_made_up_or_non_node_id_is_not_found(gql, token_for, father_family, made_up):
    # when the father asks for an id that names nothing of his
    body = await refetch(gql, token_for(Role.CITIZEN, FATHER_IIN), made_up)
    # then it is NOT_FOUND
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body


async def test_node_needs_a_caller(gql):
    # when no token is sent
    body = await refetch(gql, None, global_id("Offer", "1"))
    # then it is UNAUTHENTICATED
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_every_node_type_of_the_schema_can_be_refetched(settings):
    # given the schema's types that implement Node
    from graphql_schema.schema import build_schema

    schema = build_schema(settings)._schema
    implementing = {t.name for t in schema.get_possible_types(schema.get_type("Node"))}
    # then node(id:) knows how to find each of them
    assert implementing == set(FINDERS)


PERSON = "query($iin: IIN!) { person(iin: $iin) { lastName } }"
TRAIL = """
query($iin: IIN!, $after: String) {
  auditRecords(subjectIin: $iin, first: 2, after: $after) {
    edges { cursor node { seq what } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_the_audit_trail_pages_with_opaque_cursors(gql, token_for, father_family):
    # given three operator lookups of the father, each recorded in his trail
    operator = token_for(Role.OPERATOR, "op-relay")
    for _ in range(3):
        await gql(PERSON, {"iin": FATHER_IIN}, token=operator)

    # when the trail is read two at a time, following endCursor
    pages, after = [], None
    while True:
        body = await gql(TRAIL, {"iin": FATHER_IIN, "after": after}, token=operator)
        assert "errors" not in body, body
        page = body["data"]["auditRecords"]
        pages.append([edge["cursor"] for edge in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # then the pages hold no record twice and reach the oldest of the lookups
    seen = [cursor for page in pages for cursor in page]
    assert len(pages) >= 2 and all(len(page) <= 2 for page in pages)
    assert len(seen) == len(set(seen)) >= 3
    assert FATHER_IIN not in after


@pytest.mark.parametrize("cursor", ["garbage", global_id("arrayconnection", "-5"), "YXVkaXQ6eA=="])
async def test_a_cursor_we_never_gave_out_is_bad_user_input(gql, token_for, father_family, cursor):
    # given the father and an operator
    father = token_for(Role.CITIZEN, FATHER_IIN)
    operator = token_for(Role.OPERATOR, "op-relay")
    documents = [
        ("query($a: String) { me { offers(after: $a) { edges { cursor } } } }", {}, father),
        (TRAIL, {"iin": FATHER_IIN}, operator),
    ]
    for document, variables, token in documents:
        # when a list is asked for a page after a made-up cursor
        body = await gql(document, {**variables, "a": cursor, "after": cursor}, token=token)
        # then it is the client's input that is wrong, not a 500
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
