"""Through pgbouncer in transaction mode (DATABASE_TRANSACTION_POOLER): the ORM's engine and the
hot paths' driver pool work when many clients share one server connection, and without the
setting they do not (which shows the pooler in the test really does share it); the wallet
jobs' advisory locks and the eligibility run's exported snapshot work through it too."""

from __future__ import annotations

import asyncio
from itertools import chain

import asyncpg
import pytest
from sqlalchemy import literal, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.db import create_engine
from app.driver_db import create_driver_pool, pool_transactions
from app.jobs import job_lock
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.batch import run_batch
from familymap.registry_load import load_synthetic_registry
from tests.clock import PINNED_TODAY
from tests.pgbouncer import pgbouncer
from tests.pgcluster import streaming_pair

pytestmark = pytest.mark.postgres_only

CLIENTS, ROUNDS = 8, 10


async def through_the_engine(settings: Settings) -> list[int]:
    engine = create_engine(settings.model_copy(update={"database_pool_size": CLIENTS}))

    async def client(n: int) -> list[int]:
        answers = []
        for round_ in range(ROUNDS):
            async with engine.begin() as connection:
                answers.append(await connection.scalar(select(literal(n * 100 + round_) + 1)))
        return answers

    try:
        return sorted(chain.from_iterable(await asyncio.gather(*map(client, range(CLIENTS)))))
    finally:
        await engine.dispose()


async def through_the_driver_pool(settings: Settings) -> list[int]:
    pool = await create_driver_pool(settings.model_copy(update={"database_hot_pool_size": CLIENTS}))
    transactions = pool_transactions(pool)

    async def client(n: int) -> list[int]:
        answers = []
        for round_ in range(ROUNDS):
            async with transactions() as connection:
                answers.append(await connection.fetchval("SELECT $1::int + 1", n * 100 + round_))
        return answers

    try:
        return sorted(chain.from_iterable(await asyncio.gather(*map(client, range(CLIENTS)))))
    finally:
        await pool.close()


EXPECTED = sorted(n * 100 + round_ + 1 for n in range(CLIENTS) for round_ in range(ROUNDS))


@pytest.fixture
def behind_pgbouncer(settings: Settings):
    """Settings whose DATABASE_URL is a pgbouncer (transaction mode, two server connections)."""
    url = make_url(settings.async_database_url)
    with pgbouncer(
        server_host=url.host or "127.0.0.1",
        server_port=url.port or 5432, user=url.username or "postgres", pool_size=2,
    ) as port:  # fmt: skip
        yield settings.model_copy(
            update={"database_url": url.set(host="127.0.0.1", port=port).render_as_string(False)}
        )


async def test_the_engine_and_the_hot_path_pool_work_behind_a_transaction_pooler(behind_pgbouncer):
    # Given DATABASE_TRANSACTION_POOLER and eight clients sharing two server connections
    pooled = behind_pgbouncer.model_copy(update={"database_transaction_pooler": True})
    # When each runs ten transactions through the ORM's engine and through the driver pool
    # Then every answer is right
    assert await through_the_engine(pooled) == EXPECTED
    assert await through_the_driver_pool(pooled) == EXPECTED


async def test_without_the_setting_the_engines_cached_statements_go_missing(behind_pgbouncer):
    # A statement prepared on one server connection is executed on the other.
    with pytest.raises(DBAPIError, match="prepared statement"):
        await through_the_engine(behind_pgbouncer)


async def test_without_the_setting_the_hot_paths_connection_setting_is_refused(behind_pgbouncer):
    with pytest.raises(asyncpg.PostgresError, match="plan_cache_mode"):
        await through_the_driver_pool(behind_pgbouncer)


@pytest.fixture
def pooled(behind_pgbouncer: Settings) -> Settings:
    return behind_pgbouncer.model_copy(update={"database_transaction_pooler": True})


async def test_a_wallet_jobs_lock_holds_through_the_pooler(pooled):
    # Given two workers whose connections pgbouncer hands out per transaction
    engine = create_engine(pooled)
    factory = async_sessionmaker(engine)
    try:
        # When one holds a job's lock and the other asks for it
        async with (
            job_lock(session_factory=factory, job="settlement") as first,
            job_lock(session_factory=factory, job="settlement") as second,
        ):
            # Then only the first has it (a session-level lock could be on either server
            # connection, or left behind on one, with a pooler in between)
            assert (first, second) == (True, False)
        # And it is free again once the first's pass ended
        async with job_lock(session_factory=factory, job="settlement") as later:
            assert later is True
    finally:
        await engine.dispose()


async def test_an_eligibility_run_reads_its_exported_snapshot_through_the_pooler(tmp_path):
    # Given a registry of its own, committed (a primary of the test's own)
    with streaming_pair() as (primary, _standby):
        settings = Settings(database_url=primary.url, dev_jwt_key_path=tmp_path / "key.pem")
        engine = create_engine(settings)
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            _, persons = await load_synthetic_registry(
                connection, families=200, seed=7, as_of=PINNED_TODAY
            )
        await engine.dispose()
        with pgbouncer(
            server_host="127.0.0.1", server_port=primary.port, user="postgres", pool_size=2
        ) as port:
            url = make_url(settings.async_database_url).set(host="127.0.0.1", port=port)
            pooled = settings.model_copy(
                update={
                    "database_url": url.render_as_string(False),
                    "database_transaction_pooler": True,
                }
            )
            engine = create_engine(pooled)
            try:
                # When a national run reads in ranges on a second connection, through
                # pgbouncer, from a snapshot the first exported (and writes on the first)
                async with engine.connect() as connection:
                    summary = await run_batch(connection, on=PINNED_TODAY, range_families=50)
                    await connection.commit()
            finally:
                await engine.dispose()
    # Then it evaluated every family and person
    assert (summary.families, summary.persons) == (200, persons)
