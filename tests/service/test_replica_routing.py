"""Read replicas wired into the app, on a primary and a streaming standby of the test's own
(tests/pgcluster.py): a citizen's lag-tolerant reads are served by the standby, a mutation and
the reads after it stay on the primary until the standby has replayed it, and /readyz shows
the replicas."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.asgi import create_app
from app.auth import Role, build_dev_issuer
from app.db import create_engine, create_session_factory
from app.demo import seed_demo
from app.migrate import upgrade_to_head
from app.settings import DEV_SMS_INBOUND_SECRET, Settings
from tests.clock import PINNED_NOW
from tests.pgcluster import stop, streaming_pair
from wallet.inbound import sign
from wallet.offers import issue_pending_offers

OFFERS = "query Offers { me { offers(first: 50) { edges { node { id state } } } } }"
DECLINE = """mutation Decline($offerId: ID!, $key: String!) {
  declineOffer(offerId: $offerId, idempotencyKey: $key) {
    __typename ... on OfferAnswered { offer { id state } } } }"""


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
async def served(tmp_path):
    """The app on a primary with one standby, a demo registry with open offers, and two
    citizens' tokens with an open offer each."""
    with streaming_pair() as (primary, standby):
        settings = Settings(
            database_url=primary.url,
            database_replica_url=standby.url,
            replica_check_interval_seconds=0.05,
            replica_max_lag_seconds=30,
            dev_jwt_key_path=tmp_path / "key.pem",
            audit_hash_key=secrets.token_hex(32),
            redis_url=None,
        )
        engine = create_engine(settings)
        await upgrade_to_head(engine)
        factory = create_session_factory(engine)
        async with factory() as session, session.begin():
            await seed_demo(session, today=PINNED_NOW.date())
        await issue_pending_offers(session_factory=factory, now=PINNED_NOW)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT DISTINCT ON (p.iin) p.iin, o.id, p.phone, o.reply_code "
                        "FROM offers o "
                        "JOIN persons p ON p.id = o.recipient_person_id "
                        "WHERE o.state = 'offered' AND p.phone IS NOT NULL "
                        "ORDER BY p.iin, o.id LIMIT 2"
                    )
                )
            ).all()
        await engine.dispose()
        issuer = build_dev_issuer(settings)
        tokens = [
            issuer.mint(roles=[Role.CITIZEN], subject=iin, ttl=timedelta(hours=1))
            for iin, *_ in rows
        ]
        standby_engine = create_async_engine(asyncpg_url(standby.url))
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                try:
                    offers = [row[1] for row in rows]
                    yield client, app, tokens, offers, standby_engine, standby, rows
                finally:
                    await standby_engine.dispose()


async def gql(client, query: str, token: str, **variables) -> dict:
    answer = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def states(data: dict) -> dict[int, str]:
    """Each offer's state by its database id (the API's ids are relay global ids)."""
    return {
        int(base64.b64decode(edge["node"]["id"]).decode().rsplit(":", 1)[1]): edge["node"]["state"]
        for edge in data["me"]["offers"]["edges"]
    }


def global_id(offer: int) -> str:
    return base64.b64encode(f"Offer:{offer}".encode()).decode()


async def until(condition, what: str) -> None:
    for _ in range(200):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def standby_offer_reads(standby_engine) -> int:
    """Scans of the offers table the standby itself has counted (its own statistics)."""
    async with standby_engine.connect() as connection:
        await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        return await connection.scalar(
            text(
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
                "FROM pg_stat_user_tables WHERE relname = 'offers'"
            )
        )


@pytest.mark.postgres_only
async def test_citizen_reads_go_to_the_standby_and_follow_their_own_writes(served):
    client, app, (citizen, other), (offer, _), standby_engine, *_ = served
    replica = app.state.replicas.replicas[0]

    async def caught_up() -> bool:
        return replica.healthy and replica.lag_seconds == 0.0

    await until(caught_up, "the standby caught up")
    # When a citizen reads their offers
    before = replica.reads
    scans = await standby_offer_reads(standby_engine)
    seen = states(await gql(client, OFFERS, citizen))
    # Then the standby served the read (the router chose it, and the standby counted it)
    assert seen[offer] == "OFFERED"
    assert replica.reads == before + 1

    async def standby_counted() -> bool:
        return await standby_offer_reads(standby_engine) > scans

    await until(standby_counted, "the standby counted the read")

    # Given the standby stops replaying (it falls behind the primary)
    async with standby_engine.connect() as connection:
        await connection.execute(text("SELECT pg_wal_replay_pause()"))
    # When the citizen declines the offer
    declined = await gql(client, DECLINE, citizen, offerId=global_id(offer), key=str(uuid.uuid4()))
    assert declined["declineOffer"]["offer"]["state"] == "DECLINED"
    # Then the citizen's next read is on the primary and sees the decline, which the standby
    # does not have yet
    before = replica.reads
    assert states(await gql(client, OFFERS, citizen))[offer] == "DECLINED"
    assert replica.reads == before
    async with standby_engine.connect() as connection:
        on_standby = await connection.scalar(
            text("SELECT state FROM offers WHERE id = :id"), {"id": offer}
        )
    assert on_standby == "offered"
    # And another citizen's read still goes to the standby
    await gql(client, OFFERS, other)
    assert replica.reads == before + 1

    # When the standby replays again and the router sees it past the citizen's write (the
    # router's last check may predate the decline, so "caught up" alone would be stale: wait
    # for a check that saw the standby past the write marks this process holds)
    async with standby_engine.connect() as connection:
        await connection.execute(text("SELECT pg_wal_replay_resume()"))

    async def past_the_citizens_write() -> bool:
        marks = [position for position, _ in app.state.replicas.marks._local.values()]
        return replica.healthy and (replica.replayed or 0) >= max(marks)

    await until(past_the_citizens_write, "the standby replayed the decline")
    # Then the citizen reads on the standby again, and sees their decline there
    before = replica.reads
    assert states(await gql(client, OFFERS, citizen))[offer] == "DECLINED"
    assert replica.reads == before + 1


@pytest.mark.postgres_only
async def test_readyz_shows_the_replicas_and_a_standby_that_is_down(served):
    client, app, (citizen, _), (offer, _), _, standby, _ = served
    replica = app.state.replicas.replicas[0]

    async def healthy() -> bool:
        return replica.healthy

    await until(healthy, "the standby is healthy")
    ready = (await client.get("/readyz")).json()
    assert ready["replicas"][0]["healthy"] is True and "degraded" not in ready
    # When the standby goes down
    stop(standby)

    async def down() -> bool:
        return not replica.healthy

    await until(down, "the router saw the standby down")
    # Then /readyz says so (still ready: reads go to the primary), and reads still work
    answer = await client.get("/readyz")
    body = answer.json()
    assert answer.status_code == 200
    assert body["replicas"][0]["healthy"] is False and body["degraded"] == ["replicas"]
    before = replica.reads
    assert states(await gql(client, OFFERS, citizen))[offer] == "OFFERED"
    assert replica.reads == before


@pytest.mark.postgres_only
async def test_a_citizens_sms_answer_is_followed_by_their_reads(served):
    client, app, (citizen, _), (offer, _), standby_engine, _, rows = served
    _, _, phone, reply_code = rows[0]
    replica = app.state.replicas.replicas[0]

    async def caught_up() -> bool:
        return replica.healthy and replica.lag_seconds == 0.0

    await until(caught_up, "the standby caught up")
    # Given the standby stops replaying
    async with standby_engine.connect() as connection:
        await connection.execute(text("SELECT pg_wal_replay_pause()"))
    # When the citizen declines the offer by SMS (the gateway delivers the reply)
    raw = json.dumps({"message_id": "gw-ryw", "from": phone, "text": f"2 {reply_code}"}).encode()
    at = str(int(time.time()))
    answer = await client.post(
        "/sms/inbound",
        content=raw,
        headers={"x-sms-timestamp": at, "x-sms-signature": sign(DEV_SMS_INBOUND_SECRET, at, raw)},
    )
    assert answer.json()["outcome"] == "declined", answer.text
    # Then the citizen's next read in the app is on the primary, and sees the answer
    before = replica.reads
    assert states(await gql(client, OFFERS, citizen))[offer] == "DECLINED"
    assert replica.reads == before
    async with standby_engine.connect() as connection:
        await connection.execute(text("SELECT pg_wal_replay_resume()"))
