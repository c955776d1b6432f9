"""Each wallet job runs in one worker at a time: a pass takes the job's transaction-scoped
advisory lock (app/jobs.py) and a worker that finds it taken leaves the job for this pass."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.jobs import JOB_LOCK_NAMESPACE, JOB_LOCKS, job_lock, run_wallet_jobs
from tests.clock import PINNED_NOW


@pytest.mark.postgres_only
async def test_a_job_held_by_one_worker_is_skipped_by_another(engine):
    factory = async_sessionmaker(engine, expire_on_commit=False)
    # Given one worker in the middle of the expiry job
    async with job_lock(session_factory=factory, job="expiry") as first:
        # When a second worker tries the same job, and another job
        async with job_lock(session_factory=factory, job="expiry") as second:
            assert first is True
            # Then it does not get the running job, but does get the other one
            assert second is False
        async with job_lock(session_factory=factory, job="payments") as other:
            assert other is True
    # And once the first worker's pass ends, the job is free again
    async with job_lock(session_factory=factory, job="expiry") as later:
        assert later is True


@pytest.mark.postgres_only
async def test_a_pass_leaves_every_job_another_worker_holds(engine):
    factory = async_sessionmaker(engine, expire_on_commit=False)
    # Given another worker holds every job's lock in its open transaction
    async with engine.connect() as other, other.begin():
        for job in JOB_LOCKS.values():
            taken = await other.scalar(
                select(func.pg_try_advisory_xact_lock(JOB_LOCK_NAMESPACE, job))
            )
            assert taken is True
        # When this worker runs a pass
        summary = await run_wallet_jobs(session_factory=factory, offer_days=30, now=PINNED_NOW)
    # Then it ran none of them
    assert summary.skipped == ["offers", "expiry", "settlement", "payments"]
    assert (summary.expired, summary.sent, summary.ordered, summary.offers.offers) == (0, 0, 0, 0)


async def test_on_sqlite_the_single_process_always_runs_the_job(tmp_path):
    # Given an embedded SQLite database (one process serves it, and it has no advisory locks)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    try:
        # When a job asks for its lock, even while another block holds it
        factory = async_sessionmaker(engine)
        async with (
            job_lock(session_factory=factory, job="offers") as first,
            job_lock(session_factory=factory, job="offers") as again,
        ):
            # Then the job runs
            assert first is True and again is True
    finally:
        await engine.dispose()
