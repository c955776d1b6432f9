"""The citizen's wallet: family, welfare, entitlements with reasons, spending, payments.

Glue only: the rules of who sees what, statuses, reasons and totals are in wallet/ (view.py,
spending.py, texts.py). Types whose fields are plain attributes of a domain dataclass are
returned as that dataclass (strawberry reads attributes by name), so none of our resolvers
runs per field; only Relay nodes are built as strawberry objects, since their `id` is computed.

Long lists are Relay connections (`entitlements`, `payments`). To add offers, vouchers or
notifications: a `relay.Node` type here, a batch loader in graphql_schema/loaders.py, and a
`@relay.connection(NullableConnection[...] | None)` field on `CitizenWallet` below, like
`payments` (household first, then the loader keyed by the family id, then filter to
`view.fully_visible_ids`).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from familymap.clock import astana_today
from familymap.engine.results import FamilyEvaluation
from graphql_schema.context import Context
from graphql_schema.errors import ApiError
from graphql_schema.scalars import Tiyn
from graphql_schema.types.connections import NullableConnection
from graphql_schema.types.offers import Notification, Offer, OfferState
from wallet import spending as spending_domain
from wallet import texts, view
from wallet.households import Household
from wallet.i18n import programme_title
from wallet.spending import Payment as PaymentRow

EntitlementStatus = strawberry.enum(
    view.EntitlementStatus, name="EntitlementStatus", description="Where a programme stands."
)
Visibility = strawberry.enum(
    view.Visibility, name="MemberVisibility", description="How much of a member you may see."
)


@strawberry.enum(description="A language of the wallet's texts.")
class Language(Enum):
    KK = "kk"
    RU = "ru"
    EN = "en"


@strawberry.enum(description="What state spending paid for.")
class SpendingCategory(Enum):
    CASH_BENEFITS = "CASH_BENEFITS"
    SCHOOL_MEALS = "SCHOOL_MEALS"
    MEDICINES = "MEDICINES"
    OTHER_IN_KIND = "OTHER_IN_KIND"


@strawberry.type(description="A member of your family, as much as you may see of them.")
class FamilyMember:
    person_id: strawberry.ID
    visibility: Visibility
    first_name: str
    last_name: str
    patronymic: str | None
    role: str = strawberry.field(description="head, spouse, child, dependant or other.")
    iin: str | None = strawberry.field(
        description="Full for yourself and the children you care for; masked for other "
        "adults; null where you see only a name."
    )
    birth_date: date | None
    is_caller: bool


@strawberry.type(description="Your family in the family map.")
class WalletFamily:
    id: strawberry.ID
    region: str
    members: list[FamilyMember]


@strawberry.type(description="One of the five criteria of the family's welfare.")
class WelfareCriterion:
    criterion: str = strawberry.field(description="economic, health, housing, social or education.")
    title: str
    score: int = strawberry.field(description="0..100.")
    explanation: str = strawberry.field(description="The score and the facts behind it.")


@strawberry.type(description="The family's welfare level on the five criteria.")
class Welfare:
    level: str = strawberry.field(
        description="stable, satisfactory, unstable, crisis_risk or crisis."
    )
    level_title: str
    total: int = strawberry.field(description="Weighted score 0..100.")
    criteria: list[WelfareCriterion]


@strawberry.type(description="One condition of a programme, checked against your facts.")
class Reason:
    condition: str
    label: str
    value: str = strawberry.field(description="What the family map knows, formatted.")
    threshold: str = strawberry.field(description="What the law asks for, formatted.")
    passed: bool
    text: str = strawberry.field(description="The whole condition in one sentence.")


@strawberry.type(description="A support programme for one member (or the family).")
class Entitlement(relay.Node):
    key: relay.NodeID[str]
    programme: str
    kind: str = strawberry.field(description="benefit, voucher or notice.")
    person_id: strawberry.ID | None = strawberry.field(
        description="The member it is for; null for a family-level programme."
    )
    status: EntitlementStatus
    status_title: str
    title: str
    amount_tiyn: Tiyn = strawberry.field(description="0 when not eligible, and for notices.")
    period_start: date | None
    period_end: date | None
    reference: str = strawberry.field(description="The legal basis.")
    # A plain field holding the domain's Reason dataclasses (rendered once per condition and
    # language, see view.reasons), not a resolver: graphql-core reads their attributes, and
    # no resolver with its Info object runs per entitlement.
    reasons: list[Reason] = strawberry.field(
        description="Every condition with its values and verdict."
    )

    @classmethod
    def from_view(cls, item: view.EntitlementView) -> Entitlement:
        return cls(
            key=item.key,
            programme=item.programme,
            kind=item.kind,
            person_id=strawberry.ID(str(item.person_id)) if item.person_id else None,
            status=item.status,
            status_title=item.status_title,
            title=item.title,
            amount_tiyn=Tiyn(item.amount_tiyn),
            period_start=item.period_start,
            period_end=item.period_end,
            reference=item.reference,
            reasons=item.reasons,  # type: ignore[arg-type]
        )


@strawberry.type(description="A non-cashable voucher: school meals or medicines.")
class WalletVoucher(relay.Node):
    key: relay.NodeID[str]
    programme: str
    title: str
    person_id: strawberry.ID
    period_start: date
    period_end: date
    funded_tiyn: Tiyn = strawberry.field(description="What the state put on it.")
    balance_tiyn: Tiyn = strawberry.field(
        description="What the person's wallet for this purpose holds now."
    )

    @classmethod
    def from_row(cls, row: Any, language: str) -> WalletVoucher:
        return cls(
            key=f"{row.programme}:{row.voucher_id}",
            programme=row.programme,
            title=programme_title(row.programme, language),
            person_id=strawberry.ID(str(row.person_id)),
            period_start=row.period_start,
            period_end=row.period_end,
            funded_tiyn=Tiyn(row.funded_tiyn),
            balance_tiyn=Tiyn(row.balance_tiyn),
        )


@strawberry.enum(description="Where a cash benefit is: only the bank's statement says PAID.")
class PaymentStatus(Enum):
    ORDERED = "ordered"
    SENT = "sent"
    PAID = "paid"
    RETURNED = "returned"
    FAILED = "failed"


@strawberry.type(description="A cash benefit paid to a member, from the ledger.")
class BenefitPayment(relay.Node):
    transfer_id: relay.NodeID[str]
    programme: str | None
    title: str | None
    person_id: strawberry.ID | None
    amount_tiyn: Tiyn
    for_month: date | None = strawberry.field(
        description=(
            "The month this payment covers (its first day), paid at the amount of the family "
            "as it was in that month; null for a payment not ordered per month."
        )
    )
    paid_at: datetime = strawberry.field(
        description="When the payment was ordered from the programme; see status for the bank."
    )
    reversed: bool = strawberry.field(description="The payment was reversed since.")
    status: PaymentStatus | None = strawberry.field(
        default=None,
        description="ORDERED and SENT wait for the bank; PAID or RETURNED is the bank's "
        "statement; FAILED the bank refused the order. Null for a payment from before orders.",
    )
    confirmed_at: datetime | None = strawberry.field(
        default=None, description="When the bank booked it PAID or RETURNED."
    )

    @classmethod
    def from_row(cls, row: PaymentRow, language: str) -> BenefitPayment:
        return cls(
            transfer_id=row.transfer_id,
            programme=row.programme,
            title=programme_title(row.programme, language) if row.programme else None,
            person_id=strawberry.ID(str(row.person_id)) if row.person_id else None,
            amount_tiyn=Tiyn(row.amount_tiyn),
            for_month=row.for_month,
            paid_at=row.paid_at,
            reversed=row.reversed,
            status=PaymentStatus(row.status) if row.status else None,
            confirmed_at=row.confirmed_at,
        )


@strawberry.type
class CategoryTotal:
    category: SpendingCategory
    title: str
    amount_tiyn: Tiyn


@strawberry.type
class MemberTotal:
    person_id: strawberry.ID | None = strawberry.field(
        description="Null: spending not on one member, or on members you see only by name."
    )
    amount_tiyn: Tiyn


@strawberry.type
class MonthTotal:
    month: int
    amount_tiyn: Tiyn


@strawberry.type
class ServiceCount:
    reason: str = strawberry.field(description="MEAL_SERVED or MEDICINE_DISPENSED.")
    count: int = strawberry.field(description="Net of reversals.")


@strawberry.type(description="What the state spent on your family, from the ledger (UTC periods).")
class Spending:
    year: int
    month: int | None
    total_tiyn: Tiyn
    by_category: list[CategoryTotal]
    by_member: list[MemberTotal]
    by_month: list[MonthTotal]
    services: list[ServiceCount]

    @classmethod
    def from_domain(cls, s: spending_domain.Spending, language: str) -> Spending:
        return cls(
            year=s.year,
            month=s.month,
            total_tiyn=Tiyn(s.total_tiyn),
            by_category=[
                CategoryTotal(
                    category=SpendingCategory(t.key),
                    title=texts.text(texts.CATEGORIES, str(t.key), language),
                    amount_tiyn=Tiyn(t.amount_tiyn),
                )
                for t in s.by_category
            ],
            by_member=[
                MemberTotal(
                    person_id=strawberry.ID(str(t.key)) if t.key is not None else None,
                    amount_tiyn=Tiyn(t.amount_tiyn),
                )
                for t in s.by_member
            ],
            by_month=[
                MonthTotal(month=int(t.key), amount_tiyn=Tiyn(t.amount_tiyn)) for t in s.by_month
            ],  # type: ignore[arg-type]
            services=[ServiceCount(reason=str(t.key), count=t.amount_tiyn) for t in s.services],
        )


@strawberry.type(name="CitizenWallet")
class CitizenWallet:
    """The citizen fields of `me`, inherited by Viewer (graphql_schema/types/identity.py).

    Each resolves through the request's loaders from the caller's IIN; for a caller who is
    not a citizen, or a citizen not in the registry, they are null.
    """

    citizen_iin: strawberry.Private[str | None]
    language_code: strawberry.Private[str]

    async def _household(self, info: Info[Context, Any]) -> Household | None:
        if self.citizen_iin is None:
            return None
        return await info.context.loaders["household_by_iin"].load(self.citizen_iin)

    async def _evaluation(self, info: Info[Context, Any]) -> FamilyEvaluation | None:
        if self.citizen_iin is None:
            return None
        return await info.context.loaders["evaluation_by_iin"].load(
            (self.citizen_iin, astana_today())
        )

    @strawberry.field(description="The language of this answer's texts (kk, ru or en).")
    def language(self) -> Language:
        return Language(self.language_code)

    @strawberry.field(description="You, as the family map knows you (citizens only).")
    async def person(self, info: Info[Context, Any]) -> FamilyMember | None:
        household = await self._household(info)
        if household is None:
            return None
        return view.visible_members(caller=household.caller, members=[household.caller])[0]  # type: ignore[return-value]

    @strawberry.field(description="Your family: the members you may see (citizens only).")
    async def family(self, info: Info[Context, Any]) -> WalletFamily | None:
        household = await self._household(info)
        if household is None:
            return None
        return WalletFamily(
            id=strawberry.ID(str(household.family.id)),
            region=household.family.region,
            members=view.visible_members(caller=household.caller, members=household.members),  # type: ignore[arg-type]
        )

    @strawberry.field(description="Your family's welfare level, explained (citizens only).")
    async def welfare(self, info: Info[Context, Any]) -> Welfare | None:
        if self.citizen_iin is None:
            return None
        # The welfare alone, not the whole evaluation: the wallet screen asks only this.
        assessment = await info.context.loaders["welfare_by_iin"].load(
            (self.citizen_iin, astana_today())
        )
        if assessment is None:
            return None
        return view.welfare_view(  # type: ignore[return-value]
            assessment=assessment, language=self.language_code
        )

    @relay.connection(
        NullableConnection[Entitlement] | None,
        description="Programmes for you, the children you care for and the family, with "
        "status and reasons; most advanced status first (citizens only).",
    )
    async def entitlements(
        self, info: Info[Context, Any], status: EntitlementStatus | None = None
    ) -> list[Entitlement] | None:
        return await self.visible_entitlements(info, status=status)

    async def visible_entitlements(
        self, info: Info[Context, Any], *, status: EntitlementStatus | None = None
    ) -> list[Entitlement] | None:
        """The caller's entitlements (shared by the field and `node(id:)`)."""
        household = await self._household(info)
        evaluation = await self._evaluation(info)
        if household is None or evaluation is None:
            return None
        offers = await info.context.loaders["offers_by_family"].load(household.family.id)
        items = view.entitlement_statuses(
            evaluation=evaluation,
            language=self.language_code,
            visible_person_ids=view.fully_visible_ids(
                caller=household.caller, members=household.members
            ),
            offer_states=view.offer_states(offers),
        )
        return [Entitlement.from_view(i) for i in items if status is None or i.status == status]

    @strawberry.field(description="State spending on your family in a year or month (UTC).")
    async def spending(
        self, info: Info[Context, Any], year: int, month: int | None = None
    ) -> Spending | None:
        if month is not None and not 1 <= month <= 12:
            raise ApiError("error.month_range")
        if not 1900 <= year <= 9999:
            raise ApiError("error.year_range")
        household = await self._household(info)
        if household is None:
            return None
        raw = await info.context.loaders["spending_by_family"].load(
            (household.family.id, year, month)
        )
        visible = spending_domain.for_caller(
            spending=raw,
            visible_person_ids=view.fully_visible_ids(
                caller=household.caller, members=household.members
            ),
        )
        return Spending.from_domain(visible, self.language_code)

    @relay.connection(
        NullableConnection[Offer] | None,
        description="Offers made to you (you consent and are paid), newest first; optionally "
        "only those in one state (citizens only).",
    )
    async def offers(
        self, info: Info[Context, Any], state: OfferState | None = None
    ) -> list[Offer] | None:
        return await self.visible_offers(info, state=state)

    async def visible_offers(
        self, info: Info[Context, Any], *, state: OfferState | None = None
    ) -> list[Offer] | None:
        """The offers made to the caller (shared by the field and `node(id:)`)."""
        household = await self._household(info)
        if household is None:
            return None
        rows = await info.context.loaders["offers_by_family"].load(household.family.id)
        # Only the offers addressed to the caller: another adult's offer is theirs to answer.
        return [
            Offer.from_row(row, self.language_code)
            for row in rows
            if row.recipient_person_id == household.caller.id
            and (state is None or row.state == state.value)
        ]

    @relay.connection(
        NullableConnection[WalletVoucher] | None,
        description="Vouchers of yours and of the children you care for (school meals, "
        "medicines), newest first, with what their wallets hold (citizens only).",
    )
    async def vouchers(self, info: Info[Context, Any]) -> list[WalletVoucher] | None:
        return await self.visible_vouchers(info)

    async def visible_vouchers(self, info: Info[Context, Any]) -> list[WalletVoucher] | None:
        """The caller's vouchers (shared by the field and `node(id:)`)."""
        household = await self._household(info)
        if household is None:
            return None
        visible = view.fully_visible_ids(caller=household.caller, members=household.members)
        rows = await info.context.loaders["vouchers_by_family"].load(household.family.id)
        return [
            WalletVoucher.from_row(r, self.language_code) for r in rows if r.person_id in visible
        ]

    @relay.connection(
        NullableConnection[Notification] | None,
        description="Notices sent to you (pension age, kandas status, employment measures), "
        "newest first (citizens only).",
    )
    async def notifications(self, info: Info[Context, Any]) -> list[Notification] | None:
        return await self.visible_notifications(info)

    async def visible_notifications(self, info: Info[Context, Any]) -> list[Notification] | None:
        """The caller's notifications (shared by the field and `node(id:)`)."""
        household = await self._household(info)
        if household is None:
            return None
        rows = await info.context.loaders["notifications_by_family"].load(household.family.id)
        return [
            Notification.from_row(row, self.language_code)
            for row in rows
            if row.person_id == household.caller.id
        ]

    @relay.connection(
        NullableConnection[BenefitPayment] | None,
        description="Cash benefits paid to your family, newest first (citizens only).",
    )
    async def payments(self, info: Info[Context, Any]) -> list[BenefitPayment] | None:
        return await self.visible_payments(info)

    async def visible_payments(self, info: Info[Context, Any]) -> list[BenefitPayment] | None:
        """The caller's payments (shared by the field and `node(id:)`)."""
        household = await self._household(info)
        if household is None:
            return None
        visible = view.fully_visible_ids(caller=household.caller, members=household.members)
        rows = await info.context.loaders["payments_by_family"].load(household.family.id)
        # Payments to members the caller sees only by name are not shown one by one.
        return [
            BenefitPayment.from_row(r, self.language_code)
            for r in rows
            if r.person_id is None or r.person_id in visible
        ]
