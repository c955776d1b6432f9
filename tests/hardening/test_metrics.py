"""/metrics: Prometheus text with requests, latency and errors per operation, and the
database's figures (outbox lag, eligibility run durations, registered hooks) read on scrape."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app import metrics
from app.asgi import create_app
from app.auth import Role
from familymap.orm import utcnow
from familymap.tables import EligibilityRun
from graphql_schema.trusted_documents import OPERATIONS_DIR
from tests.wallet.offer_builders import evaluate, newborn_household
from wallet.offer_tables import Offer
from wallet.offers import answer_offer, offer_new_entitlements
from wallet.outbox import enqueue

ME_TEXT = (OPERATIONS_DIR / "Me.graphql").read_text()


def sample(name: str, **labels) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_latency_and_errors_are_counted_per_operation(client, gql, token_for):
    # Given the counters as they are
    before_ok = sample("socialwallet_graphql_requests_total", operation="Me", outcome="ok")
    before_latency = sample("socialwallet_graphql_request_duration_seconds_count", operation="Me")
    before_other = sample(
        "socialwallet_graphql_requests_total", operation="unregistered", outcome="error"
    )
    before_unauth = sample("socialwallet_graphql_errors_total", code="UNAUTHENTICATED")
    # When a registered operation runs, and an unregistered one fails
    await gql(ME_TEXT, token=token_for(Role.OPERATOR, "op-1"))
    await gql("{ me { subject } }")
    response = await client.get("/metrics")
    # Then each is counted under its own label
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "socialwallet_graphql_requests_total" in response.text
    assert sample("socialwallet_graphql_requests_total", operation="Me", outcome="ok") == (
        before_ok + 1
    )
    assert (
        sample("socialwallet_graphql_request_duration_seconds_count", operation="Me")
        == before_latency + 1
    )
    assert (
        sample("socialwallet_graphql_requests_total", operation="unregistered", outcome="error")
        == before_other + 1
    )
    assert sample("socialwallet_graphql_errors_total", code="UNAUTHENTICATED") == before_unauth + 1


async def test_operation_names_sent_by_clients_do_not_become_labels(gql, client):
    await gql("query AttackerChosenName123 { __typename }")
    response = await client.get("/metrics")
    assert "AttackerChosenName123" not in response.text


async def test_outbox_lag_is_the_oldest_pending_message_age(client, session):
    # Given a message queued two minutes ago and still pending
    message = await enqueue(
        session=session,
        message_key="metrics-test-1",
        channel="sms",
        recipient="+77010000001",
        body="Сәлем",
    )
    message.created_at = datetime.now(UTC) - timedelta(minutes=2)
    await session.commit()
    # When Prometheus scrapes
    response = await client.get("/metrics")
    # Then the lag says two minutes, and one message waits
    assert response.status_code == 200
    assert 119 <= sample("socialwallet_outbox_oldest_pending_age_seconds") < 200
    assert sample("socialwallet_outbox_pending_messages") >= 1


async def test_finished_eligibility_runs_feed_the_duration_histogram_once(client, session):
    # Given a batch run that took 42 seconds
    started = datetime.now(UTC) - timedelta(minutes=5)
    session.add(
        EligibilityRun(
            scope="batch",
            status="finished",
            evaluated_on=date.today(),
            parameter_version="test",
            started_at=started,
            finished_at=started + timedelta(seconds=42),
        )
    )
    await session.commit()
    before = sample("socialwallet_eligibility_run_duration_seconds_count", scope="batch")
    # When Prometheus scrapes twice
    await client.get("/metrics")
    await client.get("/metrics")
    # Then the run was observed once, and it is the newest batch run
    assert (
        sample("socialwallet_eligibility_run_duration_seconds_count", scope="batch") == before + 1
    )
    assert sample("socialwallet_eligibility_last_run_duration_seconds", scope="batch") == 42


async def test_offers_are_counted_by_state_on_scrape(client, session):
    # Given a household offered two benefits, one of them declined
    household = await newborn_household(session)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    offer = await session.scalar(select(Offer).where(Offer.programme == "BIRTH_BENEFIT"))
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=household.father.id,
        accept=False, channel="app",
    )  # fmt: skip
    await session.commit()
    # When Prometheus scrapes, then each state has its count, and an empty state reads 0
    await client.get("/metrics")
    assert sample("socialwallet_offers", state="declined") == 1
    assert sample("socialwallet_offers", state="offered") >= 1
    assert sample("socialwallet_offers", state="paid") == 0


@pytest.fixture
def offers_hook():
    async def offers_by_state(_session) -> None:
        metrics.OFFERS.labels(state="proposed").set(7)

    metrics.on_scrape(offers_by_state)
    yield
    metrics._SCRAPE_HOOKS.remove(offers_by_state)


async def test_registered_hooks_set_their_gauges_on_scrape(client, offers_hook):
    response = await client.get("/metrics")
    assert 'socialwallet_offers{state="proposed"} 7.0' in response.text


async def test_a_failing_database_does_not_fail_the_scrape(settings, engine):
    class Unreachable:
        def __call__(self):
            raise ConnectionError("database is down")

    app = create_app(settings, engine=engine, session_factory=Unreachable())  # type: ignore[arg-type]
    before = sample("socialwallet_metrics_scrape_failures_total")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    assert sample("socialwallet_metrics_scrape_failures_total") == before + 1
