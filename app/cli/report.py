"""`socialwallet report ...`: operators' reports: `fallback` (JSON lines on stdout) and
`take-up`, the ministry's take-up funnel of a year's offers (docs/funnel.md)."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.db import create_engine, create_session_factory
from app.logging import configure_logging
from app.settings import Settings
from familymap.orm import utcnow
from vouchers.errors import InvalidInput
from vouchers.fallback_report import FallbackUse, fallback_use, parse_month
from wallet.funnel import (
    ASTANA,
    DIMENSIONS,
    RECORD_COLUMNS,
    FunnelRow,
    as_record,
    offer_funnel,
)
from wallet.offer_tables import DECLINE_REASONS

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


# The decline reasons' columns, short enough for a terminal.
REASON_HEADERS = {
    "NOT_NEEDED": "not needed",
    "WRONG_DATA": "wrong data",
    "DO_NOT_TRUST_SMS": "no trust",
    "OTHER": "other",
}


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        console.print(f"[red]Bad settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@report_cli.command("take-up")
def take_up_command(
    year: Annotated[int, typer.Option(min=2000, max=2100, help="The year (Astana time).")],
    by: Annotated[
        str, typer.Option(help="Group by, comma-separated: programme, region, month.")
    ] = "programme",
    programme: Annotated[str | None, typer.Option(help="One programme only.")] = None,
    region: Annotated[str | None, typer.Option(help="One region only.")] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
) -> None:
    """The take-up funnel of the offers made in a year: sent, delivered, answered, accepted,
    paid (confirmed by the bank), and why the others failed, with a total row."""
    group_by = tuple(name.strip() for name in by.split(",") if name.strip())
    unknown = sorted(set(group_by) - set(DIMENSIONS))
    if unknown:
        console.print(f"[red]Cannot group by {', '.join(unknown)}[/red] (use {DIMENSIONS}).")
        raise typer.Exit(2)
    settings = _settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    rows, total = asyncio.run(
        _read(settings, year=year, group_by=group_by, programme=programme, region=region)
    )
    out = Console()
    out.print(_funnel_table(rows, total, year=year, group_by=group_by))
    out.print(_failures_table(rows, total, group_by=group_by))
    if csv_file is not None:
        with csv_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=RECORD_COLUMNS)
            writer.writeheader()
            writer.writerows(as_record(row) for row in [*rows, *total])
        console.print(f"Wrote {len(rows) + len(total)} rows to {csv_file}.")


async def _read(
    settings: Settings,
    *,
    year: int,
    group_by: tuple[str, ...],
    programme: str | None,
    region: str | None,
) -> tuple[list[FunnelRow], list[FunnelRow]]:
    engine = create_engine(settings)
    window = partial(
        offer_funnel,
        since=datetime(year, 1, 1, tzinfo=ASTANA),
        until=datetime(year + 1, 1, 1, tzinfo=ASTANA),
        now=utcnow(),
        programme=programme,
        region=region,
    )
    try:
        async with create_session_factory(engine)() as session:
            rows = await window(session=session, group_by=group_by)
            # The total is read as its own group, so that its median is the national one.
            total = await window(session=session, group_by=()) if rows else []
    finally:
        await engine.dispose()
    return rows, total


def _names(row: FunnelRow, group_by: tuple[str, ...], *, total: bool) -> list[str]:
    if total:
        return ["Total", *([""] * (len(group_by) - 1))] if group_by else ["Total"]
    return [str(getattr(row, name)) for name in group_by] or ["Total"]


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _funnel_table(
    rows: list[FunnelRow], total: list[FunnelRow], *, year: int, group_by: tuple[str, ...]
) -> Table:
    table = Table(title=f"Take-up of proactive offers, {year} (Astana time)")
    for name in group_by or ("",):
        table.add_column(name.capitalize(), no_wrap=True)
    headers = ("Sent", "Delivered", "Answered", "Accepted", "Paid", "Vouchers", "Received")
    for header in (*headers, "Take-up", "Received %", "Median h"):
        table.add_column(header, justify="right")
    shown = [(row, False) for row in rows if group_by] + [(row, True) for row in total]
    for row, is_total in shown:
        median = row.median_seconds_to_payment
        table.add_row(
            *_names(row, group_by, total=is_total),
            *(
                str(value)
                for value in (row.sent, row.delivered, row.answered, row.accepted, row.paid)
            ),
            str(row.vouchers_issued),
            str(row.received),
            _percent(row.accepted, row.sent),
            _percent(row.received, row.sent),
            "-" if median is None else f"{median / 3600:.1f}",
            end_section=is_total is False and row is rows[-1],
        )
    return table


def _failures_table(
    rows: list[FunnelRow], total: list[FunnelRow], *, group_by: tuple[str, ...]
) -> Table:
    table = Table(title="Why offers did not reach the family")
    for name in group_by or ("",):
        table.add_column(name.capitalize(), no_wrap=True)
    reasons = tuple(REASON_HEADERS[reason] for reason in DECLINE_REASONS)
    headers = ("Declined", *reasons, "no reason", "Expired", "Open", "Withdrawn")
    for header in (*headers, "No IBAN", "Returned", "In payment"):
        table.add_column(header, justify="right")
    shown = [(row, False) for row in rows if group_by] + [(row, True) for row in total]
    for row, is_total in shown:
        numbers = (
            row.declined,
            *row.declined_for.values(),
            row.declined_without_reason,
            row.expired,
            row.open,
            row.withdrawn,
            row.needs_bank_account,
            row.returned,
            row.in_payment,
        )
        table.add_row(
            *_names(row, group_by, total=is_total),
            *(str(number) for number in numbers),
            end_section=is_total is False and row is rows[-1],
        )
    return table
