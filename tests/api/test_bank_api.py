"""The bank's side through the API: a citizen's payments say what the bank confirmed, and
operators list the payments no statement has booked."""

from __future__ import annotations

from sqlalchemy import select

from app.auth import Role
from familymap.orm import utcnow
from tests.wallet.offer_builders import FATHER_IIN, evaluate, newborn_household
from wallet.offer_tables import Offer, Payment
from wallet.offers import answer_offer, offer_new_entitlements
from wallet.outbox_tables import OutboxMessage
from wallet.payments import settle_payments
from wallet.reconcile import reconcile_statement
from wallet.statements import Statement, StatementLine

PAYMENTS = "{ me { payments { edges { node { amountTiyn status confirmedAt reversed } } } } }"
UNRECONCILED = """
query UnreconciledPayments($olderThanDays: Int!) {
  unreconciledPayments(olderThanDays: $olderThanDays) {
    paymentId paymentKey programme amountTiyn ibanMasked state daysWaiting
  }
}
"""


async def sent_birth_payment(session) -> Payment:
    """The newborn household's birth benefit accepted, and its order taken by the bank's API."""
    household = await newborn_household(session)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    offer = await session.scalar(
        select(Offer).where(
            Offer.family_id == household.family.id, Offer.programme == "BIRTH_BENEFIT"
        )
    )
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=household.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    payment = await session.scalar(select(Payment).where(Payment.family_id == offer.family_id))
    order = await session.get(OutboxMessage, payment.order_message_id)
    order.status, order.sent_at, order.gateway_message_id = "sent", utcnow(), "bank-1"
    await session.flush()
    await settle_payments(session=session)
    return payment


async def test_a_citizen_sees_a_payment_sent_until_the_bank_books_it(gql, token_for, session):
    # Given the father's birth benefit taken by the bank's API
    payment = await sent_birth_payment(session)
    father = token_for(Role.CITIZEN, FATHER_IIN)
    # Then his payments show it sent, not confirmed
    before = (await gql(PAYMENTS, token=father))["data"]["me"]["payments"]["edges"]
    assert [edge["node"]["status"] for edge in before] == ["SENT"]
    assert before[0]["node"]["confirmedAt"] is None
    # When the bank's statement books it
    booked_at = utcnow()
    line = StatementLine(
        statement_id="S1", account="KZ12125KZT1001300335", reference="R1",
        booked_on=booked_at.date(), booked_at=booked_at, direction="debit",
        amount_tiyn=payment.amount_tiyn, currency="KZT", end_to_end_id=payment.payment_key,
        return_reason=None,
    )  # fmt: skip
    await reconcile_statement(
        session=session, statement=Statement(format="camt.053", lines=(line,)), now=booked_at
    )
    await session.flush()
    # Then it shows paid, with the bank's time
    after = (await gql(PAYMENTS, token=father))["data"]["me"]["payments"]["edges"]
    assert [edge["node"]["status"] for edge in after] == ["PAID"]
    assert after[0]["node"]["confirmedAt"] is not None


async def test_operators_list_the_payments_no_statement_booked(gql, token_for, session):
    # Given a payment the bank's API took and no statement booked
    payment = await sent_birth_payment(session)
    operator = token_for(Role.OPERATOR, "op-1")
    # When an operator lists those older than 0 days, then 3
    now = (await gql(UNRECONCILED, {"olderThanDays": 0}, token=operator))["data"]
    later = (await gql(UNRECONCILED, {"olderThanDays": 3}, token=operator))["data"]
    # Then the payment is listed at first, with its IBAN masked, and not after 3 days' grace
    (row,) = now["unreconciledPayments"]
    assert (row["paymentId"], row["state"], row["amountTiyn"]) == (
        str(payment.id), "sent", payment.amount_tiyn,
    )  # fmt: skip
    assert row["ibanMasked"] != payment.iban and "*" in row["ibanMasked"]
    assert later["unreconciledPayments"] == []


async def test_only_operators_list_unreconciled_payments(gql, token_for):
    citizen = token_for(Role.CITIZEN, FATHER_IIN)
    refused = await gql(UNRECONCILED, {"olderThanDays": 0}, token=citizen)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    operator = token_for(Role.OPERATOR, "op-1")
    bad = await gql(UNRECONCILED, {"olderThanDays": -1}, token=operator)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_PERIOD"
