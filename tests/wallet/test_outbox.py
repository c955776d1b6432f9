"""The transactional outbox and its relay, and the SMS gateways they send through.

Runs on SQLite and on PostgreSQL; the test of two relays racing needs PostgreSQL's
concurrent writers and commits its data, which it deletes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import uvloop
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.driver_db import create_driver_pool, pool_connections, session_transactions
from tests.wallet.http_stub import CLOSE, HANG, StubRequest, http_stub
from wallet import outbox as outbox_module
from wallet import sms as sms_module
from wallet.http_client import HttpClient
from wallet.ledger import open_account
from wallet.outbox import (
    Backoff,
    InvalidMessage,
    InvalidPhone,
    MessageKeyReused,
    enqueue,
    relay_once,
    run_relay,
)
from wallet.outbox_store import DriverOutbox, OutboxStore, SessionOutbox
from wallet.outbox_tables import OutboxMessage
from wallet.sms import (
    GatewayError,
    HttpGateway,
    LogGateway,
    gateway_from_settings,
    mask_phone,
)
from wallet.tables import LedgerAccount

# Messages are queued due at the real time; the relay runs a day later, so they are all due
# however long the suite takes.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
PHONE = "+77011234567"
IIN = "900101300126"
BODY = "1414: Вам положено пособие на рождение ребёнка. Ответьте ДА или НЕТ."
GATEWAY_URL = "https://sms.example.test/v1/messages"


class Crash(BaseException):
    """A relay process dying mid-send: nothing after it runs."""


class FakeGateway:
    """Answers each send with the next scripted outcome (an id, or an exception to raise);
    after the script runs out, every send succeeds."""

    def __init__(self, *outcomes: str | BaseException, delay: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[dict[str, str]] = []
        self.delay = delay

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        self.sent.append({"message_key": message_key, "recipient": recipient, "body": body})
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome = self.outcomes.pop(0) if self.outcomes else f"gw-{len(self.sent)}"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class RecordingLog:
    """Stands in for a module's structlog logger and keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def _record(self, event: str, **fields) -> None:
        self.events.append((event, fields))

    info = warning = error = _record

    def text(self) -> str:
        return json.dumps(self.events, ensure_ascii=False, default=str)


def utc(moment: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without an offset; they were written in UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def reload(session: AsyncSession, message_id: int) -> OutboxMessage:
    message = await session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None
    return message


async def queue(session: AsyncSession, key: str = "offer:1:consent", **fields) -> OutboxMessage:
    values = {"channel": "sms", "recipient": PHONE, "body": BODY} | fields
    message = await enqueue(session=session, message_key=key, **values)
    await session.commit()
    return message


async def count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()


@pytest.fixture(params=["session", pytest.param("driver", marks=pytest.mark.postgres_only)])
def relay_store(request, session_factory) -> OutboxStore:
    """The relay's outbox through SQLAlchemy sessions, and (PostgreSQL) on asyncpg itself:
    every relay test runs on both, in the test's rolled-back transaction."""
    if request.param == "session":
        return SessionOutbox(session_factory)
    return DriverOutbox(session_transactions(session_factory))


# --- Enqueue --------------------------------------------------------------------------------


async def test_enqueueing_the_same_key_twice_makes_one_message(session):
    # Given a consent request queued once
    first = await queue(session, payload={"offer_id": 1})
    # When it is queued again under the same key (a retried request, a rerun)
    again = await queue(session, payload={"offer_id": 1})
    # Then there is one message, pending, from the same row
    assert again.id == first.id
    assert await count(session) == 1
    assert (first.status, first.attempts, first.payload) == ("pending", 0, {"offer_id": 1})


async def test_a_key_reused_for_another_message_is_refused(session):
    await queue(session)
    with pytest.raises(MessageKeyReused) as refused:
        await queue(session, body="another text")
    assert refused.value.code == "MESSAGE_KEY_REUSED"


async def test_a_message_rolled_back_with_its_business_change_is_never_sent(session, relay_store):
    # Given a business change and its message in one transaction that fails
    with pytest.raises(RuntimeError):
        async with session.begin_nested():
            await open_account(session=session, code="programme:BIRTH", kind="budget_programme")
            await enqueue(
                session=session,
                message_key="offer:2:consent",
                channel="sms",
                recipient=PHONE,
                body=BODY,
            )
            raise RuntimeError("the offer could not be made")
    # Then neither the change nor the message is there, and the relay has nothing to send
    assert await session.scalar(select(func.count()).select_from(LedgerAccount)) == 0
    assert await count(session) == 0
    gateway = FakeGateway()
    summary = await relay_once(store=relay_store, gateway=gateway, now=NOW)
    assert summary.claimed == 0 and gateway.sent == []


@pytest.mark.parametrize(
    "phone",
    ["87011234567", "+7701123456", "+770112345678", "+77O11234567", "+1 7011234567", "", IIN],
)
async def test_a_bad_phone_number_is_refused_with_a_code(session, phone):
    with pytest.raises(InvalidPhone) as refused:
        await queue(session, recipient=phone)
    assert refused.value.code == "INVALID_PHONE"
    assert IIN not in str(refused.value)
    assert await count(session) == 0


@pytest.mark.parametrize(
    "fields",
    [{"channel": "telegram"}, {"body": "  "}, {"key": ""}, {"key": "k" * 129}],
)
async def test_a_message_without_a_channel_key_or_body_is_refused(session, fields):
    key = fields.pop("key", "offer:3:consent")
    with pytest.raises(InvalidMessage) as refused:
        await queue(session, key, **fields)
    assert refused.value.code == "INVALID_MESSAGE"


# --- Relay ----------------------------------------------------------------------------------


async def test_the_relay_sends_a_due_message_and_marks_it_sent(session, relay_store):
    # Given a queued consent request
    message = await queue(session)
    gateway = FakeGateway("gw-42")
    # When the relay runs
    summary = await relay_once(store=relay_store, gateway=gateway, now=NOW)
    # Then the gateway got it once, with its key, and it is recorded as sent
    assert gateway.sent == [{"message_key": "offer:1:consent", "recipient": PHONE, "body": BODY}]
    assert (summary.claimed, summary.sent) == (1, 1)
    sent = await reload(session, message.id)
    assert (sent.status, sent.attempts, sent.gateway_message_id) == ("sent", 1, "gw-42")
    assert utc(sent.sent_at) == NOW and sent.claimed_until is None and sent.last_error is None
    # and a second run sends nothing more
    assert (await relay_once(store=relay_store, gateway=gateway, now=NOW)).claimed == 0


async def test_a_retryable_failure_backs_off_then_the_message_is_sent(session, relay_store):
    # Given a gateway that is down for the first attempt, and a seeded backoff
    message = await queue(session)
    gateway = FakeGateway(GatewayError("gateway answered 503", retryable=True), "gw-7")
    backoff = Backoff(base=timedelta(seconds=30), jitter=0.2, rng=random.Random(5))
    expected_delay = Backoff(base=timedelta(seconds=30), jitter=0.2, rng=random.Random(5)).delay(1)
    # When the relay runs
    summary = await relay_once(store=relay_store, gateway=gateway, now=NOW, backoff=backoff)
    # Then the message waits for its retry, the delay jittered down from 30 s
    assert summary.retried == 1
    waiting = await reload(session, message.id)
    assert (waiting.status, waiting.attempts, waiting.last_error) == (
        "pending",
        1,
        "gateway answered 503",
    )
    assert utc(waiting.next_attempt_at) == NOW + expected_delay
    assert timedelta(seconds=24) <= expected_delay <= timedelta(seconds=30)
    # and is not sent again before then
    early = await relay_once(store=relay_store, gateway=gateway, now=NOW + timedelta(seconds=20))
    assert early.claimed == 0 and len(gateway.sent) == 1
    # When the relay runs after the delay
    later = await relay_once(store=relay_store, gateway=gateway, now=NOW + timedelta(seconds=31))
    # Then it is sent on the second attempt
    assert later.sent == 1
    sent = await reload(session, message.id)
    assert (sent.status, sent.attempts, sent.gateway_message_id) == ("sent", 2, "gw-7")
    assert sent.last_error is None


async def test_a_refused_message_fails_for_good(session, relay_store):
    message = await queue(session)
    gateway = FakeGateway(GatewayError("gateway refused the message: 400", retryable=False))
    summary = await relay_once(store=relay_store, gateway=gateway, now=NOW)
    assert summary.failed == 1
    failed = await reload(session, message.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error == "gateway refused the message: 400"
    # Not retried, however long we wait
    later = NOW + timedelta(days=2)
    assert (await relay_once(store=relay_store, gateway=gateway, now=later)).claimed == 0
    assert len(gateway.sent) == 1


async def test_a_message_that_keeps_failing_is_dead_after_max_attempts(session, relay_store):
    message = await queue(session)
    gateway = FakeGateway(*(GatewayError("timeout", retryable=True) for _ in range(5)))
    backoff = Backoff(base=timedelta(seconds=10), rng=random.Random(1))
    moment = NOW
    outcomes = []
    for _ in range(4):
        summary = await relay_once(
            store=relay_store,
            gateway=gateway,
            now=moment,
            max_attempts=3,
            backoff=backoff,
        )
        outcomes.append((summary.claimed, summary.retried, summary.dead))
        moment += timedelta(hours=1)
    # Two retries, then dead on the third attempt, then nothing more
    assert outcomes == [(1, 1, 0), (1, 1, 0), (1, 0, 1), (0, 0, 0)]
    dead = await reload(session, message.id)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 3, "timeout")
    assert len(gateway.sent) == 3


async def test_a_crashed_relays_claim_expires_and_the_message_is_sent_again(session, relay_store):
    # Given a relay that claimed a message and died while sending it
    message = await queue(session)
    gateway = FakeGateway(Crash(), "gw-after-crash")
    claim_for = timedelta(minutes=5)
    with pytest.raises(Crash):
        await relay_once(store=relay_store, gateway=gateway, now=NOW, claim_for=claim_for)
    stuck = await reload(session, message.id)
    assert (stuck.status, stuck.attempts) == ("sending", 1)
    # When another relay looks while the claim still holds, it leaves the message alone
    during = await relay_once(store=relay_store, gateway=gateway, now=NOW + timedelta(minutes=4))
    assert during.claimed == 0
    # When it looks after the claim expired
    after = await relay_once(store=relay_store, gateway=gateway, now=NOW + timedelta(minutes=6))
    # Then the message is sent again (at least once), under the same key
    assert after.sent == 1
    assert [sent["message_key"] for sent in gateway.sent] == ["offer:1:consent"] * 2
    sent = await reload(session, message.id)
    assert (sent.status, sent.attempts, sent.gateway_message_id) == ("sent", 2, "gw-after-crash")


async def test_the_sms_relay_leaves_other_channels_alone(session, relay_store):
    await queue(session, "payout:1", channel="bank", recipient="KZ86125KZT5004100100")
    gateway = FakeGateway()
    summary = await relay_once(store=relay_store, gateway=gateway, now=NOW)
    assert summary.claimed == 0 and gateway.sent == []


async def test_a_batch_takes_the_oldest_due_messages_first(session, relay_store):
    for n in range(5):
        await queue(session, f"offer:{n}:consent")
    gateway = FakeGateway()
    first = await relay_once(
        store=relay_store,
        gateway=gateway,
        now=NOW + timedelta(days=365),
        batch_size=2,
    )
    assert first.claimed == 2
    rest = await relay_once(
        store=relay_store,
        gateway=gateway,
        now=NOW + timedelta(days=365),
        batch_size=10,
    )
    assert rest.sent == 3
    assert sorted(sent["message_key"] for sent in gateway.sent) == [
        f"offer:{n}:consent" for n in range(5)
    ]


async def test_no_raw_iin_reaches_last_error_or_the_logs(session, relay_store, monkeypatch):
    # Given gateways whose errors echo an IIN (a refused text, an unforeseen exception)
    records = RecordingLog()
    monkeypatch.setattr(outbox_module, "log", records)
    monkeypatch.setattr(sms_module, "log", records)
    refused = await queue(session, "offer:10:consent")
    crashed = await queue(session, "offer:11:consent")
    gateway = FakeGateway(
        GatewayError(f"400 recipient {IIN} at {PHONE} unknown", retryable=False),
        ValueError(f"cannot parse {IIN}"),
    )
    # When the relay tries them
    await relay_once(store=relay_store, gateway=gateway, now=NOW, concurrency=1)
    # Then what is stored and logged names no IIN
    refused_row = await reload(session, refused.id)
    crashed_row = await reload(session, crashed.id)
    assert refused_row.last_error == "400 recipient 90********26 at +7********67 unknown"
    assert crashed_row.last_error == "ValueError"
    # and neither does the development gateway's log line, though the body carried one
    await LogGateway().send(message_key=f"k:{IIN}", recipient=PHONE, body=f"ИИН {IIN}")
    logged = records.text()
    assert records.events and IIN not in logged and PHONE not in logged
    assert "+7********67" in logged and "ИИН 90********26" in logged


async def test_run_relay_loops_until_stopped(session, relay_store):
    for n in range(3):
        await queue(session, f"offer:{n}:consent")
    stop = asyncio.Event()
    batches = []

    def on_batch(summary):
        batches.append(summary)
        stop.set()

    total = await run_relay(
        store=relay_store,
        gateway=FakeGateway(),
        stop=stop,
        interval=0.01,
        batch_size=2,
        clock=lambda: NOW + timedelta(days=365),
        on_batch=on_batch,
    )
    # The first batch was full, so the loop went on at once; the callback stopped it after
    assert (total.claimed, total.sent) == (2, 2)
    assert len(batches) == 1


class SlowFirstGateway:
    """Answers the first message it is sent after `slow` seconds, every other at once; keeps
    the most sends it had in flight at one time."""

    def __init__(self, slow: float) -> None:
        self.slow = slow
        self.sent: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.sent_while_slow: list[str] = []

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        first = not self.sent
        self.sent.append(message_key)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if first:
                await asyncio.sleep(self.slow)
                self.sent_while_slow = self.sent[1:]
            else:
                await asyncio.sleep(0)
            return f"gw-{message_key}"
        finally:
            self.in_flight -= 1


async def test_lanes_keep_sending_while_a_batch_waits_for_a_slow_answer(session, relay_store):
    # Given eight due messages and a gateway whose first answer takes a while
    keys = [f"offer:{n}:consent" for n in range(8)]
    for key in keys:
        await queue(session, key)
    gateway = SlowFirstGateway(slow=0.5)
    stop = asyncio.Event()
    sent = []

    def on_batch(summary):
        sent.append(summary.sent)
        if sum(sent) == len(keys):
            stop.set()

    # When the relay runs two lanes of batches of two, with two sends in flight at most
    total = await run_relay(
        store=relay_store, gateway=gateway, stop=stop, interval=0.01,
        batch_size=2, concurrency=2, lanes=2, clock=lambda: NOW, on_batch=on_batch,
    )  # fmt: skip
    # Then the other lane sent every message but the slow one's batch-mate (its lane sends
    # one at a time) while the slow answer was awaited
    assert sorted(gateway.sent_while_slow) == sorted(keys[2:])
    # and every message was sent once, never more than two at a time
    assert sorted(gateway.sent) == sorted(keys) and total.sent == len(keys)
    assert gateway.most_in_flight <= 2


class CountingSessions:
    """A session factory that counts the sessions (transactions) the relay opens."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.opened = 0

    def __call__(self):
        self.opened += 1
        return self.factory()


async def test_outcomes_that_arrive_together_commit_in_one_transaction(session, session_factory):
    # Given sixteen due messages and a gateway that answers at once
    keys = [f"offer:{n}:consent" for n in range(16)]
    for key in keys:
        await queue(session, key)
    sessions = CountingSessions(session_factory)
    # When one batch sends them eight at a time
    summary = await relay_once(
        session_factory=sessions, gateway=FakeGateway(), now=NOW, batch_size=16, concurrency=8
    )
    # Then all are recorded sent, in far fewer transactions than one per message
    assert summary.sent == 16
    statuses = await session.scalars(
        select(OutboxMessage.status).execution_options(populate_existing=True)
    )
    assert set(statuses) == {"sent"}
    assert sessions.opened <= 1 + 16 // 2  # the claim, then groups of outcomes


class TimedGateway(FakeGateway):
    """A gateway that declares how long a send may take (as HttpGateway does)."""

    def __init__(self, *, timeout: float, delay: float) -> None:
        super().__init__(delay=delay)
        self.timeout = timeout


async def test_a_send_that_would_not_fit_in_the_claim_is_given_back_unsent(session, relay_store):
    # Given four messages claimed for 3 s (1 s of it kept back), sent one at a time by a
    # gateway that takes 1 s a send and may take up to 1.5 s
    keys = [f"offer:{n}:consent" for n in range(4)]
    for key in keys:
        await queue(session, key)
    gateway = TimedGateway(timeout=1.5, delay=1.0)
    # When one batch runs
    summary = await relay_once(
        store=relay_store, gateway=gateway, now=NOW, batch_size=4,
        concurrency=1, claim_for=timedelta(seconds=3),
    )  # fmt: skip
    # Then only the sends that could finish within the claim went out; the others were
    # given back, due at once, their claim not counted as an attempt
    assert (summary.sent, summary.released) == (1, 3)
    assert len(gateway.sent) == 1
    rows = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.message_key.in_(keys))
            .order_by(OutboxMessage.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    given_back = [row for row in rows if row.message_key != gateway.sent[0]["message_key"]]
    assert {(row.status, row.attempts, row.claimed_until) for row in given_back} == {
        ("pending", 0, None)
    }
    # and the next claim takes them
    again = await relay_once(store=relay_store, gateway=FakeGateway(), now=NOW)
    assert again.sent == 3


async def test_a_claim_shorter_than_the_gateways_timeout_still_sends(session, relay_store):
    # Given a gateway that may take 10 s but answers at once, and claims of 3 s
    for n in range(3):
        await queue(session, f"offer:{n}:consent")
    gateway = TimedGateway(timeout=10, delay=0)
    # When a batch runs, Then every message is sent (cut off at the claim's end if need be)
    summary = await relay_once(
        store=relay_store, gateway=gateway, now=NOW,
        claim_for=timedelta(seconds=3),
    )  # fmt: skip
    assert (summary.sent, summary.released) == (3, 0)


async def test_a_gateway_that_outlives_the_claim_is_cut_off_and_retried(session, relay_store):
    # Given a gateway that hangs far longer than the claim lasts
    message = await queue(session)
    gateway = FakeGateway(delay=30)
    # When a batch claims the message for 1.5 s
    summary = await asyncio.wait_for(
        relay_once(
            store=relay_store, gateway=gateway, now=NOW,
            claim_for=timedelta(seconds=1.5),
        ),
        timeout=10,
    )  # fmt: skip
    # Then the send was abandoned before the claim ran out, and the message waits for a retry
    assert summary.retried == 1
    row = await reload(session, message.id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "TimeoutError")


def test_lanes_cannot_exceed_the_concurrency():
    # Given more lanes than sends allowed in flight, Then the relay refuses to start
    with pytest.raises(ValueError):
        asyncio.run(
            run_relay(
                session_factory=None,
                gateway=FakeGateway(),
                stop=asyncio.Event(),
                concurrency=2,
                lanes=3,
            )
        )


def test_backoff_grows_exponentially_is_capped_and_repeatable():
    def delays(seed: int) -> list[timedelta]:
        backoff = Backoff(
            base=timedelta(seconds=10),
            cap=timedelta(minutes=5),
            jitter=0.5,
            rng=random.Random(seed),
        )
        return [backoff.delay(attempt) for attempt in (1, 2, 3, 4, 5, 6, 1000)]

    first = delays(3)
    assert first == delays(3)  # the same seed, the same delays
    full = [10, 20, 40, 80, 160, 300, 300]
    for delay, ceiling in zip(first, full, strict=True):
        assert ceiling / 2 <= delay.total_seconds() <= ceiling


@pytest.mark.postgres_only
@pytest.mark.parametrize("driver", ["session", "asyncpg pool"])
async def test_two_relays_racing_never_send_one_message_twice(engine, settings, driver):
    # Given messages committed outside the test's transaction, and three relays on their own
    # connections (sessions, or a pool's connections where each claim commits alone) with a
    # slow gateway, so that their claims overlap
    factory = async_sessionmaker(engine, expire_on_commit=False)
    pool = await create_driver_pool(settings, max_size=4)
    store = SessionOutbox(factory) if driver == "session" else DriverOutbox(pool_connections(pool))
    keys = [f"race:{n}" for n in range(60)]
    async with factory() as session, session.begin():
        for key in keys:
            await enqueue(
                session=session, message_key=key, channel="sms", recipient=PHONE, body=BODY
            )
    try:
        gateway = FakeGateway(delay=0.005)

        async def relay() -> int:
            sent = 0
            for _ in range(10):
                summary = await relay_once(
                    store=store, gateway=gateway, now=NOW, batch_size=7, concurrency=3
                )
                sent += summary.sent
            return sent

        # When they run at the same time
        counts = await asyncio.gather(relay(), relay(), relay())
        # Then every message was sent exactly once, and all three relays had a share
        assert Counter(sent["message_key"] for sent in gateway.sent) == Counter(keys)
        assert sum(counts) == len(keys)
        async with factory() as session:
            statuses = await session.scalars(
                select(OutboxMessage.status).where(OutboxMessage.message_key.in_(keys))
            )
            assert set(statuses) == {"sent"}
    finally:
        await pool.close()
        async with factory() as session, session.begin():
            await session.execute(delete(OutboxMessage).where(OutboxMessage.message_key.in_(keys)))


# --- Gateways -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http_gateway(handler) -> AsyncIterator[HttpGateway]:
    """An HttpGateway sending to a scripted server on a loopback port."""
    async with http_stub(handler) as stub:
        client = HttpClient()
        try:
            yield HttpGateway(url=stub.url(), token="secret-token", timeout=3.0, client=client)
        finally:
            await client.aclose()


async def test_the_http_gateway_posts_from_1414_with_the_key_and_a_bearer_token():
    requests: list[StubRequest] = []

    def handler(request: StubRequest):
        requests.append(request)
        return 202, json.dumps({"id": "abc-1"})

    async with http_gateway(handler) as gateway:
        gateway_id = await gateway.send(message_key="offer:1:consent", recipient=PHONE, body=BODY)
    assert gateway_id == "abc-1"
    (request,) = requests
    assert (request.method, request.target) == ("POST", "/v1/messages")
    assert request.headers["authorization"] == "Bearer secret-token"
    assert json.loads(request.body) == {
        "to": PHONE,
        "text": BODY,
        "sender": "1414",
        "idempotency_key": "offer:1:consent",
    }


def test_the_http_gateway_sends_on_uvloops_event_loop():
    # The relay processes run on uvloop, whose transports are not asyncio.Transport
    # subclasses: a send there is the same send
    async def send() -> str:
        async with http_gateway(lambda request: (200, json.dumps({"id": "uv-1"}))) as gateway:
            return await gateway.send(message_key="offer:1:consent", recipient=PHONE, body=BODY)

    assert uvloop.run(send()) == "uv-1"


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ((503, "busy"), True),
        ((429, "slow down"), True),
        ((400, f"bad text {IIN} for {PHONE}"), False),
        ((401, "bad token"), False),
    ],
)
async def test_the_http_gateway_says_which_failures_to_retry(answer, retryable):
    async with http_gateway(lambda request: answer) as gateway:
        with pytest.raises(GatewayError) as failed:
            await gateway.send(message_key="k", recipient=PHONE, body=BODY)
    assert failed.value.retryable is retryable
    assert IIN not in str(failed.value) and PHONE not in str(failed.value)


@pytest.mark.parametrize("answer", ["hang", "close", "refused"])
async def test_timeouts_and_network_errors_are_retryable(answer):
    if answer == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        gateway = HttpGateway(url=f"http://127.0.0.1:{port}/sms", token="t", timeout=3.0)
        with pytest.raises(GatewayError) as failed:
            await gateway.send(message_key="k", recipient=PHONE, body=BODY)
        await gateway.aclose()
    else:
        async with http_stub(lambda request: HANG if answer == "hang" else CLOSE) as stub:
            gateway = HttpGateway(url=stub.url(), token="t", timeout=0.3)
            with pytest.raises(GatewayError) as failed:
                await gateway.send(message_key="k", recipient=PHONE, body=BODY)
            await gateway.aclose()
    assert failed.value.retryable is True


async def test_an_accepted_message_without_an_id_still_counts_as_sent():
    async with http_gateway(lambda request: (200, "OK")) as gateway:
        assert await gateway.send(message_key="k", recipient=PHONE, body=BODY) == ""


def test_gateways_are_chosen_by_settings():
    assert isinstance(gateway_from_settings("log"), LogGateway)
    assert isinstance(gateway_from_settings("http", GATEWAY_URL, "t"), HttpGateway)
    with pytest.raises(ValueError, match="SMS_GATEWAY_URL"):
        gateway_from_settings("http", None, None)
    with pytest.raises(ValueError, match="unknown"):
        gateway_from_settings("carrier-pigeon")
    assert mask_phone(PHONE) == "+7********67"
