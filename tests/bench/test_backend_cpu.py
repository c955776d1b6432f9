"""bench/backend_cpu.py: the CPU a block costs here and in its database's backends."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from bench.backend_cpu import cpu_seconds


def test_without_a_local_database_only_the_client_is_measured():
    with cpu_seconds(None) as measured:
        deadline = time.process_time() + 0.1
        while time.process_time() < deadline:  # spin for 0.1 s of CPU
            pass
    assert measured.server is None and 0.08 <= measured.client <= 1.0


@pytest.mark.postgres_only
async def test_a_backend_that_works_and_leaves_inside_the_block_is_counted(engine):
    with cpu_seconds(engine.url.database) as measured:
        async with engine.connect() as reader:  # a fresh connection: a backend for the block
            await reader.execute(text("SELECT count(*) FROM generate_series(1, 4000000)"))
            await reader.invalidate()  # the backend goes away before the block ends
    assert measured.server is not None and measured.server >= 0.1
