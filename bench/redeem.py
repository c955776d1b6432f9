"""`socialwallet bench redeem`: meal redemptions through the HTTP server, single (QR) and in
batches, then the books checked for double spends."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import func, select

from app.auth import DevIssuer, Role
from app.db import create_engine, create_session_factory
from app.migrate import upgrade_to_head
from app.settings import Settings
from bench import loadgen, proc_cpu
from vouchers.calendar import local_day
from wallet.verify import verify_ledger

console = Console(stderr=True)

REDEEM = (
    "mutation($i: RedeemMealInput!) { redeemMeal(input: $i) { __typename "
    "... on MealRedeemed { replayed } ... on VoucherRefused { code } } }"
)
BATCH = (
    "mutation($items: [RedeemMealInput!]!) { redeemMealsBatch(items: $items) { __typename "
    "... on MealBatchResult { served refused items { code } } ... on VoucherRefused { code } } }"
)
MEAL_TYPES = ("LUNCH", "BREAKFAST")


def bench_redeem(
    redemptions: Annotated[int, typer.Option(min=100, help="Single redemptions (QR).")] = 10_000,
    batch_items: Annotated[int, typer.Option(min=100, help="Items sent in batches.")] = 40_000,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Items per batch.")] = 500,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 32,
    schools: Annotated[int, typer.Option(min=1, help="Schools.")] = 50,
    pupils: Annotated[int, typer.Option(min=10, help="Pupils with vouchers.")] = 8_000,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (one port each, from --port).")
    ] = 2,
    port: Annotated[int, typer.Option(help="First loopback port for the servers.")] = 8765,
) -> None:
    """Meal redemptions through the GraphQL API on an empty DATABASE_URL: 32 clients sending
    single QR redemptions, then offline batches; then double spends counted in the ledger."""
    from bench.redeem_data import NotASchoolDayToday, count_double_spends, make_bench_data

    settings = Settings()
    # The canteens' day: QR meals are for the day their code was issued, in Kazakhstan.
    today = local_day(datetime.now(UTC))
    workdir = Path(tempfile.mkdtemp(prefix="sw-bench-redeem-"))
    qr_key = secrets.token_hex(32)
    issuer = DevIssuer(
        key_path=workdir / "jwt.pem",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=3600,
    )

    async def prepare():
        from familymap.tables import Family

        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(Family)):
                    console.print(
                        "[red]DATABASE_URL is not empty; the benchmark needs an empty one."
                    )
                    raise typer.Exit(2)
            async with create_session_factory(engine)() as session, session.begin():
                try:
                    return await make_bench_data(
                        session=session, schools=schools, pupils=pupils, today=today
                    )
                except NotASchoolDayToday as refusal:
                    console.print(f"[red]{refusal}[/red]")
                    raise typer.Exit(2) from None
        finally:
            await engine.dispose()

    started = time.perf_counter()
    data = asyncio.run(prepare())
    # Today's meals go to the QR redemptions, the claim window's earlier days to the batches.
    single_capacity = len(data.pupils) * len(MEAL_TYPES)
    batch_capacity = len(data.pupils) * (len(data.school_days) - 1) * len(MEAL_TYPES)
    if redemptions > single_capacity or batch_items > batch_capacity:
        console.print(
            f"[red]Only {single_capacity} meals today and {batch_capacity} in the claim window "
            "exist; ask for fewer redemptions or more pupils.[/red]"
        )
        raise typer.Exit(2)
    console.print(
        f"data: {schools} schools, {len(data.pupils)} pupils, {len(data.school_days)} school days "
        f"in {time.perf_counter() - started:.1f} s"
    )
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DEV_JWT_KEY_PATH": str(workdir / "jwt.pem"),
        "QR_SIGNING_KEY": qr_key,
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": str(max(4, clients // workers + 2)),
    }
    executable = shutil.which("socialwallet") or str(Path(sys.executable).parent / "socialwallet")
    # One single-worker server per port, the clients' connections spread evenly over them, as
    # a load balancer spreads them over pods. uvicorn's own --workers share one listening
    # socket, and whichever worker wakes first accepts every waiting connection: in the runs
    # that measured it, all 32 keep-alive connections went to one of the two workers.
    ports = [port + n for n in range(workers)]
    servers = [
        subprocess.Popen(  # noqa: S603 (our own console script, fixed arguments, no shell)
            [executable, "serve", "--host", "127.0.0.1", "--port", str(p), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        figures = loadgen.run(
            _load(data, issuer=issuer, qr_key=qr_key.encode(), ports=ports, clients=clients,
                  server_pids=[server.pid for server in servers],
                  redemptions=redemptions, batch_items=batch_items, batch_size=batch_size)
        )  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    async def verify() -> tuple[dict[str, int], list]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                checks = await count_double_spends(connection=connection)
            # And every invariant of the books, as `socialwallet ledger verify` checks them.
            async with create_session_factory(engine)() as session:
                return checks, await verify_ledger(session=session)
        finally:
            await engine.dispose()

    checks, findings = asyncio.run(verify())
    console.print(f"ledger check: {checks}")
    for finding in findings:
        console.print(
            f"[red]ledger verify: {finding.invariant} broken {finding.broken} times[/red]"
        )
    console.print(f"ledger verify: {'clean' if not findings else 'BROKEN'}")
    result = {
        "benchmark": "redeem",
        "database": "postgresql" if "postgres" in settings.async_database_url else "sqlite",
        "clients": clients,
        "workers": workers,
        **figures,
        "meals_recorded": checks["meals"],
        "ledger_verify": "clean" if not findings else "broken",
        "double_spends": checks["double_spends"]
        + checks["unpaid_meals"]
        + checks["wrong_amounts"]
        + checks["negative_wallets"]
        + checks["accounts_disagreeing"],
    }
    typer.echo(json.dumps(result))


async def _load(
    data, *, issuer: DevIssuer, qr_key: bytes, ports: list[int], clients: int,
    server_pids: list[int], redemptions: int, batch_items: int, batch_size: int,
) -> dict[str, Any]:  # fmt: skip
    import httpx

    from vouchers.qr import sign_qr

    host = f"127.0.0.1:{ports[0]}"
    tokens = {s: issuer.mint(roles=[Role.SCHOOL], subject=str(s)) for s in data.schools}
    now = datetime.now(UTC)
    pupils, days = data.pupils, data.school_days

    today, earlier = days[-1], days[:-1]

    def single_meal(slot: int) -> tuple[Any, date, str]:
        """Today's meals: a QR code serves only the day it was issued."""
        return pupils[slot % len(pupils)], today, MEAL_TYPES[(slot // len(pupils)) % 2]

    def batch_meal(slot: int) -> tuple[Any, date, str]:
        """The claim window's earlier days, as an offline canteen uploads them."""
        pupil = pupils[slot % len(pupils)]
        turn = slot // len(pupils)
        return pupil, earlier[-1 - (turn // 2) % len(earlier)], MEAL_TYPES[turn % 2]

    # Single redemptions by QR code; every 20th is a second attempt at an earlier meal (the
    # same child, day and meal type, a new idempotency key), which must be ALREADY_REDEEMED.
    singles = []
    for n in range(redemptions):
        slot = n - 1 if n % 20 == 19 else n
        pupil, day, meal_type = single_meal(slot)
        token, _ = sign_qr(key=qr_key, voucher_id=pupil.voucher_id, child_person_id=pupil.person_id,
                           merchant_id=str(pupil.school_id), now=now, ttl=timedelta(minutes=30))  # fmt: skip
        request: dict[str, Any] = {"idempotencyKey": f"bench-{n}", "mealType": meal_type,
                                   "servedOn": day.isoformat()}  # fmt: skip
        if n % 20 == 19:
            request["childId"] = str(pupil.person_id)
        else:
            request["qrToken"] = token
        singles.append((tokens[pupil.school_id], request))

    # Batches: the following meals, grouped by school as each canteen would send its own.
    by_school: dict[Any, list[dict]] = {}
    for slot in range(batch_items):
        pupil, day, meal_type = batch_meal(slot)
        by_school.setdefault(pupil.school_id, []).append(
            {
                "idempotencyKey": f"batch-{slot}",
                "mealType": meal_type,
                "servedOn": day.isoformat(),
                "childId": str(pupil.person_id),
            }
        )
    batches = [
        (tokens[school], items[i : i + batch_size])
        for school, items in by_school.items()
        for i in range(0, len(items), batch_size)
    ]

    # Every request serialised before the clock starts: the timed loop only sends and tallies.
    def graphql(document: str, key: str, token: str, variables: Any) -> bytes:
        body = json.dumps({"query": document, "variables": {key: variables}}).encode()
        headers = {"Authorization": f"Bearer {token}"}
        return loadgen.post_json(host=host, path="/graphql", body=body, headers=headers)

    single_requests = [graphql(REDEEM, "i", token, request) for token, request in singles]
    batch_requests = [graphql(BATCH, "items", token, items) for token, items in batches]
    warm_meal = {
        "idempotencyKey": "warm",
        "mealType": "LUNCH",
        "servedOn": "2000-01-03",
        "childId": str(pupils[0].person_id),
    }
    warm = graphql(REDEEM, "i", tokens[pupils[0].school_id], warm_meal)

    async with httpx.AsyncClient(timeout=5) as probe:
        for server_port in ports:
            for _ in range(300):
                try:
                    ready = await probe.get(f"http://127.0.0.1:{server_port}/readyz")
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the server on port {server_port} did not start")

    async def drive(requests: list[bytes], concurrency: int, outcomes: dict[str, int],
                    latencies: list[float] | None) -> tuple[float, float]:  # fmt: skip
        """Seconds of wall clock and of this process' CPU (the client's cost) for the phase."""
        cpu = time.process_time()
        elapsed = await loadgen.drive(
            host="127.0.0.1",
            port=ports,
            requests=requests,
            concurrency=concurrency,
            on_response=_tally(outcomes, latencies),
            response_timeout=120,
        )
        return elapsed, time.process_time() - cpu

    # Warm up every worker's connections and caches, not counted.
    await drive([warm] * clients * 2, clients, {}, None)

    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    # Who used the two cores during the single phase: the servers, PostgreSQL (when it runs
    # here: its processes are named "postgres") and this client.
    servers_before = proc_cpu.snapshot(server_pids)
    database_before = proc_cpu.snapshot(proc_cpu.pids_named("postgres"))
    single_s, single_cpu = await drive(single_requests, clients, outcomes, latencies)
    servers_cpu = proc_cpu.used_since(servers_before, proc_cpu.snapshot(server_pids))
    database_cpu = proc_cpu.used_since(
        database_before, proc_cpu.snapshot(proc_cpu.pids_named("postgres"))
    )
    per_request = {
        "servers": servers_cpu / len(singles) * 1000,
        "postgres": database_cpu / len(singles) * 1000,
        "client": single_cpu / len(singles) * 1000,
    }
    if proc_cpu.available():
        console.print(
            "single CPU ms per redemption: "
            + ", ".join(f"{who} {ms:.3f}" for who, ms in per_request.items())
        )
    console.print(
        f"single: {len(singles)} in {single_s:.2f} s = {len(singles) / single_s:,.0f}/s; "
        f"outcomes {outcomes}; client CPU {single_cpu / len(singles) * 1000:.3f} ms/request"
    )

    batch_outcomes: dict[str, int] = {}
    batch_s, batch_cpu = await drive(batch_requests, min(clients, 8), batch_outcomes, None)
    console.print(
        f"batch: {batch_items} items in {len(batches)} batches in {batch_s:.2f} s = "
        f"{batch_items / batch_s:,.0f}/s; outcomes {batch_outcomes}; "
        f"client CPU {batch_cpu / len(batches) * 1000:.3f} ms/batch"
    )
    latencies.sort()

    def percentile(share: float) -> float:
        return round(latencies[max(0, int(len(latencies) * share) - 1)] * 1000, 2)

    console.print(
        "single latency ms: "
        + ", ".join(f"p{round(q * 100)} {percentile(q)}" for q in (0.5, 0.9, 0.95, 0.99, 1.0))
    )
    served = outcomes.get("MealRedeemed", 0)
    return {
        "redemptions": len(singles),
        "redemptions_served": served,
        "already_redeemed": outcomes.get("ALREADY_REDEEMED", 0),
        "redemptions_per_s": round(len(singles) / single_s, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
        **(
            {f"{who}_cpu_ms": round(ms, 3) for who, ms in per_request.items()}
            if proc_cpu.available()
            else {}
        ),
        "batch_items": batch_items,
        "batch_size": batch_size,
        "batch_items_served": batch_outcomes.get("served", 0),
        "batch_redemptions_per_s": round(batch_items / batch_s, 1),
        "batch_speedup": round((batch_items / batch_s) / (len(singles) / single_s), 2),
    }


def _tally(
    outcomes: dict[str, int], latencies: list[float] | None
) -> Callable[[int, bytes, float], None]:
    """A loadgen callback counting each response's outcome into `outcomes`."""

    def count(kind: str, n: int = 1) -> None:
        outcomes[kind] = outcomes.get(kind, 0) + n

    def on_response(status: int, raw: bytes, latency: float) -> None:
        if latencies is not None:
            latencies.append(latency)
        if status != 200:
            # Rate limits, overload, crashes: counted, so that a figure never hides them.
            count(f"HTTP_{status}")
            return
        body = json.loads(raw)
        if "errors" in body:
            count(body["errors"][0].get("extensions", {}).get("code", "ERROR"))
            return
        result = next(iter(body["data"].values()))
        if result["__typename"] == "MealBatchResult":
            count("served", result["served"])
            for item in result["items"]:
                if item["code"]:
                    count(item["code"])
        else:
            count(result.get("code") or result["__typename"])

    return on_response
