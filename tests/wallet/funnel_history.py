"""A small constructed history of offers for the take-up funnel's tests, with the table it
must give, computed by hand (tests/wallet/test_funnel.py, tests/service/test_report_take_up.py).

Rows are written as they would stand after the flow ran (offer, its SMS in the outbox, its
assignment and payments), so each figure has exactly the offers meant for it. Months are
Astana's (UTC+5): an offer made on 31 December at 20:00 UTC is January's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Family, Person
from wallet.offer_tables import BenefitAssignment, Offer, Payment
from wallet.outbox_tables import OutboxMessage

MARCH = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
# 20:00 UTC on 31 January is 01:00 on 1 February in Astana.
FEBRUARY_IN_ASTANA = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)
JANUARY_IN_ASTANA = datetime(2025, 12, 31, 20, 0, tzinfo=UTC)
# Outside 2026 in Astana: 23:00 on 31 December 2025, and 00:30 on 1 January 2027.
BEFORE_2026 = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)
AFTER_2026 = datetime(2026, 12, 31, 19, 30, tzinfo=UTC)
# The history is read at this instant (the tests' pinned clock, 2026-11-18).
AS_OF = datetime(2026, 11, 18, 4, 30, tzinfo=UTC)

_numbers = count(1)


async def build_history(session: AsyncSession) -> None:
    """Write the offers of EXPECTED (and two outside 2026) into the session's database."""
    family = Family(region="astana", housing_owned=True, area_m2=60, rooms=2)
    session.add(family)
    await session.flush()
    person = Person(
        family_id=family.id, iin="870101300017", role="head", last_name="Тестов",
        first_name="Тест", birth_date=date(1987, 1, 1), sex="M", language="ru",
    )  # fmt: skip
    session.add(person)
    await session.flush()

    async def offer(
        state: str,
        *,
        made: datetime = MARCH,
        sms: str | None = "sent",
        answered: bool = True,
        programme: str = "BIRTH_BENEFIT",
        kind: str = "benefit",
        region: str = "astana",
        expires: datetime | None = None,
        reason: str | None = None,
        payments: tuple[tuple[str, int], ...] = (),
    ) -> None:
        number = next(_numbers)
        message_id = None
        if sms is not None:
            message = OutboxMessage(
                message_key=f"funnel-test:{number}:sms", channel="sms",
                recipient="+77010000000", body="offer", payload={}, status=sms,
                attempts=1, next_attempt_at=made, created_at=made,
            )  # fmt: skip
            session.add(message)
            await session.flush()
            message_id = message.id
        row = Offer(
            offer_key=f"funnel-test:{number}", family_id=family.id,
            recipient_person_id=person.id, programme=programme, kind=kind, region=region,
            amount_tiyn=10_000_00, state=state, language="ru", sms_message_id=message_id,
            created_at=made, expires_at=expires or made + timedelta(days=30),
            answered_at=made + timedelta(hours=1) if answered else None,
            answer_channel="sms" if answered else None, decline_reason=reason,
        )  # fmt: skip
        session.add(row)
        await session.flush()
        if not payments:
            return
        assignment = BenefitAssignment(
            offer_id=row.id, family_id=family.id, recipient_person_id=person.id,
            programme=programme, amount_tiyn=10_000_00, period_start=made.date(),
            period_end=made.date() + timedelta(days=90), schedule="monthly", assigned_at=made,
        )  # fmt: skip
        session.add(assignment)
        await session.flush()
        for month, (payment_state, hours) in enumerate(payments):
            order = OutboxMessage(
                message_key=f"funnel-test:{number}:pay:{month}", channel="bank",
                recipient="KZ86125KZT5004100100", body="order", payload={}, status="sent",
                attempts=1, next_attempt_at=made, created_at=made,
            )  # fmt: skip
            session.add(order)
            await session.flush()
            session.add(
                Payment(
                    payment_key=f"funnel-test:{number}:{month}", assignment_id=assignment.id,
                    family_id=family.id, person_id=person.id, programme=programme,
                    for_month=date(2026, 3 + month, 1), amount_tiyn=10_000_00,
                    iban="KZ86125KZT5004100100", state=payment_state,
                    transfer_id=f"funnel-test:{number}:{month}", order_message_id=order.id,
                    ordered_at=made, settled_at=made + timedelta(hours=hours),
                )
            )  # fmt: skip
        await session.flush()

    # BIRTH_BENEFIT, astana, March: eleven offers, one in each place an offer can stand.
    await offer("paid", payments=(("paid", 48),))
    await offer("assigned", payments=(("returned", 24),))  # the bank returned it
    await offer("assigned", payments=(("ordered", 0),))  # in payment
    await offer("needs_bank_account")
    await offer("withdrawn", sms="failed")  # SMS not delivered; consented in the app
    await offer("declined", reason="NOT_NEEDED")
    await offer("declined", sms="pending")  # no reason given
    await offer("expired", answered=False)
    # Past its deadline, the expiry job not yet run: expired all the same.
    await offer("offered", answered=False, expires=datetime(2026, 4, 9, tzinfo=UTC))
    # Open (in the app only, no phone on file), its deadline ahead.
    await offer("offered", sms=None, answered=False, expires=datetime(2027, 1, 1, tzinfo=UTC))
    # The first month returned by the bank, the second paid: paid, after 96 hours.
    await offer("paid", payments=(("returned", 24), ("paid", 96)))
    # SCHOOL_MEALS (a voucher), almaty, February in Astana: issued, and declined.
    meals = {"programme": "SCHOOL_MEALS", "kind": "voucher", "region": "almaty"}
    await offer("assigned", made=FEBRUARY_IN_ASTANA, **meals)
    await offer("declined", made=FEBRUARY_IN_ASTANA, reason="DO_NOT_TRUST_SMS", **meals)
    # BIRTH_BENEFIT, astana, January in Astana: expired unanswered, no SMS.
    await offer("expired", made=JANUARY_IN_ASTANA, sms=None, answered=False)
    # Outside 2026 in Astana: counted nowhere.
    await offer("expired", made=BEFORE_2026, answered=False)
    await offer("expired", made=AFTER_2026, answered=False)


_ZERO_REASONS = {"NOT_NEEDED": 0, "WRONG_DATA": 0, "DO_NOT_TRUST_SMS": 0, "OTHER": 0}

# By programme, region and month: the hand-computed table.
EXPECTED = {
    ("BIRTH_BENEFIT", "astana", "2026-01"): {
        "sent": 1, "delivered": 0, "answered": 0, "accepted": 0, "paid": 0,
        "vouchers_issued": 0, "received": 0, "declined": 0, "declined_for": _ZERO_REASONS,
        "expired": 1, "open": 0, "withdrawn": 0, "needs_bank_account": 0, "returned": 0,
        "in_payment": 0, "median_seconds_to_payment": None,
    },
    ("BIRTH_BENEFIT", "astana", "2026-03"): {
        "sent": 11, "delivered": 8, "answered": 8, "accepted": 6, "paid": 2,
        "vouchers_issued": 0, "received": 2, "declined": 2,
        "declined_for": {**_ZERO_REASONS, "NOT_NEEDED": 1},
        "expired": 2, "open": 1, "withdrawn": 1, "needs_bank_account": 1, "returned": 1,
        "in_payment": 1, "median_seconds_to_payment": 72 * 3600.0,
    },
    ("SCHOOL_MEALS", "almaty", "2026-02"): {
        "sent": 2, "delivered": 2, "answered": 2, "accepted": 1, "paid": 0,
        "vouchers_issued": 1, "received": 1, "declined": 1,
        "declined_for": {**_ZERO_REASONS, "DO_NOT_TRUST_SMS": 1},
        "expired": 0, "open": 0, "withdrawn": 0, "needs_bank_account": 0, "returned": 0,
        "in_payment": 0, "median_seconds_to_payment": None,
    },
}  # fmt: skip
