"""Transactions on the database driver's own connection, for hot paths that skip the ORM.

A hot path (a canteen's meal redemption) runs its few statements on an asyncpg connection
in a transaction it is handed by a `DriverTransactions`:

- `pool_transactions`: the server's own small asyncpg pool. SQLAlchemy's pool checks each
  connection out with a pre-ping of three round trips (its asyncpg adapter's, kept for
  pgbouncer) and its transactions cost another ~0.3 ms of Python; here a transaction is
  BEGIN, the statements and COMMIT. The pool resets nothing on release: the hot paths leave
  no session state behind (no SET, LISTEN, advisory lock or cursor).
- `session_transactions`: the driver connection inside a session's transaction, so that
  the hot path joins whatever that session factory gives; the tests' factory gives
  savepoints in the test's rolled-back transaction.

Only PostgreSQL has one; on SQLite there is none and callers take their portable path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from sqlalchemy.engine import make_url

from app.settings import Settings
from familymap.driver_sql import DriverTransactions, driver_in_transaction


def is_postgres(settings: Settings) -> bool:
    return make_url(settings.async_database_url).get_backend_name() == "postgresql"


async def create_driver_pool(settings: Settings, *, max_size: int | None = None) -> asyncpg.Pool:
    """The process's asyncpg pool for the hot paths (DATABASE_HOT_POOL_SIZE, or `max_size`:
    the outbox relay's lanes each hold one for a claim), opened lazily.

    Small on purpose: a redemption holds an audit chain's head and its school's account from
    its first statement to its commit, so with more connections than the database has cores
    the transactions wait on each other's locks (and on this process to send their next
    statement) inside PostgreSQL; with a few, they queue here, before taking any lock.
    """
    url = make_url(settings.async_database_url).set(drivername="postgresql")
    if settings.database_transaction_pooler:
        # Behind pgbouncer in transaction mode nothing may outlive a transaction: no
        # statement cache (named statements would be missing on the next server connection)
        # and no connection-start setting (the pooler refuses or drops it). Each statement
        # is parsed and planned where it runs; see docs/performance.md for what it costs.
        session: dict[str, Any] = {"statement_cache_size": 0}
    else:
        # The hot paths' statements look rows up by key, so one plan fits every call:
        # PostgreSQL would otherwise plan the large ones anew for their first executions on
        # every connection, and keep doing so where it judges a custom plan cheaper (half a
        # millisecond a redemption).
        session = {"server_settings": {"plan_cache_mode": "force_generic_plan"}}
    return await asyncpg.create_pool(
        url.render_as_string(hide_password=False),
        min_size=0,
        max_size=max_size or settings.database_hot_pool_size,
        reset=_end_any_transaction,
        **session,
    )


async def _end_any_transaction(connection: asyncpg.Connection) -> None:
    # `connection.transaction()` has already committed or rolled back; this is only a guard.
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


def pool_transactions(pool: asyncpg.Pool) -> DriverTransactions:
    """Each transaction on a connection of `pool`."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[asyncpg.Connection]:
        async with pool.acquire() as connection, connection.transaction():
            # The pool lends a proxy that forwards every call to its connection.
            yield cast(asyncpg.Connection, connection)

    return transaction


def pool_connections(pool: asyncpg.Pool) -> DriverTransactions:
    """Each a connection of `pool` outside any transaction: every statement commits alone
    (the outbox relay's claims and outcomes are a statement each)."""

    @asynccontextmanager
    async def connection() -> AsyncIterator[asyncpg.Connection]:
        async with pool.acquire() as acquired:
            yield cast(asyncpg.Connection, acquired)  # the pool's proxy forwards every call

    return connection


def session_transactions(session_factory: Any) -> DriverTransactions:
    """Each transaction inside a session of `session_factory` (committed with it)."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[asyncpg.Connection]:
        async with session_factory() as session, session.begin():
            yield await driver_in_transaction(await session.connection())

    return transaction
