"""The wallet's background work, run by `socialwallet serve` (BACKGROUND_JOBS) or by hand:

* the outbox relays: SMS from 1414 and payment orders to the bank;
* the wallet jobs: offers for new entitlements past the cursor, expiry of unanswered offers,
  settlement of payment orders the bank's API took (`sent`, not yet paid: only the bank's
  statement says paid, `socialwallet bank reconcile`) or refused, and the monthly payments due.

Each job is idempotent and safe to run in several processes at once (cursor row lock,
conditional updates, unique keys), so running them in every server worker is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.settings import Settings
from familymap.orm import utcnow
from wallet.bank import bank_from_settings
from wallet.offers import IssueSummary, expire_offers, issue_pending_offers
from wallet.outbox import run_relay
from wallet.payments import order_due_payments, settle_payments
from wallet.sms import gateway_from_settings

log = structlog.get_logger(__name__)


@dataclass
class JobsSummary:
    offers: IssueSummary = field(default_factory=IssueSummary)
    expired: int = 0
    sent: int = 0
    failed: int = 0
    ordered: int = 0


async def run_wallet_jobs(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    offer_days: int,
    now: datetime | None = None,
) -> JobsSummary:
    """One pass of the wallet jobs: offers, expiry, settlement, payments due."""
    now = now or utcnow()
    summary = JobsSummary()
    summary.offers = await issue_pending_offers(
        session_factory=session_factory, now=now, offer_days=offer_days
    )
    async with session_factory() as session, session.begin():
        summary.expired = await expire_offers(session=session, now=now)
    async with session_factory() as session, session.begin():
        settled = await settle_payments(session=session, now=now)
        summary.sent, summary.failed = settled.sent, settled.failed
    async with session_factory() as session, session.begin():
        summary.ordered = (await order_due_payments(session=session, today=now.date())).ordered
    return summary


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

    tasks = [
        asyncio.create_task(
            run_relay(session_factory=session_factory, gateway=sms, stop=stop, interval=interval)
        ),
        asyncio.create_task(
            run_relay(
                session_factory=session_factory,
                gateway=bank,
                stop=stop,
                interval=interval,
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
