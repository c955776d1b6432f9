"""The transactional outbox and its relay: messages commit with the change that calls for
them, and are sent afterwards, at least once.

`enqueue` adds a message inside the caller's transaction, so an offer and the SMS asking for
consent commit together or not at all; the same `message_key` again returns the message
already queued. `relay_once` claims a batch of due messages with one conditional UPDATE, sends
each through a gateway outside any transaction, and records the outcome: `sent` with the
gateway's id, a retry after an exponential backoff with jitter, `failed` when the gateway
refuses the message for good, or `dead` when no attempts are left. Outcomes that arrive
together are committed together, one UPDATE per kind for the group. `run_relay` repeats it
until told to stop (the CLI's `outbox run`, or a task inside the server), in one or more
lanes of batches at once; any number of relay processes may run, as claims never overlap.

No send outlives its claim: a send starts only if the claim has time left for it and is cut
off before the claim ends, and a message whose turn comes too late is given back unsent. So
one message is never in flight twice at once, however slow the batch or the machine.
Delivery is at least once: a relay that crashes after sending but before recording leaves
its claim to expire, and the message is sent again. Such resends are harmless: the message
key travels to the gateway as its idempotency key so that it can drop them.

Expected failures are exceptions with a stable `code`:

    OutboxError
    ├── InvalidPhone           INVALID_PHONE          not a Kazakh mobile number in E.164
    ├── InvalidMessage         INVALID_MESSAGE        unknown channel, empty key, recipient or body
    └── MessageKeyReused       MESSAGE_KEY_REUSED     the key was used for a different message
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.iin import mask_iins_in_text
from familymap.orm import utcnow
from wallet.outbox_tables import CHANNELS, OutboxMessage
from wallet.sms import GatewayError, SmsGateway, mask_phone, redact

log = structlog.get_logger(__name__)

# [0-9], not \d: \d also matches full-width and other Unicode digits.
_KZ_MOBILE = re.compile(r"\+7[0-9]{10}")
MAX_KEY_LENGTH = 128
MAX_ERROR_LENGTH = 500
# Seconds of a claim kept back when deciding whether a send still fits in it: the outcome
# has to be written, and another relay's clock may run a little ahead.
_LEASE_MARGIN = 1.0

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class OutboxError(Exception):
    """An expected refusal of the outbox, with a stable code for clients."""

    code = "OUTBOX_ERROR"


class InvalidPhone(OutboxError):
    code = "INVALID_PHONE"


class InvalidMessage(OutboxError):
    code = "INVALID_MESSAGE"


class MessageKeyReused(OutboxError):
    code = "MESSAGE_KEY_REUSED"


# --- Enqueue --------------------------------------------------------------------------------


def validate_phone(phone: str) -> str:
    """Return `phone` if it is a Kazakh number in E.164 (+7 and ten digits), else raise."""
    if not isinstance(phone, str) or not _KZ_MOBILE.fullmatch(phone):
        raise InvalidPhone(f"not a +7XXXXXXXXXX number: {mask_phone(str(phone))}")
    return phone


async def enqueue(
    *,
    session: AsyncSession,
    message_key: str,
    channel: str,
    recipient: str,
    body: str,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Queue a message in the caller's transaction; the same key again returns the first."""
    if channel not in CHANNELS:
        raise InvalidMessage(f"unknown channel {channel!r}")
    if not message_key or len(message_key) > MAX_KEY_LENGTH:
        raise InvalidMessage(f"a message key is 1 to {MAX_KEY_LENGTH} characters")
    if channel == "sms":
        validate_phone(recipient)
    elif not recipient:
        raise InvalidMessage("a message needs a recipient")
    if not body or not body.strip():
        raise InvalidMessage("a message needs a body")
    wanted = {"channel": channel, "recipient": recipient, "body": body, "payload": payload or {}}
    by_key = select(OutboxMessage).where(OutboxMessage.message_key == message_key)
    message = await session.scalar(by_key)
    if message is None:
        message = OutboxMessage(
            message_key=message_key,
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
            **wanted,
        )
        try:
            async with session.begin_nested():
                session.add(message)
        except IntegrityError:
            # Queued concurrently under the same key: that message is the one.
            message = await session.scalar(by_key)
            if message is None:
                raise
    if any(getattr(message, name) != value for name, value in wanted.items()):
        raise MessageKeyReused(
            f"message key {mask_iins_in_text(message_key)} names another message"
        )
    return message


# --- Relay ----------------------------------------------------------------------------------


@dataclass
class Backoff:
    """Exponential backoff with jitter: base * factor^(attempt-1), capped, less up to
    `jitter` of itself at random, so that messages that failed together do not return together.

    Pass a seeded `random.Random` for repeatable delays.
    """

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    # Jitter only spreads retries out; it needs no cryptographic randomness.
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1 for the first)."""
        # The exponent is bounded so that a large attempt count cannot overflow a float.
        exponent = min(max(attempt - 1, 0), 64)
        full = min(self.cap.total_seconds(), self.base.total_seconds() * self.factor**exponent)
        return timedelta(seconds=full * (1 - self.jitter * self.rng.random()))


@dataclass
class RelaySummary:
    """What one or more relay batches did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    # Claimed, but given back unsent: the claim had too little time left for a send.
    released: int = 0

    def __add__(self, other: RelaySummary) -> RelaySummary:
        return RelaySummary(
            claimed=self.claimed + other.claimed,
            sent=self.sent + other.sent,
            retried=self.retried + other.retried,
            failed=self.failed + other.failed,
            dead=self.dead + other.dead,
            released=self.released + other.released,
        )


@dataclass(frozen=True)
class _Claimed:
    id: int
    attempts: int
    message_key: str
    recipient: str
    body: str


def _as_utc(moment: datetime) -> datetime:
    # SQLite keeps timestamps as text without an offset, so every one we write must be UTC
    # for comparisons to hold.
    if moment.tzinfo is None:
        raise ValueError("the relay needs a timezone-aware time")
    return moment.astimezone(UTC)


async def _claim(
    *,
    session_factory: SessionFactory,
    channel: str,
    now: datetime,
    batch_size: int,
    claim_for: timedelta,
) -> list[_Claimed]:
    due = and_(
        OutboxMessage.channel == channel,
        or_(
            and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
            # A claim that outlived its lease belongs to a relay that crashed or hung.
            and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now),
        ),
    )
    # SKIP LOCKED lets concurrent relays on PostgreSQL pick different rows instead of queueing
    # behind each other (SQLite ignores it, and serialises writers anyway). It is not what
    # keeps a message from being sent twice at once: the UPDATE repeats the `due` condition,
    # which PostgreSQL re-checks on the newest row version after waiting for a lock, so a row
    # another relay claimed meanwhile is left out of RETURNING. The candidates are a
    # MATERIALIZED CTE because PostgreSQL may run an `IN (subquery)` again for each row it
    # updates, and each run would see the next rows as due: LIMIT would not hold.
    candidates = (
        select(OutboxMessage.id)
        .where(due)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    claim = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(select(candidates.c.id)), due)
        .values(
            status="sending",
            claimed_until=now + claim_for,
            attempts=OutboxMessage.attempts + 1,
        )
        .returning(
            OutboxMessage.id,
            OutboxMessage.attempts,
            OutboxMessage.message_key,
            OutboxMessage.recipient,
            OutboxMessage.body,
        )
        .execution_options(synchronize_session=False)
    )
    async with session_factory() as session, session.begin():
        rows = (await session.execute(claim)).all()
    return sorted((_Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


@dataclass(frozen=True)
class _Outcome:
    """What became of one claimed message, to be written with the others of its group."""

    message: _Claimed
    # sent, pending (a retry), failed, dead, or released (given back unsent: the claim
    # does not count as an attempt)
    status: str
    gateway_message_id: str = ""
    error: str = ""
    retry_at: datetime | None = None


# Outcomes are written with one UPDATE per kind for a whole group. On PostgreSQL the group
# travels as arrays (two parameters whatever its size, one prepared statement); elsewhere
# (SQLite, development and tests) as an executemany of the same conditions.
#
# Once the gateway took a message it is sent, even if our claim expired meanwhile and
# another relay holds it now (that one's duplicate is harmless, and its outcome no longer
# overwrites this one). A failure is recorded only by the claim that made it: `attempts`
# counts claims, so it tells this claim from a later one after ours expired.
_SENT_PG = text(
    """
    UPDATE outbox_messages AS m
    SET status = 'sent', sent_at = :now, gateway_message_id = NULLIF(v.gateway_id, ''),
        claimed_until = NULL, last_error = NULL
    FROM unnest(CAST(:ids AS bigint[]), CAST(:gateway_ids AS text[])) AS v(id, gateway_id)
    WHERE m.id = v.id AND m.status <> 'sent'
    """
)
_FAILED_PG = text(
    """
    UPDATE outbox_messages AS m
    SET status = v.status, claimed_until = NULL, last_error = COALESCE(v.error, m.last_error),
        next_attempt_at = COALESCE(v.retry_at, m.next_attempt_at),
        attempts = m.attempts - v.given_back
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:attempts AS integer[]), CAST(:statuses AS text[]),
        CAST(:errors AS text[]), CAST(:retry_ats AS timestamptz[]),
        CAST(:given_back AS integer[])
    ) AS v(id, attempts, status, error, retry_at, given_back)
    WHERE m.id = v.id AND m.status = 'sending' AND m.attempts = v.attempts
    """
)
_table = cast(Table, OutboxMessage.__table__)  # a mapped class's table (typed as a FromClause)
_SENT_MANY = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.status != "sent")
    .values(
        status="sent",
        sent_at=bindparam("b_now"),
        gateway_message_id=bindparam("b_gateway_id"),
        claimed_until=None,
        last_error=None,
    )
)
_FAILED_MANY = (
    update(_table)
    .where(
        _table.c.id == bindparam("b_id"),
        _table.c.status == "sending",
        _table.c.attempts == bindparam("b_attempts"),
    )
    .values(
        status=bindparam("b_status"),
        claimed_until=None,
        last_error=func.coalesce(bindparam("b_error"), _table.c.last_error),
        next_attempt_at=func.coalesce(bindparam("b_retry_at"), _table.c.next_attempt_at),
        attempts=_table.c.attempts - bindparam("b_given_back"),
    )
)


async def _write_outcomes(session: AsyncSession, outcomes: list[_Outcome], now: datetime) -> None:
    """Record a group of outcomes: one UPDATE for those sent, one for the others."""
    sent = [outcome for outcome in outcomes if outcome.status == "sent"]
    failed = [outcome for outcome in outcomes if outcome.status != "sent"]
    # A claim given back keeps the message's last error; it made no attempt.
    errors = [
        None if outcome.status == "released" else redact(outcome.error)[:MAX_ERROR_LENGTH]
        for outcome in failed
    ]
    statuses = ["pending" if outcome.status == "released" else outcome.status for outcome in failed]
    given_back = [int(outcome.status == "released") for outcome in failed]
    if session.get_bind().dialect.name == "postgresql":
        if sent:
            await session.execute(
                _SENT_PG,
                {
                    "now": now,
                    "ids": [outcome.message.id for outcome in sent],
                    "gateway_ids": [outcome.gateway_message_id for outcome in sent],
                },
            )
        if failed:
            await session.execute(
                _FAILED_PG,
                {
                    "ids": [outcome.message.id for outcome in failed],
                    "attempts": [outcome.message.attempts for outcome in failed],
                    "statuses": statuses,
                    "errors": errors,
                    "retry_ats": [outcome.retry_at for outcome in failed],
                    "given_back": given_back,
                },
            )
        return
    if sent:
        await session.execute(
            _SENT_MANY,
            [
                {
                    "b_id": outcome.message.id,
                    "b_now": now,
                    "b_gateway_id": outcome.gateway_message_id or None,
                }
                for outcome in sent
            ],
        )
    if failed:
        await session.execute(
            _FAILED_MANY,
            [
                {
                    "b_id": outcome.message.id,
                    "b_attempts": outcome.message.attempts,
                    "b_status": status,
                    "b_error": error,
                    "b_retry_at": outcome.retry_at,
                    "b_given_back": back,
                }
                for outcome, status, error, back in zip(
                    failed, statuses, errors, given_back, strict=True
                )
            ],
        )


class _GroupCommit:
    """Outcomes recorded in groups: while one group's transaction commits, the outcomes that
    arrive meanwhile gather into the next, which is then written (one UPDATE per kind of
    outcome) and committed in one transaction.

    With many sends in flight, a transaction (and a WAL flush) per outcome was the relay's
    limit; a group is one commit. Under light load a group is one outcome and nothing
    waits. Each caller returns only once its own outcome is committed, or raises the
    group's error (the message is then sent again when its claim expires, as before).
    """

    def __init__(self, session_factory: SessionFactory, now: datetime) -> None:
        self._session_factory = session_factory
        self._now = now
        self._waiting: list[tuple[_Outcome, asyncio.Future[None]]] = []
        self._turn = asyncio.Lock()

    async def run(self, outcome: _Outcome) -> None:
        """Write `outcome` in the next group's transaction; return when it committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        async with self._turn:
            if not done.done():
                group, self._waiting = self._waiting, []
                try:
                    async with self._session_factory() as session, session.begin():
                        await _write_outcomes(session, [item for item, _ in group], self._now)
                except BaseException as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
        await done


async def _send(
    *,
    gateway: SmsGateway,
    message: _Claimed,
    now: datetime,
    max_attempts: int,
    backoff: Backoff,
    within: float,
) -> _Outcome:
    """Send one message, giving up after `within` seconds (before its claim expires)."""
    try:
        async with asyncio.timeout(within):
            gateway_id = await gateway.send(
                message_key=message.message_key, recipient=message.recipient, body=message.body
            )
    except Exception as exc:
        # Anything but a GatewayError is a fault we did not foresee (a bug in a gateway, a
        # network error it did not translate, our own deadline); it is treated as retryable
        # so that a transient cause does not lose the message, and max_attempts bounds it.
        retryable = exc.retryable if isinstance(exc, GatewayError) else True
        error = str(exc) if isinstance(exc, GatewayError) else type(exc).__name__
        if not retryable:
            return _Outcome(message, "failed", error=error)
        if message.attempts >= max_attempts:
            return _Outcome(message, "dead", error=error)
        retry_at = now + backoff.delay(message.attempts)
        return _Outcome(message, "pending", error=error, retry_at=retry_at)
    return _Outcome(message, "sent", gateway_message_id=gateway_id or "")


def _log_outcome(outcome: _Outcome) -> str:
    """Log what became of a message; its name in RelaySummary."""
    message = outcome.message
    if outcome.status == "sent":
        log.info("outbox.sent", outbox_id=message.id, attempt=message.attempts)
        return "sent"
    if outcome.status == "released":
        log.info("outbox.claim_given_back", outbox_id=message.id)
        return "released"
    log.warning(
        "outbox.send_failed",
        outbox_id=message.id,
        attempt=message.attempts,
        outcome="retry" if outcome.status == "pending" else outcome.status,
        error=redact(outcome.error),
    )
    return "retried" if outcome.status == "pending" else outcome.status


async def relay_once(
    *,
    session_factory: SessionFactory,
    gateway: SmsGateway,
    now: datetime | None = None,
    batch_size: int = 100,
    max_attempts: int = 8,
    backoff: Backoff | None = None,
    claim_for: timedelta = timedelta(minutes=5),
    concurrency: int = 8,
    channel: str = "sms",
) -> RelaySummary:
    """Claim up to `batch_size` due messages, send each, and record what happened."""
    if batch_size < 1 or max_attempts < 1 or concurrency < 1:
        raise ValueError("batch_size, max_attempts and concurrency must be at least 1")
    now = _as_utc(now or utcnow())
    backoff = backoff or Backoff()
    # The lease runs from the claim (before it is answered, to err on the short side).
    claimed_at = time.monotonic()
    claimed = await _claim(
        session_factory=session_factory,
        channel=channel,
        now=now,
        batch_size=batch_size,
        claim_for=claim_for,
    )
    summary = RelaySummary(claimed=len(claimed))
    if not claimed:
        return summary
    # Sends run side by side (the gateway's latency dominates); a send frees its place as
    # soon as the gateway answered, and its outcome is committed with the others that
    # arrive together (one transaction and one UPDATE per kind for a group).
    limit = asyncio.Semaphore(concurrency)
    group = _GroupCommit(session_factory, now)
    # No send may outlive the claim, or another relay could take the message while it is
    # still in flight and send it a second time at once. Every send is cut off before the
    # claim ends, whatever the gateway does; and one starts only if the claim has more left
    # than the gateway's own timeout (its `timeout`, when it has one; at most half the
    # lease, so that a lease shorter than the timeout still sends). A message whose turn
    # comes too late is given back, due at once, for the next claim.
    lease = claim_for.total_seconds()
    budget = min(float(getattr(gateway, "timeout", 0.0) or 0.0), lease / 2)

    async def deliver(message: _Claimed) -> str:
        async with limit:
            left = lease - (time.monotonic() - claimed_at) - _LEASE_MARGIN
            if left <= budget:
                outcome = _Outcome(message, "released")
            else:
                outcome = await _send(
                    gateway=gateway,
                    message=message,
                    now=now,
                    max_attempts=max_attempts,
                    backoff=backoff,
                    within=left,
                )
        await group.run(outcome)
        return _log_outcome(outcome)

    # Every send finishes and records its outcome before an error (the database gone, say)
    # is passed on; a message whose outcome was lost is sent again when its claim expires.
    results = await asyncio.gather(
        *(deliver(message) for message in claimed), return_exceptions=True
    )
    errors = [result for result in results if isinstance(result, BaseException)]
    for outcome in results:
        if isinstance(outcome, str):
            setattr(summary, outcome, getattr(summary, outcome) + 1)
    if errors:
        raise errors[0]
    return summary


async def run_relay(
    *,
    session_factory: SessionFactory,
    gateway: SmsGateway,
    stop: asyncio.Event,
    interval: float = 2.0,
    batch_size: int = 100,
    max_attempts: int = 8,
    backoff: Backoff | None = None,
    claim_for: timedelta = timedelta(minutes=5),
    concurrency: int = 8,
    clock: Callable[[], datetime] = utcnow,
    on_batch: Callable[[RelaySummary], None] | None = None,
    channel: str = "sms",
    lanes: int = 1,
) -> RelaySummary:
    """Relay batches until `stop` is set, pausing `interval` seconds when the queue is empty.

    `lanes` batches are in flight at once, each with its share of `concurrency` (so no more
    than `concurrency` sends are ever in flight): a batch waits for its slowest answer, and
    meanwhile the other lanes claim and send. Claims never overlap (see `_claim`), so lanes
    never send one message twice.
    """
    if lanes < 1 or concurrency < lanes:
        raise ValueError("lanes must be at least 1 and at most concurrency")
    backoff = backoff or Backoff()
    totals = [RelaySummary() for _ in range(lanes)]

    async def lane(number: int, share: int) -> None:
        while not stop.is_set():
            try:
                summary = await relay_once(
                    session_factory=session_factory,
                    gateway=gateway,
                    now=clock(),
                    batch_size=batch_size,
                    max_attempts=max_attempts,
                    backoff=backoff,
                    claim_for=claim_for,
                    concurrency=share,
                    channel=channel,
                )
            except Exception as exc:
                # The database may be away for a moment; claims made before the failure
                # expire and are taken again, so the loop only has to keep going.
                log.error("outbox.relay_failed", error=redact(f"{type(exc).__name__}: {exc}"))
                summary = RelaySummary()
            totals[number] += summary
            if on_batch is not None and summary.claimed:
                on_batch(summary)
            # A full batch suggests more are waiting: go again at once.
            if summary.claimed < batch_size:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    shares = [concurrency // lanes + (n < concurrency % lanes) for n in range(lanes)]
    await asyncio.gather(*(lane(number, share) for number, share in enumerate(shares)))
    total = RelaySummary()
    for summary in totals:
        total += summary
    return total
