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
        ("kk", "2026\u202fж. 14 қар. — оқу күні емес"),
        ("ru", "14 нояб. 2026\u202fг. — не учебный день"),
        ("en", "Nov 14, 2026 is not a school day"),
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
