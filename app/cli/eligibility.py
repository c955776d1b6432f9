"""CLI commands of the family map: generate a population, run eligibility."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.db import create_engine
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.batch import RunSummary, run_batch
from familymap.clock import astana_today
from familymap.generator import write_import_files
from familymap.registry_load import load_synthetic_registry

console = Console(stderr=True)
eligibility_cli = typer.Typer(help="Run the eligibility core.", no_args_is_help=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def generate(
    families: Annotated[int, typer.Option(min=1, help="How many families to generate.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same population.")] = 1,
    as_of: Annotated[
        str | None, typer.Option(help="Reference date YYYY-MM-DD (default: today).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write import files (JSON lines) here instead of loading the database."),
    ] = None,
) -> None:
    """Generate a synthetic Kazakhstan-like population: import files, or straight into the DB."""
    reference = _parse_date(as_of)
    if out is not None:
        with _progress() as progress:
            task = progress.add_task("writing import files", total=families)
            counts = write_import_files(
                directory=out, families=families, seed=seed, as_of=reference,
                progress=lambda done, _total: progress.update(task, completed=done),
            )  # fmt: skip
        for name, lines in counts.items():
            console.print(f"{out / name}: {lines:,} lines")
        return

    async def run() -> tuple[int, int]:
        engine = create_engine(Settings())
        try:
            await upgrade_to_head(engine)
            with _progress() as progress:
                task = progress.add_task("loading families", total=families)
                async with engine.begin() as connection:
                    return await load_synthetic_registry(
                        connection, families=families, seed=seed, as_of=reference,
                        progress=lambda done, _total: progress.update(task, completed=done),
                    )  # fmt: skip
        finally:
            await engine.dispose()

    loaded_families, loaded_persons = asyncio.run(run())
    console.print(
        f"[green]Loaded {loaded_families:,} families, {loaded_persons:,} persons.[/green]"
    )


@eligibility_cli.command("run")
def eligibility_run(
    on: Annotated[
        str | None, typer.Option(help="Evaluation date YYYY-MM-DD (default: today).")
    ] = None,
    snapshot_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="SOCIALWALLET_REGISTRY_SNAPSHOT_DIR",
            help="Keep the registry read here (local disk), and next time read again only the"
            " families that changed (PostgreSQL). Without it every run reads everything.",
        ),
    ] = None,
) -> None:
    """Evaluate the whole registry, write entitlements and the diff against the last run."""
    evaluation_date = _parse_date(on)

    async def run() -> RunSummary:
        engine = create_engine(Settings())
        try:
            with _progress() as progress:
                task = progress.add_task("evaluating ranges of families", total=None)
                async with engine.begin() as connection:
                    return await run_batch(
                        connection, on=evaluation_date, snapshot_directory=snapshot_dir,
                        progress=lambda _phase, done, total: progress.update(task, completed=done, total=total),
                    )  # fmt: skip
        finally:
            await engine.dispose()

    summary = asyncio.run(run())
    table = Table(title=f"Eligibility run {summary.run_id} on {evaluation_date}")
    for column in ("families", "persons", "eligible", "new", "changed", "ended"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            f"{getattr(summary, c):,}"
            for c in ("families", "persons", "eligible", "new", "changed", "ended")
        )
    )
    console.print(table)
    console.print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.seconds.items()))


def report_run(title: str, summary: RunSummary) -> None:
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in summary.seconds.items())
    console.print(
        f"{title}: {summary.families:,} families, {summary.persons:,} persons, "
        f"{summary.eligible:,} eligible (new {summary.new:,}, changed {summary.changed:,}, "
        f"ended {summary.ended:,}); {phases}"
    )


def _parse_date(value: str | None) -> date:
    if value is None:
        return astana_today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        console.print(f"[red]Not a date (YYYY-MM-DD): {value}[/red]")
        raise typer.Exit(2) from exc
