"""Refusals and errors through the API are said in the language the request asks for."""

from __future__ import annotations

import uuid

import pytest

from app.auth import Role
from tests.vouchers.vouchers_builders import family_with_pupil, school

REDEEM = """
mutation($input: RedeemMealInput!) { redeemMeal(input: $input) {
  __typename ... on VoucherRefused { code message }
} }
"""
CONSENT = """
mutation($child: ID!) { consentToMealVoucher(childId: $child) { __typename } }
"""


@pytest.fixture
def ask(client):
    """POST a GraphQL document with an Accept-Language header; the decoded body."""

    async def post(query: str, variables: dict, *, token: str, accept_language: str | None):
        headers = {"authorization": f"Bearer {token}"}
        if accept_language is not None:
            headers["accept-language"] = accept_language
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        return response.json()

    return post


@pytest.fixture
async def pupil(session):
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    other = await school(session, code="astana-school-077")
    await session.commit()
    return parent, child, canteen, other


def _meal(child_id: int, served_on: str) -> dict:
    return {"input": {"idempotencyKey": uuid.uuid4().hex, "mealType": "LUNCH",
                      "servedOn": served_on, "childId": str(child_id)}}  # fmt: skip


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("kk-KZ,kk;q=0.9", "Бала бұл мектепте оқымайды"),
        ("ru-RU", "Ребёнок не учится в этой школе"),
        ("en-GB,en;q=0.8", "the child is not enrolled at this school"),
        (None, "Ребёнок не учится в этой школе"),
    ],
)
async def test_a_refusal_is_said_in_the_requests_language(
    ask, token_for, pupil, accept_language, expected
):
    # given a school the child does not attend
    _, child, _, other = pupil

    # when it claims the child's lunch, asking in a language
    body = await ask(REDEEM, _meal(child.id, "2026-11-18"),
                     token=token_for(Role.SCHOOL, str(other.id)), accept_language=accept_language)  # fmt: skip

    # then the code is the same in every language and the words are the language's
    assert body["data"]["redeemMeal"] == {
        "__typename": "VoucherRefused", "code": "NOT_ENROLLED", "message": expected,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("kk", "2026\u202fж. 14 қараша — оқу күні емес"),
        ("ru", "14 ноября 2026\u202fг. — не учебный день"),
        ("en", "November 14, 2026 is not a school day"),
    ],
)
async def test_a_refusal_writes_its_date_as_the_language_does(
    ask, token_for, pupil, accept_language, expected
):
    # given a pupil with a meal voucher at their school
    parent, child, canteen, _ = pupil
    await ask(CONSENT, {"child": str(child.id)}, token=token_for(Role.CITIZEN, parent.iin),
              accept_language=None)  # fmt: skip

    # when the school claims a lunch on a Saturday
    body = await ask(REDEEM, _meal(child.id, "2026-11-14"),
                     token=token_for(Role.SCHOOL, str(canteen.id)), accept_language=accept_language)  # fmt: skip

    # then the refusal names the day in the reader's form
    assert body["data"]["redeemMeal"]["code"] == "NOT_A_SCHOOL_DAY"
    assert body["data"]["redeemMeal"]["message"] == expected


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("kk", "Мұнда мына рөлдердің бірі қажет: SCHOOL."),
        ("ru", "Нужна одна из ролей: SCHOOL."),
        ("en", "This needs one of the roles: SCHOOL."),
    ],
)
async def test_an_api_error_is_said_in_the_requests_language(
    ask, token_for, pupil, accept_language, expected
):
    # when a citizen tries what only a school may do
    parent, child, _, _ = pupil
    body = await ask(REDEEM, _meal(child.id, "2026-11-18"),
                     token=token_for(Role.CITIZEN, parent.iin), accept_language=accept_language)  # fmt: skip

    # then the error keeps its code and speaks the language
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["message"] == expected


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("kk", "Күнтізбеде мұндай күн жоқ"),
        ("ru", "Такой даты нет в календаре"),
        ("en", "not a real calendar date"),
    ],
)
async def test_a_refused_input_value_is_explained_in_the_requests_language(
    ask, token_for, pupil, accept_language, expected
):
    # when a school sends a day no calendar has
    _, child, canteen, _ = pupil
    body = await ask(REDEEM, _meal(child.id, "2026-02-30"),
                     token=token_for(Role.SCHOOL, str(canteen.id)), accept_language=accept_language)  # fmt: skip

    # then it is the client's input, and the explanation is in the reader's language
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert f"encountered error '{expected}'" in error["message"]


REGISTER_IBAN = """
mutation($iban: String!, $key: String!) { registerBankAccount(iban: $iban, idempotencyKey: $key) {
  __typename ... on BankAccountRefused { code message }
} }
"""


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("kk", "Бұл жарамды қазақстандық IBAN емес."),
        ("ru", "Это не действительный казахстанский IBAN."),
        ("en", "This is not a valid Kazakhstan IBAN."),
    ],
)
async def test_a_refused_bank_account_is_said_in_the_requests_language(
    ask, token_for, pupil, accept_language, expected
):
    # given a citizen who types an IBAN with a wrong check digit
    parent, *_ = pupil
    variables = {"iban": "KZ00125KZT5004100100", "key": "iban-1"}

    # when it is refused
    body = await ask(
        REGISTER_IBAN, variables, token=token_for(Role.CITIZEN, parent.iin),
        accept_language=accept_language,
    )  # fmt: skip

    # then in the request's language, never the domain's English
    assert body["data"]["registerBankAccount"] == {
        "__typename": "BankAccountRefused", "code": "INVALID_IBAN", "message": expected,
    }  # fmt: skip


ME = "{ me { subject } }"


@pytest.mark.parametrize(
    ("accept_language", "token", "expected"),
    [
        ("kk", None, "Кіру орындалмады: Authorization: Bearer тақырыбында токен қажет."),
        ("ru", None, "Вход не выполнен: нужен токен в заголовке Authorization: Bearer."),
        ("en", None, "Not authenticated: a bearer token is required."),
        ("kk", "not-a-jwt", "Кіру орындалмады: токен бүлінген немесе оның қолтаңбасы жарамсыз."),
        ("ru", "not-a-jwt", "Вход не выполнен: токен повреждён или его подпись недействительна."),
        ("en", "not-a-jwt", "Not authenticated: token is malformed or its signature is invalid."),
    ],
)
async def test_why_a_caller_is_not_authenticated_is_said_in_one_language(
    client, accept_language, token, expected
):
    # given a request without a token, or with one that is no JWT
    headers = {"accept-language": accept_language}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"

    # when it asks for something that needs a caller
    response = await client.post("/graphql", json={"query": ME}, headers=headers)

    # then the frame and the reason inside it are both in the request's language
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == expected
