"""SQL with :named parameters for asyncpg, which takes $1, $2, ... in order; the type of a
source of transactions on asyncpg connections; and INSERT statements built from a table's
definition (its columns and their types), for the hot paths.

The hot paths (vouchers/meal_hotpath.py) run a few large statements on the driver's
connection. Written with names they stay readable; SQLAlchemy compiles each once to
asyncpg's numbered form (a name used twice gets one number), and `args` lines the values up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import dialect as postgresql_dialect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

# A way to run a transaction on a driver connection: `async with transactions() as conn:`
# (app/driver_db.py makes them; the hot paths take them).
DriverTransactions = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement in asyncpg's form and the names of its parameters, in order."""

    sql: str
    names: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The values for $1, $2, ...; a missing name is a KeyError, not a NULL."""
        return [values[name] for name in self.names]


def driver_statement(sql: str) -> DriverStatement:
    """Compile `sql` (:name parameters; cast with CAST(:name AS type)) for asyncpg."""
    # SQLAlchemy's dialect constructors are unannotated.
    compiled = text(sql).compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    return DriverStatement(compiled.string, tuple(compiled.positiontup or ()))


# --- Statements built from a table's definition ------------------------------------------
# The hot paths' SQL names no column by hand: the columns and their PostgreSQL types are read
# from the SQLAlchemy Table, so a column added to a table reaches every path (and a path that
# does not fill it fails at import, where the row builders assert their keys).

_PG = postgresql_dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy: no annotations


def insert_columns(table: Table) -> tuple[str, ...]:
    """The columns an INSERT fills: all but the database-generated integer primary key."""
    return tuple(c.name for c in table.c if c is not table.autoincrement_column)


def column_types(table: Table) -> dict[str, str]:
    """Each column's PostgreSQL type, without a length: a cast to VARCHAR(n) would cut a
    longer value short where the column itself refuses it."""
    return {c.name: re.sub(r"\(\d+\)", "", c.type.compile(dialect=_PG)) for c in table.c}


def insert_from_parameters(
    table: Table,
    *,
    prefix: str,
    columns: tuple[str, ...] | None = None,
    sources: Mapping[str, str] | None = None,
) -> str:
    """`INSERT INTO table (cols) SELECT ...`: each column the :{prefix}{name} parameter cast
    to its type, or the SQL expression `sources` gives it. To be followed by FROM/WHERE."""
    names = columns or insert_columns(table)
    types = column_types(table)
    given = sources or {}
    values = [given.get(n, f"CAST(:{prefix}{n} AS {types[n]})") for n in names]
    # From the table's definition, no input: every value is a bound parameter.
    return f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)}"


def insert_from_arrays(
    table: Table, *, columns: tuple[str, ...] | None = None, first: int = 1
) -> str:
    """`INSERT INTO table (cols) SELECT * FROM unnest($first::type[], ...)`: one array
    parameter per column, in `columns`' order."""
    names = columns or insert_columns(table)
    types = column_types(table)
    arrays = ", ".join(f"${n}::{types[name]}[]" for n, name in enumerate(names, start=first))
    # From the table's definition, no input.
    return f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"  # noqa: S608


async def driver_in_transaction(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `connection`, inside `connection`'s transaction.

    SQLAlchemy's asyncpg adapter opens the server's transaction lazily, at the first statement
    that goes through SQLAlchemy: a statement sent straight to the driver before any did (a
    COPY, say) ran outside it, committed at once, and outlived a rollback (a test's rows stayed
    in the database this way). One cheap statement through SQLAlchemy opens it first.
    """
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None  # an open connection's asyncpg connection
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))
    return driver
