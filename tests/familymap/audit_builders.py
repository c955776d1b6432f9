"""Helpers for tests that commit audit records: take them away again afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def audit_trail_restored(engine: AsyncEngine) -> AsyncIterator[dict[int, tuple[int, str]]]:
    """Yield each chain's head (seq, hash) as it is now; afterwards remove every record
    appended since and put the heads back (PostgreSQL: the triggers are switched off for it)."""
    async with engine.connect() as connection:
        heads = {
            row.id: (row.seq, row.hash)
            for row in await connection.execute(text("SELECT id, seq, hash FROM audit_chain_head"))
        }
    try:
        yield heads
    finally:
        async with engine.begin() as cleanup:
            await cleanup.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
            for chain, (seq, digest) in heads.items():
                await cleanup.execute(
                    text("DELETE FROM audit_records WHERE chain = :c AND seq > :s"),
                    {"c": chain, "s": seq},
                )
                await cleanup.execute(
                    text("UPDATE audit_chain_head SET seq = :s, hash = :h WHERE id = :c"),
                    {"s": seq, "h": digest, "c": chain},
                )
            await cleanup.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
