"""Run it as a country would, on this one machine (`make topology`): a PostgreSQL primary and
a streaming standby of the test's own, pgbouncer in transaction mode in front of the primary,
Redis, nginx balancing two API processes, and two workers; the SMS gateway, the bank and the
identity provider are fakes of the test's own (tests/topology/fakes.py).

It walks the citizen story (birth -> offer -> SMS "1" -> payment -> spending) and a burst of
meal redemptions through nginx, kills a worker in the middle of a relay batch and an API
process under load (SIGKILL), and then checks what a country would: nothing sent twice or
lost, the ledger whole, citizen reads served by the standby with read-your-writes, every log
line JSON without a raw IIN, and the API processes' metrics adding up to the requests sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import asyncpg
import httpx
import pytest
from redis import Redis
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.redeem_data import make_bench_data
from familymap.tables import Family, Person
from tests.clock import PINNED_TODAY, pinned_env
from tests.logscan import raw_iins
from tests.pgbouncer import free_port, pgbouncer
from tests.pgcluster import streaming_pair
from tests.topology.fakes import AUDIENCE, ISSUER, Outside
from tests.topology.stack import (
    NGINX_FAIL_TIMEOUT_SECONDS,
    SOCIALWALLET,
    AppProcess,
    Nginx,
    wait_ready,
)
from wallet.inbound import sign
from wallet.ledger import accounts_disagreeing_with_transfers

pytestmark = pytest.mark.topology

OPERATIONS = Path(__file__).parents[2] / "app" / "web" / "operations"
# The bank's statement of the payout account (camt.053), as the reconciliation tests use it.
STATEMENT = Path(__file__).parents[1] / "wallet" / "statements" / "camt053_paid.xml"
SERVER_OPERATIONS = Path(__file__).parents[2] / "graphql_schema" / "operations"
FATHER_IIN, MOTHER_IIN, NEWBORN_IIN = "880412300011", "900605400013", "250901500011"
FATHER_PHONE = "+77010009001"
IBAN = "KZ86125KZT5004100100"
BORN = PINNED_TODAY - timedelta(days=10)
PUPILS = 120
METERED_REQUESTS = 40


def document(name: str) -> str:
    """A registered operation's text (prod runs registered documents only)."""
    for folder in (OPERATIONS, SERVER_OPERATIONS):
        path = folder / f"{name}.graphql"
        if path.exists():
            return path.read_text()
    raise FileNotFoundError(name)


def persisted(name: str, variables: dict | None = None) -> dict:
    """A request naming a registered operation by its hash, as the mobile app sends it."""
    sha256 = hashlib.sha256(document(name).encode()).hexdigest()
    return {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}},
        "variables": variables or {},
    }


def global_id(kind: str, number: int) -> str:
    return base64.b64encode(f"{kind}:{number}".encode()).decode()


def sql(url: str, query: str, *args) -> list[asyncpg.Record]:
    """Rows of one statement on `url` (the test's own look at the databases)."""

    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


def until(condition: Callable[[], object], what: str, timeout_s: float = 120) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.25)


def post(client: httpx.Client, body: dict, token: str, tries: int = 5) -> dict:
    """POST /graphql through nginx; a request cut off by a dying process is sent again,
    unchanged (its idempotency key makes that safe)."""
    for attempt in range(tries):
        try:
            answer = client.post(
                "/graphql", json=body, headers={"authorization": f"Bearer {token}"}
            )
        except httpx.TransportError:
            answer = None
        if answer is not None and answer.status_code == 200:
            result = answer.json()
            assert "errors" not in result, result
            return result["data"]
        time.sleep(0.2 * (attempt + 1))
    raise AssertionError(f"no answer after {tries} tries: {answer and answer.text}")


def metric(metrics_text: str, prefix: str) -> float:
    """The sum of a counter's samples whose line starts with `prefix`, in one scrape."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


def graphql_requests(metrics_text: str) -> float:
    """socialwallet_graphql_requests_total over every operation and outcome."""
    return metric(metrics_text, "socialwallet_graphql_requests_total{")


async def prepare(url: str) -> tuple[int, dict]:
    """A family expecting a child (father with a phone and an IBAN) and the canteens' pupils."""
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            family = Family(region="astana", housing_owned=True, area_m2=80, rooms=3)
            session.add(family)
            await session.flush()
            earner = {
                "employment": "employed", "monthly_income_tiyn": 30_000_000,
                "contribution_months": 24, "insured": True, "polyclinic_attached": True,
                "language": "kk",
            }  # fmt: skip
            session.add_all([
                Person(
                    family_id=family.id, iin=FATHER_IIN, role="head", last_name="Серікбаев",
                    first_name="Асқар", birth_date=BORN.replace(year=1988), sex="M",
                    phone=FATHER_PHONE, iban=IBAN, **earner,
                ),
                Person(
                    family_id=family.id, iin=MOTHER_IIN, role="spouse", last_name="Серікбаева",
                    first_name="Айгүл", birth_date=BORN.replace(year=1990), sex="F", **earner,
                ),
            ])  # fmt: skip
            bench = await make_bench_data(
                session=session, schools=2, pupils=PUPILS, today=PINNED_TODAY
            )
        return family.id, {
            "schools": bench.schools,
            "pupils": [(pupil.person_id, pupil.school_id) for pupil in bench.pupils],
        }
    finally:
        await engine.dispose()


def test_the_country_topology(tmp_path):
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    redis.ping()  # the machine's Redis (CI starts it): the test fails plainly without it
    with (
        streaming_pair(primary_settings={"max_connections": "200"}) as (primary, standby),
        pgbouncer(
            server_host="127.0.0.1", server_port=primary.port, user="postgres", pool_size=20
        ) as bouncer_port,
        Outside(sms_delay_seconds=0.02) as outside,
    ):
        _run(tmp_path, primary, standby, bouncer_port, outside)


def _run(folder: Path, primary, standby, bouncer_port: int, outside: Outside) -> None:
    secret, metrics_token = secrets.token_hex(32), secrets.token_hex(32)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BACKGROUND_"))}
    env = pinned_env({
        **base,
        "ENVIRONMENT": "prod",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{bouncer_port}/postgres",
        "DATABASE_TRANSACTION_POOLER": "true",
        "DATABASE_HOT_POOL_SIZE": "2",
        "DATABASE_REPLICA_URL": standby.url,
        "REPLICA_CHECK_INTERVAL_SECONDS": "0.2",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "JWT_JWKS_URL": f"{outside.url}/jwks.json",
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "AUDIT_HASH_KEY": secrets.token_hex(32),
        "QR_SIGNING_KEY": secrets.token_hex(32),
        "SMS_INBOUND_SECRET": secret,
        "METRICS_TOKEN": metrics_token,
        "SMS_GATEWAY": "http",
        "SMS_GATEWAY_URL": f"{outside.url}/sms",
        "SMS_GATEWAY_TOKEN": outside.token,
        "BANK_GATEWAY": "http",
        "BANK_GATEWAY_URL": f"{outside.url}/bank",
        "BANK_GATEWAY_TOKEN": outside.token,
        "BACKGROUND_INTERVAL_SECONDS": "0.5",
        "OUTBOX_CLAIM_SECONDS": "5",
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    })  # fmt: skip
    direct = primary.url
    processes: list[AppProcess] = []

    def app_process(name: str, *command: str) -> AppProcess:
        process = AppProcess(name, list(command), env, folder)
        processes.append(process)
        return process

    # Given the schema migrated through the pooler, the demo registry, a family expecting a
    # child, and two schools' pupils with meal vouchers
    for name, command in (("migrate", ["migrate"]), ("seed", ["seed-demo"])):
        one_off = app_process(name, *command).start()
        assert one_off.process.wait(timeout=300) == 0, one_off.logs[1].read_text()[-3000:]
    family_id, canteens = prepare_data(direct)
    # and the topology running: two workers, two API processes, nginx in front
    # (the second worker joins once the first has been killed in the middle of a batch)
    workers = [app_process(f"worker-{n}", "worker") for n in (1, 2)]
    workers[0].start()
    ports = [free_port(), free_port()]
    apis = [
        app_process(f"api-{n}", "serve", "--host", "127.0.0.1", "--port", str(port)).start()
        for n, port in enumerate(ports, start=1)
    ]
    nginx = Nginx(folder, free_port(), ports)
    try:
        for api, port in zip(apis, ports, strict=True):
            wait_ready(f"http://127.0.0.1:{port}", api)
            # The standby may still be replaying the bulk load; the API serves meanwhile.
            until(
                lambda port=port: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()[
                    "replicas"
                ][0]["healthy"],
                "the API sees the standby healthy",
            )
        nginx.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{nginx.port}", timeout=30) as client:
            _kill_a_worker_mid_batch(direct, outside, workers)
            _citizen_story(client, direct, standby.url, outside, family_id, secret, app_process)
            _meal_burst(client, direct, outside, canteens, apis, ports)
            _metrics_add_up(client, outside, ports, metrics_token)
            _nothing_lost_or_sent_twice(direct, outside, family_id)
            _ledger_is_whole(direct, env, folder)
    finally:
        nginx.stop()
        for process in processes:
            process.stop()
    _every_log_line_is_json_without_an_iin(processes)


def prepare_data(url: str) -> tuple[int, dict]:
    return asyncio.run(prepare(url))


def _kill_a_worker_mid_batch(url: str, outside: Outside, workers: list[AppProcess]) -> None:
    # When the first worker relays the demo's offer SMS, and is killed in the middle of a
    # batch (the messages it claimed are `sending`, some already handed to the gateway)
    claimed = until(
        lambda: (
            len(outside.sms.accepted) >= 10
            and sql(url, "SELECT id, message_key FROM outbox_messages WHERE status = 'sending'")
        ),
        "a relay batch in flight",
    )
    workers[0].kill()
    # Then the second worker finishes the work, the dead one's claims included once their
    # lease ends (OUTBOX_CLAIM_SECONDS)
    workers[1].start()
    until(
        lambda: (
            not sql(
                url, "SELECT 1 FROM outbox_messages WHERE status IN ('pending', 'sending') LIMIT 1"
            )
        ),
        "the outbox drained by the surviving worker",
        timeout_s=240,
    )
    ids = [row["id"] for row in claimed]
    finished = sql(url, "SELECT status FROM outbox_messages WHERE id = ANY($1::bigint[])", ids)
    assert {row["status"] for row in finished} == {"sent"}
    assert all(row["message_key"] in outside.sms.accepted for row in claimed)
    workers[0].start()  # back to two workers for the rest
    print(
        f"topology: killed a worker holding {len(claimed)} claimed SMS; the gateway was handed "
        f"{len(outside.sms.accepted)} SMS, {sum(outside.sms.repeats.values())} of them again "
        "under the same key"
    )


def _citizen_story(
    client: httpx.Client,
    url: str,
    standby_url: str,
    outside: Outside,
    family_id: int,
    secret: str,
    app_process: Callable[..., AppProcess],
) -> None:
    source = outside.mint(role="SOURCE_SYSTEM", subject="gbdfl")
    father = outside.mint(role="CITIZEN", subject=FATHER_IIN)
    # When the civil registry records the birth
    born = post(client, persisted("RecordLifeEvent", {"input": {
        "eventId": "topology-birth-1", "kind": "BIRTH", "occurredOn": BORN.isoformat(),
        "subjectIin": MOTHER_IIN,
        "child": {"iin": NEWBORN_IIN, "lastName": "Серікбаева", "firstName": "Аружан",
                  "patronymic": "Асқарқызы", "sex": "F", "birthDate": BORN.isoformat()},
    }}), source)["recordLifeEvent"]  # fmt: skip
    assert born["__typename"] == "LifeEventRecorded", born
    offers = {
        row["programme"]: row
        for row in sql(
            url, "SELECT id, programme, reply_code FROM offers WHERE family_id = $1", family_id
        )
    }
    birth, childcare = offers["BIRTH_BENEFIT"], offers["CHILDCARE_TO_1_5"]
    # Then the father is asked by SMS from 1414
    until(
        lambda: any(p.get("to") == FATHER_PHONE for p in list(outside.sms.accepted.values())),
        "the offer SMS handed to the gateway",
    )
    # When he answers "1" by SMS (through nginx, signed by the gateway)
    raw = json.dumps(
        {"message_id": "topology-in-1", "from": FATHER_PHONE, "text": f"1 {birth['reply_code']}"}
    ).encode()
    at = str(int(time.time()))
    answer = client.post(
        "/sms/inbound",
        content=raw,
        headers={"x-sms-timestamp": at, "x-sms-signature": sign(secret, at, raw),
                 "content-type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json()["outcome"] == "assigned", answer.text
    # and accepts the other offer in the app, then reads his offers at once, again and again
    accepted = post(client, persisted("AcceptOffer", {
        "offerId": global_id("Offer", childcare["id"]), "idempotencyKey": str(uuid.uuid4()),
    }), father)["acceptOffer"]  # fmt: skip
    assert accepted["__typename"] == "OfferAnswered", accepted
    # Then every read after his mutation sees it (read-your-writes, across both API processes)
    for _ in range(6):
        seen = post(client, persisted("Offers"), father)["me"]["offers"]["edges"]
        states = {edge["node"]["id"]: edge["node"]["state"] for edge in seen}
        assert states[global_id("Offer", childcare["id"])] != "OFFERED", states
    # And the birth benefit is ordered once and handed to the bank (sent)
    payment = until(
        lambda: sql(
            url,
            "SELECT p.payment_key, p.amount_tiyn FROM payments p "
            "JOIN benefit_assignments a ON a.id = p.assignment_id "
            "WHERE a.offer_id = $1 AND p.state = 'sent'",
            birth["id"],
        ),
        "the birth benefit sent to the bank",
    )[0]
    # When the bank's statement books it (`socialwallet bank reconcile`, as operators run it)
    amount = payment["amount_tiyn"]
    reconcile = app_process("reconcile", "bank", "reconcile")
    statement = reconcile.folder / "statement.xml"
    statement.write_text(
        Template(STATEMENT.read_text()).substitute(
            key=payment["payment_key"],
            amount=f"{amount // 100}.{amount % 100:02d}",
            booked_at=datetime.now(UTC).isoformat(),
        )
    )
    reconcile.command.append(str(statement))
    assert reconcile.start().process.wait(timeout=120) == 0, reconcile.logs[1].read_text()
    paid = sql(url, "SELECT state FROM payments WHERE payment_key = $1", payment["payment_key"])
    assert paid[0]["state"] == "paid"
    # And his spending shows what the state paid his family
    scans_before = _standby_scans(standby_url)
    spending = post(client, persisted("Spending", {"year": PINNED_TODAY.year}), father)
    assert spending["me"]["spending"]["totalTiyn"] > 0, spending
    # And citizen reads were served by the standby (counted by the standby itself)
    for _ in range(10):
        post(client, persisted("Offers"), father)
    until(lambda: _standby_scans(standby_url) > scans_before, "reads counted on the standby")


def _standby_scans(standby_url: str) -> int:
    rows = sql(
        standby_url,
        "SELECT pg_stat_clear_snapshot(), coalesce(sum(coalesce(seq_scan, 0) "
        "+ coalesce(idx_scan, 0)), 0) AS scans FROM pg_stat_user_tables "
        "WHERE relname IN ('offers', 'persons')",
    )
    return int(rows[0]["scans"])


def _meal_burst(
    client: httpx.Client,
    url: str,
    outside: Outside,
    canteens: dict,
    apis: list[AppProcess],
    ports: list[int],
) -> None:
    tokens = {
        school: outside.mint(role="SCHOOL", subject=str(school)) for school in canteens["schools"]
    }
    done: list[str] = []

    def redeem(pupil: tuple[int, object]) -> str:
        child, school = pupil
        body = persisted("RedeemMeal", {"input": {
            "idempotencyKey": f"topology-meal-{child}", "mealType": "LUNCH",
            "servedOn": PINNED_TODAY.isoformat(), "childId": str(child),
        }})  # fmt: skip
        result = post(client, body, tokens[school], tries=8)["redeemMeal"]
        done.append(result["__typename"])
        return result["__typename"]

    # When the canteens serve lunch through nginx, and one API process dies under the load
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = pool.map(redeem, canteens["pupils"])
        until(lambda: len(done) >= PUPILS // 3, "a third of the lunches served", timeout_s=120)
        apis[0].kill()
        outcomes = list(results)
    # Then every pupil was served once, whichever process took the request
    assert outcomes == ["MealRedeemed"] * PUPILS
    served = sql(
        url,
        "SELECT count(*) AS meals, count(DISTINCT person_id) AS pupils FROM meal_redemptions "
        "WHERE service_date = $1 AND idempotency_key LIKE 'topology-meal-%'",
        PINNED_TODAY,
    )
    assert (served[0]["meals"], served[0]["pupils"]) == (PUPILS, PUPILS)
    # and the dead process comes back
    apis[0].start()
    wait_ready(f"http://127.0.0.1:{ports[0]}", apis[0])
    # nginx tries a server it marked failed again after fail_timeout (2 s, tests/topology/
    # stack.py); until then it sends everything to the other.
    time.sleep(NGINX_FAIL_TIMEOUT_SECONDS + 0.5)


def _metrics_add_up(
    client: httpx.Client, outside: Outside, ports: list[int], metrics_token: str
) -> None:
    father = outside.mint(role="CITIZEN", subject=FATHER_IIN)

    def scrape() -> list[str]:
        return [
            httpx.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"authorization": f"Bearer {metrics_token}"},
                timeout=10,
            ).text
            for port in ports
        ]

    # When a known number of requests go through nginx
    before = scrape()
    for _ in range(METERED_REQUESTS):
        post(client, persisted("Offers"), father)
    after = scrape()
    # Then the two processes' counters (each scraped directly) add up to exactly that
    deltas = [graphql_requests(b) - graphql_requests(a) for a, b in zip(before, after, strict=True)]
    assert sum(deltas) == METERED_REQUESTS, deltas
    assert all(delta > 0 for delta in deltas), deltas  # nginx used both
    # and both processes sent those citizen reads to the standby
    to_standby = 'socialwallet_read_routing_total{target="replica-1"}'
    routed = [
        metric(b, to_standby) - metric(a, to_standby) for a, b in zip(before, after, strict=True)
    ]
    assert all(n > 0 for n in routed) and sum(routed) <= METERED_REQUESTS, routed


def _nothing_lost_or_sent_twice(url: str, outside: Outside, family_id: int) -> None:
    until(
        lambda: (
            not sql(
                url, "SELECT 1 FROM outbox_messages WHERE status IN ('pending', 'sending') LIMIT 1"
            )
        ),
        "the outbox drained",
    )
    messages = sql(url, "SELECT channel, message_key, status FROM outbox_messages")
    # Every message was sent, and the gateways were handed each one exactly once (a copy sent
    # again by the surviving worker carried the same key, which the gateway knew)
    assert {row["status"] for row in messages} == {"sent"}
    for channel, gateway in (("sms", outside.sms), ("bank", outside.bank)):
        keys = {row["message_key"] for row in messages if row["channel"] == channel}
        assert keys == set(gateway.accepted), channel
    # Every consent has exactly one payment order per month it pays
    orders = sql(
        url,
        "SELECT a.offer_id, p.for_month, count(*) AS n FROM payments p "
        "JOIN benefit_assignments a ON a.id = p.assignment_id GROUP BY a.offer_id, p.for_month",
    )
    assert orders and all(row["n"] == 1 for row in orders)
    unpaid_consents = sql(
        url,
        "SELECT o.id FROM offers o JOIN benefit_assignments a ON a.offer_id = o.id "
        "LEFT JOIN payments p ON p.assignment_id = a.id WHERE o.family_id = $1 AND p.id IS NULL",
        family_id,
    )
    assert unpaid_consents == []


def _ledger_is_whole(url: str, env: dict, folder: Path) -> None:
    async def disagreeing() -> list[str]:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        try:
            async with AsyncSession(engine) as session:
                return await accounts_disagreeing_with_transfers(session=session)
        finally:
            await engine.dispose()

    assert asyncio.run(disagreeing()) == []
    # `socialwallet ledger verify`, where this version has it
    commands = subprocess.run(  # noqa: S603
        [str(SOCIALWALLET), "--help"], env=env, capture_output=True, text=True, check=True
    ).stdout
    if " ledger " in commands:
        verify = subprocess.run(  # noqa: S603
            [str(SOCIALWALLET), "ledger", "verify"], env=env, capture_output=True, text=True
        )
        (folder / "ledger-verify.log").write_text(verify.stdout + verify.stderr)
        assert verify.returncode == 0, verify.stdout + verify.stderr


def _every_log_line_is_json_without_an_iin(processes: list[AppProcess]) -> None:
    for process in processes:
        for path in process.logs:
            text = path.read_text()
            assert raw_iins(text) == [], path.name
            if process.name in ("migrate", "seed", "reconcile"):
                continue  # one-off commands also print a sentence for the operator
            for line in text.splitlines():
                if line.strip():
                    assert isinstance(json.loads(line), dict), f"{path.name}: {line[:200]}"
