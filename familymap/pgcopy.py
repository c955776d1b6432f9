"""PostgreSQL's binary COPY, read and written with numpy.

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
letter, which `decode_initials` checks. The registry's small fields go further: four to a
bigint (`lane`, `packed_word`), since the server pays per field sent.

Writing (`binary_copy_frame`) cannot keep one layout: the rows written have NULLs and text.
Each row is laid out at its widest and a byte mask keeps its real bytes, in order.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from sqlalchemy import cast, func, literal, literal_column, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger, Integer, Text, UserDefinedType

from familymap.driver_sql import driver_in_transaction

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


# Small fields (smallints, booleans, enumerations, positions, counts) travel four to a bigint,
# 16 bits each: the server's cost of a binary COPY is mostly per field sent (its length word
# and its send function), so fewer, wider fields cost less (about 0.8× for the persons).
LANE_KINDS = frozenset({"int2", "bool", "enum", "position", "count"})
LANES_PER_WORD = 4
WORD = np.dtype((">u2", (LANES_PER_WORD,)))  # a packed bigint as it arrives: its lanes in order
_LANE_MASK = 0xFFFF


def lane(column: Any, kind: str, values: tuple[Any, ...] = ()) -> Any:
    """A SQL bigint in 0..65535 that carries one small field exactly (see `from_lane`).

    Integers go through the same smallint cast as `fixed_width` (a value out of its range
    fails there as here, never wraps) and travel as their 16-bit two's complement; an
    enumeration as the code point of its first character (capped: no value begins above it).
    """
    value: Any
    if kind == "enum":
        first = func.ascii(func.coalesce(column, literal_column("'-'")))
        value = func.least(first, _LANE_MASK)
    elif kind == "bool":
        value = cast(func.coalesce(column, False), Integer)
    else:
        value = fixed_width(column, kind, values)
    return cast(value, BigInteger).op("&")(literal_column(str(_LANE_MASK)))


def packed_word(lanes: list[Any]) -> Any:
    """Up to four lanes in one bigint, the first in the high bits (the first to arrive)."""
    if not 0 < len(lanes) <= LANES_PER_WORD:
        raise ValueError("a word packs one to four lanes")
    word = None
    for position, value in enumerate(lanes):
        shifted = value.self_group().op("<<")(literal_column(str(16 * (3 - position))))
        word = shifted.self_group() if word is None else word.op("|")(shifted.self_group())
    return word


def from_lane(lanes: np.ndarray, kind: str, values: tuple[Any, ...] = ()) -> np.ndarray:
    """One small field from its 16-bit lane: integers, booleans, or enumeration positions."""
    lanes = lanes.astype(np.uint16)
    if kind == "bool":
        return np.asarray(lanes != 0)
    if kind == "enum":
        return np.asarray(_initial_lookup(values)[lanes])
    if kind == "position":
        return lanes  # the position itself, as `fixed_width` sends it
    return lanes.view(np.int16)  # int2, count: the two's complement back


def _initial_lookup(values: tuple[Any, ...]) -> np.ndarray:
    """Positions in `values` by the code point of their first character (0 if none)."""
    lookup = np.zeros(_LANE_MASK + 1, dtype=np.int8)
    seen: set[int] = set()
    for position, value in enumerate(values):
        if value is None:
            continue
        initial = ord(value[0])
        if initial in seen or initial == ord("-") or initial >= _LANE_MASK:
            raise ValueError(f"enumeration values must differ in their first letter: {values}")
        seen.add(initial)
        lookup[initial] = position
    return lookup


async def copy_out(
    connection: AsyncConnection, statement: Any, *, copy_format: Literal["text", "csv", "binary"]
) -> bytes:
    """The whole output of `COPY (statement) TO STDOUT` in the given format."""
    sql = str(statement.compile(connection.sync_connection, compile_kwargs={"literal_binds": True}))
    driver = await driver_in_transaction(connection)
    chunks: list[bytes] = []  # joined once at the end: a growing buffer copies itself again

    async def write(data: bytes) -> None:  # asyncpg wants a coroutine function here
        chunks.append(data)

    await driver.copy_from_query(sql, output=write, format=copy_format)
    return b"".join(chunks)


async def copy_out_fixed(
    connection: AsyncConnection, statement: Any, fields: list[tuple[str, Any]]
) -> dict[str, np.ndarray]:
    """Run `statement` as a binary COPY and return its fixed-width columns as numpy arrays."""
    data = await copy_out(connection, statement, copy_format="binary")
    row = _row_dtype(fields)
    body = len(data) - len(HEADER) - len(TRAILER)
    if body < 0 or body % row.itemsize:
        raise ValueError("binary COPY rows do not have the expected fixed layout")
    table = np.frombuffer(data, dtype=row, count=body // row.itemsize, offset=len(HEADER))
    # Byte-swapped to native order in one pass over the rows, not one per field.
    fields_of_row = row.fields
    assert fields_of_row is not None and row.names is not None  # a structured dtype
    native = table.astype(np.dtype([(n, fields_of_row[n][0].newbyteorder("=")) for n in row.names]))
    return {name: native[name] for name, _ in fields}


def _row_dtype(fields: list[tuple[str, Any]]) -> np.dtype:
    layout: list[tuple[str, Any]] = [("count", ">i2")]
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


# Binary COPY in: the wire form of each PostgreSQL column type we write this way, as
# (numpy big-endian dtype, width); text columns travel as their UTF-8 bytes (width varies).
_BINARY_IN = {
    "BIGINT": (">i8", 8),
    "INTEGER": (">i4", 4),
    "SMALLINT": (">i2", 2),
    "BOOLEAN": ("?", 1),
    "DATE": (">i4", 4),
}
_TEXT_TYPES = ("VARCHAR", "TEXT")


def binary_type(sql_type: str) -> str | None:
    """How a column of this PostgreSQL type travels in binary COPY: a `_BINARY_IN` key, "text",
    or None when this encoder does not know it (the caller then sends CSV)."""
    name = sql_type.upper().split("(")[0].strip()
    if name in _BINARY_IN:
        return name
    if name in _TEXT_TYPES:
        return "text"
    return None


def binary_copy_rows(columns: list[tuple[str, Any, np.ndarray | None]]) -> bytes:
    """The rows of `columns` as a PostgreSQL binary COPY stream, in their order.

    Each column is (binary type, values, null mask or None): values are a numpy array of
    integers or booleans, of days since 1970 for "DATE", or of UTF-8 `bytes` (dtype "S") for
    "text". PostgreSQL parses binary fields instead of text (about 0.6× the server's time of a
    CSV COPY for entitlement rows on this machine).

    Rows differ in length (a NULL field is its length, -1, alone; text is as long as its
    bytes), so the rows are first laid out at their widest in one (rows × widest) byte matrix,
    then a mask keeps each row's real bytes: numpy's boolean gather keeps row-major order.
    """
    n = len(columns[0][1]) if columns else 0
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for index, (kind, values, _) in enumerate(columns):
        value_dtype = f"S{values.dtype.itemsize}" if kind == "text" else _BINARY_IN[kind][0]
        layout += [(f"l{index}", ">i4"), (f"v{index}", value_dtype)]
    rows = np.empty(n, dtype=np.dtype(layout))
    rows["count"] = len(columns)
    keep: np.ndarray | None = None  # None while every row has the widest layout
    row_fields = rows.dtype.fields
    assert row_fields is not None  # a structured dtype
    for index, (kind, values, nulls) in enumerate(columns):
        offset = row_fields[f"v{index}"][1]
        if kind == "text":
            width = values.dtype.itemsize
            lengths = _byte_lengths(values)
        else:
            width = _BINARY_IN[kind][1]
            lengths = np.full(n, width, dtype=np.int32)
        rows[f"v{index}"] = values - PG_EPOCH_OFFSET if kind == "DATE" else values
        if nulls is not None:
            lengths[nulls] = -1
        rows[f"l{index}"] = lengths
        if nulls is None and kind != "text":
            continue
        if keep is None:
            keep = np.ones((n, rows.dtype.itemsize), dtype=bool)
        if kind == "text":
            keep[:, offset : offset + width] = np.arange(width) < lengths[:, None]
        else:
            assert nulls is not None  # only a column with nulls gets here
            keep[:, offset : offset + width] = ~nulls[:, None]
    matrix = rows.view(np.uint8).reshape(n, rows.dtype.itemsize)
    body: np.ndarray = matrix if keep is None else matrix[keep]
    return b"".join((HEADER, memoryview(body.data).cast("B"), TRAILER))  # one copy of the rows


def _byte_lengths(values: np.ndarray) -> np.ndarray:
    """Lengths of fixed-width bytes values (numpy pads them with NUL bytes at the end)."""
    width = values.dtype.itemsize
    if width == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=np.int32)
    padded = values.view(np.uint8).reshape(len(values), width) != 0
    # The last non-NUL byte + 1 (UTF-8 text has no NUL bytes of its own).
    lengths: np.ndarray = (width - np.argmax(padded[:, ::-1], axis=1)) * padded.any(axis=1).astype(
        np.int32
    )
    return lengths


def binary_copy_frame(table: Any, frame: pl.DataFrame) -> bytes | None:
    """A polars frame's rows as a binary COPY stream into `table`'s columns of the same names,
    or None if a column's type has no binary form here (then send CSV)."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy: no annotations
    columns = []
    for name, dtype in frame.schema.items():
        kind = binary_type(table.c[name].type.compile(dialect=dialect))
        series = frame[name]
        nulls = series.is_null().to_numpy() if series.null_count() else None
        if kind == "text" and dtype == pl.String:
            values = _utf8_bytes(series)
        elif kind == "DATE" and dtype == pl.Date:
            values = series.cast(pl.Int32).fill_null(0).to_numpy()
        elif kind in _BINARY_IN and kind != "DATE" and (dtype.is_integer() or dtype == pl.Boolean):
            values = series.fill_null(0).to_numpy()
        else:
            return None
        columns.append((kind, values, nulls))
    return binary_copy_rows(columns)


def _utf8_bytes(series: pl.Series) -> np.ndarray:
    """A string column as fixed-width UTF-8 bytes (dtype "S"), nulls as b"".

    Encoded once per distinct value: the columns written this way (programmes, kinds of
    change) have a handful of values over millions of rows.
    """
    distinct = series.drop_nulls().unique().to_list()
    encoded = np.array([value.encode() for value in distinct] or [b""])
    if not distinct:
        return np.full(len(series), b"", dtype=encoded.dtype)
    codes = series.replace_strict(
        distinct, list(range(len(distinct))), default=0, return_dtype=pl.UInt32
    ).to_numpy()
    picked: np.ndarray = encoded[codes]
    return picked
