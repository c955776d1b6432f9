"""`me`, roles, the IIN scalar and the production schema's reticence."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from app.asgi import create_app
from app.auth import Role, TokenVerifier
from familymap.tables import Family, Person

ME = "{ me { subject roles iin merchantId } }"
PERSON_BY_IIN = (
    "query Person($iin: IIN!) { person(iin: $iin) { lastName firstName familyId role deceased } }"
)
CITIZEN_IIN = "900101300126"
OTHER_IIN = "850615400016"
SCHOOL_ID = "5c0001a0-0000-4000-8000-000000000001"


def test_fixture_iins_are_valid():
    from familymap.iin import is_valid_iin

    assert is_valid_iin(CITIZEN_IIN) and is_valid_iin(OTHER_IIN)


@pytest.mark.parametrize(
    ("role", "subject", "expected"),
    [
        (
            Role.CITIZEN,
            CITIZEN_IIN,
            {"subject": CITIZEN_IIN, "roles": ["CITIZEN"], "iin": CITIZEN_IIN, "merchantId": None},
        ),
        (
            Role.SCHOOL,
            SCHOOL_ID,
            {"subject": SCHOOL_ID, "roles": ["SCHOOL"], "iin": None, "merchantId": SCHOOL_ID},
        ),
        (
            Role.PHARMACY,
            SCHOOL_ID,
            {"subject": SCHOOL_ID, "roles": ["PHARMACY"], "iin": None, "merchantId": SCHOOL_ID},
        ),
        (
            Role.OPERATOR,
            "op-7",
            {"subject": "op-7", "roles": ["OPERATOR"], "iin": None, "merchantId": None},
        ),
        (
            Role.SOURCE_SYSTEM,
            "gbdfl",
            {"subject": "gbdfl", "roles": ["SOURCE_SYSTEM"], "iin": None, "merchantId": None},
        ),
    ],
)
async def test_me_returns_the_callers_identity(gql, token_for, role, subject, expected):
    body = await gql(ME, token=token_for(role, subject))
    assert body == {"data": {"me": expected}}


@pytest.fixture
async def registered_person(session) -> Person:
    family = Family(region="astana")
    session.add(family)
    await session.flush()
    person = Person(
        family_id=family.id,
        iin=OTHER_IIN,
        role="head",
        last_name="Әбілова",
        first_name="Сәуле",
        patronymic=None,
        birth_date=date(1985, 6, 15),
        sex="F",
        language="kk",
    )
    session.add(person)
    await session.commit()
    return person


async def test_operator_finds_a_person_by_iin(gql, token_for, registered_person):
    body = await gql(PERSON_BY_IIN, {"iin": OTHER_IIN}, token=token_for(Role.OPERATOR, "op-1"))
    assert body == {
        "data": {
            "person": {
                "lastName": "Әбілова",
                "firstName": "Сәуле",
                "familyId": str(registered_person.family_id),
                "role": "head",
                "deceased": False,
            }
        }
    }


async def test_unknown_iin_is_null_for_an_operator(gql, token_for):
    body = await gql(PERSON_BY_IIN, {"iin": CITIZEN_IIN}, token=token_for(Role.OPERATOR, "op-1"))
    assert body == {"data": {"person": None}}


@pytest.mark.parametrize("role", [Role.CITIZEN, Role.SCHOOL, Role.SOURCE_SYSTEM])
async def test_other_roles_are_forbidden_and_get_no_data(gql, token_for, registered_person, role):
    subject = {Role.CITIZEN: CITIZEN_IIN, Role.SCHOOL: SCHOOL_ID}.get(role, "sys")
    body = await gql(PERSON_BY_IIN, {"iin": OTHER_IIN}, token=token_for(role, subject))
    assert body["data"] in (None, {"person": None})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert "Әбілова" not in str(body)


async def test_anonymous_gets_unauthenticated_and_no_data(gql, registered_person):
    body = await gql(PERSON_BY_IIN, {"iin": OTHER_IIN})
    assert body["data"] in (None, {"person": None})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "bad", ["900101300125", "90010130012", "9001013001261", "abcdefghijkl", ""]
)
async def test_bad_iin_in_a_variable_is_invalid_iin(gql, token_for, bad):
    body = await gql(PERSON_BY_IIN, {"iin": bad}, token=token_for(Role.OPERATOR, "op-1"))
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_IIN"]
    if bad:
        assert bad not in str(body)  # the refused value is not echoed whole


async def test_bad_iin_in_a_literal_is_invalid_iin(gql, token_for):
    body = await gql(
        '{ person(iin: "900101300125") { lastName } }', token=token_for(Role.OPERATOR, "op")
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_IIN"]


async def test_syntax_errors_have_a_code(gql):
    body = await gql("{ me { ")
    assert "data" not in body or body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_PARSE_FAILED"]


async def test_unknown_fields_have_a_code_and_suggestions_in_dev(gql):
    body = await gql("{ mee { subject } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean" in error["message"]


# --- production -------------------------------------------------------------------------


@pytest.fixture
async def prod_client(settings, engine, session_factory):
    # Trusted documents off: these tests probe the layers beneath them, as if a document of
    # an attacker's making had got through.
    prod = settings.model_copy(
        update={
            "environment": "prod",
            "jwt_jwks_url": "http://127.0.0.1:9/jwks.json",
            "trusted_documents_only": False,
        }
    )
    app = create_app(prod, engine=engine, session_factory=session_factory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_prod_disables_introspection(prod_client):
    response = await prod_client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    body = response.json()
    assert body.get("data") is None
    # The message is masked in prod (validation errors too); the code stays.
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert "types" not in response.text


async def test_prod_gives_no_field_suggestions(prod_client):
    response = await prod_client.post("/graphql", json={"query": "{ mee { subject } }"})
    [error] = response.json()["errors"]
    assert "Did you mean" not in error["message"]


async def test_prod_masks_unexpected_errors(settings, engine, dev_issuer, monkeypatch):
    # Given a prod app whose token verification works (we trust the dev key here) and whose
    # database layer fails with an internal detail in the message
    from app import asgi

    # Trusted documents off: these tests probe the layers beneath them, as if a document of
    # an attacker's making had got through.
    prod = settings.model_copy(
        update={
            "environment": "prod",
            "jwt_jwks_url": "http://127.0.0.1:9/jwks.json",
            "trusted_documents_only": False,
        }
    )

    class ExplodingSessions:
        def __call__(self):
            raise RuntimeError("connection to 10.0.0.5 failed: password for postgres")

    monkeypatch.setattr(
        asgi,
        "build_token_verifier",
        lambda _s, _i: TokenVerifier(
            issuer=prod.jwt_issuer,
            audience=prod.jwt_audience,
            leeway_seconds=0,
            public_key=dev_issuer.public_key,
        ),
    )
    app = create_app(prod, engine=engine, session_factory=ExplodingSessions())  # type: ignore[arg-type]
    token = dev_issuer.mint(roles=[Role.OPERATOR], subject="op-1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            "/graphql",
            json={"query": PERSON_BY_IIN, "variables": {"iin": OTHER_IIN}},
            headers={"authorization": f"Bearer {token}"},
        )
    # Then the client learns only that something unexpected happened
    body = response.json()
    assert body["data"] == {"person": None}
    # (in Russian, the default: the request sends no Accept-Language)
    assert body["errors"][0]["message"] == "Непредвиденная ошибка."
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "10.0.0.5" not in response.text and "password" not in response.text
