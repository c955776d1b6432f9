"""Single meal redemptions that arrive together, served together: group commit (PostgreSQL).

At a lunch peak each server process has a dozen canteens' requests in flight at once, and
each one alone costs PostgreSQL a transaction: its statements, its locks and its commit
(about a millisecond of the database's CPU here, as much as the rest of the request). So a
process gathers the redemptions that arrive while its previous group is being written, and
serves them in one transaction (`MealCoalescer`): the same reads, rules, ledger and audit as
one redemption, in about ten statements for the whole group. Under light load a group is one
request and nothing waits; under heavy load a request waits at most for the group ahead of it.

What the group does not decide it hands back, and the request then runs alone on the hot
path (`vouchers.meal_hotpath`), whose answers are the exact ones:

- a request the rules refuse (wrong school, expired QR code, holiday, ...): alone, it is
  refused with its code, or, if it repeats a request that succeeded, answered with the first
  result;
- a meal whose row was taken, by a request before the group or by an earlier one in it
  (the same idempotency key, meal or QR code): alone, after the group, it is a replay,
  ALREADY_REDEEMED or QR_REPLAYED;
- any ledger refusal (a wallet run dry), or any failure of the group's transaction: the group
  is rolled back and every request in it runs alone.

Each meal still has its own ledger transfer and its own audit record (by its own caller: the
school, the request id), and no answer is given before the group's transaction commits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import asyncpg
import structlog
from sqlalchemy import Table

from familymap.audit import Caller, append_after, lock_head, pick_chain
from familymap.driver_sql import DriverTransactions, insert_from_arrays
from familymap.orm import utcnow
from familymap.parameters import ParameterSet
from vouchers.calendar import school_year
from vouchers.errors import VoucherError
from vouchers.meal_hotpath import claimed_child, redeem_meal_on_driver, school_from
from vouchers.meals import (
    MEAL_COLUMNS,
    ChildVoucher,
    MealRequest,
    Redeemed,
    meal_payment,
    served_entry,
    validate_meal_request,
)
from vouchers.tables import MealRedemption, Merchant
from wallet.ledger import LedgerError
from wallet.ledger_driver import post_new_transfers_on_driver

log = structlog.get_logger("socialwallet.vouchers")


class _Alone:
    """An outcome of the group: run this request alone (on the hot path)."""

    def __repr__(self) -> str:
        return "ALONE"


ALONE = _Alone()


@dataclass(frozen=True, slots=True)
class GroupItem:
    """One canteen's request, as the group serves it."""

    merchant_id: uuid.UUID
    request: MealRequest
    now: datetime
    caller: Caller


_IDS = "SELECT array_agg(nextval(pg_get_serial_sequence('meal_redemptions', 'id'))) " + (
    "FROM generate_series(1, $1)"
)
_MERCHANTS = """
SELECT id AS merchant_id, external_code, name, category, region, created_at
FROM merchants WHERE id = ANY($1::uuid[])
"""
_CHILDREN = """
SELECT p.id, p.family_id, p.school_id, p.iin, v.id AS voucher_id,
       v.school_year_start
FROM persons p
LEFT JOIN meal_vouchers v ON v.person_id = p.id AND v.school_year_start = ANY($2::date[])
WHERE p.id = ANY($1::bigint[])
"""
_INSERT = f"""
{insert_from_arrays(cast(Table, MealRedemption.__table__), columns=MEAL_COLUMNS)}
ON CONFLICT DO NOTHING
RETURNING id
"""


async def redeem_meals_together(
    *,
    connection: asyncpg.Connection,
    items: list[GroupItem],
    qr_key: bytes,
    parameters: ParameterSet | None = None,
) -> list[Redeemed | _Alone]:
    """Serve `items` in the connection's transaction: a meal each, or ALONE where the group
    does not decide. A LedgerError means nothing may be kept: roll back, run them all alone."""
    if not items:
        return []
    claimed = [claimed_child(item.request, qr_key) for item in items]
    years = [school_year(item.request.served_on, parameters=parameters) for item in items]
    chain = pick_chain()
    head = await lock_head(connection=connection, chain=chain)
    ids = await connection.fetchval(_IDS, len(items))
    schools = {
        row["merchant_id"]: row
        for row in await connection.fetch(_MERCHANTS, list({item.merchant_id for item in items}))
    }
    persons: dict[int, asyncpg.Record] = {}
    vouchers: dict[tuple[int, date], int] = {}
    for row in await connection.fetch(
        _CHILDREN,
        sorted({c for c in claimed if c is not None}),
        sorted({year.start for year in years if year is not None}),
    ):
        persons[row["id"]] = row
        if row["voucher_id"] is not None:
            vouchers[row["id"], row["school_year_start"]] = row["voucher_id"]

    async def load_child(person_id: int, start: date) -> ChildVoucher | None:
        person = persons.get(person_id)
        if person is None:
            return None
        return ChildVoucher(
            person_id, person["family_id"], person["school_id"],
            vouchers.get((person_id, start)), start,
        )  # fmt: skip

    outcomes: list[Redeemed | _Alone] = [ALONE] * len(items)
    meals: dict[int, tuple[int, MealRedemption, Merchant]] = {}  # meal id -> (position, ...)
    merchants: dict[uuid.UUID, Merchant] = {}
    taken: set[tuple[Any, ...]] = set()
    for position, item in enumerate(items):
        found = schools.get(item.merchant_id)
        try:
            if found is None:
                continue  # NOT_FOUND, alone
            school = merchants.get(item.merchant_id) or school_from(found)
            merchants[item.merchant_id] = school
            values = await validate_meal_request(
                None, school, item.request, qr_key=qr_key, now=item.now,
                parameters=parameters, children={}, load_child=load_child,
            )  # fmt: skip
        except VoucherError:
            continue  # refused, or a replay of a request served before: alone
        # A request that takes a key an earlier one of the group took (its school's idempotency
        # key, its meal, its QR code) is decided alone, after the group: as it would be, one at
        # a time in the order they came.
        keys = {
            ("key", values["merchant_id"], values["idempotency_key"]),
            ("meal", values["voucher_id"], values["service_date"], values["meal_type"]),
        } | ({("qr", values["qr_nonce"])} if values["qr_nonce"] else set())
        if keys & taken:
            continue
        taken |= keys
        values |= {"id": ids[position], "created_at": utcnow()}
        meals[values["id"]] = (position, MealRedemption(**values), school)
    if not meals:
        return outcomes
    # In one order for every group (voucher, day, meal type), so that two groups holding the
    # same two meals wait for each other in line rather than in a circle. (Within the group
    # no two rows share a key any more, so the order decides nothing else.)
    rows = sorted(
        (meal for _, meal, _ in meals.values()),
        key=lambda meal: (meal.voucher_id, meal.service_date, meal.meal_type),
    )
    inserted = {
        row["id"]
        for row in await connection.fetch(
            _INSERT, *([getattr(meal, column) for meal in rows] for column in MEAL_COLUMNS)
        )
    }
    # A meal whose row a request outside the group took first is decided alone.
    served = [meals[meal_id] for meal_id in meals if meal_id in inserted]
    await post_new_transfers_on_driver(
        connection=connection,
        transfers=[meal_payment(school, meal) for _, meal, school in served],
    )
    await append_after(
        connection=connection,
        chain=chain,
        head=head,
        entries=[
            served_entry(
                items[position].caller,
                Redeemed(meal, replayed=False),
                {meal.person_id: persons[meal.person_id]["iin"]},
            )
            for position, meal, _ in served
        ],
    )
    for position, meal, _ in served:
        outcomes[position] = Redeemed(meal, replayed=False)
    return outcomes


class MealCoalescer:
    """A process's single redemptions, gathered into groups while the previous group runs.

    At most `runners` groups are written at once (each on a connection of its own); a request
    that arrives meanwhile joins the next group, of at most `max_group` requests. `qr_key`
    gives the QR signing key when the first request needs it (a server that never serves
    meals need not have one).
    """

    def __init__(
        self,
        *,
        transactions: DriverTransactions,
        qr_key: Callable[[], bytes],
        runners: int = 2,
        max_group: int = 64,
        parameters: ParameterSet | None = None,
    ) -> None:
        self._transactions = transactions
        self._qr_key = qr_key
        self._runners = runners
        self._max_group = max_group
        self._parameters = parameters
        self._waiting: list[tuple[GroupItem, asyncio.Future[Any]]] = []
        self._writing = 0  # runners at work: counted down in the step that finds no one waiting
        self._tasks: set[asyncio.Task[None]] = set()  # held, so none is collected mid-run

    async def redeem(self, item: GroupItem) -> Redeemed:
        """Serve one request in a group, or alone where the group hands it back."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writing < self._runners:
            self._writing += 1
            task = asyncio.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        outcome = await future
        if isinstance(outcome, Redeemed):
            return outcome
        async with self._transactions() as connection:
            return await redeem_meal_on_driver(
                connection=connection, merchant_id=item.merchant_id, request=item.request,
                qr_key=self._qr_key(), now=item.now, caller=item.caller,
                parameters=self._parameters,
            )  # fmt: skip

    async def _run(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                outcomes: list[Any] = [ALONE] * len(group)
                try:
                    outcomes = await self._serve(group)
                finally:
                    # Answered only now, after the group's commit (or its rollback);
                    # cancelled (the server stopping), each request is handed back.
                    for (_, future), outcome in zip(group, outcomes, strict=True):
                        if not future.done():
                            future.set_result(outcome)
        finally:
            # In the same step as the check that found no one waiting (no await between): a
            # request that comes after it starts a runner of its own, none is left waiting.
            self._writing -= 1

    async def _serve(self, group: list[tuple[GroupItem, asyncio.Future[Any]]]) -> list[Any]:
        try:
            async with self._transactions() as connection:
                return await redeem_meals_together(
                    connection=connection, items=[item for item, _ in group],
                    qr_key=self._qr_key(), parameters=self._parameters,
                )  # fmt: skip
        except LedgerError as refused:
            log.info("meal_group.alone", reason=refused.code, size=len(group))
        except Exception as exc:  # any failure: rolled back, and each request runs alone
            log.warning("meal_group.failed", error=type(exc).__name__, size=len(group))
        return [ALONE] * len(group)
