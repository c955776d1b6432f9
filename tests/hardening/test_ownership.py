"""The authorisation matrix's second half: caller A asking for family B's objects (or a
school asking for another school's) is refused, for every query and mutation that takes an
object of someone else's. The fields that take no object id (`me`, `myPupils`,
`myDispensings`, `myDataAccess`, `schoolPupils`, `pharmacyDispensings`) read only the
caller's own rows by construction, and are covered by the first half and their own tests.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.auth import Role
from familymap.orm import utcnow
from tests.vouchers.vouchers_builders import SCHOOL_DAY, family_with_pupil, school
from tests.wallet.offer_builders import evaluate, newborn_household
from wallet.offers import offer_new_entitlements

REFUSALS = {
    "FORBIDDEN", "NOT_FOUND", "NOT_YOUR_CHILD", "OFFER_NOT_FOUND", "NOT_ENROLLED",
    "WRONG_SCHOOL", "NOT_YOUR_EVENT",
}  # fmt: skip


@pytest.fixture
async def two_families(session, gql, token_for):
    """Family A and family B, each with a pupil at its own school; B's child has a voucher
    and a meal served, B has an offer and its school a draft act."""
    _, parent_a, child_a = await family_with_pupil(session, school_code="school-a")
    _, parent_b, child_b = await family_with_pupil(session, school_code="school-b")
    school_a = await school(session, code="school-a")
    school_b = await school(session, code="school-b")
    offered = await newborn_household(
        session, iins=("880412300108", "900605400104", "250901500103"), phones=(None, None)
    )
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, offered), now=utcnow()
    )
    await session.commit()
    citizen_b = token_for(Role.CITIZEN, parent_b.iin)
    school_b_token = token_for(Role.SCHOOL, str(school_b.id))
    consent = await gql(
        'mutation($c: ID!) { consentToMealVoucher(childId: $c) { __typename } }',
        {"c": str(child_b.id)}, token=citizen_b,
    )  # fmt: skip
    assert consent["data"]["consentToMealVoucher"]["__typename"] == "MealVoucherIssued", consent
    served = await gql(
        "mutation($i: RedeemMealInput!) { redeemMeal(input: $i) { __typename "
        "... on MealRedeemed { meal { id } } ... on VoucherRefused { code } } }",
        {"i": {"idempotencyKey": uuid.uuid4().hex, "mealType": "LUNCH",
               "servedOn": SCHOOL_DAY.isoformat(), "childId": str(child_b.id)}},
        token=school_b_token,
    )  # fmt: skip
    meal_id = served["data"]["redeemMeal"]["meal"]["id"]
    # An act is for an ended month: the one before the pinned day's (MONTH_NOT_ENDED otherwise).
    act = await gql(
        'mutation($m: Date!) { prepareAct(month: $m) { ... on ActView { id } } }',
        {"m": (SCHOOL_DAY.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat()},
        token=school_b_token,
    )  # fmt: skip
    from sqlalchemy import select

    from wallet.offer_tables import Offer

    offer_b = await session.scalar(select(Offer.id).where(Offer.family_id == offered.family.id))
    return {
        "citizen_a": token_for(Role.CITIZEN, parent_a.iin),
        "school_a": token_for(Role.SCHOOL, str(school_a.id)),
        "child_b": str(child_b.id),
        "meal_b": meal_id,
        "act_b": act["data"]["prepareAct"]["id"],
        "offer_b": str(offer_b),
        "child_a": str(child_a.id),
    }


CASES = [
    ("childMeals", "citizen_a", "query($x: ID!) { childMeals(childId: $x) { edges { node { id } } } }", "child_b"),
    ("mealQrToken", "citizen_a",
     "mutation($x: ID!) { mealQrToken(childId: $x) { __typename ... on VoucherRefused { code } } }",
     "child_b"),
    ("consentToMealVoucher", "citizen_a",
     "mutation($x: ID!) { consentToMealVoucher(childId: $x) { __typename "
     "... on VoucherRefused { code } } }", "child_b"),
    ("leaveFeedback", "citizen_a",
     "mutation($x: ID!) { leaveFeedback(input: {eventKind: MEAL, eventId: $x, rating: 1}) "
     "{ __typename ... on VoucherRefused { code } } }", "meal_b"),
    ("acceptOffer", "citizen_a",
     'mutation($x: ID!) { acceptOffer(offerId: $x, idempotencyKey: "k") { __typename '
     "... on OfferRefused { code } } }", "offer_b"),
    ("declineOffer", "citizen_a",
     'mutation($x: ID!) { declineOffer(offerId: $x, idempotencyKey: "k") { __typename '
     "... on OfferRefused { code } } }", "offer_b"),
    ("redeemMeal", "school_a",
     'mutation($x: ID!) { redeemMeal(input: {idempotencyKey: "o-1", mealType: LUNCH, '
     'servedOn: "' + SCHOOL_DAY.isoformat() + '", childId: $x}) { __typename '
     "... on VoucherRefused { code } } }", "child_b"),
    ("merchantAct", "school_a", "query($x: ID!) { merchantAct(actId: $x) { id } }", "act_b"),
    ("submitAct", "school_a",
     "mutation($x: ID!) { submitAct(actId: $x) { __typename ... on VoucherRefused { code } } }",
     "act_b"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("field", "caller", "document", "target"), CASES, ids=[c[0] for c in CASES]
)
async def test_a_caller_cannot_reach_another_familys_objects(
    gql, two_families, field, caller, document, target
):
    body = await gql(document, {"x": two_families[target]}, token=two_families[caller])
    result = (body.get("data") or {}).get(field)
    if body.get("errors"):
        # Refused as an error: nothing of the object is returned
        assert result is None
        assert body["errors"][0]["extensions"]["code"] in REFUSALS, body
    else:
        # Refused as data: the mutation's refusal type with its code
        assert result["__typename"] in ("VoucherRefused", "OfferRefused"), body
        assert result["code"] in REFUSALS, body
