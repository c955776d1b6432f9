"""Prometheus metrics: one module defines them all, `/metrics` serves them.

Counters and histograms are updated where things happen (the GraphQL view; the voucher
mutations call the context's `count_redemptions`, which is `count_redemptions` here, after a
redemption commits). Figures that live
in the database are read when Prometheus scrapes, by small queries on indexed columns with a
timeout, so a scrape costs a few index lookups and a slow database makes the scrape report
the previous values (and count the failure), never fail or hang:

- outbox: pending messages and the age of the oldest one (the relay's lag);
- eligibility runs: a histogram of the durations of runs that finished, fed from
  `eligibility_runs` (the batch runs in the CLI's process, which Prometheus cannot scrape),
  and the newest finished run's duration per scope;
- whatever other modules register with `on_scrape` (offers by state, from the wallet).

Labels are bounded: an operation is named only if it is a registered trusted document
(otherwise "unregistered"), so a client cannot mint label values.

Across processes the figures add up one way: one API process per container (the
Dockerfile's `serve --workers 1`, docs/deploy.md), and Prometheus scrapes each container
itself, never through the load balancer, then sums (`sum(rate(...))`). Each process counts
only what it served, so the sum over the processes is the whole. The database figures
(gauges) are the same in every process: take `max`, not `sum`. With `serve --workers N` (a
developer's machine) each scrape sees one of the N processes' counters only; prometheus_client's
multiprocess mode is not used, since it needs a shared folder and loses the process metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from familymap.orm import as_utc
from familymap.tables import EligibilityRun
from wallet.offer_tables import OFFER_STATES, Offer
from wallet.outbox_tables import OutboxMessage

log = structlog.get_logger("socialwallet.metrics")

REGISTRY = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

GRAPHQL_REQUESTS = Counter(
    "socialwallet_graphql_requests",
    "GraphQL requests by operation and outcome (ok, error).",
    ["operation", "outcome"],
    registry=REGISTRY,
)
GRAPHQL_LATENCY = Histogram(
    "socialwallet_graphql_request_duration_seconds",
    "Time to execute a GraphQL request, by operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
GRAPHQL_ERRORS = Counter(
    "socialwallet_graphql_errors", "GraphQL errors by code.", ["code"], registry=REGISTRY
)
REDEMPTIONS = Counter(
    "socialwallet_redemptions",
    "Vouchers redeemed (school meals served, medicines dispensed), by purpose.",
    ["purpose"],
    registry=REGISTRY,
)


def count_redemptions(purpose: str, count: int = 1) -> None:
    """Count `count` redemptions of `purpose` that committed (the GraphQL context's hook)."""
    REDEMPTIONS.labels(purpose=purpose).inc(count)


OFFERS = Gauge("socialwallet_offers", "Offers by state.", ["state"], registry=REGISTRY)
OUTBOX_PENDING = Gauge(
    "socialwallet_outbox_pending_messages", "Messages waiting to be sent.", registry=REGISTRY
)
OUTBOX_LAG = Gauge(
    "socialwallet_outbox_oldest_pending_age_seconds",
    "Age of the oldest message waiting to be sent (0 when none waits).",
    registry=REGISTRY,
)
ELIGIBILITY_RUN_DURATION = Histogram(
    "socialwallet_eligibility_run_duration_seconds",
    "Durations of finished eligibility runs, by scope (batch, families, family).",
    ["scope"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 180, 300, 600),
    registry=REGISTRY,
)
ELIGIBILITY_LAST_RUN = Gauge(
    "socialwallet_eligibility_last_run_duration_seconds",
    "Duration of the newest finished eligibility run, by scope.",
    ["scope"],
    registry=REGISTRY,
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "socialwallet_rate_limit_unavailable",
    "Rate-limit checks held in process because Redis could not be reached.",
    registry=REGISTRY,
)
READ_ROUTING = Counter(
    "socialwallet_read_routing",
    "Lag-tolerant reads of queries by where they went: a replica's name, or primary (no "
    "replica healthy, or none has replayed the caller's last write yet).",
    ["target"],
    registry=REGISTRY,
)
SCRAPE_FAILURES = Counter(
    "socialwallet_metrics_scrape_failures",
    "Database reads for /metrics that failed or timed out.",
    registry=REGISTRY,
)

ScrapeHook = Callable[[AsyncSession], Awaitable[None]]
_SCRAPE_HOOKS: list[ScrapeHook] = []
SCRAPE_TIMEOUT_SECONDS = 2.0
# Eligibility runs are looked at among the newest ones only: an index range on the key.
RUN_WINDOW = 1000


def on_scrape(hook: ScrapeHook) -> ScrapeHook:
    """Register `async def hook(session)` to set gauges from the database at each scrape."""
    _SCRAPE_HOOKS.append(hook)
    return hook


class DatabaseFigures:
    """Reads the database's figures at scrape time; one scrape at a time per process."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._observed_runs: set[int] = set()

    async def refresh(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        async with self._lock:
            try:
                async with session_factory() as session:
                    await asyncio.wait_for(self._read(session), SCRAPE_TIMEOUT_SECONDS)
            except Exception as exc:  # a scrape reports old figures rather than failing
                SCRAPE_FAILURES.inc()
                log.warning("metrics.scrape_failed", error=type(exc).__name__)

    async def _read(self, session: AsyncSession) -> None:
        now = datetime.now(UTC)
        # The (status, next_attempt_at) index narrows this to the waiting messages.
        oldest, pending = (
            await session.execute(
                select(func.min(OutboxMessage.created_at), func.count()).where(
                    OutboxMessage.status == "pending"
                )
            )
        ).one()
        OUTBOX_PENDING.set(pending)
        OUTBOX_LAG.set(max(0.0, (now - as_utc(oldest)).total_seconds()) if oldest else 0.0)
        await self._read_runs(session)
        # Offers by state: the (state, expires_at) index answers this without the rows; a
        # state with no offers left reads 0 rather than keeping its last value.
        counts = dict(
            (await session.execute(select(Offer.state, func.count()).group_by(Offer.state))).all()
        )
        for state in OFFER_STATES:
            OFFERS.labels(state=state).set(counts.get(state, 0))
        for hook in _SCRAPE_HOOKS:
            await hook(session)

    async def _read_runs(self, session: AsyncSession) -> None:
        newest = await session.scalar(select(func.max(EligibilityRun.id)))
        if newest is None:
            return
        rows = (
            await session.execute(
                select(
                    EligibilityRun.id,
                    EligibilityRun.scope,
                    EligibilityRun.started_at,
                    EligibilityRun.finished_at,
                )
                .where(EligibilityRun.id > newest - RUN_WINDOW, EligibilityRun.status == "finished")
                .order_by(EligibilityRun.id)
            )
        ).all()
        latest: dict[str, float] = {}
        for run_id, scope, started_at, finished_at in rows:
            if finished_at is None:  # the column is nullable; a finished run has its end
                continue
            seconds = (as_utc(finished_at) - as_utc(started_at)).total_seconds()
            latest[scope] = seconds
            if run_id not in self._observed_runs:
                ELIGIBILITY_RUN_DURATION.labels(scope=scope).observe(seconds)
        for scope, seconds in latest.items():
            ELIGIBILITY_LAST_RUN.labels(scope=scope).set(seconds)
        self._observed_runs = {run_id for run_id, *_ in rows}


def metrics_endpoint(figures: DatabaseFigures) -> Callable[[Request], Awaitable[Response]]:
    """The `/metrics` route: refresh the database figures, then render every metric."""

    async def metrics(request: Request) -> Response:
        await figures.refresh(request.app.state.session_factory)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return metrics
