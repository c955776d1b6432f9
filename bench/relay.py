"""`socialwallet bench relay`: the SMS relay phase of `bench offers` again, alone, on the
outbox an earlier `bench offers` filled, so that relay changes can be compared back to back
without generating the families and running the offer job each time.

It sets every message of the outbox back to pending (never sent): on a benchmark database
only. It refuses to run in prod.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import func, select, update

from app.db import create_engine
from app.logging import configure_logging
from app.settings import Settings
from bench.offers import RELAY_PROCESSES, RELAYED, _relay_phase
from familymap.orm import utcnow
from wallet.outbox_tables import OutboxMessage

console = Console(stderr=True)


def bench_relay(
    relayed: Annotated[
        int, typer.Option(min=1, help="Messages of the outbox the relay drains.")
    ] = RELAYED,
    relay_processes: Annotated[
        int, typer.Option(min=1, max=16, help="Relay processes draining the outbox at once.")
    ] = RELAY_PROCESSES,
) -> None:
    """Reset the outbox of a `bench offers` database and measure the SMS relay again (one
    relay SIGKILLed midway), against the local fake gateway."""
    settings = Settings()
    if settings.environment == "prod":
        console.print("[red]bench relay resets the outbox; it does not run in prod.")
        raise typer.Exit(2)
    configure_logging(level="WARNING", json=True)
    if not asyncio.run(_reset_outbox(settings)):
        console.print("[red]The outbox is empty: run `socialwallet bench offers` first.")
        raise typer.Exit(2)
    load = os.getloadavg()
    relay = _relay_phase(settings, relayed, relay_processes)
    typer.echo(json.dumps(_figures(relay, relay_processes, load)))


def _figures(relay: dict[str, Any], processes: int, load: tuple[float, ...]) -> dict[str, Any]:
    seconds = relay["seconds"]
    return {
        "benchmark": "relay",
        "sms_relayed": relay["relayed"],
        "sms_sent": relay["sent"],
        "sms_failed": relay["failed"],
        "relay_seconds": round(seconds, 3),
        "sms_sent_per_s": round(relay["sent"] / seconds) if seconds else 0,
        "relay_processes": processes,
        "relay_cpu_ms_per_send": relay["relay_cpu_ms_per_send"],
        "gateway_cpu_ms_per_send": relay["gateway_cpu_ms_per_send"],
        "relay_killed_after": relay["killed_after"],
        "resent_after_kill": relay["gateway"]["repeated"],
        "duplicates_at_gateway": relay["gateway"]["duplicates"],
        "lost": relay["lost"],
        "load_before": [round(value, 2) for value in load],
        "load_after": [round(value, 2) for value in os.getloadavg()],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


async def _reset_outbox(settings: Settings) -> int:
    """Every message pending and due now, as the offer job left them; how many there are."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(OutboxMessage).values(
                    status="pending",
                    attempts=0,
                    claimed_until=None,
                    sent_at=None,
                    gateway_message_id=None,
                    last_error=None,
                    next_attempt_at=utcnow(),
                )
            )
            return int(
                await connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0
            )
    finally:
        await engine.dispose()
