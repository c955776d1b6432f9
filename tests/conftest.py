"""Test fixtures: a migrated database (SQLite by default, PostgreSQL when DATABASE_URL names
one), each test in a transaction rolled back at its end, and an app bound to that transaction.

Migrations are the only way the schema is made, here as in production.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import time_machine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.asgi import create_app
from app.auth import DevIssuer, Role
from app.db import create_engine
from app.migrate import upgrade_to_head
from app.settings import Settings
from tests.clock import PINNED_NOW

# Fails the run if anything the app logged holds a raw IIN (tests/logscan.py).
pytest_plugins = ["tests.logscan"]


_pinned_clock = time_machine.travel(PINNED_NOW, tick=True)


def pytest_configure(config: pytest.Config) -> None:
    """Every test runs at the pinned instant of tests/clock.py, whatever the real date;
    pinned before collection, since test modules compute dates when they are imported."""
    _pinned_clock.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _pinned_clock.stop()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Dev settings; the database is DATABASE_URL if given, else a fresh SQLite file."""
    tmp = tmp_path_factory.mktemp("socialwallet")
    url = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{tmp / 'test.db'}"
    return Settings(
        environment="dev",
        database_url=url,
        dev_jwt_key_path=tmp / "dev-key.pem",
        jwt_jwks_url=None,
    )


def on_postgres(settings: Settings) -> bool:
    return settings.async_database_url.startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked postgres_only unless DATABASE_URL names PostgreSQL."""
    if (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection per test, inside a transaction that is rolled back afterwards."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


def savepoint_sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions whose commit only releases a savepoint inside the test's transaction."""
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


class SerialisedSessionFactory:
    """Sessions on the test's single connection, one at a time.

    In production every session has its own pooled connection. Here they all share the
    test's connection (so that the test can roll everything back), and a connection can run
    one statement at a time, so sessions opened by concurrent resolvers take turns.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self._factory = savepoint_sessions(connection)
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self._lock, self._factory() as session:
            yield session

    def begin(self):  # same shape as async_sessionmaker.begin()
        @asynccontextmanager
        async def begin() -> AsyncIterator[AsyncSession]:
            async with self() as session, session.begin():
                yield session

        return begin()


@pytest.fixture
def session_factory(connection: AsyncConnection) -> SerialisedSessionFactory:
    return SerialisedSessionFactory(connection)


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session for arranging data and checking results; rolled back with the test.

    It does not take the app's turn lock: the test awaits each request, so the test's own
    statements never run at the same time as a resolver's.
    """
    async with savepoint_sessions(connection)() as session:
        yield session


@pytest.fixture
def app(settings: Settings, engine: AsyncEngine, session_factory: SerialisedSessionFactory):
    return create_app(settings, engine=engine, session_factory=session_factory)  # type: ignore[arg-type]


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="session")
def dev_issuer(settings: Settings) -> DevIssuer:
    return DevIssuer(
        key_path=settings.dev_jwt_key_path,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=600,
    )


@pytest.fixture
def token_for(dev_issuer: DevIssuer):
    """Mint a valid dev token: token_for(Role.CITIZEN, iin)."""

    def mint(role: Role, subject: str) -> str:
        return dev_issuer.mint(roles=[role], subject=subject)

    return mint


@pytest.fixture
def gql(client: httpx.AsyncClient):
    """POST a GraphQL document; returns the decoded JSON body."""

    async def post(query: str, variables: dict | None = None, *, token: str | None = None):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    return post


REPO_ROOT = Path(__file__).resolve().parent.parent
