"""The reference model: what the rules say the ledger and the meal vouchers must do, in plain
Python, with no database and none of the product's code.

It is written from the rules (docs/money.md, the domain's description, the dated parameters as
data), not from the code, so that when a path of the code disagrees with it one of the two is
wrong, and a person decides which. Every rule is in this module, each in one place:

- `local_day` says which day it is in Kazakhstan; `Calendar` which days are school days and
  how many school days later a meal from the list may still be claimed; `meal_price` what a
  meal costs;
- `FLOWS`, `flow_refusal` where value may go; `Model.post` the ledger's order of refusals;
- `Model.redeem` the meal's order of refusals (`_meal_refusal`), replays (`_same_request`,
  `key_scope`: a key is its school's own) and payment;
- `Model.dispense` a dispensing's order of refusals (a medicines voucher in force today among
  them), replays (a key is its pharmacy's own) and payment.

Answers are values: `Posted`, `Served` (a meal, or its replay) or `Refused` (a stable code).
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from familymap.parameters import ParameterError, default_parameters

MEALS_PURPOSE = "school_meals"
MEAL_TYPES = ("breakfast", "lunch")
# Kazakhstan keeps one time, UTC+5, all year and everywhere (since March 2024).
KAZAKHSTAN_OFFSET = timedelta(hours=5)

# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal with its stable code; nothing changed."""

    code: str


@dataclass(frozen=True, slots=True)
class Posted:
    """A transfer posted (or, `replayed`, found posted before with the same content)."""

    transfer_id: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Served:
    """A meal served to a child (or, `replayed`, the first answer to the same request)."""

    child: str
    day: date
    meal_type: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Dispensed:
    """Medicine dispensed against a prescription (or, `replayed`, the first answer again)."""

    prescription: str
    quantity: int
    replayed: bool = False


Answer = Refused | Posted | Served | Dispensed

# --- the calendar and prices, from the parameters as data ---------------------------------


def local_day(moment: datetime) -> date:
    """The day it is in Kazakhstan at `moment` (an aware instant)."""
    return (moment.astimezone(UTC) + KAZAKHSTAN_OFFSET).date()


class Calendar:
    """School days: Monday to Friday inside the school year, outside its vacations and
    holidays. `today` is Kazakhstan's day; a day after it has no meal yet."""

    def __init__(self, today: date) -> None:
        self.today = today

    def year(self, day: date) -> dict | None:
        """The school year's calendar in force on `day` (the law's data), or None."""
        try:
            return default_parameters().get("school_calendar.year", day)
        except ParameterError:
            return None

    def is_school_day(self, day: date) -> bool:
        year = self.year(day)
        if year is None:
            return False
        if not year["start"] <= day <= year["end"] or day.weekday() >= 5:
            return False
        vacations = any(first <= day <= last for first, last in year.get("vacations", []))
        return not vacations and day not in year.get("holidays", [])

    def school_days_after(self, day: date) -> int:
        """How many school days come after `day`, up to and including today."""
        return sum(
            self.is_school_day(day + timedelta(days=n))
            for n in range(1, (self.today - day).days + 1)
        )

    def claim_closed(self, day: date) -> bool:
        """Whether a meal of `day` may no longer be claimed from the list today: more school
        days than the window (a parameter of the meal's day) have passed since."""
        window = int(default_parameters().get("school_meals.claim_window_school_days", day))
        return self.school_days_after(day) > window


def meal_price(*, region: str, meal_type: str, year_start: date) -> int:
    """The regional meal price of the school year times the meal type's share, in whole
    tiyn, half a tiyn rounded up."""
    parameters = default_parameters()
    regional = int(parameters.get("school_meals.meal_price_tiyn", year_start)[region])
    share = int(parameters.get("school_meals.meal_type_share_pct", year_start)[meal_type])
    return (regional * share + 50) // 100


# --- where value may flow -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the rules see it."""

    code: str
    kind: str  # budget_programme | purpose_wallet | merchant | bank_payout | settlement
    purpose: str | None


# (debit kind, credit kind) -> does the purpose have to match ("same"), be absent ("cash"),
# or not matter ("any"), and the reasons value moves for along it. Anything else is refused.
FLOWS = {
    ("budget_programme", "purpose_wallet"): ("same", {"VOUCHER_FUNDING"}),
    ("budget_programme", "bank_payout"): ("cash", {"BENEFIT_PAYMENT"}),
    ("purpose_wallet", "merchant"): (
        "same",
        {"MEAL_SERVED", "MEDICINE_DISPENSED", "AID_DELIVERED"},
    ),
    ("merchant", "settlement"): ("any", {"INVOICE_PAID"}),
}


def flow_refusal(debit: Account, credit: Account, reason: str) -> str | None:
    """Why value may not go from `debit` to `credit` for `reason`, or None when it may.

    Purpose-bound value never becomes cash nor passes to a person (NON_CASHABLE); between
    kinds that may meet, the purposes must agree (PURPOSE_MISMATCH); other pairs of kinds
    never meet (FLOW_NOT_ALLOWED); and each flow carries only its own reasons
    (REASON_NOT_ALLOWED)."""
    rule, reasons = FLOWS.get((debit.kind, credit.kind), (None, set()))
    purposes_ok = {
        "same": debit.purpose is not None and debit.purpose == credit.purpose,
        "cash": debit.purpose is None and credit.purpose is None,
        "any": True,
    }
    if rule is not None and purposes_ok[rule]:
        return None if reason in reasons else "REASON_NOT_ALLOWED"
    if debit.purpose is not None and (
        credit.kind == "bank_payout"
        or (debit.kind == "purpose_wallet" and credit.kind != "merchant")
    ):
        return "NON_CASHABLE"
    if rule is not None:
        return "PURPOSE_MISMATCH"
    return "FLOW_NOT_ALLOWED"


# --- the world a sequence runs in ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class School:
    name: str
    account: str
    region: str


@dataclass(frozen=True, slots=True)
class Child:
    name: str
    school: str  # the name of the school the child is enrolled at
    wallet: str
    voucher_years: frozenset[date]  # the school years (by start) the child has a voucher for
    voucher_ids: dict[date, int] = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class QrCode:
    """A QR code shown by a parent: for their child, at the child's school, used once."""

    child: str
    school: str
    nonce: str
    year_start: date  # it names the child's voucher of this school year
    issued_on: date  # Kazakhstan's day when the parent's phone made it: the meal's only day


@dataclass(frozen=True, slots=True)
class MealAsk:
    """A canteen's request: by QR code, or by picking a child from the school's list."""

    key: str
    school: str
    day: date
    meal_type: str
    child: str | None = None
    qr: QrCode | None = None


@dataclass(frozen=True, slots=True)
class Meal:
    child: str
    day: date
    meal_type: str
    school: str
    price: int
    method: str
    nonce: str | None
    claimed_on: date  # the day the canteen recorded it: after `day` for a late claim


@dataclass(frozen=True, slots=True)
class TransferContent:
    debit: str
    credit: str
    amount: int
    reason: str


@dataclass(frozen=True, slots=True)
class Prescription:
    """An e-prescription: a patient, a drug, how much of it, at what unit price, until when."""

    name: str
    patient_wallet: str
    drug: str
    quantity: int
    unit_price: int
    valid_until: date
    voucher: tuple[date, date] | None  # the patient's medicines voucher's period, if any


@dataclass(frozen=True, slots=True)
class DispenseAsk:
    """A pharmacy's request to dispense against a prescription, with the identity check."""

    key: str
    merchant: str  # a merchant's name: a pharmacy, or a school (which may not)
    prescription: str
    drug: str
    quantity: int
    identity: str
    identity_reason: str | None = None  # the pharmacist's written account of a fallback
    identity_reason_code: str | None = None  # why the fallback, from a fixed list


IDENTITY_CHECKS = ("egov_qr", "face_id", "fallback")
FALLBACK_REASONS = ("no_smartphone", "face_id_failed", "camera_unavailable", "egov_unavailable")
FALLBACK_ACCOUNT_WORDS = 3  # a word: two letters or more


def identity_checked(ask: DispenseAsk) -> bool:
    """Whether the patient's identity was checked: by eGov QR or Face-ID, or by the fallback
    with a reason from the list and an account of what happened in a few words."""
    if ask.identity != "fallback":
        return ask.identity in IDENTITY_CHECKS
    words = re.findall(r"[^\W\d_]{2,}", ask.identity_reason or "")
    return ask.identity_reason_code in FALLBACK_REASONS and len(words) >= FALLBACK_ACCOUNT_WORDS


# --- the model -------------------------------------------------------------------------------


class Model:
    """Accounts, transfers, meals and requests as the rules say they are."""

    def __init__(
        self,
        *,
        today: date,
        accounts: list[Account],
        schools: list[School],
        children: list[Child],
    ) -> None:
        self.calendar = Calendar(today)
        self.accounts = {account.code: account for account in accounts}
        self.schools = {school.name: school for school in schools}
        self.children = {child.name: child for child in children}
        self.balances = dict.fromkeys(self.accounts, 0)
        self.transfers: dict[str, TransferContent] = {}
        self.meals: dict[tuple[str, date, str], Meal] = {}
        self.requests: dict[tuple[str, ...], tuple[MealAsk, Meal]] = {}
        self.nonces: set[str] = set()
        self.prescriptions: dict[str, Prescription] = {}
        self.pharmacies: dict[str, str] = {}  # merchant name -> account, of the medicines kind
        self.dispensed: dict[str, int] = {}  # prescription -> quantity dispensed
        # (pharmacy, idempotency key) -> the first request: a key is each pharmacy's own
        self.dispensings: dict[tuple[str, str], DispenseAsk] = {}

    # --- the ledger

    def post(
        self, *, transfer_id: str, debit: str, credit: str, amount: int, reason: str, fresh: bool
    ) -> Answer:
        """Post a transfer. `fresh`: the caller says the id was never used (a meal's payment),
        so even a repeat of the same content is refused rather than replayed."""
        if amount <= 0:
            return Refused("INVALID_AMOUNT")
        if debit not in self.accounts or credit not in self.accounts:
            return Refused("UNKNOWN_ACCOUNT")
        if debit == credit:
            return Refused("SAME_ACCOUNT")
        content = TransferContent(debit, credit, amount, reason)
        # The id is the transfer: a used one is answered from what it was, before anything
        # about this request (its flow, the money) is looked at.
        if transfer_id in self.transfers:
            if self.transfers[transfer_id] == content and not fresh:
                return Posted(transfer_id, replayed=True)
            return Refused("TRANSFER_ID_REUSED")
        if refusal := flow_refusal(self.accounts[debit], self.accounts[credit], reason):
            return Refused(refusal)
        if self.accounts[debit].kind != "budget_programme" and self.balances[debit] < amount:
            return Refused("INSUFFICIENT_FUNDS")
        self.transfers[transfer_id] = content
        self.balances[debit] -= amount
        self.balances[credit] += amount
        return Posted(transfer_id)

    # --- meals

    def redeem(self, ask: MealAsk) -> Answer:
        """One meal request, as a canteen sends it."""
        first = self.requests.get(key_scope(ask))
        if first is not None:
            # A key that served a meal answers the same request with that meal, ever after.
            earlier, meal = first
            if _same_request(earlier, ask):
                return Served(meal.child, meal.day, meal.meal_type, replayed=True)
            return Refused("IDEMPOTENCY_KEY_REUSED")
        refusal = self._meal_refusal(ask)
        if refusal is not None:
            return Refused(refusal)
        child = self.children[ask.qr.child if ask.qr else ask.child]
        school = self.schools[ask.school]
        year_start = self.calendar.year(ask.day)["start"]
        price = meal_price(region=school.region, meal_type=ask.meal_type, year_start=year_start)
        paid = self.post(
            transfer_id=meal_transfer_id(child, ask.day, ask.meal_type),
            debit=child.wallet,
            credit=school.account,
            amount=price,
            reason="MEAL_SERVED",
            fresh=True,
        )
        if isinstance(paid, Refused):
            return paid
        meal = Meal(
            child.name, ask.day, ask.meal_type, school.name, price,
            "qr" if ask.qr else "list", ask.qr.nonce if ask.qr else None, self.calendar.today,
        )  # fmt: skip
        self.meals[child.name, ask.day, ask.meal_type] = meal
        self.requests[key_scope(ask)] = (ask, meal)
        if ask.qr:
            self.nonces.add(ask.qr.nonce)
        return Served(child.name, ask.day, ask.meal_type)

    def redeem_batch(self, asks: list[MealAsk]) -> list[Answer]:
        """A canteen's offline batch: each item as if sent alone, in order."""
        return [self.redeem(ask) for ask in asks]

    def redeem_together(self, asks: list[MealAsk], answered: list[Answer]) -> list[Answer]:
        """Requests arriving at the same moment: each as if sent alone, in some order. The
        order whose answers are `answered` is taken, if there is one; else arrival order
        (and its answers differ from `answered`)."""
        for order in itertools.permutations(range(len(asks))):
            trial = copy.deepcopy(self)
            answers: list[Answer | None] = [None] * len(asks)
            for position in order:
                answers[position] = trial.redeem(asks[position])
            if answers == answered:
                self.__dict__.update(trial.__dict__)
                return answers
        return [self.redeem(ask) for ask in asks]

    def _meal_refusal(self, ask: MealAsk) -> str | None:
        """Why a new meal request is refused, the first rule it breaks in this order."""
        if ask.meal_type not in MEAL_TYPES:
            return "BAD_USER_INPUT"
        if ask.qr is not None and ask.qr.school != ask.school:
            return "WRONG_SCHOOL"
        if ask.day > self.calendar.today:
            return "NOT_A_SCHOOL_DAY"  # a meal is recorded once it is served
        if ask.qr is not None and ask.day != ask.qr.issued_on:
            return "QR_NOT_FOR_THIS_DAY"
        if not self.calendar.is_school_day(ask.day):
            return "NOT_A_SCHOOL_DAY"
        if ask.qr is None and self.calendar.claim_closed(ask.day):
            return "CLAIM_WINDOW_CLOSED"
        child = self.children.get(ask.qr.child if ask.qr else ask.child)
        if child is None or child.school != ask.school:
            return "NOT_ENROLLED"
        year_start = self.calendar.year(ask.day)["start"]
        if year_start not in child.voucher_years:
            return "NO_VOUCHER"
        if ask.qr is not None and ask.qr.year_start != year_start:
            return "QR_INVALID"
        if ask.qr is not None and ask.qr.nonce in self.nonces:
            return "QR_REPLAYED"
        if (child.name, ask.day, ask.meal_type) in self.meals:
            return "ALREADY_REDEEMED"
        return None

    # --- medicines

    def dispense(self, ask: DispenseAsk, *, today: date) -> Answer:
        """A pharmacy dispenses against a prescription and is paid from the patient's
        medicines wallet."""
        if ask.merchant not in self.pharmacies:
            return Refused("WRONG_CATEGORY")
        rx = self.prescriptions.get(ask.prescription)
        if rx is None:
            return Refused("NOT_FOUND")
        first = self.dispensings.get((ask.merchant, ask.key))
        if first is not None:
            same = (first.merchant, first.prescription, first.drug, first.quantity,
                    first.identity) == (ask.merchant, ask.prescription, ask.drug, ask.quantity,
                                        ask.identity)  # fmt: skip
            if not same:
                return Refused("IDEMPOTENCY_KEY_REUSED")
            return Dispensed(first.prescription, first.quantity, replayed=True)
        if not identity_checked(ask):
            return Refused("IDENTITY_CHECK_REQUIRED")
        if ask.drug != rx.drug:
            return Refused("DRUG_MISMATCH")
        if today > rx.valid_until:
            return Refused("PRESCRIPTION_EXPIRED")
        if ask.quantity <= 0:
            return Refused("BAD_USER_INPUT")
        if rx.voucher is None or not rx.voucher[0] <= today <= rx.voucher[1]:
            return Refused("NO_VOUCHER")
        if self.dispensed.get(rx.name, 0) + ask.quantity > rx.quantity:
            return Refused("QUANTITY_EXCEEDED")
        paid = self.post(
            transfer_id=f"dispensing:{ask.merchant}:{ask.key}", debit=rx.patient_wallet,
            credit=self.pharmacies[ask.merchant], amount=ask.quantity * rx.unit_price,
            reason="MEDICINE_DISPENSED", fresh=False,
        )  # fmt: skip
        if isinstance(paid, Refused):
            return paid
        self.dispensed[rx.name] = self.dispensed.get(rx.name, 0) + ask.quantity
        self.dispensings[ask.merchant, ask.key] = ask
        return Dispensed(rx.name, ask.quantity)


def key_scope(ask: MealAsk) -> tuple[str, ...]:
    """What an idempotency key is unique in: its school's requests (each merchant's keys are
    its own)."""
    return (ask.school, ask.key)


def _same_request(first: MealAsk, again: MealAsk) -> bool:
    """Whether `again` repeats `first`: the same school, day, meal and the same child chosen
    the same way (the same QR code, or the same child from the list)."""
    return (first.school, first.day, first.meal_type, first.child, first.qr) == (
        again.school, again.day, again.meal_type, again.child, again.qr,
    )  # fmt: skip


def meal_transfer_id(child: Child, day: date, meal_type: str) -> str:
    """A meal's payment id: one per voucher, day and meal type."""
    start = Calendar(day).year(day)["start"]
    return f"meal:{child.voucher_ids[start]}:{day.isoformat()}:{meal_type}"


def days_around(today: date, *, before: int, after: int) -> list[date]:
    """Every day from `before` days before `today` to `after` days after it."""
    return [today + timedelta(days=n) for n in range(-before, after + 1)]
