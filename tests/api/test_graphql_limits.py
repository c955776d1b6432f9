"""GraphQL limits: hostile documents are refused before any resolver runs.

Each test counts resolver calls with a spy: on the app's schema (the `me` resolver's
`Viewer.from_principal`) or on a small recursive schema built with the same limits (the
app's schema has no type deep enough to nest).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import strawberry

from app.auth import Role
from graphql_schema.limits import limit_extensions
from graphql_schema.types.identity import Viewer

ME_WITH_FRAGMENT_ALIASES = """
{ me { ...Many } again: me { ...Many } }
fragment Many on Viewer {
  a: subject b: subject c: subject d: subject e: subject f: subject g: subject h: subject
}
"""
CIRCULAR_FRAGMENTS = """
{ me { ...A } }
fragment A on Viewer { subject ...B }
fragment B on Viewer { roles ...A }
"""
# Each fragment spreads the one before twice: 2^25 selections from a 1 kB document.
DOUBLING_FRAGMENTS = (
    "{ me { ...F24 } }\nfragment F0 on Viewer { a: subject b: subject }\n"
    + "\n".join(f"fragment F{i} on Viewer {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 25))
)
OVERSIZED = "{ me { " + " ".join(["subject"] * 3000) + " } }"
WITHIN_LIMITS = "{ me { subject } again: me { roles } }"


@pytest.fixture
def resolver_calls(monkeypatch) -> list[Any]:
    """Every call of the `me` resolver's only helper."""
    calls: list[Any] = []
    original = Viewer.from_principal

    def spy(principal, **kwargs):
        calls.append(principal)
        return original(principal, **kwargs)

    monkeypatch.setattr(Viewer, "from_principal", spy)
    return calls


@pytest.fixture
def operator(token_for) -> str:
    return token_for(Role.OPERATOR, "op-1")


async def test_a_document_within_the_limits_runs(gql, operator, resolver_calls):
    body = await gql(WITHIN_LIMITS, token=operator)
    assert body == {"data": {"me": {"subject": "op-1"}, "again": {"roles": ["OPERATOR"]}}}
    assert len(resolver_calls) == 2


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (ME_WITH_FRAGMENT_ALIASES, "GRAPHQL_VALIDATION_FAILED"),
        (CIRCULAR_FRAGMENTS, "GRAPHQL_VALIDATION_FAILED"),
        (DOUBLING_FRAGMENTS, "GRAPHQL_VALIDATION_FAILED"),
        (OVERSIZED, "GRAPHQL_PARSE_FAILED"),
    ],
    ids=["alias-amplification", "circular-fragments", "doubling-fragments", "oversized"],
)
async def test_hostile_documents_are_refused_before_any_resolver(
    gql, operator, resolver_calls, document, code
):
    calls = 0

    def count_calls(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    # Refused cheaply, not after a long walk: counted in Python function calls (the same on a
    # busy machine as on a quiet one) rather than timed. A walk of the doubling fragments'
    # 2^25 selections alone would be tens of millions.
    sys.setprofile(count_calls)
    try:
        body = await gql(document, token=operator)
    finally:
        sys.setprofile(None)
    assert body.get("data") is None
    assert code in {e["extensions"]["code"] for e in body["errors"]}
    assert resolver_calls == []
    assert calls < 200_000, calls


async def test_alias_amplification_is_counted_through_fragments(gql, operator):
    # Given 8 aliases in one fragment (within the limit of 15), spread twice
    body = await gql(ME_WITH_FRAGMENT_ALIASES, token=operator)
    # Then all 17 (8 + 8 and the alias `again`) count
    assert [e["message"] for e in body["errors"]] == ["17 aliases found. Allowed: 15"]


async def test_batched_requests_are_refused(client, operator):
    response = await client.post(
        "/graphql",
        json=[{"query": "{ me { subject } }"}, {"query": "{ me { roles } }"}],
        headers={"authorization": f"Bearer {operator}"},
    )
    assert response.status_code == 400
    assert "Batching is not enabled" in response.text


# --- depth, on a recursive schema with the same limits ------------------------------------

calls: list[int] = []


@strawberry.type
class Node:
    level: int

    @strawberry.field
    def child(self) -> Node:
        calls.append(self.level)
        return Node(level=self.level + 1)


@strawberry.type
class RecursiveQuery:
    @strawberry.field
    def root(self) -> Node:
        calls.append(0)
        return Node(level=0)


def nested(depth: int) -> str:
    return "{ root { " + "child { " * (depth - 1) + "level" + " }" * depth + " }"


@pytest.fixture
def recursive_schema(settings) -> strawberry.Schema:
    calls.clear()
    return strawberry.Schema(query=RecursiveQuery, extensions=limit_extensions(settings))


async def test_nesting_within_the_depth_limit_runs(recursive_schema, settings):
    result = await recursive_schema.execute(nested(settings.graphql_max_depth))
    assert result.errors is None
    assert len(calls) == settings.graphql_max_depth


async def test_deep_nesting_is_refused_before_any_resolver(recursive_schema, settings):
    result = await recursive_schema.execute(nested(settings.graphql_max_depth + 1))
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message
    assert calls == []


async def test_deep_nesting_through_fragments_is_refused(recursive_schema, settings):
    depth = settings.graphql_max_depth + 2
    fragments = "\n".join(
        f"fragment N{i} on Node {{ child {{ ...N{i + 1} }} }}" for i in range(depth)
    )
    document = "{ root { ...N0 } }\n" + fragments + f"\nfragment N{depth} on Node {{ level }}"
    result = await recursive_schema.execute(document)
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message
    assert calls == []


async def test_an_oversized_body_is_413_before_it_is_parsed(client, settings, resolver_calls):
    big = "{ me { " + " " * settings.graphql_max_body_bytes + "subject } }"
    response = await client.post("/graphql", json={"query": big})
    assert response.status_code == 413
    assert resolver_calls == []


async def test_an_oversized_chunked_body_is_413_too(client, settings):
    # No Content-Length: the body is counted as it arrives.
    async def chunks():
        yield b'{"query": "{ me { '
        for _ in range(settings.graphql_max_body_bytes // 1024 + 1):
            yield b" " * 1024
        yield b'subject } }"}'

    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
