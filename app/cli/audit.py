"""CLI commands of the audit trail: verify its hash chain."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console

from app.db import create_engine, create_session_factory
from app.settings import Settings
from familymap.audit import ChainReport, verify_chain

console = Console(stderr=True)
audit_cli = typer.Typer(help="The audit trail of personal data.", no_args_is_help=True)


@audit_cli.command("verify")
def verify_command() -> None:
    """Walk the audit chains; report the first edited, removed or reordered record (exit 1)."""
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]Bad settings:[/red] {exc}")
        raise typer.Exit(2) from exc

    async def run() -> ChainReport:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                return await verify_chain(session=session, key=settings.audit_key)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    if report.ok:
        console.print(f"[green]The audit chains are whole: {report.checked} records.[/green]")
    else:
        console.print(
            f"[red]Audit chain {report.broken_chain} is broken at record {report.broken_seq}:"
            f"[/red] {report.reason}"
        )
    typer.echo(json.dumps({"ok": report.ok, "checked": report.checked,
                           "broken_chain": report.broken_chain,
                           "broken_seq": report.broken_seq, "reason": report.reason}))  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)
