"""`socialwallet ledger verify`: check the money's invariants on the configured database."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console

from app.db import create_engine, create_session_factory
from app.settings import Settings
from wallet.verify import INVARIANTS, Finding, verify_ledger

console = Console(stderr=True)
ledger_cli = typer.Typer(help="The ledger of state spending.", no_args_is_help=True)


@ledger_cli.command("verify")
def verify_command() -> None:
    """Check every invariant of the money; name each broken one and exit 1."""
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]Bad settings:[/red] {exc}")
        raise typer.Exit(2) from exc

    async def run() -> list[Finding]:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                return await verify_ledger(session=session)
        finally:
            await engine.dispose()

    findings = asyncio.run(run())
    broken = {finding.invariant for finding in findings}
    for name, rule in INVARIANTS.items():
        mark = "[red]BROKEN[/red]" if name in broken else "[green]ok[/green]    "
        console.print(f"{mark} {name}: {rule}", highlight=False)
    for finding in findings:
        console.print(f"[red]{finding.describe()}[/red]", markup=True, highlight=False)
    if not findings:
        console.print(f"[green]The ledger holds: {len(INVARIANTS)} invariants checked.[/green]")
    typer.echo(json.dumps({
        "ok": not findings,
        "checked": list(INVARIANTS),
        "broken": [
            {"invariant": f.invariant, "count": f.broken, "examples": list(f.examples)}
            for f in findings
        ],
    }))  # fmt: skip
    if findings:
        raise typer.Exit(1)
