"""Voucher mutations: each checks permission, calls one service function, maps the result.

Every mutation runs in one transaction; a refusal (a VoucherError, or a ledger refusal such as
INSUFFICIENT_FUNDS) rolls it back and is returned as `VoucherRefused { code message }`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from familymap.access import MERCHANT_ROLES, Principal, Role
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
from vouchers import acts, feedback, meal_hotpath, meals, medicines, merchants
from vouchers.calendar import local_day
from vouchers.errors import Forbidden, InvalidInput, VoucherError
from vouchers.meal_groups import GroupItem
from wallet.ledger import LedgerError

T = TypeVar("T")
MAX_BATCH = 1000
# Who may draw an act: a merchant its own, an operator any merchant's.
ACT_DRAWERS = frozenset({Role.SCHOOL, Role.PHARMACY, Role.OPERATOR})


# What a mutation's audit record says it changed, and about whom: (what, person id or None);
# or, for a change touching several families (a meal batch), a record per family.
AuditOf = Callable[[Any], "tuple[str, int | None] | list[FamilyNote]"]


@dataclass(frozen=True, slots=True)
class FamilyNote:
    """One audit record of a change to a family's data: about one member, or the family."""

    what: str
    family_id: int
    person_id: int | None


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
            audited = audit_of(result)
            if isinstance(audited, tuple):
                what, person_id = audited
                await _audit_change(info, session, role=role, what=what, person_id=person_id)
            for note in audited if isinstance(audited, list) else ():
                await _audit_change(
                    info, session, role=role, what=note.what, person_id=note.person_id,
                    family_id=note.family_id,
                )  # fmt: skip
            return result
    except (VoucherError, LedgerError) as refused:
        return VoucherRefused(
            code=VoucherRefusalCode(refused.code),
            message=refusal_text(refused, info.context.language),
        )


async def _audit_change(
    info: Info[Context, Any],
    session: AsyncSession,
    *,
    role: Role,
    what: str,
    person_id: int | None,
    family_id: int | None = None,
) -> None:
    """One audit record of a state change, about the person it concerned if any (else about
    the family `family_id`, if any)."""
    iin = None
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


async def _redeem_meal_on_driver(
    info: Info[Context, Any], school: uuid.UUID, input: RedeemMealInput, key: bytes
) -> RedeemMealResult:
    """redeemMeal on PostgreSQL: served in a group with the other requests in flight
    (vouchers/meal_groups.py), or alone on the hot path (vouchers/meal_hotpath.py), its audit
    record in the same transaction either way."""
    now = utc_now()
    request = _meal_request(input, now)
    caller = audit_caller(info, role=Role.SCHOOL)
    try:
        if info.context.meal_coalescer is not None:
            redeemed = await info.context.meal_coalescer.redeem(
                GroupItem(merchant_id=school, request=request, now=now, caller=caller)
            )
        else:
            async with info.context.driver_transactions() as connection:
                redeemed = await meal_hotpath.redeem_meal_on_driver(
                    connection=connection, merchant_id=school, request=request, qr_key=key,
                    now=now, caller=caller,
                )  # fmt: skip
    except (VoucherError, LedgerError) as refused:
        return VoucherRefused(
            code=VoucherRefusalCode(refused.code),
            message=refusal_text(refused, info.context.language),
        )
    result = MealRedeemed(meal=MealView.from_row(redeemed.redemption), replayed=redeemed.replayed)
    _count_served(info, result)
    return result


def _count_served(info: Info[Context, Any], result: object) -> None:
    # Counted once committed; a replay served nothing new.
    if isinstance(result, MealRedeemed) and not result.replayed:
        info.context.count_redemptions(meals.PURPOSE, 1)


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
        key = info.context.qr_key()
        if info.context.driver_transactions is not None:
            return await _redeem_meal_on_driver(info, school, input, key)

        async def work(session: AsyncSession) -> MealRedeemed:
            now = utc_now()
            result = await meals.redeem_meal(
                session=session,
                merchant_id=school,
                request=_meal_request(input, now),
                qr_key=key,
                now=now,
            )
            return MealRedeemed(meal=MealView.from_row(result.redemption), replayed=result.replayed)

        result = await run_refusable(
            info,
            Role.SCHOOL,
            work,
            lambda r: (
                meals.served_text(int(r.meal.id), replayed=r.replayed),
                int(r.meal.child_id),
            ),
        )
        _count_served(info, result)
        return result

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
        key = info.context.qr_key()

        async def work(session: AsyncSession) -> MealBatchResult:
            if len(items) > MAX_BATCH:
                raise InvalidInput("refusal.batch_size", count=MAX_BATCH)
            now = utc_now()
            requests = [_meal_request(item, now) for item in items]
            results = await meals.redeem_meals_batch(
                session=session, merchant_id=school, requests=requests, qr_key=key, now=now
            )
            redeemed.extend(result.redeemed for result in results if result.redeemed)
            views = [MealBatchItem.from_result(result, info.context.language) for result in results]
            served = sum(view.ok for view in views)
            return MealBatchResult(items=views, served=served, refused=len(views) - served)

        redeemed: list[meals.Redeemed] = []
        # One record per family the batch served, so that each family sees it in its trail.
        result = await run_refusable(info, Role.SCHOOL, work, lambda r: _batch_notes(r, redeemed))
        if isinstance(result, MealBatchResult):
            fresh = sum(item.ok and not item.replayed for item in result.items)
            info.context.count_redemptions(meals.PURPOSE, fresh)
        return result

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


def _batch_notes(
    result: MealBatchResult, redeemed: list[meals.Redeemed]
) -> tuple[str, None] | list[FamilyNote]:
    """A batch's audit records: one per family it served (about the child, when the batch
    served one child of that family), or one about no one when it served none."""
    if not redeemed:
        return (f"meal batch: {result.served} served, {result.refused} refused", None)
    by_family: dict[int, list[meals.Redeemed]] = defaultdict(list)
    for meal in redeemed:
        by_family[meal.redemption.family_id].append(meal)
    notes = []
    for family_id, served in sorted(by_family.items()):
        replays = sum(meal.replayed for meal in served)
        children = {meal.redemption.person_id for meal in served}
        ids = ", ".join(str(meal.redemption.id) for meal in served)
        what = f"meal batch: {len(served) - replays} served, {replays} replayed (meals {ids})"
        only = next(iter(children)) if len(children) == 1 else None
        notes.append(FamilyNote(what=what[:200], family_id=family_id, person_id=only))
    return notes


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
