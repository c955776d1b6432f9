"""Apply and check migrations programmatically, inside the caller's event loop."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

# The migrations ship inside the package, so an installed wheel (the Docker image) has them.
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config pointing at our migrations, sharing `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# Any fixed 64-bit number names the lock; this one is "socialwallet migrate" hashed once.
MIGRATION_LOCK_KEY = 7_318_442_190_066_151_503


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database up to the newest migration; safe to run from several processes."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Deployments start a migrate job per release, and several may start at once. The
            # transaction-scoped advisory lock makes the later ones wait for the first to
            # commit; alembic then finds the database at head and has nothing to do, instead
            # of racing to create the same tables (a UniqueViolation before). SQLite needs no
            # lock: its transactions begin IMMEDIATE and so already take turns.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def check_models_match(engine: AsyncEngine) -> None:
    """Raise if the models differ from what the migrations create (`alembic check`)."""
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: command.check(alembic_config(sync)))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
