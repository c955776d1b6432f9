"""The ledger of state spending: open accounts, post transfers, reverse them, read balances.

Every movement of value is one transfer: one debit and one credit of the same integer
amount in tiyn, so each transfer balances by construction and the sum of all balances is
always zero (`trial_balance`). Transfers are never changed; a correction is a new transfer
that reverses one (`reverse`), at most once. Each carries a reason code and the client's own
id, which is also its idempotency key.

Purpose-bound value is not cash: it flows from a programme into a purpose wallet and from
there only to a merchant of the same purpose (`FLOWS`), never to a bank payout or to another
person. A purpose wallet never goes negative: `transfer` posts with a conditional UPDATE
that refuses an overdraft on both databases, and a CHECK constraint refuses it again.

Expected failures are exceptions with a stable `code`:

    LedgerError
    ├── InvalidAmount          INVALID_AMOUNT       not a whole number of tiyn above zero
    ├── SameAccount            SAME_ACCOUNT         debit and credit are one account
    ├── UnknownAccount         UNKNOWN_ACCOUNT      no account with that code or id
    ├── AccountConflict        ACCOUNT_CONFLICT     the code is taken by a different account
    ├── UnknownTransfer        UNKNOWN_TRANSFER     nothing to reverse under that id
    ├── TransferIdReused       TRANSFER_ID_REUSED   the id was used for a different transfer
    ├── ReversedAlready        REVERSED_ALREADY     the transfer was reversed before
    ├── InsufficientFunds      INSUFFICIENT_FUNDS   the debit would overdraw the account
    └── FlowNotAllowed         FLOW_NOT_ALLOWED     value may not flow between these kinds
        ├── NonCashable        NON_CASHABLE         purpose-bound value leaving for cash or a person
        ├── PurposeMismatch    PURPOSE_MISMATCH     the right kinds, but another purpose
        └── ReasonNotAllowed   REASON_NOT_ALLOWED   not a reason value moves for along this flow

One posting primitive, `post_transfers`, posts new transfers on every path: the ORM
(`post_new_transfers`, SQLite and PostgreSQL) and the driver (`wallet.ledger_driver`), each
through a `LedgerStore` that only does the I/O. The hot path's single statement and the
idempotent `transfer` and `reverse` refuse through the same checks. One order of refusals
holds everywhere: the amount (`check_amount`), the accounts (`check_ends`), then the
transfer id (a used id is a replay or TRANSFER_ID_REUSED, whatever the money), then the flow
and its reason (`check_flow`: `Reason`s, as `FLOWS` allows them), and last the money
(`floor_condition`, the one overdraft rule, as SQL; `check_moved`, its refusal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    column,
    func,
    insert,
    or_,
    select,
    update,
    values,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from familymap.orm import utcnow
from wallet.tables import LedgerAccount, LedgerTransfer

# A BIGINT column holds no more; larger amounts would fail in the database instead.
MAX_AMOUNT = 2**63 - 1


class Reason(StrEnum):
    """Why value moved: every transfer's reason code is one of these (FLOWS says which one
    each flow may carry)."""

    VOUCHER_FUNDING = "VOUCHER_FUNDING"  # a programme funds a purpose wallet
    MEAL_SERVED = "MEAL_SERVED"  # a child's meals wallet pays the school for a meal
    MEDICINE_DISPENSED = "MEDICINE_DISPENSED"  # a medicines wallet pays the pharmacy
    AID_DELIVERED = "AID_DELIVERED"  # a technical-aids wallet pays the supplier
    BENEFIT_PAYMENT = "BENEFIT_PAYMENT"  # a programme pays a cash benefit out to the bank
    INVOICE_PAID = "INVOICE_PAID"  # a merchant's redeemed value is settled to it
    PAYMENT_RETURNED = "PAYMENT_RETURNED"  # the bank refused a payment: its transfer reversed
    REVERSAL = "REVERSAL"  # any other transfer undone


REVERSAL = Reason.REVERSAL


class LedgerError(Exception):
    """An expected refusal of the ledger, with a stable code for clients."""

    code = "LEDGER_ERROR"


class InvalidAmount(LedgerError):
    code = "INVALID_AMOUNT"


class SameAccount(LedgerError):
    code = "SAME_ACCOUNT"


class UnknownAccount(LedgerError):
    code = "UNKNOWN_ACCOUNT"


class AccountConflict(LedgerError):
    code = "ACCOUNT_CONFLICT"


class UnknownTransfer(LedgerError):
    code = "UNKNOWN_TRANSFER"


class TransferIdReused(LedgerError):
    code = "TRANSFER_ID_REUSED"


class ReversedAlready(LedgerError):
    code = "REVERSED_ALREADY"


class InsufficientFunds(LedgerError):
    code = "INSUFFICIENT_FUNDS"


class FlowNotAllowed(LedgerError):
    code = "FLOW_NOT_ALLOWED"


class NonCashable(FlowNotAllowed):
    code = "NON_CASHABLE"


class PurposeMismatch(FlowNotAllowed):
    code = "PURPOSE_MISMATCH"


class ReasonNotAllowed(FlowNotAllowed):
    code = "REASON_NOT_ALLOWED"


# --- Where value may flow -------------------------------------------------------------------

PurposeRule = Callable[[str | None, str | None], bool]


def _same_purpose(debit: str | None, credit: str | None) -> bool:
    return debit is not None and debit == credit


def _cash_only(debit: str | None, credit: str | None) -> bool:
    return debit is None and credit is None


def _any_purpose(debit: str | None, credit: str | None) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Flow:
    """What a flow between two kinds of account requires: a rule on the two purposes, and
    the reasons value may move for along it."""

    purposes: PurposeRule
    reasons: frozenset[Reason]


# (debit kind, credit kind) -> the flow's rule. Every flow not listed is refused. A reversal
# moves a posted transfer's amount back between the same two accounts; it is allowed because
# the transfer it undoes was, so `reverse` does not consult this table (the balance floor
# still applies to it) and takes only REVERSAL_REASONS.
FLOWS: dict[tuple[str, str], Flow] = {
    # A programme tops up a wallet of its own purpose (school meals fund meals wallets).
    ("budget_programme", "purpose_wallet"): Flow(
        _same_purpose, frozenset({Reason.VOUCHER_FUNDING})
    ),
    # A cash benefit paid to a bank account, only from a programme that is not purpose-bound.
    ("budget_programme", "bank_payout"): Flow(_cash_only, frozenset({Reason.BENEFIT_PAYMENT})),
    # A redemption: a meal served, a medicine dispensed, by a merchant of the same purpose.
    ("purpose_wallet", "merchant"): Flow(
        _same_purpose,
        frozenset({Reason.MEAL_SERVED, Reason.MEDICINE_DISPENSED, Reason.AID_DELIVERED}),
    ),
    # An invoice paid: the merchant's redeemed value is settled to it.
    ("merchant", "settlement"): Flow(_any_purpose, frozenset({Reason.INVOICE_PAID})),
}
REVERSAL_REASONS = frozenset({Reason.REVERSAL, Reason.PAYMENT_RETURNED})


def may_flow(
    debit_kind: str,
    credit_kind: str,
    *,
    debit_purpose: str | None,
    credit_purpose: str | None,
) -> bool:
    """Whether value may flow from an account of one kind and purpose to another (FLOWS)."""
    flow = FLOWS.get((debit_kind, credit_kind))
    return flow is not None and flow.purposes(debit_purpose, credit_purpose)


class FlowEnd(Protocol):
    """What `check_flow` reads of an account (a LedgerAccount, or a row of one)."""

    code: str
    kind: str
    purpose: str | None


def check_flow(debit: FlowEnd, credit: FlowEnd, reason: str) -> Reason:
    """Refuse a flow of value the ledger does not allow, naming the rule it breaks; the
    reason as a `Reason`."""
    flow = f"{debit.code} -> {credit.code}"
    if not may_flow(
        debit.kind, credit.kind, debit_purpose=debit.purpose, credit_purpose=credit.purpose
    ):
        # Name the broken rule: purpose-bound value turning into cash or passing to a person
        # is the one the product promises never happens.
        if debit.purpose is not None and (
            credit.kind == "bank_payout"
            or (debit.kind == "purpose_wallet" and credit.kind != "merchant")
        ):
            raise NonCashable(
                f"{flow}: {debit.purpose} value is not cash and stays with its purpose"
            )
        if (debit.kind, credit.kind) in FLOWS:
            raise PurposeMismatch(f"{flow}: {debit.purpose} value may not go to {credit.purpose}")
        raise FlowNotAllowed(f"{flow}: value may not flow from {debit.kind} to {credit.kind}")
    allowed = FLOWS[debit.kind, credit.kind].reasons
    if reason not in allowed:
        raise ReasonNotAllowed(
            f"{flow}: value moves from {debit.kind} to {credit.kind} only for "
            f"{', '.join(sorted(allowed))}, not {reason!r}"
        )
    return Reason(reason)


def floor_condition(accounts: Any, *, debit: Any, credit: Any) -> ColumnElement[bool]:
    """The overdraft rule, the one place it is written: an account may take a debit only if
    it may go negative or still holds at least zero after the move. SQL over a row of
    `accounts` (the table or an alias), `debit` and `credit` being what the move adds to its
    totals; every path's UPDATE guards itself with it, and the CHECK constraint
    `balance_floor` says the same again in the database."""
    return or_(
        accounts.c.may_go_negative,
        accounts.c.credits_posted + credit - accounts.c.debits_posted - debit >= 0,
    )


# --- Accounts -------------------------------------------------------------------------------


async def open_account(
    *,
    session: AsyncSession,
    code: str,
    kind: str,
    purpose: str | None = None,
    family_id: int | None = None,
    person_id: int | None = None,
) -> LedgerAccount:
    """Get the account with `code`, creating it if new; only a programme may go negative."""
    wanted = {"kind": kind, "purpose": purpose, "family_id": family_id, "person_id": person_id}
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if account is None:
        account = LedgerAccount(
            code=code,
            may_go_negative=kind == "budget_programme",
            debits_posted=0,
            credits_posted=0,
            **wanted,
        )
        try:
            async with session.begin_nested():
                session.add(account)
        except IntegrityError:
            # Opened concurrently under the same code (or the row breaks a CHECK): read again.
            account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
            if account is None:
                raise
    if any(getattr(account, name) != value for name, value in wanted.items()):
        raise AccountConflict(f"account {code} exists as a different account")
    return account


async def get_account(*, session: AsyncSession, account: str | int) -> LedgerAccount:
    """The account with this code (str) or id (int); raises UnknownAccount."""
    column = LedgerAccount.code if isinstance(account, str) else LedgerAccount.id
    found = await session.scalar(select(LedgerAccount).where(column == account))
    if found is None:
        raise UnknownAccount(f"no ledger account {account!r}")
    return found


async def balance(*, session: AsyncSession, account: str | int) -> int:
    """The account's balance as stored: credits less debits posted."""
    column = LedgerAccount.code if isinstance(account, str) else LedgerAccount.id
    row = (
        await session.execute(
            select(LedgerAccount.credits_posted - LedgerAccount.debits_posted).where(
                column == account
            )
        )
    ).first()
    if row is None:
        raise UnknownAccount(f"no ledger account {account!r}")
    return row[0]


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One transfer as an account sees it: signed amount and the balance after it."""

    transfer_id: str
    reason: str
    amount: int
    counterparty: str
    balance_after: int
    created_at: datetime
    reverses: str | None


async def statement(*, session: AsyncSession, account: str | int) -> list[StatementLine]:
    """Every transfer of the account in posting order, with a running balance."""
    target = await get_account(session=session, account=account)
    counterparty = LedgerAccount.__table__.alias("counterparty")
    reversed_ = LedgerTransfer.__table__.alias("reversed")
    rows = await session.execute(
        select(LedgerTransfer, counterparty.c.code, reversed_.c.transfer_id)
        .join(
            counterparty,
            counterparty.c.id
            == func.coalesce(
                # The account on the other side of the transfer.
                func.nullif(LedgerTransfer.debit_account_id, target.id),
                LedgerTransfer.credit_account_id,
            ),
        )
        .outerjoin(reversed_, reversed_.c.id == LedgerTransfer.reverses_transfer_id)
        .where(
            or_(
                LedgerTransfer.debit_account_id == target.id,
                LedgerTransfer.credit_account_id == target.id,
            )
        )
        .order_by(LedgerTransfer.id)
    )
    lines, running = [], 0
    for transfer, other, reverses in rows:
        signed = transfer.amount if transfer.credit_account_id == target.id else -transfer.amount
        running += signed
        lines.append(
            StatementLine(
                transfer_id=transfer.transfer_id,
                reason=transfer.reason,
                amount=signed,
                counterparty=other,
                balance_after=running,
                created_at=transfer.created_at,
                reverses=reverses,
            )
        )
    return lines


async def trial_balance(*, session: AsyncSession) -> int:
    """Sum of all debits less all credits posted to accounts; zero in a balanced ledger."""
    debits, credits = (
        await session.execute(
            select(
                func.coalesce(func.sum(LedgerAccount.debits_posted), 0),
                func.coalesce(func.sum(LedgerAccount.credits_posted), 0),
            )
        )
    ).one()
    return int(debits) - int(credits)


async def accounts_disagreeing_with_transfers(*, session: AsyncSession) -> list[str]:
    """Codes of accounts whose posted totals differ from the sums of their transfers."""
    transfers = LedgerTransfer.__table__
    debited = (
        select(transfers.c.debit_account_id.label("id"), func.sum(transfers.c.amount).label("s"))
        .group_by(transfers.c.debit_account_id)
        .subquery()
    )
    credited = (
        select(transfers.c.credit_account_id.label("id"), func.sum(transfers.c.amount).label("s"))
        .group_by(transfers.c.credit_account_id)
        .subquery()
    )
    rows = await session.execute(
        select(LedgerAccount.code)
        .outerjoin(debited, debited.c.id == LedgerAccount.id)
        .outerjoin(credited, credited.c.id == LedgerAccount.id)
        .where(
            or_(
                LedgerAccount.debits_posted != func.coalesce(debited.c.s, 0),
                LedgerAccount.credits_posted != func.coalesce(credited.c.s, 0),
            )
        )
        .order_by(LedgerAccount.code)
    )
    return list(rows.scalars())


# --- Transfers ------------------------------------------------------------------------------


async def transfer(
    *,
    session: AsyncSession,
    transfer_id: str,
    debit: str | int,
    credit: str | int,
    amount: int,
    reason: Reason | str,
    metadata: dict[str, Any] | None = None,
    family_id: int | None = None,
    person_id: int | None = None,
) -> LedgerTransfer:
    """Move `amount` tiyn from the debit to the credit account (codes or ids); idempotent.

    `family_id` and `person_id` name whom the value was spent on, for the spending view.
    """
    check_amount(amount)
    debit_account = await get_account(session=session, account=debit)
    credit_account = await get_account(session=session, account=credit)
    check_ends(debit_account, credit_account)
    row = LedgerTransfer(
        transfer_id=transfer_id,
        debit_account_id=debit_account.id,
        credit_account_id=credit_account.id,
        amount=amount,
        reason=str(reason),
        reverses_transfer_id=None,
        details=dict(metadata or {}),
        family_id=family_id,
        person_id=person_id,
    )
    if (replayed := await _replay(session=session, row=row)) is not None:
        return replayed
    check_flow(debit_account, credit_account, reason)
    return await _post(session=session, row=row, debit=debit_account, credit=credit_account)


async def reverse(
    *,
    session: AsyncSession,
    transfer_id: str,
    original_transfer_id: str,
    reason: str = REVERSAL,
    metadata: dict[str, Any] | None = None,
) -> LedgerTransfer:
    """Post the transfer that undoes `original_transfer_id`; once only, idempotent."""
    if reason not in REVERSAL_REASONS:
        raise ReasonNotAllowed(f"a reversal is for {', '.join(sorted(REVERSAL_REASONS))}")
    original = await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.transfer_id == original_transfer_id)
    )
    if original is None:
        raise UnknownTransfer(f"no transfer {original_transfer_id!r} to reverse")
    row = LedgerTransfer(
        transfer_id=transfer_id,
        debit_account_id=original.credit_account_id,
        credit_account_id=original.debit_account_id,
        amount=original.amount,
        reason=reason,
        reverses_transfer_id=original.id,
        details=dict(metadata or {}),
        # A reversal is spending undone on the same family, so it counts against it.
        family_id=original.family_id,
        person_id=original.person_id,
    )
    if (replayed := await _replay(session=session, row=row)) is not None:
        return replayed
    await _refuse_second_reversal(session=session, original=original)
    debit = await get_account(session=session, account=row.debit_account_id)
    credit = await get_account(session=session, account=row.credit_account_id)
    return await _post(session=session, row=row, debit=debit, credit=credit)


def check_amount(amount: object) -> None:
    # bool is an int in Python, and a float of tiyn is a rounding error waiting to happen.
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount(f"amount must be a whole number of tiyn above zero, not {amount!r}")


_CONTENT = (
    "debit_account_id",
    "credit_account_id",
    "amount",
    "reason",
    "reverses_transfer_id",
    "family_id",
    "person_id",
)


async def _replay(*, session: AsyncSession, row: LedgerTransfer) -> LedgerTransfer | None:
    """The transfer already posted under row's id if it has row's content, else None."""
    posted = await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.transfer_id == row.transfer_id)
    )
    if posted is None:
        return None
    same = all(getattr(posted, name) == getattr(row, name) for name in _CONTENT)
    if not same or posted.details != row.details:
        raise TransferIdReused(f"transfer id {row.transfer_id!r} was used for another transfer")
    return posted


async def _refuse_second_reversal(*, session: AsyncSession, original: LedgerTransfer) -> None:
    """Raise ReversedAlready if a transfer already reverses `original`."""
    earlier = await session.scalar(
        select(LedgerTransfer.transfer_id).where(LedgerTransfer.reverses_transfer_id == original.id)
    )
    if earlier is not None:
        raise ReversedAlready(f"{original.transfer_id!r} was reversed by {earlier!r}")


async def _post(
    *,
    session: AsyncSession,
    row: LedgerTransfer,
    debit: LedgerAccount,
    credit: LedgerAccount,
) -> LedgerTransfer:
    """Insert the transfer and post it to both accounts, all or nothing."""
    try:
        # A savepoint, so that a refused transfer leaves nothing behind and the caller's
        # transaction stays usable.
        async with session.begin_nested():
            # The row goes in first: a concurrent post of the same transfer id (or a second
            # reversal of the same transfer) waits on the unique index and then fails here,
            # before it has touched a balance.
            session.add(row)
            await session.flush()
            moves = account_moves([(debit.id, credit.id, row.amount)])
            totals = await SessionLedger(session).move_totals(moves)
            check_moved(len(totals), moves, f"{debit.code} cannot pay {row.amount} tiyn")
    except IntegrityError:
        # Lost a race on the transfer id or on the reversal: report it as the winner left it.
        if (replayed := await _replay(session=session, row=row)) is not None:
            return replayed
        if row.reverses_transfer_id is not None:
            original = await session.get(LedgerTransfer, row.reverses_transfer_id)
            if original is not None:
                await _refuse_second_reversal(session=session, original=original)
        raise
    # Keep the loaded accounts in step with their rows, now that the post stands.
    for account in (debit, credit):
        set_committed_value(account, "debits_posted", totals[account.id][0])
        set_committed_value(account, "credits_posted", totals[account.id][1])
    return row


# --- The posting primitive -----------------------------------------------------------------
#
# Every path that posts new transfers runs `post_transfers`: the ORM (`post_new_transfers`,
# SQLite and PostgreSQL) and the driver (`wallet.ledger_driver`, PostgreSQL: a group's
# payments), each through a `LedgerStore` that does the I/O and decides nothing. The hot
# path's single statement (`wallet.ledger_driver.TRANSFER_CTES`) does the same I/O inside
# one statement and then refuses through the same checks (`check_ends`, `check_flow`,
# `check_moved`); `transfer` and `reverse` (idempotent, with replays) use them too.


@dataclass(frozen=True, slots=True)
class NewTransfer:
    """A transfer to post: accounts by code, an id never used before."""

    transfer_id: str
    debit: str
    credit: str
    amount: int
    reason: Reason | str
    family_id: int | None = None
    person_id: int | None = None
    metadata: dict[str, Any] | None = None


class AccountEnd(FlowEnd, Protocol):
    """What posting reads of an account: its id, and what `check_flow` reads."""

    id: int


# An account's (id, debit, credit): what a post adds to its totals.
Move = tuple[int, int, int]


class LedgerStore(Protocol):
    """The I/O of `post_transfers`, on an ORM session or a driver connection. No rule lives
    here: the store locks, inserts and moves; `post_transfers` decides."""

    async def lock_accounts(self, codes: list[str]) -> dict[str, AccountEnd]:
        """The accounts with these codes, locked in primary-key order until the transaction
        ends (the order every path locks in, so no two deadlock); a missing one is absent."""
        ...

    async def insert_transfers(self, rows: list[dict[str, Any]]) -> None:
        """Insert the rows (`transfer_row`); TransferIdReused if an id is taken."""
        ...

    async def move_totals(self, moves: list[Move]) -> dict[int, tuple[int, int]]:
        """Add each move to its account's totals where `floor_condition` allows it; the new
        (debits, credits) of the accounts that moved."""
        ...


# The mapped classes' tables (SQLAlchemy types `__table__` as a FromClause).
_TRANSFERS = cast(Table, LedgerTransfer.__table__)
_ACCOUNTS = cast(Table, LedgerAccount.__table__)
# The columns of a transfer row, as the table defines them (the id is the database's).
TRANSFER_COLUMNS = tuple(c.name for c in _TRANSFERS.c if c.name != "id")


def transfer_row(
    item: NewTransfer, debit_id: int, credit_id: int, stamp: datetime
) -> dict[str, Any]:
    """The `ledger_transfers` row of a new transfer, by column name: the one place a
    transfer's columns are filled, for every path's INSERT."""
    return {
        "transfer_id": item.transfer_id,
        "debit_account_id": debit_id,
        "credit_account_id": credit_id,
        "amount": item.amount,
        "reason": str(item.reason),
        "reverses_transfer_id": None,
        "family_id": item.family_id,
        "person_id": item.person_id,
        "metadata": dict(item.metadata or {}),
        "created_at": stamp,
    }


# A column added to the table must be filled here too, or every path would miss it.
assert tuple(transfer_row(NewTransfer("", "", "", 1, ""), 0, 0, utcnow())) == TRANSFER_COLUMNS


def check_ends(
    debit: AccountEnd | None,
    credit: AccountEnd | None,
    *,
    debit_code: str | int = "?",
    credit_code: str | int = "?",
) -> None:
    """The accounts' refusals, in the ledger's order: an unknown debit, then credit, then
    one account on both sides."""
    if debit is None:
        raise UnknownAccount(f"no ledger account {debit_code!r}")
    if credit is None:
        raise UnknownAccount(f"no ledger account {credit_code!r}")
    if debit.id == credit.id:
        raise SameAccount(f"{debit.code} cannot pay itself")


def account_moves(transfers: list[tuple[int, int, int]]) -> list[Move]:
    """What (debit id, credit id, amount) transfers add to each account, in primary-key order
    (the order accounts are updated in, on every path)."""
    debits: dict[int, int] = {}
    credits: dict[int, int] = {}
    for debit, credit, amount in transfers:
        debits[debit] = debits.get(debit, 0) + amount
        credits[credit] = credits.get(credit, 0) + amount
    return [(i, debits.get(i, 0), credits.get(i, 0)) for i in sorted(debits.keys() | credits)]


def check_moved(moved: int, moves: list[Move], what: str) -> None:
    """INSUFFICIENT_FUNDS unless all `moves` were made (`moved` accounts moved): the refusal
    of the overdraft rule (`floor_condition`, which the UPDATE applied), on every path."""
    if moved != len(moves):
        raise InsufficientFunds(what)


async def post_transfers(store: LedgerStore, transfers: list[NewTransfer]) -> None:
    """THE posting primitive: post transfers whose ids are fresh by construction, all or
    nothing, in three statements whatever their number.

    For callers that have just inserted, in the same transaction, a row unique per transfer
    id (a meal unique per child, day and meal type): no replay look-up is needed, and a reused
    id is TRANSFER_ID_REUSED. The ledger's order of refusals: the amounts, the accounts
    (read and locked in one statement, in primary-key order), the ids (the rows go in before
    the flows are checked, so a used id is refused as such whatever else is wrong), the flows
    and their reasons, the money (one conditional UPDATE per account under
    `floor_condition`). Any refusal may come after a write: the caller's transaction (or
    savepoint) must be rolled back, as after any ledger refusal.
    """
    if not transfers:
        return
    for item in transfers:
        check_amount(item.amount)
    accounts = await store.lock_accounts(
        sorted({code for item in transfers for code in (item.debit, item.credit)})
    )
    for item in transfers:
        check_ends(
            accounts.get(item.debit), accounts.get(item.credit),
            debit_code=item.debit, credit_code=item.credit,
        )  # fmt: skip
    stamp = utcnow()
    await store.insert_transfers(
        [
            transfer_row(item, accounts[item.debit].id, accounts[item.credit].id, stamp)
            for item in transfers
        ]
    )
    for item in transfers:
        check_flow(accounts[item.debit], accounts[item.credit], item.reason)
    moves = account_moves(
        [(accounts[i.debit].id, accounts[i.credit].id, i.amount) for i in transfers]
    )
    moved = await store.move_totals(moves)
    check_moved(len(moved), moves, "a debit of the batch would overdraw its account")


class SessionLedger:
    """`LedgerStore` on an ORM session (SQLite and PostgreSQL)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_accounts(self, codes: list[str]) -> dict[str, AccountEnd]:
        rows = await self._session.scalars(
            select(LedgerAccount)
            .where(LedgerAccount.code.in_(codes))
            .order_by(LedgerAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {account.code: account for account in rows}

    async def insert_transfers(self, rows: list[dict[str, Any]]) -> None:
        try:
            await self._session.execute(insert(_TRANSFERS), rows)
        except IntegrityError as exc:
            raise TransferIdReused("a transfer id of the batch was used before") from exc

    async def move_totals(self, moves: list[Move]) -> dict[int, tuple[int, int]]:
        # A statement carrying VALUES is compiled anew each time; for the usual one or two
        # accounts the cached per-account UPDATE is cheaper than that.
        if len(moves) > 2 and self._session.get_bind().dialect.name == "postgresql":
            return await self._move_at_once(moves)
        moved = {}
        for account_id, debit, credit in moves:
            totals = await self._move_one(account_id, debit, credit)
            if totals is not None:
                moved[account_id] = totals
        return moved

    async def _move_one(self, account_id: int, debit: int, credit: int) -> tuple[int, int] | None:
        # One conditional UPDATE reads and writes the balance under the row's lock, so two
        # concurrent debits cannot both spend the same tiyn, on PostgreSQL as on SQLite
        # (where SELECT ... FOR UPDATE is silently ignored).
        result = await self._session.execute(
            update(LedgerAccount)
            .where(
                LedgerAccount.id == account_id,
                floor_condition(LedgerAccount.__table__, debit=debit, credit=credit),
            )
            .values(
                debits_posted=LedgerAccount.debits_posted + debit,
                credits_posted=LedgerAccount.credits_posted + credit,
            )
            .returning(LedgerAccount.debits_posted, LedgerAccount.credits_posted)
            .execution_options(synchronize_session=False)
        )
        totals = result.first()
        return None if totals is None else (totals.debits_posted, totals.credits_posted)

    async def _move_at_once(self, moves: list[Move]) -> dict[int, tuple[int, int]]:
        moving = values(
            column("account_id", BigInteger),
            column("debit", BigInteger),
            column("credit", BigInteger),
            name="moving",
        ).data(moves)
        accounts = _ACCOUNTS
        result = await self._session.execute(
            accounts.update()
            .where(
                accounts.c.id == moving.c.account_id,
                floor_condition(accounts, debit=moving.c.debit, credit=moving.c.credit),
            )
            .values(
                debits_posted=accounts.c.debits_posted + moving.c.debit,
                credits_posted=accounts.c.credits_posted + moving.c.credit,
            )
            .returning(accounts.c.id, accounts.c.debits_posted, accounts.c.credits_posted)
        )
        return {row.id: (row.debits_posted, row.credits_posted) for row in result}


async def post_new_transfers(*, session: AsyncSession, transfers: list[NewTransfer]) -> None:
    """`post_transfers` on the session's transaction."""
    await post_transfers(SessionLedger(session), transfers)
