"""`socialwallet bench offers`: a campaign after a national run, end to end.

Phases: generate N families and load them (a child process, not measured), run eligibility
(not measured: `bench eligibility` measures it), then the offer job (`issue_pending_offers`:
offers, their SMS in the outbox, notices), measured; then the SMS relay (`run_relay` with
`HttpGateway`) draining the first 100,000 messages of the outbox into a local fake gateway
(bench/sms_gateway.py, a child process), measured, with `--relay-processes` relay processes
at once. Midway through the relay the benchmark SIGKILLs one relay process and starts a
standby in its place; the dead one's claims are taken again when they expire, and the
gateway counts what reached it twice.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import signal
import socket
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

import httpx
import typer
import uvloop
from rich.console import Console
from sqlalchemy import func, select, text, update

from app.db import create_engine, create_session_factory
from app.jobs import outbox_store
from app.logging import configure_logging
from app.migrate import upgrade_to_head
from app.settings import Settings
from bench import proc_cpu
from bench.eligibility import _load_in_child
from bench.sms_gateway import serve_gateway
from familymap.batch import run_batch
from familymap.orm import utcnow
from familymap.tables import Family
from wallet.offers import IssueSummary, issue_pending_offers
from wallet.outbox import Backoff, run_relay
from wallet.outbox_tables import OutboxMessage
from wallet.sms import HttpGateway

console = Console(stderr=True)

RELAYED = 100_000
# The relay as the benchmark runs it: short leases and backoff, so that the killed relay's
# claims and the gateway's failed answers come back within the run.
RELAY_BATCH = 64
RELAY_CONCURRENCY = 64
RELAY_LANES = 8
# A send never outlives its claim (relay_once gives back what would not fit), so the lease
# can be short: the killed relay's claims come back within 10 s.
RELAY_CLAIM = timedelta(seconds=10)
RELAY_SEND_TIMEOUT = 2.0
# Relay processes running at once (a standby replaces the one killed).
RELAY_PROCESSES = 2
RELAY_BACKOFF_BASE = timedelta(seconds=0.2)
RELAY_MAX_ATTEMPTS = 8
# The share of the relayed messages the gateway has taken when the relay is killed.
KILL_AT = 0.4


def bench_offers(
    families: Annotated[int, typer.Option(min=1, help="Families to generate.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 1,
    relayed: Annotated[
        int, typer.Option(min=1, help="Messages of the outbox the relay drains.")
    ] = RELAYED,
    chunk_size: Annotated[
        int, typer.Option(min=100, help="Entitlement changes per transaction of the offer job.")
    ] = 5000,
    relay_processes: Annotated[
        int, typer.Option(min=1, max=16, help="Relay processes draining the outbox at once.")
    ] = RELAY_PROCESSES,
) -> None:
    """Generate N families into an empty DATABASE_URL, run eligibility, then measure the
    offer job and the SMS relay (killed once midway) against a local fake gateway."""
    figures = run_offers_benchmark(
        settings=Settings(),
        families=families,
        seed=seed,
        relayed=relayed,
        chunk_size=chunk_size,
        relay_processes=relay_processes,
    )
    typer.echo(json.dumps(figures))


def run_offers_benchmark(
    *,
    settings: Settings,
    families: int,
    seed: int,
    relayed: int,
    chunk_size: int,
    relay_processes: int = RELAY_PROCESSES,
) -> dict[str, Any]:
    """The benchmark's phases on the database of `settings`; its figures."""
    on = date.today()
    configure_logging(level="WARNING", json=True)

    async def prepare() -> None:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(Family)):
                    console.print("[red]DATABASE_URL is not empty; a benchmark needs an empty one.")
                    raise typer.Exit(2)
        finally:
            await engine.dispose()
        started = time.perf_counter()
        # In a child process: the generator's and the eligibility run's memory are not the
        # offer job's, whose peak (ru_maxrss of this process) the benchmark reports.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            persons, eligible = pool.submit(
                _prepare_in_child, settings, families, seed, on
            ).result()
        console.print(
            f"generate/load and eligibility: {families:,} families, {persons:,} persons, "
            f"{eligible:,} eligible in {time.perf_counter() - started:.1f} s"
        )

    asyncio.run(prepare())
    run = asyncio.run(_offer_job(settings, chunk_size))
    offers, offer_seconds = run.summary, run.seconds
    console.print(
        f"offer job: {offers.offers:,} offers, {offers.notifications:,} notices "
        f"({offers.changes:,} changes) in {offer_seconds:.1f} s"
    )
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    relay = _relay_phase(settings, relayed, relay_processes)
    console.print(
        f"relay: {relay['sent']:,} sent in {relay['seconds']:.1f} s, gateway {relay['gateway']}"
    )
    return {
        "benchmark": "offers",
        "database": "postgresql" if "postgres" in settings.async_database_url else "sqlite",
        "families": families,
        "offers": offers.offers,
        "notices": offers.notifications,
        "changes": offers.changes,
        "no_recipient": offers.no_recipient,
        "offer_seconds": round(offer_seconds, 3),
        "offers_per_s": round(offers.offers / offer_seconds) if offer_seconds else 0,
        "changes_per_s": round(offers.changes / offer_seconds) if offer_seconds else 0,
        "offer_cpu_us_per_offer": run.cpu_us_per_offer(),
        "sms_relayed": relay["relayed"],
        "sms_sent": relay["sent"],
        "sms_failed": relay["failed"],
        "relay_seconds": round(relay["seconds"], 3),
        "sms_sent_per_s": round(relay["sent"] / relay["seconds"]) if relay["seconds"] else 0,
        "relay_processes": relay_processes,
        "relay_cpu_ms_per_send": relay["relay_cpu_ms_per_send"],
        "gateway_cpu_ms_per_send": relay["gateway_cpu_ms_per_send"],
        "relay_killed_after": relay["killed_after"],
        "resent_after_kill": relay["gateway"]["repeated"],
        "duplicates_at_gateway": relay["gateway"]["duplicates"],
        "lost": relay["lost"],
        "peak_rss_mb": peak_rss_mb,
    }


@dataclass
class OfferJobRun:
    """The offer job's outcome, wall time and CPU: this process's and its PostgreSQL
    backends' (None where /proc is missing). On a shared machine the wall time depends on
    the others' load; the CPU an offer costs much less."""

    summary: IssueSummary
    seconds: float
    job_cpu_s: float
    database_cpu_s: float | None

    def cpu_us_per_offer(self) -> dict[str, float | None]:
        offers = max(self.summary.offers, 1)
        database = self.database_cpu_s
        return {
            "job": round(self.job_cpu_s / offers * 1e6, 1),
            "database": None if database is None else round(database / offers * 1e6, 1),
        }


async def _offer_job(settings: Settings, chunk_size: int) -> OfferJobRun:
    engine = create_engine(settings)
    try:
        cpu_before = time.process_time()
        started = time.perf_counter()
        summary = await issue_pending_offers(
            session_factory=create_session_factory(engine),
            now=utcnow(),
            offer_days=settings.offer_days,
            chunk_size=chunk_size,
        )
        seconds = time.perf_counter() - started
        job_cpu = time.process_time() - cpu_before
        return OfferJobRun(summary, seconds, job_cpu, await _backends_cpu(engine))
    finally:
        await engine.dispose()


async def _backends_cpu(engine: Any) -> float | None:
    """CPU seconds of the backends serving this database (the job's pooled connections,
    opened for it, so counted whole), read before the pool closes them."""
    if not proc_cpu.available() or engine.dialect.name != "postgresql":
        return None
    async with engine.connect() as connection:
        pids = (
            await connection.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ).all()
    return proc_cpu.used_since({}, proc_cpu.snapshot(pids))


def _prepare_in_child(settings: Settings, families: int, seed: int, on: date) -> tuple[int, int]:
    """Generate and load the registry, then run eligibility; (persons, eligible)."""
    persons = _load_in_child(settings, families, seed, on)

    async def evaluate() -> int:
        engine = create_engine(settings)
        try:
            async with engine.begin() as connection:
                return (await run_batch(connection, on=on)).eligible
        finally:
            await engine.dispose()

    return persons, asyncio.run(evaluate())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _relay_phase(
    settings: Settings, relayed: int, processes: int = RELAY_PROCESSES
) -> dict[str, Any]:
    """Relay the first `relayed` SMS of the outbox with `processes` relay processes; kill
    one of them once midway, and start a standby in its place."""
    asyncio.run(_only_the_first(settings, relayed))
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    gateway_ready = context.Event()
    gateway = context.Process(target=serve_gateway, args=(port, gateway_ready), daemon=True)
    gateway.start()
    gateway_ready.wait(30)
    url = f"http://127.0.0.1:{port}"
    # The CPU of the relay processes (and the gateway's, taken out below), when they end.
    cpu_before = _children_cpu()
    try:
        relays = []
        for _ in range(processes + 1):
            ready, go = context.Event(), context.Event()
            process = context.Process(
                target=_relay_in_child, args=(settings, f"{url}/sms", ready, go), daemon=True
            )
            process.start()
            relays.append((process, ready, go))
        for _, ready, _ in relays:
            ready.wait(60)
        *running, standby = relays
        started = time.perf_counter()
        for _, _, go in running:
            go.set()
        victim = running[0][0]
        while _stats(url)["delivered"] < relayed * KILL_AT and victim.is_alive():
            time.sleep(0.05)
        killed_after = _stats(url)["delivered"]
        # Mid-batch: sends are in flight, some taken by the gateway and not yet recorded.
        assert victim.pid is not None  # started above
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        standby[2].set()
        for process, _, _ in [*running[1:], standby]:
            process.join()
        seconds = time.perf_counter() - started
        stats = _stats(url)
    finally:
        gateway.kill()
        gateway.join()
    relay_cpu = _children_cpu() - cpu_before - stats.get("cpu_ms", 0) / 1000
    sent, failed, lost = asyncio.run(_relay_outcome(settings))
    return {
        "relayed": relayed,
        "sent": sent,
        "failed": failed,
        "lost": lost,
        "seconds": seconds,
        "killed_after": killed_after,
        "gateway": stats,
        "relay_cpu_ms_per_send": round(relay_cpu * 1000 / sent, 3) if sent else 0,
        "gateway_cpu_ms_per_send": round(stats.get("cpu_ms", 0) / sent, 3) if sent else 0,
    }


def _children_cpu() -> float:
    """CPU seconds of this process's children that ended (and were waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stats(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/stats", timeout=10).json()


# Messages past the first `relayed` wait a year: the relay drains only the first ones.
_LATER = timedelta(days=365)


async def _only_the_first(settings: Settings, relayed: int) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            last = await connection.scalar(
                select(OutboxMessage.id).order_by(OutboxMessage.id).offset(relayed - 1).limit(1)
            )
            if last is not None:
                await connection.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id > last)
                    .values(next_attempt_at=utcnow() + _LATER)
                )
    finally:
        await engine.dispose()


async def _relay_outcome(settings: Settings) -> tuple[int, int, int]:
    """Sent and failed among the relayed messages, and those neither (lost: should be 0)."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            rows = dict(
                (
                    await connection.execute(
                        select(OutboxMessage.status, func.count())
                        .where(OutboxMessage.next_attempt_at < utcnow() + _LATER / 2)
                        .group_by(OutboxMessage.status)
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    final = ("sent", "failed", "dead")
    return (
        rows.get("sent", 0),
        rows.get("failed", 0) + rows.get("dead", 0),
        sum(n for status, n in rows.items() if status not in final),
    )


def _relay_in_child(settings: Settings, url: str, ready: Any, go: Any) -> None:
    """Relay until no relayed message is left to send (a child process's target)."""
    # A log line per message would cost more than sending it.
    configure_logging(level="WARNING", json=True)

    async def relay() -> None:
        engine = create_engine(settings)
        factory = create_session_factory(engine)
        # The fake gateway checks no token. Its slowest answer takes 0.25 s: a 2 s timeout
        # leaves room, and lets a 10 s claim hold a send (see relay_once).
        gateway = HttpGateway(
            url=url, token="bench", timeout=RELAY_SEND_TIMEOUT,  # noqa: S106
            max_connections=RELAY_CONCURRENCY,
        )  # fmt: skip
        # As the worker's relay: on PostgreSQL, asyncpg's own connections (a lane's claim
        # and a group's outcomes are each one statement).
        async with outbox_store(settings, factory, connections=RELAY_LANES + 2) as store:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            stop = asyncio.Event()

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.5)
                    if not await _left(factory):
                        stop.set()

            watcher = asyncio.create_task(watch())
            await run_relay(
                store=store,
                gateway=gateway,
                stop=stop,
                interval=0.05,
                batch_size=RELAY_BATCH,
                concurrency=RELAY_CONCURRENCY,
                claim_for=RELAY_CLAIM,
                max_attempts=RELAY_MAX_ATTEMPTS,
                lanes=RELAY_LANES,
                backoff=Backoff(base=RELAY_BACKOFF_BASE, cap=timedelta(seconds=2)),
            )
            await watcher
        await gateway.aclose()
        await engine.dispose()

    # The relay's loop is uvloop's, as in the worker and `outbox run`.
    uvloop.run(relay())


async def _left(factory) -> int:
    """Relayed messages not yet final: pending (due within the run) or being sent."""
    async with factory() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.status.in_(("pending", "sending")),
                    OutboxMessage.next_attempt_at < utcnow() + _LATER / 2,
                )
            )
            or 0
        )
