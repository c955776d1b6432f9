"""Proactive offers: made when the family map finds a new entitlement, or the next period of a
renewed one, answered by SMS or in the app, and on consent re-checked, assigned and paid.

An offer is made for each row of `entitlement_changes` that wallet.offered names (a 'new'
entitlement; a renewed programme's next period, a *renewal*) of a benefit or voucher
programme, once per programme, family, beneficiary and period start (`offer_key`), with its
SMS from 1414 queued in the same transaction. A notice programme becomes a notification
instead (wallet.notices). On consent the family is evaluated again at that
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

import asyncio
import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, cast

import structlog
from sqlalchemy import (
    CursorResult,
    DateTime,
    Table,
    Text,
    Update,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from familymap import iban as iban_rules
from familymap.batch import reevaluate_family
from familymap.clock import local_day
from familymap.iban import normalise_iban
from familymap.orm import as_utc, utcnow
from familymap.rules import NOTICE, RULES, VOUCHER
from familymap.tables import EntitlementChange, Family, Person
from wallet import notices
from wallet.bulk import among, copy_to_staging, dialect_insert, sms_row
from wallet.messages import sms_text, with_reply_code
from wallet.months import (
    MonthAmount,
    Quote,
    from_json,
    is_one_off,
    month_amounts,
    schedule_json,
    to_json,
)
from wallet.offer_tables import (
    DECLINE_REASONS,
    OPEN_STATES,
    BenefitAssignment,
    Offer,
    OfferTransition,
    WalletCursor,
)
from wallet.offered import RENEWED, STANDING, is_renewal, offered, offered_clause
from wallet.outbox import InvalidPhone, enqueue, validate_phone
from wallet.outbox_tables import OutboxMessage
from wallet.payments import order_assignment_payments
from wallet.reply_codes import ReplyCodeDraw, codes_by_phone, new_reply_code

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
# The states of an offer consented to (and not undone): a standing consent's previous period.
CONSENTED_STATES = ("accepted", "assigned")


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


def adult_born_by(on: date) -> date:
    """The latest birth day of a person who is an adult on `on` (ADULT_YEARS old that day; one
    born on 29 February comes of age on 1 March in a year without it)."""
    try:
        return on.replace(year=on.year - ADULT_YEARS)
    except ValueError:  # `on` is 29 February and that year has none
        return date(on.year - ADULT_YEARS, 2, 28)


class FamilyRecipients(NamedTuple):
    """Who in one family can be asked: its living adults by id, and whom a benefit not for
    one of them is offered to (None if the family has no living adult)."""

    adults: dict[int, Any]
    default: Any

    def recipient(self, beneficiary_id: int | None) -> Any:
        """The beneficiary if a living adult, else the family's default recipient."""
        return (
            self.default
            if beneficiary_id is None
            else self.adults.get(beneficiary_id, self.default)
        )


def family_recipients(members: Sequence[Any], *, on: date) -> FamilyRecipients:
    """Each family is looked at once, however many of its benefits are offered (the batch
    job offers a family's benefits together): the head, else the spouse, else the eldest
    living adult is the default recipient."""
    born_by = adult_born_by(on)
    living_adults = [m for m in members if m.date_of_death is None and m.birth_date <= born_by]
    default = None
    for role in ("head", "spouse"):
        default = next((m for m in living_adults if m.role == role), None)
        if default is not None:
            break
    else:
        default = min(living_adults, key=lambda m: (m.birth_date, m.id), default=None)
    return FamilyRecipients({m.id: m for m in living_adults}, default)


def choose_recipient(
    members: Sequence[Person], beneficiary_id: int | None, *, on: date
) -> Person | None:
    """Who is asked and paid: the beneficiary if a living adult, else the family's head, else
    the spouse, else the eldest living adult; None if the family has no living adult."""
    return cast(Person | None, family_recipients(members, on=on).recipient(beneficiary_id))


def offer_key(
    programme: str, family_id: int, beneficiary_id: int | None, start: date | None
) -> str:
    """Once per programme, family, beneficiary and entitlement period."""
    return f"{programme}:{family_id}:{beneficiary_id or 0}:{start.isoformat() if start else '-'}"


# --- Making offers -----------------------------------------------------------------------------
#
# One set of rules, two drivers. `plan_changes` decides, for a chunk of entitlement changes,
# who is asked and under which key, and which notices are due; `_offer_rows` prices the
# offers (reply codes, months) and writes their SMS text. Those rows are then written either
# with one INSERT per table (`_insert_offers`: any database, the one-family path of a life
# event) or, by the batch job on PostgreSQL, COPYed into a staging table and moved with one
# statement (`_copy_offers`). Both skip what exists (ON CONFLICT DO NOTHING on the keys), so
# a rerun, or a concurrent job, makes nothing twice.


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


# What the offer flow reads of each entitlement change (plain rows, not ORM objects).
CHANGE_COLUMNS = (
    "id", "family_id", "person_id", "programme", "change", "amount_tiyn", "period_start",
    "period_end", "previous_period_end",
)  # fmt: skip


class PlannedOffer(NamedTuple):
    """An offer decided: its key, the change it answers, whom it asks and the SMS's phone.

    (A named tuple: a campaign plans one per offer, and a frozen dataclass costs a Python
    call per field to build.)"""

    key: str
    change: Any
    recipient: Any
    phone: str | None


@dataclass
class Plan:
    """What a chunk of changes calls for."""

    offers: list[PlannedOffer] = field(default_factory=list)
    notices: list[notices.PlannedNotice] = field(default_factory=list)
    no_recipient: int = 0


def plan_changes(*, changes: Sequence[Any], members: dict[int, list[Any]], today: date) -> Plan:
    """Decide the offers and notices for `changes`, given each family's members (pure)."""
    plan = Plan()
    offers: dict[str, PlannedOffer] = {}
    facts: dict[str, notices.PlannedNotice] = {}
    recipients: dict[int, FamilyRecipients] = {}
    # A recipient is asked several times (a child's benefits, the family's): each phone is
    # checked once.
    phones: dict[str | None, str | None] = {}
    for change in changes:
        if not offered(change):
            continue
        family = members.get(change.family_id, [])
        if KIND_OF[change.programme] == NOTICE:
            person = next((m for m in family if m.id == change.person_id), None)
            if person is not None:
                notice = notices.plan_notice(
                    programme=change.programme,
                    person=person,
                    about=change.period_start,
                    changed=change.change == "changed",
                    phone=_sendable(person.phone),
                )
                facts.setdefault(notice.fact_key, notice)
            continue
        # A family's changes come together (a child's benefits, the family's): each family's
        # adults are sorted out once.
        chosen = recipients.get(change.family_id)
        if chosen is None:
            chosen = recipients[change.family_id] = family_recipients(family, on=today)
        recipient = chosen.recipient(change.person_id)
        if recipient is None:
            # A household of minors only: nobody can consent; the social worker's case.
            plan.no_recipient += 1
            log.warning(
                "offers.no_recipient", family_id=change.family_id, programme=change.programme
            )
            continue
        key = offer_key(change.programme, change.family_id, change.person_id, change.period_start)
        if recipient.phone not in phones:
            phones[recipient.phone] = _sendable(recipient.phone)
        offers[key] = PlannedOffer(key, change, recipient, phones[recipient.phone])
    plan.offers = list(offers.values())
    plan.notices = list(facts.values())
    return plan


async def _members_and_regions(
    connection: AsyncConnection, family_ids: Sequence[int]
) -> tuple[dict[int, list[Any]], dict[int, str]]:
    """Each family's members (the columns choosing and writing need) and its region."""
    members: dict[int, list[Any]] = {}
    regions: dict[int, str] = {}
    if not family_ids:
        return members, regions
    # Plain rows of the columns needed, not ORM objects: after a national run a chunk reads
    # thousands of families, and mapping every member would cost more than the inserts. The
    # family's region comes with each member (a family without members is offered nothing).
    # Fetched whole: iterating the result row by row costs four times the CPU.
    read = await connection.execute(
        select(*(getattr(Person, name) for name in MEMBER_COLUMNS), Family.region)
        .join(Family, Family.id == Person.family_id)
        .where(among(connection, Person.family_id, family_ids))
    )
    # By position (the columns' order above): a row's attribute lookup costs a Python call.
    family_at, region_at = MEMBER_COLUMNS.index("family_id"), len(MEMBER_COLUMNS)
    for person in read.all():
        family_id = person[family_at]
        family = members.get(family_id)
        if family is None:
            members[family_id] = [person]
            regions[family_id] = person[region_at]
        else:
            family.append(person)
    return members, regions


@dataclass
class Prepared:
    """A chunk of changes decided and priced, ready to write: the changes read, the plan, the
    rows of the offers not made yet, and the reply codes drawn for them (by phone)."""

    changes: Sequence[Any]
    plan: Plan = field(default_factory=Plan)
    rows: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, set[str]] = field(default_factory=dict)


async def prepare_changes(
    *,
    session: AsyncSession,
    changes: Sequence[Any],
    now: datetime,
    offer_days: int = DEFAULT_OFFER_DAYS,
    pending_codes: dict[str, set[str]] | None = None,
) -> Prepared:
    """Read what the changes need and decide their offers and notices; writes nothing.

    `pending_codes` are reply codes drawn for offers not committed yet (the batch job's
    previous chunk, being written meanwhile), which this chunk's codes must not repeat.
    """
    prepared = Prepared(changes=changes)
    family_ids = sorted({c.family_id for c in changes if offered(c)})
    if not family_ids:
        return prepared
    connection = await session.connection()
    members, regions = await _members_and_regions(connection, family_ids)
    prepared.plan = plan_changes(changes=changes, members=members, today=local_day(now))
    existing = await _existing_keys(connection, [p.key for p in prepared.plan.offers])
    fresh = [p for p in prepared.plan.offers if p.key not in existing]
    if fresh:
        prepared.rows, prepared.codes = await _offer_rows(
            session=session, fresh=fresh, regions=regions, now=now, offer_days=offer_days,
            pending_codes=pending_codes or {}, standing=await _standing_consents(connection, fresh),
        )  # fmt: skip
    return prepared


async def write_prepared(
    *, session: AsyncSession, prepared: Prepared, now: datetime, copy: bool = False
) -> IssueSummary:
    """Write a prepared chunk's notices and offers, skipping what exists; what was made.

    `copy` (PostgreSQL only) writes the offers through COPY, for the batch job's chunks.
    """
    summary = IssueSummary(changes=len(prepared.changes))
    plan = prepared.plan
    summary.no_recipient = plan.no_recipient
    connection = await session.connection()
    made_notices = await notices.write_notices(connection=connection, notices=plan.notices, now=now)
    summary.notifications = made_notices
    summary.already += len(plan.notices) - made_notices
    made = 0
    if prepared.rows:
        write = _copy_offers if copy and connection.dialect.name == "postgresql" else _insert_offers
        made = await write(connection=connection, rows=prepared.rows, now=now)
    summary.offers = made
    summary.already += len(plan.offers) - made
    standing = {row["offer_key"]: row["standing_of"] for row in prepared.rows if row["standing_of"]}
    if standing:
        await _fund_standing_renewals(session=session, standing=standing, now=now)
    return summary


async def offer_changes(
    *,
    session: AsyncSession,
    changes: Sequence[Any],
    now: datetime,
    offer_days: int = DEFAULT_OFFER_DAYS,
    copy: bool = False,
) -> IssueSummary:
    """Make the offers and notifications the given changes call for; skip those made."""
    prepared = await prepare_changes(
        session=session, changes=changes, now=now, offer_days=offer_days
    )
    return await write_prepared(session=session, prepared=prepared, now=now, copy=copy)


def _in_parts(connection: AsyncConnection, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`values` in parts one statement can name: SQLite limits the number of bound
    parameters; PostgreSQL takes one array."""
    step = max(len(values), 1) if connection.dialect.name == "postgresql" else 500
    for start in range(0, len(values), step):
        yield values[start : start + step]


async def _existing_keys(connection: AsyncConnection, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in _in_parts(connection, keys):
        found.update(
            await connection.scalars(
                select(Offer.offer_key).where(among(connection, Offer.offer_key, part))
            )
        )
    return found


async def _standing_consents(
    connection: AsyncConnection, fresh: Sequence[PlannedOffer]
) -> dict[str, int]:
    """The renewals of a standing-consent programme (wallet.offered.STANDING) whose previous
    period was consented to, by key: the id of that consented offer. They are consented to
    and funded without asking (`_fund_standing_renewals`). A previous period declined,
    expired, withdrawn, still open or never offered is asked again, with consent.

    The previous period is the offer of the same programme, family and beneficiary whose
    period ended on the change's `previous_period_end`, made to the same recipient (read by
    the recipient's index; a new recipient is asked). A programme nobody can fulfil in this
    process is asked, as before."""
    renewals = [
        p for p in fresh
        if p.change.programme in STANDING and p.change.programme in _FULFILLERS
        and is_renewal(p.change)
    ]  # fmt: skip
    if not renewals:
        return {}
    consented: dict[tuple[str, int, int | None, date | None], int] = {}
    for part in _in_parts(connection, sorted({p.recipient.id for p in renewals})):
        rows = await connection.execute(
            select(
                Offer.programme, Offer.family_id, Offer.beneficiary_person_id, Offer.period_end,
                Offer.id,
            ).where(
                among(connection, Offer.recipient_person_id, part),
                Offer.programme.in_(sorted(STANDING)),
                Offer.state.in_(CONSENTED_STATES),
            )
        )  # fmt: skip
        consented.update({(row[0], row[1], row[2], row[3]): row[4] for row in rows})
    found = {}
    for planned in renewals:
        c = planned.change
        before = consented.get((c.programme, c.family_id, c.person_id, c.previous_period_end))
        if before is not None:
            found[planned.key] = before
    return found


async def _fund_standing_renewals(
    *, session: AsyncSession, standing: dict[str, int], now: datetime
) -> None:
    """Consent to the standing renewals just made (offer key -> the consented offer its
    consent stands from) and fund them through the programme's fulfiller, as an accepted
    offer is; the person is told by SMS that the period is funded. A renewal made before (a
    rerun, a life event) is not `offered` any more and is left alone; a fulfiller's refusal
    withdraws the renewal (its code as the note) and undoes what the fulfiller began."""
    connection = await session.connection()
    made: list[Offer] = []
    for part in _in_parts(connection, sorted(standing)):
        made.extend(
            await session.scalars(
                select(Offer).where(
                    among(connection, Offer.offer_key, part), Offer.state == "offered"
                )
            )
        )
    for offer in sorted(made, key=lambda offer: offer.id):
        offer.state, offer.answered_at, offer.answer_channel = "accepted", now, "system"
        _transition(
            session, offer, "offered", "accepted", "system", now,
            standing_consent_of=standing[offer.offer_key],
        )  # fmt: skip
        assert offer.period_start is not None and offer.period_end is not None  # a renewal's
        try:
            async with session.begin_nested():
                await _FULFILLERS[offer.programme](
                    session, offer, offer.amount_tiyn, offer.period_start, offer.period_end
                )
        except FulfilmentRefused as refused:
            offer.state, offer.note = "withdrawn", refused.code
            _transition(
                session, offer, "accepted", "withdrawn", "system", now, refused=refused.code
            )
            await _confirm_by_sms(session=session, offer=offer, template="withdrawn")
            continue
        offer.state = "assigned"
        _transition(session, offer, "accepted", "assigned", "system", now, standing=True)
        await _confirm_by_sms(session=session, offer=offer, template="standing_renewed")


def _sendable(phone: str | None) -> str | None:
    """The phone if an SMS can go to it; a malformed registry number means app-only."""
    if phone is None:
        return None
    try:
        return validate_phone(phone)
    except InvalidPhone:
        return None


def offer_sms(
    *,
    language: str | None,
    programme: str,
    amount_tiyn: int,
    until: date,
    schedule: Sequence[MonthAmount],
    start: date | None,
    end: date | None,
    code: str,
    renewal: bool = False,
) -> str:
    """The offer's SMS: the programme, what it pays (per month), the deadline, the code; a
    renewal says so and names its period; a programme with a standing consent says that
    consent stands for its next periods while the person is entitled."""
    text = _offer_text(
        language, programme, amount_tiyn, until, tuple(schedule), start, end, renewal
    )
    return with_reply_code(text, code)


# A campaign's offers share their texts but for the code (one programme, amount, period and
# deadline): each text is written once and keyed by position, which the cache hashes fastest.
@lru_cache(maxsize=65536)
def _offer_text(
    language: str | None,
    programme: str,
    amount_tiyn: int,
    until: date,
    schedule: tuple[MonthAmount, ...],
    start: date | None,
    end: date | None,
    renewal: bool,
) -> str:
    template = "renewal" if renewal else "offer"
    return sms_text(
        f"{template}_standing" if programme in STANDING else template,
        language=language,
        programme=programme,
        amount_tiyn=amount_tiyn,
        until=until,
        months=sms_months(schedule, start, end),
        start=start if renewal else None,
        end=end if renewal else None,
    )


async def _offer_rows(
    *,
    session: AsyncSession,
    fresh: Sequence[PlannedOffer],
    regions: dict[int, str],
    now: datetime,
    offer_days: int,
    pending_codes: dict[str, set[str]],
    standing: dict[str, int],
) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """The rows of the offers not made yet: each offer's columns, with its SMS's key and text
    (`message_key`, `body`; None for an offer without an SMS), and `standing_of`, the offer a
    standing renewal's consent stands from (`standing`; such a renewal asks nothing: no code,
    no offer SMS); and the codes drawn, by phone."""
    expires = now + timedelta(days=offer_days)
    # The citizen's days: the quote's "today" and the deadline the SMS names are Kazakhstan's.
    today, until = local_day(now), local_day(expires)
    # Each offer's SMS carries a code no other offer to its phone has, so that a reply
    # answers the offer it names and no other (wallet.reply_codes, docs/consent.md).
    taken = await codes_by_phone(session=session, phones=(p.phone for p in fresh if p.phone))
    codes: dict[str, str] = {}
    code: str | None  # drawn for an offer with a phone
    drawn: dict[str, set[str]] = {}
    draw = ReplyCodeDraw()
    for planned in fresh:
        if (phone := planned.phone) is not None and planned.key not in standing:
            used = taken[phone]
            if phone in pending_codes:
                used = used | pending_codes[phone]
            codes[planned.key] = code = new_reply_code(taken=used, draw=draw)
            taken[phone].add(code)
            drawn.setdefault(phone, set()).add(code)
    # What each month will pay, quoted in the SMS and kept on the offer for the app.
    schedules = await month_amounts(
        connection=await session.connection(),
        quotes=[
            Quote(p.change.programme, KIND_OF[p.change.programme], p.change.family_id,
                  p.change.person_id, p.change.amount_tiyn or 0, p.change.period_start,
                  p.change.period_end, today)
            for p in fresh
        ],
    )  # fmt: skip
    rows = []
    for planned, schedule in zip(fresh, schedules, strict=True):
        c, r, code = planned.change, planned.recipient, codes.get(planned.key)
        renewal = is_renewal(c)
        rows.append(
            {
                "offer_key": planned.key,
                "family_id": c.family_id,
                "beneficiary_person_id": c.person_id,
                "recipient_person_id": r.id,
                "programme": c.programme,
                "kind": KIND_OF[c.programme],
                "region": regions.get(c.family_id, ""),
                "amount_tiyn": c.amount_tiyn or 0,
                "period_start": c.period_start,
                "period_end": c.period_end,
                # The months as quoted; each writer stores them as JSON (`to_json`).
                "schedule": schedule,
                "state": "offered",
                "phone": planned.phone,
                "reply_code": code,
                "language": r.language,
                "source_change_id": c.id,
                "renewal": renewal,
                "created_at": now,
                "expires_at": expires,
                "standing_of": standing.get(planned.key),
                "message_key": None if code is None else offer_message_key(planned.key),
                "body": None
                if code is None
                else offer_sms(
                    language=r.language,
                    programme=c.programme,
                    amount_tiyn=c.amount_tiyn or 0,
                    until=until,
                    schedule=schedule,
                    start=c.period_start,
                    end=c.period_end,
                    code=code,
                    renewal=renewal,
                ),
            }
        )
    return rows, drawn


def offer_message_key(key: str) -> str:
    """The outbox key of an offer's SMS."""
    return f"offer:{key}:sms"


async def _insert_offers(
    *, connection: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Insert offers, their SMS and first transition with one INSERT per table; how many.

    The SMS first (so each offer row names its message), then the offers, then their
    history. ON CONFLICT DO NOTHING on the unique keys makes a concurrent job's rows win
    quietly instead of failing the chunk.
    """
    messages = [
        sms_row(message_key=row["message_key"], phone=row["phone"], body=row["body"], now=now)
        for row in rows
        if row["message_key"] is not None
    ]
    message_ids: dict[str, int] = {}
    if messages:
        outbox = OutboxMessage.__table__
        inserted = await connection.execute(
            dialect_insert(connection, outbox)
            .on_conflict_do_nothing(index_elements=["message_key"])
            .returning(outbox.c.id, outbox.c.message_key),
            messages,
        )
        message_ids = {message_key: message_id for message_id, message_key in inserted}
    table = Offer.__table__
    offers = [
        {
            **{name: row[name] for name in OFFER_COLUMNS},
            "monthly_amounts": to_json(row["schedule"]),
            "sms_message_id": message_ids.get(row["message_key"]),
        }
        for row in rows
    ]
    made = (
        await connection.scalars(
            dialect_insert(connection, table)
            .on_conflict_do_nothing(index_elements=["offer_key"])
            .returning(table.c.id),
            offers,
        )
    ).all()
    if made:
        await connection.execute(
            insert(cast(Table, OfferTransition.__table__)),  # typed as a FromClause
            [
                {"offer_id": offer_id, "from_state": None, "to_state": "offered",
                 "channel": "system", "at": now, "detail": {}}
                for offer_id in made
            ],
        )  # fmt: skip
    return len(made)


# The offer columns the rows carry (monthly_amounts is their schedule as JSON, sms_message_id
# is found when they are written).
OFFER_COLUMNS = (
    "offer_key", "family_id", "beneficiary_person_id", "recipient_person_id", "programme",
    "kind", "region", "amount_tiyn", "period_start", "period_end", "state",
    "phone", "reply_code", "language", "source_change_id", "renewal", "created_at",
    "expires_at",
)  # fmt: skip
# The staging table of the COPY path: the offer columns that vary, and the SMS.
_STAGE = {
    "ord": "integer", "offer_key": "text", "family_id": "bigint",
    "beneficiary_person_id": "bigint", "recipient_person_id": "bigint", "programme": "text",
    "kind": "text", "region": "text", "amount_tiyn": "bigint", "period_start": "date",
    "period_end": "date", "schedule_no": "integer", "phone": "text", "reply_code": "text",
    "language": "text", "source_change_id": "bigint", "renewal": "boolean",
    "message_key": "text", "body": "text",
}  # fmt: skip
# One statement: the SMS, the offers naming them, and each offer's first transition. A row
# that exists already (a rerun, a concurrent job) is skipped, as on the insert path; an offer
# whose SMS was there already is made without naming it, as there. A chunk's schedules
# repeat (one period, one amount): each distinct one travels and is parsed as JSON once
# (`:schedules`), and the offers name theirs by number.
_MOVE_STAGED_OFFERS = """
WITH schedules AS (
    SELECT no::integer AS no, monthly_amounts
    FROM unnest(CAST(:schedules AS jsonb[])) WITH ORDINALITY AS listed(monthly_amounts, no)
), sms AS (
    INSERT INTO outbox_messages (message_key, channel, recipient, body, payload, status,
                                 attempts, next_attempt_at, created_at)
    SELECT message_key, 'sms', phone, body, '{}'::jsonb, 'pending', 0, :now, :now
    FROM offer_stage WHERE message_key IS NOT NULL ORDER BY ord
    ON CONFLICT (message_key) DO NOTHING
    RETURNING id, message_key
), made AS (
    INSERT INTO offers (offer_key, family_id, beneficiary_person_id, recipient_person_id,
                        programme, kind, region, amount_tiyn, period_start, period_end,
                        monthly_amounts, state, phone, reply_code, language, source_change_id,
                        renewal, created_at, expires_at, sms_message_id)
    SELECT s.offer_key, s.family_id, s.beneficiary_person_id, s.recipient_person_id,
           s.programme, s.kind, s.region, s.amount_tiyn, s.period_start, s.period_end,
           schedules.monthly_amounts, 'offered', s.phone, s.reply_code, s.language,
           s.source_change_id, s.renewal, :now, :expires, sms.id
    FROM offer_stage s JOIN schedules ON schedules.no = s.schedule_no
         LEFT JOIN sms ON sms.message_key = s.message_key
    ORDER BY s.ord
    ON CONFLICT (offer_key) DO NOTHING
    RETURNING id
), history AS (
    INSERT INTO offer_transitions (offer_id, from_state, to_state, channel, at, detail)
    SELECT id, NULL, 'offered', 'system', :now, '{}'::jsonb FROM made ORDER BY id
)
SELECT count(*) FROM made
"""


async def _copy_offers(
    *, connection: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime
) -> int:
    """The same rows as `_insert_offers`, COPYed into a staging table and moved in one
    statement (PostgreSQL); how many offers were made."""
    if not rows:
        return 0
    expires = rows[0]["expires_at"]
    # Each distinct schedule numbered from 1 (SQL's ordinality), in the order first met.
    numbers: dict[tuple[MonthAmount, ...], int] = {}
    for row in rows:
        numbers.setdefault(row["schedule"], len(numbers) + 1)
    await copy_to_staging(
        connection,
        "offer_stage",
        _STAGE,
        [
            (i, row["offer_key"], row["family_id"], row["beneficiary_person_id"],
             row["recipient_person_id"], row["programme"], row["kind"], row["region"],
             row["amount_tiyn"], row["period_start"], row["period_end"],
             numbers[row["schedule"]], row["phone"], row["reply_code"], row["language"],
             row["source_change_id"], row["renewal"], row["message_key"], row["body"])
            for i, row in enumerate(rows)
        ],
        analyze=("ord", "message_key", "schedule_no"),
    )  # fmt: skip
    # The statement sorts the chunk by its order twice: in memory, not in temporary files.
    await connection.execute(text("SET LOCAL work_mem = '64MB'"))
    made = await connection.scalar(
        text(_MOVE_STAGED_OFFERS).bindparams(
            bindparam("now", type_=DateTime(timezone=True)),
            bindparam("expires", type_=DateTime(timezone=True)),
            bindparam("schedules", type_=ARRAY(Text)),
        ),
        {"now": now, "expires": expires, "schedules": [schedule_json(s) for s in numbers]},
    )
    await connection.execute(text("DROP TABLE offer_stage"))
    return int(made or 0)


# The changes the offer flow acts on (wallet.offered, the same rule `offered` applies).
_OFFERED_CHANGES = offered_clause()
_CHANGES = select(*(getattr(EntitlementChange, name) for name in CHANGE_COLUMNS))


async def offer_new_entitlements(
    *, session: AsyncSession, run_id: int, now: datetime, offer_days: int = DEFAULT_OFFER_DAYS
) -> IssueSummary:
    """Offers (and renewals) for the entitlement changes of one run, in the caller's
    transaction."""
    changes = (
        await session.execute(
            _CHANGES.where(EntitlementChange.run_id == run_id, _OFFERED_CHANGES).order_by(
                EntitlementChange.id
            )
        )
    ).all()
    return await offer_changes(session=session, changes=changes, now=now, offer_days=offer_days)


async def issue_pending_offers(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    offer_days: int = DEFAULT_OFFER_DAYS,
    chunk_size: int = 5000,
    on_chunk: Callable[[IssueSummary], None] | None = None,
    copy: bool = True,
) -> IssueSummary:
    """Read entitlement changes past the job's cursor, a chunk per transaction, and make
    their offers (see `_issue_pending_offers`), with Python's cyclic garbage collector
    deferred (`_fewer_collections`)."""
    with _fewer_collections():
        return await _issue_pending_offers(
            session_factory=session_factory, now=now, offer_days=offer_days,
            chunk_size=chunk_size, on_chunk=on_chunk, copy=copy,
        )  # fmt: skip


# Jobs running in this process, and the collector's thresholds before the first began.
_deferring = 0
_saved_threshold: list[int] = []


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cyclic collector runs less often, and skips what existed before the job.

    A chunk allocates hundreds of thousands of small containers (rows, tuples, dicts) that
    reference counting frees; the collector, run every 700 of them, walked them and (in full
    collections) every module's objects too: it cost as much CPU as reading the members
    (measured: 0.15 s of CPU to read 16,000 members, 0.08 s with this). Frozen objects are not
    walked; the threshold is raised while any job runs and put back after the last one.
    """
    global _deferring
    if _deferring == 0:
        gc.freeze()
        _saved_threshold[:] = gc.get_threshold()
        gc.set_threshold(max(_saved_threshold[0], 100_000), *_saved_threshold[1:])
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if _deferring == 0:
            gc.set_threshold(*_saved_threshold)
            gc.unfreeze()


async def _issue_pending_offers(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    offer_days: int = DEFAULT_OFFER_DAYS,
    chunk_size: int = 5000,
    on_chunk: Callable[[IssueSummary], None] | None = None,
    copy: bool = True,
) -> IssueSummary:
    """Read entitlement changes past the job's cursor, a chunk per transaction, and make
    their offers; the cursor moves with each chunk, so a crash resumes where it stopped.

    The next chunk is read and decided (in a session of its own, writing nothing) while the
    current one is written, so the database's work and ours overlap. A chunk is written only
    if the cursor still stands where it was read from; otherwise (another job moved it) the
    pipeline starts again from the cursor. On PostgreSQL the offers go through COPY unless
    `copy` is False (the same rows either way).
    """
    now = now or utcnow()
    total = IssueSummary()

    async def prepare(after: int, pending: dict[str, set[str]]) -> tuple[int, Prepared]:
        async with session_factory() as session, session.begin():
            changes = (
                await session.execute(
                    _CHANGES.where(EntitlementChange.id > after, _OFFERED_CHANGES)
                    .order_by(EntitlementChange.id)
                    .limit(chunk_size)
                )
            ).all()
            prepared = await prepare_changes(
                session=session, changes=changes, now=now, offer_days=offer_days,
                pending_codes=pending,
            )  # fmt: skip
        return after, prepared

    async def write(after: int, prepared: Prepared) -> IssueSummary | None:
        async with session_factory() as session, session.begin():
            cursor = await session.get(WalletCursor, CURSOR, with_for_update=True)
            if cursor is None:
                cursor = WalletCursor(name=CURSOR, position=0)
                session.add(cursor)
            if cursor.position != after:
                return None
            summary = await write_prepared(session=session, prepared=prepared, now=now, copy=copy)
            cursor.position = prepared.changes[-1].id
            return summary

    async with session_factory() as session:
        start = await session.scalar(
            select(WalletCursor.position).where(WalletCursor.name == CURSOR)
        )
    ahead: tuple[int, Prepared] | None = await prepare(start or 0, {})
    while ahead is not None and ahead[1].changes:
        after, prepared = ahead
        writing = asyncio.create_task(write(after, prepared))
        try:
            following = await prepare(prepared.changes[-1].id, prepared.codes)
        except BaseException:
            writing.cancel()
            raise
        summary = await writing
        if summary is None:
            # Another job moved the cursor: start again from where it stands.
            async with session_factory() as session:
                position = await session.scalar(
                    select(WalletCursor.position).where(WalletCursor.name == CURSOR)
                )
            ahead = await prepare(position or 0, {})
            continue
        total += summary
        if on_chunk is not None:
            on_chunk(summary)
        ahead = following
    return total


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
    moved = await _execute_update(
        session,
        update(Offer)
        .where(Offer.id == offer_id, Offer.state == from_state)
        # A consent after a decline clears the decline's reason (its transition keeps it).
        .values(state=to_state, answered_at=now, answer_channel=channel, decline_reason=reason)
        .execution_options(synchronize_session=False),
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
    moved = await _execute_update(
        session,
        update(Offer)
        .where(Offer.id == offer.id, Offer.state == "declined", Offer.decline_reason.is_(None))
        .values(decline_reason=reason)
        .execution_options(synchronize_session=False),
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
        await session.connection(), family_id=offer.family_id, on=local_day(now)
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
    if _continued_past(offer, start):
        # Consent to a period that has ended while the entitlement went on into the next one:
        # what was offered is assigned (each month priced as of that month), and the next
        # period is its renewal's, so no month is assigned twice.
        amount, start, end = offer.amount_tiyn, offer.period_start, offer.period_end
    offer.amount_tiyn = amount
    # Each month at the family as it was in that month: a backpay month is priced as of
    # its own last day, not at today's amount (wallet.months).
    (schedule,) = await month_amounts(
        connection=await session.connection(),
        quotes=[
            Quote(offer.programme, offer.kind, offer.family_id, offer.beneficiary_person_id,
                  amount, start, end, local_day(now))
        ],
    )  # fmt: skip
    offer.monthly_amounts = to_json(schedule)
    if offer.kind == VOUCHER:
        fulfiller = _FULFILLERS.get(offer.programme)
        if fulfiller is None:
            raise FulfilmentUnavailable(f"{offer.programme} vouchers cannot be issued here")
        assert start is not None and end is not None  # an eligible decision has its period
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


def _continued_past(offer: Offer, decided_start: date | None) -> bool:
    """Whether a renewed programme's decision at consent is for a later period than the
    offer's (the offer's own period is over; the next one is offered as a renewal)."""
    return (
        offer.programme in RENEWED
        and offer.period_end is not None
        and decided_start is not None
        and decided_start > offer.period_end
    )


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
        session=session, assignment=assignment, iban=iban, today=local_day(now)
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
                until=local_day(as_utc(offer.expires_at)),
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
    return _named_months(tuple(schedule))


# A campaign's schedules repeat (one period, one amount): each one's months are listed once.
@lru_cache(maxsize=16384)
def _named_months(schedule: tuple[MonthAmount, ...]) -> tuple[tuple[date, int], ...]:
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


async def _execute_update(session: AsyncSession, statement: Update) -> CursorResult[Any]:
    """Run an UPDATE; its result is a cursor's (SQLAlchemy types it as a plain Result)."""
    return cast(CursorResult[Any], await session.execute(statement))
