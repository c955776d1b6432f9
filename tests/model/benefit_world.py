"""The database side of the benefit model: one family entitled to ASP (a mother earning
60,000 tenge with a phone and an IBAN, her husband registered unemployed, their son), offered
the quarter's ASP by the offer job, and a school to draw acts for; the services driven as their
callers drive them (the GraphQL resolvers, the inbound SMS endpoint, the wallet's jobs and
relays, `socialwallet bank reconcile`); and what the database says of the family now, in the
model's terms."""

from __future__ import annotations

import itertools
import random
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.jobs import run_wallet_jobs
from familymap.batch import reevaluate_family
from familymap.events import EventRefused, record_life_event
from familymap.tables import Family, Person
from tests.model.benefit_rules import OFFER_DAYS, Line, Payment
from tests.model.rules import local_day
from tests.model.world import _iin
from vouchers.acts import prepare_act
from vouchers.errors import VoucherError
from vouchers.merchants import register_merchant
from wallet.bank import LogBank
from wallet.inbound import InboundReply, handle_reply
from wallet.offer_tables import Offer
from wallet.offer_tables import Payment as PaymentRow
from wallet.offers import (
    OfferError,
    answer_offer,
    issue_pending_offers,
    offer_new_entitlements,
)
from wallet.outbox import relay_once
from wallet.outbox_tables import OutboxMessage
from wallet.payments import settle_payments
from wallet.reconcile import reconcile_statement
from wallet.sms import GatewayError
from wallet.statements import parse_statement
from wallet.tables import LedgerTransfer

IBAN = "KZ86125KZT5004100100"  # the mother's (ISO 13616 check digits 86)
INCOME = 6_000_000  # the mother's monthly income, tiyn
BORN = [date(1990, 1, 1), date(1988, 2, 2), date(2018, 3, 3)]  # mother, father, son
_phones = itertools.count(random.randrange(1_000_000))


@dataclass
class BenefitWorld:
    run: str
    family_id: int
    mother_id: int
    mother_iin: str
    phone: str
    offer_id: int
    reply_code: str
    school_id: uuid.UUID
    payout_iban: str  # the statement's account: a run's own, so references are its own


async def build_family(engine: AsyncEngine, now: datetime) -> BenefitWorld:
    """The family in the registry, evaluated and offered the quarter's ASP at `now` as the
    offer job does, and a school; committed."""
    run = uuid.uuid4().hex[:10]
    phone = f"+7701{next(_phones) % 10_000_000:07d}"
    today = local_day(now)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        family = Family(region="shymkent", housing_owned=False, area_m2=40, rooms=2)
        session.add(family)
        await session.flush()
        mother = Person(
            family_id=family.id, iin=_iin(BORN[0]), role="head", last_name="Model",
            first_name="Saule", birth_date=BORN[0], sex="F", phone=phone, iban=IBAN,
            employment="employed", monthly_income_tiyn=INCOME, contribution_months=24,
            language="ru",
        )  # fmt: skip
        father = Person(
            family_id=family.id, iin=_iin(BORN[1]), role="spouse", last_name="Model",
            first_name="Erlan", birth_date=BORN[1], sex="M", employment="unemployed",
            registered_unemployed=True, language="ru",
        )  # fmt: skip
        son = Person(
            family_id=family.id, iin=_iin(BORN[2]), role="child", last_name="Model",
            first_name="Nurlan", birth_date=BORN[2], sex="M",
        )  # fmt: skip
        session.add_all([mother, father, son])
        await session.flush()
        summary, _ = await reevaluate_family(
            await session.connection(), family_id=family.id, on=today
        )
        await offer_new_entitlements(session=session, run_id=summary.run_id, now=now)
        offer = await session.scalar(
            select(Offer).where(Offer.family_id == family.id, Offer.programme == "ASP")
        )
        assert offer is not None, "the family is offered ASP"
        school, _ = await register_merchant(
            session=session, external_code=f"model-{run}-school", name="School",
            category="school_meals", region="shymkent",
        )  # fmt: skip
        await session.commit()
    payout = f"KZ00MODEL{run}".upper()
    return BenefitWorld(
        run, family.id, mother.id, mother.iin, phone, offer.id, offer.reply_code, school.id,
        payout,
    )  # fmt: skip


@dataclass
class Drive:
    """The services, each in a transaction of its own as its caller opens it; a refusal
    rolls back."""

    engine: AsyncEngine
    world: BenefitWorld

    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.engine, expire_on_commit=False)

    async def answer(self, *, accept: bool, reason: str | None, now: datetime) -> str:
        """acceptOffer / declineOffer in the app."""
        async with self.sessions()() as session:
            try:
                answered = await answer_offer(
                    session=session, offer_id=self.world.offer_id,
                    recipient_person_id=self.world.mother_id, accept=accept, channel="app",
                    now=now, reason=reason,
                )  # fmt: skip
                await session.commit()
            except OfferError as refused:
                await session.rollback()
                return refused.code
            return answered.offer.state

    async def reply(self, *, message_id: str, text: str, now: datetime) -> tuple[str, bool]:
        """An SMS from the mother's phone, as the inbound endpoint hands it over."""
        async with self.sessions()() as session, session.begin():
            outcome = await handle_reply(
                session=session,
                reply=InboundReply(message_id=message_id, sender=self.world.phone, text=text),
                now=now,
            )
        return outcome.outcome, outcome.replayed

    async def daily_jobs(self, *, now: datetime, bank: str | None) -> None:
        """One pass of the wallet's jobs at `now`; then, if drawn, the bank's relay sends the
        orders (the bank's API takes them, or refuses them for good) and the settlement job
        sees what the bank's API said."""
        await run_wallet_jobs(session_factory=self.sessions(), offer_days=OFFER_DAYS, now=now)
        if bank is not None:
            gateway = LogBank() if bank == "takes" else RefusingBank()
            await relay_once(
                session_factory=self.sessions(), gateway=gateway, channel="bank", now=now,
                batch_size=1000,
            )  # fmt: skip
            async with self.sessions()() as session, session.begin():
                await settle_payments(session=session, now=now)

    async def birth(self, *, event_id: str, born: date, now: datetime) -> str:
        """A BIRTH event from the civil registry, then the offers it brings (as the
        recordLifeEvent mutation does)."""
        async with self.sessions()() as session:
            try:
                result = await record_life_event(
                    session=session, event_id=event_id, kind="birth", source="model",
                    occurred_on=born, subject_iin=self.world.mother_iin,
                    data={"child": {"iin": _iin(born), "last_name": "Model",
                                    "first_name": "Baby", "sex": "M",
                                    "birth_date": born.isoformat()}},
                    today=local_day(now),
                )  # fmt: skip
                await offer_new_entitlements(session=session, run_id=result.run_id, now=now)
                await session.commit()
            except EventRefused as refused:
                await session.rollback()
                return refused.code
        return "recorded"

    async def national_run(self, *, now: datetime) -> None:
        """The family map's run reaching the family on Astana's day (as the national batch
        run does), then the offer job over the changes past its cursor (COPY on
        PostgreSQL)."""
        async with self.sessions()() as session, session.begin():
            await reevaluate_family(
                await session.connection(), family_id=self.world.family_id, on=local_day(now)
            )
        await issue_pending_offers(session_factory=self.sessions(), now=now, offer_days=OFFER_DAYS)

    async def renewal_codes(self) -> dict[str, date]:
        """Each renewal offered to the family: its reply code and its period's first day."""
        async with self.sessions()() as session:
            rows = await session.execute(
                select(Offer.reply_code, Offer.period_start).where(
                    Offer.family_id == self.world.family_id, Offer.renewal.is_(True)
                )
            )
            return {code: start for code, start in rows}

    async def statement(self, lines: list[Line], *, months: dict[date, str], now: datetime):
        """A camt.053 statement of the payout account with `lines`, imported as
        `socialwallet bank reconcile` does (one transaction); each line's outcome."""
        parsed = parse_statement(camt053(self.world.payout_iban, lines, months, local_day(now)))
        async with self.sessions()() as session, session.begin():
            report = await reconcile_statement(session=session, statement=parsed, now=now)
        return [line.outcome for line in report.lines]

    async def prepare_act(self, *, month: date, now: datetime) -> str:
        async with self.sessions()() as session:
            try:
                await prepare_act(
                    session=session, merchant_id=self.world.school_id, month=month,
                    today=local_day(now),
                )  # fmt: skip
                await session.commit()
            except VoucherError as refused:
                await session.rollback()
                return refused.code
        return "drawn"


class RefusingBank:
    """A bank whose API refuses every order for good (a closed account, say)."""

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        raise GatewayError("the account is closed", retryable=False)


def camt053(account: str, lines: list[Line], keys: dict[date, str], booked_on: date) -> bytes:
    """A camt.053.001.02 statement: one booked entry per line, naming the month's payment key
    (or a key no payment has) as its end-to-end id; a credit is a return (AC04)."""
    entries = []
    for line in lines:
        key = keys.get(line.month, f"assignment:0:{line.reference}")
        returned = (
            "<RtrInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Account closed</AddtlInf></RtrInf>"
            if line.direction == "credit" else ""
        )  # fmt: skip
        entries.append(
            f'<Ntry><Amt Ccy="KZT">{line.amount // 100}.{line.amount % 100:02d}</Amt>'
            f"<CdtDbtInd>{'CRDT' if line.direction == 'credit' else 'DBIT'}</CdtDbtInd>"
            f"<Sts>BOOK</Sts><BookgDt><Dt>{booked_on.isoformat()}</Dt></BookgDt>"
            f"<AcctSvcrRef>{line.reference}</AcctSvcrRef><NtryDtls><TxDtls>"
            f"<Refs><EndToEndId>{key}</EndToEndId></Refs>{returned}</TxDtls></NtryDtls></Ntry>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>M-{booked_on:%Y%m%d}</MsgId>"
        f"<CreDtTm>{booked_on.isoformat()}T23:00:00+05:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>S-{booked_on:%Y%m%d}</Id><CreDtTm>{booked_on.isoformat()}T23:00:00+05:00"
        f"</CreDtTm><Acct><Id><IBAN>{account}</IBAN></Id></Acct>{''.join(entries)}</Stmt>"
        "</BkToCstmrStmt></Document>"
    ).encode()


# --- what the database says ------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """The family's ASP offer, payments, ledger transfers, other offers and SMS, as the
    database holds them, in the model's terms."""

    state: str
    decline_reason: str | None
    months: dict[date, int]
    payments: dict[date, Payment]
    transfers: list[tuple[str, date, int]]
    others: list[tuple[str, str]]
    sms: list[str]
    keys: dict[date, str]  # month -> payment key


async def observe(engine: AsyncEngine, world: BenefitWorld) -> Seen:
    async with AsyncSession(engine) as session:
        offer = await session.get(Offer, world.offer_id)
        payments = (
            await session.scalars(
                select(PaymentRow).where(
                    PaymentRow.family_id == world.family_id, PaymentRow.programme == "ASP"
                )
            )
        ).all()
        by_month = {p.for_month: Payment(p.for_month, p.amount_tiyn, p.state) for p in payments}
        # The quarter's assignment and a renewal's never share a month.
        assert len(by_month) == len(payments), "a month paid by two assignments"
        month_of_payment = {p.id: p.for_month for p in payments}
        month_of_transfer = {p.transfer_id: p.for_month for p in payments}
        transfers = []
        for row in await session.scalars(
            select(LedgerTransfer).where(LedgerTransfer.family_id == world.family_id)
        ):
            original = row.transfer_id.removesuffix(":returned")
            kind = "returned" if original != row.transfer_id else "payment"
            if original in month_of_transfer:
                transfers.append((kind, month_of_transfer[original], row.amount))
            else:
                transfers.append((f"{kind} {row.reason}", date.min, row.amount))
        other_offers = (
            await session.scalars(
                select(Offer).where(Offer.family_id == world.family_id, Offer.id != world.offer_id)
            )
        ).all()
        others = sorted((o.programme, o.state) for o in other_offers)
        renewals = {o.id for o in other_offers if o.renewal}
        messages = await session.scalars(
            select(OutboxMessage.message_key).where(
                OutboxMessage.channel == "sms",
                or_(OutboxMessage.recipient == world.phone),
            )
        )
        sms = sorted(_sms_label(key, world, month_of_payment, renewals) for key in messages)
    return Seen(
        offer.state, offer.decline_reason,
        {date.fromisoformat(m["month"]): m["amount_tiyn"] for m in offer.monthly_amounts or []},
        by_month, sorted(transfers), others, sms,
        {p.for_month: p.payment_key for p in payments},
    )  # fmt: skip


def _sms_label(
    key: str, world: BenefitWorld, month_of_payment: dict[int, date], renewals: set[int]
) -> str:
    """An SMS's key in the model's words: whose offer or payment, what about."""
    if match := re.fullmatch(r"offer:(\d+):(\w+)", key):
        offer_id = int(match[1])
        who = (
            "ASP" if offer_id == world.offer_id
            else "ASP renewal" if offer_id in renewals
            else f"offer {match[1]}"
        )  # fmt: skip
        return f"{who} {match[2]}"
    if match := re.fullmatch(r"offer:([A-Z0-9_]+):.*:sms", key):
        return f"offer sms {match[1]}"
    if match := re.fullmatch(r"payment:(\d+):returned", key):
        month = month_of_payment.get(int(match[1]))
        return f"returned {month:%Y-%m}" if month else key
    if match := re.fullmatch(r"inbound:(.+):answer", key):
        return f"answer {match[1]}"
    return key
