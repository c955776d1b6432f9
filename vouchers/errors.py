"""The refusals of the voucher domain, each with a stable code clients can rely on.

    VoucherError
    ├── NotFound                 NOT_FOUND               no such merchant, child, act, ...
    ├── Forbidden                FORBIDDEN               the caller may not act on this object
    │   └── NotYourChild         NOT_YOUR_CHILD          a parent asking for another family's child
    ├── InvalidInput             BAD_USER_INPUT          malformed input (a bad rating, a month)
    ├── IdempotencyKeyReused     IDEMPOTENCY_KEY_REUSED  same key, other content
    ├── NotEligible              NOT_ELIGIBLE            no current entitlement to the voucher
    ├── NoVoucher                NO_VOUCHER              no voucher for that day (a child, a patient)
    ├── VoucherSpent             INSUFFICIENT_FUNDS      what is left on the voucher does not cover it
    ├── NotEnrolled              NOT_ENROLLED            the child is not enrolled at this school
    ├── WrongSchool              WRONG_SCHOOL            a QR code shown at another school
    ├── WrongCategory            WRONG_CATEGORY          a merchant redeeming another purpose
    ├── NotASchoolDay            NOT_A_SCHOOL_DAY        weekend, holiday, vacation, future day
    ├── QrNotForThisDay          QR_NOT_FOR_THIS_DAY     a QR meal for another day than its code's
    ├── ClaimWindowClosed        CLAIM_WINDOW_CLOSED     a list meal claimed too many days late
    ├── AlreadyRedeemed          ALREADY_REDEEMED        that meal was served already
    ├── QrInvalid                QR_INVALID              forged or malformed QR token
    ├── QrExpired                QR_EXPIRED              the QR token's minute has passed
    ├── QrReplayed               QR_REPLAYED             the QR token was used before
    ├── PrescriptionExpired      PRESCRIPTION_EXPIRED    dispensing after `valid_until`
    ├── DrugMismatch             DRUG_MISMATCH           another drug than prescribed
    ├── QuantityExceeded         QUANTITY_EXCEEDED       more than what remains
    ├── IdentityCheckRequired    IDENTITY_CHECK_REQUIRED no identity check, or a fallback without reason
    ├── FeedbackExists           FEEDBACK_EXISTS         one feedback per service event
    ├── ActNotApproved           ACT_NOT_APPROVED        an invoice needs an approved act
    ├── ActImmutable             ACT_IMMUTABLE           an approved act never changes
    ├── ActStateConflict         ACT_STATE_CONFLICT      e.g. approving a draft not yet submitted
    └── MonthNotEnded            MONTH_NOT_ENDED         an act for a month not over in Kazakhstan

The ledger's own refusals (INSUFFICIENT_FUNDS, NON_CASHABLE, PURPOSE_MISMATCH, ...) pass through
unchanged as `wallet.ledger.LedgerError`.

A refusal is raised with a catalogue message id and its values, e.g.
`NotFound("refusal.no_such_merchant")` or `NotASchoolDay("refusal.not_a_school_day", day=on)`:
`str()` is its English text for logs, and the GraphQL layer shows `text(language)` in the
language of the request (familymap/i18n.py, docs/i18n.md).
"""

from __future__ import annotations

from familymap.i18n import Refusal


class VoucherError(Refusal):
    """An expected refusal of the voucher domain; nothing was changed."""

    code = "VOUCHER_ERROR"


class NotFound(VoucherError):
    code = "NOT_FOUND"


class Forbidden(VoucherError):
    code = "FORBIDDEN"


class NotYourChild(Forbidden):
    code = "NOT_YOUR_CHILD"


class InvalidInput(VoucherError):
    code = "BAD_USER_INPUT"


class IdempotencyKeyReused(VoucherError):
    code = "IDEMPOTENCY_KEY_REUSED"


class NotEligible(VoucherError):
    code = "NOT_ELIGIBLE"


class NoVoucher(VoucherError):
    code = "NO_VOUCHER"


class NotEnrolled(VoucherError):
    code = "NOT_ENROLLED"


class VoucherSpent(VoucherError):
    # The ledger's code, with a message for the pharmacist instead of the ledger's words.
    code = "INSUFFICIENT_FUNDS"


class WrongSchool(VoucherError):
    code = "WRONG_SCHOOL"


class WrongCategory(VoucherError):
    code = "WRONG_CATEGORY"


class NotASchoolDay(VoucherError):
    code = "NOT_A_SCHOOL_DAY"


class QrNotForThisDay(VoucherError):
    code = "QR_NOT_FOR_THIS_DAY"


class ClaimWindowClosed(VoucherError):
    code = "CLAIM_WINDOW_CLOSED"


class AlreadyRedeemed(VoucherError):
    code = "ALREADY_REDEEMED"


class QrInvalid(VoucherError):
    code = "QR_INVALID"


class QrExpired(VoucherError):
    code = "QR_EXPIRED"


class QrReplayed(VoucherError):
    code = "QR_REPLAYED"


class PrescriptionExpired(VoucherError):
    code = "PRESCRIPTION_EXPIRED"


class DrugMismatch(VoucherError):
    code = "DRUG_MISMATCH"


class QuantityExceeded(VoucherError):
    code = "QUANTITY_EXCEEDED"


class IdentityCheckRequired(VoucherError):
    code = "IDENTITY_CHECK_REQUIRED"


class FeedbackExists(VoucherError):
    code = "FEEDBACK_EXISTS"


class ActNotApproved(VoucherError):
    code = "ACT_NOT_APPROVED"


class ActImmutable(VoucherError):
    code = "ACT_IMMUTABLE"


class ActStateConflict(VoucherError):
    code = "ACT_STATE_CONFLICT"


class MonthNotEnded(VoucherError):
    code = "MONTH_NOT_ENDED"
