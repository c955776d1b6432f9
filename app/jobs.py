"""The wallet's background work, run by `socialwallet worker` (or `serve --with-jobs` on a
single machine, BACKGROUND_JOBS) or by hand:

* the outbox relays: SMS from 1414 and payment orders to the bank;
* the wallet jobs: offers for new entitlements past the cursor, expiry of unanswered offers,
  settlement of payment orders the bank's API took (`sent`, not yet paid: only the bank's
  statement says paid, `socialwallet bank reconcile`) or refused, and the monthly payments due.

Several workers may run at once. The relays claim messages with `FOR UPDATE SKIP LOCKED` and
a lease (wallet/outbox.py), so each message is taken by one worker. Each wallet job runs in
one worker at a time: a pass of a job first takes a transaction-scoped advisory lock of its
own (`pg_try_advisory_xact_lock`) and holds it, in a transaction left open on a connection
of its own, while the job runs; a worker that finds the lock taken skips that job for this
pass. A transaction-scoped lock, not a session one, because a session's locks do not
survive a pooler in transaction mode (pgbouncer). The jobs stay idempotent besides (cursor
row lock, conditional updates, unique keys), so a pass that dies half-way is taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.driver_db import create_driver_pool, is_postgres, pool_connections
from app.settings import Settings
from familymap.clock import local_day
from familymap.orm import utcnow
from vouchers.fulfilment import register_voucher_fulfillers
from wallet.bank import bank_from_settings
from wallet.offers import IssueSummary, expire_offers, issue_pending_offers
from wallet.outbox import run_relay
from wallet.outbox_store import DriverOutbox, OutboxStore, SessionOutbox
from wallet.payments import order_due_payments, settle_payments
from wallet.sms import gateway_from_settings

log = structlog.get_logger(__name__)

# The advisory lock of each wallet job: (namespace, job). The namespace is "socialwallet jobs"
# hashed once, so the keys meet no other lock (the migration's, the eligibility runs').
# The SMS relay of one worker: 32 sends in flight in 4 lanes of batches of 64 (a batch
# waits for its slowest answer while the other lanes go on). Its database use is short
# (a claim a batch, a statement a group of outcomes, on PostgreSQL straight on asyncpg's
# connections): at most 5 connections at once, 2 more for the bank's relay. Each
# worker runs one; more workers (or `socialwallet outbox run` processes) add relays whose
# claims never overlap (docs/performance.md has the figures).
SMS_RELAY_CONCURRENCY = 32
SMS_RELAY_LANES = 4
SMS_RELAY_BATCH = 64
RELAY_CONNECTIONS = SMS_RELAY_LANES + 3

JOB_LOCK_NAMESPACE = 1_402_118_977
JOB_LOCKS = {"offers": 1, "expiry": 2, "settlement": 3, "payments": 4}


@dataclass
class JobsSummary:
    offers: IssueSummary = field(default_factory=IssueSummary)
    expired: int = 0
    sent: int = 0
    failed: int = 0
    ordered: int = 0
    # The jobs this pass left to another worker that held their lock.
    skipped: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def job_lock(
    *, session_factory: async_sessionmaker[AsyncSession], job: str
) -> AsyncIterator[bool]:
    """Hold job `job`'s advisory lock while the block runs; yields False if another has it."""
    async with session_factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            # SQLite has one writer at a time and one process serving it: nothing to share.
            yield True
            return
        async with session.begin():
            taken = await session.scalar(
                select(func.pg_try_advisory_xact_lock(JOB_LOCK_NAMESPACE, JOB_LOCKS[job]))
            )
            # The block runs with this transaction open; its commit releases the lock.
            yield bool(taken)


async def run_wallet_jobs(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    offer_days: int,
    now: datetime | None = None,
) -> JobsSummary:
    """One pass of the wallet jobs: offers, expiry, settlement, payments due."""
    now = now or utcnow()
    summary = JobsSummary()
    # The offer job funds a standing consent's next period (the monthly medicines voucher)
    # through the vouchers' fulfillers, as the server registers them (a worker is not one).
    register_voucher_fulfillers()
    async with job_lock(session_factory=session_factory, job="offers") as mine:
        if mine:
            summary.offers = await issue_pending_offers(
                session_factory=session_factory, now=now, offer_days=offer_days
            )
        else:
            summary.skipped.append("offers")
    async with job_lock(session_factory=session_factory, job="expiry") as mine:
        if mine:
            async with session_factory() as session, session.begin():
                summary.expired = await expire_offers(session=session, now=now)
        else:
            summary.skipped.append("expiry")
    async with job_lock(session_factory=session_factory, job="settlement") as mine:
        if mine:
            async with session_factory() as session, session.begin():
                settled = await settle_payments(session=session, now=now)
                summary.sent, summary.failed = settled.sent, settled.failed
        else:
            summary.skipped.append("settlement")
    async with job_lock(session_factory=session_factory, job="payments") as mine:
        if mine:
            async with session_factory() as session, session.begin():
                ordered = await order_due_payments(session=session, today=local_day(now))
                summary.ordered = ordered.ordered
        else:
            summary.skipped.append("payments")
    return summary


@contextlib.asynccontextmanager
async def outbox_store(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    connections: int = RELAY_CONNECTIONS,
) -> AsyncIterator[OutboxStore]:
    """Where relays reach the outbox: on PostgreSQL a pool of `connections` asyncpg
    connections of their own (a claim is one statement, no session around it); elsewhere
    the sessions of `session_factory`."""
    if not is_postgres(settings):
        yield SessionOutbox(session_factory)
        return
    pool = await create_driver_pool(settings, max_size=connections)
    try:
        yield DriverOutbox(pool_connections(pool))
    finally:
        await pool.close()


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


@contextlib.asynccontextmanager
async def background_jobs(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    """Run the relays and the wallet jobs until the block exits, then stop them cleanly."""
    if not settings.background_jobs:
        yield
        return
    stop = asyncio.Event()
    sms = gateway_from_settings(
        settings.sms_gateway, settings.sms_gateway_url, _secret(settings.sms_gateway_token)
    )
    bank = bank_from_settings(
        settings.bank_gateway, settings.bank_gateway_url, _secret(settings.bank_gateway_token)
    )
    interval = settings.background_interval_seconds
    claim_for = timedelta(seconds=settings.outbox_claim_seconds)

    async def wallet_loop() -> None:
        while not stop.is_set():
            try:
                await run_wallet_jobs(
                    session_factory=session_factory, offer_days=settings.offer_days
                )
            except Exception as exc:
                # The database may be away for a moment; every job resumes where it stopped.
                log.error("jobs.failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async with outbox_store(settings, session_factory) as store:
        tasks = [
            asyncio.create_task(
                run_relay(
                    store=store,
                    gateway=sms,
                    stop=stop,
                    interval=interval,
                    claim_for=claim_for,
                    batch_size=SMS_RELAY_BATCH,
                    concurrency=SMS_RELAY_CONCURRENCY,
                    lanes=SMS_RELAY_LANES,
                )
            ),
            asyncio.create_task(
                run_relay(
                    store=store,
                    gateway=bank,
                    stop=stop,
                    interval=interval,
                    claim_for=claim_for,
                    channel="bank",
                )
            ),
            asyncio.create_task(wallet_loop()),
        ]
        log.info("jobs.started")
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for gateway in (sms, bank):
                close = getattr(gateway, "aclose", None)
                if close is not None:
                    await close()
        log.info("jobs.stopped")
