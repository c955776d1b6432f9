"""`socialwallet vouchers ...` (merchant and prescription imports) and `bench redeem`."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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

console = Console(stderr=True)
vouchers_cli = typer.Typer(
    help="Merchants and prescriptions of the vouchers.", no_args_is_help=True
)


@vouchers_cli.command("import-merchants")
def import_merchants_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file.")],
) -> None:
    """Register merchants from a CSV: external_code,name,category,region[,merchant_id]."""
    from vouchers.merchants import import_merchants, read_merchant_file

    settings = Settings()

    async def run() -> tuple[int, list[str]]:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session, session.begin():
                return await import_merchants(session=session, rows=read_merchant_file(path))
        finally:
            await engine.dispose()

    registered, refused = asyncio.run(run())
    for line in refused:
        console.print(line, markup=False, highlight=False)
    console.print(f"[green]{registered} merchants registered[/green], {len(refused)} refused.")
    if refused:
        raise typer.Exit(1)


@vouchers_cli.command("import-prescriptions")
def import_prescriptions_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file.")],
    source: Annotated[str, typer.Option(help="The health system that issued them.")] = "import",
) -> None:
    """Record e-prescriptions from a CSV: external_id,patient_iin,drug_code,quantity,
    unit_price_tiyn,valid_until,prescribing_org. Idempotent by external_id."""
    from familymap.iin import mask_iin
    from vouchers.errors import VoucherError
    from vouchers.medicines import PrescriptionInput, record_prescription

    settings = Settings()

    async def run() -> tuple[int, list[str]]:
        engine = create_engine(settings)
        recorded, refused = 0, []
        try:
            async with create_session_factory(engine)() as session, session.begin():
                with path.open(newline="", encoding="utf-8") as handle:
                    for line, row in enumerate(csv.DictReader(handle), start=2):
                        try:
                            async with session.begin_nested():
                                _, created = await record_prescription(
                                    session=session,
                                    prescription=PrescriptionInput(
                                        external_id=row["external_id"],
                                        patient_iin=row["patient_iin"],
                                        drug_code=row["drug_code"],
                                        quantity=int(row["quantity"]),
                                        unit_price_tiyn=int(row["unit_price_tiyn"]),
                                        valid_until=date.fromisoformat(row["valid_until"]),
                                        prescribing_org=row["prescribing_org"],
                                    ),
                                    source=source,
                                )
                            recorded += created
                        except (VoucherError, KeyError, ValueError) as exc:
                            code = getattr(exc, "code", "BAD_USER_INPUT")
                            refused.append(f"{path.name}:{line} {code} {mask_iin(str(exc))}")
        finally:
            await engine.dispose()
        return recorded, refused

    recorded, refused = asyncio.run(run())
    for line in refused:
        console.print(line, markup=False, highlight=False)
    console.print(f"[green]{recorded} prescriptions recorded[/green], {len(refused)} refused.")
    if refused:
        raise typer.Exit(1)


# --- bench redeem ---------------------------------------------------------------------------

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
    pupils: Annotated[int, typer.Option(min=10, help="Pupils with vouchers.")] = 2_000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 2,
    port: Annotated[int, typer.Option(help="Loopback port for the server.")] = 8765,
) -> None:
    """Meal redemptions through the GraphQL API on an empty DATABASE_URL: 32 clients sending
    single QR redemptions, then offline batches; then double spends counted in the ledger."""
    from vouchers.benchmark import count_double_spends, make_bench_data

    settings = Settings()
    today = date.today()
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
                return await make_bench_data(
                    session=session, schools=schools, pupils=pupils, today=today
                )
        finally:
            await engine.dispose()

    started = time.perf_counter()
    data = asyncio.run(prepare())
    capacity = len(data.pupils) * len(data.school_days) * len(MEAL_TYPES)
    if redemptions + batch_items > capacity:
        console.print(f"[red]Only {capacity} distinct meals exist; ask for fewer or more pupils.")
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
    # Our own console script with fixed arguments, no shell.
    server = subprocess.Popen(  # noqa: S603
        [
            executable,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        figures = asyncio.run(
            _load(data, issuer=issuer, qr_key=qr_key.encode(), port=port, clients=clients,
                  redemptions=redemptions, batch_items=batch_items, batch_size=batch_size)
        )  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    async def verify() -> dict[str, int]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                return await count_double_spends(connection=connection)
        finally:
            await engine.dispose()

    checks = asyncio.run(verify())
    console.print(f"ledger check: {checks}")
    result = {
        "benchmark": "redeem",
        "database": "postgresql" if "postgres" in settings.async_database_url else "sqlite",
        "clients": clients,
        "workers": workers,
        **figures,
        "meals_recorded": checks["meals"],
        "double_spends": checks["double_spends"]
        + checks["unpaid_meals"]
        + checks["wrong_amounts"]
        + checks["negative_wallets"]
        + checks["accounts_disagreeing"],
    }
    typer.echo(json.dumps(result))


async def _load(
    data, *, issuer: DevIssuer, qr_key: bytes, port: int, clients: int, redemptions: int,
    batch_items: int, batch_size: int,
) -> dict[str, Any]:  # fmt: skip
    import httpx

    from vouchers.qr import sign_qr

    url = f"http://127.0.0.1:{port}/graphql"
    tokens = {s: issuer.mint(roles=[Role.SCHOOL], subject=str(s)) for s in data.schools}
    now = datetime.now(UTC)
    pupils, days = data.pupils, data.school_days

    def meal(slot: int) -> tuple[Any, date, str]:
        pupil = pupils[slot % len(pupils)]
        turn = slot // len(pupils)
        return pupil, days[-1 - turn // 2], MEAL_TYPES[turn % 2]

    # Single redemptions by QR code; every 20th is a second attempt at an earlier meal (the
    # same child, day and meal type, a new idempotency key), which must be ALREADY_REDEEMED.
    singles = []
    for n in range(redemptions):
        slot = n - 1 if n % 20 == 19 else n
        pupil, day, meal_type = meal(slot)
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
    for slot in range(redemptions, redemptions + batch_items):
        pupil, day, meal_type = meal(slot)
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

    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        for _ in range(300):
            try:
                if (await client.get(url.replace("/graphql", "/readyz"))).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        # Warm up every worker's connections and caches, not counted.
        warm = [(tokens[pupils[0].school_id], {"idempotencyKey": "warm", "mealType": "LUNCH",
                 "servedOn": "2000-01-03", "childId": str(pupils[0].person_id)})] * clients * 2  # fmt: skip
        await _drive(client, url, REDEEM, warm, clients, {}, [])

        started = time.perf_counter()
        await _drive(client, url, REDEEM, singles, clients, outcomes, latencies)
        single_s = time.perf_counter() - started
        console.print(
            f"single: {len(singles)} in {single_s:.2f} s = {len(singles) / single_s:,.0f}/s; "
            f"outcomes {outcomes}"
        )

        batch_outcomes: dict[str, int] = {}
        started = time.perf_counter()
        await _drive(client, url, BATCH, batches, min(clients, 8), batch_outcomes, [])
        batch_s = time.perf_counter() - started
        console.print(
            f"batch: {batch_items} items in {len(batches)} batches in {batch_s:.2f} s = "
            f"{batch_items / batch_s:,.0f}/s; outcomes {batch_outcomes}"
        )
    latencies.sort()
    served = outcomes.get("MealRedeemed", 0)
    return {
        "redemptions": len(singles),
        "redemptions_served": served,
        "already_redeemed": outcomes.get("ALREADY_REDEEMED", 0),
        "redemptions_per_s": round(len(singles) / single_s, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "batch_items": batch_items,
        "batch_size": batch_size,
        "batch_items_served": batch_outcomes.get("served", 0),
        "batch_redemptions_per_s": round(batch_items / batch_s, 1),
        "batch_speedup": round((batch_items / batch_s) / (len(singles) / single_s), 2),
    }


async def _drive(client, url, document, work, concurrency, outcomes, latencies) -> None:
    """Send every (token, variables) with `concurrency` clients; tally outcomes."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            token, variables = queue.get_nowait()
            key = "items" if isinstance(variables, list) else "i"
            started = time.perf_counter()
            response = await client.post(
                url,
                json={"query": document, "variables": {key: variables}},
                headers={"authorization": f"Bearer {token}"},
            )
            latencies.append(time.perf_counter() - started)
            body = response.json()
            if "errors" in body:
                kind = body["errors"][0].get("extensions", {}).get("code", "ERROR")
                outcomes[kind] = outcomes.get(kind, 0) + 1
                continue
            result = next(iter(body["data"].values()))
            if result["__typename"] == "MealBatchResult":
                outcomes["served"] = outcomes.get("served", 0) + result["served"]
                for item in result["items"]:
                    if item["code"]:
                        outcomes[item["code"]] = outcomes.get(item["code"], 0) + 1
            else:
                kind = result.get("code") or result["__typename"]
                outcomes[kind] = outcomes.get(kind, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
