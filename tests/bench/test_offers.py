"""The offers benchmark's fake SMS gateway answers as a real one does (idempotency keys,
slow and failed answers), so that the relay it measures is the production relay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bench.sms_gateway import FakeGateway, _answer_for, start_gateway
from familymap.orm import utcnow
from wallet.http_client import HttpClient
from wallet.outbox import Backoff, enqueue, run_relay
from wallet.outbox_tables import OutboxMessage
from wallet.sms import HttpGateway


def test_the_gateway_makes_up_slow_and_failed_answers_in_the_advertised_shares():
    # Given 20,000 message keys on their first attempt
    answers = [_answer_for(f"offer:k{n}:sms", 1) for n in range(20_000)]
    # Then about 1 % are slow, 2 % unavailable, 0.5 % throttled, 0.1 % refused
    shares = {kind: answers.count(kind) / len(answers) for kind in set(answers)}
    assert 0.015 < shares["unavailable"] < 0.025 and 0.003 < shares["throttled"] < 0.007
    assert 0.007 < shares["slow"] < 0.013 and 0.0003 < shares["refused"] < 0.002
    # and a retry of a message that was unavailable goes through
    assert all(_answer_for(f"offer:k{n}:sms", 2) in ("ok", "slow") for n in range(20_000)
               if answers[n] in ("unavailable", "throttled"))  # fmt: skip


async def test_a_key_taken_before_is_answered_again_and_not_delivered_twice():
    # Given a gateway that took a message
    gateway = FakeGateway()
    key = next(f"k{n}" for n in range(100) if _answer_for(f"k{n}", 1) == "ok")
    first = await gateway.answer({"to": "+77010000001", "idempotency_key": key})
    # When the relay sends it again (it was killed before recording the answer)
    again = await gateway.answer({"to": "+77010000001", "idempotency_key": key})
    # Then the same id comes back, counted as a resend, not as a delivery or a duplicate
    assert first == again == (200, {"id": "gw-1"})
    stats = gateway.stats()
    assert (stats["delivered"], stats["repeated"], stats["duplicates"]) == (1, 1, 0)


async def test_two_sends_of_one_message_at_once_count_as_a_duplicate():
    # Given a slow message
    gateway = FakeGateway()
    key = next(f"k{n}" for n in range(1000) if _answer_for(f"k{n}", 1) == "slow")
    # When it is sent twice at the same time
    await asyncio.gather(
        *(gateway.answer({"to": "+77010000001", "idempotency_key": key}) for _ in range(2))
    )
    # Then the gateway counts the duplicate (a real one may deliver it twice)
    assert gateway.stats()["duplicates"] == 1


async def test_the_relay_drains_the_outbox_into_the_gateway_over_http(session, session_factory):
    # Given 300 SMS queued and the gateway serving on a loopback port
    keys = [f"offer:bench{n}:sms" for n in range(300)]
    for key in keys:
        await enqueue(session=session, message_key=key, channel="sms",
                      recipient="+77010000001", body="1414: test")  # fmt: skip
    await session.commit()
    gateway = FakeGateway()
    server = await start_gateway(gateway)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()

    def on_batch(_summary) -> None:
        if gateway.stats()["delivered"] + gateway.stats()["refused"] >= len(keys):
            stop.set()

    # When the relay runs (HttpGateway, two lanes, short backoff) until all are answered
    client = HttpClient()
    try:
        await asyncio.wait_for(
            run_relay(
                session_factory=session_factory,
                gateway=HttpGateway(url=f"http://127.0.0.1:{port}/sms", token="t", client=client),
                stop=stop, interval=0.05, batch_size=50, concurrency=8, lanes=2,
                backoff=Backoff(base=timedelta(seconds=0.05), cap=timedelta(seconds=0.1)),
                clock=lambda: utcnow() + timedelta(days=1),
                on_batch=on_batch,
            ),
            timeout=60,
        )  # fmt: skip
    finally:
        await client.aclose()
    server.close()
    # Then every message was delivered once or refused, and the outbox agrees
    stats = gateway.stats()
    assert stats["delivered"] + stats["refused"] == len(keys)
    assert stats["duplicates"] == 0 and stats["repeated"] == 0
    assert stats["unavailable"] + stats["throttled"] > 0  # and retried
    statuses = (
        await session.scalars(
            select(OutboxMessage.status)
            .where(OutboxMessage.message_key.in_(keys))
            .execution_options(populate_existing=True)
        )
    ).all()
    assert statuses.count("sent") == stats["delivered"]
    assert statuses.count("failed") == stats["refused"]
