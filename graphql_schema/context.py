"""The per-request context every resolver receives, and where its lag-tolerant reads go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from familymap.access import Principal
from familymap.i18n import DEFAULT_LANGUAGE, Refusal
from graphql_schema.settings import SchemaSettings

# Told of every voucher redemption that committed: (purpose, how many). The app counts them
# in its metrics (socialwallet_redemptions); the schema never imports the app.
RedemptionCounter = Callable[[str, int], None]


@dataclass
class Context:
    """What a resolver may use: the caller, the settings and a way to open sessions.

    The app builds it for each request (app/graphql_http.py): everything the schema needs of
    the app (the verified caller, settings, the QR key, the rate limiter, the metrics hook)
    comes in here, so that graphql_schema never imports app (tests/service/test_layers.py).

    Resolvers never share an AsyncSession: one session is not safe for concurrent use, and
    sibling fields resolve concurrently. Each resolver (or each DataLoader batch) opens its
    own short session from `session_factory` (the primary: writes, audit records, and any
    read that must see the newest data), or from `read_session_factory` for reads that
    tolerate lag (the DataLoaders, histories, the funnel, acts): a replica in a query, when
    one has replayed the caller's own writes, and the primary otherwise.
    """

    request: Request
    response: Response
    settings: SchemaSettings
    session_factory: async_sessionmaker[AsyncSession]
    # The key that signs and checks meal QR codes (app/qr_key.py); called when a QR field
    # needs it (in dev the key's file is made on first use).
    qr_key: Callable[[], bytes]
    count_redemptions: RedemptionCounter
    # The caller whose bearer token verified (app/auth.py), or None.
    principal: Principal | None = None
    # Why the caller's token was refused, if it was (resolvers answer UNAUTHENTICATED, saying
    # it in the request's language).
    auth_rejection: Refusal | None = None
    loaders: dict[str, Any] = field(default_factory=dict)  # graphql_schema.loaders.Loaders
    # The language of texts, negotiated once per request from Accept-Language (wallet.i18n).
    language: str = DEFAULT_LANGUAGE
    # app.rate_limit.RateLimiter: `await hit(bucket=, subject=, cost=)` answers `allowed`
    # and `retry_after_seconds` (buckets: graphql_schema.rate_limits); None: no limits.
    rate_limiter: Any = None
    # app.driver_db.DriverTransactions on PostgreSQL, for the hot paths; None on SQLite.
    driver_transactions: Any = None
    # vouchers.meal_groups.MealCoalescer on PostgreSQL (single redemptions served in groups).
    meal_coalescer: Any = None
    # app.replicas.ReplicaSet when DATABASE_REPLICA_URL names replicas; None: all on primary.
    replicas: Any = None
    # "query", "mutation" or "subscription": set by RoutedReads once the document is valid.
    operation_type: str | None = None
    _reads: ReadSessions | None = field(default=None, init=False, repr=False)

    @property
    def read_session_factory(self) -> ReadSessions:
        """Sessions for the reads that tolerate lag (one choice of database per request)."""
        if self._reads is None:
            self._reads = ReadSessions(self)
        return self._reads

    @property
    def request_id(self) -> str | None:
        return self.request.scope.get("state", {}).get("request_id")


class ReadSessions:
    """A session factory for lag-tolerant reads: chooses, at its first session, a replica
    that has replayed the caller's writes if the operation is a query, else the primary;
    every later session of the request uses the same database."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._choice: asyncio.Future[Any] | None = None

    def __call__(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self._session()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        if self._context.replicas is None:  # no replicas: the primary, nothing to choose
            async with self._context.session_factory() as session:
                yield session
            return
        # Sibling resolvers open sessions concurrently: the first starts the choice, and
        # every session of the request waits for that one choice.
        if self._choice is None:
            self._choice = asyncio.ensure_future(self._choose())
        factory = await self._choice
        async with factory() as session:
            yield session

    async def _choose(self) -> Any:
        context = self._context
        # Inside a mutation every read is on the primary: it must see what it decides on.
        if context.replicas is None or context.operation_type != "query":
            return context.session_factory
        principal = context.principal
        replica = await context.replicas.choose(principal.subject if principal else None)
        return context.session_factory if replica is None else replica.sessions


class RoutedReads(SchemaExtension):
    """Tells the context the operation's type once the document is parsed and valid, so
    that its lag-tolerant reads may go to a replica only in a query."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.operation_type = self.execution_context.operation_type.value
        yield
