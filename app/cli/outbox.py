"""CLI commands of the outbox: run the relay that sends queued messages (SMS from 1414)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from enum import StrEnum
from typing import Annotated

import typer
import uvloop
from rich.console import Console
from rich.table import Table

from app.cli.settings import load_settings
from app.db import create_engine, create_session_factory
from app.jobs import outbox_store
from app.logging import configure_logging
from app.settings import Settings
from wallet.bank import HttpBank, bank_from_settings
from wallet.outbox import RelaySummary, relay_once, run_relay
from wallet.sms import HttpGateway, SmsGateway, gateway_from_settings

console = Console(stderr=True)


class Channel(StrEnum):
    sms = "sms"
    bank = "bank"


outbox_cli = typer.Typer(help="The outbox of messages to send.", no_args_is_help=True)


@outbox_cli.command("run")
def run_command(
    once: Annotated[
        bool, typer.Option("--once", help="Process one batch of due messages and exit.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Messages claimed per batch.")] = 100,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts before a message is dead.")
    ] = 8,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait when nothing is due.")
    ] = 2.0,
    channel: Annotated[
        Channel,
        typer.Option(help="sms (from 1414, SMS_GATEWAY) or bank (payment orders, BANK_GATEWAY)."),
    ] = Channel.sms,
) -> None:
    """Send queued messages with retries and backoff until Ctrl-C (or one batch, --once).

    SMS go through SMS_GATEWAY (log or http, with SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN);
    payment orders through BANK_GATEWAY (with BANK_GATEWAY_URL and BANK_GATEWAY_TOKEN).
    """
    # In prod the settings refuse a log gateway (it marks messages sent without sending).
    settings = load_settings(console)
    try:
        if channel is Channel.sms:
            token = settings.sms_gateway_token
            gateway = gateway_from_settings(
                settings.sms_gateway,
                settings.sms_gateway_url,
                token.get_secret_value() if token is not None else None,
            )
        else:
            token = settings.bank_gateway_token
            gateway = bank_from_settings(
                settings.bank_gateway,
                settings.bank_gateway_url,
                token.get_secret_value() if token is not None else None,
            )
    except ValueError as exc:
        console.print(f"[red]Bad gateway settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    configure_logging(level=settings.log_level, json=settings.log_json)
    # uvloop's event loop: a send costs the relay less of its own CPU than on asyncio's.
    summary = uvloop.run(
        _run(
            settings,
            gateway,
            channel=channel.value,
            once=once,
            batch_size=batch_size,
            max_attempts=max_attempts,
            interval=interval,
        )
    )
    _print_summary(summary)


async def _run(
    settings: Settings,
    gateway: SmsGateway,
    *,
    channel: str,
    once: bool,
    batch_size: int,
    max_attempts: int,
    interval: float,
) -> RelaySummary:
    engine = create_engine(settings)
    session_factory = create_session_factory(engine)
    try:
        async with outbox_store(settings, session_factory) as store:
            if once:
                return await relay_once(
                    store=store,
                    gateway=gateway,
                    batch_size=batch_size,
                    max_attempts=max_attempts,
                    channel=channel,
                )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            # Ctrl-C or SIGTERM lets the batch in hand finish and record its outcomes; a
            # claim cut short would only be sent again after its lease expires.
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            console.print("Relaying the outbox; Ctrl-C stops.")
            return await run_relay(
                store=store,
                gateway=gateway,
                stop=stop,
                interval=interval,
                batch_size=batch_size,
                max_attempts=max_attempts,
                channel=channel,
                on_batch=lambda batch: console.print(
                    f"batch: {batch.claimed} claimed, {batch.sent} sent, "
                    f"{batch.retried} to retry, {batch.failed} failed, {batch.dead} dead"
                ),
            )
    finally:
        if isinstance(gateway, HttpGateway | HttpBank):
            await gateway.aclose()
        await engine.dispose()


def _print_summary(summary: RelaySummary) -> None:
    table = Table(title="Outbox relay")
    for column in ("claimed", "sent", "to retry", "failed", "dead"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(value)
            for value in (
                summary.claimed,
                summary.sent,
                summary.retried,
                summary.failed,
                summary.dead,
            )
        )
    )
    console.print(table)
