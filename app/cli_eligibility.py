"""CLI commands of the family map: generate a population, run eligibility, benchmark it."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from app.db import create_engine
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.batch import RunSummary, run_batch
from familymap.engine.evaluate import explain_population_family
from familymap.generator import write_import_files
from familymap.registry_load import load_synthetic_registry
from familymap.store import FamilySelection, read_registry_slice
from familymap.tables import Family

console = Console(stderr=True)
eligibility_cli = typer.Typer(help="Run the eligibility core.", no_args_is_help=True)
bench_cli = typer.Typer(
    help="Benchmarks: each works on an empty DATABASE_URL and prints JSON last.",
    no_args_is_help=True,
)


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
                        connection, on=evaluation_date,
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


@bench_cli.command("eligibility")
def bench_eligibility(
    families: Annotated[
        int, typer.Option(min=1, help="Families to generate and evaluate.")
    ] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 1,
    samples: Annotated[
        int, typer.Option(min=10, help="One-family evaluations for the p99.")
    ] = 2000,
) -> None:
    """Generate N families into an empty DATABASE_URL, run eligibility end to end, print figures.

    Phases: generate/load (in a child process; not counted in seconds_total nor in
    peak_rss_mb), then read, evaluate and write of a full batch run; then a second run over
    unchanged data (the steady state, nothing to write but the diff); then one family at a
    time in-process for the p99.
    """
    settings = Settings()
    on = date.today()

    async def run() -> dict[str, float | int | str]:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(Family)):
                    console.print(
                        "[red]DATABASE_URL is not empty; a benchmark needs an empty database.[/red]"
                    )
                    raise typer.Exit(2)
            started = time.perf_counter()
            # In a child process: the generator's memory is not the run's, and the run's peak
            # (ru_maxrss of this process) must not include it.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                persons = pool.submit(_load_in_child, settings, families, seed, on).result()
            generate_s = time.perf_counter() - started
            console.print(
                f"generate/load: {families:,} families, {persons:,} persons in {generate_s:.1f} s"
            )

            async with engine.begin() as connection:
                first = await run_batch(connection, on=on)
            _report_run("first run (everything new)", first)
            async with engine.begin() as connection:
                second = await run_batch(connection, on=on)
            _report_run("second run (steady state)", second)

            async with engine.connect() as connection:
                registry = await read_registry_slice(
                    connection, families=FamilySelection.range(1, min(families, 50_000))
                )
            p50, p99 = _single_family_latency(
                registry.population, on=on, samples=samples, seed=seed
            )
            console.print(f"one family in-process: p50 {p50:.0f} µs, p99 {p99:.0f} µs")
        finally:
            await engine.dispose()
        total = first.seconds["wall"]
        return {
            "benchmark": "eligibility",
            "database": engine.dialect.name,
            "families": first.families,
            "persons": first.persons,
            "eligible": first.eligible,
            "seconds_generate_load": round(generate_s, 3),
            "seconds_read": round(first.seconds["read"], 3),
            "seconds_evaluate": round(first.seconds["evaluate"], 3),
            "seconds_write": round(first.seconds["write"], 3),
            "seconds_total": round(total, 3),
            "seconds_total_steady_state": round(second.seconds["wall"], 3),
            "families_per_s": round(first.families / total),
            "persons_per_s_evaluate": round(first.persons / first.seconds["evaluate"]),
            "single_family_us_p50": round(p50, 1),
            "single_family_us_p99": round(p99, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_rss_mb_generate_load": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            ),
        }

    figures = asyncio.run(run())
    typer.echo(json.dumps(figures))


def _load_in_child(settings: Settings, families: int, seed: int, on: date) -> int:
    """Generate and load the synthetic registry; returns the number of persons."""

    async def load() -> int:
        engine = create_engine(settings)
        try:
            async with engine.begin() as connection:
                _, persons = await load_synthetic_registry(
                    connection, families=families, seed=seed, as_of=on
                )
                return persons
        finally:
            await engine.dispose()

    return asyncio.run(load())


def _single_family_latency(population, *, on: date, samples: int, seed: int) -> tuple[float, float]:
    """p50 and p99 in µs of evaluating one family (with its explanation) in-process."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, population.n_families, size=samples)
    explain_population_family(population=population.slice_families(0, 1), on=on)  # warm caches
    timings = np.empty(samples)
    for i, row in enumerate(rows.tolist()):
        started = time.perf_counter()
        explain_population_family(population=population.slice_families(row, row + 1), on=on)
        timings[i] = time.perf_counter() - started
    return float(np.percentile(timings, 50) * 1e6), float(np.percentile(timings, 99) * 1e6)


def _report_run(title: str, summary: RunSummary) -> None:
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in summary.seconds.items())
    console.print(
        f"{title}: {summary.families:,} families, {summary.persons:,} persons, "
        f"{summary.eligible:,} eligible (new {summary.new:,}, changed {summary.changed:,}, "
        f"ended {summary.ended:,}); {phases}"
    )


def _parse_date(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        console.print(f"[red]Not a date (YYYY-MM-DD): {value}[/red]")
        raise typer.Exit(2) from exc
