"""Crash safety: the server is killed with SIGKILL in the middle of a stream of meal
redemptions and offer consents (which pay through the ledger and queue bank orders); after a
restart the clients retry what got no answer, with the same idempotency keys. Then:

* every ledger invariant holds, as `socialwallet ledger verify` checks them (the books
  balance, every account's totals agree with its transfers, no purpose wallet is negative);
* no meal is served twice, and each meal has exactly one payment;
* every committed payment has its bank order in the outbox, and every consent its SMS;
* every request ended with exactly one effect (retries were answered as replays).

The server is a real `socialwallet serve` process on its own database (a file on SQLite, a
database of its own on PostgreSQL), so SIGKILL cuts it wherever it stands.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.auth import DevIssuer, Role
from app.db import create_engine, create_session_factory
from app.demo import DEMO_SCHOOL_ID
from app.settings import Settings
from familymap.tables import Person
from tests.clock import PINNED_TODAY, pinned_env
from tests.throwaway_db import throwaway_database
from vouchers.calendar import school_year
from vouchers.tables import MealRedemption, MealVoucher
from wallet.offer_tables import Offer, Payment
from wallet.outbox_tables import OutboxMessage
from wallet.tables import LedgerTransfer

REDEEM = """
mutation($i: RedeemMealInput!) { redeemMeal(input: $i) {
  __typename ... on MealRedeemed { replayed } ... on VoucherRefused { code }
} }
"""
ACCEPT = """
mutation($o: ID!, $k: String!) { acceptOffer(offerId: $o, idempotencyKey: $k) {
  __typename ... on OfferAnswered { replayed offer { state } } ... on OfferRefused { code }
} }
"""


SOCIALWALLET = str(Path(sys.executable).parent / "socialwallet")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def crash_database(settings: Settings, tmp_path: Path):
    """A database of the test's own: the server commits into it for real."""
    async with throwaway_database(settings, tmp_path, "crash") as url:
        yield url


class Server:
    """`socialwallet serve` in a child process, killed and restarted at will."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port, self.process = env, port, None
        self.url = f"http://127.0.0.1:{port}/graphql"

    async def start(self) -> None:
        # The server joins the test's timeline as it is now, not as it was when `env` was
        # made: seeding takes a while, on a loaded machine longer than the tokens' 30 s of
        # leeway, and a server whose clock lags refuses tokens minted since as not yet valid.
        self.process = await asyncio.create_subprocess_exec(
            SOCIALWALLET, "serve", "--port", str(self.port), "--no-background-jobs",
            env=pinned_env(self.env), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    ready = await client.get(self.url.replace("/graphql", "/readyz"))
                    if ready.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the server did not start")

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), timeout=10)


def _last_school_days(today: date, count: int) -> list[date]:
    year = school_year(today)
    assert year is not None, "the test needs a school calendar covering today"
    days: list[date] = []
    day = min(today, year.end)
    while len(days) < count and day >= year.start:
        if year.is_school_day(day):
            days.append(day)
        day -= timedelta(days=1)
    return days


async def test_a_killed_server_loses_nothing_and_doubles_nothing(crash_database, tmp_path):
    # Given the demo registry with its offers made, in a database of the test's own
    env = pinned_env({
        **os.environ,
        "DATABASE_URL": crash_database,
        "DEV_JWT_KEY_PATH": str(tmp_path / "jwt.pem"),
        "DEV_QR_KEY_PATH": str(tmp_path / "qr"),
        "LOG_JSON": "true",
        "RATE_LIMIT_MUTATIONS_PER_MINUTE": "100000",
    })  # fmt: skip
    # The commands run as the operator would run them: processes of their own.
    for command in (["migrate"], ["seed-demo"], ["offers", "issue"]):
        done = await asyncio.create_subprocess_exec(
            SOCIALWALLET, *command, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, errors = await done.communicate()
        assert done.returncode == 0, errors.decode()[-2000:]
    settings = Settings(database_url=crash_database, dev_jwt_key_path=tmp_path / "jwt.pem")
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    issuer = DevIssuer(
        key_path=settings.dev_jwt_key_path, issuer=settings.jwt_issuer,
        audience=settings.jwt_audience, ttl_seconds=600,
    )  # fmt: skip
    async with factory() as session:
        # The pupils of the demo school whose meal vouchers the demo issued
        pupils = list(
            await session.scalars(
                select(MealVoucher.person_id)
                .join(Person, Person.id == MealVoucher.person_id)
                .where(Person.school_id == "shymkent-school-014")
                .order_by(MealVoucher.person_id)
            )
        )
        offers = (
            await session.execute(
                select(Offer.id, Person.iin)
                .join(Person, Person.id == Offer.recipient_person_id)
                .where(Offer.state == "offered", Offer.kind == "benefit", Person.iban.is_not(None))
            )
        ).all()
    assert pupils and offers, "the demo has pupils at the demo school and cash offers"
    school = issuer.mint(roles=[Role.SCHOOL], subject=str(DEMO_SCHOOL_ID))
    requests = [
        (school, REDEEM, {"i": {"idempotencyKey": f"crash-{day}-{meal}-{child}", "mealType": meal,
                                "servedOn": day.isoformat(), "childId": str(child)}})
        # Today and the three school days before: a list meal's claim window (docs/vouchers.md).
        for day in _last_school_days(PINNED_TODAY, 4)
        for meal in ("BREAKFAST", "LUNCH")
        for child in pupils
    ] + [
        (issuer.mint(roles=[Role.CITIZEN], subject=iin), ACCEPT, {"o": str(offer), "k": f"crash-{offer}"})
        for offer, iin in offers
    ]  # fmt: skip
    server = Server(env, _free_port())
    await server.start()
    answers: dict[int, dict] = {}
    try:
        # When the stream runs and the server is killed a third of the way through
        async def send(client: httpx.AsyncClient, n: int) -> None:
            token, document, variables = requests[n]
            response = await client.post(
                server.url,
                json={"query": document, "variables": variables},
                headers={"authorization": f"Bearer {token}"},
            )
            answers.setdefault(n, response.json())

        async with httpx.AsyncClient(timeout=30) as client:
            pending = list(range(len(requests)))
            killed = False
            while pending:
                failed = []
                for start in range(0, len(pending), 8):
                    batch = pending[start : start + 8]
                    if not killed and len(answers) >= len(requests) // 3:
                        await server.kill()  # SIGKILL: no shutdown, mid-stream
                        killed = True
                        await server.start()
                    results = await asyncio.gather(
                        *(send(client, n) for n in batch), return_exceptions=True
                    )
                    failed += [n for n, r in zip(batch, results, strict=True) if r is not None]
                # Then the clients retry what got no answer, with the same keys
                pending = failed
                await asyncio.sleep(0.1)
            assert killed
    finally:
        await server.stop()
    refused = [body for body in answers.values() if not body.get("data")]
    assert refused == [], refused[:3]
    # Every request has its answer: a meal served, a consent taken (a retry is a replay)
    kinds = [next(iter(body["data"].values()))["__typename"] for body in answers.values()]
    assert len(answers) == len(requests)
    assert set(kinds) <= {"MealRedeemed", "OfferAnswered"}, kinds
    async with factory() as session:
        # no meal twice, and one payment per meal
        meals = await session.scalar(select(func.count()).select_from(MealRedemption))
        paid_meals = await session.scalar(
            select(func.count())
            .select_from(LedgerTransfer)
            .where(LedgerTransfer.reason == "MEAL_SERVED")
        )
        assert meals == paid_meals == len(requests) - len(offers)
        # every payment ordered has its bank order, and every consent its SMS
        payments = (await session.execute(select(Payment.order_message_id))).scalars().all()
        orders = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.id.in_(payments), OutboxMessage.channel == "bank")
        )
        assert payments and orders == len(payments)
        answered = (
            await session.execute(
                select(Offer.id, Offer.phone).where(Offer.answered_at.is_not(None))
            )
        ).all()
        assert len(answered) == len(offers)
        for offer_id, phone in answered:
            if phone:
                confirmation = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.message_key.like(f"offer:{offer_id}:%"),
                        OutboxMessage.message_key != f"offer:{offer_id}:sms",
                    )
                )
                assert confirmation == 1
    await engine.dispose()
    # And `socialwallet ledger verify` finds every invariant of the money whole: the books
    # balance, every account agrees with its transfers, no wallet is negative, each meal has
    # one payment, each payment one bank order, each answer one SMS
    verify = await asyncio.create_subprocess_exec(
        SOCIALWALLET, "ledger", "verify", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, errors = await verify.communicate()
    assert verify.returncode == 0, errors.decode()[-3000:]
    assert json.loads(out.decode().strip().splitlines()[-1])["ok"] is True
