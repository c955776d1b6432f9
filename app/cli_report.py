"""`socialwallet report ...`: operators' reports, on the terminal (JSON lines on stdout)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from app.db import create_engine, create_session_factory
from app.settings import Settings
from vouchers.errors import InvalidInput
from vouchers.fallback_report import FallbackUse, fallback_use, parse_month

console = Console(stderr=True)
report_cli = typer.Typer(help="Operators' reports.", no_args_is_help=True)


@report_cli.command("fallback")
def fallback_command(
    month: Annotated[str, typer.Option(help="The month, YYYY-MM.")],
) -> None:
    """Fallback identity checks per pharmacy in a month, by reason, and missed lookups."""
    try:
        start = parse_month(month)
    except InvalidInput as refused:
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(2) from None
    settings = Settings()

    async def run() -> list[FallbackUse]:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                return await fallback_use(session=session, month=start)
        finally:
            await engine.dispose()

    uses = asyncio.run(run())
    for use in uses:
        typer.echo(json.dumps({
            "month": f"{start:%Y-%m}", "merchant_id": str(use.merchant_id),
            "pharmacy": use.pharmacy_name, "dispensings": use.dispensings,
            "fallbacks": use.fallbacks, "fallback_share": round(use.fallback_share, 4),
            "by_reason": use.by_reason, "lookup_misses": use.lookup_misses,
        }, ensure_ascii=False))  # fmt: skip
    console.print(f"{len(uses)} pharmacies in {start:%Y-%m}.")
