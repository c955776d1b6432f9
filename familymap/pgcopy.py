"""PostgreSQL's binary COPY, read with numpy.

A national eligibility run moves twenty million rows each way. Text COPY makes the server
format and parse every value, and CASE expressions to turn text into codes cost more than the
scan itself; binary COPY of fixed-width fields costs a fraction. When every field of a row has
a fixed width and none is NULL, every row has the same layout, and numpy reads or writes the
whole answer as one structured array:

    header: "PGCOPY\\n\\377\\r\\n\\0", int32 flags, int32 extension length  (19 bytes)
    row:    int16 field count, then per field: int32 length, big-endian value
    trailer: int16 -1

Fixed width is kept by construction: NULL dates become ±infinity (which are exactly the
engine's NO_DATE / NEVER sentinels), NULL numbers 0, and a text enumeration travels as its
first letter (`"char"`, one byte) - so each enumeration's values must differ in their first
letter, which `decode_initials` checks.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from sqlalchemy import cast, func, literal, literal_column, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Text, UserDefinedType

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_OFFSET = 10_957  # days from 1970-01-01 to 2000-01-01, PostgreSQL's date epoch
INT32_MIN, INT32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max

# wire type of each field kind: (numpy big-endian dtype, PostgreSQL type for the cast)
_WIRE = {
    "int8": (">i8", "bigint"),
    "int2": (">i2", "smallint"),
    "int4": (">i4", "integer"),
    "bool": ("?", "boolean"),
    "date": (">i4", "date"),
    "death": (">i4", "date"),
    "enum": ("S1", '"char"'),
    "position": (">i2", "smallint"),
    "count": (">i2", "smallint"),
}


class _PgType(UserDefinedType[Any]):
    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **_kw: Any) -> str:
        return self.name


def wire_type(kind: str) -> str:
    """The numpy dtype a field kind travels as."""
    return _WIRE[kind][0]


def fixed_width(column: Any, kind: str, values: tuple[Any, ...] = ()) -> Any:
    """A SQL expression for `column` that is never NULL and has the kind's fixed width."""
    if kind == "date":
        value = func.coalesce(column, literal_column("'-infinity'::date"))
    elif kind == "death":
        value = func.coalesce(column, literal_column("'infinity'::date"))
    elif kind == "enum":
        value = func.coalesce(column, literal_column("'-'"))  # '-' never begins a value
    elif kind == "position":
        # Values that share first letters (the regions) travel as their position instead.
        choices = literal([v for v in values if v is not None], ARRAY(Text))
        value = func.coalesce(func.array_position(choices, cast(column, Text)), 0)
    elif kind == "count":
        value = func.coalesce(func.jsonb_array_length(column), 0)
    elif kind == "bool":
        value = func.coalesce(column, False)
    else:
        value = func.coalesce(column, 0)
    return cast(value, _PgType(_WIRE[kind][1]))


async def copy_out(connection: AsyncConnection, statement: Any, *, copy_format: str) -> bytes:
    """The whole output of `COPY (statement) TO STDOUT` in the given format."""
    sql = str(statement.compile(connection.sync_connection, compile_kwargs={"literal_binds": True}))
    raw = await connection.get_raw_connection()
    buffer = io.BytesIO()

    async def write(data: bytes) -> None:  # asyncpg wants a coroutine function here
        buffer.write(data)

    driver = raw.driver_connection
    assert driver is not None  # an open connection's asyncpg connection
    await driver.copy_from_query(sql, output=write, format=copy_format)
    return buffer.getvalue()


async def copy_out_fixed(
    connection: AsyncConnection, statement: Any, fields: list[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """Run `statement` as a binary COPY and return its fixed-width columns as numpy arrays."""
    data = await copy_out(connection, statement, copy_format="binary")
    row = _row_dtype(fields)
    body = len(data) - len(HEADER) - len(TRAILER)
    if body < 0 or body % row.itemsize:
        raise ValueError("binary COPY rows do not have the expected fixed layout")
    table = np.frombuffer(data, dtype=row, count=body // row.itemsize, offset=len(HEADER))
    return {name: table[name] for name, _ in fields}


def _row_dtype(fields: list[tuple[str, str]]) -> np.dtype:
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for name, dtype in fields:
        layout += [(f"{name}__len", ">i4"), (name, dtype)]
    return np.dtype(layout)


def days_since_1970(pg_days: np.ndarray) -> np.ndarray:
    """PostgreSQL date numbers (days since 2000-01-01) as ours; ±infinity stay sentinels."""
    days = pg_days.astype(np.int32)
    finite = (days != INT32_MIN) & (days != INT32_MAX)
    days[finite] += PG_EPOCH_OFFSET
    return days


def decode_initials(initials: np.ndarray, values: tuple[Any, ...]) -> np.ndarray:
    """Positions in `values` of enumeration values sent as their first letter (0 if none)."""
    lookup = np.zeros(256, dtype=np.int8)
    seen: set[int] = set()
    for position, value in enumerate(values):
        if value is None:
            continue
        initial = value.encode()[0]
        if initial in seen or initial == ord("-"):
            raise ValueError(f"enumeration values must differ in their first letter: {values}")
        seen.add(initial)
        lookup[initial] = position
    return lookup[initials.view(np.uint8)]


async def create_staging_table(
    connection: AsyncConnection, name: str, columns: dict[str, str]
) -> None:
    """A temporary table, dropped at commit, for COPYing rows before an INSERT … SELECT."""
    spec = ", ".join(f"{column} {sql_type}" for column, sql_type in columns.items())
    await connection.execute(text(f"CREATE TEMPORARY TABLE {name} ({spec}) ON COMMIT DROP"))
