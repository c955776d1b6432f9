"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from app.auth import AuthenticatedUser, Principal, RejectedUser
from app.settings import Settings
from familymap.i18n import DEFAULT_LANGUAGE


@dataclass
class Context:
    """What a resolver may use: the caller, the settings and a way to open sessions.

    Resolvers never share an AsyncSession: one session is not safe for concurrent use, and
    sibling fields resolve concurrently. Each resolver (or each DataLoader batch) opens its
    own short session from `session_factory`.
    """

    request: Request
    response: Response
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    loaders: dict[str, Any] = field(default_factory=dict)  # graphql_schema.loaders.Loaders
    # The language of texts, negotiated once per request from Accept-Language (wallet.i18n).
    language: str = DEFAULT_LANGUAGE
    # app.rate_limit.RateLimiter; None switches the limits off (a test's bare schema).
    rate_limiter: Any = None
    # app.driver_db.DriverTransactions on PostgreSQL, for the hot paths; None on SQLite.
    driver_transactions: Any = None
    # vouchers.meal_groups.MealCoalescer on PostgreSQL (single redemptions served in groups).
    meal_coalescer: Any = None

    @property
    def principal(self) -> Principal | None:
        user = self.request.scope.get("user")
        return user.principal if isinstance(user, AuthenticatedUser) else None

    @property
    def auth_rejection(self) -> str | None:
        """Why the caller's token was refused, if it was."""
        user = self.request.scope.get("user")
        return user.reason if isinstance(user, RejectedUser) else None

    @property
    def request_id(self) -> str | None:
        return self.request.scope.get("state", {}).get("request_id")
