"""The money's invariants, checked on a live database: what `socialwallet ledger verify` runs.

Each invariant has a stable name; `verify_ledger` returns a `Finding` for every one that is
broken (an empty list: the money is as the rules say). The checks read; they change nothing.

    books_balance                 the debits posted to accounts equal the credits posted
    balances_match_transfers      every account's totals equal the sums of its transfers
    no_negative_wallet            no account that may not go negative is below zero
    reason_fits_flow              every transfer's reason is one its flow carries (FLOWS), or
                                  a reversal's reason on a reversal
    meal_one_transfer             every meal is paid by one MEAL_SERVED transfer of its price
                                  to the child's wallet's debit, and every such transfer pays
                                  one meal
    dispensing_one_transfer       the same for dispensings and MEDICINE_DISPENSED
    payment_one_bank_order        every payment has its BENEFIT_PAYMENT transfer and one bank
                                  order of its own, and every bank order belongs to a payment
    consent_one_sms               every answered offer with a phone has an SMS confirming the
                                  answer, and no unanswered offer has one

The voucher tables (meals, dispensings) belong to `vouchers`, a layer above this one, so they
are named here by their columns only (`sqlalchemy.table`), not imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    String,
    and_,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import TableClause

from wallet.ledger import FLOWS, REVERSAL_REASONS, Reason, accounts_disagreeing_with_transfers
from wallet.offer_tables import Offer, Payment
from wallet.outbox_tables import OutboxMessage
from wallet.tables import LedgerAccount, LedgerTransfer

# The states an answer leads to, each confirmed by an SMS of its own (wallet.offers).
ANSWER_STATES = ("declined", "withdrawn", "assigned", "needs_bank_account")
# How many offending rows a finding names; the count says how many there are in all.
EXAMPLES = 5

INVARIANTS: dict[str, str] = {
    "books_balance": "the debits posted equal the credits posted",
    "balances_match_transfers": "every account's totals equal the sums of its transfers",
    "no_negative_wallet": "no account that may not go negative is below zero",
    "reason_fits_flow": "every transfer's reason is one its flow carries, or a reversal's",
    "meal_one_transfer": "every meal is paid by one MEAL_SERVED transfer, and each pays one meal",
    "dispensing_one_transfer": (
        "every dispensing is paid by one MEDICINE_DISPENSED transfer, and each pays one"
    ),
    "payment_one_bank_order": (
        "every payment has its BENEFIT_PAYMENT transfer and one bank order, and each order "
        "its payment"
    ),
    "consent_one_sms": "every answer to an offer with a phone is confirmed by one SMS",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A broken invariant: its name, how many rows break it and a few of them."""

    invariant: str
    broken: int
    examples: tuple[str, ...]

    def describe(self) -> str:
        """One line for a person: the invariant, the count and the examples."""
        shown = "; ".join(self.examples)
        more = (
            f" (and {self.broken - len(self.examples)} more)"
            if self.broken > len(self.examples)
            else ""
        )
        return f"{self.invariant}: {INVARIANTS[self.invariant]} - broken by {shown}{more}"


# The voucher tables, as far as these checks read them.
_meals = table(
    "meal_redemptions",
    column("id"),
    column("person_id"),
    column("price_tiyn"),
    column("transfer_id"),
)
_dispensings = table(
    "dispensings",
    column("id"),
    column("person_id"),
    column("amount_tiyn"),
    column("transfer_id"),
)


async def verify_ledger(*, session: AsyncSession) -> list[Finding]:
    """Check every invariant of the money; a Finding for each one that is broken."""
    findings = []
    for name, check in _CHECKS.items():
        broken = await check(session)
        if broken:
            findings.append(Finding(name, len(broken), tuple(broken[:EXAMPLES])))
    return findings


async def _books_balance(session: AsyncSession) -> list[str]:
    debits, credits = (
        await session.execute(
            select(
                func.coalesce(func.sum(LedgerAccount.debits_posted), 0),
                func.coalesce(func.sum(LedgerAccount.credits_posted), 0),
            )
        )
    ).one()
    if int(debits) == int(credits):
        return []
    return [f"debits {int(debits)} tiyn against credits {int(credits)} tiyn"]


async def _balances_match_transfers(session: AsyncSession) -> list[str]:
    return [
        f"account {code}" for code in await accounts_disagreeing_with_transfers(session=session)
    ]


async def _no_negative_wallet(session: AsyncSession) -> list[str]:
    held = LedgerAccount.credits_posted - LedgerAccount.debits_posted
    rows = await session.execute(
        select(LedgerAccount.code, held)
        .where(LedgerAccount.may_go_negative.is_(False), held < 0)
        .order_by(LedgerAccount.code)
    )
    return [f"account {code} holds {amount} tiyn" for code, amount in rows]


async def _reason_fits_flow(session: AsyncSession) -> list[str]:
    transfers = LedgerTransfer.__table__
    debit = LedgerAccount.__table__.alias("debit")
    credit = LedgerAccount.__table__.alias("credit")
    allowed = [
        (debit_kind, credit_kind, reason.value)
        for (debit_kind, credit_kind), flow in FLOWS.items()
        for reason in flow.reasons
    ]
    rows = await session.execute(
        select(transfers.c.transfer_id, transfers.c.reason, debit.c.kind, credit.c.kind)
        .join(debit, debit.c.id == transfers.c.debit_account_id)
        .join(credit, credit.c.id == transfers.c.credit_account_id)
        .where(
            ~tuple_(debit.c.kind, credit.c.kind, transfers.c.reason).in_(allowed),
            ~and_(
                transfers.c.reverses_transfer_id.is_not(None),
                transfers.c.reason.in_([reason.value for reason in REVERSAL_REASONS]),
            ),
        )
        .order_by(transfers.c.id)
    )
    return [
        f"transfer {transfer_id}: {reason} from a {debit_kind} to a {credit_kind}"
        for transfer_id, reason, debit_kind, credit_kind in rows
    ]


def _wallet_of(person_id_column: ColumnElement[Any]) -> ColumnElement[str]:
    """The pattern of a person's purpose wallet's code (`person:<id>:<purpose>`), as SQL."""
    return literal("person:") + cast(person_id_column, String) + literal(":%")


async def _service_one_transfer(
    session: AsyncSession,
    service: TableClause,
    amount_column: ColumnElement[int],
    reason: Reason,
    noun: str,
) -> list[str]:
    """Each row of `service` (meals, dispensings) paid by the one transfer it names, of its
    amount, from its person's wallet, with `reason`; each such transfer paying one row."""
    transfers, debit = LedgerTransfer.__table__, LedgerAccount.__table__.alias("debit")
    unpaid = await session.execute(
        select(service.c.id, service.c.transfer_id, transfers.c.id)
        .outerjoin(transfers, transfers.c.transfer_id == service.c.transfer_id)
        .outerjoin(debit, debit.c.id == transfers.c.debit_account_id)
        .where(
            or_(
                transfers.c.id.is_(None),
                transfers.c.reason != reason.value,
                transfers.c.amount != amount_column,
                transfers.c.person_id != service.c.person_id,
                ~debit.c.code.like(_wallet_of(service.c.person_id)),
            )
        )
        .order_by(service.c.id)
    )
    broken = [
        f"{noun} {row_id} (transfer {transfer_id}): "
        + ("no transfer" if posted is None else "a transfer of other content")
        for row_id, transfer_id, posted in unpaid
    ]
    shared = await session.execute(
        select(service.c.transfer_id, func.count())
        .group_by(service.c.transfer_id)
        .having(func.count() > 1)
        .order_by(service.c.transfer_id)
    )
    broken += [f"transfer {transfer_id} pays {n} {noun}s" for transfer_id, n in shared]
    orphans = await session.execute(
        select(transfers.c.transfer_id)
        .outerjoin(service, service.c.transfer_id == transfers.c.transfer_id)
        .where(transfers.c.reason == reason.value, service.c.id.is_(None))
        .order_by(transfers.c.id)
    )
    broken += [f"transfer {transfer_id} pays no {noun}" for (transfer_id,) in orphans]
    return broken


async def _meal_one_transfer(session: AsyncSession) -> list[str]:
    return await _service_one_transfer(
        session, _meals, _meals.c.price_tiyn, Reason.MEAL_SERVED, "meal"
    )


async def _dispensing_one_transfer(session: AsyncSession) -> list[str]:
    return await _service_one_transfer(
        session, _dispensings, _dispensings.c.amount_tiyn, Reason.MEDICINE_DISPENSED, "dispensing"
    )


async def _payment_one_bank_order(session: AsyncSession) -> list[str]:
    transfers, orders = LedgerTransfer.__table__, OutboxMessage.__table__
    rows = await session.execute(
        select(Payment.payment_key, transfers.c.id, orders.c.id)
        .outerjoin(
            transfers,
            and_(
                transfers.c.transfer_id == Payment.transfer_id,
                transfers.c.reason == Reason.BENEFIT_PAYMENT.value,
                transfers.c.amount == Payment.amount_tiyn,
            ),
        )
        .outerjoin(
            orders,
            and_(
                orders.c.id == Payment.order_message_id,
                orders.c.channel == "bank",
                orders.c.message_key == literal("payment:") + Payment.payment_key,
            ),
        )
        .where(or_(transfers.c.id.is_(None), orders.c.id.is_(None)))
        .order_by(Payment.id)
    )
    broken = [
        f"payment {key}: " + ("no transfer" if transfer is None else "no bank order of its own")
        for key, transfer, order in rows
    ]
    shared = await session.execute(
        select(Payment.order_message_id, func.count())
        .group_by(Payment.order_message_id)
        .having(func.count() > 1)
    )
    broken += [f"bank order {order} is {n} payments' order" for order, n in shared]
    orphan_orders = await session.execute(
        select(orders.c.message_key)
        .outerjoin(Payment, Payment.order_message_id == orders.c.id)
        .where(orders.c.channel == "bank", Payment.id.is_(None))
        .order_by(orders.c.id)
    )
    broken += [f"bank order {key} has no payment" for (key,) in orphan_orders]
    orphan_transfers = await session.execute(
        select(transfers.c.transfer_id)
        .outerjoin(Payment, Payment.transfer_id == transfers.c.transfer_id)
        .where(transfers.c.reason == Reason.BENEFIT_PAYMENT.value, Payment.id.is_(None))
        .order_by(transfers.c.id)
    )
    broken += [f"transfer {key} pays no payment" for (key,) in orphan_transfers]
    return broken


async def _consent_one_sms(session: AsyncSession) -> list[str]:
    messages = OutboxMessage.__table__
    # An answer is confirmed by `offer:<id>:<the state it led to>` (`offer:<id>:sms` is the
    # offer itself); keys compared whole, so that the unique index finds them.
    offer_key = literal("offer:") + cast(Offer.id, String) + literal(":")
    confirmed = (
        select(messages.c.id)
        .where(
            messages.c.channel == "sms",
            or_(*(messages.c.message_key == offer_key + state for state in ANSWER_STATES)),
        )
        .exists()
    )
    rows = await session.execute(
        select(Offer.id, Offer.answered_at.is_not(None))
        .where(
            or_(
                and_(Offer.answered_at.is_not(None), Offer.phone.is_not(None), ~confirmed),
                and_(Offer.answered_at.is_(None), confirmed),
            )
        )
        .order_by(Offer.id)
    )
    return [
        f"offer {offer_id}: " + ("answered, no SMS confirms it" if answered else "SMS, no answer")
        for offer_id, answered in rows
    ]


_CHECKS: dict[str, Callable[[AsyncSession], Awaitable[list[str]]]] = {
    "books_balance": _books_balance,
    "balances_match_transfers": _balances_match_transfers,
    "no_negative_wallet": _no_negative_wallet,
    "reason_fits_flow": _reason_fits_flow,
    "meal_one_transfer": _meal_one_transfer,
    "dispensing_one_transfer": _dispensing_one_transfer,
    "payment_one_bank_order": _payment_one_bank_order,
    "consent_one_sms": _consent_one_sms,
}
assert set(_CHECKS) == set(INVARIANTS)
