"""Double spend under concurrency, on PostgreSQL's concurrent writers: 50 canteen requests for
one meal, and 50 replays of one request, on the portable path, on the hot path, and served in
groups. Data is committed and removed in `finally`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.driver_db import create_driver_pool, pool_transactions
from app.settings import Settings
from familymap.audit import Caller
from familymap.tables import Entitlement, Family, Person
from tests.familymap.audit_builders import audit_trail_restored
from tests.vouchers.vouchers_builders import NOW, QR_KEY, SCHOOL_DAY, family_with_pupil
from vouchers.errors import VoucherError
from vouchers.meal_groups import GroupItem, MealCoalescer
from vouchers.meal_hotpath import redeem_meal_on_driver
from vouchers.meals import MealRequest, redeem_meal, wallet_code
from vouchers.merchants import register_merchant
from vouchers.tables import MealRedemption, MealVoucher, Merchant
from wallet import ledger
from wallet.tables import LedgerAccount, LedgerTransfer

ATTEMPTS = 50
CANTEEN = Caller(
    key=b"race-audit-key", actor="canteen", role="SCHOOL", operation="Race", request_id=None
)


async def _committed_pupil(engine, run: str):
    """A pupil with a funded voucher and a school, committed; returns their ids and codes."""
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        family, _, child = await family_with_pupil(setup, school_code=f"race-{run}")
        canteen, _ = await register_merchant(
            session=setup, external_code=f"race-{run}", name="Race school",
            category="school_meals", region="astana",
        )  # fmt: skip
        voucher = MealVoucher(
            family_id=family.id, person_id=child.id, school_year_start=date(2026, 9, 1),
            school_year_end=date(2027, 5, 25), amount_tiyn=10 * 98_000, channel="test",
        )  # fmt: skip
        setup.add(voucher)
        programme = f"programme:race-{run}"
        await ledger.open_account(
            session=setup, code=programme, kind="budget_programme", purpose="school_meals"
        )
        await ledger.open_account(
            session=setup, code=wallet_code(child.id), kind="purpose_wallet",
            purpose="school_meals", family_id=family.id, person_id=child.id,
        )  # fmt: skip
        await ledger.transfer(
            session=setup, transfer_id=f"race-{run}:fund", debit=programme,
            credit=wallet_code(child.id), amount=10 * 98_000, reason="VOUCHER_FUNDING",
        )  # fmt: skip
        await setup.commit()
    return family.id, child.id, canteen, programme


async def _remove(engine, *, family_id: int, child_id: int, canteen: Merchant, programme: str):
    codes = [programme, wallet_code(child_id), canteen.account_code]
    async with engine.begin() as connection:
        ids = select(LedgerAccount.id).where(LedgerAccount.code.in_(codes)).scalar_subquery()
        mine = LedgerTransfer.debit_account_id.in_(ids) | LedgerTransfer.credit_account_id.in_(ids)
        # Transfers are append-only: only here, briefly, is the guard switched off.
        await connection.execute(
            text("ALTER TABLE ledger_transfers DISABLE TRIGGER ledger_transfers_append_only")
        )
        await connection.execute(delete(LedgerTransfer).where(mine))
        await connection.execute(
            text("ALTER TABLE ledger_transfers ENABLE TRIGGER ledger_transfers_append_only")
        )
        await connection.execute(delete(LedgerAccount).where(LedgerAccount.code.in_(codes)))
        await connection.execute(delete(MealRedemption).where(MealRedemption.person_id == child_id))
        await connection.execute(delete(MealVoucher).where(MealVoucher.person_id == child_id))
        await connection.execute(delete(Merchant).where(Merchant.id == canteen.id))
        await connection.execute(delete(Entitlement).where(Entitlement.family_id == family_id))
        await connection.execute(delete(Person).where(Person.family_id == family_id))
        await connection.execute(delete(Family).where(Family.id == family_id))


async def _race(url: str, requests: list[MealRequest], merchant_id, path: str) -> list[str]:
    """Send every request at once, each in its own transaction and connection, on the
    portable path (ORM sessions) or the hot path (app.driver_db's pool, meal_hotpath, which
    audits what it serves: the records are removed again afterwards)."""
    if path in ("hotpath", "groups"):
        engine = create_async_engine(url)
        try:
            async with audit_trail_restored(engine):
                return await _race_on_driver(url, requests, merchant_id, groups=path == "groups")
        finally:
            await engine.dispose()
    engine = create_async_engine(url, pool_size=ATTEMPTS, max_overflow=0)
    start = asyncio.Event()

    async def attempt(request: MealRequest) -> str:
        async with AsyncSession(engine) as session:
            await session.execute(text("SELECT 1"))  # hold a connection before the start
            await start.wait()
            try:
                result = await redeem_meal(
                    session=session, merchant_id=merchant_id, request=request,
                    qr_key=QR_KEY, now=NOW,
                )  # fmt: skip
            except VoucherError as refused:
                await session.rollback()
                return refused.code
            await session.commit()
            return "REPLAYED" if result.replayed else "SERVED"

    try:
        tasks = [asyncio.create_task(attempt(r)) for r in requests]
        await asyncio.sleep(0.5)
        start.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    finally:
        await engine.dispose()


async def _race_on_driver(
    url: str, requests: list[MealRequest], merchant_id, *, groups: bool
) -> list[str]:
    settings = Settings(database_url=url, database_hot_pool_size=ATTEMPTS)
    pool = await create_driver_pool(settings)
    transactions = pool_transactions(pool)
    # Groups: the requests go through a coalescer as a server's would (two groups written at
    # once here, so that groups race each other as well as the requests they hand back).
    coalescer = MealCoalescer(transactions=transactions, qr_key=lambda: QR_KEY, runners=2)
    # Open every connection first, so that the attempts start together.
    held = [await pool.acquire() for _ in range(ATTEMPTS)]
    for connection in held:
        await pool.release(connection)
    start = asyncio.Event()

    async def attempt(request: MealRequest) -> str:
        await start.wait()
        try:
            if groups:
                result = await coalescer.redeem(
                    GroupItem(merchant_id=merchant_id, request=request, now=NOW, caller=CANTEEN)
                )
            else:
                async with transactions() as connection:
                    result = await redeem_meal_on_driver(
                        connection=connection, merchant_id=merchant_id, request=request,
                        qr_key=QR_KEY, now=NOW, caller=CANTEEN,
                    )  # fmt: skip
        except VoucherError as refused:
            return refused.code
        return "REPLAYED" if result.replayed else "SERVED"

    try:
        tasks = [asyncio.create_task(attempt(r)) for r in requests]
        await asyncio.sleep(0.2)
        start.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    finally:
        await pool.close()


async def _check_ledger(engine, *, child_id: int, canteen: Merchant, served: int) -> None:
    async with AsyncSession(engine) as check:
        meals = await check.scalar(
            select(func.count())
            .select_from(MealRedemption)
            .where(MealRedemption.person_id == child_id)
        )
        spent = await check.scalar(
            select(func.count())
            .select_from(LedgerTransfer)
            .where(LedgerTransfer.reason == "MEAL_SERVED", LedgerTransfer.person_id == child_id)
        )
        assert meals == spent == served
        assert await ledger.balance(session=check, account=canteen.account_code) == served * 98_000
        assert await ledger.accounts_disagreeing_with_transfers(session=check) == []


@pytest.mark.postgres_only
@pytest.mark.parametrize("path", ["portable", "hotpath", "groups"])
async def test_fifty_canteens_racing_for_one_meal_serve_it_once(engine, settings, path):
    run = uuid.uuid4().hex[:10]
    family_id, child_id, canteen, programme = await _committed_pupil(engine, run)
    try:
        # When 50 requests for the same lunch (same child, day, meal type) arrive at once
        requests = [
            MealRequest(f"{run}:{n}", "lunch", SCHOOL_DAY, child_person_id=child_id)
            for n in range(ATTEMPTS)
        ]
        outcomes = await _race(settings.async_database_url, requests, canteen.id, path)
        # Then exactly one is served, the rest are ALREADY_REDEEMED, and the ledger agrees
        assert outcomes.count("SERVED") == 1
        assert outcomes.count("ALREADY_REDEEMED") == ATTEMPTS - 1
        await _check_ledger(engine, child_id=child_id, canteen=canteen, served=1)
    finally:
        await _remove(
            engine, family_id=family_id, child_id=child_id, canteen=canteen, programme=programme
        )


@pytest.mark.postgres_only
@pytest.mark.parametrize("path", ["portable", "hotpath", "groups"])
async def test_fifty_replays_of_one_request_return_the_first_result(engine, settings, path):
    run = uuid.uuid4().hex[:10]
    family_id, child_id, canteen, programme = await _committed_pupil(engine, run)
    try:
        # When the same request (one idempotency key) is sent 50 times at once
        request = MealRequest(f"{run}:same", "lunch", SCHOOL_DAY, child_person_id=child_id)
        outcomes = await _race(settings.async_database_url, [request] * ATTEMPTS, canteen.id, path)
        # Then one serves the meal and every other returns that first result
        assert outcomes.count("SERVED") == 1
        assert outcomes.count("REPLAYED") == ATTEMPTS - 1
        await _check_ledger(engine, child_id=child_id, canteen=canteen, served=1)
    finally:
        await _remove(
            engine, family_id=family_id, child_id=child_id, canteen=canteen, programme=programme
        )
