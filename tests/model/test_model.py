"""The code against the reference model (tests/model/rules.py): hypothesis drives random
sequences of fundings, ledger postings (fresh, replayed, with a used id, refused flows) and
meal requests (by list and by QR code, replays with the same key, keys reused for another
meal or by another school, the wrong school, days that are not school days, a QR code of
another day, list meals inside and past the claim window, wallets run dry) through every path
the database has: the portable ORM path and the offline batch on SQLite and PostgreSQL, and
on PostgreSQL the hot path, group commit and the driver's ledger statements. After every step
the answers, the balances and the meals must be the model's, and `ledger verify` clean.

Bounded for `make test` (25 sequences of up to 15 steps); SOCIALWALLET_MODEL_EXAMPLES and
SOCIALWALLET_MODEL_STEPS run more and longer ones (docs/money.md, "The reference model"). A
divergence fails with the shrunk sequence of steps that shows it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.model import world as worlds
from tests.model.database import Database, ledger_problems, print_seen, run_machine
from tests.model.paths import (
    DRIVER_LEDGER_PATHS,
    DRIVER_MEAL_PATHS,
    LEDGER_PATHS,
    MEAL_PATHS,
    Paths,
)
from tests.model.rules import (
    MEAL_TYPES,
    Account,
    Child,
    DispenseAsk,
    MealAsk,
    Model,
    QrCode,
    Refused,
    School,
    Served,
    local_day,
    meal_transfer_id,
)

EXAMPLES = int(os.environ.get("SOCIALWALLET_MODEL_EXAMPLES", "25"))
STEPS = int(os.environ.get("SOCIALWALLET_MODEL_STEPS", "15"))

NOW = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)  # 14:30 in Astana, a Wednesday of 2026-2027
TODAY = local_day(NOW)
# When a sequence runs: NOW, or that evening in UTC, which is already Thursday in Astana.
NOWS = (NOW, datetime(2026, 11, 18, 19, 30, tzinfo=UTC))
# The days meals are asked for, the likeliest first: school days around today (on Wednesday
# the 18th, Friday 13 is the claim window's last day and Thursday 12 past it; on Thursday the
# 19th, Monday 16 is the last and Friday 13 past it), then any.
LIKELY_DAYS = tuple(date(2026, 11, day) for day in (18, 17, 19, 16, 13, 12))
DAYS = (
    *LIKELY_DAYS,
    date(2026, 11, 14),  # a Saturday
    date(2026, 10, 28),  # the autumn vacation
    date(2026, 11, 20),  # tomorrow at the latest: not served yet
    date(2026, 5, 20),  # a school day of the last school year
    date(2026, 7, 15),  # the summer
)


def issue_moments(now: datetime) -> tuple[datetime, ...]:
    """When a parent's phone made a QR code: now, a day earlier, and the half hours either
    side of Astana's last midnight (yesterday's code and today's), none after now."""
    midnight = datetime.combine(local_day(now), time(), tzinfo=UTC) - timedelta(hours=5)
    moments = (now, now - timedelta(days=1), midnight - timedelta(minutes=30),
               midnight + timedelta(minutes=30))  # fmt: skip
    return tuple(moment for moment in moments if moment <= now)


AMOUNTS = (1, 30_000, 54_000, 90_000, 200_000, 1_000_000)
# (path, answer) -> how often the model expected it: what the sequences exercised, printed
# at the end of a run (pytest -s).
SEEN: Counter[tuple[str, str]] = Counter()


def money_machine(db: Database) -> type[RuleBasedStateMachine]:
    """The state machine over `db`: the paths it has, the model beside them."""
    ledger_paths = LEDGER_PATHS + (DRIVER_LEDGER_PATHS if db.pool else ())
    meal_paths = MEAL_PATHS + (DRIVER_MEAL_PATHS if db.pool else ())

    class MoneyMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world = db.run(worlds.build_world(db.engine))
            self.world = world
            self.model = Model(
                today=TODAY, accounts=world.accounts, schools=world.schools,
                children=world.children,
            )  # fmt: skip
            self.model.prescriptions = {rx.name: rx for rx in world.prescriptions}
            self.model.pharmacies = {
                name: f"merchant:{world.merchant_ids[name]}" for name in worlds.PHARMACIES
            }
            self.paths = Paths(db.engine, db.pool, world, NOW, {})
            self.keys: list[str] = []
            self.asks: list[MealAsk] = []
            self.dispense_keys: list[str] = []
            self.transfer_ids: list[str] = []
            self.qr_codes: list[QrCode] = []
            self.serial = 0

        def fresh(self, prefix: str) -> str:
            self.serial += 1
            return f"{prefix}-{self.world.run}-{self.serial}"

        def account(self, kind: str, n: int = 0) -> str:
            return [a.code for a in self.world.accounts if a.kind == kind][n]

        # --- the ledger

        @initialize(data=st.data())
        def fund_every_wallet(self, data: st.DataObject) -> None:
            """The sequence runs at one moment (one day in Astana); each child's wallet starts
            with some money, or none."""
            self.now = data.draw(st.sampled_from(NOWS), label="now")
            self.today = local_day(self.now)
            self.paths.now = self.now
            self.model.calendar.today = self.today
            for child in self.world.children:
                amount = data.draw(st.sampled_from((0, 54_000, 200_000, 1_000_000)), label="fund")
                if amount:
                    self.post("transfer", self.fresh("fund"), self.world.programme, child.wallet,
                              amount, "VOUCHER_FUNDING")  # fmt: skip
            self.post(
                "transfer", self.fresh("fund"), self.world.medicines_programme,
                self.world.patient_wallet, 250_000, "VOUCHER_FUNDING",
            )  # fmt: skip

        @rule(data=st.data())
        def fund(self, data: st.DataObject) -> None:
            """A programme tops up a child's meals wallet."""
            child = data.draw(st.sampled_from(self.world.children), label="child")
            amount = data.draw(st.sampled_from(AMOUNTS), label="amount")
            path = data.draw(st.sampled_from(ledger_paths), label="path")
            self.post(
                path, self.fresh("fund"), self.world.programme, child.wallet, amount,
                "VOUCHER_FUNDING",
            )  # fmt: skip

        @rule(data=st.data())
        def post_anything(self, data: st.DataObject) -> None:
            """Any transfer, allowed or not, under a fresh id, a used one or a meal's."""
            wallets = [c.wallet for c in self.world.children]
            schools = [s.account for s in self.world.schools]
            flows = [
                (self.world.programme, wallets[0], "VOUCHER_FUNDING"),
                (schools[0], self.account("settlement"), "INVOICE_PAID"),
                (wallets[0], self.account("bank_payout"), "MEAL_SERVED"),
                (wallets[0], wallets[1], "MEAL_SERVED"),
                (wallets[1], self.account("merchant", 2), "MEDICINE_DISPENSED"),
                (self.world.programme, self.account("bank_payout"), "BENEFIT_PAYMENT"),
                (schools[0], schools[1], "INVOICE_PAID"),
                (self.world.programme, wallets[1], "MEAL_SERVED"),  # the wrong reason
                (wallets[2], wallets[2], "MEAL_SERVED"),
            ]
            debit, credit, reason = data.draw(st.sampled_from(flows), label="flow")
            amount = data.draw(st.sampled_from(AMOUNTS), label="amount")
            path = data.draw(st.sampled_from(ledger_paths), label="path")
            ids = [st.just(self.fresh("post"))]
            if self.transfer_ids:
                ids.append(st.sampled_from(self.transfer_ids))
            ids.append(
                st.builds(
                    lambda c, d, t: meal_transfer_id(c, d, t),
                    st.sampled_from([c for c in self.world.children if c.voucher_ids]),
                    st.sampled_from(LIKELY_DAYS[:3]),
                    st.sampled_from(MEAL_TYPES),
                )
            )
            transfer_id = data.draw(st.one_of(ids), label="transfer id")
            self.post(path, transfer_id, debit, credit, amount, reason)

        def post(self, path, transfer_id, debit, credit, amount, reason) -> None:
            expected = self.model.post(
                transfer_id=transfer_id, debit=debit, credit=credit, amount=amount,
                reason=reason, fresh=path != "transfer",
            )  # fmt: skip
            answered = db.run(
                self.paths.post(
                    path,
                    transfer_id=transfer_id,
                    debit=debit,
                    credit=credit,
                    amount=amount,
                    reason=reason,
                )
            )
            self.transfer_ids.append(transfer_id)
            SEEN[path, _outcome(expected)] += 1
            assert answered == expected, f"{path} answered {answered}, the model {expected}"

        # --- meals

        @rule(data=st.data())
        def show_qr(self, data: st.DataObject) -> None:
            """A parent shows their child's QR code (for the child's school), made now or
            earlier (still unexpired): it is for the day in Astana when it was made."""
            child = data.draw(
                st.sampled_from([c for c in self.world.children if worlds.THIS_YEAR in
                                 c.voucher_ids]), label="child",
            )  # fmt: skip
            issued = data.draw(st.sampled_from(issue_moments(self.now)), label="issued")
            self.qr_codes.append(
                self.paths.show_qr(child.name, child.school, worlds.THIS_YEAR, issued)
            )

        @rule(data=st.data())
        def redeem(self, data: st.DataObject) -> None:
            """A canteen's requests: one, a batch, or several arriving together."""
            path = data.draw(st.sampled_from(meal_paths), label="path")
            count = 1 if path in ("portable", "hot") else data.draw(st.integers(1, 3), label="n")
            # A batch is one school's; requests arriving together may come from any.
            school = data.draw(st.sampled_from(self.world.schools), label="school").name
            asks = []
            for _ in range(count):
                asks.append(self.ask(data, school if path == "batch" else None))
                self.keys.append(asks[-1].key)  # a later request of the step may repeat it
            self.send(path, asks)

        @precondition(lambda self: self.asks)
        @rule(data=st.data())
        def repeat(self, data: st.DataObject) -> None:
            """A canteen sends an earlier request again, word for word (a retry)."""
            ask = data.draw(st.sampled_from(self.asks), label="again")
            path = data.draw(st.sampled_from(meal_paths), label="path")
            self.send(path, [ask])

        @precondition(lambda self: db.pool is not None)
        @rule(data=st.data())
        def race(self, data: st.DataObject) -> None:
            """Two or three canteens send at the same moment: the same request, or the same
            child's meal under other keys (PostgreSQL's concurrent writers)."""
            path = data.draw(st.sampled_from(("portable", "hot")), label="path")
            first = self.ask(data, None)
            others = data.draw(st.sampled_from(("same request", "same meal")), label="race")
            count = data.draw(st.integers(2, 3), label="n")
            asks = [first] + [
                first if others == "same request" else replace(first, key=self.fresh("key"))
                for _ in range(count - 1)
            ]
            self.keys += [ask.key for ask in asks]
            self.asks += asks
            answered = db.run(self.paths.race(path, asks))
            expected = self.model.redeem_together(asks, answered)
            for outcome in expected:
                SEEN[f"race {path}", _outcome(outcome)] += 1
            assert answered == expected, f"{path} answered {answered}, the model {expected}"

        def send(self, path: str, asks: list[MealAsk]) -> None:
            self.asks += asks
            answered = db.run(self.paths.redeem(path, asks))
            if path == "group":
                expected = self.model.redeem_together(asks, answered)
            elif path == "batch":
                expected = self.model.redeem_batch(asks)
            else:
                expected = [self.model.redeem(ask) for ask in asks]
            for outcome in expected:
                SEEN[path, _outcome(outcome)] += 1
            assert answered == expected, f"{path} answered {answered}, the model {expected}"

        def ask(self, data: st.DataObject, school: str | None) -> MealAsk:
            """A request, mostly one the rules allow: a school day, a meal type, the child at
            their own school; otherwise anything (the key fresh or used before)."""
            keys = [st.just(self.fresh("key"))]
            if self.keys:
                keys.append(st.sampled_from(self.keys))
            key = data.draw(st.one_of(keys), label="key")
            days = st.one_of(st.sampled_from(LIKELY_DAYS), st.sampled_from(DAYS))
            meal_type = data.draw(
                st.one_of(*[st.sampled_from(MEAL_TYPES)] * 3, st.just("dinner")),
                label="meal",
            )
            if self.qr_codes and data.draw(st.booleans(), label="by QR"):
                qr: QrCode = data.draw(st.sampled_from(self.qr_codes), label="qr")
                at = school or self.school_for(data, qr.school)
                day = data.draw(st.one_of(st.just(qr.issued_on), days), label="day")
                return MealAsk(key, at, day, meal_type, qr=qr)
            day = data.draw(days, label="day")
            children = self.world.children
            pupils = [c for c in children if school is None or c.school == school] or children
            child = data.draw(
                st.one_of(st.sampled_from(pupils), st.sampled_from(children)), label="child"
            )
            at = school or self.school_for(data, child.school)
            return MealAsk(key, at, day, meal_type, child=child.name)

        def school_for(self, data: st.DataObject, own: str) -> str:
            """Mostly the child's own school, sometimes another."""
            others = st.sampled_from([s.name for s in self.world.schools])
            return data.draw(st.one_of(st.just(own), st.just(own), others), label="at")

        # --- medicines

        @rule(data=st.data())
        def fund_medicines(self, data: st.DataObject) -> None:
            """The medicines programme tops up the patient's wallet."""
            amount = data.draw(st.sampled_from(AMOUNTS), label="amount")
            self.post(
                "transfer", self.fresh("fund"), self.world.medicines_programme,
                self.world.patient_wallet, amount, "VOUCHER_FUNDING",
            )  # fmt: skip

        @rule(data=st.data())
        def dispense(self, data: st.DataObject) -> None:
            """A pharmacy (or a school, which may not) dispenses against a prescription:
            mostly as prescribed, sometimes the wrong drug, too much, or no identity check."""
            rx = data.draw(st.sampled_from(self.world.prescriptions), label="prescription")
            keys = [st.just(self.fresh("dispense"))]
            if self.dispense_keys:
                keys.append(st.sampled_from(self.dispense_keys))
            identity, reason, code = data.draw(
                st.sampled_from([
                    ("face_id", None, None), ("egov_qr", None, None),
                    ("fallback", "the patient has no smartphone", "no_smartphone"),
                    ("fallback", "no phone", "no_smartphone"), ("fallback", "no phone", None),
                    ("fallback", None, None), ("none", None, None),
                ]), label="identity",
            )  # fmt: skip
            ask = DispenseAsk(
                key=data.draw(st.one_of(keys), label="key"),
                merchant=data.draw(
                    st.sampled_from([worlds.PHARMACY, worlds.PHARMACY, "chemist", "north"]),
                    label="at",
                ),
                prescription=rx.name,
                drug=data.draw(st.sampled_from([rx.drug, rx.drug, "N02BE01"]), label="drug"),
                quantity=data.draw(st.sampled_from([1, 2, 1, 3, 0]), label="quantity"),
                identity=identity,
                identity_reason=reason,
                identity_reason_code=code,
            )
            self.dispense_keys.append(ask.key)
            expected = self.model.dispense(ask, today=self.today)
            answered = db.run(self.paths.dispense(ask))
            SEEN["dispense", _outcome(expected)] += 1
            assert answered == expected, f"dispense answered {answered}, the model {expected}"

        # --- after every step

        @invariant()
        def the_database_agrees_with_the_model(self) -> None:
            balances = db.run(worlds.balances(db.engine, self.world))
            assert balances == self.model.balances
            meals = db.run(worlds.meals(db.engine, self.world))
            assert meals == set(self.model.meals.values())
            dispensed = db.run(worlds.dispensed(db.engine, self.world))
            assert dispensed == {rx: n for rx, n in self.model.dispensed.items() if n}

        @invariant()
        def ledger_verify_is_clean(self) -> None:
            assert ledger_problems(db) == []

    return MoneyMachine


def _outcome(answer) -> str:
    """An answer's kind, for hypothesis's statistics (--hypothesis-show-statistics)."""
    if isinstance(answer, Refused):
        return answer.code
    return "replayed" if answer.replayed else "done"


def test_every_path_agrees_with_the_reference_model(database: Database) -> None:
    # Given the paths this database has, and the model
    machine = money_machine(database)
    # When hypothesis drives random sequences through them, checking after every step
    # Then no sequence makes any path's answers, balances or meals differ from the model's
    run_machine(machine, examples=EXAMPLES, steps=STEPS)
    print_seen(SEEN, width=18)


def test_the_model_refuses_what_the_rules_refuse() -> None:
    # Given a model of one school, one child with a voucher and an empty wallet
    wallet = Account("person:1:school_meals", "purpose_wallet", "school_meals")
    school = Account("merchant:s", "merchant", "school_meals")
    programme = Account("programme:p", "budget_programme", "school_meals")
    model = Model(
        today=TODAY, accounts=[wallet, school, programme],
        schools=[School("s", school.code, "astana"), School("t", "merchant:t", "astana")],
        children=[Child("c", "s", wallet.code, frozenset({worlds.THIS_YEAR}),
                        {worlds.THIS_YEAR: 7})],
    )  # fmt: skip
    lunch = MealAsk("k1", "s", TODAY, "lunch", child="c")
    # Then a meal with no money is refused, and funded it is served once, replayed after
    assert model.redeem(lunch) == Refused("INSUFFICIENT_FUNDS")
    model.post(
        transfer_id="f", debit=programme.code, credit=wallet.code, amount=1_000_000,
        reason="VOUCHER_FUNDING", fresh=False,
    )  # fmt: skip
    assert model.redeem(lunch).replayed is False
    assert model.redeem(lunch).replayed is True
    assert model.redeem(MealAsk("k2", "s", TODAY, "lunch", child="c")) == Refused(
        "ALREADY_REDEEMED"
    )
    assert model.redeem(MealAsk("k1", "s", TODAY, "breakfast", child="c")) == Refused(
        "IDEMPOTENCY_KEY_REUSED"
    )
    assert model.redeem(MealAsk("k3", "s", date(2026, 11, 21), "lunch", child="c")) == Refused(
        "NOT_A_SCHOOL_DAY"
    )
    # And a list meal four school days back is past the claim window, three days back it is not
    assert model.redeem(
        MealAsk("k4", "s", date(2026, 11, 12), "lunch", child="c")
    ) == Refused("CLAIM_WINDOW_CLOSED")  # fmt: skip
    late = model.redeem(MealAsk("k5", "s", date(2026, 11, 13), "lunch", child="c"))
    assert late == Served("c", date(2026, 11, 13), "lunch")
    assert model.meals["c", date(2026, 11, 13), "lunch"].claimed_on == TODAY
    # And a QR code made yesterday in Astana (23:30) is not for today's meal
    yesterdays = QrCode("c", "s", "n1", worlds.THIS_YEAR,
                        local_day(datetime(2026, 11, 17, 18, 30, tzinfo=UTC)))  # fmt: skip
    assert model.redeem(MealAsk("k6", "s", TODAY, "breakfast", qr=yesterdays)) == Refused(
        "QR_NOT_FOR_THIS_DAY"
    )
    # And another school's same key is not this school's
    assert model.redeem(MealAsk("k1", "t", TODAY, "lunch", child="c")) == Refused("NOT_ENROLLED")
    # And a used transfer id is refused before the money is looked at
    assert model.post(
        transfer_id="f", debit=school.code, credit=wallet.code, amount=10**9,
        reason="VOUCHER_FUNDING", fresh=False,
    ) == Refused("TRANSFER_ID_REUSED")  # fmt: skip
    paid = sum(meal.price for meal in model.meals.values())
    assert model.balances == {
        wallet.code: 1_000_000 - paid, school.code: paid, programme.code: -1_000_000,
    }  # fmt: skip
