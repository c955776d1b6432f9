"""CLI commands of the bank's side: import a statement of the payout account (camt.053 or
MT940) to settle payments, and list the payments no statement has booked yet."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.settings import load_settings
from app.db import create_engine, create_session_factory
from app.settings import Settings
from familymap.orm import utcnow
from wallet.reconcile import (
    ALREADY_IMPORTED,
    ReconcileReport,
    Unreconciled,
    reconcile_statement,
    unreconciled_payments,
)
from wallet.statements import StatementError, parse_statement

console = Console(stderr=True)
bank_cli = typer.Typer(help="The bank's side of payments: statements.", no_args_is_help=True)

_STYLE = {"paid": "green", "returned": "yellow", ALREADY_IMPORTED: "dim"}


class Output(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _tenge(tiyn: int) -> str:
    return f"{tiyn // 100:,}.{tiyn % 100:02d}".replace(",", " ")


@bank_cli.command("reconcile")
def reconcile_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The statement.")
    ],
    output: Annotated[
        Output, typer.Option("--format", help="table (readable), json or csv (to stdout).")
    ] = Output.table,
) -> None:
    """Import a bank statement (camt.053 XML or MT940): payments it books become paid, those
    it returns are reversed and the family told; what does not match is flagged. Importing
    the same statement again changes nothing."""
    settings = load_settings(console)
    try:
        statement = parse_statement(file.read_bytes())
    except StatementError as exc:
        console.print(f"[red]Cannot read the statement:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    report = asyncio.run(_reconcile(settings, statement))
    if output is Output.json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    elif output is Output.csv:
        typer.echo(_csv([asdict(line) for line in report.lines]), nl=False)
    else:
        _print_report(report)


async def _reconcile(settings: Settings, statement) -> ReconcileReport:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            return await reconcile_statement(session=session, statement=statement, now=utcnow())
    finally:
        await engine.dispose()


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _print_report(report: ReconcileReport) -> None:
    out = Console()
    table = Table(title=f"Bank statement ({report.format})")
    for column in ("booked", "reference", "payment key", "amount ₸", "outcome", "detail"):
        table.add_column(column, justify="right" if column == "amount ₸" else "left")
    for line in report.lines:
        sign = "-" if line.direction == "debit" else "+"
        style = _STYLE.get(line.outcome, "bold red")
        table.add_row(
            line.booked_on,
            line.reference,
            line.end_to_end_id or "",
            f"{sign}{_tenge(line.amount_tiyn)}",
            f"[{style}]{line.outcome}[/{style}]",
            line.detail or "",
        )
    out.print(table)
    out.print(
        f"paid {report.count('paid')}, returned {report.count('returned')}, "
        f"flagged {len(report.flagged)}, already imported {report.count(ALREADY_IMPORTED)}, "
        f"not booked yet {report.not_booked}",
        highlight=False,
    )


@bank_cli.command("unreconciled")
def unreconciled_command(
    older_than: Annotated[
        int, typer.Option("--older-than", min=0, help="Ordered more than N days ago.")
    ] = 3,
    output: Annotated[Output, typer.Option("--format", help="table, json or csv.")] = Output.table,
) -> None:
    """Payments ordered more than N days ago that no bank statement has booked yet."""
    settings = load_settings(console)
    rows = asyncio.run(_unreconciled(settings, older_than=older_than))
    plain = [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(row).items()}
        for row in rows
    ]
    if output is Output.json:
        typer.echo(json.dumps(plain, ensure_ascii=False, indent=2))
    elif output is Output.csv:
        typer.echo(_csv(plain), nl=False)
    else:
        _print_unreconciled(rows, older_than=older_than)


async def _unreconciled(settings: Settings, *, older_than: int) -> list[Unreconciled]:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            return await unreconciled_payments(
                session=session, older_than_days=older_than, now=utcnow()
            )
    finally:
        await engine.dispose()


def _print_unreconciled(rows: list[Unreconciled], *, older_than: int) -> None:
    out = Console()
    table = Table(title=f"Payments not booked by the bank, ordered over {older_than} days ago")
    for column in ("payment", "key", "programme", "amount ₸", "IBAN", "state", "ordered", "days"):
        table.add_column(column, justify="right" if column in ("amount ₸", "days") else "left")
    for row in rows:
        table.add_row(
            str(row.payment_id),
            row.payment_key,
            row.programme,
            _tenge(row.amount_tiyn),
            row.iban_masked,
            row.state,
            f"{row.ordered_at:%Y-%m-%d %H:%M}",
            str(row.days_waiting),
        )
    out.print(table)
    out.print(f"{len(rows)} unreconciled, {_tenge(sum(r.amount_tiyn for r in rows))} ₸")
