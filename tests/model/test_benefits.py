"""Cash benefits against the reference model (tests/model/benefit_rules.py): hypothesis drives
random sequences through the services the API, the inbound SMS endpoint, the wallet's jobs and
`socialwallet bank reconcile` use, on SQLite and PostgreSQL. A family is offered the quarter's
ASP; then time moves (with or without the daily jobs: expiry, the months that fell due, the
bank's API taking the orders), the mother accepts or declines in the app (with or without a
reason; again; after a decline; after the deadline) or by SMS (with the offer's code, another
code, none; a repeated delivery), children are born (today, before the offer, reported late; a
day not yet come), the family map's national run reaches the family (in January: the first
quarter's ASP offered as a renewal, answered by a reply without a code), the bank's statement
arrives (paid, returned, a wrong amount, a reference no
payment has, paid twice, a statement imported again), and a school draws acts (last month, this
month). After every step the offer's state, decline reason and months, the payments (month,
amount, state), the family's ledger transfers, its other offers, the SMS to the phone and every
answer must be the model's, and `ledger verify` clean.

Bounded for `make test` (SOCIALWALLET_MODEL_EXAMPLES / SOCIALWALLET_MODEL_STEPS run more and
longer sequences; docs/money.md, "The reference model").
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, date, datetime

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.model.benefit_rules import (
    DECLINE_REASONS,
    BenefitModel,
    Family,
    Line,
    asp_amount,
    month_ended,
    month_of,
    schedule,
)
from tests.model.benefit_world import BORN, INCOME, Drive, build_family, observe
from tests.model.database import Database, ledger_problems, print_seen, run_machine
from tests.model.rules import local_day

EXAMPLES = int(os.environ.get("SOCIALWALLET_MODEL_EXAMPLES", "15"))
STEPS = int(os.environ.get("SOCIALWALLET_MODEL_STEPS", "12"))

OFFERED_AT = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)  # 14:30 in Astana
# Where time may move to (UTC): a week on; Astana's 1 December while UTC's 30 November; the
# 1st and 3rd of December; half an hour either side of the offer's deadline; Astana's New
# Year's night; January, then past the month after the deadline.
MOMENTS = (
    datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
    datetime(2026, 11, 30, 19, 30, tzinfo=UTC),
    datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    datetime(2026, 12, 3, 6, 0, tzinfo=UTC),
    datetime(2026, 12, 18, 9, 0, tzinfo=UTC),
    datetime(2026, 12, 18, 10, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 19, 30, tzinfo=UTC),
    datetime(2027, 1, 4, 9, 30, tzinfo=UTC),
    datetime(2027, 1, 20, 9, 30, tzinfo=UTC),
)
# (path, answer) -> how often the model expected it, printed at the end (pytest -s).
SEEN: Counter[tuple[str, str]] = Counter()


def benefit_machine(db: Database) -> type[RuleBasedStateMachine]:
    class BenefitMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world = db.run(build_family(db.engine, OFFERED_AT))
            self.drive = Drive(db.engine, self.world)
            self.model = BenefitModel(Family(list(BORN), INCOME), self.world.phone, OFFERED_AT)
            self.model.offer()
            self.serial = 0
            self.statements: list[list[Line]] = []
            self.births = 0

        def fresh(self, prefix: str) -> str:
            self.serial += 1
            return f"{prefix}-{self.world.run}-{self.serial}"

        @property
        def now(self) -> datetime:
            return self.model.now

        # --- time

        @initialize()
        def offered(self) -> None:
            """The quarter's offer, quoted month by month (checked by the invariants)."""

        @precondition(lambda self: self.model.now < MOMENTS[-1])
        @rule(data=st.data())
        def time_passes(self, data: st.DataObject) -> None:
            """Time moves on; the wallet's daily jobs run then, or not (a quiet day)."""
            later = [moment for moment in MOMENTS if moment > self.now]
            self.model.now = data.draw(st.sampled_from(later), label="now")
            jobs = data.draw(
                st.sampled_from(("jobs", "jobs, the bank takes", "none", "jobs, the bank refuses")),
                label="jobs",
            )
            if jobs != "none":
                bank = jobs.removeprefix("jobs, the bank ") if "bank" in jobs else None
                db.run(self.drive.daily_jobs(now=self.now, bank=bank))
                self.model.daily_jobs(bank=bank)

        # --- answers

        @rule(data=st.data())
        def answer_in_the_app(self, data: st.DataObject) -> None:
            """acceptOffer, or declineOffer with or without a reason."""
            accept = data.draw(st.booleans(), label="accept")
            reason = None
            if not accept:
                reason = data.draw(st.sampled_from((None, *DECLINE_REASONS)), label="reason")
            answered = db.run(self.drive.answer(accept=accept, reason=reason, now=self.now))
            expected = self.model.answer(accept=accept, reason=reason)
            SEEN["app", expected] += 1
            assert answered == expected, f"the app answered {answered}, the model {expected}"

        @rule(data=st.data())
        def reply_by_sms(self, data: st.DataObject) -> None:
            """A reply to 1414: yes or no, with the offer's code, another code or none; or a
            delivery the gateway repeats."""
            if self.model.replies and data.draw(st.booleans(), label="repeat a delivery"):
                message_id = data.draw(st.sampled_from(sorted(self.model.replies)), label="id")
                text = "1"  # a repeated delivery is recognised by its id alone
            else:
                message_id = self.fresh("sms")
                answer = data.draw(st.sampled_from(("1", "2")), label="answer")
                renewal_codes = db.run(self.drive.renewal_codes())
                code = data.draw(
                    st.sampled_from((self.world.reply_code, None, "9999" if
                                     self.world.reply_code != "9999" else "9998",
                                     *sorted(renewal_codes))),
                    label="code",
                )  # fmt: skip
                text = answer if code is None else f"{answer} {code}"
            answered = db.run(self.drive.reply(message_id=message_id, text=text, now=self.now))
            renewals = [o.state for o in self.model.others if o.renewal]
            expected = self.model.reply(
                message_id, text, self.world.reply_code, db.run(self.drive.renewal_codes())
            )
            changed = renewals != [o.state for o in self.model.others if o.renewal]
            SEEN["sms to the renewal" if changed else "sms", expected[0]] += 1
            assert answered == expected, f"the SMS was {answered}, the model {expected}"

        # --- life events

        @precondition(lambda self: self.births < 2)
        @rule(data=st.data())
        def child_born(self, data: st.DataObject) -> None:
            """The civil registry reports a birth: today, a few days ago, before the offer was
            made, or (refused) tomorrow."""
            today = local_day(self.now)
            born = data.draw(
                st.sampled_from((today, today.replace(day=1) if today.day > 1 else today,
                                 date(2026, 11, 10), date.fromordinal(today.toordinal() + 1))),
                label="born",
            )  # fmt: skip
            answered = db.run(self.drive.birth(event_id=self.fresh("birth"), born=born,
                                               now=self.now))  # fmt: skip
            if born > today:
                expected = "FUTURE_DATE"
            else:
                expected = "recorded"
                self.births += 1
                self.model.birth(born)
            SEEN["birth", expected] += 1
            assert answered == expected, f"the birth was {answered}, the model {expected}"

        @rule()
        def national_run(self) -> None:
            """The family map's run reaches the family (the national run, each quarter) and
            the offer job offers what it found: in the next quarter, ASP's renewal."""
            db.run(self.drive.national_run(now=self.now))
            offers = len(self.model.others)
            self.model.decided_again()
            SEEN["national run", "renewal" if len(self.model.others) > offers else "none"] += 1

        # --- the bank

        @rule(data=st.data())
        def bank_statement(self, data: st.DataObject) -> None:
            """The bank's statement of the payout account: one to three lines, or a statement
            imported before, again."""
            if self.statements and data.draw(st.booleans(), label="import again"):
                lines = data.draw(st.sampled_from(self.statements), label="statement")
            else:
                lines = []
                for _ in range(data.draw(st.integers(1, 3), label="lines")):
                    lines.append(self.line(data))
                self.statements.append(lines)
            keys = db.run(observe(db.engine, self.world)).keys
            answered = db.run(self.drive.statement(lines, months=keys, now=self.now))
            expected = self.model.statement(lines)
            for outcome in expected:
                SEEN["statement", outcome] += 1
            assert answered == expected, f"the statement did {answered}, the model {expected}"

        def line(self, data: st.DataObject) -> Line:
            ordered = sorted(self.model.payments)
            month = data.draw(
                st.sampled_from(ordered) if ordered else st.none(), label="month"
            ) if data.draw(st.integers(0, 4), label="known") else None  # fmt: skip
            kind = data.draw(st.sampled_from(("paid", "returned", "wrong amount")), label="kind")
            amount = self.model.payments[month].amount if month else 100_000
            return Line(
                self.fresh("ref"),
                "credit" if kind == "returned" else "debit",
                month,
                amount + (100 if kind == "wrong amount" else 0),
            )

        # --- acts

        @rule(data=st.data())
        def prepare_act(self, data: st.DataObject) -> None:
            """A school draws the act of last month or of this one."""
            this = month_of(local_day(self.now))
            month = data.draw(
                st.sampled_from((this, month_of(date.fromordinal(this.toordinal() - 1)))),
                label="month",
            )
            answered = db.run(self.drive.prepare_act(month=month, now=self.now))
            expected = "drawn" if month_ended(month, local_day(self.now)) else "MONTH_NOT_ENDED"
            SEEN["act", expected] += 1
            assert answered == expected, f"the act was {answered}, the model {expected}"

        # --- after every step

        @invariant()
        def the_database_is_the_model(self) -> None:
            seen = db.run(observe(db.engine, self.world))
            model = self.model
            assert (seen.state, seen.decline_reason) == (model.state, model.decline_reason)
            assert seen.months == model.months, "the months the offer pays"
            assert seen.payments == model.payments, "the payments: month, amount, state"
            assert seen.transfers == sorted(model.transfers), "the family's ledger transfers"
            assert seen.others == sorted((o.programme, o.state) for o in model.others)
            assert seen.sms == sorted(model.sms), "the SMS to the family's phone"

        @invariant()
        def ledger_verify_is_clean(self) -> None:
            assert ledger_problems(db) == []

    return BenefitMachine


def test_benefits_agree_with_the_reference_model(database: Database) -> None:
    # Given a family offered the quarter's ASP, and the model beside it
    machine = benefit_machine(database)
    # When hypothesis drives random sequences of answers, births, days and statements
    # Then no sequence makes the offer, the payments, the ledger or the SMS differ from the model
    run_machine(machine, examples=EXAMPLES, steps=STEPS)
    print_seen(SEEN, width=10)


def test_the_benefit_model_pays_each_month_at_the_family_then() -> None:
    # Given the model's family (3 members, 60,000 tenge), its ASP offered on 18 November
    model = BenefitModel(Family(list(BORN), INCOME), "+77010000000", OFFERED_AT)
    model.offer()
    three, four = 3 * 3_559_570 - INCOME, 4 * 3_559_570 - INCOME
    assert model.months == {date(2026, m, 1): three for m in (10, 11, 12)}
    # When a daughter is born on 2 December and the mother accepts on the 3rd
    model.now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    model.birth(date(2026, 12, 2))
    model.now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert model.answer(accept=True) == "assigned"
    # Then October and November are paid for 3 members, December for 4
    assert {m: p.amount for m, p in model.payments.items()} == {
        date(2026, 10, 1): three, date(2026, 11, 1): three, date(2026, 12, 1): four,
    }  # fmt: skip
    assert asp_amount(model.family, date(2026, 12, 1)) == three
    assert schedule(model.family, date(2026, 12, 3))[date(2026, 12, 1)] == four
    # And a returned payment is reversed and told by SMS; a second return is unexpected
    back = Line("r1", "credit", date(2026, 11, 1), three)
    assert model.statement([back, Line("r2", "credit", date(2026, 11, 1), three)]) == [
        "returned", "unexpected",
    ]  # fmt: skip
    assert ("returned", date(2026, 11, 1), three) in model.transfers
    assert "returned 2026-11" in model.sms
    assert model.statement([back]) == ["already_imported"]


def test_a_declined_offer_can_be_accepted_until_its_deadline_only(database: Database) -> None:
    # Given an offer declined in the app (a sequence hypothesis rarely draws in full)
    world = database.run(build_family(database.engine, OFFERED_AT))
    drive = Drive(database.engine, world)
    model = BenefitModel(Family(list(BORN), INCOME), world.phone, OFFERED_AT)
    model.offer()
    assert database.run(drive.answer(accept=False, reason="OTHER", now=OFFERED_AT)) == "declined"
    assert model.answer(accept=False, reason="OTHER") == "declined"
    # When the deadline passes (the expiry job leaves a declined offer declined)
    model.now = MOMENTS[5]  # half an hour past the deadline
    database.run(drive.daily_jobs(now=model.now, bank=None))
    model.daily_jobs(bank=None)
    # Then consent comes too late, in the app and the model alike
    answered = database.run(drive.answer(accept=True, reason=None, now=model.now))
    assert answered == model.answer(accept=True) == "OFFER_EXPIRED"
    seen = database.run(observe(database.engine, world))
    assert (seen.state, seen.decline_reason) == (model.state, model.decline_reason)
    assert seen.state == "declined" and seen.payments == {} == model.payments


def test_a_continuing_asp_is_renewed_on_the_quarters_turn(database: Database) -> None:
    # Given the fourth quarter's ASP accepted in the app and its months paid to December
    world = database.run(build_family(database.engine, OFFERED_AT))
    drive = Drive(database.engine, world)
    model = BenefitModel(Family(list(BORN), INCOME), world.phone, OFFERED_AT)
    model.offer()

    def agree() -> None:
        seen = database.run(observe(database.engine, world))
        assert (seen.state, seen.payments) == (model.state, model.payments)
        assert seen.sms == sorted(model.sms)
        assert seen.others == sorted((o.programme, o.state) for o in model.others)
        assert seen.transfers == sorted(model.transfers)
        assert ledger_problems(database) == []

    assert database.run(drive.answer(accept=True, reason=None, now=OFFERED_AT)) == "assigned"
    assert model.answer(accept=True) == "assigned"
    # When January comes (the jobs run), and the national run reaches the family
    model.now = MOMENTS[7]  # 4 January
    database.run(drive.daily_jobs(now=model.now, bank="takes"))
    model.daily_jobs(bank="takes")
    database.run(drive.national_run(now=model.now))
    model.decided_again()
    # Then the first quarter is offered as a renewal, once, and nothing of it is paid yet
    agree()
    assert [(o.programme, o.renewal, o.state) for o in model.others] == [("ASP", True, "offered")]
    assert max(model.payments) == date(2026, 12, 1)
    database.run(drive.national_run(now=model.now))
    agree()
    # When the mother consents by a reply without a code (the one question asked lately)
    model.now = MOMENTS[8]  # 20 January
    answered = database.run(drive.reply(message_id="renew-1", text="1", now=model.now))
    assert answered == model.reply("renew-1", "1", world.reply_code) == ("assigned", False)
    # Then January is paid by the renewal's assignment, each month once
    agree()
    assert sorted(model.payments) == [date(2026, m, 1) for m in (10, 11, 12)] + [date(2027, 1, 1)]
