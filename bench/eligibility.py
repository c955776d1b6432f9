"""`socialwallet bench eligibility`: the eligibility core on a synthetic registry, end to end
(generate and load, a first national-style run, a steady-state run, one family at a time), and
the in-memory evaluation benchmark the tests run small."""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from sqlalchemy import func, select

from app.cli.eligibility import report_run
from app.db import create_engine
from app.migrate import upgrade_to_head
from app.settings import Settings
from bench.backend_cpu import CpuSeconds, cpu_seconds
from familymap.batch import run_batch
from familymap.engine.evaluate import (
    evaluate_family,
    evaluate_population,
    explain_population_family,
)
from familymap.parameters import ParameterSet, default_parameters
from familymap.registry_load import load_synthetic_registry
from familymap.store import FamilySelection, read_registry_slice
from familymap.synthetic import REFERENCE_DATE, family_from_population, synthetic_population
from familymap.tables import Entitlement, Family

console = Console(stderr=True)


def run_evaluation_benchmark(
    *,
    n_families: int,
    seed: int = 0,
    on: date = REFERENCE_DATE,
    workers: int = 2,
    single_family_samples: int = 2000,
    parameters: ParameterSet | None = None,
) -> dict:
    """Time the vectorised evaluation of a synthetic population and single-family evaluations."""
    parameters = parameters or default_parameters()
    t0 = time.perf_counter()
    population = synthetic_population(n_families, seed, reference=on)
    generate_s = time.perf_counter() - t0
    evaluate_population(
        population=population.slice_families(0, min(1000, n_families)), on=on, parameters=parameters
    )
    t0 = time.perf_counter()
    result = evaluate_population(
        population=population, on=on, parameters=parameters, workers=workers
    )
    evaluate_s = time.perf_counter() - t0

    rng = np.random.default_rng(seed + 1)
    sample = rng.choice(n_families, size=min(single_family_samples, n_families), replace=False)
    families = [family_from_population(population, int(i)) for i in sample]
    for family in families[:50]:  # warm caches (parameter snapshot, cutoffs)
        evaluate_family(family=family, on=on, parameters=parameters)
    # The garbage collector stays enabled while timing, as in production: collections triggered
    # by the evaluations' own allocations are part of their cost. Only the fixture built just
    # above (2,000 Family objects, the population) is collected and aged first, so that a young
    # generation full of benchmark set-up is not charged to whichever evaluation trips it.
    gc.collect()
    timings = np.empty(len(families))
    for i, family in enumerate(families):
        t0 = time.perf_counter()
        evaluate_family(family=family, on=on, parameters=parameters)
        timings[i] = time.perf_counter() - t0
    return {
        "families": population.n_families,
        "persons": population.n_persons,
        "workers": workers,
        "generate_s": round(generate_s, 3),
        "evaluate_s": round(evaluate_s, 4),
        "persons_per_s_evaluate": int(population.n_persons / evaluate_s),
        "eligible_decisions": int(sum(result.eligible_count().values())),
        "single_family_samples": len(families),
        "single_family_us_p50": round(float(np.percentile(timings, 50)) * 1e6, 1),
        "single_family_us_p99": round(float(np.percentile(timings, 99)) * 1e6, 1),
        "parameters_version": parameters.version,
    }


def bench_eligibility(
    families: Annotated[
        int, typer.Option(min=1, help="Families to generate and evaluate.")
    ] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 1,
    samples: Annotated[
        int, typer.Option(min=10, help="One-family evaluations for the p99.")
    ] = 2000,
    loaded: Annotated[
        bool,
        typer.Option(
            help="The registry is already loaded (e.g. a `createdb -T` copy of one made by"
            " `socialwallet generate`) and has no entitlements: skip the generation."
        ),
    ] = False,
    snapshot_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the runs keep the registry they read (default: a temporary directory,"
            " removed at the end)."
        ),
    ] = None,
) -> None:
    """Generate N families into an empty DATABASE_URL, run eligibility end to end, print figures.

    Phases: generate/load (in a child process; not counted in seconds_total nor in
    peak_rss_mb), then read, evaluate and write of a full batch run (the first: everything
    new); then a second run over unchanged data (the steady state: it reads and compares, and
    writes only its run record); then one family at a time in-process for the p99. The load
    average before the first run and after the second is part of the report: the machine
    may be shared, and the figures move with it; so the CPU seconds each run cost (this
    process, and PostgreSQL's backends when the server is on this host) are reported too.
    """
    settings = Settings()
    on = date.today()
    temporary = None if snapshot_dir is not None else tempfile.TemporaryDirectory(prefix="sw-kept-")
    kept = snapshot_dir if temporary is None else Path(temporary.name)

    async def run() -> dict[str, float | int | str]:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                present = await connection.scalar(select(func.count()).select_from(Family))
                entitled = await connection.scalar(select(func.count()).select_from(Entitlement))
                if (present and not loaded) or (loaded and (not present or entitled)):
                    console.print(
                        "[red]A benchmark needs an empty database (with --loaded: a registry"
                        " and no entitlements).[/red]"
                    )
                    raise typer.Exit(2)
            started = time.perf_counter()
            if not loaded:
                # In a child process: the generator's memory is not the run's, and the run's
                # peak (ru_maxrss of this process) must not include it.
                with ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn")
                ) as pool:
                    persons = pool.submit(_load_in_child, settings, families, seed, on).result()
                generate_s = time.perf_counter() - started
                console.print(
                    f"generate/load: {families:,} families, {persons:,} persons in {generate_s:.1f} s"
                )
            else:
                generate_s = 0.0

            load_before = os.getloadavg()[0]
            database = engine.url.database if engine.dialect.name == "postgresql" else None
            with cpu_seconds(database) as first_cpu:
                async with engine.begin() as connection:
                    first = await run_batch(connection, on=on, snapshot_directory=kept)
            report_run("first run (everything new)", first)
            with cpu_seconds(database) as second_cpu:
                async with engine.begin() as connection:
                    second = await run_batch(connection, on=on, snapshot_directory=kept)
            report_run("second run (steady state)", second)
            load_after = os.getloadavg()[0]

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
            "seconds_read_steady_state": round(second.seconds["read"], 3),
            "seconds_write_steady_state": round(second.seconds["write"], 3),
            # Families the steady state read from the database (the others: kept files).
            "families_read_steady_state": second.families_read,
            "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
            # CPU seconds each run cost: this process (all threads) and PostgreSQL's backends
            # (None when the server is not on this host); steadier than wall time under load.
            "cpu_s_first_client_server": _cpu(first_cpu),
            "cpu_s_steady_state_client_server": _cpu(second_cpu),
            "families_per_s": round(first.families / total),
            "persons_per_s_evaluate": round(first.persons / first.seconds["evaluate"]),
            "single_family_us_p50": round(p50, 1),
            "single_family_us_p99": round(p99, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_rss_mb_generate_load": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            ),
        }

    try:
        figures = asyncio.run(run())
    finally:
        if temporary is not None:
            temporary.cleanup()
    typer.echo(json.dumps(figures))


def _cpu(measured: CpuSeconds) -> list[float | None]:
    server = None if measured.server is None else round(measured.server, 2)
    return [round(measured.client, 2), server]


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
