"""CLI commands of the proactive flow: make offers for new entitlements, and run the wallet's
jobs (offers, expiry, payment settlement, monthly payments) once or until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.settings import load_settings
from app.db import create_engine, create_session_factory
from app.jobs import JobsSummary, run_wallet_jobs
from app.logging import configure_logging
from app.settings import Settings
from vouchers.fulfilment import register_voucher_fulfillers
from wallet.offers import IssueSummary, issue_pending_offers

console = Console(stderr=True)
offers_cli = typer.Typer(help="Proactive offers from 1414.", no_args_is_help=True)
jobs_cli = typer.Typer(help="The wallet's background jobs.", no_args_is_help=True)


def _settings() -> Settings:
    return load_settings(console)


@offers_cli.command("issue")
def issue_command(
    chunk_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Entitlement changes per transaction.")
    ] = 5000,
) -> None:
    """Make the offers (and notices) for every new entitlement not yet offered.

    Reads `entitlement_changes` past the job's cursor, a chunk per transaction: safe to stop
    and run again, and never makes an offer twice. Offers wait OFFER_DAYS for an answer.
    """
    settings = _settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    summary = asyncio.run(_issue(settings, chunk_size))
    table = Table(title="Offers")
    for column in ("changes read", "offers made", "notices", "already made", "no adult"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(value)
            for value in (
                summary.changes,
                summary.offers,
                summary.notifications,
                summary.already,
                summary.no_recipient,
            )
        )
    )
    console.print(table)


async def _issue(settings: Settings, chunk_size: int) -> IssueSummary:
    # Standing consents' next periods are funded by the vouchers' fulfillers (wallet.offers).
    register_voucher_fulfillers()
    engine = create_engine(settings)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} changes"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("Making offers", total=None)
            return await issue_pending_offers(
                session_factory=create_session_factory(engine),
                offer_days=settings.offer_days,
                chunk_size=chunk_size,
                on_chunk=lambda chunk: progress.advance(task, chunk.changes),
            )
    finally:
        await engine.dispose()


@jobs_cli.command("run")
def jobs_command(
    once: Annotated[bool, typer.Option("--once", help="Run each job once and exit.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.5, help="Seconds between passes when running on.")
    ] = 30.0,
) -> None:
    """Run the wallet jobs: offers for new entitlements, expiry of unanswered offers,
    settlement of bank orders, and the monthly payments now due.

    `socialwallet worker` runs them (or `serve --with-jobs` on a single machine); this command
    is for a cron job or by hand. Each job's pass runs in one place at a time (a lock).
    """
    settings = _settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    asyncio.run(_jobs(settings, once=once, interval=interval))


async def _jobs(settings: Settings, *, once: bool, interval: float) -> None:
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        while True:
            _print(await run_wallet_jobs(session_factory=factory, offer_days=settings.offer_days))
            if once:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
    finally:
        await engine.dispose()


def _print(summary: JobsSummary) -> None:
    console.print(
        f"offers made {summary.offers.offers}, notices {summary.offers.notifications}, "
        f"expired {summary.expired}, payments sent to the bank {summary.sent} "
        f"(refused {summary.failed}), monthly payments ordered {summary.ordered}"
    )
