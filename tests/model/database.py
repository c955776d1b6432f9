"""The model tests' database: a throwaway migrated database of its own for each test module (a
file on SQLite; on PostgreSQL a database created next to DATABASE_URL's and dropped after),
with the event loop its connections live on and, on PostgreSQL, the driver's pool."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import create_engine
from app.driver_db import create_driver_pool
from app.migrate import upgrade_to_head
from app.settings import Settings
from wallet.verify import verify_ledger


@dataclass
class Database:
    """A throwaway migrated database, the event loop its connections live on, and on
    PostgreSQL the driver's pool."""

    runner: asyncio.Runner
    engine: AsyncEngine
    pool: asyncpg.Pool | None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.runner.run(coroutine)


@pytest.fixture(scope="module")
def database(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The model's own database: a file on SQLite, a database of its own on PostgreSQL."""
    runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
    admin_url, name = None, None
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('model') / 'model.db'}"
    else:
        base = make_url(settings.async_database_url)
        name = f"{base.database}_model_{uuid.uuid4().hex[:8]}"
        admin_url = base.set(database="postgres", drivername="postgresql")
        runner.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    model_settings = Settings(database_url=url, database_hot_pool_size=3)
    engine = create_engine(model_settings)
    try:
        runner.run(upgrade_to_head(engine))
        pool = None if settings.is_sqlite else runner.run(create_driver_pool(model_settings))
        yield Database(runner, engine, pool)
        if pool is not None:
            runner.run(pool.close())
    finally:
        runner.run(engine.dispose())
        if admin_url is not None:
            runner.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        runner.close()


async def _admin(url, statement: str) -> None:
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def ledger_problems(db: Database) -> list[Any]:
    """`socialwallet ledger verify`'s findings on the database (none: the books are sound)."""

    async def verify() -> list[Any]:
        async with AsyncSession(db.engine) as session:
            return list(await verify_ledger(session=session))

    return db.run(verify())


def run_machine(machine: type[RuleBasedStateMachine], *, examples: int, steps: int) -> None:
    """Drive `machine` through `examples` random sequences of up to `steps` steps; any
    divergence fails with its shrunk sequence (no example database: runs stay independent)."""
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def print_seen(seen: Counter[tuple[str, str]], *, width: int) -> None:
    """What the sequences exercised, by path and outcome (shown with pytest -s)."""
    for (path, outcome), count in sorted(seen.items()):
        print(f"{path:>{width}} {outcome:<24} {count}")
