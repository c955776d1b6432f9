"""Vouchers in the API: merchants, meals, prescriptions and dispensings, feedback, acts.

Money fields end in `Tiyn`. A single meal, a voucher or a dispensing fits GraphQL's 32-bit
Int (a year's meal voucher is about 26 million tiyn, far below 2^31); act and invoice totals
can pass 2^31 for a large school's month, so they are `Tiyn` (exact up to 2^53).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from familymap.clock import astana_today
from familymap.tables import Person
from graphql_schema.errors import refusal_text
from graphql_schema.scalars import Tiyn
from graphql_schema.types.refusal_codes import VoucherRefusalCode
from vouchers.acts import MerchantAct
from vouchers.meals import BatchItemResult, MealServed
from vouchers.medicines import DispensingView, drug_name
from vouchers.tables import Dispensing, Feedback, Invoice, MealRedemption, MealVoucher, Merchant

DRUG_NAME = (
    "The drug's name in the caller's language (from its ATC code `drugCode`); null when the "
    "code is not in the list of names."
)


@strawberry.enum(description="What a merchant serves: the ledger purpose it may redeem.")
class MerchantCategory(Enum):
    SCHOOL_MEALS = "school_meals"
    MEDICINES = "medicines"


@strawberry.enum(description="The meal types a school-meals voucher pays for.")
class MealType(Enum):
    BREAKFAST = "breakfast"
    LUNCH = "lunch"


@strawberry.enum(description="How the pharmacy checked the patient's identity.")
class IdentityMethod(Enum):
    EGOV_QR = "egov_qr"
    FACE_ID = "face_id"
    FALLBACK = "fallback"


@strawberry.enum(description="Why a pharmacy fell back from eGov QR and Face-ID.")
class FallbackReason(Enum):
    NO_SMARTPHONE = "no_smartphone"
    FACE_ID_FAILED = "face_id_failed"
    CAMERA_UNAVAILABLE = "camera_unavailable"
    EGOV_UNAVAILABLE = "egov_unavailable"


@strawberry.enum(description="The kind of service event a family rates.")
class ServiceEventKind(Enum):
    MEAL = "meal"
    DISPENSING = "dispensing"


@strawberry.type(description="A refusal: nothing was changed; `code` says why.")
class VoucherRefused:
    code: VoucherRefusalCode
    message: str


@strawberry.type(description="A school canteen or a pharmacy/polyclinic.")
class MerchantView:
    id: strawberry.ID = strawberry.field(description="The subject of its staff tokens.")
    external_code: str
    name: str
    category: MerchantCategory
    region: str
    account: str = strawberry.field(description="Its business-wallet account in the ledger.")

    @classmethod
    def from_row(cls, row: Merchant) -> MerchantView:
        return cls(
            id=strawberry.ID(str(row.id)),
            external_code=row.external_code,
            name=row.name,
            category=MerchantCategory(row.category),
            region=row.region,
            account=row.account_code,
        )


@strawberry.type(description="The merchant is registered (or was: `created` is false).")
class MerchantRegistered:
    merchant: MerchantView
    created: bool


@strawberry.type(description="A child's school-meals voucher for one school year.")
class MealVoucherView:
    id: strawberry.ID
    child_id: strawberry.ID
    school_year_start: date
    school_year_end: date
    amount_tiyn: int = strawberry.field(description="Funded: school days × the day's meals.")
    channel: str

    @classmethod
    def from_row(cls, row: MealVoucher) -> MealVoucherView:
        return cls(
            id=strawberry.ID(str(row.id)),
            child_id=strawberry.ID(str(row.person_id)),
            school_year_start=row.school_year_start,
            school_year_end=row.school_year_end,
            amount_tiyn=row.amount_tiyn,
            channel=row.channel,
        )


@strawberry.type(description="The voucher is issued and funded (or was: `created` is false).")
class MealVoucherIssued:
    voucher: MealVoucherView
    created: bool


@strawberry.type(description="A pupil of the caller's family, and the voucher if issued.")
class FamilyPupil:
    child_id: strawberry.ID
    first_name: str
    school_grade: int | None
    school_code: str | None
    voucher: MealVoucherView | None


@strawberry.type(description="A pupil on a school's list (no IIN: the canteen needs none).")
class SchoolPupil:
    child_id: strawberry.ID
    last_name: str
    first_name: str
    school_grade: int | None

    @classmethod
    def from_row(cls, row: Person) -> SchoolPupil:
        return cls(
            child_id=strawberry.ID(str(row.id)),
            last_name=row.last_name,
            first_name=row.first_name,
            school_grade=row.school_grade,
        )


@strawberry.type(description="A dynamic QR code: show it at the child's school before it expires.")
class MealQrCode:
    token: str
    expires_at: datetime
    school_name: str
    valid_for_seconds: int = strawberry.field(
        description="How long the code is valid from now: a device counts down on its own "
        "clock, which may differ from the server's `expiresAt`."
    )


@strawberry.type(description="A meal served, as the canteen recorded it.")
class MealView:
    id: strawberry.ID
    child_id: strawberry.ID
    served_on: date
    meal_type: MealType
    price_tiyn: int
    method: str = strawberry.field(description="qr, or list (the canteen picked the child).")

    @classmethod
    def from_row(cls, row: MealRedemption) -> MealView:
        return cls(
            id=strawberry.ID(str(row.id)),
            child_id=strawberry.ID(str(row.person_id)),
            served_on=row.service_date,
            meal_type=MealType(row.meal_type),
            price_tiyn=row.price_tiyn,
            method=row.method,
        )


@strawberry.type(description="The meal is served (or was, under this idempotency key).")
class MealRedeemed:
    meal: MealView
    replayed: bool


@strawberry.type(description="A meal a parent's child was served.")
class ChildMeal:
    id: strawberry.ID = strawberry.field(description="The service event to rate.")
    served_on: date
    meal_type: MealType
    price_tiyn: int
    school_name: str

    @classmethod
    def from_view(cls, view: MealServed) -> ChildMeal:
        return cls(
            id=strawberry.ID(str(view.redemption_id)),
            served_on=view.served_on,
            meal_type=MealType(view.meal_type),
            price_tiyn=view.price_tiyn,
            school_name=view.school_name,
        )


@strawberry.type(description="One item of a batch: the meal, or why it was refused.")
class MealBatchItem:
    idempotency_key: str
    ok: bool
    replayed: bool
    code: VoucherRefusalCode | None
    message: str | None
    meal: MealView | None

    @classmethod
    def from_result(cls, result: BatchItemResult, language: str) -> MealBatchItem:
        redeemed = result.redeemed
        return cls(
            idempotency_key=result.idempotency_key,
            ok=redeemed is not None,
            replayed=redeemed is not None and redeemed.replayed,
            code=None if result.code is None else VoucherRefusalCode(result.code),
            message=(refusal_text(result.refused, language) if result.refused else result.message),
            meal=MealView.from_row(redeemed.redemption) if redeemed else None,
        )


@strawberry.type(description="Every item's result, in the order sent.")
class MealBatchResult:
    items: list[MealBatchItem]
    served: int
    refused: int


@strawberry.type(description="An e-prescription as recorded.")
class PrescriptionView:
    external_id: str
    drug_code: str
    quantity: int
    dispensed_quantity: int
    unit_price_tiyn: int
    valid_until: date
    prescribing_org: str


@strawberry.type(description="The prescription is recorded (or was: `created` is false).")
class PrescriptionRecorded:
    prescription: PrescriptionView
    created: bool


@strawberry.type(description="Medicine dispensed.")
class DispensingRecord:
    id: strawberry.ID
    drug_code: str
    quantity: int
    amount_tiyn: int
    identity_method: IdentityMethod
    dispensed_on: date

    @classmethod
    def from_row(cls, row: Dispensing) -> DispensingRecord:
        return cls(
            id=strawberry.ID(str(row.id)),
            drug_code=row.drug_code,
            quantity=row.quantity,
            amount_tiyn=row.amount_tiyn,
            identity_method=IdentityMethod(row.identity_method),
            dispensed_on=row.service_date,
        )

    @strawberry.field(description=DRUG_NAME)
    def drug_name(self, info: strawberry.Info) -> str | None:
        return drug_name(
            drug_code=self.drug_code, language=info.context.language, on=astana_today()
        )


@strawberry.type(description="The medicine is dispensed (or was, under this idempotency key).")
class MedicineDispensed:
    dispensing: DispensingRecord
    replayed: bool


@strawberry.type(description="What was dispensed, where and when.")
class DispensingSeen:
    id: strawberry.ID = strawberry.field(description="The service event to rate.")
    drug_code: str
    quantity: int
    amount_tiyn: int
    pharmacy_name: str
    dispensed_on: date
    identity_method: IdentityMethod

    @classmethod
    def from_view(cls, view: DispensingView) -> DispensingSeen:
        return cls(
            id=strawberry.ID(str(view.dispensing_id)),
            drug_code=view.drug_code,
            quantity=view.quantity,
            amount_tiyn=view.amount_tiyn,
            pharmacy_name=view.pharmacy_name,
            dispensed_on=view.dispensed_on,
            identity_method=IdentityMethod(view.identity_method),
        )

    @strawberry.field(description=DRUG_NAME)
    def drug_name(self, info: strawberry.Info) -> str | None:
        return drug_name(
            drug_code=self.drug_code, language=info.context.language, on=astana_today()
        )


@strawberry.type(description="The family's rating of a service event.")
class FeedbackLeft:
    id: strawberry.ID
    event_kind: ServiceEventKind
    event_id: strawberry.ID
    rating: int
    tags: list[str]
    comment: str | None

    @classmethod
    def from_row(cls, row: Feedback) -> FeedbackLeft:
        return cls(
            id=strawberry.ID(str(row.id)),
            event_kind=ServiceEventKind(row.event_kind),
            event_id=strawberry.ID(str(row.event_id)),
            rating=row.rating,
            tags=list(row.tags),
            comment=row.comment,
        )


@strawberry.type(description="One day of an act: services and their amount.")
class ActLine:
    day: date
    services: int
    amount_tiyn: Tiyn
    late_services: int = strawberry.field(
        description="Meals of this day claimed on a later day (from the list, within the claim "
        "window)."
    )


@strawberry.type(description="A monthly act of services rendered by one merchant.")
class ActView:
    id: strawberry.ID
    merchant_id: strawberry.ID
    month: date
    sequence: int = strawberry.field(description="0: the month's act; 1..: adjustment acts.")
    adjusts_act_id: strawberry.ID | None
    status: str = strawberry.field(description="draft, submitted or approved.")
    lines: list[ActLine]
    services: int
    total_tiyn: Tiyn
    feedback_count: int
    feedback_average: float | None = strawberry.field(description="Average rating, 2 decimals.")
    complaints: int = strawberry.field(description="Ratings of 2 or less.")
    late_services: int = strawberry.field(
        description="Meals claimed after their day; any flags the act (LATE_CLAIMS)."
    )
    flagged_for_review: bool
    flag_reasons: list[str] = strawberry.field(
        description="LOW_AVERAGE_RATING, MANY_COMPLAINTS, LATE_CLAIMS."
    )

    @classmethod
    def from_row(cls, row: MerchantAct) -> ActView:
        average = row.feedback_average_x100
        return cls(
            id=strawberry.ID(str(row.id)),
            merchant_id=strawberry.ID(str(row.merchant_id)),
            month=row.month,
            sequence=row.sequence,
            adjusts_act_id=None
            if row.adjusts_act_id is None
            else strawberry.ID(str(row.adjusts_act_id)),
            status=row.status,
            lines=[
                ActLine(
                    day=date.fromisoformat(line["day"]),
                    services=line["services"],
                    amount_tiyn=Tiyn(line["amount_tiyn"]),
                    late_services=line.get("late_services", 0),
                )
                for line in row.lines
            ],
            late_services=sum(line.get("late_services", 0) for line in row.lines),
            services=row.services,
            total_tiyn=Tiyn(row.total_tiyn),
            feedback_count=row.feedback_count,
            feedback_average=None if average is None else average / 100,
            complaints=row.complaints,
            flagged_for_review=row.flagged_for_review,
            flag_reasons=list(row.flag_reasons),
        )


@strawberry.type(description="An invoice for exactly what an approved act claims.")
class InvoiceView:
    id: strawberry.ID
    act_id: strawberry.ID
    merchant_id: strawberry.ID
    amount_tiyn: Tiyn
    status: str = strawberry.field(description="issued or paid.")
    transfer_id: str | None = strawberry.field(description="The ledger transfer that paid it.")

    @classmethod
    def from_row(cls, row: Invoice) -> InvoiceView:
        return cls(
            id=strawberry.ID(str(row.id)),
            act_id=strawberry.ID(str(row.act_id)),
            merchant_id=strawberry.ID(str(row.merchant_id)),
            amount_tiyn=Tiyn(row.amount_tiyn),
            status=row.status,
            transfer_id=row.transfer_id,
        )


@strawberry.input
class RegisterMerchantInput:
    external_code: str = strawberry.field(
        description="The source system's code; for a school, what its pupils' schoolId holds."
    )
    name: str
    category: MerchantCategory
    region: str


@strawberry.input(
    description="A meal: give `qrToken` (scanned) or `childId` (picked from the list)."
)
class RedeemMealInput:
    idempotency_key: str = strawberry.field(description="The canteen's own id of this meal.")
    meal_type: MealType
    served_on: date | None = strawberry.field(
        default=None,
        description="The school day; today in Kazakhstan if left out. A QR meal is only for the "
        "day its code was issued (QR_NOT_FOR_THIS_DAY); a meal from the list, or an offline "
        "batch's, within the claim window (CLAIM_WINDOW_CLOSED).",
    )
    qr_token: str | None = None
    child_id: strawberry.ID | None = None


@strawberry.input(description="An e-prescription from the health system.")
class PrescriptionInput:
    external_id: str
    patient_iin: str
    drug_code: str
    quantity: int
    unit_price_tiyn: int = strawberry.field(description="What the state pays per unit.")
    valid_until: date
    prescribing_org: str


@strawberry.input
class DispenseMedicineInput:
    idempotency_key: str
    prescription_id: str = strawberry.field(description="The health system's prescription id.")
    drug_code: str
    quantity: int
    identity_method: IdentityMethod
    identity_reason_code: FallbackReason | None = strawberry.field(
        default=None, description="Required with FALLBACK: why neither eGov QR nor Face-ID."
    )
    identity_reason: str | None = strawberry.field(
        default=None,
        description="Required with FALLBACK: what happened, in a few words (at least three).",
    )


@strawberry.input
class FeedbackInput:
    event_kind: ServiceEventKind
    event_id: strawberry.ID
    rating: int = strawberry.field(description="1 (bad) to 5 (excellent).")
    tags: list[str] | None = None
    comment: str | None = None


def union(name: str, success: type) -> object:
    """`success | VoucherRefused`, named for its mutation."""
    return Annotated[success | VoucherRefused, strawberry.union(name)]


RegisterMerchantResult = union("RegisterMerchantResult", MerchantRegistered)
MealVoucherResult = union("MealVoucherResult", MealVoucherIssued)
MealQrResult = union("MealQrResult", MealQrCode)
RedeemMealResult = union("RedeemMealResult", MealRedeemed)
MealBatchOutcome = union("MealBatchOutcome", MealBatchResult)
PrescriptionResult = union("PrescriptionResult", PrescriptionRecorded)
DispenseResult = union("DispenseResult", MedicineDispensed)
FeedbackResult = union("FeedbackResult", FeedbackLeft)
ActResult = union("ActResult", ActView)
InvoiceResult = union("InvoiceResult", InvoiceView)


@strawberry.type(description="A meal on the canteen's list of the day (no IIN: it needs none).")
class SchoolMeal:
    id: strawberry.ID
    child_id: strawberry.ID
    first_name: str
    last_name: str
    served_on: date
    meal_type: MealType
    price_tiyn: int
    method: str = strawberry.field(description="qr, or list (the canteen picked the child).")

    @classmethod
    def from_view(cls, view: Any) -> SchoolMeal:
        meal = view.redemption
        return cls(
            id=strawberry.ID(str(meal.id)),
            child_id=strawberry.ID(str(meal.person_id)),
            first_name=view.first_name,
            last_name=view.last_name,
            served_on=meal.service_date,
            meal_type=MealType(meal.meal_type),
            price_tiyn=meal.price_tiyn,
            method=meal.method,
        )


@strawberry.type(description="An e-prescription as a pharmacy sees it before dispensing.")
class PrescriptionForPharmacy:
    external_id: str
    patient_name: str = strawberry.field(
        description="First name and the initial of the last name: enough to ask, no IIN."
    )
    drug_code: str
    quantity: int
    remaining: int
    unit_price_tiyn: int
    valid_until: date
    expired: bool
    prescribing_org: str

    @classmethod
    def from_rows(cls, prescription: Any, patient: Any, today: date) -> PrescriptionForPharmacy:
        return cls(
            external_id=prescription.external_id,
            patient_name=f"{patient.first_name} {patient.last_name[:1]}.",
            drug_code=prescription.drug_code,
            quantity=prescription.quantity,
            remaining=prescription.quantity - prescription.dispensed_quantity,
            unit_price_tiyn=prescription.unit_price_tiyn,
            valid_until=prescription.valid_until,
            expired=prescription.valid_until < today,
            prescribing_org=prescription.prescribing_org,
        )

    @strawberry.field(description=DRUG_NAME)
    def drug_name(self, info: strawberry.Info) -> str | None:
        return drug_name(
            drug_code=self.drug_code, language=info.context.language, on=astana_today()
        )
