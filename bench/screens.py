"""`socialwallet bench screens`: each citizen screen's query, as the app sends it, through
the HTTP server, against the cheapest authenticated query (`{ me { subject } }`).

The screens are the app's own read operations for a citizen (app/web/operations/: the
wallet, entitlements, offers, spending, who accessed my data, my dispensings). The data is
`bench wallet`'s (synthetic families with ledger spending), the server is its uvicorn child
process, and the screens and the baseline take turns in short rounds at a fixed concurrency
so that a change of the shared machine's load falls on all of them. SQL statements per
request are counted in-process on one request of each, through the ASGI app.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.asgi import create_app
from app.auth import Role
from app.db import create_engine
from app.logging import configure_logging
from app.migrate import upgrade_to_head
from app.settings import Settings
from bench import wallet as bench
from familymap.tables import Family

console = Console(stderr=True)

OPERATIONS = Path(__file__).resolve().parent.parent / "app" / "web" / "operations"
# The citizen's screens: read operations of the caller's own wallet.
SCREENS = ("Wallet", "Entitlements", "Offers", "Spending", "MyDataAccess", "MyDispensings")
BASELINE = "query Baseline { me { subject } }"


def screen_requests() -> dict[str, dict[str, Any]]:
    """The GraphQL body of each screen (its document and variables), and the baseline's."""
    year = datetime.now(UTC).year
    bodies = {"baseline": {"query": BASELINE, "variables": {}}}
    for name in SCREENS:
        variables = {"year": year} if name == "Spending" else {}
        bodies[name] = {
            "query": (OPERATIONS / f"{name}.graphql").read_text(),
            "variables": variables,
        }
    return bodies


async def statements_per_screen(settings: Settings, engine: AsyncEngine, token: str) -> dict:
    """SQL statements of one request of each screen, counted on the engine in-process."""
    app = create_app(settings, engine=engine)
    counts: dict[str, int] = {}
    headers = {"authorization": f"Bearer {token}", "accept-language": "ru"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, body in screen_requests().items():
            seen: list[str] = []

            def count(conn, cursor, statement, *args, _seen=seen):
                _seen.append(statement)

            event.listen(engine.sync_engine, "before_cursor_execute", count)
            try:
                response = await client.post("/graphql", json=body, headers=headers)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", count)
            if response.status_code != 200 or "errors" in response.json():
                raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
            counts[name] = len(seen)
    return counts


async def drive_screen(
    *, base_url: str, body: dict, tokens: list[str], concurrency: int, seconds: float
) -> bench.LoadResult:
    """Send one screen's request from `concurrency` workers for `seconds`; time each."""
    latencies: list[float] = []
    payload = json.dumps(body).encode()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            n = offset
            while time.perf_counter() < deadline:
                headers = {
                    "authorization": f"Bearer {tokens[n % len(tokens)]}",
                    "content-type": "application/json",
                    "accept-language": "ru",
                }
                n += concurrency
                started = time.perf_counter()
                response = await client.post("/graphql", content=payload, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200 or b'"errors"' in response.content[:2000]:
                    raise RuntimeError(f"{response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return bench.LoadResult(len(latencies), elapsed, latencies)


def screens_summary(
    results: dict[str, bench.LoadResult], statements: dict[str, int], *, families: int,
    concurrency: int, database: str,
) -> dict[str, Any]:  # fmt: skip
    """The JSON line: per screen its median, p99, rate against the baseline, statements."""
    base = results["baseline"]

    def figures(name: str, r: bench.LoadResult) -> dict[str, Any]:
        return {
            "requests": r.requests,
            "rps": round(r.rps, 1),
            "median_ms": round(statistics.median(r.latencies_ms), 2),
            "p99_ms": round(r.percentile(0.99), 2),
            "ratio": round(r.rps / base.rps, 3),
            "sql_statements": statements[name],
        }

    return {
        "benchmark": "screens",
        "database": database,
        "families": families,
        "concurrency": concurrency,
        "baseline": figures("baseline", base),
        "screens": {name: figures(name, results[name]) for name in SCREENS},
    }


def bench_screens(
    families: Annotated[int, typer.Option(min=1, help="Families to generate.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    seconds: Annotated[float, typer.Option(min=1, help="Measured seconds per screen.")] = 10,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds.")] = 5,
) -> None:
    """Serve the API on an empty DATABASE_URL and time each citizen screen against
    `{ me { subject } }` at a fixed concurrency; print a JSON line."""
    settings = Settings()
    configure_logging(level="WARNING", json=True)
    if settings.is_prod:
        console.print("[red]The screens benchmark mints dev tokens; run it with ENVIRONMENT=dev.")
        raise typer.Exit(2)

    async def prepare() -> tuple[list[str], dict, str]:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(Family)):
                    console.print("[red]DATABASE_URL is not empty; a benchmark needs an empty one.")
                    raise typer.Exit(2)
            heads = await bench.load_bench_data(engine, families=families, seed=seed)
            issuer = bench.dev_issuer(settings)
            tokens = [issuer.mint(roles=[Role.CITIZEN], subject=iin) for iin in heads]
            statements = await statements_per_screen(settings, engine, tokens[0])
            return tokens, statements, engine.dialect.name
        finally:
            await engine.dispose()

    tokens, statements, database = asyncio.run(prepare())
    console.print(f"loaded {families:,} families; statements per request {statements}")
    port = bench.free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = bench.start_server(port)
    bodies = screen_requests()
    try:

        async def measure() -> dict[str, bench.LoadResult]:
            await bench.wait_until_up(base_url)
            results = {name: bench.LoadResult(0, 0.0, []) for name in bodies}
            for body in bodies.values():  # warm-up, not counted
                await drive_screen(base_url=base_url, body=body, tokens=tokens,
                                   concurrency=concurrency, seconds=1)  # fmt: skip
            for _ in range(rounds):
                for name, body in bodies.items():
                    r = await drive_screen(
                        base_url=base_url, body=body, tokens=tokens,
                        concurrency=concurrency, seconds=seconds / rounds,
                    )  # fmt: skip
                    results[name] = results[name].plus(r)
            return results

        results = asyncio.run(measure())
    finally:
        server.terminate()
        server.wait(timeout=10)
    for name, r in results.items():
        console.print(
            f"{name}: {r.rps:.0f} rps, p50 {r.percentile(0.5):.1f} ms, p99 {r.percentile(0.99):.1f} ms"
        )
    typer.echo(
        json.dumps(
            screens_summary(
                results, statements, families=families, concurrency=concurrency, database=database
            )
        )
    )
