"""Voucher mutations: each checks permission, calls one service function, maps the result.

Every mutation runs in one transaction; a refusal (a VoucherError, or a ledger refusal such as
INSUFFICIENT_FUNDS) rolls it back and is returned as `VoucherRefused { code message }`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from familymap.access import MERCHANT_ROLES, Principal, Role
from familymap.audit import Caller
from familymap.clock import astana_today, utc_now
from familymap.tables import Person
from graphql_schema.audit import audit, audit_caller
from graphql_schema.context import Context
from graphql_schema.errors import refusal_text
from graphql_schema.permissions import require_principal, requires
from graphql_schema.rate_limits import QR_TOKENS, rate_limited
from graphql_schema.types.refusal_codes import VoucherRefusalCode
from graphql_schema.types.vouchers import (
    ActResult,
    ActView,
    DispenseMedicineInput,
    DispenseResult,
    DispensingRecord,
    FeedbackInput,
    FeedbackLeft,
    FeedbackResult,
    InvoiceResult,
    InvoiceView,
    MealBatchItem,
    MealBatchOutcome,
    MealBatchResult,
    MealQrCode,
    MealQrResult,
    MealRedeemed,
    MealView,
    MealVoucherIssued,
    MealVoucherResult,
    MealVoucherView,
    MedicineDispensed,
    MerchantRegistered,
    MerchantView,
    PrescriptionInput,
    PrescriptionRecorded,
    PrescriptionResult,
    PrescriptionView,
    RedeemMealInput,
    RedeemMealResult,
    RegisterMerchantInput,
    RegisterMerchantResult,
    VoucherRefused,
)
from vouchers import acts, feedback, meal_service, meals, medicines, merchants
from vouchers.calendar import local_day
from vouchers.errors import Forbidden, InvalidInput, VoucherError
from wallet.ledger import LedgerError

T = TypeVar("T")
MAX_BATCH = 1000
# Who may draw an act: a merchant its own, an operator any merchant's.
ACT_DRAWERS = frozenset({Role.SCHOOL, Role.PHARMACY, Role.OPERATOR})


# What a mutation's audit record says it changed, and about whom: (what, person id or None).
AuditOf = Callable[[Any], "tuple[str, int | None]"]


async def run_refusable(
    info: Info[Context, Any],
    role: Role,
    work: Callable[[AsyncSession], Awaitable[T]],
    audit_of: AuditOf,
) -> T | VoucherRefused:
    """Run `work` in one transaction and audit what it changed, last in the same
    transaction, as done by the caller acting in `role` (the field's role, or for a field
    several roles may call, `principal.acting_role(...)`); a domain or ledger refusal rolls it
    all back and is data."""
    try:
        async with info.context.session_factory() as session, session.begin():
            result = await work(session)
            what, person_id = audit_of(result)
            await _audit_change(info, session, role=role, what=what, person_id=person_id)
            return result
    except (VoucherError, LedgerError) as refused:
        return _refused(info, refused)


async def _audit_change(
    info: Info[Context, Any],
    session: AsyncSession,
    *,
    role: Role,
    what: str,
    person_id: int | None,
) -> None:
    """One audit record of a state change, about the person it concerned if any."""
    iin, family_id = None, None
    if person_id is not None:
        row = (
            await session.execute(
                select(Person.iin, Person.family_id).where(Person.id == person_id)
            )
        ).first()
        if row is not None:
            iin, family_id = row
    await audit(
        info,
        session=session,
        role=role,
        subject_iin=iin,
        family_id=family_id,
        action="write",
        what=what,
    )


def _meal_paths(info: Info[Context, Any]) -> meal_service.MealPaths:
    """The ways this server can serve a meal (the driver's exist on PostgreSQL only)."""
    context = info.context
    return meal_service.MealPaths(
        sessions=context.session_factory,
        driver=context.driver_transactions,
        coalescer=context.meal_coalescer,
    )


def _caller(info: Info[Context, Any]) -> Caller:
    """Who serves a meal, for its audit record: a school's staff."""
    return audit_caller(info, role=Role.SCHOOL)


def _refused(info: Info[Context, Any], refused: VoucherError | LedgerError) -> VoucherRefused:
    return VoucherRefused(
        code=VoucherRefusalCode(refused.code), message=refusal_text(refused, info.context.language)
    )


def merchant_of(principal: Principal) -> uuid.UUID:
    """The merchant a SCHOOL or PHARMACY token acts for (its subject, checked at sign-in)."""
    return uuid.UUID(principal.subject)


def parse_id(value: strawberry.ID | str | None, what: str) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise InvalidInput("refusal.must_be_an_id", what=what) from exc


@strawberry.type
class VoucherMutations:
    @strawberry.mutation(
        description="Register a school or pharmacy; idempotent by externalCode. Operators only.",
        extensions=requires(Role.OPERATOR),
    )
    async def register_merchant(
        self, info: Info[Context, Any], input: RegisterMerchantInput
    ) -> RegisterMerchantResult:
        async def work(session: AsyncSession) -> MerchantRegistered:
            merchant, created = await merchants.register_merchant(
                session=session,
                external_code=input.external_code,
                name=input.name,
                category=input.category.value,
                region=input.region,
            )
            return MerchantRegistered(merchant=MerchantView.from_row(merchant), created=created)

        return await run_refusable(
            info, Role.OPERATOR, work, lambda r: (f"merchant {r.merchant.id} registered", None)
        )

    @strawberry.mutation(
        description=(
            "A parent consents to their child's school-meals voucher for this school year: it "
            "is issued and funded. Idempotent. Citizens, for their own children only."
        ),
        extensions=requires(Role.CITIZEN),
    )
    async def consent_to_meal_voucher(
        self, info: Info[Context, Any], child_id: strawberry.ID
    ) -> MealVoucherResult:
        parent_iin = require_principal(info).subject

        async def work(session: AsyncSession) -> MealVoucherIssued:
            voucher, created = await meals.consent_to_meal_voucher(
                session=session,
                parent_iin=parent_iin,
                child_person_id=parse_id(child_id, "childId"),
                on=_today(),
            )
            return MealVoucherIssued(voucher=MealVoucherView.from_row(voucher), created=created)

        return await run_refusable(
            info, Role.CITIZEN, work, lambda r: ("meal voucher consented", int(r.voucher.child_id))
        )

    @strawberry.mutation(
        description=(
            "A fresh dynamic QR code for the child's meal at the child's school, valid for a "
            "minute and once. Citizens, for their own children only."
        ),
        extensions=[*requires(Role.CITIZEN), rate_limited(QR_TOKENS)],
    )
    async def meal_qr_token(
        self, info: Info[Context, Any], child_id: strawberry.ID
    ) -> MealQrResult:
        parent_iin = require_principal(info).subject
        settings = info.context.settings

        async def work(session: AsyncSession) -> MealQrCode:
            child = parse_id(child_id, "childId")
            token, claims = await meals.meal_qr_token(
                session=session,
                parent_iin=parent_iin,
                child_person_id=child,
                key=info.context.qr_key(),
                now=utc_now(),
                ttl=timedelta(seconds=settings.qr_token_ttl_seconds),
            )
            school = await merchants.get_merchant(session=session, merchant_id=claims.merchant_id)
            return MealQrCode(
                token=token,
                expires_at=claims.expires_at,
                school_name=school.name,
                valid_for_seconds=settings.qr_token_ttl_seconds,
            )

        return await run_refusable(
            info,
            Role.CITIZEN,
            work,
            lambda r: ("meal QR code issued", parse_id(child_id, "childId")),
        )

    @strawberry.mutation(
        description=(
            "Serve one meal: by the child's QR code (for the day it was issued) or picked from "
            "the school's list (within the claim window). Idempotent by idempotencyKey (each "
            "school's own). Schools only, for their own canteen."
        ),
        extensions=requires(Role.SCHOOL),
    )
    async def redeem_meal(
        self, info: Info[Context, Any], input: RedeemMealInput
    ) -> RedeemMealResult:
        school = merchant_of(require_principal(info))
        now = utc_now()
        try:
            redeemed = await meal_service.redeem_meal(
                paths=_meal_paths(info), merchant_id=school, request=_meal_request(input, now),
                qr_key=info.context.qr_key(), now=now, caller=_caller(info),
            )  # fmt: skip
        except (VoucherError, LedgerError) as refused:
            return _refused(info, refused)
        if not redeemed.replayed:
            info.context.count_redemptions(meals.PURPOSE, 1)  # counted once committed
        return MealRedeemed(meal=MealView.from_row(redeemed.redemption), replayed=redeemed.replayed)

    @strawberry.mutation(
        description=(
            f"An offline canteen's batch (at most {MAX_BATCH}): each item is served or refused "
            "on its own, and answered in order. Schools only."
        ),
        extensions=requires(Role.SCHOOL),
    )
    async def redeem_meals_batch(
        self, info: Info[Context, Any], items: list[RedeemMealInput]
    ) -> MealBatchOutcome:
        school = merchant_of(require_principal(info))
        now = utc_now()
        try:
            if len(items) > MAX_BATCH:
                raise InvalidInput("refusal.batch_size", count=MAX_BATCH)
            results = await meal_service.redeem_meals_batch(
                paths=_meal_paths(info), merchant_id=school,
                requests=[_meal_request(item, now) for item in items],
                qr_key=info.context.qr_key(), now=now, caller=_caller(info),
            )  # fmt: skip
        except (VoucherError, LedgerError) as refused:
            return _refused(info, refused)
        views = [MealBatchItem.from_result(result, info.context.language) for result in results]
        served = sum(view.ok for view in views)
        info.context.count_redemptions(
            meals.PURPOSE, sum(view.ok and not view.replayed for view in views)
        )
        return MealBatchResult(items=views, served=served, refused=len(views) - served)

    @strawberry.mutation(
        description=(
            "An e-prescription from the health system; idempotent by externalId. "
            "Source systems only."
        ),
        extensions=requires(Role.SOURCE_SYSTEM),
    )
    async def record_prescription(
        self, info: Info[Context, Any], input: PrescriptionInput
    ) -> PrescriptionResult:
        source = require_principal(info).subject
        patient: list[int] = []

        async def work(session: AsyncSession) -> PrescriptionRecorded:
            row, created = await medicines.record_prescription(
                session=session,
                prescription=medicines.PrescriptionInput(
                    external_id=input.external_id,
                    patient_iin=input.patient_iin,
                    drug_code=input.drug_code,
                    quantity=input.quantity,
                    unit_price_tiyn=input.unit_price_tiyn,
                    valid_until=input.valid_until,
                    prescribing_org=input.prescribing_org,
                ),
                source=source,
            )
            patient.append(row.person_id)
            return PrescriptionRecorded(prescription=_prescription_view(row), created=created)

        return await run_refusable(
            info,
            Role.SOURCE_SYSTEM,
            work,
            lambda r: (f"prescription recorded: {input.external_id}", patient[0]),
        )

    @strawberry.mutation(
        description=(
            "Dispense medicine against a prescription, with the identity check recorded. "
            "NO_VOUCHER if the patient holds no medicines voucher in force, INSUFFICIENT_FUNDS "
            "if it has too little left. Idempotent by idempotencyKey (each pharmacy's own). "
            "Pharmacies only."
        ),
        extensions=requires(Role.PHARMACY),
    )
    async def dispense_medicine(
        self, info: Info[Context, Any], input: DispenseMedicineInput
    ) -> DispenseResult:
        pharmacy = merchant_of(require_principal(info))

        async def work(session: AsyncSession) -> MedicineDispensed:
            row, replayed = await medicines.dispense(
                session=session,
                merchant_id=pharmacy,
                request=medicines.DispenseRequest(
                    idempotency_key=input.idempotency_key,
                    prescription_external_id=input.prescription_id,
                    drug_code=input.drug_code,
                    quantity=input.quantity,
                    identity_method=input.identity_method.value,
                    identity_reason=input.identity_reason,
                    identity_reason_code=(
                        None
                        if input.identity_reason_code is None
                        else input.identity_reason_code.value
                    ),
                ),
                today=_today(),
            )
            dispensed.append(row.person_id)
            return MedicineDispensed(dispensing=DispensingRecord.from_row(row), replayed=replayed)

        dispensed: list[int] = []
        result = await run_refusable(
            info,
            Role.PHARMACY,
            work,
            lambda r: (f"medicine dispensed: {input.drug_code}", dispensed[0]),
        )
        if isinstance(result, MedicineDispensed) and not result.replayed:
            info.context.count_redemptions(medicines.PURPOSE, 1)
        return result

    @strawberry.mutation(
        description=(
            "Rate a meal or a dispensing of your family, 1-5, once per event. Citizens only."
        ),
        extensions=requires(Role.CITIZEN),
    )
    async def leave_feedback(
        self, info: Info[Context, Any], input: FeedbackInput
    ) -> FeedbackResult:
        author = require_principal(info).subject

        async def work(session: AsyncSession) -> FeedbackLeft:
            row = await feedback.leave_feedback(
                session=session,
                author_iin=author,
                event_kind=input.event_kind.value,
                event_id=parse_id(input.event_id, "eventId"),
                rating=input.rating,
                tags=input.tags,
                comment=input.comment,
            )
            return FeedbackLeft.from_row(row)

        return await run_refusable(
            info, Role.CITIZEN, work, lambda r: (f"feedback on {input.event_kind.value}", None)
        )

    @strawberry.mutation(
        description=(
            "Draw (or refresh) an ended month's act of services (MONTH_NOT_ENDED before), or "
            "an adjustment act for what was served after the month's act was approved. Schools "
            "and pharmacies for themselves; operators for any merchant (merchantId)."
        ),
        extensions=requires(*ACT_DRAWERS),
    )
    async def prepare_act(
        self, info: Info[Context, Any], month: date, merchant_id: strawberry.ID | None = None
    ) -> ActResult:
        principal = require_principal(info)

        async def work(session: AsyncSession) -> ActView:
            merchant = _acting_merchant(principal, merchant_id)
            act = await acts.prepare_act(
                session=session, merchant_id=merchant, month=month, today=_today()
            )
            return ActView.from_row(act)

        return await run_refusable(
            info, principal.acting_role(ACT_DRAWERS), work, lambda r: (f"act {r.id} drawn", None)
        )

    @strawberry.mutation(
        description="The merchant submits its draft act for approval. Schools and pharmacies.",
        extensions=requires(Role.SCHOOL, Role.PHARMACY),
    )
    async def submit_act(self, info: Info[Context, Any], act_id: strawberry.ID) -> ActResult:
        principal = require_principal(info)
        merchant = merchant_of(principal)

        async def work(session: AsyncSession) -> ActView:
            act = await acts.submit_act(
                session=session,
                act_id=parse_id(act_id, "actId"),
                merchant_id=merchant,
                today=_today(),
            )
            return ActView.from_row(act)

        return await run_refusable(
            info,
            principal.acting_role(MERCHANT_ROLES),
            work,
            lambda r: (f"act {r.id} submitted", None),
        )

    @strawberry.mutation(
        description="Approve a submitted act; it never changes again. Operators only.",
        extensions=requires(Role.OPERATOR),
    )
    async def approve_act(self, info: Info[Context, Any], act_id: strawberry.ID) -> ActResult:
        operator = require_principal(info).subject

        async def work(session: AsyncSession) -> ActView:
            act = await acts.approve_act(
                session=session, act_id=parse_id(act_id, "actId"), operator=operator, today=_today()
            )
            return ActView.from_row(act)

        return await run_refusable(
            info, Role.OPERATOR, work, lambda r: (f"act {r.id} approved", None)
        )

    @strawberry.mutation(
        description="Issue the invoice of an approved act (once per act). Operators only.",
        extensions=requires(Role.OPERATOR),
    )
    async def issue_invoice(self, info: Info[Context, Any], act_id: strawberry.ID) -> InvoiceResult:
        async def work(session: AsyncSession) -> InvoiceView:
            invoice = await acts.issue_invoice(
                session=session, act_id=parse_id(act_id, "actId"), today=_today()
            )
            return InvoiceView.from_row(invoice)

        return await run_refusable(
            info, Role.OPERATOR, work, lambda r: (f"invoice {r.id} issued", None)
        )

    @strawberry.mutation(
        description=(
            "Pay an invoice: its amount moves from the merchant's account to settlement, "
            "once. Operators only."
        ),
        extensions=requires(Role.OPERATOR),
    )
    async def pay_invoice(
        self, info: Info[Context, Any], invoice_id: strawberry.ID
    ) -> InvoiceResult:
        async def work(session: AsyncSession) -> InvoiceView:
            invoice = await acts.pay_invoice(
                session=session, invoice_id=parse_id(invoice_id, "invoiceId")
            )
            return InvoiceView.from_row(invoice)

        return await run_refusable(
            info, Role.OPERATOR, work, lambda r: (f"invoice {r.id} paid", None)
        )


def _meal_request(item: RedeemMealInput, now: datetime) -> meals.MealRequest:
    child = None if item.child_id is None else parse_id(item.child_id, "childId")
    return meals.MealRequest(
        idempotency_key=item.idempotency_key,
        meal_type=item.meal_type.value,
        served_on=item.served_on or local_day(now),
        qr_token=item.qr_token,
        child_person_id=child,
    )


def _today() -> date:
    """Today in Kazakhstan: the day of a meal, a dispensing, and whether a month has ended."""
    return astana_today()


def _acting_merchant(principal: Principal, merchant_id: strawberry.ID | None) -> uuid.UUID:
    """The merchant a call acts for: a merchant token's own, or the one an operator names
    (a token that is both acts as the merchant: familymap.access.ROLE_PRECEDENCE)."""
    if principal.acting_role(ACT_DRAWERS) in MERCHANT_ROLES:
        own = merchant_of(principal)
        if merchant_id is not None and str(merchant_id) != str(own):
            raise Forbidden("refusal.merchant_acts_for_itself")
        return own
    if merchant_id is None:
        raise InvalidInput("refusal.name_the_merchant")
    try:
        return uuid.UUID(str(merchant_id))
    except ValueError as exc:
        raise InvalidInput("refusal.merchant_id") from exc


def _prescription_view(row) -> PrescriptionView:
    return PrescriptionView(
        external_id=row.external_id,
        drug_code=row.drug_code,
        quantity=row.quantity,
        dispensed_quantity=row.dispensed_quantity,
        unit_price_tiyn=row.unit_price_tiyn,
        valid_until=row.valid_until,
        prescribing_org=row.prescribing_org,
    )
