"""The authorisation matrix: every root field, who may call it, and everyone else refused.

A field missing from MATRIX fails `test_every_root_field_is_in_the_matrix`, so a new field
cannot ship without saying who may call it. The cross-family cases (caller A asking for
family B's objects) are in test_ownership.py.
"""

from __future__ import annotations

from datetime import date

import pytest

from app.auth import Role
from app.settings import Settings
from familymap.i18n import translate
from graphql_schema.schema import build_schema

CITIZEN_IIN = "900101300126"
MERCHANT_ID = "5c0001a0-0000-4000-8000-000000000001"
SUBJECTS = {
    Role.CITIZEN: CITIZEN_IIN, Role.SCHOOL: MERCHANT_ID, Role.PHARMACY: MERCHANT_ID,
    Role.OPERATOR: "op-1", Role.SOURCE_SYSTEM: "gbdfl",
}  # fmt: skip
EVERYONE = frozenset(Role)
LIFE_EVENT = {
    "input": {
        "eventId": "matrix-1", "kind": "JOB_LOST", "occurredOn": date.today().isoformat(),
        "subjectIin": "880412300021", "registeredUnemployed": True,
    }
}  # fmt: skip

# field: (roles that may call it, document, variables)
MATRIX: dict[str, tuple[frozenset[Role], str, dict]] = {
    "me": (EVERYONE, "{ me { subject } }", {}),
    # Any caller may ask; what it finds follows the rules of the field that lists the object.
    "node": (EVERYONE, '{ node(id: "T2ZmZXI6MQ==") { id } }', {}),
    "person": (
        frozenset({Role.OPERATOR}),
        "query($iin: IIN!) { person(iin: $iin) { lastName } }",
        {"iin": CITIZEN_IIN},
    ),
    "auditRecords": (
        frozenset({Role.OPERATOR}),
        "query($iin: IIN!) { auditRecords(subjectIin: $iin) { edges { node { what } } } }",
        {"iin": CITIZEN_IIN},
    ),
    "myDataAccess": (frozenset({Role.CITIZEN}), "{ myDataAccess { edges { node { what } } } }", {}),
    "acceptOffer": (
        frozenset({Role.CITIZEN}),
        'mutation { acceptOffer(offerId: "1", idempotencyKey: "m") { __typename } }',
        {},
    ),
    "declineOffer": (
        frozenset({Role.CITIZEN}),
        'mutation { declineOffer(offerId: "1", idempotencyKey: "m") { __typename } }',
        {},
    ),
    "registerBankAccount": (
        frozenset({Role.CITIZEN}),
        'mutation { registerBankAccount(iban: "KZ86125KZT5004100100", idempotencyKey: "m") '
        "{ __typename } }",
        {},
    ),
    "offerFunnel": (
        frozenset({Role.OPERATOR}),
        'query { offerFunnel(since: "2026-01-01", until: "2026-01-31") { sent } }',
        {},
    ),
    "fallbackReport": (
        frozenset({Role.OPERATOR}),
        'query { fallbackReport(month: "2026-11-01") { fallbacks } }',
        {},
    ),
    "unreconciledPayments": (
        frozenset({Role.OPERATOR}),
        "{ unreconciledPayments(olderThanDays: 3) { paymentId } }",
        {},
    ),
    "myPupils": (frozenset({Role.CITIZEN}), "{ myPupils { firstName } }", {}),
    "childMeals": (
        frozenset({Role.CITIZEN}),
        '{ childMeals(childId: "1") { edges { node { mealType } } } }',
        {},
    ),
    "myDispensings": (frozenset({Role.CITIZEN}), "{ myDispensings { drugCode } }", {}),
    "pharmacyDispensings": (frozenset({Role.PHARMACY}), "{ pharmacyDispensings { drugCode } }", {}),
    "schoolPupils": (frozenset({Role.SCHOOL}), "{ schoolPupils { firstName } }", {}),
    "schoolMeals": (
        frozenset({Role.SCHOOL}),
        "{ schoolMeals { edges { node { firstName } } } }",
        {},
    ),
    "prescription": (
        frozenset({Role.PHARMACY}),
        '{ prescription(externalId: "rx-none") { drugCode } }',
        {},
    ),
    "merchantAct": (
        frozenset({Role.SCHOOL, Role.PHARMACY, Role.OPERATOR}),
        '{ merchantAct(actId: "1") { status } }',
        {},
    ),
    "registerMerchant": (
        frozenset({Role.OPERATOR}),
        'mutation { registerMerchant(input: {externalCode: "m-1", name: "Canteen", '
        'category: SCHOOL_MEALS, region: "astana"}) { __typename } }',
        {},
    ),
    "consentToMealVoucher": (
        frozenset({Role.CITIZEN}),
        'mutation { consentToMealVoucher(childId: "1") { __typename } }',
        {},
    ),
    "mealQrToken": (
        frozenset({Role.CITIZEN}),
        'mutation { mealQrToken(childId: "1") { __typename } }',
        {},
    ),
    "redeemMeal": (
        frozenset({Role.SCHOOL}),
        'mutation { redeemMeal(input: {childId: "1", mealType: LUNCH, idempotencyKey: "k"}) '
        "{ __typename } }",
        {},
    ),
    "redeemMealsBatch": (
        frozenset({Role.SCHOOL}),
        "mutation { redeemMealsBatch(items: []) { __typename } }",
        {},
    ),
    "recordPrescription": (
        frozenset({Role.SOURCE_SYSTEM}),
        'mutation { recordPrescription(input: {externalId: "rx-1", patientIin: '
        '"900101300126", drugCode: "D1", quantity: 1, unitPriceTiyn: 100, '
        'validUntil: "2099-01-01", prescribingOrg: "p-1"}) { __typename } }',
        {},
    ),
    "dispenseMedicine": (
        frozenset({Role.PHARMACY}),
        'mutation { dispenseMedicine(input: {prescriptionId: "1", drugCode: "D1", quantity: 1, '
        'identityMethod: EGOV_QR, idempotencyKey: "k"}) { __typename } }',
        {},
    ),
    "leaveFeedback": (
        frozenset({Role.CITIZEN}),
        'mutation { leaveFeedback(input: {eventKind: MEAL, eventId: "1", rating: 5}) '
        "{ __typename } }",
        {},
    ),
    "prepareAct": (
        frozenset({Role.SCHOOL, Role.PHARMACY, Role.OPERATOR}),
        'mutation { prepareAct(month: "2026-10-01", merchantId: "'
        + MERCHANT_ID
        + '") { __typename } }',
        {},
    ),
    "submitAct": (
        frozenset({Role.SCHOOL, Role.PHARMACY}),
        'mutation { submitAct(actId: "1") { __typename } }',
        {},
    ),
    "approveAct": (
        frozenset({Role.OPERATOR}),
        'mutation { approveAct(actId: "1") { __typename } }',
        {},
    ),
    "issueInvoice": (
        frozenset({Role.OPERATOR}),
        'mutation { issueInvoice(actId: "1") { __typename } }',
        {},
    ),
    "payInvoice": (
        frozenset({Role.OPERATOR}),
        'mutation { payInvoice(invoiceId: "1") { __typename } }',
        {},
    ),
    "recordLifeEvent": (
        frozenset({Role.SOURCE_SYSTEM}),
        "mutation($input: LifeEventInput!) { recordLifeEvent(input: $input) { __typename } }",
        LIFE_EVENT,
    ),
}
# Caller A asking for family B's objects: tests/hardening/test_ownership.py.


def root_fields() -> set[str]:
    schema = build_schema(Settings(environment="dev"))._schema
    return {*schema.query_type.fields, *schema.mutation_type.fields}


def test_every_root_field_is_in_the_matrix():
    assert root_fields() == set(MATRIX)


CASES = [
    (field, role)
    for field in MATRIX
    for role in [None, *Role]
    if role is None or role not in MATRIX[field][0]
]


@pytest.mark.parametrize(
    ("field", "role"), CASES, ids=[f"{f}-{r or 'anonymous'}" for f, r in CASES]
)
async def test_callers_outside_the_matrix_are_refused(gql, token_for, field, role):
    _roles, document, variables = MATRIX[field]
    token = token_for(role, SUBJECTS[role]) if role else None
    body = await gql(document, variables, token=token)
    assert (body.get("data") or {}).get(field) is None
    expected = "FORBIDDEN" if role else "UNAUTHENTICATED"
    assert [e["extensions"]["code"] for e in body["errors"]] == [expected]


ALLOWED = [(field, role) for field in MATRIX for role in MATRIX[field][0]]
# Fields about one object (a child, a merchant, an act): the matrix's subjects own none, so an
# allowed caller passes the role gate and is then refused by the ownership check, which is
# what these tests look for (the role gate says "This needs one of the roles", in the
# request's language: Russian here, as these requests send no Accept-Language).
OWNED_OBJECT_FIELDS = {
    "childMeals", "pharmacyDispensings", "schoolPupils", "schoolMeals", "merchantAct",
    "prescription", "node",
}  # fmt: skip
ROLE_GATE = translate("error.needs_role", None, allowed="").removesuffix(".")


@pytest.mark.parametrize(("field", "role"), ALLOWED, ids=[f"{f}-{r}" for f, r in ALLOWED])
async def test_callers_in_the_matrix_get_through(gql, token_for, field, role):
    _roles, document, variables = MATRIX[field]
    body = await gql(document, variables, token=token_for(role, SUBJECTS[role]))
    if field not in OWNED_OBJECT_FIELDS:
        assert "errors" not in body, body
        return
    [error] = body["errors"]
    assert error["path"] == [field] and not error["message"].startswith(ROLE_GATE), body
