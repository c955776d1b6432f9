"""Offers, notifications and the funnel as the API shows them."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from familymap.orm import as_utc
from graphql_schema.scalars import Tiyn
from graphql_schema.types.refusal_codes import OfferRefusalCode
from wallet.funnel import FunnelRow
from wallet.i18n import programme_title
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
    state: OfferState
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    answer_channel: str | None = strawberry.field(description="sms or app.")
    paid_at: datetime | None
    note: str | None = strawberry.field(description="Why an offer was withdrawn at consent.")

    @classmethod
    def from_row(cls, row: OfferRow, language: str = "ru") -> Offer:
        return cls.from_snapshot(snapshot(row), language)

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], language: str = "ru") -> Offer:
        """The offer as `snapshot` recorded it (an idempotent replay shows the first result)."""
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
            state=OfferState(data["state"]),
            created_at=_moment(data["created_at"]),
            expires_at=_moment(data["expires_at"]),
            answered_at=_moment(data["answered_at"]),
            answer_channel=data["answer_channel"],
            paid_at=_moment(data["paid_at"]),
            note=data["note"],
        )


_SNAPSHOT_FIELDS = (
    "id", "programme", "kind", "amount_tiyn", "period_start", "period_end", "monthly_amounts",
    "state",
    "created_at", "expires_at", "answered_at", "answer_channel", "paid_at", "note",
)  # fmt: skip


def snapshot(row: OfferRow) -> dict[str, Any]:
    """The offer's visible fields as JSON-ready values (dates and times in ISO form)."""
    data: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = as_utc(value).isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        data[name] = value
    return data


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


@strawberry.type(description="The take-up funnel of one programme in one region.")
class OfferFunnelRow:
    programme: str
    region: str
    sent: int = strawberry.field(description="Offers made.")
    delivered: int = strawberry.field(description="Offer SMS the gateway accepted.")
    accepted: int
    declined: int
    expired: int
    paid: int
    take_up_rate: float = strawberry.field(description="accepted / sent.")
    median_hours_to_payment: float | None

    @classmethod
    def from_row(cls, row: FunnelRow) -> OfferFunnelRow:
        median = row.median_seconds_to_payment
        return cls(
            programme=row.programme,
            region=row.region,
            sent=row.sent,
            delivered=row.delivered,
            accepted=row.accepted,
            declined=row.declined,
            expired=row.expired,
            paid=row.paid,
            take_up_rate=round(row.take_up_rate, 4),
            median_hours_to_payment=None if median is None else round(median / 3600, 2),
        )
