"""The vouchers through the API: consent, QR codes, meals, batches, prescriptions,
dispensing, feedback, acts and invoices; who may do what; non-cashable means non-cashable."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from app.auth import Role
from tests.vouchers.vouchers_builders import (
    SCHOOL_DAY,
    family_with_pupil,
    pharmacy,
    school,
)
from wallet import ledger
from wallet.ledger import NonCashable, PurposeMismatch

CONSENT = """
mutation($child: ID!) { consentToMealVoucher(childId: $child) {
  __typename
  ... on MealVoucherIssued { created voucher { id childId amountTiyn schoolYearStart } }
  ... on VoucherRefused { code message }
} }
"""
QR = """
mutation($child: ID!) { mealQrToken(childId: $child) {
  __typename ... on MealQrCode { token expiresAt schoolName } ... on VoucherRefused { code }
} }
"""
REDEEM = """
mutation($input: RedeemMealInput!) { redeemMeal(input: $input) {
  __typename
  ... on MealRedeemed { replayed meal { id childId servedOn mealType priceTiyn method } }
  ... on VoucherRefused { code message }
} }
"""
BATCH = """
mutation($items: [RedeemMealInput!]!) { redeemMealsBatch(items: $items) {
  __typename
  ... on MealBatchResult { served refused items { idempotencyKey ok replayed code } }
  ... on VoucherRefused { code }
} }
"""
CHILD_MEALS = """
query($child: ID!) {
  childMeals(childId: $child) { edges { node { id servedOn mealType priceTiyn schoolName } } }
}
"""
WALLET_VOUCHERS = (
    "{ me { vouchers { edges { node { programme personId fundedTiyn balanceTiyn } } } } }"
)
MY_PUPILS = "{ myPupils { childId firstName schoolCode voucher { amountTiyn } } }"
SCHOOL_PUPILS = "{ schoolPupils { childId firstName } }"
REGISTER = """
mutation($input: RegisterMerchantInput!) { registerMerchant(input: $input) {
  __typename ... on MerchantRegistered { created merchant { id category account } }
  ... on VoucherRefused { code }
} }
"""
PRESCRIBE = """
mutation($input: PrescriptionInput!) { recordPrescription(input: $input) {
  __typename ... on PrescriptionRecorded { created prescription { externalId quantity } }
  ... on VoucherRefused { code }
} }
"""
DISPENSE = """
mutation($input: DispenseMedicineInput!) { dispenseMedicine(input: $input) {
  __typename
  ... on MedicineDispensed { replayed dispensing { id quantity amountTiyn identityMethod } }
  ... on VoucherRefused { code message }
} }
"""
MY_DISPENSINGS = "{ myDispensings { id drugCode quantity pharmacyName dispensedOn } }"
FEEDBACK = """
mutation($input: FeedbackInput!) { leaveFeedback(input: $input) {
  __typename ... on FeedbackLeft { id rating tags } ... on VoucherRefused { code }
} }
"""
PREPARE = """
mutation($month: Date!, $merchant: ID) { prepareAct(month: $month, merchantId: $merchant) {
  __typename
  ... on ActView { id status sequence adjustsActId services totalTiyn lateServices
                   lines { day services amountTiyn lateServices }
                   feedbackCount feedbackAverage complaints flaggedForReview flagReasons }
  ... on VoucherRefused { code }
} }
"""
ACT_STEP = """
mutation($act: ID!) {
  submitAct(actId: $act) { __typename ... on ActView { status } ... on VoucherRefused { code } }
}
"""
APPROVE = """
mutation($act: ID!) {
  approveAct(actId: $act) { __typename ... on ActView { status } ... on VoucherRefused { code } }
}
"""
INVOICE = """
mutation($act: ID!) { issueInvoice(actId: $act) {
  __typename ... on InvoiceView { id amountTiyn status } ... on VoucherRefused { code }
} }
"""
PAY = """
mutation($invoice: ID!) { payInvoice(invoiceId: $invoice) {
  __typename ... on InvoiceView { id amountTiyn status transferId } ... on VoucherRefused { code }
} }
"""

LUNCH = 98_000  # Astana, school year 2026-2027
# Wednesday 2 December 2026, 09:30 in Astana: November has ended, December has not.
DECEMBER_2 = datetime(2026, 12, 2, 4, 30, tzinfo=UTC)


@pytest.fixture
async def pupil(session):
    """(parent, child, school merchant), committed for the app to see."""
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    await session.commit()
    return parent, child, canteen


async def consent(gql, token_for, parent, child) -> dict:
    body = await gql(CONSENT, {"child": str(child.id)}, token=token_for(Role.CITIZEN, parent.iin))
    return body["data"]["consentToMealVoucher"]


def redeem_input(**fields) -> dict:
    return {"input": {"idempotencyKey": uuid.uuid4().hex, "mealType": "LUNCH",
                      "servedOn": SCHOOL_DAY.isoformat(), **fields}}  # fmt: skip


async def test_a_parent_consents_shows_a_qr_and_the_school_serves_lunch(gql, token_for, pupil):
    parent, child, canteen = pupil
    citizen = token_for(Role.CITIZEN, parent.iin)
    school_token = token_for(Role.SCHOOL, str(canteen.id))
    # Given the parent's consent in the app (twice: the second is a replay)
    first = await consent(gql, token_for, parent, child)
    again = await consent(gql, token_for, parent, child)
    assert first["__typename"] == "MealVoucherIssued" and first["created"]
    assert again["created"] is False and again["voucher"]["id"] == first["voucher"]["id"]
    pupils = (await gql(MY_PUPILS, token=citizen))["data"]["myPupils"]
    assert pupils[0]["childId"] == str(child.id) and pupils[0]["voucher"]["amountTiyn"] > 0
    # When the app shows a QR code and the canteen scans it
    qr = (await gql(QR, {"child": str(child.id)}, token=citizen))["data"]["mealQrToken"]
    assert qr["schoolName"] == canteen.name
    request = redeem_input(qrToken=qr["token"])
    served = (await gql(REDEEM, request, token=school_token))["data"]["redeemMeal"]
    replay = (await gql(REDEEM, request, token=school_token))["data"]["redeemMeal"]
    # Then the lunch is served once, and the parent sees it
    assert served["__typename"] == "MealRedeemed", served
    assert served["meal"]["priceTiyn"] == LUNCH and served["meal"]["method"] == "qr"
    assert replay["replayed"] is True and replay["meal"]["id"] == served["meal"]["id"]
    meals = (await gql(CHILD_MEALS, {"child": str(child.id)}, token=citizen))["data"]["childMeals"]
    seen = [edge["node"] for edge in meals["edges"]]
    assert [(m["servedOn"], m["mealType"], m["priceTiyn"], m["schoolName"]) for m in seen] == [
        (SCHOOL_DAY.isoformat(), "LUNCH", LUNCH, canteen.name)
    ]
    # and the wallet lists the voucher with the lunch taken off what it holds
    wallet = (await gql(WALLET_VOUCHERS, token=citizen))["data"]["me"]["vouchers"]["edges"]
    [voucher] = [edge["node"] for edge in wallet]
    assert (voucher["programme"], voucher["personId"]) == ("SCHOOL_MEALS", str(child.id))
    assert voucher["fundedTiyn"] == first["voucher"]["amountTiyn"]
    assert voucher["balanceTiyn"] == voucher["fundedTiyn"] - LUNCH
    # and the parent sees that the school changed the child's data (the meal), once
    access = await gql(
        "{ myDataAccess { edges { node { actorRole actorId action what } } } }", token=citizen
    )
    edges = access["data"]["myDataAccess"]["edges"]
    writes = [e["node"] for e in edges if e["node"]["actorRole"] == "SCHOOL"]
    assert [(r["actorId"], r["action"]) for r in writes if "served" in r["what"]] == [
        (str(canteen.id), "write"),
        (str(canteen.id), "write"),  # the replay is an access too, recorded as such
    ]
    assert sum("(replay)" in r["what"] for r in writes) == 1
    # The canteen's list of the day shows the lunch, by the child's name
    day = "query($on: Date) { schoolMeals(on: $on) { edges { node { childId firstName mealType priceTiyn } } } }"  # fmt: skip
    listed = (await gql(day, {"on": SCHOOL_DAY.isoformat()}, token=school_token))["data"]
    assert [edge["node"] for edge in listed["schoolMeals"]["edges"]] == [
        {
            "childId": str(child.id),
            "firstName": child.first_name,
            "mealType": "LUNCH",
            "priceTiyn": LUNCH,
        }
    ]
    # A school reading its pupil list is a read of the family's data, recorded for it too
    await gql(SCHOOL_PUPILS, token=school_token)
    access = await gql(
        "{ myDataAccess { edges { node { actorRole action what } } } }", token=citizen
    )
    edges = access["data"]["myDataAccess"]["edges"]
    reads = [e["node"] for e in edges if e["node"]["action"] == "read"]
    assert ("SCHOOL", "school's pupil list read") in [(r["actorRole"], r["what"]) for r in reads]


async def test_refusals_through_the_api(gql, token_for, pupil, session):
    parent, child, canteen = pupil
    other = await school(session, code="astana-school-077")
    await session.commit()
    await consent(gql, token_for, parent, child)
    citizen = token_for(Role.CITIZEN, parent.iin)
    qr = (await gql(QR, {"child": str(child.id)}, token=citizen))["data"]["mealQrToken"]["token"]
    at_other = token_for(Role.SCHOOL, str(other.id))
    at_own = token_for(Role.SCHOOL, str(canteen.id))

    async def code(token, **fields):
        body = await gql(REDEEM, redeem_input(**fields), token=token)
        return body["data"]["redeemMeal"].get("code")

    assert await code(at_other, qrToken=qr) == "WRONG_SCHOOL"
    assert await code(at_other, childId=str(child.id)) == "NOT_ENROLLED"
    assert await code(at_own, qrToken=qr[:-2] + "xx") == "QR_INVALID"
    assert await code(at_own, childId=str(child.id), servedOn="2026-12-16") in ("NOT_A_SCHOOL_DAY",)
    assert await code(at_own, qrToken=qr) is None  # served
    assert await code(at_own, qrToken=qr, mealType="BREAKFAST") == "QR_REPLAYED"
    assert await code(at_own, childId=str(child.id)) == "ALREADY_REDEEMED"


async def test_who_may_do_what(gql, token_for, pupil, session):
    parent, child, canteen = pupil
    _, stranger, _ = await family_with_pupil(session, school_code="astana-school-009")
    chemist = await pharmacy(session)
    await session.commit()
    # A stranger can neither consent for, nor see, nor show a QR code for another's child
    stranger_token = token_for(Role.CITIZEN, stranger.iin)
    refused = await gql(CONSENT, {"child": str(child.id)}, token=stranger_token)
    assert refused["data"]["consentToMealVoucher"]["code"] == "NOT_YOUR_CHILD"
    qr = await gql(QR, {"child": str(child.id)}, token=stranger_token)
    assert qr["data"]["mealQrToken"]["code"] == "NOT_YOUR_CHILD"
    meals = await gql(CHILD_MEALS, {"child": str(child.id)}, token=stranger_token)
    assert meals["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # A citizen or a pharmacy cannot redeem a meal; only operators register merchants
    for token in (token_for(Role.CITIZEN, parent.iin), token_for(Role.PHARMACY, str(chemist.id))):
        body = await gql(REDEEM, redeem_input(childId=str(child.id)), token=token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    merchant = {"externalCode": "x-1", "name": "X", "category": "MEDICINES", "region": "astana"}
    body = await gql(REGISTER, {"input": merchant}, token=token_for(Role.SCHOOL, str(canteen.id)))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # A school sees its own pupils
    pupils = await gql(SCHOOL_PUPILS, token=token_for(Role.SCHOOL, str(canteen.id)))
    assert [p["childId"] for p in pupils["data"]["schoolPupils"]] == [str(child.id)]


async def test_operators_register_merchants_idempotently(gql, token_for, session):
    operator = token_for(Role.OPERATOR, "op-1")
    merchant = {"externalCode": "astana-school-500", "name": "School 500",
                "category": "SCHOOL_MEALS", "region": "astana"}  # fmt: skip
    first = (await gql(REGISTER, {"input": merchant}, token=operator))["data"]["registerMerchant"]
    again = (await gql(REGISTER, {"input": merchant}, token=operator))["data"]["registerMerchant"]
    other = {**merchant, "name": "Another"}
    clash = (await gql(REGISTER, {"input": other}, token=operator))["data"]["registerMerchant"]
    assert first["created"] and not again["created"]
    assert first["merchant"]["account"] == f"merchant:{first['merchant']['id']}"
    assert clash["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_an_offline_batch_answers_per_item(gql, token_for, pupil):
    parent, child, canteen = pupil
    await consent(gql, token_for, parent, child)
    day = SCHOOL_DAY.isoformat()
    earlier = (SCHOOL_DAY - timedelta(days=1)).isoformat()
    items = [
        {"idempotencyKey": "b-1", "mealType": "LUNCH", "servedOn": day, "childId": str(child.id)},
        {"idempotencyKey": "b-2", "mealType": "LUNCH", "servedOn": day, "childId": str(child.id)},
        {"idempotencyKey": "b-3", "mealType": "LUNCH", "servedOn": earlier,
         "childId": str(child.id)},
        {"idempotencyKey": "b-4", "mealType": "LUNCH", "servedOn": "2026-11-21",
         "childId": str(child.id)},
    ]  # fmt: skip
    body = await gql(BATCH, {"items": items}, token=token_for(Role.SCHOOL, str(canteen.id)))
    result = body["data"]["redeemMealsBatch"]
    assert [(i["ok"], i["code"]) for i in result["items"]] == [
        (True, None), (False, "ALREADY_REDEEMED"), (True, None), (False, "NOT_A_SCHOOL_DAY"),
    ]  # fmt: skip
    assert (result["served"], result["refused"]) == (2, 2)


async def medicines_setup(session):
    _, patient, _ = await family_with_pupil(session, chronic=True)
    chemist = await pharmacy(session)
    from vouchers.medicines import issue_medicine_voucher

    await issue_medicine_voucher(
        session=session, person_id=patient.id, consented_by=patient.id, channel="app"
    )
    await session.commit()
    return patient, chemist


def prescription(**changes) -> dict:
    return {"input": {"externalId": "erx-1", "drugCode": "A10BA02", "quantity": 3,
                      "unitPriceTiyn": 150_000, "validUntil": "2099-01-01",
                      "prescribingOrg": "Polyclinic No. 4", **changes}}  # fmt: skip


def dispensing(**changes) -> dict:
    return {"input": {"idempotencyKey": uuid.uuid4().hex, "prescriptionId": "erx-1",
                      "drugCode": "A10BA02", "quantity": 1, "identityMethod": "FACE_ID",
                      **changes}}  # fmt: skip


async def test_a_pharmacy_dispenses_against_a_prescription(gql, token_for, session):
    patient, chemist = await medicines_setup(session)
    source = token_for(Role.SOURCE_SYSTEM, "eapteka")
    body = await gql(PRESCRIBE, {"input": {**prescription()["input"], "patientIin": patient.iin}},
                     token=source)  # fmt: skip
    assert body["data"]["recordPrescription"]["created"] is True
    expired = {**prescription(externalId="erx-old", validUntil="2020-01-01")["input"],
               "patientIin": patient.iin}  # fmt: skip
    await gql(PRESCRIBE, {"input": expired}, token=source)
    at_pharmacy = token_for(Role.PHARMACY, str(chemist.id))

    async def dispense(**changes):
        return (await gql(DISPENSE, dispensing(**changes), token=at_pharmacy))["data"][
            "dispenseMedicine"
        ]

    # The pharmacist finds the prescription first: patient by name only, what is left
    lookup = "query($x: String!) { prescription(externalId: $x) { patientName drugCode remaining expired } }"
    found = (await gql(lookup, {"x": "erx-1"}, token=at_pharmacy))["data"]["prescription"]
    assert found == {"patientName": f"{patient.first_name} {patient.last_name[0]}.",
                     "drugCode": "A10BA02", "remaining": 3, "expired": False}  # fmt: skip
    old = (await gql(lookup, {"x": "erx-old"}, token=at_pharmacy))["data"]["prescription"]
    assert old["expired"] is True
    missing = await gql(lookup, {"x": "erx-none"}, token=at_pharmacy)
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    first = await dispense(quantity=2, identityMethod="EGOV_QR")
    assert first["__typename"] == "MedicineDispensed", first
    assert first["dispensing"]["amountTiyn"] == 300_000
    assert (await dispense(drugCode="N02BE01"))["code"] == "DRUG_MISMATCH"
    assert (await dispense(quantity=2))["code"] == "QUANTITY_EXCEEDED"
    assert (await dispense(prescriptionId="erx-old"))["code"] == "PRESCRIPTION_EXPIRED"
    assert (await dispense(identityMethod="FALLBACK"))["code"] == "IDENTITY_CHECK_REQUIRED"
    audited = await dispense(
        identityMethod="FALLBACK", identityReasonCode="CAMERA_UNAVAILABLE",
        identityReason="the web camera at the counter is broken",
    )  # fmt: skip
    assert audited["dispensing"]["identityMethod"] == "FALLBACK"
    seen = (await gql(MY_DISPENSINGS, token=token_for(Role.CITIZEN, patient.iin)))["data"]
    assert [(d["quantity"], d["pharmacyName"]) for d in seen["myDispensings"]] == [
        (1, chemist.name), (2, chemist.name),
    ]  # fmt: skip
    # A school cannot dispense, and a pharmacy never redeems meals
    body = await gql(DISPENSE, dispensing(), token=token_for(Role.SCHOOL, str(chemist.id)))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_feedback_acts_and_invoices(gql, token_for, pupil, session):
    parent, child, canteen = pupil
    _, stranger, _ = await family_with_pupil(session)
    await session.commit()
    await consent(gql, token_for, parent, child)
    school_token = token_for(Role.SCHOOL, str(canteen.id))
    citizen = token_for(Role.CITIZEN, parent.iin)
    meal_ids = []
    # Today's lunch, and Tuesday's and Monday's from the list (late, within the window)
    for days_back in (0, 1, 2):
        served = await gql(REDEEM, redeem_input(
            childId=str(child.id), servedOn=(SCHOOL_DAY - timedelta(days=days_back)).isoformat()
        ), token=school_token)  # fmt: skip
        meal_ids.append(served["data"]["redeemMeal"]["meal"]["id"])
    # Feedback: one per meal, only by the family it served
    for meal_id, rating in zip(meal_ids, (1, 2, 5), strict=True):
        body = await gql(FEEDBACK, {"input": {"eventKind": "MEAL", "eventId": meal_id,
                                              "rating": rating, "tags": ["cold"]}}, token=citizen)  # fmt: skip
        assert body["data"]["leaveFeedback"]["rating"] == rating
    twice = await gql(FEEDBACK, {"input": {"eventKind": "MEAL", "eventId": meal_ids[0],
                                           "rating": 4}}, token=citizen)  # fmt: skip
    assert twice["data"]["leaveFeedback"]["code"] == "FEEDBACK_EXISTS"
    by_stranger = await gql(FEEDBACK, {"input": {"eventKind": "MEAL", "eventId": meal_ids[1],
                             "rating": 5}}, token=token_for(Role.CITIZEN, stranger.iin))  # fmt: skip
    assert by_stranger["data"]["leaveFeedback"]["code"] == "FORBIDDEN"
    month = {"month": "2026-11-01"}
    # November has no act while it lasts
    early_act = (await gql(PREPARE, month, token=school_token))["data"]["prepareAct"]
    assert early_act["code"] == "MONTH_NOT_ENDED"
    with time_machine.travel(DECEMBER_2, tick=True):
        school_token = token_for(Role.SCHOOL, str(canteen.id))
        operator = token_for(Role.OPERATOR, "op-1")
        # The ended month's act: services by day, late claims, the feedback summary, flagged
        act = (await gql(PREPARE, month, token=school_token))["data"]["prepareAct"]
        assert (act["services"], act["totalTiyn"], len(act["lines"])) == (3, 3 * LUNCH, 3)
        assert act["lateServices"] == 2
        assert [line["lateServices"] for line in act["lines"]] == [1, 1, 0]
        assert (act["feedbackCount"], act["feedbackAverage"], act["complaints"]) == (3, 2.67, 2)
        assert act["flaggedForReview"] and set(act["flagReasons"]) == {
            "LOW_AVERAGE_RATING", "MANY_COMPLAINTS", "LATE_CLAIMS",
        }  # fmt: skip
        # December's act cannot be drawn on the 2nd of December
        december = await gql(PREPARE, {"month": "2026-12-01"}, token=school_token)
        assert december["data"]["prepareAct"]["code"] == "MONTH_NOT_ENDED"
        # No invoice before approval; the merchant submits, an operator approves
        early = await gql(INVOICE, {"act": act["id"]}, token=operator)
        assert early["data"]["issueInvoice"]["code"] == "ACT_NOT_APPROVED"
        submitted = await gql(ACT_STEP, {"act": act["id"]}, token=school_token)
        assert submitted["data"]["submitAct"]["status"] == "submitted"
        approved = await gql(APPROVE, {"act": act["id"]}, token=operator)
        assert approved["data"]["approveAct"]["status"] == "approved"
        again = await gql(ACT_STEP, {"act": act["id"]}, token=school_token)
        assert again["data"]["submitAct"]["code"] == "ACT_IMMUTABLE"
        # A November meal claimed later (Monday 30th, within the window) goes into an
        # adjustment act that references the original, with its own figures only
        await gql(REDEEM, redeem_input(childId=str(child.id), mealType="BREAKFAST",
                                       servedOn="2026-11-30"), token=school_token)  # fmt: skip
        adjustment = (await gql(PREPARE, month, token=school_token))["data"]["prepareAct"]
        assert (adjustment["sequence"], adjustment["adjustsActId"]) == (1, act["id"])
        assert (adjustment["services"], adjustment["totalTiyn"]) == (1, 58_800)
        assert (adjustment["feedbackCount"], adjustment["feedbackAverage"]) == (0, None)
        assert adjustment["lateServices"] == 1 and adjustment["flagReasons"] == ["LATE_CLAIMS"]
        # The invoice claims exactly the approved act; paying it settles the school, once
        invoice = (await gql(INVOICE, {"act": act["id"]}, token=operator))["data"]["issueInvoice"]
        assert invoice["amountTiyn"] == 3 * LUNCH
        paid = (await gql(PAY, {"invoice": invoice["id"]}, token=operator))["data"]["payInvoice"]
        paid_again = (await gql(PAY, {"invoice": invoice["id"]}, token=operator))["data"][
            "payInvoice"
        ]
    assert paid["status"] == "paid" and paid_again["transferId"] == paid["transferId"]
    assert await ledger.balance(session=session, account=canteen.account_code) == 58_800
    assert await ledger.balance(session=session, account="settlement:merchants") == 3 * LUNCH


# --- Non-cashable means non-cashable --------------------------------------------------------

MONEY_WORDS = ("iban", "account", "payout", "bank", "destination", "recipient", "credit")
# Where a citizen's *cash* benefits are paid: it moves no value itself, and the ledger pays a
# bank account only from a cash programme (FLOWS: purpose wallet -> bank payout is NON_CASHABLE).
CASH_ONLY_MUTATIONS = {"registerBankAccount"}


async def test_no_mutation_names_a_destination_for_value(client):
    # Given the schema's mutations and their arguments (inputs expanded)
    query = """{ __schema { mutationType { fields { name args { name type { name kind
        ofType { name ofType { name ofType { name } } } } } } } } }"""
    schema = (await client.post("/graphql", json={"query": query})).json()["data"]["__schema"]
    inputs = (
        await client.post(
            "/graphql",
            json={
                "query": """{ __schema { types {
        name kind inputFields { name } } } }"""
            },
        )
    ).json()["data"]["__schema"]["types"]
    fields_of = {t["name"]: [f["name"] for f in t["inputFields"] or []] for t in inputs}
    # Then none of the voucher mutations takes an account, IBAN or recipient to pay
    for field in schema["mutationType"]["fields"]:
        if field["name"] in CASH_ONLY_MUTATIONS:
            continue
        names = []
        for arg in field["args"]:
            names.append(arg["name"])
            type_ = arg["type"]
            while type_.get("ofType"):
                type_ = type_["ofType"]
            names += fields_of.get(type_["name"], [])
        assert not [n for n in names if any(w in n.lower() for w in MONEY_WORDS)], field["name"]


async def test_voucher_value_cannot_leave_for_cash_a_person_or_another_category(
    gql, token_for, pupil, session
):
    # Given a funded meals wallet, a pharmacy, another child's wallet and the bank payout
    parent, child, canteen = pupil
    issued = await consent(gql, token_for, parent, child)
    chemist = await pharmacy(session)
    _, other_parent, other_child = await family_with_pupil(session)
    from vouchers.meals import issue_meal_voucher, wallet_code

    await issue_meal_voucher(session=session, child_person_id=other_child.id,
                             school_year=SCHOOL_DAY, consented_by=other_parent.id, channel="app")  # fmt: skip
    await ledger.open_account(session=session, code="payout:bank", kind="bank_payout")
    wallet = wallet_code(child.id)
    # When value is pushed anywhere but a school
    attempts = [
        ("payout:bank", NonCashable),
        (wallet_code(other_child.id), NonCashable),
        (chemist.account_code, PurposeMismatch),
    ]
    for destination, refusal in attempts:
        with pytest.raises(refusal):
            await ledger.transfer(session=session, transfer_id=f"try:{destination}", debit=wallet,
                                  credit=destination, amount=1_000, reason="MEAL_SERVED")  # fmt: skip
    # And a pharmacy's token forged with the SCHOOL role cannot redeem meals either
    body = await gql(REDEEM, redeem_input(childId=str(child.id)),
                     token=token_for(Role.SCHOOL, str(chemist.id)))  # fmt: skip
    assert body["data"]["redeemMeal"]["code"] == "WRONG_CATEGORY"
    # Then the wallet holds what it was funded with, and nobody received anything
    assert (
        await ledger.balance(session=session, account=wallet) == (issued["voucher"]["amountTiyn"])
    )
    for account in (chemist.account_code, canteen.account_code, "payout:bank"):
        assert await ledger.balance(session=session, account=account) == 0


async def test_unknown_dates_in_the_future_are_not_school_days(gql, token_for, pupil):
    parent, child, canteen = pupil
    await consent(gql, token_for, parent, child)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    body = await gql(REDEEM, redeem_input(childId=str(child.id), servedOn=tomorrow),
                     token=token_for(Role.SCHOOL, str(canteen.id)))  # fmt: skip
    assert body["data"]["redeemMeal"]["code"] == "NOT_A_SCHOOL_DAY"
