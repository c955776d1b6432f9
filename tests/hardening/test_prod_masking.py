"""In prod, parse and validation errors are masked too: the code stays, the details go."""

from __future__ import annotations

import pytest

# The documents an attacker might probe the schema with (trusted documents off, to reach them).
PROBES = [
    ("{ mee { subject } }", "GRAPHQL_VALIDATION_FAILED", "mee"),
    ("{ me { subjec } }", "GRAPHQL_VALIDATION_FAILED", "subjec"),
    ("{ me { ", "GRAPHQL_PARSE_FAILED", "Expected"),
]


@pytest.mark.parametrize(("document", "code", "detail"), PROBES)
async def test_prod_masks_document_errors_but_keeps_their_codes(
    prod_client_for, document, code, detail
):
    async with prod_client_for(trusted_documents_only=False) as client:
        response = await client.post("/graphql", json={"query": document})
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": code}
    assert detail not in error["message"]
    assert "Did you mean" not in response.text


async def test_dev_keeps_the_details(gql):
    body = await gql("{ mee { subject } }")
    assert "mee" in body["errors"][0]["message"]


async def test_refusals_are_not_logged_as_errors(gql, caplog):
    # An anonymous caller and a bad IIN: the API refusing as intended
    with caplog.at_level("ERROR", logger="strawberry.execution"):
        await gql("{ me { subject } }")
        await gql('{ person(iin: "900101300125") { lastName } }')
    assert [r for r in caplog.records if r.name == "strawberry.execution"] == []


async def test_unexpected_errors_are_logged(settings, engine, token_for, caplog):
    import httpx

    from app.asgi import create_app
    from app.auth import Role

    class ExplodingSessions:
        def __call__(self):
            raise RuntimeError("the database is on fire")

    app = create_app(settings, engine=engine, session_factory=ExplodingSessions())  # type: ignore[arg-type]
    with caplog.at_level("ERROR", logger="strawberry.execution"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            await client.post(
                "/graphql",
                json={"query": '{ person(iin: "900101300126") { lastName } }'},
                headers={"authorization": f"Bearer {token_for(Role.OPERATOR, 'op-1')}"},
            )
    logged = [r for r in caplog.records if r.name == "strawberry.execution"]
    assert len(logged) == 1 and "on fire" in logged[0].getMessage()
