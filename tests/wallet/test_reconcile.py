"""The bank's side of payments: accepted by the bank's API is `sent`, and only the bank's
statement makes a payment `paid` or `returned` (wallet.reconcile, wallet.statements)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import pytest
from sqlalchemy import func, select

from familymap.orm import as_utc, utcnow
from tests.wallet.offer_builders import FATHER_PHONE, evaluate, later, newborn_household
from wallet import ledger
from wallet.bank import LogBank
from wallet.bank_tables import BankStatementEntry
from wallet.funnel import offer_funnel
from wallet.offer_tables import Offer, OfferTransition, Payment
from wallet.offers import answer_offer, offer_new_entitlements
from wallet.outbox import relay_once
from wallet.outbox_tables import OutboxMessage
from wallet.payments import settle_payments
from wallet.reconcile import ALREADY_IMPORTED, reconcile_statement, unreconciled_payments
from wallet.spending import family_payments
from wallet.statements import StatementError, parse_statement
from wallet.tables import LedgerTransfer

STATEMENTS = Path(__file__).parent / "statements"
BOOKED_AT = datetime(2026, 11, 18, 6, 30, tzinfo=UTC)  # 11:30 in Astana


def statement(name: str, payment: Payment | None = None, **extra: str):
    """A fixture statement with the payment's key and amount filled in, parsed."""
    amount = payment.amount_tiyn if payment else 0
    text = Template((STATEMENTS / name).read_text()).substitute(
        key=payment.payment_key if payment else "",
        amount=f"{amount // 100}.{amount % 100:02d}",
        amount_mt940=f"{amount // 100},{amount % 100:02d}",
        booked_at=BOOKED_AT.isoformat(),
        **extra,
    )
    return parse_statement(text.encode())


def session_ctx(session):
    """A session factory handing out the test's own session (the relay opens and closes it)."""

    class _Borrowed:
        async def __aenter__(self):
            return session

        async def __aexit__(self, *exc):
            return False

    return _Borrowed()


@pytest.fixture
async def birth(session):
    """The newborn household's birth benefit accepted: its payment ordered, then sent."""
    household = await newborn_household(session)
    run_id = await evaluate(session, household)
    await offer_new_entitlements(session=session, run_id=run_id, now=utcnow())
    offer = await session.scalar(
        select(Offer).where(
            Offer.family_id == household.family.id, Offer.programme == "BIRTH_BENEFIT"
        )
    )
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=household.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    await session.commit()
    await relay_once(
        session_factory=lambda: session_ctx(session), gateway=LogBank(), channel="bank"
    )
    await settle_payments(session=session)
    payment = await session.scalar(select(Payment).where(Payment.family_id == offer.family_id))
    return offer, payment, household


async def reconcile(session, parsed, *, now: datetime | None = None):
    report = await reconcile_statement(session=session, statement=parsed, now=now or utcnow())
    await session.flush()
    return report


async def refreshed(session, *rows):
    for row in rows:
        await session.refresh(row)


async def test_the_bank_api_taking_the_order_makes_the_payment_sent_not_paid(session, birth):
    # Given the birth benefit's order relayed to the bank and the settlement job run (fixture)
    offer, payment, _ = birth
    await refreshed(session, offer, payment)
    # Then the payment is sent, with the bank's reference, and neither it nor the offer is paid
    assert payment.state == "sent"
    assert payment.bank_reference is not None and payment.bank_reference.startswith("dev-")
    assert payment.sent_at is not None and payment.settled_at is None
    assert offer.state == "assigned" and offer.paid_at is None
    # and the operator's funnel counts no payment
    (row,) = [r for r in await offer_funnel(session=session, since=later(-1), until=later(1), now=later())
              if r.programme == "BIRTH_BENEFIT"]  # fmt: skip
    assert row.paid == 0 and row.median_seconds_to_payment is None
    # and the family's payment list says the bank has not confirmed it
    (listed,) = await family_payments(session=session, family_ids=[offer.family_id])
    assert listed.status == "sent" and listed.confirmed_at is None


async def test_a_booked_debit_makes_the_payment_and_the_offer_paid(session, birth):
    offer, payment, _ = birth
    # When the day's statement books the payment out
    report = await reconcile(session, statement("camt053_paid.xml", payment))
    # Then the payment is paid at the time the bank booked it, and so is the offer
    assert [(line.outcome, line.payment_id) for line in report.lines] == [("paid", payment.id)]
    await refreshed(session, offer, payment)
    assert payment.state == "paid" and as_utc(payment.settled_at) == BOOKED_AT
    assert offer.state == "paid" and as_utc(offer.paid_at) == BOOKED_AT
    # and the funnel counts it, with the wait from the offer to the bank's booking
    (row,) = [r for r in await offer_funnel(session=session, since=later(-1), until=later(1), now=later())
              if r.programme == "BIRTH_BENEFIT"]  # fmt: skip
    assert row.paid == 1
    expected = (BOOKED_AT - as_utc(offer.created_at)).total_seconds()
    assert row.median_seconds_to_payment == pytest.approx(expected, abs=1)
    # and the family's payment list shows it confirmed
    (listed,) = await family_payments(session=session, family_ids=[offer.family_id])
    assert listed.status == "paid" and as_utc(listed.confirmed_at) == BOOKED_AT


async def test_importing_the_same_statement_again_changes_nothing(session, birth):
    _offer, payment, _ = birth
    parsed = statement("camt053_paid.xml", payment)
    await reconcile(session, parsed)
    counts = await _counts(session)
    # When the same statement is imported again
    again = await reconcile(session, parsed, now=utcnow() + timedelta(hours=1))
    # Then every line is known already and nothing changed
    assert [line.outcome for line in again.lines] == [ALREADY_IMPORTED]
    assert again.lines[0].detail == "was paid"
    assert await _counts(session) == counts


async def _counts(session) -> tuple[int, ...]:
    return tuple(
        [
            await session.scalar(select(func.count()).select_from(table))
            for table in (BankStatementEntry, LedgerTransfer, OfferTransition, OutboxMessage)
        ]
    )


async def test_a_returned_payment_is_reversed_and_the_family_told(session, birth):
    offer, payment, _household = birth
    amount = payment.amount_tiyn
    await reconcile(session, statement("camt053_paid.xml", payment))
    # When the next day's statement shows the money back (the account was closed)
    report = await reconcile(session, statement("camt053_returned.xml", payment))
    # Then the payment is returned
    assert [(line.outcome, line.detail) for line in report.lines] == [("returned", "AC04")]
    await refreshed(session, offer, payment)
    assert payment.state == "returned"
    # and reversed in the ledger by a new transfer, the original left as it was
    original = await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.transfer_id == payment.transfer_id)
    )
    reversal = await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.reverses_transfer_id == original.id)
    )
    assert original.amount == amount and reversal.amount == amount
    assert reversal.reason == "PAYMENT_RETURNED"
    assert reversal.details["bank_reference"] == "KZB2611190000042"
    # so the programme's budget has the money back and the books balance
    assert await ledger.balance(session=session, account="programme:BIRTH_BENEFIT") == 0
    assert await ledger.balance(session=session, account="payout:bank") == 0
    assert await ledger.trial_balance(session=session) == 0
    # and the offer is no longer paid, with the return in its history
    assert offer.state == "assigned" and offer.paid_at is None
    last = await session.scalar(
        select(OfferTransition)
        .where(OfferTransition.offer_id == offer.id)
        .order_by(OfferTransition.id.desc())
        .limit(1)
    )
    assert (last.from_state, last.to_state, last.detail["reason"]) == ("paid", "assigned", "AC04")
    # and the father is told by SMS from 1414
    sms = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"payment:{payment.id}:returned")
    )
    assert sms.channel == "sms" and sms.recipient == FATHER_PHONE
    assert sms.body.startswith("1414:") and "банк вернул" in sms.body and "IBAN" in sms.body
    # and the family's payment list shows it returned
    (listed,) = await family_payments(session=session, family_ids=[offer.family_id])
    assert listed.status == "returned" and listed.reversed
    # When the return is imported again, then nothing is reversed or sent twice
    counts = await _counts(session)
    again = await reconcile(session, statement("camt053_returned.xml", payment))
    assert [line.outcome for line in again.lines] == [ALREADY_IMPORTED]
    assert await _counts(session) == counts


async def test_a_return_of_a_payment_never_booked_paid_is_reversed_too(session, birth):
    # Given a payment the bank's API took, and no statement booked it out
    offer, payment, _ = birth
    # When the statement shows it returned
    report = await reconcile(session, statement("camt053_returned.xml", payment))
    # Then it is returned and reversed, and the offer was never paid
    assert [line.outcome for line in report.lines] == ["returned"]
    await refreshed(session, offer, payment)
    assert payment.state == "returned" and offer.state == "assigned"
    assert await ledger.balance(session=session, account="programme:BIRTH_BENEFIT") == 0
    assert await ledger.trial_balance(session=session) == 0


async def test_what_does_not_match_is_flagged_and_pays_nothing_twice(session, birth):
    _offer, payment, household = birth
    other = await _second_payment(session, household)
    # When a statement books the payment twice, the other at a wrong amount, an unknown
    # reference, and one entry still pending
    report = await reconcile(
        session, statement("camt053_mismatches.xml", payment, other_key=other.payment_key)
    )
    # Then the first booking pays, and the rest are flagged
    assert [(line.outcome, line.payment_id) for line in report.lines] == [
        ("paid", payment.id),
        ("paid_twice", payment.id),
        ("wrong_amount", other.id),
        ("unknown_reference", None),
    ]
    assert report.not_booked == 1
    assert len(report.flagged) == 3
    assert report.lines[2].detail == f"100 tiyn KZT, ordered {other.amount_tiyn} tiyn KZT"
    # and the payment at a wrong amount is left as it was, waiting
    await refreshed(session, payment, other)
    assert (payment.state, other.state) == ("paid", "sent")
    # and every line is kept with its outcome, for the operator
    stored = (
        await session.scalars(select(BankStatementEntry).order_by(BankStatementEntry.id))
    ).all()
    assert [entry.outcome for entry in stored] == [
        "paid", "paid_twice", "wrong_amount", "unknown_reference",
    ]  # fmt: skip


async def _second_payment(session, household) -> Payment:
    """The childcare benefit accepted too: its first month ordered and sent."""
    offer = await session.scalar(
        select(Offer).where(
            Offer.family_id == household.family.id, Offer.programme == "CHILDCARE_TO_1_5"
        )
    )
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=household.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    await session.commit()
    await relay_once(
        session_factory=lambda: session_ctx(session), gateway=LogBank(), channel="bank"
    )
    await settle_payments(session=session)
    return await session.scalar(
        select(Payment).where(Payment.programme == "CHILDCARE_TO_1_5").order_by(Payment.id)
    )


async def test_money_moving_for_a_refused_payment_is_flagged(session, birth):
    # Given a payment whose order the bank refused (failed, reversed in the ledger)
    offer, payment, _ = birth
    payment.state = "failed"
    await session.flush()
    # When a statement books it out all the same
    report = await reconcile(session, statement("camt053_paid.xml", payment))
    # Then it is flagged, and the payment and the offer are left as they were
    assert [line.outcome for line in report.lines] == ["unexpected"]
    await refreshed(session, offer, payment)
    assert payment.state == "failed" and offer.state == "assigned"


async def test_unreconciled_lists_payments_no_statement_booked_after_n_days(session, birth):
    _offer, payment, household = birth
    other = await _second_payment(session, household)
    await reconcile(session, statement("camt053_paid.xml", payment))
    now = as_utc(other.ordered_at) + timedelta(days=5)
    # When the operator asks for payments waiting more than 3 days, then 7
    waiting = await unreconciled_payments(session=session, older_than_days=3, now=now)
    none = await unreconciled_payments(session=session, older_than_days=7, now=now)
    # Then only the one the bank has not booked is listed, with its IBAN masked
    assert [(row.payment_id, row.state, row.days_waiting) for row in waiting] == [
        (other.id, "sent", 5)
    ]
    assert "*" in waiting[0].iban_masked and waiting[0].iban_masked != other.iban
    assert none == []


def test_a_batch_entry_is_a_line_per_transaction():
    parsed = parse_statement((STATEMENTS / "camt053_batch.xml").read_bytes())
    assert [(line.reference, line.amount_tiyn, line.end_to_end_id) for line in parsed.lines] == [
        ("KZB2611210000007/T1", 164_350, "assignment:1:2026-11"),
        ("KZB2611210000007/2", 1, None),
    ]
    assert all(line.direction == "debit" for line in parsed.lines)


async def test_an_mt940_statement_pays_and_returns_like_camt053(session, birth):
    _offer, payment, _ = birth
    # When an MT940 statement books the payment out, and back (a reversal of the debit)
    parsed = statement("mt940_paid.txt", payment)
    report = await reconcile(session, parsed)
    # Then the payment is paid, then returned, as with camt.053
    assert parsed.format == "MT940"
    assert [(line.outcome, line.reference) for line in report.lines] == [
        ("paid", "KZB2611180000001"),
        ("returned", "KZB2611180000002"),
    ]
    assert report.lines[1].detail == "AC04"
    await refreshed(session, payment)
    assert payment.state == "returned"
    assert await ledger.trial_balance(session=session) == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"<Document><BkToCstmrStmt></BkToCstmrStmt></Document>",
        b"<Document",
        # Entity expansion ("billion laughs") and external entities are refused, not expanded.
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<Document><BkToCstmrStmt><Stmt><Id>&b;</Id></Stmt></BkToCstmrStmt></Document>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Document><BkToCstmrStmt><Stmt><Id>&x;</Id></Stmt></BkToCstmrStmt></Document>",
    ],
)
def test_a_statement_that_cannot_be_read_is_refused_with_a_code(data):
    with pytest.raises(StatementError) as refused:
        parse_statement(data)
    assert refused.value.code == "INVALID_STATEMENT"


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("0.01", "0.001", "whole number of tiyn"),
        ("0.01", "-1.00", "whole number of tiyn"),
        ("0.01", "1e30", "more than any payment"),
        ("<AcctSvcrRef>T1<", f"<AcctSvcrRef>{'T' * 200}<", "reference longer than 128"),
        ("<CdtDbtInd>DBIT<", "<CdtDbtInd>X<", "not DBIT or CRDT"),
        ("<AcctSvcrRef>KZB2611210000007</AcctSvcrRef>", "", "no bank reference"),
    ],
)
def test_a_line_the_books_cannot_hold_is_refused(old, new, why):
    text = (STATEMENTS / "camt053_batch.xml").read_text().replace(old, new)
    with pytest.raises(StatementError, match=why):
        parse_statement(text.encode())
