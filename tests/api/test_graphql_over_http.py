"""GraphQL over HTTP: application/graphql-response+json and the draft's status codes."""

from __future__ import annotations

import pytest

from app.auth import Role

GRAPHQL_RESPONSE = "application/graphql-response+json"
ME = "{ me { subject } }"
PERSON = "query Person($iin: IIN!) { person(iin: $iin) { lastName } }"


@pytest.fixture
def operator(token_for) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(Role.OPERATOR, 'op-1')}"}


async def post(client, payload, headers, accept=GRAPHQL_RESPONSE):
    return await client.post("/graphql", json=payload, headers={**headers, "accept": accept})


async def test_a_good_request_is_200_in_the_media_type_asked_for(client, operator):
    response = await post(client, {"query": ME}, operator)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json() == {"data": {"me": {"subject": "op-1"}}}


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"query": "{ me { "}, 400, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ mee { subject } }"}, 422, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": PERSON, "variables": {"iin": "900101300125"}}, 400, "INVALID_IIN"),
        (
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
            400,
            "PERSISTED_QUERY_NOT_FOUND",
        ),
    ],
    ids=["parse", "validation", "variables", "unknown-hash"],
)
async def test_request_errors_have_the_drafts_status_and_no_data(
    client, operator, payload, status, code
):
    response = await post(client, payload, operator)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]


async def test_field_errors_are_200_with_data(client):
    # An anonymous caller: `person` is refused as a field error, beside data: null.
    response = await post(client, {"query": PERSON, "variables": {"iin": "900101300126"}}, {})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"person": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/json, */*"])
async def test_plain_json_clients_keep_200_and_application_json(client, operator, accept):
    headers = {**operator, **({"accept": accept} if accept else {})}
    response = await client.post("/graphql", json={"query": "{ mee }"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_accept_weights_decide(client, operator):
    prefers_json = f"{GRAPHQL_RESPONSE};q=0.5, application/json"
    response = await post(client, {"query": "{ mee }"}, operator, accept=prefers_json)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    prefers_ours = f"application/json;q=0.9, {GRAPHQL_RESPONSE}"
    response = await post(client, {"query": "{ mee }"}, operator, accept=prefers_ours)
    assert response.status_code == 422


async def test_a_mutation_over_get_is_405(client, operator):
    response = await client.get(
        "/graphql",
        params={"query": "mutation { recordLifeEvent(input: {}) { __typename } }"},
        headers={**operator, "accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_personal_data_over_get_is_refused_with_422(client, operator):
    response = await client.get(
        "/graphql", params={"query": ME}, headers={**operator, "accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["extensions"]["code"] == "PERSONAL_DATA_OVER_GET"


@pytest.mark.parametrize(
    "document",
    [
        "{ ... on Query { me { subject } } }",
        "{ ...Q } fragment Q on Query { me { subject } }",
        "query($iin: IIN!) { __typename }",
    ],
    ids=["inline-fragment", "named-fragment", "iin-variable"],
)
async def test_get_cannot_smuggle_personal_data(client, operator, document):
    response = await client.get("/graphql", params={"query": document}, headers=operator)
    body = response.json()
    assert body.get("data") is None
    assert "PERSONAL_DATA_OVER_GET" in {e["extensions"]["code"] for e in body["errors"]}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded", None]
)
async def test_an_unsupported_media_type_is_415_in_a_graphql_error_body(client, content_type):
    # when a body is posted as something other than JSON
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    # then it is 415, and the body is a GraphQL error like every other
    assert response.status_code == 415
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [
        "UNSUPPORTED_MEDIA_TYPE"
    ]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
@pytest.mark.parametrize(
    ("body", "code"),
    [(b'{ "not a JSON', "BAD_REQUEST"), (b"[1]", "BAD_REQUEST"), (b"", "BAD_REQUEST")],
    ids=["bad-json", "batch", "empty"],
)
async def test_a_malformed_request_is_400_in_a_graphql_error_body(client, accept, body, code):
    # when the JSON does not parse, is a batch, or is missing
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json", "accept": accept}
    )
    # then it is 400 with a GraphQL error body, not text/plain
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]


async def test_another_method_is_405_in_a_graphql_error_body(client):
    # when /graphql is sent a PUT
    response = await client.put("/graphql", json={"query": "{ __typename }"})
    # then it is 405, saying what is allowed, in a GraphQL error body
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_variables_that_do_not_coerce_are_400_even_in_an_invalid_document(client):
    # given graphql-http's audit 86EE: an unused variable (invalid) sent as null for ID!
    payload = {"query": "query CoerceFailure($id: ID!){ __typename }", "variables": {"id": None}}
    # when a client that accepts graphql-response+json sends it
    response = await post(client, payload, {})
    # then the variables are the request error that counts: 400, without data
    assert response.status_code == 400
    assert "data" not in response.json()
    # and the same document with a value that coerces is the validation failure it is
    payload["variables"] = {"id": "1"}
    assert (await post(client, payload, {})).status_code == 422
