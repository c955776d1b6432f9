"""The code's paths, each driven as its callers drive it and its answer put in the model's
terms: the portable ORM path (SQLite and PostgreSQL), and on PostgreSQL the hot path, group
commit and the driver's ledger statements. A refusal rolls its transaction back, as the API's
resolvers do; anything else commits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from familymap.audit import Caller
from tests.model.rules import (
    Answer,
    DispenseAsk,
    Dispensed,
    MealAsk,
    Posted,
    QrCode,
    Refused,
    Served,
    local_day,
)
from tests.model.world import World
from vouchers import calendar
from vouchers.errors import VoucherError
from vouchers.meal_groups import ALONE, GroupItem, redeem_meals_together
from vouchers.meal_hotpath import redeem_meal_on_driver
from vouchers.meals import MealRequest, Redeemed, redeem_meal, redeem_meals_batch
from vouchers.medicines import DispenseRequest, dispense
from vouchers.qr import sign_qr
from wallet import ledger
from wallet.ledger import LedgerError, NewTransfer
from wallet.ledger_driver import post_new_transfer, post_new_transfers_on_driver
from wallet.tables import LedgerTransfer

QR_KEY = b"model-qr-key-".ljust(32, b"k")
CANTEEN = Caller(
    key=b"model-audit-key", actor="canteen", role="SCHOOL", operation="Model", request_id=None
)
LEDGER_PATHS = ("transfer", "new_transfers")
DRIVER_LEDGER_PATHS = ("driver_transfer", "driver_transfers")
MEAL_PATHS = ("portable", "batch")
DRIVER_MEAL_PATHS = ("hot", "group")


@dataclass
class Paths:
    """Where the paths run: the ORM's engine, and on PostgreSQL the driver's pool."""

    engine: AsyncEngine
    pool: asyncpg.Pool | None
    world: World
    now: datetime
    tokens: dict[str, str]  # QR nonce -> the signed token

    # --- the ledger

    async def post(
        self, path: str, *, transfer_id: str, debit: str, credit: str, amount: int, reason: str
    ) -> Answer:
        """Post one transfer through `path`'s primitive."""
        if path == "transfer":
            async with AsyncSession(self.engine, expire_on_commit=False) as session:
                # Whether the id was posted before: `transfer` then answers with that one.
                before = await session.scalar(
                    select(LedgerTransfer.id).where(LedgerTransfer.transfer_id == transfer_id)
                )
                try:
                    await ledger.transfer(
                        session=session, transfer_id=transfer_id, debit=debit, credit=credit,
                        amount=amount, reason=reason,
                    )  # fmt: skip
                    await session.commit()
                except LedgerError as refused:
                    await session.rollback()
                    return Refused(refused.code)
            return Posted(transfer_id, replayed=before is not None)
        item = NewTransfer(transfer_id, debit, credit, amount, reason)
        if path == "new_transfers":
            async with AsyncSession(self.engine, expire_on_commit=False) as session:
                try:
                    await ledger.post_new_transfers(session=session, transfers=[item])
                    await session.commit()
                except LedgerError as refused:
                    await session.rollback()
                    return Refused(refused.code)
            return Posted(transfer_id)
        assert self.pool is not None
        async with self.pool.acquire() as connection:
            transaction = connection.transaction()
            await transaction.start()
            try:
                if path == "driver_transfer":
                    await post_new_transfer(connection=connection, transfer=item)
                else:
                    await post_new_transfers_on_driver(connection=connection, transfers=[item])
            except LedgerError as refused:
                await transaction.rollback()
                return Refused(refused.code)
            await transaction.commit()
        return Posted(transfer_id)

    # --- meals

    def show_qr(self, child: str, school: str, year_start, issued: datetime) -> QrCode:
        """The QR code a parent's phone made at `issued` for their child at the child's
        school, still valid a minute after now (the model has no expiry)."""
        voucher_id = next(c for c in self.world.children if c.name == child).voucher_ids[year_start]
        token, claims = sign_qr(
            key=QR_KEY, voucher_id=voucher_id, child_person_id=self.world.person_ids[child],
            merchant_id=str(self.world.merchant_ids[school]), now=issued,
            ttl=self.now - issued + timedelta(minutes=1),
        )  # fmt: skip
        self.tokens[claims.nonce] = token
        return QrCode(child, school, claims.nonce, year_start, local_day(issued))

    def request(self, ask: MealAsk) -> MealRequest:
        return MealRequest(
            idempotency_key=ask.key, meal_type=ask.meal_type, served_on=ask.day,
            qr_token=self.tokens[ask.qr.nonce] if ask.qr else None,
            child_person_id=self.world.person_ids[ask.child] if ask.child else None,
        )  # fmt: skip

    def answer(self, redeemed: Redeemed) -> Served:
        meal = redeemed.redemption
        return Served(
            self.world.child_named(meal.person_id), meal.service_date, meal.meal_type,
            replayed=redeemed.replayed,
        )  # fmt: skip

    async def redeem(self, path: str, asks: list[MealAsk]) -> list[Answer]:
        """Send the canteen's requests through `path`: one at a time (portable, hot), as one
        offline batch of one school (batch), or arriving together (group)."""
        if path == "batch":
            return await self._batch(asks)
        if path == "group":
            return await self._group(asks)
        return [await self._one(path, ask) for ask in asks]

    async def race(self, path: str, asks: list[MealAsk]) -> list[Answer]:
        """Send the requests at the same moment, each in a transaction of its own."""
        return list(await asyncio.gather(*(self._one(path, ask) for ask in asks)))

    async def _one(self, path: str, ask: MealAsk) -> Answer:
        school = self.world.merchant_ids[ask.school]
        if path == "hot":
            return await self._alone_on_driver(ask)
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            try:
                redeemed = await redeem_meal(
                    session=session, merchant_id=school, request=self.request(ask),
                    qr_key=QR_KEY, now=self.now,
                )  # fmt: skip
                await session.commit()
            except (VoucherError, LedgerError) as refused:
                await session.rollback()
                return Refused(refused.code)
        return self.answer(redeemed)

    async def _alone_on_driver(self, ask: MealAsk) -> Answer:
        assert self.pool is not None
        async with self.pool.acquire() as connection:
            transaction = connection.transaction()
            await transaction.start()
            try:
                redeemed = await redeem_meal_on_driver(
                    connection=connection, merchant_id=self.world.merchant_ids[ask.school],
                    request=self.request(ask), qr_key=QR_KEY, now=self.now, caller=CANTEEN,
                )  # fmt: skip
            except (VoucherError, LedgerError) as refused:
                await transaction.rollback()
                return Refused(refused.code)
            await transaction.commit()
        return self.answer(redeemed)

    async def _batch(self, asks: list[MealAsk]) -> list[Answer]:
        # A batch is one school's: the first request's school takes them all.
        school = self.world.merchant_ids[asks[0].school]
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            results = await redeem_meals_batch(
                session=session, merchant_id=school, requests=[self.request(a) for a in asks],
                qr_key=QR_KEY, now=self.now,
            )  # fmt: skip
            await session.commit()
        return [
            self.answer(result.redeemed) if result.redeemed else Refused(result.code)
            for result in results
        ]

    async def _group(self, asks: list[MealAsk]) -> list[Answer]:
        """As `MealCoalescer` serves requests that arrive together: the group in one
        transaction, then what it hands back alone on the hot path, in arrival order."""
        assert self.pool is not None
        items = [
            GroupItem(self.world.merchant_ids[a.school], self.request(a), self.now, CANTEEN)
            for a in asks
        ]
        try:
            async with self.pool.acquire() as connection, connection.transaction():
                outcomes = await redeem_meals_together(
                    connection=connection, items=items, qr_key=QR_KEY
                )
        except LedgerError:
            outcomes = [ALONE] * len(items)
        return [
            await self._alone_on_driver(ask) if outcome is ALONE else self.answer(outcome)
            for ask, outcome in zip(asks, outcomes, strict=True)
        ]

    # --- medicines

    async def dispense(self, ask: DispenseAsk) -> Answer:
        """A pharmacy's dispensing, on the one path it has (the ORM)."""
        request = DispenseRequest(
            idempotency_key=ask.key,
            prescription_external_id=self.world.external_id(ask.prescription),
            drug_code=ask.drug, quantity=ask.quantity, identity_method=ask.identity,
            identity_reason=ask.identity_reason, identity_reason_code=ask.identity_reason_code,
        )  # fmt: skip
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            try:
                row, replayed = await dispense(
                    session=session, merchant_id=self.world.merchant_ids[ask.merchant],
                    request=request, today=calendar.local_day(self.now),
                )  # fmt: skip
                await session.commit()
            except (VoucherError, LedgerError) as refused:
                await session.rollback()
                return Refused(refused.code)
        name = next(
            rx.name
            for rx in self.world.prescriptions
            if self.world.external_id(rx.name) == request.prescription_external_id
        )
        return Dispensed(name, row.quantity, replayed=replayed)
