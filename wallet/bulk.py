"""Rows written in bulk by the offer job: the database's INSERT with ON CONFLICT, the row of a
pending SMS, and PostgreSQL's COPY into a staging table.

The offer job writes offers, their SMS and notices a chunk at a time. The one-family path (a
life event) and the portable batch path insert rows with one statement per table; the batch
path on PostgreSQL COPYs them into a staging table first and moves them with one statement.
Both write the same rows, built by the same functions (wallet.offers, wallet.notices).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import any_, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from familymap.pgcopy import create_staging_table


def dialect_insert(connection: AsyncConnection, table: Any) -> Any:
    """A Core INSERT for the connection's database, which both extend with ON CONFLICT.

    Core rather than ORM-enabled inserts: rows go straight to the driver in pages, without
    the ORM's per-row bookkeeping, which dominated the offer job's time.
    """
    dialect = connection.dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


def among(connection: AsyncConnection, column: Any, values: Sequence[Any]) -> Any:
    """`column` among `values`: one array parameter on PostgreSQL (thousands of bound values
    would be compiled, sent and planned one by one), an IN list elsewhere."""
    if connection.dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(list(values))


def sms_row(*, message_key: str, phone: str, body: str, now: datetime) -> dict[str, Any]:
    """The outbox row of an SMS from 1414 due now (as wallet.outbox.enqueue writes it)."""
    return {
        "message_key": message_key,
        "channel": "sms",
        "recipient": phone,
        "body": body,
        "payload": {},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def copy_to_staging(
    connection: AsyncConnection,
    name: str,
    columns: dict[str, str],
    records: Sequence[tuple[Any, ...]],
    analyze: Sequence[str] = (),
) -> None:
    """A temporary table `name` (columns: name -> SQL type) holding `records`, by binary COPY.

    The table is dropped at commit; a caller that stages twice in one transaction drops it.
    `analyze` names the columns the statement reading it joins or sorts on (default: the
    first).
    """
    await create_staging_table(connection, name, columns)
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None  # an open connection's asyncpg connection
    await raw.driver_connection.copy_records_to_table(name, records=records, columns=list(columns))
    # Without statistics PostgreSQL guesses a temporary table holds a million rows: it then
    # sorts on disk and JIT-compiles the statement that reads it (1.6 s a chunk, measured).
    # Analysing the columns joined on is enough (it counts the rows too), at a fraction of
    # the cost of all of them (the SMS texts).
    await raw.driver_connection.execute(
        f"ANALYZE {name} ({', '.join(analyze or list(columns)[:1])})"
    )
