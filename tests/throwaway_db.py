"""A database of a test's own, for tests whose child processes commit into it for real
(the CLI, a server killed mid-request): a file on SQLite, a fresh database on PostgreSQL,
dropped afterwards whatever happened."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.settings import Settings


@asynccontextmanager
async def throwaway_database(settings: Settings, tmp_path: Path, label: str) -> AsyncIterator[str]:
    """Yield the URL of an empty database named after `label`, on the suite's engine."""
    if settings.is_sqlite:
        yield f"sqlite:///{tmp_path / f'{label}.db'}"
        return
    url = make_url(settings.async_database_url)
    name = f"{url.database}_{label}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield str(url.set(database=name, drivername="postgresql"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
