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
