"""Offers, notifications and the funnel as the API shows them."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from graphql_schema.scalars import Tiyn
from graphql_schema.types.refusal_codes import OfferRefusalCode
from wallet.consent_service import offer_snapshot
from wallet.funnel import FunnelRow, as_record
from wallet.i18n import programme_title, renewal_for
from wallet.offer_tables import Notification as NotificationRow
from wallet.offer_tables import Offer as OfferRow


@strawberry.enum(description="Where an offer stands.")
class OfferState(Enum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    NEEDS_BANK_ACCOUNT = "needs_bank_account"
    ASSIGNED = "assigned"
    PAID = "paid"
    WITHDRAWN = "withdrawn"


@strawberry.type(description="What one month of a benefit pays.")
class OfferMonth:
    month: date = strawberry.field(description="The month, as its first day.")
    amount_tiyn: Tiyn = strawberry.field(
        description="What this month pays: the amount of the family as it was in that month."
    )
    as_of: date = strawberry.field(
        description=(
            "The day the family was taken as of: a past month's last day, or the day the "
            "amount was decided for that month and the months after it."
        )
    )


@strawberry.type(description="A proactive offer of a benefit or voucher, made without asking.")
class Offer(relay.Node):
    offer_id: relay.NodeID[str]
    programme: str = strawberry.field(description="The programme's stable code, e.g. ASP.")
    title: str = strawberry.field(description="The programme's name in the caller's language.")
    kind: str = strawberry.field(description="benefit or voucher.")
    amount_tiyn: Tiyn = strawberry.field(
        description=(
            "The whole sum for a one-off or a voucher; for a monthly benefit, the monthly sum "
            "of the family as it is now (earlier months may differ: see months)."
        )
    )
    period_start: date | None
    period_end: date | None
    months: list[OfferMonth] = strawberry.field(
        description=(
            "What each month of the period pays (one entry for a one-off, none for a "
            "voucher): quoted with the offer, decided again at consent; each payment names "
            "its month."
        )
    )
    renewal: bool = strawberry.field(
        description=(
            "The next period of an entitlement the family had (ASP's next quarter, the next "
            "school year's meals), offered again with consent."
        )
    )
    renewal_for: str | None = strawberry.field(
        description="For a renewal, the period it is for in the caller's language; else null."
    )
    state: OfferState
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    answer_channel: str | None = strawberry.field(description="sms or app.")
    paid_at: datetime | None
    note: str | None = strawberry.field(description="Why an offer was withdrawn at consent.")

    @classmethod
    def from_row(cls, row: OfferRow, language: str = "ru") -> Offer:
        return cls.from_snapshot(offer_snapshot(row), language)

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], language: str = "ru") -> Offer:
        """The offer as `offer_snapshot` recorded it (an idempotent replay shows the first result)."""
        return cls(
            offer_id=str(data["id"]),
            programme=data["programme"],
            title=programme_title(data["programme"], language),
            kind=data["kind"],
            amount_tiyn=data["amount_tiyn"],
            period_start=_day(data["period_start"]),
            period_end=_day(data["period_end"]),
            # Results remembered before months were kept have none.
            months=[
                OfferMonth(
                    month=date.fromisoformat(m["month"]),
                    amount_tiyn=m["amount_tiyn"],
                    as_of=date.fromisoformat(m["as_of"]),
                )
                for m in data.get("monthly_amounts", [])
            ],
            # Results remembered before renewals were kept are not renewals.
            renewal=bool(data.get("renewal", False)),
            renewal_for=_renewal_for(data, language),
            state=OfferState(data["state"]),
            created_at=_moment(data["created_at"]),
            expires_at=_moment(data["expires_at"]),
            answered_at=_moment(data["answered_at"]),
            answer_channel=data["answer_channel"],
            paid_at=_moment(data["paid_at"]),
            note=data["note"],
        )


def _renewal_for(data: dict[str, Any], language: str) -> str | None:
    start, end = _day(data["period_start"]), _day(data["period_end"])
    if not data.get("renewal") or start is None or end is None:
        return None
    return renewal_for(start, end, language)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@strawberry.type(description="A notice sent without a consent step (in the app and by SMS).")
class Notification(relay.Node):
    notification_id: relay.NodeID[str]
    programme: str
    title: str
    about_date: date | None
    body: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: NotificationRow, language: str = "ru") -> Notification:
        return cls(
            notification_id=str(row.id),
            programme=row.programme,
            title=programme_title(row.programme, language),
            about_date=row.about_date,
            body=row.body,
            created_at=row.created_at,
        )


@strawberry.type(description="Your answer was recorded; the offer as it now stands.")
class OfferAnswered:
    offer: Offer
    replayed: bool = strawberry.field(
        description="True when this repeats an earlier request under the same idempotency key."
    )


@strawberry.type(description="The answer was refused; nothing changed.")
class OfferRefused:
    code: OfferRefusalCode
    message: str


AnswerOfferResult = Annotated[OfferAnswered | OfferRefused, strawberry.union("AnswerOfferResult")]


@strawberry.type(description="The bank account was registered; offers waiting for it are paid.")
class BankAccountRegistered:
    iban_masked: str
    paid_offers: list[Offer]
    replayed: bool


@strawberry.type(description="The bank account was refused; nothing changed.")
class BankAccountRefused:
    code: OfferRefusalCode
    message: str


RegisterBankAccountResult = Annotated[
    BankAccountRegistered | BankAccountRefused, strawberry.union("RegisterBankAccountResult")
]


@strawberry.enum(
    description=(
        "Why a person declined an offer, if they said. By SMS: 2, the offer's code and the "
        'reason\'s number, in this order from 1 ("2 4821 3" is DO_NOT_TRUST_SMS).'
    )
)
class DeclineReason(Enum):
    NOT_NEEDED = "NOT_NEEDED"
    WRONG_DATA = "WRONG_DATA"
    DO_NOT_TRUST_SMS = "DO_NOT_TRUST_SMS"
    OTHER = "OTHER"


@strawberry.enum(description="What the take-up funnel is grouped by.")
class FunnelDimension(Enum):
    PROGRAMME = "programme"
    REGION = "region"
    MONTH = "month"


@strawberry.type(description="How many offers declined for one reason.")
class DeclineReasonCount:
    reason: DeclineReason
    count: int


@strawberry.type(description="One step of sent → delivered → answered → accepted → received.")
class FunnelStep:
    step: str = strawberry.field(description="sent, delivered, answered, accepted or received.")
    count: int
    dropped: int = strawberry.field(
        description=(
            "The step before's count less this one's (0 for sent); negative when offers "
            "answered in the app outnumber the SMS delivered."
        )
    )


@strawberry.type(
    description=(
        "The take-up funnel of the offers made in a period, for one group (programme, region "
        "and month, as grouped): each offer counts once, in the month it was made (Astana "
        "time), where it stands now. Definitions: docs/funnel.md."
    )
)
class OfferFunnelRow:
    programme: str = strawberry.field(description="The programme; `all` if not grouped by it.")
    region: str = strawberry.field(description="The region; `all` if not grouped by it.")
    month: str = strawberry.field(
        description="YYYY-MM (Astana time) the offers were made; `all` if not grouped by it."
    )
    sent: int = strawberry.field(
        description="Offers made (each is in the app; its SMS is queued when a phone is on file)."
    )
    delivered: int = strawberry.field(
        description="Offer SMS the gateway accepted (gateways report no handset delivery)."
    )
    answered: int = strawberry.field(
        description="Offers accepted or declined, by SMS or in the app (not a part of delivered)."
    )
    accepted: int = strawberry.field(description="Offers consented to, whatever followed.")
    paid: int = strawberry.field(description="Cash benefits of which the bank confirmed a payment.")
    vouchers_issued: int = strawberry.field(
        description="Voucher programmes' consents that issued the voucher (no bank step)."
    )
    received: int = strawberry.field(
        description=(
            "paid + vouchersIssued: the benefit reached the family, as the ministry publishes."
        )
    )
    take_up_rate: float = strawberry.field(description="accepted / sent.")
    received_rate: float = strawberry.field(
        description="received / sent: the ministry's published take-up."
    )
    steps: list[FunnelStep] = strawberry.field(
        description="sent → delivered → answered → accepted → received, with the drop at each."
    )
    declined: int = strawberry.field(description="Offers declined.")
    declined_for: list[DeclineReasonCount] = strawberry.field(
        description="The declined offers per reason given."
    )
    declined_without_reason: int = strawberry.field(description="Declined, no reason given.")
    expired: int = strawberry.field(description="Not answered by the deadline.")
    open: int = strawberry.field(description="Not answered yet, the deadline ahead.")
    withdrawn: int = strawberry.field(
        description="Accepted, but no longer eligible when checked again at consent."
    )
    needs_bank_account: int = strawberry.field(
        description="Accepted and assigned, waiting for the person to add a bank account."
    )
    returned: int = strawberry.field(
        description="Payments ordered, the bank returned them and confirmed none."
    )
    in_payment: int = strawberry.field(
        description="Payment ordered, the bank has not answered yet."
    )
    median_hours_to_payment: float | None = strawberry.field(
        description="From the offer to the bank's first confirmed payment, over paid offers."
    )

    @classmethod
    def from_row(cls, row: FunnelRow) -> OfferFunnelRow:
        record = as_record(row)
        median = record["median_hours_to_payment"]
        return cls(
            programme=str(record["programme"]),
            region=str(record["region"]),
            month=str(record["month"]),
            sent=row.sent,
            delivered=row.delivered,
            answered=row.answered,
            accepted=row.accepted,
            paid=row.paid,
            vouchers_issued=row.vouchers_issued,
            received=row.received,
            take_up_rate=round(row.take_up_rate, 4),
            received_rate=round(row.received_rate, 4),
            steps=[
                FunnelStep(step=step, count=number, dropped=drop)
                for step, number, drop in row.steps()
            ],
            declined=row.declined,
            declined_for=[
                DeclineReasonCount(reason=DeclineReason(reason), count=number)
                for reason, number in row.declined_for.items()
            ],
            declined_without_reason=row.declined_without_reason,
            expired=row.expired,
            open=row.open,
            withdrawn=row.withdrawn,
            needs_bank_account=row.needs_bank_account,
            returned=row.returned,
            in_payment=row.in_payment,
            median_hours_to_payment=None if median == "" else float(median),
        )
