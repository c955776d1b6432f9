"""`socialwallet bench wallet`: the citizen's wallet through GraphQL against a hand-written
JSON endpoint on the same rows (see bench/wallet.py for what is compared and how)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import func, select

from app.auth import Role
from app.db import create_engine
from app.migrate import upgrade_to_head
from app.settings import Settings
from bench import wallet as bench
from familymap.tables import Family

console = Console(stderr=True)


def bench_wallet_command(
    families: Annotated[int, typer.Option(min=1, help="Families to generate.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    seconds: Annotated[float, typer.Option(min=1, help="Duration of each measured run.")] = 15,
    warmup: Annotated[float, typer.Option(min=0, help="Unmeasured seconds before each.")] = 3,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds of each path.")] = 5,
) -> None:
    """Serve the wallet through GraphQL and a plain Starlette endpoint; compare throughput.

    On an empty DATABASE_URL: migrate, generate families with ledger spending, start uvicorn
    on a loopback port, drive each path for `seconds` in alternating `rounds` at `concurrency`, print a JSON line.
    """
    settings = Settings()
    if settings.is_prod:
        console.print(
            "[red]The wallet benchmark mints dev tokens; run it with ENVIRONMENT=dev.[/red]"
        )
        raise typer.Exit(2)

    async def prepare() -> tuple[list[str], int, dict, str]:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(Family)):
                    console.print(
                        "[red]DATABASE_URL is not empty; a benchmark needs an empty database.[/red]"
                    )
                    raise typer.Exit(2)
            heads = await bench.load_bench_data(engine, families=families, seed=seed)
            persons = await bench.count_persons(engine)
            issuer = bench.dev_issuer(settings)
            tokens = [issuer.mint(roles=[Role.CITIZEN], subject=iin) for iin in heads]
            statements = await bench.statements_per_request(settings, engine, tokens[0])
            return tokens, persons, statements, engine.dialect.name
        finally:
            await engine.dispose()

    tokens, persons, statements, database = asyncio.run(prepare())
    console.print(f"loaded {families:,} families, {persons:,} persons; statements {statements}")

    port = bench.free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = bench.start_server(port)
    try:

        async def measure() -> tuple[bench.LoadResult, bench.LoadResult]:
            await bench.wait_until_up(base_url)
            kinds = ("baseline", "graphql")
            results = {kind: bench.LoadResult(0, 0.0, []) for kind in kinds}
            for kind in kinds:
                if warmup:
                    await bench.drive(base_url=base_url, kind=kind, tokens=tokens,
                                      concurrency=concurrency, seconds=warmup)  # fmt: skip
            # The two paths take turns in short rounds, so a change in the machine's load
            # (it is shared) falls on both rather than on whichever ran second.
            for _ in range(rounds):
                for kind in kinds:
                    r = await bench.drive(
                        base_url=base_url, kind=kind, tokens=tokens,
                        concurrency=concurrency, seconds=seconds / rounds,
                    )  # fmt: skip
                    results[kind] = results[kind].plus(r)
            for kind, r in results.items():
                console.print(
                    f"{kind}: {r.requests:,} requests in {r.seconds:.1f} s = {r.rps:.0f} rps, "
                    f"p50 {r.percentile(0.5):.1f} ms, p99 {r.percentile(0.99):.1f} ms"
                )
            return results["graphql"], results["baseline"]

        graphql, baseline = asyncio.run(measure())
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        json.dumps(
            bench.summary(
                graphql=graphql,
                baseline=baseline,
                statements=statements,
                families=families,
                persons=persons,
                concurrency=concurrency,
                database=database,
            )
        )
    )
