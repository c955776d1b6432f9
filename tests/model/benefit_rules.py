"""The reference model of cash benefits: what the rules say an offer, its answers, the months it
pays, the payments, the bank's statement and the SMS must do, in plain Python, with no database
and none of the product's code.

Written from the rules (docs/money.md "Amounts per month" and "The bank's side", docs/consent.md,
docs/funnel.md on declines, the ASP rule's text in docs/rules.md, the dated parameters as data),
not from the code. Every rule is in this module, each in one place:

- `asp_amount` what targeted social assistance pays a family on a day (the family as it was
  that day, the parameters in force that day), `quarter` its period;
- `BenefitModel.decided_again` the family decided again (a birth, the national run): a
  quarter after the one offered, still entitled, is offered as a renewal (docs/money.md,
  "Renewals": ASP is renewed; the next period starts after the previous one ended);
- `BenefitModel.offer` the quote (`schedule`: each month at the family as it was in it);
- `BenefitModel.answer` consent and decline in the app (a decline can become consent until the
  deadline; consent is final), `BenefitModel.reply` the same by SMS (which offer a reply is
  about: its code, or the one question the phone was asked lately);
- `BenefitModel.daily_jobs` expiry, the months that fell due, the bank's API taking orders;
- `BenefitModel.statement` a bank statement's lines: paid, returned (reversed, the family told),
  and what is flagged;
- `month_ended` which months may have an act.

Days are Kazakhstan's (`tests.model.rules.local_day`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from familymap.parameters import default_parameters
from tests.model.rules import local_day

OFFER_DAYS = 30  # an offer waits this long for an answer
BARE_REPLY_MEMORY = timedelta(days=30)  # a closed offer still counts as asked this long
DECLINE_REASONS = ("NOT_NEEDED", "WRONG_DATA", "DO_NOT_TRUST_SMS", "OTHER")
# A birth brings the newborn's own benefits, offered to the same phone.
BIRTH_OFFERS = ("BIRTH_BENEFIT", "CHILDCARE_TO_1_5")
# The states of an offer whose assignment pays.
ASSIGNED = ("assigned", "paid")

# --- months and the law's amounts ------------------------------------------------------------


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def last_day(month: date) -> date:
    return next_month(month) - timedelta(days=1)


def months(start: date, end: date) -> list[date]:
    out, month = [], month_of(start)
    while month <= end:
        out.append(month)
        month = next_month(month)
    return out


def quarter(day: date) -> tuple[date, date]:
    """ASP is assigned for a quarter: the calendar quarter of the day it is decided."""
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return first, last_day(date(first.year, first.month + 2, 1))


def asp_threshold(day: date) -> int:
    """The poverty line per member: the ASP share of the subsistence minimum in force."""
    parameters = default_parameters()
    share = Decimal(str(parameters.get("asp.subsistence_share", day)))
    minimum = int(parameters.get("subsistence_minimum", day))
    return int((share * minimum).to_integral_value(ROUND_HALF_UP))


@dataclass
class Family:
    """The registry's family as the ASP rule reads it: living members by birth, and income."""

    born: list[date]
    income: int

    def members(self, day: date) -> int:
        return sum(1 for birth in self.born if birth <= day)


def asp_amount(family: Family, day: date) -> int:
    """What ASP pays a month for the family as it was on `day`: the gap between the poverty
    line times the members and the family's income, if the income is (strictly) below; else
    the family is not entitled (0). No member of this family is idle."""
    line = asp_threshold(day) * family.members(day)
    return line - family.income if family.income < line else 0


def schedule(family: Family, decided_on: date) -> dict[date, int]:
    """Each month of the quarter decided on `decided_on`: a month that ended before the
    decision's month at the family as it was on the month's last day; the decision's month and
    later ones at the amount decided that day."""
    start, end = quarter(decided_on)
    now = asp_amount(family, decided_on)
    return {
        month: asp_amount(family, min(last_day(month), end)) if month < month_of(decided_on)
        else now
        for month in months(start, end)
    }  # fmt: skip


def month_ended(month: date, today: date) -> bool:
    """An act is for a month that is over (before today, in Kazakhstan)."""
    return next_month(month_of(month)) <= today


# --- the model -------------------------------------------------------------------------------


@dataclass
class Payment:
    month: date
    amount: int
    state: str  # ordered | sent | paid | returned | failed


@dataclass
class OtherOffer:
    """Another offer to the same phone: a newborn's (never answered by the sequence), or the
    renewal of ASP for a later quarter (answered by a reply without a code, when it is the
    one question asked lately)."""

    programme: str
    expires_at: datetime
    state: str = "offered"
    renewal: bool = False
    months: dict[date, int] = field(default_factory=dict)  # a renewal's, as decided
    quarter: date | None = None  # a renewal's first day

    def open(self, now: datetime) -> bool:
        return self.state == "offered" and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Line:
    """A bank statement line: its bank reference, direction, amount and the payment it names
    (a month of ours, or None for a reference no payment has)."""

    reference: str
    direction: str  # debit | credit
    month: date | None
    amount: int


@dataclass
class BenefitModel:
    """One family's ASP offer, from the moment it is made; what everything must be."""

    family: Family
    phone: str | None
    now: datetime
    state: str = "offered"
    amount: int = 0
    months: dict[date, int] = field(default_factory=dict)
    decline_reason: str | None = None
    expires_at: datetime | None = None
    assigned: bool = False
    payments: dict[date, Payment] = field(default_factory=dict)
    transfers: list[tuple[str, date, int]] = field(default_factory=list)
    sms: list[str] = field(default_factory=list)
    others: list[OtherOffer] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)  # bank reference -> outcome
    replies: dict[str, tuple[str, bool]] = field(default_factory=dict)  # message id -> outcome
    # The quarters decided for the family (the entitlement's periods), latest last.
    quarters: list[tuple[date, date]] = field(default_factory=list)

    @property
    def today(self) -> date:
        return local_day(self.now)

    # --- the offer

    def offer(self) -> None:
        """The offer job made the quarter's offer now, quoted month by month."""
        self.amount = asp_amount(self.family, self.today)
        self.months = schedule(self.family, self.today)
        self.expires_at = self.now + timedelta(days=OFFER_DAYS)
        self.sms.append("offer sms ASP")
        self.quarters.append(quarter(self.today))

    def open(self) -> bool:
        return self.state == "offered" and self.now < self.expires_at

    # --- answers

    def answer(self, *, accept: bool, reason: str | None = None) -> str:
        """An answer in the app: the offer's new state, or the refusal's code. A decline may
        be turned into consent until the deadline; consent is final; a decline is not
        repeated."""
        answerable = ("offered", "declined") if accept else ("offered",)
        if self.state not in answerable:
            return "OFFER_ALREADY_ANSWERED"
        if self.now >= self.expires_at:
            return "OFFER_EXPIRED"
        if not accept:
            self.state, self.decline_reason = "declined", reason
            self.sms.append("ASP declined")
            return self.state
        self.decline_reason = None
        self.amount = asp_amount(self.family, self.today)
        if self.amount == 0:
            self.state = "withdrawn"
            self.sms.append("ASP withdrawn")
            return self.state
        self.months = schedule(self.family, self.today)
        self.state, self.assigned = "assigned", True
        self._order_due()
        self.sms.append("ASP assigned")
        return self.state

    def reply(
        self, message_id: str, text: str, code: str, renewal_codes: dict[str, date] | None = None
    ) -> tuple[str, bool]:
        """An SMS reply from the phone: (the outcome, replayed). `code` is the ASP offer's,
        `renewal_codes` each renewal's code and the first day of its quarter."""
        if message_id in self.replies:
            return self.replies[message_id][0], True
        outcome, answer_sms = self._reply(text, code, renewal_codes or {})
        self.replies[message_id] = (outcome, False)
        if answer_sms:
            self.sms.append(f"answer {message_id}")
        return outcome, False

    def _reply(self, text: str, code: str, renewal_codes: dict[str, date]) -> tuple[str, bool]:
        words = text.split()
        accept = words[0] == "1"
        named = words[1] if len(words) > 1 else None
        others_open = [o for o in self.others if o.open(self.now)]
        any_open = self.open() or bool(others_open)
        if named is None and not any_open:
            return "no_open_offer", True
        if named is not None:
            if named in renewal_codes:
                [renewal] = [o for o in self.others if o.quarter == renewal_codes[named]]
                if not renewal.open(self.now):
                    return "closed_offer", True
                return self.answer_renewal(renewal, accept=accept), False
            if named == code:
                if not self.open():
                    return "closed_offer", True
                return self.answer(accept=accept), False
            return ("unknown_code" if any_open else "no_open_offer"), True
        asked = [self.expires_at, *(o.expires_at for o in self.others)]
        lately = [at for at in asked if at > self.now - BARE_REPLY_MEMORY]
        if len(lately) == 1:
            # The one question the phone was asked lately; open, since something is.
            if self.open():
                return self.answer(accept=accept), False
            [renewal] = others_open
            assert renewal.renewal, "the sequence answers no newborn's offer"
            return self.answer_renewal(renewal, accept=accept), False
        return "ambiguous", True

    # --- time and the daily jobs

    def expire(self) -> None:
        """Offers not answered by their deadline expire (a declined one stays declined)."""
        if self.state == "offered" and self.now >= self.expires_at:
            self.state = "expired"
        for other in self.others:
            if other.state == "offered" and self.now >= other.expires_at:
                other.state = "expired"

    def _order_due(self) -> None:
        """Every month of each assignment (the quarter's, an accepted renewal's) due by today
        (from its first day), once, at its own amount; a month that pays nothing is not
        ordered. The assignments' periods do not overlap, so a month is in one of them."""
        assigned = [self.months] if self.assigned else []
        assigned += [o.months for o in self.others if o.renewal and o.state in ASSIGNED]
        for schedule_ in assigned:
            for month, amount in schedule_.items():
                if month <= month_of(self.today) and month not in self.payments and amount > 0:
                    self.payments[month] = Payment(month, amount, "ordered")
                    self.transfers.append(("payment", month, amount))

    def daily_jobs(self, *, bank: str | None) -> None:
        """The jobs at the moment: expiry, then the months due; then, if the bank's relay ran,
        every order is `sent` (the bank's API took it) or `failed` (it refused it for good:
        the payment's transfer is reversed, the money is back in the programme's budget)."""
        self.expire()
        self._order_due()
        if bank is None:
            return
        for payment in self.payments.values():
            if payment.state != "ordered":
                continue
            payment.state = "sent" if bank == "takes" else "failed"
            if payment.state == "failed":
                self.transfers.append(("returned", payment.month, payment.amount))

    # --- the bank's statement

    def statement(self, lines: list[Line]) -> list[str]:
        """Each line's outcome, in order."""
        return [self._line(line) for line in lines]

    def _line(self, line: Line) -> str:
        if line.reference in self.references:
            return "already_imported"
        outcome = self._decide(line)
        self.references[line.reference] = outcome
        payment = self.payments.get(line.month) if line.month else None
        # The offer whose assignment the payment is of: the quarter's, or a renewal's.
        offer: BenefitModel | OtherOffer = self
        for other in self.others:
            if other.renewal and other.state in ASSIGNED and line.month in other.months:
                offer = other
        own = [p for p in self.payments.values() if p.month in offer.months]
        if outcome == "paid":
            payment.state = "paid"
            if offer.state == "assigned":
                offer.state = "paid"
        elif outcome == "returned":
            payment.state = "returned"
            self.transfers.append(("returned", payment.month, payment.amount))
            if self.phone:
                self.sms.append(f"returned {payment.month:%Y-%m}")
            if offer.state == "paid" and not any(p.state == "paid" for p in own):
                offer.state = "assigned"
        return outcome

    def _decide(self, line: Line) -> str:
        payment = self.payments.get(line.month) if line.month else None
        if payment is None:
            return "unknown_reference"
        if line.amount != payment.amount:
            return "wrong_amount"
        if line.direction == "debit":
            if payment.state in ("ordered", "sent"):
                return "paid"
            return "paid_twice" if payment.state == "paid" else "unexpected"
        if payment.state in ("ordered", "sent", "paid"):
            return "returned"
        return "unexpected"

    # --- life events

    def birth(self, born: date) -> None:
        """A child born on `born` (reported today) joins the family, which is decided again
        today: the newborn's benefits are offered to the same phone at once, and so is ASP's
        next quarter if today is in it (`decided_again`)."""
        self.family.born.append(born)
        for programme in BIRTH_OFFERS:
            self.others.append(OtherOffer(programme, self.now + timedelta(days=OFFER_DAYS)))
            self.sms.append(f"offer sms {programme}")
        self.decided_again()

    def decided_again(self) -> None:
        """The family map decides the family today (a life event, the national run). ASP is
        renewed (docs/money.md, "Renewals"): when today's quarter starts after the quarter
        decided last ended and the family is still entitled, that quarter is offered, with
        consent, to the same phone, quoted month by month. The same quarter decided again
        (another amount) offers nothing; a quarter is offered once."""
        start, end = quarter(self.today)
        if start <= self.quarters[-1][1] or asp_amount(self.family, self.today) == 0:
            return
        self.quarters.append((start, end))
        renewal = OtherOffer(
            "ASP", self.now + timedelta(days=OFFER_DAYS), renewal=True,
            months=schedule(self.family, self.today), quarter=start,
        )  # fmt: skip
        self.others.append(renewal)
        self.sms.append("offer sms ASP")

    def answer_renewal(self, renewal: OtherOffer, *, accept: bool) -> str:
        """A renewal answered (open, before its deadline): declined, or on consent decided
        again today (withdrawn if no longer entitled) and assigned, its months due ordered.
        A declined renewal leaves the quarter's assignment to end with its quarter."""
        if not accept:
            renewal.state = "declined"
            self.sms.append("ASP renewal declined")
            return renewal.state
        if asp_amount(self.family, self.today) == 0:
            renewal.state = "withdrawn"
            self.sms.append("ASP renewal withdrawn")
            return renewal.state
        renewal.months = schedule(self.family, self.today)
        renewal.state = "assigned"
        self._order_due()
        self.sms.append("ASP renewal assigned")
        return renewal.state
