"""The ASGI application: Starlette with strawberry at /graphql, health probes, auth, logs.

The lifespan owns the engine: it is created when the server starts and disposed of when it
stops, so no connection outlives the process's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.auth import BearerTokenBackend, DevIssuer, build_dev_issuer, build_token_verifier
from app.db import create_engine, create_session_factory, ping
from app.jobs import background_jobs
from app.middleware import RequestIdMiddleware
from app.settings import Settings
from app.sms_inbound import sms_inbound
from app.web_client import graphiql_page, web_routes
from graphql_schema.context import Context
from graphql_schema.extensions import classify
from graphql_schema.loaders import Loaders
from graphql_schema.schema import build_schema
from wallet.i18n import negotiate

log = structlog.get_logger("socialwallet.app")


class GraphQLApp(GraphQL[Context, None]):
    """strawberry's ASGI view with our per-request context."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.session_factory = session_factory

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:  # type: ignore[override]
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
        return await super().process_result(request, result)

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        # Our GraphiQL page loads its assets from /app/vendor, not a CDN (dev only).
        return graphiql_page()

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        factory = self.session_factory or request.app.state.session_factory
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            session_factory=factory,
            loaders=Loaders(factory),
            language=negotiate(request.headers.get("accept-language")),
        )


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    session_factory: async_sessionmaker[AsyncSession] | None = None,
) -> Starlette:
    """Build the app. Tests pass their own engine/session factory; the server passes none."""
    settings = settings or Settings()
    dev_issuer: DevIssuer | None = build_dev_issuer(settings)
    verifier = build_token_verifier(settings, dev_issuer)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = engine is None
        app.state.engine = engine or create_engine(settings)
        app.state.session_factory = session_factory or create_session_factory(app.state.engine)
        log.info("started", environment=settings.environment)
        try:
            async with background_jobs(settings, app.state.session_factory):
                yield
        finally:
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
        return JSONResponse({"status": "ok", "database": "up"})

    graphql = GraphQLApp(
        schema=build_schema(settings),
        settings=settings,
        session_factory=session_factory,
        graphql_ide=None if settings.is_prod else "graphiql",
        # Strawberry refuses mutations over GET; queries via GET stay for cacheable reads.
        allow_queries_via_get=True,
    )
    app = Starlette(
        routes=[
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/sms/inbound", sms_inbound, methods=["POST"]),
            *web_routes(settings, dev_issuer),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(AuthenticationMiddleware, backend=BearerTokenBackend(verifier)),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.dev_issuer = dev_issuer
    if engine is not None:
        app.state.engine = engine
        app.state.session_factory = session_factory or create_session_factory(engine)
    return app
