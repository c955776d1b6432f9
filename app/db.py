"""The database: one async engine per process, the same code on SQLite and PostgreSQL.

SQLite needs two adjustments to behave like a real transactional database:
- foreign keys are off unless asked for on every connection;
- the sqlite3 driver opens transactions lazily and on its own terms, which breaks
  SAVEPOINT (and so test isolation) and defers locks. We switch the driver's own
  transaction handling off and emit BEGIN IMMEDIATE ourselves (SQLAlchemy's documentation
  recommends emitting BEGIN for pysqlite/aiosqlite; IMMEDIATE, see `_on_begin`).
WAL mode and a busy timeout make concurrent transactions wait their turn instead of failing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the process's engine for `settings.database_url`."""
    url = make_url(settings.async_database_url)
    kwargs: dict[str, Any] = {"echo": settings.database_echo, "pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    kwargs |= {"pool_size": settings.database_pool_size, "max_overflow": 10}
    if settings.database_transaction_pooler:
        kwargs["connect_args"] = TRANSACTION_POOLER_CONNECT_ARGS
    return create_async_engine(url, **kwargs)


# Behind a pooler in transaction mode a prepared statement may be parsed on one server
# connection and executed on another. asyncpg's caches are off and each statement it must
# name gets a name no other client uses (SQLAlchemy's documented recipe for pgbouncer), so
# every statement is parsed, planned and run inside the transaction that uses it.
TRANSACTION_POOLER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
}


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from issuing BEGIN itself; the "begin" hook below does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # a lone statement (a health check) needs no transaction, and no lock
        # IMMEDIATE takes the write lock at the start. A plain (deferred) BEGIN that reads
        # and then writes must upgrade its lock, and SQLite refuses the upgrade at once
        # ("database is locked", no busy wait) when another writer got there first, as
        # concurrent redemptions did; taking the lock first makes transactions queue on the
        # busy timeout instead. Read-only transactions queue too: the embedded file serves one
        # transaction at a time, which is its honest capacity; PostgreSQL is for concurrency.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no implicit lazy reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Run a trivial statement; raises if the database cannot be reached."""
    async with engine.connect() as connection:
        # Outside any transaction: a health check must not queue behind a writer's lock.
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("SELECT 1"))
