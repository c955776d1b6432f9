"""The wallet benchmark compares like with like: its baseline endpoint serves the same data as
the GraphQL query, from the same three statements."""

from __future__ import annotations

from datetime import UTC, datetime

from app.auth import Role
from bench.wallet import BASELINE_PATH, WALLET_QUERY, baseline_wallet
from tests.wallet.wallet_builders import add_family, household, open_books, pay_benefit

YEAR = datetime.now(UTC).year


def without_ids(value):
    """The answer with Relay ids and cursors dropped (the baseline uses the raw keys)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k not in ("id", "endCursor")}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


async def test_the_baseline_serves_what_the_graphql_query_serves(app, client, token_for, session):
    # given a family with a payment, and the baseline route on the app
    await open_books(session)
    _, (head, *_rest) = await add_family(session, household(3))
    await pay_benefit(session, tid="bench-test-1", person=head, amount=3_000_000)
    await session.commit()
    app.add_route(BASELINE_PATH, baseline_wallet, methods=["GET"])
    headers = {"authorization": f"Bearer {token_for(Role.CITIZEN, head.iin)}",
               "accept-language": "kk"}  # fmt: skip

    # when the wallet is read both ways
    graphql = await client.post(
        "/graphql", json={"query": WALLET_QUERY, "variables": {"year": YEAR}}, headers=headers
    )
    baseline = await client.get(BASELINE_PATH, params={"year": YEAR}, headers=headers)

    # then the two answers agree field for field
    assert "errors" not in graphql.json()
    assert list(_diff(without_ids(baseline.json()), without_ids(graphql.json()))) == []
    assert len(graphql.json()["data"]["me"]["entitlements"]["edges"]) == 20


def _diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from _diff(a.get(k), b.get(k), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b
