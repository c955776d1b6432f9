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
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.iin import mask_iins_in_text
from familymap.orm import utcnow
from wallet.outbox_store import (
    Claimed,
    OutboxStore,
    Outcome,
    SessionFactory,
    SessionOutbox,
)
from wallet.outbox_tables import CHANNELS, OutboxMessage
from wallet.sms import GatewayError, SmsGateway, mask_phone, redact

log = structlog.get_logger(__name__)

# [0-9], not \d: \d also matches full-width and other Unicode digits.
_KZ_MOBILE = re.compile(r"\+7[0-9]{10}")
MAX_KEY_LENGTH = 128
# Seconds of a claim kept back when deciding whether a send still fits in it: the outcome
# has to be written, and another relay's clock may run a little ahead.
_LEASE_MARGIN = 1.0


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


def _as_utc(moment: datetime) -> datetime:
    # SQLite keeps timestamps as text without an offset, so every one we write must be UTC
    # for comparisons to hold.
    if moment.tzinfo is None:
        raise ValueError("the relay needs a timezone-aware time")
    return moment.astimezone(UTC)


class _GroupCommit:
    """Outcomes recorded in groups: while one group's transaction commits, the outcomes that
    arrive meanwhile gather into the next, which is then written (one UPDATE per kind of
    outcome) and committed in one transaction.

    With many sends in flight, a transaction (and a WAL flush) per outcome was the relay's
    limit; a group is one commit. Under light load a group is one outcome and nothing
    waits. Each caller returns only once its own outcome is committed, or raises the
    group's error (the message is then sent again when its claim expires, as before).
    """

    def __init__(self, store: OutboxStore, now: datetime) -> None:
        self._store = store
        self._now = now
        self._waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._turn = asyncio.Lock()

    async def run(self, outcome: Outcome) -> None:
        """Write `outcome` in the next group's transaction; return when it committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        async with self._turn:
            if not done.done():
                group, self._waiting = self._waiting, []
                try:
                    await self._store.record([item for item, _ in group], self._now)
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
    message: Claimed,
    now: datetime,
    max_attempts: int,
    backoff: Backoff,
    within: float,
) -> Outcome:
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
            return Outcome(message, "failed", error=error)
        if message.attempts >= max_attempts:
            return Outcome(message, "dead", error=error)
        retry_at = now + backoff.delay(message.attempts)
        return Outcome(message, "pending", error=error, retry_at=retry_at)
    return Outcome(message, "sent", gateway_message_id=gateway_id or "")


def _log_outcome(outcome: Outcome) -> str:
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


def _store(store: OutboxStore | None, session_factory: SessionFactory | None) -> OutboxStore:
    if store is not None:
        return store
    if session_factory is None:
        raise ValueError("the relay needs a store or a session factory")
    return SessionOutbox(session_factory)


async def relay_once(
    *,
    session_factory: SessionFactory | None = None,
    store: OutboxStore | None = None,
    gateway: SmsGateway,
    now: datetime | None = None,
    batch_size: int = 100,
    max_attempts: int = 8,
    backoff: Backoff | None = None,
    claim_for: timedelta = timedelta(minutes=5),
    concurrency: int = 8,
    channel: str = "sms",
) -> RelaySummary:
    """Claim up to `batch_size` due messages, send each, and record what happened.

    The outbox is reached through `store` (`DriverOutbox` on PostgreSQL's driver), or
    through sessions of `session_factory` (`SessionOutbox`, any database).
    """
    store = _store(store, session_factory)
    if batch_size < 1 or max_attempts < 1 or concurrency < 1:
        raise ValueError("batch_size, max_attempts and concurrency must be at least 1")
    now = _as_utc(now or utcnow())
    backoff = backoff or Backoff()
    # The lease runs from the claim (before it is answered, to err on the short side).
    claimed_at = time.monotonic()
    claimed = await store.claim(
        channel=channel, now=now, batch_size=batch_size, claimed_until=now + claim_for
    )
    summary = RelaySummary(claimed=len(claimed))
    if not claimed:
        return summary
    # Sends run side by side (the gateway's latency dominates); a send frees its place as
    # soon as the gateway answered, and its outcome is committed with the others that
    # arrive together (one transaction and one UPDATE per kind for a group).
    limit = asyncio.Semaphore(concurrency)
    group = _GroupCommit(store, now)
    # No send may outlive the claim, or another relay could take the message while it is
    # still in flight and send it a second time at once. Every send is cut off before the
    # claim ends, whatever the gateway does; and one starts only if the claim has more left
    # than the gateway's own timeout (its `timeout`, when it has one; at most half the
    # lease, so that a lease shorter than the timeout still sends). A message whose turn
    # comes too late is given back, due at once, for the next claim.
    lease = claim_for.total_seconds()
    budget = min(float(getattr(gateway, "timeout", 0.0) or 0.0), lease / 2)

    async def deliver(message: Claimed) -> str:
        async with limit:
            left = lease - (time.monotonic() - claimed_at) - _LEASE_MARGIN
            if left <= budget:
                outcome = Outcome(message, "released")
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
    session_factory: SessionFactory | None = None,
    store: OutboxStore | None = None,
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
    meanwhile the other lanes claim and send. Claims never overlap (see
    `wallet.outbox_store.CLAIM`), so lanes never send one message twice.
    """
    store = _store(store, session_factory)
    if lanes < 1 or concurrency < lanes:
        raise ValueError("lanes must be at least 1 and at most concurrency")
    backoff = backoff or Backoff()
    totals = [RelaySummary() for _ in range(lanes)]

    async def lane(number: int, share: int) -> None:
        while not stop.is_set():
            try:
                summary = await relay_once(
                    store=store,
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
