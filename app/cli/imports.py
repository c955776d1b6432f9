"""`socialwallet import DIR`: load the source systems' JSON-lines files into the family map.

The domain work is `familymap.importer.import_directory`; this module only draws the progress
bars and the summary. The lead registers it in `app.cli` as `cli.command("import")`.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from app.db import create_engine, create_session_factory
from app.settings import Settings
from familymap.batch import RunSummary, run_families
from familymap.clock import astana_today
from familymap.i18n import LANGUAGES, environment_language
from familymap.importer import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    FileProgress,
    ImportReport,
    NothingToImport,
    import_directory,
)

# The terminal shows this many refused lines (and warnings); the --report file has them all.
SHOWN_AT_MOST = 200


def import_command(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, dir_okay=True, help="Directory of <kind>.jsonl files."
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option("--report", dir_okay=False, help="Also write the full report as JSON here."),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=MAX_CHUNK_SIZE, help="Records per transaction.")
    ] = DEFAULT_CHUNK_SIZE,
    evaluate: Annotated[
        bool,
        typer.Option(
            "--evaluate/--no-evaluate",
            help="Re-evaluate eligibility of the families whose facts changed (default).",
        ),
    ] = True,
    language: Annotated[
        str | None,
        typer.Option(
            help=(
                f"Language of the reasons ({', '.join(LANGUAGES)}); default: the terminal's "
                "locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG) if it is one of them, else en."
            ),
        ),
    ] = None,
) -> None:
    """Import the family map's source-system files (families, persons, then facts) from DIRECTORY.

    A bad record is skipped and listed as FILE:LINE CODE reason; the good ones are imported.
    Re-importing the same files changes nothing. Exit code: 0 when every record was imported
    or already present, 1 when any record was refused, 2 when nothing could be imported.
    """
    out, err = Console(), Console(stderr=True)
    if language is not None and language not in LANGUAGES:
        err.print(f"[red]Unknown language:[/red] {language} (one of {', '.join(LANGUAGES)})")
        raise typer.Exit(2)
    lang = language or environment_language()
    try:
        settings = Settings()
    except ValueError as exc:
        err.print(f"[red]Bad settings:[/red] {exc}")
        raise typer.Exit(2) from exc

    started = time.perf_counter()
    try:
        result = asyncio.run(_run(settings, directory, chunk_size=chunk_size, console=err))
    except NothingToImport as exc:
        err.print(f"[red]Nothing to import:[/red] {exc.text(lang)}", highlight=False)
        raise typer.Exit(2) from exc
    elapsed = time.perf_counter() - started

    _print_summary(out, result, elapsed=elapsed, language=lang)
    if evaluate and result.changed_families:
        summary = asyncio.run(_evaluate(settings, result.changed_families, console=err))
        out.print(
            f"Re-evaluated {summary.families:,} families (run {summary.run_id}): "
            f"{summary.new:,} new, {summary.changed:,} changed, {summary.ended:,} ended entitlements.",
            highlight=False,
        )
    if report is not None:
        document = result.as_dict(lang) | {"directory": str(directory), "elapsed_seconds": elapsed}
        report.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
        out.print(f"Report written to {report}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


async def _run(
    settings: Settings, directory: Path, *, chunk_size: int, console: Console
) -> ImportReport:
    engine = create_engine(settings)
    # Bars only on a terminal: in a pipe or a CI log they would be noise.
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TimeElapsedColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=console, disable=not console.is_terminal) as bars:

        def on_progress(step: FileProgress) -> None:
            if step.file not in tasks:
                tasks[step.file] = bars.add_task(step.file, total=step.bytes_total, lines=0)
            bars.update(tasks[step.file], completed=step.bytes_done, lines=step.lines_read)

        try:
            return await import_directory(
                directory=directory,
                session_factory=create_session_factory(engine),
                today=astana_today(),
                chunk_size=chunk_size,
                on_progress=on_progress,
            )
        finally:
            await engine.dispose()


async def _evaluate(settings: Settings, family_ids: set[int], *, console: Console) -> RunSummary:
    """Re-evaluate only the families the import changed, in one transaction."""
    engine = create_engine(settings)
    try:
        with Progress(
            TextColumn("re-evaluating families, in groups of 5,000"), BarColumn(), MofNCompleteColumn(),
            console=console, disable=not console.is_terminal,
        ) as bars:  # fmt: skip
            task = bars.add_task("groups", total=None)
            async with engine.begin() as connection:
                return await run_families(
                    connection, family_ids=family_ids, on=astana_today(),
                    progress=lambda _phase, done, total: bars.update(task, completed=done, total=total),
                )  # fmt: skip
    finally:
        await engine.dispose()


def _print_summary(out: Console, result: ImportReport, *, elapsed: float, language: str) -> None:
    table = Table(title="Import summary")
    table.add_column("file")
    for heading in ("read", "imported", "already present", "refused", "warnings"):
        table.add_column(heading, justify="right")
    for file in result.files:
        counts = (file.read, file.imported, file.already_present, len(file.refused))
        table.add_row(file.file, *(f"{n:,}" for n in (*counts, len(file.warnings))))
    out.print(table)

    for title, style, problems in (
        ("Refused", "red", result.refused),
        ("Warnings", "yellow", result.warnings),
    ):
        if not problems:
            continue
        out.print(f"[{style}]{title} ({len(problems):,}):[/{style}]")
        for problem in problems[:SHOWN_AT_MOST]:
            # Plain text: reasons may hold brackets that rich would read as markup.
            out.print(problem.text(language), markup=False, highlight=False, soft_wrap=True)
        if len(problems) > SHOWN_AT_MOST:
            out.print(f"… and {len(problems) - SHOWN_AT_MOST:,} more (see --report).")

    lines = sum(file.read for file in result.files)
    rate = lines / elapsed if elapsed > 0 else 0.0
    out.print(f"{lines:,} lines in {elapsed:.1f} s ({rate:,.0f} lines/s).", highlight=False)
