"""The ASGI application: Starlette with strawberry at /graphql, health probes, auth, logs.

The lifespan owns the engine: it is created when the server starts and disposed of when it
stops, so no connection outlives the process's event loop.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import BearerTokenBackend, DevIssuer, build_dev_issuer, build_token_verifier
from app.db import create_engine, create_session_factory, ping
from app.driver_db import (
    DriverTransactions,
    create_driver_pool,
    is_postgres,
    pool_transactions,
    session_transactions,
)
from app.graphql_http import GraphQLApp
from app.jobs import background_jobs
from app.metrics import DatabaseFigures, metrics_endpoint
from app.middleware import RequestIdMiddleware, SecurityHeadersMiddleware
from app.qr_key import qr_signing_key
from app.rate_limit import build_rate_limiter
from app.replicas import dispose as dispose_replicas
from app.replicas import replica_set_from_settings
from app.settings import Settings
from app.sms_inbound import sms_inbound
from app.web_client import web_routes
from graphql_schema.schema import build_schema
from vouchers.fulfilment import register_voucher_fulfillers
from vouchers.meal_groups import MealCoalescer

log = structlog.get_logger("socialwallet.app")

# Allocations between two collections of the cyclic collector's young generation, while the
# server runs (see the lifespan).
YOUNG_COLLECTION_THRESHOLD = 20_000


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    session_factory: async_sessionmaker[AsyncSession] | None = None,
) -> Starlette:
    """Build the app. Tests pass their own engine/session factory; the server passes none."""
    settings = settings or Settings()
    # Consent to a voucher offer issues the voucher: the wallet calls what vouchers registers.
    register_voucher_fulfillers()
    dev_issuer: DevIssuer | None = build_dev_issuer(settings)
    verifier = build_token_verifier(settings, dev_issuer)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = engine is None
        app.state.engine = engine or create_engine(settings)
        app.state.session_factory = session_factory or create_session_factory(app.state.engine)
        driver_pool = None
        if owned and is_postgres(settings):
            # The hot paths' transactions on the server's own asyncpg pool; a caller that
            # brought its own engine (tests) has them inside its sessions (set below).
            driver_pool = await create_driver_pool(settings)
            app.state.driver_transactions = pool_transactions(driver_pool)
            app.state.meal_coalescer = meal_coalescer(settings, app.state.driver_transactions)
        marks_redis = None
        if settings.replica_urls and settings.redis_url:
            from redis.asyncio import Redis

            # The callers' write marks are shared by every API process through Redis.
            marks_redis = Redis.from_url(
                settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        replicas = replica_set_from_settings(settings, primary=app.state.engine, redis=marks_redis)
        app.state.replicas = replicas
        stop_checks = asyncio.Event()
        checks = None
        if replicas is not None:
            # The first check before the first request: reads go to a replica only once it
            # is known to be healthy.
            await replicas.refresh()
            checks = asyncio.create_task(
                replicas.run(stop_checks, settings.replica_check_interval_seconds)
            )
        # Everything made at start-up (schema, models, parameters) lives as long as the
        # process: freezing it keeps the cyclic collector from walking it again in every
        # full collection, pauses that showed in the redemption benchmark's slowest answers.
        gc.freeze()
        # And the young generation is collected every YOUNG_COLLECTION_THRESHOLD allocations
        # instead of CPython's 700: with a few dozen requests in flight, each collection
        # walked the live objects of all of them. In the redemption benchmark a server made
        # ~925 young collections for 3,000 redemptions, 8 % of its CPU in the collector;
        # with this, 5 % (what is left is the cyclic garbage the requests leave).
        saved_threshold = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *saved_threshold[1:])
        log.info("started", environment=settings.environment)
        try:
            async with background_jobs(settings, app.state.session_factory):
                yield
        finally:
            gc.set_threshold(*saved_threshold)
            stop_checks.set()
            if checks is not None and replicas is not None:
                await checks
                await dispose_replicas(replicas)
            if marks_redis is not None:
                await marks_redis.aclose()
            await app.state.rate_limiter.close()
            if driver_pool is not None:
                await driver_pool.close()
            if owned:
                await app.state.engine.dispose()
            log.info("stopped")

    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await ping(request.app.state.engine)
        except Exception as exc:  # any failure means "not ready"; say which kind, not details
            log.warning("readyz.database_unreachable", error=type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        body: dict[str, object] = {"status": "ok", "database": "up"}
        degraded = []
        # Still ready: without Redis each worker holds the rate limits on its own.
        if not await request.app.state.rate_limiter.healthy():
            degraded.append("rate_limits")
        replicas = getattr(request.app.state, "replicas", None)
        if replicas is not None:
            # Still ready without a healthy replica: its reads go to the primary meanwhile.
            body["replicas"] = status = replicas.status()
            if not any(replica["healthy"] for replica in status):
                degraded.append("replicas")
        if degraded:
            body["degraded"] = degraded
        return JSONResponse(body)

    graphql = GraphQLApp(
        schema=build_schema(settings),
        settings=settings,
        session_factory=session_factory,
        graphql_ide=None if settings.is_prod else "graphiql",
        # Mutations over GET are 405; queries over GET may read only public fields
        # (graphql_schema/limits.py). Batching stays off (strawberry's default).
        allow_queries_via_get=True,
    )
    app = Starlette(
        routes=[
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            # Every method reaches the GraphQL app, which refuses the others (405) in a
            # GraphQL error body, like every other refusal of /graphql.
            Route("/graphql", graphql),
            Route("/sms/inbound", sms_inbound, methods=["POST"]),
            Route("/metrics", guarded_metrics(settings), methods=["GET"]),
            *web_routes(settings, dev_issuer),
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(RequestIdMiddleware),
            Middleware(AuthenticationMiddleware, backend=BearerTokenBackend(verifier)),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.dev_issuer = dev_issuer
    app.state.rate_limiter = build_rate_limiter(settings)
    if engine is not None:
        app.state.engine = engine
        app.state.session_factory = session_factory or create_session_factory(engine)
        if is_postgres(settings):
            app.state.driver_transactions = session_transactions(app.state.session_factory)
            app.state.meal_coalescer = meal_coalescer(settings, app.state.driver_transactions)
    return app


def guarded_metrics(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """/metrics: open in dev; in prod only with `Authorization: Bearer <METRICS_TOKEN>`, and
    off (404) without the setting. Operation names, error rates and the outbox's backlog are
    for the operators' Prometheus, not for anyone who finds the URL (docs/security.md)."""
    metrics = metrics_endpoint(DatabaseFigures())
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    async def endpoint(request: Request) -> Response:
        if not settings.is_prod:
            return await metrics(request)
        if token is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        supplied = request.headers.get("authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(supplied, f"Bearer {token}".encode()):
            return JSONResponse(
                {"error": "a metrics token is required"},
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        return await metrics(request)

    return endpoint


def meal_coalescer(settings: Settings, transactions: DriverTransactions) -> MealCoalescer:
    """Single redemptions served in groups: one group written at a time, on one of the hot
    path's connections (the others serve the requests a group hands back). Group commit:
    the requests that arrive while a group is written form the next one."""
    return MealCoalescer(
        transactions=transactions, qr_key=lambda: qr_signing_key(settings), runners=1
    )
