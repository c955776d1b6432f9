"""Load a synthetic registry straight into the database (COPY on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import polars as pl
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from familymap.batch import bulk_insert
from familymap.generator import family_frame, generate_registry, person_frame
from familymap.store import catch_up_id_sequences
from familymap.tables import Family, Person

COPY_SLICE_ROWS = 100_000


async def load_synthetic_registry(
    connection: AsyncConnection,
    *,
    families: int,
    seed: int,
    as_of: date,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Generate `families` families and insert them after the registry's current ids.

    Returns (families, persons) inserted. Ids continue after the largest ids present, so the
    synthetic families never collide with families already loaded (the demo's stories).
    """
    family_offset = int(await connection.scalar(select(func.coalesce(func.max(Family.id), 0))) or 0)
    person_offset = int(await connection.scalar(select(func.coalesce(func.max(Person.id), 0))) or 0)
    now = datetime.now(UTC)
    stamps = [pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at")]
    done_families = done_persons = 0
    for chunk in generate_registry(families=families, seed=seed, as_of=as_of):
        family_rows = family_frame(chunk).with_columns(pl.col("id") + family_offset, *stamps)
        person_rows = person_frame(chunk).with_columns(
            pl.col("id") + person_offset, pl.col("family_id") + family_offset, *stamps
        )
        await bulk_insert(connection, Family.__table__, family_rows)
        # In slices: a whole chunk's persons as CSV would be a 200 MB buffer at once.
        for offset in range(0, person_rows.height, COPY_SLICE_ROWS):
            await bulk_insert(
                connection, Person.__table__, person_rows.slice(offset, COPY_SLICE_ROWS)
            )
        done_families += family_rows.height
        done_persons += person_rows.height
        if progress:
            progress(done_families, families)
    await catch_up_id_sequences(connection, "families", "persons")
    if connection.dialect.name == "postgresql":
        # Fresh statistics, or the planner keeps estimating an empty registry.
        await connection.execute(text("ANALYZE families, persons"))
    return done_families, done_persons
