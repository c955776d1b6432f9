"""Read routing to a streaming standby (app/replicas.py), on a primary and standby of the
test's own (tests/pgcluster.py): lag-tolerant reads go to the standby, a caller's own writes
stay visible to that caller, and a standby that is down or lags is skipped."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.replicas import Replica, ReplicaSet, WriteMarks
from tests.pgcluster import stop, streaming_pair

REDIS_URL = "redis://127.0.0.1:6379/0"
CITIZEN, OTHER = "citizen-a", "citizen-b"


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
async def pair():
    with streaming_pair() as (primary, standby):
        primary_engine = create_async_engine(asyncpg_url(primary.url))
        standby_engine = create_async_engine(asyncpg_url(standby.url))
        replica = Replica("standby-1", standby_engine, async_sessionmaker(standby_engine))
        replicas = ReplicaSet(
            primary=primary_engine, replicas=[replica],
            marks=WriteMarks(key=b"k" * 32, ttl_seconds=60), max_lag_seconds=0.5,
        )  # fmt: skip
        async with primary_engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body text)"))
        try:
            yield replicas, replica, standby
        finally:
            await primary_engine.dispose()
            await standby_engine.dispose()


async def write(replicas: ReplicaSet, body: str) -> None:
    async with replicas.primary.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES (:body)"), {"body": body})


async def until_replayed(replicas: ReplicaSet) -> None:
    """Refresh until the standby has replayed everything the primary wrote."""
    for _ in range(100):
        await replicas.refresh()
        if (await replicas.choose(CITIZEN)) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the standby never caught up")


@pytest.mark.postgres_only
async def test_a_callers_reads_follow_their_own_write_to_the_standby(pair):
    replicas, replica, _ = pair
    await until_replayed(replicas)
    # When a citizen's mutation writes, and the router remembers where the primary was
    await write(replicas, "consent")
    await replicas.mark_write(CITIZEN)
    # Then until a check sees the standby past that point, the citizen reads on the primary,
    # while another caller already reads on the standby
    assert await replicas.choose(CITIZEN) is None
    assert await replicas.choose(OTHER) is replica
    # And once the standby has replayed it, the citizen reads there too, and sees the write
    await until_replayed(replicas)
    chosen = await replicas.choose(CITIZEN)
    assert chosen is replica
    async with chosen.sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM notes WHERE body = 'consent'")) == 1


@pytest.mark.postgres_only
async def test_a_lagging_standby_is_skipped_and_comes_back(pair):
    replicas, replica, _ = pair
    await until_replayed(replicas)
    # Given a standby whose replay is paused (it pauses at the next WAL record it meets)
    # while the primary goes on writing
    async with replica.engine.connect() as connection:
        await connection.execute(text("SELECT pg_wal_replay_pause()"))
        await write(replicas, "first")
        for _ in range(100):
            state = await connection.scalar(text("SELECT pg_get_wal_replay_pause_state()"))
            if state == "paused":
                break
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.8)
    await write(replicas, "second")
    # When the router checks it
    await replicas.refresh()
    # Then it is skipped, saying why, and every read goes to the primary
    assert (replica.healthy, replica.problem.startswith("lags")) == (False, True)
    assert await replicas.choose(OTHER) is None
    # And when replay resumes, it serves again
    async with replica.engine.connect() as connection:
        await connection.execute(text("SELECT pg_wal_replay_resume()"))
    await until_replayed(replicas)
    assert replicas.status()[0]["healthy"] is True


@pytest.mark.postgres_only
async def test_a_standby_that_is_down_is_skipped(pair):
    replicas, replica, standby = pair
    await until_replayed(replicas)
    stop(standby)
    await replica.engine.dispose()  # no pooled connection survives the stop
    await replicas.refresh()
    assert replica.healthy is False and replica.problem.startswith("unreachable")
    assert await replicas.choose(OTHER) is None


async def test_write_marks_are_shared_through_redis_and_keep_the_larger_position():
    redis = Redis.from_url(REDIS_URL)
    key = secrets.token_bytes(32)
    one = WriteMarks(key=key, ttl_seconds=60, redis=redis)
    two = WriteMarks(key=key, ttl_seconds=60, redis=redis)
    try:
        # Given two API processes; one marks a write at 200, the other later at 100
        await one.mark(CITIZEN, 200)
        await two.mark(CITIZEN, 100)
        # Then both see 200, and the key in Redis is no IIN-bearing name
        assert await one.position(CITIZEN) == await two.position(CITIZEN) == 200
        assert await two.position(OTHER) == 0
        assert CITIZEN not in one._name(CITIZEN)
    finally:
        await redis.delete(one._name(CITIZEN))
        await redis.aclose()


async def test_without_redis_marks_fall_back_to_the_process_and_an_unknown_mark_is_safe():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    marks = WriteMarks(key=b"k" * 32, ttl_seconds=60, redis=dead)
    await marks.mark(CITIZEN, 300)  # Redis away: remembered in the process
    # Reading cannot ask Redis either: the router must assume the worst (the primary)
    assert await marks.position(CITIZEN) >= 2**63 - 1
    await dead.aclose()
