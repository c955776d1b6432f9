"""The codes of typed refusals as GraphQL enums, so clients can switch on them.

Each enum holds exactly the codes its mutations can return: the codes of the domain's exception
classes they catch (tests/api/test_refusal_codes.py reads those classes and fails when a code is
added to the domain but not here, or is left here after the domain dropped it).
"""

from __future__ import annotations

from enum import Enum

import strawberry

from familymap.events import EventCode

LifeEventRefusalCode = strawberry.enum(
    EventCode, name="LifeEventRefusalCode", description="Why a life event was refused."
)


@strawberry.enum(description="Why a voucher mutation was refused (nothing was changed).")
class VoucherRefusalCode(Enum):
    # The voucher domain's refusals (vouchers/errors.py).
    ACT_IMMUTABLE = "ACT_IMMUTABLE"
    ACT_NOT_APPROVED = "ACT_NOT_APPROVED"
    ACT_STATE_CONFLICT = "ACT_STATE_CONFLICT"
    ALREADY_REDEEMED = "ALREADY_REDEEMED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CLAIM_WINDOW_CLOSED = "CLAIM_WINDOW_CLOSED"
    DRUG_MISMATCH = "DRUG_MISMATCH"
    FEEDBACK_EXISTS = "FEEDBACK_EXISTS"
    FORBIDDEN = "FORBIDDEN"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDENTITY_CHECK_REQUIRED = "IDENTITY_CHECK_REQUIRED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    MONTH_NOT_ENDED = "MONTH_NOT_ENDED"
    NOT_A_SCHOOL_DAY = "NOT_A_SCHOOL_DAY"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    NOT_ENROLLED = "NOT_ENROLLED"
    NOT_FOUND = "NOT_FOUND"
    NOT_YOUR_CHILD = "NOT_YOUR_CHILD"
    NO_VOUCHER = "NO_VOUCHER"
    PRESCRIPTION_EXPIRED = "PRESCRIPTION_EXPIRED"
    QR_EXPIRED = "QR_EXPIRED"
    QR_INVALID = "QR_INVALID"
    QR_NOT_FOR_THIS_DAY = "QR_NOT_FOR_THIS_DAY"
    QR_REPLAYED = "QR_REPLAYED"
    QUANTITY_EXCEEDED = "QUANTITY_EXCEEDED"
    WRONG_CATEGORY = "WRONG_CATEGORY"
    WRONG_SCHOOL = "WRONG_SCHOOL"
    # The ledger's own refusals, passed through (wallet/ledger.py).
    ACCOUNT_CONFLICT = "ACCOUNT_CONFLICT"
    FLOW_NOT_ALLOWED = "FLOW_NOT_ALLOWED"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    NON_CASHABLE = "NON_CASHABLE"
    PURPOSE_MISMATCH = "PURPOSE_MISMATCH"
    REASON_NOT_ALLOWED = "REASON_NOT_ALLOWED"
    REVERSED_ALREADY = "REVERSED_ALREADY"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    TRANSFER_ID_REUSED = "TRANSFER_ID_REUSED"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_TRANSFER = "UNKNOWN_TRANSFER"


@strawberry.enum(
    description="Why an answer to an offer, or a bank account, was refused (nothing changed)."
)
class OfferRefusalCode(Enum):
    # The offer flow's refusals (wallet/offers.py, wallet/idempotency.py).
    FULFILMENT_UNAVAILABLE = "FULFILMENT_UNAVAILABLE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    INVALID_IBAN = "INVALID_IBAN"
    INVALID_DECLINE_REASON = "INVALID_DECLINE_REASON"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    NOT_IN_REGISTRY = "NOT_IN_REGISTRY"
    OFFER_ALREADY_ANSWERED = "OFFER_ALREADY_ANSWERED"
    OFFER_EXPIRED = "OFFER_EXPIRED"
    OFFER_NOT_FOUND = "OFFER_NOT_FOUND"
    # A voucher programme's fulfiller refusing at consent (vouchers/fulfilment.py) passes its code on.
    NOT_A_SCHOOL_DAY = "NOT_A_SCHOOL_DAY"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    NOT_FOUND = "NOT_FOUND"
