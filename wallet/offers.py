"""Proactive offers: made when the family map finds a new entitlement, answered by SMS or in
the app, and on consent re-checked, assigned and paid.

An offer is made for each 'new' row of `entitlement_changes` of a benefit or voucher
programme, once per programme, family, beneficiary and period start (`offer_key`), with its
SMS from 1414 queued in the same transaction. A 'new' notice programme becomes a
notification instead (wallet.notices). On consent the family is evaluated again at that
moment, because its data may have changed since the offer; the programme is then assigned
with the amount and period decided now, and the payments due ordered (wallet.payments). Each
month of a benefit pays the amount of the family as it was in that month (wallet.months): the
offer quotes the months, consent decides them again, the SMS and the app show them.
Voucher programmes are fulfilled by the vouchers package, which registers a fulfiller here
(`register_fulfiller`), so the wallet never imports it.

Expected refusals carry a stable code:

    OfferError
    ├── OfferNotFound          OFFER_NOT_FOUND          no such offer for this person (someone
    │                                                   else's offer is reported the same way,
    │                                                   so offer ids cannot be probed)
    ├── OfferExpired           OFFER_EXPIRED            the answer came after the deadline
    ├── OfferAlreadyAnswered   OFFER_ALREADY_ANSWERED   consented before, or declined before
    │                                                   and declined again (a declined offer
    │                                                   can still be accepted until it expires)
    ├── InvalidIban            INVALID_IBAN             not a Kazakh IBAN with valid check digits
    ├── InvalidDeclineReason   INVALID_DECLINE_REASON   a reason not in DECLINE_REASONS, or
    │                                                   given with a consent
    ├── FulfilmentUnavailable  FULFILMENT_UNAVAILABLE   no fulfiller for this voucher programme
    └── FulfilmentRefused      (the fulfiller's code)   e.g. NOT_A_SCHOOL_DAY outside a school year
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from familymap import iban as iban_rules
from familymap.batch import reevaluate_family
from familymap.iban import normalise_iban
from familymap.orm import as_utc, utcnow
from familymap.rules import NOTICE, RULES, VOUCHER
from familymap.tables import EntitlementChange, Family, Person
from wallet import notices
from wallet.messages import sms_text, with_reply_code
from wallet.months import MonthAmount, Quote, from_json, is_one_off, month_amounts, to_json
from wallet.offer_tables import (
    DECLINE_REASONS,
    OPEN_STATES,
    BenefitAssignment,
    Offer,
    OfferTransition,
    WalletCursor,
)
from wallet.outbox import InvalidPhone, enqueue, validate_phone
from wallet.outbox_tables import OutboxMessage
from wallet.payments import order_assignment_payments
from wallet.reply_codes import codes_by_phone, new_reply_code

log = structlog.get_logger(__name__)

KIND_OF = {rule.code: rule.kind for rule in RULES}
# What choosing a recipient, writing an SMS and a notice read of each family member.
MEMBER_COLUMNS = (
    "id", "family_id", "role", "birth_date", "date_of_death", "phone", "language", "job_lost_on"
)  # fmt: skip
ADULT_YEARS = 18
DEFAULT_OFFER_DAYS = 30
CURSOR = "offers"
# The states consent is taken in: an open offer, or one declined before its deadline.
ANSWERABLE_BY_CONSENT = (*OPEN_STATES, "declined")


class OfferError(Exception):
    code = "OFFER_ERROR"


class OfferNotFound(OfferError):
    code = "OFFER_NOT_FOUND"


class OfferExpired(OfferError):
    code = "OFFER_EXPIRED"


class OfferAlreadyAnswered(OfferError):
    code = "OFFER_ALREADY_ANSWERED"


class InvalidIban(OfferError):
    code = "INVALID_IBAN"


class InvalidDeclineReason(OfferError):
    code = "INVALID_DECLINE_REASON"


class FulfilmentUnavailable(OfferError):
    code = "FULFILMENT_UNAVAILABLE"


class FulfilmentRefused(OfferError):
    """The package that fulfils the programme refused (its own stable code is kept)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- Fulfilment of voucher programmes ---------------------------------------------------------

# (session, offer, amount, period_start, period_end) -> None: issues the voucher in the
# caller's transaction, idempotent by offer.
Fulfiller = Callable[[AsyncSession, Offer, int, date, date], Awaitable[None]]
_FULFILLERS: dict[str, Fulfiller] = {}


def register_fulfiller(programme: str, fulfiller: Fulfiller) -> None:
    """Let a package (vouchers) fulfil consent to one of its programmes."""
    _FULFILLERS[programme] = fulfiller


# --- Who is asked ------------------------------------------------------------------------------


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def choose_recipient(
    members: Sequence[Person], beneficiary_id: int | None, *, on: date
) -> Person | None:
    """Who is asked and paid: the beneficiary if a living adult, else the family's head, else
    the spouse, else the eldest living adult; None if the family has no living adult."""
    living_adults = [
        m for m in members if m.date_of_death is None and _age(m.birth_date, on) >= ADULT_YEARS
    ]
    for member in living_adults:
        if member.id == beneficiary_id:
            return member
    for role in ("head", "spouse"):
        for member in living_adults:
            if member.role == role:
                return member
    return min(living_adults, key=lambda m: (m.birth_date, m.id), default=None)


def offer_key(
    programme: str, family_id: int, beneficiary_id: int | None, start: date | None
) -> str:
    """Once per programme, family, beneficiary and entitlement period."""
    return f"{programme}:{family_id}:{beneficiary_id or 0}:{start.isoformat() if start else '-'}"


# --- Making offers -----------------------------------------------------------------------------


@dataclass
class IssueSummary:
    changes: int = 0
    offers: int = 0
    notifications: int = 0
    already: int = 0
    no_recipient: int = 0

    def __iadd__(self, other: IssueSummary) -> IssueSummary:
        for name in ("changes", "offers", "notifications", "already", "no_recipient"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


async def offer_changes(
    *,
    session: AsyncSession,
    changes: Sequence[EntitlementChange],
    now: datetime,
    offer_days: int = DEFAULT_OFFER_DAYS,
) -> IssueSummary:
    """Make the offers and notifications the given 'new' changes call for; skip those made."""
    summary = IssueSummary(changes=len(changes))
    wanted = [
        c
        for c in changes
        if c.programme in KIND_OF
        and (c.change == "new" or (c.change == "changed" and c.programme in notices.ON_CHANGE))
    ]
    if not wanted:
        return summary
    family_ids = sorted({c.family_id for c in wanted})
    # Plain rows of the columns needed, not ORM objects: after a national run a chunk reads
    # a thousand families, and mapping every member would cost more than the inserts.
    members: dict[int, list[Any]] = {}
    for person in await session.execute(
        select(*(getattr(Person, name) for name in MEMBER_COLUMNS)).where(
            Person.family_id.in_(family_ids)
        )
    ):
        members.setdefault(person.family_id, []).append(person)
    regions = {
        family_id: region
        for family_id, region in await session.execute(
            select(Family.id, Family.region).where(Family.id.in_(family_ids))
        )
    }
    today = now.date()
    planned: list[tuple[EntitlementChange, Any]] = []
    for change in wanted:
        family = members.get(change.family_id, [])
        if KIND_OF[change.programme] == NOTICE:
            person = next((m for m in family if m.id == change.person_id), None)
            made = person is not None and await notices.notify(
                session=session,
                programme=change.programme,
                person=person,
                about=change.period_start,
                now=now,
                changed=change.change == "changed",
            )
            summary.notifications += int(bool(made))
            summary.already += int(person is not None and not made)
            continue
        recipient = choose_recipient(family, change.person_id, on=today)
        if recipient is None:
            # A household of minors only: nobody can consent; the social worker's case.
            summary.no_recipient += 1
            log.warning(
                "offers.no_recipient", family_id=change.family_id, programme=change.programme
            )
            continue
        planned.append((change, recipient))
    made = await _make_offers(
        session=session, planned=planned, regions=regions, now=now, offer_days=offer_days
    )
    summary.offers += made
    summary.already += len(planned) - made
    return summary


def _insert(session: AsyncSession, table: Any) -> Any:
    """A Core INSERT for the session's database, which both extend with ON CONFLICT.

    Core rather than ORM-enabled inserts: rows go straight to the driver in pages, without
    the ORM's per-row bookkeeping, which dominated the offer job's time.
    """
    dialect = session.get_bind().dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


def _sendable(phone: str | None) -> str | None:
    """The phone if an SMS can go to it; a malformed registry number means app-only."""
    if phone is None:
        return None
    try:
        return validate_phone(phone)
    except InvalidPhone:
        return None


async def _make_offers(
    *,
    session: AsyncSession,
    planned: Sequence[tuple[EntitlementChange, Any]],
    regions: dict[int, str],
    now: datetime,
    offer_days: int,
) -> int:
    """Insert the offers not made yet, with their SMS and first transition; how many.

    A few statements per chunk rather than per offer, so that the offers after a national run
    keep up with it: the SMS first (so each offer row names its message in the same insert),
    then the offers, then their history. ON CONFLICT DO NOTHING on the unique keys makes a
    concurrent job's rows win quietly instead of failing the chunk.
    """
    by_key = {
        offer_key(c.programme, c.family_id, c.person_id, c.period_start): (c, r) for c, r in planned
    }
    if not by_key:
        return 0
    existing = set(
        await session.scalars(select(Offer.offer_key).where(Offer.offer_key.in_(list(by_key))))
    )
    fresh = [(key, c, r) for key, (c, r) in by_key.items() if key not in existing]
    if not fresh:
        return 0
    expires = now + timedelta(days=offer_days)
    connection = await session.connection()
    # Each offer's SMS carries a code no other offer to its phone has, so that a reply
    # answers the offer it names and no other (wallet.reply_codes, docs/consent.md).
    phones = {key: phone for key, _c, r in fresh if (phone := _sendable(r.phone)) is not None}
    taken = await codes_by_phone(session=session, phones=phones.values())
    codes: dict[str, str] = {}
    for key, phone in phones.items():
        codes[key] = new_reply_code(taken=taken[phone])
        taken[phone].add(codes[key])
    # What each month will pay, quoted in the SMS and kept on the offer for the app.
    schedules = dict(
        zip(
            (key for key, _, _ in fresh),
            await month_amounts(
                connection=connection,
                quotes=[
                    Quote(c.programme, KIND_OF[c.programme], c.family_id, c.person_id,
                          c.amount_tiyn or 0, c.period_start, c.period_end, now.date())
                    for _, c, _ in fresh
                ],
            ),
            strict=True,
        )
    )  # fmt: skip
    messages = [
        {
            "message_key": f"offer:{key}:sms",
            "channel": "sms",
            "recipient": phone,
            "body": with_reply_code(
                sms_text(
                    "offer",
                    language=r.language,
                    programme=c.programme,
                    amount_tiyn=c.amount_tiyn or 0,
                    until=expires.date(),
                    months=sms_months(schedules[key], c.period_start, c.period_end),
                ),
                codes[key],
            ),
            "payload": {},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for key, c, r in fresh
        if (phone := phones.get(key)) is not None
    ]
    message_ids: dict[str, int] = {}
    if messages:
        inserted = await connection.execute(
            _insert(session, OutboxMessage.__table__)
            .on_conflict_do_nothing(index_elements=["message_key"])
            .returning(OutboxMessage.id, OutboxMessage.message_key),
            messages,
        )
        message_ids = {message_key: message_id for message_id, message_key in inserted}
    rows = [
        {
            "offer_key": key,
            "family_id": c.family_id,
            "beneficiary_person_id": c.person_id,
            "recipient_person_id": r.id,
            "programme": c.programme,
            "kind": KIND_OF[c.programme],
            "region": regions.get(c.family_id, ""),
            "amount_tiyn": c.amount_tiyn or 0,
            "period_start": c.period_start,
            "period_end": c.period_end,
            "monthly_amounts": to_json(schedules[key]),
            "state": "offered",
            "phone": phones.get(key),
            "reply_code": codes.get(key),
            "language": r.language,
            "source_change_id": c.id,
            "sms_message_id": message_ids.get(f"offer:{key}:sms"),
            "created_at": now,
            "expires_at": expires,
        }
        for key, c, r in fresh
    ]
    made = (
        (
            await session.execute(
                _insert(session, Offer)
                .on_conflict_do_nothing(index_elements=["offer_key"])
                .returning(Offer.id),
                rows,
            )
        )
        .scalars()
        .all()
    )
    if made:
        await connection.execute(
            insert(OfferTransition.__table__),
            [
                {"offer_id": offer_id, "from_state": None, "to_state": "offered",
                 "channel": "system", "at": now, "detail": {}}
                for offer_id in made
            ],
        )  # fmt: skip
    return len(made)


# The changes the offer flow acts on: new entitlements, and the changes of those notices
# that are sent again when their date changes.
_OFFERED_CHANGES = or_(
    EntitlementChange.change == "new",
    and_(
        EntitlementChange.change == "changed",
        EntitlementChange.programme.in_(sorted(notices.ON_CHANGE)),
    ),
)


async def offer_new_entitlements(
    *, session: AsyncSession, run_id: int, now: datetime, offer_days: int = DEFAULT_OFFER_DAYS
) -> IssueSummary:
    """Offers for the new entitlements of one run, in the caller's transaction."""
    changes = (
        await session.scalars(
            select(EntitlementChange)
            .where(EntitlementChange.run_id == run_id, _OFFERED_CHANGES)
            .order_by(EntitlementChange.id)
        )
    ).all()
    return await offer_changes(session=session, changes=changes, now=now, offer_days=offer_days)


async def issue_pending_offers(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    offer_days: int = DEFAULT_OFFER_DAYS,
    chunk_size: int = 500,
    on_chunk: Callable[[IssueSummary], None] | None = None,
) -> IssueSummary:
    """Read entitlement changes past the job's cursor, a chunk per transaction, and make
    their offers; the cursor moves with each chunk, so a crash resumes where it stopped."""
    now = now or utcnow()
    total = IssueSummary()
    while True:
        async with session_factory() as session, session.begin():
            cursor = await session.get(WalletCursor, CURSOR, with_for_update=True)
            if cursor is None:
                cursor = WalletCursor(name=CURSOR, position=0)
                session.add(cursor)
            changes = (
                await session.scalars(
                    select(EntitlementChange)
                    .where(EntitlementChange.id > cursor.position, _OFFERED_CHANGES)
                    .order_by(EntitlementChange.id)
                    .limit(chunk_size)
                )
            ).all()
            if not changes:
                return total
            summary = await offer_changes(
                session=session, changes=changes, now=now, offer_days=offer_days
            )
            cursor.position = changes[-1].id
        total += summary
        if on_chunk is not None:
            on_chunk(summary)


async def expire_offers(*, session: AsyncSession, now: datetime | None = None) -> int:
    """Move offers not answered by their deadline to `expired`; how many moved."""
    now = now or utcnow()
    expired = (
        await session.scalars(
            update(Offer)
            .where(Offer.state == "offered", Offer.expires_at <= now)
            .values(state="expired")
            .returning(Offer.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for offer_id in expired:
        session.add(
            OfferTransition(
                offer_id=offer_id,
                from_state="offered",
                to_state="expired",
                channel="system",
                at=now,
            )
        )
    return len(expired)


async def offers_of_families(*, session: AsyncSession, family_ids: Sequence[int]) -> list[Offer]:
    """Every offer made to these families, newest first, in one statement."""
    return list(
        await session.scalars(
            select(Offer).where(Offer.family_id.in_(family_ids)).order_by(Offer.id.desc())
        )
    )


# --- Answering ----------------------------------------------------------------------------------


@dataclass
class Answer:
    """What an answer did: the offer as it now stands and the SMS sent about it."""

    offer: Offer
    message_template: str
    created: IssueSummary = field(default_factory=IssueSummary)


def _transition(
    session: AsyncSession,
    offer: Offer,
    from_state: str | None,
    to_state: str,
    channel: str,
    at: datetime,
    **detail: object,
) -> None:
    session.add(
        OfferTransition(
            offer_id=offer.id,
            from_state=from_state,
            to_state=to_state,
            channel=channel,
            at=at,
            detail=dict(detail),
        )
    )


async def answer_offer(
    *,
    session: AsyncSession,
    offer_id: int,
    recipient_person_id: int,
    accept: bool,
    channel: str,
    now: datetime | None = None,
    offer_days: int = DEFAULT_OFFER_DAYS,
    reason: str | None = None,
) -> Answer:
    """Accept or decline the recipient's open offer; on consent re-check, assign and pay."""
    now = now or utcnow()
    if reason is not None and (accept or reason not in DECLINE_REASONS):
        raise InvalidDeclineReason(f"a decline's reason is one of {', '.join(DECLINE_REASONS)}")
    offer = await session.get(Offer, offer_id)
    if offer is None or offer.recipient_person_id != recipient_person_id:
        raise OfferNotFound(f"no offer {offer_id} for this person")
    # A decline can be changed into consent until the deadline (the decline SMS says so);
    # consent is final, and a decline is not repeated.
    answerable = ANSWERABLE_BY_CONSENT if accept else OPEN_STATES
    if offer.state not in answerable:
        raise OfferAlreadyAnswered(f"offer {offer_id} is already {offer.state}")
    if as_utc(offer.expires_at) <= now:
        raise OfferExpired(f"offer {offer_id} expired on {offer.expires_at:%Y-%m-%d}")
    from_state, to_state = offer.state, "accepted" if accept else "declined"
    # Conditional on the state read, so that two answers racing (an SMS and a tap in the
    # app) cannot both win.
    moved = await session.execute(
        update(Offer)
        .where(Offer.id == offer_id, Offer.state == from_state)
        # A consent after a decline clears the decline's reason (its transition keeps it).
        .values(state=to_state, answered_at=now, answer_channel=channel, decline_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise OfferAlreadyAnswered(f"offer {offer_id} was answered at the same moment")
    await session.refresh(offer)
    _transition(session, offer, from_state, to_state, channel, now, **_reason(reason))
    if not accept:
        # A decline without a reason is answered with the reasons' numbers to reply with.
        asks = reason is None and offer.reply_code is not None
        answer = Answer(offer=offer, message_template="declined_why" if asks else "declined")
    else:
        answer = await _consent(session=session, offer=offer, now=now, offer_days=offer_days)
    await _confirm_by_sms(session=session, offer=offer, template=answer.message_template)
    return answer


def _reason(reason: str | None) -> dict[str, str]:
    return {} if reason is None else {"reason": reason}


async def give_decline_reason(
    *, session: AsyncSession, offer: Offer, reason: str, channel: str, now: datetime
) -> bool:
    """Record why a declined offer was declined, said after the decline; False (and nothing
    changes) if the offer is not declined or already has a reason."""
    if reason not in DECLINE_REASONS:
        raise InvalidDeclineReason(f"a decline's reason is one of {', '.join(DECLINE_REASONS)}")
    # Conditional, so that the first reason given stays (a repeated SMS changes nothing).
    moved = await session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.state == "declined", Offer.decline_reason.is_(None))
        .values(decline_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        return False
    await session.refresh(offer)
    _transition(session, offer, "declined", "declined", channel, now, reason=reason)
    return True


async def _consent(
    *, session: AsyncSession, offer: Offer, now: datetime, offer_days: int
) -> Answer:
    # The data may have changed since the offer: decide again, now, and record that run.
    await session.flush()
    summary, evaluation = await reevaluate_family(
        await session.connection(), family_id=offer.family_id, on=now.date()
    )
    created = await offer_new_entitlements(
        session=session, run_id=summary.run_id, now=now, offer_days=offer_days
    )
    decision = None
    if evaluation is not None:
        try:
            decision = evaluation.decision(offer.programme, offer.beneficiary_person_id)
        except KeyError:
            decision = None
    if decision is None or not decision.eligible:
        failed = [c.label for c in (decision.conditions if decision else []) if not c.passed]
        offer.state, offer.note = "withdrawn", ("; ".join(failed) or "no longer eligible")[:300]
        _transition(session, offer, "accepted", "withdrawn", "system", now, failed=failed)
        return Answer(offer=offer, message_template="withdrawn", created=created)
    amount, start, end = decision.amount_tiyn, decision.period_start, decision.period_end
    offer.amount_tiyn = amount
    # Each month at the family as it was in that month: a backpay month is priced as of
    # its own last day, not at today's amount (wallet.months).
    (schedule,) = await month_amounts(
        connection=await session.connection(),
        quotes=[
            Quote(offer.programme, offer.kind, offer.family_id, offer.beneficiary_person_id,
                  amount, start, end, now.date())
        ],
    )  # fmt: skip
    offer.monthly_amounts = to_json(schedule)
    if offer.kind == VOUCHER:
        fulfiller = _FULFILLERS.get(offer.programme)
        if fulfiller is None:
            raise FulfilmentUnavailable(f"{offer.programme} vouchers cannot be issued here")
        await fulfiller(session, offer, amount, start, end)
        offer.state = "assigned"
        _transition(session, offer, "accepted", "assigned", "system", now, run_id=summary.run_id)
        return Answer(offer=offer, message_template="voucher_assigned", created=created)
    recipient = await session.get(Person, offer.recipient_person_id)
    assignment = BenefitAssignment(
        offer_id=offer.id,
        family_id=offer.family_id,
        recipient_person_id=offer.recipient_person_id,
        beneficiary_person_id=offer.beneficiary_person_id,
        programme=offer.programme,
        amount_tiyn=amount,
        period_start=start,
        period_end=end,
        monthly_amounts=to_json(schedule),
        schedule="one_off" if is_one_off(start, end) else "monthly",
        run_id=summary.run_id,
        assigned_at=now,
    )
    session.add(assignment)
    await session.flush()
    if recipient is None or not recipient.iban:
        offer.state = "needs_bank_account"
        _transition(session, offer, "accepted", "needs_bank_account", "system", now)
        return Answer(offer=offer, message_template="needs_bank_account", created=created)
    await _assign_and_pay(
        session=session, offer=offer, assignment=assignment, iban=recipient.iban, now=now
    )
    return Answer(offer=offer, message_template="assigned", created=created)


async def _assign_and_pay(
    *,
    session: AsyncSession,
    offer: Offer,
    assignment: BenefitAssignment,
    iban: str,
    now: datetime,
) -> None:
    from_state = offer.state
    offer.state = "assigned"
    _transition(session, offer, from_state, "assigned", "system", now, assignment_id=assignment.id)
    await order_assignment_payments(
        session=session, assignment=assignment, iban=iban, today=now.date()
    )


async def _confirm_by_sms(*, session: AsyncSession, offer: Offer, template: str) -> None:
    """Tell the recipient by SMS what their answer did (whichever channel it came by)."""
    if not offer.phone:
        return
    await enqueue(
        session=session,
        message_key=f"offer:{offer.id}:{offer.state}",
        channel="sms",
        recipient=offer.phone,
        body=with_reply_code(
            sms_text(
                template,
                language=offer.language,
                programme=offer.programme,
                amount_tiyn=offer.amount_tiyn,
                until=as_utc(offer.expires_at).date(),
                months=sms_months(
                    from_json(offer.monthly_amounts), offer.period_start, offer.period_end
                ),
            ),
            offer.reply_code or "",
        ),
    )


def sms_months(
    schedule: Sequence[MonthAmount], start: date | None, end: date | None
) -> tuple[tuple[date, int], ...]:
    """The months an SMS names: those of a monthly benefit; none for a one-off or a voucher."""
    if is_one_off(start, end):
        return ()
    return tuple((m.month, m.amount_tiyn) for m in schedule)


# --- Bank accounts ------------------------------------------------------------------------------


def validate_iban(iban: str) -> str:
    """The IBAN in its normal form (familymap.iban, the one place IBANs are checked); refused
    as InvalidIban (INVALID_IBAN) otherwise."""
    try:
        return normalise_iban(iban)
    except iban_rules.InvalidIban as refused:
        raise InvalidIban(str(refused)) from None


async def register_bank_account(
    *, session: AsyncSession, person_id: int, iban: str, now: datetime | None = None
) -> list[Offer]:
    """Record the person's IBAN and pay the offers that were waiting for it."""
    now = now or utcnow()
    cleaned = validate_iban(iban)
    person = await session.get(Person, person_id)
    if person is None:
        raise OfferNotFound("no such person")
    person.iban = cleaned
    waiting = (
        await session.scalars(
            select(Offer)
            .where(Offer.recipient_person_id == person_id, Offer.state == "needs_bank_account")
            .order_by(Offer.id)
        )
    ).all()
    for offer in waiting:
        assignment = await session.scalar(
            select(BenefitAssignment).where(BenefitAssignment.offer_id == offer.id)
        )
        assert assignment is not None, "a needs_bank_account offer always has its assignment"
        await _assign_and_pay(
            session=session, offer=offer, assignment=assignment, iban=cleaned, now=now
        )
        await _confirm_by_sms(session=session, offer=offer, template="assigned")
    return list(waiting)
