"""The bank's side of payments: a statement of the payout account settles what the bank did.

Each booked line of a statement (wallet.statements) is matched to the payment its end-to-end
id names (our payment key) and recorded once, keyed by the account and the bank's reference,
so importing the same statement again, or one that overlaps it, changes nothing:

* a debit of the payment's amount books it `paid` (from `ordered` or `sent`), and the offer it
  came from reaches `paid`, at the time the bank booked it;
* a credit of the payment's amount is the money coming back: the payment is `returned`, its
  ledger transfer reversed by a new reversing transfer (the programme's budget gets the money
  back; nothing is edited), the offer leaves `paid` if no other payment of it was booked, and
  the recipient is told by SMS from 1414 through the outbox;
* anything else is flagged for the operator and changes no payment: `unknown_reference` (no
  payment has that key), `wrong_amount` (another amount or currency than ordered),
  `paid_twice` (a second debit for a payment already paid) and `unexpected` (money moved for
  a payment that was refused, or came back twice).

A payment the bank's API took but no statement booked stays `sent`:
`unreconciled_payments` lists those older than a number of days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.orm import as_utc
from familymap.tables import Person
from wallet import ledger
from wallet.bank import mask_iban
from wallet.bank_tables import FLAGS, BankStatementEntry
from wallet.messages import sms_text
from wallet.offer_tables import Payment
from wallet.outbox import enqueue
from wallet.payments import PAYMENT_RETURNED, mark_offer_paid, unmark_offer_paid
from wallet.statements import Statement, StatementLine

ALREADY_IMPORTED = "already_imported"
_PAYABLE = ("ordered", "sent")
_RETURNABLE = ("ordered", "sent", "paid")


@dataclass(frozen=True, slots=True)
class ReportLine:
    """What one statement line did (or, imported before, had done)."""

    reference: str
    booked_on: str
    direction: str
    amount_tiyn: int
    end_to_end_id: str | None
    outcome: str
    payment_id: int | None
    detail: str | None


@dataclass
class ReconcileReport:
    """The lines of one import, in statement order, and the entries not booked yet."""

    format: str
    lines: list[ReportLine] = field(default_factory=list)
    not_booked: int = 0

    def count(self, outcome: str) -> int:
        """How many lines had this outcome."""
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def flagged(self) -> list[ReportLine]:
        """The lines someone must look at."""
        return [line for line in self.lines if line.outcome in FLAGS]

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return {
            "format": self.format,
            "not_booked": self.not_booked,
            "counts": {
                outcome: self.count(outcome)
                for outcome in ("paid", "returned", *FLAGS, ALREADY_IMPORTED)
            },
            "lines": [asdict(line) for line in self.lines],
        }


@dataclass(frozen=True, slots=True)
class _Decision:
    outcome: str
    payment: Payment | None
    detail: str | None = None


async def reconcile_statement(
    *, session: AsyncSession, statement: Statement, now: datetime
) -> ReconcileReport:
    """Settle payments from a statement's lines; a line imported before changes nothing."""
    report = ReconcileReport(format=statement.format, not_booked=statement.not_booked)
    for line in statement.lines:
        report.lines.append(await _reconcile_line(session=session, line=line, now=now))
    return report


async def _reconcile_line(
    *, session: AsyncSession, line: StatementLine, now: datetime
) -> ReportLine:
    known = await session.scalar(
        select(BankStatementEntry).where(
            BankStatementEntry.account == line.account,
            BankStatementEntry.reference == line.reference,
        )
    )
    if known is not None:
        return _report(line, ALREADY_IMPORTED, known.payment_id, f"was {known.outcome}")
    decision = await _decide(session=session, line=line)
    entry = BankStatementEntry(
        account=line.account,
        reference=line.reference,
        statement_id=line.statement_id,
        booked_on=line.booked_on,
        direction=line.direction,
        amount_tiyn=line.amount_tiyn,
        currency=line.currency,
        end_to_end_id=line.end_to_end_id,
        return_reason=line.return_reason,
        payment_id=decision.payment.id if decision.payment is not None else None,
        outcome=decision.outcome,
        detail=decision.detail,
        imported_at=now,
    )
    # The entry first: a concurrent import of the same statement stops here, before acting.
    try:
        async with session.begin_nested():
            session.add(entry)
            await session.flush()
    except IntegrityError:
        return _report(line, ALREADY_IMPORTED, entry.payment_id, "imported concurrently")
    if decision.outcome == "paid":
        assert decision.payment is not None  # _decide names the payment a line pays
        await _book_paid(session=session, payment=decision.payment, line=line)
    elif decision.outcome == "returned":
        assert decision.payment is not None  # and the payment a line returns
        await _book_returned(session=session, payment=decision.payment, line=line, now=now)
    return _report(line, decision.outcome, entry.payment_id, decision.detail)


def _report(
    line: StatementLine, outcome: str, payment_id: int | None, detail: str | None
) -> ReportLine:
    return ReportLine(
        reference=line.reference,
        booked_on=line.booked_on.isoformat(),
        direction=line.direction,
        amount_tiyn=line.amount_tiyn,
        end_to_end_id=line.end_to_end_id,
        outcome=outcome,
        payment_id=payment_id,
        detail=detail,
    )


async def _decide(*, session: AsyncSession, line: StatementLine) -> _Decision:
    payment = None
    if line.end_to_end_id is not None:
        # Locked, so that two imports naming the same payment decide one after the other.
        payment = await session.scalar(
            select(Payment)
            .where(Payment.payment_key == line.end_to_end_id)
            .with_for_update()
            # Fresh from the database: an earlier line of this import may have settled it.
            .execution_options(populate_existing=True)
        )
    if payment is None:
        return _Decision("unknown_reference", None, "no payment has this reference")
    if line.currency != "KZT" or line.amount_tiyn != payment.amount_tiyn:
        return _Decision(
            "wrong_amount",
            payment,
            f"{line.amount_tiyn} tiyn {line.currency}, ordered {payment.amount_tiyn} tiyn KZT",
        )
    if line.direction == "debit":
        if payment.state in _PAYABLE:
            return _Decision("paid", payment)
        if payment.state == "paid":
            return _Decision("paid_twice", payment, "the payment was booked paid before")
        return _Decision(
            "unexpected",
            payment,
            f"paid out, but the payment is {payment.state} and reversed in the ledger",
        )
    if payment.state in _RETURNABLE:
        return _Decision("returned", payment, line.return_reason)
    return _Decision(
        "unexpected", payment, f"money came back for a payment that is {payment.state}"
    )


def _settled_at(payment: Payment, line: StatementLine) -> datetime:
    # A statement without a booking time gives the day only: the money cannot have left before
    # the order did, so the later of the two is the truest time we have.
    sent = as_utc(payment.sent_at or payment.ordered_at)
    return max(as_utc(line.booked_moment), sent)


async def _book_paid(*, session: AsyncSession, payment: Payment, line: StatementLine) -> None:
    paid_at = _settled_at(payment, line)
    await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.state.in_(_PAYABLE))
        .values(state="paid", settled_at=paid_at)
        .execution_options(synchronize_session=False)
    )
    await mark_offer_paid(session=session, assignment_id=payment.assignment_id, now=paid_at)


async def _book_returned(
    *, session: AsyncSession, payment: Payment, line: StatementLine, now: datetime
) -> None:
    returned_at = _settled_at(payment, line)
    await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.state.in_(_RETURNABLE))
        .values(state="returned", settled_at=returned_at)
        .execution_options(synchronize_session=False)
    )
    # A new transfer that undoes the payment: the programme's budget has the money back.
    await ledger.reverse(
        session=session,
        transfer_id=f"{payment.transfer_id}:returned",
        original_transfer_id=payment.transfer_id,
        reason=PAYMENT_RETURNED,
        metadata={"bank_reference": line.reference, "return_reason": line.return_reason or ""},
    )
    await unmark_offer_paid(
        session=session,
        assignment_id=payment.assignment_id,
        now=returned_at,
        detail={"payment_returned": payment.payment_key, "reason": line.return_reason or ""},
    )
    person = await session.get(Person, payment.person_id)
    if person is not None and person.phone:
        await enqueue(
            session=session,
            message_key=f"payment:{payment.id}:returned",
            channel="sms",
            recipient=person.phone,
            body=sms_text(
                "payment_returned",
                language=person.language,
                programme=payment.programme,
                amount_tiyn=payment.amount_tiyn,
            ),
        )


@dataclass(frozen=True, slots=True)
class Unreconciled:
    """A payment the bank has not booked yet, and how long it has waited."""

    payment_id: int
    payment_key: str
    programme: str
    amount_tiyn: int
    iban_masked: str
    state: str
    ordered_at: datetime
    sent_at: datetime | None
    bank_reference: str | None
    days_waiting: int


async def unreconciled_payments(
    *, session: AsyncSession, older_than_days: int, now: datetime, limit: int | None = None
) -> list[Unreconciled]:
    """Payments ordered more than `older_than_days` ago that no statement has booked yet."""
    cutoff = now - timedelta(days=older_than_days)
    rows = await session.scalars(
        select(Payment)
        .where(Payment.state.in_(_PAYABLE), Payment.ordered_at < cutoff)
        .order_by(Payment.ordered_at, Payment.id)
        .limit(limit)
    )
    return [
        Unreconciled(
            payment_id=p.id,
            payment_key=p.payment_key,
            programme=p.programme,
            amount_tiyn=p.amount_tiyn,
            iban_masked=mask_iban(p.iban),
            state=p.state,
            ordered_at=as_utc(p.ordered_at),
            sent_at=as_utc(p.sent_at) if p.sent_at else None,
            bank_reference=p.bank_reference,
            days_waiting=(now - as_utc(p.ordered_at)).days,
        )
        for p in rows
    ]


async def flagged_entries(*, session: AsyncSession, limit: int = 500) -> list[BankStatementEntry]:
    """Statement entries flagged for the operator, newest first."""
    return list(
        await session.scalars(
            select(BankStatementEntry)
            .where(BankStatementEntry.outcome.in_(FLAGS))
            .order_by(BankStatementEntry.id.desc())
            .limit(limit)
        )
    )
